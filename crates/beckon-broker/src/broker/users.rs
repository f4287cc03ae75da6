//! Users (SPEC §6): presence queries, user attributes, and p2p messages with the offline store.

use beckon_proto::pb;
use beckon_proto::{CallError, CallResult, ErrorCode, validate};

use super::{Broker, Caller};
use crate::SessionId;
use crate::frame::BodyField;
use crate::store::{PushOutcome, Store, StoredMessage};

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
        attrs.map_err(|e| self.store_failed(e))
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
        let limit = Some(app.offline.max_per_account);
        match self
            .store
            .push_offline(&app.app_id, &m.account, stored, limit)
        {
            Ok(PushOutcome::Stored) => {
                self.stats.messages_stored += 1;
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
        if let Err(e) = self.store.push_offline(app, account, m, None) {
            self.store_failed(e);
        }
    }
}
