//! Property tests of the delivery contract (SPEC §5) over random schedules.
//!
//! Each case drives four clients (two of them the same account, so logins kick each other)
//! through a random sequence of logins, logouts, messages, attribute writes, connection cuts
//! and time jumps, then heals the network, logs every account in and checks:
//! - every send ends in exactly one success or error callback at its sender;
//! - no client receives a message twice, and each receives a sender's messages in send order;
//! - every message reported as sent reaches some session of its recipient account, unless it
//!   waited in the offline store past its TTL;
//! - kicks leave exactly one live session per account;
//! - an attribute reads back the last value written (or a write whose outcome was unknown).

#![allow(clippy::needless_range_loop)] // Clients are named by index.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use beckon_broker::{Apps, BrokerConfig};
use beckon_client::{Event, Status};
use beckon_testkit::{APP_ID, Disturbance, NetConfig, Sim};

const ACCOUNTS: [&str; 4] = ["ann", "ben", "cid", "ann"];
const ATTR_NAMES: [&str; 2] = ["color", "mood"];
const ATTR_VALUES: [&str; 3] = ["", "red", "blue"];

#[derive(Clone, Debug)]
enum Op {
    Session(Disturbance),
    Send {
        from: usize,
        to: usize,
    },
    SetAttr {
        client: usize,
        name: usize,
        value: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Login(c))),
        1 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Logout(c))),
        6 => (0..4usize, 0..4usize).prop_map(|(from, to)| Op::Send { from, to }),
        2 => (0..4usize, 0..2usize, 0..3usize)
            .prop_map(|(client, name, value)| Op::SetAttr { client, name, value }),
        1 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Cut(c))),
        1 => (0..4000u64).prop_map(|ms| Op::Session(Disturbance::Advance(ms))),
        3 => (0..20u8).prop_map(|n| Op::Session(Disturbance::Steps(n))),
    ]
}

#[derive(Debug)]
struct Write {
    account: &'static str,
    name: &'static str,
    value: &'static str,
}

/// The id of sender `from`'s next message: `s{from}-{n}`, counting from 1.
fn next_id(counters: &mut [u32], from: usize) -> String {
    counters[from] += 1;
    format!("s{from}-{}", counters[from])
}

/// Lets everything settle, then logs one client of every account in (client 3, ann's second,
/// steps aside) and checks that exactly one session per account is live.
fn heal(sim: &mut Sim) -> Result<(), TestCaseError> {
    sim.run_until_idle();
    sim.advance(Duration::from_secs(40)); // past any reconnect back-off
    for c in [3, 0, 1, 2] {
        if c == 3 {
            // ann's second client steps aside so ann's first one is the survivor.
            if sim.act(3, |cl, _| cl.status()) != Status::NotLoggedIn {
                sim.act(3, |cl, now| cl.logout(now));
                sim.run_until_idle();
            }
            continue;
        }
        if sim.act(c, |cl, _| cl.status()) == Status::NotLoggedIn {
            sim.login(c, ACCOUNTS[c]);
        }
        sim.run_until_idle();
    }
    sim.advance(Duration::from_secs(1));
    sim.run_until_idle();

    // Exactly one live session per account.
    for c in 0..3 {
        prop_assert_eq!(
            sim.act(c, |cl, _| cl.status()),
            Status::LoggedIn,
            "client {} is not logged in",
            c
        );
        prop_assert!(sim.broker().is_online(APP_ID, ACCOUNTS[c]));
    }
    prop_assert_ne!(sim.act(3, |cl, _| cl.status()), Status::LoggedIn);
    prop_assert_eq!(sim.broker().stats().sessions, 3);
    Ok(())
}

/// The delivery contract over `sent` (sender, message id, recipient account): every send has
/// exactly one outcome; no client receives a message twice, and each receives a sender's
/// messages in send order; every message reported sent reached some client of its recipient.
fn check_messages(sim: &Sim, sent: &[(usize, String, &str)]) -> Result<(), TestCaseError> {
    // Every send has exactly one outcome.
    let mut succeeded = HashSet::new();
    for c in 0..4 {
        let mut outcomes: HashMap<&str, u32> = HashMap::new();
        for e in sim.events(c) {
            match e {
                Event::MessageSendSuccess { message_id } => {
                    *outcomes.entry(message_id.as_str()).or_default() += 1;
                    succeeded.insert(message_id.clone());
                }
                Event::MessageSendError { message_id, .. } => {
                    *outcomes.entry(message_id.as_str()).or_default() += 1;
                }
                _ => {}
            }
        }
        for (from, id, _) in sent.iter().filter(|s| s.0 == c) {
            prop_assert_eq!(
                outcomes.get(id.as_str()).copied(),
                Some(1),
                "client {} message {} outcome count",
                from,
                id
            );
        }
    }

    // No duplicates and per-sender order at every receiving client; collect who got what.
    let mut received_by_account: HashMap<&str, HashSet<String>> = HashMap::new();
    for c in 0..4 {
        let mut seen = HashSet::new();
        let mut last_from: HashMap<usize, u32> = HashMap::new();
        for e in sim.events(c) {
            if let Event::MessageInstantReceive { msg, .. } = e {
                prop_assert!(seen.insert(msg.clone()), "client {} got {} twice", c, msg);
                let (from, n) = msg[1..].split_once('-').expect("s{from}-{n}");
                let (from, n): (usize, u32) = (from.parse().unwrap(), n.parse().unwrap());
                let last = last_from.insert(from, n).unwrap_or(0);
                prop_assert!(
                    n > last,
                    "client {} got {} after s{}-{}",
                    c,
                    msg,
                    from,
                    last
                );
                received_by_account
                    .entry(ACCOUNTS[c])
                    .or_default()
                    .insert(msg.clone());
            }
        }
    }
    // A stored message whose TTL ran out (virtual time may jump an hour when nothing else is
    // due) leaves the store undelivered, as SPEC §6 allows: that many may be missing.
    let missing: Vec<&String> = sent
        .iter()
        .filter(|(_, id, recipient)| {
            succeeded.contains(id)
                && !received_by_account
                    .get(recipient)
                    .is_some_and(|s| s.contains(id))
        })
        .map(|(_, id, _)| id)
        .collect();
    let expired = sim.offline_expired();
    prop_assert!(
        missing.len() as u64 <= expired,
        "{:?} were reported sent but never reached their recipients ({} stored messages \
         expired)",
        missing,
        expired
    );
    Ok(())
}

fn run(seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(seed);
    for _ in ACCOUNTS {
        sim.add_client();
    }
    let mut sent: Vec<(usize, String, &'static str)> = Vec::new(); // (sender, msg id, recipient account)
    let mut counters = [0u32; 4];
    let mut writes: Vec<Write> = Vec::new();
    // A cut client queues its writes until it is back, so issue order and apply order can
    // differ across clients of one account; without cuts they cannot.
    let mut cuts = 0;

    for op in ops {
        match op {
            Op::Send { from, to } => {
                let id = next_id(&mut counters, from);
                let recipient = ACCOUNTS[to];
                sim.send(from, recipient, &id);
                sent.push((from, id, recipient));
            }
            Op::SetAttr {
                client,
                name,
                value,
            } => {
                let logged_in = sim.act(client, |cl, _| {
                    matches!(cl.status(), Status::LoggedIn | Status::Reconnecting)
                });
                sim.act(client, |cl, now| {
                    cl.set_attr(ATTR_NAMES[name], ATTR_VALUES[value], now)
                });
                if logged_in {
                    writes.push(Write {
                        account: ACCOUNTS[client],
                        name: ATTR_NAMES[name],
                        value: ATTR_VALUES[value],
                    });
                }
            }
            Op::Session(d) => {
                cuts += usize::from(matches!(d, Disturbance::Cut(_)));
                sim.disturb(d, &ACCOUNTS);
            }
        }
    }

    heal(&mut sim)?;
    check_messages(&sim, &sent)?;

    // Attributes: the last acknowledged write wins; later writes with unknown outcome may too.
    let set_errors: usize = (0..4)
        .flat_map(|c| sim.events(c).iter())
        .filter(|e| matches!(e, Event::Error { name, .. } if name == "setAttr"))
        .count();
    for account in ["ann", "ben", "cid"] {
        for name in ATTR_NAMES {
            let relevant: Vec<&Write> = writes
                .iter()
                .filter(|w| w.account == account && w.name == name)
                .collect();
            let reader = ACCOUNTS.iter().position(|a| *a == account).unwrap();
            sim.act(reader, |cl, now| cl.get_attr(name, now));
            sim.run_until_idle();
            let got = sim
                .events(reader)
                .iter()
                .rev()
                .find_map(|e| match e {
                    Event::UserAttrResult { name: n, value, .. } if n == name => {
                        Some(value.clone())
                    }
                    _ => None,
                })
                .expect("getAttr answered");
            let allowed: HashSet<&str> = if relevant.is_empty() {
                HashSet::from([""])
            } else {
                // Any write of this account may be the last one applied when clients were cut
                // mid-request; but a value never written can never be read.
                let mut a: HashSet<&str> = relevant.iter().map(|w| w.value).collect();
                a.insert("");
                a
            };
            prop_assert!(
                allowed.contains(got.as_str()),
                "{}.{} read {:?}, allowed {:?}",
                account,
                name,
                got,
                allowed
            );
            if let Some(last) = relevant.last()
                && set_errors == 0
                && cuts == 0
            {
                prop_assert_eq!(
                    got.as_str(),
                    last.value,
                    "{}.{} must read the last write",
                    account,
                    name
                );
            }
        }
    }
    Ok(())
}

#[test]
fn a_thousand_messages_arrive_in_order_exactly_once() {
    let mut sim = Sim::logged_in(1, &["ann", "ben"]);
    let (a, b) = (0, 1);
    for i in 0..1000 {
        sim.send(a, "ben", &format!("m{i}"));
        if i % 50 == 0 {
            sim.step();
        }
    }
    sim.run_until_idle();
    let expected: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(sim.received(b), expected);
    let ok = sim.count(a, |e| matches!(e, Event::MessageSendSuccess { .. }));
    assert_eq!(ok, 1000);
}

#[test]
fn a_second_login_kicks_the_first() {
    let mut sim = Sim::logged_in(2, &["ann"]);
    let (first, second) = (0, sim.add_client());
    sim.login(second, "ann");
    sim.run_until_idle();
    assert!(sim.events(first).contains(&Event::Logout { ecode: 103 }));
    assert_eq!(sim.act(first, |c, _| c.status()), Status::NotLoggedIn);
    assert_eq!(sim.act(second, |c, _| c.status()), Status::LoggedIn);
    assert_eq!(sim.broker().stats().sessions, 1);
}

#[test]
fn offline_messages_arrive_at_the_next_login_in_order() {
    let mut sim = Sim::logged_in(3, &["ann"]);
    let (a, b) = (0, sim.add_client());
    for i in 0..5 {
        sim.send(a, "ben", &format!("m{i}"));
    }
    sim.run_until_idle();
    let ok = sim.count(a, |e| matches!(e, Event::MessageSendSuccess { .. }));
    assert_eq!(ok, 5, "stored messages count as sent");
    sim.advance(Duration::from_secs(60));
    sim.login(b, "ben");
    sim.run_until_idle();
    let from_others = sim.count(
        b,
        |e| matches!(e, Event::MessageInstantReceive { account, .. } if account != "ann"),
    );
    assert_eq!(from_others, 0);
    assert_eq!(sim.received(b), ["m0", "m1", "m2", "m3", "m4"]);
    // The login callback comes first.
    assert!(matches!(sim.events(b)[0], Event::LoginSuccess { .. }));
}

#[derive(Clone, Debug)]
enum FaultOp {
    Send {
        from: usize,
        to: usize,
    },
    /// Cuts, steps and time only.
    Session(Disturbance),
}

fn fault_op() -> impl Strategy<Value = FaultOp> {
    prop_oneof![
        8 => (0..3usize, 0..3usize).prop_map(|(from, to)| FaultOp::Send { from, to }),
        2 => (0..3usize).prop_map(|c| FaultOp::Session(Disturbance::Cut(c))),
        4 => (0..30u8).prop_map(|n| FaultOp::Session(Disturbance::Steps(n))),
        1 => (0..5000u64).prop_map(|ms| FaultOp::Session(Disturbance::Advance(ms))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// With connections cut at any moment but every client back within its grace period,
    /// sessions resume: every send succeeds and every message arrives exactly once, in order.
    #[test]
    fn cuts_within_grace_lose_and_duplicate_nothing(seed in any::<u64>(), ops in proptest::collection::vec(fault_op(), 1..80)) {
        let accounts = ["ann", "ben", "cid"];
        let mut sim = Sim::logged_in(seed, &accounts);
        let mut sent: Vec<Vec<String>> = vec![Vec::new(); 3]; // per recipient, in send order per sender
        let mut counters = [0u32; 3];
        let mut cuts = 0;
        for op in ops {
            match op {
                FaultOp::Send { from, to } => {
                    let id = next_id(&mut counters, from);
                    sim.send(from, accounts[to], &id);
                    sent[to].push(id);
                }
                FaultOp::Session(d) => {
                    cuts += usize::from(matches!(d, Disturbance::Cut(_)));
                    sim.disturb(d, &accounts);
                }
            }
        }
        sim.settle(Duration::from_secs(5));
        for c in 0..3 {
            prop_assert_eq!(sim.act(c, |cl, _| cl.status()), Status::LoggedIn);
            let errors: Vec<&Event> = sim.events(c).iter().filter(|e| matches!(e, Event::MessageSendError { .. } | Event::Error { .. })).collect();
            prop_assert!(errors.is_empty(), "client {} saw errors {:?}", c, errors);
            let ok = sim.count(c, |e| matches!(e, Event::MessageSendSuccess { .. }));
            prop_assert_eq!(ok as u32, counters[c]);
            let got = sim.received(c);
            // Exactly the messages sent to this account; per sender in order.
            let mut got_sorted = got.clone();
            got_sorted.sort();
            let mut want = sent[c].clone();
            want.sort();
            prop_assert_eq!(got_sorted, want, "client {} received the wrong set", c);
            for from in 0..3 {
                let prefix = format!("s{from}-");
                let seq: Vec<u32> = got.iter().filter_map(|m| m.strip_prefix(&prefix)).map(|n| n.parse().unwrap()).collect();
                prop_assert!(seq.windows(2).all(|w| w[0] < w[1]), "client {} got {:?} from {}", c, seq, from);
            }
        }
        prop_assert_eq!(sim.broker().stats().grace_expiries, 0);
        if cuts > 0 {
            prop_assert!(sim.broker().stats().resumes > 0 || sim.broker().stats().logins > 3);
        }
    }
}

#[test]
fn a_stored_backlog_larger_than_the_session_bound_arrives_whole_and_in_order() {
    let mut config = beckon_broker::BrokerConfig::new(beckon_broker::Apps::development(), [4; 32]);
    config.max_unacked_events = 20;
    let mut sim = Sim::with_config(4, config, beckon_testkit::NetConfig::default());
    let a = sim.add_client();
    let b = sim.add_client();
    sim.login(a, "ann");
    sim.run_until_idle();
    // The sender paces itself: its own session may hold only 20 unacknowledged replies.
    for i in 0..90 {
        sim.send(a, "ben", &format!("m{i:03}"));
        if i % 5 == 4 {
            sim.run_until_idle();
        }
    }
    sim.run_until_idle();
    sim.login(b, "ben");
    // Messages sent while the backlog drains queue behind it.
    while !sim.broker().is_online(beckon_testkit::APP_ID, "ben") {
        sim.step();
    }
    for i in 90..100 {
        sim.send(a, "ben", &format!("m{i:03}"));
    }
    sim.run_until_idle();
    sim.advance(Duration::from_secs(1));
    let want: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    assert_eq!(sim.received(b), want);
    assert_eq!(sim.broker().stats().overflows, 0);
    assert!(
        sim.events(a)
            .iter()
            .all(|e| !matches!(e, Event::MessageSendError { .. }))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn delivery_contract_holds_in_every_schedule(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        run(seed, ops)?;
    }
}

// ---- stress: small bounds, short grace, logouts, kicks, crashes and restarts --------------------

/// A broker whose sessions hold at most 12 unacknowledged events (so stored backlogs come in
/// portions of 6, and a burst of sends overflows its sender's session) and whose grace is 1–2 s
/// (so a time jump ends sessions).
fn stress_config(seed: u64) -> BrokerConfig {
    let mut c = BrokerConfig::new(Apps::development(), [seed as u8; 32]);
    c.max_unacked_events = 12;
    c.default_grace = Duration::from_secs(2);
    c.min_grace = Duration::from_secs(1);
    c.max_grace = Duration::from_secs(2);
    c
}

#[derive(Clone, Debug)]
enum StressOp {
    Send {
        from: usize,
        to: usize,
    },
    /// `n` sends at once: backlogs for the recipient, an overflow for the sender.
    Burst {
        from: usize,
        to: usize,
        n: usize,
    },
    Session(Disturbance),
}

fn stress_op() -> impl Strategy<Value = StressOp> {
    prop_oneof![
        6 => (0..4usize, 0..4usize).prop_map(|(from, to)| StressOp::Send { from, to }),
        2 => (0..4usize, 0..4usize, 5..25usize)
            .prop_map(|(from, to, n)| StressOp::Burst { from, to, n }),
        2 => (0..4usize).prop_map(|c| StressOp::Session(Disturbance::Logout(c))),
        3 => (0..4usize).prop_map(|c| StressOp::Session(Disturbance::Login(c))),
        1 => (0..4usize).prop_map(|c| StressOp::Session(Disturbance::Cut(c))),
        2 => (0..3000u64).prop_map(|ms| StressOp::Session(Disturbance::Advance(ms))),
        3 => (0..30u8).prop_map(|n| StressOp::Session(Disturbance::Steps(n))),
        1 => Just(StressOp::Session(Disturbance::Crash)),
        1 => Just(StressOp::Session(Disturbance::Restart)),
    ]
}

fn stress(seed: u64, ops: Vec<StressOp>) -> Result<(), TestCaseError> {
    let mut sim = Sim::with_config(seed, stress_config(seed), NetConfig::default());
    for (i, account) in ACCOUNTS.iter().enumerate() {
        sim.add_client();
        sim.login(i, account);
    }
    sim.run_until_idle();
    let mut sent: Vec<(usize, String, &'static str)> = Vec::new();
    let mut counters = [0u32; 4];
    for op in ops {
        match op {
            StressOp::Send { from, to } => {
                let id = next_id(&mut counters, from);
                sim.send(from, ACCOUNTS[to], &id);
                sent.push((from, id, ACCOUNTS[to]));
            }
            StressOp::Burst { from, to, n } => {
                for _ in 0..n {
                    let id = next_id(&mut counters, from);
                    sim.send(from, ACCOUNTS[to], &id);
                    sent.push((from, id, ACCOUNTS[to]));
                }
            }
            StressOp::Session(d) => sim.disturb(d, &ACCOUNTS),
        }
    }
    heal(&mut sim)?;
    check_messages(&sim, &sent)?;
    // Nothing is left behind: every account's stored messages reached its session.
    for account in ["ann", "ben", "cid"] {
        let kept = sim.store().messages(APP_ID, account);
        prop_assert!(
            kept.is_empty(),
            "{} still has {} messages stored",
            account,
            kept.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Logouts racing sends, kicks of sessions holding part of a backlog, overflows, grace
    /// expiries, crashes (the store keeps only what it committed) and graceful restarts: each
    /// send has one outcome, no client sees a message twice or a sender's messages out of
    /// order, and every message reported sent reaches its recipient.
    #[test]
    fn every_path_keeps_order_and_loses_nothing(seed in any::<u64>(), ops in proptest::collection::vec(stress_op(), 1..50)) {
        stress(seed, ops)?;
    }
}

/// The logout answer goes out, and messages sent before the client acknowledged it wait in
/// the store for the next login instead of being routed to the leaving session.
#[test]
fn a_message_racing_a_logout_waits_for_the_next_login() {
    let mut sim = Sim::logged_in(11, &["ann", "ben"]);
    sim.act(0, |c, now| c.logout(now));
    // Until the broker has answered the logout (and not longer: the answer is on its way).
    while sim.broker().is_online(APP_ID, "ann")
        && !sim.events(0).contains(&Event::Logout { ecode: 101 })
    {
        sim.step();
        sim.send(1, "ann", &format!("s1-{}", sim.count(1, |_| true) + 1));
        if sim.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    sim.settle(Duration::from_secs(1));
    let sent = sim.count(1, |e| matches!(e, Event::MessageSendSuccess { .. }));
    assert!(sent > 0);
    sim.login(0, "ann");
    sim.settle(Duration::from_secs(1));
    assert_eq!(sim.received(0).len(), sent, "{:?}", sim.received(0));
}

/// A session handed the first portion of a stored backlog and kicked before acknowledging it:
/// the next session gets the whole backlog from the start, in order.
#[test]
fn a_kicked_backlog_starts_over_in_order() {
    let mut sim = Sim::with_config(12, stress_config(12), NetConfig::default());
    let (ann, ben, ben2) = (sim.add_client(), sim.add_client(), sim.add_client());
    sim.login(ann, "ann");
    sim.run_until_idle();
    for i in 1..=40 {
        sim.send(ann, "ben", &format!("s0-{i}"));
        if i % 5 == 0 {
            sim.run_until_idle();
        }
    }
    sim.run_until_idle();
    sim.login(ben, "ben");
    // The first portion arrives; before it is acknowledged, ben logs in elsewhere.
    while sim.received(ben).is_empty() {
        sim.step();
    }
    sim.login(ben2, "ben");
    sim.settle(Duration::from_secs(1));
    let want: Vec<String> = (1..=40).map(|i| format!("s0-{i}")).collect();
    assert_eq!(sim.received(ben2), want);
    assert!(sim.received(ben).len() < 40);
}

/// A crash while a recipient's connection is down and its session waits in grace: every
/// message its sender was told was sent is in the store, and arrives at the next login.
#[test]
fn a_crash_loses_nothing_reported_sent_to_a_session_in_grace() {
    let mut sim = Sim::logged_in(13, &["ann", "ben"]);
    sim.cut(1);
    for i in 1..=20 {
        sim.send(0, "ben", &format!("s0-{i}"));
    }
    sim.run_until_idle();
    let ok = sim.count(0, |e| matches!(e, Event::MessageSendSuccess { .. }));
    assert_eq!(ok, 20);
    sim.crash();
    sim.settle(Duration::from_secs(40));
    let want: Vec<String> = (1..=20).map(|i| format!("s0-{i}")).collect();
    assert_eq!(sim.received(1), want);
}
