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

use std::time::Instant;

use bytes::Bytes;

use beckon_broker::{Broker, ConnId, Output, Store};
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

/// Everything the broker asked for since the last call.
pub fn outputs<S: Store>(b: &mut Broker<S>) -> Vec<Output> {
    std::iter::from_fn(|| b.poll_output()).collect()
}

/// Drops every pending output (what a benchmark does with them).
pub fn discard<S: Store>(b: &mut Broker<S>) {
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
