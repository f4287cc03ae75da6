//! Transports side by side: sessions on different schemes of one server message each other and
//! share channels, and bad input on any transport ends only the connection it came on.
//!
//! These tests choose their schemes themselves, so they run in the `tcp` pass of the suite
//! only (`BECKON_TEST_TRANSPORT` unset or `tcp`); the other passes skip them.

use std::sync::Arc;
use std::time::Duration;

use beckon_proto::ErrorCode;
use beckon_proto::codec::decode_server;
use beckon_proto::pb::server_frame;
use beckon_sdk::Event;
use beckon_tests::{Proxy, SCHEMES, TIMEOUT, TestServer, User, scheme, test_client_tls, test_tls};
use beckon_transport::{Endpoint, Scheme};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Whether this pass of the suite runs these tests (see the module documentation).
fn runs_here() -> bool {
    if scheme() == Scheme::Tcp {
        true
    } else {
        eprintln!("skipped: the tcp pass of the suite runs the cross-transport tests");
        false
    }
}

async fn logged_in_over(server: &TestServer, scheme: Scheme, account: &str) -> User {
    let mut user = User::new(&server.url_of(scheme), account);
    user.login(server).await;
    user
}

async fn expect_sent(user: &mut User, id: String) {
    user.expect_eq(
        |e| {
            matches!(
                e,
                Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
            )
        },
        Event::MessageSendSuccess { message_id: id },
    )
    .await;
}

/// The next channel message from `from` (members also hear their own).
async fn expect_channel_message(user: &mut User, channel: &str, from: &str, msg: &str) {
    let ev = user
        .expect(|e| matches!(e, Event::MessageChannelReceive { account, .. } if account == from))
        .await;
    assert_eq!(
        ev,
        Event::MessageChannelReceive {
            channel: channel.into(),
            account: from.into(),
            uid: 0,
            msg: msg.into()
        },
        "{} over its transport",
        user.account
    );
}

#[tokio::test]
async fn quic_and_websocket_sessions_message_each_other_and_share_a_channel() {
    if !runs_here() {
        return;
    }
    let server = TestServer::start().await;
    let mut quic = logged_in_over(&server, Scheme::Quic, "on-quic").await;
    let mut ws = logged_in_over(&server, Scheme::Ws, "on-ws").await;
    assert_eq!(quic.status_of("on-ws").await, "1");
    assert_eq!(ws.status_of("on-quic").await, "1");

    let id = quic
        .sdk
        .message_instant_send("on-ws", 0, "hello from quic", "");
    expect_sent(&mut quic, id).await;
    ws.expect_message("on-quic", "hello from quic").await;
    let id = ws
        .sdk
        .message_instant_send("on-quic", 0, "hello from ws", "");
    expect_sent(&mut ws, id).await;
    quic.expect_message("on-ws", "hello from ws").await;

    assert_eq!(quic.join("lobby").await, ["on-quic"]);
    assert_eq!(ws.join("lobby").await, ["on-quic", "on-ws"]);
    let ev = quic
        .expect(|e| matches!(e, Event::ChannelUserJoined { .. }))
        .await;
    assert!(
        matches!(&ev, Event::ChannelUserJoined { account, .. } if account == "on-ws"),
        "{ev:?}"
    );
    quic.sdk.message_channel_send("lobby", "over quic", "");
    expect_channel_message(&mut ws, "lobby", "on-quic", "over quic").await;
    ws.sdk.message_channel_send("lobby", "over ws", "");
    expect_channel_message(&mut quic, "lobby", "on-ws", "over ws").await;
}

#[tokio::test]
async fn one_session_per_scheme_all_in_one_channel() {
    if !runs_here() {
        return;
    }
    let server = TestServer::start().await;
    let mut users = Vec::new();
    for s in SCHEMES {
        users.push(logged_in_over(&server, s, &format!("via-{s}")).await);
    }
    for u in &mut users {
        u.join("mesh").await;
    }
    // Every member hears every other member's channel message, whatever either's transport.
    for i in 0..users.len() {
        let from = users[i].account.clone();
        users[i]
            .sdk
            .message_channel_send("mesh", &format!("from {from}"), "");
        for (j, u) in users.iter_mut().enumerate() {
            if j != i {
                expect_channel_message(u, "mesh", &from, &format!("from {from}")).await;
            }
        }
    }
    // And a ring of p2p messages crosses every pair of neighbouring transports.
    for i in 0..users.len() {
        let to = users[(i + 1) % users.len()].account.clone();
        let from = users[i].account.clone();
        let id = users[i].sdk.message_instant_send(&to, 0, "ring", "");
        expect_sent(&mut users[i], id).await;
        let next = (i + 1) % users.len();
        users[next].expect_message(&from, "ring").await;
    }
}

#[tokio::test]
async fn a_reconnect_moves_to_another_transport_and_resumes_the_session() {
    if beckon_tests::skip_in_cluster(
        "a session resumes only on the node that holds it; in cluster mode the alternate URL is \
         another node's",
    ) {
        return;
    }
    if !runs_here() {
        return;
    }
    let server = TestServer::start().await;
    let proxy = Proxy::start_on(&server, Scheme::Quic).await;
    let mut config = beckon_tests::config(proxy.url());
    config.alternates = vec![server.url_of(Scheme::Ws)];
    config.client.first_attempt_jitter = Duration::from_millis(20);
    config.client.initial_backoff = Duration::from_millis(20);
    config.client.max_backoff = Duration::from_millis(100);
    config.client.connect_timeout = Duration::from_secs(2);
    let mut alice = User::with_config(config, "alice");
    alice.login(&server).await;
    alice.join("room").await;
    let mut bob = logged_in_over(&server, Scheme::Tcp, "bob").await;
    bob.join("room").await;

    // The QUIC path goes away for good; the SDK moves to WebSocket and resumes.
    proxy.cut();
    alice.expect_reconnected().await;
    let id = bob.sdk.message_instant_send("alice", 0, "over ws now", "");
    expect_sent(&mut bob, id).await;
    alice.expect_message("bob", "over ws now").await;
    bob.sdk.message_channel_send("room", "still a member", "");
    expect_channel_message(&mut alice, "room", "bob", "still a member").await;
    assert!(
        !bob.calls.calls().iter().any(|c| c.contains("leaved")),
        "bob saw alice leave: {:?}",
        bob.calls.calls()
    );
    assert!(server.stats().await.resumes >= 1);
}

/// Reads until the server closes the connection; panics if it stays open for [`TIMEOUT`].
async fn closed_by_server(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(TIMEOUT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{what}: the server kept the connection open"
    );
}

fn authority(server: &TestServer, scheme: Scheme) -> String {
    let e: Endpoint = server.url_of(scheme).parse().unwrap();
    e.authority()
}

/// A plain TCP connection to `server`'s `scheme` listener that has sent `bytes`.
async fn raw(server: &TestServer, scheme: Scheme, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(authority(server, scheme)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// A raw QUIC connection to `server` speaking the session protocol's ALPN, trusting the test
/// certificate, for what the transport crate's client would never do.
async fn raw_quic(server: &TestServer) -> (quinn::Endpoint, quinn::Connection) {
    let mut roots = rustls::RootCertStore::empty();
    for c in &test_tls().cert_chain {
        roots.add(c.clone()).unwrap();
    }
    let mut crypto = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    crypto.alpn_protocols = vec![b"beckon/1".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let addr = authority(server, Scheme::Quic).parse().unwrap();
    let connection = endpoint
        .connect(addr, "127.0.0.1")
        .unwrap()
        .await
        .expect("a QUIC handshake with the test server");
    (endpoint, connection)
}

#[tokio::test]
async fn bad_input_on_every_transport_ends_only_its_own_connection() {
    if !runs_here() {
        return;
    }
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(300)).await;
    let mut alice = logged_in_over(&server, Scheme::Quic, "alice").await;
    let mut bob = logged_in_over(&server, Scheme::Wss, "bob").await;

    // TLS: a client that connects and never starts the handshake, and one that sends garbage
    // instead of a ClientHello.
    let mut silent = raw(&server, Scheme::Tls, b"").await;
    closed_by_server(&mut silent, "a TLS handshake that never starts").await;
    let mut garbage = raw(&server, Scheme::Tls, b"\x00\x01garbage\r\n").await;
    closed_by_server(&mut garbage, "garbage instead of a ClientHello").await;

    // WebSocket: an HTTP request that never ends, and garbage instead of HTTP.
    let mut half = raw(&server, Scheme::Ws, b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
    closed_by_server(&mut half, "an HTTP upgrade that never finishes").await;
    let mut junk = raw(&server, Scheme::Ws, &[0xff; 9000]).await;
    closed_by_server(&mut junk, "9,000 bytes of garbage instead of HTTP").await;

    // TCP: garbage where a length prefix should be is an oversized frame: LOGOUT_E_PACKET.
    let mut tcp = raw(&server, Scheme::Tcp, b"GET / HTTP/1.1\r\n\r\n").await;
    closed_by_server(&mut tcp, "garbage on the TCP listener").await;

    // Over TLS, WebSocket and QUIC: an oversized frame gets LOGOUT_E_PACKET and the close.
    for s in [Scheme::Tls, Scheme::Ws, Scheme::Wss, Scheme::Quic] {
        let endpoint: Endpoint = server.url_of(s).parse().unwrap();
        let (mut rx, mut tx) =
            beckon_transport::connect(&endpoint, &test_client_tls(), 1024 * 1024)
                .await
                .unwrap();
        tx.write_frame(&vec![7u8; 100 * 1024], b"").await.unwrap();
        tx.flush().await.unwrap();
        let frame = tokio::time::timeout(TIMEOUT, rx.read_frame())
            .await
            .unwrap_or_else(|_| panic!("{s}: no answer to an oversized frame"))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .unwrap_or_else(|| panic!("{s}: closed without a reason"));
        match decode_server(&frame).unwrap() {
            server_frame::Kind::Kick(k) => {
                assert_eq!(k.code, ErrorCode::LogoutPacket.code(), "{s}: {k:?}");
            }
            other => panic!("{s}: expected a kick, got {other:?}"),
        }
        let end = tokio::time::timeout(TIMEOUT, rx.read_frame()).await;
        assert!(
            matches!(end, Ok(Ok(None) | Err(_))),
            "{s}: still open after the kick"
        );
    }

    // WebSocket: a text message ends the connection.
    let ws_addr = authority(&server, Scheme::Ws);
    let stream = TcpStream::connect(&ws_addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{ws_addr}/ws"), stream)
        .await
        .unwrap();
    ws.send(Message::Text("hello".into())).await.unwrap();
    let ended = tokio::time::timeout(TIMEOUT, async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a text message left the WebSocket open");

    // QUIC: a peer gets one bidirectional stream (its session) and no unidirectional ones; a
    // thousand more stream openings are never granted, so they cost the server nothing.
    let (quic_endpoint, quic) = raw_quic(&server).await;
    let (mut first, _first_rx) = quic.open_bi().await.unwrap();
    // Half a length prefix: the stream exists, and the server waits for the rest.
    first.write_all(&[0, 0]).await.unwrap();
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = opened.clone();
    let attempts = tokio::time::timeout(Duration::from_millis(500), async {
        for _ in 0..1000 {
            if quic.open_bi().await.is_ok() {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    })
    .await;
    let opened = opened.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(opened, 0, "the server granted more streams ({attempts:?})");
    let uni = tokio::time::timeout(Duration::from_millis(300), quic.open_uni()).await;
    assert!(
        !matches!(uni, Ok(Ok(_))),
        "the server granted a unidirectional stream"
    );
    quic.close(0u32.into(), b"done");
    drop(quic_endpoint);

    // Through all of that, the two real sessions never noticed.
    let id = alice.sdk.message_instant_send("bob", 0, "still fine", "");
    expect_sent(&mut alice, id).await;
    bob.expect_message("alice", "still fine").await;
    let id = bob.sdk.message_instant_send("alice", 0, "here too", "");
    expect_sent(&mut bob, id).await;
    alice.expect_message("bob", "here too").await;
    for u in [&mut alice, &mut bob] {
        let calls = u.calls.calls();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("on_reconnecting") || c.starts_with("on_logout")),
            "{} was disturbed: {calls:?}",
            u.account
        );
    }
    let stats = server.stats().await;
    assert_eq!(stats.sessions, 2, "{stats:?}");
}
