//! The server library over real sockets on 127.0.0.1, in process.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beckon_broker::BrokerStats;
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, client_frame, server_frame};
use beckon_server::{Server, ServerConfig, ServerHandle};
use beckon_token::{Privileges, TokenClaims};
use tokio::io::AsyncWriteExt;

use common::{Client, RawConn, STEP, kick_code};

const APP: &str = "myapp";
const CERT: &str = "5cfd2fd1755d40ecb72977518be15d3b";

fn config() -> ServerConfig {
    // Ephemeral: these tests run in parallel and must not write to disk.
    let mut c = ServerConfig::from_toml_str(&format!(
        "listen = \"127.0.0.1:0\"\nephemeral = true\n\
         [[apps]]\napp_id = \"{APP}\"\ncertificate = \"{CERT}\"\n\
         [[apps]]\napp_id = \"open\"\ncertificate = \"x\"\nallow_no_token = true\n"
    ))
    .expect("valid config");
    c.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
    c
}

/// A server on [`config`], and the address of its TCP listener.
async fn spawn() -> (ServerHandle, SocketAddr) {
    let server = Server::spawn(config()).await.unwrap();
    let addr = server.local_addr();
    (server, addr)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(cert: &str, account: &str, expires_at: u64) -> String {
    beckon_token::mint(
        cert.as_bytes(),
        &TokenClaims {
            app_id: APP.into(),
            account: account.into(),
            issued_at: unix_now().saturating_sub(7200),
            expires_at,
            privileges: Privileges::NONE,
        },
    )
}

fn login_failed_code(frame: server_frame::Kind) -> i32 {
    match frame {
        server_frame::Kind::LoginFailed(f) => f.code,
        other => panic!("expected LoginFailed, got {other:?}"),
    }
}

/// Waits until the broker has seen what the sockets did (its inputs are asynchronous).
async fn wait_for(server: &ServerHandle, what: &str, f: impl Fn(&BrokerStats) -> bool) {
    let seen = tokio::time::timeout(STEP, async {
        while !f(&server.stats().await) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let stats = server.stats().await;
    assert!(seen.is_ok(), "timed out waiting for {what}: {stats:?}");
}

#[tokio::test]
async fn valid_token_logs_in_and_bad_tokens_fail_with_their_codes() {
    let (server, addr) = spawn().await;

    let mut ok = Client::connect(addr).await;
    let reply = ok
        .login_ok(APP, "alice", &token(CERT, "alice", unix_now() + 600))
        .await;
    assert_eq!(reply.uid, beckon_broker::uid_for(APP, "alice"));

    // Wrong certificate: LOGIN_E_TOKENWRONG, then the server closes the connection.
    let mut wrong = Client::connect(addr).await;
    let frame = wrong
        .login(
            APP,
            "bob",
            &token("not the certificate", "bob", unix_now() + 600),
        )
        .await;
    assert_eq!(login_failed_code(frame), 206);
    assert_eq!(ErrorCode::LoginTokenWrong.code(), 206);
    assert!(wrong.until_closed().await.is_empty());

    // Expired: LOGIN_E_TOKENEXPIRED.
    let mut expired = Client::connect(addr).await;
    let frame = expired
        .login(APP, "carol", &token(CERT, "carol", unix_now() - 60))
        .await;
    assert_eq!(login_failed_code(frame), 204);
    assert!(expired.until_closed().await.is_empty());

    // `_no_need_token` for an app that does not allow it, and a token for another account.
    let mut no_token = Client::connect(addr).await;
    let frame = no_token.login(APP, "dave", beckon_proto::NO_TOKEN).await;
    assert_eq!(login_failed_code(frame), 206);
    let mut other_account = Client::connect(addr).await;
    let frame = other_account
        .login(APP, "erin", &token(CERT, "alice", unix_now() + 600))
        .await;
    assert_eq!(login_failed_code(frame), 206);

    // The good session is untouched by all of this.
    ok.ping_pong(1).await;
    wait_for(&server, "four login failures", |s| s.login_failures == 4).await;
    let stats = server.stats().await;
    assert_eq!((stats.logins, stats.sessions), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let (server, addr) = spawn().await;

    let mut good = Client::connect(addr).await;
    good.login_ok("open", "alice", beckon_proto::NO_TOKEN).await;

    let mut bad = RawConn::connect(addr).await;
    let mut login = RawConn::connect(addr).await;
    // A logged-in connection, too, so its session must end.
    let payload = beckon_proto::codec::encode_client(client_frame::Kind::Login(pb::Login {
        app_id: "open".into(),
        account: "mallory".into(),
        token: beckon_proto::NO_TOKEN.into(),
        ..Default::default()
    }));
    let mut framed = (payload.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&payload);
    login.write(&framed).await;
    wait_for(&server, "mallory's session", |s| s.sessions == 2).await;
    login.write(&[0x7f, 0xff, 0xff, 0xff]).await;
    bad.write(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await;

    for conn in [&mut bad, &mut login] {
        let frames = conn.until_closed().await;
        // Mallory's LoginOk comes first on her connection.
        let last = frames.last().expect("a Kick before the close");
        assert_eq!(kick_code(last), ErrorCode::LogoutPacket.code());
    }
    // Mallory's session waits in grace for a resume; only her connection is gone.
    wait_for(&server, "the oversized connections to go", |s| {
        s.connections == 1
    })
    .await;

    good.ping_pong(7).await;
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_closes_the_connection_and_the_server_keeps_serving() {
    let (server, addr) = spawn().await;

    // Text: its first four bytes read as a huge length prefix.
    let mut http = RawConn::connect(addr).await;
    http.write(b"GET / HTTP/1.1\r\nHost: beckon\r\n\r\n").await;
    let frames = http.until_closed().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(kick_code(&frames[0]), ErrorCode::LogoutPacket.code());

    // A well-framed payload that is not a protocol frame.
    let mut junk = RawConn::connect(addr).await;
    junk.write(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).await;
    let frames = junk.until_closed().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(kick_code(&frames[0]), ErrorCode::LogoutPacket.code());

    // A frame cut off by the end of the stream.
    let mut cut = RawConn::connect(addr).await;
    cut.write(&[0, 0, 0, 100, 1, 2, 3]).await;
    cut.write.shutdown().await.unwrap();
    assert!(cut.until_closed().await.is_empty());

    // A request before login.
    let mut early = Client::connect(addr).await;
    early
        .send(client_frame::Kind::Request(pb::Request {
            id: 1,
            op: Some(pb::request::Op::Logout(pb::Logout {})),
        }))
        .await;
    let frames = early.until_closed().await;
    assert_eq!(kick_code(&frames[0]), ErrorCode::LogoutPacket.code());

    wait_for(&server, "every bad connection to go", |s| {
        s.connections == 0
    })
    .await;
    let mut fine = Client::connect(addr).await;
    fine.login_ok("open", "alice", beckon_proto::NO_TOKEN).await;
    fine.ping_pong(3).await;
    server.shutdown().await;
}

#[tokio::test]
async fn development_server_spawns_serves_and_shuts_down() {
    let mut config = ServerConfig::development();
    config.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
    let server = Server::spawn(config).await.unwrap();
    assert_eq!(server.local_addr().ip().to_string(), "127.0.0.1");
    assert_ne!(server.local_addr().port(), 0);

    // Any App ID, no token.
    let mut client = Client::connect(server.local_addr()).await;
    client
        .login_ok("any-app-at-all", "alice", beckon_proto::NO_TOKEN)
        .await;
    client.ping_pong(42).await;
    let stats = server.stats().await;
    assert_eq!((stats.connections, stats.sessions, stats.logins), (1, 1, 1));

    // Shutting down tells the client to come back later, then closes the connection.
    let shutdown = tokio::spawn(server.shutdown());
    let frames = client.until_closed().await;
    assert!(
        matches!(frames.as_slice(), [server_frame::Kind::GoAway(g)] if g.reconnect_after_ms > 0),
        "{frames:?}"
    );
    drop(client);
    tokio::time::timeout(STEP, shutdown)
        .await
        .expect("shutdown finishes in time")
        .unwrap();
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let mut config = ServerConfig::development();
    config.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
    let server = Server::spawn(config).await.unwrap();
    let addr = server.local_addr();
    drop(server);
    let deadline = tokio::time::Instant::now() + STEP;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A peer that stops reading is disconnected once its outbound queue exceeds the budget, and
/// nobody else notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected() {
    let mut config = config();
    config.outbound_budget_bytes = 256 * 1024;
    // Only the driver's byte budget may trigger here, not the broker's unacked bounds.
    config.broker.max_unacked_bytes = 1 << 30;
    config.broker.max_unacked_events = 1 << 20;
    let server = Server::spawn(config).await.unwrap();
    let addr = server.local_addr();

    // A small receive buffer so the kernel absorbs little of the backlog.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut slow = Client::from_framed(beckon_transport::frame_tcp(stream, 1 << 20).unwrap());
    slow.login_ok("open", "slow", beckon_proto::NO_TOKEN).await;

    let mut sender = Client::connect(addr).await;
    sender
        .login_ok("open", "sender", beckon_proto::NO_TOKEN)
        .await;
    // The sender keeps reading its replies, so it is not slow itself.
    let Client {
        mut reader,
        mut writer,
    } = sender;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return reader,
                f = reader.read_frame() => { f.unwrap().unwrap(); }
            }
        }
    });

    let msg = "x".repeat(8000);
    let mut disconnected = false;
    for id in 1..=6000u64 {
        let req = client_frame::Kind::Request(pb::Request {
            id,
            op: Some(pb::request::Op::SendInstantMessage(
                pb::SendInstantMessage {
                    account: "slow".into(),
                    msg: msg.clone(),
                    msg_id: String::new(),
                },
            )),
        });
        writer
            .write_frame(&beckon_proto::codec::encode_client(req), b"")
            .await
            .unwrap();
        if id % 50 == 0 {
            writer.flush().await.unwrap();
            if server.stats().await.slow_consumer_disconnects > 0 {
                disconnected = true;
                break;
            }
        }
    }
    assert!(disconnected, "the slow consumer was never disconnected");
    // Its session waits in grace like any lost connection; the connection is gone.
    wait_for(&server, "the slow connection to go", |s| s.connections == 1).await;

    // The slow peer finds its connection closed once it reads what was already sent.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = slow.reader.read_frame().await {}
    })
    .await;
    assert!(closed.is_ok(), "the slow connection was not closed");

    // The sender's connection still works.
    let _ = stop.send(());
    let reader = drain.await.unwrap();
    let mut sender = Client { reader, writer };
    sender
        .send(client_frame::Kind::Ping(pb::Ping { nonce: 9 }))
        .await;
    // Replies to the last messages may still be ahead of the pong.
    loop {
        match sender.recv().await.expect("the sender is still connected") {
            server_frame::Kind::Pong(p) => {
                assert_eq!(p.nonce, 9);
                break;
            }
            server_frame::Kind::Event(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    server.shutdown().await;
}

/// Admission control per source address over real sockets (SPEC §10): one address that logs
/// in faster than its rate is refused with `GENERAL_E_OVERLOAD` and a retry-after, before its
/// token is looked at, while a session logged in before carries on; after the wait it may log
/// in again. (Loopback has a bucket of its own only with `login_limit_loopback`.)
#[tokio::test]
async fn one_address_over_its_login_rate_is_told_to_wait() {
    let mut c = ServerConfig::from_toml_str(&format!(
        "ephemeral = true\nlogin_rate_per_address = 2\nlogin_burst_per_address = 3\n\
         login_limit_loopback = true\n\
         [[apps]]\napp_id = \"{APP}\"\ncertificate = \"{CERT}\"\n"
    ))
    .expect("valid config");
    c.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
    let server = Server::spawn(c).await.unwrap();
    let addr = server.local_addr();
    let mut bystander = Client::connect(addr).await;
    let good = token(CERT, "bystander", unix_now() + 3600);
    bystander.login_ok(APP, "bystander", &good).await;

    let mut answers = Vec::new();
    for _ in 0..6 {
        let mut flood = Client::connect(addr).await;
        answers.push(flood.login(APP, "mallory", "bk1.forged").await);
    }
    let codes: Vec<i32> = answers
        .iter()
        .map(|a| login_failed_code(a.clone()))
        .collect();
    // The burst was 3, the bystander took one: two more were checked (and failed), the rest
    // wait.
    assert_eq!(codes[..2], [206, 206], "{codes:?}");
    assert!(codes[2..].iter().all(|c| *c == 1007), "{codes:?}");
    let server_frame::Kind::LoginFailed(refused) = &answers[5] else {
        unreachable!()
    };
    assert!(refused.retry_after_ms > 0 && refused.message.contains("address"));
    bystander.ping_pong(1).await;

    tokio::time::sleep(Duration::from_millis(refused.retry_after_ms.into())).await;
    let mut later = Client::connect(addr).await;
    let alice = token(CERT, "alice", unix_now() + 3600);
    later.login_ok(APP, "alice", &alice).await;
    bystander.ping_pong(2).await;
    assert!(server.stats().await.logins_refused >= 4);
    server.shutdown().await;
}
