//! Sessions (SPEC §4–§5): login and its checks, one session per account, resumption on a new
//! connection, grace after a lost connection, and the consequences of a session ending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use beckon_proto::pb::{self, server_frame};
use beckon_proto::{CallError, ErrorCode, PROTOCOL_VERSION, validate};
use beckon_token::{Privileges, TokenError, legacy};

use super::storage::Then;
use super::{AppState, Broker, EndReason, TimerKey, uid_for};
use crate::admission::Refusal;
use crate::config::AppConfig;
use crate::frame::OutFrame;
use crate::session::{Inbox, Session};
use crate::store::{Store, StoreOp};
use crate::{ConnId, SessionId};

/// Why a login failed: the code, the message, and a retry-after hint in milliseconds.
type LoginFailure = (ErrorCode, String, u32);

impl<S: Store> Broker<S> {
    pub(super) fn handle_login(&mut self, conn: ConnId, login: pb::Login, now: Instant) {
        if let Err(refusal) = self.admit(conn, &login, now) {
            self.stats.logins_refused += 1;
            let ms = u32::try_from(refusal.retry_after.as_millis())
                .unwrap_or(u32::MAX)
                .max(1);
            let whose = if refusal.by_address {
                "this address logs in faster than the server allows"
            } else {
                "the server is taking logins more slowly than they come"
            };
            let message = format!("{whose}; retry in {ms} ms");
            self.send(
                conn,
                OutFrame::server(server_frame::Kind::LoginFailed(pb::LoginFailed {
                    code: ErrorCode::GeneralOverload.code(),
                    message: message.clone(),
                    retry_after_ms: ms,
                })),
            );
            self.close(conn, ErrorCode::GeneralOverload, message, now);
            return;
        }
        match self.check_login(&login, now) {
            Ok((app, privileges)) => {
                self.tally_login(&login.app_id, ErrorCode::Success);
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
                self.tally_login(&login.app_id, code);
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

    /// Admission control (SPEC §10), before anything else about the login is looked at: a
    /// login that resumes a live session with its secret is never refused (it must not wait
    /// past its grace period), every other one takes a token from the server's bucket and its
    /// address's, or is refused with the wait it should take.
    fn admit(&mut self, conn: ConnId, login: &pb::Login, now: Instant) -> Result<(), Refusal> {
        let resumes = login.resume.as_ref().is_some_and(|r| {
            self.sessions
                .get(&SessionId(r.session_id))
                .is_some_and(|s| {
                    s.app.app_id == login.app_id
                        && *s.account == *login.account
                        && constant_time_eq(&s.secret, &r.secret)
                })
        });
        if resumes {
            self.admission.admit_anyway(now);
            return Ok(());
        }
        let peer = self.conns.get(&conn).and_then(|c| c.peer);
        self.admission.admit(peer, now)
    }

    fn check_login(
        &mut self,
        login: &pb::Login,
        now: Instant,
    ) -> Result<(Arc<AppConfig>, Privileges), LoginFailure> {
        let fail = |e: CallError| (e.code, e.message, 0);
        // Checked before the lookup, which in development mode makes an app of any name.
        validate::app_id(&login.app_id).map_err(fail)?;
        let app = self.app(&login.app_id).ok_or_else(|| {
            (
                ErrorCode::LoginFailed,
                format!("unknown App ID {:?}", login.app_id),
                0,
            )
        })?;
        validate::login(&app.limits, &login.app_id, &login.account, &login.token).map_err(fail)?;
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
        let Some(cert) = app.certificate.as_ref().map(|c| c.expose().as_slice()) else {
            // Development mode: no certificate, nothing to verify against.
            let privileges = beckon_token::peek(&login.token)
                .map(|c| c.privileges)
                .unwrap_or(Privileges::NONE);
            return Ok((app, privileges));
        };
        let now_unix = self.unix_ms(now) / 1000;
        if beckon_token::legacy::is_legacy(&login.token) {
            if !app.legacy_tokens {
                return Err((
                    ErrorCode::LoginTokenWrong,
                    "this app does not accept legacy (md5) tokens; use a SignalingToken".into(),
                    0,
                ));
            }
            let checked =
                legacy::verify(cert, &login.token, &login.app_id, &login.account, now_unix);
            return match checked {
                Ok(_) => {
                    self.stats.legacy_logins += 1;
                    Ok((app, Privileges::NONE))
                }
                Err(e @ TokenError::Expired { .. }) => {
                    Err((ErrorCode::LoginTokenExpired, e.to_string(), 0))
                }
                Err(e) => Err((ErrorCode::LoginTokenWrong, e.to_string(), 0)),
            };
        }
        match beckon_token::verify(cert, &login.token, &login.app_id, &login.account, now_unix) {
            Ok(claims) => Ok((app, claims.privileges)),
            Err(e @ TokenError::Expired { .. }) => {
                Err((ErrorCode::LoginTokenExpired, e.to_string(), 0))
            }
            Err(e) => Err((ErrorCode::LoginTokenWrong, e.to_string(), 0)),
        }
    }

    /// The configuration of `app_id`, if the broker serves it. Nothing is kept for an app
    /// until a session of it opens, so a failed login leaves nothing behind.
    fn app(&self, app_id: &str) -> Option<Arc<AppConfig>> {
        match self.apps.get(app_id) {
            Some(a) => Some(a.config.clone()),
            None => self.config.apps.lookup(app_id).map(Arc::new),
        }
    }

    /// A session of `app` opened: the app's state exists from now on.
    fn app_in_use(&mut self, app: &Arc<AppConfig>) -> &mut AppState {
        self.apps
            .entry(app.app_id.clone())
            .or_insert_with(|| AppState {
                config: app.clone(),
                online: Default::default(),
            })
    }

    /// A development app (served by the template, not configured) with no session left is
    /// forgotten, so App IDs made up by clients leave nothing behind.
    fn release_app(&mut self, app_id: &str) {
        let idle = self.apps.get(app_id).is_some_and(|a| a.online.is_empty());
        if idle && !self.config.apps.is_configured(app_id) {
            self.apps.remove(app_id);
        }
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
        if let Some(old) = self.session_of(&app.app_id, account) {
            self.stats.kicks += 1;
            if let Some(old_conn) = self.sessions.get(&old).and_then(|s| s.conn) {
                let why = "the account logged in elsewhere";
                let c = self.kick(old_conn, ErrorCode::LogoutKicked, why);
                debug_assert!(c.is_none_or(|c| c.session == Some(old)));
            }
            self.end_session(old, EndReason::Kicked);
        }

        let sid = SessionId(self.next_session);
        self.next_session += 1;
        let account: Arc<str> = Arc::from(account);
        let secret = self.resume_secret(sid);
        let mut session = Session::new(app.clone(), account.clone(), conn, secret, privileges);
        session.inbox = Inbox::new(self.next_position());
        let heartbeat = self.config.heartbeat_interval;
        self.send(
            conn,
            login_ok(sid, &session, heartbeat, false, resume_refused),
        );
        self.sessions.insert(sid, session);
        self.app_in_use(&app).online.insert(account.clone(), sid);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
        }
        self.stats.logins += 1;
        self.cluster_claim(&app.app_id, &account, sid);
        // Everything below is a sequenced event, so it must follow the login answer.
        self.announce_online(&app.app_id, &account);
        self.calls_on_login(&app.app_id, &account, now);

        // The account's grace period, and its stored messages, oldest first, in portions.
        self.close_window(&app.app_id, &account);
        let read = StoreOp::Attr {
            app: app.app_id.clone(),
            account: account.to_string(),
            name: validate::CONN_TIMEOUT_ATTR.to_owned(),
        };
        self.store_op(read, Then::ConnTimeout { sid });
        self.top_up(sid);
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
        if r.last_event_seq >= s.events.next_seq() {
            return Err("the client claims events the session never sent");
        }
        if let Some(old) = s.conn {
            // The client came back before the broker noticed the old connection was dead.
            let why = "the session resumed on another connection";
            self.drop_conn(old, ErrorCode::LogoutNet, why);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return Err("the session has ended");
        };
        s.conn = Some(conn);
        s.grace_until = None;
        s.privileges = privileges;
        self.forget_acknowledged(sid, r.last_event_seq);
        let Some(s) = self.sessions.get(&sid) else {
            return Err("the session has ended");
        };
        let replay = s.events.replay();
        let ok = login_ok(sid, s, self.config.heartbeat_interval, true, String::new());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
        }
        self.stats.resumes += 1;
        self.stats.replayed_events += replay.len() as u64;
        self.send(conn, ok);
        for frame in replay {
            self.send(conn, frame);
        }
        // The resume may have acknowledged everything the session held: then no later
        // acknowledgement would ask for the stored messages it has not been handed yet.
        self.top_up(sid);
        Ok(())
    }

    /// The session lost its connection: it stays online for its grace period.
    pub(super) fn detach(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.logging_out.is_some() {
            // The client asked to leave; there is nothing to resume.
            return self.end_session(sid, EndReason::Lost);
        }
        let until = now + self.grace_period(s);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.conn = None;
            s.grace_until = Some(until);
        }
        self.arm(until, TimerKey::Grace(sid));
    }

    /// A grace period ran out, unless the session resumed since.
    pub(super) fn grace_due(&mut self, sid: SessionId, now: Instant) {
        let expired = self
            .sessions
            .get(&sid)
            .and_then(|s| s.grace_until)
            .is_some_and(|until| until <= now);
        if expired {
            self.stats.grace_expiries += 1;
            self.end_session(sid, EndReason::Lost);
        }
    }

    /// The session's grace period: its account's `_conn_timeout` (SPEC §5), clamped to the
    /// configured bounds; the default until the attribute has been read.
    pub(super) fn grace_period(&self, s: &Session) -> Duration {
        let configured = s
            .conn_timeout
            .as_deref()
            .and_then(validate::conn_timeout_secs)
            .map(|secs| Duration::from_secs(secs.into()));
        let c = &self.config;
        configured
            .unwrap_or(c.default_grace)
            .clamp(c.min_grace, c.max_grace.max(c.min_grace))
    }

    fn resume_secret(&self, sid: SessionId) -> Vec<u8> {
        let mut mac =
            <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.config.server_secret.expose())
                .expect("HMAC accepts keys of any length");
        mac.update(b"beckon resume secret");
        mac.update(&sid.0.to_be_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// The client acknowledged its logout reply: the session ends.
    pub(super) fn close_after_logout(&mut self, sid: SessionId, conn: ConnId) {
        self.drop_conn(conn, ErrorCode::LogoutUser, "logged out");
        self.end_session(sid, EndReason::Logout);
    }

    /// Ends a session with every consequence of going offline (SPEC §5).
    pub(super) fn end_session(&mut self, sid: SessionId, reason: EndReason) {
        self.leave_all_channels(sid, reason);
        let Some(s) = self.sessions.remove(&sid) else {
            return;
        };
        let mut went_offline = false;
        if let Some(a) = self.apps.get_mut(&s.app.app_id)
            && a.online.get(&*s.account) == Some(&sid)
        {
            a.online.remove(&*s.account);
            went_offline = true;
            self.cluster_release(&s.app.app_id, &s.account, sid);
            self.release_app(&s.app.app_id);
        }
        if reason != EndReason::Shutdown && (went_offline || reason == EndReason::Kicked) {
            self.calls_on_offline(&s.app.app_id, &s.account);
        }
        if let Some(conn) = s.conn
            && let Some(c) = self.conns.get_mut(&conn)
            && c.session == Some(sid)
        {
            // Forget the connection's link to the session; the caller closes it.
            c.session = None;
        }
        // The p2p messages the client never acknowledged are in the store: the account's next
        // session is handed them, in order, before anything newer.
    }
}

/// The answer to a successful login.
fn login_ok(
    sid: SessionId,
    s: &Session,
    heartbeat: Duration,
    resumed: bool,
    resume_refused: String,
) -> OutFrame {
    OutFrame::server(server_frame::Kind::LoginOk(pb::LoginOk {
        uid: uid_for(&s.app.app_id, &s.account),
        session_id: sid.0,
        resume_secret: s.secret.clone().into(),
        heartbeat_interval_ms: u32::try_from(heartbeat.as_millis()).unwrap_or(u32::MAX),
        resumed,
        last_applied_request_id: s.last_applied_request,
        protocol_version: PROTOCOL_VERSION,
        limits: Some(s.app.limits.to_wire()),
        resume_refused,
    }))
}

/// Compares secrets without an early exit, so timing reveals nothing of the expected value.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
