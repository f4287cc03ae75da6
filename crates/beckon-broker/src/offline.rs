//! The broker's ledger of what sits in the offline store: one entry per stored p2p message, so
//! that the broker can hold each sender and each app to its quota (SPEC §6 bounds a recipient's
//! queue; this bounds what one sender, and one app, can put there) and can take messages out of
//! the store when their TTL runs out, whether or not their recipient ever logs in.
//!
//! The ledger sits beside the [`Store`](crate::Store), not inside it: the broker records every
//! message it puts in the store and forgets every message it takes out, using only the store's
//! existing operations. It knows what was stored while this broker ran; messages a durable store
//! kept across a restart are counted from the moment the broker takes them out and puts them
//! back (at their recipient's login).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use beckon_proto::{CallError, ErrorCode};

use crate::config::{OFFLINE_MESSAGE_OVERHEAD, OfflinePolicy};
use crate::shrink::{shrink_heap, shrink_map};
use crate::store::StoredMessage;

#[derive(Debug)]
struct Entry {
    app: Arc<str>,
    recipient: Arc<str>,
    sender: Arc<str>,
    cost: usize,
    expires: Instant,
}

/// What one app has stored.
#[derive(Debug, Default)]
struct AppLedger {
    bytes: usize,
    /// Messages per sender; senders with none are removed.
    senders: HashMap<Arc<str>, usize>,
}

/// Every stored message the broker knows of, by its server message id.
#[derive(Debug, Default)]
pub(crate) struct OfflineLedger {
    /// Keyed by ids the broker hands out: a fast hash is safe.
    entries: FxHashMap<u64, Entry>,
    /// (expiry, message id); entries for messages already taken out are skipped when popped.
    expiry: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Keyed by App IDs clients choose (in development mode): SipHash.
    apps: HashMap<Arc<str>, AppLedger>,
}

/// What a message costs in its app's store quota.
pub(crate) fn cost(recipient: &str, m: &StoredMessage) -> usize {
    m.msg.len() + m.sender.len() + recipient.len() + OFFLINE_MESSAGE_OVERHEAD
}

impl OfflineLedger {
    /// Whether `sender` may store a message costing `cost` in `app` under `policy`; the error
    /// says which quota is full.
    pub(crate) fn check(
        &self,
        app: &str,
        sender: &str,
        cost: usize,
        policy: &OfflinePolicy,
    ) -> Result<(), CallError> {
        let Some(a) = self.apps.get(app) else {
            return Ok(());
        };
        let mine = a.senders.get(sender).copied().unwrap_or(0);
        if mine >= policy.max_per_sender {
            return Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!(
                    "{sender} already has {mine} messages stored for offline accounts (at most \
                     {} per sender until they are delivered or expire)",
                    policy.max_per_sender
                ),
            ));
        }
        if a.bytes.saturating_add(cost) > policy.max_bytes {
            return Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!(
                    "the app's stored messages for offline accounts are at their limit ({} \
                     bytes); try again later",
                    policy.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Records a message (`id`, from `sender`, costing `cost`) just put in the store for
    /// `recipient`; it leaves the store at `expires`.
    pub(crate) fn record(
        &mut self,
        app: &str,
        recipient: &str,
        sender: &str,
        id: u64,
        cost: usize,
        expires: Instant,
    ) {
        let a = match self.apps.get_key_value(app) {
            Some((k, _)) => k.clone(),
            None => Arc::from(app),
        };
        let ledger = self.apps.entry(a.clone()).or_default();
        ledger.bytes += cost;
        let sender = match ledger.senders.get_key_value(sender) {
            Some((k, _)) => k.clone(),
            None => Arc::from(sender),
        };
        *ledger.senders.entry(sender.clone()).or_default() += 1;
        let entry = Entry {
            app: a,
            recipient: Arc::from(recipient),
            sender,
            cost,
            expires,
        };
        if let Some(old) = self.entries.insert(id, entry) {
            // The same message recorded twice (it never is): count it once.
            self.release(old);
        }
        self.expiry.push(Reverse((expires, id)));
    }

    /// The messages of `recipient` could not be taken out of the store: they are due again at
    /// `until`.
    pub(crate) fn postpone(&mut self, app: &str, recipient: &str, until: Instant) {
        for (id, e) in &mut self.entries {
            if &*e.app == app && &*e.recipient == recipient && e.expires < until {
                e.expires = until;
                self.expiry.push(Reverse((until, *id)));
            }
        }
    }

    /// The broker took these messages out of the store.
    pub(crate) fn taken(&mut self, messages: &[StoredMessage]) {
        for m in messages {
            if let Some(e) = self.entries.remove(&m.server_msg_id) {
                self.release(e);
            }
        }
        shrink_map(&mut self.entries);
    }

    fn release(&mut self, e: Entry) {
        let Some(a) = self.apps.get_mut(&e.app) else {
            return;
        };
        a.bytes -= e.cost;
        if let Some(n) = a.senders.get_mut(&e.sender) {
            *n -= 1;
            if *n == 0 {
                a.senders.remove(&e.sender);
                shrink_map(&mut a.senders);
            }
        }
        if a.senders.is_empty() {
            self.apps.remove(&e.app);
            shrink_map(&mut self.apps);
        }
    }

    /// The (app, recipient) pairs holding a message whose time is up at `now`, each once.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(Arc<str>, Arc<str>)> {
        let mut due: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        while let Some(Reverse((at, id))) = self.expiry.peek().copied() {
            if at > now {
                break;
            }
            self.expiry.pop();
            let Some(e) = self.entries.get(&id).filter(|e| e.expires == at) else {
                continue; // Taken out (or re-recorded) since.
            };
            let pair = (e.app.clone(), e.recipient.clone());
            if !due.contains(&pair) {
                due.push(pair);
            }
        }
        shrink_heap(&mut self.expiry);
        due
    }

    /// When the next stored message's time is up.
    pub(crate) fn next_expiry(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.expiry.peek().copied() {
            if self.entries.get(&id).is_some_and(|e| e.expires == at) {
                return Some(at);
            }
            self.expiry.pop();
        }
        None
    }

    /// (messages, bytes) recorded in every app.
    pub(crate) fn held(&self) -> (usize, usize) {
        let bytes = self.apps.values().map(|a| a.bytes).sum();
        (self.entries.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn msg(id: u64, sender: &str, body: &str) -> StoredMessage {
        StoredMessage {
            sender: sender.into(),
            msg: body.into(),
            server_msg_id: id,
            sent_at_ms: 0,
        }
    }

    #[test]
    fn quotas_count_what_is_stored_and_free_what_is_taken() {
        let now = Instant::now();
        let policy = OfflinePolicy {
            max_per_sender: 2,
            max_bytes: 1_000,
            ..OfflinePolicy::default()
        };
        let mut l = OfflineLedger::default();
        let (a, b) = (msg(1, "s", "hi"), msg(2, "s", "yo"));
        assert!(l.check("app", "s", cost("r", &a), &policy).is_ok());
        l.record("app", "r", "s", 1, cost("r", &a), now);
        l.record("app", "r", "s", 2, cost("r", &b), now);
        let e = l.check("app", "s", 10, &policy).unwrap_err();
        assert_eq!(e.code, ErrorCode::SendMessageOther);
        assert!(e.message.contains("at most 2 per sender"), "{}", e.message);
        assert!(l.check("app", "other", 10, &policy).is_ok());
        assert!(
            l.check("app", "other", 2_000, &policy).is_err(),
            "the app's bytes"
        );
        assert_eq!(l.held(), (2, cost("r", &a) + cost("r", &b)));
        l.taken(&[a, b]);
        assert_eq!(l.held(), (0, 0));
        assert!(l.apps.is_empty());
    }

    #[test]
    fn due_names_each_recipient_once_and_skips_what_was_taken() {
        let now = Instant::now();
        let mut l = OfflineLedger::default();
        let later = now + Duration::from_secs(10);
        for (id, recipient, at) in [
            (1, "r1", now),
            (2, "r1", now),
            (3, "r2", now),
            (4, "r3", later),
        ] {
            l.record("app", recipient, "s", id, 70, at);
        }
        l.taken(&[msg(3, "s", "")]);
        assert_eq!(l.next_expiry(), Some(now));
        let due = l.due(now);
        assert_eq!(due, [(Arc::from("app"), Arc::from("r1"))]);
        assert!(l.due(now).is_empty());
        assert_eq!(l.next_expiry(), Some(later));
        // A recipient whose store could not be read is due again later.
        let retry = later + Duration::from_secs(1);
        l.postpone("app", "r1", retry);
        assert_eq!(l.due(later), [(Arc::from("app"), Arc::from("r3"))]);
        assert_eq!(l.next_expiry(), Some(retry));
    }
}
