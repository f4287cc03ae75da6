//! [`Instance`]: the seed's `IAgoraAPI`, and [`EventStream`].

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use beckon_client::{
    CallId, Client, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S, Event, MessageIds, SDK_VERSION,
    Status,
};

use crate::callbacks::Callbacks;
use crate::config::{Config, SdkError};
use crate::driver::{Command, DESTROY_TIMEOUT, Dialer, Driver};

/// One client of a Beckon server: the seed's `IAgoraAPI`, with its methods in snake_case.
///
/// Each instance runs one driver task, which owns the connection and the client state; the
/// methods only hand their arguments to that task, so they never block and may be called from
/// any thread, inside callbacks too. Results arrive through the [`Callbacks`] set with
/// [`callback_set`](Self::callback_set) and through every stream from
/// [`events`](Self::events), in the order they happen. A process may create any number of
/// independent instances.
///
/// [`destroy`](Self::destroy) logs out and stops the driver. Dropping an instance stops its
/// driver too, but without logging out: the server then sees a lost connection.
pub struct Instance {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<AtomicI32>,
    /// The client's message ids, to return an id before the driver takes the call.
    ids: Arc<MessageIds>,
    /// A copy of what was given to the driver, for `callback_get`.
    callbacks: Mutex<Option<Arc<dyn Callbacks>>>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("status", &self.get_status())
            .field("driver_running", &!self.commands.is_closed())
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Creates an instance and spawns its driver on the current tokio runtime. Nothing is
    /// connected until [`login`](Self::login).
    ///
    /// # Errors
    ///
    /// [`SdkError::UnsupportedScheme`] or [`SdkError::InvalidServer`] for a server URL other than
    /// `[scheme://]host:port[/path]`; [`SdkError::NoRuntime`] outside a tokio runtime.
    pub fn new(config: Config) -> Result<Self, SdkError> {
        let endpoints = config.endpoints()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SdkError::NoRuntime)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let client = Client::new(config.client.clone(), Instant::now());
        let status = Arc::new(AtomicI32::new(client.status() as i32));
        let ids = client.message_ids();
        let dialer = Dialer {
            endpoints,
            tls: config.tls.clone(),
            max_frame: config.max_frame,
            timeout: config.client.connect_timeout,
            attempts: 0,
        };
        let driver = Driver::new(client, dialer, rx, status.clone());
        runtime.spawn(driver.run());
        Ok(Self {
            commands,
            status,
            ids,
            callbacks: Mutex::new(None),
        })
    }

    // ---- lifecycle ----------------------------------------------------------------------------

    /// `callbackSet(handler)`: the callbacks that receive every later event.
    pub fn callback_set(&self, handler: Arc<dyn Callbacks>) {
        *self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(handler.clone());
        self.send(Command::SetCallbacks(handler));
    }

    /// `callbackGet()`: the callbacks last set, if any.
    pub fn callback_get(&self) -> Option<Arc<dyn Callbacks>> {
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A new stream of every event from now on (the same events the callbacks get, in the same
    /// order). Each call makes an independent subscriber; dropping the stream unsubscribes.
    pub fn events(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Command::Subscribe(tx));
        EventStream { rx }
    }

    /// `login(appId, account, token, uid, deviceID)`: [`login2`](Self::login2) with the default
    /// retry policy (30 s, 3 attempts). `uid` is obsolete and ignored.
    pub fn login(&self, app_id: &str, account: &str, token: &str, uid: u32, device_id: &str) {
        self.login2(
            app_id,
            account,
            token,
            uid,
            device_id,
            DEFAULT_RETRY_TIME_S,
            DEFAULT_RETRY_COUNT,
        );
    }

    /// `login2(appId, account, token, uid, deviceID, retry_time_in_s, retry_count)`.
    ///
    /// Ends in `on_login_success(uid, 0)` or `on_login_failed(ecode)`. Ignored while logged in
    /// or logging in. `uid` is obsolete and ignored; non-positive retry values take the
    /// defaults. [`get_status`](Self::get_status) reads 1 (logging in) as soon as this returns.
    #[allow(clippy::too_many_arguments)]
    pub fn login2(
        &self,
        app_id: &str,
        account: &str,
        token: &str,
        _uid: u32,
        device_id: &str,
        retry_time_in_s: i32,
        retry_count: i32,
    ) {
        // Read-your-writes for `get_status`: the driver corrects this at once if the login is
        // refused locally.
        let _ = self.status.compare_exchange(
            Status::NotLoggedIn as i32,
            Status::LoggingIn as i32,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let [app_id, account, token, device_id] =
            [app_id, account, token, device_id].map(str::to_owned);
        self.send(Command::Login(Box::new(move |c, now| {
            c.login2(
                &app_id,
                &account,
                &token,
                &device_id,
                retry_time_in_s,
                retry_count,
                now,
            )
        })));
    }

    /// `logout()`: `on_logout(101)` follows; during a login it cancels the login
    /// (`on_login_failed(203)`); when not logged in, `on_error("logout", 108, …)`.
    pub fn logout(&self) {
        self.call(Client::logout);
    }

    /// `destroy()`: logs out if logged in, waits for the logout to complete (at most about two
    /// seconds), and stops the driver. Callbacks receive the logout before this returns.
    pub async fn destroy(self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Destroy(done)).is_ok() {
            // The driver answers within DESTROY_TIMEOUT of taking the command; the margin
            // covers a busy runtime.
            let _ = tokio::time::timeout(DESTROY_TIMEOUT * 2, finished).await;
        }
    }

    // ---- users and messages -------------------------------------------------------------------

    /// `messageInstantSend(account, uid, msg, msgID)`: sends `msg` to `account`. Returns the
    /// message id — `msg_id`, or a generated unique one when `msg_id` is "" — which the
    /// `on_message_send_success` / `on_message_send_error` callback will carry. `uid` is
    /// ignored.
    pub fn message_instant_send(
        &self,
        account: &str,
        _uid: u32,
        msg: &str,
        msg_id: &str,
    ) -> String {
        let msg_id = self.ids.resolve(msg_id);
        self.call3(account, msg, &msg_id, Client::message_instant_send);
        msg_id
    }

    /// `queryUserStatus(account)` → `on_query_user_status_result(account, "1" | "0")`.
    pub fn query_user_status(&self, account: &str) {
        self.call1(account, Client::query_user_status);
    }

    /// `setAttr(name, value)`: sets an attribute of the logged-in account; "" deletes it.
    /// Only `_conn_timeout` of the built-in (`_`) names may be set.
    pub fn set_attr(&self, name: &str, value: &str) {
        self.call2(name, value, Client::set_attr);
    }

    /// `getAttr(name)` → `on_user_attr_result(own account, name, value)`.
    pub fn get_attr(&self, name: &str) {
        self.call1(name, Client::get_attr);
    }

    /// `getAttrAll()` → `on_user_attr_all_result(own account, json)`.
    pub fn get_attr_all(&self) {
        self.call(Client::get_attr_all);
    }

    /// `getUserAttr(account, name)` → `on_user_attr_result(account, name, value)`.
    pub fn get_user_attr(&self, account: &str, name: &str) {
        self.call2(account, name, Client::get_user_attr);
    }

    /// `getUserAttrAll(account)` → `on_user_attr_all_result(account, json)`.
    pub fn get_user_attr_all(&self, account: &str) {
        self.call1(account, Client::get_user_attr_all);
    }

    /// `invoke(name, req, callID)` → `on_invoke_ret(call_id, err, resp)`.
    pub fn invoke(&self, name: &str, req: &str, call_id: &str) {
        self.call3(name, req, call_id, Client::invoke);
    }

    // ---- channels -----------------------------------------------------------------------------

    /// `channelJoin(channelID)` → `on_channel_joined(channel)`, then
    /// `on_channel_user_list(accounts, uids)` (the latest 200 members, this account included),
    /// then `on_channel_attr_updated(channel, name, value, "update")` for each attribute the
    /// channel has; the other members get `on_channel_user_joined(account, 0)`. Failure:
    /// `on_channel_join_failed(channel, ecode)` (301 for a special channel without the server
    /// privilege).
    ///
    /// A session is in one channel at a time unless the server's app configuration allows more:
    /// joining one more first leaves the oldest, reported as `on_channel_leaved(old, 602)`
    /// before `on_channel_joined`. Joining a channel already joined answers as a fresh join.
    /// The special channels `_agora_user_online` and `_agora_channel_event` deliver their
    /// events as channel messages from the account `_system` with a JSON body.
    pub fn channel_join(&self, channel: &str) {
        self.call1(channel, Client::channel_join);
    }

    /// `channelLeave(channelID)` → `on_channel_leaved(channel, 602)`; the other members get
    /// `on_channel_user_leaved(account, 0)`. Not a member: `on_error("channelLeave", 600, …)`.
    pub fn channel_leave(&self, channel: &str) {
        self.call1(channel, Client::channel_leave);
    }

    /// `channelQueryUserNum(channelID)` → `on_channel_query_user_num_result(channel, ecode,
    /// num)`. Needs no membership; a channel that does not exist has 0 members.
    pub fn channel_query_user_num(&self, channel: &str) {
        self.call1(channel, Client::channel_query_user_num);
    }

    /// `channelQueryUserIsIn(channelID, account)` → `on_channel_query_user_is_in(channel,
    /// account, 0 | 1)`. Needs no membership.
    pub fn channel_query_user_is_in(&self, channel: &str, account: &str) {
        self.call2(channel, account, Client::channel_query_user_is_in);
    }

    /// `channelSetAttr(channelID, name, value)`: every member gets
    /// `on_channel_attr_updated(channel, name, value, "update")`; "" deletes (as
    /// [`channel_del_attr`](Self::channel_del_attr)). Only members (or a session with the server
    /// privilege) may write: others get `on_error("channelSetAttr", 1001, …)`. Built-in names
    /// (`_userNotification`, `_channel_ttl`, `_auto_update_num`, `_auto_update_total_num`,
    /// `_sendmsg_limit`, `_setattr_limit`) take numbers; `_member_num`, `_total_member_num` and
    /// other `_` names are refused with 1004.
    pub fn channel_set_attr(&self, channel: &str, name: &str, value: &str) {
        self.call3(channel, name, value, Client::channel_set_attr);
    }

    /// `channelDelAttr(channelID, name)`: every member gets
    /// `on_channel_attr_updated(channel, name, "", "del")` if the attribute existed.
    pub fn channel_del_attr(&self, channel: &str, name: &str) {
        self.call2(channel, name, Client::channel_del_attr);
    }

    /// `channelClearAttr(channelID)`: removes every attribute, built-ins included; every member
    /// gets one `on_channel_attr_updated(channel, "", "", "clear")`.
    pub fn channel_clear_attr(&self, channel: &str) {
        self.call1(channel, Client::channel_clear_attr);
    }

    /// `messageChannelSend(channelID, msg, msgID)`: every member, this one included, gets
    /// `on_message_channel_receive(channel, account, 0, msg)`. Returns the message id — `msg_id`,
    /// or a generated unique one when `msg_id` is "" — which `on_message_send_success` /
    /// `on_message_send_error` will carry (400 when not a member, 402 beyond the rate limits,
    /// 1005 for a body over 8192 bytes).
    pub fn message_channel_send(&self, channel: &str, msg: &str, msg_id: &str) -> String {
        let msg_id = self.ids.resolve(msg_id);
        self.call3(channel, msg, &msg_id, Client::message_channel_send);
        msg_id
    }

    /// `messageChannelSendForce(channelID, msg, msgID)`: as
    /// [`message_channel_send`](Self::message_channel_send), without being a member. Needs the
    /// server privilege (else the send fails with 400); to a channel with no members it
    /// succeeds and reaches nobody.
    pub fn message_channel_send_force(&self, channel: &str, msg: &str, msg_id: &str) -> String {
        let msg_id = self.ids.resolve(msg_id);
        self.call3(channel, msg, &msg_id, Client::message_channel_send_force);
        msg_id
    }

    // ---- calls --------------------------------------------------------------------------------

    /// `channelInviteUser(channelID, account, uid)`: [`channel_invite_user2`] without `extra`.
    /// `uid` is ignored.
    ///
    /// [`channel_invite_user2`]: Self::channel_invite_user2
    pub fn channel_invite_user(&self, channel: &str, account: &str, _uid: u32) {
        self.call2(channel, account, Client::channel_invite_user);
    }

    /// `channelInviteUser2(channelID, account, extra)`: invites `account` to `channel`. The
    /// callee gets `on_invite_received(channel, caller, 0, extra)`, then this side
    /// `on_invite_received_by_peer(channel, account, 0)`; the call goes on with
    /// `on_invite_accepted_by_peer`, `on_invite_refused_by_peer`, `on_invite_end_by_peer` or
    /// `on_invite_failed(channel, account, 0, ecode, extra)`.
    ///
    /// `extra` is "" or a JSON object of at most 8192 bytes (else 1004 / 1005);
    /// `{"_require_peer_online":1}` fails at once with 703 when the callee is offline, otherwise
    /// the invitation waits for the callee to come online (20 s by default) before failing with
    /// 703. An invitation unanswered for 60 s (by default) fails with 704; inviting the same
    /// account to the same channel while that call is in progress fails with 701.
    pub fn channel_invite_user2(&self, channel: &str, account: &str, extra: &str) {
        self.call3(channel, account, extra, Client::channel_invite_user2);
    }

    /// `channelInvitePhone(channelID, phoneNum, uid)` (obsolete): a call to a phone number
    /// through the app's telephony gateway; [`channel_invite_phone3`] without a source number
    /// or `extra`. `uid` is ignored.
    ///
    /// [`channel_invite_phone3`]: Self::channel_invite_phone3
    pub fn channel_invite_phone(&self, channel: &str, phone_num: &str, _uid: u32) {
        self.channel_invite_phone3(channel, phone_num, "", "");
    }

    /// `channelInvitePhone2(channelID, phoneNum, sourcesNum)` (obsolete):
    /// [`channel_invite_phone3`] without `extra`.
    ///
    /// [`channel_invite_phone3`]: Self::channel_invite_phone3
    pub fn channel_invite_phone2(&self, channel: &str, phone_num: &str, sources_num: &str) {
        self.channel_invite_phone3(channel, phone_num, sources_num, "");
    }

    /// `channelInvitePhone3(channelID, phoneNum, sourcesNum, extra)` (obsolete): invites a phone
    /// number through the app's telephony gateway (a session with the server privilege that
    /// registered itself with `invoke("io.beckon.gateway_register", "{}", …)`). The gateway
    /// receives the invitation with `"_phone":1` and `"srcNum":sources_num` (when not empty)
    /// added to `extra`, and answers as the callee; the callbacks are those of
    /// [`channel_invite_user2`](Self::channel_invite_user2), naming the phone number as the
    /// account. With no gateway online the invitation fails with 703.
    pub fn channel_invite_phone3(
        &self,
        channel: &str,
        phone_num: &str,
        sources_num: &str,
        extra: &str,
    ) {
        let [channel, phone_num, sources_num, extra] =
            [channel, phone_num, sources_num, extra].map(str::to_owned);
        self.call(move |c, now| {
            c.channel_invite_phone3(&channel, &phone_num, &sources_num, &extra, now)
        });
    }

    /// `channelInviteAccept(channelID, account, uid, extra)`: accepts the invitation from the
    /// caller `account`, who gets `on_invite_accepted_by_peer(channel, callee, 0, extra)`.
    /// Accepting does not join the channel. No such invitation ringing here:
    /// `on_error("channelInviteAccept", 1004, …)`. `uid` is ignored.
    pub fn channel_invite_accept(&self, channel: &str, account: &str, _uid: u32, extra: &str) {
        self.call3(channel, account, extra, Client::channel_invite_accept);
    }

    /// `channelInviteRefuse(channelID, account, uid, extra)`: refuses the invitation from the
    /// caller `account`, who gets `on_invite_refused_by_peer(channel, callee, 0, extra)`. No
    /// such invitation ringing here: `on_error("channelInviteRefuse", 1004, …)`. `uid` is
    /// ignored.
    pub fn channel_invite_refuse(&self, channel: &str, account: &str, _uid: u32, extra: &str) {
        self.call3(channel, account, extra, Client::channel_invite_refuse);
    }

    /// `channelInviteEnd(channelID, account, uid)`: ends the call with `account` on `channel`,
    /// placed or received, before or after acceptance. This side gets
    /// `on_invite_end_by_myself(channel, account, 0)`, the other `on_invite_end_by_peer`. No such
    /// call: `on_error("channelInviteEnd", 1004, …)`. `uid` is ignored.
    pub fn channel_invite_end(&self, channel: &str, account: &str, _uid: u32) {
        self.call2(channel, account, Client::channel_invite_end);
    }

    /// `channelInviteDTMF(channelID, phoneNum, dtmf)`: sends DTMF digits (`[0-9*#]+`, else
    /// 1004) to the other side of the call with `phone_num` (a phone number or an account) on
    /// `channel`, which gets `on_invite_msg(channel, account, 0, "DTMF", dtmf, "")`.
    pub fn channel_invite_dtmf(&self, channel: &str, phone_num: &str, dtmf: &str) {
        self.call3(channel, phone_num, dtmf, Client::channel_invite_dtmf);
    }

    /// `messageDTMFSend(uid, msg, msgID)` (obsolete): [`channel_invite_dtmf`] with the digits
    /// `msg` to the most recent call in progress (`on_error("messageDTMFSend", 1004, …)` when
    /// there is none). `uid` and `msg_id` are ignored: DTMF has no send confirmation.
    ///
    /// [`channel_invite_dtmf`]: Self::channel_invite_dtmf
    pub fn message_dtmf_send(&self, _uid: u32, msg: &str, _msg_id: &str) {
        self.call1(msg, Client::message_dtmf_send);
    }

    // ---- state snapshots ----------------------------------------------------------------------

    /// The channels this instance is in, in join order, as of the moment the driver takes the
    /// question (after every earlier call of this instance has been handed over, but possibly
    /// before their answers arrived). Empty once the driver has stopped.
    pub async fn joined_channels(&self) -> Vec<String> {
        let channels = self.ask(|c| c.joined_channels().to_vec());
        channels.await.unwrap_or_default()
    }

    /// The calls in progress, oldest first (`outgoing`: placed by this instance), with the same
    /// timing as [`joined_channels`](Self::joined_channels).
    pub async fn calls(&self) -> Vec<CallId> {
        self.ask(Client::calls).await.unwrap_or_default()
    }

    // ---- miscellaneous ------------------------------------------------------------------------

    /// `isOnline()` (obsolete): whether the instance is logged in and connected (status 2).
    pub fn is_online(&self) -> bool {
        self.get_status() == Status::LoggedIn as i32
    }

    /// `getStatus()`: 0 not logged in, 1 logging in, 2 logged in, 3 reconnecting.
    pub fn get_status(&self) -> i32 {
        self.status.load(Ordering::Acquire)
    }

    /// `getSdkVersion()`: `1MMmmppbbb`, e.g. 1000100000 for 0.1.0 build 0.
    pub fn get_sdk_version(&self) -> u32 {
        SDK_VERSION
    }

    // ---- handing calls to the driver ----------------------------------------------------------

    /// Runs `op` on the client, on the driver task.
    fn call(&self, op: impl FnOnce(&mut Client, Instant) + Send + 'static) {
        self.send(Command::Client(Box::new(op)));
    }

    /// Runs a client method of one string argument on the driver task.
    fn call1<R: 'static>(&self, a: &str, method: fn(&mut Client, &str, Instant) -> R) {
        let a = a.to_owned();
        self.call(move |c, now| {
            let _ = method(c, &a, now);
        });
    }

    /// [`call1`](Self::call1) for a method of two string arguments.
    fn call2<R: 'static>(
        &self,
        a: &str,
        b: &str,
        method: fn(&mut Client, &str, &str, Instant) -> R,
    ) {
        let (a, b) = (a.to_owned(), b.to_owned());
        self.call(move |c, now| {
            let _ = method(c, &a, &b, now);
        });
    }

    /// [`call1`](Self::call1) for a method of three string arguments.
    fn call3<R: 'static>(&self, a: &str, b: &str, x: &str, method: Method3<R>) {
        let [a, b, x] = [a, b, x].map(str::to_owned);
        self.call(move |c, now| {
            let _ = method(c, &a, &b, &x, now);
        });
    }

    /// Asks the client a question once the driver has taken every earlier call; `None` once the
    /// driver has stopped.
    async fn ask<T: Send + 'static>(
        &self,
        question: impl FnOnce(&Client) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.call(move |c, _| {
            let _ = tx.send(question(c));
        });
        rx.await.ok()
    }

    fn send(&self, c: Command) {
        // Fails only once the driver has stopped (after `destroy`, which consumes the instance,
        // or if the runtime shut down): there is nobody left to report to.
        if self.commands.send(c).is_err() {
            tracing::debug!("beckon_sdk: a call was made after the driver stopped");
        }
    }
}

/// A client method of three string arguments.
type Method3<R> = fn(&mut Client, &str, &str, &str, Instant) -> R;

/// The events of one [`Instance`], from the moment [`Instance::events`] was called; it ends
/// when the instance's driver stops.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// The next event; `None` once the instance is gone.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
