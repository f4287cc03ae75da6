//! Admin requests through the broker core: the token checks (every refusal changes nothing),
//! paging, kicks, messages as the system, minting, reloads and the metrics snapshot.

use std::time::{Duration, Instant};

use beckon_broker::admin::{
    AdminErrorKind, DEVELOPMENT_APP_LABEL, PageRequest, RequestKind, UNKNOWN_APP_LABEL,
};
use beckon_broker::{
    ADMIN_KICK_MESSAGE, AdminCall, AdminRequest, AdminResponse, AppConfig, Apps, Broker,
    BrokerConfig, ConnId, MemoryStore, Output,
};
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, event::Body, request::Op, server_frame};
use beckon_testkit::wire;
use beckon_token::{Privileges, TokenClaims};

/// The broker's clock reads this many Unix seconds at `now`.
const NOW_UNIX: u64 = 1_000_000;
const CERT: &[u8] = b"0123456789abcdef0123456789abcdef";

fn token(cert: &[u8], app: &str, account: &str, privileges: Privileges, expires_at: u64) -> String {
    beckon_token::mint(
        cert,
        &TokenClaims {
            app_id: app.into(),
            account: account.into(),
            issued_at: NOW_UNIX,
            expires_at,
            privileges,
        },
    )
}

fn admin_token() -> String {
    token(CERT, "app", "ops", Privileges::SERVER, NOW_UNIX + 60)
}

fn apps(cert: &[u8]) -> Apps {
    let mut apps = Apps::default();
    apps.insert(AppConfig::new("app", cert));
    apps.insert(AppConfig::new("other", cert));
    apps
}

fn broker(now: Instant) -> Broker<MemoryStore> {
    let config = BrokerConfig::new(apps(CERT), [3; 32]);
    Broker::new(config, MemoryStore::new(), now, NOW_UNIX * 1000)
}

/// Logs `account` of "app" in on `conn` with a token signed by `cert`; acknowledges all.
fn login(b: &mut Broker<MemoryStore>, conn: ConnId, account: &str, now: Instant) {
    let t = token(CERT, "app", account, Privileges::NONE, NOW_UNIX + 3600);
    let answer = wire::connect_login(b, conn, ("app", account, &t), now);
    assert!(
        matches!(answer, server_frame::Kind::LoginOk(_)),
        "{answer:?}"
    );
    wire::ack_all(b, conn, now);
}

fn call(token: &str, request: AdminRequest) -> AdminCall {
    AdminCall {
        app_id: "app".into(),
        token: token.into(),
        request,
    }
}

fn page(after: Option<&str>, limit: usize) -> PageRequest {
    PageRequest {
        after: after.map(str::to_owned),
        limit,
    }
}

#[test]
fn every_bad_token_is_refused_and_changes_nothing() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    let kick = || AdminRequest::Kick {
        account: "alice".into(),
    };
    let cases = [
        (
            String::new(),
            AdminErrorKind::Unauthorized,
            ErrorCode::LoginTokenWrong,
        ),
        (
            "garbage".into(),
            AdminErrorKind::Unauthorized,
            ErrorCode::LoginTokenWrong,
        ),
        (
            token(
                b"another certificate",
                "app",
                "ops",
                Privileges::SERVER,
                NOW_UNIX + 60,
            ),
            AdminErrorKind::Unauthorized,
            ErrorCode::LoginTokenWrong,
        ),
        (
            token(CERT, "app", "ops", Privileges::SERVER, NOW_UNIX),
            AdminErrorKind::Unauthorized,
            ErrorCode::LoginTokenExpired,
        ),
        (
            // A token of another app, signed with the same certificate: bound to its app.
            token(CERT, "other", "ops", Privileges::SERVER, NOW_UNIX + 60),
            AdminErrorKind::Unauthorized,
            ErrorCode::LoginTokenWrong,
        ),
        (
            token(CERT, "app", "ops", Privileges::NONE, NOW_UNIX + 60),
            AdminErrorKind::Forbidden,
            ErrorCode::GeneralFailed,
        ),
    ];
    for (t, kind, code) in cases {
        let e = b.admin(call(&t, kick()), now).unwrap_err();
        assert_eq!((e.kind, e.code), (kind, code), "{e:?}");
        assert!(!e.message.is_empty());
        assert!(b.is_online("app", "alice"));
        assert!(b.poll_output().is_none(), "a refused request sends nothing");
    }
    let unknown = AdminCall {
        app_id: "nope".into(),
        ..call(&admin_token(), kick())
    };
    let e = b.admin(unknown, now).unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (AdminErrorKind::NotFound, ErrorCode::LoginFailed)
    );
    assert_eq!(b.stats().admin_kicks, 0);
}

#[test]
fn accounts_and_channels_come_in_pages() {
    let now = Instant::now();
    let mut b = broker(now);
    for (i, name) in ["erin", "alice", "dave", "bob", "carol"].iter().enumerate() {
        login(&mut b, ConnId(i as u64 + 1), name, now);
    }
    let t = admin_token();
    let list = |b: &mut Broker<MemoryStore>, after, limit| match b
        .admin(call(&t, AdminRequest::Accounts(page(after, limit))), now)
    {
        Ok(AdminResponse::Accounts(p)) => p,
        other => panic!("{other:?}"),
    };
    let first = list(&mut b, None, 2);
    assert_eq!(first.items, ["alice", "bob"]);
    assert_eq!(first.next.as_deref(), Some("bob"));
    let second = list(&mut b, first.next.as_deref(), 2);
    assert_eq!(second.items, ["carol", "dave"]);
    let last = list(&mut b, second.next.as_deref(), 2);
    assert_eq!((last.items, last.next), (vec!["erin".to_owned()], None));
    for bad in [0, 1001] {
        let e = b
            .admin(call(&t, AdminRequest::Accounts(page(None, bad))), now)
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (AdminErrorKind::BadRequest, ErrorCode::GeneralWrongParam)
        );
    }

    for (conn, channel) in [(1, "x"), (2, "y"), (3, "y")] {
        let join = Op::ChannelJoin(pb::ChannelJoin {
            channel: channel.into(),
        });
        assert_eq!(wire::request(&mut b, ConnId(conn), 1, join, now).code, 0);
    }
    let Ok(AdminResponse::Channels(p)) =
        b.admin(call(&t, AdminRequest::Channels(page(None, 1))), now)
    else {
        panic!("a page of channels");
    };
    assert_eq!(p.items[0].channel, "x");
    assert_eq!(p.next.as_deref(), Some("x"));
    let Ok(AdminResponse::Channels(p)) =
        b.admin(call(&t, AdminRequest::Channels(page(Some("x"), 10))), now)
    else {
        panic!("a page of channels");
    };
    assert_eq!(
        (p.items[0].channel.as_str(), p.items[0].members, p.next),
        ("y", 2, None)
    );
    let Ok(AdminResponse::Channel(c)) = b.admin(
        call(
            &t,
            AdminRequest::Channel {
                channel: "y".into(),
            },
        ),
        now,
    ) else {
        panic!("a channel");
    };
    assert_eq!(c.members, ["alice", "dave"]);
    assert_eq!(
        c.attributes.get("_member_num").map(String::as_str),
        Some("2")
    );
    let e = b
        .admin(
            call(
                &t,
                AdminRequest::Channel {
                    channel: "zz".into(),
                },
            ),
            now,
        )
        .unwrap_err();
    assert_eq!(e.kind, AdminErrorKind::NotFound);
    let e = b
        .admin(
            call(
                &t,
                AdminRequest::Channel {
                    channel: String::new(),
                },
            ),
            now,
        )
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (AdminErrorKind::BadRequest, ErrorCode::GeneralWrongParam)
    );
}

#[test]
fn an_account_shows_its_session_and_attributes() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    let set = Op::SetUserAttr(pb::SetUserAttr {
        name: "color".into(),
        value: "blue".into(),
    });
    assert_eq!(wire::request(&mut b, ConnId(1), 1, set, now).code, 0);
    let t = admin_token();
    let info = |b: &mut Broker<MemoryStore>, account: &str| match b.admin(
        call(
            &t,
            AdminRequest::Account {
                account: account.into(),
            },
        ),
        now,
    ) {
        Ok(AdminResponse::Account(info)) => info,
        other => panic!("{other:?}"),
    };
    let alice = info(&mut b, "alice");
    assert!(alice.online && alice.connected && alice.session_id.is_some());
    assert_eq!(alice.attributes, [("color".to_owned(), "blue".to_owned())]);
    assert_eq!(alice.uid, beckon_broker::uid_for("app", "alice"));
    b.disconnect(ConnId(1), now);
    let alice = info(&mut b, "alice");
    assert!(alice.online && !alice.connected, "in grace: {alice:?}");
    let bob = info(&mut b, "bob");
    assert!(!bob.online && bob.attributes.is_empty());
}

#[test]
fn a_kick_logs_the_account_out_with_logout_e_kicked() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    let t = admin_token();
    let kick = AdminRequest::Kick {
        account: "alice".into(),
    };
    assert_eq!(
        b.admin(call(&t, kick.clone()), now),
        Ok(AdminResponse::Kicked)
    );
    let outputs = wire::outputs(&mut b);
    let kicked = outputs.iter().any(|o| match o {
        Output::Send { conn, frame } => {
            *conn == ConnId(1)
                && beckon_proto::codec::decode_server(&frame.to_bytes()).is_ok_and(|k| {
                    k == server_frame::Kind::Kick(pb::Kick {
                        code: ErrorCode::LogoutKicked.code(),
                        message: ADMIN_KICK_MESSAGE.into(),
                    })
                })
        }
        Output::Close { .. } => false,
    });
    assert!(kicked, "{outputs:?}");
    assert!(outputs.iter().any(|o| matches!(
        o,
        Output::Close {
            conn: ConnId(1),
            ..
        }
    )));
    assert!(!b.is_online("app", "alice"));
    assert_eq!(b.stats().admin_kicks, 1);
    let e = b.admin(call(&t, kick), now).unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (AdminErrorKind::NotFound, ErrorCode::LogoutAlreadyLogout)
    );
}

#[test]
fn messages_from_the_system_reach_sessions_channels_and_the_offline_store() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    let t = admin_token();
    let send = |to: &str| AdminRequest::SendMessage {
        to: to.into(),
        text: "maintenance at noon".into(),
    };
    let Ok(AdminResponse::Sent(sent)) = b.admin(call(&t, send("alice")), now) else {
        panic!("sent");
    };
    assert!(sent.online && sent.server_msg_id != 0);
    let got = wire::frames_to(&mut b, ConnId(1));
    let message = got.iter().find_map(|k| match k {
        server_frame::Kind::Event(pb::Event {
            body: Some(Body::InstantMessage(m)),
            ..
        }) => Some(m.clone()),
        _ => None,
    });
    let message = message.expect("the message");
    assert_eq!(
        (message.sender.as_str(), message.msg.as_str()),
        ("ops", "maintenance at noon")
    );
    assert_eq!(message.server_msg_id, sent.server_msg_id);

    let Ok(AdminResponse::Sent(sent)) = b.admin(call(&t, send("bob")), now) else {
        panic!("stored");
    };
    assert!(!sent.online);
    // Counted once its record is stored.
    wire::commit(&mut b);
    assert_eq!(b.stats().messages_stored, 1);

    let join = Op::ChannelJoin(pb::ChannelJoin {
        channel: "room".into(),
    });
    assert_eq!(wire::request(&mut b, ConnId(1), 1, join, now).code, 0);
    wire::ack_all(&mut b, ConnId(1), now);
    let to_room = AdminRequest::SendChannelMessage {
        channel: "room".into(),
        text: "hello room".into(),
    };
    let Ok(AdminResponse::Sent(sent)) = b.admin(call(&t, to_room), now) else {
        panic!("sent to the channel");
    };
    assert_eq!(sent.recipients, 1);
    let got = wire::frames_to(&mut b, ConnId(1));
    assert!(got.iter().any(|k| matches!(k,
        server_frame::Kind::Event(pb::Event { body: Some(Body::ChannelMessage(m)), .. })
            if m.msg == "hello room" && m.sender == "ops")));

    let too_big = AdminRequest::SendMessage {
        to: "alice".into(),
        text: "x".repeat(8193),
    };
    let e = b.admin(call(&t, too_big), now).unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (AdminErrorKind::BadRequest, ErrorCode::GeneralLargeParam)
    );
    assert_eq!(b.stats().admin_messages, 3);
}

#[test]
fn minted_tokens_log_in_and_development_mode_mints_none() {
    let now = Instant::now();
    let mut b = broker(now);
    let mint = AdminRequest::MintToken {
        account: "zoe".into(),
        expire_in: 600,
        server: false,
    };
    let Ok(AdminResponse::Token {
        token: minted,
        expires_at,
    }) = b.admin(call(&admin_token(), mint), now)
    else {
        panic!("a token");
    };
    assert_eq!(expires_at, NOW_UNIX + 600);
    let claims = beckon_token::verify(CERT, &minted, "app", "zoe", NOW_UNIX).unwrap();
    assert!(!claims.privileges.contains(Privileges::SERVER));
    let answer = wire::connect_login(&mut b, ConnId(9), ("app", "zoe", &minted), now);
    assert!(matches!(answer, server_frame::Kind::LoginOk(_)));
    let bad = AdminRequest::MintToken {
        account: "has space".into(),
        expire_in: 600,
        server: false,
    };
    let e = b.admin(call(&admin_token(), bad), now).unwrap_err();
    assert_eq!(e.kind, AdminErrorKind::BadRequest);

    let mut dev = Broker::new(
        BrokerConfig::new(Apps::development(), [3; 32]),
        MemoryStore::new(),
        now,
        NOW_UNIX * 1000,
    );
    let any = token(b"anything", "app", "ops", Privileges::SERVER, NOW_UNIX + 60);
    let mint = AdminRequest::MintToken {
        account: "zoe".into(),
        expire_in: 600,
        server: false,
    };
    let e = dev.admin(call(&any, mint), now).unwrap_err();
    assert_eq!(e.kind, AdminErrorKind::Conflict);
    let plain = token(b"anything", "app", "ops", Privileges::NONE, NOW_UNIX + 60);
    let list = AdminRequest::Accounts(page(None, 10));
    assert_eq!(
        dev.admin(call(&plain, list.clone()), now).unwrap_err().kind,
        AdminErrorKind::Forbidden
    );
    assert!(dev.admin(call(&any, list), now).is_ok());
}

#[test]
fn a_reload_rotates_certificates_keeps_sessions_and_logs_out_removed_apps() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    let t = token(CERT, "other", "carl", Privileges::NONE, NOW_UNIX + 3600);
    assert!(matches!(
        wire::connect_login(&mut b, ConnId(2), ("other", "carl", &t), now),
        server_frame::Kind::LoginOk(_)
    ));
    wire::ack_all(&mut b, ConnId(2), now);

    let new_cert = b"fedcba9876543210fedcba9876543210";
    let mut rotated = Apps::default();
    rotated.insert(AppConfig::new("app", new_cert.as_slice()));
    let report = b.reconfigure(rotated, now);
    assert_eq!(report.apps_removed, ["other"]);
    assert_eq!((report.sessions_ended, report.apps_updated), (1, 1));
    // Carl heard why; Alice is still connected.
    let to_carl = wire::drain(&mut b);
    assert!(to_carl.iter().any(|(c, k)| *c == ConnId(2)
        && matches!(k, server_frame::Kind::Kick(k) if k.code == ErrorCode::LogoutKicked.code()
            && k.message.contains("no longer served"))));
    assert!(!b.is_online("other", "carl"));
    assert!(b.is_online("app", "alice"));
    let status = Op::QueryUserStatus(pb::QueryUserStatus {
        account: "alice".into(),
    });
    assert_eq!(wire::request(&mut b, ConnId(1), 1, status, now).code, 0);

    // Tokens signed with the old certificate no longer log in; new ones do.
    let old = token(CERT, "app", "bob", Privileges::NONE, NOW_UNIX + 3600);
    let refused = wire::connect_login(&mut b, ConnId(3), ("app", "bob", &old), now);
    assert!(
        matches!(refused, server_frame::Kind::LoginFailed(f) if f.code == ErrorCode::LoginTokenWrong.code())
    );
    let new = token(new_cert, "app", "bob", Privileges::NONE, NOW_UNIX + 3600);
    let ok = wire::connect_login(&mut b, ConnId(4), ("app", "bob", &new), now);
    assert!(matches!(ok, server_frame::Kind::LoginOk(_)));
    // And admin tokens follow the rotation too.
    let list = AdminRequest::Accounts(page(None, 10));
    assert_eq!(
        b.admin(call(&admin_token(), list.clone()), now)
            .unwrap_err()
            .kind,
        AdminErrorKind::Unauthorized
    );
    let rotated_admin = token(new_cert, "app", "ops", Privileges::SERVER, NOW_UNIX + 60);
    assert!(
        b.admin(call(&rotated_admin, list), now + Duration::from_secs(1))
            .is_ok()
    );
}

#[test]
fn the_snapshot_counts_by_bounded_labels() {
    let now = Instant::now();
    let mut b = broker(now);
    login(&mut b, ConnId(1), "alice", now);
    login(&mut b, ConnId(2), "bob", now);
    let bad = token(b"wrong", "app", "eve", Privileges::NONE, NOW_UNIX + 60);
    wire::connect_login(&mut b, ConnId(3), ("app", "eve", &bad), now);
    // Logins naming apps the server does not serve share one label, whatever their names.
    for i in 0..20 {
        wire::connect_login(
            &mut b,
            ConnId(10 + i),
            (&format!("ghost{i}"), "x", "t"),
            now,
        );
    }
    let status = Op::QueryUserStatus(pb::QueryUserStatus {
        account: "bob".into(),
    });
    assert_eq!(wire::request(&mut b, ConnId(1), 1, status, now).code, 0);
    let bad_status = Op::QueryUserStatus(pb::QueryUserStatus {
        account: String::new(),
    });
    assert_eq!(
        wire::request(&mut b, ConnId(1), 2, bad_status, now).code,
        1004
    );
    b.disconnect(ConnId(2), now);

    let snap = b.snapshot();
    let app = &snap.tallies.apps["app"];
    assert_eq!(app.logins.get(&0), Some(&2));
    assert_eq!(app.logins.get(&ErrorCode::LoginTokenWrong.code()), Some(&1));
    assert_eq!(
        app.requests.get(&(RequestKind::QueryUserStatus, 0)),
        Some(&1)
    );
    assert_eq!(
        app.requests.get(&(RequestKind::QueryUserStatus, 1004)),
        Some(&1)
    );
    let unknown = &snap.tallies.apps[UNKNOWN_APP_LABEL];
    assert_eq!(unknown.logins.values().sum::<u64>(), 20);
    assert_eq!(snap.tallies.apps.len(), 2, "{:?}", snap.tallies.apps.keys());
    let g = &snap.gauges["app"];
    assert_eq!((g.sessions, g.sessions_in_grace), (2, 1));

    // In development mode every app shares one label too.
    let mut dev = Broker::new(
        BrokerConfig::new(Apps::development(), [3; 32]),
        MemoryStore::new(),
        now,
        NOW_UNIX * 1000,
    );
    for i in 0..20 {
        wire::login_acked(&mut dev, ConnId(i), &format!("app{i}"), "x", now);
    }
    let snap = dev.snapshot();
    assert_eq!(snap.tallies.apps.len(), 1);
    assert_eq!(
        snap.tallies.apps[DEVELOPMENT_APP_LABEL].logins.get(&0),
        Some(&20)
    );
    assert_eq!(snap.gauges.len(), 1);
    assert_eq!(snap.gauges[DEVELOPMENT_APP_LABEL].sessions, 20);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Walking the pages from the first to the last yields every online account once, in
    /// name order, whatever the page size, and no page is larger than asked.
    #[test]
    fn pages_cover_every_account_once(
        names in proptest::collection::btree_set("[a-z]{1,6}", 0..40),
        limit in 1usize..12,
    ) {
        let now = Instant::now();
        let mut b = broker(now);
        for (i, name) in names.iter().enumerate() {
            login(&mut b, ConnId(i as u64 + 1), name, now);
        }
        let t = admin_token();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let request = AdminRequest::Accounts(PageRequest { after: after.clone(), limit });
            let Ok(AdminResponse::Accounts(p)) = b.admin(call(&t, request), now) else {
                panic!("a page");
            };
            proptest::prop_assert!(p.items.len() <= limit);
            seen.extend(p.items);
            match p.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let want: Vec<String> = names.into_iter().collect();
        proptest::prop_assert_eq!(seen, want);
    }
}

#[test]
fn in_cluster_mode_what_is_not_cluster_wide_yet_is_refused() {
    let now = Instant::now();
    let mut config = BrokerConfig::new(apps(CERT), [3; 32]);
    config.cluster = true;
    let mut b = Broker::new(config, MemoryStore::new(), now, NOW_UNIX * 1000);
    login(&mut b, ConnId(1), "alice", now);
    let requests = [
        AdminRequest::Accounts(page(None, 10)),
        AdminRequest::Account {
            account: "alice".into(),
        },
        AdminRequest::Channels(page(None, 10)),
        AdminRequest::Kick {
            account: "alice".into(),
        },
        AdminRequest::SendChannelMessage {
            channel: "room".into(),
            text: "hi".into(),
        },
        AdminRequest::Channel {
            channel: "room".into(),
        },
    ];
    for request in requests {
        let what = format!("{request:?}");
        let e = b
            .admin(call(&admin_token(), request), now)
            .expect_err("refused in cluster mode");
        assert_eq!(e.code, ErrorCode::GeneralFailed, "{what}");
        assert!(e.message.contains("cluster mode"), "{what}: {}", e.message);
    }
    assert!(b.is_online("app", "alice"), "nothing changed");
    assert!(b.store().messages("app", "alice").is_empty());
    let authorized = b.admin(call(&admin_token(), AdminRequest::Authorize), now);
    assert!(authorized.is_ok(), "{authorized:?}");
}
