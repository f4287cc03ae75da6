//! The calls in progress (SPEC §8) and the telephony gateways: a table with the indexes that
//! keep every lookup off a full scan. Plain state with its own invariants; the broker decides
//! who hears about a change.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::Instant;

use crate::shrink::shrink_map;

/// Counts one down under `key`, removing the entry at zero.
fn decrement<K: Eq + Hash>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
            shrink_map(counts);
        }
    }
}

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
    /// In cluster mode, for an invitation waiting for a callee that is on no node: when the
    /// wait ends (`deadline` is then the next time the cluster is asked again).
    pub(crate) cluster_wait: Option<Instant>,
    /// In cluster mode, for a ringing invitation whose callee is on another node: when it
    /// times out (`deadline` is then the next check that the callee's node still has it).
    pub(crate) ring_until: Option<Instant>,
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
/// [`CallState::WaitingForPeer`], under their callee; `placed` counts each call under its
/// (app, caller) and `per_app` under its app, without zero entries; `extra_bytes` is the sum of
/// the calls' `extra` lengths.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    next_id: u64,
    by_id: HashMap<u64, Call>,
    by_key: HashMap<CallKey, u64>,
    placed: HashMap<(String, String), usize>,
    per_app: HashMap<String, usize>,
    extra_bytes: usize,
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

    /// Calls in progress that `caller` placed in `app`.
    pub(crate) fn placed_by(&self, app: &str, caller: &str) -> usize {
        let key = (app.to_owned(), caller.to_owned());
        self.placed.get(&key).copied().unwrap_or(0)
    }

    /// Calls in progress in `app`.
    pub(crate) fn in_app(&self, app: &str) -> usize {
        self.per_app.get(app).copied().unwrap_or(0)
    }

    /// (calls, bytes of `extra` kept).
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.by_id.len(), self.extra_bytes)
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
        *self
            .placed
            .entry((app.clone(), call.key.caller.clone()))
            .or_default() += 1;
        *self.per_app.entry(app.clone()).or_default() += 1;
        self.extra_bytes += call.extra.len();
        self.by_key.insert(call.key.clone(), id);
        self.by_id.insert(id, call);
        id
    }

    /// Removes a call from every index.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Call> {
        let call = self.by_id.remove(&id)?;
        self.by_key.remove(&call.key);
        self.extra_bytes -= call.extra.len();
        let app = &call.key.app;
        decrement(&mut self.placed, (app.clone(), call.key.caller.clone()));
        decrement(&mut self.per_app, app.clone());
        shrink_map(&mut self.by_id);
        shrink_map(&mut self.by_key);
        for who in [&call.key.caller, call.callee_side()] {
            let k = (call.key.app.clone(), who.to_owned());
            if let Some(set) = self.by_account.get_mut(&k) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_account.remove(&k);
                    shrink_map(&mut self.by_account);
                }
            }
        }
        if call.state == CallState::WaitingForPeer {
            let k = (call.key.app.clone(), call.key.callee.clone());
            if let Some(v) = self.waiting.get_mut(&k) {
                v.retain(|x| *x != id);
                if v.is_empty() {
                    self.waiting.remove(&k);
                    shrink_map(&mut self.waiting);
                }
            }
        }
        Some(call)
    }

    /// Starts a call ringing until `deadline` (it is no longer waiting); returns it with its
    /// `extra`, which the call no longer keeps (the invitation carries it to the callee).
    pub(crate) fn ring(&mut self, id: u64, deadline: Instant) -> Option<(&Call, String)> {
        let call = self.by_id.get_mut(&id)?;
        call.state = CallState::Ringing;
        call.deadline = Some(deadline);
        call.cluster_wait = None;
        call.ring_until = None;
        let extra = std::mem::take(&mut call.extra);
        self.extra_bytes -= extra.len();
        Some((call, extra))
    }

    /// The callee accepted: the call is in progress without a deadline.
    pub(crate) fn accept(&mut self, id: u64) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.state = CallState::Accepted;
            c.deadline = None;
            c.ring_until = None;
        }
    }

    /// The call with this key, if any.
    pub(crate) fn id(&self, key: &CallKey) -> Option<u64> {
        self.by_key.get(key).copied()
    }

    /// Sets when a ringing invitation to another node times out (see `Call::ring_until`).
    pub(crate) fn set_ring_until(&mut self, id: u64, until: Option<Instant>) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.ring_until = until;
        }
    }

    /// Sets a call's deadline.
    pub(crate) fn set_deadline(&mut self, id: u64, deadline: Option<Instant>) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.deadline = deadline;
        }
    }

    /// A call not delivered yet (its `extra` still held) starts waiting for its callee.
    pub(crate) fn wait(&mut self, id: u64, deadline: Instant, until: Instant) {
        let Some(c) = self.by_id.get_mut(&id) else {
            return;
        };
        if c.state != CallState::WaitingForPeer {
            c.state = CallState::WaitingForPeer;
            self.waiting
                .entry((c.key.app.clone(), c.key.callee.clone()))
                .or_default()
                .push(id);
        }
        c.deadline = Some(deadline);
        c.cluster_wait = Some(until);
    }

    /// A waiting call leaves the waiting list (it rings next).
    pub(crate) fn unwait(&mut self, id: u64) {
        let Some(c) = self.by_id.get_mut(&id) else {
            return;
        };
        if c.state != CallState::WaitingForPeer {
            return;
        }
        c.state = CallState::Ringing;
        c.cluster_wait = None;
        let k = (c.key.app.clone(), c.key.callee.clone());
        if let Some(v) = self.waiting.get_mut(&k) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.waiting.remove(&k);
                shrink_map(&mut self.waiting);
            }
        }
    }

    /// Takes the invitations waiting for `callee`, oldest first (they must ring now).
    pub(crate) fn take_waiting(&mut self, app: &str, callee: &str) -> Vec<u64> {
        let taken = self.waiting.remove(&(app.to_owned(), callee.to_owned()));
        shrink_map(&mut self.waiting);
        taken.unwrap_or_default()
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
            cluster_wait: None,
            ring_until: None,
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
        assert_eq!((t.placed_by("app", "a"), t.in_app("app")), (1, 1));
        t.remove(ringing);
        assert_eq!((t.placed_by("app", "a"), t.in_app("app")), (0, 0));
        assert!(t.placed.is_empty() && t.per_app.is_empty());
    }

    #[test]
    fn extra_is_kept_until_the_call_rings() {
        let mut t = Calls::default();
        let mut c = call("a", "b", CallState::WaitingForPeer, None);
        c.extra = "{\"k\":1}".into();
        let id = t.insert(c);
        assert_eq!(t.held(), (1, 7));
        let (_, extra) = t.ring(id, Instant::now()).unwrap();
        assert_eq!(extra, "{\"k\":1}");
        assert_eq!(t.held(), (1, 0));
        t.remove(id);
        assert_eq!(t.held(), (0, 0));
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
