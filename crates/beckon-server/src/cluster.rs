//! Cluster mode's driver: the Redis side of a node.
//!
//! The broker stays sans-IO; this module carries out its [`ClusterOut`]s on Redis and feeds
//! what other nodes say back to it as [`ClusterIn`]s (see `docs/cluster.md`):
//!
//! - **protocol version**: `beckon:version` holds the cluster protocol version; a node that
//!   finds another refuses to start.
//! - **node registry**: `beckon:node:{<id>}` holds the running instance's random id with a TTL
//!   (`node_ttl`), refreshed every third of it. A node whose key is gone is dead.
//! - **presence**: `beckon:presence:{<app>:<account>}` holds `<node>/<instance>/<session>` of
//!   the account's one session. A claim overwrites it and reads the previous holder, which is
//!   told to end its session on its node's topic; a release deletes it only if it still names
//!   the releasing session. An account counts as online when its entry names a live instance,
//!   so a dead node's accounts go offline when its registration expires.
//! - **routing**: each node subscribes to its own topic `beckon:node:<id>` (plain pub/sub,
//!   which a Redis Cluster broadcasts to every shard): kicks, notices of stored messages, and
//!   call signals (`calls`).
//! - **channels** (`cluster/channels.rs`): membership and attributes per channel, changed by
//!   Lua scripts that publish their events on the channel's topic, which only nodes with
//!   members subscribe to (on the same connection as the node's topic).
//!
//! Operations on one account run in order (they are sharded by account over a few workers,
//! each carrying out its share one at a time); every command has a timeout, and a failure is
//! reported ([`ClusterHealth`], a kick or a failed query) rather than hidden.

use std::hash::{Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, RedisError, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use beckon_broker::{ClusterIn, ClusterOut};
use beckon_proto::ErrorCode;

use crate::config::{ClusterConfig, ClusterUrl};
use crate::server::Input;

mod calls;
mod channels;

/// The version of what nodes keep in Redis and say to each other. A node refuses to join a
/// cluster that records another.
pub(crate) const PROTOCOL_VERSION: &str = "1";

/// The key that records it.
const VERSION_KEY: &str = "beckon:version";

/// Workers carrying out the broker's cluster operations; an account's always go to the same.
const WORKERS: usize = 8;

/// How long a shutdown waits for the last releases to reach Redis.
const DRAIN: Duration = Duration::from_secs(3);

/// The pause between attempts to resubscribe after the subscription connection failed.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(500);

/// Compare-and-delete: the presence entry goes only if it still names the releasing session.
const RELEASE_SCRIPT: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// Whether this node reaches its Redis, for `/healthz` and `/readyz`.
#[derive(Debug, Default)]
pub(crate) struct ClusterHealth {
    reachable: AtomicBool,
    last_error: Mutex<Option<String>>,
    pub(crate) node_id: String,
    pub(crate) url: String,
}

impl ClusterHealth {
    fn ok(&self) {
        self.reachable.store(true, Ordering::Release);
    }

    fn failed(&self, why: &str) {
        let was = self.reachable.swap(false, Ordering::AcqRel);
        if was {
            error!(error = %why, "cluster: Redis is unreachable");
        }
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
    }

    /// Whether the last command reached Redis, and if not, why not.
    pub(crate) fn status(&self) -> (bool, Option<String>) {
        let reachable = self.reachable.load(Ordering::Acquire);
        let why = if reachable {
            None
        } else {
            self.last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        (reachable, why)
    }
}

/// A connection for commands, to one Redis or to a Redis Cluster. Both reconnect by themselves.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// What a node says to another on its topic.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum NodeMessage {
    /// End session `session` of the account (on `instance` of the node): another node took
    /// the account.
    Kick {
        instance: String,
        app: String,
        account: String,
        session: u64,
    },
    /// Another node stored p2p messages for the account, which has its session on this node
    /// (`instance`): read its queue.
    Stored {
        instance: String,
        app: String,
        account: String,
    },
    /// A call event for session `session` of the account (on `instance` of the node).
    Call {
        instance: String,
        app: String,
        account: String,
        session: u64,
        signal: calls::WireSignal,
    },
}

/// A node's place in the cluster: its connection, names and health.
pub(crate) struct Node {
    conn: Conn,
    config: ClusterConfig,
    /// Random per process: tells this run of the node from an earlier one with the same id.
    instance: String,
    health: Arc<ClusterHealth>,
    /// The channel topics this node listens to.
    subscriptions: channels::Subscriptions,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.config.node_id)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn node_key(id: &str) -> String {
    format!("beckon:node:{{{id}}}")
}

fn node_topic(id: &str) -> String {
    format!("beckon:node:{id}")
}

/// The presence key of an account; the app's length keeps app and account apart whatever
/// they contain, and the braces keep the key in one slot of a Redis Cluster.
fn presence_key(app: &str, account: &str) -> String {
    format!("beckon:presence:{{{}:{app}:{account}}}", app.len())
}

fn presence_value(node: &str, instance: &str, session: u64) -> String {
    format!("{node}/{instance}/{session}")
}

/// `node/instance/session`, as a presence entry has it.
fn parse_presence(v: &str) -> Option<(&str, &str, u64)> {
    let mut parts = v.rsplitn(3, '/');
    let session = parts.next()?.parse().ok()?;
    let instance = parts.next()?;
    let node = parts.next()?;
    Some((node, instance, session))
}

fn redis_error(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("cluster: {what}: {e}"))
}

impl Node {
    /// Connects to the cluster's Redis, checks its protocol version (recording ours in a new
    /// cluster) and registers this node.
    ///
    /// # Errors
    ///
    /// Redis cannot be reached, the cluster speaks another protocol version, or a live node
    /// already has this node's id.
    pub(crate) async fn join(config: ClusterConfig) -> io::Result<Node> {
        let url = config.url.redacted();
        let connect = async {
            match &config.url {
                ClusterUrl::Single(u) => {
                    let client = redis::Client::open(u.as_str())?;
                    Ok::<_, RedisError>(Conn::Single(client.get_connection_manager().await?))
                }
                ClusterUrl::Cluster(nodes) => {
                    let client = redis::cluster::ClusterClient::new(nodes.clone())?;
                    Ok(Conn::Cluster(client.get_async_connection().await?))
                }
            }
        };
        let conn = tokio::time::timeout(config.redis_timeout * 5, connect)
            .await
            .map_err(|_| redis_error(&format!("cannot reach {url}"), "timed out"))?
            .map_err(|e| redis_error(&format!("cannot reach {url}"), e))?;
        let mut instance = [0u8; 8];
        getrandom::fill(&mut instance).map_err(|e| io::Error::other(e.to_string()))?;
        let instance: String = instance.iter().map(|b| format!("{b:02x}")).collect();
        let health = Arc::new(ClusterHealth {
            node_id: config.node_id.clone(),
            url: url.clone(),
            ..Default::default()
        });
        let node = Node {
            conn,
            config,
            instance,
            health,
            subscriptions: channels::Subscriptions::default(),
        };
        node.check_version().await?;
        node.register().await?;
        node.health.ok();
        info!(
            node = %node.config.node_id,
            redis = %url,
            version = PROTOCOL_VERSION,
            "cluster: joined"
        );
        Ok(node)
    }

    pub(crate) fn health(&self) -> Arc<ClusterHealth> {
        self.health.clone()
    }

    async fn check_version(&self) -> io::Result<()> {
        let mut set = redis::cmd("SET");
        set.arg(VERSION_KEY).arg(PROTOCOL_VERSION).arg("NX");
        let _: Value = self
            .run(&set)
            .await
            .map_err(|e| redis_error("version", e))?;
        let mut get = redis::cmd("GET");
        get.arg(VERSION_KEY);
        let found: Option<String> = self
            .run(&get)
            .await
            .map_err(|e| redis_error("version", e))?;
        match found.as_deref() {
            Some(PROTOCOL_VERSION) => Ok(()),
            other => Err(io::Error::other(format!(
                "cluster: the cluster at {} speaks protocol version {}, this node speaks {}; \
                 refusing to join (upgrade or downgrade the nodes so they all speak one)",
                self.health.url,
                other.unwrap_or("(none)"),
                PROTOCOL_VERSION
            ))),
        }
    }

    /// Registers the node, refusing when a live node has its id.
    async fn register(&self) -> io::Result<()> {
        let key = node_key(&self.config.node_id);
        let ttl = ttl_ms(self.config.node_ttl);
        let mut set = redis::cmd("SET");
        set.arg(&key)
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(ttl);
        let made: Option<String> = self
            .run(&set)
            .await
            .map_err(|e| redis_error("register", e))?;
        if made.is_none() {
            return Err(io::Error::other(format!(
                "cluster: node id {:?} is in use by a live node; give each node its own id \
                 (--node-id), or wait up to {} ms for a dead node's registration to expire",
                self.config.node_id, ttl
            )));
        }
        Ok(())
    }

    /// Runs one command with the node's timeout.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, String> {
        run(&self.conn, cmd, self.config.redis_timeout).await
    }

    /// Starts the node's tasks: its heartbeat, its subscription (feeding `inputs`) and the
    /// workers that carry out the broker's cluster operations.
    pub(crate) fn start(self, inputs: mpsc::Sender<Input>) -> Running {
        let node = Arc::new(self);
        let heartbeat = tokio::spawn(heartbeat(node.clone()));
        let subscriber = tokio::spawn(subscribe(node.clone(), inputs.clone()));
        let sweeper = tokio::spawn(channels::sweep_dead_members(node.clone()));
        let mut senders = Vec::with_capacity(WORKERS);
        let mut workers = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            workers.push(tokio::spawn(work(node.clone(), rx, inputs.clone())));
        }
        Running {
            node,
            heartbeat,
            subscriber,
            sweeper,
            workers,
            sender: Some(ClusterSender { senders }),
        }
    }
}

fn ttl_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(3)
}

async fn run<T: FromRedisValue>(conn: &Conn, cmd: &Cmd, timeout: Duration) -> Result<T, String> {
    let done = async {
        match conn.clone() {
            Conn::Single(mut c) => cmd.query_async(&mut c).await,
            Conn::Cluster(mut c) => cmd.query_async(&mut c).await,
        }
    };
    match tokio::time::timeout(timeout, done).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The node's tasks, while it runs.
pub(crate) struct Running {
    node: Arc<Node>,
    heartbeat: JoinHandle<()>,
    subscriber: JoinHandle<()>,
    /// Takes dead nodes' members out of this node's channels.
    sweeper: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    sender: Option<ClusterSender>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Running {
    pub(crate) fn health(&self) -> Arc<ClusterHealth> {
        self.node.health()
    }

    /// Where the broker loop sends its cluster operations (once).
    pub(crate) fn sender(&mut self) -> Option<ClusterSender> {
        self.sender.take()
    }

    /// Once the broker loop has ended (and dropped its sender): lets the workers carry out the
    /// last releases, then deregisters the node.
    pub(crate) async fn leave(self) {
        self.subscriber.abort();
        self.heartbeat.abort();
        self.sweeper.abort();
        drop(self.sender);
        let workers = futures_util::future::join_all(self.workers);
        if tokio::time::timeout(DRAIN, workers).await.is_err() {
            warn!("cluster: the last presence releases did not reach Redis in time");
        }
        let mut del = redis::cmd("DEL");
        del.arg(node_key(&self.node.config.node_id));
        match self.node.run::<Value>(&del).await {
            Ok(_) => info!(node = %self.node.config.node_id, "cluster: left"),
            Err(e) => warn!(error = %e, "cluster: could not deregister; it expires by itself"),
        }
    }
}

/// The broker loop's handle on the workers.
#[derive(Clone, Debug)]
pub(crate) struct ClusterSender {
    senders: Vec<mpsc::UnboundedSender<ClusterOut>>,
}

impl ClusterSender {
    /// Hands an operation to the worker of its account.
    pub(crate) fn send(&self, out: ClusterOut) {
        let (app, account) = match &out {
            ClusterOut::Claim { app, account, .. }
            | ClusterOut::Release { app, account, .. }
            | ClusterOut::Status { app, account, .. }
            | ClusterOut::Stored { app, account }
            | ClusterOut::CallSignal { app, account, .. } => (app, account),
            // A channel's operations run in order on one worker.
            ClusterOut::Channel { app, channel, .. } => (app, channel),
        };
        let mut h = rustc_hash::FxHasher::default();
        (app, account).hash(&mut h);
        let i = usize::try_from(h.finish() % self.senders.len() as u64).unwrap_or(0);
        // A worker ends only after the loop has dropped this handle.
        let _ = self.senders[i].send(out);
    }
}

/// Refreshes the node's registration every third of its TTL. A refresh that finds another
/// instance under the node's id (this node's registration expired and the id was taken) is
/// logged; the node keeps serving the sessions it has.
async fn heartbeat(node: Arc<Node>) {
    let ttl = ttl_ms(node.config.node_ttl);
    let every = node.config.node_ttl / 3;
    let key = node_key(&node.config.node_id);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut set = redis::cmd("SET");
        set.arg(&key)
            .arg(&node.instance)
            .arg("PX")
            .arg(ttl)
            .arg("GET");
        match node.run::<Option<String>>(&set).await {
            Ok(previous) => {
                if let Some(p) = previous.filter(|p| *p != node.instance) {
                    error!(
                        node = %node.config.node_id,
                        other = %p,
                        "cluster: another instance registered this node id"
                    );
                }
                node.health.ok();
            }
            Err(e) => node.health.failed(&e),
        }
    }
}

/// Listens on the node's topic, resubscribing after a failure. Notices published meanwhile
/// reached no one: once subscribed again, the broker hears [`ClusterIn::Resubscribed`] and
/// every session here reads its queue again.
async fn subscribe(node: Arc<Node>, inputs: mpsc::Sender<Input>) {
    let topic = node_topic(&node.config.node_id);
    let url = match &node.config.url {
        ClusterUrl::Single(u) => u.clone(),
        // Plain pub/sub reaches every shard of a Redis Cluster: any one node will do.
        ClusterUrl::Cluster(nodes) => nodes[0].clone(),
    };
    let mut first = true;
    loop {
        let connected = async {
            let client = redis::Client::open(url.as_str())?;
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            sink.subscribe(&topic).await?;
            Ok::<_, RedisError>((sink, stream))
        };
        let (sink, mut messages) =
            match tokio::time::timeout(node.config.redis_timeout, connected).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    node.health.failed(&format!("subscribing to {topic}: {e}"));
                    tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                    continue;
                }
                Err(_) => {
                    node.health
                        .failed(&format!("subscribing to {topic}: timed out"));
                    tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
                    continue;
                }
            };
        if let Err(e) = node.subscriptions.connected(sink).await {
            node.health
                .failed(&format!("subscribing to the channels again: {e}"));
            tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
            continue;
        }
        debug!(%topic, "cluster: subscribed");
        // Notices and channel events published meanwhile reached no one.
        if !std::mem::replace(&mut first, false)
            && inputs
                .send(Input::Cluster(ClusterIn::Resubscribed))
                .await
                .is_err()
        {
            return; // The broker loop is gone.
        }
        while let Some(msg) = messages.next().await {
            let Ok(payload) = msg.get_payload::<Vec<u8>>() else {
                continue;
            };
            let input = match channels::input(&node, msg.get_channel_name(), &payload) {
                Some(input) => input,
                None => node_input(&node, &payload),
            };
            let Some(input) = input else {
                continue;
            };
            if inputs.send(Input::Cluster(input)).await.is_err() {
                return; // The broker loop is gone.
            }
        }
        node.subscriptions.disconnected();
        warn!(%topic, "cluster: the subscription ended; resubscribing");
        tokio::time::sleep(RESUBSCRIBE_BACKOFF).await;
    }
}

/// What a message on the node's topic asks of the broker, if it is for this run of the node.
fn node_input(node: &Node, payload: &[u8]) -> Option<ClusterIn> {
    let message: NodeMessage = match serde_json::from_slice(payload) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "cluster: a message this node does not understand");
            return None;
        }
    };
    match message {
        NodeMessage::Kick {
            instance,
            app,
            account,
            session,
        } => (instance == node.instance).then(|| ClusterIn::Kick {
            app,
            account,
            session,
            code: ErrorCode::LogoutKicked,
            message: "the account logged in elsewhere".into(),
        }),
        NodeMessage::Stored {
            instance,
            app,
            account,
        } => (instance == node.instance).then_some(ClusterIn::Stored { app, account }),
        NodeMessage::Call {
            instance,
            app,
            account,
            session,
            signal,
        } => calls::input(node, &instance, app, account, session, signal),
    }
}

/// Carries out one worker's share of the broker's cluster operations, in order.
async fn work(
    node: Arc<Node>,
    mut ops: mpsc::UnboundedReceiver<ClusterOut>,
    inputs: mpsc::Sender<Input>,
) {
    while let Some(op) = ops.recv().await {
        let answer = match op {
            ClusterOut::Claim {
                app,
                account,
                session,
            } => claim(&node, app, account, session).await,
            ClusterOut::Release {
                app,
                account,
                session,
            } => {
                release(&node, &app, &account, session).await;
                None
            }
            ClusterOut::Status {
                query,
                app,
                account,
            } => Some(ClusterIn::Status {
                query,
                online: online(&node, &app, &account).await,
            }),
            ClusterOut::Stored { app, account } => stored(&node, app, account).await,
            ClusterOut::CallSignal {
                query,
                app,
                account,
                signal,
            } => calls::signal(&node, &inputs, query, app, account, signal).await,
            ClusterOut::Channel {
                query,
                app,
                channel,
                op,
            } => channels::run(&node, query, app, channel, op).await,
        };
        if let Some(input) = answer
            && inputs.send(Input::Cluster(input)).await.is_err()
        {
            return;
        }
    }
}

/// Makes the session the account's one session in the cluster and tells the node that held
/// it to end its own. When Redis cannot be reached, the session ends here instead: nothing
/// else could stop two sessions of one account.
///
/// Once the claim is in Redis, the session reads its queue once more (a `Stored` to this
/// node's broker): a message another node stored while the claim was on its way may have
/// been written after the login's first read and announced to the previous holder (or to no
/// one), since its node found the old entry.
async fn claim(node: &Node, app: String, account: String, session: u64) -> Option<ClusterIn> {
    let id = &node.config.node_id;
    let mut set = redis::cmd("SET");
    set.arg(presence_key(&app, &account))
        .arg(presence_value(id, &node.instance, session))
        .arg("GET");
    let previous: Option<String> = match node.run(&set).await {
        Ok(p) => {
            node.health.ok();
            p
        }
        Err(e) => {
            node.health.failed(&e);
            return Some(ClusterIn::Kick {
                app,
                account,
                session,
                code: ErrorCode::LogoutNet,
                message: format!("the cluster's Redis is unreachable ({e}); log in again later"),
            });
        }
    };
    let reread = Some(ClusterIn::Stored {
        app: app.clone(),
        account: account.clone(),
    });
    let Some((held_on, instance, held)) = previous.as_deref().and_then(parse_presence) else {
        return reread;
    };
    if held_on == id && instance == node.instance {
        return reread; // This node ended that session itself.
    }
    let kick = NodeMessage::Kick {
        instance: instance.to_owned(),
        app,
        account,
        session: held,
    };
    let payload = serde_json::to_vec(&kick).expect("a kick serialises");
    let mut publish = redis::cmd("PUBLISH");
    publish.arg(node_topic(held_on)).arg(payload);
    if let Err(e) = node.run::<Value>(&publish).await {
        node.health.failed(&e);
        warn!(error = %e, node = held_on, "cluster: could not tell a node to end a session");
    }
    reread
}

/// Tells the node holding the account's session (if any) that messages for it were stored.
/// A notice that does not arrive loses nothing: the messages are in the store, and the
/// account's next session reads them.
async fn stored(node: &Node, app: String, account: String) -> Option<ClusterIn> {
    let mut get = redis::cmd("GET");
    get.arg(presence_key(&app, &account));
    let entry: Option<String> = match node.run(&get).await {
        Ok(e) => e,
        Err(e) => {
            node.health.failed(&e);
            warn!(error = %e, app, account, "cluster: could not tell where stored messages are for");
            return None;
        }
    };
    let (held_on, instance, _) = entry.as_deref().and_then(parse_presence)?;
    if held_on == node.config.node_id && instance == node.instance {
        return Some(ClusterIn::Stored { app, account }); // Logged in here meanwhile.
    }
    let notice = NodeMessage::Stored {
        instance: instance.to_owned(),
        app,
        account,
    };
    let payload = serde_json::to_vec(&notice).expect("a notice serialises");
    let mut publish = redis::cmd("PUBLISH");
    publish.arg(node_topic(held_on)).arg(payload);
    if let Err(e) = node.run::<Value>(&publish).await {
        node.health.failed(&e);
        warn!(error = %e, node = held_on, "cluster: could not tell a node of stored messages");
    }
    None
}

async fn release(node: &Node, app: &str, account: &str, session: u64) {
    let mut eval = redis::cmd("EVAL");
    eval.arg(RELEASE_SCRIPT)
        .arg(1)
        .arg(presence_key(app, account))
        .arg(presence_value(
            &node.config.node_id,
            &node.instance,
            session,
        ));
    match node.run::<Value>(&eval).await {
        Ok(_) => node.health.ok(),
        Err(e) => {
            node.health.failed(&e);
            warn!(
                error = %e,
                app,
                account,
                "cluster: could not release an account; it counts as online until this node's \
                 registration expires or the account logs in again"
            );
        }
    }
}

/// Whether the account's presence entry names a live instance of its node.
async fn online(node: &Node, app: &str, account: &str) -> Result<bool, String> {
    let mut get = redis::cmd("GET");
    get.arg(presence_key(app, account));
    let entry: Option<String> = node
        .run(&get)
        .await
        .inspect_err(|e| node.health.failed(e))?;
    let Some((held_on, instance, _)) = entry.as_deref().and_then(parse_presence) else {
        return Ok(false);
    };
    let mut alive = redis::cmd("GET");
    alive.arg(node_key(held_on));
    let registered: Option<String> = node
        .run(&alive)
        .await
        .inspect_err(|e| node.health.failed(e))?;
    node.health.ok();
    Ok(registered.as_deref() == Some(instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_entries_round_trip() {
        let v = presence_value("node-a", "00ff", 42);
        assert_eq!(parse_presence(&v), Some(("node-a", "00ff", 42)));
        assert_eq!(parse_presence("garbage"), None);
        assert_eq!(parse_presence("a/b/not-a-number"), None);
    }

    #[test]
    fn presence_keys_keep_app_and_account_apart() {
        assert_ne!(presence_key("a:b", "c"), presence_key("a", "b:c"));
    }
}
