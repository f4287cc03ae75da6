//! The API: one method per call of the seeds, in snake_case. Each method checks its arguments
//! and hands a [`Pending`] to [`Client::submit`], the one path by which a call becomes a
//! request; what the request sends and reports lives with the request itself (`pending.rs`).

mod pending;

use std::time::{Duration, Instant};

use beckon_proto::pb;
use beckon_proto::{CallError, ErrorCode, PROTOCOL_VERSION, validate};

pub(super) use pending::Pending;

use super::calls::{CallId, Phase};
use super::session::Credentials;
use super::{Client, Status};
use crate::config::{DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S, SDK_VERSION};
use crate::event::Event;

impl Client {
    // ---- login --------------------------------------------------------------------------------

    /// `login(appId, account, token, uid, deviceID)`: `login2` with the default retry policy.
    pub fn login(
        &mut self,
        app_id: &str,
        account: &str,
        token: &str,
        device_id: &str,
        now: Instant,
    ) {
        self.login2(
            app_id,
            account,
            token,
            device_id,
            DEFAULT_RETRY_TIME_S,
            DEFAULT_RETRY_COUNT,
            now,
        );
    }

    /// `login2(appId, account, token, uid, deviceID, retry_time_in_s, retry_count)`.
    ///
    /// Ignored while logged in or logging in. Non-positive retry values take the defaults.
    #[allow(clippy::too_many_arguments)]
    pub fn login2(
        &mut self,
        app_id: &str,
        account: &str,
        token: &str,
        device_id: &str,
        retry_time_in_s: i32,
        retry_count: i32,
        now: Instant,
    ) {
        if self.status != Status::NotLoggedIn {
            self.log("login ignored: already logged in or logging in");
            return;
        }
        let checked = validate::login(&self.limits, app_id, account, token);
        if let Err(e) = checked {
            self.events.push_back(Event::LoginFailed {
                ecode: e.code.code(),
            });
            self.error("login", &e);
            return;
        }
        let positive = |v: i32, default: i32| if v > 0 { v } else { default }.unsigned_abs();
        let login = pb::Login {
            app_id: app_id.to_owned(),
            account: account.to_owned(),
            token: token.to_owned(),
            sdk_version: SDK_VERSION,
            device_id: device_id.to_owned(),
            resume: None,
            protocol_version: PROTOCOL_VERSION,
        };
        let creds = Credentials {
            login,
            retry_time: Duration::from_secs(positive(retry_time_in_s, DEFAULT_RETRY_TIME_S).into()),
            retry_count: positive(retry_count, DEFAULT_RETRY_COUNT),
        };
        self.start_login(creds, now);
    }

    /// `logout()`: ends the session; `onLogout(LOGOUT_E_USER)` follows. During a login it cancels
    /// the login (`onLoginFailed(LOGIN_E_CANCEL)`).
    pub fn logout(&mut self, now: Instant) {
        match self.status {
            Status::NotLoggedIn => self.error(
                "logout",
                &CallError::new(ErrorCode::LogoutAlreadyLogout, "not logged in"),
            ),
            Status::LoggingIn => {
                self.close_link();
                self.finish(Event::LoginFailed {
                    ecode: ErrorCode::LoginCancel.code(),
                });
            }
            Status::Reconnecting => {
                self.close_link();
                self.finish(Event::Logout {
                    ecode: ErrorCode::LogoutUser.code(),
                });
            }
            Status::LoggedIn if self.logging_out => {}
            Status::LoggedIn => {
                self.ack_now(now);
                self.submit(Ok(()), Pending::Logout, now);
                // After submitting: from now on other calls are refused as not logged in.
                self.logging_out = true;
            }
        }
    }

    // ---- users and messages -------------------------------------------------------------------

    /// `messageInstantSend(account, uid, msg, msgID)`: an empty `msg_id` gets a generated one,
    /// which is returned so the caller can match the callbacks.
    pub fn message_instant_send(
        &mut self,
        account: &str,
        msg: &str,
        msg_id: &str,
        now: Instant,
    ) -> String {
        let message_id = self.ids.resolve(msg_id);
        let checked = validate::instant_message(&self.limits, account, msg, &message_id);
        let (account, msg) = (account.to_owned(), msg.to_owned());
        let pending = Pending::InstantSend {
            account,
            msg,
            message_id: message_id.clone(),
        };
        self.submit(checked, pending, now);
        message_id
    }

    /// `queryUserStatus(account)`.
    pub fn query_user_status(&mut self, account: &str, now: Instant) {
        let checked = self.limits.account("account", account);
        let account = account.to_owned();
        self.submit(checked, Pending::QueryUserStatus { account }, now);
    }

    /// `setAttr(name, value)`: sets an attribute of the logged-in account; "" deletes it.
    pub fn set_attr(&mut self, name: &str, value: &str, now: Instant) {
        let checked = validate::user_attr_write(&self.limits, name, value);
        let (name, value) = (name.to_owned(), value.to_owned());
        self.submit(checked, Pending::SetAttr { name, value }, now);
    }

    /// `getAttr(name)`: an attribute of the logged-in account.
    pub fn get_attr(&mut self, name: &str, now: Instant) {
        let account = self.account().unwrap_or_default().to_owned();
        self.user_attr("getAttr", account, name, now);
    }

    /// `getAttrAll()`.
    pub fn get_attr_all(&mut self, now: Instant) {
        let account = self.account().unwrap_or_default().to_owned();
        self.user_attr_all("getAttrAll", account, now);
    }

    /// `getUserAttr(account, name)`.
    pub fn get_user_attr(&mut self, account: &str, name: &str, now: Instant) {
        self.user_attr("getUserAttr", account.to_owned(), name, now);
    }

    /// `getUserAttrAll(account)`.
    pub fn get_user_attr_all(&mut self, account: &str, now: Instant) {
        self.user_attr_all("getUserAttrAll", account.to_owned(), now);
    }

    fn user_attr(&mut self, call: &'static str, account: String, name: &str, now: Instant) {
        let checked = validate::user_attr_read(&self.limits, &account, name);
        let name = name.to_owned();
        let pending = Pending::GetAttr {
            call,
            account,
            name,
        };
        self.submit(checked, pending, now);
    }

    fn user_attr_all(&mut self, call: &'static str, account: String, now: Instant) {
        let checked = self.limits.account("account", &account);
        self.submit(checked, Pending::GetAttrAll { call, account }, now);
    }

    /// `invoke(name, req, callID)`.
    pub fn invoke(&mut self, name: &str, req: &str, call_id: &str, now: Instant) {
        let checked = validate::invoke(&self.limits, name, req, call_id);
        let pending = Pending::Invoke {
            name: name.to_owned(),
            req: req.to_owned(),
            call_id: call_id.to_owned(),
        };
        self.submit(checked, pending, now);
    }

    // ---- channels -----------------------------------------------------------------------------

    /// `channelJoin(channelID)`.
    pub fn channel_join(&mut self, channel: &str, now: Instant) {
        self.on_channel(channel, |channel| Pending::ChannelJoin { channel }, now);
    }

    /// `channelQueryUserIsIn(channelID, account)`.
    pub fn channel_query_user_is_in(&mut self, channel: &str, account: &str, now: Instant) {
        let checked = validate::channel_member(&self.limits, channel, account);
        let account = account.to_owned();
        let pending = |channel| Pending::ChannelQueryUserIsIn { channel, account };
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `channelSetAttr(channelID, name, value)`.
    pub fn channel_set_attr(&mut self, channel: &str, name: &str, value: &str, now: Instant) {
        let checked = validate::channel_attr_write(&self.limits, channel, name, value);
        let (name, value) = (name.to_owned(), value.to_owned());
        let pending = |channel| Pending::ChannelSetAttr {
            channel,
            name,
            value,
        };
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `channelLeave(channelID)`.
    pub fn channel_leave(&mut self, channel: &str, now: Instant) {
        self.on_channel(channel, |channel| Pending::ChannelLeave { channel }, now);
    }

    /// `channelDelAttr(channelID, name)`.
    pub fn channel_del_attr(&mut self, channel: &str, name: &str, now: Instant) {
        let checked = validate::channel_attr_delete(&self.limits, channel, name);
        let name = name.to_owned();
        self.on_channel_checked(
            channel,
            checked,
            |channel| Pending::ChannelDelAttr { channel, name },
            now,
        );
    }

    /// `channelQueryUserNum(channelID)`.
    pub fn channel_query_user_num(&mut self, channel: &str, now: Instant) {
        self.on_channel(
            channel,
            |channel| Pending::ChannelQueryUserNum { channel },
            now,
        );
    }

    /// `channelClearAttr(channelID)`.
    pub fn channel_clear_attr(&mut self, channel: &str, now: Instant) {
        self.on_channel(
            channel,
            |channel| Pending::ChannelClearAttr { channel },
            now,
        );
    }

    /// Submits the request `pending` makes of `channel`, once the channel's name passes.
    fn on_channel(&mut self, channel: &str, pending: impl FnOnce(String) -> Pending, now: Instant) {
        let checked = self.limits.channel("channelID", channel);
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// Submits the request `pending` makes of `channel`; `checked` is the outcome of the call's
    /// rule in `beckon_proto::validate`, followed by whatever this client knows (its calls).
    fn on_channel_checked(
        &mut self,
        channel: &str,
        checked: Result<(), CallError>,
        pending: impl FnOnce(String) -> Pending,
        now: Instant,
    ) {
        self.submit(checked, pending(channel.to_owned()), now);
    }

    /// `messageChannelSend(channelID, msg, msgID)`; returns the message id (generated when
    /// `msg_id` is empty).
    pub fn message_channel_send(
        &mut self,
        channel: &str,
        msg: &str,
        msg_id: &str,
        now: Instant,
    ) -> String {
        self.channel_send(channel, msg, msg_id, false, now)
    }

    /// `messageChannelSendForce(channelID, msg, msgID)`: without being a member (needs the
    /// server privilege).
    pub fn message_channel_send_force(
        &mut self,
        channel_id: &str,
        msg: &str,
        msg_id: &str,
        now: Instant,
    ) -> String {
        self.channel_send(channel_id, msg, msg_id, true, now)
    }

    fn channel_send(
        &mut self,
        channel: &str,
        msg: &str,
        msg_id: &str,
        force: bool,
        now: Instant,
    ) -> String {
        let message_id = self.ids.resolve(msg_id);
        let checked = validate::channel_message(&self.limits, channel, msg, &message_id);
        let (msg, id) = (msg.to_owned(), message_id.clone());
        let pending = |channel| Pending::ChannelSend {
            channel,
            msg,
            message_id: id,
            force,
        };
        self.on_channel_checked(channel, checked, pending, now);
        message_id
    }

    /// Channels this client is in, in join order.
    pub fn joined_channels(&self) -> &[String] {
        &self.joined
    }

    // ---- calls --------------------------------------------------------------------------------

    /// `channelInviteUser(channelID, account, uid)`: `channel_invite_user2` without `extra`.
    pub fn channel_invite_user(&mut self, channel: &str, account: &str, now: Instant) {
        self.channel_invite_user2(channel, account, "", now);
    }

    /// `channelInviteUser2(channelID, account, extra)`.
    pub fn channel_invite_user2(
        &mut self,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        self.invite("channelInviteUser2", channel, account, extra, now);
    }

    /// `channelInvitePhone(channelID, phoneNum, uid)`.
    pub fn channel_invite_phone(&mut self, channel: &str, phone_num: &str, now: Instant) {
        self.channel_invite_phone3(channel, phone_num, "", "", now);
    }

    /// `channelInvitePhone2(channelID, phoneNum, sourcesNum)`.
    pub fn channel_invite_phone2(
        &mut self,
        channel: &str,
        phone_num: &str,
        sources_num: &str,
        now: Instant,
    ) {
        self.channel_invite_phone3(channel, phone_num, sources_num, "", now);
    }

    /// `channelInvitePhone3(channelID, phoneNum, sourcesNum, extra)`: a call to a phone number
    /// through the app's telephony gateway (`_phone` and `srcNum` are added to `extra`).
    pub fn channel_invite_phone3(
        &mut self,
        channel: &str,
        phone_num: &str,
        sources_num: &str,
        extra: &str,
        now: Instant,
    ) {
        const CALL: &str = "channelInvitePhone3";
        let mut map = match self.limits.extra(extra) {
            Ok(m) => m.into_map(),
            Err(e) => {
                let pending = invite(CALL, channel, phone_num, extra);
                return self.submit(Err(e), pending, now);
            }
        };
        map.insert("_phone".to_owned(), 1.into());
        if !sources_num.is_empty() {
            map.insert("srcNum".to_owned(), sources_num.into());
        }
        let extra = serde_json::Value::Object(map).to_string();
        self.invite(CALL, channel, phone_num, &extra, now);
    }

    fn invite(
        &mut self,
        call: &'static str,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        // A call still being ended counts too: its end callback has not come yet.
        let reinvite = self.calls.phase(channel, account, true).is_some();
        let me = self.account().unwrap_or_default();
        let checked = validate::invite(&self.limits, me, channel, account, extra)
            .map(|_| ())
            .and_then(|()| {
                if reinvite {
                    let why = format!("{account} is already invited to {channel}");
                    return Err(CallError::new(ErrorCode::InviteReinvite, why));
                }
                Ok(())
            });
        let pending = |_| invite(call, channel, account, extra);
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `channelInviteAccept(channelID, account, uid, extra)`: `account` is the caller.
    pub fn channel_invite_accept(
        &mut self,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        self.answer(channel, account, extra, true, now);
    }

    /// `channelInviteRefuse(channelID, account, uid, extra)`.
    pub fn channel_invite_refuse(
        &mut self,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        self.answer(channel, account, extra, false, now);
    }

    fn answer(&mut self, channel: &str, account: &str, extra: &str, accept: bool, now: Instant) {
        let ringing = self.calls.phase(channel, account, false) == Some(Phase::Waiting);
        let checked = validate::invite_answer(&self.limits, channel, account, extra)
            .map(|_| ())
            .and_then(|()| call_exists(ringing, channel, account));
        let (account, extra) = (account.to_owned(), extra.to_owned());
        let pending = |channel| Pending::InviteAnswer {
            channel,
            account,
            extra,
            accept,
        };
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `channelInviteEnd(channelID, account, uid)`, by either side, before or after acceptance.
    /// When this client both placed and received a call with `account` on `channel`, the one
    /// it placed ends first.
    pub fn channel_invite_end(&mut self, channel: &str, account: &str, now: Instant) {
        let as_caller = self.calls.live(channel, account, true);
        let known = as_caller || self.calls.live(channel, account, false);
        let checked = validate::invite_end(&self.limits, channel, account)
            .and_then(|()| call_exists(known, channel, account));
        let account = account.to_owned();
        let pending = |channel| Pending::InviteEnd {
            channel,
            account,
            as_caller,
        };
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `channelInviteDTMF(channelID, phoneNum, dtmf)`: digits `[0-9*#]` to the other side.
    pub fn channel_invite_dtmf(&mut self, channel: &str, account: &str, dtmf: &str, now: Instant) {
        let as_caller = self.calls.live(channel, account, true);
        let known = as_caller || self.calls.live(channel, account, false);
        let checked = validate::invite_dtmf(&self.limits, channel, account, dtmf)
            .and_then(|()| call_exists(known, channel, account));
        let account = account.to_owned();
        let pending = |channel| Pending::InviteDtmf {
            channel,
            account,
            dtmf: dtmf.to_owned(),
            as_caller,
        };
        self.on_channel_checked(channel, checked, pending, now);
    }

    /// `messageDTMFSend(uid, msg, msgID)` (obsolete): DTMF to the most recent call.
    pub fn message_dtmf_send(&mut self, msg: &str, now: Instant) {
        match self.calls.last().cloned() {
            Some(call) => self.channel_invite_dtmf(&call.channel, &call.peer, msg, now),
            None => self.error(
                "messageDTMFSend",
                &CallError::new(ErrorCode::GeneralWrongParam, "there is no call"),
            ),
        }
    }

    /// Calls in progress, oldest first.
    pub fn calls(&self) -> Vec<CallId> {
        self.calls.ids()
    }
}

fn invite(call: &'static str, channel: &str, account: &str, extra: &str) -> Pending {
    Pending::Invite {
        call,
        channel: channel.to_owned(),
        account: account.to_owned(),
        extra: extra.to_owned(),
    }
}

/// `Ok`, or the `GENERAL_E_WRONG_PARAM` of a call this client does not have.
fn call_exists(exists: bool, channel: &str, account: &str) -> Result<(), CallError> {
    if exists {
        return Ok(());
    }
    let why = format!("there is no call with {account} on {channel}");
    Err(CallError::new(ErrorCode::GeneralWrongParam, why))
}
