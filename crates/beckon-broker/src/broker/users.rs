//! Users (SPEC §6): presence queries, user attributes, and p2p messages with the offline store.

use std::time::{Duration, Instant};

use beckon_proto::pb;
use beckon_proto::{CallError, CallResult, ErrorCode, validate};

use super::{Broker, Caller, TimerKey};
use crate::SessionId;
use crate::frame::BodyField;
use crate::offline;
use crate::store::{PushOutcome, Store, StoredMessage};

/// How long a recipient whose expired messages could not be taken out of a failing store waits
/// before the next try.
const PURGE_RETRY: Duration = Duration::from_secs(60);

impl<S: Store> Broker<S> {
    /// `queryUserStatus(account)`: whether the account is online.
    pub(super) fn user_status(&self, me: &Caller, account: &str) -> CallResult<bool> {
        me.app.limits.account("account", account)?;
        Ok(self.is_online(&me.app.app_id, account))
    }

    /// `setAttr(name, value)` on the caller's own attributes; an empty value deletes.
    pub(super) fn set_user_attr(&mut self, me: &Caller, name: &str, value: &str) -> CallResult {
        let app = &me.app;
        validate::user_attr_write(&app.limits, name, value)?;
        let (id, account) = (&app.app_id, &*me.account);
        let result = if value.is_empty() {
            self.store.set_user_attr(id, account, name, None)
        } else {
            let full = self
                .store
                .user_attr(id, account, name)
                .and_then(|v| match v {
                    Some(_) => Ok(false),
                    None => Ok(self.store.user_attr_count(id, account)? >= app.max_user_attrs),
                });
            match full {
                Ok(true) => {
                    return Err(CallError::failed(format!(
                        "an account may hold at most {} attributes",
                        app.max_user_attrs
                    )));
                }
                Ok(false) => self.store.set_user_attr(id, account, name, Some(value)),
                Err(e) => Err(e),
            }
        };
        result.map_err(|e| self.store_failed(e))
    }

    /// `getUserAttr(account, name)`: the value, "" when it is not set.
    pub(super) fn user_attr(
        &mut self,
        me: &Caller,
        account: &str,
        name: &str,
    ) -> CallResult<String> {
        validate::user_attr_read(&me.app.limits, account, name)?;
        let value = self.store.user_attr(&me.app.app_id, account, name);
        value
            .map(Option::unwrap_or_default)
            .map_err(|e| self.store_failed(e))
    }

    /// `getUserAttrAll(account)`: every attribute, sorted by name.
    pub(super) fn user_attrs(
        &mut self,
        me: &Caller,
        account: &str,
    ) -> CallResult<Vec<(String, String)>> {
        me.app.limits.account("account", account)?;
        let attrs = self.store.user_attrs(&me.app.app_id, account);
        let attrs = attrs.map_err(|e| self.store_failed(e))?;
        // As the JSON object will spell them; a server configured for more attributes than one
        // answer carries refuses rather than ending the session.
        let json = |s: &str| {
            s.len()
                + s.bytes()
                    .filter(|b| *b < 0x20 || b"\"\\".contains(b))
                    .count()
                    * 5
        };
        let bytes: usize = attrs
            .iter()
            .map(|(k, v)| json(k) + json(v) + 6)
            .sum::<usize>()
            + 2;
        if bytes > self.config.max_event_bytes {
            return Err(CallError::failed(format!(
                "the attributes of {account} take {bytes} bytes, more than one answer carries \
                 ({} bytes); read them one by one",
                self.config.max_event_bytes
            )));
        }
        Ok(attrs)
    }

    /// `messageInstantSend`: into the recipient's session, or the offline store.
    pub(super) fn send_instant(&mut self, me: &Caller, m: pb::SendInstantMessage) -> CallResult {
        let app = &me.app;
        validate::instant_message(&app.limits, &m.account, &m.msg, &m.msg_id)?;
        let stored = StoredMessage {
            sender: me.account.to_string(),
            msg: m.msg,
            server_msg_id: self.message_id(),
            sent_at_ms: self.unix_ms(self.now),
        };
        // A session still working through a stored backlog gets new messages behind it.
        let target = self
            .session_of(&app.app_id, &m.account)
            .filter(|t| self.sessions.get(t).is_some_and(|s| !s.backlog));
        if let Some(target) = target {
            self.deliver_instant(target, stored, false);
            self.stats.messages_delivered += 1;
            return Ok(());
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
        let cost = offline::cost(&m.account, &stored);
        (self.offline).check(&app.app_id, &me.account, cost, &app.offline)?;
        let limit = Some(app.offline.max_per_account);
        let record = (stored.server_msg_id, stored.sent_at_ms);
        match self
            .store
            .push_offline(&app.app_id, &m.account, stored, limit)
        {
            Ok(PushOutcome::Stored) => {
                self.stats.messages_stored += 1;
                let (id, sent_at_ms) = record;
                let sender = (&*me.account, id, sent_at_ms);
                self.offline_stored(&app.app_id, &m.account, sender, cost);
                Ok(())
            }
            Ok(PushOutcome::Full) => Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!(
                    "{} is offline and already has {} stored messages",
                    m.account, app.offline.max_per_account
                ),
            )),
            Err(e) => Err(self.store_failed(e)),
        }
    }

    pub(super) fn deliver_instant(&mut self, target: SessionId, m: StoredMessage, offline: bool) {
        let body = pb::InstantMessage {
            sender: m.sender.clone(),
            msg: m.msg.clone(),
            server_msg_id: m.server_msg_id,
            sent_at_ms: m.sent_at_ms,
            offline,
        };
        self.emit(target, BodyField::InstantMessage, &body, Some(m));
    }

    /// Puts a message back in the store (in order, ignoring the per-account cap: it was
    /// accepted already).
    pub(super) fn requeue(&mut self, app: &str, account: &str, m: StoredMessage) {
        let (id, sender, sent_at_ms) = (m.server_msg_id, m.sender.clone(), m.sent_at_ms);
        let cost = offline::cost(account, &m);
        match self.store.push_offline(app, account, m, None) {
            Ok(_) => self.offline_stored(app, account, (&sender, id, sent_at_ms), cost),
            Err(e) => {
                self.store_failed(e);
            }
        }
    }

    // ---- the offline ledger -----------------------------------------------------------------

    /// The broker put a message (sender, id, sent at) costing `cost` in the store for
    /// `account`: the ledger counts it, and the expiry timer is armed for it.
    fn offline_stored(&mut self, app: &str, account: &str, m: (&str, u64, u64), cost: usize) {
        let (sender, id, sent_at_ms) = m;
        let expires_ms = sent_at_ms
            .saturating_add(self.offline_ttl_ms(app))
            .saturating_add(1);
        let after_epoch = Duration::from_millis(expires_ms.saturating_sub(self.epoch_unix_ms));
        // A TTL too long for the clock to express is a century: longer than any process runs.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let expires = (self.epoch.checked_add(after_epoch.min(century))).unwrap_or(self.now);
        self.offline.record(app, account, sender, id, cost, expires);
        self.arm_offline_expiry();
    }

    /// The broker took these messages of an account out of the store.
    pub(super) fn offline_taken(&mut self, messages: &[StoredMessage]) {
        self.offline.taken(messages);
    }

    /// The app's offline TTL in milliseconds: a message sent at `t` is delivered up to
    /// `t + ttl` and leaves the store after.
    pub(super) fn offline_ttl_ms(&self, app: &str) -> u64 {
        let ttl = match self.apps.get(app) {
            Some(a) => a.config.offline.ttl,
            None => (self.config.apps.lookup(app)).map_or(Duration::ZERO, |a| a.offline.ttl),
        };
        u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn arm_offline_expiry(&mut self) {
        let next = self.offline.next_expiry();
        if let Some(at) = next
            && self.offline_timer.is_none_or(|armed| at < armed)
        {
            self.arm(at, TimerKey::OfflineExpiry);
            self.offline_timer = Some(at);
        }
    }

    /// Stored messages whose TTL ran out leave the store: each recipient holding one has its
    /// queue taken out, the expired messages dropped and the rest put back in order.
    pub(super) fn offline_expiry_due(&mut self, now: Instant) {
        if self.offline_timer.is_some_and(|at| at > now) {
            return; // An earlier entry, superseded; the later one is armed too.
        }
        self.offline_timer = None;
        let now_ms = self.unix_ms(now);
        for (app, account) in self.offline.due(now) {
            let ttl_ms = self.offline_ttl_ms(&app);
            let stored = match self.store.take_offline(&app, &account) {
                Ok(stored) => stored,
                Err(e) => {
                    self.store_failed(e);
                    self.offline.postpone(&app, &account, now + PURGE_RETRY);
                    continue;
                }
            };
            self.offline.taken(&stored);
            for m in stored {
                if m.sent_at_ms.saturating_add(ttl_ms) < now_ms {
                    self.stats.offline_expired += 1;
                } else {
                    self.requeue(&app, &account, m);
                }
            }
        }
        self.arm_offline_expiry();
    }
}
