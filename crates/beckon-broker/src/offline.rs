//! The broker's ledger of what sits in the offline store: one entry per stored p2p message, so
//! that the broker can hold each sender and each app to its quota (SPEC §6 bounds a recipient's
//! queue; this bounds what one sender, and one app, can put there) and can take messages out of
//! the store when their TTL runs out, whether or not their recipient ever logs in.
//!
//! The ledger sits beside the [`Store`](crate::Store), not inside it: the broker records every
//! message it accepts for an account that has no session when it writes the message's record
//! (`PutMessage`), and forgets it when it deletes that record (acknowledged, expired) or the
//! store refuses it, keyed by the record's position. Messages accepted for a session stay out
//! of it (the session's bound holds them). It knows what was stored while this broker ran;
//! messages a durable store kept across a restart are bounded by their recipients' queues and
//! leave the store when delivered or read past their TTL.

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

/// Every stored message the broker counts, by the position of its record.
#[derive(Debug, Default)]
pub(crate) struct OfflineLedger {
    /// Keyed by positions the broker hands out: a fast hash is safe.
    entries: FxHashMap<u64, Entry>,
    /// (expiry, position); entries for messages already deleted are skipped when popped.
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

    /// Records a message (at `position`, from `sender`, costing `cost`) just put in the store
    /// for `recipient`; it leaves the store at `expires`.
    pub(crate) fn record(
        &mut self,
        app: &str,
        recipient: &str,
        sender: &str,
        position: u64,
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
        if let Some(old) = self.entries.insert(position, entry) {
            // The same message recorded twice (it never is): count it once.
            self.release(old);
        }
        self.expiry.push(Reverse((expires, position)));
    }

    /// The record at `position` left the store (or was never kept): it no longer counts.
    /// Nothing happens for a position the ledger does not hold.
    pub(crate) fn deleted(&mut self, position: u64) {
        if let Some(e) = self.entries.remove(&position) {
            self.release(e);
            shrink_map(&mut self.entries);
        }
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

    /// The messages whose time is up at `now`, as (app, recipient, position), taken out of
    /// the ledger: the caller deletes their records.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(Arc<str>, Arc<str>, u64)> {
        let mut due = Vec::new();
        while let Some(Reverse((at, position))) = self.expiry.peek().copied() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if (self.entries.get(&position)).is_none_or(|e| e.expires != at) {
                continue; // Deleted (or re-recorded) since.
            }
            if let Some(e) = self.entries.remove(&position) {
                due.push((e.app.clone(), e.recipient.clone(), position));
                self.release(e);
            }
        }
        shrink_map(&mut self.entries);
        shrink_heap(&mut self.expiry);
        due
    }

    /// When the next stored message's time is up.
    pub(crate) fn next_expiry(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, position))) = self.expiry.peek().copied() {
            if self.entries.get(&position).is_some_and(|e| e.expires == at) {
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
        l.deleted(1);
        l.deleted(2);
        l.deleted(2);
        assert_eq!(l.held(), (0, 0));
        assert!(l.apps.is_empty());
    }

    #[test]
    fn due_takes_out_what_expired_and_skips_what_was_deleted() {
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
        l.deleted(3);
        assert_eq!(l.next_expiry(), Some(now));
        let r1 = |p| (Arc::from("app"), Arc::from("r1"), p);
        assert_eq!(l.due(now), [r1(1), r1(2)]);
        assert!(l.due(now).is_empty());
        assert_eq!(l.held(), (1, 70));
        assert_eq!(l.next_expiry(), Some(later));
        assert_eq!(l.due(later), [(Arc::from("app"), Arc::from("r3"), 4)]);
        assert_eq!(l.next_expiry(), None);
        assert_eq!(l.held(), (0, 0));
    }
}
