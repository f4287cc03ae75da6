//! The broker state machine: its inputs, outputs, timers and the event plumbing every feature
//! shares. The features live in the submodules, one per part of the SPEC.

use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use beckon_proto::pb::{self, client_frame, server_frame};
use beckon_proto::{CallError, ErrorCode, codec};
use beckon_token::Privileges;

use crate::admin::{RequestKind, Tallies};
use crate::admission::Admission;
use crate::calls::Calls;
use crate::channels::Channels;
use crate::config::{AppConfig, BrokerConfig};
use crate::frame::{BodyField, EventBody, OutFrame};
use crate::offline::OfflineLedger;
use crate::session::Session;
use crate::shrink::{shrink_deque, shrink_heap, shrink_map};
use crate::store::{Store, StoreError, StoreOp};
use crate::{ConnId, NameMap, SessionId};
use storage::{Storage, Then};

mod admin;
mod calls;
mod channels;
mod cluster;
mod cluster_calls;
mod cluster_channels;
mod login;
mod requests;
mod storage;
mod users;

/// Timer heaps this small are not worth compacting.
const MIN_TIMERS_COMPACT: usize = 1_024;
pub use admin::ADMIN_KICK_MESSAGE;

/// What the broker asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Output {
    /// Write this frame to the connection.
    Send { conn: ConnId, frame: OutFrame },
    /// Flush what was queued for the connection, then close it. The broker has forgotten it.
    Close { conn: ConnId, reason: CloseReason },
}

/// Why the broker closed a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: ErrorCode,
    pub message: String,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndReason {
    /// The client logged out and acknowledged everything.
    Logout,
    /// The connection went away and the grace period passed without a resume.
    Lost,
    /// Another login of the same account took over.
    Kicked,
    /// More events went unacknowledged than the session may hold.
    Overflow,
    /// The server is shutting down.
    Shutdown,
}

/// What a timer entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    /// Login deadline or heartbeat silence of a connection.
    Conn(ConnId),
    /// End of a detached session's grace period.
    Grace(SessionId),
    /// An empty channel's TTL.
    ChannelTtl(u64),
    /// A channel's `_auto_update_num` / `_auto_update_total_num` report.
    AutoUpdate(u64),
    /// A call's ringing or waiting deadline.
    Call(u64),
    /// The oldest stored offline message's TTL.
    OfflineExpiry,
    /// A cluster channel replica's `_auto_update_num` / `_auto_update_total_num` report.
    ClusterAutoUpdate(u64),
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    pub connections: usize,
    pub sessions: usize,
    pub logins: u64,
    pub login_failures: u64,
    pub kicks: u64,
    /// P2P messages stored for a recipient that had a session (handed to it at once, or
    /// behind what it already had).
    pub messages_delivered: u64,
    /// P2P messages stored for a recipient that had none, for its next login.
    pub messages_stored: u64,
    pub slow_consumer_disconnects: u64,
    /// Sessions resumed on a new connection.
    pub resumes: u64,
    /// Sessions that ended because their grace period ran out.
    pub grace_expiries: u64,
    /// Sessions ended because they held too many unacknowledged events.
    pub overflows: u64,
    /// Channel messages handed to members (one per member per message).
    pub channel_deliveries: u64,
    /// Empty channels removed when their TTL ran out.
    pub channels_expired: u64,
    /// Calls that failed unanswered (`INVITE_E_TIMEOUT`) or whose callee never came online.
    pub call_timeouts: u64,
    /// Offline messages dropped at delivery because they outlived the app's TTL.
    pub offline_expired: u64,
    /// Store operations that failed (the store's driver logs why).
    pub store_errors: u64,
    /// Events replayed to clients that resumed their session.
    pub replayed_events: u64,
    /// Stored offline messages handed to a session after its login.
    pub stored_delivered: u64,
    /// Calls the callee accepted.
    pub calls_accepted: u64,
    /// Calls the callee refused.
    pub calls_refused: u64,
    /// Calls ended by either side, or by a side going offline after acceptance.
    pub calls_ended: u64,
    /// Calls that failed: unanswered, or the callee offline.
    pub calls_failed: u64,
    /// Sessions an administrator logged out.
    pub admin_kicks: u64,
    /// Messages an administrator sent (p2p and channel).
    pub admin_messages: u64,
    /// Logins refused by admission control (`GENERAL_E_OVERLOAD`), server-wide or per address.
    pub logins_refused: u64,
    /// Logins with a legacy (md5) token, for apps that accept them.
    pub legacy_logins: u64,
    /// Empty channels ended before their TTL by a quota: an account leaving more empty channels
    /// behind than it may, or an app at its channel limit making room.
    pub channels_evicted: u64,
}

/// What the broker holds in memory on behalf of clients, counted by the broker itself: each
/// figure is bounded by a quota and returns to zero when what holds it ends or expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub connections: usize,
    pub sessions: usize,
    /// Apps with sessions (configured apps, and development apps while they have sessions).
    pub apps: usize,
    pub channels: usize,
    /// Channels without members, waiting out their TTL.
    pub empty_channels: usize,
    /// Bytes of channel attribute names and values, in every channel.
    pub channel_attr_bytes: usize,
    /// Calls in progress.
    pub calls: usize,
    /// Bytes of call `extra` kept for invitations not yet handed to their callee.
    pub call_extra_bytes: usize,
    /// Messages this broker accepted for accounts without a session, still in the store.
    pub offline_messages: usize,
    /// What those messages count against their apps' store quota.
    pub offline_bytes: usize,
    /// Source addresses with a login bucket of their own.
    pub tracked_addresses: usize,
    /// Pending timers.
    pub timers: usize,
}

#[derive(Debug)]
struct Conn {
    opened_at: Instant,
    last_rx: Instant,
    session: Option<SessionId>,
    /// Where the connection comes from, when the driver said.
    peer: Option<IpAddr>,
}

#[derive(Debug)]
struct AppState {
    config: Arc<AppConfig>,
    online: NameMap<Arc<str>, SessionId>,
}

/// Who sent the request being handled.
#[derive(Clone, Debug)]
struct Caller {
    sid: SessionId,
    app: Arc<AppConfig>,
    account: Arc<str>,
    privileged: bool,
    /// The request's id, for a reply that waits for the store.
    request: u64,
    /// The request's kind, tallied when it is answered; `None` for an operator's call.
    kind: Option<RequestKind>,
}

/// The sans-IO broker core.
///
/// It owns every session and the presence table, and never performs I/O or reads a clock.
/// Its methods come in four kinds:
/// - inputs: [`connect`](Self::connect), [`handle_frame`](Self::handle_frame),
///   [`disconnect`](Self::disconnect), [`handle_timeout`](Self::handle_timeout),
///   [`handle_store_done`](Self::handle_store_done);
/// - outputs, to drain after every input: [`poll_output`](Self::poll_output) and
///   [`poll_store`](Self::poll_store), then [`poll_timeout`](Self::poll_timeout) to arm the one
///   timer;
/// - getters: [`stats`](Self::stats), [`is_online`](Self::is_online), [`store`](Self::store).
///
/// The store `S` is a handle the broker keeps for its drivers: they carry its batches out on a
/// handle of their own. The broker calls it for one thing only, an operator's read of an
/// account's attributes ([`admin`](Self::admin)), never on a client's path.
#[derive(Debug)]
pub struct Broker<S> {
    config: BrokerConfig,
    store: S,
    /// Store operations under way and what their answers continue.
    storage: Storage,
    epoch: Instant,
    epoch_unix_ms: u64,
    /// Keyed by ids the broker hands out itself, never by client input, so a fast hash that
    /// offers no protection against chosen keys is safe here (and is on every frame's path).
    conns: FxHashMap<ConnId, Conn>,
    sessions: FxHashMap<SessionId, Session>,
    apps: NameMap<String, AppState>,
    next_session: u64,
    next_message: u64,
    channels: Channels,
    calls: Calls,
    /// Where event heads are written (see `EventBody::frame_in`).
    head_scratch: bytes::BytesMut,
    /// The time of the input being handled.
    now: Instant,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    /// The heap is compacted when it grows past this.
    timers_compact_at: usize,
    outputs: VecDeque<Output>,
    stats: BrokerStats,
    admission: Admission,
    offline: OfflineLedger,
    /// When the offline expiry timer is armed for.
    offline_timer: Option<Instant>,
    /// Events that follow the reply of the request being handled (a join's attributes that
    /// did not fit in its answer).
    follow_ups: Vec<(SessionId, EventBody)>,
    tallies: Tallies,
    /// What a cluster node waits for from its driver.
    cluster: cluster::ClusterState,
    /// Channels in cluster mode: the operations waiting for the cluster and the replicas of
    /// channels with members here.
    cluster_channels: cluster_channels::ClusterChannels,
    /// Call signals to other nodes waiting for their driver's answer.
    cluster_calls: cluster_calls::ClusterCalls,
}

impl<S: Store> Broker<S> {
    /// A broker whose clock reads `epoch_unix_ms` (Unix milliseconds) at `epoch`.
    pub fn new(config: BrokerConfig, store: S, epoch: Instant, epoch_unix_ms: u64) -> Self {
        Self {
            store,
            storage: Storage::default(),
            epoch,
            epoch_unix_ms,
            conns: FxHashMap::default(),
            sessions: FxHashMap::default(),
            apps: NameMap::default(),
            next_session: 1,
            next_message: 0,
            channels: Channels::default(),
            calls: Calls::default(),
            head_scratch: bytes::BytesMut::new(),
            now: epoch,
            timers: BinaryHeap::new(),
            timers_compact_at: MIN_TIMERS_COMPACT,
            outputs: VecDeque::new(),
            stats: BrokerStats::default(),
            tallies: Tallies::default(),
            cluster: Default::default(),
            cluster_channels: Default::default(),
            cluster_calls: Default::default(),
            admission: Admission::new(config.admission.clone(), epoch),
            offline: OfflineLedger::default(),
            offline_timer: None,
            follow_ups: Vec::new(),
            config,
        }
    }

    // ---- getters ------------------------------------------------------------------------------

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn stats(&self) -> BrokerStats {
        BrokerStats {
            connections: self.conns.len(),
            sessions: self.sessions.len(),
            ..self.stats
        }
    }

    /// The store handle the broker was made with.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// What the broker holds on behalf of clients now (see [`Held`]).
    pub fn held(&self) -> Held {
        let (channels, empty_channels, channel_attr_bytes) = self.channels.held();
        let (calls, call_extra_bytes) = self.calls.held();
        let (offline_messages, offline_bytes) = self.offline.held();
        Held {
            connections: self.conns.len(),
            sessions: self.sessions.len(),
            apps: self.apps.len(),
            channels,
            empty_channels,
            channel_attr_bytes,
            calls,
            call_extra_bytes,
            offline_messages,
            offline_bytes,
            tracked_addresses: self.admission.tracked_addresses(),
            timers: self.timers.len(),
        }
    }

    /// Whether `account` of `app_id` has a session.
    pub fn is_online(&self, app_id: &str, account: &str) -> bool {
        self.session_of(app_id, account).is_some()
    }

    /// The privileges the session of `account` logged in with, if it is online.
    pub fn privileges(&self, app_id: &str, account: &str) -> Option<Privileges> {
        let sid = self.session_of(app_id, account)?;
        self.sessions.get(&sid).map(|s| s.privileges)
    }

    /// Accounts online in `app_id`, in no particular order.
    pub fn online_accounts(&self, app_id: &str) -> Vec<String> {
        self.apps
            .get(app_id)
            .map(|a| a.online.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    fn session_of(&self, app: &str, account: &str) -> Option<SessionId> {
        self.apps.get(app)?.online.get(account).copied()
    }

    // ---- inputs -------------------------------------------------------------------------------

    /// A new connection was accepted, from an address the driver does not know or does not
    /// say: its login meets only the server-wide admission bucket. It must log in within the
    /// login timeout.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        self.open(conn, None, now);
    }

    /// A new connection was accepted from `peer`: its login meets the server-wide admission
    /// bucket and that of its address. It must log in within the login timeout.
    pub fn connect_from(&mut self, conn: ConnId, peer: IpAddr, now: Instant) {
        self.open(conn, Some(peer), now);
    }

    fn open(&mut self, conn: ConnId, peer: Option<IpAddr>, now: Instant) {
        self.now = now;
        self.conns.insert(
            conn,
            Conn {
                opened_at: now,
                last_rx: now,
                session: None,
                peer,
            },
        );
        self.arm(now + self.config.login_timeout, TimerKey::Conn(conn));
    }

    /// The connection is gone (closed by the peer or by the driver). Its session, if any,
    /// waits in grace for a resume.
    pub fn disconnect(&mut self, conn: ConnId, now: Instant) {
        self.now = now;
        if let Some(c) = self.conns.remove(&conn)
            && let Some(sid) = c.session
        {
            self.detach(sid, now);
        }
        self.shrink_tables();
    }

    /// Shuts down: every client is told to reconnect (spread over `spread`) and which of its
    /// requests were applied, every account online gets a restart window in the store (its
    /// messages queue without the offline cap while its client comes back), and every
    /// connection is closed. Unacknowledged p2p messages are in the store already.
    ///
    /// Call it once every store batch handed out has been answered (see
    /// [`store_idle`](Self::store_idle)), so that every reply owed went out before the
    /// `GoAway`; then carry out the last batch ([`poll_store`](Self::poll_store)). The broker
    /// is empty after.
    pub fn shutdown(&mut self, spread: Duration) {
        debug_assert!(
            self.store_idle(),
            "replies waiting for the store would be lost"
        );
        let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            let session = self.conns.get(&conn).and_then(|c| c.session);
            let applied = session.and_then(|sid| self.sessions.get(&sid));
            if let Some(s) = applied {
                let delay = splitmix64(conn.0) % spread_ms;
                let go_away = pb::GoAway {
                    message: "the server is restarting".into(),
                    reconnect_after_ms: u32::try_from(delay).unwrap_or(u32::MAX),
                    last_applied_request_id: Some(s.last_applied_request),
                };
                self.send(conn, OutFrame::server(server_frame::Kind::GoAway(go_away)));
            }
            self.drop_conn(conn, ErrorCode::LogoutNet, "the server is shutting down");
        }
        let mut sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        sessions.sort();
        let now_ms = self.unix_ms(self.now);
        for sid in sessions {
            let window = self.sessions.get(&sid).and_then(|s| {
                let grace = self.grace_period(s);
                let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
                s.logging_out.is_none().then(|| StoreOp::Window {
                    app: s.app.app_id.clone(),
                    account: s.account.to_string(),
                    until_ms: now_ms.saturating_add(grace_ms),
                })
            });
            if let Some(op) = window {
                self.store_op(op, Then::Nothing);
            }
            self.end_session(sid, EndReason::Shutdown);
        }
    }

    /// One whole frame arrived on `conn`.
    pub fn handle_frame(&mut self, conn: ConnId, payload: &[u8], now: Instant) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return; // Closed already; frames still in flight are dropped.
        };
        c.last_rx = now;
        let session = c.session;
        let kind = match codec::decode_client(payload) {
            Ok(kind) => kind,
            Err(e) => {
                self.protocol_violation(conn, format!("undecodable frame: {e}"));
                return;
            }
        };
        match (kind, session) {
            (client_frame::Kind::Login(login), None) => self.handle_login(conn, login, now),
            (client_frame::Kind::Login(_), Some(_)) => {
                self.protocol_violation(conn, "login on a connection that is logged in".into())
            }
            (client_frame::Kind::Ping(p), _) => self.send(
                conn,
                OutFrame::server(server_frame::Kind::Pong(pb::Pong { nonce: p.nonce })),
            ),
            (client_frame::Kind::Pong(_), _) => {}
            (client_frame::Kind::Request(req), Some(sid)) => self.handle_request(sid, req),
            (client_frame::Kind::Ack(ack), Some(sid)) => self.handle_ack(sid, ack.up_to),
            (client_frame::Kind::Request(_) | client_frame::Kind::Ack(_), None) => {
                self.protocol_violation(conn, "request before login".into())
            }
        }
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match key {
                TimerKey::Conn(conn) => self.conn_timer_due(conn, now),
                TimerKey::Grace(sid) => self.grace_due(sid, now),
                TimerKey::ChannelTtl(id) => self.channel_ttl_due(id, now),
                TimerKey::AutoUpdate(id) => self.auto_update_due(id, now),
                TimerKey::Call(id) => self.call_timer_due(id, now),
                TimerKey::OfflineExpiry => self.offline_expiry_due(now),
                TimerKey::ClusterAutoUpdate(id) => self.cluster_auto_update_due(id, now),
            }
        }
        self.shrink_tables();
    }

    /// Gives back the memory of tables a crowd made large once it has gone (see `shrink`).
    fn shrink_tables(&mut self) {
        shrink_map(&mut self.conns);
        shrink_map(&mut self.sessions);
        shrink_map(&mut self.apps);
        shrink_heap(&mut self.timers);
        shrink_deque(&mut self.outputs);
    }

    /// A connection's login deadline or heartbeat silence: a popped entry that is not due yet
    /// (the connection was heard from since) goes back with its real deadline.
    fn conn_timer_due(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (due, message) = match c.session {
            None => (
                c.opened_at + self.config.login_timeout,
                "no login within the login timeout",
            ),
            Some(_) => (
                c.last_rx + self.config.heartbeat_interval * 3,
                "no heartbeat within three intervals",
            ),
        };
        if due <= now {
            self.close(conn, ErrorCode::LogoutNet, message.into(), now);
        } else {
            self.arm(due, TimerKey::Conn(conn));
        }
    }

    // ---- outputs ------------------------------------------------------------------------------

    /// The next thing for the driver to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    // ---- plumbing -----------------------------------------------------------------------------

    fn arm(&mut self, at: Instant, key: TimerKey) {
        self.timers.push(Reverse((at, key)));
        if self.timers.len() > self.timers_compact_at {
            self.compact_timers();
        }
    }

    /// Drops the timer entries that can no longer fire anything: those of connections, calls
    /// and channels that are gone, and those superseded by a later deadline (a channel left
    /// empty again, a session detached again). Without it, a client that joins and leaves a
    /// channel in a loop, or creates channels that quotas end early, would grow the heap by one
    /// entry per action for as long as the longest TTL. Run when the heap has doubled since the
    /// last run, so its cost is constant (amortised) per timer armed.
    fn compact_timers(&mut self) {
        let mut live: Vec<_> = std::mem::take(&mut self.timers)
            .into_vec()
            .into_iter()
            .filter(|Reverse((at, key))| self.timer_live(*at, *key))
            .collect();
        // Entries armed twice for the same instant (a join and leave within one input batch)
        // fire once.
        live.sort_unstable();
        live.dedup();
        self.timers = BinaryHeap::from(live);
        shrink_heap(&mut self.timers);
        self.timers_compact_at = (self.timers.len() * 2).max(MIN_TIMERS_COMPACT);
    }

    /// Whether the timer entry (`at`, `key`) still has something to do.
    fn timer_live(&self, at: Instant, key: TimerKey) -> bool {
        match key {
            TimerKey::Conn(conn) => self.conns.contains_key(&conn),
            TimerKey::Grace(sid) => self
                .sessions
                .get(&sid)
                .is_some_and(|s| s.grace_until == Some(at)),
            TimerKey::ChannelTtl(id) => self
                .channel_by_id(id)
                .is_some_and(|c| c.ttl_until() == Some(at)),
            TimerKey::AutoUpdate(id) => self.channel_by_id(id).is_some_and(|c| c.reports_at(at)),
            TimerKey::Call(id) => self.calls.get(id).is_some_and(|c| c.deadline == Some(at)),
            TimerKey::OfflineExpiry => self.offline_timer == Some(at),
            TimerKey::ClusterAutoUpdate(id) => self.cluster_reports_at(id, at),
        }
    }

    fn channel_by_id(&self, id: u64) -> Option<&crate::channels::Channel> {
        let (app, name) = self.channels.name_of(id)?;
        self.channels.get(&app, &name)
    }

    /// Appends an event to a session's stream; returns its sequence number. `record`: the
    /// store position of the p2p message it carries.
    fn emit<M: prost::Message>(
        &mut self,
        sid: SessionId,
        field: BodyField,
        body: &M,
        record: Option<u64>,
    ) -> Option<u64> {
        let body = EventBody::new(field, body);
        self.emit_encoded(sid, &body, record)
    }

    /// Appends an encoded event to a session's stream (the same body may go to many).
    fn emit_encoded(
        &mut self,
        sid: SessionId,
        body: &EventBody,
        record: Option<u64>,
    ) -> Option<u64> {
        let s = self.sessions.get_mut(&sid)?;
        let seq = s.events.take_seq();
        let frame = body.frame_in(seq, &mut self.head_scratch);
        s.events.retain(seq, frame.clone(), record);
        let conn = s.conn;
        let c = &self.config;
        if s.events
            .holds_more_than(c.max_unacked_events, c.max_unacked_bytes)
        {
            // The session cannot hold more without growing without bound: it ends (its p2p
            // messages wait in the store for the next session), and the client's resume gets a
            // fresh session.
            self.stats.overflows += 1;
            if let Some(conn) = conn {
                let why = "too many unacknowledged events: the session ended";
                self.drop_conn(conn, ErrorCode::LogoutNet, why);
            }
            self.end_session(sid, EndReason::Overflow);
            return Some(seq);
        }
        if let Some(conn) = conn {
            self.outputs.push_back(Output::Send { conn, frame });
        }
        Some(seq)
    }

    /// Sends one encoded event to each of `sessions`.
    fn emit_all(&mut self, sessions: Vec<SessionId>, body: &EventBody) {
        for s in sessions {
            self.emit_encoded(s, body, None);
        }
    }

    fn send(&mut self, conn: ConnId, frame: OutFrame) {
        self.outputs.push_back(Output::Send { conn, frame });
    }

    /// Forgets a connection and tells the driver to close it; returns what the broker knew.
    fn drop_conn(&mut self, conn: ConnId, code: ErrorCode, message: &str) -> Option<Conn> {
        self.outputs.push_back(Output::Close {
            conn,
            reason: CloseReason {
                code,
                message: message.to_owned(),
            },
        });
        let c = self.conns.remove(&conn);
        shrink_map(&mut self.conns);
        c
    }

    /// Tells the client why (a kick frame), then closes its connection.
    fn kick(&mut self, conn: ConnId, code: ErrorCode, message: &str) -> Option<Conn> {
        let kick = pb::Kick {
            code: code.code(),
            message: message.to_owned(),
        };
        self.send(conn, OutFrame::server(server_frame::Kind::Kick(kick)));
        self.drop_conn(conn, code, message)
    }

    /// Closes a connection; its session waits in grace for a resume.
    fn close(&mut self, conn: ConnId, code: ErrorCode, message: String, now: Instant) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if let Some(sid) = self.drop_conn(conn, code, &message).and_then(|c| c.session) {
            self.detach(sid, now);
        }
    }

    fn protocol_violation(&mut self, conn: ConnId, message: String) {
        // The client broke the protocol: its session ends at once, without grace.
        if let Some(sid) = self
            .kick(conn, ErrorCode::LogoutPacket, &message)
            .and_then(|c| c.session)
        {
            self.end_session(sid, EndReason::Lost);
        }
    }

    /// Counts a store failure (the store's driver logs its detail) and turns it into what the
    /// client hears: `GENERAL_E_FAILED` with a generic message.
    fn store_failed(&mut self, e: StoreError) -> CallError {
        self.stats.store_errors += 1;
        e.into()
    }

    fn message_id(&mut self) -> u64 {
        self.next_message += 1;
        self.message_id_of(self.next_message)
    }

    /// The id of the p2p message at `position`. Positions are never reused, across restarts
    /// too, so neither are these ids, even with a configured server secret: a client that
    /// drops copies of messages it has shown never drops a new one. (Channel messages take
    /// their ids from the run's counter, below 2^63; these set the top bit.)
    fn p2p_message_id(&self, position: u64) -> u64 {
        self.message_id_of(position | 1 << 63)
    }

    /// The id of the `n`th message of this run.
    fn message_id_of(&self, n: u64) -> u64 {
        let key = u64::from_be_bytes(
            self.config.server_secret.expose()[..8]
                .try_into()
                .expect("the secret has 32 bytes"),
        );
        // A bijective mix: unique within a run, unpredictable across runs.
        splitmix64(key ^ n)
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        self.epoch_unix_ms + u64::try_from(since.as_millis()).unwrap_or(u64::MAX / 2)
    }
}

/// The server-assigned uid of an account: stable per (app, account), never 0.
pub fn uid_for(app_id: &str, account: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update([0]);
    h.update(account.as_bytes());
    let d = h.finalize();
    let uid = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    if uid == 0 { 1 } else { uid }
}

pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
