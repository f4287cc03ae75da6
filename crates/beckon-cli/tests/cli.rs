//! `beckon` as people and scripts use it: two `beckon chat` processes driven through their
//! stdin chat, meet in a channel and place a call; `beckon admin` lists and kicks; `beckon
//! ping` measures every transport; `beckon token` mints; every `--help` exits 0.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use beckon_server::{Server, ServerConfig, ServerHandle};

const BIN: &str = env!("CARGO_BIN_EXE_beckon");
const WAIT: Duration = Duration::from_secs(15);

/// A development server on every transport, with an admin listener.
async fn server() -> ServerHandle {
    let config = ServerConfig {
        listen: beckon_server::parse_listen(&[
            "tcp://127.0.0.1:0".into(),
            "quic://127.0.0.1:0".into(),
            "ws://127.0.0.1:0/ws".into(),
        ])
        .unwrap(),
        admin: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::development()
    };
    Server::spawn(config).await.expect("a server on 127.0.0.1")
}

/// A running `beckon chat`: its stdin, and its stdout lines as they come.
struct Chat {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Chat {
    fn start(url: &str, account: &'static str) -> Self {
        let mut child = Command::new(BIN)
            .args(["chat", "--url", url, "--app", "demo", "--account", account])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start beckon chat");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            name: account,
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a line equal to `want`; panics with everything seen after [`WAIT`].
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == want;
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("{}: no line {want:?}; saw {:#?}", self.name, self.seen),
            }
        }
    }

    /// Waits for a line starting with `prefix`; returns it.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("{}: no line {prefix:?}…; saw {:#?}", self.name, self.seen),
            }
        }
    }

    /// Closes stdin and waits for the exit code.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.try_iter());
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `beckon args…` to its end; returns (exit code, stdout, stderr).
fn beckon(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run beckon");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terminals_chat_meet_in_a_channel_and_call() {
    let server = server().await;
    let url = server.endpoints()[0].to_string();
    let admin_url = format!("http://{}", server.admin_addr().unwrap());
    let chat = tokio::task::spawn_blocking(move || {
        let mut alice = Chat::start(&url, "alice");
        let mut bob = Chat::start(&url, "bob");
        alice.expect_prefix("* logged in to demo as alice (uid ");
        bob.expect_prefix("* logged in to demo as bob (uid ");

        alice.send("hello?");
        alice.expect("* no one to send to: /to NAME or /join CHANNEL first");
        alice.send("/to bob");
        alice.expect("* talking to bob");
        alice.send("hello bob");
        bob.expect("<alice> hello bob");
        bob.send("/to alice");
        bob.send("hi alice");
        alice.expect("<bob> hi alice");

        bob.send("/join room");
        bob.expect("* joined room: bob");
        alice.send("/join room");
        alice.expect("* joined room: bob, alice");
        bob.expect("* alice joined room");
        alice.send("hi room");
        bob.expect("[room] <alice> hi room");
        alice.expect("[room] <alice> hi room");
        alice.send("/members");
        alice.expect("* members of room: alice, bob");

        alice.send("/attr color blue");
        alice.send("/attrs");
        alice.expect(r#"* attributes of alice: {"color":"blue"}"#);
        bob.send("/status alice");
        bob.expect("* alice is online");

        alice.send("/call bob");
        alice.expect("* calling bob on call-alice-bob");
        bob.expect("* call from alice on call-alice-bob: /accept or /refuse");
        alice.expect("* bob is ringing");
        bob.send("/accept");
        bob.expect("* in a call with alice on call-alice-bob");
        alice.expect("* bob accepted the call on call-alice-bob");
        alice.send("/end");
        bob.expect("* alice ended the call on call-alice-bob");
        bob.send("/end");
        bob.expect("* not in a call");

        bob.send("/leave");
        bob.expect("* left room (LEAVECHANNEL_E_BYUSER (602))");
        alice.expect("* bob left room");
        alice.send("/nonsense");
        alice.expect("* unknown command or missing argument: /nonsense; /help");
        (alice, bob)
    })
    .await
    .unwrap();
    let (alice, mut bob) = chat;

    // The admin command line sees both and kicks bob, whose terminal says so and exits 1.
    let (code, token, err) = beckon(&[
        "token",
        "--app-id",
        "demo",
        "--certificate",
        "any",
        "--account",
        "ops",
        "--server",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let admin = |args: &[&str]| {
        let mut all = vec![
            "admin",
            "--url",
            &admin_url,
            "--app",
            "demo",
            "--token",
            token.trim(),
        ];
        all.extend_from_slice(args);
        beckon(&all)
    };
    let (code, out, err) = admin(&["accounts"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        listed["accounts"],
        serde_json::json!(["alice", "bob"]),
        "{out}"
    );
    let (code, out, err) = admin(&["broadcast", "room", "maintenance at noon"]);
    assert_eq!(code, Some(0), "{out} {err}");
    let (code, _, err) = admin(&["kick", "bob"]);
    assert_eq!(code, Some(0), "{err}");
    let bob = tokio::task::spawn_blocking(move || {
        bob.expect("* logged out (LOGOUT_E_KICKED (103))");
        bob
    })
    .await
    .unwrap();
    let (code, _) = bob.finish();
    assert_eq!(code, Some(1));
    let (code, _, err) = admin(&["kick", "bob"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("LOGOUT_E_ALREADY_LOGOUT (108)"), "{err}");
    let (code, _, err) = beckon(&["admin", "--url", &admin_url, "--app", "demo", "accounts"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("401") && err.contains("(206)"), "{err}");
    let (code, out, _) = admin(&["metrics"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("beckon_kicks_total{by=\"admin\"} 1"), "{out}");

    // The end of input logs alice out cleanly.
    let (code, seen) = tokio::task::spawn_blocking(move || alice.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{seen:#?}");
    assert!(
        seen.contains(&"[room] <ops> maintenance at noon".to_owned()),
        "{seen:#?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("* logged out (LOGOUT_E_USER (101))")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_measures_every_transport_and_fails_clearly() {
    let server = server().await;
    let urls: Vec<String> = server.endpoints().iter().map(ToString::to_string).collect();
    let (code, out, err) = tokio::task::spawn_blocking({
        let urls = urls.clone();
        move || {
            let mut args = vec!["ping", "--insecure", "--count", "3"];
            args.extend(urls.iter().map(String::as_str));
            beckon(&args)
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out} {err}");
    for url in &urls {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{url}: login ")) && l.contains("(3 queries)")),
            "{url}: {out}"
        );
    }
    // A refused login is a failure with the code's name.
    let mut config = ServerConfig::development();
    let mut apps = beckon_broker::Apps::default();
    apps.insert(beckon_broker::AppConfig::new("prod", b"cert".to_vec()));
    config.broker.apps = apps;
    config.listen = beckon_server::parse_listen(&["tcp://127.0.0.1:0".into()]).unwrap();
    let strict = Server::spawn(config).await.unwrap();
    let strict_url = strict.endpoints()[0].to_string();
    let (code, out, _) =
        tokio::task::spawn_blocking(move || beckon(&["ping", "--app", "prod", &strict_url]))
            .await
            .unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED: login failed: LOGIN_E_TOKENWRONG (206)"),
        "{out}"
    );
    strict.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_says_when_it_reconnects() {
    let config = |listen: &str| ServerConfig {
        listen: beckon_server::parse_listen(&[listen.to_owned()]).unwrap(),
        ..ServerConfig::development()
    };
    let first = Server::spawn(config("tcp://127.0.0.1:0")).await.unwrap();
    let url = first.endpoints()[0].to_string();
    let mut alice = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut alice = Chat::start(&url, "alice");
            alice.expect_prefix("* logged in to demo as alice");
            alice
        })
        .await
        .unwrap()
    };
    // A restart: the client is told to come back, finds the new server on the same address.
    first.shutdown().await;
    let second = Server::spawn(config(&url)).await.unwrap();
    alice = tokio::task::spawn_blocking(move || {
        alice.expect_prefix("* connection lost; reconnecting (attempt ");
        alice.expect("* reconnected");
        alice.send("/status alice");
        alice.expect("* alice is online");
        alice
    })
    .await
    .unwrap();
    let (code, seen) = tokio::task::spawn_blocking(move || alice.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{seen:#?}");
    second.shutdown().await;
}

#[test]
fn token_mints_like_the_server_and_refuses_the_same() {
    let (code, out, err) = beckon(&[
        "token",
        "--app-id",
        "app",
        "--certificate",
        "cert",
        "--account",
        "alice",
        "--expire-in",
        "60",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    beckon_token::verify(b"cert", out.trim(), "app", "alice", now).expect("a valid token");
    let (code, _, err) = beckon(&[
        "token",
        "--app-id",
        "app",
        "--certificate",
        "cert",
        "--account",
        "has space",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("account"), "{err}");
}

#[test]
fn every_help_exits_0() {
    let commands: &[&[&str]] = &[
        &["--help"],
        &["help"],
        &["chat", "--help"],
        &["admin", "--help"],
        &["admin", "kick", "--help"],
        &["admin", "accounts", "--help"],
        &["ping", "--help"],
        &["token", "--help"],
        &["bench", "--help"],
        &["--version"],
    ];
    for args in commands {
        let (code, out, err) = beckon(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
    }
    let (code, _, _) = beckon(&["chat"]);
    assert_eq!(code, Some(2), "a missing --account is a usage error");
}
