//! Memory one attacker can make the broker hold: each quota driven to its limit and back,
//! counted by the allocator (live heap bytes, as the session memory benchmark counts them) and
//! by the broker's own accounting ([`Held`]). For every quota the test checks that what is held
//! at the limit stays within the quota's bound, and that it is given back — to within a few
//! kilobytes of table capacity — once what held it has expired or ended.
//!
//! `cargo test -p beckon-broker --test memory_bounds` prints the table of figures.

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use beckon_broker::{AdmissionConfig, AppConfig, Apps, BrokerConfig, ConnId, Held, MemoryStore};
use beckon_proto::pb::{self, request::Op};
use beckon_testkit::wire::{self, Driver, join, leave, send_instant, set_channel_attr};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const APP: &str = "app";
const ATTACKER: ConnId = ConnId(1);
const BYSTANDER: ConnId = ConnId(2);
/// What may stay allocated after a release: tables keep a minimum capacity, and the event
/// queue of a session keeps its high-water mark until the session ends.
const SLACK: isize = 96 * 1024;

/// Live heap bytes. (`stats_alloc` already adds a reallocation's growth to `bytes_allocated`
/// and its shrinking to `bytes_deallocated`; `bytes_reallocated` is the same change again.)
fn live() -> isize {
    let s = ALLOCATOR.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn config(app: impl FnOnce(&mut AppConfig)) -> BrokerConfig {
    let mut template = AppConfig::development("");
    app(&mut template);
    let mut apps = Apps::default();
    apps.development = Some(template);
    BrokerConfig::new(apps, [3; 32])
}

/// A broker with the attacker and a bystander logged in, everything allocated once.
fn driver(config: BrokerConfig) -> Driver<MemoryStore> {
    let mut d = Driver::new(config);
    d.login(ATTACKER, APP, "mallory");
    d.login(BYSTANDER, APP, "bystander");
    d
}

struct Row {
    quota: &'static str,
    limit: String,
    at_limit: isize,
    held: Held,
    after: isize,
    bound: isize,
}

/// Runs `attack` (to the quota's limit) and `release` (until it has expired) on `d`, measuring
/// live bytes against the state before the attack.
fn measure(
    quota: &'static str,
    limit: String,
    bound: isize,
    mut d: Driver<MemoryStore>,
    attack: impl FnOnce(&mut Driver<MemoryStore>),
    release: impl FnOnce(&mut Driver<MemoryStore>),
) -> Row {
    let before = live();
    attack(&mut d);
    d.closed = Default::default();
    let at_limit = live() - before;
    let held = d.broker.held();
    release(&mut d);
    d.closed = Default::default();
    let after = live() - before;
    assert!(
        d.broker.is_online(APP, "bystander"),
        "{quota}: the bystander"
    );
    drop(d);
    Row {
        quota,
        limit,
        at_limit,
        held,
        after,
        bound,
    }
}

fn invitations() -> Row {
    let defaults = AppConfig::new("", "");
    let max = defaults.max_invites_per_session;
    let d = driver(config(|_| {}));
    let extra = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8180));
    measure(
        "invitations in progress per session",
        format!("{max}, 8 KiB extra each"),
        (max * 10 * 1024) as isize,
        d,
        |d| {
            for i in 0..2 * max {
                let invite = Op::Invite(pb::Invite {
                    channel: "c".into(),
                    account: format!("offline{i}"),
                    extra: extra.clone(),
                });
                d.request(ATTACKER, invite);
            }
            assert_eq!(d.broker.calls_in_progress(), max);
        },
        |d| d.advance(defaults.peer_online_wait + Duration::from_secs(1)),
    )
}

fn empty_channels_with_attributes() -> Row {
    let defaults = AppConfig::new("", "");
    let (max, bytes) = (
        defaults.max_empty_channels_per_account,
        defaults.max_channel_attr_bytes,
    );
    let d = driver(config(|_| {}));
    let value = "v".repeat(8096);
    measure(
        "empty channels per account, attribute bytes per channel",
        format!("{max} channels of {} KiB", bytes / 1024),
        (max * (bytes + 16 * 1024)) as isize,
        d,
        |d| {
            for c in 0..max + 16 {
                let channel = format!("room{c}");
                d.request(ATTACKER, join(&channel));
                d.request(
                    ATTACKER,
                    set_channel_attr(&channel, "_channel_ttl", "4294967295"),
                );
                for i in 0.. {
                    let name = format!("attr{i:03}");
                    if d.request(ATTACKER, set_channel_attr(&channel, &name, &value))
                        .code
                        != 0
                    {
                        break;
                    }
                }
                d.request(ATTACKER, leave(&channel));
            }
            assert_eq!(d.broker.channel_count(APP), max);
        },
        |d| d.advance(defaults.max_channel_ttl + Duration::from_secs(1)),
    )
}

fn channels_per_app() -> Row {
    let max = 1_000;
    let mut d = driver(config(|a| a.max_channels = max));
    let accounts = 20u64;
    for i in 0..accounts {
        d.login(ConnId(100 + i), APP, &format!("sock{i}"));
    }
    measure(
        "channels per app",
        format!("{max} (test config)"),
        (max * 4 * 1024) as isize,
        d,
        |d| {
            for i in 0..accounts {
                for c in 0..64 {
                    let channel = format!("c{i}-{c}");
                    d.request(ConnId(100 + i), join(&channel));
                    d.request(ConnId(100 + i), leave(&channel));
                }
            }
            assert_eq!(d.broker.channel_count(APP), max);
        },
        |d| d.advance(Duration::from_secs(7_201)),
    )
}

fn offline_per_sender() -> Row {
    let policy = AppConfig::new("", "").offline;
    let max = policy.max_per_sender;
    let d = driver(config(|_| {}));
    let body = "x".repeat(8192);
    measure(
        "offline messages per sender",
        format!("{max} of 8 KiB"),
        // Each to an account of its own: the memory store keeps a queue (a small tree) per
        // account beside the message.
        (max * 10 * 1024) as isize,
        d,
        |d| {
            for i in 0..max + 100 {
                d.request(ATTACKER, send_instant(&format!("madeup{i}"), &body));
            }
            assert_eq!(d.broker.held().offline_messages, max);
        },
        |d| d.advance(policy.ttl + Duration::from_secs(1)),
    )
}

fn offline_per_app() -> Row {
    let max = 4 * 1024 * 1024;
    let mut d = driver(config(|a| a.offline.max_bytes = max));
    let senders = 10u64;
    for i in 0..senders {
        d.login(ConnId(100 + i), APP, &format!("sender{i}"));
    }
    let body = "x".repeat(8192);
    measure(
        "offline store bytes per app",
        "4 MiB (test config)".to_owned(),
        (max + max / 4) as isize,
        d,
        |d| {
            for i in 0..senders {
                for m in 0..200 {
                    d.request(
                        ConnId(100 + i),
                        send_instant(&format!("madeup{i}-{m}"), &body),
                    );
                }
            }
            assert!(d.broker.held().offline_bytes <= max);
        },
        |d| d.advance(Duration::from_secs(3_601)),
    )
}

fn login_buckets() -> Row {
    let mut c = config(|_| {});
    c.admission.logins_per_s = u32::MAX;
    c.admission.login_burst = u32::MAX;
    let burst = c.admission.login_burst_per_address;
    let addresses = 10_000u32;
    let d = driver(c);
    measure(
        "login buckets per source address",
        format!("{addresses} addresses"),
        (addresses * 256) as isize,
        d,
        |d| {
            for i in 0..addresses {
                let conn = ConnId(1_000 + u64::from(i));
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
                d.broker.connect_from(conn, ip, d.now);
                let login = wire::login_frame(APP, "al ice", beckon_proto::NO_TOKEN);
                d.broker.handle_frame(conn, &login, d.now);
                d.frames_to(conn);
            }
            assert_eq!(d.broker.held().tracked_addresses, addresses as usize);
        },
        |d| {
            d.advance(Duration::from_secs(u64::from(burst)));
            let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            d.broker.connect_from(ConnId(999), ip, d.now);
            let login = wire::login_frame(APP, "al ice", beckon_proto::NO_TOKEN);
            d.broker.handle_frame(ConnId(999), &login, d.now);
            d.frames_to(ConnId(999));
            assert_eq!(d.broker.held().tracked_addresses, 1);
        },
    )
}

fn development_apps() -> Row {
    let mut c = config(|_| {});
    c.admission = AdmissionConfig::unlimited();
    let d = driver(c);
    measure(
        "development App IDs",
        "10,000 failed logins, 1,000 sessions".to_owned(),
        1_000 * 8 * 1024,
        d,
        |d| {
            for i in 0..10_000u64 {
                let conn = ConnId(1_000 + i);
                d.login_answer(conn, &format!("made-up-{i}"), "al ice");
            }
            for i in 0..1_000u64 {
                d.login(ConnId(100_000 + i), &format!("app-{i}"), "mallory");
            }
            assert_eq!(d.broker.held().apps, 1 + 1_000);
        },
        |d| {
            for i in 0..1_000u64 {
                let conn = ConnId(100_000 + i);
                d.request(conn, Op::Logout(pb::Logout {}));
                d.forget(conn);
            }
            d.advance(Duration::from_secs(1));
            assert_eq!(d.broker.held().apps, 1);
        },
    )
}

fn timers_of_a_join_leave_loop() -> Row {
    let d = driver(config(|_| {}));
    measure(
        "timers of a join/leave loop",
        "20,000 rounds on one channel".to_owned(),
        256 * 1024,
        d,
        |d| {
            for _ in 0..20_000 {
                d.request(ATTACKER, join("room"));
                d.request(ATTACKER, leave("room"));
            }
            assert!(d.broker.held().timers < 4_096, "{:?}", d.broker.held());
        },
        |d| d.advance(Duration::from_secs(7_201)),
    )
}

fn main() {
    // One round first, so what is allocated once (the app, tables' first buckets, the
    // event-head scratch buffer) is not counted.
    drop(invitations());
    let rows = [
        invitations(),
        empty_channels_with_attributes(),
        channels_per_app(),
        offline_per_sender(),
        offline_per_app(),
        login_buckets(),
        development_apps(),
        timers_of_a_join_leave_loop(),
    ];
    println!(
        "{:<56} {:>28} {:>14} {:>12}",
        "quota", "at its limit", "held (bytes)", "after"
    );
    let mut failed = Vec::new();
    for r in &rows {
        println!(
            "{:<56} {:>28} {:>14} {:>12}",
            r.quota, r.limit, r.at_limit, r.after
        );
        println!("    broker's accounting at the limit: {:?}", r.held);
        if r.at_limit > r.bound {
            failed.push(format!(
                "{}: {} bytes held at the limit, over the bound of {}",
                r.quota, r.at_limit, r.bound
            ));
        }
        if r.after > SLACK {
            failed.push(format!(
                "{}: {} bytes still held after release (slack {SLACK})",
                r.quota, r.after
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    println!("memory_bounds: every quota's memory is bounded and given back");
}
