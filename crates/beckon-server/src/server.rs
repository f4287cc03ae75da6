//! The tokio runtime around the broker core: the accept loops, the broker loop, and one task
//! per connection that reads its frames and writes what the loop queues for it.
//!
//! ```text
//!            accept loop ──spawns──▶ connection task (reads frames) ──Input──┐
//!                                         ▲                                  ▼
//!   socket ◀── connection task ◀── outbox ◀──OutFrame── broker loop (owns Broker) ◀── mpsc
//! ```
//!
//! The broker loop (`broker_loop`) is the only owner of the broker, so the hot path takes no
//! lock. Connection tasks (`connection`) talk to it through one bounded channel (a slow broker
//! pushes back on readers, and so on clients, through TCP), and it writes to each connection
//! through an outbox (`outbox`) whose size is bounded by a byte budget the loop enforces. The
//! listeners and their accept loops are in `listeners`; this module binds, serves and shuts
//! down, and holds every bound the runtime keeps, each with its reason.

mod broker_loop;
mod connection;
mod listeners;
mod outbox;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use beckon_broker::{BrokerStats, Recovered};
use beckon_transport::{Endpoint, Listener, Scheme};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::admin;
use crate::cluster::Node;
use crate::config::ServerConfig;
use crate::metrics::StoreTimings;
use crate::reload::Reloader;
use crate::store::ServerStore;
use broker_loop::BrokerLoop;
pub(crate) use broker_loop::Input;
use connection::Connections;
use listeners::Acceptors;

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
    /// What the store says the last server left behind.
    recovered: Recovered,
    inputs: mpsc::Sender<Input>,
    input_rx: mpsc::Receiver<Input>,
    /// The operator listener, when configured.
    admin: Option<admin::Bound>,
    /// This node's place in its cluster, in cluster mode.
    cluster: Option<Node>,
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
        let cluster_store = config.cluster.clone();
        let (store, recovered) = tokio::task::spawn_blocking(move || {
            ServerStore::open(&storage, cluster_store.as_ref())
        })
        .await
        .map_err(|e| io::Error::other(format!("opening the store failed: {e}")))??;

        // A node that cannot join its cluster (Redis unreachable, another protocol version, its
        // id in use) does not start.
        let cluster = match config.cluster.clone() {
            Some(c) => Some(Node::join(c).await?),
            None => None,
        };
        let (listeners, certificate) = listeners::bind(&config).await?;
        let admin = match config.admin {
            Some(addr) => Some(admin::Bound::bind(addr).await?),
            None => None,
        };
        let endpoints = listeners.iter().map(|l| l.endpoint().clone()).collect();

        for app in config.broker.apps.configured().filter(|a| a.legacy_tokens) {
            warn!(
                app_id = %app.app_id,
                "LEGACY TOKENS: this app also accepts the old `1:<appId>:<expireTs>:<md5>` \
                 token format, which is weak (no HMAC, replayable by anyone who sees a token \
                 until it expires, no privileges); turn `legacy_tokens` off once its token \
                 server mints SignalingTokens"
            );
        }
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
            recovered,
            inputs,
            input_rx,
            admin,
            cluster,
        })
    }

    /// The operator listener's address (`/metrics`, the admin API), when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// A handle that reloads the configuration file into the running server (SIGHUP does it
    /// in the binary).
    pub fn reloader(&self) -> Reloader {
        Reloader::new(self.inputs.clone(), &self.config)
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
            recovered,
            inputs,
            input_rx,
            admin,
            cluster,
        } = self;
        for endpoint in &endpoints {
            info!(%endpoint, "listening");
        }

        // Metrics are kept only when something can scrape them.
        let timings = admin.as_ref().map(|_| StoreTimings::default());
        let mut cluster = cluster.map(|node| node.start(inputs.clone()));
        let health = cluster.as_ref().map(crate::cluster::Running::health);
        let sender = cluster.as_mut().and_then(crate::cluster::Running::sender);
        let broker_loop =
            BrokerLoop::new(&config, store, recovered, input_rx, timings.clone(), sender)?;
        let mut broker_task = tokio::spawn(broker_loop.run());
        let mut broker_failed = None;

        let ready = Arc::new(AtomicBool::new(false));
        let (admin_stop, admin_stopped) = oneshot::channel::<()>();
        let admin_task = admin.zip(timings).map(|(bound, timings)| {
            info!(url = %format!("http://{}", bound.addr), "admin listener (metrics, admin API)");
            let state = admin::AdminState {
                inputs: inputs.clone(),
                timings,
                ready: ready.clone(),
                reloader: Reloader::new(inputs.clone(), &config),
                cluster: health.clone(),
            };
            tokio::spawn(admin::serve(bound.listener, state, async {
                let _ = admin_stopped.await;
            }))
        });

        // One accept task per listener, all feeding this loop, which owns the connections.
        let mut acceptors = Acceptors::start(listeners);
        ready.store(true, Ordering::Release);
        let mut conns = Connections::new(config.handshake_timeout, inputs);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some((scheme, incoming)) = acceptors.next() => conns.spawn(scheme, incoming),
                true = conns.reap(), if !conns.is_empty() => {}
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
        ready.store(false, Ordering::Release);
        let listeners = acceptors.stop().await;
        conns.shut_down().await;
        // Every connection has ended: free the ports, so that a restart can bind them.
        listeners.close().await;
        if let Some(why) = broker_failed {
            return Err(io::Error::other(format!("the broker loop stopped: {why}")));
        }
        let broker_ended = broker_task.await;
        if let Some(cluster) = cluster {
            cluster.leave().await;
        }
        // The operator listener stays up through the drain (probes see "not ready"), and stops
        // last; its open connections get a moment to finish.
        let _ = admin_stop.send(());
        if let Some(task) = admin_task
            && tokio::time::timeout(LISTENER_CLOSE, task).await.is_err()
        {
            warn!("the admin listener did not stop in time");
        }
        if let Err(e) = broker_ended {
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
        let admin_addr = server.admin_addr();
        let reloader = server.reloader();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            // Resolves on `shutdown()` and also when the handle is dropped.
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            local_addr,
            endpoints,
            certificate,
            admin_addr,
            reloader,
            inputs,
            stop,
            task,
        })
    }
}

/// A server running in a background task, from [`Server::spawn`].
pub struct ServerHandle {
    local_addr: SocketAddr,
    endpoints: Vec<Endpoint>,
    certificate: Option<CertificateDer<'static>>,
    admin_addr: Option<SocketAddr>,
    reloader: Reloader,
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

    /// The operator listener's address, when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Reloads the configuration file, as SIGHUP does (see [`Reloader::reload`]).
    ///
    /// # Errors
    ///
    /// As [`Reloader::reload`].
    pub async fn reload(&self) -> Result<beckon_broker::admin::ReloadReport, String> {
        self.reloader.reload().await
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
