//! The session's life: logging in, resuming or starting afresh after a reconnect, giving up,
//! and ending — with what each of those means for the requests still pending.

use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_proto::pb::{self, client_frame};
use beckon_proto::{CallError, ErrorCode, Limits};

use super::api::Pending;
use super::requests::Failure;
use super::{Client, Status};
use crate::config::ClientConfig;
use crate::event::Event;

/// What a login was given, kept to log in again after a lost connection.
#[derive(Clone, Debug)]
pub(super) struct Credentials {
    /// The login frame, without a session to resume.
    pub(super) login: pb::Login,
    /// How long, and how many attempts, a login or reconnect may take.
    pub(super) retry_time: Duration,
    pub(super) retry_count: u32,
}

/// The server's session, to resume after a lost connection.
#[derive(Clone, Debug)]
pub(super) struct SessionInfo {
    pub(super) id: u64,
    pub(super) secret: Bytes,
    pub(super) heartbeat: Duration,
}

/// The session's numbered events: the last one applied, the last one acknowledged, and when
/// the acknowledgement is due.
#[derive(Debug, Default)]
pub(super) struct Acks {
    pub(super) last_seq: u64,
    acked: u64,
    pub(super) deadline: Option<Instant>,
}

impl Acks {
    /// Event `seq` arrived: false if it was applied before (replayed after a resume).
    pub(super) fn accept(&mut self, seq: u64) -> bool {
        if seq <= self.last_seq {
            return false;
        }
        self.last_seq = seq;
        true
    }

    /// Clears the deadline; returns what to acknowledge now, if anything (`can_send`: the link
    /// is ready).
    pub(super) fn take(&mut self, can_send: bool) -> Option<u64> {
        self.deadline = None;
        if self.last_seq > self.acked && can_send {
            self.acked = self.last_seq;
            return Some(self.acked);
        }
        None
    }

    /// After an event: true to acknowledge at once, else the deadline is armed.
    pub(super) fn after_event(&mut self, now: Instant, config: &ClientConfig) -> bool {
        if self.last_seq - self.acked >= config.ack_every {
            return true;
        }
        self.deadline.get_or_insert(now + config.ack_delay);
        false
    }
}

impl Client {
    /// `login2` passed its checks: the first attempt starts.
    pub(super) fn start_login(&mut self, creds: Credentials, now: Instant) {
        self.creds = Some(creds);
        self.session = None;
        self.status = Status::LoggingIn;
        self.link.first_attempt(now, self.config.connect_timeout);
    }

    /// The connection is up: log in, resuming the session if there is one.
    pub(super) fn send_login(&mut self, now: Instant) {
        let Some(creds) = &self.creds else {
            return;
        };
        let resume = self.session.as_ref().map(|s| pb::Resume {
            session_id: s.id,
            secret: s.secret.clone(),
            last_event_seq: self.acks.last_seq,
        });
        let login = pb::Login {
            resume,
            ..creds.login.clone()
        };
        self.transmit(client_frame::Kind::Login(login), now);
    }

    /// The connection is gone (already marked idle): retry or give up per the login policy.
    pub(super) fn link_lost(&mut self, now: Instant) {
        match self.status {
            Status::NotLoggedIn => {}
            Status::LoggedIn if self.logging_out => self.finish(Event::Logout {
                ecode: ErrorCode::LogoutUser.code(),
            }),
            Status::LoggedIn => {
                self.status = Status::Reconnecting;
                self.events.push_back(Event::Reconnecting { nretry: 1 });
                self.link
                    .first_reconnect(now, self.config.first_attempt_jitter);
            }
            Status::LoggingIn | Status::Reconnecting => {
                let Some(creds) = &self.creds else {
                    return;
                };
                let next =
                    self.link
                        .next_attempt(now, creds.retry_count, creds.retry_time, &self.config);
                match next {
                    Some(nretry) if self.status == Status::Reconnecting => {
                        self.events.push_back(Event::Reconnecting { nretry });
                    }
                    Some(_) => {}
                    None if self.status == Status::LoggingIn => self.finish(Event::LoginFailed {
                        ecode: ErrorCode::LoginNet.code(),
                    }),
                    None => self.finish(Event::Logout {
                        ecode: ErrorCode::LogoutNet.code(),
                    }),
                }
            }
        }
    }

    pub(super) fn login_accepted(&mut self, ok: pb::LoginOk, now: Instant) {
        self.link.ready();
        if let Some(l) = &ok.limits {
            self.limits = Limits::from_wire(l);
        }
        let heartbeat = Duration::from_millis(ok.heartbeat_interval_ms.max(100).into());
        let was = self.status;
        self.uid = ok.uid;
        self.session = Some(SessionInfo {
            id: ok.session_id,
            secret: ok.resume_secret,
            heartbeat,
        });
        self.status = Status::LoggedIn;
        if !ok.resume_refused.is_empty() {
            let why = format!("the session could not be resumed: {}", ok.resume_refused);
            self.log(&why);
        }
        let frames = if ok.resumed {
            // Requests the server applied have their replies in the replayed events; the rest
            // are sent again, in order.
            self.requests.resend_unapplied(ok.last_applied_request_id)
        } else {
            self.fresh_session(was == Status::Reconnecting)
        };
        for r in frames {
            self.transmit(client_frame::Kind::Request(r), now);
        }
        let ev = if was == Status::Reconnecting {
            Event::Reconnected { fd: 0 }
        } else {
            Event::LoginSuccess { uid: ok.uid, fd: 0 }
        };
        // The login callback comes before any event of the new session.
        self.events.push_back(ev);
    }

    /// A fresh session: events and request ids start over. Requests that reached the old
    /// session may or may not have been applied, so they fail rather than repeat; those that
    /// never went out are kept. Returns every request to send.
    fn fresh_session(&mut self, rejoin: bool) -> Vec<pb::Request> {
        self.acks = Acks::default();
        let old = self.requests.restart();
        // Calls lived in the old session; the broker ended them for the other sides.
        self.calls.drop_all(ErrorCode::InviteNet, &mut self.events);
        if rejoin {
            // The old session is gone, and with it its channels: join them again.
            for channel in self.joined.clone() {
                self.requests.push(Pending::ChannelJoin { channel }, false);
            }
        }
        for p in old {
            if let Some(p) = self.requests.requeue(p) {
                let lost = "the connection was lost before the server answered";
                p.failed(Failure::Unanswered(lost), self);
            }
        }
        self.requests.send_all()
    }

    pub(super) fn login_refused(&mut self, f: pb::LoginFailed, now: Instant) {
        self.close_link();
        let code = ErrorCode::from_code(f.code).unwrap_or(ErrorCode::LoginFailed);
        if f.retry_after_ms > 0 && matches!(code, ErrorCode::GeneralOverload) {
            // Admission control: the server is up and asked for a wait, so this attempt is
            // neither failed nor counted; it runs again when the server said.
            let wait = Duration::from_millis(f.retry_after_ms.into());
            self.log(&format!(
                "the server is busy ({}); logging in again in {} ms",
                f.message, f.retry_after_ms
            ));
            self.link.wait_for_server(now, wait);
            return;
        }
        self.error("login", &CallError::new(code, f.message));
        if self.status == Status::Reconnecting {
            let ecode = match code {
                ErrorCode::LoginTokenExpired => ErrorCode::LogoutTokenExpired,
                ErrorCode::LoginTokenWrong => ErrorCode::LogoutTokenWrong,
                ErrorCode::LoginOldVersion => ErrorCode::LogoutOldVersion,
                _ => ErrorCode::LogoutOther,
            };
            self.finish(Event::Logout {
                ecode: ecode.code(),
            });
        } else {
            self.finish(Event::LoginFailed { ecode: f.code });
        }
    }

    /// The server applied the logout.
    pub(super) fn logged_out(&mut self, now: Instant) {
        self.ack_now(now);
        self.close_link();
        self.finish(Event::Logout {
            ecode: ErrorCode::LogoutUser.code(),
        });
    }

    /// Ends the login or session: fails what is pending, reports `ev`, forgets the session.
    pub(super) fn finish(&mut self, ev: Event) {
        for p in self.requests.restart() {
            let p = p.pending;
            if !matches!(p, Pending::Logout) {
                p.failed(
                    Failure::Unanswered("the session ended before the server answered"),
                    self,
                );
            }
        }
        let leave = match ev {
            Event::Logout { ecode } if ecode == ErrorCode::LogoutUser.code() => {
                Some(ErrorCode::LeaveChannelLogout)
            }
            Event::Logout { ecode } if ecode == ErrorCode::LogoutKicked.code() => {
                Some(ErrorCode::LeaveChannelKicked)
            }
            Event::Logout { .. } => Some(ErrorCode::LeaveChannelDisconn),
            _ => None,
        };
        self.calls.drop_all(ErrorCode::InviteNet, &mut self.events);
        for channel in std::mem::take(&mut self.joined) {
            if let Some(code) = leave {
                self.events.push_back(Event::ChannelLeaved {
                    channel,
                    ecode: code.code(),
                });
            }
        }
        self.status = Status::NotLoggedIn;
        self.session = None;
        self.uid = 0;
        self.logging_out = false;
        self.link.stop();
        self.acks = Acks::default();
        self.events.push_back(ev);
    }
}
