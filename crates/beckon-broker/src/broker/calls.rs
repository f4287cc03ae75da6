//! Calls (SPEC §8): invitations with ringing, accept, refuse, end, DTMF, timeouts, offline
//! peers, and telephony gateways. The broker holds the truth of every call's state.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use beckon_proto::pb::{self, call_event::Kind, reply};
use beckon_proto::{CallError, ErrorCode};
use beckon_token::Privileges;

use super::{Broker, TimerKey};
use crate::SessionId;
use crate::config::AppConfig;
use crate::frame::BodyField;
use crate::store::Store;

/// (app, channel, caller, callee): at most one call per key is in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CallKey {
    app: String,
    channel: String,
    caller: String,
    callee: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    /// The callee is offline; the invitation waits for it to log in.
    WaitingForPeer,
    /// The callee has the invitation and has not answered.
    Ringing,
    Accepted,
}

#[derive(Debug)]
struct Call {
    key: CallKey,
    state: CallState,
    extra: String,
    deadline: Option<Instant>,
    /// The session of a telephony gateway that carries this call, for phone invitations.
    gateway: Option<String>,
}

/// Every call of the broker, with the indexes that keep lookups off full scans.
#[derive(Debug, Default)]
pub(super) struct Calls {
    next_id: u64,
    by_id: HashMap<u64, Call>,
    by_key: HashMap<CallKey, u64>,
    /// (app, account) → calls the account is a side of (as caller, callee or gateway).
    by_account: HashMap<(String, String), HashSet<u64>>,
    /// (app, callee) → invitations waiting for the callee to come online.
    waiting: HashMap<(String, String), Vec<u64>>,
    /// app → the account registered as its telephony gateway.
    gateways: HashMap<String, String>,
}

impl Calls {
    /// Calls in progress.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `extra` is empty or a JSON object.
fn parse_extra(app: &AppConfig, extra: &str) -> Result<serde_json::Map<String, Value>, CallError> {
    app.limits.message("extra", extra)?;
    if extra.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<Value>(extra) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            "extra must be a JSON object",
        )),
        Err(e) => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            format!("extra is not valid JSON: {e}"),
        )),
    }
}

fn flag(m: &serde_json::Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => s == "1" || s == "true",
        _ => false,
    }
}

fn no_call(channel: &str, peer: &str) -> CallError {
    CallError::new(
        ErrorCode::GeneralWrongParam,
        format!("there is no such call with {peer} on {channel}"),
    )
}

/// An event for one side of a call; `to_caller` says which side receives it.
fn event(kind: Kind, channel: &str, account: &str, to_caller: bool) -> pb::CallEvent {
    pb::CallEvent {
        kind: kind as i32,
        channel: channel.to_owned(),
        account: account.to_owned(),
        caller: to_caller,
        ..Default::default()
    }
}

impl<S: Store> Broker<S> {
    fn session_of(&self, app: &str, account: &str) -> Option<SessionId> {
        self.apps.get(app)?.online.get(account).copied()
    }

    fn call_event_to(
        &mut self,
        app: &str,
        account: &str,
        ev: &pb::CallEvent,
    ) -> Option<(SessionId, u64)> {
        let sid = self.session_of(app, account)?;
        let seq = self.emit(sid, BodyField::Call, ev, None)?;
        Some((sid, seq))
    }

    /// Where the callee side of a call is reached: the callee, or its gateway.
    fn callee_side(call: &Call) -> &str {
        call.gateway.as_deref().unwrap_or(&call.key.callee)
    }

    fn add_call(&mut self, call: Call) -> u64 {
        self.calls.next_id += 1;
        let id = self.calls.next_id;
        let app = call.key.app.clone();
        for who in [&call.key.caller, Self::callee_side(&call)] {
            self.calls
                .by_account
                .entry((app.clone(), who.to_owned()))
                .or_default()
                .insert(id);
        }
        if let Some(d) = call.deadline {
            self.timers.push(Reverse((d, TimerKey::Call(id))));
        }
        self.calls.by_key.insert(call.key.clone(), id);
        self.calls.by_id.insert(id, call);
        id
    }

    fn remove_call(&mut self, id: u64) -> Option<Call> {
        let call = self.calls.by_id.remove(&id)?;
        self.calls.by_key.remove(&call.key);
        for who in [&call.key.caller, Self::callee_side(&call)] {
            let k = (call.key.app.clone(), who.to_owned());
            if let Some(set) = self.calls.by_account.get_mut(&k) {
                set.remove(&id);
                if set.is_empty() {
                    self.calls.by_account.remove(&k);
                }
            }
        }
        Some(call)
    }

    /// Hands a waiting or new invitation to the callee side and starts it ringing.
    fn ring(&mut self, id: u64, now: Instant) {
        let timeout = self
            .apps
            .get(&self.calls.by_id[&id].key.app)
            .map(|a| a.config.call_timeout);
        let Some(call) = self.calls.by_id.get_mut(&id) else {
            return;
        };
        call.state = CallState::Ringing;
        let deadline = now + timeout.unwrap_or(std::time::Duration::from_secs(60));
        call.deadline = Some(deadline);
        let mut ev = event(Kind::Received, &call.key.channel, &call.key.caller, false);
        ev.extra = call.extra.clone();
        let (app, to) = (call.key.app.clone(), Self::callee_side(call).to_owned());
        self.timers.push(Reverse((deadline, TimerKey::Call(id))));
        if let Some((sid, seq)) = self.call_event_to(&app, &to, &ev)
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            // The caller hears `onInviteReceivedByPeer` when the callee acknowledges this event.
            s.receipts.push((seq, id));
        }
    }

    // ---- requests ---------------------------------------------------------------------------

    pub(crate) fn call_invite(
        &mut self,
        app: &AppConfig,
        caller: &str,
        m: pb::Invite,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", &m.channel)?;
        app.limits.account("account", &m.account)?;
        let extra = parse_extra(app, &m.extra)?;
        if m.account == caller {
            return Err(CallError::new(
                ErrorCode::GeneralWrongParam,
                "a user cannot invite itself",
            ));
        }
        let key = CallKey {
            app: app.app_id.clone(),
            channel: m.channel.clone(),
            caller: caller.to_owned(),
            callee: m.account.clone(),
        };
        if self.calls.by_key.contains_key(&key) {
            return Err(CallError::new(
                ErrorCode::InviteReinvite,
                format!("{} is already invited to {}", m.account, m.channel),
            ));
        }
        if flag(&extra, "_phone") {
            if !is_phone_number(&m.account) {
                return Err(CallError::new(
                    ErrorCode::GeneralWrongParam,
                    "a phone invitation needs a phone number",
                ));
            }
            let gateway = self
                .calls
                .gateways
                .get(&app.app_id)
                .filter(|g| self.session_of(&app.app_id, g).is_some())
                .cloned()
                .ok_or_else(|| {
                    CallError::new(
                        ErrorCode::InvitePeerOffline,
                        "no telephony gateway is online",
                    )
                })?;
            let id = self.add_call(Call {
                key,
                state: CallState::Ringing,
                extra: m.extra,
                deadline: None,
                gateway: Some(gateway),
            });
            self.ring(id, now);
            return Ok(None);
        }
        let online = self.session_of(&app.app_id, &m.account).is_some();
        if online {
            let id = self.add_call(Call {
                key,
                state: CallState::Ringing,
                extra: m.extra,
                deadline: None,
                gateway: None,
            });
            self.ring(id, now);
        } else if flag(&extra, "_require_peer_online") {
            return Err(CallError::new(
                ErrorCode::InvitePeerOffline,
                format!("{} is offline", m.account),
            ));
        } else {
            let id = self.add_call(Call {
                key,
                state: CallState::WaitingForPeer,
                extra: m.extra,
                deadline: Some(now + app.peer_online_wait),
                gateway: None,
            });
            self.calls
                .waiting
                .entry((app.app_id.clone(), m.account))
                .or_default()
                .push(id);
        }
        Ok(None)
    }

    /// Finds the call a callee-side answer is about: the callee's own, or one a gateway carries
    /// (then `extra` names the phone number as `destNum`).
    fn incoming_call(
        &self,
        app: &AppConfig,
        me: &str,
        channel: &str,
        caller: &str,
        extra: &str,
    ) -> Option<u64> {
        let mut key = CallKey {
            app: app.app_id.clone(),
            channel: channel.to_owned(),
            caller: caller.to_owned(),
            callee: me.to_owned(),
        };
        if let Some(id) = self.calls.by_key.get(&key) {
            return Some(*id);
        }
        let dest = serde_json::from_str::<Value>(extra)
            .ok()
            .and_then(|v| v.get("destNum")?.as_str().map(str::to_owned));
        match dest {
            Some(dest) => {
                key.callee = dest;
                let id = *self.calls.by_key.get(&key)?;
                (self.calls.by_id.get(&id)?.gateway.as_deref() == Some(me)).then_some(id)
            }
            // Without destNum, a gateway answers the one call it carries from this caller.
            None => self.gateway_call(app, me, channel, caller),
        }
    }

    /// The only call on `channel` from `caller` that the gateway `me` carries, if exactly one.
    fn gateway_call(&self, app: &AppConfig, me: &str, channel: &str, caller: &str) -> Option<u64> {
        let mine = self
            .calls
            .by_account
            .get(&(app.app_id.clone(), me.to_owned()))?;
        let mut carried = mine.iter().copied().filter(|id| {
            self.calls.by_id.get(id).is_some_and(|c| {
                c.gateway.as_deref() == Some(me)
                    && c.key.caller == caller
                    && c.key.channel == channel
            })
        });
        let first = carried.next();
        if carried.next().is_some() {
            None
        } else {
            first
        }
    }

    /// The callee side answered or ended the call, so it has the invitation: the caller hears
    /// `onInviteReceivedByPeer` now if the acknowledgement has not told it yet.
    fn receipt_now(&mut self, id: u64) {
        let Some(call) = self.calls.by_id.get(&id) else {
            return;
        };
        let (app, side) = (call.key.app.clone(), Self::callee_side(call).to_owned());
        let Some(sid) = self.session_of(&app, &side) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let before = s.receipts.len();
        s.receipts.retain(|(_, c)| *c != id);
        if s.receipts.len() < before {
            let call = &self.calls.by_id[&id];
            let ev = event(
                Kind::ReceivedByPeer,
                &call.key.channel,
                &call.key.callee,
                true,
            );
            let caller = call.key.caller.clone();
            self.call_event_to(&app, &caller, &ev);
        }
    }

    pub(crate) fn call_answer(
        &mut self,
        app: &AppConfig,
        me: &str,
        m: pb::InviteAnswer,
        accept: bool,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", &m.channel)?;
        app.limits.account("account", &m.account)?;
        parse_extra(app, &m.extra)?;
        let id = self
            .incoming_call(app, me, &m.channel, &m.account, &m.extra)
            .filter(|id| {
                self.calls
                    .by_id
                    .get(id)
                    .is_some_and(|c| c.state == CallState::Ringing)
            })
            .ok_or_else(|| no_call(&m.channel, &m.account))?;
        self.receipt_now(id);
        let callee = self.calls.by_id[&id].key.callee.clone();
        let kind = if accept {
            Kind::AcceptedByPeer
        } else {
            Kind::RefusedByPeer
        };
        let mut ev = event(kind, &m.channel, &callee, true);
        ev.extra = m.extra;
        if accept {
            if let Some(c) = self.calls.by_id.get_mut(&id) {
                c.state = CallState::Accepted;
                c.deadline = None;
            }
        } else {
            self.remove_call(id);
        }
        self.call_event_to(&app.app_id, &m.account, &ev);
        Ok(None)
    }

    /// The call between `me` and `peer` on `channel` in which `me` is the caller (`as_caller`)
    /// or the callee side (the callee itself, or the gateway carrying it).
    fn call_between(
        &self,
        app: &AppConfig,
        me: &str,
        channel: &str,
        peer: &str,
        as_caller: bool,
    ) -> Option<u64> {
        let mut key = CallKey {
            app: app.app_id.clone(),
            channel: channel.to_owned(),
            caller: me.to_owned(),
            callee: peer.to_owned(),
        };
        if !as_caller {
            key.caller = peer.to_owned();
            key.callee = me.to_owned();
        }
        if let Some(id) = self.calls.by_key.get(&key) {
            return Some(*id);
        }
        if as_caller {
            return None;
        }
        // A gateway names the caller; the phone number is implied when it carries one call.
        let mine = self
            .calls
            .by_account
            .get(&(app.app_id.clone(), me.to_owned()))?;
        let mut carried = mine.iter().copied().filter(|id| {
            self.calls.by_id.get(id).is_some_and(|c| {
                c.gateway.as_deref() == Some(me) && c.key.caller == peer && c.key.channel == channel
            })
        });
        let first = carried.next();
        if carried.next().is_some() {
            None
        } else {
            first
        }
    }

    pub(crate) fn call_end(
        &mut self,
        app: &AppConfig,
        me: &str,
        m: pb::InviteEnd,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", &m.channel)?;
        app.limits.account("account", &m.account)?;
        let id = self
            .call_between(app, me, &m.channel, &m.account, m.as_caller)
            .ok_or_else(|| no_call(&m.channel, &m.account))?;
        if !m.as_caller {
            self.receipt_now(id);
        }
        let Some(call) = self.remove_call(id) else {
            return Err(no_call(&m.channel, &m.account));
        };
        let i_am_caller = m.as_caller;
        let (other, me_as_seen) = if i_am_caller {
            (Self::callee_side(&call).to_owned(), call.key.caller.clone())
        } else {
            (call.key.caller.clone(), call.key.callee.clone())
        };
        if call.state == CallState::WaitingForPeer {
            self.unwait(&call.key, id);
        } else {
            let ev = event(Kind::EndByPeer, &m.channel, &me_as_seen, !i_am_caller);
            self.call_event_to(&app.app_id, &other, &ev);
        }
        Ok(None)
    }

    pub(crate) fn call_dtmf(
        &mut self,
        app: &AppConfig,
        me: &str,
        m: pb::InviteDtmf,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", &m.channel)?;
        app.limits.account("account", &m.account)?;
        if m.dtmf.is_empty()
            || !m
                .dtmf
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(CallError::new(
                ErrorCode::GeneralWrongParam,
                "dtmf must be digits, * or #",
            ));
        }
        if m.dtmf.len() > app.limits.max_name_chars {
            return Err(CallError::new(
                ErrorCode::GeneralLargeParam,
                "too many dtmf digits",
            ));
        }
        let id = self
            .call_between(app, me, &m.channel, &m.account, m.as_caller)
            .filter(|id| {
                self.calls
                    .by_id
                    .get(id)
                    .is_some_and(|c| c.state != CallState::WaitingForPeer)
            })
            .ok_or_else(|| no_call(&m.channel, &m.account))?;
        let call = &self.calls.by_id[&id];
        let (other, me_as_seen) = if m.as_caller {
            (Self::callee_side(call).to_owned(), call.key.caller.clone())
        } else {
            (call.key.caller.clone(), call.key.callee.clone())
        };
        let mut ev = event(Kind::Msg, &m.channel, &me_as_seen, !m.as_caller);
        ev.msg_type = "DTMF".into();
        ev.msg_data = m.dtmf;
        self.call_event_to(&app.app_id, &other, &ev);
        Ok(None)
    }

    /// `io.beckon.gateway_register`: the calling session (with the server privilege) carries
    /// the app's phone invitations from now on.
    pub(crate) fn register_gateway(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        me: &str,
    ) -> Result<(), CallError> {
        let privileged = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.privileges.contains(Privileges::SERVER));
        if !privileged {
            return Err(CallError::new(
                ErrorCode::GeneralFailed,
                "registering a gateway needs the server privilege",
            ));
        }
        self.calls
            .gateways
            .insert(app.app_id.clone(), me.to_owned());
        Ok(())
    }

    fn unwait(&mut self, key: &CallKey, id: u64) {
        let k = (key.app.clone(), key.callee.clone());
        if let Some(v) = self.calls.waiting.get_mut(&k) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.calls.waiting.remove(&k);
            }
        }
    }

    // ---- lifecycle --------------------------------------------------------------------------

    /// The callee logged in: its waiting invitations ring now.
    pub(super) fn calls_on_login(&mut self, app: &str, account: &str, now: Instant) {
        if let Some(ids) = self
            .calls
            .waiting
            .remove(&(app.to_owned(), account.to_owned()))
        {
            for id in ids {
                self.ring(id, now);
            }
        }
    }

    /// The account went offline: its calls fail or end for the other side.
    pub(super) fn calls_on_offline(&mut self, app: &str, account: &str) {
        let Some(ids) = self
            .calls
            .by_account
            .get(&(app.to_owned(), account.to_owned()))
            .cloned()
        else {
            return;
        };
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(call) = self.remove_call(id) else {
                continue;
            };
            if call.key.caller == account {
                if call.state == CallState::WaitingForPeer {
                    self.unwait(&call.key, id);
                } else {
                    let ev = event(Kind::EndByPeer, &call.key.channel, &call.key.caller, false);
                    self.call_event_to(app, Self::callee_side(&call), &ev);
                }
            } else if call.state == CallState::Accepted {
                let ev = event(Kind::EndByPeer, &call.key.channel, &call.key.callee, true);
                self.call_event_to(app, &call.key.caller, &ev);
            } else {
                let mut ev = event(Kind::Failed, &call.key.channel, &call.key.callee, true);
                ev.code = ErrorCode::InvitePeerOffline.code();
                self.call_event_to(app, &call.key.caller, &ev);
            }
        }
        if self.calls.gateways.get(app).is_some_and(|g| g == account) {
            self.calls.gateways.remove(app);
        }
    }

    pub(super) fn call_timer_due(&mut self, id: u64, now: Instant) {
        let due = self
            .calls
            .by_id
            .get(&id)
            .is_some_and(|c| c.deadline.is_some_and(|d| d <= now));
        if !due {
            return;
        }
        let Some(call) = self.remove_call(id) else {
            return;
        };
        let app = call.key.app.clone();
        let mut failed = event(Kind::Failed, &call.key.channel, &call.key.callee, true);
        if call.state == CallState::WaitingForPeer {
            self.unwait(&call.key, id);
            failed.code = ErrorCode::InvitePeerOffline.code();
        } else {
            failed.code = ErrorCode::InviteTimeout.code();
            let ended = event(Kind::EndByPeer, &call.key.channel, &call.key.caller, false);
            self.call_event_to(&app, Self::callee_side(&call), &ended);
        }
        self.stats.call_timeouts += 1;
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
        let (done, rest): (Vec<_>, Vec<_>) =
            s.receipts.drain(..).partition(|(seq, _)| *seq <= up_to);
        s.receipts = rest;
        for (_, id) in done {
            let Some(call) = self.calls.by_id.get(&id) else {
                continue;
            };
            if call.state == CallState::WaitingForPeer {
                continue;
            }
            let ev = event(
                Kind::ReceivedByPeer,
                &call.key.channel,
                &call.key.callee,
                true,
            );
            let (app, caller) = (call.key.app.clone(), call.key.caller.clone());
            self.call_event_to(&app, &caller, &ev);
        }
    }

    /// Calls in progress, for tests and metrics.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }
}
