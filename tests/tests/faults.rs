//! Fault injection: SDK clients exchange thousands of p2p messages through a proxy that cuts
//! their connections, both directions at once and abruptly (on TCP-based schemes a TCP RST; on
//! QUIC a connection close; whatever is in flight is lost), at random moments. The delivery contract (SPEC §5) must hold all the same: every send
//! gets exactly one outcome, every message reported sent reaches its recipient exactly once and
//! in the order its sender sent it, and nothing is received twice.
//!
//! The schedule comes from a seeded generator; set `BECKON_FAULTS_SEED` to replay a seed (the
//! test prints the one it used). Thread timing still varies from run to run, so a seed makes a
//! failure likely to recur rather than certain to.
//!
//! Self-contained on purpose: it uses only the public server, transport and SDK APIs, and of
//! the shared test helpers only the transport choice (`BECKON_TEST_TRANSPORT`) and the test
//! certificate.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beckon_sdk::{Callbacks, ClientConfig, Instance};
use beckon_server::{Server, ServerConfig};
use beckon_tests::{any_port, config as sdk_config, scheme, test_client_tls, test_tls};
use beckon_transport::{Endpoint, Listener, ListenerConfig, Scheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Client pairs; the two clients of a pair send to each other.
const PAIRS: usize = 4;
/// Messages per pair, half in each direction.
const PER_PAIR: usize = 1000;
/// The most messages one client has sent and not yet had an outcome for.
const WINDOW: usize = 128;
/// Burst sizes, and the pause after a burst per message in it (random up to twice this): the
/// traffic is spread over a few seconds so that the cuts land in it, about 40 bursts per client.
const BURST: (u64, u64) = (1, 24);
const PAUSE_PER_MESSAGE_MS: u64 = 10;
/// The proxy cuts a connection every this many milliseconds (uniformly at random).
const CUT_EVERY_MS: (u64, u64) = (20, 200);
/// Everything — logins, sending, delivery — must be done within this.
const OVERALL: Duration = Duration::from_secs(60);
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
        self.with(|r| r.logouts.push(ecode));
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

// ---- the test ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_delivery_survives_random_connection_cuts() {
    let seed = std::env::var("BECKON_FAULTS_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(DEFAULT_SEED);
    eprintln!("faults: seed={seed:#x} (set BECKON_FAULTS_SEED to replay)");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let deadline = started + OVERALL;

    let server = Server::spawn(server_config())
        .await
        .expect("bind 127.0.0.1:0");
    eprintln!("faults: over {}", server.endpoints()[0]);
    let proxy = Proxy::start(server.endpoints()[0].clone(), rng.fork()).await;

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

    // Cut connections while everybody sends.
    proxy.set_chaos(true);
    let per_client = PER_PAIR / 2;
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
    let logouts: Vec<(String, Vec<i32>)> = peers
        .iter()
        .filter_map(|p| {
            let l = p.rec.with(|r| r.logouts.clone());
            (!l.is_empty()).then(|| (p.account.clone(), l))
        })
        .collect();
    let stats = server.stats().await;
    eprintln!(
        "faults: sent={sent} delivered={delivered} failed={failed} duplicated={duplicated} \
         lost={lost} disconnects={cuts} no_outcome={no_outcome} double_outcome={double_outcome} \
         out_of_order={out_of_order} failed_but_delivered={failed_but_delivered} \
         error_codes={error_codes:?} connections={connections} reconnecting={reconnecting} \
         reconnected={reconnected} resumes={} stored_offline={} logouts={logouts:?} \
         chaos={:.1}s total={:.1}s seed={seed:#x}",
        stats.resumes,
        stats.messages_stored,
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
        logouts.is_empty(),
        "no client gave up reconnecting: {logouts:?} (seed {seed:#x})"
    );
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
