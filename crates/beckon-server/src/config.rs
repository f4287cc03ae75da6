//! The server's configuration: built in code, or read from a TOML file.
//!
//! [`ServerConfig`] is what a [`Server`](crate::Server) runs with. A TOML file is read into
//! the plain structs of `file` and `apps` (the file model), which are then checked and resolved
//! into a `ServerConfig` in one place, each refusal a typed [`ConfigError`]. The listen URLs
//! and certificate files, which the command line also takes, are parsed in `listen`.

mod apps;
mod cluster;
mod error;
mod file;
mod listen;
mod operator;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use beckon_broker::{Apps, BrokerConfig};
use beckon_proto::codec::DEFAULT_MAX_FRAME;
use beckon_token::Secret;
use beckon_transport::{Endpoint, ServerTls};

pub use cluster::{
    ClusterConfig, ClusterUrl, DEFAULT_NODE_TTL, DEFAULT_REDIS_TIMEOUT, check_node_id,
    parse_cluster_url,
};
pub use error::ConfigError;
pub use listen::{DEFAULT_LISTEN, default_listen, load_tls, parse_listen};
pub use operator::{DEFAULT_ADMIN, parse_admin};

/// How long a new connection may take over its transport handshake (TLS, QUIC, the WebSocket
/// upgrade) before it is closed.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default per-connection outbound byte budget (9 MiB).
///
/// It must exceed what the broker may retain unacknowledged per session
/// ([`BrokerConfig::max_unacked_bytes`], 8 MiB by default) plus the frames' length prefixes:
/// resuming a session replays everything it holds in one go, and a budget below that would
/// disconnect the resuming client as a slow consumer every time, so the session could never be
/// resumed. See [`ServerConfig::outbound_budget_floor`].
pub const DEFAULT_OUTBOUND_BUDGET: usize = 9 * 1024 * 1024;

/// The name of the database file inside a data directory.
pub const STORE_FILE: &str = "beckon.redb";

/// Where the broker keeps what outlives a session: user attributes and offline messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: everything stored is lost when the process exits. For tests and throwaway
    /// development servers (`--ephemeral`, `ephemeral = true`).
    Memory,
    /// A redb database, [`STORE_FILE`] in this directory (created if missing). Every write is
    /// committed to disk before the broker acts on it, so it survives `kill -9` and power loss.
    /// One server at a time: the database is locked while open, so a second server on the
    /// same directory fails to start until the first has shut down
    /// ([`ServerHandle::shutdown`](crate::ServerHandle::shutdown) waits for that).
    Dir(PathBuf),
    /// [`Storage::Dir`] of the standard data directory, resolved when the server starts:
    /// `$XDG_DATA_HOME/beckon`, else `$HOME/.local/share/beckon` (see
    /// [`Storage::standard_dir`]).
    StandardDir,
}

impl Storage {
    /// The standard data directory: `$XDG_DATA_HOME/beckon` when `XDG_DATA_HOME` is set to an
    /// absolute path, else `$HOME/.local/share/beckon`; `None` when neither is usable.
    pub fn standard_dir() -> Option<PathBuf> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        // The XDG base directory spec: relative values are invalid and must be ignored.
        if let Some(data) = absolute("XDG_DATA_HOME") {
            return Some(data.join("beckon"));
        }
        absolute("HOME").map(|home| home.join(".local").join("share").join("beckon"))
    }

    /// The data directory, with [`Storage::StandardDir`] resolved; `Ok(None)` for memory.
    ///
    /// # Errors
    ///
    /// A message saying why, when the standard directory is asked for and cannot be found.
    pub fn dir(&self) -> Result<Option<PathBuf>, String> {
        match self {
            Storage::Memory => Ok(None),
            Storage::Dir(dir) => Ok(Some(dir.clone())),
            Storage::StandardDir => Self::standard_dir().map(Some).ok_or_else(|| {
                "no standard data directory: neither XDG_DATA_HOME nor HOME is set to an \
                 absolute path; pass --data-dir <DIR> (or --ephemeral)"
                    .to_owned()
            }),
        }
    }
}

/// Everything a [`Server`](crate::Server) needs to run. Its `Debug` may be logged: the App
/// Certificates and the server secret are [`Secret`](beckon_token::Secret)s, and the TLS key
/// prints as `[redacted]`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen: one listener per URL (`tcp://`, `tls://`, `quic://`, `ws://…/path`,
    /// `wss://…/path`); port 0 picks a free port. At least one is needed.
    pub listen: Vec<Endpoint>,
    /// The certificate and key of the secure schemes (`tls`, `quic`, `wss`). `None`: a
    /// self-signed certificate is generated at start for the listeners' host names (plus
    /// `localhost`, `127.0.0.1` and `::1`); clients accept it only when told to.
    pub tls: Option<ServerTls>,
    /// How long a connection may take over its transport handshake before it is closed.
    pub handshake_timeout: Duration,
    /// The broker core's configuration: apps, heartbeats, timeouts, unacked bounds, secret.
    pub broker: BrokerConfig,
    /// The largest frame a client may send, in bytes; a larger one closes the connection.
    pub max_frame: usize,
    /// Bytes that may wait in one connection's outbound queue before the connection is
    /// disconnected as a slow consumer.
    pub outbound_budget_bytes: usize,
    /// Where user attributes and offline messages are kept. [`ServerConfig::development`]
    /// keeps them in memory; a configuration file defaults to [`Storage::StandardDir`].
    pub storage: Storage,
    /// The operator listener (`/metrics`, `/healthz`, `/readyz`, the admin API), plain HTTP
    /// on this address; `None` (the default) serves none, and then no metrics are kept.
    pub admin: Option<SocketAddr>,
    /// The file this configuration was read from, which a reload reads again.
    pub config_file: Option<PathBuf>,
    /// Cluster mode: this server is one node of several sharing a Redis. `None` (the
    /// default): a single node that needs nothing but itself. Set it with
    /// [`set_cluster`](Self::set_cluster), which also puts the broker in cluster mode.
    pub cluster: Option<ClusterConfig>,
}

impl ServerConfig {
    /// The zero-config development server: any App ID is served, tokens are not verified and
    /// `_no_need_token` is accepted. Never expose it beyond a developer's machine.
    ///
    /// Its storage is [`Storage::Memory`], so tests and embedders write nothing to disk unless
    /// they ask for it (the `beckon-server` binary switches to the standard data directory).
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes for the server secret (a broken
    /// system, not bad input; running with a predictable secret would be worse).
    pub fn development() -> Self {
        Self::with_apps(Apps::development(), random_secret())
    }

    /// Parses a TOML configuration (see the crate documentation for the keys).
    ///
    /// Unknown keys are errors, so a misspelt option cannot silently keep its default.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for TOML that does not parse, or values that make no sense.
    ///
    /// # Panics
    ///
    /// As [`development`](Self::development), if the system has no randomness.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        Self::parse(s, None)
    }

    /// Parses a TOML configuration; relative paths in it are taken against `base`.
    fn parse(s: &str, base: Option<&Path>) -> Result<Self, ConfigError> {
        let file: file::FileConfig = toml::from_str(s).map_err(ConfigError::Toml)?;
        file.into_config(random_secret(), base)
    }

    /// Reads and parses a TOML configuration file. A relative `data_dir`, `tls_cert` or
    /// `tls_key` is taken relative to the directory of the file, not to the working directory
    /// of the process.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] if the file cannot be read, else as
    /// [`from_toml_str`](Self::from_toml_str).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, path.parent())?;
        if let Storage::Dir(dir) = &config.storage
            && dir.is_relative()
            && let Some(base) = path.parent()
        {
            config.storage = Storage::Dir(base.join(dir));
        }
        config.config_file = Some(path.to_owned());
        Ok(config)
    }

    /// The smallest outbound budget with which every session can be resumed: the broker's
    /// unacknowledged bytes and one length prefix per unacknowledged event (a resume replays
    /// them all at once), plus one maximum frame for what is not an event (the login answer,
    /// pongs). A smaller [`outbound_budget_bytes`](Self::outbound_budget_bytes) works, but a
    /// client whose session holds more than the budget cannot resume it; the server warns at
    /// start.
    pub fn outbound_budget_floor(&self) -> usize {
        self.broker
            .max_unacked_bytes
            .saturating_add(
                self.broker
                    .max_unacked_events
                    .saturating_mul(beckon_proto::codec::LENGTH_PREFIX),
            )
            .saturating_add(self.max_frame)
    }

    /// Makes this server a node of the cluster `cluster` names (or a single node, `None`).
    pub fn set_cluster(&mut self, cluster: Option<ClusterConfig>) {
        self.broker.cluster = cluster.is_some();
        self.cluster = cluster;
    }

    fn with_apps(apps: Apps, secret: Secret<[u8; 32]>) -> Self {
        Self {
            listen: default_listen(),
            tls: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            broker: BrokerConfig::new(apps, secret.into_exposed()),
            max_frame: DEFAULT_MAX_FRAME,
            outbound_budget_bytes: DEFAULT_OUTBOUND_BUDGET,
            storage: Storage::Memory,
            admin: None,
            config_file: None,
            cluster: None,
        }
    }
}

/// A fresh server secret: resume secrets and message ids derive from it, so it must not be
/// guessable.
fn random_secret() -> Secret<[u8; 32]> {
    let mut secret = [0; 32];
    getrandom::fill(&mut secret).expect("the operating system provides random bytes");
    Secret::new(secret)
}
