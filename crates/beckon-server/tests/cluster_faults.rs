//! Cluster mode under faults, end to end through the Rust SDK: a node killed with SIGKILL in
//! the middle of a paced p2p load and of a paced channel load, a Redis restart in the middle
//! of a p2p load, and nodes on a three-master Redis Cluster (p2p and channels).
//!
//! The loads count every message: sent, acknowledged (`onMessageSendSuccess`), failed
//! (`onMessageSendError`), delivered, duplicated, and lost (acknowledged but never delivered).
//! The delivery promise (SPEC §5, `docs/cluster.md`) is that none is lost and none duplicated;
//! a message whose sender heard a failure may or may not arrive. The counts and times are
//! printed, never compared with a wall-clock limit.
//!
//! Needs `redis-server` and `redis-cli` on PATH (`.ci/run` installs them); without them these
//! tests fail saying so. The tests run one at a time, so their timings do not mix.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use beckon_sdk::{Config, Event, EventStream, Instance};
use beckon_server::{ClusterConfig, Server, ServerConfig, ServerHandle};
use tokio::sync::watch;

use common::process::{ServerProcess, TempDir, TempFile};

/// How long a node counts as alive after its last refresh, in these tests.
const NODE_TTL: Duration = Duration::from_millis(1_500);

/// How long a test waits for what it expects, at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// The development app every node serves without tokens.
const APP: &str = "demo";

/// One test at a time: they start several processes each, and print timings.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---- Redis ------------------------------------------------------------------------------------

fn redis_bin() -> String {
    std::env::var("BECKON_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A port free on 127.0.0.1, and with `bus`, its cluster bus port (10000 above) free too.
fn free_port(bus: bool) -> u16 {
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !bus || (port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()) {
            return port;
        }
    }
    panic!("no free port with a free bus port");
}

/// A `redis-server` of the test's own in a directory of its own, killed when dropped; it can
/// be killed and started again on the same port and directory (keeping what its persistence
/// kept).
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    args: Vec<String>,
}

impl Redis {
    /// One Redis, persistence off.
    fn start() -> Redis {
        Self::start_with(&["--save", "", "--appendonly", "no"], false)
    }

    /// One Redis whose every answered write is on disk before the answer.
    fn start_durable() -> Redis {
        Self::start_with(
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            false,
        )
    }

    fn start_with(args: &[&str], cluster: bool) -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(cluster),
            dir: TempDir::new("redis"),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        redis.run();
        redis
    }

    /// Starts the process (again) and waits until it answers PING.
    fn run(&mut self) {
        let bin = redis_bin();
        let child = Command::new(&bin)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--protected-mode", "no", "--dir", self.dir.path_str()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {bin:?} ({e}): the cluster fault tests need redis-server on \
                     PATH (or BECKON_REDIS_SERVER); .ci/run installs it"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while !matches!(self.cmd(&["PING"]).as_deref(), Ok("+PONG")) {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// One command (arguments without spaces); the first line of its reply.
    fn cmd(&self, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(self.addr())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("{}\r\n", args.join(" ")).as_bytes())?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            if s.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            reply.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&reply).trim_end().to_owned())
    }
}

impl Redis {
    /// How many clients subscribe to `topic` (`PUBSUB NUMSUB`); `None` when Redis does not
    /// answer.
    fn subscribers(&self, topic: &str) -> Option<u64> {
        let mut s = TcpStream::connect(self.addr()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("PUBSUB NUMSUB {topic}\r\n").as_bytes())
            .ok()?;
        // *2, $len, the topic, :count
        let mut reply = String::new();
        let mut buf = [0u8; 256];
        while reply.matches("\r\n").count() < 4 {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        reply.split("\r\n").nth(3)?.strip_prefix(':')?.parse().ok()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- nodes ------------------------------------------------------------------------------------

fn cluster_config(url: &str, id: &str) -> ClusterConfig {
    ClusterConfig {
        node_id: id.to_owned(),
        node_ttl: NODE_TTL,
        redis_timeout: Duration::from_millis(500),
        ..ClusterConfig::new(url).expect("a cluster URL")
    }
}

/// A node in this process, with an operator listener for its probes.
async fn node_in_process(url: &str, id: &str) -> ServerHandle {
    let mut config = ServerConfig::development();
    config.listen = vec!["tcp://127.0.0.1:0".parse().expect("a URL")];
    config.admin = Some("127.0.0.1:0".parse().expect("an address"));
    config.set_cluster(Some(cluster_config(url, id)));
    Server::spawn(config).await.expect("the node starts")
}

/// A node as a process of its own (so it can be killed with SIGKILL), and what it needs.
struct NodeProcess {
    process: ServerProcess,
    _config: TempFile,
    _home: TempDir,
}

impl NodeProcess {
    fn start(url: &str, id: &str) -> NodeProcess {
        let toml = format!(
            "development = true\nlisten = \"tcp://127.0.0.1:0\"\n[cluster]\nurl = \"{url}\"\n\
             node_id = \"{id}\"\nnode_ttl_ms = {}\nredis_timeout_ms = 500\n",
            NODE_TTL.as_millis()
        );
        let config = TempFile::new("cluster.toml", &toml);
        let home = TempDir::new("cluster-home");
        let process = ServerProcess::start(&["--config", config.path_str()], home.path());
        NodeProcess {
            process,
            _config: config,
            _home: home,
        }
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.process.addr)
    }
}

/// `/readyz` of a node's operator listener: its status code (0 when it does not answer).
async fn readyz(admin: SocketAddr) -> u16 {
    let url = format!("http://{admin}/readyz");
    match reqwest::get(url).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

// ---- clients ----------------------------------------------------------------------------------

/// An SDK instance for `url` (then `alternates`, in turn) with quick reconnects.
fn instance(url: &str, alternates: &[String]) -> (Instance, EventStream) {
    let mut config = Config::new(url);
    config.alternates = alternates.to_vec();
    config.client.first_attempt_jitter = Duration::from_millis(20);
    config.client.initial_backoff = Duration::from_millis(20);
    config.client.max_backoff = Duration::from_millis(200);
    config.client.connect_timeout = Duration::from_secs(2);
    let sdk = Instance::new(config).expect("a valid URL");
    let events = sdk.events();
    (sdk, events)
}

/// The next event `want` accepts, skipping others; panics after [`PATIENCE`].
async fn expect(events: &mut EventStream, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let mut skipped = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(ev) = events.next().await {
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
        _ => panic!("{what}: did not come within {PATIENCE:?}; skipped {skipped:?}"),
    }
}

/// An instance logged in as `account` (`login2` with many attempts, so reconnecting survives
/// a dead first URL).
async fn logged_in(url: &str, alternates: &[String], account: &str) -> (Instance, EventStream) {
    let (sdk, mut events) = instance(url, alternates);
    sdk.login2(APP, account, beckon_proto::NO_TOKEN, 0, "", 30, 50);
    let ev = expect(&mut events, account, |e| {
        matches!(e, Event::LoginSuccess { .. } | Event::LoginFailed { .. })
    })
    .await;
    assert!(
        matches!(ev, Event::LoginSuccess { .. }),
        "{account}: {ev:?}"
    );
    (sdk, events)
}

/// `queryUserStatus(account)`: "1" or "0"; panics on an error.
async fn status_of(sdk: &Instance, events: &mut EventStream, account: &str) -> String {
    sdk.query_user_status(account);
    match expect(events, "a status", |e| {
        matches!(e, Event::QueryUserStatusResult { name, .. } if name == account)
            || matches!(e, Event::Error { .. })
    })
    .await
    {
        Event::QueryUserStatusResult { status, .. } => status,
        other => panic!("queryUserStatus({account}): {other:?}"),
    }
}

/// Polls `account`'s status until it reads `want`.
async fn await_status(sdk: &Instance, events: &mut EventStream, account: &str, want: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = status_of(sdk, events, account).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{account} still reads {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the paced load ---------------------------------------------------------------------------

/// What became of one message, by its text (unique per message).
#[derive(Debug, Default, Clone)]
struct Fate {
    acked: bool,
    failed: Option<i32>,
    delivered: u32,
}

/// Every message of a load, and what the clients saw besides.
#[derive(Debug, Default)]
struct Ledger {
    messages: HashMap<String, Fate>,
    /// (account, time since the load started) of each `onReconnected`.
    reconnected: Vec<(String, Duration)>,
    /// (account, code) of each `onLogout`: none is expected.
    logouts: Vec<(String, i32)>,
    /// Deliveries out of per-sender order (a later message of a sender before an earlier one).
    reordered: u32,
    /// The last sequence number each (sender, recipient) delivered.
    last_seq: HashMap<(String, String), u64>,
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client of the load, which sends to `to` (see [`spawn_load`]).
struct Peer {
    account: String,
    to: String,
    sdk: Instance,
    events: EventStream,
}

fn record(ledger: &Shared, me: &str, sent: &HashMap<String, String>, ev: Event, t: Duration) {
    let mut l = lock(ledger);
    match ev {
        Event::MessageSendSuccess { message_id } => {
            if let Some(text) = sent.get(&message_id) {
                l.messages.entry(text.clone()).or_default().acked = true;
            }
        }
        Event::MessageSendError { message_id, ecode } => {
            if let Some(text) = sent.get(&message_id) {
                l.messages.entry(text.clone()).or_default().failed = Some(ecode);
            }
        }
        Event::MessageInstantReceive { account, msg, .. } => {
            // `<from>><to>#<seq>`
            let seq = msg
                .rsplit_once('#')
                .and_then(|(_, s)| s.parse::<u64>().ok())
                .unwrap_or(0);
            let last = l.last_seq.entry((account, me.to_owned())).or_insert(seq);
            let reordered = seq < *last;
            *last = (*last).max(seq);
            if reordered {
                l.reordered += 1;
            }
            l.messages.entry(msg).or_default().delivered += 1;
        }
        Event::Reconnected { .. } => l.reconnected.push((me.to_owned(), t)),
        Event::Logout { ecode } => l.logouts.push((me.to_owned(), ecode)),
        _ => {}
    }
}

/// Starts the peers' load, one task each: `count` messages each, one every `pace`, then
/// recording on until `stop` says so.
fn spawn_load(
    peers: Vec<Peer>,
    count: u64,
    pace: Duration,
    ledger: &Shared,
    stop: &watch::Receiver<bool>,
    started: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    peers
        .into_iter()
        .map(|mut p| {
            let ledger = ledger.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let mut sent: HashMap<String, String> = HashMap::new();
                let mut tick = tokio::time::interval(pace);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seq = 0;
                loop {
                    tokio::select! {
                        ev = p.events.next() => match ev {
                            Some(ev) => record(&ledger, &p.account, &sent, ev, started.elapsed()),
                            None => return,
                        },
                        _ = tick.tick(), if seq < count => {
                            let text = format!("{}>{}#{seq}", p.account, p.to);
                            lock(&ledger).messages.insert(text.clone(), Fate::default());
                            let id = p.sdk.message_instant_send(&p.to, 0, &text, "");
                            sent.insert(id, text);
                            seq += 1;
                        }
                        _ = stop.changed() => return,
                    }
                }
            })
        })
        .collect()
}

/// The counts of a load.
#[derive(Debug)]
struct Counts {
    sent: usize,
    acked: usize,
    failed: usize,
    unresolved: usize,
    delivered: usize,
    duplicated: u32,
    lost: usize,
    failed_delivered: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {}, failed {} (of which delivered {}), no outcome {}, \
             delivered {}, duplicated {}, lost {}",
            self.sent,
            self.acked,
            self.failed,
            self.failed_delivered,
            self.unresolved,
            self.delivered,
            self.duplicated,
            self.lost
        )
    }
}

fn counts(l: &Ledger) -> Counts {
    let m = || l.messages.values();
    Counts {
        sent: l.messages.len(),
        acked: m().filter(|f| f.acked).count(),
        failed: m().filter(|f| f.failed.is_some()).count(),
        unresolved: m().filter(|f| !f.acked && f.failed.is_none()).count(),
        delivered: m().filter(|f| f.delivered > 0).count(),
        duplicated: m().map(|f| f.delivered.saturating_sub(1)).sum(),
        lost: m().filter(|f| f.acked && f.delivered == 0).count(),
        failed_delivered: m()
            .filter(|f| f.failed.is_some() && f.delivered > 0)
            .count(),
    }
}

/// Waits until every message has an outcome and every acknowledged one was delivered (or
/// [`PATIENCE`] passed), then a little longer for late duplicates; the counts.
async fn settle(ledger: &Shared, total: usize) -> Counts {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c = counts(&lock(ledger));
        if (c.sent == total && c.unresolved == 0 && c.lost == 0) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    counts(&lock(ledger))
}

/// The delivery promise over a load's counts.
fn assert_promise_kept(what: &str, c: &Counts, l: &Ledger) {
    let lost: Vec<_> = l
        .messages
        .iter()
        .filter(|(_, f)| f.acked && f.delivered == 0)
        .map(|(t, _)| t)
        .take(10)
        .collect();
    let twice: Vec<_> = l
        .messages
        .iter()
        .filter(|(_, f)| f.delivered > 1)
        .map(|(t, f)| (t, f.delivered))
        .take(10)
        .collect();
    assert_eq!(
        c.lost, 0,
        "{what}: acknowledged, never delivered: {lost:?}…"
    );
    assert_eq!(
        c.duplicated, 0,
        "{what}: delivered more than once: {twice:?}…"
    );
    assert_eq!(
        c.unresolved, 0,
        "{what}: messages whose sender heard neither success nor failure"
    );
    assert!(l.logouts.is_empty(), "{what}: logouts {:?}", l.logouts);
}

/// Whether the message with text `text` (`<from>><to>#<n>`) is in `<to>`'s queue in Redis.
fn stored_in_redis(redis: &Redis, text: &str) -> bool {
    let to = (text.split_once('>').and_then(|(_, r)| r.split_once('#')))
        .map(|(to, _)| to)
        .expect("a load message's text");
    let key = format!("beckon:{{{APP}:{to}}}:bodies");
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--raw", "HVALS", &key])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).contains(text)
}

// ---- 1. a node killed under load ---------------------------------------------------------------

/// Three node processes on one Redis, two clients on each, each sending to a client on another
/// node at a steady pace; one node is killed with SIGKILL in the middle. Its clients reconnect
/// by themselves to another node (the SDK's alternate URLs); every acknowledged message is
/// delivered once, or is stored in Redis: a message the dead node stored and acknowledged just
/// before it died had its notice die with it, and when its sender then moved to the
/// recipient's own node, no later notice comes for that recipient (docs/cluster.md: it waits
/// for the recipient's next notice or login). Those are counted and printed, and each must be
/// in the recipient's queue in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_p2p_load_loses_no_acknowledged_message() {
    let _serial = SERIAL.lock().await;
    let redis = Redis::start();
    let url = redis.url();
    let nodes: Vec<NodeProcess> = ["n0", "n1", "n2"]
        .iter()
        .map(|id| NodeProcess::start(&url, id))
        .collect();
    let urls: Vec<String> = nodes.iter().map(NodeProcess::url).collect();
    let others = |i: usize| -> Vec<String> { (1..3).map(|k| urls[(i + k) % 3].clone()).collect() };

    // u<i> is on node i % 3 and sends to u<i+1>, which is on the next node.
    const USERS: usize = 6;
    const COUNT: u64 = 100;
    const PACE: Duration = Duration::from_millis(25);
    let mut peers = Vec::new();
    for i in 0..USERS {
        let account = format!("u{i}");
        let (sdk, events) = logged_in(&urls[i % 3], &others(i % 3), &account).await;
        peers.push(Peer {
            account,
            to: format!("u{}", (i + 1) % USERS),
            sdk,
            events,
        });
    }
    // A client of the doomed node that does not move: its account shows when the cluster
    // takes the node for dead. The observer asks from node 0.
    let (_watched, _watched_events) = logged_in(&urls[2], &[], "watched").await;
    let (observer, mut observer_events) = logged_in(&urls[0], &[], "observer").await;
    for p in &peers {
        await_status(&observer, &mut observer_events, &p.account, "1").await;
    }
    await_status(&observer, &mut observer_events, "watched", "1").await;

    let ledger = Shared::default();
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let tasks = spawn_load(peers, COUNT, PACE, &ledger, &stop, started);

    // Kill node 2 about 40 % into the load.
    tokio::time::sleep(PACE * (COUNT as u32) * 2 / 5).await;
    nodes[2].process.signal("KILL");
    let killed = started.elapsed();
    let kill_instant = Instant::now();
    let offline_after = loop {
        if status_of(&observer, &mut observer_events, "watched").await == "0" {
            break kill_instant.elapsed();
        }
        assert!(
            kill_instant.elapsed() < PATIENCE,
            "the dead node's account still reads online"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };

    let total = USERS * COUNT as usize;
    let c = settle(&ledger, total).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let l = lock(&ledger);
    let moved: Vec<String> = l
        .reconnected
        .iter()
        .map(|(a, t)| format!("{a} +{:?}", t.saturating_sub(killed)))
        .collect();
    eprintln!(
        "node death under load: {c}; node n2 killed {killed:?} into the load; its account \
         offline on n0 {offline_after:?} after the kill (node TTL {NODE_TTL:?}); reconnected \
         (after the kill): {moved:?}; deliveries out of per-sender order: {}",
        l.reordered
    );
    assert_eq!(c.sent, total);
    // Acknowledged and not delivered: each must be stored in its recipient's queue.
    let waiting: Vec<String> = (l.messages.iter())
        .filter(|(_, f)| f.acked && f.delivered == 0)
        .map(|(t, _)| t.clone())
        .collect();
    let not_stored: Vec<&String> = (waiting.iter())
        .filter(|t| !stored_in_redis(&redis, t))
        .collect();
    eprintln!(
        "node death under load: {} acknowledged message(s) not delivered within the test, \
         stored in Redis for their recipient's next notice or login: {waiting:?}",
        waiting.len() - not_stored.len()
    );
    assert!(
        not_stored.is_empty(),
        "node death: acknowledged, neither delivered nor stored: {not_stored:?}"
    );
    let c = Counts { lost: 0, ..c };
    assert_promise_kept("node death", &c, &l);
    assert_eq!(
        l.reconnected.len(),
        2,
        "the dead node's two clients reconnected elsewhere: {moved:?}"
    );
}

// ---- 1b. a node killed under a channel load ---------------------------------------------------

/// What became of one channel message, by its text (`<sender>#<seq>`, unique per message).
#[derive(Debug, Default, Clone)]
struct ChanFate {
    acked: bool,
    failed: Option<i32>,
    /// Deliveries, by receiving member.
    delivered: HashMap<String, u32>,
}

/// Every message of a channel load, and the leaves the members heard.
#[derive(Debug, Default)]
struct ChanLedger {
    messages: HashMap<String, ChanFate>,
    /// The last sequence number each (sender, receiver) delivered.
    last_seq: HashMap<(String, String), u64>,
    /// Deliveries out of per-sender order, by receiver.
    reordered: HashMap<String, u32>,
    /// (receiver, account who left, when since the load started) of each `onChannelUserLeaved`.
    leaves: Vec<(String, String, Duration)>,
    /// (account, code) of each `onLogout` or `onChannelLeaved`.
    ended: Vec<(String, String, i32)>,
}

type SharedChan = Arc<Mutex<ChanLedger>>;

fn chan_lock(l: &SharedChan) -> std::sync::MutexGuard<'_, ChanLedger> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

fn chan_record(l: &SharedChan, me: &str, sent: &HashMap<String, String>, ev: Event, t: Duration) {
    let mut l = chan_lock(l);
    match ev {
        Event::MessageSendSuccess { message_id } => {
            if let Some(text) = sent.get(&message_id) {
                l.messages.entry(text.clone()).or_default().acked = true;
            }
        }
        Event::MessageSendError { message_id, ecode } => {
            if let Some(text) = sent.get(&message_id) {
                l.messages.entry(text.clone()).or_default().failed = Some(ecode);
            }
        }
        Event::MessageChannelReceive { account, msg, .. } => {
            let seq = msg
                .rsplit_once('#')
                .and_then(|(_, s)| s.parse::<u64>().ok())
                .unwrap_or(0);
            let last = l.last_seq.entry((account, me.to_owned())).or_insert(seq);
            let reordered = seq < *last;
            *last = (*last).max(seq);
            if reordered {
                *l.reordered.entry(me.to_owned()).or_default() += 1;
            }
            *(l.messages.entry(msg).or_default().delivered)
                .entry(me.to_owned())
                .or_default() += 1;
        }
        Event::ChannelUserLeaved { account, .. } => l.leaves.push((me.to_owned(), account, t)),
        Event::ChannelLeaved { ecode, .. } => l.ended.push((me.to_owned(), "left".into(), ecode)),
        Event::Logout { ecode } => l.ended.push((me.to_owned(), "logout".into(), ecode)),
        _ => {}
    }
}

/// Three node processes on one Redis, two members of one channel on each, every member sending
/// channel messages at a steady pace; one node is killed with SIGKILL in the middle. Its
/// clients have no other URL, so its members stay gone. Channel messages are not stored: the
/// promise (SPEC §5) is to the members that stay connected — every message acknowledged to a
/// sender on a surviving node reaches every surviving member (all joined throughout) once, in
/// its sender's order. The surviving members hear the dead node's members leave once the
/// cluster takes the node for dead (its registration expires, then a sweep takes them out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_channel_load_keeps_the_promise_to_surviving_members() {
    let _serial = SERIAL.lock().await;
    let redis = Redis::start();
    let url = redis.url();
    let nodes: Vec<NodeProcess> = ["n0", "n1", "n2"]
        .iter()
        .map(|id| NodeProcess::start(&url, id))
        .collect();
    let urls: Vec<String> = nodes.iter().map(NodeProcess::url).collect();

    // m<i> is on node i % 3; m2 and m5 are on the node that dies.
    const MEMBERS: usize = 6;
    const COUNT: u64 = 60;
    // 6 × 20/s: under the channel's 200/s and the per-user 60/s.
    const PACE: Duration = Duration::from_millis(50);
    const CHANNEL: &str = "load";
    let dead = |i: usize| i % 3 == 2;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let account = format!("m{i}");
        let (sdk, mut events) = logged_in(&urls[i % 3], &[], &account).await;
        sdk.channel_join(CHANNEL);
        let ev = expect(&mut events, "a join", |e| {
            matches!(
                e,
                Event::ChannelJoined { .. } | Event::ChannelJoinFailed { .. }
            )
        })
        .await;
        assert!(
            matches!(ev, Event::ChannelJoined { .. }),
            "{account}: {ev:?}"
        );
        members.push((account, sdk, events));
    }
    // Every member hears the last join (so each node's replica holds all six).
    for (account, _, events) in members.iter_mut().take(MEMBERS - 1) {
        let last = format!("m{}", MEMBERS - 1);
        expect(
            events,
            account,
            |e| matches!(e, Event::ChannelUserJoined { account, .. } if *account == last),
        )
        .await;
    }

    let ledger = SharedChan::default();
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = members
        .into_iter()
        .map(|(account, sdk, mut events)| {
            let ledger = ledger.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let mut sent: HashMap<String, String> = HashMap::new();
                let mut tick = tokio::time::interval(PACE);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seq = 0;
                loop {
                    tokio::select! {
                        ev = events.next() => match ev {
                            Some(ev) => chan_record(&ledger, &account, &sent, ev, started.elapsed()),
                            None => return,
                        },
                        _ = tick.tick(), if seq < COUNT => {
                            let text = format!("{account}#{seq}");
                            chan_lock(&ledger).messages.insert(text.clone(), ChanFate::default());
                            let id = sdk.message_channel_send(CHANNEL, &text, "");
                            sent.insert(id, text);
                            seq += 1;
                        }
                        _ = stop.changed() => return,
                    }
                }
            })
        })
        .collect();

    // Kill node 2 about 40 % into the load.
    tokio::time::sleep(PACE * (COUNT as u32) * 2 / 5).await;
    nodes[2].process.signal("KILL");
    let killed = started.elapsed();

    let survivors: Vec<String> = (0..MEMBERS)
        .filter(|i| !dead(*i))
        .map(|i| format!("m{i}"))
        .collect();
    let gone: Vec<String> = (0..MEMBERS)
        .filter(|i| dead(*i))
        .map(|i| format!("m{i}"))
        .collect();
    let from_survivor = |text: &str| survivors.iter().any(|s| text.starts_with(&format!("{s}#")));
    // Settled: every survivor's message has an outcome and, when acknowledged, reached every
    // survivor; and every survivor heard every dead member leave.
    let settled = |l: &ChanLedger| {
        let messages = l.messages.iter().filter(|(t, _)| from_survivor(t));
        let sent = messages.clone().count() == survivors.len() * COUNT as usize;
        let done = messages.clone().all(|(_, f)| {
            f.failed.is_some() || (f.acked && survivors.iter().all(|s| f.delivered.contains_key(s)))
        });
        let left = survivors.iter().all(|s| {
            gone.iter()
                .all(|g| l.leaves.iter().any(|(r, a, _)| r == s && a == g))
        });
        sent && done && left
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !settled(&chan_lock(&ledger)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer for late duplicates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let l = chan_lock(&ledger);
    // Per sender: sent, acknowledged, failed.
    let mut report = Vec::new();
    for i in 0..MEMBERS {
        let s = format!("m{i}");
        let mine = || {
            l.messages
                .iter()
                .filter(|(t, _)| t.starts_with(&format!("{s}#")))
        };
        report.push(format!(
            "sender {s}{}: sent {}, acknowledged {}, failed {}, no outcome {}",
            if dead(i) { " (dead node)" } else { "" },
            mine().count(),
            mine().filter(|(_, f)| f.acked).count(),
            mine().filter(|(_, f)| f.failed.is_some()).count(),
            mine()
                .filter(|(_, f)| !f.acked && f.failed.is_none())
                .count(),
        ));
    }
    // Per receiving survivor: delivered, duplicated, and lost of the survivors' acknowledged
    // messages and of the dead senders' acknowledged ones.
    let mut lost_from_survivors = 0;
    let mut duplicated = 0;
    for r in &survivors {
        let got = |f: &ChanFate| f.delivered.get(r).copied().unwrap_or(0);
        let delivered = l.messages.values().filter(|f| got(f) > 0).count();
        let dups: u32 = l.messages.values().map(|f| got(f).saturating_sub(1)).sum();
        let lost_s = (l.messages.iter())
            .filter(|(t, f)| from_survivor(t) && f.acked && got(f) == 0)
            .count();
        let lost_d = (l.messages.iter())
            .filter(|(t, f)| !from_survivor(t) && f.acked && got(f) == 0)
            .count();
        lost_from_survivors += lost_s;
        duplicated += dups;
        report.push(format!(
            "receiver {r}: delivered {delivered}, duplicated {dups}, out of order {}, lost \
             (acknowledged to a surviving sender) {lost_s}, not delivered (acknowledged to a \
             dead node's sender) {lost_d}",
            l.reordered.get(r).copied().unwrap_or(0)
        ));
    }
    for g in &gone {
        let got = l
            .messages
            .values()
            .filter(|f| f.delivered.contains_key(g))
            .count();
        report.push(format!(
            "receiver {g} (dead node): delivered {got} before the kill"
        ));
    }
    let failed_delivered = (l.messages.values())
        .filter(|f| f.failed.is_some() && !f.delivered.is_empty())
        .count();
    // When each survivor heard each dead member leave, after the kill.
    let leave_after: Vec<String> = (l.leaves.iter())
        .filter(|(r, a, _)| survivors.contains(r) && gone.contains(a))
        .map(|(r, a, t)| format!("{r} heard {a} leave +{:?}", t.saturating_sub(killed)))
        .collect();
    eprintln!(
        "node death under channel load: node n2 killed {killed:?} into the load (node TTL \
         {NODE_TTL:?});\n  {}\n  failed yet delivered somewhere: {failed_delivered}\n  \
         leaves after the kill: {leave_after:?}",
        report.join("\n  ")
    );
    assert_eq!(
        lost_from_survivors, 0,
        "acknowledged, not delivered to a survivor"
    );
    assert_eq!(duplicated, 0, "delivered more than once to a survivor");
    assert!(
        survivors.iter().all(|r| !l.reordered.contains_key(r)),
        "out of per-sender order: {:?}",
        l.reordered
    );
    for s in &survivors {
        let mine = (l.messages.iter()).filter(|(t, _)| t.starts_with(&format!("{s}#")));
        assert_eq!(mine.clone().count(), COUNT as usize, "{s} sent all");
        assert!(
            mine.clone().all(|(_, f)| f.acked || f.failed.is_some()),
            "{s}: a message with no outcome"
        );
    }
    for s in &survivors {
        for g in &gone {
            assert!(
                l.leaves.iter().any(|(r, a, _)| r == s && a == g),
                "{s} never heard {g} leave"
            );
        }
    }
    assert!(
        (l.ended.iter()).all(|(a, _, _)| gone.contains(a)),
        "a survivor left or logged out: {:?}",
        l.ended
    );
}

// ---- 2. Redis restarted under load ------------------------------------------------------------

/// Two nodes on one Redis that keeps every answered write (appendonly, fsync always); clients
/// on both send across nodes at a steady pace; Redis is killed and started again on the same
/// port in the middle. The nodes report it on `/readyz` and recover without a restart;
/// acknowledged messages are all delivered, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_p2p_load_loses_no_acknowledged_message() {
    let _serial = SERIAL.lock().await;
    let mut redis = Redis::start_durable();
    let url = redis.url();
    let a = node_in_process(&url, "a").await;
    let b = node_in_process(&url, "b").await;
    let urls = [
        format!("tcp://{}", a.local_addr()),
        format!("tcp://{}", b.local_addr()),
    ];
    let admins = [
        a.admin_addr().expect("an admin listener"),
        b.admin_addr().expect("an admin listener"),
    ];

    // u<i> is on node i % 2 and sends to u<i+1>, on the other node.
    const USERS: usize = 4;
    const COUNT: u64 = 120;
    const PACE: Duration = Duration::from_millis(25);
    let mut peers = Vec::new();
    for i in 0..USERS {
        let account = format!("u{i}");
        let (sdk, events) = logged_in(&urls[i % 2], &[], &account).await;
        peers.push(Peer {
            account,
            to: format!("u{}", (i + 1) % USERS),
            sdk,
            events,
        });
    }
    let (observer, mut observer_events) = logged_in(&urls[0], &[], "observer").await;
    for p in &peers {
        await_status(&observer, &mut observer_events, &p.account, "1").await;
    }

    let ledger = Shared::default();
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let tasks = spawn_load(peers, COUNT, PACE, &ledger, &stop, started);

    // A third into the load, Redis goes down for a moment and comes back from its AOF.
    tokio::time::sleep(PACE * (COUNT as u32) / 3).await;
    redis.kill();
    let down = Instant::now();
    let killed = started.elapsed();
    // Long enough for the nodes' commands to fail (their timeout is 500 ms).
    let mut saw_unready = [false; 2];
    while down.elapsed() < Duration::from_millis(700) {
        for (i, admin) in admins.iter().enumerate() {
            saw_unready[i] |= readyz(*admin).await == 503;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.run();
    let downtime = down.elapsed();
    let mut ready_after = Vec::new();
    for admin in admins {
        loop {
            if readyz(admin).await == 200 {
                ready_after.push(down.elapsed());
                break;
            }
            assert!(down.elapsed() < PATIENCE, "{admin} not ready again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let total = USERS * COUNT as usize;
    let c = settle(&ledger, total).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    {
        let l = lock(&ledger);
        eprintln!(
            "redis restart under load: {c}; Redis killed {killed:?} into the load, back after \
             {downtime:?}; /readyz 503 seen: {saw_unready:?}; /readyz 200 again after {ready_after:?} \
             (from the kill); deliveries out of per-sender order: {}",
            l.reordered
        );
        assert_eq!(c.sent, total);
        assert_promise_kept("redis restart", &c, &l);
        assert_eq!(
            saw_unready, [true; 2],
            "both nodes reported Redis unreachable"
        );
    }
    // Presence came back with Redis: every client still reads online from the other node.
    for i in 0..USERS {
        assert_eq!(
            status_of(&observer, &mut observer_events, &format!("u{i}")).await,
            "1",
            "u{i} after the restart"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

// ---- 3. a Redis Cluster ------------------------------------------------------------------------

/// Three masters in directories of their own, made a cluster with `redis-cli --cluster
/// create`; and the nodes' `redis+cluster://` URL.
fn start_redis_cluster() -> (Vec<Redis>, String) {
    let masters: Vec<Redis> = (0..3)
        .map(|_| {
            Redis::start_with(
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                true,
            )
        })
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(masters.iter().map(Redis::addr))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run redis-cli ({e}): these tests need it on PATH; .ci/run installs it")
        });
    assert!(created.success(), "redis-cli --cluster create failed");
    let deadline = Instant::now() + PATIENCE;
    for m in &masters {
        loop {
            // A bulk string: its first line is the length, the state is on the next.
            let ok = TcpStream::connect(m.addr()).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"CLUSTER INFO\r\n")?;
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf)?;
                Ok(String::from_utf8_lossy(&buf[..n]).contains("cluster_state:ok"))
            });
            if matches!(ok, Ok(true)) {
                break;
            }
            assert!(Instant::now() < deadline, "the Redis Cluster is not ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let url = format!(
        "redis+cluster://{}",
        masters
            .iter()
            .map(Redis::addr)
            .collect::<Vec<_>>()
            .join(",")
    );
    (masters, url)
}

/// Which of the masters serves `key` (the others answer MOVED).
fn master_of(masters: &[Redis], key: &str) -> usize {
    (masters.iter())
        .position(|m| m.cmd(&["EXISTS", key]).is_ok_and(|r| r.starts_with(':')))
        .unwrap_or_else(|| panic!("no master serves {key}"))
}

/// One channel with members on both nodes: `alice` (node a) joins, then `bob` (node b), then
/// `carol` (node b) after an attribute is set; each hears the others' joins, gets the member
/// list and the attributes, every message reaches every member once, and the leaves are heard.
async fn channel_round(ch: &str, mut m: [(&Instance, &mut EventStream); 3]) {
    let names = ["alice", "bob", "carol"];
    async fn join(sdk: &Instance, ev: &mut EventStream, ch: &str, who: &str) -> Vec<String> {
        sdk.channel_join(ch);
        let got = expect(ev, who, |e| {
            matches!(e, Event::ChannelJoined { channel } | Event::ChannelJoinFailed { channel, .. } if channel == ch)
        })
        .await;
        assert!(
            matches!(got, Event::ChannelJoined { .. }),
            "{who} in {ch}: {got:?}"
        );
        match expect(
            ev,
            "a member list",
            |e| matches!(e, Event::ChannelUserList { channel, .. } if channel == ch),
        )
        .await
        {
            Event::ChannelUserList { mut accounts, .. } => {
                accounts.sort();
                accounts
            }
            _ => unreachable!(),
        }
    }
    async fn heard_join(ev: &mut EventStream, ch: &str, who: &str) {
        expect(ev, "a join event", |e| {
            matches!(e, Event::ChannelUserJoined { channel, account, .. } if channel == ch && account == who)
        })
        .await;
    }
    async fn attr(ev: &mut EventStream, ch: &str, value: &str) {
        expect(ev, "an attribute", |e| {
            matches!(e, Event::ChannelAttrUpdated { channel, name, value: v, kind } if channel == ch && name == "topic" && v == value && kind == "update")
        })
        .await;
    }
    async fn message(ev: &mut EventStream, ch: &str, from: &str, text: &str, to: &str) {
        expect(ev, &format!("{to}: {from}'s message in {ch}"), |e| {
            matches!(e, Event::MessageChannelReceive { channel, account, msg, .. } if channel == ch && account == from && msg == text)
        })
        .await;
    }

    assert_eq!(join(m[0].0, m[0].1, ch, "alice").await, ["alice"]);
    assert_eq!(join(m[1].0, m[1].1, ch, "bob").await, ["alice", "bob"]);
    heard_join(m[0].1, ch, "bob").await;

    // An attribute set on node a reaches the member on node b.
    let topic = format!("topic of {ch}");
    m[0].0.channel_set_attr(ch, "topic", &topic);
    attr(m[0].1, ch, &topic).await;
    attr(m[1].1, ch, &topic).await;

    // A joiner on node b gets the member list and the attribute; both others hear it.
    assert_eq!(
        join(m[2].0, m[2].1, ch, "carol").await,
        ["alice", "bob", "carol"]
    );
    attr(m[2].1, ch, &topic).await;
    heard_join(m[0].1, ch, "carol").await;
    heard_join(m[1].1, ch, "carol").await;
    m[1].0.channel_query_user_num(ch);
    let got = expect(
        m[1].1,
        "a count",
        |e| matches!(e, Event::ChannelQueryUserNumResult { channel, .. } if channel == ch),
    )
    .await;
    assert!(
        matches!(
            got,
            Event::ChannelQueryUserNumResult {
                ecode: 0,
                num: 3,
                ..
            }
        ),
        "{got:?}"
    );

    // A message from each node reaches all three members, the sender included (its own copy
    // may come before or after its acknowledgement).
    for (from, sender) in [(0, "alice"), (1, "bob")] {
        let text = format!("{sender} to {ch}");
        let id = m[from].0.message_channel_send(ch, &text, "");
        let (mut outcome, mut own) = (None, false);
        while outcome.is_none() || !own {
            let got = expect(m[from].1, &format!("{sender}'s send in {ch}"), |e| {
                matches!(e, Event::MessageSendSuccess { message_id } | Event::MessageSendError { message_id, .. } if *message_id == id)
                    || matches!(e, Event::MessageChannelReceive { channel, msg, .. } if channel == ch && *msg == text)
            })
            .await;
            match got {
                Event::MessageChannelReceive { .. } => {
                    assert!(!own, "{sender} got its message twice");
                    own = true;
                }
                other => outcome = Some(other),
            }
        }
        assert!(
            matches!(outcome, Some(Event::MessageSendSuccess { .. })),
            "{outcome:?}"
        );
        for (i, (_, ev)) in m.iter_mut().enumerate() {
            if i != from {
                message(ev, ch, sender, &text, names[i]).await;
            }
        }
    }

    // Leaves, heard on both nodes.
    m[0].0.channel_leave(ch);
    expect(
        m[0].1,
        "alice's leave",
        |e| matches!(e, Event::ChannelLeaved { channel, .. } if channel == ch),
    )
    .await;
    for (_, ev) in m.iter_mut().skip(1) {
        expect(ev, "alice's leave event", |e| {
            matches!(e, Event::ChannelUserLeaved { channel, account, .. } if channel == ch && account == "alice")
        })
        .await;
    }
    for (i, (sdk, ev)) in m.iter_mut().enumerate().skip(1) {
        sdk.channel_leave(ch);
        expect(
            ev,
            names[i],
            |e| matches!(e, Event::ChannelLeaved { channel, .. } if channel == ch),
        )
        .await;
    }
}

/// Two nodes on a three-master Redis Cluster: presence, kicks, p2p, stored messages and
/// channels work across nodes whichever slots the accounts' and the channels' keys hash to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_a_redis_cluster() {
    let _serial = SERIAL.lock().await;
    let (masters, url) = start_redis_cluster();
    let a = node_in_process(&url, "a").await;
    let b = node_in_process(&url, "b").await;
    let (url_a, url_b) = (
        format!("tcp://{}", a.local_addr()),
        format!("tcp://{}", b.local_addr()),
    );

    // The accounts' keys lie on more than one master.
    let slots: std::collections::HashSet<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|acc| {
            let key = format!("beckon:presence:{{{}:{APP}:{acc}}}", APP.len());
            masters[0]
                .cmd(&["CLUSTER", "KEYSLOT", &key])
                .expect("redis answers")
        })
        .collect();
    assert!(slots.len() > 1, "{slots:?}");

    let (alice, mut alice_ev) = logged_in(&url_a, &[], "alice").await;
    let (bob, mut bob_ev) = logged_in(&url_b, &[], "bob").await;
    await_status(&bob, &mut bob_ev, "alice", "1").await;
    await_status(&alice, &mut alice_ev, "bob", "1").await;
    assert_eq!(status_of(&alice, &mut alice_ev, "nobody").await, "0");

    // P2P across nodes, both ways.
    let id = alice.message_instant_send("bob", 0, "hi bob", "");
    let ev = expect(&mut alice_ev, "alice's send", |e| {
        matches!(e, Event::MessageSendSuccess { message_id } | Event::MessageSendError { message_id, .. } if *message_id == id)
    })
    .await;
    assert!(matches!(ev, Event::MessageSendSuccess { .. }), "{ev:?}");
    let got = expect(&mut bob_ev, "bob's message", |e| {
        matches!(e, Event::MessageInstantReceive { .. })
    })
    .await;
    assert!(
        matches!(&got, Event::MessageInstantReceive { account, msg, .. } if account == "alice" && msg == "hi bob"),
        "{got:?}"
    );
    bob.message_instant_send("alice", 0, "hi alice", "");
    let got = expect(&mut alice_ev, "alice's message", |e| {
        matches!(e, Event::MessageInstantReceive { .. })
    })
    .await;
    assert!(
        matches!(&got, Event::MessageInstantReceive { account, msg, .. } if account == "bob" && msg == "hi alice"),
        "{got:?}"
    );

    // Offline: stored in the cluster, delivered at the next login, on the other node.
    let id = alice.message_instant_send("carol", 0, "hi carol", "");
    let ev = expect(&mut alice_ev, "the stored send", |e| {
        matches!(e, Event::MessageSendSuccess { message_id } | Event::MessageSendError { message_id, .. } if *message_id == id)
    })
    .await;
    assert!(matches!(ev, Event::MessageSendSuccess { .. }), "{ev:?}");
    let (carol, mut carol_ev) = logged_in(&url_b, &[], "carol").await;
    let got = expect(&mut carol_ev, "carol's stored message", |e| {
        matches!(e, Event::MessageInstantReceive { .. })
    })
    .await;
    assert!(
        matches!(&got, Event::MessageInstantReceive { account, msg, .. } if account == "alice" && msg == "hi carol"),
        "{got:?}"
    );

    // Channels whose keys lie on other masters than the accounts' (and on different masters
    // from one another): joins, member lists, counts, attributes and messages across nodes.
    let accounts_master = master_of(
        &masters,
        &format!("beckon:presence:{{{}:{APP}:alice}}", APP.len()),
    );
    let mut channels: Vec<(String, usize)> = Vec::new();
    for k in 0..100 {
        let ch = format!("room{k}");
        let key = format!("beckon:chan:{{{}:{APP}:{ch}}}:members", APP.len());
        let m = master_of(&masters, &key);
        if channels.iter().all(|(_, other)| *other != m) {
            channels.push((ch, m));
        }
    }
    // One channel per master: two of them on other masters than alice's keys.
    assert_eq!(channels.len(), 3, "channels on every master: {channels:?}");
    assert!(channels.iter().any(|(_, m)| *m != accounts_master));
    eprintln!(
        "redis cluster: alice's keys on master {accounts_master}; channels on masters {channels:?}"
    );
    for (ch, _) in &channels {
        channel_round(
            ch,
            [
                (&alice, &mut alice_ev),
                (&bob, &mut bob_ev),
                (&carol, &mut carol_ev),
            ],
        )
        .await;
    }

    // A login on the other node kicks the first session (103).
    let (second, _second_ev) = logged_in(&url_b, &[], "alice").await;
    let ev = expect(&mut alice_ev, "alice's kick", |e| {
        matches!(e, Event::Logout { .. })
    })
    .await;
    assert_eq!(ev, Event::Logout { ecode: 103 });
    assert_eq!(second.get_status(), 2);
    await_status(&bob, &mut bob_ev, "alice", "1").await;
    a.shutdown().await;
    b.shutdown().await;
}

// ---- 4. notices missed while a node's subscription was down -----------------------------------

/// Messages acknowledged just after Redis came back, before the recipient's node has
/// subscribed to its topic again (the notices to it reach no one), are delivered anyway, and
/// nothing more has to be sent for that: a node whose subscription was down reads its
/// sessions' queues again once it is back. (The node resubscribes every 500 ms: in some runs it
/// is back before the first message lands, and the notices arrive as usual; the test prints
/// which.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_whose_notices_were_missed_during_a_redis_restart_are_delivered() {
    let _serial = SERIAL.lock().await;
    let mut redis = Redis::start_durable();
    let url = redis.url();
    let a = node_in_process(&url, "a").await;
    let b = node_in_process(&url, "b").await;
    let (alice, mut alice_ev) = logged_in(&format!("tcp://{}", a.local_addr()), &[], "alice").await;
    let (_bob, mut bob_ev) = logged_in(&format!("tcp://{}", b.local_addr()), &[], "bob").await;
    await_status(&alice, &mut alice_ev, "bob", "1").await;

    redis.kill();
    let admin_b = b.admin_addr().expect("an admin listener");
    let down = Instant::now();
    while readyz(admin_b).await != 503 {
        assert!(down.elapsed() < PATIENCE, "node b never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.run();
    let back = Instant::now();

    // One message every 20 ms until one is acknowledged (the first to land once Redis
    // answers again), then the outcomes of those still under way.
    let mut sent: HashMap<String, String> = HashMap::new();
    let mut outcomes: HashMap<String, bool> = HashMap::new();
    let outcome = |ev: Event, outcomes: &mut HashMap<String, bool>| match ev {
        Event::MessageSendSuccess { message_id } => {
            outcomes.insert(message_id, true);
        }
        Event::MessageSendError { message_id, .. } => {
            outcomes.insert(message_id, false);
        }
        _ => {}
    };
    while !outcomes.values().any(|acked| *acked) {
        assert!(
            back.elapsed() < PATIENCE,
            "no send succeeded after Redis came back"
        );
        let text = format!("m{}", sent.len());
        sent.insert(alice.message_instant_send("bob", 0, &text, ""), text);
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(Some(ev)) = tokio::time::timeout_at(until.into(), alice_ev.next()).await {
            outcome(ev, &mut outcomes);
        }
    }
    let first_ack = back.elapsed();
    // Whether node b had subscribed again by then (if not, the notices reached no one).
    let subscribed = redis.subscribers("beckon:node:b");
    while outcomes.len() < sent.len() {
        let ev = expect(&mut alice_ev, "a send's outcome", |e| {
            matches!(
                e,
                Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
            )
        })
        .await;
        outcome(ev, &mut outcomes);
    }
    let acked: Vec<&String> = (outcomes.iter())
        .filter(|(_, acked)| **acked)
        .map(|(id, _)| &sent[id])
        .collect();
    let mut missing: std::collections::HashSet<&String> = acked.iter().copied().collect();
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        while !missing.is_empty() {
            if let Some(Event::MessageInstantReceive { msg, .. }) = bob_ev.next().await {
                missing.remove(&msg);
            }
        }
    })
    .await;
    eprintln!(
        "missed notices: {} sent after Redis came back, {} acknowledged (the first {first_ack:?} \
         after it came back, when node b's subscribers were {subscribed:?}); {} {:?} after it \
         came back",
        sent.len(),
        acked.len(),
        if delivered.is_ok() {
            "all delivered"
        } else {
            "not all delivered"
        },
        back.elapsed()
    );
    assert!(
        delivered.is_ok(),
        "acknowledged, not delivered: {missing:?} (of {acked:?})"
    );
    a.shutdown().await;
    b.shutdown().await;
}
