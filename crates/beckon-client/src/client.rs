//! The client state machine.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_proto::pb::{self, client_frame, event, reply, request, server_frame};
use beckon_proto::{CallError, ErrorCode, Limits, PROTOCOL_VERSION, codec, validate};

use crate::event::Event;

/// The SDK version `getSdkVersion` reports (`1MMmmppbbb`): Beckon 0.1.0, build 0.
pub const SDK_VERSION: u32 = beckon_proto::sdk_version_number(0, 1, 0, 0);

/// Connection state as `getStatus()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    NotLoggedIn = 0,
    LoggingIn = 1,
    LoggedIn = 2,
    Reconnecting = 3,
}

/// What the client asks its driver to do with the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// Open a connection to the server, then call `handle_connected` (or `handle_disconnected`
    /// if it fails).
    Open,
    /// Flush pending transmits, then close the connection. Do not report it back.
    Close,
}

/// Tunables of the client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Seeds the generator of message ids and reconnect jitter.
    pub seed: u64,
    /// How long an event may wait before it is acknowledged.
    pub ack_delay: Duration,
    /// Acknowledge at once when this many events are unacknowledged.
    pub ack_every: u64,
    /// How long connecting plus logging in may take before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// The first reconnect after a lost connection waits a random time up to this, so the
    /// clients of a server that went away do not all come back in the same instant.
    pub first_attempt_jitter: Duration,
    /// Back-off before the second attempt; doubles per attempt, with jitter, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Server message ids remembered to drop re-deliveries.
    pub dedup_window: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            seed: 0x5EED,
            ack_delay: Duration::from_millis(20),
            ack_every: 32,
            connect_timeout: Duration::from_secs(10),
            first_attempt_jitter: Duration::from_millis(500),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            dedup_window: 4096,
        }
    }
}

/// Login defaults of the Rust and C++ SDKs (SPEC §5).
pub const DEFAULT_RETRY_TIME_S: i32 = 30;
pub const DEFAULT_RETRY_COUNT: i32 = 3;

#[derive(Clone, Debug)]
struct Credentials {
    app_id: String,
    account: String,
    token: String,
    device_id: String,
    retry_time: Duration,
    retry_count: u32,
}

#[derive(Clone, Debug)]
struct SessionInfo {
    id: u64,
    secret: Bytes,
    heartbeat: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// No connection.
    Idle,
    /// `Open` was issued; waiting for `handle_connected`.
    Connecting,
    /// The login frame was sent; waiting for the answer.
    Handshaking,
    /// Logged in on this connection.
    Ready,
}

#[derive(Clone, Debug)]
enum Pending {
    InstantSend {
        message_id: String,
    },
    QueryUserStatus {
        account: String,
    },
    SetAttr,
    GetAttr {
        account: String,
        name: String,
    },
    GetAttrAll {
        account: String,
    },
    Invoke {
        call_id: String,
    },
    Logout,
    ChannelJoin {
        channel: String,
    },
    ChannelLeave {
        channel: String,
    },
    ChannelQueryUserNum {
        channel: String,
    },
    ChannelQueryUserIsIn {
        channel: String,
        account: String,
    },
    ChannelAttr {
        what: &'static str,
    },
    ChannelSend {
        message_id: String,
        force: bool,
    },
    Invite {
        channel: String,
        account: String,
        extra: String,
    },
    InviteAnswer {
        channel: String,
        account: String,
        accept: bool,
    },
    InviteEnd {
        channel: String,
        account: String,
        as_caller: bool,
    },
    InviteDtmf,
}

/// A call as this client sees it: (channel, peer, whether we placed it).
type CallId = (String, String, bool);

/// Where a call stands, as far as this client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Invited (by us or the peer) and not answered.
    Waiting,
    Accepted,
    /// We asked to end it; the answer is on its way.
    Ending,
}

#[derive(Clone, Debug)]
struct PendingRequest {
    id: u64,
    op: request::Op,
    what: Pending,
    sent: bool,
}

/// The sans-IO client: the Signaling API's state machine without sockets or clocks.
///
/// Methods come in four kinds:
/// - API calls named after the seed's methods (`login2`, `message_instant_send`, …), which
///   queue work and never block;
/// - inputs from the driver: [`handle_connected`](Self::handle_connected),
///   [`handle_frame`](Self::handle_frame), [`handle_disconnected`](Self::handle_disconnected),
///   [`handle_timeout`](Self::handle_timeout);
/// - outputs, drained after every call in this order: [`poll_connection`](Self::poll_connection),
///   [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event), then
///   [`poll_timeout`](Self::poll_timeout) to arm the one timer;
/// - getters: [`status`](Self::status), [`uid`](Self::uid), [`account`](Self::account).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    status: Status,
    link: Link,
    creds: Option<Credentials>,
    session: Option<SessionInfo>,
    uid: u32,
    limits: Limits,
    next_request_id: u64,
    pending: VecDeque<PendingRequest>,
    last_event_seq: u64,
    acked_seq: u64,
    ack_deadline: Option<Instant>,
    last_tx: Instant,
    last_rx: Instant,
    link_deadline: Option<Instant>,
    retry_at: Option<Instant>,
    attempt: u32,
    retry_started: Option<Instant>,
    logging_out: bool,
    /// Channels joined, in join order; rejoined after a reconnect that got a fresh session.
    joined: Vec<String>,
    /// Calls in progress, mirrored from the broker's truth.
    calls: Vec<(CallId, Phase)>,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    rng: u64,
    message_counter: u64,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
    commands: VecDeque<ConnectionCommand>,
}

impl Client {
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let rng = config.seed ^ 0xD1B5_4A32_D192_ED03;
        Self {
            config,
            status: Status::NotLoggedIn,
            link: Link::Idle,
            creds: None,
            session: None,
            uid: 0,
            limits: Limits::default(),
            next_request_id: 1,
            pending: VecDeque::new(),
            last_event_seq: 0,
            acked_seq: 0,
            ack_deadline: None,
            last_tx: now,
            last_rx: now,
            link_deadline: None,
            retry_at: None,
            attempt: 0,
            retry_started: None,
            logging_out: false,
            joined: Vec::new(),
            calls: Vec::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            rng,
            message_counter: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            commands: VecDeque::new(),
        }
    }

    // ---- getters ------------------------------------------------------------------------------

    /// `getStatus()`.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The uid of the logged-in account, 0 when not logged in.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The account of the current login, if any.
    pub fn account(&self) -> Option<&str> {
        self.creds.as_ref().map(|c| c.account.as_str())
    }

    /// Requests sent or queued that have no reply yet.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    // ---- API ----------------------------------------------------------------------------------

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
        let retry_time = if retry_time_in_s > 0 {
            retry_time_in_s
        } else {
            DEFAULT_RETRY_TIME_S
        };
        let retry_count = if retry_count > 0 {
            retry_count
        } else {
            DEFAULT_RETRY_COUNT
        };
        self.creds = Some(Credentials {
            app_id: app_id.to_owned(),
            account: account.to_owned(),
            token: token.to_owned(),
            device_id: device_id.to_owned(),
            retry_time: Duration::from_secs(retry_time.unsigned_abs().into()),
            retry_count: retry_count.unsigned_abs(),
        });
        self.session = None;
        self.status = Status::LoggingIn;
        self.attempt = 1;
        self.retry_started = Some(now);
        self.open(now);
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
            Status::LoggedIn => {
                if self.logging_out {
                    return;
                }
                self.logging_out = true;
                self.ack_now(now);
                self.request(request::Op::Logout(pb::Logout {}), Pending::Logout, now);
            }
        }
    }

    /// `messageInstantSend(account, uid, msg, msgID)`: an empty `msg_id` gets a generated one,
    /// which is returned so the caller can match the callbacks.
    pub fn message_instant_send(
        &mut self,
        account: &str,
        msg: &str,
        msg_id: &str,
        now: Instant,
    ) -> String {
        let message_id = if msg_id.is_empty() {
            self.generate_message_id()
        } else {
            msg_id.to_owned()
        };
        let checked = self
            .logged_in()
            .and_then(|()| validate::instant_message(&self.limits, account, msg, &message_id));
        if let Err(e) = checked {
            self.events.push_back(Event::MessageSendError {
                message_id: message_id.clone(),
                ecode: e.code.code(),
            });
            self.error("messageInstantSend", &e);
            return message_id;
        }
        self.request(
            request::Op::SendInstantMessage(pb::SendInstantMessage {
                account: account.to_owned(),
                msg: msg.to_owned(),
                msg_id: message_id.clone(),
            }),
            Pending::InstantSend {
                message_id: message_id.clone(),
            },
            now,
        );
        message_id
    }

    /// `queryUserStatus(account)`.
    pub fn query_user_status(&mut self, account: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.account("account", account));
        if let Err(e) = checked {
            return self.error("queryUserStatus", &e);
        }
        self.request(
            request::Op::QueryUserStatus(pb::QueryUserStatus {
                account: account.to_owned(),
            }),
            Pending::QueryUserStatus {
                account: account.to_owned(),
            },
            now,
        );
    }

    /// `setAttr(name, value)`: sets an attribute of the logged-in account; "" deletes it.
    pub fn set_attr(&mut self, name: &str, value: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::user_attr_write(&self.limits, name, value));
        if let Err(e) = checked {
            return self.error("setAttr", &e);
        }
        self.request(
            request::Op::SetUserAttr(pb::SetUserAttr {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
            Pending::SetAttr,
            now,
        );
    }

    /// `getAttr(name)`: an attribute of the logged-in account.
    pub fn get_attr(&mut self, name: &str, now: Instant) {
        let account = self.account().unwrap_or_default().to_owned();
        self.user_attr("getAttr", &account, name, now);
    }

    /// `getAttrAll()`.
    pub fn get_attr_all(&mut self, now: Instant) {
        let account = self.account().unwrap_or_default().to_owned();
        self.user_attr_all("getAttrAll", &account, now);
    }

    /// `getUserAttr(account, name)`.
    pub fn get_user_attr(&mut self, account: &str, name: &str, now: Instant) {
        self.user_attr("getUserAttr", account, name, now);
    }

    /// `getUserAttrAll(account)`.
    pub fn get_user_attr_all(&mut self, account: &str, now: Instant) {
        self.user_attr_all("getUserAttrAll", account, now);
    }

    /// `invoke(name, req, callID)`.
    pub fn invoke(&mut self, name: &str, req: &str, call_id: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::invoke(&self.limits, name, req, call_id));
        if let Err(e) = checked {
            self.events.push_back(Event::InvokeRet {
                call_id: call_id.to_owned(),
                err: e.code.code().to_string(),
                resp: String::new(),
            });
            return self.error("invoke", &e);
        }
        self.request(
            request::Op::Invoke(pb::Invoke {
                name: name.to_owned(),
                req: req.to_owned(),
                call_id: call_id.to_owned(),
            }),
            Pending::Invoke {
                call_id: call_id.to_owned(),
            },
            now,
        );
    }

    /// Channels this client is in, in join order.
    pub fn joined_channels(&self) -> &[String] {
        &self.joined
    }

    /// `channelJoin(channelID)`.
    pub fn channel_join(&mut self, channel: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.channel("channelID", channel));
        if let Err(e) = checked {
            self.events.push_back(Event::ChannelJoinFailed {
                channel: channel.to_owned(),
                ecode: e.code.code(),
            });
            return self.error("channelJoin", &e);
        }
        self.request(
            request::Op::ChannelJoin(pb::ChannelJoin {
                channel: channel.to_owned(),
            }),
            Pending::ChannelJoin {
                channel: channel.to_owned(),
            },
            now,
        );
    }

    /// `channelLeave(channelID)`.
    pub fn channel_leave(&mut self, channel: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.channel("channelID", channel));
        if let Err(e) = checked {
            return self.error("channelLeave", &e);
        }
        self.request(
            request::Op::ChannelLeave(pb::ChannelLeave {
                channel: channel.to_owned(),
            }),
            Pending::ChannelLeave {
                channel: channel.to_owned(),
            },
            now,
        );
    }

    /// `channelQueryUserNum(channelID)`.
    pub fn channel_query_user_num(&mut self, channel: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.channel("channelID", channel));
        if let Err(e) = checked {
            self.events.push_back(Event::ChannelQueryUserNumResult {
                channel: channel.to_owned(),
                ecode: e.code.code(),
                num: 0,
            });
            return self.error("channelQueryUserNum", &e);
        }
        self.request(
            request::Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
                channel: channel.to_owned(),
            }),
            Pending::ChannelQueryUserNum {
                channel: channel.to_owned(),
            },
            now,
        );
    }

    /// `channelQueryUserIsIn(channelID, account)`.
    pub fn channel_query_user_is_in(&mut self, channel: &str, account: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::channel_member(&self.limits, channel, account));
        if let Err(e) = checked {
            return self.error("channelQueryUserIsIn", &e);
        }
        self.request(
            request::Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
                channel: channel.to_owned(),
                account: account.to_owned(),
            }),
            Pending::ChannelQueryUserIsIn {
                channel: channel.to_owned(),
                account: account.to_owned(),
            },
            now,
        );
    }

    /// `channelSetAttr(channelID, name, value)`.
    pub fn channel_set_attr(&mut self, channel: &str, name: &str, value: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::channel_attr_write(&self.limits, channel, name, value));
        if let Err(e) = checked {
            return self.error("channelSetAttr", &e);
        }
        self.request(
            request::Op::ChannelSetAttr(pb::ChannelSetAttr {
                channel: channel.to_owned(),
                name: name.to_owned(),
                value: value.to_owned(),
            }),
            Pending::ChannelAttr {
                what: "channelSetAttr",
            },
            now,
        );
    }

    /// `channelDelAttr(channelID, name)`.
    pub fn channel_del_attr(&mut self, channel: &str, name: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::channel_attr_delete(&self.limits, channel, name));
        if let Err(e) = checked {
            return self.error("channelDelAttr", &e);
        }
        self.request(
            request::Op::ChannelDelAttr(pb::ChannelDelAttr {
                channel: channel.to_owned(),
                name: name.to_owned(),
            }),
            Pending::ChannelAttr {
                what: "channelDelAttr",
            },
            now,
        );
    }

    /// `channelClearAttr(channelID)`.
    pub fn channel_clear_attr(&mut self, channel: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.channel("channelID", channel));
        if let Err(e) = checked {
            return self.error("channelClearAttr", &e);
        }
        self.request(
            request::Op::ChannelClearAttr(pb::ChannelClearAttr {
                channel: channel.to_owned(),
            }),
            Pending::ChannelAttr {
                what: "channelClearAttr",
            },
            now,
        );
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
        self.channel_send("messageChannelSend", channel, msg, msg_id, false, now)
    }

    /// `messageChannelSendForce(channelID, msg, msgID)`: without being a member (needs the
    /// server privilege).
    pub fn message_channel_send_force(
        &mut self,
        channel: &str,
        msg: &str,
        msg_id: &str,
        now: Instant,
    ) -> String {
        self.channel_send("messageChannelSendForce", channel, msg, msg_id, true, now)
    }

    fn channel_send(
        &mut self,
        what: &str,
        channel: &str,
        msg: &str,
        msg_id: &str,
        force: bool,
        now: Instant,
    ) -> String {
        let message_id = if msg_id.is_empty() {
            self.generate_message_id()
        } else {
            msg_id.to_owned()
        };
        let checked = self
            .logged_in()
            .and_then(|()| validate::channel_message(&self.limits, channel, msg, &message_id));
        if let Err(e) = checked {
            self.events.push_back(Event::MessageSendError {
                message_id: message_id.clone(),
                ecode: e.code.code(),
            });
            self.error(what, &e);
            return message_id;
        }
        self.request(
            request::Op::SendChannelMessage(pb::SendChannelMessage {
                channel: channel.to_owned(),
                msg: msg.to_owned(),
                msg_id: message_id.clone(),
                force,
            }),
            Pending::ChannelSend {
                message_id: message_id.clone(),
                force,
            },
            now,
        );
        message_id
    }

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
        let mut map = match self.limits.extra(extra) {
            Ok(m) => m.into_map(),
            Err(e) => {
                self.events.push_back(Event::InviteFailed {
                    channel: channel.to_owned(),
                    account: phone_num.to_owned(),
                    uid: 0,
                    ecode: e.code.code(),
                    extra: extra.to_owned(),
                });
                return self.error("channelInvitePhone3", &e);
            }
        };
        map.insert("_phone".to_owned(), 1.into());
        if !sources_num.is_empty() {
            map.insert("srcNum".to_owned(), sources_num.into());
        }
        let extra = serde_json::Value::Object(map).to_string();
        self.invite("channelInvitePhone3", channel, phone_num, &extra, now);
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

    fn invite(&mut self, what: &str, channel: &str, account: &str, extra: &str, now: Instant) {
        // A call still being ended counts too: its end callback has not come yet.
        let reinvite = self.call_state(channel, account, true).is_some();
        let checked = self
            .logged_in()
            .and_then(|()| {
                let me = self.account().unwrap_or_default();
                validate::invite(&self.limits, me, channel, account, extra).map(|_| ())
            })
            .and_then(|()| {
                if reinvite {
                    Err(CallError::new(
                        ErrorCode::InviteReinvite,
                        format!("{account} is already invited to {channel}"),
                    ))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = checked {
            self.events.push_back(Event::InviteFailed {
                channel: channel.to_owned(),
                account: account.to_owned(),
                uid: 0,
                ecode: e.code.code(),
                extra: extra.to_owned(),
            });
            return self.error(what, &e);
        }
        self.set_call(channel, account, true, Some(Phase::Waiting));
        self.request(
            request::Op::Invite(pb::Invite {
                channel: channel.to_owned(),
                account: account.to_owned(),
                extra: extra.to_owned(),
            }),
            Pending::Invite {
                channel: channel.to_owned(),
                account: account.to_owned(),
                extra: extra.to_owned(),
            },
            now,
        );
    }

    /// `channelInviteAccept(channelID, account, uid, extra)`: `account` is the caller.
    pub fn channel_invite_accept(
        &mut self,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        self.answer("channelInviteAccept", channel, account, extra, true, now);
    }

    /// `channelInviteRefuse(channelID, account, uid, extra)`.
    pub fn channel_invite_refuse(
        &mut self,
        channel: &str,
        account: &str,
        extra: &str,
        now: Instant,
    ) {
        self.answer("channelInviteRefuse", channel, account, extra, false, now);
    }

    fn answer(
        &mut self,
        what: &str,
        channel: &str,
        account: &str,
        extra: &str,
        accept: bool,
        now: Instant,
    ) {
        let ringing = self.call_state(channel, account, false) == Some(Phase::Waiting);
        let checked = self
            .logged_in()
            .and_then(|()| {
                validate::invite_answer(&self.limits, channel, account, extra).map(|_| ())
            })
            .and_then(|()| {
                if ringing {
                    Ok(())
                } else {
                    Err(no_invitation(channel, account))
                }
            });
        if let Err(e) = checked {
            return self.error(what, &e);
        }
        let m = pb::InviteAnswer {
            channel: channel.to_owned(),
            account: account.to_owned(),
            extra: extra.to_owned(),
        };
        let op = if accept {
            request::Op::InviteAccept(m)
        } else {
            request::Op::InviteRefuse(m)
        };
        self.set_call(channel, account, false, accept.then_some(Phase::Accepted));
        self.request(
            op,
            Pending::InviteAnswer {
                channel: channel.to_owned(),
                account: account.to_owned(),
                accept,
            },
            now,
        );
    }

    /// `channelInviteEnd(channelID, account, uid)`, by either side, before or after acceptance.
    /// When this client both placed and received a call with `account` on `channel`, the one
    /// it placed ends first.
    pub fn channel_invite_end(&mut self, channel: &str, account: &str, now: Instant) {
        let live = |p: Option<Phase>| p.is_some_and(|p| p != Phase::Ending);
        let as_caller = live(self.call_state(channel, account, true));
        let known = as_caller || live(self.call_state(channel, account, false));
        let checked = self
            .logged_in()
            .and_then(|()| validate::invite_end(&self.limits, channel, account))
            .and_then(|()| {
                if known {
                    Ok(())
                } else {
                    Err(no_invitation(channel, account))
                }
            });
        if let Err(e) = checked {
            return self.error("channelInviteEnd", &e);
        }
        self.set_call(channel, account, as_caller, Some(Phase::Ending));
        self.request(
            request::Op::InviteEnd(pb::InviteEnd {
                channel: channel.to_owned(),
                account: account.to_owned(),
                as_caller,
            }),
            Pending::InviteEnd {
                channel: channel.to_owned(),
                account: account.to_owned(),
                as_caller,
            },
            now,
        );
    }

    /// `channelInviteDTMF(channelID, phoneNum, dtmf)`: digits `[0-9*#]` to the other side.
    pub fn channel_invite_dtmf(&mut self, channel: &str, account: &str, dtmf: &str, now: Instant) {
        let live = |p: Option<Phase>| p.is_some_and(|p| p != Phase::Ending);
        let as_caller = live(self.call_state(channel, account, true));
        let known = as_caller || live(self.call_state(channel, account, false));
        let checked = self
            .logged_in()
            .and_then(|()| validate::invite_dtmf(&self.limits, channel, account, dtmf))
            .and_then(|()| {
                if known {
                    Ok(())
                } else {
                    Err(no_invitation(channel, account))
                }
            });
        if let Err(e) = checked {
            return self.error("channelInviteDTMF", &e);
        }
        self.request(
            request::Op::InviteDtmf(pb::InviteDtmf {
                channel: channel.to_owned(),
                account: account.to_owned(),
                dtmf: dtmf.to_owned(),
                as_caller,
            }),
            Pending::InviteDtmf,
            now,
        );
    }

    /// `messageDTMFSend(uid, msg, msgID)` (obsolete): DTMF to the most recent call.
    pub fn message_dtmf_send(&mut self, msg: &str, now: Instant) {
        match self
            .calls
            .last()
            .map(|((c, p, _), _)| (c.clone(), p.clone()))
        {
            Some((channel, peer)) => self.channel_invite_dtmf(&channel, &peer, msg, now),
            None => self.error(
                "messageDTMFSend",
                &CallError::new(ErrorCode::GeneralWrongParam, "there is no call"),
            ),
        }
    }

    /// Calls in progress as (channel, peer, placed by this client), oldest first.
    pub fn calls(&self) -> Vec<(String, String, bool)> {
        self.calls.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Where the call stands, if it exists.
    fn call_state(&self, channel: &str, peer: &str, outgoing: bool) -> Option<Phase> {
        self.calls
            .iter()
            .find(|((c, p, o), _)| c == channel && p == peer && *o == outgoing)
            .map(|(_, accepted)| *accepted)
    }

    /// Sets (`Some(phase)`) or forgets (`None`) a call.
    fn set_call(&mut self, channel: &str, peer: &str, outgoing: bool, state: Option<Phase>) {
        let pos = self
            .calls
            .iter()
            .position(|((c, p, o), _)| c == channel && p == peer && *o == outgoing);
        match (pos, state) {
            (Some(i), Some(a)) => self.calls[i].1 = a,
            (Some(i), None) => {
                self.calls.remove(i);
            }
            (None, Some(a)) => self
                .calls
                .push(((channel.to_owned(), peer.to_owned(), outgoing), a)),
            (None, None) => {}
        }
    }

    /// Ends every call locally when the session they lived in is gone.
    fn drop_calls(&mut self, code: ErrorCode) {
        for ((channel, account, outgoing), phase) in std::mem::take(&mut self.calls) {
            let ev = if phase == Phase::Ending {
                Event::InviteEndByMyself {
                    channel,
                    account,
                    uid: 0,
                }
            } else if outgoing && phase == Phase::Waiting {
                Event::InviteFailed {
                    channel,
                    account,
                    uid: 0,
                    ecode: code.code(),
                    extra: String::new(),
                }
            } else {
                Event::InviteEndByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: String::new(),
                }
            };
            self.events.push_back(ev);
        }
    }

    fn user_attr(&mut self, what: &str, account: &str, name: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| validate::user_attr_read(&self.limits, account, name));
        if let Err(e) = checked {
            return self.error(what, &e);
        }
        self.request(
            request::Op::GetUserAttr(pb::GetUserAttr {
                account: account.to_owned(),
                name: name.to_owned(),
            }),
            Pending::GetAttr {
                account: account.to_owned(),
                name: name.to_owned(),
            },
            now,
        );
    }

    fn user_attr_all(&mut self, what: &str, account: &str, now: Instant) {
        let checked = self
            .logged_in()
            .and_then(|()| self.limits.account("account", account));
        if let Err(e) = checked {
            return self.error(what, &e);
        }
        self.request(
            request::Op::GetUserAttrAll(pb::GetUserAttrAll {
                account: account.to_owned(),
            }),
            Pending::GetAttrAll {
                account: account.to_owned(),
            },
            now,
        );
    }

    // ---- driver inputs ------------------------------------------------------------------------

    /// The connection asked for by [`ConnectionCommand::Open`] is up.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.link != Link::Connecting {
            return;
        }
        let Some(creds) = &self.creds else {
            return;
        };
        let resume = self.session.as_ref().map(|s| pb::Resume {
            session_id: s.id,
            secret: s.secret.clone(),
            last_event_seq: self.last_event_seq,
        });
        let login = pb::Login {
            app_id: creds.app_id.clone(),
            account: creds.account.clone(),
            token: creds.token.clone(),
            sdk_version: SDK_VERSION,
            device_id: creds.device_id.clone(),
            resume,
            protocol_version: PROTOCOL_VERSION,
        };
        self.link = Link::Handshaking;
        self.last_rx = now;
        self.transmit(client_frame::Kind::Login(login), now);
    }

    /// The connection failed to open, or broke.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if self.link == Link::Idle {
            return;
        }
        self.link = Link::Idle;
        self.link_deadline = None;
        self.ack_deadline = None;
        self.transmits.clear();
        self.link_lost(now);
    }

    /// One whole frame from the server.
    pub fn handle_frame(&mut self, payload: &[u8], now: Instant) {
        if !matches!(self.link, Link::Handshaking | Link::Ready) {
            return;
        }
        self.last_rx = now;
        let kind = match codec::decode_server(payload) {
            Ok(k) => k,
            Err(e) => {
                self.log(&format!("dropping the connection: {e}"));
                self.close_link();
                self.link_lost(now);
                return;
            }
        };
        match kind {
            server_frame::Kind::LoginOk(ok) if self.link == Link::Handshaking => {
                self.logged_in_ok(ok, now)
            }
            server_frame::Kind::LoginFailed(f) if self.link == Link::Handshaking => {
                self.login_refused(f, now)
            }
            server_frame::Kind::Event(ev) if self.link == Link::Ready => self.handle_event(ev, now),
            server_frame::Kind::Ping(p) => {
                self.transmit(client_frame::Kind::Pong(pb::Pong { nonce: p.nonce }), now)
            }
            server_frame::Kind::Pong(_) => {}
            server_frame::Kind::Kick(k) => {
                self.log(&format!("kicked by the server: {}", k.message));
                self.close_link();
                let ecode = if k.code == 0 {
                    ErrorCode::LogoutOther.code()
                } else {
                    k.code
                };
                self.finish(Event::Logout { ecode });
            }
            server_frame::Kind::GoAway(g) => {
                self.log(&format!("server going away: {}", g.message));
                self.close_link();
                self.link_lost(now);
                if let Some(at) = self.retry_at.as_mut() {
                    *at = (*at).max(now + Duration::from_millis(g.reconnect_after_ms.into()));
                }
            }
            other => {
                self.log(&format!(
                    "dropping the connection: unexpected frame {other:?}"
                ));
                self.close_link();
                self.link_lost(now);
            }
        }
    }

    /// Runs whatever timer is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.open(now);
        }
        if self.link_deadline.is_some_and(|t| t <= now) {
            self.log("connecting took too long");
            self.close_link();
            self.link_lost(now);
        }
        if self.link == Link::Ready {
            if self.ack_deadline.is_some_and(|t| t <= now) {
                self.ack_now(now);
            }
            if let Some(hb) = self.session.as_ref().map(|s| s.heartbeat) {
                if now.saturating_duration_since(self.last_rx) >= hb * 3 {
                    self.log("no word from the server within three heartbeats");
                    self.close_link();
                    self.link_lost(now);
                } else if now.saturating_duration_since(self.last_tx) >= hb {
                    self.transmit(client_frame::Kind::Ping(pb::Ping { nonce: 0 }), now);
                }
            }
        }
    }

    // ---- outputs ------------------------------------------------------------------------------

    #[must_use]
    pub fn poll_connection(&mut self) -> Option<ConnectionCommand> {
        self.commands.pop_front()
    }

    /// The next frame payload to send (without the stream length prefix).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = [self.retry_at, self.link_deadline, self.ack_deadline]
            .into_iter()
            .flatten()
            .min();
        if self.link == Link::Ready
            && let Some(hb) = self.session.as_ref().map(|s| s.heartbeat)
        {
            let hb_at = (self.last_tx + hb).min(self.last_rx + hb * 3);
            t = Some(t.map_or(hb_at, |t| t.min(hb_at)));
        }
        t
    }

    // ---- internals ----------------------------------------------------------------------------

    fn logged_in(&self) -> Result<(), CallError> {
        match self.status {
            Status::LoggedIn | Status::Reconnecting if !self.logging_out => Ok(()),
            _ => Err(CallError::new(ErrorCode::GeneralNotLogin, "not logged in")),
        }
    }

    fn request(&mut self, op: request::Op, what: Pending, now: Instant) {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let mut p = PendingRequest {
            id,
            op,
            what,
            sent: false,
        };
        if self.link == Link::Ready {
            p.sent = true;
            self.transmit(
                client_frame::Kind::Request(pb::Request {
                    id,
                    op: Some(p.op.clone()),
                }),
                now,
            );
        }
        self.pending.push_back(p);
    }

    fn transmit(&mut self, kind: client_frame::Kind, now: Instant) {
        self.last_tx = now;
        self.transmits.push_back(codec::encode_client(kind));
    }

    fn ack_now(&mut self, now: Instant) {
        self.ack_deadline = None;
        if self.last_event_seq > self.acked_seq && self.link == Link::Ready {
            self.acked_seq = self.last_event_seq;
            self.transmit(
                client_frame::Kind::Ack(pb::Ack {
                    up_to: self.last_event_seq,
                }),
                now,
            );
        }
    }

    fn open(&mut self, now: Instant) {
        self.link = Link::Connecting;
        self.link_deadline = Some(now + self.config.connect_timeout);
        self.commands.push_back(ConnectionCommand::Open);
    }

    fn close_link(&mut self) {
        if self.link != Link::Idle {
            self.commands.push_back(ConnectionCommand::Close);
        }
        self.link = Link::Idle;
        self.link_deadline = None;
        self.ack_deadline = None;
    }

    /// The connection is gone (already marked idle): retry or give up per the login policy.
    fn link_lost(&mut self, now: Instant) {
        match self.status {
            Status::NotLoggedIn => {}
            Status::LoggedIn if self.logging_out => self.finish(Event::Logout {
                ecode: ErrorCode::LogoutUser.code(),
            }),
            Status::LoggedIn => {
                self.status = Status::Reconnecting;
                self.attempt = 1;
                self.retry_started = Some(now);
                self.events.push_back(Event::Reconnecting { nretry: 1 });
                let jitter =
                    u64::try_from(self.config.first_attempt_jitter.as_micros()).unwrap_or(0);
                let wait = if jitter == 0 {
                    0
                } else {
                    self.next_random() % jitter
                };
                self.retry_at = Some(now + Duration::from_micros(wait));
            }
            Status::LoggingIn | Status::Reconnecting => {
                let Some(creds) = &self.creds else {
                    return;
                };
                let started = self.retry_started.unwrap_or(now);
                let out_of_time = now.saturating_duration_since(started) >= creds.retry_time;
                if self.attempt >= creds.retry_count || out_of_time {
                    let ev = if self.status == Status::LoggingIn {
                        Event::LoginFailed {
                            ecode: ErrorCode::LoginNet.code(),
                        }
                    } else {
                        Event::Logout {
                            ecode: ErrorCode::LogoutNet.code(),
                        }
                    };
                    return self.finish(ev);
                }
                self.attempt += 1;
                if self.status == Status::Reconnecting {
                    self.events.push_back(Event::Reconnecting {
                        nretry: self.attempt,
                    });
                }
                let delay = self.backoff(self.attempt - 2);
                self.retry_at = Some(now + delay);
            }
        }
    }

    /// Exponential back-off with full jitter in its upper half, so many clients of one
    /// restarted server spread their reconnects.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let base = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.max_backoff);
        let half = base / 2;
        let jitter = self.next_random() % (u64::try_from(half.as_micros()).unwrap_or(1).max(1));
        half + Duration::from_micros(jitter)
    }

    fn logged_in_ok(&mut self, ok: pb::LoginOk, now: Instant) {
        self.link = Link::Ready;
        self.link_deadline = None;
        if let Some(l) = &ok.limits {
            self.limits = Limits::from_wire(l);
        }
        let heartbeat = Duration::from_millis(ok.heartbeat_interval_ms.max(100).into());
        let was = self.status;
        self.uid = ok.uid;
        self.session = Some(SessionInfo {
            id: ok.session_id,
            secret: ok.resume_secret,
            heartbeat,
        });
        self.status = Status::LoggedIn;
        self.attempt = 0;
        self.retry_started = None;
        if !ok.resume_refused.is_empty() {
            let why = format!("the session could not be resumed: {}", ok.resume_refused);
            self.log(&why);
        }
        if ok.resumed {
            // Requests the server applied have their replies in the replayed events; the rest
            // are sent again, in order.
            let resend: Vec<_> = self
                .pending
                .iter_mut()
                .filter(|p| p.id > ok.last_applied_request_id)
                .map(|p| {
                    p.sent = true;
                    pb::Request {
                        id: p.id,
                        op: Some(p.op.clone()),
                    }
                })
                .collect();
            for r in resend {
                self.transmit(client_frame::Kind::Request(r), now);
            }
        } else {
            // A fresh session: events and request ids start over. Requests that reached the
            // old session may or may not have been applied, so they fail rather than repeat.
            self.last_event_seq = 0;
            self.acked_seq = 0;
            self.next_request_id = 1;
            let old = std::mem::take(&mut self.pending);
            // Calls lived in the old session; the broker ended them for the other sides.
            self.drop_calls(ErrorCode::InviteNet);
            if was == Status::Reconnecting {
                // The old session is gone, and with it its channels: join them again.
                for channel in self.joined.clone() {
                    let id = self.next_request_id;
                    self.next_request_id += 1;
                    self.pending.push_back(PendingRequest {
                        id,
                        op: request::Op::ChannelJoin(pb::ChannelJoin {
                            channel: channel.clone(),
                        }),
                        what: Pending::ChannelJoin { channel },
                        sent: false,
                    });
                }
            }
            for p in old {
                if p.sent {
                    self.fail_request(
                        &p.what,
                        ErrorCode::GeneralFailed,
                        "the connection was lost before the server answered",
                    );
                } else {
                    let id = self.next_request_id;
                    self.next_request_id += 1;
                    self.pending.push_back(PendingRequest { id, ..p });
                }
            }
            let unsent: Vec<_> = self
                .pending
                .iter_mut()
                .map(|p| {
                    p.sent = true;
                    pb::Request {
                        id: p.id,
                        op: Some(p.op.clone()),
                    }
                })
                .collect();
            for r in unsent {
                self.transmit(client_frame::Kind::Request(r), now);
            }
        }
        let ev = if was == Status::Reconnecting {
            Event::Reconnected { fd: 0 }
        } else {
            Event::LoginSuccess { uid: ok.uid, fd: 0 }
        };
        // The login callback comes before any event of the new session.
        self.events.push_back(ev);
    }

    fn login_refused(&mut self, f: pb::LoginFailed, now: Instant) {
        self.close_link();
        let code = ErrorCode::from_code(f.code).unwrap_or(ErrorCode::LoginFailed);
        if f.retry_after_ms > 0 && matches!(code, ErrorCode::GeneralOverload) {
            // Admission control: try again no sooner than the server asked.
            self.link_lost(now);
            if let Some(at) = self.retry_at.as_mut() {
                *at = (*at).max(now + Duration::from_millis(f.retry_after_ms.into()));
            }
            return;
        }
        let desc = f.message;
        if self.status == Status::Reconnecting {
            let ecode = match code {
                ErrorCode::LoginTokenExpired => ErrorCode::LogoutTokenExpired,
                ErrorCode::LoginTokenWrong => ErrorCode::LogoutTokenWrong,
                ErrorCode::LoginOldVersion => ErrorCode::LogoutOldVersion,
                _ => ErrorCode::LogoutOther,
            };
            self.error("login", &CallError::new(code, desc));
            self.finish(Event::Logout {
                ecode: ecode.code(),
            });
        } else {
            self.error("login", &CallError::new(code, desc));
            self.finish(Event::LoginFailed { ecode: f.code });
        }
    }

    fn handle_event(&mut self, ev: pb::Event, now: Instant) {
        if ev.seq <= self.last_event_seq {
            return; // Replayed after a resume and already applied.
        }
        self.last_event_seq = ev.seq;
        match ev.body {
            Some(event::Body::Reply(r)) => self.handle_reply(r, now),
            // Re-deliveries (same server message id) are dropped.
            Some(event::Body::InstantMessage(m)) if self.remember(m.server_msg_id) => {
                self.events.push_back(Event::MessageInstantReceive {
                    account: m.sender,
                    uid: 0,
                    msg: m.msg,
                });
            }
            Some(event::Body::ChannelMessage(m)) if self.remember(m.server_msg_id) => {
                self.events.push_back(Event::MessageChannelReceive {
                    channel: m.channel,
                    account: m.sender,
                    uid: 0,
                    msg: m.msg,
                });
            }
            Some(event::Body::InstantMessage(_) | event::Body::ChannelMessage(_)) => {}
            Some(event::Body::ChannelUserJoined(m)) => {
                self.events.push_back(Event::ChannelUserJoined {
                    channel: m.channel,
                    account: m.account,
                    uid: 0,
                })
            }
            Some(event::Body::ChannelUserLeft(m)) => {
                self.events.push_back(Event::ChannelUserLeaved {
                    channel: m.channel,
                    account: m.account,
                    uid: 0,
                })
            }
            Some(event::Body::ChannelAttrUpdated(a)) => {
                self.events.push_back(Event::ChannelAttrUpdated {
                    channel: a.channel,
                    name: a.name,
                    value: a.value,
                    kind: a.r#type,
                })
            }
            Some(event::Body::Call(c)) => self.handle_call_event(c),
            Some(event::Body::ChannelLeft(l)) => {
                self.joined.retain(|c| *c != l.channel);
                self.events.push_back(Event::ChannelLeaved {
                    channel: l.channel,
                    ecode: l.code,
                })
            }
            None => {}
        }
        if self.status == Status::NotLoggedIn {
            return; // The logout reply finished the session.
        }
        if self.last_event_seq - self.acked_seq >= self.config.ack_every {
            self.ack_now(now);
        } else if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now + self.config.ack_delay);
        }
    }

    fn handle_call_event(&mut self, c: pb::CallEvent) {
        use pb::call_event::Kind;
        let (channel, account, outgoing) = (c.channel, c.account, c.caller);
        let kind = Kind::try_from(c.kind).unwrap_or(Kind::Unspecified);
        let phase = self.call_state(&channel, &account, outgoing);
        if kind != Kind::Received && kind != Kind::Unspecified && phase.is_none() {
            // The call already ended here (we refused or ended it, or it failed): the late
            // event would be a second terminal callback.
            return self.log(&format!(
                "dropping a {kind:?} event of a finished call with {account} on {channel}"
            ));
        }
        let ev = match kind {
            Kind::Received => {
                self.set_call(&channel, &account, false, Some(Phase::Waiting));
                Event::InviteReceived {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::ReceivedByPeer => Event::InviteReceivedByPeer {
                channel,
                account,
                uid: 0,
            },
            Kind::AcceptedByPeer => {
                if phase == Some(Phase::Ending) {
                    return; // We are ending it; our end answer closes it.
                }
                self.set_call(&channel, &account, true, Some(Phase::Accepted));
                Event::InviteAcceptedByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::RefusedByPeer => {
                self.set_call(&channel, &account, true, None);
                Event::InviteRefusedByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::Failed => {
                self.set_call(&channel, &account, true, None);
                Event::InviteFailed {
                    channel,
                    account,
                    uid: 0,
                    ecode: c.code,
                    extra: c.extra,
                }
            }
            Kind::EndByPeer => {
                self.set_call(&channel, &account, outgoing, None);
                Event::InviteEndByPeer {
                    channel,
                    account,
                    uid: 0,
                    extra: c.extra,
                }
            }
            Kind::Msg => Event::InviteMsg {
                channel,
                account,
                uid: 0,
                msg_type: c.msg_type,
                msg_data: c.msg_data,
                extra: c.extra,
            },
            Kind::Unspecified => return self.log("call event of an unknown kind"),
        };
        self.events.push_back(ev);
    }

    /// Records a server message id; false if it was seen before.
    fn remember(&mut self, id: u64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > self.config.dedup_window
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    fn handle_reply(&mut self, r: pb::Reply, now: Instant) {
        let Some(pos) = self.pending.iter().position(|p| p.id == r.request_id) else {
            self.log(&format!("reply to unknown request {}", r.request_id));
            return;
        };
        let Some(p) = self.pending.remove(pos) else {
            return;
        };
        if r.code != 0 {
            let code = ErrorCode::from_code(r.code).unwrap_or(ErrorCode::General);
            return self.fail_request_code(&p.what, r.code, code, &r.message);
        }
        match (p.what, r.result) {
            (Pending::InstantSend { message_id }, _) => self
                .events
                .push_back(Event::MessageSendSuccess { message_id }),
            (Pending::QueryUserStatus { account }, Some(reply::Result::UserStatus(s))) => {
                self.events.push_back(Event::QueryUserStatusResult {
                    name: account,
                    status: if s.online { "1" } else { "0" }.into(),
                })
            }
            (Pending::SetAttr, _) => {}
            (Pending::GetAttr { account, name }, Some(reply::Result::AttrValue(v))) => {
                self.events.push_back(Event::UserAttrResult {
                    account,
                    name,
                    value: v.value,
                })
            }
            (Pending::GetAttrAll { account }, Some(reply::Result::AttrAll(a))) => {
                self.events.push_back(Event::UserAttrAllResult {
                    account,
                    value: a.json,
                })
            }
            (Pending::Invoke { call_id }, Some(reply::Result::InvokeResult(res))) => {
                if !res.err.is_empty() {
                    let ecode = res.err.parse().unwrap_or(ErrorCode::General.code());
                    self.events.push_back(Event::Error {
                        name: "invoke".into(),
                        ecode,
                        desc: res.resp.clone(),
                    });
                }
                self.events.push_back(Event::InvokeRet {
                    call_id,
                    err: res.err,
                    resp: res.resp,
                })
            }
            (Pending::Logout, _) => {
                self.ack_now(now);
                self.close_link();
                self.finish(Event::Logout {
                    ecode: ErrorCode::LogoutUser.code(),
                });
            }
            (Pending::ChannelJoin { .. }, Some(reply::Result::ChannelJoined(j))) => {
                for old in j.left {
                    self.joined.retain(|c| *c != old);
                    self.events.push_back(Event::ChannelLeaved {
                        channel: old,
                        ecode: ErrorCode::LeaveChannelByUser.code(),
                    });
                }
                if !self.joined.contains(&j.channel) {
                    self.joined.push(j.channel.clone());
                }
                self.events.push_back(Event::ChannelJoined {
                    channel: j.channel.clone(),
                });
                let uids = vec![0; j.accounts.len()];
                self.events.push_back(Event::ChannelUserList {
                    channel: j.channel.clone(),
                    accounts: j.accounts,
                    uids,
                });
                for a in j.attrs {
                    self.events.push_back(Event::ChannelAttrUpdated {
                        channel: j.channel.clone(),
                        name: a.name,
                        value: a.value,
                        kind: "update".into(),
                    });
                }
            }
            (Pending::ChannelLeave { channel }, _) => {
                self.joined.retain(|c| *c != channel);
                self.events.push_back(Event::ChannelLeaved {
                    channel,
                    ecode: ErrorCode::LeaveChannelByUser.code(),
                });
            }
            (Pending::ChannelQueryUserNum { channel }, Some(reply::Result::ChannelUserNum(n))) => {
                self.events.push_back(Event::ChannelQueryUserNumResult {
                    channel,
                    ecode: 0,
                    num: i32::try_from(n.num).unwrap_or(i32::MAX),
                })
            }
            (
                Pending::ChannelQueryUserIsIn { channel, account },
                Some(reply::Result::ChannelIsIn(i)),
            ) => self.events.push_back(Event::ChannelQueryUserIsIn {
                channel,
                account,
                is_in: i32::from(i.is_in),
            }),
            (Pending::ChannelAttr { .. }, _) => {}
            (Pending::ChannelSend { message_id, .. }, _) => self
                .events
                .push_back(Event::MessageSendSuccess { message_id }),
            (Pending::Invite { .. } | Pending::InviteAnswer { .. } | Pending::InviteDtmf, _) => {}
            (
                Pending::InviteEnd {
                    channel,
                    account,
                    as_caller,
                },
                _,
            ) => {
                // The broker ended whatever call it had under this key when the request got
                // there, which may be a newer one than the call this request was about.
                self.set_call(&channel, &account, as_caller, None);
                self.events.push_back(Event::InviteEndByMyself {
                    channel,
                    account,
                    uid: 0,
                })
            }
            (what, result) => {
                self.log(&format!("malformed reply {result:?} to {what:?}"));
                self.fail_request(
                    &what,
                    ErrorCode::GeneralFailed,
                    "malformed reply from the server",
                );
            }
        }
    }

    fn fail_request(&mut self, what: &Pending, code: ErrorCode, desc: &str) {
        let code = match (what, code) {
            (
                Pending::InstantSend { .. } | Pending::ChannelSend { .. },
                ErrorCode::GeneralFailed,
            ) => ErrorCode::SendMessageTimeout,
            _ => code,
        };
        self.fail_request_code(what, code.code(), code, desc);
    }

    fn fail_request_code(&mut self, what: &Pending, ecode: i32, code: ErrorCode, desc: &str) {
        let e = CallError::new(code, desc);
        let name = match what {
            Pending::InstantSend { message_id } => {
                self.events.push_back(Event::MessageSendError {
                    message_id: message_id.clone(),
                    ecode,
                });
                "messageInstantSend"
            }
            Pending::QueryUserStatus { .. } => "queryUserStatus",
            Pending::SetAttr => "setAttr",
            Pending::GetAttr { .. } => "getUserAttr",
            Pending::GetAttrAll { .. } => "getUserAttrAll",
            Pending::Invoke { call_id } => {
                self.events.push_back(Event::InvokeRet {
                    call_id: call_id.clone(),
                    err: ecode.to_string(),
                    resp: String::new(),
                });
                "invoke"
            }
            Pending::Logout => "logout",
            Pending::ChannelJoin { channel } => {
                self.events.push_back(Event::ChannelJoinFailed {
                    channel: channel.clone(),
                    ecode,
                });
                "channelJoin"
            }
            Pending::ChannelLeave { .. } => "channelLeave",
            Pending::ChannelQueryUserNum { channel } => {
                self.events.push_back(Event::ChannelQueryUserNumResult {
                    channel: channel.clone(),
                    ecode,
                    num: 0,
                });
                "channelQueryUserNum"
            }
            Pending::ChannelQueryUserIsIn { .. } => "channelQueryUserIsIn",
            Pending::ChannelAttr { what } => what,
            Pending::ChannelSend { message_id, force } => {
                self.events.push_back(Event::MessageSendError {
                    message_id: message_id.clone(),
                    ecode,
                });
                if *force {
                    "messageChannelSendForce"
                } else {
                    "messageChannelSend"
                }
            }
            Pending::Invite {
                channel,
                account,
                extra,
            } => {
                // A re-invitation fails without touching the call already in progress.
                if code != ErrorCode::InviteReinvite
                    && self.call_state(channel, account, true).is_some()
                {
                    self.set_call(channel, account, true, None);
                }
                self.events.push_back(Event::InviteFailed {
                    channel: channel.clone(),
                    account: account.clone(),
                    uid: 0,
                    ecode,
                    extra: extra.clone(),
                });
                "channelInviteUser2"
            }
            Pending::InviteAnswer {
                channel,
                account,
                accept,
            } => {
                // The broker had no such ringing call: it ended meanwhile.
                if *accept && self.call_state(channel, account, false) == Some(Phase::Accepted) {
                    // The accept did not take: the call is over for this side.
                    self.set_call(channel, account, false, None);
                    self.events.push_back(Event::InviteEndByPeer {
                        channel: channel.clone(),
                        account: account.clone(),
                        uid: 0,
                        extra: String::new(),
                    });
                }
                if *accept {
                    "channelInviteAccept"
                } else {
                    "channelInviteRefuse"
                }
            }
            Pending::InviteEnd {
                channel,
                account,
                as_caller,
            } => {
                // The broker has no such call any more, yet no terminal event reached us: the
                // call is over all the same.
                if self.call_state(channel, account, *as_caller) == Some(Phase::Ending) {
                    self.set_call(channel, account, *as_caller, None);
                    self.events.push_back(Event::InviteEndByMyself {
                        channel: channel.clone(),
                        account: account.clone(),
                        uid: 0,
                    });
                }
                "channelInviteEnd"
            }
            Pending::InviteDtmf => "channelInviteDTMF",
        };
        self.events.push_back(Event::Error {
            name: name.into(),
            ecode,
            desc: e.message,
        });
    }

    /// Ends the login or session: fails what is pending, reports `ev`, forgets the session.
    fn finish(&mut self, ev: Event) {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if !matches!(p.what, Pending::Logout) {
                self.fail_request(
                    &p.what,
                    ErrorCode::GeneralFailed,
                    "the session ended before the server answered",
                );
            }
        }
        let leave = match ev {
            Event::Logout { ecode } if ecode == ErrorCode::LogoutUser.code() => {
                Some(ErrorCode::LeaveChannelLogout)
            }
            Event::Logout { ecode } if ecode == ErrorCode::LogoutKicked.code() => {
                Some(ErrorCode::LeaveChannelKicked)
            }
            Event::Logout { .. } => Some(ErrorCode::LeaveChannelDisconn),
            _ => None,
        };
        self.drop_calls(ErrorCode::InviteNet);
        for channel in std::mem::take(&mut self.joined) {
            if let Some(code) = leave {
                self.events.push_back(Event::ChannelLeaved {
                    channel,
                    ecode: code.code(),
                });
            }
        }
        self.status = Status::NotLoggedIn;
        self.session = None;
        self.uid = 0;
        self.logging_out = false;
        self.retry_at = None;
        self.link_deadline = None;
        self.ack_deadline = None;
        self.attempt = 0;
        self.retry_started = None;
        self.last_event_seq = 0;
        self.acked_seq = 0;
        self.next_request_id = 1;
        self.events.push_back(ev);
    }

    fn error(&mut self, name: &str, e: &CallError) {
        self.events.push_back(Event::Error {
            name: name.to_owned(),
            ecode: e.code.code(),
            desc: e.message.clone(),
        });
    }

    fn log(&mut self, txt: &str) {
        self.events.push_back(Event::Log {
            txt: txt.to_owned(),
        });
    }

    fn generate_message_id(&mut self) -> String {
        self.message_counter += 1;
        let r = self.next_random();
        format!("{r:016x}-{}", self.message_counter)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: enough for ids and jitter; the seed comes from the driver.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn no_invitation(channel: &str, account: &str) -> CallError {
    CallError::new(
        ErrorCode::GeneralWrongParam,
        format!("there is no call with {account} on {channel}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_ok(resumed: bool) -> Bytes {
        codec::encode_server(server_frame::Kind::LoginOk(pb::LoginOk {
            uid: 42,
            session_id: 7,
            resume_secret: Bytes::from_static(b"secret"),
            heartbeat_interval_ms: 10_000,
            resumed,
            ..Default::default()
        }))
    }

    fn drain(c: &mut Client) -> Vec<Event> {
        while c.poll_transmit().is_some() {}
        while c.poll_connection().is_some() {}
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn logged_in(seed: u64, now: Instant) -> Client {
        let mut c = Client::new(
            ClientConfig {
                seed,
                ..ClientConfig::default()
            },
            now,
        );
        c.login("app", "alice", "_no_need_token", "", now);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
        c.handle_connected(now);
        c.handle_frame(&login_ok(false), now);
        assert_eq!(drain(&mut c), [Event::LoginSuccess { uid: 42, fd: 0 }]);
        c
    }

    #[test]
    fn reconnect_attempts_then_logout_net() {
        let now = Instant::now();
        let mut c = logged_in(1, now);
        c.handle_disconnected(now);
        assert_eq!(c.status(), Status::Reconnecting);
        let mut events = drain(&mut c);
        let mut t = now;
        for _ in 0..3 {
            t = c.poll_timeout().expect("a retry is scheduled");
            c.handle_timeout(t);
            assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
            c.handle_disconnected(t); // the attempt fails
            events.extend(drain(&mut c));
        }
        assert_eq!(
            events,
            [
                Event::Reconnecting { nretry: 1 },
                Event::Reconnecting { nretry: 2 },
                Event::Reconnecting { nretry: 3 },
                Event::Logout { ecode: 102 },
            ]
        );
        assert_eq!(c.status(), Status::NotLoggedIn);
        assert!(t - now < Duration::from_secs(30));
    }

    #[test]
    fn a_login_that_never_connects_fails_with_login_net() {
        let now = Instant::now();
        let mut c = Client::new(ClientConfig::default(), now);
        c.login2("app", "alice", "_no_need_token", "", 30, 2, now);
        assert_eq!(c.status(), Status::LoggingIn);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
        c.handle_disconnected(now);
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
        c.handle_disconnected(t);
        assert_eq!(drain(&mut c), [Event::LoginFailed { ecode: 201 }]);
    }

    #[test]
    fn first_reconnects_of_many_clients_spread_out() {
        let now = Instant::now();
        let mut delays: Vec<Duration> = (0..500)
            .map(|seed| {
                let mut c = logged_in(seed, now);
                c.handle_disconnected(now);
                c.poll_timeout().unwrap() - now
            })
            .collect();
        delays.sort();
        let jitter = ClientConfig::default().first_attempt_jitter;
        assert!(delays[499] <= jitter);
        // Spread across the window, not bunched at one instant.
        assert!(
            delays[50] < jitter / 4 && delays[450] > jitter * 3 / 4,
            "{:?}..{:?}",
            delays[50],
            delays[450]
        );
    }

    #[test]
    fn resumed_session_resends_only_unapplied_requests() {
        let now = Instant::now();
        let mut c = logged_in(3, now);
        c.query_user_status("bob", now); // id 1
        c.query_user_status("cid", now); // id 2
        drain(&mut c);
        c.handle_disconnected(now);
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        assert_eq!(c.poll_connection(), Some(ConnectionCommand::Open));
        c.handle_connected(t);
        let login = c.poll_transmit().unwrap();
        match codec::decode_client(&login).unwrap() {
            client_frame::Kind::Login(l) => assert_eq!(l.resume.unwrap().session_id, 7),
            other => panic!("{other:?}"),
        }
        let ok = codec::encode_server(server_frame::Kind::LoginOk(pb::LoginOk {
            uid: 42,
            session_id: 7,
            resumed: true,
            last_applied_request_id: 1,
            heartbeat_interval_ms: 10_000,
            ..Default::default()
        }));
        c.handle_frame(&ok, t);
        let resent: Vec<u64> = std::iter::from_fn(|| c.poll_transmit())
            .filter_map(|b| match codec::decode_client(&b).unwrap() {
                client_frame::Kind::Request(r) => Some(r.id),
                _ => None,
            })
            .collect();
        assert_eq!(resent, [2]);
        let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
        assert_eq!(
            events,
            [
                Event::Reconnecting { nretry: 1 },
                Event::Reconnected { fd: 0 }
            ]
        );
        assert_eq!(c.pending_requests(), 2);
    }

    #[test]
    fn bad_calls_fail_locally_with_codes() {
        let now = Instant::now();
        let mut c = Client::new(ClientConfig::default(), now);
        c.get_user_attr("bob", "x", now);
        c.login("app", "bad account", "t", "", now);
        c.login("app", "", "t", "", now);
        c.login("app", &"a".repeat(129), "t", "", now);
        c.logout(now);
        let codes: Vec<(String, i32)> = drain(&mut c)
            .into_iter()
            .filter_map(|e| match e {
                Event::Error { name, ecode, .. } => Some((name, ecode)),
                Event::LoginFailed { ecode } => Some(("onLoginFailed".into(), ecode)),
                _ => None,
            })
            .collect();
        let expect = [
            ("getUserAttr", 1003),
            ("onLoginFailed", 1004),
            ("login", 1004),
            ("onLoginFailed", 1004),
            ("login", 1004),
            ("onLoginFailed", 1005),
            ("login", 1005),
            ("logout", 108),
        ];
        assert_eq!(codes, expect.map(|(n, c)| (n.to_owned(), c)));
        assert_eq!(c.status(), Status::NotLoggedIn);

        let mut c = logged_in(4, now);
        let id = c.message_instant_send("bob", &"x".repeat(8193), "", now);
        assert!(!id.is_empty(), "an empty msgID is generated");
        let events = drain(&mut c);
        assert!(events.contains(&Event::MessageSendError {
            message_id: id,
            ecode: 1005
        }));
        c.set_attr("_member_num", "1", now);
        c.invoke("", "{}", "call", now);
        let events = drain(&mut c);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Error { name, ecode: 1004, .. } if name == "setAttr"))
        );
        assert!(events.contains(&Event::InvokeRet {
            call_id: "call".into(),
            err: "1004".into(),
            resp: String::new()
        }));
        assert_eq!(c.pending_requests(), 0, "rejected calls send nothing");
    }
}
