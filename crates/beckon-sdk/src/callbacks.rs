//! The seed's `ICallBack` as a Rust trait, and the mapping from [`Event`]s to its methods.

use beckon_client::Event;

/// The application's callbacks: one method per callback of the seed's `ICallBack`, in
/// snake_case with the seed's arguments, each empty by default so an application overrides only
/// what it needs.
///
/// Callbacks run on the instance's driver task, one at a time and in the order the events
/// happened. As the seed asks, they must not block: a slow callback delays everything else the
/// instance does. They may call the instance's API methods (those never block). A callback that
/// panics is caught and logged; the instance keeps running.
///
/// Peer `uid` arguments are always 0 and `fd` arguments are always 0 (SPEC §4).
///
/// `on_channel_user_joined`, `on_channel_user_leaved` and `on_channel_user_list` keep the seed's
/// arguments, which do not name the channel (a session is in one channel by default); an
/// application that joins several channels reads the channel from the corresponding [`Event`]
/// of an [`EventStream`](crate::EventStream).
#[allow(unused_variables)]
pub trait Callbacks: Send + Sync {
    // ---- lifecycle ----------------------------------------------------------------------------

    /// `onLoginSuccess(uid, fd)`: `uid` is the server-assigned number of the account.
    fn on_login_success(&self, uid: u32, fd: i32) {}
    /// `onLoginFailed(ecode)`.
    fn on_login_failed(&self, ecode: i32) {}
    /// `onLogout(ecode)`: 101 after `logout`, 102 when reconnecting gave up, 103 when the
    /// account logged in elsewhere.
    fn on_logout(&self, ecode: i32) {}
    /// `onReconnecting(nretry)`: the connection was lost; attempt `nretry` (from 1) starts.
    fn on_reconnecting(&self, nretry: u32) {}
    /// `onReconnected(fd)`.
    fn on_reconnected(&self, fd: i32) {}
    /// `onError(name, ecode, desc)`: `name` is the seed name of the call that failed.
    fn on_error(&self, name: &str, ecode: i32, desc: &str) {}
    /// `onLog(txt)`: one line per SDK log record.
    fn on_log(&self, txt: &str) {}

    // ---- users --------------------------------------------------------------------------------

    /// `onQueryUserStatusResult(name, status)`: status "1" online, "0" offline.
    fn on_query_user_status_result(&self, name: &str, status: &str) {}
    /// `onUserAttrResult(account, name, value)`: a missing attribute reads "".
    fn on_user_attr_result(&self, account: &str, name: &str, value: &str) {}
    /// `onUserAttrAllResult(account, value)`: `value` is a JSON object.
    fn on_user_attr_all_result(&self, account: &str, value: &str) {}
    /// `onInvokeRet(callID, err, resp)`: `err` is "" on success, else a decimal error code.
    fn on_invoke_ret(&self, call_id: &str, err: &str, resp: &str) {}

    // ---- messages -----------------------------------------------------------------------------

    /// `onMessageSendSuccess(messageID)`.
    fn on_message_send_success(&self, message_id: &str) {}
    /// `onMessageSendError(messageID, ecode)`.
    fn on_message_send_error(&self, message_id: &str, ecode: i32) {}
    /// `onMessageInstantReceive(account, uid, msg)`.
    fn on_message_instant_receive(&self, account: &str, uid: u32, msg: &str) {}
    /// `onMessageChannelReceive(channelID, account, uid, msg)`.
    fn on_message_channel_receive(&self, channel_id: &str, account: &str, uid: u32, msg: &str) {}

    // ---- channels -----------------------------------------------------------------------------

    /// `onChannelJoined(channelID)`.
    fn on_channel_joined(&self, channel_id: &str) {}
    /// `onChannelJoinFailed(channelID, ecode)`.
    fn on_channel_join_failed(&self, channel_id: &str, ecode: i32) {}
    /// `onChannelLeaved(channelID, ecode)`.
    fn on_channel_leaved(&self, channel_id: &str, ecode: i32) {}
    /// `onChannelUserJoined(account, uid)`.
    fn on_channel_user_joined(&self, account: &str, uid: u32) {}
    /// `onChannelUserLeaved(account, uid)`.
    fn on_channel_user_leaved(&self, account: &str, uid: u32) {}
    /// `onChannelUserList(n, accounts, uids)`: `n` is `accounts.len()`.
    fn on_channel_user_list(&self, accounts: &[String], uids: &[u32]) {}
    /// `onChannelQueryUserNumResult(channelID, ecode, num)`.
    fn on_channel_query_user_num_result(&self, channel_id: &str, ecode: i32, num: i32) {}
    /// `onChannelQueryUserIsIn(channelID, account, isIn)`.
    fn on_channel_query_user_is_in(&self, channel_id: &str, account: &str, is_in: i32) {}
    /// `onChannelAttrUpdated(channelID, name, value, type)`; `kind` is the seed's `type`:
    /// "update", "del" or "clear".
    fn on_channel_attr_updated(&self, channel_id: &str, name: &str, value: &str, kind: &str) {}

    // ---- calls --------------------------------------------------------------------------------

    /// `onInviteReceived(channelID, account, uid, extra)`.
    fn on_invite_received(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteReceivedByPeer(channelID, account, uid)`.
    fn on_invite_received_by_peer(&self, channel_id: &str, account: &str, uid: u32) {}
    /// `onInviteAcceptedByPeer(channelID, account, uid, extra)`.
    fn on_invite_accepted_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteRefusedByPeer(channelID, account, uid, extra)`.
    fn on_invite_refused_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteFailed(channelID, account, uid, ecode, extra)`.
    fn on_invite_failed(&self, channel_id: &str, account: &str, uid: u32, ecode: i32, extra: &str) {
    }
    /// `onInviteEndByMyself(channelID, account, uid)`.
    fn on_invite_end_by_myself(&self, channel_id: &str, account: &str, uid: u32) {}
    /// `onInviteEndByPeer(channelID, account, uid, extra)`.
    fn on_invite_end_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteMsg(channelID, account, uid, msgType, msgData, extra)`: a DTMF message
    /// (`msg_type` "DTMF").
    fn on_invite_msg(
        &self,
        channel_id: &str,
        account: &str,
        uid: u32,
        msg_type: &str,
        msg_data: &str,
        extra: &str,
    ) {
    }
}

/// Calls the method of `cb` that corresponds to `ev`. Events this SDK version does not know
/// are ignored.
pub fn dispatch(cb: &dyn Callbacks, ev: &Event) {
    match ev {
        Event::LoginSuccess { uid, fd } => cb.on_login_success(*uid, *fd),
        Event::LoginFailed { ecode } => cb.on_login_failed(*ecode),
        Event::Logout { ecode } => cb.on_logout(*ecode),
        Event::Reconnecting { nretry } => cb.on_reconnecting(*nretry),
        Event::Reconnected { fd } => cb.on_reconnected(*fd),
        Event::Error { name, ecode, desc } => cb.on_error(name, *ecode, desc),
        Event::Log { txt } => cb.on_log(txt),
        Event::QueryUserStatusResult { name, status } => {
            cb.on_query_user_status_result(name, status)
        }
        Event::UserAttrResult {
            account,
            name,
            value,
        } => cb.on_user_attr_result(account, name, value),
        Event::UserAttrAllResult { account, value } => cb.on_user_attr_all_result(account, value),
        Event::MessageSendSuccess { message_id } => cb.on_message_send_success(message_id),
        Event::MessageSendError { message_id, ecode } => {
            cb.on_message_send_error(message_id, *ecode)
        }
        Event::MessageInstantReceive { account, uid, msg } => {
            cb.on_message_instant_receive(account, *uid, msg)
        }
        Event::InvokeRet { call_id, err, resp } => cb.on_invoke_ret(call_id, err, resp),
        Event::MessageChannelReceive {
            channel,
            account,
            uid,
            msg,
        } => cb.on_message_channel_receive(channel, account, *uid, msg),
        Event::ChannelJoined { channel } => cb.on_channel_joined(channel),
        Event::ChannelJoinFailed { channel, ecode } => cb.on_channel_join_failed(channel, *ecode),
        Event::ChannelLeaved { channel, ecode } => cb.on_channel_leaved(channel, *ecode),
        Event::ChannelUserJoined { account, uid, .. } => cb.on_channel_user_joined(account, *uid),
        Event::ChannelUserLeaved { account, uid, .. } => cb.on_channel_user_leaved(account, *uid),
        Event::ChannelUserList { accounts, uids, .. } => cb.on_channel_user_list(accounts, uids),
        Event::ChannelQueryUserNumResult {
            channel,
            ecode,
            num,
        } => cb.on_channel_query_user_num_result(channel, *ecode, *num),
        Event::ChannelQueryUserIsIn {
            channel,
            account,
            is_in,
        } => cb.on_channel_query_user_is_in(channel, account, *is_in),
        Event::ChannelAttrUpdated {
            channel,
            name,
            value,
            kind,
        } => cb.on_channel_attr_updated(channel, name, value, kind),
        Event::InviteReceived {
            channel,
            account,
            uid,
            extra,
        } => cb.on_invite_received(channel, account, *uid, extra),
        Event::InviteReceivedByPeer {
            channel,
            account,
            uid,
        } => cb.on_invite_received_by_peer(channel, account, *uid),
        Event::InviteAcceptedByPeer {
            channel,
            account,
            uid,
            extra,
        } => cb.on_invite_accepted_by_peer(channel, account, *uid, extra),
        Event::InviteRefusedByPeer {
            channel,
            account,
            uid,
            extra,
        } => cb.on_invite_refused_by_peer(channel, account, *uid, extra),
        Event::InviteFailed {
            channel,
            account,
            uid,
            ecode,
            extra,
        } => cb.on_invite_failed(channel, account, *uid, *ecode, extra),
        Event::InviteEndByPeer {
            channel,
            account,
            uid,
            extra,
        } => cb.on_invite_end_by_peer(channel, account, *uid, extra),
        Event::InviteEndByMyself {
            channel,
            account,
            uid,
        } => cb.on_invite_end_by_myself(channel, account, *uid),
        Event::InviteMsg {
            channel,
            account,
            uid,
            msg_type,
            msg_data,
            extra,
        } => cb.on_invite_msg(channel, account, *uid, msg_type, msg_data, extra),
        // `Event` is non-exhaustive: events of later client versions wait for their mapping.
        _ => {}
    }
}
