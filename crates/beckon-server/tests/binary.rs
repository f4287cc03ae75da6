//! The `beckon-server` binary: its `token` subcommand, serving a config file, and signals.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beckon_token::Privileges;

use common::Client;

const BIN: &str = env!("CARGO_BIN_EXE_beckon-server");

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs `beckon-server token …` and returns (exit code, stdout, stderr).
fn token_cmd(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("token")
        .args(args)
        .output()
        .expect("run beckon-server token");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "beckon-server-test-{}-{nanos}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running server process; killed on drop if a test fails before it exits.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    // Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start beckon-server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("beckon-server listening on ") else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("unexpected first line {line:?}; stderr: {err}");
        };
        let addr: SocketAddr = addr.parse().unwrap();
        assert_ne!(addr.port(), 0, "the real port is printed");
        Self {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and what it logged.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        (status, err)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn token_subcommand_prints_a_verifiable_token() {
    let (code, stdout, stderr) = token_cmd(&[
        "--app-id",
        "myapp",
        "--certificate",
        "5cfd2fd1755d40ecb72977518be15d3b",
        "--account",
        "alice",
        "--expire-in",
        "600",
        "--server",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let now = unix_now();
    let claims = beckon_token::verify(
        b"5cfd2fd1755d40ecb72977518be15d3b",
        stdout.trim(),
        "myapp",
        "alice",
        now,
    )
    .expect("a valid token");
    assert!(claims.privileges.contains(Privileges::SERVER));
    assert!((now + 590..=now + 610).contains(&claims.expires_at));

    // Without --server, and with the default expiry of an hour.
    let (code, stdout, _) = token_cmd(&["--app-id", "a", "--certificate", "c", "--account", "b"]);
    assert_eq!(code, Some(0));
    let claims = beckon_token::peek(stdout.trim()).unwrap();
    assert_eq!(claims.privileges, Privileges::NONE);
    assert_eq!(claims.expires_at - claims.issued_at, 3600);
}

#[test]
fn token_subcommand_rejects_unusable_names_with_exit_code_2() {
    let long = "a".repeat(beckon_token::MAX_FIELD_LEN + 1);
    for (app, account) in [
        ("myapp", "has space"),
        ("myapp", ""),
        ("my app", "alice"),
        (long.as_str(), "alice"),
        ("myapp", long.as_str()),
    ] {
        let (code, stdout, stderr) =
            token_cmd(&["--app-id", app, "--certificate", "c", "--account", account]);
        assert_eq!(code, Some(2), "{app:?}/{account:?}: {stdout}");
        assert!(stdout.is_empty());
        assert!(stderr.contains("beckon-server token:"), "{stderr}");
    }
}

#[test]
fn bad_config_exits_with_code_2() {
    let config = TempFile::new("bad.toml", "listen = \"127.0.0.1:0\"\nbogus = 1\n");
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&config.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[tokio::test]
async fn serves_a_config_file_and_exits_cleanly_on_sigterm() {
    let cert = "00112233445566778899aabbccddeeff";
    let config = TempFile::new(
        "server.toml",
        &format!(
            "listen = \"127.0.0.1:7400\"\n[[apps]]\napp_id = \"myapp\"\ncertificate = \"{cert}\"\n"
        ),
    );
    let config_path = config.0.to_str().unwrap();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0", "--config", config_path]);

    let (code, token, stderr) = token_cmd(&[
        "--app-id",
        "myapp",
        "--certificate",
        cert,
        "--account",
        "alice",
        "--expire-in",
        "60",
    ]);
    assert_eq!(code, Some(0), "{stderr}");

    let mut client = Client::connect(server.addr).await;
    let ok = client.login_ok("myapp", "alice", token.trim()).await;
    assert_eq!(ok.uid, beckon_broker::uid_for("myapp", "alice"));
    client.ping_pong(1).await;

    // Not development mode: unknown apps and `_no_need_token` are refused.
    let mut other = Client::connect(server.addr).await;
    assert!(matches!(
        other.login("other", "bob", beckon_proto::NO_TOKEN).await,
        beckon_proto::pb::server_frame::Kind::LoginFailed(_)
    ));

    server.signal("TERM");
    let frames = client.until_closed().await;
    assert!(
        matches!(
            frames.as_slice(),
            [beckon_proto::pb::server_frame::Kind::GoAway(_)]
        ),
        "{frames:?}"
    );
    drop(client);
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("DEVELOPMENT MODE"), "{stderr}");
}

#[tokio::test]
async fn development_mode_warns_and_exits_cleanly_on_sigint() {
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"]);
    let mut client = Client::connect(server.addr).await;
    client
        .login_ok("whatever", "alice", beckon_proto::NO_TOKEN)
        .await;
    server.signal("INT");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("DEVELOPMENT MODE: any App ID is accepted"),
        "{stderr}"
    );
}
