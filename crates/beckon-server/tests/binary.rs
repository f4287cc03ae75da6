//! The `beckon-server` binary: its `token` subcommand, serving a config file, and signals.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use beckon_token::Privileges;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::Client;
use common::process::{BIN, ServerProcess, TempDir, TempFile, run_to_exit};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Runs `beckon-server token …` and returns (exit code, stdout, stderr).
fn token_cmd(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("token").args(args);
    run_to_exit(cmd)
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
    let config_path = config.path_str();
    let data_home = TempDir::new("xdg");
    let mut server = ServerProcess::start(
        &["--listen", "127.0.0.1:0", "--config", config_path],
        data_home.path(),
    );

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
    let data_home = TempDir::new("xdg");
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], data_home.path());
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

// ---- storage ------------------------------------------------------------------------------------

/// `beckon-server args…` with exactly the environment `env` (plus PATH), logging at info level.
fn command_with_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("RUST_LOG", "info")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A server started as [`command_with_env`] says; waits until it listens.
fn start_with_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> ServerProcess {
    ServerProcess::spawn(command_with_env(args, env))
}

/// Sends SIGTERM and checks the exit is clean; returns the log.
fn stop(mut server: ServerProcess) -> String {
    server.signal("TERM");
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "{log}");
    log
}

#[test]
fn the_default_store_is_in_the_standard_data_directory() {
    // $XDG_DATA_HOME/beckon when it is set.
    let xdg = TempDir::new("xdg");
    let home = TempDir::new("home");
    let server = start_with_env(
        &["--listen", "127.0.0.1:0"],
        &[("XDG_DATA_HOME", xdg.path()), ("HOME", home.path())],
    );
    let db = xdg.path().join("beckon").join("beckon.redb");
    assert!(db.is_file(), "{db:?}");
    let log = stop(server);
    assert!(log.contains("store: redb"), "{log}");
    assert!(log.contains(db.to_str().unwrap()), "{log}");
    assert!(log.contains("store closed"), "{log}");
    assert!(!home.path().join(".local").exists());

    // $HOME/.local/share/beckon otherwise (a relative XDG_DATA_HOME is ignored, as the XDG
    // spec says), also with a config file that names no data directory.
    let config = TempFile::new(
        "nodir.toml",
        "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
    );
    let server = start_with_env(
        &["--listen", "127.0.0.1:0", "--config", config.path_str()],
        &[
            ("HOME", home.path()),
            ("XDG_DATA_HOME", std::path::Path::new("relative/dir")),
        ],
    );
    let db = home.path().join(".local/share/beckon/beckon.redb");
    assert!(db.is_file(), "{db:?}");
    stop(server);
}

#[test]
fn ephemeral_writes_nothing() {
    let xdg = TempDir::new("xdg");
    let server = start_with_env(
        &["--listen", "127.0.0.1:0", "--ephemeral"],
        &[("XDG_DATA_HOME", xdg.path())],
    );
    let log = stop(server);
    assert!(log.contains("store: in memory"), "{log}");
    assert_eq!(std::fs::read_dir(xdg.path()).unwrap().count(), 0);

    // The flag overrides a config file's data_dir, and the config key works on its own.
    let dir = TempDir::new("cfg-data");
    let data = dir.path().join("data");
    let config = TempFile::new(
        "dir.toml",
        &format!(
            "data_dir = {:?}\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
            data.to_str().unwrap()
        ),
    );
    let server = start_with_env(
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.path_str(),
            "--ephemeral",
        ],
        &[("XDG_DATA_HOME", xdg.path())],
    );
    stop(server);
    assert!(!data.exists());
    let config = TempFile::new(
        "eph.toml",
        "ephemeral = true\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
    );
    let server = start_with_env(
        &["--listen", "127.0.0.1:0", "--config", config.path_str()],
        &[("XDG_DATA_HOME", xdg.path())],
    );
    stop(server);
    assert_eq!(std::fs::read_dir(xdg.path()).unwrap().count(), 0);

    // --data-dir overrides `ephemeral = true`, and creates the directory.
    let server = start_with_env(
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.path_str(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("XDG_DATA_HOME", xdg.path())],
    );
    assert!(data.join("beckon.redb").is_file());
    stop(server);
}

#[test]
fn store_errors_exit_with_code_1() {
    let xdg = TempDir::new("xdg");
    let data = TempDir::new("data");
    let run =
        |args: &[&str], env: &[(&str, &std::path::Path)]| run_to_exit(command_with_env(args, env));

    // The data directory is held by a running server: one server owns one directory.
    let first = start_with_env(
        &["--listen", "127.0.0.1:0", "--data-dir", data.path_str()],
        &[],
    );
    let (code, stdout, stderr) = run(
        &["--listen", "127.0.0.1:0", "--data-dir", data.path_str()],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "never said it was listening: {stdout}");
    assert!(
        stderr.contains("beckon-server: cannot open the store"),
        "{stderr}"
    );
    assert!(stderr.contains(data.path_str()), "{stderr}");
    stop(first);

    // The data directory is a file.
    let file = TempFile::new("not-a-dir", "");
    let (code, _, stderr) = run(
        &["--listen", "127.0.0.1:0", "--data-dir", file.path_str()],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot create the data directory"),
        "{stderr}"
    );

    // No data directory can be found.
    let (code, _, stderr) = run(&["--listen", "127.0.0.1:0"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no standard data directory"), "{stderr}");
    assert!(stderr.contains("--data-dir"), "{stderr}");

    // Asking for both is a usage error.
    let (code, _, stderr) = run(
        &["--data-dir", data.path_str(), "--ephemeral"],
        &[("XDG_DATA_HOME", xdg.path())],
    );
    assert_eq!(code, Some(2), "{stderr}");
    let config = TempFile::new(
        "both.toml",
        "ephemeral = true\ndata_dir = \"/tmp/x\"\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
    );
    let (code, _, stderr) = run(&["--config", config.path_str()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("data_dir"), "{stderr}");
}

// ---- transports ---------------------------------------------------------------------------------

/// Logs in over `url` with the SDK, trusting `tls`, and returns once the login succeeded.
async fn sdk_login(url: &str, tls: &beckon_sdk::ClientTls, account: &str) -> beckon_sdk::Instance {
    let mut config = beckon_sdk::Config::new(url);
    config.tls = tls.clone();
    let sdk = beckon_sdk::Instance::new(config).unwrap();
    let mut events = sdk.events();
    sdk.login("any-app", account, beckon_proto::NO_TOKEN, 0, "");
    let ev = tokio::time::timeout(common::STEP, async {
        loop {
            match events.next().await {
                Some(beckon_sdk::Event::LoginSuccess { .. }) => return Ok(()),
                Some(beckon_sdk::Event::LoginFailed { ecode }) => return Err(ecode),
                Some(_) => {}
                None => return Err(-1),
            }
        }
    })
    .await;
    assert_eq!(ev, Ok(Ok(())), "login over {url}");
    sdk
}

#[tokio::test]
async fn listens_on_every_url_given_with_the_certificate_given() {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = TempFile::new("cert.pem", &ck.cert.pem());
    let key = TempFile::new("key.pem", &ck.signing_key.serialize_pem());
    let urls = [
        "tcp://127.0.0.1:0",
        "tls://127.0.0.1:0",
        "quic://127.0.0.1:0",
        "ws://127.0.0.1:0/ws",
        "wss://127.0.0.1:0/signal",
    ];
    let mut cmd = Command::new(BIN);
    for url in urls {
        cmd.args(["--listen", url]);
    }
    cmd.args(["--tls-cert", cert.path_str(), "--tls-key", key.path_str()])
        .arg("--ephemeral")
        .env("RUST_LOG", "warn");
    let mut server = ServerProcess::spawn_listening(cmd, urls.len());
    for (url, got) in urls.iter().zip(&server.endpoints) {
        let scheme = url.split("://").next().unwrap();
        assert!(got.starts_with(&format!("{scheme}://127.0.0.1:")), "{got}");
        assert!(!got.contains(":0/") && !got.ends_with(":0"), "{got}");
    }
    assert!(server.endpoints[4].ends_with("/signal"));

    // Every listener serves sessions; the secure ones present the given certificate (the SDK
    // trusts exactly that one, and nothing else).
    let tls = beckon_sdk::ClientTls {
        roots: vec![ck.cert.der().clone()],
        ..Default::default()
    };
    let mut sessions = Vec::new();
    for (i, url) in server.endpoints.clone().iter().enumerate() {
        sessions.push(sdk_login(url, &tls, &format!("user{i}")).await);
    }

    // The WebSocket listener answers health checks over plain HTTP.
    let ws: beckon_server::Endpoint = server.endpoints[3].parse().unwrap();
    let mut http = tokio::net::TcpStream::connect(ws.authority())
        .await
        .unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(sessions);
    server.signal("TERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    // A certificate was given, so none was generated.
    assert!(!stderr.contains("self-signed"), "{stderr}");
}

#[tokio::test]
async fn secure_listeners_without_a_certificate_use_a_self_signed_one() {
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", "quic://127.0.0.1:0", "--ephemeral"])
        .env("RUST_LOG", "warn");
    let mut server = ServerProcess::spawn_listening(cmd, 1);
    let url = server.endpoints[0].clone();
    // Refused by default: nothing vouches for a certificate made at start.
    let mut config = beckon_sdk::Config::new(url.as_str());
    config.client.connect_timeout = std::time::Duration::from_secs(2);
    let refused = beckon_sdk::Instance::new(config).unwrap();
    let mut events = refused.events();
    refused.login2("any-app", "alice", beckon_proto::NO_TOKEN, 0, "", 1, 1);
    let ev = tokio::time::timeout(common::STEP * 2, async {
        loop {
            match events.next().await {
                Some(e @ beckon_sdk::Event::LoginSuccess { .. })
                | Some(e @ beckon_sdk::Event::LoginFailed { .. }) => return Some(e),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("an outcome");
    assert!(
        matches!(ev, Some(beckon_sdk::Event::LoginFailed { .. })),
        "{ev:?}"
    );
    // Accepted when the app says so.
    let accept_any = beckon_sdk::ClientTls {
        dangerous_accept_any_cert: true,
        ..Default::default()
    };
    let _ok = sdk_login(&url, &accept_any, "bob").await;
    server.signal("TERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("self-signed"), "{stderr}");
}

#[test]
fn bad_listen_urls_and_tls_files_exit_with_code_2() {
    for (args, why) in [
        (&["--listen", "http://127.0.0.1:0"][..], "scheme"),
        (&["--listen", "tcp://127.0.0.1"][..], "port"),
        (
            &[
                "--listen",
                "tls://127.0.0.1:0",
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
            ][..],
            "/nonexistent/c.pem",
        ),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--ephemeral");
        let (code, stdout, stderr) = run_to_exit(cmd);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    // --tls-cert without --tls-key is a usage error too.
    let mut cmd = Command::new(BIN);
    cmd.args(["--tls-cert", "c.pem", "--ephemeral"]);
    let (code, _, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(2), "{stderr}");
}
