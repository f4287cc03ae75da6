//! The broker's store as the server opens it — in memory, or redb in a data directory — and
//! the store thread that carries out the broker's batches off the broker's task.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use beckon_broker::{MemoryStore, Recovered, Store, StoreBatch, StoreDone, StoreError};
use beckon_store::{DEFAULT_PREFIX, RedbStore, RedisStore, RedisTimeouts};

use crate::config::{ClusterConfig, STORE_FILE, Storage};
use crate::metrics::Timed;

/// The store: one of the two kinds, without dynamic dispatch. A handle: clones share it.
#[derive(Clone)]
pub(crate) enum ServerStore {
    Memory(MemoryStore),
    /// The database and its file, for the logs.
    Redb(RedbStore, PathBuf),
    /// The cluster's shared Redis (cluster mode), and its URL for the logs.
    Redis(RedisStore, PathBuf),
}

impl fmt::Debug for ServerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("ServerStore::Memory"),
            Self::Redb(_, path) => write!(f, "ServerStore::Redb({})", path.display()),
            Self::Redis(_, url) => write!(f, "ServerStore::Redis({})", url.display()),
        }
    }
}

impl ServerStore {
    /// Opens the store `storage` names, creating the data directory and the database if they
    /// do not exist yet, logs which store is in use, and reads what the broker must know to
    /// take up where the last server left off.
    ///
    /// # Errors
    ///
    /// When the standard data directory cannot be found, the directory cannot be created, or
    /// the database cannot be opened or read (another process holds it, corrupt file,
    /// permissions); the message names the path.
    pub(crate) fn open(
        storage: &Storage,
        cluster: Option<&ClusterConfig>,
    ) -> io::Result<(Self, Recovered)> {
        if let Some(cluster) = cluster {
            return Self::open_redis(cluster);
        }
        let dir = storage.dir().map_err(io::Error::other)?;
        let Some(dir) = dir else {
            warn!(
                "store: in memory (ephemeral); user attributes and offline messages are lost \
                 when the server stops"
            );
            return Ok((Self::Memory(MemoryStore::new()), Recovered::default()));
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the data directory {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(STORE_FILE);
        let mut store = RedbStore::open(&path).map_err(io::Error::other)?;
        let recovered = store.recover().map_err(|e| {
            io::Error::other(format!("cannot read the store {}: {e}", path.display()))
        })?;
        info!(path = %path.display(), "store: redb (durable)");
        Ok((Self::Redb(store, path), recovered))
    }

    /// Cluster mode: every node keeps attributes and stored messages in the cluster's Redis.
    fn open_redis(cluster: &ClusterConfig) -> io::Result<(Self, Recovered)> {
        let url = cluster.url.to_string();
        let timeouts = RedisTimeouts {
            connect: cluster.redis_timeout,
            ..RedisTimeouts::default()
        };
        let mut store =
            RedisStore::open(&url, DEFAULT_PREFIX, timeouts).map_err(io::Error::other)?;
        let recovered = store
            .recover()
            .map_err(|e| io::Error::other(format!("cannot read the store in Redis: {e}")))?;
        info!("store: Redis (shared by the cluster's nodes)");
        Ok((Self::Redis(store, cluster.url.redacted().into()), recovered))
    }

    /// Whether batches are cheap enough to carry out on the broker's task (memory): no
    /// thread hop for a store that does no I/O.
    pub(crate) fn is_inline(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// Where the database is, for the log line at close.
    pub(crate) fn path(&self) -> Option<&PathBuf> {
        match self {
            Self::Memory(_) => None,
            Self::Redb(_, path) | Self::Redis(_, path) => Some(path),
        }
    }
}

impl Store for ServerStore {
    /// Carries the batches out and logs every failure with its detail (paths, database
    /// messages): the broker counts the failure and tells the client only that storage
    /// failed, so this log is where an operator learns why.
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        if let Self::Memory(s) = self {
            // The memory store cannot fail, so there is nothing to describe for the log (the
            // description copies two strings per operation, on the broker loop's path).
            return s.execute(batches);
        }
        // What each batch asked, kept for the log (only read when something failed).
        let described: Vec<Vec<(&'static str, String, String)>> = batches
            .iter()
            .map(|b| {
                b.ops
                    .iter()
                    .map(|op| {
                        let (name, app, account) = op.describe();
                        (name, app.to_owned(), account.to_owned())
                    })
                    .collect()
            })
            .collect();
        let done = match self {
            Self::Memory(s) => s.execute(batches),
            Self::Redb(s, _) => s.execute(batches),
            Self::Redis(s, _) => s.execute(batches),
        };
        for (d, ops) in done.iter().zip(&described) {
            match &d.answers {
                Err(e) => {
                    let (op, app, account) = ops
                        .first()
                        .map(|(n, a, c)| (*n, a.as_str(), c.as_str()))
                        .unwrap_or(("", "", ""));
                    error!(
                        op,
                        app,
                        account,
                        operations = ops.len(),
                        error = %e,
                        "store operation failed: the batch was not kept"
                    );
                }
                Ok(answers) => {
                    for (a, (op, app, account)) in answers.iter().zip(ops) {
                        if let Err(e) = a {
                            error!(op, app, account, error = %e, "store operation failed");
                        }
                    }
                }
            }
        }
        done
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        match self {
            Self::Memory(s) => s.recover(),
            Self::Redb(s, _) => s.recover(),
            Self::Redis(s, _) => s.recover(),
        }
    }
}

/// Batches waiting for the store thread, at most. Beyond it the broker loop waits (and with it
/// every connection's reader): the disk is then what limits the server, and waiting is the
/// back-pressure that says so rather than memory growing without bound.
pub(crate) const STORE_QUEUE: usize = 64;

/// Batches the store thread merges into one transaction, at most: a bound on one commit's
/// size (and so on how long the replies of its first batch wait).
const GROUP: usize = 64;

/// The store thread: takes the broker loop's batches in order, carries out all that are
/// waiting in one transaction (group commit: one sync for all of them), and sends their
/// answers back in order. It ends when the loop drops its sender.
pub(crate) fn spawn_store_thread(
    mut store: Timed<ServerStore>,
    mut batches: mpsc::Receiver<StoreBatch>,
    done: mpsc::UnboundedSender<StoreDone>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("beckon-store".into())
        .spawn(move || {
            while let Some(first) = batches.blocking_recv() {
                let mut group = vec![first];
                while group.len() < GROUP {
                    match batches.try_recv() {
                        Ok(b) => group.push(b),
                        Err(_) => break,
                    }
                }
                for d in store.execute(group) {
                    if done.send(d).is_err() {
                        return; // The broker loop is gone.
                    }
                }
            }
            if let Some(path) = store.inner().path() {
                info!(path = %path.display(), "store thread finished");
            }
        })
}

/// Logs that the store is closed (every handle dropped), for operators watching a restart.
pub(crate) fn log_closed(path: Option<&PathBuf>) {
    if let Some(path) = path {
        info!(path = %path.display(), "store closed");
    }
}
