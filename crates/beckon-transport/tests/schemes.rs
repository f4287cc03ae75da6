//! Every scheme over loopback: frames both ways, certificate checks, bad input.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use beckon_transport::{
    ClientTls, Endpoint, FrameRx, FrameTx, Listener, ListenerConfig, Scheme, ServerTls, connect,
};

const MAX: usize = 64 * 1024;

async fn listener(scheme: Scheme) -> (Listener, ServerTls) {
    let tls = ServerTls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let endpoint: Endpoint = format!("{scheme}://127.0.0.1:0").parse().unwrap();
    let l = Listener::bind(ListenerConfig {
        endpoint,
        tls: Some(tls.clone()),
        max_frame: MAX,
    })
    .await
    .unwrap();
    (l, tls)
}

async fn pair(
    scheme: Scheme,
    client_tls: impl FnOnce(&ServerTls) -> ClientTls,
) -> io::Result<((FrameRx, FrameTx), (FrameRx, FrameTx))> {
    let (l, tls) = listener(scheme).await;
    let endpoint = l.endpoint().clone();
    let server = tokio::spawn(async move {
        let incoming = l.accept().await?;
        let conn = incoming.establish().await?;
        // Keep the listener alive as long as the test needs the connection.
        std::mem::forget(l);
        conn.ok_or_else(|| io::Error::other("not a session"))
    });
    let (crx, mut ctx) = connect(&endpoint, &client_tls(&tls), MAX).await?;
    // The client speaks first (as the session protocol's login does): a QUIC stream is only
    // announced to the server once data flows on it.
    ctx.write_frame(b"hello", b"").await?;
    ctx.flush().await?;
    let (mut srx, stx) = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)??;
    assert_eq!(srx.read_frame().await?.as_deref(), Some(&b"hello"[..]));
    Ok(((crx, ctx), (srx, stx)))
}

fn trust(tls: &ServerTls) -> ClientTls {
    ClientTls {
        roots: tls.cert_chain.clone(),
        dangerous_accept_any_cert: false,
    }
}

#[tokio::test]
async fn frames_cross_every_scheme_both_ways() {
    for scheme in Scheme::ALL {
        let ((mut crx, mut ctx), (mut srx, mut stx)) = pair(scheme, trust)
            .await
            .unwrap_or_else(|e| panic!("{scheme}: {e}"));
        for i in 0..100u32 {
            ctx.write_frame(&i.to_be_bytes(), b"-client").await.unwrap();
        }
        ctx.flush().await.unwrap();
        for i in 0..100u32 {
            let f = srx.read_frame().await.unwrap().unwrap();
            assert_eq!(&f[..4], &i.to_be_bytes(), "{scheme}");
            assert_eq!(&f[4..], b"-client");
        }
        stx.write_frame(b"pong", &[7u8; 5000]).await.unwrap();
        stx.flush().await.unwrap();
        let f = crx.read_frame().await.unwrap().unwrap();
        assert_eq!(f.len(), 5004, "{scheme}");
        ctx.shutdown().await.unwrap();
        assert!(
            matches!(srx.read_frame().await, Ok(None) | Err(_)),
            "{scheme}: the close is seen"
        );
    }
}

#[tokio::test]
async fn secure_schemes_check_the_certificate() {
    for scheme in [Scheme::Tls, Scheme::Quic, Scheme::Wss] {
        let untrusted = pair(scheme, |_| ClientTls::default()).await;
        assert!(
            untrusted.is_err(),
            "{scheme}: an unknown certificate must be refused"
        );
        let dangerous = pair(scheme, |_| ClientTls {
            dangerous_accept_any_cert: true,
            ..ClientTls::default()
        })
        .await;
        assert!(dangerous.is_ok(), "{scheme}: accept-any connects");
    }
}

#[tokio::test]
async fn oversized_frames_are_errors_on_every_scheme() {
    for scheme in Scheme::ALL {
        let ((_crx, mut ctx), (mut srx, _stx)) = pair(scheme, trust).await.unwrap();
        ctx.write_frame(&vec![1u8; MAX + 1], b"").await.unwrap();
        let _ = ctx.flush().await;
        let e = srx.read_frame().await;
        assert!(e.is_err(), "{scheme}: {e:?}");
    }
}

#[tokio::test]
async fn healthz_and_wrong_paths_on_the_websocket_listener() {
    let (l, _) = listener(Scheme::Ws).await;
    let addr = l.local_addr();
    let server = tokio::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..2 {
            let incoming = l.accept().await.unwrap();
            answers.push(incoming.establish().await.unwrap().is_none());
        }
        answers
    });
    for (path, want) in [("/healthz", "200 OK"), ("/nope", "404 Not Found")] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with(&format!("HTTP/1.1 {want}")), "{out}");
    }
    assert_eq!(server.await.unwrap(), [true, true]);
}

#[tokio::test]
async fn websocket_text_messages_are_refused() {
    use futures_util::SinkExt;
    let (l, _) = listener(Scheme::Ws).await;
    let url = format!("ws://{}/ws", l.local_addr());
    let server = tokio::spawn(async move {
        let (mut rx, _tx) = l
            .accept()
            .await
            .unwrap()
            .establish()
            .await
            .unwrap()
            .unwrap();
        rx.read_frame().await
    });
    let s = tokio::net::TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches("/ws"))
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url, s).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        "hello".into(),
    ))
    .await
    .unwrap();
    let e = server.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_times_out_in_its_own_task() {
    let (l, _) = listener(Scheme::Tls).await;
    let addr = l.local_addr();
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap(); // sends nothing
    let incoming = l.accept().await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(200), incoming.establish()).await;
    assert!(
        r.is_err(),
        "the handshake waits; the caller's timeout ends it"
    );
}
