//! Property tests of calls (SPEC §8) over random flows between three users: crossing
//! invitations, accept after end, end during ringing, logouts, cuts and timeouts.
//!
//! Checked in every schedule: each side's callbacks follow the call state machine (nothing
//! after a terminal state, no answer without an invitation); once every flow is finished, no
//! call is left open on either side or in the broker, and the two sides' views pair up.

#![allow(clippy::needless_range_loop)] // Clients are named by index.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use beckon_client::{Event, Status};
use beckon_testkit::{Disturbance, Sim};

const ACCOUNTS: [&str; 3] = ["ann", "ben", "cid"];
const CHANNELS: [&str; 2] = ["c1", "c2"];

#[derive(Clone, Debug)]
enum Op {
    Invite(usize, usize, usize, bool),
    Accept(usize, usize, usize),
    Refuse(usize, usize, usize),
    End(usize, usize, usize),
    Dtmf(usize, usize, usize),
    Session(Disturbance),
}

fn op() -> impl Strategy<Value = Op> {
    let who = || (0..3usize, 0..3usize, 0..2usize);
    prop_oneof![
        5 => (who(), any::<bool>()).prop_map(|((a, b, c), r)| Op::Invite(a, b, c, r)),
        3 => who().prop_map(|(a, b, c)| Op::Accept(a, b, c)),
        2 => who().prop_map(|(a, b, c)| Op::Refuse(a, b, c)),
        3 => who().prop_map(|(a, b, c)| Op::End(a, b, c)),
        1 => who().prop_map(|(a, b, c)| Op::Dtmf(a, b, c)),
        1 => (0..3usize).prop_map(|c| Op::Session(Disturbance::Logout(c))),
        2 => (0..3usize).prop_map(|c| Op::Session(Disturbance::Login(c))),
        1 => (0..3usize).prop_map(|c| Op::Session(Disturbance::Cut(c))),
        2 => (0..70_000u64).prop_map(|ms| Op::Session(Disturbance::Advance(ms))),
        3 => (0..20u8).prop_map(|n| Op::Session(Disturbance::Steps(n))),
    ]
}

/// A call started or ended by a local action, at a position in the client's event log.
#[derive(Clone, Debug)]
enum Local {
    /// An invitation the client sent (it was not rejected on the spot).
    Invited(String, String),
    /// A refusal the client sent: the end of that call on its side.
    Refused(String, String),
}

/// Per (channel, peer): calls started (invitations sent or received) must be matched one to
/// one by terminal callbacks (refused, failed, ended by either side, or refused by us), and a
/// terminal never comes before its start.
fn check_client(
    c: usize,
    events: &[Event],
    local: &[(usize, Local)],
    ignore: &std::collections::HashSet<usize>,
) -> Result<(), TestCaseError> {
    let mut open: HashMap<(String, String), i64> = HashMap::new();
    let mut actions = local.iter().peekable();
    let mut step = |key: (String, String), delta: i64, what: &str| -> Result<(), TestCaseError> {
        let n = open.entry(key.clone()).or_default();
        *n += delta;
        prop_assert!(
            *n >= 0,
            "client {}: {} for {:?} with no call open",
            c,
            what,
            key
        );
        Ok(())
    };
    for (i, e) in events.iter().enumerate() {
        while let Some((at, action)) = actions.peek() {
            if *at > i {
                break;
            }
            match action {
                Local::Invited(ch, peer) => step((ch.clone(), peer.clone()), 1, "invite")?,
                Local::Refused(ch, peer) => step((ch.clone(), peer.clone()), -1, "refuse")?,
            }
            actions.next();
        }
        if ignore.contains(&i) {
            continue; // The failure callback of a call rejected on the spot.
        }
        match e {
            Event::InviteReceived {
                channel, account, ..
            } => step((channel.clone(), account.clone()), 1, "received")?,
            Event::InviteRefusedByPeer {
                channel, account, ..
            }
            | Event::InviteFailed {
                channel, account, ..
            }
            | Event::InviteEndByPeer {
                channel, account, ..
            }
            | Event::InviteEndByMyself {
                channel, account, ..
            } => step((channel.clone(), account.clone()), -1, &format!("{e:?}"))?,
            Event::InviteMsg {
                msg_type, msg_data, ..
            } => {
                prop_assert_eq!(msg_type, "DTMF");
                prop_assert!(
                    msg_data
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
                );
            }
            _ => {}
        }
    }
    for (at, action) in actions {
        prop_assert!(*at >= events.len());
        match action {
            Local::Invited(ch, peer) => step((ch.clone(), peer.clone()), 1, "invite")?,
            Local::Refused(ch, peer) => step((ch.clone(), peer.clone()), -1, "refuse")?,
        }
    }
    for (key, n) in open {
        prop_assert_eq!(
            n,
            0,
            "client {}: {:?} has {} calls without a terminal callback",
            c,
            key,
            n
        );
    }
    Ok(())
}

/// Runs a local action of client `c`; unless it was rejected on the spot, records `what` at
/// its position in `local`.
fn unless_rejected(
    sim: &mut Sim,
    c: usize,
    what: Local,
    local: &mut Vec<(usize, Local)>,
    ignore: &mut std::collections::HashSet<usize>,
    act: impl FnOnce(&mut beckon_client::Client, std::time::Instant),
) {
    let (at, rejected) = rejected_on_the_spot(sim, c, act, ignore);
    if !rejected {
        local.push((at, what));
    }
}

/// Runs a local action and reports whether it was rejected on the spot.
fn rejected_on_the_spot(
    sim: &mut Sim,
    c: usize,
    act: impl FnOnce(&mut beckon_client::Client, std::time::Instant),
    ignore: &mut std::collections::HashSet<usize>,
) -> (usize, bool) {
    sim.flush();
    let at = sim.events(c).len();
    sim.act(c, act);
    sim.flush();
    let rejected = sim.events(c)[at..]
        .iter()
        .any(|e| matches!(e, Event::Error { .. } | Event::InviteFailed { .. }));
    if rejected {
        ignore.extend(at..sim.events(c).len());
    }
    (at, rejected)
}

fn run(seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut sim = Sim::logged_in(seed, &ACCOUNTS);
    let mut local: Vec<Vec<(usize, Local)>> = vec![Vec::new(); 3];
    let mut ignore: Vec<std::collections::HashSet<usize>> = vec![Default::default(); 3];
    for op in ops {
        match op {
            Op::Invite(a, b, ch, require) => {
                let extra = if require {
                    r#"{"_require_peer_online":1}"#
                } else {
                    ""
                };
                let invited = Local::Invited(CHANNELS[ch].to_owned(), ACCOUNTS[b].to_owned());
                unless_rejected(
                    &mut sim,
                    a,
                    invited,
                    &mut local[a],
                    &mut ignore[a],
                    |c, now| c.channel_invite_user2(CHANNELS[ch], ACCOUNTS[b], extra, now),
                );
            }
            Op::Accept(a, b, ch) => sim.act(a, |c, now| {
                c.channel_invite_accept(CHANNELS[ch], ACCOUNTS[b], "", now)
            }),
            Op::Refuse(a, b, ch) => {
                let refused = Local::Refused(CHANNELS[ch].to_owned(), ACCOUNTS[b].to_owned());
                unless_rejected(
                    &mut sim,
                    a,
                    refused,
                    &mut local[a],
                    &mut ignore[a],
                    |c, now| c.channel_invite_refuse(CHANNELS[ch], ACCOUNTS[b], "", now),
                );
            }
            Op::End(a, b, ch) => sim.act(a, |c, now| {
                c.channel_invite_end(CHANNELS[ch], ACCOUNTS[b], now)
            }),
            Op::Dtmf(a, b, ch) => sim.act(a, |c, now| {
                c.channel_invite_dtmf(CHANNELS[ch], ACCOUNTS[b], "12#*", now)
            }),
            Op::Session(d) => sim.disturb(d, &ACCOUNTS),
        }
    }
    // Finish every flow: let invitations time out, then end what is still talking.
    sim.settle(Duration::from_secs(61));
    for c in 0..3 {
        if sim.act(c, |cl, _| cl.status()) == Status::LoggedIn {
            for call in sim.act(c, |cl, _| cl.calls()) {
                sim.act(c, |cl, now| {
                    cl.channel_invite_end(&call.channel, &call.peer, now)
                });
            }
        }
    }
    sim.run_until_idle();
    sim.advance(Duration::from_secs(130)); // past grace: sessions of cut clients end
    sim.run_until_idle();

    prop_assert_eq!(
        sim.broker().calls_in_progress(),
        0,
        "calls left in the broker"
    );
    for c in 0..3 {
        prop_assert!(
            sim.act(c, |cl, _| cl.calls()).is_empty(),
            "client {} still has calls",
            c
        );
        check_client(c, sim.events(c), &local[c], &ignore[c])?;
    }
    Ok(())
}

/// Client `c` got `onInviteFailed` with `ecode`.
fn assert_invite_failed(sim: &Sim, c: usize, ecode: i32) {
    let failed = |e: &Event| matches!(e, Event::InviteFailed { ecode: got, .. } if *got == ecode);
    assert!(
        sim.count(c, failed) > 0,
        "client {c} has no onInviteFailed({ecode})"
    );
}

fn three(seed: u64) -> Sim {
    Sim::logged_in(seed, &ACCOUNTS)
}

#[test]
fn invite_ring_accept_dtmf_end() {
    let mut sim = three(1);
    sim.act(0, |c, now| {
        c.channel_invite_user2("room", "ben", r#"{"srcNum":"1"}"#, now)
    });
    sim.run_until_idle();
    assert!(sim.events(1).contains(&Event::InviteReceived {
        channel: "room".into(),
        account: "ann".into(),
        uid: 0,
        extra: r#"{"srcNum":"1"}"#.into()
    }));
    assert!(sim.events(0).contains(&Event::InviteReceivedByPeer {
        channel: "room".into(),
        account: "ben".into(),
        uid: 0
    }));
    sim.act(1, |c, now| {
        c.channel_invite_accept("room", "ann", r#"{"ok":1}"#, now)
    });
    sim.run_until_idle();
    assert!(sim.events(0).contains(&Event::InviteAcceptedByPeer {
        channel: "room".into(),
        account: "ben".into(),
        uid: 0,
        extra: r#"{"ok":1}"#.into()
    }));
    sim.act(0, |c, now| {
        c.channel_invite_dtmf("room", "ben", "123#", now)
    });
    sim.run_until_idle();
    assert!(sim.events(1).contains(&Event::InviteMsg {
        channel: "room".into(),
        account: "ann".into(),
        uid: 0,
        msg_type: "DTMF".into(),
        msg_data: "123#".into(),
        extra: String::new()
    }));
    sim.act(1, |c, now| c.channel_invite_end("room", "ann", now));
    sim.run_until_idle();
    assert!(sim.events(1).contains(&Event::InviteEndByMyself {
        channel: "room".into(),
        account: "ann".into(),
        uid: 0
    }));
    assert!(sim.events(0).contains(&Event::InviteEndByPeer {
        channel: "room".into(),
        account: "ben".into(),
        uid: 0,
        extra: String::new()
    }));
    assert_eq!(sim.broker().calls_in_progress(), 0);
}

#[test]
fn unanswered_invitations_time_out_and_reinvites_are_refused() {
    let mut sim = three(2);
    sim.act(0, |c, now| c.channel_invite_user("room", "ben", now));
    sim.run_until_idle();
    sim.act(0, |c, now| c.channel_invite_user("room", "ben", now));
    sim.run_until_idle();
    assert_invite_failed(&sim, 0, 701);
    sim.advance(Duration::from_secs(61));
    assert!(
        sim.events(0).iter().any(
            |e| matches!(e, Event::InviteFailed { ecode: 704, account, .. } if account == "ben")
        )
    );
    assert!(
        sim.events(1)
            .iter()
            .any(|e| matches!(e, Event::InviteEndByPeer { account, .. } if account == "ann"))
    );
    assert_eq!(sim.broker().stats().call_timeouts, 1);
}

#[test]
fn offline_callees_fail_at_once_or_after_waiting() {
    let mut sim = three(3);
    sim.act(1, |c, now| c.logout(now));
    sim.run_until_idle();
    sim.act(0, |c, now| {
        c.channel_invite_user2("a", "ben", r#"{"_require_peer_online":1}"#, now)
    });
    sim.run_until_idle();
    assert!(
        sim.events(0).iter().any(
            |e| matches!(e, Event::InviteFailed { ecode: 703, channel, .. } if channel == "a")
        )
    );
    // Without the flag the invitation waits up to 20 s for the callee.
    sim.act(0, |c, now| c.channel_invite_user("b", "ben", now));
    sim.run_until_idle();
    sim.advance(Duration::from_secs(5));
    sim.login(1, "ben");
    sim.run_until_idle();
    assert!(
        sim.events(1)
            .iter()
            .any(|e| matches!(e, Event::InviteReceived { channel, .. } if channel == "b"))
    );
    sim.act(0, |c, now| c.channel_invite_user("c", "cid", now));
    sim.act(2, |c, now| c.logout(now));
    sim.run_until_idle();
    sim.act(0, |c, now| c.channel_invite_user("d", "cid", now));
    sim.run_until_idle();
    sim.advance(Duration::from_secs(21));
    assert!(
        sim.events(0).iter().any(
            |e| matches!(e, Event::InviteFailed { ecode: 703, channel, .. } if channel == "d")
        )
    );
}

#[test]
fn calls_on_unknown_invitations_are_rejected_locally() {
    let mut sim = three(4);
    sim.act(0, |c, now| c.channel_invite_accept("room", "ben", "", now));
    sim.act(0, |c, now| c.channel_invite_end("room", "ben", now));
    sim.act(0, |c, now| c.channel_invite_dtmf("room", "ben", "1", now));
    sim.act(0, |c, now| {
        c.channel_invite_user2("room", "ben", "not json", now)
    });
    sim.act(0, |c, now| c.channel_invite_user2("room", "ann", "", now));
    sim.run_until_idle();
    let codes: Vec<i32> = sim
        .events(0)
        .iter()
        .filter_map(|e| match e {
            Event::Error { ecode, .. } => Some(*ecode),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [1004, 1004, 1004, 1004, 1004]);
    sim.act(0, |c, now| c.channel_invite_user("room", "ben", now));
    sim.run_until_idle();
    sim.act(0, |c, now| c.channel_invite_dtmf("room", "ben", "12a", now));
    sim.run_until_idle();
    assert!(matches!(
        sim.events(0).last(),
        Some(Event::Error { ecode: 1004, .. })
    ));
}

#[test]
fn phone_invitations_need_a_gateway() {
    let mut sim = three(5);
    sim.act(0, |c, now| c.channel_invite_phone("room", "+15550100", now));
    sim.run_until_idle();
    assert_invite_failed(&sim, 0, 703);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn every_call_ends_once_on_both_sides(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..50)) {
        run(seed, ops)?;
    }
}
