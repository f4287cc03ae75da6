//! Helpers shared by the end-to-end tests in `tests/tests/`: a real Beckon server on
//! 127.0.0.1 (port 0) with known apps, tokens minted for it, SDK instances that record their
//! callbacks, and waiting for an event with a deadline and a clear failure message.
//!
//! Everything here talks over real TCP through the public SDK; nothing reaches into the
//! server's or the client's internals.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beckon_broker::{AppConfig, Apps, BrokerConfig, BrokerStats};
use beckon_sdk::{Callbacks, Config, Event, EventStream, Instance};
use beckon_server::{Server, ServerConfig, ServerHandle};
use beckon_token::{Privileges, TokenClaims};

/// The production-style app: tokens signed with [`CERT`] are required.
pub const APP_ID: &str = "e2e-app";
pub const CERT: &[u8] = b"0123456789abcdef0123456789abcdef";
/// A second production-style app with its own certificate.
pub const OTHER_APP_ID: &str = "e2e-other-app";
pub const OTHER_CERT: &[u8] = b"fedcba9876543210fedcba9876543210";
/// A development app: no certificate, `_no_need_token` allowed.
pub const DEV_APP_ID: &str = "e2e-dev-app";

/// How long one expected event may take. Generous for a loaded debug build, yet a failing test
/// still ends quickly.
pub const TIMEOUT: Duration = Duration::from_secs(10);

// ---- server -------------------------------------------------------------------------------------

/// A Beckon server on 127.0.0.1 serving [`APP_ID`], [`OTHER_APP_ID`] and [`DEV_APP_ID`], and no
/// other App ID.
#[derive(Debug)]
pub struct TestServer {
    handle: ServerHandle,
    url: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `tweak` may adjust first.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            broker: BrokerConfig::new(test_apps(), [42; 32]),
            ..ServerConfig::development()
        };
        tweak(&mut config);
        let handle = Server::spawn(config)
            .await
            .expect("the test server binds 127.0.0.1:0");
        let url = format!("tcp://{}", handle.local_addr());
        Self { handle, url }
    }

    /// `tcp://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// A valid token for `account` of [`APP_ID`], good for an hour.
    pub fn token(&self, account: &str) -> String {
        mint_token(APP_ID, CERT, account, unix_now() + 3600)
    }

    pub async fn stats(&self) -> BrokerStats {
        self.handle.stats().await
    }

    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}

/// The apps of [`TestServer`]: two with certificates, one development app, no template for
/// unknown App IDs.
pub fn test_apps() -> Apps {
    let mut apps = Apps::default();
    apps.insert(AppConfig::new(APP_ID, CERT));
    apps.insert(AppConfig::new(OTHER_APP_ID, OTHER_CERT));
    apps.insert(AppConfig::development(DEV_APP_ID));
    apps
}

/// A token for `account` of `app_id`, signed with `certificate`, expiring at `expires_at`
/// (unix seconds).
pub fn mint_token(app_id: &str, certificate: &[u8], account: &str, expires_at: u64) -> String {
    beckon_token::mint(
        certificate,
        &TokenClaims {
            app_id: app_id.to_owned(),
            account: account.to_owned(),
            issued_at: expires_at.saturating_sub(7200),
            expires_at,
            privileges: Privileges::NONE,
        },
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// A server address on 127.0.0.1 where nothing listens (a port that was just free).
pub fn unused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("a local address")
}

// ---- SDK instances --------------------------------------------------------------------------------

/// Callbacks that record every call except `on_log`, as `name(arg, …)` text (the `desc` of
/// `on_error` is left out, so tests can match exact strings).
///
/// The SDK calls the callbacks before it hands the same event to the streams, so once a stream
/// has shown an event, its callback has been recorded.
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// Whether `call` was recorded.
    pub fn saw(&self, call: &str) -> bool {
        self.calls
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|c| c == call)
    }

    pub fn clear(&self) {
        self.calls.lock().expect("not poisoned").clear();
    }

    fn push(&self, call: String) {
        self.calls.lock().expect("not poisoned").push(call);
    }
}

impl Callbacks for Recorder {
    fn on_login_success(&self, uid: u32, fd: i32) {
        self.push(format!("on_login_success({uid}, {fd})"));
    }
    fn on_login_failed(&self, ecode: i32) {
        self.push(format!("on_login_failed({ecode})"));
    }
    fn on_logout(&self, ecode: i32) {
        self.push(format!("on_logout({ecode})"));
    }
    fn on_reconnecting(&self, nretry: u32) {
        self.push(format!("on_reconnecting({nretry})"));
    }
    fn on_reconnected(&self, fd: i32) {
        self.push(format!("on_reconnected({fd})"));
    }
    fn on_error(&self, name: &str, ecode: i32, _desc: &str) {
        self.push(format!("on_error({name}, {ecode})"));
    }
    fn on_query_user_status_result(&self, name: &str, status: &str) {
        self.push(format!("on_query_user_status_result({name}, {status})"));
    }
    fn on_user_attr_result(&self, account: &str, name: &str, value: &str) {
        self.push(format!("on_user_attr_result({account}, {name}, {value})"));
    }
    fn on_user_attr_all_result(&self, account: &str, value: &str) {
        self.push(format!("on_user_attr_all_result({account}, {value})"));
    }
    fn on_invoke_ret(&self, call_id: &str, err: &str, resp: &str) {
        self.push(format!("on_invoke_ret({call_id}, {err}, {resp})"));
    }
    fn on_message_send_success(&self, message_id: &str) {
        self.push(format!("on_message_send_success({message_id})"));
    }
    fn on_message_send_error(&self, message_id: &str, ecode: i32) {
        self.push(format!("on_message_send_error({message_id}, {ecode})"));
    }
    fn on_message_instant_receive(&self, account: &str, uid: u32, msg: &str) {
        self.push(format!(
            "on_message_instant_receive({account}, {uid}, {msg})"
        ));
    }
}

/// An SDK instance with a subscribed event stream and recording callbacks.
#[derive(Debug)]
pub struct User {
    pub sdk: Instance,
    pub events: EventStream,
    pub calls: Arc<Recorder>,
    /// The account this user logs in as.
    pub account: String,
    /// The uid `on_login_success` reported (0 before login).
    pub uid: u32,
}

impl User {
    /// An instance for `url` that is not logged in.
    pub fn new(url: &str, account: &str) -> Self {
        let sdk = Instance::new(Config::new(url)).expect("a tcp:// url");
        let calls = Arc::new(Recorder::default());
        sdk.callback_set(calls.clone());
        let events = sdk.events();
        Self {
            sdk,
            events,
            calls,
            account: account.to_owned(),
            uid: 0,
        }
    }

    /// The next event that satisfies `want`, within [`TIMEOUT`]; panics otherwise.
    pub async fn expect(&mut self, want: impl FnMut(&Event) -> bool) -> Event {
        expect_event(&mut self.events, want, TIMEOUT).await
    }

    /// Logs in to [`APP_ID`] with a valid token and waits for `on_login_success`.
    pub async fn login(&mut self, server: &TestServer) {
        let token = server.token(&self.account);
        self.login_with(APP_ID, &token).await;
    }

    /// Logs in to `app_id` with `token` and waits for `on_login_success`.
    pub async fn login_with(&mut self, app_id: &str, token: &str) {
        self.sdk.login(app_id, &self.account, token, 0, "");
        match self
            .expect(|e| matches!(e, Event::LoginSuccess { .. } | Event::LoginFailed { .. }))
            .await
        {
            Event::LoginSuccess { uid, .. } => self.uid = uid,
            other => panic!("{} could not log in to {app_id}: {other:?}", self.account),
        }
    }

    /// Logs out and waits for `on_logout(101)`.
    pub async fn logout(&mut self) {
        self.sdk.logout();
        let ev = self.expect(|e| matches!(e, Event::Logout { .. })).await;
        assert_eq!(
            ev,
            Event::Logout { ecode: 101 },
            "{} logging out",
            self.account
        );
    }

    /// Asks the server whether `account` is online ("1" or "0").
    pub async fn status_of(&mut self, account: &str) -> String {
        self.sdk.query_user_status(account);
        match self
            .expect(|e| {
                matches!(e, Event::QueryUserStatusResult { name, .. } if name == account)
                    || matches!(e, Event::Error { name, .. } if name == "queryUserStatus")
            })
            .await
        {
            Event::QueryUserStatusResult { status, .. } => status,
            other => panic!("queryUserStatus({account}) failed: {other:?}"),
        }
    }

    /// Polls `status_of(account)` until it reads `want` (presence changes are seen by other
    /// sessions a moment after the callback that caused them).
    pub async fn await_status_of(&mut self, account: &str, want: &str) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let got = self.status_of(account).await;
            if got == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{account} still has status {got}, expected {want}, after {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A user of [`APP_ID`] logged in to `server` with a valid token.
pub async fn logged_in(server: &TestServer, account: &str) -> User {
    let mut u = User::new(server.url(), account);
    u.login(server).await;
    u
}

// ---- waiting for events -------------------------------------------------------------------------

/// Waits up to `timeout` for the next event that satisfies `want`, skipping the others.
///
/// # Panics
///
/// When the time runs out or the stream ends first, with the events that were skipped (the
/// last 30), so the failure says what happened instead.
pub async fn expect_event(
    stream: &mut EventStream,
    mut want: impl FnMut(&Event) -> bool,
    timeout: Duration,
) -> Event {
    let mut skipped = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        while let Some(ev) = stream.next().await {
            if want(&ev) {
                return Some(ev);
            }
            skipped.push(ev);
        }
        None
    })
    .await;
    match found {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!(
            "the instance stopped before the expected event arrived; {}",
            describe(&skipped)
        ),
        Err(_) => panic!(
            "the expected event did not arrive within {timeout:?}; {}",
            describe(&skipped)
        ),
    }
}

/// Checks that no event satisfying `unwanted` arrives within `within`; returns the events that
/// did arrive.
///
/// # Panics
///
/// When such an event arrives.
pub async fn expect_no_event(
    stream: &mut EventStream,
    mut unwanted: impl FnMut(&Event) -> bool,
    within: Duration,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(within, async {
        while let Some(ev) = stream.next().await {
            assert!(
                !unwanted(&ev),
                "unexpected event {ev:?}; {}",
                describe(&seen)
            );
            seen.push(ev);
        }
    })
    .await;
    seen
}

fn describe(events: &[Event]) -> String {
    if events.is_empty() {
        return "no other event came".to_owned();
    }
    let mut s = format!("{} other event(s) came", events.len());
    let from = events.len().saturating_sub(30);
    if from > 0 {
        let _ = write!(s, " (the last 30 shown)");
    }
    s.push(':');
    for ev in &events[from..] {
        let _ = write!(s, "\n    {ev:?}");
    }
    s
}
