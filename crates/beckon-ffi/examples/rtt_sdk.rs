//! p2p round trip through the Rust SDK, the twin of `tests/cpp/rtt.cpp` (the C++ API).
//!
//! The loop of `benches/benches/rtt.rs` (two instances, `a` sends 256 bytes to `b`, `b`
//! answers at once from its own task, one round trip at a time after 200 warm-up ones), but
//! against the server `BECKON_URL` names rather than one in the same process, so that
//! `cargo xtask cpp-rtt` measures both SDKs against one server process the same way.
//!
//! ```sh
//! BECKON_URL=tcp://127.0.0.1:7400 cargo run --release -p beckon-ffi --example rtt_sdk -- 5000
//! ```
//! prints `rtt <rounds> <median µs> <p99 µs> <p999 µs> <max µs>`.

use std::time::{Duration, Instant};

use beckon_sdk::{Config, Event, EventStream, Instance};

const WARMUP: usize = 200;
const PAYLOAD: usize = 256;
const STOP: &str = "stop";

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let url = std::env::var("BECKON_URL").unwrap_or_else(|_| "tcp://127.0.0.1:7400".into());
    let (a, mut a_events) = login(&url, "rtt-sdk-a").await;
    let (b, mut b_events) = login(&url, "rtt-sdk-b").await;
    let echo = tokio::spawn(async move {
        loop {
            let (from, msg) = next_message(&mut b_events).await;
            if msg == STOP {
                return b;
            }
            b.message_instant_send(&from, 0, &msg, "");
        }
    });
    let msg = "x".repeat(PAYLOAD);
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let start = Instant::now();
        a.message_instant_send("rtt-sdk-b", 0, &msg, "");
        let (_, back) = next_message(&mut a_events).await;
        let took = start.elapsed();
        assert_eq!(back.len(), msg.len());
        if i >= WARMUP {
            samples.push(took);
        }
    }
    a.message_instant_send("rtt-sdk-b", 0, STOP, "");
    let b = echo.await.expect("the echo task");
    a.destroy().await;
    b.destroy().await;

    samples.sort_unstable();
    let q = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        us(samples[i])
    };
    let max = samples.last().map_or(0.0, |d| us(*d));
    println!("rtt {rounds} {} {} {} {max}", q(0.5), q(0.99), q(0.999));
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn login(url: &str, account: &str) -> (Instance, EventStream) {
    let sdk = Instance::new(Config::new(url)).expect("a valid URL");
    let mut events = sdk.events();
    sdk.login("rtt-sdk", account, "_no_need_token", 0, "");
    loop {
        match events.next().await.expect("events") {
            Event::LoginSuccess { .. } => return (sdk, events),
            Event::LoginFailed { ecode } => panic!("login to {url} failed: {ecode}"),
            _ => {}
        }
    }
}

async fn next_message(events: &mut EventStream) -> (String, String) {
    loop {
        match events.next().await.expect("events") {
            Event::MessageInstantReceive { account, msg, .. } => return (account, msg),
            Event::MessageSendError { message_id, ecode } => {
                panic!("send {message_id} failed: {ecode}")
            }
            _ => {}
        }
    }
}
