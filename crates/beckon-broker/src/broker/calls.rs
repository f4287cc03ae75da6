//! Call requests (SPEC §8) and the events each side hears: invitations with ringing, accept,
//! refuse, end, DTMF, timeouts, offline peers, telephony gateways. The calls' state is
//! `crate::calls`.

use std::time::{Duration, Instant};

use beckon_proto::pb::{self, call_event::Kind};
use beckon_proto::validate::{self, EXTRA_DEST_NUMBER, EXTRA_PHONE, EXTRA_REQUIRE_PEER_ONLINE};
use beckon_proto::{CallError, CallResult, ErrorCode};

use super::{Broker, Caller, TimerKey};
use crate::SessionId;
use crate::calls::{Call, CallKey, CallState};
use crate::frame::BodyField;
use crate::store::Store;

fn no_call(channel: &str, peer: &str) -> CallError {
    CallError::wrong_param(format!("there is no such call with {peer} on {channel}"))
}

/// An event for one side of a call; `to_caller` says which side receives it.
pub(super) fn event(kind: Kind, channel: &str, account: &str, to_caller: bool) -> pb::CallEvent {
    pb::CallEvent {
        kind: kind as i32,
        channel: channel.to_owned(),
        account: account.to_owned(),
        caller: to_caller,
        ..Default::default()
    }
}

/// The event telling the caller what became of its invitation (named by the callee).
pub(super) fn to_caller(kind: Kind, call: &Call) -> pb::CallEvent {
    event(kind, &call.key.channel, &call.key.callee, true)
}

impl<S: Store> Broker<S> {
    /// Hands a call event to the account's session; in cluster mode, to its session on
    /// another node when it has none here.
    pub(super) fn call_event_to(
        &mut self,
        app: &str,
        account: &str,
        ev: &pb::CallEvent,
    ) -> Option<(SessionId, u64)> {
        let Some(sid) = self.session_of(app, account) else {
            self.cluster_call_event(app, account, ev, None);
            return None;
        };
        let seq = self.emit(sid, BodyField::Call, ev, None)?;
        Some((sid, seq))
    }

    /// Adds a call and arms its deadline, if it has one.
    pub(super) fn add_call(&mut self, call: Call) -> u64 {
        let deadline = call.deadline;
        let id = self.calls.insert(call);
        if let Some(d) = deadline {
            self.arm(d, TimerKey::Call(id));
        }
        id
    }

    /// Hands a waiting or new invitation to the callee side and starts it ringing.
    pub(super) fn ring(&mut self, id: u64, now: Instant) {
        let Some(app) = self.calls.get(id).map(|c| c.key.app.clone()) else {
            return;
        };
        let timeout =
            (self.apps.get(&app)).map_or(Duration::from_secs(60), |a| a.config.call_timeout);
        let deadline = now + timeout;
        let Some((call, extra)) = self.calls.ring(id, deadline) else {
            return;
        };
        let mut ev = event(Kind::Received, &call.key.channel, &call.key.caller, false);
        ev.extra = extra;
        let to = call.callee_side().to_owned();
        self.arm(deadline, TimerKey::Call(id));
        if let Some((sid, seq)) = self.call_event_to(&app, &to, &ev)
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            // The caller hears `onInviteReceivedByPeer` when the callee acknowledges this event.
            s.receipts.push((seq, id));
        }
    }

    // ---- requests ---------------------------------------------------------------------------

    /// `channelInviteUser2` and the phone forms (`_phone` in `extra`). `Ok(true)`: the reply
    /// waits for the cluster to say whether the invitation reached the callee's node.
    pub(super) fn call_invite(&mut self, me: &Caller, m: pb::Invite) -> CallResult<bool> {
        let app = &me.app;
        let extra = validate::invite(&app.limits, &me.account, &m.channel, &m.account, &m.extra)?;
        let key = CallKey {
            app: app.app_id.clone(),
            channel: m.channel.clone(),
            caller: me.account.to_string(),
            callee: m.account.clone(),
        };
        if self.calls.contains(&key) {
            return Err(CallError::new(
                ErrorCode::InviteReinvite,
                format!("{} is already invited to {}", m.account, m.channel),
            ));
        }
        let mine = self.calls.placed_by(&app.app_id, &me.account);
        if mine >= app.max_invites_per_session {
            return Err(CallError::new(
                ErrorCode::InviteOther,
                format!(
                    "{} has {mine} invitations in progress, the most one session may have; end \
                     one first",
                    me.account
                ),
            ));
        }
        if self.calls.in_app(&app.app_id) >= app.max_invites {
            return Err(CallError::new(
                ErrorCode::InviteOther,
                format!(
                    "the app has {} invitations in progress, its maximum; try again later",
                    app.max_invites
                ),
            ));
        }
        let mut call = Call {
            key,
            state: CallState::Ringing,
            extra: m.extra,
            deadline: None,
            gateway: None,
            cluster_wait: None,
            ring_until: None,
        };
        if extra.flag(EXTRA_PHONE) {
            let gateway = (self.calls.gateway(&app.app_id))
                .filter(|g| self.session_of(&app.app_id, g).is_some())
                .ok_or_else(|| {
                    CallError::new(
                        ErrorCode::InvitePeerOffline,
                        "no telephony gateway is online",
                    )
                })?;
            call.gateway = Some(gateway.to_owned());
        } else if self.session_of(&app.app_id, &m.account).is_none() {
            if self.config.cluster {
                let require = extra.flag(EXTRA_REQUIRE_PEER_ONLINE);
                return self.cluster_invite(me, call, require).map(|()| true);
            }
            if extra.flag(EXTRA_REQUIRE_PEER_ONLINE) {
                return Err(CallError::new(
                    ErrorCode::InvitePeerOffline,
                    format!("{} is offline", m.account),
                ));
            }
            call.state = CallState::WaitingForPeer;
            call.deadline = Some(self.now + app.peer_online_wait);
            self.add_call(call);
            return Ok(false);
        }
        let id = self.add_call(call);
        self.ring(id, self.now);
        Ok(false)
    }

    /// The callee side answered or ended the call, so it has the invitation: the caller hears
    /// `onInviteReceivedByPeer` now if the acknowledgement has not told it yet.
    fn receipt_now(&mut self, id: u64) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let (app, side) = (call.key.app.clone(), call.callee_side().to_owned());
        let pending = self
            .session_of(&app, &side)
            .and_then(|sid| self.sessions.get_mut(&sid))
            .is_some_and(|s| s.drop_receipt(id));
        if let Some(call) = self.calls.get(id).filter(|_| pending) {
            let (ev, caller) = (
                to_caller(Kind::ReceivedByPeer, call),
                call.key.caller.clone(),
            );
            self.call_event_to(&app, &caller, &ev);
        }
    }

    /// `channelInviteAccept` / `channelInviteRefuse` (`accept` false).
    pub(super) fn call_answer(
        &mut self,
        me: &Caller,
        m: pb::InviteAnswer,
        accept: bool,
    ) -> CallResult {
        let app = &me.app;
        let extra = validate::invite_answer(&app.limits, &m.channel, &m.account, &m.extra)?;
        let dest = extra.string(EXTRA_DEST_NUMBER);
        let id = self
            .calls
            .incoming(&app.app_id, &me.account, &m.channel, &m.account, dest)
            .filter(|id| (self.calls.get(*id)).is_some_and(|c| c.state == CallState::Ringing))
            .ok_or_else(|| no_call(&m.channel, &m.account))?;
        self.receipt_now(id);
        let kind = if accept {
            self.calls.accept(id);
            self.cluster_watch(id);
            self.stats.calls_accepted += 1;
            Kind::AcceptedByPeer
        } else {
            self.stats.calls_refused += 1;
            Kind::RefusedByPeer
        };
        let Some(call) = self.calls.get(id) else {
            return Err(no_call(&m.channel, &m.account));
        };
        let mut ev = event(kind, &m.channel, &call.key.callee, true);
        ev.extra = m.extra;
        if !accept {
            self.calls.remove(id);
        }
        self.call_event_to(&app.app_id, &m.account, &ev);
        Ok(())
    }

    /// The call with `peer` on `channel` in which the caller is the caller side (`as_caller`)
    /// or the callee side.
    fn my_call(&self, me: &Caller, channel: &str, peer: &str, as_caller: bool) -> CallResult<u64> {
        let app = &me.app.app_id;
        (self
            .calls
            .between(app, &me.account, channel, peer, as_caller))
        .ok_or_else(|| no_call(channel, peer))
    }

    /// `channelInviteEnd`, by either side, before or after acceptance.
    pub(super) fn call_end(&mut self, me: &Caller, m: pb::InviteEnd) -> CallResult {
        let app = &me.app;
        validate::invite_end(&app.limits, &m.channel, &m.account)?;
        let id = self.my_call(me, &m.channel, &m.account, m.as_caller)?;
        if !m.as_caller {
            self.receipt_now(id);
        }
        let Some(call) = self.calls.remove(id) else {
            return Err(no_call(&m.channel, &m.account));
        };
        self.stats.calls_ended += 1;
        if call.state != CallState::WaitingForPeer {
            let (other, me_as_seen) = call.other_side(m.as_caller);
            let ev = event(Kind::EndByPeer, &m.channel, &me_as_seen, !m.as_caller);
            self.call_event_to(&app.app_id, &other, &ev);
        }
        Ok(())
    }

    /// `channelInviteDTMF`: the digits go to the other side of a ringing or accepted call.
    pub(super) fn call_dtmf(&mut self, me: &Caller, m: pb::InviteDtmf) -> CallResult {
        let app = &me.app;
        validate::invite_dtmf(&app.limits, &m.channel, &m.account, &m.dtmf)?;
        let id = self.my_call(me, &m.channel, &m.account, m.as_caller)?;
        let call = (self.calls.get(id))
            .filter(|c| c.state != CallState::WaitingForPeer)
            .ok_or_else(|| no_call(&m.channel, &m.account))?;
        let (other, me_as_seen) = call.other_side(m.as_caller);
        let mut ev = event(Kind::Msg, &m.channel, &me_as_seen, !m.as_caller);
        ev.msg_type = "DTMF".into();
        ev.msg_data = m.dtmf;
        if self.session_of(&app.app_id, &other).is_none() && self.config.cluster {
            // The other side is on another node: the digits travel there, bounded.
            return self.cluster_dtmf(me, &other, &ev);
        }
        self.call_event_to(&app.app_id, &other, &ev);
        Ok(())
    }

    /// `io.beckon.gateway_register`: the calling session (with the server privilege) carries
    /// the app's phone invitations from now on.
    pub(super) fn register_gateway(&mut self, me: &Caller) -> CallResult {
        if !me.privileged {
            return Err(CallError::failed(
                "registering a gateway needs the server privilege",
            ));
        }
        self.calls.register_gateway(&me.app.app_id, &me.account);
        Ok(())
    }

    // ---- lifecycle --------------------------------------------------------------------------

    /// The callee logged in: its waiting invitations ring now.
    pub(super) fn calls_on_login(&mut self, app: &str, account: &str, now: Instant) {
        for id in self.calls.take_waiting(app, account) {
            self.ring(id, now);
        }
    }

    /// The account went offline: its calls fail or end for the other side.
    pub(super) fn calls_on_offline(&mut self, app: &str, account: &str) {
        for id in self.calls.of_account(app, account) {
            let Some(call) = self.calls.remove(id) else {
                continue;
            };
            let (to, ev) = if call.key.caller == account {
                self.stats.calls_ended += 1;
                if call.state == CallState::WaitingForPeer {
                    continue;
                }
                let ev = event(Kind::EndByPeer, &call.key.channel, &call.key.caller, false);
                (call.callee_side().to_owned(), ev)
            } else if call.state == CallState::Accepted {
                self.stats.calls_ended += 1;
                (call.key.caller.clone(), to_caller(Kind::EndByPeer, &call))
            } else {
                self.stats.calls_failed += 1;
                let mut ev = to_caller(Kind::Failed, &call);
                ev.code = ErrorCode::InvitePeerOffline.code();
                (call.key.caller.clone(), ev)
            };
            self.call_event_to(app, &to, &ev);
        }
        self.calls.forget_gateway(app, account);
    }

    pub(super) fn call_timer_due(&mut self, id: u64, now: Instant) {
        let due = (self.calls.get(id)).is_some_and(|c| c.deadline.is_some_and(|d| d <= now));
        if self.cluster_call_due(id, now) || !due {
            return;
        }
        let Some(call) = self.calls.remove(id) else {
            return;
        };
        let app = call.key.app.clone();
        let mut failed = to_caller(Kind::Failed, &call);
        if call.state == CallState::WaitingForPeer {
            failed.code = ErrorCode::InvitePeerOffline.code();
        } else {
            failed.code = ErrorCode::InviteTimeout.code();
            let ended = event(Kind::EndByPeer, &call.key.channel, &call.key.caller, false);
            self.call_event_to(&app, call.callee_side(), &ended);
        }
        self.stats.call_timeouts += 1;
        self.stats.calls_failed += 1;
        self.call_event_to(&app, &call.key.caller, &failed);
    }

    /// The session acknowledged events up to `up_to`: invitations among them were received.
    pub(super) fn call_receipts(&mut self, sid: SessionId, up_to: u64) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.receipts.is_empty() {
            return;
        }
        for id in s.take_receipts(up_to) {
            let Some(call) = self.calls.get(id) else {
                continue;
            };
            if call.state == CallState::WaitingForPeer {
                continue;
            }
            let ev = to_caller(Kind::ReceivedByPeer, call);
            let (app, caller) = (call.key.app.clone(), call.key.caller.clone());
            self.call_event_to(&app, &caller, &ev);
        }
    }

    /// Calls in progress, for tests and metrics.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }
}
