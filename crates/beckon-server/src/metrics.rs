//! Metrics in the Prometheus text format, from what the broker and its loop count.
//!
//! The broker core keeps plain counters (`Broker::snapshot`) and never touches a registry; the
//! broker loop adds what only it sees (connections by transport, its busy time, its queue) and
//! answers a scrape with a [`LoopSnapshot`], which [`render`] turns into the exposition with
//! `prometheus-client`. Store latencies are the one thing observed as it happens, by
//! [`Timed`], a store wrapper that times each transaction into a histogram.
//!
//! Label values are bounded: apps by the broker's app labels (configured apps by name; the
//! development template and unknown apps under one label each), transports, request kinds,
//! result codes and store transaction kinds from fixed sets.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use beckon_broker::{Recovered, Snapshot, Store, StoreBatch, StoreDone, StoreError, StoreOp};
use beckon_transport::Scheme;

/// The `Content-Type` of [`render`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

/// Every transport, for per-transport series that exist from the start.
pub(crate) const SCHEMES: [Scheme; 5] = [
    Scheme::Tcp,
    Scheme::Tls,
    Scheme::Quic,
    Scheme::Ws,
    Scheme::Wss,
];

/// What a store transaction did, each with its own latency histogram.
#[derive(Clone, Copy, Debug)]
enum Txn {
    /// It wrote (and, for a durable store, synced once for every batch merged into it).
    Commit,
    /// It only read.
    Read,
}

const TXNS: [Txn; 2] = [Txn::Commit, Txn::Read];

impl Txn {
    fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Read => "read",
        }
    }
}

/// The store's latency histograms, shared by the broker loop (which observes) and the scrape
/// (which encodes). Each operation's histogram is resolved once, so an observation takes no
/// lock.
#[derive(Clone, Debug)]
pub(crate) struct StoreTimings {
    family: Family<Labels, Histogram>,
    by_op: Vec<Histogram>,
}

/// 10 µs to about 1.3 s: an in-memory read is at the bottom, a synced redb commit on a slow
/// disk near the top.
fn store_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 18))
}

impl Default for StoreTimings {
    fn default() -> Self {
        let family =
            Family::<Labels, Histogram>::new_with_constructor(store_histogram as fn() -> Histogram);
        let by_op = (TXNS.iter())
            .map(|op| family.get_or_create_owned(&vec![("op", op.as_str().to_owned())]))
            .collect();
        Self { family, by_op }
    }
}

impl StoreTimings {
    fn observe(&self, op: Txn, took: Duration) {
        self.by_op[op as usize].observe(took.as_secs_f64());
    }
}

/// A store whose transactions are timed into [`StoreTimings`] when metrics are on: where the
/// store thread carries the broker's batches out, each call of `execute` is one transaction
/// (the batches waiting, merged).
#[derive(Clone, Debug)]
pub(crate) struct Timed<S> {
    inner: S,
    timings: Option<StoreTimings>,
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, timings: Option<StoreTimings>) -> Self {
        Self { inner, timings }
    }

    /// The store it times.
    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for Timed<S> {
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        let Some(t) = &self.timings else {
            return self.inner.execute(batches);
        };
        let writes = (batches.iter()).any(|b| b.ops.iter().any(StoreOp::is_write));
        let start = Instant::now();
        let done = self.inner.execute(batches);
        let txn = if writes { Txn::Commit } else { Txn::Read };
        t.observe(txn, start.elapsed());
        done
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        self.inner.recover()
    }
}

/// What the broker loop counts itself, kept only while metrics are on.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoopCounters {
    /// Time spent handling inputs, timers and outputs (not waiting for them).
    pub(crate) busy: Duration,
    /// Inputs taken from the queue.
    pub(crate) inputs: u64,
    /// Connections opened, by transport (indexed like [`SCHEMES`]).
    pub(crate) opened: [u64; 5],
}

/// Everything one scrape publishes, taken by the broker loop at one moment.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoopSnapshot {
    pub(crate) broker: Snapshot,
    pub(crate) counters: LoopCounters,
    /// Open connections by transport (indexed like [`SCHEMES`]).
    pub(crate) connections: [usize; 5],
    /// Inputs waiting in the broker loop's queue.
    pub(crate) queue_depth: usize,
    /// The queue's capacity.
    pub(crate) queue_capacity: usize,
}

pub(crate) fn scheme_index(scheme: Scheme) -> usize {
    SCHEMES.iter().position(|s| *s == scheme).unwrap_or(0)
}

fn counter(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: usize) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn counters(reg: &mut Registry, name: &str, help: &str, values: Vec<(Labels, u64)>) {
    let family = Family::<Labels, Counter>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).inc_by(v);
    }
    reg.register(name, help, family);
}

fn gauges(reg: &mut Registry, name: &str, help: &str, values: Vec<(Labels, usize)>) {
    let family = Family::<Labels, Gauge>::default();
    for (labels, v) in values {
        family
            .get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    reg.register(name, help, family);
}

fn label(key: &'static str, value: impl Into<String>) -> (&'static str, String) {
    (key, value.into())
}

/// The exposition of `snap` (and the store latencies), in the Prometheus text format.
pub(crate) fn render(snap: &LoopSnapshot, timings: Option<&StoreTimings>) -> String {
    let mut reg = Registry::with_prefix("beckon");
    let s = &snap.broker.stats;
    let apps = &snap.broker.gauges;
    let per_app = |f: &dyn Fn(&beckon_broker::admin::AppGauges) -> usize| {
        (apps.iter())
            .map(|(app, g)| (vec![label("app", app.clone())], f(g)))
            .collect::<Vec<_>>()
    };

    gauges(
        &mut reg,
        "sessions",
        "Sessions online (connected or waiting in grace for a resume)",
        per_app(&|g| g.sessions),
    );
    gauges(
        &mut reg,
        "sessions_in_grace",
        "Sessions without a connection, waiting in grace for a resume",
        per_app(&|g| g.sessions_in_grace),
    );
    gauges(
        &mut reg,
        "channels",
        "Channels (with members, or empty and waiting out their TTL); in cluster mode, the channels this node has members of",
        per_app(&|g| g.channels),
    );
    gauges(
        &mut reg,
        "channel_members",
        "Channel memberships, summed over channels; in cluster mode, this node's members",
        per_app(&|g| g.channel_members),
    );
    let by_scheme = |values: &dyn Fn(usize) -> usize| {
        (SCHEMES.iter().enumerate())
            .map(|(i, scheme)| (vec![label("transport", scheme.as_str())], values(i)))
            .collect::<Vec<_>>()
    };
    gauges(
        &mut reg,
        "connections",
        "Open client connections, by transport",
        by_scheme(&|i| snap.connections[i]),
    );
    counters(
        &mut reg,
        "connections_opened",
        "Client connections accepted, by transport",
        (SCHEMES.iter().enumerate())
            .map(|(i, scheme)| {
                let opened = snap.counters.opened[i];
                (vec![label("transport", scheme.as_str())], opened)
            })
            .collect(),
    );

    let mut logins = Vec::new();
    let mut requests = Vec::new();
    let mut tallies: Vec<_> = snap.broker.tallies.apps.iter().collect();
    tallies.sort_by(|a, b| a.0.cmp(b.0));
    for (app, t) in tallies {
        for (code, n) in &t.logins {
            logins.push((
                vec![label("app", &**app), label("code", code.to_string())],
                *n,
            ));
        }
        for ((kind, code), n) in &t.requests {
            requests.push((
                vec![
                    label("app", &**app),
                    label("kind", kind.as_str()),
                    label("code", code.to_string()),
                ],
                *n,
            ));
        }
    }
    counters(
        &mut reg,
        "logins",
        "Login attempts, by result code (0 success, else the LOGIN_E_* code)",
        logins,
    );
    counters(
        &mut reg,
        "requests",
        "Requests answered, by kind and result code (0 success)",
        requests,
    );

    counters(
        &mut reg,
        "p2p_messages",
        "Peer-to-peer messages accepted: handed to the recipient's session, or stored offline",
        vec![
            (vec![label("outcome", "delivered")], s.messages_delivered),
            (vec![label("outcome", "stored")], s.messages_stored),
        ],
    );
    counter(
        &mut reg,
        "channel_deliveries",
        "Channel messages handed to members (one per member per message)",
        s.channel_deliveries,
    );
    counter(
        &mut reg,
        "stored_messages_delivered",
        "Messages stored offline and handed to the account's next session",
        s.stored_delivered,
    );
    counter(
        &mut reg,
        "offline_messages_expired",
        "Stored messages dropped because they outlived the app's offline TTL",
        s.offline_expired,
    );
    counter(
        &mut reg,
        "replayed_events",
        "Events replayed to clients that resumed their session",
        s.replayed_events,
    );
    counter(
        &mut reg,
        "resumes",
        "Sessions resumed on a new connection",
        s.resumes,
    );
    counter(
        &mut reg,
        "grace_expiries",
        "Sessions ended because their grace period ran out",
        s.grace_expiries,
    );
    counters(
        &mut reg,
        "disconnects",
        "Connections the server ended because the client could not keep up",
        vec![
            (
                vec![label("reason", "slow_consumer")],
                s.slow_consumer_disconnects,
            ),
            (vec![label("reason", "overflow")], s.overflows),
        ],
    );
    counters(
        &mut reg,
        "kicks",
        "Sessions ended by a newer login of the same account, or by an administrator",
        vec![
            (vec![label("by", "login")], s.kicks),
            (vec![label("by", "admin")], s.admin_kicks),
        ],
    );
    counter(
        &mut reg,
        "admin_messages",
        "Messages sent through the admin API",
        s.admin_messages,
    );
    counters(
        &mut reg,
        "calls",
        "Calls by outcome",
        vec![
            (vec![label("outcome", "accepted")], s.calls_accepted),
            (vec![label("outcome", "refused")], s.calls_refused),
            (vec![label("outcome", "ended")], s.calls_ended),
            (vec![label("outcome", "failed")], s.calls_failed),
        ],
    );
    gauge(
        &mut reg,
        "calls_in_progress",
        "Calls ringing, accepted, or waiting for the callee to come online",
        snap.broker.calls_in_progress,
    );
    counter(
        &mut reg,
        "channels_expired",
        "Empty channels removed when their TTL ran out",
        s.channels_expired,
    );
    counter(
        &mut reg,
        "store_errors",
        "Store operations that failed (the log says why)",
        s.store_errors,
    );

    let busy = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    busy.inc_by(snap.counters.busy.as_secs_f64());
    reg.register(
        "broker_busy_seconds",
        "Time the broker loop spent working rather than waiting for input",
        busy,
    );
    counter(
        &mut reg,
        "broker_inputs",
        "Inputs the broker loop took from its queue",
        snap.counters.inputs,
    );
    gauge(
        &mut reg,
        "broker_queue_depth",
        "Inputs waiting in the broker loop's queue",
        snap.queue_depth,
    );
    gauge(
        &mut reg,
        "broker_queue_capacity",
        "The capacity of the broker loop's queue; at it, connections wait to be read",
        snap.queue_capacity,
    );
    if let Some(t) = timings {
        reg.register(
            "store_operation_duration_seconds",
            "Time each store transaction took on the store thread: op=commit wrote (one sync for \
             every batch merged into it), op=read only read",
            t.family.clone(),
        );
    }

    let mut out = String::new();
    if prometheus_text::encode(&mut out, &reg).is_err() {
        // Writing to a String cannot fail; say so in the exposition rather than panic.
        let _ = writeln!(out, "# encoding failed");
    }
    out
}
