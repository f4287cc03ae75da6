//! The broker loop: the one task that owns the [`Broker`], fed by every connection task through
//! one bounded channel, with one timer armed from the broker's next deadline. It hands the
//! broker's store batches to the store thread and the answers back to the broker; it never
//! waits for the store except when the store thread is [`STORE_QUEUE`] batches behind.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{Span, debug, error, field, info, info_span, warn};

use beckon_broker::admin::ReloadReport;
use beckon_broker::{
    AdminCall, AdminError, AdminResponse, Apps, Broker, BrokerStats, ClusterIn, ConnId, OutFrame,
    Output, Recovered, Store, StoreBatch, StoreDone,
};
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, server_frame};
use beckon_transport::Scheme;

use super::outbox::WriterHandle;
use super::{INPUT_BATCH, RECONNECT_SPREAD};
use crate::cluster::ClusterSender;
use crate::config::ServerConfig;
use crate::metrics::{LoopCounters, LoopSnapshot, StoreTimings, Timed, scheme_index};
use crate::store::{STORE_QUEUE, ServerStore, log_closed, spawn_store_thread};

/// What connection tasks (and the handle) tell the broker loop.
pub(crate) enum Input {
    Connect {
        conn: ConnId,
        peer: SocketAddr,
        scheme: Scheme,
        writer: WriterHandle,
    },
    Frame {
        conn: ConnId,
        payload: Bytes,
    },
    /// Frames that arrived together, in order: one hand-off for many when a client pipelines.
    Frames {
        conn: ConnId,
        payloads: Vec<Bytes>,
    },
    Disconnect {
        conn: ConnId,
        cause: Cause,
    },
    Stats(oneshot::Sender<BrokerStats>),
    /// An operator's request (the admin API).
    Admin {
        call: AdminCall,
        reply: oneshot::Sender<Result<AdminResponse, AdminError>>,
    },
    /// A metrics scrape.
    Snapshot(oneshot::Sender<LoopSnapshot>),
    /// Serve these apps from now on (a reload).
    Reload {
        apps: Box<Apps>,
        reply: oneshot::Sender<ReloadReport>,
    },
    /// What another node of the cluster (or the cluster driver) tells this one.
    Cluster(ClusterIn),
    Shutdown,
}

/// Why a connection task stopped reading.
#[derive(Debug)]
pub(crate) enum Cause {
    /// The peer closed the connection.
    Eof,
    /// The peer sent a frame longer than the maximum, or a length prefix of garbage.
    Oversized(String),
    /// Reading failed (reset, or the stream ended inside a frame).
    Read(io::Error),
    /// Writing failed.
    Write(io::ErrorKind),
}

struct ConnEntry {
    peer: SocketAddr,
    scheme: Scheme,
    writer: WriterHandle,
    /// The connection's log context: id, peer and transport, then app and account once it
    /// has logged in.
    span: Span,
    identified: bool,
}

/// Where the broker's store batches are carried out.
enum StoreDriver {
    /// On the broker's task, at once: the memory store does no I/O.
    Inline(Timed<ServerStore>),
    /// On the store thread (`crate::store::spawn_store_thread`).
    Thread {
        batches: mpsc::Sender<StoreBatch>,
        done: mpsc::UnboundedReceiver<StoreDone>,
        thread: std::thread::JoinHandle<()>,
        /// Batches sent and not yet answered.
        in_flight: usize,
    },
}

pub(super) struct BrokerLoop {
    broker: Broker<Timed<ServerStore>>,
    store: StoreDriver,
    inputs: mpsc::Receiver<Input>,
    /// Keyed by ids this server hands out, never by client input: a fast hash is safe.
    conns: FxHashMap<ConnId, ConnEntry>,
    outbound_budget: usize,
    /// Slow consumers the loop disconnected itself (the broker counts only its own).
    slow_consumers: u64,
    /// What the loop counts for metrics; `None` when metrics are off.
    counters: Option<LoopCounters>,
    /// Where cluster operations go, in cluster mode.
    cluster: Option<ClusterSender>,
    /// Admin requests whose answers wait for the cluster, by the broker's id for them (as
    /// many as the broker lets wait: its tables of questions are bounded).
    admin_waiting: FxHashMap<u64, oneshot::Sender<Result<AdminResponse, AdminError>>>,
}

impl BrokerLoop {
    /// A loop around a broker on `store`, taking up from `recovered`.
    ///
    /// # Errors
    ///
    /// When the store thread cannot be started.
    pub(super) fn new(
        config: &ServerConfig,
        store: ServerStore,
        recovered: Recovered,
        inputs: mpsc::Receiver<Input>,
        timings: Option<StoreTimings>,
        cluster: Option<ClusterSender>,
    ) -> io::Result<Self> {
        // The only place the wall clock is read: the broker derives Unix time from this pair
        // and the monotonic instants it is given afterwards.
        let epoch = now();
        let epoch_unix_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2),
            Err(_) => {
                warn!("the system clock is before 1970; timestamps will be wrong");
                0
            }
        };
        let counters = timings.is_some().then(LoopCounters::default);
        // Transactions are timed where they run: on the store thread (or inline).
        let store = Timed::new(store, timings);
        let mut broker = Broker::new(config.broker.clone(), store.clone(), epoch, epoch_unix_ms);
        broker.recovered(recovered);
        let store = if store.inner().is_inline() {
            StoreDriver::Inline(store)
        } else {
            let (batches, batch_rx) = mpsc::channel(STORE_QUEUE);
            let (done_tx, done) = mpsc::unbounded_channel();
            let thread = spawn_store_thread(store, batch_rx, done_tx)?;
            StoreDriver::Thread {
                batches,
                done,
                thread,
                in_flight: 0,
            }
        };
        Ok(Self {
            broker,
            store,
            inputs,
            conns: FxHashMap::default(),
            outbound_budget: config.outbound_budget_bytes,
            slow_consumers: 0,
            counters,
            cluster,
            admin_waiting: FxHashMap::default(),
        })
    }

    pub(super) async fn run(mut self) {
        // One timer, re-armed only when the broker's next deadline changes.
        let sleep = tokio::time::sleep(Duration::ZERO);
        let mut sleep = std::pin::pin!(sleep);
        let mut armed = None;
        loop {
            let deadline = self.broker.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(TokioInstant::from_std(at));
                }
                armed = deadline;
            }
            let mut stop = false;
            let started;
            tokio::select! {
                // The store's answers first: they release replies that are only waiting.
                biased;
                done = next_done(&mut self.store) => {
                    let Some(done) = done else {
                        error!("the store thread stopped; the broker loop cannot go on");
                        return;
                    };
                    started = self.counters.is_some().then(std::time::Instant::now);
                    self.store_done(done);
                }
                input = self.inputs.recv() => {
                    // Every sender is gone only once `run` has finished with the accept loop
                    // and every connection; nothing is left to serve.
                    let Some(input) = input else { break };
                    started = self.counters.is_some().then(std::time::Instant::now);
                    stop = self.handle_input(input);
                    let mut taken = 1;
                    for _ in 1..INPUT_BATCH {
                        if stop {
                            break;
                        }
                        match self.inputs.try_recv() {
                            Ok(input) => stop = self.handle_input(input),
                            Err(_) => break,
                        }
                        taken += 1;
                    }
                    if let Some(c) = &mut self.counters {
                        c.inputs += taken;
                    }
                }
                // Forgetting what is armed makes the next turn re-arm even an unchanged
                // deadline, so a completed timer can never make this select spin.
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    started = self.counters.is_some().then(std::time::Instant::now);
                }
            }
            // Checked after inputs too, so a steady stream of inputs cannot starve the timers.
            let now = now();
            if self.broker.poll_timeout().is_some_and(|at| at <= now) {
                self.broker.handle_timeout(now);
            }
            self.drain_outputs();
            if !self.hand_over_store_batches().await {
                error!("the store thread stopped; the broker loop cannot go on");
                return;
            }
            // A store carried out inline has answered already.
            self.drain_outputs();
            if let (Some(c), Some(started)) = (&mut self.counters, started) {
                c.busy += started.elapsed();
            }
            if stop {
                self.shutdown().await;
                break;
            }
        }
        self.stop_store().await;
        let path = self.broker.store().inner().path().cloned();
        // The broker's handle is the last one: dropping it closes the database.
        drop(self);
        log_closed(path.as_ref());
    }

    /// A store answer: whatever waited for it goes on.
    fn store_done(&mut self, done: StoreDone) {
        if let StoreDriver::Thread {
            done: rx,
            in_flight,
            ..
        } = &mut self.store
        {
            *in_flight = in_flight.saturating_sub(1);
            self.broker.handle_store_done(done);
            // Whatever else is answered already, in the same turn.
            while let Ok(more) = rx.try_recv() {
                *in_flight = in_flight.saturating_sub(1);
                self.broker.handle_store_done(more);
            }
        }
    }

    /// Hands the broker's store batches over: to the store thread (waiting only when it is
    /// [`STORE_QUEUE`] batches behind), or carried out at once for the memory store. Returns
    /// false when the store thread is gone.
    async fn hand_over_store_batches(&mut self) -> bool {
        let sender = match &self.store {
            StoreDriver::Thread { batches, .. } => Some(batches.clone()),
            StoreDriver::Inline(_) => None,
        };
        while let Some(batch) = self.broker.poll_store() {
            match (&mut self.store, &sender) {
                (StoreDriver::Inline(store), _) => {
                    for done in store.execute(vec![batch]) {
                        self.broker.handle_store_done(done);
                    }
                }
                (StoreDriver::Thread { in_flight, .. }, Some(sender)) => {
                    *in_flight += 1;
                    match sender.try_send(batch) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(batch)) => {
                            // The store is behind: what is ready goes out before waiting.
                            self.drain_outputs();
                            if sender.send(batch).await.is_err() {
                                return false;
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return false,
                    }
                }
                (StoreDriver::Thread { .. }, None) => return false,
            }
        }
        true
    }

    /// Waits until every store batch is answered and the broker has none left to hand out.
    async fn settle_store(&mut self) {
        loop {
            if !self.hand_over_store_batches().await {
                return;
            }
            self.drain_outputs();
            let StoreDriver::Thread {
                done, in_flight, ..
            } = &mut self.store
            else {
                return; // Inline: carried out already.
            };
            if *in_flight == 0 {
                return;
            }
            match done.recv().await {
                Some(d) => self.store_done(d),
                None => return,
            }
        }
    }

    /// Feeds one input to the broker; returns whether the loop must shut down.
    fn handle_input(&mut self, input: Input) -> bool {
        match input {
            Input::Cluster(input) => self.broker.handle_cluster(input, now()),
            Input::Connect {
                conn,
                peer,
                scheme,
                writer,
            } => {
                let span = info_span!(
                    "conn",
                    id = conn.0,
                    %peer,
                    transport = %scheme,
                    app = field::Empty,
                    account = field::Empty,
                );
                span.in_scope(|| debug!("connection opened"));
                if let Some(c) = &mut self.counters {
                    c.opened[scheme_index(scheme)] += 1;
                }
                let entry = ConnEntry {
                    peer,
                    scheme,
                    writer,
                    span,
                    identified: false,
                };
                self.conns.insert(conn, entry);
                // The address goes with the connection: admission control keeps a login
                // bucket per source address (SPEC §10).
                self.broker.connect_from(conn, peer.ip(), now());
            }
            Input::Frame { conn, payload } => {
                // Frames still in flight from a connection the loop already closed are dropped
                // (the broker would ignore them too).
                if self.conns.contains_key(&conn) {
                    self.broker.handle_frame(conn, &payload, now());
                    self.identify(conn);
                }
            }
            Input::Frames { conn, payloads } => {
                let now = now();
                for payload in payloads {
                    // Checked per frame: one of them may have closed the connection.
                    if !self.conns.contains_key(&conn) {
                        break;
                    }
                    self.broker.handle_frame(conn, &payload, now);
                }
                self.identify(conn);
            }
            Input::Disconnect { conn, cause } => {
                // What earlier inputs of this batch produced for the connection goes out first
                // (e.g. replies to requests sent just before a half-close).
                self.drain_outputs();
                // Absent when the loop closed the connection itself; the broker forgot it then.
                if let Some(entry) = self.conns.remove(&conn) {
                    let _span = entry.span.enter();
                    let (id, peer) = (conn.0, entry.peer);
                    match &cause {
                        Cause::Oversized(why) => {
                            debug!(conn = id, %peer, reason = %why, "closing: oversized frame");
                            // DESIGN: an oversized frame closes with LOGOUT_E_PACKET; the client
                            // hears why before the writer flushes and closes.
                            let kick = OutFrame::server(server_frame::Kind::Kick(pb::Kick {
                                code: ErrorCode::LogoutPacket.code(),
                                message: why.clone(),
                            }));
                            entry.writer.push_unbudgeted(kick);
                        }
                        Cause::Eof => debug!(conn = id, %peer, "connection closed by the peer"),
                        Cause::Read(e) => debug!(conn = id, %peer, error = %e, "connection lost"),
                        Cause::Write(kind) => {
                            debug!(conn = id, %peer, error = %kind, "connection lost: write failed");
                        }
                    }
                    self.broker.disconnect(conn, now());
                }
            }
            Input::Stats(reply) => {
                let mut stats = self.broker.stats();
                stats.slow_consumer_disconnects += self.slow_consumers;
                let _ = reply.send(stats);
            }
            Input::Admin { call, reply } => match self.broker.admin(call, now()) {
                Ok(AdminResponse::Waiting { id }) => {
                    self.admin_waiting.insert(id, reply);
                }
                answer => {
                    let _ = reply.send(answer);
                }
            },
            Input::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Input::Reload { apps, reply } => {
                let _ = reply.send(self.broker.reconfigure(*apps, now()));
            }
            Input::Shutdown => return true,
        }
        false
    }

    /// Records the app and account in a connection's log context once it has logged in.
    fn identify(&mut self, conn: ConnId) {
        let Some(entry) = self.conns.get_mut(&conn) else {
            return;
        };
        if entry.identified {
            return;
        }
        if let Some((app, account)) = self.broker.conn_identity(conn) {
            entry.span.record("app", app);
            entry.span.record("account", account);
            entry.identified = true;
        }
    }

    /// What a metrics scrape publishes, at this moment.
    fn snapshot(&self) -> LoopSnapshot {
        let mut broker = self.broker.snapshot();
        broker.stats.slow_consumer_disconnects += self.slow_consumers;
        let mut connections = [0; 5];
        for entry in self.conns.values() {
            connections[scheme_index(entry.scheme)] += 1;
        }
        LoopSnapshot {
            broker,
            counters: self.counters.clone().unwrap_or_default(),
            connections,
            queue_depth: self.inputs.len(),
            queue_capacity: self.inputs.max_capacity(),
        }
    }

    fn drain_outputs(&mut self) {
        while let Some((id, answer)) = self.broker.poll_admin() {
            if let Some(reply) = self.admin_waiting.remove(&id) {
                let _ = reply.send(answer);
            }
        }
        while let Some(out) = self.broker.poll_cluster() {
            if let Some(cluster) = &self.cluster {
                cluster.send(out);
            }
        }
        while let Some(output) = self.broker.poll_output() {
            match output {
                Output::Send { conn, frame } => self.send(conn, frame),
                Output::Close { conn, reason } => {
                    // Dropping the writer's handle closes its outbox: the writer writes what is
                    // queued, flushes and shuts the socket down; the connection task then ends.
                    if let Some(entry) = self.conns.remove(&conn) {
                        let _span = entry.span.enter();
                        let (id, peer, code) = (conn.0, entry.peer, reason.code);
                        let why = &reason.message;
                        // LOGIN_E_* codes: the broker refused a login (bad token, unknown app…).
                        if (200..300).contains(&code.code()) {
                            debug!(conn = id, %peer, %code, reason = %why, "login failed");
                        } else {
                            debug!(conn = id, %peer, %code, reason = %why, "closing connection");
                        }
                    }
                }
            }
        }
    }

    /// Queues a frame for a connection's writer, enforcing the outbound byte budget.
    fn send(&mut self, conn: ConnId, frame: OutFrame) {
        let Some(entry) = self.conns.get(&conn) else {
            return; // Closed already.
        };
        if let Err(queued) = entry.writer.push_within(frame, self.outbound_budget) {
            self.slow_consumer(conn, queued);
        }
    }

    /// Disconnects a connection whose peer does not read fast enough. Its session waits in
    /// grace like any other lost connection; the backlog is dropped rather than flushed, since
    /// flushing is exactly what the peer cannot keep up with.
    fn slow_consumer(&mut self, conn: ConnId, queued: usize) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        self.slow_consumers += 1;
        let _span = entry.span.enter();
        warn!(
            conn = conn.0,
            peer = %entry.peer,
            queued_bytes = queued,
            budget_bytes = self.outbound_budget,
            "disconnecting slow consumer: outbound queue over budget"
        );
        entry.writer.abort();
        self.broker.disconnect(conn, now());
    }

    /// Tells every client to come back later and closes every connection, through the broker:
    /// first every store batch under way is answered (so every reply owed goes out before the
    /// `GoAway`), then the broker shuts down, its last batch (the restart windows) is
    /// committed, and the store thread ends.
    async fn shutdown(&mut self) {
        let count = self.conns.len();
        self.settle_store().await;
        self.broker.shutdown(RECONNECT_SPREAD);
        self.drain_outputs();
        self.settle_store().await;
        // The broker closed every connection it knew; anything left is dropped the same way.
        self.conns.clear();
        info!(connections = count, "told clients to reconnect later");
    }

    /// Ends the store thread once it has carried out everything it was given.
    async fn stop_store(&mut self) {
        let inline = StoreDriver::Inline(Timed::new(ServerStore::Memory(Default::default()), None));
        if let StoreDriver::Thread {
            batches, thread, ..
        } = std::mem::replace(&mut self.store, inline)
        {
            drop(batches);
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                error!("the store thread failed");
            }
        }
    }
}

/// The store thread's next answer; never, for a store carried out inline.
async fn next_done(store: &mut StoreDriver) -> Option<StoreDone> {
    match store {
        StoreDriver::Thread { done, .. } => done.recv().await,
        StoreDriver::Inline(_) => std::future::pending().await,
    }
}

/// The current instant as the broker wants it. Taken from tokio's clock so that tests which
/// pause time also move the broker's timers.
fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}
