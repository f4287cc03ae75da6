//! The broker never trusts a client: raw frames with bad input get the spec's error code, a
//! clear message, and change nothing; malformed frames end only the sender's connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use beckon_broker::{AppConfig, Apps, Broker, BrokerConfig, ConnId, MemoryStore, Output};
use beckon_proto::codec::{decode_server, encode_client};
use beckon_proto::pb::{self, client_frame::Kind, event::Body, request::Op, server_frame};
use beckon_testkit::wire;
use beckon_token::{Privileges, TokenClaims};

const CERT: &[u8] = b"0123456789abcdef0123456789abcdef";
const EPOCH_UNIX_MS: u64 = 1_800_000_000_000;

struct Rig {
    broker: Broker<MemoryStore>,
    now: Instant,
    next_req: u64,
}

impl Rig {
    fn new() -> Self {
        let mut apps = Apps::default();
        apps.insert(AppConfig::new("app", CERT));
        let mut open = AppConfig::new("open", CERT);
        open.allow_no_token = true;
        apps.insert(open);
        let now = Instant::now();
        Self {
            broker: Broker::new(
                BrokerConfig::new(apps, [1; 32]),
                MemoryStore::new(),
                now,
                EPOCH_UNIX_MS,
            ),
            now,
            next_req: 1,
        }
    }

    fn outputs(&mut self) -> Vec<Output> {
        wire::outputs(&mut self.broker)
    }

    fn frames_to(&mut self, conn: ConnId) -> Vec<server_frame::Kind> {
        wire::frames_to(&mut self.broker, conn)
    }

    fn login_raw(
        &mut self,
        conn: ConnId,
        app: &str,
        account: &str,
        token: &str,
    ) -> server_frame::Kind {
        wire::connect_login(&mut self.broker, conn, (app, account, token), self.now)
    }

    fn token(&self, app: &str, account: &str, expires_in: i64) -> String {
        let now = EPOCH_UNIX_MS / 1000;
        beckon_token::mint(
            CERT,
            &TokenClaims {
                app_id: app.into(),
                account: account.into(),
                issued_at: now,
                expires_at: now.saturating_add_signed(expires_in),
                privileges: Privileges::NONE,
            },
        )
    }

    fn login(&mut self, conn: ConnId, account: &str) {
        let token = self.token("app", account, 3600);
        let answer = self.login_raw(conn, "app", account, &token);
        assert!(
            matches!(answer, server_frame::Kind::LoginOk(_)),
            "{answer:?}"
        );
    }

    /// Sends a request; returns the reply.
    fn request(&mut self, conn: ConnId, op: Op) -> pb::Reply {
        let id = self.next_req;
        self.next_req += 1;
        wire::request(&mut self.broker, conn, id, op, self.now)
    }
}

fn login_code(answer: server_frame::Kind) -> i32 {
    match answer {
        server_frame::Kind::LoginFailed(f) => {
            assert!(!f.message.is_empty(), "failures carry a message");
            f.code
        }
        other => panic!("expected a login failure, got {other:?}"),
    }
}

#[test]
fn login_failures_carry_their_codes() {
    let mut r = Rig::new();
    let good = r.token("app", "alice", 3600);
    let other_account = r.token("app", "bob", 3600);
    let expired = r.token("app", "alice", -1);
    let wrong_app = r.token("open", "alice", 3600);
    let long = "a".repeat(129);
    let cases: [(&str, &str, &str, i32); 10] = [
        ("nope", "alice", &good, 202),
        ("app", "alice", "bk1.garbage", 206),
        ("app", "alice", &other_account, 206),
        ("app", "alice", &expired, 204),
        ("app", "alice", "_no_need_token", 206),
        ("app", "al ice", &good, 1004),
        ("app", "", &good, 1004),
        ("app", &long, &good, 1005),
        ("", "alice", &good, 1004),
        ("app", "alice", &wrong_app, 206),
    ];
    for (conn, (app, account, token, code)) in (1..).map(ConnId).zip(cases) {
        let answer = r.login_raw(conn, app, account, token);
        assert_eq!(login_code(answer), code, "{app:?} {account:?} {token:?}");
    }
    assert!(matches!(
        r.login_raw(ConnId(11), "open", "alice", "_no_need_token"),
        server_frame::Kind::LoginOk(_)
    ));
    assert!(
        !r.broker.is_online("app", "alice"),
        "failed logins change nothing"
    );
    assert_eq!(r.broker.stats().login_failures, 10);
}

#[test]
fn requests_before_login_and_garbage_end_only_that_connection() {
    let mut r = Rig::new();
    r.login(ConnId(1), "alice");
    r.broker.connect(ConnId(2), r.now);
    let req = encode_client(Kind::Request(pb::Request {
        id: 1,
        op: Some(Op::Logout(pb::Logout {})),
    }));
    r.broker.handle_frame(ConnId(2), &req, r.now);
    let out = r.outputs();
    assert!(out.iter().any(|o| matches!(o, Output::Send { conn: ConnId(2), frame } if matches!(decode_server(&frame.to_bytes()), Ok(server_frame::Kind::Kick(k)) if k.code == 104))));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Close {
            conn: ConnId(2),
            ..
        }
    )));

    r.broker.connect(ConnId(3), r.now);
    r.broker
        .handle_frame(ConnId(3), &[0xff, 0xff, 0xff, 0x01], r.now);
    assert!(r.outputs().iter().any(|o| matches!(
        o,
        Output::Close {
            conn: ConnId(3),
            ..
        }
    )));
    // A second login on a logged-in connection is a protocol violation too.
    let login = encode_client(Kind::Login(pb::Login {
        app_id: "app".into(),
        account: "x".into(),
        token: "t".into(),
        ..Default::default()
    }));
    r.broker.handle_frame(ConnId(1), &login, r.now);
    assert!(r.outputs().iter().any(|o| matches!(
        o,
        Output::Close {
            conn: ConnId(1),
            ..
        }
    )));
    assert!(!r.broker.is_online("app", "alice"));
}

#[test]
fn bad_requests_get_codes_and_change_nothing() {
    let mut r = Rig::new();
    r.login(ConnId(1), "alice");
    let c = ConnId(1);
    let code = |rep: pb::Reply| {
        if rep.code != 0 {
            assert!(!rep.message.is_empty(), "errors carry a message");
        }
        rep.code
    };
    let send = |account: &str, msg: &str| {
        Op::SendInstantMessage(pb::SendInstantMessage {
            account: account.into(),
            msg: msg.into(),
            msg_id: "m".into(),
        })
    };
    assert_eq!(code(r.request(c, send("", "hi"))), 1004);
    assert_eq!(code(r.request(c, send("b ob", "hi"))), 1004);
    assert_eq!(code(r.request(c, send(&"b".repeat(129), "hi"))), 1005);
    assert_eq!(code(r.request(c, send("bob", &"x".repeat(8193)))), 1005);
    assert_eq!(
        r.broker.stats().messages_stored,
        0,
        "rejected messages are not stored"
    );
    assert_eq!(code(r.request(c, send("bob", &"x".repeat(8192)))), 0);

    let set = |name: &str, value: &str| {
        Op::SetUserAttr(pb::SetUserAttr {
            name: name.into(),
            value: value.into(),
        })
    };
    assert_eq!(code(r.request(c, set("", "v"))), 1004);
    assert_eq!(code(r.request(c, set("_member_num", "3"))), 1004);
    assert_eq!(code(r.request(c, set("_conn_timeout", "later"))), 1004);
    assert_eq!(code(r.request(c, set("k", &"v".repeat(1025)))), 1005);
    assert_eq!(code(r.request(c, set(&"k".repeat(129), "v"))), 1005);
    assert_eq!(code(r.request(c, set("k", "bad\u{0}value"))), 1004);
    let all = r.request(
        c,
        Op::GetUserAttrAll(pb::GetUserAttrAll {
            account: "alice".into(),
        }),
    );
    assert!(
        matches!(all.result, Some(pb::reply::Result::AttrAll(ref a)) if a.json == "{}"),
        "{all:?}"
    );
    assert_eq!(code(r.request(c, set("_conn_timeout", "30"))), 0);

    assert_eq!(
        code(r.request(
            c,
            Op::QueryUserStatus(pb::QueryUserStatus { account: "".into() })
        )),
        1004
    );
    assert_eq!(
        code(r.request(
            c,
            Op::GetUserAttr(pb::GetUserAttr {
                account: "bob".into(),
                name: "".into()
            })
        )),
        1004
    );
    assert_eq!(
        code(r.request(
            c,
            Op::GetUserAttrAll(pb::GetUserAttrAll {
                account: "a\nb".into()
            })
        )),
        1004
    );

    let invoke = |name: &str, req: &str| {
        Op::Invoke(pb::Invoke {
            name: name.into(),
            req: req.into(),
            call_id: "c".into(),
        })
    };
    let err = |rep: pb::Reply| match rep.result {
        Some(pb::reply::Result::InvokeResult(i)) => i.err,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(r.request(c, invoke("io.agora.signal.nope", "{}"))),
        "1004"
    );
    assert_eq!(
        err(r.request(c, invoke("io.agora.signal.user_get_attr", "not json"))),
        "1004"
    );
    assert_eq!(
        err(r.request(c, invoke("io.agora.signal.user_get_attr", "[1]"))),
        "1004"
    );
    assert_eq!(
        err(r.request(
            c,
            invoke("io.agora.signal.user_get_attr", r#"{"account":"bob"}"#)
        )),
        "1004"
    );
    assert_eq!(
        err(r.request(
            c,
            invoke(
                "io.agora.signal.user_set_attr",
                r#"{"name":"_x","value":"1"}"#
            )
        )),
        "1004"
    );
    assert_eq!(
        err(r.request(
            c,
            invoke(
                "io.agora.signal.user_get_attr",
                r#"{"account":"alice","name":"_conn_timeout"}"#
            )
        )),
        ""
    );

    // A request of an unknown kind (from a newer client) is answered, not fatal.
    let frame = encode_client(Kind::Request(pb::Request { id: 999, op: None }));
    r.broker.handle_frame(c, &frame, r.now);
    assert!(r.frames_to(c).iter().any(|k| matches!(k, server_frame::Kind::Event(pb::Event { body: Some(Body::Reply(rep)), .. }) if rep.code == 1004)));
    assert!(r.broker.is_online("app", "alice"));
}

#[test]
fn offline_store_is_bounded_and_can_be_switched_off() {
    let mut apps = Apps::default();
    let mut app = AppConfig::new("app", CERT);
    app.allow_no_token = true;
    app.offline.max_per_account = 3;
    apps.insert(app);
    let mut closed = AppConfig::new("closed", CERT);
    closed.allow_no_token = true;
    closed.offline.enabled = false;
    apps.insert(closed);
    let now = Instant::now();
    let mut b = Broker::new(
        BrokerConfig::new(apps, [2; 32]),
        MemoryStore::new(),
        now,
        EPOCH_UNIX_MS,
    );
    let mut codes = Vec::new();
    for (conn, app) in [(ConnId(1), "app"), (ConnId(2), "closed")] {
        b.connect(conn, now);
        let login = pb::Login {
            app_id: app.into(),
            account: "alice".into(),
            token: "_no_need_token".into(),
            ..Default::default()
        };
        b.handle_frame(conn, &encode_client(Kind::Login(login)), now);
        for id in 1..=4 {
            let op = Op::SendInstantMessage(pb::SendInstantMessage {
                account: "bob".into(),
                msg: "hi".into(),
                msg_id: String::new(),
            });
            b.handle_frame(
                conn,
                &encode_client(Kind::Request(pb::Request { id, op: Some(op) })),
                now,
            );
        }
    }
    // Refusals are answered at once; the messages offered to the store once it has answered.
    for o in beckon_testkit::wire::outputs(&mut b) {
        if let Output::Send { frame, .. } = o
            && let Ok(server_frame::Kind::Event(pb::Event {
                body: Some(Body::Reply(rep)),
                ..
            })) = decode_server(&frame.to_bytes())
        {
            codes.push(rep.code);
        }
    }
    assert_eq!(codes, [403, 403, 403, 403, 0, 0, 0, 400]);
}

#[test]
fn silent_connections_are_dropped_after_three_heartbeats() {
    let mut r = Rig::new();
    r.login(ConnId(1), "alice");
    r.broker.connect(ConnId(2), r.now); // never logs in
    let hb = r.broker.config().heartbeat_interval;
    let mut t = r.now;
    while t < r.now + hb * 4 {
        t += Duration::from_secs(1);
        if r.broker.poll_timeout().is_some_and(|at| at <= t) {
            r.broker.handle_timeout(t);
        }
    }
    let closes: Vec<ConnId> = r
        .outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Close { conn, .. } => Some(conn),
            Output::Send { .. } => None,
        })
        .collect();
    assert_eq!(closes, [ConnId(2), ConnId(1)]);
    // The session waits in grace (120 s by default) for a resume, online all the while.
    assert!(r.broker.is_online("app", "alice"));
    let later = t + Duration::from_secs(121);
    r.broker.handle_timeout(later);
    assert!(!r.broker.is_online("app", "alice"));
    assert_eq!(r.broker.stats().grace_expiries, 1);
}

proptest! {
    #[test]
    fn any_frame_bytes_leave_the_broker_consistent(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20)) {
        let mut r = Rig::new();
        r.login(ConnId(1), "alice");
        r.broker.connect(ConnId(2), r.now);
        for f in frames {
            r.broker.handle_frame(ConnId(2), &Bytes::from(f), r.now);
            let _ = r.outputs();
        }
        prop_assert!(r.broker.is_online("app", "alice"), "garbage on one connection never affects another");
    }
}

#[test]
fn bad_invoke_arguments_are_1004_with_a_reason_and_change_nothing() {
    let mut r = Rig::new();
    r.login(ConnId(1), "alice");
    let c = ConnId(1);
    let set = Op::SetUserAttr(pb::SetUserAttr {
        name: "color".into(),
        value: "blue".into(),
    });
    assert_eq!(r.request(c, set).code, 0);
    let join = Op::ChannelJoin(pb::ChannelJoin {
        channel: "room".into(),
    });
    assert_eq!(r.request(c, join).code, 0);
    let topic = Op::ChannelSetAttr(pb::ChannelSetAttr {
        channel: "room".into(),
        name: "topic".into(),
        value: "news".into(),
    });
    assert_eq!(r.request(c, topic).code, 0);
    let state = |r: &Rig| {
        (
            r.broker.store().user_attrs("app", "alice"),
            r.broker.channel_attrs("app", "room"),
            r.broker.channel_members("app", "room"),
            r.broker.channel_count("app"),
        )
    };
    let before = state(&r);
    let stats = r.broker.stats();
    let f = |name: &str| format!("io.agora.signal.{name}");
    let bad = [
        (f("user_set_attr"), r#"{"name":"color"}"#),
        (f("user_set_attr"), r#"{"name":"color","value":7}"#),
        (f("user_set_attr"), r#"["color","red"]"#),
        (
            f("channel_set_attr"),
            r#"{"channel":"room","name":"topic"}"#,
        ),
        (
            f("channel_set_attr"),
            r#"{"channel":"room","name":"topic","value":["x"]}"#,
        ),
        (
            f("channel_set_attr"),
            r#"{"channel":"room","name":"_member_num","value":"1"}"#,
        ),
        (f("channel_del_attr"), r#"{"channel":"room"}"#),
        (f("channel_clear_attr"), r#"{"channel":1}"#),
        (f("channel_clear_attr"), "room"),
        (
            f("channel_query_userlist_all"),
            r#"{"name":"room","num":-5}"#,
        ),
        (f("user_get_attr_all"), "{"),
        (f("user_query_user_status"), ""),
        (f("nope"), r#"{"channel":"room"}"#),
        (String::new(), "{}"),
    ];
    for (name, req) in bad {
        let result = wire::invoke_result(r.request(c, wire::invoke_request(&name, req)));
        assert_eq!(result.err, "1004", "{name} {req}");
        let resp: serde_json::Value = serde_json::from_str(&result.resp).unwrap();
        let why = resp["error"].as_str().unwrap_or_default();
        assert!(!why.is_empty(), "{name} {req}: the response says why");
    }
    assert_eq!(state(&r), before, "refused functions change nothing");
    let after = r.broker.stats();
    assert_eq!(
        (after.store_errors, after.sessions),
        (stats.store_errors, stats.sessions)
    );
    assert!(r.broker.is_online("app", "alice"));
}

#[test]
fn legacy_tokens_only_for_apps_that_opt_in() {
    let mut apps = Apps::default();
    apps.insert(AppConfig::new("app", CERT));
    let mut migrating = AppConfig::new("migrating", CERT);
    migrating.legacy_tokens = true;
    apps.insert(migrating);
    let now = Instant::now();
    let config = BrokerConfig::new(apps, [1; 32]);
    let mut b = Broker::new(config, MemoryStore::new(), now, EPOCH_UNIX_MS);
    let unix = EPOCH_UNIX_MS / 1000;
    let legacy = |app: &str, account: &str, expires: u64| {
        beckon_token::legacy::mint(CERT, app, account, expires)
    };
    let cases = [
        // Off by default: the format is weak.
        ("app", legacy("app", "alice", unix + 60), Some(206)),
        ("migrating", legacy("migrating", "alice", unix + 60), None),
        ("migrating", legacy("migrating", "alice", unix), Some(204)),
        (
            "migrating",
            legacy("migrating", "bob", unix + 60),
            Some(206),
        ),
        ("migrating", legacy("app", "alice", unix + 60), Some(206)),
        (
            "migrating",
            beckon_token::legacy::mint(b"not the certificate", "migrating", "alice", unix + 60),
            Some(206),
        ),
        ("migrating", "1:migrating:garbage".to_owned(), Some(206)),
    ];
    for (conn, (app, token, want)) in (1..).map(ConnId).zip(cases) {
        let answer = wire::connect_login(&mut b, conn, (app, "alice", &token), now);
        let got = match answer {
            server_frame::Kind::LoginOk(_) => None,
            other => Some(login_code(other)),
        };
        assert_eq!(got, want, "{app} {token}");
    }
    assert_eq!(b.stats().legacy_logins, 1);
    assert!(b.is_online("migrating", "alice"));
    assert!(
        !b.privileges("migrating", "alice")
            .is_some_and(|p| p.contains(Privileges::SERVER)),
        "a legacy token grants no privilege"
    );
}
