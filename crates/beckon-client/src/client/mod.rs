//! The client state machine: [`Client`] and the inputs and outputs it trades with its driver.
//!
//! Each kind of state has its own type and file, as in quinn-proto's `connection/`:
//! - `link.rs`: the connection — opening, closing, the connect deadline, reconnect attempts
//!   with back-off and jitter, heartbeats;
//! - `session.rs`: logging in, resuming or starting afresh, giving up, ending, and the
//!   acknowledgement of numbered events;
//! - `requests.rs`: the queue of requests awaiting their reply (ids, resending);
//! - `api/`: the API methods, and [`Pending`](api::Pending), the one description of what each
//!   request sends and what its reply and failure report;
//! - `calls.rs`: the mirror of calls in progress;
//! - `dedup.rs`: dropping re-delivered messages.
//!
//! This file wires them: the driver's inputs come in here, replies and server events are
//! dispatched from here, and the outputs wait here to be polled.

mod api;
mod calls;
mod dedup;
mod link;
mod requests;
mod session;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_proto::pb::{self, client_frame, event, server_frame};
use beckon_proto::{CallError, ErrorCode, Limits, codec};

use crate::config::ClientConfig;
use crate::event::Event;
use crate::ids::{MessageIds, Rng};
use api::Pending;
pub use calls::CallId;
use calls::Calls;
use dedup::Dedup;
pub use link::ConnectionCommand;
use link::{Heartbeat, Link, LinkState};
use requests::{Failure, Requests};
use session::{Acks, Credentials, SessionInfo};

/// Connection state as `getStatus()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    NotLoggedIn = 0,
    LoggingIn = 1,
    LoggedIn = 2,
    Reconnecting = 3,
}

/// The sans-IO client: the Signaling API's state machine without sockets or clocks.
///
/// Methods come in four kinds:
/// - getters: [`status`](Self::status), [`uid`](Self::uid), [`account`](Self::account),
///   [`pending_requests`](Self::pending_requests), [`joined_channels`](Self::joined_channels),
///   [`calls`](Self::calls), [`message_ids`](Self::message_ids);
/// - inputs from the driver: [`handle_connected`](Self::handle_connected),
///   [`handle_frame`](Self::handle_frame), [`handle_disconnected`](Self::handle_disconnected),
///   [`handle_timeout`](Self::handle_timeout);
/// - API commands named after the seed's methods (`login2`, `message_instant_send`,
///   `channel_join`, …), which check their arguments and queue work, never block, and report
///   every outcome — a refusal too — as events;
/// - outputs, drained after every input or command in this order:
///   [`poll_connection`](Self::poll_connection), [`poll_transmit`](Self::poll_transmit),
///   [`poll_event`](Self::poll_event), then [`poll_timeout`](Self::poll_timeout) to arm the
///   one timer. Each is `#[must_use]`: an output not carried out is lost work.
///
/// Every method that can change state takes the current time; the client never reads a clock.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    status: Status,
    /// A logout was sent; further calls are refused as not logged in.
    logging_out: bool,
    creds: Option<Credentials>,
    session: Option<SessionInfo>,
    uid: u32,
    limits: Limits,
    link: Link,
    acks: Acks,
    requests: Requests,
    /// Channels joined, in join order; rejoined after a reconnect that got a fresh session.
    joined: Vec<String>,
    calls: Calls,
    dedup: Dedup,
    ids: Arc<MessageIds>,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
}

impl Client {
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        // Ids draw from their own generator, so the jitter sequence does not depend on how
        // many ids were made.
        let id_prefix = Rng::new(config.seed.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15).next_u64();
        Self {
            status: Status::NotLoggedIn,
            logging_out: false,
            creds: None,
            session: None,
            uid: 0,
            limits: Limits::default(),
            link: Link::new(config.seed, now),
            acks: Acks::default(),
            requests: Requests::new(),
            joined: Vec::new(),
            calls: Calls::default(),
            dedup: Dedup::new(config.dedup_window),
            ids: Arc::new(MessageIds::new(id_prefix)),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        }
    }

    // ---- getters ------------------------------------------------------------------------------

    /// `getStatus()`.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The uid of the logged-in account, 0 when not logged in.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The account of the current login, if any.
    pub fn account(&self) -> Option<&str> {
        self.creds.as_ref().map(|c| c.login.account.as_str())
    }

    /// Requests sent or queued that have no reply yet.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// The generator of this client's message ids, for a driver that must return an id before
    /// the client sees the call: resolve the id with it, then pass it on (never "").
    pub fn message_ids(&self) -> Arc<MessageIds> {
        Arc::clone(&self.ids)
    }

    // ---- driver inputs ------------------------------------------------------------------------

    /// The connection asked for by [`ConnectionCommand::Open`] is up.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.link.connected(now) {
            self.send_login(now);
        }
    }

    /// The connection failed to open, or broke.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if !self.link.disconnected() {
            return;
        }
        self.acks.deadline = None;
        self.transmits.clear();
        self.link_lost(now);
    }

    /// One whole frame from the server.
    pub fn handle_frame(&mut self, payload: &[u8], now: Instant) {
        if !matches!(self.link.state, LinkState::Handshaking | LinkState::Ready) {
            return;
        }
        self.link.received(now);
        let handshaking = self.link.is(LinkState::Handshaking);
        match codec::decode_server(payload) {
            Ok(server_frame::Kind::LoginOk(ok)) if handshaking => self.login_accepted(ok, now),
            Ok(server_frame::Kind::LoginFailed(f)) if handshaking => self.login_refused(f, now),
            Ok(server_frame::Kind::Event(ev)) if self.link.is(LinkState::Ready) => {
                self.handle_event(ev, now)
            }
            Ok(server_frame::Kind::Ping(p)) => {
                self.transmit(client_frame::Kind::Pong(pb::Pong { nonce: p.nonce }), now)
            }
            Ok(server_frame::Kind::Pong(_)) => {}
            Ok(server_frame::Kind::Kick(k)) => {
                self.log(&format!("kicked by the server: {}", k.message));
                self.close_link();
                let ecode = if k.code == 0 {
                    ErrorCode::LogoutOther.code()
                } else {
                    k.code
                };
                self.finish(Event::Logout { ecode });
            }
            Ok(server_frame::Kind::GoAway(g)) => {
                self.drop_link(&format!("server going away: {}", g.message), now);
                let wait = Duration::from_millis(g.reconnect_after_ms.into());
                self.link.not_before(now + wait);
            }
            Ok(other) => {
                self.drop_link(
                    &format!("dropping the connection: unexpected frame {other:?}"),
                    now,
                );
            }
            Err(e) => self.drop_link(&format!("dropping the connection: {e}"), now),
        }
    }

    /// Runs whatever timer is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.link.retry_due(now) {
            self.link.open(now, self.config.connect_timeout);
        }
        if self.link.deadline_passed(now) {
            self.drop_link("connecting took too long", now);
        }
        if !self.link.is(LinkState::Ready) {
            return;
        }
        if self.acks.deadline.is_some_and(|t| t <= now) {
            self.ack_now(now);
        }
        let beat = self.heartbeat().and_then(|hb| self.link.heartbeat(now, hb));
        match beat {
            Some(Heartbeat::Lost) => {
                self.drop_link("no word from the server within three heartbeats", now)
            }
            Some(Heartbeat::Ping) => {
                self.transmit(client_frame::Kind::Ping(pb::Ping { nonce: 0 }), now)
            }
            None => {}
        }
    }

    // ---- outputs ------------------------------------------------------------------------------

    /// What to do with the connection; drain it first.
    #[must_use]
    pub fn poll_connection(&mut self) -> Option<ConnectionCommand> {
        self.link.poll_command()
    }

    /// The next frame payload to send (without the stream length prefix).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next event for the application, in the order things happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = self.link.poll_timeout(self.heartbeat());
        [link, self.acks.deadline].into_iter().flatten().min()
    }

    // ---- requests -----------------------------------------------------------------------------

    /// The one path by which an API call becomes a request: refused with the request's failure
    /// events when the client is not logged in or `checked` is an error; otherwise queued, and
    /// sent at once when the connection is ready.
    fn submit(&mut self, checked: Result<(), CallError>, pending: Pending, now: Instant) {
        if let Err(e) = self.logged_in().and(checked) {
            return pending.failed(Failure::Refused(e), self);
        }
        pending.submitted(self);
        if let Some(r) = self.requests.push(pending, self.link.is(LinkState::Ready)) {
            self.transmit(client_frame::Kind::Request(r), now);
        }
    }

    fn handle_reply(&mut self, r: pb::Reply, now: Instant) {
        let Some(pending) = self.requests.take(r.request_id) else {
            return self.log(&format!("reply to unknown request {}", r.request_id));
        };
        if r.code != 0 {
            let code = ErrorCode::from_code(r.code).unwrap_or(ErrorCode::General);
            let failure = Failure::Answered {
                ecode: r.code,
                error: CallError::new(code, r.message),
            };
            return pending.failed(failure, self);
        }
        pending.succeeded(r.result, self, now);
    }

    fn logged_in(&self) -> Result<(), CallError> {
        match self.status {
            Status::LoggedIn | Status::Reconnecting if !self.logging_out => Ok(()),
            _ => Err(CallError::new(ErrorCode::GeneralNotLogin, "not logged in")),
        }
    }

    // ---- server events ------------------------------------------------------------------------

    fn handle_event(&mut self, ev: pb::Event, now: Instant) {
        if !self.acks.accept(ev.seq) {
            return; // Replayed after a resume and already applied.
        }
        let app_event = match ev.body {
            Some(event::Body::Reply(r)) => {
                self.handle_reply(r, now);
                None
            }
            // Re-deliveries (same server message id) are dropped.
            Some(event::Body::InstantMessage(m)) => {
                let ev = Event::MessageInstantReceive {
                    account: m.sender,
                    uid: 0,
                    msg: m.msg,
                };
                self.dedup.first_time(m.server_msg_id).then_some(ev)
            }
            Some(event::Body::ChannelMessage(m)) => {
                let ev = Event::MessageChannelReceive {
                    channel: m.channel,
                    account: m.sender,
                    uid: 0,
                    msg: m.msg,
                };
                self.dedup.first_time(m.server_msg_id).then_some(ev)
            }
            Some(event::Body::ChannelUserJoined(m)) => Some(Event::ChannelUserJoined {
                channel: m.channel,
                account: m.account,
                uid: 0,
            }),
            Some(event::Body::ChannelUserLeft(m)) => Some(Event::ChannelUserLeaved {
                channel: m.channel,
                account: m.account,
                uid: 0,
            }),
            Some(event::Body::ChannelAttrUpdated(a)) => Some(Event::ChannelAttrUpdated {
                channel: a.channel,
                name: a.name,
                value: a.value,
                kind: a.r#type,
            }),
            Some(event::Body::Call(c)) => self.calls.on_event(c).unwrap_or_else(|why| {
                self.log(&why);
                None
            }),
            Some(event::Body::ChannelLeft(l)) => {
                self.joined.retain(|c| *c != l.channel);
                Some(Event::ChannelLeaved {
                    channel: l.channel,
                    ecode: l.code,
                })
            }
            None => None,
        };
        self.events.extend(app_event);
        if self.status == Status::NotLoggedIn {
            return; // The logout reply finished the session.
        }
        if self.acks.after_event(now, &self.config) {
            self.ack_now(now);
        }
    }

    // ---- helpers ------------------------------------------------------------------------------

    fn heartbeat(&self) -> Option<Duration> {
        self.session.as_ref().map(|s| s.heartbeat)
    }

    fn transmit(&mut self, kind: client_frame::Kind, now: Instant) {
        self.link.sent(now);
        self.transmits.push_back(codec::encode_client(kind));
    }

    fn ack_now(&mut self, now: Instant) {
        if let Some(up_to) = self.acks.take(self.link.is(LinkState::Ready)) {
            self.transmit(client_frame::Kind::Ack(pb::Ack { up_to }), now);
        }
    }

    fn close_link(&mut self) {
        self.link.close();
        self.acks.deadline = None;
    }

    /// Gives up on the connection for `why`, then reconnects or ends per the login policy.
    fn drop_link(&mut self, why: &str, now: Instant) {
        self.log(why);
        self.close_link();
        self.link_lost(now);
    }

    fn error(&mut self, name: &str, e: &CallError) {
        self.events.push_back(Event::Error {
            name: name.to_owned(),
            ecode: e.code.code(),
            desc: e.message.clone(),
        });
    }

    fn log(&mut self, txt: &str) {
        self.events.push_back(Event::Log {
            txt: txt.to_owned(),
        });
    }
}
