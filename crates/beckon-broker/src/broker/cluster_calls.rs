//! Calls between accounts on different nodes of a cluster (SPEC §8 across nodes).
//!
//! Each node keeps the half of a call that belongs to its own session, in its call table
//! under the call's key: the caller's node the invitation (it owns the invitation timeout and
//! the wait for an offline callee), the callee's node a copy that the callee answers, ends or
//! sends DTMF on. Every event one node would hand the other side's session goes to the cluster
//! as a [`CallSignal`] (`call_event_to`); the node holding that session applies it to its copy
//! and hands the event on ([`ClusterIn::CallSignal`]). The driver answers every signal
//! ([`ClusterIn::CallSent`]): a signal that could not be handed over fails the call on this
//! side, so no call waits for a peer that will never answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use beckon_proto::pb::{self, call_event::Kind};
use beckon_proto::{CallError, CallResult, ErrorCode};

use super::calls::{event, to_caller};
use super::{Broker, Caller, TimerKey};
use crate::SessionId;
use crate::calls::{Call, CallKey, CallState};
use crate::cluster::{ClusterOut, MAX_PENDING_QUERIES};
use crate::cluster_calls::{CallSignal, MAX_PENDING_SIGNALS_PER_SESSION};
use crate::store::Store;

/// How often each side of an accepted call between nodes checks that the other side's node
/// still has it (a dead node's sessions end nothing themselves).
pub(super) const CALL_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The `msg_type` of a probe ([`Kind::Unspecified`]), and of the answer that the call is gone.
const PROBE: &str = "probe";
const GONE: &str = "gone";

/// How often a waiting invitation asks the cluster again whether its callee is on some node.
pub(super) const CLUSTER_WAIT_RETRY: Duration = Duration::from_secs(2);

/// How much longer than the invitation timeout the callee's node keeps an unanswered copy:
/// the caller's node ends it at the timeout; the copy goes by itself only when that end never
/// arrives (the caller's node died).
pub(super) const COPY_MARGIN: Duration = Duration::from_secs(10);

/// Call signals waiting for their driver's answer.
#[derive(Debug, Default)]
pub(super) struct ClusterCalls {
    next_query: u64,
    flights: HashMap<u64, Flight>,
    /// Sessions' DTMF signals in flight, without zero entries.
    per_session: HashMap<SessionId, usize>,
}

/// A signal the driver has not answered yet.
#[derive(Debug)]
struct Flight {
    app: String,
    /// Its recipient.
    account: String,
    signal: CallSignal,
    /// The session whose DTMF it carries, counted in `per_session`.
    sender: Option<SessionId>,
    /// An invitation: the call it places, and the invite request waiting for the answer.
    invite: Option<(u64, Option<Caller>, bool)>,
}

/// The key of the call a signal for `account` is about.
fn key_of(app: &str, account: &str, signal: &CallSignal) -> CallKey {
    let (caller, callee) = if signal.to_caller {
        (account, signal.account.as_str())
    } else {
        (signal.account.as_str(), account)
    };
    CallKey {
        app: app.to_owned(),
        channel: signal.channel.clone(),
        caller: caller.to_owned(),
        callee: callee.to_owned(),
    }
}

impl<S: Store> Broker<S> {
    /// Call signals waiting for the cluster's answer.
    pub fn cluster_call_signals(&self) -> usize {
        self.cluster_calls.flights.len()
    }

    fn pending_room(&self) -> bool {
        self.cluster_queries() + self.cluster_calls.flights.len() < MAX_PENDING_QUERIES
    }

    fn send_signal(&mut self, app: &str, account: &str, signal: CallSignal, flight: Flight) {
        let c = &mut self.cluster_calls;
        c.next_query += 1;
        let query = c.next_query;
        if let Some(sid) = flight.sender {
            *c.per_session.entry(sid).or_default() += 1;
        }
        c.flights.insert(query, flight);
        self.cluster.outputs.push_back(ClusterOut::CallSignal {
            query,
            app: app.to_owned(),
            account: account.to_owned(),
            signal,
        });
    }

    /// A call event for an account without a session here: in cluster mode it goes to the
    /// account's node. (Outside cluster mode there is no one to hand it to.)
    pub(super) fn cluster_call_event(
        &mut self,
        app: &str,
        account: &str,
        ev: &pb::CallEvent,
        sender: Option<SessionId>,
    ) {
        if !self.config.cluster {
            return;
        }
        let signal = CallSignal::from_event(ev);
        let flight = Flight {
            app: app.to_owned(),
            account: account.to_owned(),
            signal: signal.clone(),
            sender,
            invite: None,
        };
        self.send_signal(app, account, signal, flight);
    }

    /// `channelInviteDTMF` to a side on another node: bounded per session and per node.
    pub(super) fn cluster_dtmf(
        &mut self,
        me: &Caller,
        other: &str,
        ev: &pb::CallEvent,
    ) -> CallResult {
        let mine = (self.cluster_calls.per_session.get(&me.sid)).map_or(0, |n| *n);
        if mine >= MAX_PENDING_SIGNALS_PER_SESSION || !self.pending_room() {
            return Err(CallError::failed(
                "too many call signals are on their way to other nodes; try again later",
            ));
        }
        self.cluster_call_event(&me.app.app_id, other, ev, Some(me.sid));
        Ok(())
    }

    /// An invitation to an account without a session here, in cluster mode: the call is
    /// placed here and the invitation goes to the callee's node; the invite request is
    /// answered once the cluster says whether it got there.
    pub(super) fn cluster_invite(
        &mut self,
        me: &Caller,
        mut call: Call,
        require: bool,
    ) -> CallResult {
        if !self.pending_room() {
            return Err(CallError::failed(
                "too many call signals are waiting for the cluster; try again later",
            ));
        }
        let app = &me.app;
        call.state = CallState::Ringing;
        // Until the callee's node answers; set again from then on.
        call.deadline = Some(self.now + app.call_timeout);
        let mut ev = event(Kind::Received, &call.key.channel, &call.key.caller, false);
        ev.extra = call.extra.clone();
        let callee = call.key.callee.clone();
        let id = self.add_call(call);
        self.send_invite(
            &app.app_id.clone(),
            &callee,
            id,
            &ev,
            Some(me.clone()),
            require,
        );
        Ok(())
    }

    fn send_invite(
        &mut self,
        app: &str,
        callee: &str,
        id: u64,
        ev: &pb::CallEvent,
        reply: Option<Caller>,
        require: bool,
    ) {
        let signal = CallSignal::from_event(ev);
        let flight = Flight {
            app: app.to_owned(),
            account: callee.to_owned(),
            signal: signal.clone(),
            sender: None,
            invite: Some((id, reply, require)),
        };
        self.send_signal(app, callee, signal, flight);
    }

    /// An accepted call whose other side is on another node is checked on every
    /// [`CALL_PROBE_INTERVAL`]: a call has no deadline once accepted, and nothing else would
    /// end it if the other side's node died. So is a ringing invitation whose callee's node has
    /// it (`ring_until` set), until it times out, so that it fails when that node dies.
    pub(super) fn cluster_watch(&mut self, id: u64) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let ringing = call.state == CallState::Ringing && call.ring_until.is_some();
        if !self.config.cluster || !(call.state == CallState::Accepted || ringing) {
            return;
        }
        let other = if self.session_of(&call.key.app, &call.key.caller).is_some() {
            call.callee_side()
        } else {
            &call.key.caller
        };
        if self.session_of(&call.key.app, other).is_some() {
            return; // Both sides are here: their sessions' ends end the call.
        }
        let mut at = self.now + CALL_PROBE_INTERVAL;
        if let Some(until) = call.ring_until.filter(|u| *u < at) {
            at = until;
        }
        self.calls.set_deadline(id, Some(at));
        self.arm(at, TimerKey::Call(id));
    }

    /// A call's timer, in cluster mode: `true` when handled here (a waiting invitation asks
    /// the cluster again, an accepted call checks its other side), `false` for the timeout.
    pub(super) fn cluster_call_due(&mut self, id: u64, now: Instant) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        if call.deadline.is_none_or(|d| d > now) {
            return false;
        }
        let ringing = call.state == CallState::Ringing && call.ring_until.is_some_and(|u| u > now);
        if call.state == CallState::Accepted || ringing {
            self.probe(id);
            return true;
        }
        let Some(until) = call.cluster_wait.filter(|u| *u > now) else {
            return false;
        };
        if call.state != CallState::WaitingForPeer {
            return false;
        }
        let next = (now + CLUSTER_WAIT_RETRY).min(until);
        let mut ev = event(Kind::Received, &call.key.channel, &call.key.caller, false);
        ev.extra = call.extra.clone();
        let (app, callee) = (call.key.app.clone(), call.key.callee.clone());
        self.calls.set_deadline(id, Some(next));
        self.arm(next, TimerKey::Call(id));
        let asking = (self.cluster_calls.flights.values())
            .any(|f| f.invite.as_ref().is_some_and(|i| i.0 == id));
        if !asking && self.pending_room() {
            self.send_invite(&app, &callee, id, &ev, None, false);
        }
        true
    }

    /// Asks the node of an accepted call's other side (or of a ringing invitation's callee)
    /// whether it still has the call.
    fn probe(&mut self, id: u64) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let ring_until = call.ring_until;
        let (app, channel) = (call.key.app.clone(), call.key.channel.clone());
        let (caller, callee) = (call.key.caller.clone(), call.key.callee.clone());
        let here_caller = self.session_of(&app, &caller).is_some();
        let (to, me) = if here_caller {
            (callee, caller)
        } else {
            (caller, callee)
        };
        self.calls.set_deadline(id, ring_until);
        if self.session_of(&app, &to).is_some() {
            // Both sides are here now: a ringing invitation still times out.
            if let Some(until) = ring_until {
                self.arm(until, TimerKey::Call(id));
            }
            return;
        }
        let asking = (self.cluster_calls.flights.values()).any(|f| {
            f.signal.msg_type == PROBE
                && f.account == to
                && f.signal.account == me
                && f.signal.channel == channel
        });
        if !asking && self.pending_room() {
            let mut ev = event(Kind::Unspecified, &channel, &me, !here_caller);
            ev.msg_type = PROBE.into();
            self.cluster_call_event(&app, &to, &ev, None);
        }
        self.cluster_watch(id);
    }

    /// A probe (does the other side still have the call?) or the answer that it does not.
    fn probe_in(
        &mut self,
        app: &str,
        account: &str,
        key: &CallKey,
        id: Option<u64>,
        signal: &CallSignal,
    ) {
        match (signal.msg_type.as_str(), id) {
            (PROBE, None) if self.session_of(app, &signal.account).is_none() => {
                let mut ev = event(Kind::Unspecified, &key.channel, account, !signal.to_caller);
                ev.msg_type = GONE.into();
                self.call_event_to(app, &signal.account, &ev);
            }
            (GONE, Some(_)) => {
                // As if a signal to the other side had reached no one.
                let flight = Flight {
                    app: app.to_owned(),
                    account: signal.account.clone(),
                    signal: CallSignal {
                        to_caller: !signal.to_caller,
                        account: account.to_owned(),
                        channel: key.channel.clone(),
                        ..CallSignal::default()
                    },
                    sender: None,
                    invite: None,
                };
                self.signal_lost(&flight, &Ok(false));
            }
            _ => {}
        }
    }

    /// The driver's answer for a signal.
    pub(super) fn call_signal_sent(&mut self, query: u64, delivered: Result<bool, String>) {
        let Some(flight) = self.cluster_calls.flights.remove(&query) else {
            return;
        };
        if let Some(sid) = flight.sender
            && let Some(n) = self.cluster_calls.per_session.get_mut(&sid)
        {
            *n -= 1;
            if *n == 0 {
                self.cluster_calls.per_session.remove(&sid);
                crate::shrink::shrink_map(&mut self.cluster_calls.per_session);
            }
        }
        crate::shrink::shrink_map(&mut self.cluster_calls.flights);
        match flight.invite {
            Some((id, reply, require)) => self.invite_sent(id, reply, require, delivered),
            // A probe that could not ask says nothing about the other side; the next asks again.
            None if flight.signal.msg_type == PROBE && delivered.is_err() => {}
            None if delivered != Ok(true) => self.signal_lost(&flight, &delivered),
            None => {}
        }
    }

    /// Whether an invitation reached the callee's node: it rings there, waits for the
    /// callee, or fails.
    fn invite_sent(
        &mut self,
        id: u64,
        reply: Option<Caller>,
        require: bool,
        delivered: Result<bool, String>,
    ) {
        let now = self.now;
        let result = match (self.calls.get(id), delivered) {
            // Ended meanwhile (by its caller, or its session ended): nothing to do.
            (None, _) => Ok(()),
            (Some(call), Ok(true)) => {
                let timeout = (self.apps.get(&call.key.app))
                    .map_or(Duration::from_secs(60), |a| a.config.call_timeout);
                if call.state != CallState::Accepted {
                    self.calls.unwait(id);
                    // The invitation travels with the signal; the call keeps no `extra`.
                    self.calls.ring(id, now + timeout);
                    self.arm(now + timeout, TimerKey::Call(id));
                    // The callee's node has it: checked until it times out.
                    self.calls.set_ring_until(id, Some(now + timeout));
                    self.cluster_watch(id);
                }
                Ok(())
            }
            (Some(call), Ok(false)) if require => {
                let e = CallError::new(
                    ErrorCode::InvitePeerOffline,
                    format!("{} is offline", call.key.callee),
                );
                self.calls.remove(id);
                Err(e)
            }
            (Some(call), Ok(false)) => {
                let until = call.cluster_wait.unwrap_or_else(|| {
                    let wait = (self.apps.get(&call.key.app))
                        .map_or(Duration::from_secs(20), |a| a.config.peer_online_wait);
                    now + wait
                });
                // Not when it rang meanwhile (its callee logged in here).
                let waits = call.state == CallState::WaitingForPeer
                    || (reply.is_some() && call.state == CallState::Ringing);
                if waits {
                    let next = (now + CLUSTER_WAIT_RETRY).min(until);
                    self.calls.wait(id, next, until);
                    self.arm(next, TimerKey::Call(id));
                }
                Ok(())
            }
            (Some(call), Err(why)) if reply.is_some() => {
                let e = CallError::new(
                    ErrorCode::InviteNet,
                    format!(
                        "the invitation could not reach {}'s node: {why}",
                        call.key.callee
                    ),
                );
                self.calls.remove(id);
                Err(e)
            }
            // A waiting invitation asks again at its next retry.
            (Some(_), Err(_)) => Ok(()),
        };
        if let Some(me) = reply {
            if let Some(kind) = me.kind {
                let code = result.as_ref().map_or_else(|e| e.code.code(), |()| 0);
                self.tally_request(&me.app.app_id, kind, code);
            }
            self.reply(me.sid, me.request, result.map(|()| None));
        }
    }

    /// A signal that did not reach the other side's session: the call fails on this side
    /// (the caller hears `INVITE_E_PEEROFFLINE` or `INVITE_E_NET`, or the end of an accepted
    /// call; the callee hears the end), as when the other side goes offline.
    fn signal_lost(&mut self, flight: &Flight, delivered: &Result<bool, String>) {
        let key = key_of(&flight.app, &flight.account, &flight.signal);
        let Some(id) = self.calls.id(&key) else {
            return; // The call ended here already.
        };
        let Some(call) = self.calls.remove(id) else {
            return;
        };
        let (to, ev) = if flight.signal.to_caller {
            self.stats.calls_ended += 1;
            let ev = event(Kind::EndByPeer, &key.channel, &key.caller, false);
            (key.callee.clone(), ev)
        } else if call.state == CallState::Accepted {
            self.stats.calls_ended += 1;
            (key.caller.clone(), to_caller(Kind::EndByPeer, &call))
        } else {
            self.stats.calls_failed += 1;
            let mut ev = to_caller(Kind::Failed, &call);
            ev.code = match delivered {
                Err(_) => ErrorCode::InviteNet.code(),
                Ok(_) => ErrorCode::InvitePeerOffline.code(),
            };
            (key.caller.clone(), ev)
        };
        self.call_event_to(&key.app, &to, &ev);
    }

    /// A call signal from another node for session `sid` of `account` here.
    pub(super) fn call_signal_in(
        &mut self,
        app: &str,
        account: &str,
        sid: SessionId,
        signal: CallSignal,
    ) {
        let kind = signal.kind();
        if self.session_of(app, account) != Some(sid) {
            if kind == Kind::Received {
                // The callee's session ended meanwhile: its caller hears it at once.
                let mut ev = event(Kind::Failed, &signal.channel, account, true);
                ev.code = ErrorCode::InvitePeerOffline.code();
                self.call_event_to(app, &signal.account, &ev);
            }
            return;
        }
        let key = key_of(app, account, &signal);
        let id = self.calls.id(&key);
        let ev = signal.event();
        match (kind, id) {
            (Kind::Received, Some(id)) if self.session_of(app, &key.caller).is_some() => {
                // Both sides are on this node now (the callee logged in here meanwhile):
                // the call rings as on one node.
                if self
                    .calls
                    .get(id)
                    .is_some_and(|c| c.state != CallState::Accepted)
                {
                    self.calls.unwait(id);
                    self.ring(id, self.now);
                }
            }
            (Kind::Received, Some(id)) => {
                // The caller's node sends one invitation per call, and refuses another while
                // the call is in progress there: this copy is of an earlier call whose end
                // never arrived. It ends, and the new invitation rings.
                self.calls.remove(id);
                let ended = event(Kind::EndByPeer, &key.channel, &key.caller, false);
                self.call_event_to(app, account, &ended);
                self.ring_copy(key, signal);
            }
            (Kind::Received, None) => self.ring_copy(key, signal),
            (Kind::Unspecified, id) => self.probe_in(app, account, &key, id, &signal),
            (_, None) => {}
            (Kind::ReceivedByPeer | Kind::Msg, Some(id)) => {
                if self
                    .calls
                    .get(id)
                    .is_some_and(|c| c.state != CallState::WaitingForPeer)
                {
                    self.call_event_to(app, account, &ev);
                }
            }
            (Kind::AcceptedByPeer, Some(id)) => {
                self.calls.accept(id);
                self.cluster_watch(id);
                self.call_event_to(app, account, &ev);
            }
            (Kind::RefusedByPeer | Kind::Failed | Kind::EndByPeer, Some(id)) => {
                self.calls.remove(id);
                self.call_event_to(app, account, &ev);
            }
        }
    }

    /// An invitation from another node: the callee's copy of the call, ringing here.
    fn ring_copy(&mut self, key: CallKey, signal: CallSignal) {
        let Some(app) = self.apps.get(&key.app).map(|a| a.config.clone()) else {
            return;
        };
        if self.calls.in_app(&key.app) >= app.max_invites {
            self.stats.calls_failed += 1;
            let mut ev = event(Kind::Failed, &key.channel, &key.callee, true);
            ev.code = ErrorCode::InviteOther.code();
            ev.extra = String::new();
            self.call_event_to(&key.app, &key.caller, &ev);
            return;
        }
        let call = Call {
            key,
            state: CallState::Ringing,
            extra: signal.extra,
            deadline: None,
            gateway: None,
            cluster_wait: None,
            ring_until: None,
        };
        let id = self.add_call(call);
        self.ring(id, self.now);
        let until = self.now + app.call_timeout + COPY_MARGIN;
        self.calls.set_deadline(id, Some(until));
        self.arm(until, TimerKey::Call(id));
    }
}
