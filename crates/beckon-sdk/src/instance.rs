//! [`Instance`]: the seed's `IAgoraAPI`, and [`EventStream`].

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use beckon_client::{
    Client, DEFAULT_RETRY_COUNT, DEFAULT_RETRY_TIME_S, Event, SDK_VERSION, Status,
};

use crate::callbacks::Callbacks;
use crate::config::{Config, Endpoint, SdkError};
use crate::driver::{Command, DESTROY_TIMEOUT, Driver};
use crate::id::MessageIds;

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
    ids: MessageIds,
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
    /// `[tcp://]host:port`; [`SdkError::NoRuntime`] outside a tokio runtime.
    pub fn new(config: Config) -> Result<Self, SdkError> {
        let endpoint = Endpoint::parse(&config.server)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SdkError::NoRuntime)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let client = Client::new(config.client.clone(), Instant::now());
        let status = Arc::new(AtomicI32::new(client.status() as i32));
        let driver = Driver::new(
            client,
            endpoint,
            config.max_frame,
            config.client.connect_timeout,
            rx,
            status.clone(),
        );
        runtime.spawn(driver.run());
        Ok(Self {
            commands,
            status,
            ids: MessageIds::new(),
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
        self.send(Command::Login2 {
            app_id: app_id.to_owned(),
            account: account.to_owned(),
            token: token.to_owned(),
            device_id: device_id.to_owned(),
            retry_time_in_s,
            retry_count,
        });
    }

    /// `logout()`: `on_logout(101)` follows; during a login it cancels the login
    /// (`on_login_failed(203)`); when not logged in, `on_error("logout", 108, …)`.
    pub fn logout(&self) {
        self.send(Command::Logout);
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
        let msg_id = if msg_id.is_empty() {
            self.ids.next()
        } else {
            msg_id.to_owned()
        };
        self.send(Command::MessageInstantSend {
            account: account.to_owned(),
            msg: msg.to_owned(),
            msg_id: msg_id.clone(),
        });
        msg_id
    }

    /// `queryUserStatus(account)` → `on_query_user_status_result(account, "1" | "0")`.
    pub fn query_user_status(&self, account: &str) {
        self.send(Command::QueryUserStatus {
            account: account.to_owned(),
        });
    }

    /// `setAttr(name, value)`: sets an attribute of the logged-in account; "" deletes it.
    /// Only `_conn_timeout` of the built-in (`_`) names may be set.
    pub fn set_attr(&self, name: &str, value: &str) {
        self.send(Command::SetAttr {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }

    /// `getAttr(name)` → `on_user_attr_result(own account, name, value)`.
    pub fn get_attr(&self, name: &str) {
        self.send(Command::GetAttr {
            name: name.to_owned(),
        });
    }

    /// `getAttrAll()` → `on_user_attr_all_result(own account, json)`.
    pub fn get_attr_all(&self) {
        self.send(Command::GetAttrAll);
    }

    /// `getUserAttr(account, name)` → `on_user_attr_result(account, name, value)`.
    pub fn get_user_attr(&self, account: &str, name: &str) {
        self.send(Command::GetUserAttr {
            account: account.to_owned(),
            name: name.to_owned(),
        });
    }

    /// `getUserAttrAll(account)` → `on_user_attr_all_result(account, json)`.
    pub fn get_user_attr_all(&self, account: &str) {
        self.send(Command::GetUserAttrAll {
            account: account.to_owned(),
        });
    }

    /// `invoke(name, req, callID)` → `on_invoke_ret(call_id, err, resp)`.
    pub fn invoke(&self, name: &str, req: &str, call_id: &str) {
        self.send(Command::Invoke {
            name: name.to_owned(),
            req: req.to_owned(),
            call_id: call_id.to_owned(),
        });
    }

    // ---- miscellaneous ------------------------------------------------------------------------

    /// `getStatus()`: 0 not logged in, 1 logging in, 2 logged in, 3 reconnecting.
    pub fn get_status(&self) -> i32 {
        self.status.load(Ordering::Acquire)
    }

    /// `getSdkVersion()`: `1MMmmppbbb`, e.g. 1000100000 for 0.1.0 build 0.
    pub fn get_sdk_version(&self) -> u32 {
        SDK_VERSION
    }

    fn send(&self, c: Command) {
        // Fails only once the driver has stopped (after `destroy`, which consumes the instance,
        // or if the runtime shut down): there is nobody left to report to.
        if self.commands.send(c).is_err() {
            tracing::debug!("beckon_sdk: a call was made after the driver stopped");
        }
    }
}

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
