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
/// The channel (`on_channel_*`, `on_message_channel_receive`) and call (`on_invite_*`)
/// callbacks are declared so applications can implement the whole interface today, but
/// **are not emitted yet**: this version of the SDK has no channel or call methods. They will be
/// wired when those arrive.
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
    /// `onMessageChannelReceive(channelID, account, uid, msg)`. Not emitted yet.
    fn on_message_channel_receive(&self, channel_id: &str, account: &str, uid: u32, msg: &str) {}

    // ---- channels (not emitted yet) -----------------------------------------------------------

    /// `onChannelJoined(channelID)`. Not emitted yet.
    fn on_channel_joined(&self, channel_id: &str) {}
    /// `onChannelJoinFailed(channelID, ecode)`. Not emitted yet.
    fn on_channel_join_failed(&self, channel_id: &str, ecode: i32) {}
    /// `onChannelLeaved(channelID, ecode)`. Not emitted yet.
    fn on_channel_leaved(&self, channel_id: &str, ecode: i32) {}
    /// `onChannelUserJoined(account, uid)`. Not emitted yet.
    fn on_channel_user_joined(&self, account: &str, uid: u32) {}
    /// `onChannelUserLeaved(account, uid)`. Not emitted yet.
    fn on_channel_user_leaved(&self, account: &str, uid: u32) {}
    /// `onChannelUserList(n, accounts, uids)`: `n` is `accounts.len()`. Not emitted yet.
    fn on_channel_user_list(&self, accounts: &[String], uids: &[u32]) {}
    /// `onChannelQueryUserNumResult(channelID, ecode, num)`. Not emitted yet.
    fn on_channel_query_user_num_result(&self, channel_id: &str, ecode: i32, num: i32) {}
    /// `onChannelQueryUserIsIn(channelID, account, isIn)`. Not emitted yet.
    fn on_channel_query_user_is_in(&self, channel_id: &str, account: &str, is_in: i32) {}
    /// `onChannelAttrUpdated(channelID, name, value, type)`; `kind` is the seed's `type`:
    /// "update", "del" or "clear". Not emitted yet.
    fn on_channel_attr_updated(&self, channel_id: &str, name: &str, value: &str, kind: &str) {}

    // ---- calls (not emitted yet) --------------------------------------------------------------

    /// `onInviteReceived(channelID, account, uid, extra)`. Not emitted yet.
    fn on_invite_received(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteReceivedByPeer(channelID, account, uid)`. Not emitted yet.
    fn on_invite_received_by_peer(&self, channel_id: &str, account: &str, uid: u32) {}
    /// `onInviteAcceptedByPeer(channelID, account, uid, extra)`. Not emitted yet.
    fn on_invite_accepted_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteRefusedByPeer(channelID, account, uid, extra)`. Not emitted yet.
    fn on_invite_refused_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteFailed(channelID, account, uid, ecode, extra)`. Not emitted yet.
    fn on_invite_failed(&self, channel_id: &str, account: &str, uid: u32, ecode: i32, extra: &str) {
    }
    /// `onInviteEndByMyself(channelID, account, uid)`. Not emitted yet.
    fn on_invite_end_by_myself(&self, channel_id: &str, account: &str, uid: u32) {}
    /// `onInviteEndByPeer(channelID, account, uid, extra)`. Not emitted yet.
    fn on_invite_end_by_peer(&self, channel_id: &str, account: &str, uid: u32, extra: &str) {}
    /// `onInviteMsg(channelID, account, uid, msgType, msgData, extra)`: a DTMF message
    /// (`msg_type` "DTMF"). Not emitted yet.
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
        // `Event` is non-exhaustive: events of later client versions wait for their mapping.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
    }

    impl Callbacks for Recorder {
        fn on_login_success(&self, uid: u32, fd: i32) {
            self.push(format!("login_success {uid} {fd}"));
        }
        fn on_error(&self, name: &str, ecode: i32, desc: &str) {
            self.push(format!("error {name} {ecode} {desc}"));
        }
        fn on_message_instant_receive(&self, account: &str, uid: u32, msg: &str) {
            self.push(format!("receive {account} {uid} {msg}"));
        }
        fn on_invoke_ret(&self, call_id: &str, err: &str, resp: &str) {
            self.push(format!("invoke {call_id} {err} {resp}"));
        }
    }

    #[test]
    fn events_reach_their_callback_and_defaults_do_nothing() {
        let r = Recorder::default();
        for ev in [
            Event::LoginSuccess { uid: 7, fd: 0 },
            Event::Logout { ecode: 101 },
            Event::Error {
                name: "login".into(),
                ecode: 1004,
                desc: "bad".into(),
            },
            Event::MessageInstantReceive {
                account: "bob".into(),
                uid: 0,
                msg: "hi".into(),
            },
            Event::InvokeRet {
                call_id: "c".into(),
                err: String::new(),
                resp: "{}".into(),
            },
        ] {
            dispatch(&r, &ev);
        }
        assert_eq!(
            *r.0.lock().unwrap(),
            [
                "login_success 7 0",
                "error login 1004 bad",
                "receive bob 0 hi",
                "invoke c  {}"
            ]
        );
    }
}
