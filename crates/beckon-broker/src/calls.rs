//! The calls in progress (SPEC §8) and the telephony gateways: a table with the indexes that
//! keep every lookup off a full scan. Plain state with its own invariants; the broker decides
//! who hears about a change.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// (app, channel, caller, callee): at most one call per key is in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CallKey {
    pub(crate) app: String,
    pub(crate) channel: String,
    pub(crate) caller: String,
    pub(crate) callee: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallState {
    /// The callee is offline; the invitation waits for it to log in.
    WaitingForPeer,
    /// The callee has the invitation and has not answered.
    Ringing,
    Accepted,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) key: CallKey,
    pub(crate) state: CallState,
    pub(crate) extra: String,
    pub(crate) deadline: Option<Instant>,
    /// The account of the telephony gateway that carries this call, for phone invitations.
    pub(crate) gateway: Option<String>,
}

impl Call {
    /// Where the callee side of the call is reached: the callee, or its gateway.
    pub(crate) fn callee_side(&self) -> &str {
        self.gateway.as_deref().unwrap_or(&self.key.callee)
    }

    /// (the other side, how `me` appears to it) when the side `as_caller` names acts.
    pub(crate) fn other_side(&self, as_caller: bool) -> (String, String) {
        if as_caller {
            (self.callee_side().to_owned(), self.key.caller.clone())
        } else {
            (self.key.caller.clone(), self.key.callee.clone())
        }
    }
}

/// Every call of the broker.
///
/// Invariants: `by_key` and `by_id` name the same calls; `by_account` lists each call under
/// its caller and its callee side; `waiting` lists exactly the calls in
/// [`CallState::WaitingForPeer`], under their callee.
#[derive(Debug, Default)]
pub(crate) struct Calls {
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
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Call> {
        self.by_id.get(&id)
    }

    pub(crate) fn contains(&self, key: &CallKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// Adds a call (its key must be free); returns its id.
    pub(crate) fn insert(&mut self, call: Call) -> u64 {
        debug_assert!(!self.contains(&call.key));
        self.next_id += 1;
        let id = self.next_id;
        let app = &call.key.app;
        for who in [&call.key.caller, call.callee_side()] {
            self.by_account
                .entry((app.clone(), who.to_owned()))
                .or_default()
                .insert(id);
        }
        if call.state == CallState::WaitingForPeer {
            self.waiting
                .entry((app.clone(), call.key.callee.clone()))
                .or_default()
                .push(id);
        }
        self.by_key.insert(call.key.clone(), id);
        self.by_id.insert(id, call);
        id
    }

    /// Removes a call from every index.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Call> {
        let call = self.by_id.remove(&id)?;
        self.by_key.remove(&call.key);
        for who in [&call.key.caller, call.callee_side()] {
            let k = (call.key.app.clone(), who.to_owned());
            if let Some(set) = self.by_account.get_mut(&k) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_account.remove(&k);
                }
            }
        }
        if call.state == CallState::WaitingForPeer {
            let k = (call.key.app.clone(), call.key.callee.clone());
            if let Some(v) = self.waiting.get_mut(&k) {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    self.waiting.remove(&k);
                }
            }
        }
        Some(call)
    }

    /// Starts a call ringing until `deadline` (it is no longer waiting); returns it.
    pub(crate) fn ring(&mut self, id: u64, deadline: Instant) -> Option<&Call> {
        let call = self.by_id.get_mut(&id)?;
        call.state = CallState::Ringing;
        call.deadline = Some(deadline);
        Some(call)
    }

    /// The callee accepted: the call is in progress without a deadline.
    pub(crate) fn accept(&mut self, id: u64) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.state = CallState::Accepted;
            c.deadline = None;
        }
    }

    /// Takes the invitations waiting for `callee`, oldest first (they must ring now).
    pub(crate) fn take_waiting(&mut self, app: &str, callee: &str) -> Vec<u64> {
        self.waiting
            .remove(&(app.to_owned(), callee.to_owned()))
            .unwrap_or_default()
    }

    /// The calls `account` is a side of, in the order they were placed.
    pub(crate) fn of_account(&self, app: &str, account: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .by_account
            .get(&(app.to_owned(), account.to_owned()))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    fn find(&self, app: &str, channel: &str, caller: &str, callee: &str) -> Option<u64> {
        let key = CallKey {
            app: app.to_owned(),
            channel: channel.to_owned(),
            caller: caller.to_owned(),
            callee: callee.to_owned(),
        };
        self.by_key.get(&key).copied()
    }

    /// The call a callee-side answer is about: the callee's own, or one the gateway `me`
    /// carries — the one to `dest` (the `destNum` of its `extra`), or without it the only one
    /// on `channel` from `caller`.
    pub(crate) fn incoming(
        &self,
        app: &str,
        me: &str,
        channel: &str,
        caller: &str,
        dest: Option<&str>,
    ) -> Option<u64> {
        if let Some(id) = self.find(app, channel, caller, me) {
            return Some(id);
        }
        match dest {
            Some(dest) => {
                let id = self.find(app, channel, caller, dest)?;
                (self.by_id.get(&id)?.gateway.as_deref() == Some(me)).then_some(id)
            }
            None => self.carried(app, me, channel, caller),
        }
    }

    /// The call between `me` and `peer` on `channel` in which `me` is the caller (`as_caller`)
    /// or the callee side (the callee itself, or the gateway carrying it).
    pub(crate) fn between(
        &self,
        app: &str,
        me: &str,
        channel: &str,
        peer: &str,
        as_caller: bool,
    ) -> Option<u64> {
        if as_caller {
            return self.find(app, channel, me, peer);
        }
        // A gateway names the caller; the phone number is implied when it carries one call.
        self.find(app, channel, peer, me)
            .or_else(|| self.carried(app, me, channel, peer))
    }

    /// The only call on `channel` from `caller` that the gateway `me` carries, if exactly one.
    fn carried(&self, app: &str, me: &str, channel: &str, caller: &str) -> Option<u64> {
        let mine = self.by_account.get(&(app.to_owned(), me.to_owned()))?;
        let mut carried = mine.iter().copied().filter(|id| {
            self.by_id.get(id).is_some_and(|c| {
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

    /// The account registered as `app`'s telephony gateway.
    pub(crate) fn gateway(&self, app: &str) -> Option<&str> {
        self.gateways.get(app).map(String::as_str)
    }

    pub(crate) fn register_gateway(&mut self, app: &str, account: &str) {
        self.gateways.insert(app.to_owned(), account.to_owned());
    }

    /// Forgets `account` as `app`'s gateway, if it is.
    pub(crate) fn forget_gateway(&mut self, app: &str, account: &str) {
        if self.gateway(app) == Some(account) {
            self.gateways.remove(app);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(caller: &str, callee: &str, state: CallState, gateway: Option<&str>) -> Call {
        Call {
            key: CallKey {
                app: "app".into(),
                channel: "c".into(),
                caller: caller.into(),
                callee: callee.into(),
            },
            state,
            extra: String::new(),
            deadline: None,
            gateway: gateway.map(str::to_owned),
        }
    }

    #[test]
    fn indexes_follow_every_insert_and_removal() {
        let mut t = Calls::default();
        let waiting = t.insert(call("a", "b", CallState::WaitingForPeer, None));
        let ringing = t.insert(call("a", "c", CallState::Ringing, None));
        assert_eq!(t.of_account("app", "a"), [waiting, ringing]);
        assert_eq!(t.between("app", "a", "c", "b", true), Some(waiting));
        assert_eq!(t.between("app", "b", "c", "a", false), Some(waiting));
        assert_eq!(t.between("app", "b", "c", "a", true), None);
        t.remove(waiting);
        assert!(
            t.take_waiting("app", "b").is_empty(),
            "a removed call waits no more"
        );
        assert_eq!(t.of_account("app", "b"), Vec::<u64>::new());
        assert_eq!(t.len(), 1);
        assert!(t.remove(waiting).is_none());
    }

    #[test]
    fn gateways_answer_for_their_numbers() {
        let mut t = Calls::default();
        let one = t.insert(call("a", "+1", CallState::Ringing, Some("gw")));
        assert_eq!(t.incoming("app", "gw", "c", "a", None), Some(one));
        assert_eq!(t.between("app", "gw", "c", "a", false), Some(one));
        let two = t.insert(call("a", "+2", CallState::Ringing, Some("gw")));
        assert_eq!(t.incoming("app", "gw", "c", "a", None), None, "ambiguous");
        assert_eq!(t.incoming("app", "gw", "c", "a", Some("+2")), Some(two));
        assert_eq!(t.incoming("app", "other", "c", "a", Some("+2")), None);
        assert_eq!(t.of_account("app", "gw"), [one, two]);
        t.register_gateway("app", "gw");
        t.forget_gateway("app", "x");
        assert_eq!(t.gateway("app"), Some("gw"));
        t.forget_gateway("app", "gw");
        assert_eq!(t.gateway("app"), None);
    }
}
