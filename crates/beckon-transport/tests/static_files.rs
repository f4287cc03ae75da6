//! A WebSocket listener's static files: what a browser gets over plain HTTP before the upgrade,
//! and that nothing outside the table is reachable.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use beckon_transport::{Endpoint, Listener, ListenerConfig, StaticFile, StaticFiles};

const PAGE: &str = "<!doctype html><title>demo</title>";
const SCRIPT: &str = "window.Signal = function () {};";

/// A ws listener serving a page and a script, answering `n` connections (true: a session).
async fn serve(n: usize) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<bool>>) {
    let endpoint: Endpoint = "ws://127.0.0.1:0/ws".parse().unwrap();
    let mut l = Listener::bind(ListenerConfig {
        endpoint,
        tls: None,
        max_frame: 64 * 1024,
    })
    .await
    .unwrap();
    l.serve_static(Arc::new(
        StaticFiles::new()
            .with(
                "/",
                StaticFile::new("text/html; charset=utf-8", PAGE)
                    .header("content-security-policy", "default-src 'self'"),
            )
            .with(
                "/sdk/beckon-sig.js",
                StaticFile::new("text/javascript; charset=utf-8", SCRIPT),
            ),
    ));
    let addr = l.local_addr();
    let task = tokio::spawn(async move {
        let mut sessions = Vec::new();
        for _ in 0..n {
            let incoming = l.accept().await.unwrap();
            sessions.push(matches!(incoming.establish().await, Ok(Some(_))));
        }
        sessions
    });
    (addr, task)
}

async fn request(addr: std::net::SocketAddr, raw: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn files_are_served_with_their_type_cache_policy_and_etag() {
    let (addr, task) = serve(6).await;
    let page = request(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&page, "cache-control"), Some("no-cache"));
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        header(&page, "content-security-policy"),
        Some("default-src 'self'")
    );
    assert!(page.ends_with(PAGE), "{page}");

    let script = request(
        addr,
        "GET /sdk/beckon-sig.js?v=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(
        header(&script, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&script, "content-length"),
        Some(SCRIPT.len().to_string().as_str())
    );
    assert!(script.ends_with(SCRIPT));

    // Revalidation: the same ETag gets a 304 without a body.
    let etag = header(&script, "etag").unwrap().to_owned();
    let again = request(
        addr,
        &format!("GET /sdk/beckon-sig.js HTTP/1.1\r\nIf-None-Match: {etag}\r\n\r\n"),
    )
    .await;
    assert!(
        again.starts_with("HTTP/1.1 304 Not Modified\r\n"),
        "{again}"
    );
    assert!(again.ends_with("\r\n\r\n"), "no body: {again}");

    // HEAD: the headers only.
    let head = request(addr, "HEAD / HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK"));
    assert!(head.ends_with("\r\n\r\n"), "no body: {head}");

    // Other methods are refused.
    let post = request(addr, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed"),
        "{post}"
    );
    assert_eq!(header(&post, "allow"), Some("GET, HEAD"));

    // The WebSocket path still upgrades on the same listener.
    let url = format!("ws://{addr}/ws");
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_ws, _) = tokio_tungstenite::client_async(url, s).await.unwrap();
    assert_eq!(
        task.await.unwrap(),
        [false, false, false, false, false, true]
    );
}

#[tokio::test]
async fn nothing_outside_the_table_is_reachable() {
    let paths = [
        "/sdk/../",
        "/sdk/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/sdk/",
        "/sdk",
        "//sdk/beckon-sig.js",
        "/SDK/beckon-sig.js",
        "/index.html/",
        "*",
    ];
    let (addr, task) = serve(paths.len() + 1).await;
    for path in paths {
        let r = request(addr, &format!("GET {path} HTTP/1.1\r\n\r\n")).await;
        assert!(r.starts_with("HTTP/1.1 404 Not Found"), "{path}: {r}");
    }
    // A request head over the bound is dropped without an answer.
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(16 * 1024));
    let r = request(addr, &huge).await;
    assert!(r.is_empty(), "{r}");
    let sessions = task.await.unwrap();
    assert!(sessions.iter().all(|s| !s));
}
