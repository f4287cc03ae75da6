//! p2p message round trip over every transport, end to end on loopback.
//!
//! One in-process server listens on all five schemes; for each scheme two SDK instances log in
//! over it, and `a` sends a 256-byte p2p message to `b`, whose receipt sends one straight back.
//! The time from `a`'s send to `a`'s receipt of the answer is one round trip: two deliveries
//! through the broker, each with its acknowledgement traffic, through the public SDK. Round
//! trips run one at a time, so this is latency, not throughput.
//!
//! Prints the median, p99 and p999 per scheme. Not a criterion bench: criterion reports means
//! and medians of batches, and a round trip's tail is what matters here.
//!
//! ```sh
//! cargo bench -p beckon-benches --bench rtt            # 5,000 round trips per scheme
//! BECKON_RTT_ROUNDS=20000 cargo bench -p beckon-benches --bench rtt
//! ```
//!
//! Server, SDKs and this loop share the machine's cores; on a 2-core machine the figures
//! include that contention.

use std::time::{Duration, Instant};

use beckon_sdk::{ClientTls, Config, Event, EventStream, Instance};
use beckon_server::{Scheme, Server, ServerConfig};

const WARMUP: usize = 200;
const PAYLOAD: usize = 256;
/// Tells the echo task to stop.
const STOP: &str = "stop";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: usize = std::env::var("BECKON_RTT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 5000 } else { 50 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: usize) {
    let mut config = ServerConfig::development();
    config.listen = [
        "tcp://127.0.0.1:0",
        "tls://127.0.0.1:0",
        "quic://127.0.0.1:0",
        "ws://127.0.0.1:0/ws",
        "wss://127.0.0.1:0/ws",
    ]
    .iter()
    .map(|u| u.parse().expect("a URL"))
    .collect();
    let server = Server::spawn(config).await.expect("bind loopback");
    println!(
        "p2p round trip, {PAYLOAD}-byte messages, {rounds} round trips per scheme (after {WARMUP} \
         warm-up), one at a time"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10}",
        "scheme", "median", "p99", "p999", "max"
    );
    for scheme in [
        Scheme::Tcp,
        Scheme::Tls,
        Scheme::Quic,
        Scheme::Ws,
        Scheme::Wss,
    ] {
        let url = server
            .endpoint(scheme)
            .expect("the server listens on every scheme")
            .to_string();
        let mut samples = measure(&url, &format!("{scheme}"), rounds).await;
        samples.sort_unstable();
        let q = |p: f64| {
            let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i]
        };
        println!(
            "{:<6} {:>10} {:>10} {:>10} {:>10}",
            scheme.as_str(),
            us(q(0.5)),
            us(q(0.99)),
            us(q(0.999)),
            us(*samples.last().expect("samples"))
        );
    }
    server.shutdown().await;
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn login(url: &str, account: &str) -> (Instance, EventStream) {
    let mut config = Config::new(url);
    // The server's certificate is made at start; this bench trusts it blindly on loopback.
    config.tls = ClientTls {
        dangerous_accept_any_cert: true,
        ..ClientTls::default()
    };
    let sdk = Instance::new(config).expect("a valid URL");
    let mut events = sdk.events();
    sdk.login("bench", account, "_no_need_token", 0, "");
    loop {
        match events.next().await.expect("events") {
            Event::LoginSuccess { .. } => return (sdk, events),
            Event::LoginFailed { ecode } => panic!("login over {url} failed: {ecode}"),
            _ => {}
        }
    }
}

async fn next_message(events: &mut EventStream) -> String {
    loop {
        match events.next().await.expect("events") {
            Event::MessageInstantReceive { msg, .. } => return msg,
            Event::MessageSendError { message_id, ecode } => {
                panic!("send {message_id} failed: {ecode}")
            }
            _ => {}
        }
    }
}

async fn measure(url: &str, tag: &str, rounds: usize) -> Vec<Duration> {
    let (a_name, b_name) = (format!("a-{tag}"), format!("b-{tag}"));
    let (a, mut a_events) = login(url, &a_name).await;
    let (b, mut b_events) = login(url, &b_name).await;
    // b answers every message at once, from its own task.
    let echo = tokio::spawn(async move {
        loop {
            let msg = next_message(&mut b_events).await;
            if msg == STOP {
                return b;
            }
            b.message_instant_send(&a_name_of(&msg), 0, &msg, "");
        }
    });
    let body = "x".repeat(PAYLOAD - a_name.len() - 1);
    let msg = format!("{a_name}|{body}");
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let start = Instant::now();
        a.message_instant_send(&b_name, 0, &msg, "");
        let back = next_message(&mut a_events).await;
        let took = start.elapsed();
        assert_eq!(back.len(), msg.len());
        if i >= WARMUP {
            samples.push(took);
        }
    }
    a.message_instant_send(&b_name, 0, STOP, "");
    let b = echo.await.expect("the echo task");
    a.logout();
    b.logout();
    samples
}

fn a_name_of(msg: &str) -> String {
    msg.split('|').next().unwrap_or_default().to_owned()
}
