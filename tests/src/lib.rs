//! Helpers shared by the end-to-end tests in `tests/tests/`: a real Beckon server on
//! 127.0.0.1 (port 0) with known apps (adjustable per test), tokens minted for it (with or
//! without the server privilege), a proxy that can cut a client's connection, SDK instances
//! that record their callbacks, and waiting for an event with a deadline and a clear failure
//! message.
//!
//! Every test runs over the transport `BECKON_TEST_TRANSPORT` names: `tcp` (the default), `tls`,
//! `quic`, `ws` or `wss` ([`scheme`]). The server listens on that scheme (and on all the others,
//! so tests that mix transports can reach it any way), secure schemes present [`test_tls`]'s
//! certificate, and [`config`] makes SDK configurations that trust it. `cargo xtask test` runs
//! the suite once per scheme.
//!
//! With `BECKON_TEST_CLUSTER=N` ([`cluster_nodes`]), every [`TestServer`] is a cluster instead:
//! a `redis-server` of its own ([`Redis`]) and N nodes in cluster mode on it, with the same apps
//! and secret; [`TestServer::url`] hands the nodes' URLs out in turn, so consecutive clients of
//! a test land on different nodes. A test that cannot hold across nodes returns early through
//! [`skip_in_cluster`], which says so and why. `cargo xtask test` runs the suite once more that
//! way, over TCP with three nodes.
//!
//! Everything here talks over real sockets through the public SDK; nothing reaches into the
//! server's or the client's internals.

pub mod call_events;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use beckon_broker::{AppConfig, Apps, BrokerConfig, BrokerStats};
use beckon_sdk::{Callbacks, Config, Event, EventStream, Instance};
use beckon_server::{ClusterConfig, Server, ServerConfig, ServerHandle};
use beckon_token::{Privileges, TokenClaims};
use beckon_transport::{
    ClientTls, Endpoint, FrameRx, FrameTx, Listener, ListenerConfig, Scheme, ServerTls,
};

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

// ---- transports -----------------------------------------------------------------------------------

/// The scheme this run of the suite uses: `BECKON_TEST_TRANSPORT` (`tcp`, `tls`, `quic`, `ws`,
/// `wss`), `tcp` when unset.
///
/// # Panics
///
/// When the variable names no scheme, so a typo cannot quietly run the suite over TCP.
pub fn scheme() -> Scheme {
    static SCHEME: OnceLock<Scheme> = OnceLock::new();
    *SCHEME.get_or_init(|| match std::env::var("BECKON_TEST_TRANSPORT") {
        Err(_) => Scheme::Tcp,
        Ok(s) => match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "quic" => Scheme::Quic,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => panic!("BECKON_TEST_TRANSPORT={other:?}: expected tcp, tls, quic, ws or wss"),
        },
    })
}

/// Every scheme, in a fixed order.
pub const SCHEMES: [Scheme; 5] = [
    Scheme::Tcp,
    Scheme::Tls,
    Scheme::Quic,
    Scheme::Ws,
    Scheme::Wss,
];

/// The self-signed certificate (for `127.0.0.1` and `localhost`) every test server and proxy
/// presents on its secure schemes, made once per process.
pub fn test_tls() -> &'static ServerTls {
    static TLS: OnceLock<ServerTls> = OnceLock::new();
    TLS.get_or_init(|| {
        ServerTls::self_signed(&["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate")
    })
}

/// Client TLS settings that trust [`test_tls`] (and nothing else).
pub fn test_client_tls() -> ClientTls {
    ClientTls {
        roots: test_tls().cert_chain.clone(),
        ..ClientTls::default()
    }
}

/// An SDK configuration for `url` that trusts the test certificate.
pub fn config(url: impl Into<String>) -> Config {
    let mut config = Config::new(url);
    config.tls = test_client_tls();
    config
}

/// A loopback URL of `scheme` on port 0 (WebSocket URLs get the default path, `/ws`).
pub fn any_port(scheme: Scheme) -> Endpoint {
    format!("{scheme}://127.0.0.1:0")
        .parse()
        .expect("a loopback URL")
}

// ---- cluster mode ---------------------------------------------------------------------------------

/// How many cluster nodes each [`TestServer`] is: `BECKON_TEST_CLUSTER` (a number), 0 (a single
/// server, not in cluster mode) when unset.
///
/// # Panics
///
/// When the variable is not a number.
pub fn cluster_nodes() -> usize {
    static NODES: OnceLock<usize> = OnceLock::new();
    *NODES.get_or_init(|| match std::env::var("BECKON_TEST_CLUSTER") {
        Err(_) => 0,
        Ok(s) if s.is_empty() => 0,
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("BECKON_TEST_CLUSTER={s:?}: expected a number of nodes")),
    })
}

/// Whether the suite runs in cluster mode ([`cluster_nodes`] is not 0).
pub fn cluster_mode() -> bool {
    cluster_nodes() > 0
}

/// In cluster mode, reports that the calling test is skipped and why, and returns `true` (the
/// test then returns at once); otherwise returns `false`. The report goes straight to the
/// standard error, past the test harness's output capture, so a skip is never silent:
/// `skipped in cluster mode: <test>: <reason>`.
pub fn skip_in_cluster(reason: &str) -> bool {
    if !cluster_mode() {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped in cluster mode: {test}: {reason}"
    );
    true
}

/// A `redis-server` on a free 127.0.0.1 port, persistence off, killed when dropped: the
/// cluster tests' and cluster mode's shared state.
///
/// The binary is `BECKON_REDIS_SERVER`, else `redis-server` on `PATH`.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    /// Starts one on a free port and waits until it accepts connections.
    pub async fn start() -> Redis {
        Self::start_on(unused_addr()).await
    }

    /// Starts one on `addr` and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When it cannot be started, or does not listen within [`TIMEOUT`].
    pub async fn start_on(addr: SocketAddr) -> Redis {
        let bin = std::env::var("BECKON_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin:?} ({e}): the cluster tests need redis-server on PATH \
                     (or BECKON_REDIS_SERVER); .ci/run installs it"
                )
            });
        let redis = Redis { child, addr };
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server on {addr} did not listen within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// One command; its reply's first line (a bulk string's value instead of its length).
    pub async fn cmd(&self, args: &[&str]) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            let _ = write!(req, "${}\r\n{a}\r\n", a.len());
        }
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let mut lines = text.split("\r\n");
            let first = lines.next().unwrap_or_default().to_owned();
            if !text.contains("\r\n") {
                continue;
            }
            if first.starts_with('$') && first != "$-1" {
                if let Some(value) = lines.next()
                    && text.matches("\r\n").count() >= 2
                {
                    return Ok(value.to_owned());
                }
                continue;
            }
            return Ok(first);
        }
    }

    /// Stops it (at once; it keeps nothing).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- server -------------------------------------------------------------------------------------

/// A Beckon server on 127.0.0.1 serving [`APP_ID`], [`OTHER_APP_ID`] and [`DEV_APP_ID`], and no
/// other App ID, over every scheme; [`url`](Self::url) is that of [`scheme`].
///
/// In cluster mode ([`cluster_nodes`]) it is that many nodes on a [`Redis`] of their own, each
/// configured the same way; [`url`](Self::url) and [`url_of`](Self::url_of) name the nodes in
/// turn, [`stats`](Self::stats) adds theirs up, and the rest (addresses, the operator listener)
/// is the first node's. A test that makes its server a cluster node itself
/// ([`ServerConfig::set_cluster`]) gets just that node.
#[derive(Debug)]
pub struct TestServer {
    nodes: Vec<Node>,
    /// Which node [`url`](Self::url) names next.
    next: AtomicUsize,
    redis: Option<Redis>,
}

#[derive(Debug)]
struct Node {
    handle: ServerHandle,
    url: String,
}

/// Listeners on port 0 for every scheme, [`scheme`]'s first.
pub fn test_listen() -> Vec<Endpoint> {
    let first = scheme();
    std::iter::once(first)
        .chain(SCHEMES.into_iter().filter(|s| *s != first))
        .map(any_port)
        .collect()
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose [`APP_ID`] app `tweak` may adjust first (limits, timeouts, …).
    pub async fn start_with_app(tweak: impl FnOnce(&mut AppConfig)) -> Self {
        Self::start_with(|c| c.broker.apps = test_apps_with(tweak)).await
    }

    /// Starts a server whose configuration `tweak` may adjust first.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig {
            listen: test_listen(),
            tls: Some(test_tls().clone()),
            broker: BrokerConfig::new(test_apps(), [42; 32]),
            ..ServerConfig::development()
        };
        tweak(&mut config);
        if !cluster_mode() || config.cluster.is_some() {
            return Self {
                nodes: vec![Node::spawn(config).await],
                next: AtomicUsize::new(0),
                redis: None,
            };
        }
        let redis = Redis::start().await;
        let mut nodes = Vec::with_capacity(cluster_nodes());
        for i in 0..cluster_nodes() {
            let mut config = config.clone();
            config.set_cluster(Some(ClusterConfig {
                node_id: format!("node-{i}"),
                ..ClusterConfig::new(&redis.url()).expect("a redis URL")
            }));
            nodes.push(Node::spawn(config).await);
        }
        Self {
            nodes,
            next: AtomicUsize::new(0),
            redis: Some(redis),
        }
    }

    fn first(&self) -> &ServerHandle {
        &self.nodes[0].handle
    }

    /// The node [`url`](Self::url) names next (always the only one outside cluster mode).
    fn next_node(&self) -> &Node {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.nodes[i % self.nodes.len()]
    }

    /// The URL of [`scheme`], e.g. `quic://127.0.0.1:<port>`; in cluster mode, of the next node.
    pub fn url(&self) -> &str {
        &self.next_node().url
    }

    /// The URL of `scheme`'s listener; in cluster mode, of the next node.
    ///
    /// # Panics
    ///
    /// When the server does not listen on `scheme` (a test that changed `listen`).
    pub fn url_of(&self, scheme: Scheme) -> String {
        self.next_node()
            .handle
            .endpoint(scheme)
            .unwrap_or_else(|| panic!("the test server does not listen on {scheme}"))
            .to_string()
    }

    /// Every listener's URL, [`scheme`]'s first (the first node's, in cluster mode).
    pub fn endpoints(&self) -> &[Endpoint] {
        self.first().endpoints()
    }

    /// The operator listener's base URL (`http://127.0.0.1:PORT`), when the test configured
    /// one (`config.admin`); the first node's, in cluster mode.
    pub fn admin_url(&self) -> Option<String> {
        self.first().admin_addr().map(|a| format!("http://{a}"))
    }

    /// Reloads the configuration file the test named in `config.config_file` (on every node:
    /// the first error, else the first node's report).
    pub async fn reload(&self) -> Result<beckon_broker::admin::ReloadReport, String> {
        let mut first = None;
        for node in &self.nodes {
            let report = node.handle.reload().await?;
            first.get_or_insert(report);
        }
        Ok(first.expect("at least one node"))
    }

    /// The address of the [`url`](Self::url) listener (the first node's, in cluster mode).
    pub fn addr(&self) -> SocketAddr {
        self.first().local_addr()
    }

    /// Each node's statistics, in node order (one entry outside cluster mode).
    pub async fn node_stats(&self) -> Vec<BrokerStats> {
        let mut all = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            all.push(node.handle.stats().await);
        }
        all
    }

    /// The Redis the nodes share, in cluster mode.
    pub fn redis(&self) -> Option<&Redis> {
        self.redis.as_ref()
    }

    /// A valid token for `account` of [`APP_ID`], good for an hour.
    pub fn token(&self, account: &str) -> String {
        mint_token(APP_ID, CERT, account, unix_now() + 3600)
    }

    /// A valid token for `account` of [`APP_ID`] with the server privilege (special channels,
    /// `messageChannelSendForce`, gateway registration), good for an hour.
    pub fn server_token(&self, account: &str) -> String {
        mint_token_with(APP_ID, CERT, account, unix_now() + 3600, Privileges::SERVER)
    }

    /// The broker's statistics; in cluster mode, every node's added up.
    pub async fn stats(&self) -> BrokerStats {
        let mut sum = BrokerStats::default();
        for node in &self.nodes {
            add_stats(&mut sum, &node.handle.stats().await);
        }
        sum
    }

    /// Polls the statistics until `done` holds; returns them. Panics after [`TIMEOUT`] with
    /// `what` and the last statistics.
    pub async fn await_stats(
        &self,
        what: &str,
        done: impl Fn(&BrokerStats) -> bool,
    ) -> BrokerStats {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return stats;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{what} did not happen within {TIMEOUT:?}: {stats:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn shutdown(self) {
        for node in self.nodes {
            node.handle.shutdown().await;
        }
    }
}

impl Node {
    async fn spawn(config: ServerConfig) -> Node {
        let handle = Server::spawn(config)
            .await
            .expect("the test server binds 127.0.0.1:0");
        let url = handle.endpoints()[0].to_string();
        Node { handle, url }
    }
}

/// Adds `more` to `sum`, field by field.
fn add_stats(sum: &mut BrokerStats, more: &BrokerStats) {
    let BrokerStats {
        connections,
        sessions,
        logins,
        login_failures,
        kicks,
        messages_delivered,
        messages_stored,
        slow_consumer_disconnects,
        resumes,
        grace_expiries,
        overflows,
        channel_deliveries,
        channels_expired,
        call_timeouts,
        offline_expired,
        store_errors,
        replayed_events,
        stored_delivered,
        calls_accepted,
        calls_refused,
        calls_ended,
        calls_failed,
        admin_kicks,
        admin_messages,
        logins_refused,
        legacy_logins,
        channels_evicted,
    } = *more;
    sum.connections += connections;
    sum.sessions += sessions;
    sum.logins += logins;
    sum.login_failures += login_failures;
    sum.kicks += kicks;
    sum.messages_delivered += messages_delivered;
    sum.messages_stored += messages_stored;
    sum.slow_consumer_disconnects += slow_consumer_disconnects;
    sum.resumes += resumes;
    sum.grace_expiries += grace_expiries;
    sum.overflows += overflows;
    sum.channel_deliveries += channel_deliveries;
    sum.channels_expired += channels_expired;
    sum.call_timeouts += call_timeouts;
    sum.offline_expired += offline_expired;
    sum.store_errors += store_errors;
    sum.replayed_events += replayed_events;
    sum.stored_delivered += stored_delivered;
    sum.calls_accepted += calls_accepted;
    sum.calls_refused += calls_refused;
    sum.calls_ended += calls_ended;
    sum.calls_failed += calls_failed;
    sum.admin_kicks += admin_kicks;
    sum.admin_messages += admin_messages;
    sum.logins_refused += logins_refused;
    sum.legacy_logins += legacy_logins;
    sum.channels_evicted += channels_evicted;
}

/// The apps of [`TestServer`]: two with certificates, one development app, no template for
/// unknown App IDs.
pub fn test_apps() -> Apps {
    test_apps_with(|_| {})
}

/// [`test_apps`], with the configuration of [`APP_ID`] adjusted by `tweak`.
pub fn test_apps_with(tweak: impl FnOnce(&mut AppConfig)) -> Apps {
    let mut apps = Apps::default();
    let mut app = AppConfig::new(APP_ID, CERT);
    tweak(&mut app);
    apps.insert(app);
    apps.insert(AppConfig::new(OTHER_APP_ID, OTHER_CERT));
    apps.insert(AppConfig::development(DEV_APP_ID));
    apps
}

/// A token for `account` of `app_id`, signed with `certificate`, expiring at `expires_at`
/// (unix seconds).
pub fn mint_token(app_id: &str, certificate: &[u8], account: &str, expires_at: u64) -> String {
    mint_token_with(app_id, certificate, account, expires_at, Privileges::NONE)
}

/// [`mint_token`] granting `privileges`.
pub fn mint_token_with(
    app_id: &str,
    certificate: &[u8],
    account: &str,
    expires_at: u64,
    privileges: Privileges,
) -> String {
    beckon_token::mint(
        certificate,
        &TokenClaims {
            app_id: app_id.to_owned(),
            account: account.to_owned(),
            issued_at: expires_at.saturating_sub(7200),
            expires_at,
            privileges,
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

// ---- a TCP proxy that can cut connections -------------------------------------------------------

/// A proxy between SDK clients and a [`TestServer`], on the suite's [`scheme`], that can cut
/// a client's connection away without touching the server or other clients:
/// [`cut`](Self::cut) closes every connection through it and turns new ones away (accepted,
/// then closed at once) until [`reopen`](Self::reopen). Dropping it closes everything.
///
/// It forwards whole frames, terminating the transport on each side, so it works the same for
/// every scheme; on QUIC, closing a connection sends a close the peer sees at once, as a reset
/// does on TCP.
#[derive(Debug)]
pub struct Proxy {
    url: String,
    state: Arc<Mutex<ProxyState>>,
    acceptor: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct ProxyState {
    closed: bool,
    links: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy forwarding to `server`'s listener of the suite's [`scheme`].
    pub async fn start(server: &TestServer) -> Self {
        Self::start_on(server, scheme()).await
    }

    /// A proxy of `scheme` forwarding to `server`'s listener of that scheme.
    pub async fn start_on(server: &TestServer, scheme: Scheme) -> Self {
        let target: Endpoint = server
            .url_of(scheme)
            .parse()
            .expect("the server's URL parses");
        let listener = Listener::bind(ListenerConfig {
            endpoint: any_port(target.scheme),
            tls: Some(test_tls().clone()),
            max_frame: beckon_sdk::DEFAULT_MAX_SERVER_FRAME,
        })
        .await
        .expect("the proxy binds 127.0.0.1:0");
        let url = listener.endpoint().to_string();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok(incoming) = listener.accept().await {
                let mut st = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if st.closed {
                    drop(incoming); // Turned away: the client sees its connection end.
                    continue;
                }
                st.links.retain(|l| !l.is_finished());
                let target = target.clone();
                st.links.push(tokio::spawn(async move {
                    let Ok(Some(client)) = incoming.establish().await else {
                        return;
                    };
                    let Ok(server) = beckon_transport::connect(
                        &target,
                        &test_client_tls(),
                        beckon_sdk::DEFAULT_MAX_SERVER_FRAME,
                    )
                    .await
                    else {
                        return;
                    };
                    forward(client, server).await;
                }));
            }
        });
        Self {
            url,
            state,
            acceptor,
        }
    }

    /// The proxy's URL, of the suite's [`scheme`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection through the proxy and turns new ones away.
    pub fn cut(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.closed = true;
        for link in st.links.drain(..) {
            link.abort(); // Drops both connections: each side sees its connection end.
        }
    }

    /// Lets connections through again.
    pub fn reopen(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}

/// Forwards frames both ways until either side ends; then both connections are dropped.
pub async fn forward(client: (FrameRx, FrameTx), server: (FrameRx, FrameTx)) {
    async fn pump(mut from: FrameRx, mut to: FrameTx) {
        while let Ok(Some(frame)) = from.read_frame().await {
            if to.write_frame(&frame, b"").await.is_err() || to.flush().await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    }
    let (client_rx, client_tx) = client;
    let (server_rx, server_tx) = server;
    tokio::select! {
        () = pump(client_rx, server_tx) => {}
        () = pump(server_rx, client_tx) => {}
    }
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

    /// The recorded calls whose text starts with `prefix`, in order (e.g. `"on_channel_"` or
    /// `"on_invite_"`).
    pub fn calls_starting_with(&self, prefix: &str) -> Vec<String> {
        self.calls
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn clear(&self) {
        self.calls.lock().expect("not poisoned").clear();
    }

    fn push(&self, call: String) {
        self.calls.lock().expect("not poisoned").push(call);
    }
}

/// Implements [`Callbacks`] for [`Recorder`]: each listed callback records its name and the
/// shown arguments, comma-separated, in parentheses.
macro_rules! record {
    ($($name:ident($($arg:ident: $ty:ty),*) => [$($shown:expr),*];)*) => {
        impl Callbacks for Recorder {
            $(fn $name(&self, $($arg: $ty),*) {
                let shown: Vec<String> = vec![$($shown.to_string()),*];
                self.push(format!("{}({})", stringify!($name), shown.join(", ")));
            })*
        }
    };
}

/// `[a, b, …]`.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", items.join(", "))
}

record! {
    on_login_success(uid: u32, fd: i32) => [uid, fd];
    on_login_failed(ecode: i32) => [ecode];
    on_logout(ecode: i32) => [ecode];
    on_reconnecting(nretry: u32) => [nretry];
    on_reconnected(fd: i32) => [fd];
    on_error(name: &str, ecode: i32, _desc: &str) => [name, ecode];
    on_query_user_status_result(name: &str, status: &str) => [name, status];
    on_user_attr_result(account: &str, name: &str, value: &str) => [account, name, value];
    on_user_attr_all_result(account: &str, value: &str) => [account, value];
    on_invoke_ret(call_id: &str, err: &str, resp: &str) => [call_id, err, resp];
    on_message_send_success(message_id: &str) => [message_id];
    on_message_send_error(message_id: &str, ecode: i32) => [message_id, ecode];
    on_message_instant_receive(account: &str, uid: u32, msg: &str) => [account, uid, msg];
    on_message_channel_receive(channel_id: &str, account: &str, uid: u32, msg: &str)
        => [channel_id, account, uid, msg];
    on_channel_joined(channel_id: &str) => [channel_id];
    on_channel_join_failed(channel_id: &str, ecode: i32) => [channel_id, ecode];
    on_channel_leaved(channel_id: &str, ecode: i32) => [channel_id, ecode];
    on_channel_user_joined(account: &str, uid: u32) => [account, uid];
    on_channel_user_leaved(account: &str, uid: u32) => [account, uid];
    on_channel_user_list(accounts: &[String], uids: &[u32]) => [list(accounts), list(uids)];
    on_channel_query_user_num_result(channel_id: &str, ecode: i32, num: i32)
        => [channel_id, ecode, num];
    on_channel_query_user_is_in(channel_id: &str, account: &str, is_in: i32)
        => [channel_id, account, is_in];
    on_channel_attr_updated(channel_id: &str, name: &str, value: &str, kind: &str)
        => [channel_id, name, value, kind];
    on_invite_received(channel_id: &str, account: &str, uid: u32, extra: &str)
        => [channel_id, account, uid, extra];
    on_invite_received_by_peer(channel_id: &str, account: &str, uid: u32)
        => [channel_id, account, uid];
    on_invite_accepted_by_peer(channel_id: &str, account: &str, uid: u32, extra: &str)
        => [channel_id, account, uid, extra];
    on_invite_refused_by_peer(channel_id: &str, account: &str, uid: u32, extra: &str)
        => [channel_id, account, uid, extra];
    on_invite_failed(channel_id: &str, account: &str, uid: u32, ecode: i32, extra: &str)
        => [channel_id, account, uid, ecode, extra];
    on_invite_end_by_myself(channel_id: &str, account: &str, uid: u32)
        => [channel_id, account, uid];
    on_invite_end_by_peer(channel_id: &str, account: &str, uid: u32, extra: &str)
        => [channel_id, account, uid, extra];
    on_invite_msg(
        channel_id: &str, account: &str, uid: u32, msg_type: &str, msg_data: &str, extra: &str
    ) => [channel_id, account, uid, msg_type, msg_data, extra];
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
        Self::with_config(config(url), account)
    }

    /// An instance with reconnect timings short enough for tests that cut connections (first
    /// attempt within 20 ms, back-off 20–100 ms).
    pub fn quick(url: &str, account: &str) -> Self {
        let mut config = config(url);
        config.client.first_attempt_jitter = Duration::from_millis(20);
        config.client.initial_backoff = Duration::from_millis(20);
        config.client.max_backoff = Duration::from_millis(100);
        config.client.connect_timeout = Duration::from_secs(2);
        Self::with_config(config, account)
    }

    /// An instance built from `config` that is not logged in.
    pub fn with_config(config: Config, account: &str) -> Self {
        let sdk = Instance::new(config).expect("a valid url");
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

    /// Waits for the next event `stop` accepts (skipping the others) and asserts it is `want`.
    pub async fn expect_eq(&mut self, stop: impl FnMut(&Event) -> bool, want: Event) {
        let got = self.expect(stop).await;
        assert_eq!(got, want, "{}'s next event of this kind", self.account);
    }

    /// Waits for the next event of `want`'s kind (skipping the others) and asserts it is `want`.
    pub async fn expect_next(&mut self, want: Event) {
        let kind = std::mem::discriminant(&want);
        self.expect_eq(|e| std::mem::discriminant(e) == kind, want)
            .await;
    }

    /// Logs in to [`APP_ID`] with a valid token and waits for `on_login_success`.
    pub async fn login(&mut self, server: &TestServer) {
        let token = server.token(&self.account);
        self.login_with(APP_ID, &token).await;
    }

    /// Logs in to [`APP_ID`] with a token carrying the server privilege.
    pub async fn login_as_server(&mut self, server: &TestServer) {
        let token = server.server_token(&self.account);
        self.login_with(APP_ID, &token).await;
    }

    /// Logs in to `app_id` with `token` and waits for `on_login_success`.
    pub async fn login_with(&mut self, app_id: &str, token: &str) {
        self.sdk.login(app_id, &self.account, token, 0, "");
        self.await_login(app_id).await;
    }

    /// Waits for the outcome of a login already started, which must be a success.
    pub async fn await_login(&mut self, app_id: &str) {
        match self
            .expect(|e| matches!(e, Event::LoginSuccess { .. } | Event::LoginFailed { .. }))
            .await
        {
            Event::LoginSuccess { uid, .. } => self.uid = uid,
            other => panic!("{} could not log in to {app_id}: {other:?}", self.account),
        }
    }

    /// Waits for `on_reconnected(0)`; an `on_logout` first fails the test.
    pub async fn expect_reconnected(&mut self) {
        let ended = |e: &Event| matches!(e, Event::Reconnected { .. } | Event::Logout { .. });
        self.expect_eq(ended, Event::Reconnected { fd: 0 }).await;
    }

    /// Waits for the next instant message, which must be `msg` from `from`.
    pub async fn expect_message(&mut self, from: &str, msg: &str) {
        let (account, msg) = (from.to_owned(), msg.to_owned());
        let want = Event::MessageInstantReceive {
            account,
            uid: 0,
            msg,
        };
        self.expect_next(want).await;
    }

    /// Checks that no instant message reaches this user within 100 ms.
    pub async fn expect_no_instant_message(&mut self) {
        self.expect_none(100, |e| matches!(e, Event::MessageInstantReceive { .. }))
            .await;
    }

    /// Checks that no event `unwanted` accepts reaches this user within `ms` milliseconds;
    /// returns the events that did.
    pub async fn expect_none(
        &mut self,
        ms: u64,
        unwanted: impl FnMut(&Event) -> bool,
    ) -> Vec<Event> {
        expect_no_event(&mut self.events, unwanted, Duration::from_millis(ms)).await
    }

    /// `login2` to [`APP_ID`] with a valid token, a 30 s retry time and `retry_count`
    /// attempts; waits for `on_login_success`.
    pub async fn login_retrying(&mut self, server: &TestServer, retry_count: i32) {
        let token = server.token(&self.account);
        self.sdk
            .login2(APP_ID, &self.account, &token, 0, "", 30, retry_count);
        self.await_login(APP_ID).await;
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

    /// The next `on_error`, which must be `name` with `ecode` and a non-empty description.
    pub async fn expect_error(&mut self, name: &str, ecode: i32) {
        let ev = self.expect(|e| matches!(e, Event::Error { .. })).await;
        assert!(
            matches!(&ev, Event::Error { name: n, ecode: c, desc } if n == name && *c == ecode && !desc.is_empty()),
            "{}: expected on_error({name}, {ecode}, <desc>), got {ev:?}",
            self.account
        );
    }

    /// Joins `channel`, waits for `on_channel_joined` and `on_channel_user_list`, and returns the
    /// member list.
    pub async fn join(&mut self, channel: &str) -> Vec<String> {
        self.sdk.channel_join(channel);
        let ev = self
            .expect(|e| {
                matches!(e, Event::ChannelJoined { channel: c } | Event::ChannelJoinFailed { channel: c, .. } if c == channel)
            })
            .await;
        assert!(
            matches!(ev, Event::ChannelJoined { .. }),
            "{} joining {channel}: {ev:?}",
            self.account
        );
        match self
            .expect(|e| matches!(e, Event::ChannelUserList { .. }))
            .await
        {
            Event::ChannelUserList {
                channel: c,
                accounts,
                uids,
            } => {
                assert_eq!(c, channel);
                assert_eq!(uids, vec![0; accounts.len()], "uids are 0");
                accounts
            }
            _ => unreachable!("matched ChannelUserList"),
        }
    }

    /// Leaves `channel` and waits for `on_channel_leaved(channel, 602)`.
    pub async fn leave(&mut self, channel: &str) {
        self.sdk.channel_leave(channel);
        let ev = self
            .expect(|e| matches!(e, Event::ChannelLeaved { channel: c, .. } if c == channel))
            .await;
        assert_eq!(
            ev,
            Event::ChannelLeaved {
                channel: channel.to_owned(),
                ecode: 602
            },
            "{} leaving",
            self.account
        );
    }

    /// Sends a channel message and waits until this member receives it back: every event the
    /// server sent this session before it (join/leave events, attribute updates, other
    /// messages) has then been seen. Returns the events skipped on the way.
    ///
    /// The marker counts against the channel's and the user's message rate limits.
    pub async fn sync_channel(&mut self, channel: &str) -> Vec<Event> {
        static MARKERS: AtomicU64 = AtomicU64::new(0);
        let marker = format!("sync-{}", MARKERS.fetch_add(1, Ordering::Relaxed));
        let id = self.sdk.message_channel_send(channel, &marker, "");
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{}: the marker on {channel} did not come back; {}",
                        self.account,
                        describe(&seen)
                    )
                })
                .expect("the instance is running");
            match &ev {
                Event::MessageChannelReceive { msg, account, .. }
                    if *msg == marker && *account == self.account =>
                {
                    return seen;
                }
                Event::MessageSendError { message_id, ecode } if *message_id == id => {
                    panic!(
                        "{}: the marker on {channel} failed with {ecode}",
                        self.account
                    )
                }
                _ => seen.push(ev),
            }
        }
    }

    /// `invoke(name, req, call_id)` and its `on_invoke_ret`: (err, resp parsed as JSON, or
    /// `Null` when resp is not JSON).
    pub async fn invoke(
        &mut self,
        name: &str,
        req: &str,
        call_id: &str,
    ) -> (String, serde_json::Value) {
        self.sdk.invoke(name, req, call_id);
        match self
            .expect(|e| matches!(e, Event::InvokeRet { call_id: c, .. } if c == call_id))
            .await
        {
            Event::InvokeRet { err, resp, .. } => (
                err,
                serde_json::from_str(&resp).unwrap_or(serde_json::Value::Null),
            ),
            _ => unreachable!("matched InvokeRet"),
        }
    }

    /// [`invoke`](Self::invoke) of the built-in function `io.agora.signal.{name}`, with the
    /// function's name as the call id.
    pub async fn signal(&mut self, name: &str, req: &str) -> (String, serde_json::Value) {
        self.invoke(&format!("io.agora.signal.{name}"), req, name)
            .await
    }

    /// [`signal`](Self::signal) that must succeed; its response.
    pub async fn signal_ok(&mut self, name: &str, req: &str) -> serde_json::Value {
        let (err, resp) = self.signal(name, req).await;
        assert_eq!(err, "", "{name}({req}) failed: {resp}");
        resp
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

/// A fresh [`TestServer`] and users logged in to it as `accounts`, in order.
pub async fn server_with<const N: usize>(accounts: [&str; N]) -> (TestServer, [User; N]) {
    let server = TestServer::start().await;
    let users = all_logged_in(&server, accounts).await;
    (server, users)
}

/// Users logged in to `server` as `accounts`, in order.
pub async fn all_logged_in<const N: usize>(server: &TestServer, accounts: [&str; N]) -> [User; N] {
    let mut users = Vec::with_capacity(N);
    for account in accounts {
        users.push(logged_in(server, account).await);
    }
    users.try_into().expect("one user per account")
}

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
