//! One hostile account against the broker, through raw frames: it cannot trap a channel, bloat
//! the server's memory, flood logins, or reach what SPEC reserves — and a bystander session,
//! logged in before the attack, stays connected throughout every attack.
//!
//! Each test is one finding of an attack on a development-mode server (any App ID, any
//! account, `_no_need_token`): what the attacker did, then what the broker must do about it.

use std::time::Duration;

use beckon_broker::{AppConfig, Apps, BrokerConfig, ConnId, MemoryStore};
use beckon_proto::pb::{self, request::Op, server_frame};
use beckon_testkit::wire::{self, Driver, join, leave, set_channel_attr};

const APP: &str = "app";
const BYSTANDER: ConnId = ConnId(1_000_000);
const ATTACKER: ConnId = ConnId(1);

/// A development-mode broker with a bystander logged in.
struct Rig(Driver<MemoryStore>);

impl std::ops::Deref for Rig {
    type Target = Driver<MemoryStore>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Rig {
    fn new() -> Self {
        Self::with(BrokerConfig::new(Apps::development(), [7; 32]))
    }

    fn with(config: BrokerConfig) -> Self {
        let mut rig = Self(Driver::new(config));
        rig.login(BYSTANDER, "bystander");
        rig
    }

    fn login(&mut self, conn: ConnId, account: &str) {
        self.0.login(conn, APP, account);
    }

    /// The bystander is online and its connection was never closed; it still gets answers.
    fn bystander_unharmed(&mut self) {
        self.frames_to(BYSTANDER);
        assert!(
            !self.closed.contains(&BYSTANDER),
            "the bystander was disconnected"
        );
        assert!(self.broker.is_online(APP, "bystander"));
        let status = Op::QueryUserStatus(pb::QueryUserStatus {
            account: "bystander".into(),
        });
        assert_eq!(self.request(BYSTANDER, status).code, 0);
    }
}

/// Finding: a member sets `_channel_ttl` to its maximum and 255 attributes of 128-character
/// names and 8096-character values (four bytes each); the join reply then exceeds a session's
/// 8 MiB retention bound, so every later joiner's session ended without a reply, for as long as
/// the channel lived. Now the attributes stop at the channel's byte quota with a clear error,
/// every joiner gets its reply, and the channel's empty life is bounded.
#[test]
fn a_channel_cannot_be_made_unjoinable() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    assert_eq!(r.request(ATTACKER, join("trap")).code, 0);
    let ttl = r.request(
        ATTACKER,
        set_channel_attr("trap", "_channel_ttl", "4294967295"),
    );
    assert_eq!(ttl.code, 0, "{}", ttl.message);
    let value = "😀".repeat(8096);
    let mut refused = Vec::new();
    for i in 0..255 {
        let name = format!("{i:😀>128}");
        let reply = r.request(ATTACKER, set_channel_attr("trap", &name, &value));
        if reply.code != 0 {
            refused.push((reply.code, reply.message));
        }
    }
    assert!(!refused.is_empty(), "the channel's attributes are bounded");
    let (code, message) = &refused[0];
    assert_eq!(*code, 1001, "{message}");
    assert!(message.contains("bytes"), "the error says why: {message}");
    assert!(r.broker.is_online(APP, "mallory"));

    for i in 0..3 {
        let conn = ConnId(10 + i);
        r.login(conn, &format!("joiner{i}"));
        let reply = r.try_request(conn, join("trap"));
        assert!(
            !r.closed.contains(&conn),
            "joiner {i} was disconnected instead of answered"
        );
        let reply = reply.expect("the joiner gets its reply");
        assert_eq!(reply.code, 0, "{}", reply.message);
    }

    // Empty, the channel lives no longer than the app's longest channel TTL (a day by default).
    for i in 0..3 {
        assert_eq!(r.request(ConnId(10 + i), leave("trap")).code, 0);
    }
    assert_eq!(r.request(ATTACKER, leave("trap")).code, 0);
    r.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(r.broker.channel_count(APP), 0, "the empty channel expired");
    r.bystander_unharmed();
}

/// Finding: 100,000 pending invitations to offline accounts with 8 KiB `extra` took 900 MB.
/// Now a session may have a bounded number of invitations in progress; beyond it the
/// invitation fails with `INVITE_E_OTHER` and says why.
#[test]
fn pending_invitations_are_bounded_per_session() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    let extra = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8180));
    let mut placed = 0;
    let mut refusals = Vec::new();
    for i in 0..1_000 {
        let invite = Op::Invite(pb::Invite {
            channel: "c".into(),
            account: format!("offline{i}"),
            extra: extra.clone(),
        });
        let reply = r.request(ATTACKER, invite);
        match reply.code {
            0 => placed += 1,
            code => refusals.push((code, reply.message)),
        }
    }
    assert!(placed <= 100, "{placed} invitations in progress at once");
    let (code, message) = &refusals[0];
    assert_eq!(*code, 700, "{message}");
    assert!(message.contains("invitations"), "{message}");
    assert_eq!(r.broker.calls_in_progress(), placed);
    // When they time out, the session may invite again.
    r.advance(Duration::from_secs(21));
    assert_eq!(r.broker.calls_in_progress(), 0);
    let invite = Op::Invite(pb::Invite {
        channel: "c".into(),
        account: "someone".into(),
        extra: String::new(),
    });
    assert_eq!(r.request(ATTACKER, invite).code, 0);
    r.bystander_unharmed();
}

/// Finding: each empty channel joined kept about 1.5 KB for its 2-hour TTL, without limit. Now
/// the empty channels an account leaves behind are bounded: beyond the quota the oldest of them
/// expires at once.
#[test]
fn empty_channels_left_behind_are_bounded_per_account() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    for i in 0..1_000 {
        let channel = format!("room{i}");
        assert_eq!(r.request(ATTACKER, join(&channel)).code, 0);
        assert_eq!(r.request(ATTACKER, leave(&channel)).code, 0);
    }
    let channels = r.broker.channel_count(APP);
    assert!(channels <= 64, "{channels} empty channels kept");
    assert!(
        r.broker.channel_members(APP, "room999").is_empty() && channels > 0,
        "the newest are the ones kept"
    );
    assert!(r.broker.stats().channels_evicted >= 1_000 - 64);

    // An app's backend (the server privilege) may prepare many channels; only the app's
    // channel limit holds it.
    let token = beckon_token::mint(
        b"any certificate: development mode does not check it",
        &beckon_token::TokenClaims {
            app_id: APP.into(),
            account: "backend".into(),
            issued_at: 0,
            expires_at: u64::MAX,
            privileges: beckon_token::Privileges::SERVER,
        },
    );
    let backend = ConnId(20);
    let now = r.now;
    let answer = wire::connect_login(&mut r.broker, backend, (APP, "backend", &token), now);
    assert!(
        matches!(answer, server_frame::Kind::LoginOk(_)),
        "{answer:?}"
    );
    for i in 0..200 {
        let set = set_channel_attr(&format!("prepared{i}"), "topic", "soon");
        assert_eq!(r.request(backend, set).code, 0);
    }
    assert_eq!(r.broker.channel_count(APP), channels + 200);
    r.bystander_unharmed();
}

/// Finding: 3,000 messages of 8 KiB to made-up accounts grew the store by 72 MB in 2 s, and
/// stayed. Now one sender's stored messages are bounded (`SENDMESSAGE_E_OTHER` beyond), and
/// stored messages leave the store when their TTL runs out, whether or not anyone logs in.
#[test]
fn offline_messages_are_bounded_per_sender_and_expire() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    let body = "x".repeat(8192);
    let mut stored = 0u64;
    let mut refusals = Vec::new();
    for i in 0..3_000 {
        let send = Op::SendInstantMessage(pb::SendInstantMessage {
            account: format!("madeup{i}"),
            msg: body.clone(),
            msg_id: String::new(),
        });
        let reply = r.request(ATTACKER, send);
        match reply.code {
            0 => stored += 1,
            code => refusals.push((code, reply.message)),
        }
    }
    assert!(stored <= 1_000, "{stored} messages stored by one sender");
    let (code, message) = &refusals[0];
    assert_eq!(*code, 400, "{message}");
    assert!(message.contains("stored"), "{message}");
    assert_eq!(r.broker.stats().messages_stored, stored);
    r.advance(Duration::from_secs(3_601));
    assert_eq!(
        r.broker.stats().offline_expired,
        stored,
        "expired messages leave the store"
    );
    let send = Op::SendInstantMessage(pb::SendInstantMessage {
        account: "madeup0".into(),
        msg: body,
        msg_id: String::new(),
    });
    assert_eq!(
        r.request(ATTACKER, send).code,
        0,
        "the sender's quota is free again"
    );
    r.bystander_unharmed();
}

/// Finding: 5,286 failed logins per second from one client, never slowed. Now logins beyond
/// the server's rate are refused with `GENERAL_E_OVERLOAD` and a retry-after hint, before the
/// token is looked at.
#[test]
fn a_login_flood_is_refused_with_a_retry_after() {
    let mut apps = Apps::default();
    apps.insert(AppConfig::new("prod", "0123456789abcdef0123456789abcdef"));
    apps.development = Some(AppConfig::development(""));
    let mut r = Rig::with(BrokerConfig::new(apps, [8; 32]));
    let mut codes = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..20_000 {
        match r.login_answer(ConnId(10 + i), "prod", "mallory") {
            Some(server_frame::Kind::LoginFailed(f)) => {
                codes.push(f.code);
                if f.code == 1007 {
                    assert!(f.message.contains("retry"), "{}", f.message);
                    retry_after.push(f.retry_after_ms);
                }
            }
            other => panic!("a login failure, not {other:?}"),
        }
    }
    let overloaded = codes.iter().filter(|c| **c == 1007).count();
    assert!(
        overloaded > 10_000,
        "{overloaded} of 20,000 refused for load"
    );
    assert!(
        codes[..100].iter().all(|c| *c == 206),
        "within the rate: the token is checked"
    );
    assert!(retry_after.iter().all(|ms| *ms > 0));
    r.bystander_unharmed();
}

/// Finding: an account named `_system` (the sender of system events) could log in. Accounts
/// and channels starting with `_` are refused unless SPEC defines them.
#[test]
fn reserved_names_are_refused() {
    let mut r = Rig::new();
    for (i, account) in ["_system", "_anything"].into_iter().enumerate() {
        match r.login_answer(ConnId(10 + i as u64), APP, account) {
            Some(server_frame::Kind::LoginFailed(f)) => {
                assert_eq!(f.code, 1004, "{account}: {}", f.message);
                assert!(f.message.contains("reserved"), "{}", f.message);
            }
            other => panic!("{account} logged in: {other:?}"),
        }
    }
    r.login(ATTACKER, "mallory");
    let reply = r.request(ATTACKER, join("_secret"));
    assert_eq!(
        (reply.code, reply.message.contains("reserved")),
        (1004, true)
    );
    let send = Op::SendInstantMessage(pb::SendInstantMessage {
        account: "_system".into(),
        msg: "hi".into(),
        msg_id: String::new(),
    });
    assert_eq!(r.request(ATTACKER, send).code, 1004);
    assert_eq!(r.broker.channel_count(APP), 0);
    r.bystander_unharmed();
}

/// Finding: any user could list the members of `_agora_user_online` (every server session
/// watching the app). A special channel's member list needs the server privilege, like joining.
#[test]
fn special_channel_members_need_the_server_privilege() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    let channel = "_agora_user_online";
    let num = Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
        channel: channel.into(),
    });
    assert_eq!(r.request(ATTACKER, num).code, 301);
    let is_in = Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
        channel: channel.into(),
        account: "bystander".into(),
    });
    assert_eq!(r.request(ATTACKER, is_in).code, 301);
    let req = format!(r#"{{"name":"{channel}"}}"#);
    for function in [
        "channel_query_num",
        "channel_query_userlist",
        "channel_query_userlist_all",
    ] {
        assert_eq!(r.invoke(ATTACKER, function, &req).err, "301", "{function}");
    }
    let req = format!(r#"{{"name":"{channel}","account":"bystander"}}"#);
    assert_eq!(
        r.invoke(ATTACKER, "channel_query_user_isin", &req).err,
        "301"
    );
    r.bystander_unharmed();
}

/// Finding: `user_set_attr` through `invoke` silently ignored an `account` argument (it sets
/// the caller's own attribute), so a caller believed it had set someone else's. Every function
/// refuses arguments it does not use, naming them.
#[test]
fn invoke_refuses_arguments_it_does_not_use() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    let result = r.invoke(
        ATTACKER,
        "user_set_attr",
        r#"{"account":"bystander","name":"color","value":"red"}"#,
    );
    assert_eq!(result.err, "1004");
    assert!(result.resp.contains("account"), "{}", result.resp);
    let attrs = r.request(
        ATTACKER,
        Op::GetUserAttrAll(pb::GetUserAttrAll {
            account: "mallory".into(),
        }),
    );
    assert!(
        matches!(attrs.result, Some(pb::reply::Result::AttrAll(ref a)) if a.json == "{}"),
        "nothing was set: {attrs:?}"
    );
    let result = r.invoke(
        ATTACKER,
        "channel_query_userlist",
        r#"{"name":"c","num":5}"#,
    );
    assert_eq!(result.err, "1004");
    assert!(result.resp.contains("num"), "{}", result.resp);
    r.bystander_unharmed();
}

/// A join reply that would not fit in what the session may hold is refused with a code rather
/// than ending the session, and a member list too large for one reply is refused with a code
/// naming the way out (`num`).
#[test]
fn answers_too_large_for_one_event_are_refused_not_fatal() {
    let mut r = Rig::new();
    r.login(ATTACKER, "mallory");
    assert_eq!(r.request(ATTACKER, join("big")).code, 0);
    // 5,000 members of 120 four-byte characters: a list of about 2.4 MB.
    for i in 0..5_000u64 {
        let conn = ConnId(100 + i);
        r.now += Duration::from_millis(1);
        r.login(conn, &format!("{i:😀>120}"));
        assert_eq!(r.request(conn, join("big")).code, 0);
    }
    for i in 0..5_000u64 {
        r.forget(ConnId(100 + i));
    }
    let all = r.invoke(ATTACKER, "channel_query_userlist_all", r#"{"name":"big"}"#);
    assert!(
        !r.closed.contains(&ATTACKER),
        "the member list ended the session"
    );
    assert_eq!(all.err, "1005", "{} bytes", all.resp.len());
    assert!(all.resp.contains("num"), "{}", all.resp);
    let some = r.invoke(
        ATTACKER,
        "channel_query_userlist_all",
        r#"{"name":"big","num":1000}"#,
    );
    assert_eq!(some.err, "");
    r.bystander_unharmed();
}

/// With a server whose one-event answer is small: a join's attributes beyond it follow the
/// answer as attribute updates (every one arrives, none twice); a join the session cannot hold
/// right now is refused with 300 and changes nothing; an attribute dump too large is refused
/// with 1001. No session ends.
#[test]
fn a_join_answer_too_large_for_one_event_is_split_or_refused() {
    let mut config = BrokerConfig::new(Apps::development(), [7; 32]);
    config.max_event_bytes = 4 * 1024;
    config.max_unacked_bytes = 64 * 1024;
    let mut r = Rig::with(config);
    r.login(ATTACKER, "mallory");
    assert_eq!(r.request(ATTACKER, join("room")).code, 0);
    let value = "v".repeat(1000);
    for i in 0..20 {
        let set = set_channel_attr("room", &format!("a{i:02}"), &value);
        assert_eq!(r.request(ATTACKER, set).code, 0);
    }

    let joiner = ConnId(10);
    r.login(joiner, "joiner");
    let (id, now) = (1_000, r.now);
    r.broker
        .handle_frame(joiner, &wire::request_frame(id, join("room")), now);
    let frames = r.frames_to(joiner);
    let reply = wire::reply_in(&frames, id).expect("the answer");
    let Some(pb::reply::Result::ChannelJoined(joined)) = reply.result else {
        panic!("{reply:?}")
    };
    assert!(joined.attrs.len() < 20, "the answer holds what fits");
    let mut names: Vec<String> = joined.attrs.iter().map(|a| a.name.clone()).collect();
    for f in &frames {
        if let server_frame::Kind::Event(pb::Event {
            body: Some(pb::event::Body::ChannelAttrUpdated(u)),
            ..
        }) = f
        {
            assert_eq!((u.r#type.as_str(), u.value.len()), ("update", 1000));
            names.push(u.name.clone());
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("a{i:02}")).collect();
    assert_eq!(names, expected, "every attribute once, in order");

    // A session holding most of what it may leave unacknowledged cannot take the channel's
    // 20 KB now: refused, still connected, still in its old channel. (Channel messages fill
    // it: p2p messages are handed to a session only up to half its bound, the rest wait in
    // the store.)
    let slow = ConnId(11);
    r.login(slow, "slow");
    assert_eq!(r.request(slow, join("lobby")).code, 0);
    assert_eq!(r.request(ATTACKER, join("lobby")).code, 0);
    let body = "x".repeat(8_000);
    for _ in 0..6 {
        let send = Op::SendChannelMessage(pb::SendChannelMessage {
            channel: "lobby".into(),
            msg: body.clone(),
            msg_id: String::new(),
            force: false,
        });
        assert_eq!(r.request(ATTACKER, send).code, 0);
    }
    let reply = r.try_request(slow, join("room")).expect("an answer");
    assert_eq!(reply.code, 300, "{}", reply.message);
    assert!(!r.closed.contains(&slow));
    assert_eq!(r.broker.channel_members(APP, "lobby"), ["slow", "mallory"]);
    // (try_request acknowledged everything after the answer.)
    assert_eq!(r.request(slow, join("room")).code, 0, "once caught up");

    // An attribute dump larger than one answer.
    for i in 0..10 {
        let set = Op::SetUserAttr(pb::SetUserAttr {
            name: format!("k{i}"),
            value: "u".repeat(1000),
        });
        assert_eq!(r.request(ATTACKER, set).code, 0);
    }
    let all = Op::GetUserAttrAll(pb::GetUserAttrAll {
        account: "mallory".into(),
    });
    let reply = r.request(BYSTANDER, all);
    assert_eq!(reply.code, 1001, "{}", reply.message);
    assert!(reply.message.contains("bytes"), "{}", reply.message);
    assert!(r.closed.is_empty(), "{:?}", r.closed);
    r.bystander_unharmed();
}
