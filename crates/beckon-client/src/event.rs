//! What the client reports to the application: one variant per callback of the seeds.

/// An application-visible event, named after the seed's callback (`onLoginSuccess` →
/// [`Event::LoginSuccess`]). Arguments keep the seeds' order and meaning; `uid` arguments of
/// peers are always 0 (SPEC §4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `onLoginSuccess(uid, fd)`; `fd` is always 0.
    LoginSuccess { uid: u32, fd: i32 },
    /// `onLoginFailed(ecode)`.
    LoginFailed { ecode: i32 },
    /// `onLogout(ecode)`.
    Logout { ecode: i32 },
    /// `onReconnecting(nretry)`, counting attempts from 1.
    Reconnecting { nretry: u32 },
    /// `onReconnected(fd)`; `fd` is always 0.
    Reconnected { fd: i32 },
    /// `onError(name, ecode, desc)`: `name` is the seed name of the call that failed.
    Error {
        name: String,
        ecode: i32,
        desc: String,
    },
    /// `onLog(txt)`.
    Log { txt: String },
    /// `onQueryUserStatusResult(name, status)` with status "1" online or "0" offline.
    QueryUserStatusResult { name: String, status: String },
    /// `onUserAttrResult(account, name, value)`; a missing attribute reads "".
    UserAttrResult {
        account: String,
        name: String,
        value: String,
    },
    /// `onUserAttrAllResult(account, value)`: `value` is a JSON object.
    UserAttrAllResult { account: String, value: String },
    /// `onMessageSendSuccess(messageID)`.
    MessageSendSuccess { message_id: String },
    /// `onMessageSendError(messageID, ecode)`.
    MessageSendError { message_id: String, ecode: i32 },
    /// `onMessageInstantReceive(account, uid, msg)`.
    MessageInstantReceive {
        account: String,
        uid: u32,
        msg: String,
    },
    /// `onInvokeRet(callID, err, resp)`: `err` is "" on success, else a decimal error code.
    InvokeRet {
        call_id: String,
        err: String,
        resp: String,
    },
    /// `onChannelJoined(channelID)`.
    ChannelJoined { channel: String },
    /// `onChannelJoinFailed(channelID, ecode)`.
    ChannelJoinFailed { channel: String, ecode: i32 },
    /// `onChannelLeaved(channelID, ecode)`: a `LEAVECHANNEL_E_*` reason.
    ChannelLeaved { channel: String, ecode: i32 },
    /// `onChannelUserJoined(account, uid)`; `channel` says which channel (the seeds leave it
    /// implicit because a session is in one channel by default).
    ChannelUserJoined {
        channel: String,
        account: String,
        uid: u32,
    },
    /// `onChannelUserLeaved(account, uid)`.
    ChannelUserLeaved {
        channel: String,
        account: String,
        uid: u32,
    },
    /// `onChannelUserList(n, accounts, uids)`: the latest 200 members, the joiner included.
    ChannelUserList {
        channel: String,
        accounts: Vec<String>,
        uids: Vec<u32>,
    },
    /// `onChannelQueryUserNumResult(channelID, ecode, num)`.
    ChannelQueryUserNumResult {
        channel: String,
        ecode: i32,
        num: i32,
    },
    /// `onChannelQueryUserIsIn(channelID, account, isIn)`.
    ChannelQueryUserIsIn {
        channel: String,
        account: String,
        is_in: i32,
    },
    /// `onChannelAttrUpdated(channelID, name, value, type)`: type is "update", "del" or
    /// "clear".
    ChannelAttrUpdated {
        channel: String,
        name: String,
        value: String,
        kind: String,
    },
    /// `onInviteReceived(channelID, account, uid, extra)`: `account` is the caller.
    InviteReceived {
        channel: String,
        account: String,
        uid: u32,
        extra: String,
    },
    /// `onInviteReceivedByPeer(channelID, account, uid)`: the callee's client has the invitation.
    InviteReceivedByPeer {
        channel: String,
        account: String,
        uid: u32,
    },
    /// `onInviteAcceptedByPeer(channelID, account, uid, extra)`.
    InviteAcceptedByPeer {
        channel: String,
        account: String,
        uid: u32,
        extra: String,
    },
    /// `onInviteRefusedByPeer(channelID, account, uid, extra)`.
    InviteRefusedByPeer {
        channel: String,
        account: String,
        uid: u32,
        extra: String,
    },
    /// `onInviteFailed(channelID, account, uid, ecode, extra)`.
    InviteFailed {
        channel: String,
        account: String,
        uid: u32,
        ecode: i32,
        extra: String,
    },
    /// `onInviteEndByPeer(channelID, account, uid, extra)`.
    InviteEndByPeer {
        channel: String,
        account: String,
        uid: u32,
        extra: String,
    },
    /// `onInviteEndByMyself(channelID, account, uid)`.
    InviteEndByMyself {
        channel: String,
        account: String,
        uid: u32,
    },
    /// `onInviteMsg(channelID, account, uid, msgType, msgData, extra)`, e.g. "DTMF".
    InviteMsg {
        channel: String,
        account: String,
        uid: u32,
        msg_type: String,
        msg_data: String,
        extra: String,
    },
    /// `onMessageChannelReceive(channelID, account, uid, msg)`.
    MessageChannelReceive {
        channel: String,
        account: String,
        uid: u32,
        msg: String,
    },
}
