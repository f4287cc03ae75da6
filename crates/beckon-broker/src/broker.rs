//! The broker state machine.

use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use beckon_proto::pb::{self, client_frame, reply, request, server_frame};
use beckon_proto::{CallError, ErrorCode, PROTOCOL_VERSION, codec, validate};
use beckon_token::{Privileges, TokenError};

use crate::config::{AppConfig, BrokerConfig};
use crate::frame::{BodyField, EventBody, OutFrame};
use crate::invoke;
use crate::store::{PushOutcome, Store, StoredMessage};
use crate::{ConnId, SessionId};

mod calls;
mod channels;

pub use channels::{CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL};

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
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    pub connections: usize,
    pub sessions: usize,
    pub logins: u64,
    pub login_failures: u64,
    pub kicks: u64,
    pub messages_delivered: u64,
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
    pub store_errors: u64,
}

#[derive(Debug)]
struct Conn {
    opened_at: Instant,
    last_rx: Instant,
    session: Option<SessionId>,
}

#[derive(Debug)]
struct Retained {
    seq: u64,
    frame: OutFrame,
    /// A p2p message goes back to the offline store if its session ends before the ack.
    message: Option<StoredMessage>,
}

#[derive(Debug)]
struct Session {
    app: Arc<AppConfig>,
    account: Arc<str>,
    /// The connection, or `None` while the session waits in grace for a resume.
    conn: Option<ConnId>,
    secret: Vec<u8>,
    grace_until: Option<Instant>,
    privileges: Privileges,
    next_seq: u64,
    unacked: VecDeque<Retained>,
    unacked_bytes: usize,
    last_applied_request: u64,
    /// The logout reply was sent; the session ends when the client acknowledges it.
    logging_out: Option<u64>,
    /// Channels joined, oldest first.
    channels: Vec<Arc<str>>,
    channel_messages: channels::RateWindow,
    /// (event seq, call) of invitations delivered to this session and not yet acknowledged.
    receipts: Vec<(u64, u64)>,
    /// Stored messages are still waiting in the store for room in this session.
    backlog: bool,
}

#[derive(Debug)]
struct AppState {
    config: Arc<AppConfig>,
    online: HashMap<Arc<str>, SessionId>,
    channels: channels::Channels,
}

/// The sans-IO broker core.
///
/// It owns every session, the presence table and the store, and never performs I/O or reads a
/// clock. Its methods come in four kinds:
/// - inputs: [`connect`](Self::connect), [`handle_frame`](Self::handle_frame),
///   [`disconnect`](Self::disconnect), [`handle_timeout`](Self::handle_timeout);
/// - outputs, to drain after every input: [`poll_output`](Self::poll_output), then
///   [`poll_timeout`](Self::poll_timeout) to arm the one timer;
/// - getters: [`stats`](Self::stats), [`is_online`](Self::is_online), [`store`](Self::store).
#[derive(Debug)]
pub struct Broker<S> {
    config: BrokerConfig,
    store: S,
    epoch: Instant,
    epoch_unix_ms: u64,
    /// Keyed by ids the broker hands out itself, never by client input, so a fast hash that
    /// offers no protection against chosen keys is safe here (and is on every frame's path).
    conns: FxHashMap<ConnId, Conn>,
    sessions: FxHashMap<SessionId, Session>,
    apps: HashMap<String, AppState>,
    next_session: u64,
    next_message: u64,
    next_channel: u64,
    channel_ids: FxHashMap<u64, (Arc<str>, Arc<str>)>,
    calls: calls::Calls,
    /// Where event heads are written (see `EventBody::frame_in`).
    head_scratch: bytes::BytesMut,
    /// The time of the input being handled.
    now: Instant,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    outputs: VecDeque<Output>,
    stats: BrokerStats,
}

impl<S: Store> Broker<S> {
    /// A broker whose clock reads `epoch_unix_ms` (Unix milliseconds) at `epoch`.
    pub fn new(config: BrokerConfig, store: S, epoch: Instant, epoch_unix_ms: u64) -> Self {
        Self {
            config,
            store,
            epoch,
            epoch_unix_ms,
            conns: FxHashMap::default(),
            sessions: FxHashMap::default(),
            apps: HashMap::new(),
            next_session: 1,
            next_message: 0,
            next_channel: 1,
            channel_ids: FxHashMap::default(),
            calls: calls::Calls::default(),
            head_scratch: bytes::BytesMut::new(),
            now: epoch,
            timers: BinaryHeap::new(),
            outputs: VecDeque::new(),
            stats: BrokerStats::default(),
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

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Whether `account` of `app_id` has a session.
    pub fn is_online(&self, app_id: &str, account: &str) -> bool {
        self.apps
            .get(app_id)
            .is_some_and(|a| a.online.contains_key(account))
    }

    /// The privileges the session of `account` logged in with, if it is online.
    pub fn privileges(&self, app_id: &str, account: &str) -> Option<Privileges> {
        let sid = self.apps.get(app_id)?.online.get(account)?;
        self.sessions.get(sid).map(|s| s.privileges)
    }

    /// Accounts online in `app_id`, in no particular order.
    pub fn online_accounts(&self, app_id: &str) -> Vec<String> {
        self.apps
            .get(app_id)
            .map(|a| a.online.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    // ---- inputs -------------------------------------------------------------------------------

    /// A new connection was accepted. It must log in within the login timeout.
    pub fn connect(&mut self, conn: ConnId, now: Instant) {
        self.now = now;
        self.conns.insert(
            conn,
            Conn {
                opened_at: now,
                last_rx: now,
                session: None,
            },
        );
        self.timers.push(Reverse((
            now + self.config.login_timeout,
            TimerKey::Conn(conn),
        )));
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
    }

    /// Shuts down: every client is told to reconnect (spread over `spread`), unacknowledged
    /// p2p messages go to the store, and every connection is closed. The broker is empty after.
    pub fn shutdown(&mut self, spread: std::time::Duration) {
        let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            let logged_in = self.conns.get(&conn).is_some_and(|c| c.session.is_some());
            if logged_in {
                let delay = splitmix64(conn.0) % spread_ms;
                self.send(
                    conn,
                    OutFrame::server(server_frame::Kind::GoAway(pb::GoAway {
                        message: "the server is restarting".into(),
                        reconnect_after_ms: u32::try_from(delay).unwrap_or(u32::MAX),
                    })),
                );
            }
            self.conns.remove(&conn);
            self.outputs.push_back(Output::Close {
                conn,
                reason: CloseReason {
                    code: ErrorCode::LogoutNet,
                    message: "the server is shutting down".into(),
                },
            });
        }
        let sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        for sid in sessions {
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
            (client_frame::Kind::Request(req), Some(sid)) => self.handle_request(sid, req, now),
            (client_frame::Kind::Ack(ack), Some(sid)) => self.handle_ack(sid, ack.up_to),
            (client_frame::Kind::Request(_) | client_frame::Kind::Ack(_), None) => {
                self.protocol_violation(conn, "request before login".into())
            }
        }
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let silence = self.config.heartbeat_interval * 3;
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let conn = match key {
                TimerKey::Conn(conn) => conn,
                TimerKey::Grace(sid) => {
                    let expired = self
                        .sessions
                        .get(&sid)
                        .and_then(|s| s.grace_until)
                        .is_some_and(|until| until <= now);
                    if expired {
                        self.stats.grace_expiries += 1;
                        self.end_session(sid, EndReason::Lost);
                    }
                    continue;
                }
                TimerKey::ChannelTtl(id) => {
                    self.channel_ttl_due(id, now);
                    continue;
                }
                TimerKey::AutoUpdate(id) => {
                    self.auto_update_due(id, now);
                    continue;
                }
                TimerKey::Call(id) => {
                    self.call_timer_due(id, now);
                    continue;
                }
            };
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let due = match c.session {
                None => c.opened_at + self.config.login_timeout,
                Some(_) => c.last_rx + silence,
            };
            if due <= now {
                let message = match c.session {
                    None => "no login within the login timeout",
                    Some(_) => "no heartbeat within three intervals",
                };
                self.close(conn, ErrorCode::LogoutNet, message.into(), now);
            } else {
                self.timers.push(Reverse((due, TimerKey::Conn(conn))));
            }
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

    // ---- login --------------------------------------------------------------------------------

    fn handle_login(&mut self, conn: ConnId, login: pb::Login, now: Instant) {
        match self.check_login(&login, now) {
            Ok((app, privileges)) => {
                let refused = match &login.resume {
                    None => String::new(),
                    Some(r) => match self.try_resume(conn, &app, &login.account, r, privileges) {
                        Ok(()) => return,
                        Err(why) => why.to_owned(),
                    },
                };
                self.open_session(conn, app, &login.account, privileges, refused, now)
            }
            Err((code, message, retry_after_ms)) => {
                self.stats.login_failures += 1;
                self.send(
                    conn,
                    OutFrame::server(server_frame::Kind::LoginFailed(pb::LoginFailed {
                        code: code.code(),
                        message: message.clone(),
                        retry_after_ms,
                    })),
                );
                self.close(conn, code, message, now);
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn check_login(
        &mut self,
        login: &pb::Login,
        now: Instant,
    ) -> Result<(Arc<AppConfig>, Privileges), (ErrorCode, String, u32)> {
        let fail = |e: CallError| (e.code, e.message, 0);
        let defaults = beckon_proto::Limits::default();
        defaults.account("App ID", &login.app_id).map_err(fail)?;
        let app = self.app(&login.app_id).ok_or_else(|| {
            (
                ErrorCode::LoginFailed,
                format!("unknown App ID {:?}", login.app_id),
                0,
            )
        })?;
        app.limits
            .account("account", &login.account)
            .map_err(fail)?;
        if login.token == beckon_proto::NO_TOKEN {
            if !app.allow_no_token {
                return Err((
                    ErrorCode::LoginTokenWrong,
                    "this app requires a SignalingToken; _no_need_token is not allowed".into(),
                    0,
                ));
            }
            return Ok((app, Privileges::NONE));
        }
        let Some(cert) = app.certificate.as_deref() else {
            // Development mode: no certificate, nothing to verify against.
            let privileges = beckon_token::peek(&login.token)
                .map(|c| c.privileges)
                .unwrap_or(Privileges::NONE);
            return Ok((app, privileges));
        };
        let now_unix = self.unix_ms(now) / 1000;
        match beckon_token::verify(cert, &login.token, &login.app_id, &login.account, now_unix) {
            Ok(claims) => Ok((app, claims.privileges)),
            Err(e @ TokenError::Expired { .. }) => {
                Err((ErrorCode::LoginTokenExpired, e.to_string(), 0))
            }
            Err(e) => Err((ErrorCode::LoginTokenWrong, e.to_string(), 0)),
        }
    }

    fn app(&mut self, app_id: &str) -> Option<Arc<AppConfig>> {
        if let Some(a) = self.apps.get(app_id) {
            return Some(a.config.clone());
        }
        let config = Arc::new(self.config.apps.lookup(app_id)?);
        self.apps.insert(
            app_id.to_owned(),
            AppState {
                config: config.clone(),
                online: HashMap::new(),
                channels: channels::Channels::default(),
            },
        );
        Some(config)
    }

    fn open_session(
        &mut self,
        conn: ConnId,
        app: Arc<AppConfig>,
        account: &str,
        privileges: Privileges,
        resume_refused: String,
        now: Instant,
    ) {
        // One session per account: a second login kicks the first.
        let previous = self
            .apps
            .get(&app.app_id)
            .and_then(|a| a.online.get(account).copied());
        if let Some(old) = previous {
            self.stats.kicks += 1;
            if let Some(old_conn) = self.sessions.get(&old).and_then(|s| s.conn) {
                self.send(
                    old_conn,
                    OutFrame::server(server_frame::Kind::Kick(pb::Kick {
                        code: ErrorCode::LogoutKicked.code(),
                        message: "the account logged in elsewhere".into(),
                    })),
                );
                if let Some(c) = self.conns.remove(&old_conn) {
                    debug_assert_eq!(c.session, Some(old));
                }
                self.outputs.push_back(Output::Close {
                    conn: old_conn,
                    reason: CloseReason {
                        code: ErrorCode::LogoutKicked,
                        message: "the account logged in elsewhere".into(),
                    },
                });
            }
            self.end_session(old, EndReason::Kicked);
        }

        let sid = SessionId(self.next_session);
        self.next_session += 1;
        let account: Arc<str> = Arc::from(account);
        let uid = uid_for(&app.app_id, &account);
        let secret = self.resume_secret(sid);
        self.sessions.insert(
            sid,
            Session {
                app: app.clone(),
                account: account.clone(),
                conn: Some(conn),
                secret: secret.clone(),
                grace_until: None,
                privileges,
                next_seq: 1,
                unacked: VecDeque::new(),
                unacked_bytes: 0,
                last_applied_request: 0,
                logging_out: None,
                channels: Vec::new(),
                channel_messages: channels::RateWindow::default(),
                receipts: Vec::new(),
                backlog: false,
            },
        );
        if let Some(a) = self.apps.get_mut(&app.app_id) {
            a.online.insert(account.clone(), sid);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
        }
        self.stats.logins += 1;
        self.send(
            conn,
            OutFrame::server(server_frame::Kind::LoginOk(pb::LoginOk {
                uid,
                session_id: sid.0,
                resume_secret: secret.into(),
                heartbeat_interval_ms: u32::try_from(self.config.heartbeat_interval.as_millis())
                    .unwrap_or(u32::MAX),
                resumed: false,
                last_applied_request_id: 0,
                protocol_version: PROTOCOL_VERSION,
                limits: Some(app.limits.to_wire()),
                resume_refused,
            })),
        );
        // Everything below is a sequenced event, so it must follow the login answer.
        self.announce_online(&app.app_id, &account);
        self.calls_on_login(&app.app_id, &account, now);

        // Messages stored while the account was offline, oldest first.
        self.deliver_stored(sid, now);
    }

    /// Delivers the account's stored messages into its session, but only up to half the
    /// session's retention bound: the rest stay stored (the session has a backlog) and follow
    /// as the client acknowledges, so a large backlog never overflows the session.
    fn deliver_stored(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let (app, account) = (s.app.clone(), s.account.clone());
        let stored = match self.store.take_offline(&app.app_id, &account) {
            Ok(stored) => stored,
            // The messages stay in the store for the next login.
            Err(_) => {
                self.stats.store_errors += 1;
                return;
            }
        };
        let ttl_ms = u64::try_from(app.offline.ttl.as_millis()).unwrap_or(u64::MAX);
        let now_ms = self.unix_ms(now);
        let (max_events, max_bytes) = (
            self.config.max_unacked_events / 2,
            self.config.max_unacked_bytes / 2,
        );
        let mut stored = stored.into_iter();
        let mut backlog = false;
        for m in stored.by_ref() {
            if m.sent_at_ms.saturating_add(ttl_ms) < now_ms {
                self.stats.offline_expired += 1;
                continue;
            }
            let full = self
                .sessions
                .get(&sid)
                .is_none_or(|s| s.unacked.len() >= max_events || s.unacked_bytes >= max_bytes);
            if full {
                backlog = true;
                self.requeue(&app.app_id, &account, m);
                break;
            }
            self.deliver_instant(sid, m, true);
        }
        for m in stored {
            self.requeue(&app.app_id, &account, m);
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.backlog = backlog;
        }
    }

    /// Puts a message back in the store (in order, ignoring the per-account cap: it was
    /// accepted already).
    fn requeue(&mut self, app: &str, account: &str, m: StoredMessage) {
        if self.store.push_offline(app, account, m, None).is_err() {
            self.stats.store_errors += 1;
        }
    }

    /// Resumes the session named in the login on `conn`, replaying what the client has not
    /// acknowledged. Errors say why the login gets a fresh session instead.
    fn try_resume(
        &mut self,
        conn: ConnId,
        app: &AppConfig,
        account: &str,
        r: &pb::Resume,
        privileges: Privileges,
    ) -> Result<(), &'static str> {
        let sid = SessionId(r.session_id);
        let s = self.sessions.get(&sid).ok_or("the session has ended")?;
        if s.app.app_id != app.app_id
            || &*s.account != account
            || !constant_time_eq(&s.secret, &r.secret)
        {
            return Err("the session belongs to someone else");
        }
        if r.last_event_seq >= s.next_seq {
            return Err("the client claims events the session never sent");
        }
        let old_conn = s.conn;
        if let Some(old) = old_conn {
            // The client came back before the broker noticed the old connection was dead.
            self.conns.remove(&old);
            self.outputs.push_back(Output::Close {
                conn: old,
                reason: CloseReason {
                    code: ErrorCode::LogoutNet,
                    message: "the session resumed on another connection".into(),
                },
            });
        }
        let heartbeat_interval_ms =
            u32::try_from(self.config.heartbeat_interval.as_millis()).unwrap_or(u32::MAX);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Err("the session has ended");
        };
        s.conn = Some(conn);
        s.grace_until = None;
        s.privileges = privileges;
        while s.unacked.front().is_some_and(|e| e.seq <= r.last_event_seq) {
            if let Some(e) = s.unacked.pop_front() {
                s.unacked_bytes -= e.frame.len();
            }
        }
        let ok = pb::LoginOk {
            uid: uid_for(&app.app_id, account),
            session_id: sid.0,
            resume_secret: s.secret.clone().into(),
            heartbeat_interval_ms,
            resumed: true,
            last_applied_request_id: s.last_applied_request,
            protocol_version: PROTOCOL_VERSION,
            limits: Some(app.limits.to_wire()),
            resume_refused: String::new(),
        };
        let replay: Vec<OutFrame> = s.unacked.iter().map(|e| e.frame.clone()).collect();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
        }
        self.stats.resumes += 1;
        self.send(conn, OutFrame::server(server_frame::Kind::LoginOk(ok)));
        for frame in replay {
            self.send(conn, frame);
        }
        Ok(())
    }

    /// The session lost its connection: it stays online for its grace period.
    fn detach(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.logging_out.is_some() {
            // The client asked to leave; there is nothing to resume.
            return self.end_session(sid, EndReason::Lost);
        }
        let grace = self.grace_period(&s.app.app_id, &s.account.clone());
        let until = now + grace;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.conn = None;
            s.grace_until = Some(until);
        }
        self.timers.push(Reverse((until, TimerKey::Grace(sid))));
    }

    /// The account's `_conn_timeout` (SPEC §5), clamped to the configured bounds.
    fn grace_period(&self, app_id: &str, account: &str) -> std::time::Duration {
        let c = &self.config;
        let configured = self
            .store
            .user_attr(app_id, account, validate::CONN_TIMEOUT_ATTR)
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        configured
            .unwrap_or(c.default_grace)
            .clamp(c.min_grace, c.max_grace.max(c.min_grace))
    }

    fn resume_secret(&self, sid: SessionId) -> Vec<u8> {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.config.server_secret)
            .expect("HMAC accepts keys of any length");
        mac.update(b"beckon resume secret");
        mac.update(&sid.0.to_be_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    // ---- requests -----------------------------------------------------------------------------

    fn handle_request(&mut self, sid: SessionId, req: pb::Request, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if req.id <= s.last_applied_request {
            return; // A resend of a request already applied; its reply is in the event stream.
        }
        s.last_applied_request = req.id;
        if s.logging_out.is_some() {
            let r = error_reply(
                req.id,
                CallError::new(ErrorCode::GeneralNotLogin, "the session is logging out"),
            );
            self.emit(sid, BodyField::Reply, &r, None);
            return;
        }
        let app = s.app.clone();
        let account = s.account.clone();
        let Some(op) = req.op else {
            let r = error_reply(
                req.id,
                CallError::new(ErrorCode::GeneralWrongParam, "unknown request kind"),
            );
            self.emit(sid, BodyField::Reply, &r, None);
            return;
        };
        let result = match op {
            request::Op::Logout(_) => {
                let r = ok_reply(req.id, None);
                let seq = self.emit(sid, BodyField::Reply, &r, None);
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.logging_out = seq;
                }
                return;
            }
            request::Op::SendInstantMessage(m) => self.send_instant(&app, &account, m, now),
            request::Op::QueryUserStatus(q) => {
                app.limits.account("account", &q.account).map(|()| {
                    Some(reply::Result::UserStatus(pb::UserStatus {
                        online: self.is_online(&app.app_id, &q.account),
                    }))
                })
            }
            request::Op::SetUserAttr(a) => self
                .set_user_attr(&app, &account, &a.name, &a.value)
                .map(|()| None),
            request::Op::GetUserAttr(g) => self
                .get_user_attr(&app, &g.account, &g.name)
                .map(|value| Some(reply::Result::AttrValue(pb::AttrValue { value }))),
            request::Op::GetUserAttrAll(g) => self
                .get_user_attr_all(&app, &g.account)
                .map(|json| Some(reply::Result::AttrAll(pb::AttrAll { json }))),
            request::Op::ChannelJoin(j) => self.channel_join(sid, &app, &account, &j.channel, now),
            request::Op::ChannelLeave(l) => {
                self.channel_leave(sid, &app, &account, &l.channel, now)
            }
            request::Op::ChannelQueryUserNum(q) => self
                .channel_query_user_num(&app, &q.channel)
                .map(|num| Some(reply::Result::ChannelUserNum(pb::ChannelUserNum { num }))),
            request::Op::ChannelQueryUserIsIn(q) => self
                .channel_query_user_is_in(&app, &q.channel, &q.account)
                .map(|is_in| Some(reply::Result::ChannelIsIn(pb::ChannelIsIn { is_in }))),
            request::Op::ChannelSetAttr(a) => {
                self.channel_set_attr(sid, &app, &account, &a.channel, &a.name, &a.value, now)
            }
            request::Op::ChannelDelAttr(a) => {
                self.channel_del_attr(sid, &app, &account, &a.channel, &a.name, now)
            }
            request::Op::ChannelClearAttr(a) => {
                self.channel_clear_attr(sid, &app, &account, &a.channel, now)
            }
            request::Op::SendChannelMessage(m) => self.channel_send(sid, &app, &account, m, now),
            request::Op::Invite(m) => self.call_invite(&app, &account, m, now),
            request::Op::InviteAccept(m) => self.call_answer(&app, &account, m, true),
            request::Op::InviteRefuse(m) => self.call_answer(&app, &account, m, false),
            request::Op::InviteEnd(m) => self.call_end(&app, &account, m),
            request::Op::InviteDtmf(m) => self.call_dtmf(&app, &account, m),
            request::Op::Invoke(i) => {
                let (err, resp) = invoke::run(self, sid, &app, &account, &i.name, &i.req, now);
                Ok(Some(reply::Result::InvokeResult(pb::InvokeResult {
                    err: err.map(|c| c.code().to_string()).unwrap_or_default(),
                    resp,
                })))
            }
        };
        let r = match result {
            Ok(res) => ok_reply(req.id, res),
            Err(e) => error_reply(req.id, e),
        };
        self.emit(sid, BodyField::Reply, &r, None);
    }

    fn handle_ack(&mut self, sid: SessionId, up_to: u64) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        while s.unacked.front().is_some_and(|r| r.seq <= up_to) {
            if let Some(r) = s.unacked.pop_front() {
                s.unacked_bytes -= r.frame.len();
            }
        }
        self.call_receipts(sid, up_to);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        // Top up from the store once most of what was handed over is acknowledged, so each
        // top-up moves a large batch (the store is read whole and the rest put back).
        if s.backlog
            && s.unacked.len() <= self.config.max_unacked_events / 8
            && s.unacked_bytes <= self.config.max_unacked_bytes / 8
        {
            let now = self.now;
            self.deliver_stored(sid, now);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if let Some(logout_seq) = s.logging_out
            && up_to >= logout_seq
            && let Some(conn) = s.conn
        {
            self.close_after_logout(sid, conn);
        }
    }

    fn close_after_logout(&mut self, sid: SessionId, conn: ConnId) {
        self.conns.remove(&conn);
        self.outputs.push_back(Output::Close {
            conn,
            reason: CloseReason {
                code: ErrorCode::LogoutUser,
                message: "logged out".into(),
            },
        });
        self.end_session(sid, EndReason::Logout);
    }

    pub(crate) fn send_instant(
        &mut self,
        app: &AppConfig,
        sender: &str,
        m: pb::SendInstantMessage,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.account("recipient account", &m.account)?;
        app.limits.message("message", &m.msg)?;
        app.limits.id("message id", &m.msg_id)?;
        let stored = StoredMessage {
            sender: sender.to_owned(),
            msg: m.msg,
            server_msg_id: self.message_id(),
            sent_at_ms: self.unix_ms(now),
        };
        let target = self
            .apps
            .get(&app.app_id)
            .and_then(|a| a.online.get(m.account.as_str()).copied());
        // A session still working through a stored backlog gets new messages behind it.
        let target = target.filter(|t| self.sessions.get(t).is_some_and(|s| !s.backlog));
        if let Some(target) = target {
            self.deliver_instant(target, stored, false);
            self.stats.messages_delivered += 1;
            return Ok(None);
        }
        if !app.offline.enabled {
            return Err(CallError::new(
                ErrorCode::SendMessagePeerOffline,
                format!(
                    "{} is offline and this app keeps no offline messages",
                    m.account
                ),
            ));
        }
        match self.store.push_offline(
            &app.app_id,
            &m.account,
            stored,
            Some(app.offline.max_per_account),
        ) {
            Ok(PushOutcome::Stored) => {
                self.stats.messages_stored += 1;
                Ok(None)
            }
            Ok(PushOutcome::Full) => Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!(
                    "{} is offline and already has {} stored messages",
                    m.account, app.offline.max_per_account
                ),
            )),
            Err(e) => Err(CallError::new(ErrorCode::GeneralFailed, e.to_string())),
        }
    }

    fn deliver_instant(&mut self, target: SessionId, m: StoredMessage, offline: bool) {
        let body = pb::InstantMessage {
            sender: m.sender.clone(),
            msg: m.msg.clone(),
            server_msg_id: m.server_msg_id,
            sent_at_ms: m.sent_at_ms,
            offline,
        };
        self.emit(target, BodyField::InstantMessage, &body, Some(m));
    }

    pub(crate) fn set_user_attr(
        &mut self,
        app: &AppConfig,
        account: &str,
        name: &str,
        value: &str,
    ) -> Result<(), CallError> {
        validate::user_attr_write(&app.limits, name, value)?;
        let failed =
            |e: crate::store::StoreError| CallError::new(ErrorCode::GeneralFailed, e.to_string());
        if value.is_empty() {
            return self
                .store
                .set_user_attr(&app.app_id, account, name, None)
                .map_err(failed);
        }
        let exists = self
            .store
            .user_attr(&app.app_id, account, name)
            .map_err(failed)?
            .is_some();
        if !exists
            && self
                .store
                .user_attr_count(&app.app_id, account)
                .map_err(failed)?
                >= app.max_user_attrs
        {
            return Err(CallError::new(
                ErrorCode::GeneralFailed,
                format!(
                    "an account may hold at most {} attributes",
                    app.max_user_attrs
                ),
            ));
        }
        self.store
            .set_user_attr(&app.app_id, account, name, Some(value))
            .map_err(failed)
    }

    pub(crate) fn get_user_attr(
        &self,
        app: &AppConfig,
        account: &str,
        name: &str,
    ) -> Result<String, CallError> {
        app.limits.account("account", account)?;
        app.limits.attr_name("attribute name", name)?;
        self.store
            .user_attr(&app.app_id, account, name)
            .map(Option::unwrap_or_default)
            .map_err(|e| CallError::new(ErrorCode::GeneralFailed, e.to_string()))
    }

    pub(crate) fn get_user_attr_all(
        &self,
        app: &AppConfig,
        account: &str,
    ) -> Result<String, CallError> {
        app.limits.account("account", account)?;
        let attrs = self
            .store
            .user_attrs(&app.app_id, account)
            .map_err(|e| CallError::new(ErrorCode::GeneralFailed, e.to_string()))?;
        let map: serde_json::Map<String, serde_json::Value> = attrs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        Ok(serde_json::Value::Object(map).to_string())
    }

    // ---- plumbing -----------------------------------------------------------------------------

    /// Appends an event to a session's stream; returns its sequence number.
    fn emit<M: prost::Message>(
        &mut self,
        sid: SessionId,
        field: BodyField,
        body: &M,
        message: Option<StoredMessage>,
    ) -> Option<u64> {
        let body = EventBody::new(field, body);
        self.emit_encoded(sid, &body, message)
    }

    fn emit_encoded(
        &mut self,
        sid: SessionId,
        body: &EventBody,
        message: Option<StoredMessage>,
    ) -> Option<u64> {
        let s = self.sessions.get_mut(&sid)?;
        let seq = s.next_seq;
        s.next_seq += 1;
        let frame = body.frame_in(seq, &mut self.head_scratch);
        s.unacked_bytes += frame.len();
        s.unacked.push_back(Retained {
            seq,
            frame: frame.clone(),
            message,
        });
        let conn = s.conn;
        let over = s.unacked.len() > self.config.max_unacked_events
            || s.unacked_bytes > self.config.max_unacked_bytes;
        if over {
            // The session cannot hold more without growing without bound: it ends, its p2p
            // messages go to the offline store, and the client's resume gets a fresh session.
            self.stats.overflows += 1;
            if let Some(conn) = conn {
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Close {
                    conn,
                    reason: CloseReason {
                        code: ErrorCode::LogoutNet,
                        message: "too many unacknowledged events: the session ended".into(),
                    },
                });
            }
            self.end_session(sid, EndReason::Overflow);
            return Some(seq);
        }
        if let Some(conn) = conn {
            self.outputs.push_back(Output::Send { conn, frame });
        }
        Some(seq)
    }

    fn send(&mut self, conn: ConnId, frame: OutFrame) {
        self.outputs.push_back(Output::Send { conn, frame });
    }

    /// Closes a connection; its session waits in grace for a resume.
    fn close(&mut self, conn: ConnId, code: ErrorCode, message: String, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.outputs.push_back(Output::Close {
            conn,
            reason: CloseReason { code, message },
        });
        if let Some(sid) = c.session {
            self.detach(sid, now);
        }
    }

    fn protocol_violation(&mut self, conn: ConnId, message: String) {
        self.send(
            conn,
            OutFrame::server(server_frame::Kind::Kick(pb::Kick {
                code: ErrorCode::LogoutPacket.code(),
                message: message.clone(),
            })),
        );
        // The client broke the protocol: its session ends at once, without grace.
        if let Some(c) = self.conns.remove(&conn) {
            self.outputs.push_back(Output::Close {
                conn,
                reason: CloseReason {
                    code: ErrorCode::LogoutPacket,
                    message,
                },
            });
            if let Some(sid) = c.session {
                self.end_session(sid, EndReason::Lost);
            }
        }
    }

    fn end_session(&mut self, sid: SessionId, reason: EndReason) {
        let now = self.now;
        self.leave_all_channels(sid, reason, now);
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        let mut went_offline = false;
        if let Some(a) = self.apps.get_mut(&s.app.app_id)
            && a.online.get(&*s.account) == Some(&sid)
        {
            a.online.remove(&*s.account);
            went_offline = true;
        }
        if reason != EndReason::Shutdown && (went_offline || reason == EndReason::Kicked) {
            self.calls_on_offline(&s.app.app_id, &s.account);
        }
        if reason == EndReason::Logout {
            return; // Everything was acknowledged.
        }
        if let Some(conn) = s.conn
            && self
                .conns
                .get(&conn)
                .is_some_and(|c| c.session == Some(sid))
        {
            // Forget the connection's link to the session; the caller closes it.
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session = None;
            }
        }
        // P2P messages the client never acknowledged wait for its next login.
        for r in s.unacked {
            if let Some(m) = r.message
                && self
                    .store
                    .push_offline(&s.app.app_id, &s.account, m, None)
                    .is_err()
            {
                self.stats.store_errors += 1;
            }
        }
    }

    fn message_id(&mut self) -> u64 {
        self.next_message += 1;
        let key = u64::from_be_bytes(
            self.config.server_secret[..8]
                .try_into()
                .expect("the secret has 32 bytes"),
        );
        // A bijective mix: unique within a run, unpredictable across runs.
        splitmix64(key ^ self.next_message)
    }

    pub(crate) fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch);
        self.epoch_unix_ms + u64::try_from(since.as_millis()).unwrap_or(u64::MAX / 2)
    }
}

fn ok_reply(request_id: u64, result: Option<reply::Result>) -> pb::Reply {
    pb::Reply {
        request_id,
        code: 0,
        message: String::new(),
        result,
    }
}

fn error_reply(request_id: u64, e: CallError) -> pb::Reply {
    pb::Reply {
        request_id,
        code: e.code.code(),
        message: e.message,
        result: None,
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

/// Compares secrets without an early exit, so timing reveals nothing of the expected value.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
