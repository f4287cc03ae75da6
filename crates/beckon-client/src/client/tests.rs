//! Unit tests of the client on its own: a scripted server, no broker.

use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_proto::codec;
use beckon_proto::pb::{self, client_frame, server_frame};

use super::{Client, ConnectionCommand, Status};
use crate::config::ClientConfig;
use crate::event::Event;

fn login_ok(resumed: bool) -> Bytes {
    codec::encode_server(server_frame::Kind::LoginOk(pb::LoginOk {
        uid: 42,
        session_id: 7,
        resume_secret: Bytes::from_static(b"secret"),
        heartbeat_interval_ms: 10_000,
        resumed,
        ..Default::default()
    }))
}

fn drain(c: &mut Client) -> Vec<Event> {
    while c.poll_transmit().is_some() {}
    while c.poll_connection().is_some() {}
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn logged_in(seed: u64, now: Instant) -> Client {
    let mut c = Client::new(
        ClientConfig {
            seed,
            ..ClientConfig::default()
        },
        now,
    );
    c.login("app", "alice", "_no_need_token", "", now);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    c.handle_connected(now);
    c.handle_frame(&login_ok(false), now);
    assert_eq!(drain(&mut c), [Event::LoginSuccess { uid: 42, fd: 0 }]);
    c
}

#[test]
fn reconnect_attempts_then_logout_net() {
    let now = Instant::now();
    let mut c = logged_in(1, now);
    c.handle_disconnected(now);
    assert_eq!(c.status(), Status::Reconnecting);
    let mut events = drain(&mut c);
    let mut t = now;
    for _ in 0..3 {
        t = c.poll_timeout().expect("a retry is scheduled");
        c.handle_timeout(t);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
        c.handle_disconnected(t); // the attempt fails
        events.extend(drain(&mut c));
    }
    assert_eq!(
        events,
        [
            Event::Reconnecting { nretry: 1 },
            Event::Reconnecting { nretry: 2 },
            Event::Reconnecting { nretry: 3 },
            Event::Logout { ecode: 102 },
        ]
    );
    assert_eq!(c.status(), Status::NotLoggedIn);
    assert!(t - now < Duration::from_secs(30));
}

fn overloaded(retry_after_ms: u32) -> Bytes {
    codec::encode_server(server_frame::Kind::LoginFailed(pb::LoginFailed {
        code: 1007,
        message: "busy".into(),
        retry_after_ms,
    }))
}

/// Admission control (SPEC §10): a refusal for load with a retry-after is neither a failed
/// attempt nor time used up; the client comes back when the server said, however often it is
/// told to, and only then.
#[test]
fn the_servers_retry_after_is_honoured_and_costs_no_attempt() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::default(), now);
    c.login2("app", "alice", "_no_need_token", "", 30, 2, now);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    let mut t = now;
    for _ in 0..10 {
        c.handle_connected(t);
        c.handle_frame(&overloaded(20_000), t);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Close));
        let events = drain(&mut c);
        assert!(
            matches!(&events[..], [Event::Log { txt }] if txt.contains("busy")),
            "{events:?}"
        );
        assert_eq!(c.status(), Status::LoggingIn);
        let next = c.poll_timeout().expect("the attempt is scheduled");
        let waited = next - t;
        assert!(
            waited >= Duration::from_secs(20) && waited <= Duration::from_millis(20_250),
            "{waited:?}"
        );
        c.handle_timeout(next - Duration::from_millis(1));
        assert_eq!(c.poll_connection(), None, "not before the server said");
        t = next;
        c.handle_timeout(t);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    }
    assert!(
        t - now > Duration::from_secs(200),
        "far past the 30 s login time"
    );
    c.handle_connected(t);
    c.handle_frame(&login_ok(false), t);
    assert_eq!(drain(&mut c), [Event::LoginSuccess { uid: 42, fd: 0 }]);

    // Reconnecting: the refusals add no onReconnecting and spend none of the attempts.
    c.handle_disconnected(t);
    let next = c.poll_timeout().unwrap();
    c.handle_timeout(next);
    assert_eq!(drain(&mut c), [Event::Reconnecting { nretry: 1 }]);
    let mut t = next;
    for _ in 0..5 {
        c.handle_connected(t);
        c.handle_frame(&overloaded(1_000), t);
        assert!(matches!(&drain(&mut c)[..], [Event::Log { .. }]));
        t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
    }
    assert_eq!(c.status(), Status::Reconnecting);
    c.handle_connected(t);
    c.handle_frame(&login_ok(false), t);
    assert_eq!(drain(&mut c), [Event::Reconnected { fd: 0 }]);

    // Without a hint, an overload refusal is an ordinary failure of the login.
    let mut c = Client::new(ClientConfig::default(), now);
    c.login("app", "alice", "_no_need_token", "", now);
    c.handle_connected(now);
    c.handle_frame(&overloaded(0), now);
    let events = drain(&mut c);
    assert!(
        events.contains(&Event::LoginFailed { ecode: 1007 }),
        "{events:?}"
    );
}

#[test]
fn a_login_that_never_connects_fails_with_login_net() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::default(), now);
    c.login2("app", "alice", "_no_need_token", "", 30, 2, now);
    assert_eq!(c.status(), Status::LoggingIn);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    c.handle_disconnected(now);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    c.handle_disconnected(t);
    assert_eq!(drain(&mut c), [Event::LoginFailed { ecode: 201 }]);
}

#[test]
fn first_reconnects_of_many_clients_spread_out() {
    let now = Instant::now();
    let mut delays: Vec<Duration> = (0..500)
        .map(|seed| {
            let mut c = logged_in(seed, now);
            c.handle_disconnected(now);
            c.poll_timeout().unwrap() - now
        })
        .collect();
    delays.sort();
    let jitter = ClientConfig::default().first_attempt_jitter;
    assert!(delays[499] <= jitter);
    // Spread across the window, not bunched at one instant.
    assert!(
        delays[50] < jitter / 4 && delays[450] > jitter * 3 / 4,
        "{:?}..{:?}",
        delays[50],
        delays[450]
    );
}

#[test]
fn resumed_session_resends_only_unapplied_requests() {
    let now = Instant::now();
    let mut c = logged_in(3, now);
    c.query_user_status("bob", now); // id 1
    c.query_user_status("cid", now); // id 2
    drain(&mut c);
    c.handle_disconnected(now);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    c.handle_connected(t);
    let login = c.poll_transmit().unwrap();
    match codec::decode_client(&login).unwrap() {
        client_frame::Kind::Login(l) => assert_eq!(l.resume.unwrap().session_id, 7),
        other => panic!("{other:?}"),
    }
    let ok = codec::encode_server(server_frame::Kind::LoginOk(pb::LoginOk {
        uid: 42,
        session_id: 7,
        resumed: true,
        last_applied_request_id: 1,
        heartbeat_interval_ms: 10_000,
        ..Default::default()
    }));
    c.handle_frame(&ok, t);
    let resent: Vec<u64> = std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|b| match codec::decode_client(&b).unwrap() {
            client_frame::Kind::Request(r) => Some(r.id),
            _ => None,
        })
        .collect();
    assert_eq!(resent, [2]);
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Reconnecting { nretry: 1 },
            Event::Reconnected { fd: 0 }
        ]
    );
    assert_eq!(c.pending_requests(), 2);
}

/// A server restarting says which requests it applied: the others are sent again on the new
/// server's fresh session (under new ids), not failed; the applied one whose reply came stays
/// answered.
#[test]
fn requests_a_restarting_server_did_not_apply_are_sent_again() {
    let now = Instant::now();
    let mut c = logged_in(5, now);
    c.message_instant_send("bob", "one", "m1", now); // id 1
    c.message_instant_send("bob", "two", "m2", now); // id 2
    c.message_instant_send("bob", "three", "m3", now); // id 3
    drain(&mut c);
    c.handle_frame(&reply(1, 1, 0), now);
    let go_away = codec::encode_server(server_frame::Kind::GoAway(pb::GoAway {
        message: "restarting".into(),
        reconnect_after_ms: 10,
        last_applied_request_id: Some(1),
    }));
    c.handle_frame(&go_away, now);
    let mut events = drain(&mut c);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    c.handle_connected(t);
    while c.poll_transmit().is_some() {}
    // The new server does not know the session: a fresh one.
    c.handle_frame(&login_ok(false), t);
    let resent: Vec<(u64, String)> = std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|b| match codec::decode_client(&b).unwrap() {
            client_frame::Kind::Request(pb::Request {
                id,
                op: Some(pb::request::Op::SendInstantMessage(m)),
            }) => Some((id, m.msg)),
            _ => None,
        })
        .collect();
    assert_eq!(resent, [(1, "two".to_owned()), (2, "three".to_owned())]);
    events.extend(std::iter::from_fn(|| c.poll_event()));
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::MessageSendError { .. })),
        "nothing failed: {events:?}"
    );
    assert!(events.contains(&Event::MessageSendSuccess {
        message_id: "m1".into()
    }));
    // Without the server's word, a request that went out may have been applied: it fails.
    let mut c = logged_in(6, now);
    c.message_instant_send("bob", "one", "m1", now);
    drain(&mut c);
    let go_away = codec::encode_server(server_frame::Kind::GoAway(pb::GoAway {
        message: "restarting".into(),
        reconnect_after_ms: 10,
        last_applied_request_id: None,
    }));
    c.handle_frame(&go_away, now);
    drain(&mut c);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    c.handle_connected(t);
    c.handle_frame(&login_ok(false), t);
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::MessageSendError {
        message_id: "m1".into(),
        ecode: 401
    }));
}

#[test]
fn bad_calls_fail_locally_with_codes() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::default(), now);
    c.get_user_attr("bob", "x", now);
    c.login("app", "bad account", "t", "", now);
    c.login("app", "", "t", "", now);
    c.login("app", &"a".repeat(129), "t", "", now);
    c.logout(now);
    let codes: Vec<(String, i32)> = drain(&mut c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { name, ecode, .. } => Some((name, ecode)),
            Event::LoginFailed { ecode } => Some(("onLoginFailed".into(), ecode)),
            _ => None,
        })
        .collect();
    let expect = [
        ("getUserAttr", 1003),
        ("onLoginFailed", 1004),
        ("login", 1004),
        ("onLoginFailed", 1004),
        ("login", 1004),
        ("onLoginFailed", 1005),
        ("login", 1005),
        ("logout", 108),
    ];
    assert_eq!(codes, expect.map(|(n, c)| (n.to_owned(), c)));
    assert_eq!(c.status(), Status::NotLoggedIn);

    let mut c = logged_in(4, now);
    let id = c.message_instant_send("bob", &"x".repeat(8193), "", now);
    assert!(!id.is_empty(), "an empty msgID is generated");
    let events = drain(&mut c);
    assert!(events.contains(&Event::MessageSendError {
        message_id: id,
        ecode: 1005
    }));
    c.set_attr("_member_num", "1", now);
    c.invoke("", "{}", "call", now);
    let events = drain(&mut c);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Error { name, ecode: 1004, .. } if name == "setAttr"))
    );
    assert!(events.contains(&Event::InvokeRet {
        call_id: "call".into(),
        err: "1004".into(),
        resp: String::new()
    }));
    assert_eq!(c.pending_requests(), 0, "rejected calls send nothing");
}

/// The server's answer `code` to request `id`, as event `seq`.
fn reply(seq: u64, id: u64, code: i32) -> Bytes {
    codec::encode_server(server_frame::Kind::Event(pb::Event {
        seq,
        body: Some(pb::event::Body::Reply(pb::Reply {
            request_id: id,
            code,
            message: "refused".into(),
            result: None,
        })),
    }))
}

#[test]
fn a_refusal_and_a_server_failure_report_alike() {
    let now = Instant::now();
    let mut c = logged_in(5, now);
    // Refused by the client: the request's failure callback, then onError.
    c.channel_join("", now);
    let local = drain(&mut c);
    // Refused by the server: the same callbacks, with the server's code.
    c.channel_join("room", now);
    drain(&mut c);
    c.handle_frame(&reply(1, 1, 1001), now);
    let remote = drain(&mut c);
    assert_eq!(
        local[0],
        Event::ChannelJoinFailed {
            channel: String::new(),
            ecode: 1004
        }
    );
    assert!(
        matches!(&local[1], Event::Error { name, ecode: 1004, .. } if name == "channelJoin"),
        "{local:?}"
    );
    assert_eq!(local.len(), 2);
    assert_eq!(
        remote,
        [
            Event::ChannelJoinFailed {
                channel: "room".into(),
                ecode: 1001
            },
            Event::Error {
                name: "channelJoin".into(),
                ecode: 1001,
                desc: "refused".into(),
            },
        ]
    );
}

#[test]
fn on_error_names_the_call_the_application_made() {
    let now = Instant::now();
    let mut c = logged_in(6, now);
    c.get_attr("color", now); // request 1
    c.get_attr_all(now); // request 2
    c.channel_invite_phone("p", "+15550100", now); // request 3
    drain(&mut c);
    for (seq, id) in [(1, 1), (2, 2), (3, 3)] {
        c.handle_frame(&reply(seq, id, 1001), now);
    }
    let names: Vec<String> = drain(&mut c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["getAttr", "getAttrAll", "channelInvitePhone3"]);
}

#[test]
fn every_call_before_login_is_not_logged_in_first() {
    let now = Instant::now();
    let mut c = Client::new(ClientConfig::default(), now);
    c.channel_invite_phone3("p", "+15550100", "", "{not json", now);
    let events = drain(&mut c);
    let failed = |e: &Event| {
        matches!(e, Event::InviteFailed { channel, account, uid: 0, ecode: 1003, extra }
            if channel == "p" && account == "+15550100" && extra == "{not json")
    };
    assert!(failed(&events[0]), "{events:?}");
}

#[test]
fn generated_message_ids_are_distinct_and_come_from_the_shared_generator() {
    let now = Instant::now();
    let mut c = logged_in(7, now);
    let ids = c.message_ids();
    let first = c.message_instant_send("bob", "hi", "", now);
    let second = ids.resolve("");
    let third = c.message_channel_send("room", "hi", "", now);
    assert_ne!(first, second);
    assert_ne!(second, third);
    let counter = |id: &str| id.rsplit('-').next().unwrap_or_default().to_owned();
    assert_eq!(
        [counter(&first), counter(&second), counter(&third)],
        ["1", "2", "3"]
    );
    assert_eq!(c.message_instant_send("bob", "hi", "mine", now), "mine");
}
