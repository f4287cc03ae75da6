//! Property tests of channels (SPEC §7) over random schedules: joins, leaves, messages,
//! attribute writes, logouts and cuts.
//!
//! Checked in every schedule:
//! - no client receives a channel message twice, and it receives each sender's messages in order;
//! - no channel event reaches a client outside its membership (between `onChannelJoined` and
//!   `onChannelLeaved`);
//! - a sender that gets `onMessageSendSuccess` saw its own message first (it is a member);
//! - once the network settles, every client's view of every channel (the member list from
//!   `onChannelUserList` plus join/leave events) equals the broker's truth, and so do counts;
//! - in a final round every member sees every message exactly once, in order.

#![allow(clippy::needless_range_loop)] // Clients are named by index.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use beckon_client::{Event, Status};
use beckon_testkit::{APP_ID, Disturbance, Sim};

const ACCOUNTS: [&str; 4] = ["ann", "ben", "cid", "dee"];
const CHANNELS: [&str; 2] = ["x", "y"];

#[derive(Clone, Debug)]
enum Op {
    Join(usize, usize),
    Leave(usize, usize),
    Send(usize, usize),
    SetAttr(usize, usize, u8),
    Session(Disturbance),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..2usize).prop_map(|(c, ch)| Op::Join(c, ch)),
        2 => (0..4usize, 0..2usize).prop_map(|(c, ch)| Op::Leave(c, ch)),
        6 => (0..4usize, 0..2usize).prop_map(|(c, ch)| Op::Send(c, ch)),
        2 => (0..4usize, 0..2usize, 0..3u8).prop_map(|(c, ch, v)| Op::SetAttr(c, ch, v)),
        1 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Logout(c))),
        2 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Login(c))),
        1 => (0..4usize).prop_map(|c| Op::Session(Disturbance::Cut(c))),
        1 => (0..3000u64).prop_map(|ms| Op::Session(Disturbance::Advance(ms))),
        3 => (0..20u8).prop_map(|n| Op::Session(Disturbance::Steps(n))),
    ]
}

/// Client `c`'s view of the members of `channel`, which it must be in to get `what`.
fn member_view<'v>(
    view: &'v mut HashMap<String, BTreeSet<String>>,
    c: usize,
    channel: &str,
    what: &str,
) -> Result<&'v mut BTreeSet<String>, TestCaseError> {
    view.get_mut(channel).ok_or_else(|| {
        TestCaseError::fail(format!(
            "client {c}: {what} of {channel} outside membership"
        ))
    })
}

/// Replays one client's events, checking membership-scoped invariants; returns its view of
/// each joined channel's members.
fn check_client(
    c: usize,
    events: &[Event],
) -> Result<HashMap<String, BTreeSet<String>>, TestCaseError> {
    let mut view: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut last: HashMap<(String, String), u32> = HashMap::new();
    let mut own_received = HashSet::new();
    for e in events {
        match e {
            Event::ChannelJoined { channel } => {
                view.insert(channel.clone(), BTreeSet::new());
            }
            Event::ChannelUserList {
                channel,
                accounts,
                uids,
            } => {
                prop_assert_eq!(accounts.len(), uids.len());
                let v = member_view(&mut view, c, channel, "user list")?;
                *v = accounts.iter().cloned().collect();
                prop_assert!(
                    v.contains(ACCOUNTS[c]),
                    "client {} missing from its own list",
                    c
                );
            }
            Event::ChannelLeaved { channel, .. } => {
                prop_assert!(
                    view.remove(channel).is_some(),
                    "client {} left {} it was not in",
                    c,
                    channel
                );
            }
            Event::ChannelUserJoined {
                channel, account, ..
            } => {
                let v = member_view(&mut view, c, channel, "join event")?;
                prop_assert!(
                    v.insert(account.clone()),
                    "client {}: {} joined {} twice",
                    c,
                    account,
                    channel
                );
            }
            Event::ChannelUserLeaved {
                channel, account, ..
            } => {
                let v = member_view(&mut view, c, channel, "leave event")?;
                prop_assert!(
                    v.remove(account),
                    "client {}: {} left {} without being in it",
                    c,
                    account,
                    channel
                );
            }
            Event::ChannelAttrUpdated { channel, .. } => {
                prop_assert!(
                    view.contains_key(channel),
                    "client {}: attribute event of {} outside membership",
                    c,
                    channel
                );
            }
            Event::MessageChannelReceive {
                channel,
                account,
                msg,
                ..
            } => {
                prop_assert!(
                    view.contains_key(channel),
                    "client {}: message {} of {} outside membership",
                    c,
                    msg,
                    channel
                );
                prop_assert!(seen.insert(msg.clone()), "client {} got {} twice", c, msg);
                let n: u32 = msg.rsplit('-').next().unwrap().parse().unwrap();
                let prev = last
                    .insert((channel.clone(), account.clone()), n)
                    .unwrap_or(0);
                prop_assert!(n > prev, "client {} got {} after #{}", c, msg, prev);
                if account == ACCOUNTS[c] {
                    own_received.insert(msg.clone());
                }
            }
            Event::MessageSendSuccess { message_id } if message_id.starts_with('c') => {
                prop_assert!(
                    own_received.contains(message_id),
                    "client {}: {} succeeded before its own copy arrived",
                    c,
                    message_id
                );
            }
            _ => {}
        }
    }
    Ok(view)
}

fn run(seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut sim = Sim::logged_in(seed, &ACCOUNTS);
    let mut counter = 0u32;
    for op in ops {
        match op {
            Op::Join(c, ch) => sim.act(c, |cl, now| cl.channel_join(CHANNELS[ch], now)),
            Op::Leave(c, ch) => sim.act(c, |cl, now| cl.channel_leave(CHANNELS[ch], now)),
            Op::Send(c, ch) => {
                counter += 1;
                let id = format!("c{c}-{}-{counter}", CHANNELS[ch]);
                sim.act(c, |cl, now| {
                    cl.message_channel_send(CHANNELS[ch], &id, &id, now)
                });
            }
            Op::SetAttr(c, ch, v) => {
                let value = ["", "1", "2"][v as usize];
                sim.act(c, |cl, now| {
                    cl.channel_set_attr(CHANNELS[ch], "topic", value, now)
                });
            }
            Op::Session(d) => sim.disturb(d, &ACCOUNTS),
        }
    }
    sim.settle(Duration::from_secs(10));

    // Views agree with the broker's truth.
    for c in 0..4 {
        let view = check_client(c, sim.events(c))?;
        let joined: BTreeSet<String> =
            sim.act(c, |cl, _| cl.joined_channels().iter().cloned().collect());
        prop_assert_eq!(
            &view.keys().cloned().collect::<BTreeSet<_>>(),
            &joined,
            "client {} joined set",
            c
        );
        for (ch, members) in &view {
            let truth: BTreeSet<String> = sim
                .broker()
                .channel_members(APP_ID, ch)
                .into_iter()
                .collect();
            prop_assert_eq!(members, &truth, "client {} view of {}", c, ch);
        }
        if sim.act(c, |cl, _| cl.status()) == Status::LoggedIn {
            for ch in CHANNELS {
                let is_in = sim
                    .broker()
                    .channel_members(APP_ID, ch)
                    .iter()
                    .any(|m| m == ACCOUNTS[c]);
                prop_assert_eq!(
                    joined.contains(ch),
                    is_in,
                    "client {} membership of {}",
                    c,
                    ch
                );
            }
        }
    }

    // Final round: everyone in x; every member sees every message exactly once, in order.
    for c in 0..4 {
        if sim.act(c, |cl, _| cl.status()) == Status::NotLoggedIn {
            sim.login(c, ACCOUNTS[c]);
            sim.run_until_idle();
        }
        sim.act(c, |cl, now| cl.channel_join("x", now));
    }
    sim.run_until_idle();
    let before: Vec<usize> = (0..4).map(|c| sim.events(c).len()).collect();
    for round in 1..=5 {
        for c in 0..4 {
            let id = format!("f{c}-x-{}", 100_000 + round);
            sim.act(c, |cl, now| cl.message_channel_send("x", &id, &id, now));
        }
        sim.step();
    }
    sim.run_until_idle();
    for c in 0..4 {
        let got: Vec<&str> = sim.events(c)[before[c]..]
            .iter()
            .filter_map(|e| match e {
                Event::MessageChannelReceive { msg, channel, .. } if channel == "x" => {
                    Some(msg.as_str())
                }
                _ => None,
            })
            .collect();
        prop_assert_eq!(got.len(), 20, "client {} got {:?}", c, got);
        for from in 0..4 {
            let mine: Vec<&str> = got
                .iter()
                .copied()
                .filter(|m| m.starts_with(&format!("f{from}-")))
                .collect();
            let want: Vec<String> = (1..=5)
                .map(|r| format!("f{from}-x-{}", 100_000 + r))
                .collect();
            prop_assert_eq!(mine, want.iter().map(String::as_str).collect::<Vec<_>>());
        }
        check_client(c, sim.events(c))?;
    }
    let num = sim.broker().channel_attrs(APP_ID, "x").unwrap()["_member_num"].clone();
    prop_assert_eq!(num, "4");
    Ok(())
}

/// A simulation with the first `n` accounts logged in.
fn logged_in(seed: u64, n: usize) -> Sim {
    Sim::logged_in(seed, &ACCOUNTS[..n])
}

/// The first `n` accounts logged in, and ann (client 0) in "room".
fn ann_in_room(seed: u64, n: usize) -> Sim {
    let mut sim = logged_in(seed, n);
    sim.act(0, |c, now| c.channel_join("room", now));
    sim.run_until_idle();
    sim
}

#[test]
fn channel_ttl_keeps_an_empty_channel_then_removes_it() {
    let mut sim = ann_in_room(5, 1);
    sim.act(0, |c, now| {
        c.channel_set_attr("room", "_channel_ttl", "10", now)
    });
    sim.act(0, |c, now| c.channel_set_attr("room", "topic", "rust", now));
    sim.act(0, |c, now| c.channel_leave("room", now));
    sim.run_until_idle();
    sim.advance(Duration::from_secs(9));
    assert_eq!(
        sim.broker().channel_attrs(APP_ID, "room").unwrap()["topic"],
        "rust"
    );
    sim.advance(Duration::from_secs(2));
    assert!(
        sim.broker().channel_attrs(APP_ID, "room").is_none(),
        "the channel outlived its TTL"
    );
    assert_eq!(sim.broker().stats().channels_expired, 1);
    sim.act(0, |c, now| c.channel_join("room", now));
    sim.run_until_idle();
    assert!(
        !sim.events(0)
            .iter()
            .rev()
            .take(3)
            .any(|e| matches!(e, Event::ChannelAttrUpdated { name, .. } if name == "topic"))
    );
}

#[test]
fn a_rejoined_channel_returns_its_attributes_as_updates() {
    let mut sim = ann_in_room(6, 2);
    sim.act(0, |c, now| c.channel_set_attr("room", "topic", "rust", now));
    sim.run_until_idle();
    sim.act(1, |c, now| c.channel_join("room", now));
    sim.run_until_idle();
    let tail: Vec<&Event> = sim.events(1).iter().rev().take(3).collect();
    assert_eq!(
        tail.into_iter().rev().cloned().collect::<Vec<_>>(),
        [
            Event::ChannelJoined {
                channel: "room".into()
            },
            Event::ChannelUserList {
                channel: "room".into(),
                accounts: vec!["ann".into(), "ben".into()],
                uids: vec![0, 0]
            },
            Event::ChannelAttrUpdated {
                channel: "room".into(),
                name: "topic".into(),
                value: "rust".into(),
                kind: "update".into()
            },
        ]
    );
    assert!(sim.events(0).contains(&Event::ChannelUserJoined {
        channel: "room".into(),
        account: "ben".into(),
        uid: 0
    }));
}

#[test]
fn auto_update_reports_member_num_only_when_it_changed() {
    let mut sim = ann_in_room(7, 3);
    sim.act(0, |c, now| {
        c.channel_set_attr("room", "_auto_update_num", "2", now)
    });
    sim.run_until_idle();
    let reports = |sim: &Sim| {
        sim.events(0)
            .iter()
            .filter_map(|e| match e {
                Event::ChannelAttrUpdated { name, value, .. } if name == "_member_num" => {
                    Some(value.clone())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    sim.advance(Duration::from_secs(3));
    assert_eq!(reports(&sim), ["1"]);
    sim.advance(Duration::from_secs(4));
    assert_eq!(
        reports(&sim),
        ["1"],
        "no report while the count is unchanged"
    );
    sim.act(1, |c, now| c.channel_join("room", now));
    sim.act(2, |c, now| c.channel_join("room", now));
    sim.run_until_idle();
    sim.advance(Duration::from_secs(3));
    assert_eq!(reports(&sim), ["1", "3"]);
}

/// ann (client 0) and ben (client 1), both in channel "a".
fn ann_and_ben_in_a(seed: u64) -> Sim {
    let mut sim = logged_in(seed, 2);
    sim.act(0, |c, now| c.channel_join("a", now));
    sim.act(1, |c, now| c.channel_join("a", now));
    sim.run_until_idle();
    sim
}

/// ann left "a" with `ecode`, and ben saw her leave.
fn assert_ann_left_a(sim: &Sim, ecode: i32) {
    let left = Event::ChannelLeaved {
        channel: "a".into(),
        ecode,
    };
    assert!(sim.events(0).contains(&left), "ann's {left:?}");
    assert!(sim.events(1).contains(&Event::ChannelUserLeaved {
        channel: "a".into(),
        account: "ann".into(),
        uid: 0
    }));
}

#[test]
fn joining_a_second_channel_leaves_the_first() {
    let mut sim = ann_and_ben_in_a(8);
    sim.act(0, |c, now| c.channel_join("b", now));
    sim.run_until_idle();
    assert_ann_left_a(&sim, 602);
    assert_eq!(sim.act(0, |c, _| c.joined_channels().to_vec()), ["b"]);
    assert_eq!(sim.broker().channel_members(APP_ID, "a"), ["ben"]);
}

#[test]
fn logout_and_kick_leave_channels_with_their_codes() {
    let mut sim = ann_and_ben_in_a(9);
    sim.act(0, |c, now| c.logout(now));
    sim.run_until_idle();
    assert_ann_left_a(&sim, 603);
    let second = sim.add_client();
    sim.login(second, "ben");
    sim.run_until_idle();
    assert!(sim.events(1).contains(&Event::ChannelLeaved {
        channel: "a".into(),
        ecode: 601
    }));
    assert!(sim.broker().channel_members(APP_ID, "a").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn channel_views_and_deliveries_hold_in_every_schedule(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        run(seed, ops)?;
    }
}
