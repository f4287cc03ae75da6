//! Users (SPEC §6): presence queries, user attributes, and p2p messages (kept in the store
//! until their recipient acknowledges them).

use beckon_proto::pb;
use beckon_proto::{CallResult, validate};

use super::storage::Via;
use super::{Broker, Caller};
use crate::SessionId;
use crate::frame::BodyField;
use crate::store::{Store, StoredMessage};

impl<S: Store> Broker<S> {
    /// `queryUserStatus(account)`: whether the account is online.
    pub(super) fn user_status(&self, me: &Caller, account: &str) -> CallResult<bool> {
        me.app.limits.account("account", account)?;
        Ok(self.is_online(&me.app.app_id, account))
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
        validate::instant_message(&me.app.limits, &m.account, &m.msg, &m.msg_id)?;
        let message = StoredMessage {
            sender: me.account.to_string(),
            msg: m.msg,
            server_msg_id: self.message_id(),
            sent_at_ms: self.unix_ms(self.now),
        };
        self.accept_message(me, m.account, message)
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
}
