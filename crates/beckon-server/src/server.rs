//! The tokio runtime around the broker core: the accept loop, the broker loop, and one reader
//! and one writer task per connection.
//!
//! ```text
//!            accept loop ──spawns──▶ connection task (reads frames) ──Input──┐
//!                                         │ spawns                           ▼
//!   socket ◀── writer task ◀──OutFrame── broker loop (owns Broker, one timer) ◀── mpsc
//! ```
//!
//! The broker loop is the only owner of the broker, so the hot path takes no lock. Connection
//! tasks talk to it through one bounded channel (a slow broker pushes back on readers, and so
//! on clients, through TCP), and it talks to each writer through an [`Outbox`] whose size is
//! bounded by a byte budget the loop enforces itself (see `BrokerLoop::send`).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, error, info, warn};

use beckon_broker::{Broker, BrokerStats, ConnId, OutFrame, Output};
use beckon_proto::ErrorCode;
use beckon_proto::codec::LENGTH_PREFIX;
use beckon_proto::pb::{self, server_frame};
use beckon_transport::{
    Endpoint, FrameRx, FrameTx, Incoming, Listener, ListenerConfig, Scheme, ServerTls,
};

use crate::config::ServerConfig;
use crate::store::ServerStore;

/// Inputs the broker loop takes per batch before it drains the broker's outputs: large enough
/// to amortise the drain under load, small enough that one busy moment cannot delay timers.
const INPUT_BATCH: usize = 256;

/// Capacity of the input channel into the broker loop; beyond it, connection readers wait.
const INPUT_QUEUE: usize = 4096;

/// Frames a connection task hands to the broker loop at once, at most.
const READ_BATCH: usize = 64;

/// Accepted connections waiting for the main loop to start their tasks.
const ACCEPT_QUEUE: usize = 256;

/// After the server closes a connection, how long it keeps reading (and discarding) what the
/// peer still sends. Closing a socket with unread input makes the kernel send a reset, which
/// can destroy the last frames (a `LoginFailed`, a `Kick`, a `GoAway`) before the peer reads
/// them; waiting for the peer's own close avoids that.
const LINGER: Duration = Duration::from_secs(1);

/// [`LINGER`] during a shutdown: short, because clients told to go away close at once, and a
/// shutdown should not wait a second for a peer that does not (tests hold many).
const SHUTDOWN_LINGER: Duration = Duration::from_millis(100);

/// How long a connection's writer may take to flush its queue once the connection is ending.
const WRITER_DRAIN: Duration = Duration::from_secs(5);

/// How long a shutdown waits for connections to finish before it aborts them.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// Clients told to reconnect at shutdown spread their returns over this long, so a restart is
/// a ramp rather than a stampede.
const RECONNECT_SPREAD: Duration = Duration::from_secs(2);

/// How long a shutdown waits for QUIC connections to finish closing once served.
const LISTENER_CLOSE: Duration = Duration::from_secs(2);

/// Accept errors (e.g. out of file descriptors) back off from this delay, doubling to the max.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A Beckon server bound to its listening sockets, with its store open, not yet serving.
pub struct Server {
    listeners: Vec<Listener>,
    endpoints: Vec<Endpoint>,
    certificate: Option<CertificateDer<'static>>,
    config: ServerConfig,
    store: ServerStore,
    inputs: mpsc::Sender<Input>,
    input_rx: mpsc::Receiver<Input>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("endpoints", &self.endpoints)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store `config.storage` names (creating the data directory and database if
    /// need be), then binds a listener for every URL of `config.listen` (port 0 picks a free
    /// port). The secure schemes use `config.tls`, or a self-signed certificate made now.
    ///
    /// # Errors
    ///
    /// The error of opening the store — the data directory cannot be found or created, or the
    /// database cannot be opened, e.g. because another server holds it — with the path in its
    /// message; an empty `listen`; a certificate that cannot be made or used; or the error of
    /// binding a socket, with its URL.
    pub async fn bind(config: ServerConfig) -> io::Result<Server> {
        if config.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "nothing to listen on: `listen` is empty",
            ));
        }
        // Opening may repair the database after a crash, which reads the file: off the runtime.
        let storage = config.storage.clone();
        let store = tokio::task::spawn_blocking(move || ServerStore::open(&storage))
            .await
            .map_err(|e| io::Error::other(format!("opening the store failed: {e}")))??;

        let tls = if config.listen.iter().any(|e| e.scheme.is_secure()) {
            Some(match &config.tls {
                Some(tls) => tls.clone(),
                None => {
                    let mut names: Vec<String> = config
                        .listen
                        .iter()
                        .filter(|e| e.scheme.is_secure())
                        .map(|e| e.host.clone())
                        .collect();
                    names.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
                    names.sort();
                    names.dedup();
                    let tls = ServerTls::self_signed(&names).map_err(io::Error::from)?;
                    warn!(
                        names = ?names,
                        "no certificate configured (--tls-cert/--tls-key): the secure \
                         listeners use a self-signed one made now, which clients accept only \
                         when told to"
                    );
                    tls
                }
            })
        } else {
            None
        };
        let certificate = tls.as_ref().and_then(|t| t.cert_chain.first().cloned());

        let mut listeners = Vec::with_capacity(config.listen.len());
        let web_files = Arc::new(crate::web::web_files());
        for endpoint in &config.listen {
            let mut listener = Listener::bind(ListenerConfig {
                endpoint: endpoint.clone(),
                tls: if endpoint.scheme.is_secure() {
                    tls.clone()
                } else {
                    None
                },
                max_frame: config.max_frame,
            })
            .await
            .map_err(|e| {
                let e = io::Error::from(e);
                io::Error::new(e.kind(), format!("cannot listen on {endpoint}: {e}"))
            })?;
            listener.serve_static(web_files.clone());
            listeners.push(listener);
        }
        let endpoints = listeners.iter().map(|l| l.endpoint().clone()).collect();

        let floor = config.outbound_budget_floor();
        if config.outbound_budget_bytes < floor {
            warn!(
                budget_bytes = config.outbound_budget_bytes,
                floor_bytes = floor,
                "outbound_budget_bytes is below what a session may hold unacknowledged: a \
                 client whose session holds more than the budget is disconnected as a slow \
                 consumer each time it tries to resume"
            );
        }
        let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
        Ok(Server {
            listeners,
            endpoints,
            certificate,
            config,
            store,
            inputs,
            input_rx,
        })
    }

    /// The address of the first listener (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].local_addr()
    }

    /// Every listener's URL, in the order of `config.listen`, with the real ports.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The certificate the secure listeners present (for a client to trust it), if any
    /// listener is secure.
    pub fn certificate(&self) -> Option<&CertificateDer<'static>> {
        self.certificate.as_ref()
    }

    /// Serves until `shutdown` resolves, then shuts down cleanly: stops accepting, tells every
    /// connection to reconnect later (`GoAway`), puts the p2p messages clients had not
    /// acknowledged into the store, flushes and closes the connections, closes the store, and
    /// returns.
    ///
    /// # Errors
    ///
    /// When the broker loop fails (a panic in the broker core, which is a bug); accept errors
    /// are logged and retried, never returned.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let Server {
            listeners,
            endpoints,
            certificate: _,
            config,
            store,
            inputs,
            input_rx,
        } = self;
        for endpoint in &endpoints {
            info!(%endpoint, "listening");
        }

        let broker_loop = BrokerLoop::new(&config, store, input_rx);
        let mut broker_task = tokio::spawn(broker_loop.run());
        let mut broker_failed = None;

        // One accept task per listener, all feeding this loop, which owns the connections.
        let (accepted_tx, mut accepted) = mpsc::channel::<(Scheme, Incoming)>(ACCEPT_QUEUE);
        let mut acceptors = JoinSet::new();
        let listeners: Vec<Arc<Listener>> = listeners.into_iter().map(Arc::new).collect();
        for listener in &listeners {
            acceptors.spawn(accept_loop(listener.clone(), accepted_tx.clone()));
        }
        drop(accepted_tx);

        // Connection ids are never reused while the broker runs (it requires that).
        let mut next_conn = 0u64;
        let mut conns = JoinSet::new();
        let (shutting_down, shutting_down_rx) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        let settings = ConnSettings {
            handshake_timeout: config.handshake_timeout,
        };
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some((scheme, incoming)) = accepted.recv() => {
                    next_conn += 1;
                    let conn = ConnId(next_conn);
                    conns.spawn(serve_connection(
                        conn,
                        scheme,
                        incoming,
                        settings,
                        inputs.clone(),
                        shutting_down_rx.clone(),
                    ));
                }
                // Reaps finished connection tasks so the set does not grow without bound.
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                // The loop only returns after `Input::Shutdown`, so this is a panic in the
                // broker: without it nothing can be served, so stop rather than accept
                // connections that would all fail.
                ended = &mut broker_task => {
                    let why = match ended {
                        Err(e) => e.to_string(),
                        Ok(()) => "it returned".to_owned(),
                    };
                    error!(reason = %why, "the broker loop stopped; shutting down");
                    broker_failed = Some(why);
                    break;
                }
            }
        }

        info!("shutting down");
        // Dropping the listeners stops accepting; QUIC connections already open live on.
        acceptors.shutdown().await;
        drop(accepted);
        let _ = shutting_down.send(true);
        // Ordered after every input already queued, so replies to them still go out.
        let _ = inputs.send(Input::Shutdown).await;
        drop(inputs);
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = conns.len(),
                "connections did not close in time; aborting them"
            );
            conns.shutdown().await;
        }
        // Every connection has ended: let QUIC finish its closes, so the ports are free when
        // this returns (a restart on the same address must be able to bind them).
        let closing = async {
            for listener in &listeners {
                listener.close_and_wait().await;
            }
        };
        if tokio::time::timeout(LISTENER_CLOSE, closing).await.is_err() {
            debug!("QUIC connections still closing; not waiting for them");
        }
        drop(listeners);
        if let Some(why) = broker_failed {
            return Err(io::Error::other(format!("the broker loop stopped: {why}")));
        }
        if let Err(e) = broker_task.await {
            error!(error = %e, "the broker loop failed");
            return Err(io::Error::other(format!("the broker loop failed: {e}")));
        }
        info!("shut down");
        Ok(())
    }

    /// Binds and serves in a background task; for tests and embedding.
    ///
    /// Dropping the returned handle also shuts the server down, without waiting for it.
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub async fn spawn(config: ServerConfig) -> io::Result<ServerHandle> {
        let server = Server::bind(config).await?;
        let endpoints = server.endpoints.clone();
        let local_addr = server.local_addr();
        let certificate = server.certificate.clone();
        let inputs = server.inputs.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            // Resolves on `shutdown()` and also when the handle is dropped.
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            local_addr,
            endpoints,
            certificate,
            inputs,
            stop,
            task,
        })
    }
}

/// Accepts connections on one listener until the server stops (which aborts this task).
async fn accept_loop(listener: Arc<Listener>, accepted: mpsc::Sender<(Scheme, Incoming)>) {
    let scheme = listener.endpoint().scheme;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok(incoming) => {
                backoff = ACCEPT_BACKOFF_MIN;
                if accepted.send((scheme, incoming)).await.is_err() {
                    return; // Shutting down.
                }
            }
            Err(e) => {
                // Usually out of file descriptors: retrying at once would spin.
                warn!(endpoint = %listener.endpoint(), error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// A server running in a background task, from [`Server::spawn`].
pub struct ServerHandle {
    local_addr: SocketAddr,
    endpoints: Vec<Endpoint>,
    certificate: Option<CertificateDer<'static>>,
    inputs: mpsc::Sender<Input>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address of the first listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every listener's URL, with the real ports.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The first listener of `scheme`, if the server has one.
    pub fn endpoint(&self, scheme: Scheme) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.scheme == scheme)
    }

    /// The certificate the secure listeners present, if any listener is secure.
    pub fn certificate(&self) -> Option<&CertificateDer<'static>> {
        self.certificate.as_ref()
    }

    /// Shuts the server down and waits until it has finished.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "the server failed"),
            Err(e) => error!(error = %e, "the server task failed"),
        }
    }

    /// The broker's counters, asked of the broker loop (so they are consistent with each
    /// other). Frames already read but still queued for the loop are not counted yet.
    ///
    /// Returns all zeros once the server has stopped.
    pub async fn stats(&self) -> BrokerStats {
        let (tx, rx) = oneshot::channel();
        if self.inputs.send(Input::Stats(tx)).await.is_err() {
            return BrokerStats::default();
        }
        rx.await.unwrap_or_default()
    }
}

// ---- the broker loop --------------------------------------------------------------------------

/// What connection tasks (and the handle) tell the broker loop.
enum Input {
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
    Shutdown,
}

/// Why a connection task stopped reading.
#[derive(Debug)]
enum Cause {
    /// The peer closed the connection.
    Eof,
    /// The peer sent a frame longer than the maximum, or a length prefix of garbage.
    Oversized(String),
    /// Reading failed (reset, or the stream ended inside a frame).
    Read(io::Error),
    /// Writing failed.
    Write(io::ErrorKind),
    /// The writer task ended unexpectedly.
    WriterEnded,
}

/// The frames waiting for one connection's writer task.
///
/// A queue that costs nothing while empty (a channel would hold a block of slots for every
/// connection, idle or not), and that the writer empties a whole batch at a time.
#[derive(Default)]
struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    ready: tokio::sync::Notify,
}

#[derive(Default)]
struct OutboxState {
    frames: VecDeque<OutFrame>,
    /// The broker loop is done with the connection: the writer flushes what is left and ends.
    closed: bool,
    /// The writer has ended (a write failed, or it was aborted): nothing more is taken.
    writer_gone: bool,
}

/// A batch left with more room than this is dropped rather than kept for the next one.
const OUTBOX_KEEP: usize = 64;

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        // The lock is never held across anything that can panic; recover regardless.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a frame; gives it back when the writer has ended.
    fn push(&self, frame: OutFrame) -> Result<(), OutFrame> {
        let mut st = self.lock();
        if st.writer_gone {
            return Err(frame);
        }
        let was_empty = st.frames.is_empty();
        st.frames.push_back(frame);
        drop(st);
        // A non-empty queue has a wake-up pending already, and the writer takes it all.
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Swaps the queued frames into `batch` (which must be empty), waiting for some; `false`
    /// once the outbox is closed and drained.
    async fn take(&self, batch: &mut VecDeque<OutFrame>) -> bool {
        loop {
            {
                let mut st = self.lock();
                if !st.frames.is_empty() {
                    std::mem::swap(&mut st.frames, batch);
                    return true;
                }
                if st.closed {
                    return false;
                }
            }
            // A notification between the check and this wait is kept as a permit.
            self.ready.notified().await;
        }
    }

    /// The writer has ended: refuse further frames and free the queued ones.
    fn writer_gone(&self) {
        let mut st = self.lock();
        st.writer_gone = true;
        st.frames = VecDeque::new();
    }
}

/// The broker loop's side of one connection's writer.
struct WriterHandle {
    outbox: Arc<Outbox>,
    /// Bytes handed to the writer and not yet written; the loop adds, the writer subtracts.
    queued: Arc<AtomicUsize>,
    /// Stops the writer at once, dropping what it holds (for slow consumers).
    abort: AbortHandle,
    /// Never sent: dropped with the loop's entry, it tells the connection task that the loop
    /// is done with the connection, whatever the reason.
    _close_signal: oneshot::Sender<()>,
}

impl WriterHandle {
    /// Queues a last frame before the connection closes, outside the budget: it is small and
    /// the connection is ending anyway.
    fn push_unbudgeted(&self, frame: OutFrame) {
        let n = frame.len() + LENGTH_PREFIX;
        // Counted like any frame, or the writer's subtraction would wrap the counter.
        self.queued.fetch_add(n, Ordering::Relaxed);
        if self.outbox.push(frame).is_err() {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

impl Drop for WriterHandle {
    /// Whatever the reason the loop lets go of a connection, its writer flushes and ends.
    fn drop(&mut self) {
        self.outbox.close();
    }
}

struct ConnEntry {
    peer: SocketAddr,
    writer: WriterHandle,
}

struct BrokerLoop {
    broker: Broker<ServerStore>,
    inputs: mpsc::Receiver<Input>,
    /// Keyed by ids this server hands out, never by client input: a fast hash is safe.
    conns: FxHashMap<ConnId, ConnEntry>,
    outbound_budget: usize,
    /// Slow consumers the loop disconnected itself (the broker counts only its own).
    slow_consumers: u64,
}

impl BrokerLoop {
    fn new(config: &ServerConfig, store: ServerStore, inputs: mpsc::Receiver<Input>) -> Self {
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
        Self {
            broker: Broker::new(config.broker.clone(), store, epoch, epoch_unix_ms),
            inputs,
            conns: FxHashMap::default(),
            outbound_budget: config.outbound_budget_bytes,
            slow_consumers: 0,
        }
    }

    async fn run(mut self) {
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
            tokio::select! {
                input = self.inputs.recv() => {
                    // Every sender is gone only once `run` has finished with the accept loop
                    // and every connection; nothing is left to serve.
                    let Some(input) = input else { break };
                    stop = self.handle_input(input);
                    for _ in 1..INPUT_BATCH {
                        if stop {
                            break;
                        }
                        match self.inputs.try_recv() {
                            Ok(input) => stop = self.handle_input(input),
                            Err(_) => break,
                        }
                    }
                }
                // Forgetting what is armed makes the next turn re-arm even an unchanged
                // deadline, so a completed timer can never make this select spin.
                () = &mut sleep, if armed.is_some() => armed = None,
            }
            // Checked after inputs too, so a steady stream of inputs cannot starve the timers.
            let now = now();
            if self.broker.poll_timeout().is_some_and(|at| at <= now) {
                self.broker.handle_timeout(now);
            }
            self.drain_outputs();
            if stop {
                self.shutdown();
                break;
            }
        }
    }

    /// Feeds one input to the broker; returns whether the loop must shut down.
    fn handle_input(&mut self, input: Input) -> bool {
        match input {
            Input::Connect {
                conn,
                peer,
                scheme,
                writer,
            } => {
                debug!(conn = conn.0, %peer, %scheme, "connection opened");
                self.conns.insert(conn, ConnEntry { peer, writer });
                self.broker.connect(conn, now());
            }
            Input::Frame { conn, payload } => {
                // Frames still in flight from a connection the loop already closed are dropped
                // (the broker would ignore them too).
                if self.conns.contains_key(&conn) {
                    self.broker.handle_frame(conn, &payload, now());
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
            }
            Input::Disconnect { conn, cause } => {
                // What earlier inputs of this batch produced for the connection goes out first
                // (e.g. replies to requests sent just before a half-close).
                self.drain_outputs();
                // Absent when the loop closed the connection itself; the broker forgot it then.
                if let Some(entry) = self.conns.remove(&conn) {
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
                        Cause::WriterEnded => {
                            debug!(conn = id, %peer, "connection lost: writer ended")
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
            Input::Shutdown => return true,
        }
        false
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.broker.poll_output() {
            match output {
                Output::Send { conn, frame } => self.send(conn, frame),
                Output::Close { conn, reason } => {
                    // Dropping the writer's handle closes its outbox: the writer writes what is
                    // queued, flushes and shuts the socket down; the connection task then ends.
                    if let Some(entry) = self.conns.remove(&conn) {
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
        let n = frame.len() + LENGTH_PREFIX;
        // Added before sending so the writer's subtraction can never underflow.
        let queued = entry.writer.queued.fetch_add(n, Ordering::Relaxed) + n;
        if queued > self.outbound_budget {
            self.slow_consumer(conn, queued);
            return;
        }
        if entry.writer.outbox.push(frame).is_err() {
            // The writer has stopped (write error); its connection task reports the disconnect.
            entry.writer.queued.fetch_sub(n, Ordering::Relaxed);
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
        warn!(
            conn = conn.0,
            peer = %entry.peer,
            queued_bytes = queued,
            budget_bytes = self.outbound_budget,
            "disconnecting slow consumer: outbound queue over budget"
        );
        entry.writer.abort.abort();
        self.broker.disconnect(conn, now());
    }

    /// Tells every client to come back later and closes every connection, through the broker
    /// so that it also puts unacknowledged messages back in the store.
    fn shutdown(&mut self) {
        let count = self.conns.len();
        self.broker.shutdown(RECONNECT_SPREAD);
        self.drain_outputs();
        // The broker closed every connection it knew; anything left is dropped the same way.
        self.conns.clear();
        info!(connections = count, "told clients to reconnect later");
    }
}

/// The current instant as the broker wants it. Taken from tokio's clock so that tests which
/// pause time also move the broker's timers.
fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}

// ---- one connection ---------------------------------------------------------------------------

/// What every connection task needs from the configuration.
#[derive(Clone, Copy, Debug)]
struct ConnSettings {
    handshake_timeout: Duration,
}

/// Runs one connection's transport handshake, then reads its frames into the broker loop, with
/// a writer task beside it.
async fn serve_connection(
    conn: ConnId,
    scheme: Scheme,
    incoming: Incoming,
    settings: ConnSettings,
    inputs: mpsc::Sender<Input>,
    shutting_down: watch::Receiver<bool>,
) {
    let peer = incoming.peer();
    // The handshake runs here, in the connection's own task and under a deadline, so a peer
    // that never finishes it (a stalled TLS hello, a half-sent HTTP upgrade) costs one idle
    // task and its buffers until the deadline, and holds up nobody else.
    let (mut rx, tx) =
        // Boxed: the handshake's state (a WebSocket upgrade's is kilobytes) is freed once it is
        // done, rather than sizing this task for the connection's whole life.
        match tokio::time::timeout(settings.handshake_timeout, Box::pin(incoming.establish()))
            .await
        {
            Ok(Ok(Some(pair))) => pair,
            Ok(Ok(None)) => {
                debug!(conn = conn.0, %peer, %scheme, "answered a plain HTTP request");
                return;
            }
            Ok(Err(e)) => {
                debug!(conn = conn.0, %peer, %scheme, error = %e, "closing: handshake failed");
                return;
            }
            Err(_) => {
                debug!(
                    conn = conn.0,
                    %peer,
                    %scheme,
                    timeout = ?settings.handshake_timeout,
                    "closing: handshake not finished in time"
                );
                return;
            }
        };

    let outbox = Arc::new(Outbox::default());
    let queued = Arc::new(AtomicUsize::new(0));
    let mut writer_task = tokio::spawn(write_frames(outbox.clone(), tx, queued.clone()));
    let (close_signal, mut closed) = oneshot::channel();
    let writer = WriterHandle {
        outbox,
        queued,
        abort: writer_task.abort_handle(),
        _close_signal: close_signal,
    };
    if inputs
        .send(Input::Connect {
            conn,
            peer,
            scheme,
            writer,
        })
        .await
        .is_err()
    {
        writer_task.abort();
        return; // Shutting down.
    }

    let mut writer_result = None;
    let cause = loop {
        tokio::select! {
            read = rx.read_frame() => match read {
                Ok(Some(payload)) => {
                    // Whatever else arrived in the same read goes in the same hand-off.
                    let input = match rx.try_buffered() {
                        None => Input::Frame { conn, payload },
                        Some(second) => {
                            let mut payloads = vec![payload, second];
                            while payloads.len() < READ_BATCH {
                                let Some(next) = rx.try_buffered() else { break };
                                payloads.push(next);
                            }
                            Input::Frames { conn, payloads }
                        }
                    };
                    if inputs.send(input).await.is_err() {
                        break None; // The broker loop is gone: shutting down.
                    }
                }
                Ok(None) => break Some(Cause::Eof),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    break Some(Cause::Oversized(e.to_string()));
                }
                Err(e) => break Some(Cause::Read(e)),
            },
            // The broker loop dropped this connection (a close, a slow consumer, a
            // shutdown): it has forgotten it, so nothing more is read.
            _ = &mut closed => break None,
            // A write failed (the writer ends cleanly only after the loop let go).
            done = &mut writer_task => {
                let cause = match &done {
                    Ok(Err(e)) => Cause::Write(e.kind()),
                    _ => Cause::WriterEnded,
                };
                writer_result = Some(done);
                break Some(cause);
            }
        }
    };
    if let Some(cause) = cause {
        // The loop drops the writer's handle when it handles this, so the writer finishes.
        let _ = inputs.send(Input::Disconnect { conn, cause }).await;
    }
    drop(inputs);

    // Wait for the writer to flush what is queued and shut its side down, but not forever: a
    // peer that reads nothing could hold it, and this task, indefinitely.
    let writer_result = match writer_result {
        Some(done) => done,
        // Boxed, like the linger below: what only the end of a connection needs should not
        // size the task for its whole life.
        None => match Box::pin(tokio::time::timeout(WRITER_DRAIN, &mut writer_task)).await {
            Ok(done) => done,
            Err(_) => {
                debug!(conn = conn.0, %peer, "writer did not drain in time; dropping its queue");
                writer_task.abort();
                return;
            }
        },
    };
    match writer_result {
        // Our side is closed; wait briefly for the peer's close, so unread input cannot turn
        // our close into a reset (TCP) or an abrupt connection close (QUIC) that destroys the
        // frames just written.
        Ok(Ok(())) => Box::pin(linger(&mut rx, shutting_down)).await,
        Ok(Err(e)) => debug!(conn = conn.0, %peer, error = %e, "write failed"),
        Err(_) => {} // Aborted: a slow consumer, already logged by the loop.
    }
}

/// Discards input until the peer closes, for at most [`LINGER`], or [`SHUTDOWN_LINGER`] once
/// the server is shutting down.
async fn linger(rx: &mut FrameRx, mut shutting_down: watch::Receiver<bool>) {
    let drain = rx.discard_until_closed();
    let cut_short = async {
        // An error means the server is gone altogether: cut short as well.
        let _ = shutting_down.wait_for(|down| *down).await;
        tokio::time::sleep(SHUTDOWN_LINGER).await;
    };
    tokio::select! {
        _ = tokio::time::timeout(LINGER, drain) => {}
        () = cut_short => {}
    }
}

/// Writes what the broker loop queues, a batch per flush, until the loop closes the outbox.
async fn write_frames(
    outbox: Arc<Outbox>,
    mut writer: FrameTx,
    queued: Arc<AtomicUsize>,
) -> io::Result<()> {
    /// Marks the outbox when the writer ends, however it ends (an error, or an abort).
    struct Gone(Arc<Outbox>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.writer_gone();
        }
    }
    let _gone = Gone(outbox.clone());
    let mut batch = VecDeque::new();
    while outbox.take(&mut batch).await {
        let mut written = 0;
        // The whole queue goes out in one flush: one syscall for many frames when it is deep.
        for frame in batch.drain(..) {
            written += frame.len() + LENGTH_PREFIX;
            writer.write_frame(&frame.head, &frame.body).await?;
        }
        writer.flush().await?;
        queued.fetch_sub(written, Ordering::Relaxed);
        if batch.capacity() > OUTBOX_KEEP {
            batch = VecDeque::new();
        }
    }
    writer.shutdown().await
}
