//! Memory of the broker core per idle session: bytes allocated and still live after 10,000
//! sessions have logged in and acknowledged everything, divided by 10,000.
//!
//! Counts allocations with `stats_alloc`'s instrumented allocator, so the figure is exact for the broker
//! core and excludes what a running server adds per connection (its tasks, transport buffers,
//! the kernel's socket). `cargo bench -p beckon-benches --bench session_memory`.

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use beckon_broker::{AdmissionConfig, AppConfig, Apps, Broker, BrokerConfig, ConnId, MemoryStore};
use beckon_testkit::wire;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SESSIONS: u64 = 10_000;

fn main() {
    let mut apps = Apps::default();
    apps.development = Some(AppConfig::development(""));
    let now = Instant::now();
    let mut config = BrokerConfig::new(apps, [9; 32]);
    // Ten thousand sessions log in in one instant.
    config.admission = AdmissionConfig::unlimited();
    let mut b = Broker::new(config, MemoryStore::new(), now, 0);
    // One session first, so what is allocated once (maps' first buckets, the app) is not
    // counted per session.
    login(&mut b, 0, now);
    let region = Region::new(ALLOCATOR);
    for i in 1..=SESSIONS {
        login(&mut b, i, now);
    }
    let stats = region.change();
    let live = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64
        + stats.bytes_reallocated as f64;
    let per = live / SESSIONS as f64;
    println!(
        "broker core: {per:.0} bytes per idle session ({SESSIONS} sessions, logged in and acknowledged)"
    );
    std::hint::black_box(&b);
}

fn login(b: &mut Broker<MemoryStore>, i: u64, now: Instant) {
    wire::login_acked(b, ConnId(i), "bench", &format!("user{i}"), now);
}
