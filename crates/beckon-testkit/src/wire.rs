//! A broker driven by raw frames, as an untrusted client (or a benchmark) drives it: no
//! [`Client`](beckon_client::Client) in between, so any frame can be sent, valid or not.
//!
//! ```
//! use std::time::Instant;
//! use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore};
//! use beckon_proto::pb::{self, request::Op};
//! use beckon_testkit::wire;
//!
//! let now = Instant::now();
//! let mut b = Broker::new(BrokerConfig::new(Apps::development(), [1; 32]), MemoryStore::new(), now, 0);
//! wire::login_acked(&mut b, ConnId(1), "app", "alice", now);
//! let status = Op::QueryUserStatus(pb::QueryUserStatus { account: "".into() });
//! assert_eq!(wire::request(&mut b, ConnId(1), 1, status, now).code, 1004);
//! ```

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_broker::{Broker, BrokerConfig, ConnId, MemoryStore, Output, Store};
use beckon_proto::codec::{decode_server, encode_client};
use beckon_proto::pb::{self, client_frame::Kind, event::Body, request::Op, server_frame};

/// A login frame.
pub fn login_frame(app: &str, account: &str, token: &str) -> Bytes {
    encode_client(Kind::Login(pb::Login {
        app_id: app.into(),
        account: account.into(),
        token: token.into(),
        ..Default::default()
    }))
}

/// A request frame.
pub fn request_frame(id: u64, op: Op) -> Bytes {
    encode_client(Kind::Request(pb::Request { id, op: Some(op) }))
}

/// An acknowledgement of every event so far.
pub fn ack_all_frame() -> Bytes {
    encode_client(Kind::Ack(pb::Ack {
        up_to: u64::MAX / 2,
    }))
}

/// Carries out every store batch the broker has, at once, on a handle of its own store, until
/// it has none (an answer may lead to more).
pub fn commit<S: Store>(b: &mut Broker<S>) {
    while let Some(batch) = b.poll_store() {
        let mut store = b.store().clone();
        for done in store.execute(vec![batch]) {
            b.handle_store_done(done);
        }
    }
}

/// Everything the broker asked for since the last call, its store batches carried out first
/// (so replies that wait for the store are among the outputs).
pub fn outputs<S: Store>(b: &mut Broker<S>) -> Vec<Output> {
    commit(b);
    std::iter::from_fn(|| b.poll_output()).collect()
}

/// Carries out the store batches and drops every pending output (what a benchmark does with
/// them).
pub fn discard<S: Store>(b: &mut Broker<S>) {
    commit(b);
    while b.poll_output().is_some() {}
}

/// Every pending frame, decoded, with its connection.
pub fn drain<S: Store>(b: &mut Broker<S>) -> Vec<(ConnId, server_frame::Kind)> {
    outputs(b)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { conn, frame } => {
                let kind = decode_server(&frame.to_bytes()).expect("the broker's frames decode");
                Some((conn, kind))
            }
            Output::Close { .. } => None,
        })
        .collect()
}

/// The pending frames for `conn`, decoded (the others are dropped).
pub fn frames_to<S: Store>(b: &mut Broker<S>, conn: ConnId) -> Vec<server_frame::Kind> {
    let frames = drain(b).into_iter();
    frames.filter(|(c, _)| *c == conn).map(|(_, k)| k).collect()
}

/// The reply to request `id` among decoded frames.
pub fn reply_in(frames: &[server_frame::Kind], id: u64) -> Option<pb::Reply> {
    frames.iter().find_map(|k| match k {
        server_frame::Kind::Event(pb::Event {
            body: Some(Body::Reply(r)),
            ..
        }) if r.request_id == id => Some(r.clone()),
        _ => None,
    })
}

/// Connects `conn` and sends a login; returns the broker's first answer on it.
pub fn connect_login<S: Store>(
    b: &mut Broker<S>,
    conn: ConnId,
    (app, account, token): (&str, &str, &str),
    now: Instant,
) -> server_frame::Kind {
    b.connect(conn, now);
    b.handle_frame(conn, &login_frame(app, account, token), now);
    let answer = frames_to(b, conn).into_iter().next();
    answer.expect("a login answer")
}

/// Connects `conn`, logs `account` in with `_no_need_token` and acknowledges everything;
/// every output is dropped.
pub fn login_acked<S: Store>(
    b: &mut Broker<S>,
    conn: ConnId,
    app: &str,
    account: &str,
    now: Instant,
) {
    b.connect(conn, now);
    b.handle_frame(
        conn,
        &login_frame(app, account, beckon_proto::NO_TOKEN),
        now,
    );
    discard(b);
    ack_all(b, conn, now);
}

/// Acknowledges every event `conn` has had; every output is dropped.
pub fn ack_all<S: Store>(b: &mut Broker<S>, conn: ConnId, now: Instant) {
    b.handle_frame(conn, &ack_all_frame(), now);
    discard(b);
}

/// Sends request `id`; returns its reply (other frames for `conn` are dropped).
pub fn request<S: Store>(
    b: &mut Broker<S>,
    conn: ConnId,
    id: u64,
    op: Op,
    now: Instant,
) -> pb::Reply {
    b.handle_frame(conn, &request_frame(id, op), now);
    reply_in(&frames_to(b, conn), id).expect("a reply")
}

/// A `channelJoin` request.
pub fn join(channel: &str) -> Op {
    Op::ChannelJoin(pb::ChannelJoin {
        channel: channel.into(),
    })
}

/// A `channelLeave` request.
pub fn leave(channel: &str) -> Op {
    Op::ChannelLeave(pb::ChannelLeave {
        channel: channel.into(),
    })
}

/// A `channelSetAttr` request.
pub fn set_channel_attr(channel: &str, name: &str, value: &str) -> Op {
    Op::ChannelSetAttr(pb::ChannelSetAttr {
        channel: channel.into(),
        name: name.into(),
        value: value.into(),
    })
}

/// A `messageInstantSend` request with no message id.
pub fn send_instant(to: &str, msg: &str) -> Op {
    Op::SendInstantMessage(pb::SendInstantMessage {
        account: to.into(),
        msg: msg.into(),
        msg_id: String::new(),
    })
}

/// An `invoke` request (call id "c").
pub fn invoke_request(name: &str, req: &str) -> Op {
    Op::Invoke(pb::Invoke {
        name: name.into(),
        req: req.into(),
        call_id: "c".into(),
    })
}

/// The `invoke` result a reply carries.
pub fn invoke_result(reply: pb::Reply) -> pb::InvokeResult {
    match reply.result {
        Some(pb::reply::Result::InvokeResult(r)) => r,
        other => panic!("an invoke result, not {other:?}"),
    }
}

/// A broker on a virtual clock driven by raw frames on many connections, as an attacker (or a
/// test of one) drives it: logins, requests answered by their replies, and time passing with
/// the connections it logged in kept alive (each pings and acknowledges every few seconds, as
/// a client would). Every connection the broker closes is recorded.
///
/// ```
/// use beckon_broker::{Apps, BrokerConfig, ConnId};
/// use beckon_proto::pb::{self, request::Op};
/// use beckon_testkit::wire::Driver;
///
/// let mut d = Driver::new(BrokerConfig::new(Apps::development(), [1; 32]));
/// d.login(ConnId(1), "app", "alice");
/// let join = Op::ChannelJoin(pb::ChannelJoin { channel: "room".into() });
/// assert_eq!(d.request(ConnId(1), join).code, 0);
/// d.advance(std::time::Duration::from_secs(60));
/// assert!(d.broker.is_online("app", "alice") && d.closed.is_empty());
/// ```
#[derive(Debug)]
pub struct Driver<S> {
    pub broker: Broker<S>,
    pub now: Instant,
    next_request: u64,
    /// Connections the broker has closed so far.
    pub closed: HashSet<ConnId>,
    /// Connections kept alive while time passes.
    alive: Vec<ConnId>,
}

impl Driver<MemoryStore> {
    /// A broker with `config` and an empty store in memory.
    pub fn new(config: BrokerConfig) -> Self {
        let now = Instant::now();
        Self::with_broker(
            Broker::new(config, MemoryStore::new(), now, 1_700_000_000_000),
            now,
        )
    }
}

impl<S: Store> Driver<S> {
    /// Drives `broker`, whose clock reads `now`.
    pub fn with_broker(broker: Broker<S>, now: Instant) -> Self {
        Self {
            broker,
            now,
            next_request: 1,
            closed: HashSet::new(),
            alive: Vec::new(),
        }
    }

    /// Every pending frame for `conn`, decoded (those for other connections are dropped);
    /// records the connections closed meanwhile.
    pub fn frames_to(&mut self, conn: ConnId) -> Vec<server_frame::Kind> {
        let mut frames = Vec::new();
        commit(&mut self.broker);
        while let Some(o) = self.broker.poll_output() {
            match o {
                Output::Send { conn: c, frame } if c == conn => {
                    frames.push(decode_server(&frame.to_bytes()).expect("a valid frame"));
                }
                Output::Send { .. } => {}
                Output::Close { conn, .. } => {
                    self.closed.insert(conn);
                }
            }
        }
        frames
    }

    /// Connects `conn` and logs `account` in to `app` with `_no_need_token`; the broker's
    /// answer.
    pub fn login_answer(
        &mut self,
        conn: ConnId,
        app: &str,
        account: &str,
    ) -> Option<server_frame::Kind> {
        self.broker.connect(conn, self.now);
        let login = login_frame(app, account, beckon_proto::NO_TOKEN);
        self.broker.handle_frame(conn, &login, self.now);
        self.frames_to(conn).into_iter().next()
    }

    /// Logs `account` in on `conn` (which must succeed), acknowledges, and keeps the
    /// connection alive from now on.
    pub fn login(&mut self, conn: ConnId, app: &str, account: &str) {
        let answer = self.login_answer(conn, app, account);
        assert!(
            matches!(answer, Some(server_frame::Kind::LoginOk(_))),
            "{account}: {answer:?}"
        );
        self.ack(conn);
        self.alive.push(conn);
    }

    /// Stops keeping `conn` alive.
    pub fn forget(&mut self, conn: ConnId) {
        self.alive.retain(|c| *c != conn);
    }

    /// Acknowledges every event `conn` has had.
    pub fn ack(&mut self, conn: ConnId) {
        self.broker.handle_frame(conn, &ack_all_frame(), self.now);
        self.frames_to(conn);
    }

    /// Sends a request and acknowledges what came back; the reply, if the session got one.
    pub fn try_request(&mut self, conn: ConnId, op: Op) -> Option<pb::Reply> {
        let id = self.next_request;
        self.next_request += 1;
        self.broker
            .handle_frame(conn, &request_frame(id, op), self.now);
        let reply = reply_in(&self.frames_to(conn), id);
        self.ack(conn);
        reply
    }

    /// As [`try_request`](Self::try_request), which must get a reply.
    pub fn request(&mut self, conn: ConnId, op: Op) -> pb::Reply {
        self.try_request(conn, op).expect("a reply")
    }

    /// `invoke` of `io.agora.signal.<function>`; its result.
    pub fn invoke(&mut self, conn: ConnId, function: &str, req: &str) -> pb::InvokeResult {
        let name = format!("io.agora.signal.{function}");
        invoke_result(self.request(conn, invoke_request(&name, req)))
    }

    /// Lets virtual time pass in steps of at most 5 s, running every timer on the way; the
    /// connections kept alive ping and acknowledge at each step.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        let ping = encode_client(Kind::Ping(pb::Ping { nonce: 0 }));
        while self.now < until {
            let step = (self.now + Duration::from_secs(5)).min(until);
            while let Some(at) = self.broker.poll_timeout().filter(|at| *at <= step) {
                self.now = self.now.max(at);
                self.broker.handle_timeout(self.now);
            }
            self.now = step;
            self.broker.handle_timeout(step);
            for conn in self.alive.clone() {
                self.broker.handle_frame(conn, &ping, self.now);
                self.broker.handle_frame(conn, &ack_all_frame(), self.now);
            }
            self.frames_to(ConnId(u64::MAX));
        }
    }
}
