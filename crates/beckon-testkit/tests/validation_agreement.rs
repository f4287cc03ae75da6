//! The client and the broker agree on every parameter (`beckon_proto::validate`).
//!
//! Each case logs a sans-IO client in to a broker, makes one API call with arbitrary and
//! adversarial parameters, and compares two verdicts:
//! - the client's: refused on the spot (`onError` with a code, nothing sent), or sent;
//! - the broker's on that request: the request the client sent, or, when the client refused
//!   it, the request built from the same parameters, sent raw.
//!
//! Invariant: both sides refuse with the same code, or both accept. The broker may still
//! refuse an accepted request for a reason the client cannot see (not a member, no gateway
//! online, a special channel without the privilege); those codes are not about parameters and
//! count as acceptance here. Calls on an invitation neither side knows are refused by both with
//! `GENERAL_E_WRONG_PARAM`, after the parameters are checked, so their order is compared too.
//! For `invoke`, the functions and their arguments are the server's to know (a newer server
//! may offer more): the client checks the envelope only, so the property is that whatever the
//! client refuses, the broker refuses with the same code.

use std::time::Instant;

use proptest::prelude::*;

use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore};
use beckon_client::{Client, ClientConfig, ConnectionCommand, Event};
use beckon_proto::codec::decode_client;
use beckon_proto::pb::{self, client_frame, request::Op, server_frame};
use beckon_testkit::wire;

const APP: &str = "app";
const ME: &str = "alice";
const CONN: ConnId = ConnId(1);
/// The id of a request the client refused and the test sends itself.
const RAW_ID: u64 = 1_000;

/// Codes that speak of parameters; any other code from the broker is about state.
fn about_parameters(code: i32) -> Option<i32> {
    matches!(code, 1004 | 1005).then_some(code)
}

fn broker(now: Instant) -> Broker<MemoryStore> {
    let config = BrokerConfig::new(Apps::development(), [5; 32]);
    Broker::new(config, MemoryStore::new(), now, 1_700_000_000_000)
}

/// Delivers the broker's frames to the client, and the client's to the broker, until quiet.
fn exchange(b: &mut Broker<MemoryStore>, c: &mut Client, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(frame) = c.poll_transmit() {
            b.handle_frame(CONN, &frame, now);
            moved = true;
        }
        for o in wire::outputs(b) {
            if let beckon_broker::Output::Send { frame, .. } = o {
                c.handle_frame(&frame.to_bytes(), now);
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

/// A client logged in as [`ME`] to a fresh broker, every event drained.
fn logged_in(now: Instant) -> (Broker<MemoryStore>, Client) {
    let mut b = broker(now);
    let mut c = Client::new(ClientConfig::default(), now);
    c.login(APP, ME, beckon_proto::NO_TOKEN, "", now);
    assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
    b.connect(CONN, now);
    c.handle_connected(now);
    exchange(&mut b, &mut c, now);
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        matches!(events[..], [Event::LoginSuccess { .. }, ..]),
        "{events:?}"
    );
    (b, c)
}

/// One API call of the client with its parameters.
#[derive(Clone, Debug)]
enum Call {
    Instant(String, String, String),
    Status(String),
    SetAttr(String, String),
    GetAttr(String, String),
    GetAttrAll(String),
    Join(String),
    Leave(String),
    Num(String),
    IsIn(String, String),
    SetChannelAttr(String, String, String),
    DelChannelAttr(String, String),
    ClearChannelAttr(String),
    ChannelSend(String, String, String, bool),
    Invite(String, String, String),
    Answer(String, String, String, bool),
    End(String, String),
    Dtmf(String, String, String),
    Invoke(String, String, String),
}

impl Call {
    fn apply(&self, c: &mut Client, now: Instant) {
        match self.clone() {
            Self::Instant(to, msg, id) => {
                c.message_instant_send(&to, &msg, &id, now);
            }
            Self::Status(a) => c.query_user_status(&a, now),
            Self::SetAttr(n, v) => c.set_attr(&n, &v, now),
            Self::GetAttr(a, n) => c.get_user_attr(&a, &n, now),
            Self::GetAttrAll(a) => c.get_user_attr_all(&a, now),
            Self::Join(ch) => c.channel_join(&ch, now),
            Self::Leave(ch) => c.channel_leave(&ch, now),
            Self::Num(ch) => c.channel_query_user_num(&ch, now),
            Self::IsIn(ch, a) => c.channel_query_user_is_in(&ch, &a, now),
            Self::SetChannelAttr(ch, n, v) => c.channel_set_attr(&ch, &n, &v, now),
            Self::DelChannelAttr(ch, n) => c.channel_del_attr(&ch, &n, now),
            Self::ClearChannelAttr(ch) => c.channel_clear_attr(&ch, now),
            Self::ChannelSend(ch, msg, id, false) => {
                c.message_channel_send(&ch, &msg, &id, now);
            }
            Self::ChannelSend(ch, msg, id, true) => {
                c.message_channel_send_force(&ch, &msg, &id, now);
            }
            Self::Invite(ch, a, extra) => c.channel_invite_user2(&ch, &a, &extra, now),
            Self::Answer(ch, a, extra, true) => c.channel_invite_accept(&ch, &a, &extra, now),
            Self::Answer(ch, a, extra, false) => c.channel_invite_refuse(&ch, &a, &extra, now),
            Self::End(ch, a) => c.channel_invite_end(&ch, &a, now),
            Self::Dtmf(ch, a, d) => c.channel_invite_dtmf(&ch, &a, &d, now),
            Self::Invoke(n, req, id) => c.invoke(&n, &req, &id, now),
        }
    }

    /// The request these parameters make.
    fn op(&self) -> Op {
        match self.clone() {
            Self::Instant(account, msg, msg_id) => Op::SendInstantMessage(pb::SendInstantMessage {
                account,
                msg,
                msg_id,
            }),
            Self::Status(account) => Op::QueryUserStatus(pb::QueryUserStatus { account }),
            Self::SetAttr(name, value) => Op::SetUserAttr(pb::SetUserAttr { name, value }),
            Self::GetAttr(account, name) => Op::GetUserAttr(pb::GetUserAttr { account, name }),
            Self::GetAttrAll(account) => Op::GetUserAttrAll(pb::GetUserAttrAll { account }),
            Self::Join(channel) => Op::ChannelJoin(pb::ChannelJoin { channel }),
            Self::Leave(channel) => Op::ChannelLeave(pb::ChannelLeave { channel }),
            Self::Num(channel) => Op::ChannelQueryUserNum(pb::ChannelQueryUserNum { channel }),
            Self::IsIn(channel, account) => {
                Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn { channel, account })
            }
            Self::SetChannelAttr(channel, name, value) => Op::ChannelSetAttr(pb::ChannelSetAttr {
                channel,
                name,
                value,
            }),
            Self::DelChannelAttr(channel, name) => {
                Op::ChannelDelAttr(pb::ChannelDelAttr { channel, name })
            }
            Self::ClearChannelAttr(channel) => {
                Op::ChannelClearAttr(pb::ChannelClearAttr { channel })
            }
            Self::ChannelSend(channel, msg, msg_id, force) => {
                Op::SendChannelMessage(pb::SendChannelMessage {
                    channel,
                    msg,
                    msg_id,
                    force,
                })
            }
            Self::Invite(channel, account, extra) => Op::Invite(pb::Invite {
                channel,
                account,
                extra,
            }),
            Self::Answer(channel, account, extra, accept) => {
                let m = pb::InviteAnswer {
                    channel,
                    account,
                    extra,
                };
                if accept {
                    Op::InviteAccept(m)
                } else {
                    Op::InviteRefuse(m)
                }
            }
            Self::End(channel, account) => Op::InviteEnd(pb::InviteEnd {
                channel,
                account,
                as_caller: false,
            }),
            Self::Dtmf(channel, account, dtmf) => Op::InviteDtmf(pb::InviteDtmf {
                channel,
                account,
                dtmf,
                as_caller: false,
            }),
            Self::Invoke(name, req, call_id) => Op::Invoke(pb::Invoke { name, req, call_id }),
        }
    }
}

/// (the client's code, the broker's code), `None` for acceptance.
fn verdicts(call: &Call) -> (Option<i32>, Option<i32>) {
    let now = Instant::now();
    let (mut b, mut c) = logged_in(now);
    call.apply(&mut c, now);
    let local = std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
        Event::Error { ecode, desc, .. } => {
            assert!(!desc.is_empty(), "a refusal says why");
            Some(ecode)
        }
        _ => None,
    });
    let sent = std::iter::from_fn(|| c.poll_transmit()).find_map(|f| match decode_client(&f) {
        Ok(client_frame::Kind::Request(r)) => Some(r),
        _ => None,
    });
    assert!(
        local.is_none() || sent.is_none(),
        "a refused call sends nothing: {sent:?}"
    );
    let (id, op) = match sent {
        Some(r) => (r.id, r.op.expect("the client sends a request kind")),
        None => (RAW_ID, call.op()),
    };
    let reply = wire::request(&mut b, CONN, id, op, now);
    let remote = match reply.result {
        Some(pb::reply::Result::InvokeResult(r)) => r.err.parse().ok(),
        _ => (reply.code != 0).then_some(reply.code),
    };
    (local, remote)
}

/// Text that hits the edges: empty, white space, control characters, built-in names, digits,
/// JSON and not quite JSON, one below and one above each limit, and anything at all.
fn text() -> impl Strategy<Value = String> {
    let edges = prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just(" \t\n".to_owned()),
        Just("a b".to_owned()),
        Just("a\u{0}b".to_owned()),
        Just("\u{7f}".to_owned()),
        Just(ME.to_owned()),
        Just("bob".to_owned()),
        Just("_agora_user_online".to_owned()),
        Just("_agora_channel_event".to_owned()),
        Just("_system".to_owned()),
        Just("_".to_owned()),
        Just("a_".to_owned()),
        Just("_conn_timeout".to_owned()),
        Just("_member_num".to_owned()),
        Just("_userNotification".to_owned()),
        Just("_channel_ttl".to_owned()),
        Just("_reserved".to_owned()),
        Just("0".to_owned()),
        Just("2".to_owned()),
        Just("-1".to_owned()),
        Just("+15550100".to_owned()),
        Just("12*#".to_owned()),
        Just("{}".to_owned()),
        Just(" {} ".to_owned()),
        Just("[]".to_owned()),
        Just("null".to_owned()),
        Just("{".to_owned()),
        Just(r#"{"_phone":1}"#.to_owned()),
        Just(r#"{"_require_peer_online":1}"#.to_owned()),
        Just(r#"{"account":"bob","name":"n"}"#.to_owned()),
        Just(r#"{"account":"bob","name":"n","value":"v"}"#.to_owned()),
        Just(r#"{"name":"_agora_user_online"}"#.to_owned()),
        Just("io.agora.signal.user_set_attr".to_owned()),
        Just("io.agora.signal.channel_query_userlist".to_owned()),
        Just("io.agora.signal.user_get_attr".to_owned()),
        Just("io.agora.signal.nope".to_owned()),
    ];
    let sizes = prop_oneof![
        (126..131usize).prop_map(|n| "a".repeat(n)),
        (126..131usize).prop_map(|n| "é".repeat(n)),
        (1022..1027usize).prop_map(|n| "v".repeat(n)),
        (8094..8099usize).prop_map(|n| "v".repeat(n)),
        (8190..8195usize).prop_map(|n| format!(r#"{{"p":"{}"}}"#, "x".repeat(n - 8))),
    ];
    prop_oneof![
        4 => edges,
        1 => sizes,
        2 => "[0-9*#+a ]{0,8}",
        3 => ".{0,24}",
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let t = text;
    prop_oneof![
        (t(), t(), t()).prop_map(|(a, b, c)| Call::Instant(a, b, c)),
        t().prop_map(Call::Status),
        (t(), t()).prop_map(|(a, b)| Call::SetAttr(a, b)),
        (t(), t()).prop_map(|(a, b)| Call::GetAttr(a, b)),
        t().prop_map(Call::GetAttrAll),
        t().prop_map(Call::Join),
        t().prop_map(Call::Leave),
        t().prop_map(Call::Num),
        (t(), t()).prop_map(|(a, b)| Call::IsIn(a, b)),
        (t(), t(), t()).prop_map(|(a, b, c)| Call::SetChannelAttr(a, b, c)),
        (t(), t()).prop_map(|(a, b)| Call::DelChannelAttr(a, b)),
        t().prop_map(Call::ClearChannelAttr),
        (t(), t(), t(), any::<bool>()).prop_map(|(a, b, c, f)| Call::ChannelSend(a, b, c, f)),
        (t(), t(), t()).prop_map(|(a, b, c)| Call::Invite(a, b, c)),
        (t(), t(), t(), any::<bool>()).prop_map(|(a, b, c, y)| Call::Answer(a, b, c, y)),
        (t(), t()).prop_map(|(a, b)| Call::End(a, b)),
        (t(), t(), t()).prop_map(|(a, b, c)| Call::Dtmf(a, b, c)),
        (t(), t(), t()).prop_map(|(a, b, c)| Call::Invoke(a, b, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_client_refuses_exactly_what_the_broker_refuses(call in call()) {
        let (local, remote) = verdicts(&call);
        if let Some(code) = local {
            prop_assert!(matches!(code, 1004 | 1005), "a local refusal is about parameters: {code}");
        }
        match call {
            Call::Invoke(..) => {
                if local.is_some() {
                    prop_assert_eq!(local, remote);
                }
            }
            _ => prop_assert_eq!(local, remote.and_then(about_parameters)),
        }
    }

    #[test]
    fn logins_agree(app in text(), account in text(), token in text()) {
        let now = Instant::now();
        let mut c = Client::new(ClientConfig::default(), now);
        c.login(&app, &account, &token, "", now);
        let local = std::iter::from_fn(|| c.poll_event()).find_map(|e| match e {
            Event::LoginFailed { ecode } => Some(ecode),
            _ => None,
        });
        prop_assert_eq!(local.is_none(), c.poll_connection() == Some(ConnectionCommand::Open));
        let mut b = broker(now);
        let remote = match wire::connect_login(&mut b, CONN, (&app, &account, &token), now) {
            server_frame::Kind::LoginFailed(f) => Some(f.code),
            server_frame::Kind::LoginOk(_) => None,
            other => panic!("a login answer, not {other:?}"),
        };
        prop_assert_eq!(local, remote, "{:?} {:?} {:?}", app, account, token);
    }
}
