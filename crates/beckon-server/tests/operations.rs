//! The binary as an operator runs it: SIGHUP reloads the configuration file without dropping
//! anyone, `--admin` prints its URL and serves metrics, logs are JSON on request and carry no
//! colour codes when they do not go to a terminal, and every `--help` exits 0.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use beckon_proto::pb::server_frame::Kind;
use common::Client;
use common::process::{BIN, ServerProcess, TempDir, TempFile, run_to_exit};

fn token(cert: &str, account: &str, privileges: beckon_token::Privileges) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    beckon_token::mint(
        cert.as_bytes(),
        &beckon_token::TokenClaims {
            app_id: "myapp".into(),
            account: account.into(),
            issued_at: now,
            expires_at: now + 600,
            privileges,
        },
    )
}

fn config(cert: &str) -> String {
    format!("[[apps]]\napp_id = \"myapp\"\ncertificate = \"{cert}\"\n")
}

fn start(args: &[&str], data_home: &TempDir) -> ServerProcess {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RUST_LOG", "info")
        .env("XDG_DATA_HOME", data_home.path());
    ServerProcess::spawn(cmd)
}

/// Waits until the server has logged `text`.
fn await_log(server: &ServerProcess, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sighup_rotates_a_certificate_and_keeps_sessions() {
    let old = "00112233445566778899aabbccddeeff";
    let new = "ffeeddccbbaa99887766554433221100";
    let file = TempFile::new("reload.toml", &config(old));
    let data_home = TempDir::new("xdg");
    let server = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--ephemeral",
            "--config",
            file.path_str(),
        ],
        &data_home,
    );
    let none = beckon_token::Privileges::NONE;
    let mut alice = Client::connect(server.addr).await;
    alice
        .login_ok("myapp", "alice", &token(old, "alice", none))
        .await;

    std::fs::write(&file.0, config(new)).unwrap();
    server.signal("HUP");
    await_log(&server, "configuration reloaded");

    // alice's session is still there.
    alice.ping_pong(7).await;
    // Tokens of the old certificate are refused now; the new one's are accepted.
    let mut bob = Client::connect(server.addr).await;
    match bob.login("myapp", "bob", &token(old, "bob", none)).await {
        Kind::LoginFailed(f) => assert_eq!(f.code, 206, "{f:?}"),
        other => panic!("{other:?}"),
    }
    let mut bob = Client::connect(server.addr).await;
    bob.login_ok("myapp", "bob", &token(new, "bob", none)).await;

    // A broken file is refused and changes nothing.
    std::fs::write(&file.0, "not toml [").unwrap();
    server.signal("HUP");
    await_log(&server, "reload failed");
    alice.ping_pong(8).await;
    let mut carol = Client::connect(server.addr).await;
    carol
        .login_ok("myapp", "carol", &token(new, "carol", none))
        .await;

    server.signal("TERM");
    let mut server = server;
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn json_logs_and_the_admin_listener() {
    let cert = "00112233445566778899aabbccddeeff";
    let file = TempFile::new("admin.toml", &config(cert));
    let data_home = TempDir::new("xdg");
    let mut server = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--ephemeral",
            "--config",
            file.path_str(),
            "--admin",
            "http://127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &data_home,
    );
    let line = server.next_stdout_line();
    let url = line
        .strip_prefix("beckon-server admin on ")
        .unwrap_or_else(|| panic!("the admin line: {line:?}"))
        .to_owned();
    let mut alice = Client::connect(server.addr).await;
    let t = token(cert, "alice", beckon_token::Privileges::NONE);
    alice.login_ok("myapp", "alice", &t).await;

    let http = reqwest::Client::new();
    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("beckon_sessions{app=\"myapp\"} 1"), "{text}");
    let admin = token(cert, "ops", beckon_token::Privileges::SERVER);
    let kicked = http
        .post(format!("{url}/v1/apps/myapp/accounts/alice/kick"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.status(), 200);
    let frames = alice.until_closed().await;
    assert!(
        frames
            .iter()
            .any(|k| matches!(k, Kind::Kick(k) if k.code == 103)),
        "{frames:?}"
    );

    server.signal("TERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes in a piped log: {stderr}"
    );
    let mut lines = 0;
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        lines += 1;
    }
    assert!(lines > 0);
    // The kick is logged with the connection's context.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("kicked through the admin API")),
        "{stderr}"
    );
}

#[test]
fn human_logs_to_a_pipe_have_no_colour_codes() {
    let data_home = TempDir::new("xdg");
    let mut server = start(&["--listen", "127.0.0.1:0", "--ephemeral"], &data_home);
    server.signal("TERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn every_help_exits_0() {
    for args in [&["--help"][..], &["token", "--help"], &["help"], &["-h"]] {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        let (code, out, err) = run_to_exit(cmd);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["--admin", "https://127.0.0.1:1"]);
    let (code, _, err) = run_to_exit(cmd);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--admin"), "{err}");
}
