//! Users (SPEC §6): presence queries, user attributes, and p2p messages (kept in the store
//! until their recipient acknowledges them).

use std::time::{Duration, Instant};

use beckon_proto::pb;
use beckon_proto::{CallResult, validate};

use super::storage::{Then, Via};
use super::{Broker, Caller, TimerKey};
use crate::SessionId;
use crate::frame::BodyField;
use crate::store::{Store, StoreOp, StoredMessage};

impl<S: Store> Broker<S> {
    /// `queryUserStatus(account)`: whether the account is online; `None` when the cluster
    /// answers it (an account without a session on this node, in cluster mode).
    pub(super) fn user_status(
        &mut self,
        me: &Caller,
        account: &str,
        via: Via,
    ) -> CallResult<Option<bool>> {
        me.app.limits.account("account", account)?;
        if self.cluster_status(me, account, via)? {
            return Ok(None);
        }
        Ok(Some(self.is_online(&me.app.app_id, account)))
    }

    /// `setAttr(name, value)` on the caller's own attributes; an empty value deletes. Answered
    /// once the write is stored.
    pub(super) fn set_user_attr(
        &mut self,
        me: &Caller,
        name: &str,
        value: &str,
        via: Via,
    ) -> CallResult {
        validate::user_attr_write(&me.app.limits, name, value)?;
        self.store_attr(me, name, value, via);
        Ok(())
    }

    /// `getUserAttr(account, name)`: the value, "" when it is not set; answered from the store.
    pub(super) fn user_attr(
        &mut self,
        me: &Caller,
        account: &str,
        name: &str,
        via: Via,
    ) -> CallResult {
        validate::user_attr_read(&me.app.limits, account, name)?;
        self.read_attrs(me, account, Some(name), via);
        Ok(())
    }

    /// `getUserAttrAll(account)`: every attribute, sorted by name; answered from the store.
    pub(super) fn user_attrs(&mut self, me: &Caller, account: &str, via: Via) -> CallResult {
        me.app.limits.account("account", account)?;
        self.read_attrs(me, account, None, via);
        Ok(())
    }

    /// `messageInstantSend`: accepted into the store (write-ahead) and handed to the
    /// recipient's session, or kept for it; answered once stored.
    pub(super) fn send_instant(&mut self, me: &Caller, m: pb::SendInstantMessage) -> CallResult {
        self.send_instant_held(me, m).map(|_| ())
    }

    /// As [`send_instant`](Self::send_instant); `Ok(true)` when the message waits for the
    /// cluster to say where its recipient is.
    pub(super) fn send_instant_held(
        &mut self,
        me: &Caller,
        m: pb::SendInstantMessage,
    ) -> CallResult<bool> {
        validate::instant_message(&me.app.limits, &m.account, &m.msg, &m.msg_id)?;
        let message = StoredMessage {
            sender: String::from(&*me.account),
            msg: m.msg,
            // Set from the message's position once it is accepted.
            server_msg_id: 0,
            sent_at_ms: self.unix_ms(self.now),
        };
        if self.cluster_holds_message(me, &m.account, &message)? {
            return Ok(true); // Sent once the cluster says where the recipient is.
        }
        self.accept_message(me, m.account, message, false)?;
        Ok(false)
    }

    /// Hands a p2p message to a session; its record stays in the store until acknowledged.
    pub(super) fn deliver_instant(
        &mut self,
        target: SessionId,
        position: u64,
        m: StoredMessage,
        offline: bool,
    ) {
        let body = pb::InstantMessage {
            sender: m.sender,
            msg: m.msg,
            server_msg_id: m.server_msg_id,
            sent_at_ms: m.sent_at_ms,
            offline,
        };
        self.emit(target, BodyField::InstantMessage, &body, Some(position));
    }

    /// The record at `position` leaves the store (acknowledged, or past its TTL), and stops
    /// counting against its sender's and its app's quotas.
    pub(super) fn delete_message(&mut self, app: &str, account: &str, position: u64) {
        self.offline.deleted(position);
        let delete = StoreOp::DeleteMessage {
            app: app.to_owned(),
            account: account.to_owned(),
            position,
        };
        self.store_op(delete, Then::Nothing);
    }

    // ---- the offline ledger -----------------------------------------------------------------

    /// The broker wrote the record of a message for an account without a session at
    /// `position`: the ledger counts it against its sender and its app until the record is
    /// deleted, and the expiry timer is armed for it.
    pub(super) fn offline_stored(
        &mut self,
        app: &str,
        account: &str,
        position: u64,
        m: &StoredMessage,
        cost: usize,
    ) {
        let expires_ms = m
            .sent_at_ms
            .saturating_add(self.offline_ttl_ms(app))
            .saturating_add(1);
        let after_epoch = Duration::from_millis(expires_ms.saturating_sub(self.epoch_unix_ms));
        // A TTL too long for the clock to express is a century: longer than any process runs.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let expires = (self.epoch.checked_add(after_epoch.min(century))).unwrap_or(self.now);
        (self.offline).record(app, account, &m.sender, position, cost, expires);
        self.arm_offline_expiry();
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

    /// Stored messages whose TTL ran out leave the store, whether or not their recipient ever
    /// logs in: their records are deleted (a session that was handed one keeps it until it
    /// acknowledges it).
    pub(super) fn offline_expiry_due(&mut self, now: Instant) {
        if self.offline_timer.is_some_and(|at| at > now) {
            return; // An earlier entry, superseded; the later one is armed too.
        }
        self.offline_timer = None;
        for (app, account, position) in self.offline.due(now) {
            self.stats.offline_expired += 1;
            self.delete_message(&app, &account, position);
        }
        self.arm_offline_expiry();
    }
}
