//! Fault injection: SDK clients exchange thousands of p2p messages through a proxy that cuts
//! their connections, both directions at once and abruptly (on TCP-based schemes a TCP RST; on
//! QUIC a connection close; whatever is in flight is lost), at random moments; meanwhile
//! clients log out and back in at random, and the server restarts gracefully (on the same port
//! and data directory). The delivery contract (SPEC §5) must hold all the same: every send gets
//! exactly one outcome, every message reported sent reaches its recipient exactly once and in
//! the order its sender sent it, and nothing is received twice.
//!
//! The schedule comes from a seeded generator; set `BECKON_FAULTS_SEED` to replay a seed (the
//! test prints the one it used). Thread timing still varies from run to run, so a seed makes a
//! failure likely to recur rather than certain to.
//!
//! `BECKON_FAULTS_LONG=1` runs the long schedule: 100,000 messages, well over 1,000 connection
//! resets, a restart every 10-20 s and a logout per client every 5-15 s (several minutes). CI
//! runs the short one: 4,000 messages, one restart, a few logouts.
//!
//! Self-contained on purpose: it uses only the public server, transport and SDK APIs, and of
//! the shared test helpers only the transport choice (`BECKON_TEST_TRANSPORT`) and the test
//! certificate.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beckon_broker::BrokerStats;
use beckon_sdk::{Callbacks, ClientConfig, Instance};
use beckon_server::{Server, ServerConfig, ServerHandle, Storage};
use beckon_tests::{any_port, config as sdk_config, scheme, test_client_tls, test_tls};
use beckon_transport::{Endpoint, Listener, ListenerConfig, Scheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Client pairs; the two clients of a pair send to each other.
const PAIRS: usize = 4;
/// The most messages one client has sent and not yet had an outcome for.
const WINDOW: usize = 128;
/// Burst sizes, and the pause after a burst per message in it (random up to twice this): the
/// traffic is spread over a few seconds so that the cuts land in it, about 40 bursts per client.
const BURST: (u64, u64) = (1, 24);
const PAUSE_PER_MESSAGE_MS: u64 = 10;
/// The proxy cuts a connection every this many milliseconds (uniformly at random).
const CUT_EVERY_MS: (u64, u64) = (20, 200);
/// How long a client that logged out waits before it logs in again (uniformly at random).
const LOGGED_OUT_MS: (u64, u64) = (30, 300);
/// Everything — logins, sending, delivery — must be done within this.
const OVERALL: Duration = Duration::from_secs(60);

/// How much the schedule does: the short one CI runs, or the long one.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    /// Messages per pair, half in each direction.
    per_pair: usize,
    /// Restarts: the first after this many ms, then every this many ms (uniformly at random).
    first_restart_ms: u64,
    restart_every_ms: (u64, u64),
    /// Each client logs out every this many ms (uniformly at random).
    logout_every_ms: (u64, u64),
    overall: Duration,
}

impl Schedule {
    fn from_env() -> Self {
        if std::env::var("BECKON_FAULTS_LONG").is_ok_and(|v| !v.is_empty() && v != "0") {
            Schedule {
                per_pair: 25_000,
                first_restart_ms: 10_000,
                restart_every_ms: (10_000, 20_000),
                logout_every_ms: (5_000, 15_000),
                overall: Duration::from_secs(1800),
            }
        } else {
            Schedule {
                per_pair: 1000,
                first_restart_ms: 1_500,
                restart_every_ms: (600_000, 600_000),
                logout_every_ms: (1_500, 4_000),
                overall: OVERALL,
            }
        }
    }
}
/// After the last expected delivery, how long to keep listening for late duplicates.
const SETTLE: Duration = Duration::from_millis(500);

const APP: &str = "faults";
const DEFAULT_SEED: u64 = 0x5EED_FA17;

// ---- a small seeded generator -----------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

/// A development server listening on the suite's scheme only.
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::development();
    config.listen = vec![any_port(scheme())];
    config.tls = Some(test_tls().clone());
    config
}

/// A data directory, removed when dropped.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("beckon-faults-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server under test, restarted gracefully now and then on the same address and data
/// directory; the counters of every instance so far.
struct Restartable {
    config: ServerConfig,
    handle: Option<ServerHandle>,
    restarts: u64,
    /// The counters of the instances that have stopped.
    earlier: BrokerStats,
}

impl Restartable {
    async fn start(data: &DataDir) -> Self {
        let mut config = server_config();
        config.storage = Storage::Dir(data.0.clone());
        let handle = Server::spawn(config.clone())
            .await
            .expect("bind 127.0.0.1:0");
        // Every later instance listens where the first one did.
        config.listen = handle.endpoints().to_vec();
        Self {
            config,
            handle: Some(handle),
            restarts: 0,
            earlier: BrokerStats::default(),
        }
    }

    fn endpoint(&self) -> Endpoint {
        self.config.listen[0].clone()
    }

    /// SIGTERM and a new process, as an operator restarts: shut down, start again.
    async fn restart(&mut self) {
        if let Some(handle) = self.handle.take() {
            add(&mut self.earlier, &handle.stats().await);
            handle.shutdown().await;
        }
        // The port was just freed; binding it again may take a moment on a loaded machine.
        for attempt in 0.. {
            match Server::spawn(self.config.clone()).await {
                Ok(h) => {
                    self.handle = Some(h);
                    break;
                }
                Err(e) if attempt < 50 => {
                    eprintln!("faults: restart attempt {attempt} failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the server did not come back: {e}"),
            }
        }
        self.restarts += 1;
    }

    /// The counters of every instance so far.
    async fn stats(&self) -> BrokerStats {
        let mut all = self.earlier;
        if let Some(h) = &self.handle {
            add(&mut all, &h.stats().await);
        }
        all
    }

    async fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// Adds the counters this test reports.
fn add(to: &mut BrokerStats, s: &BrokerStats) {
    to.resumes += s.resumes;
    to.messages_stored += s.messages_stored;
    to.messages_delivered += s.messages_delivered;
    to.overflows += s.overflows;
    to.grace_expiries += s.grace_expiries;
    to.store_errors += s.store_errors;
}

// ---- the proxy ------------------------------------------------------------------------------------

/// A proxy on 127.0.0.1 in front of `upstream` that cuts connections at random moments. For
/// the TCP-based schemes it forwards bytes (TLS and WebSocket pass through untouched); QUIC
/// cannot be cut from outside, so for it the proxy terminates QUIC on both sides and forwards
/// frames.
struct Proxy {
    url: String,
    /// Live connections: id → what cuts it.
    live: Arc<Mutex<BTreeMap<u64, oneshot::Sender<()>>>>,
    cuts: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    chaos_on: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: Endpoint, mut rng: Rng) -> Self {
        let front = if upstream.scheme == Scheme::Quic {
            let l = Listener::bind(ListenerConfig {
                endpoint: any_port(Scheme::Quic),
                tls: Some(test_tls().clone()),
                max_frame: beckon_sdk::DEFAULT_MAX_SERVER_FRAME,
            })
            .await
            .expect("bind");
            Front::Quic(l)
        } else {
            Front::Tcp(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        };
        let url = match &front {
            Front::Tcp(l) => upstream.with_port(l.local_addr().unwrap().port()),
            Front::Quic(l) => l.endpoint().clone(),
        }
        .to_string();
        let live: Arc<Mutex<BTreeMap<u64, oneshot::Sender<()>>>> = Arc::default();
        let cuts = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let chaos_on = Arc::new(AtomicBool::new(false));

        let accept = {
            let live = live.clone();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let mut next_id = 0u64;
                let upstream_addr: SocketAddr = upstream.authority().parse().unwrap();
                loop {
                    let client = match &front {
                        Front::Tcp(l) => match l.accept().await {
                            Ok((client, _)) => Client::Tcp(client),
                            Err(_) => continue,
                        },
                        Front::Quic(l) => match l.accept().await {
                            Ok(incoming) => Client::Quic(incoming),
                            Err(_) => continue,
                        },
                    };
                    next_id += 1;
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let (cut, cut_rx) = oneshot::channel();
                    live.lock().unwrap().insert(next_id, cut);
                    let live = live.clone();
                    let id = next_id;
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        match client {
                            Client::Tcp(client) => pump(client, upstream_addr, cut_rx).await,
                            Client::Quic(incoming) => {
                                pump_frames(incoming, &upstream, cut_rx).await;
                            }
                        }
                        live.lock().unwrap().remove(&id);
                    });
                }
            })
        };

        let chaos = {
            let live = live.clone();
            let cuts = cuts.clone();
            let chaos_on = chaos_on.clone();
            tokio::spawn(async move {
                loop {
                    let wait = rng.range(CUT_EVERY_MS.0, CUT_EVERY_MS.1);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    if !chaos_on.load(Ordering::Relaxed) {
                        continue;
                    }
                    let victims: Vec<oneshot::Sender<()>> = {
                        let mut live = live.lock().unwrap();
                        let ids: Vec<u64> = live.keys().copied().collect();
                        if ids.is_empty() {
                            continue;
                        }
                        // Mostly one connection; now and then all of them at once.
                        let chosen: Vec<u64> = if rng.range(0, 9) == 0 {
                            ids
                        } else {
                            let pick = rng.range(0, ids.len() as u64 - 1) as usize;
                            vec![ids[pick]]
                        };
                        chosen.iter().filter_map(|id| live.remove(id)).collect()
                    };
                    for cut in victims {
                        if cut.send(()).is_ok() {
                            cuts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };

        Self {
            url,
            live,
            cuts,
            accepted,
            chaos_on,
            tasks: vec![accept, chaos],
        }
    }

    fn set_chaos(&self, on: bool) {
        self.chaos_on.store(on, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Cuts whatever is still connected.
        self.live.lock().unwrap().clear();
    }
}

enum Front {
    Tcp(TcpListener),
    Quic(Listener),
}

enum Client {
    Tcp(TcpStream),
    Quic(beckon_transport::Incoming),
}

/// Forwards frames between a QUIC client and the server until either side closes or the
/// connection is cut; a cut drops both connections, which closes them at once and loses
/// whatever the proxy held.
async fn pump_frames(
    incoming: beckon_transport::Incoming,
    upstream: &Endpoint,
    cut: oneshot::Receiver<()>,
) {
    let Ok(Some(client)) = incoming.establish().await else {
        return;
    };
    let Ok(server) = beckon_transport::connect(
        upstream,
        &test_client_tls(),
        beckon_sdk::DEFAULT_MAX_SERVER_FRAME,
    )
    .await
    else {
        return;
    };
    tokio::select! {
        () = beckon_tests::forward(client, server) => {}
        _ = cut => {}
    }
}

/// Forwards bytes both ways until either side closes or the connection is cut. A cut resets
/// both sockets (SO_LINGER 0, so the close sends RST, not FIN) and drops whatever the proxy
/// had read and not yet written.
async fn pump(mut client: TcpStream, upstream: SocketAddr, cut: oneshot::Receiver<()>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let was_cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
        r = cut => r.is_ok(),
    };
    if was_cut {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    drop(client);
    drop(server);
}

// ---- clients that record everything -----------------------------------------------------------------

#[derive(Debug, Default)]
struct Record {
    /// Message id → outcomes (Ok, or the error code).
    outcomes: HashMap<String, Vec<Result<(), i32>>>,
    /// (sender, body) in the order received.
    received: Vec<(String, String)>,
    reconnecting: u64,
    reconnected: u64,
    logged_in: bool,
    logouts: Vec<i32>,
    login_failures: Vec<i32>,
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Record>);

impl Recorder {
    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

impl Callbacks for Recorder {
    fn on_login_success(&self, _uid: u32, _fd: i32) {
        self.with(|r| r.logged_in = true);
    }
    fn on_login_failed(&self, ecode: i32) {
        self.with(|r| r.login_failures.push(ecode));
    }
    fn on_logout(&self, ecode: i32) {
        self.with(|r| {
            // LOGOUT_E_USER is the schedule's own logout; anything else is a failure.
            if ecode != 101 {
                r.logouts.push(ecode);
            }
            r.logged_in = false;
        });
    }
    fn on_reconnecting(&self, _nretry: u32) {
        self.with(|r| r.reconnecting += 1);
    }
    fn on_reconnected(&self, _fd: i32) {
        self.with(|r| r.reconnected += 1);
    }
    fn on_message_send_success(&self, message_id: &str) {
        self.with(|r| {
            r.outcomes
                .entry(message_id.to_owned())
                .or_default()
                .push(Ok(()))
        });
    }
    fn on_message_send_error(&self, message_id: &str, ecode: i32) {
        self.with(|r| {
            r.outcomes
                .entry(message_id.to_owned())
                .or_default()
                .push(Err(ecode))
        });
    }
    fn on_message_instant_receive(&self, account: &str, _uid: u32, msg: &str) {
        self.with(|r| r.received.push((account.to_owned(), msg.to_owned())));
    }
}

struct Peer {
    account: String,
    /// Whom this client sends to.
    to: String,
    sdk: Arc<Instance>,
    rec: Arc<Recorder>,
}

fn message_id(from: &str, i: usize) -> String {
    format!("{from}-{i}")
}

fn body(from: &str, i: usize) -> String {
    format!("{from}:{i}")
}

/// Sends `count` messages from `peer`, in bursts of random size with random pauses between
/// them, keeping at most [`WINDOW`] without an outcome.
async fn send_all(peer: Arc<Peer>, count: usize, mut rng: Rng) {
    let mut i = 0;
    while i < count {
        let burst = usize::try_from(rng.range(BURST.0, BURST.1))
            .unwrap()
            .min(count - i);
        // Wait for room in the window.
        loop {
            let done = peer.rec.with(|r| r.outcomes.len());
            if i - done.min(i) + burst <= WINDOW {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for _ in 0..burst {
            let id = message_id(&peer.account, i);
            let got = peer
                .sdk
                .message_instant_send(&peer.to, 0, &body(&peer.account, i), &id);
            assert_eq!(got, id);
            i += 1;
        }
        let pause = rng.range(0, 2 * PAUSE_PER_MESSAGE_MS * burst as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Logs `peer` out every now and then, and back in a moment later, while `chaos` is on.
async fn log_out_now_and_then(
    peer: Arc<Peer>,
    every: (u64, u64),
    chaos: Arc<AtomicBool>,
    mut rng: Rng,
) -> u64 {
    let mut logouts = 0;
    loop {
        if !while_chaos(&chaos, rng.range(every.0, every.1)).await {
            return logouts;
        }
        peer.sdk.logout();
        logouts += 1;
        tokio::time::sleep(Duration::from_millis(
            rng.range(LOGGED_OUT_MS.0, LOGGED_OUT_MS.1),
        ))
        .await;
        peer.sdk
            .login2(APP, &peer.account, "_no_need_token", 0, "", 120, 10_000);
    }
}

/// Waits `ms` milliseconds; false (at once) when `chaos` goes off meanwhile.
async fn while_chaos(chaos: &AtomicBool, ms: u64) -> bool {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        if !chaos.load(Ordering::Relaxed) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chaos.load(Ordering::Relaxed)
}

/// Restarts the server now and then while `chaos` is on.
async fn restart_now_and_then(
    server: Arc<tokio::sync::Mutex<Restartable>>,
    schedule: Schedule,
    chaos: Arc<AtomicBool>,
    mut rng: Rng,
) {
    let mut wait = schedule.first_restart_ms;
    loop {
        if !while_chaos(&chaos, wait).await {
            return;
        }
        server.lock().await.restart().await;
        wait = rng.range(schedule.restart_every_ms.0, schedule.restart_every_ms.1);
    }
}

// ---- the test ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_delivery_survives_cuts_logouts_and_restarts() {
    let seed = std::env::var("BECKON_FAULTS_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(DEFAULT_SEED);
    let schedule = Schedule::from_env();
    eprintln!("faults: seed={seed:#x} (set BECKON_FAULTS_SEED to replay) {schedule:?}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let deadline = started + schedule.overall;

    let data = DataDir::new();
    let server = Restartable::start(&data).await;
    eprintln!("faults: over {}", server.endpoint());
    let proxy = Proxy::start(server.endpoint(), rng.fork()).await;
    let server = Arc::new(tokio::sync::Mutex::new(server));

    // Two clients per pair, each its own instance, through the proxy.
    let mut peers = Vec::new();
    for p in 0..PAIRS {
        let (a, b) = (format!("a{p}"), format!("b{p}"));
        for (me, to) in [(a.clone(), b.clone()), (b, a)] {
            let mut cfg = sdk_config(proxy.url.clone());
            cfg.client = ClientConfig {
                seed: rng.next(),
                // Quick to come back: the proxy cuts every connection about once a second.
                first_attempt_jitter: Duration::from_millis(30),
                initial_backoff: Duration::from_millis(30),
                max_backoff: Duration::from_millis(300),
                connect_timeout: Duration::from_secs(5),
                ..cfg.client
            };
            let sdk = Instance::new(cfg).expect("a valid url");
            let rec = Arc::new(Recorder::default());
            sdk.callback_set(rec.clone());
            // A generous policy: many attempts, and more time than the whole test.
            sdk.login2(APP, &me, "_no_need_token", 0, "", 120, 10_000);
            peers.push(Arc::new(Peer {
                account: me,
                to,
                sdk: Arc::new(sdk),
                rec,
            }));
        }
    }
    while !peers.iter().all(|p| p.rec.with(|r| r.logged_in)) {
        assert!(Instant::now() < deadline, "logins did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Cut connections, log clients out and restart the server while everybody sends.
    proxy.set_chaos(true);
    let chaos = proxy.chaos_on.clone();
    let logouters: Vec<_> = peers
        .iter()
        .map(|p| {
            let every = schedule.logout_every_ms;
            tokio::spawn(log_out_now_and_then(
                p.clone(),
                every,
                chaos.clone(),
                rng.fork(),
            ))
        })
        .collect();
    let restarter = tokio::spawn(restart_now_and_then(
        server.clone(),
        schedule,
        chaos.clone(),
        rng.fork(),
    ));
    let per_client = schedule.per_pair / 2;
    let senders: Vec<_> = peers
        .iter()
        .map(|p| tokio::spawn(send_all(p.clone(), per_client, rng.fork())))
        .collect();
    let sent = peers.len() * per_client;
    for s in senders {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, s)
            .await
            .expect("sending finished within the overall bound")
            .expect("a sender task panicked");
    }

    // Wait for an outcome for every send.
    let outcomes_in = || {
        peers
            .iter()
            .map(|p| p.rec.with(|r| r.outcomes.len()))
            .sum::<usize>()
    };
    while outcomes_in() < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set_chaos(false);
    let chaos_ended = Instant::now();
    // Whoever is logged out logs in again: what was kept for it is delivered then.
    let mut logouts = 0;
    for l in logouters {
        logouts += l.await.expect("a logout task panicked");
    }
    restarter.await.expect("the restart task panicked");
    for p in &peers {
        if !p.rec.with(|r| r.logged_in) && p.sdk.get_status() == 0 {
            p.sdk
                .login2(APP, &p.account, "_no_need_token", 0, "", 120, 10_000);
        }
    }

    // Then for every message reported sent to arrive.
    let by_account: HashMap<String, Arc<Peer>> = peers
        .iter()
        .map(|p| (p.account.clone(), p.clone()))
        .collect();
    let undelivered = || -> usize {
        let mut n = 0;
        for p in &peers {
            let succeeded: Vec<usize> = p.rec.with(|r| {
                (0..per_client)
                    .filter(|i| {
                        r.outcomes
                            .get(&message_id(&p.account, *i))
                            .is_some_and(|o| o.contains(&Ok(())))
                    })
                    .collect()
            });
            let got: std::collections::HashSet<String> = by_account[&p.to].rec.with(|r| {
                r.received
                    .iter()
                    .filter(|(from, _)| *from == p.account)
                    .map(|(_, m)| m.clone())
                    .collect()
            });
            n += succeeded
                .iter()
                .filter(|i| !got.contains(&body(&p.account, **i)))
                .count();
        }
        n
    };
    while undelivered() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(SETTLE).await;

    // ---- the verdict ----
    let mut problems: Vec<String> = Vec::new();
    let (mut delivered, mut failed, mut lost, mut duplicated) = (0usize, 0usize, 0usize, 0usize);
    let (mut no_outcome, mut double_outcome, mut out_of_order) = (0usize, 0usize, 0usize);
    let mut failed_but_delivered = 0usize;
    let mut error_codes: BTreeMap<i32, usize> = BTreeMap::new();
    for p in &peers {
        let outcomes = p.rec.with(|r| r.outcomes.clone());
        // What the recipient got from this sender, in order, as message numbers.
        let got: Vec<usize> = by_account[&p.to].rec.with(|r| {
            r.received
                .iter()
                .filter(|(from, _)| *from == p.account)
                .map(|(_, m)| {
                    m.strip_prefix(&format!("{}:", p.account))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("a message nobody sent: {m:?}"))
                })
                .collect()
        });
        let mut times_received: HashMap<usize, usize> = HashMap::new();
        for n in &got {
            *times_received.entry(*n).or_default() += 1;
        }
        for (n, times) in &times_received {
            if *times > 1 {
                duplicated += 1;
                problems.push(format!(
                    "{} received {}'s message #{n} {times} times",
                    p.to, p.account
                ));
            }
        }
        let mut last = None;
        for n in &got {
            if last.is_some_and(|l| *n <= l) && times_received[n] == 1 {
                out_of_order += 1;
                problems.push(format!(
                    "{} received {}'s message #{n} after #{}",
                    p.to,
                    p.account,
                    last.unwrap_or_default()
                ));
            }
            last = Some(last.map_or(*n, |l: usize| l.max(*n)));
        }
        for i in 0..per_client {
            let id = message_id(&p.account, i);
            let received = times_received.contains_key(&i);
            match outcomes.get(&id).map(Vec::as_slice) {
                None | Some([]) => {
                    no_outcome += 1;
                    problems.push(format!("{id}: no outcome (received: {received})"));
                }
                Some([Ok(())]) if received => delivered += 1,
                Some([Ok(())]) => {
                    lost += 1;
                    problems.push(format!("{id}: reported sent, never received"));
                }
                Some([Err(code)]) => {
                    failed += 1;
                    *error_codes.entry(*code).or_default() += 1;
                    if received {
                        failed_but_delivered += 1;
                    }
                }
                Some(more) => {
                    double_outcome += 1;
                    problems.push(format!("{id}: {} outcomes: {more:?}", more.len()));
                }
            }
        }
    }
    let cuts = proxy.cuts.load(Ordering::Relaxed);
    let connections = proxy.accepted.load(Ordering::Relaxed);
    let (reconnecting, reconnected): (u64, u64) = peers
        .iter()
        .map(|p| p.rec.with(|r| (r.reconnecting, r.reconnected)))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    let gave_up: Vec<(String, Vec<i32>)> = peers
        .iter()
        .filter_map(|p| {
            let l = p.rec.with(|r| r.logouts.clone());
            (!l.is_empty()).then(|| (p.account.clone(), l))
        })
        .collect();
    let (stats, restarts) = {
        let server = server.lock().await;
        (server.stats().await, server.restarts)
    };
    let acknowledged = delivered + lost;
    eprintln!(
        "faults: sent={sent} acknowledged={acknowledged} delivered={delivered} \
         duplicated={duplicated} lost={lost} failed={failed} error_codes={error_codes:?} \
         resets={cuts} restarts={restarts} logouts={logouts} no_outcome={no_outcome} \
         double_outcome={double_outcome} out_of_order={out_of_order} \
         failed_but_delivered={failed_but_delivered} connections={connections} \
         reconnecting={reconnecting} reconnected={reconnected} resumes={} stored_offline={} \
         overflows={} store_errors={} gave_up={gave_up:?} chaos={:.1}s total={:.1}s \
         seed={seed:#x}",
        stats.resumes,
        stats.messages_stored,
        stats.overflows,
        stats.store_errors,
        chaos_ended.duration_since(started).as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    for p in problems.iter().take(30) {
        eprintln!("faults: {p}");
    }

    for p in &peers {
        p.sdk.logout();
    }
    drop(proxy);
    let server = Arc::into_inner(server)
        .expect("the restart task has ended")
        .into_inner();
    server.shutdown().await;

    assert!(
        cuts >= 10,
        "the proxy cut only {cuts} connections: the test did not test much"
    );
    assert_eq!(no_outcome, 0, "every send gets an outcome (seed {seed:#x})");
    assert_eq!(
        double_outcome, 0,
        "every send gets exactly one outcome (seed {seed:#x})"
    );
    assert_eq!(
        duplicated, 0,
        "no message is received twice (seed {seed:#x})"
    );
    assert_eq!(
        lost, 0,
        "every message reported sent is received (seed {seed:#x})"
    );
    assert_eq!(
        out_of_order, 0,
        "messages arrive in the order their sender sent them (seed {seed:#x})"
    );
    assert!(
        gave_up.is_empty(),
        "no client gave up reconnecting: {gave_up:?} (seed {seed:#x})"
    );
    assert!(restarts >= 1, "the server was restarted");
    assert!(logouts >= 1, "clients logged out");
    assert_eq!(delivered + failed, sent);
}

// ---- a known broker bug ---------------------------------------------------------------------------

/// A session that goes to grace and is then sent more than it may hold unacknowledged (8 MiB
/// by default) overflows: it ends and its unacknowledged messages go back to the offline store,
/// without the per-account cap. At the account's next login the broker takes that whole
/// backlog from the store and emits it into the fresh session at once, which overflows again:
/// the session ends, the messages emitted so far go back to the store, and the rest of the
/// backlog — already taken out of the store — is dropped (`Broker::open_session` delivers into a
/// session that no longer exists, and `emit_encoded` returns `None`, dropping the message).
/// Every later login overflows the same way, so the client reconnects forever and never gets
/// the tail. Found while probing the delivery contract beyond the fault test; kept here,
/// ignored, as the reproduction for the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_backlog_larger_than_the_unacked_bound_is_delivered() {
    const N: usize = 1100;
    const SIZE: usize = 8000;
    let deadline = Instant::now() + OVERALL;
    let server = Server::spawn(server_config())
        .await
        .expect("bind 127.0.0.1:0");
    let url = server.endpoints()[0].to_string();
    let login = |account: &str| {
        let sdk = Instance::new(sdk_config(url.clone())).expect("a valid url");
        let rec = Arc::new(Recorder::default());
        sdk.callback_set(rec.clone());
        sdk.login2(APP, account, "_no_need_token", 0, "", 30, 20);
        (sdk, rec)
    };
    let wait = |rec: Arc<Recorder>, what: &'static str, f: fn(&Record) -> bool| async move {
        while !rec.with(|r| f(r)) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    // Bob logs in, then loses his connection: his session waits in grace.
    let (bob, bob_rec) = login("bob");
    wait(bob_rec, "bob's login", |r| r.logged_in).await;
    drop(bob);
    let (alice, alice_rec) = login("alice");
    wait(alice_rec.clone(), "alice's login", |r| r.logged_in).await;
    let pad = "x".repeat(SIZE);
    for i in 0..N {
        alice.message_instant_send("bob", 0, &format!("{i:05} {pad}"), &format!("m{i}"));
    }
    wait(alice_rec.clone(), "every outcome", |r| {
        r.outcomes.len() == N
    })
    .await;
    let succeeded: Vec<usize> = alice_rec.with(|r| {
        (0..N)
            .filter(|i| r.outcomes[&format!("m{i}")] == [Ok(())])
            .collect()
    });

    // Bob comes back (a fresh session: the grace session overflowed and ended).
    let (_bob, bob_rec) = login("bob");
    let received = || -> Vec<usize> {
        bob_rec.with(|r| {
            r.received
                .iter()
                .map(|(_, m)| m[..5].parse().unwrap())
                .collect()
        })
    };
    let bob_deadline = Instant::now() + Duration::from_secs(20);
    while received().len() < succeeded.len() && Instant::now() < bob_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let got = received();
    let reconnects = bob_rec.with(|r| r.reconnecting);
    eprintln!(
        "backlog: reported sent {} of {N}, bob received {} and reconnected {reconnects} times",
        succeeded.len(),
        got.len()
    );
    server.shutdown().await;
    let missing: Vec<&usize> = succeeded.iter().filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "messages reported sent and never received: {missing:?}"
    );
    assert_eq!(
        got, succeeded,
        "every message reported sent, once, in order"
    );
}
