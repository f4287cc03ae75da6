//! The sans-IO broker core (`beckon_broker::Broker`) driven by arbitrary frame sequences from a
//! few connections, on a virtual clock.
//!
//! The input is a list of steps: open a connection, close one, send a frame on one (a
//! structured login, request, ack, ping or pong built from a small vocabulary of apps, accounts,
//! channels, attribute names and values, with valid, expired and forged tokens and resumes of
//! sessions seen earlier; or raw bytes), or let time pass (every timer fires on time). The
//! broker is driven only through its public API, as the server drives it.
//!
//! Asserts, after every input:
//! - nothing panics, and the timers settle: after `handle_timeout(now)` nothing is due;
//! - frames go only to open connections, and a connection is closed at most once;
//! - every frame sent decodes as a `ServerFrame` whose prost encoding is exactly the bytes
//!   sent (the broker's split encoding of events equals prost's);
//! - on a connection, event sequence numbers go up by one, from 1 for a fresh session;
//! - replies come in request order, only for requests the session sent, each error with a
//!   code of SPEC §3 and a message; kicks, login failures and closes likewise;
//! - the broker counts exactly the open connections, and every open logged-in connection's
//!   account is online;
//! - once every connection is gone and the longest grace period has passed, no session is left
//!   and no account is online.

#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

use beckon_broker::{
    AppConfig, Apps, Broker, BrokerConfig, CHANNEL_EVENT_CHANNEL, ConnId, GATEWAY_REGISTER,
    MemoryStore, Output, USER_ONLINE_CHANNEL,
};
use beckon_proto::ErrorCode;
use beckon_proto::codec::encode_client;
use beckon_proto::pb::{self, client_frame, event, reply, request, server_frame};
use beckon_token::{Privileges, TokenClaims};

const CERT: &[u8] = b"0123456789abcdef0123456789abcdef";
const EPOCH_UNIX_MS: u64 = 1_800_000_000_000;
const MAX_STEPS: usize = 200;
const MAX_CONNS: usize = 12;

/// `app` checks tokens and has small limits so that they are reached; `open` also takes
/// `_no_need_token` and keeps no offline messages; any other App ID is served unchecked by the
/// development template.
const APPS: [&str; 3] = ["app", "open", "dev"];
const ACCOUNTS: [&str; 5] = ["alice", "bob", "carol", "_system", "+15550100"];
const CHANNELS: [&str; 4] = ["c1", "c2", USER_ONLINE_CHANNEL, CHANNEL_EVENT_CHANNEL];
const ATTRS: [&str; 12] = [
    "_conn_timeout",
    "_userNotification",
    "_channel_ttl",
    "_member_num",
    "_auto_update_num",
    "_total_member_num",
    "_auto_update_total_num",
    "_sendmsg_limit",
    "_setattr_limit",
    "_phone",
    "color",
    "x",
];
const VALUES: [&str; 12] = [
    "",
    "0",
    "1",
    "2",
    "20",
    "120",
    "100000",
    "-1",
    "{\"_require_peer_online\":1}",
    "{\"_require_peer_online\":0,\"destMediaUid\":3}",
    "{\"_phone\":1}",
    "12*#",
];
const FUNCTIONS: [&str; 12] = [
    "io.agora.signal.user_query_user_status",
    "io.agora.signal.user_set_attr",
    "io.agora.signal.user_get_attr",
    "io.agora.signal.user_get_attr_all",
    "io.agora.signal.channel_query_num",
    "io.agora.signal.channel_query_user_isin",
    "io.agora.signal.channel_query_userlist",
    "io.agora.signal.channel_query_userlist_all",
    "io.agora.signal.channel_set_attr",
    "io.agora.signal.channel_del_attr",
    "io.agora.signal.channel_clear_attr",
    GATEWAY_REGISTER,
];
const ARG_KEYS: [&str; 5] = ["account", "name", "value", "channel", "num"];

/// A string: usually one of a list the broker gives meaning to, sometimes anything.
#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Any(String),
}

impl Text {
    fn pick(&self, list: &[&str]) -> String {
        match self {
            Self::Known(i) => list[usize::from(*i) % list.len()].to_owned(),
            Self::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    Connect,
    Disconnect(u8),
    Send(u8, Frame),
    Raw(u8, Vec<u8>),
    /// Let this many milliseconds pass (times 64), firing every timer on time.
    Wait(u16),
    /// Jump to the next timer.
    NextTimer,
}

#[derive(Arbitrary, Debug)]
enum Frame {
    Login {
        app: Text,
        account: Text,
        token: Token,
        resume: Option<Resume>,
    },
    Request(RequestId, Option<Op>),
    Ack(Seq),
    Ping(u64),
    Pong(u64),
}

#[derive(Arbitrary, Debug)]
enum Token {
    /// `_no_need_token`.
    Unchecked,
    Valid {
        server: bool,
    },
    Expired,
    ForAnotherAccount,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Resume {
    /// A session this run has seen logged in (by index), with its real secret.
    Seen { session: u8, last: Seq },
    /// Anything.
    Forged {
        session_id: u64,
        secret: Vec<u8>,
        last: u64,
    },
}

#[derive(Arbitrary, Debug)]
enum RequestId {
    Next,
    Repeat,
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Seq {
    /// The last event sequence number seen on this connection (or session).
    Latest,
    Back(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Logout,
    SendInstantMessage {
        account: Text,
        msg: Text,
        msg_id: Text,
    },
    QueryUserStatus(Text),
    SetUserAttr {
        name: Text,
        value: Text,
    },
    GetUserAttr {
        account: Text,
        name: Text,
    },
    GetUserAttrAll(Text),
    Invoke {
        name: Text,
        args: Vec<(u8, Arg)>,
        raw: Option<String>,
        call_id: Text,
    },
    ChannelJoin(Text),
    ChannelLeave(Text),
    ChannelQueryUserNum(Text),
    ChannelQueryUserIsIn(Text, Text),
    ChannelSetAttr {
        channel: Text,
        name: Text,
        value: Text,
    },
    ChannelDelAttr {
        channel: Text,
        name: Text,
    },
    ChannelClearAttr(Text),
    SendChannelMessage {
        channel: Text,
        msg: Text,
        msg_id: Text,
        force: bool,
    },
    Invite {
        channel: Text,
        account: Text,
        extra: Text,
    },
    InviteAccept {
        channel: Text,
        account: Text,
        extra: Text,
    },
    InviteRefuse {
        channel: Text,
        account: Text,
        extra: Text,
    },
    InviteEnd {
        channel: Text,
        account: Text,
        as_caller: bool,
    },
    InviteDtmf {
        channel: Text,
        account: Text,
        dtmf: Text,
        as_caller: bool,
    },
}

/// A value in an `invoke` request's JSON object.
#[derive(Arbitrary, Debug)]
enum Arg {
    Account(Text),
    Channel(Text),
    Attr(Text),
    Value(Text),
    Number(u64),
    Null,
}

/// One connection as the driver knows it.
#[derive(Debug, Default)]
struct Conn {
    open: bool,
    /// (app, account, index into `Driver::sessions`) once a login answer came.
    login: Option<(String, String, usize)>,
    /// (app, account) of the login sent, until its answer comes.
    pending_login: Option<(String, String)>,
    /// The last event sequence number seen here; `None` until the first event after a resume.
    last_seq: Option<u64>,
    last_reply: u64,
}

/// A session as the driver saw it in login answers.
#[derive(Debug)]
struct Session {
    id: u64,
    secret: bytes::Bytes,
    last_seq: u64,
    next_request: u64,
}

struct Driver {
    broker: Broker<MemoryStore>,
    now: Instant,
    conns: Vec<Conn>,
    sessions: Vec<Session>,
    by_id: HashMap<u64, usize>,
    tokens: HashMap<(String, String, u8), String>,
}

fuzz_target!(|steps: Vec<Step>| {
    let mut d = Driver::new();
    for step in steps.iter().take(MAX_STEPS) {
        d.step(step);
    }
    d.finish();
});

impl Driver {
    fn new() -> Self {
        let mut apps = Apps::development();
        let mut app = AppConfig::new("app", CERT);
        app.limits.max_name_chars = 16;
        app.limits.max_user_attr_value_chars = 24;
        app.limits.max_channel_attr_value_chars = 24;
        app.limits.max_message_bytes = 48;
        app.max_user_attrs = 3;
        app.max_channels_per_session = 2;
        app.channel_messages_per_user = 4;
        app.channel_messages_per_channel = 6;
        app.max_notified_members = 2;
        app.max_channel_attrs = 3;
        app.offline.max_per_account = 3;
        app.offline.ttl = Duration::from_secs(90);
        app.call_timeout = Duration::from_secs(30);
        app.peer_online_wait = Duration::from_secs(10);
        app.default_channel_ttl = Duration::from_secs(60);
        apps.insert(app);
        let mut open = AppConfig::new("open", CERT);
        open.allow_no_token = true;
        open.offline.enabled = false;
        apps.insert(open);
        let mut config = BrokerConfig::new(apps, [7; 32]);
        // Small enough that a session can be made to hold too much.
        config.max_unacked_events = 24;
        config.max_unacked_bytes = 4096;
        let now = Instant::now();
        Self {
            broker: Broker::new(config, MemoryStore::new(), now, EPOCH_UNIX_MS),
            now,
            conns: Vec::new(),
            sessions: Vec::new(),
            by_id: HashMap::new(),
            tokens: HashMap::new(),
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Connect => {
                if self.conns.len() < MAX_CONNS {
                    self.conns.push(Conn {
                        open: true,
                        ..Conn::default()
                    });
                    let id = self.conns.len() as u64;
                    self.broker.connect(ConnId(id), self.now);
                }
            }
            Step::Disconnect(c) => {
                if let Some(i) = self.pick_conn(*c) {
                    // The driver reports a connection gone whether or not the broker closed it.
                    self.conns[i].open = false;
                    self.broker.disconnect(ConnId(i as u64 + 1), self.now);
                }
            }
            Step::Send(c, frame) => {
                if let Some(i) = self.pick_conn(*c) {
                    let payload = self.encode(i, frame);
                    self.broker
                        .handle_frame(ConnId(i as u64 + 1), &payload, self.now);
                }
            }
            Step::Raw(c, bytes) => {
                if let Some(i) = self.pick_conn(*c) {
                    self.broker
                        .handle_frame(ConnId(i as u64 + 1), bytes, self.now);
                }
            }
            Step::Wait(units) => {
                let until = self.now + Duration::from_millis(u64::from(*units) * 64);
                self.run_timers(until);
            }
            Step::NextTimer => {
                if let Some(at) = self.broker.poll_timeout() {
                    self.run_timers(at.max(self.now));
                }
            }
        }
        self.drain();
        self.check_state();
    }

    /// Advances the clock to `until`, running each timer at its own time.
    fn run_timers(&mut self, until: Instant) {
        for _ in 0..100_000 {
            match self.broker.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.broker.handle_timeout(self.now);
                    if let Some(next) = self.broker.poll_timeout() {
                        assert!(next > self.now, "a timer is still due after handle_timeout");
                    }
                    self.drain();
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("the timers never settle");
    }

    /// An open connection, chosen by `c`; any connection when `c` is large (the broker must
    /// shrug off frames for connections it closed).
    fn pick_conn(&self, c: u8) -> Option<usize> {
        if self.conns.is_empty() {
            return None;
        }
        let i = usize::from(c) % self.conns.len();
        (self.conns[i].open || c >= 0xf0).then_some(i)
    }

    fn token(&mut self, app: &str, account: &str, kind: u8) -> String {
        let key = (app.to_owned(), account.to_owned(), kind);
        let now = EPOCH_UNIX_MS / 1000;
        self.tokens
            .entry(key)
            .or_insert_with(|| {
                let (account, expires_at, privileges) = match kind {
                    0 => (account, now + 36_000, Privileges::NONE),
                    1 => (account, now + 36_000, Privileges::SERVER),
                    2 => (account, now, Privileges::NONE),
                    _ => ("mallory", now + 36_000, Privileges::SERVER),
                };
                if account.len() > beckon_token::MAX_FIELD_LEN
                    || app.len() > beckon_token::MAX_FIELD_LEN
                {
                    return "too long to mint".to_owned();
                }
                beckon_token::mint(
                    CERT,
                    &TokenClaims {
                        app_id: app.to_owned(),
                        account: account.to_owned(),
                        issued_at: now,
                        expires_at,
                        privileges,
                    },
                )
            })
            .clone()
    }

    fn encode(&mut self, conn: usize, frame: &Frame) -> bytes::Bytes {
        let kind = match frame {
            Frame::Login {
                app,
                account,
                token,
                resume,
            } => {
                let app = app.pick(&APPS);
                let account = account.pick(&ACCOUNTS);
                let token = match token {
                    Token::Unchecked => beckon_proto::NO_TOKEN.to_owned(),
                    Token::Valid { server } => self.token(&app, &account, u8::from(*server)),
                    Token::Expired => self.token(&app, &account, 2),
                    Token::ForAnotherAccount => self.token(&app, &account, 3),
                    Token::Any(s) => s.clone(),
                };
                let resume = resume.as_ref().map(|r| match r {
                    Resume::Seen { session, last } if !self.sessions.is_empty() => {
                        let s = &self.sessions[usize::from(*session) % self.sessions.len()];
                        pb::Resume {
                            session_id: s.id,
                            secret: s.secret.clone(),
                            last_event_seq: seq(last, s.last_seq),
                        }
                    }
                    Resume::Seen { .. } => pb::Resume::default(),
                    Resume::Forged {
                        session_id,
                        secret,
                        last,
                    } => pb::Resume {
                        session_id: *session_id,
                        secret: secret.clone().into(),
                        last_event_seq: *last,
                    },
                });
                if self.conns[conn].login.is_none() {
                    self.conns[conn].pending_login = Some((app.clone(), account.clone()));
                }
                client_frame::Kind::Login(pb::Login {
                    app_id: app,
                    account,
                    token,
                    sdk_version: 1_000_000_000,
                    device_id: String::new(),
                    resume,
                    protocol_version: beckon_proto::PROTOCOL_VERSION,
                })
            }
            Frame::Request(id, op) => {
                let session = self.conns[conn].login.as_ref().map(|(_, _, s)| *s);
                let id = match (id, session) {
                    (RequestId::Next, Some(s)) => {
                        let next = &mut self.sessions[s].next_request;
                        *next = next.saturating_add(1);
                        *next
                    }
                    (RequestId::Repeat, Some(s)) => self.sessions[s].next_request,
                    (RequestId::Next | RequestId::Repeat, None) => 1,
                    (RequestId::Any(id), Some(s)) => {
                        let next = &mut self.sessions[s].next_request;
                        *next = (*next).max(*id);
                        *id
                    }
                    (RequestId::Any(id), None) => *id,
                };
                client_frame::Kind::Request(pb::Request {
                    id,
                    op: op.as_ref().map(request_op),
                })
            }
            Frame::Ack(s) => {
                let c = &self.conns[conn];
                let latest = c.last_seq.unwrap_or(0);
                client_frame::Kind::Ack(pb::Ack {
                    up_to: seq(s, latest),
                })
            }
            Frame::Ping(n) => client_frame::Kind::Ping(pb::Ping { nonce: *n }),
            Frame::Pong(n) => client_frame::Kind::Pong(pb::Pong { nonce: *n }),
        };
        encode_client(kind)
    }

    /// Takes every output and checks it against what the driver knows.
    fn drain(&mut self) {
        while let Some(out) = self.broker.poll_output() {
            match out {
                Output::Send { conn, frame } => {
                    let i = conn_index(conn);
                    assert!(
                        self.conns.get(i).is_some_and(|c| c.open),
                        "a frame for {conn:?}, which is not open"
                    );
                    let bytes = frame.to_bytes();
                    let decoded = pb::ServerFrame::decode(&bytes[..])
                        .unwrap_or_else(|e| panic!("the broker sent an undecodable frame: {e}"));
                    assert_eq!(
                        decoded.encode_to_vec(),
                        &bytes[..],
                        "the frame's encoding is not prost's"
                    );
                    let kind = decoded.kind.expect("every frame has a kind");
                    self.received(i, kind);
                }
                Output::Close { conn, reason } => {
                    let i = conn_index(conn);
                    assert!(
                        self.conns.get(i).is_some_and(|c| c.open),
                        "{conn:?} closed twice or never opened"
                    );
                    assert!(ErrorCode::ALL.contains(&reason.code));
                    assert!(!reason.message.is_empty(), "a close without a reason");
                    self.conns[i].open = false;
                }
            }
        }
    }

    fn received(&mut self, conn: usize, kind: server_frame::Kind) {
        match kind {
            server_frame::Kind::LoginOk(ok) => {
                let (app, account) = self.conns[conn]
                    .pending_login
                    .take()
                    .expect("a login answer for a login sent");
                assert!(self.conns[conn].login.is_none(), "two login answers");
                assert_ne!(ok.uid, 0);
                let s = match self.by_id.get(&ok.session_id) {
                    Some(&s) => {
                        assert!(ok.resumed, "a fresh session reuses id {}", ok.session_id);
                        assert_eq!(self.sessions[s].secret, ok.resume_secret);
                        s
                    }
                    None => {
                        assert!(!ok.resumed, "resumed a session never seen");
                        self.sessions.push(Session {
                            id: ok.session_id,
                            secret: ok.resume_secret.clone(),
                            last_seq: 0,
                            next_request: ok.last_applied_request_id,
                        });
                        self.by_id.insert(ok.session_id, self.sessions.len() - 1);
                        self.sessions.len() - 1
                    }
                };
                let next = &mut self.sessions[s].next_request;
                *next = (*next).max(ok.last_applied_request_id);
                let c = &mut self.conns[conn];
                c.login = Some((app, account, s));
                c.last_seq = if ok.resumed { None } else { Some(0) };
                c.last_reply = 0;
            }
            server_frame::Kind::LoginFailed(f) => {
                assert!(
                    self.conns[conn].login.is_none(),
                    "a login failure after a login"
                );
                assert!(
                    code_ok(f.code) && f.code != 0,
                    "login failure code {}",
                    f.code
                );
                assert!(!f.message.is_empty());
            }
            server_frame::Kind::Event(e) => {
                let c = &mut self.conns[conn];
                let (_, _, s) = c.login.clone().expect("an event before the login answer");
                if let Some(last) = c.last_seq {
                    assert_eq!(e.seq, last + 1, "event sequence numbers skip or repeat");
                }
                c.last_seq = Some(e.seq);
                let session = &mut self.sessions[s];
                session.last_seq = session.last_seq.max(e.seq);
                match e.body.expect("every event has a body") {
                    event::Body::Reply(r) => {
                        assert!(r.request_id > c.last_reply, "replies out of request order");
                        c.last_reply = r.request_id;
                        assert!(
                            r.request_id <= session.next_request,
                            "a reply to request {} that was never sent",
                            r.request_id
                        );
                        assert!(code_ok(r.code), "reply code {}", r.code);
                        if r.code != 0 {
                            assert!(!r.message.is_empty(), "an error without a message");
                            assert!(r.result.is_none());
                        }
                        if let Some(reply::Result::InvokeResult(i)) = r.result
                            && !i.err.is_empty()
                        {
                            let code: i32 = i.err.parse().expect("invoke errors are numbers");
                            assert!(code_ok(code) && code != 0);
                        }
                    }
                    event::Body::Call(call) => assert!(code_ok(call.code)),
                    event::Body::ChannelLeft(left) => assert!(code_ok(left.code)),
                    _ => {}
                }
            }
            server_frame::Kind::Kick(k) => {
                assert!(code_ok(k.code) && k.code != 0, "kick code {}", k.code);
                assert!(!k.message.is_empty());
            }
            server_frame::Kind::Pong(_) | server_frame::Kind::Ping(_) => {}
            server_frame::Kind::GoAway(_) => panic!("go-away without a shutdown"),
        }
    }

    fn check_state(&self) {
        let open = self.conns.iter().filter(|c| c.open).count();
        let stats = self.broker.stats();
        assert_eq!(
            stats.connections, open,
            "the broker counts other connections"
        );
        for c in self.conns.iter().filter(|c| c.open) {
            if let Some((app, account, _)) = &c.login {
                assert!(
                    self.broker.is_online(app, account),
                    "{account} of {app} has an open connection but is not online"
                );
            }
        }
    }

    /// Everyone goes; once the longest grace period is over, nothing may be left.
    fn finish(&mut self) {
        for i in 0..self.conns.len() {
            if self.conns[i].open {
                self.conns[i].open = false;
                self.broker.disconnect(ConnId(i as u64 + 1), self.now);
            }
        }
        self.drain();
        let later = self.now + self.broker.config().max_grace + Duration::from_secs(1);
        self.run_timers(later);
        let stats = self.broker.stats();
        assert_eq!(stats.connections, 0);
        assert_eq!(stats.sessions, 0, "sessions outlive their grace period");
        for app in APPS {
            assert!(self.broker.online_accounts(app).is_empty());
        }
    }
}

fn request_op(op: &Op) -> request::Op {
    let account = |t: &Text| t.pick(&ACCOUNTS);
    let channel = |t: &Text| t.pick(&CHANNELS);
    let attr = |t: &Text| t.pick(&ATTRS);
    let value = |t: &Text| t.pick(&VALUES);
    match op {
        Op::Logout => request::Op::Logout(pb::Logout {}),
        Op::SendInstantMessage {
            account: a,
            msg,
            msg_id,
        } => request::Op::SendInstantMessage(pb::SendInstantMessage {
            account: account(a),
            msg: value(msg),
            msg_id: value(msg_id),
        }),
        Op::QueryUserStatus(a) => request::Op::QueryUserStatus(pb::QueryUserStatus {
            account: account(a),
        }),
        Op::SetUserAttr { name, value: v } => request::Op::SetUserAttr(pb::SetUserAttr {
            name: attr(name),
            value: value(v),
        }),
        Op::GetUserAttr { account: a, name } => request::Op::GetUserAttr(pb::GetUserAttr {
            account: account(a),
            name: attr(name),
        }),
        Op::GetUserAttrAll(a) => request::Op::GetUserAttrAll(pb::GetUserAttrAll {
            account: account(a),
        }),
        Op::Invoke {
            name,
            args,
            raw,
            call_id,
        } => {
            let req = match raw {
                Some(raw) => raw.clone(),
                None => {
                    let map: serde_json::Map<String, serde_json::Value> = args
                        .iter()
                        .map(|(k, v)| {
                            let key = ARG_KEYS[usize::from(*k) % ARG_KEYS.len()].to_owned();
                            let v = match v {
                                Arg::Account(t) => account(t).into(),
                                Arg::Channel(t) => channel(t).into(),
                                Arg::Attr(t) => attr(t).into(),
                                Arg::Value(t) => value(t).into(),
                                Arg::Number(n) => (*n).into(),
                                Arg::Null => serde_json::Value::Null,
                            };
                            (key, v)
                        })
                        .collect();
                    serde_json::Value::Object(map).to_string()
                }
            };
            request::Op::Invoke(pb::Invoke {
                name: name.pick(&FUNCTIONS),
                req,
                call_id: value(call_id),
            })
        }
        Op::ChannelJoin(c) => request::Op::ChannelJoin(pb::ChannelJoin {
            channel: channel(c),
        }),
        Op::ChannelLeave(c) => request::Op::ChannelLeave(pb::ChannelLeave {
            channel: channel(c),
        }),
        Op::ChannelQueryUserNum(c) => request::Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
            channel: channel(c),
        }),
        Op::ChannelQueryUserIsIn(c, a) => {
            request::Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
                channel: channel(c),
                account: account(a),
            })
        }
        Op::ChannelSetAttr {
            channel: c,
            name,
            value: v,
        } => request::Op::ChannelSetAttr(pb::ChannelSetAttr {
            channel: channel(c),
            name: attr(name),
            value: value(v),
        }),
        Op::ChannelDelAttr { channel: c, name } => {
            request::Op::ChannelDelAttr(pb::ChannelDelAttr {
                channel: channel(c),
                name: attr(name),
            })
        }
        Op::ChannelClearAttr(c) => request::Op::ChannelClearAttr(pb::ChannelClearAttr {
            channel: channel(c),
        }),
        Op::SendChannelMessage {
            channel: c,
            msg,
            msg_id,
            force,
        } => request::Op::SendChannelMessage(pb::SendChannelMessage {
            channel: channel(c),
            msg: value(msg),
            msg_id: value(msg_id),
            force: *force,
        }),
        Op::Invite {
            channel: c,
            account: a,
            extra,
        } => request::Op::Invite(pb::Invite {
            channel: channel(c),
            account: account(a),
            extra: value(extra),
        }),
        Op::InviteAccept {
            channel: c,
            account: a,
            extra,
        } => request::Op::InviteAccept(pb::InviteAnswer {
            channel: channel(c),
            account: account(a),
            extra: value(extra),
        }),
        Op::InviteRefuse {
            channel: c,
            account: a,
            extra,
        } => request::Op::InviteRefuse(pb::InviteAnswer {
            channel: channel(c),
            account: account(a),
            extra: value(extra),
        }),
        Op::InviteEnd {
            channel: c,
            account: a,
            as_caller,
        } => request::Op::InviteEnd(pb::InviteEnd {
            channel: channel(c),
            account: account(a),
            as_caller: *as_caller,
        }),
        Op::InviteDtmf {
            channel: c,
            account: a,
            dtmf,
            as_caller,
        } => request::Op::InviteDtmf(pb::InviteDtmf {
            channel: channel(c),
            account: account(a),
            dtmf: value(dtmf),
            as_caller: *as_caller,
        }),
    }
}

fn seq(s: &Seq, latest: u64) -> u64 {
    match s {
        Seq::Latest => latest,
        Seq::Back(n) => latest.saturating_sub(u64::from(*n)),
        Seq::Any(n) => *n,
    }
}

fn conn_index(conn: ConnId) -> usize {
    usize::try_from(conn.0).expect("small ids") - 1
}

fn code_ok(code: i32) -> bool {
    ErrorCode::from_code(code).is_some()
}
