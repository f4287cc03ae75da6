//! The server's configuration: built in code, or read from a TOML file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use beckon_broker::{AppConfig, Apps, BrokerConfig, OfflinePolicy};
use beckon_proto::Limits;
use beckon_proto::codec::DEFAULT_MAX_FRAME;
use beckon_transport::{Endpoint, ServerTls};

/// What a server listens on when nothing else is said: TCP and QUIC on 7400, WebSocket on
/// 7401, all on the loopback interface.
pub const DEFAULT_LISTEN: [&str; 3] = [
    "tcp://127.0.0.1:7400",
    "quic://127.0.0.1:7400",
    "ws://127.0.0.1:7401/ws",
];

/// [`DEFAULT_LISTEN`], parsed.
pub fn default_listen() -> Vec<Endpoint> {
    DEFAULT_LISTEN
        .iter()
        .map(|url| url.parse().expect("the default listen URLs parse"))
        .collect()
}

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

/// Everything a [`Server`](crate::Server) needs to run.
#[derive(Clone)]
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
}

// Written by hand because `BrokerConfig`'s own `Debug` prints the server secret and every App
// Certificate, and a config is the kind of value that ends up in logs.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field(
                "listen",
                &self
                    .listen
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field(
                "tls",
                &if self.tls.is_some() {
                    "configured"
                } else {
                    "self-signed"
                },
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .field("development", &self.broker.apps.is_development())
            .field("heartbeat_interval", &self.broker.heartbeat_interval)
            .field("login_timeout", &self.broker.login_timeout)
            .field("max_frame", &self.max_frame)
            .field("outbound_budget_bytes", &self.outbound_budget_bytes)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
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
        let file: FileConfig = toml::from_str(s).map_err(ConfigError::Toml)?;
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

    fn with_apps(apps: Apps, secret: [u8; 32]) -> Self {
        Self {
            listen: default_listen(),
            tls: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            broker: BrokerConfig::new(apps, secret),
            max_frame: DEFAULT_MAX_FRAME,
            outbound_budget_bytes: DEFAULT_OUTBOUND_BUDGET,
            storage: Storage::Memory,
        }
    }
}

/// A fresh server secret: resume secrets and message ids derive from it, so it must not be
/// guessable.
fn random_secret() -> [u8; 32] {
    let mut secret = [0; 32];
    getrandom::fill(&mut secret).expect("the operating system provides random bytes");
    secret
}

/// A configuration could not be read or makes no sense.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The text is not valid TOML, has an unknown key, or a value of the wrong type.
    Toml(toml::de::Error),
    /// No app is configured and development mode is off: nothing could log in.
    NoApps,
    /// Two `[[apps]]` entries have the same `app_id`.
    DuplicateApp { app_id: String },
    /// An `app_id` that no client could log in with (empty, whitespace, too long, …).
    InvalidAppId { app_id: String, reason: String },
    /// An app has an empty `certificate`; tokens could not be verified.
    EmptyCertificate { app_id: String },
    /// A value out of its range; `app_id` is set for per-app keys.
    InvalidValue {
        app_id: Option<String>,
        key: &'static str,
        reason: &'static str,
    },
    /// A `listen` URL that does not parse, or none at all.
    Listen { reason: String },
    /// The TLS certificate or key could not be read.
    Tls { reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            Self::Toml(e) => write!(f, "invalid config: {e}"),
            Self::NoApps => f.write_str(
                "invalid config: no [[apps]] configured and `development` is off, \
                 so no client could log in",
            ),
            Self::DuplicateApp { app_id } => {
                write!(f, "invalid config: app {app_id:?} is configured twice")
            }
            Self::InvalidAppId { app_id, reason } => {
                write!(f, "invalid config: app_id {app_id:?}: {reason}")
            }
            Self::EmptyCertificate { app_id } => write!(
                f,
                "invalid config: app {app_id:?} has an empty certificate; every configured \
                 app needs its App Certificate"
            ),
            Self::InvalidValue {
                app_id: Some(app_id),
                key,
                reason,
            } => write!(f, "invalid config: app {app_id:?}: `{key}` {reason}"),
            Self::InvalidValue {
                app_id: None,
                key,
                reason,
            } => write!(f, "invalid config: `{key}` {reason}"),
            Self::Listen { reason } => write!(f, "invalid config: `listen`: {reason}"),
            Self::Tls { reason } => write!(f, "invalid config: TLS: {reason}"),
        }
    }
}

/// Parses listen URLs (a bare `host:port` means `tcp://`), refusing an empty list and two
/// listeners on the same transport address.
///
/// # Errors
///
/// A message naming the URL at fault.
pub fn parse_listen(urls: &[String]) -> Result<Vec<Endpoint>, String> {
    if urls.is_empty() {
        return Err("at least one URL is needed".to_owned());
    }
    let mut endpoints: Vec<Endpoint> = Vec::with_capacity(urls.len());
    for url in urls {
        let e: Endpoint = url.parse().map_err(|e| format!("{e}"))?;
        // TCP-based schemes share the TCP port space, QUIC has UDP's to itself.
        let udp = e.scheme == beckon_transport::Scheme::Quic;
        if e.port != 0
            && endpoints.iter().any(|o| {
                (o.scheme == beckon_transport::Scheme::Quic) == udp
                    && o.host == e.host
                    && o.port == e.port
            })
        {
            return Err(format!("{url}: another listener already uses that address"));
        }
        endpoints.push(e);
    }
    Ok(endpoints)
}

/// Reads a PEM certificate chain and key.
///
/// # Errors
///
/// [`ConfigError::Tls`] naming the file that could not be read or parsed.
pub fn load_tls(cert: &Path, key: &Path) -> Result<ServerTls, ConfigError> {
    ServerTls::from_pem_files(cert, key).map_err(|e| ConfigError::Tls {
        reason: e.to_string(),
    })
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Toml(e) => Some(e),
            _ => None,
        }
    }
}

// ---- the file format ------------------------------------------------------------------------
//
// The file is parsed into these plain structs first and only then checked and turned into a
// `ServerConfig`, so every check lives in one place (`into_config`) and reports a typed error.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<FileListen>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    handshake_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    login_timeout_ms: Option<u64>,
    max_frame_bytes: Option<usize>,
    outbound_budget_bytes: Option<usize>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default)]
    development: bool,
    #[serde(default)]
    apps: Vec<FileApp>,
}

/// `listen = "tcp://…"` or `listen = ["tcp://…", "quic://…"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileListen {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApp {
    app_id: String,
    certificate: String,
    #[serde(default)]
    allow_no_token: bool,
    max_name_chars: Option<usize>,
    max_user_attr_value_chars: Option<usize>,
    max_channel_attr_value_chars: Option<usize>,
    max_message_bytes: Option<usize>,
    max_user_attrs: Option<usize>,
    max_channels_per_session: Option<usize>,
    channel_messages_per_user: Option<u32>,
    channel_messages_per_channel: Option<u32>,
    max_notified_members: Option<usize>,
    channel_ttl_s: Option<u64>,
    max_channel_attrs: Option<usize>,
    offline_messages: Option<bool>,
    offline_max_per_account: Option<usize>,
    offline_ttl_s: Option<u64>,
}

/// Rejects zero, which for every count and duration here would make the server unusable.
fn positive<T: Default + PartialEq>(
    value: Option<T>,
    app_id: Option<&str>,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    match value {
        Some(v) if v == T::default() => Err(ConfigError::InvalidValue {
            app_id: app_id.map(str::to_owned),
            key,
            reason: "must be greater than 0",
        }),
        other => Ok(other),
    }
}

impl FileConfig {
    fn into_config(
        self,
        secret: [u8; 32],
        base: Option<&Path>,
    ) -> Result<ServerConfig, ConfigError> {
        let resolve = |p: PathBuf| match base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        };
        let mut apps = if self.development {
            Apps::development()
        } else {
            Apps::default()
        };
        if self.apps.is_empty() && !self.development {
            return Err(ConfigError::NoApps);
        }
        let mut seen = std::collections::HashSet::new();
        for app in self.apps {
            let app = app.into_app_config()?;
            if !seen.insert(app.app_id.clone()) {
                return Err(ConfigError::DuplicateApp { app_id: app.app_id });
            }
            apps.insert(app);
        }

        let mut config = ServerConfig::with_apps(apps, secret);
        if let Some(listen) = self.listen {
            let urls = match listen {
                FileListen::One(url) => vec![url],
                FileListen::Many(urls) => urls,
            };
            config.listen = parse_listen(&urls).map_err(|reason| ConfigError::Listen { reason })?;
        }
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                config.tls = Some(load_tls(&resolve(cert), &resolve(key))?);
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::InvalidValue {
                    app_id: None,
                    key: "tls_cert",
                    reason: "tls_cert and tls_key go together",
                });
            }
        }
        if let Some(ms) = positive(self.handshake_timeout_ms, None, "handshake_timeout_ms")? {
            config.handshake_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = positive(self.heartbeat_interval_ms, None, "heartbeat_interval_ms")? {
            config.broker.heartbeat_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = positive(self.login_timeout_ms, None, "login_timeout_ms")? {
            config.broker.login_timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = positive(self.max_frame_bytes, None, "max_frame_bytes")? {
            // The length prefix has 32 bits; a larger maximum could never be reached.
            if u32::try_from(bytes).is_err() {
                return Err(ConfigError::InvalidValue {
                    app_id: None,
                    key: "max_frame_bytes",
                    reason: "must fit in 32 bits",
                });
            }
            config.max_frame = bytes;
        }
        if let Some(bytes) = positive(self.outbound_budget_bytes, None, "outbound_budget_bytes")? {
            config.outbound_budget_bytes = bytes;
        }
        config.storage = match (self.data_dir, self.ephemeral) {
            (Some(_), true) => {
                return Err(ConfigError::InvalidValue {
                    app_id: None,
                    key: "data_dir",
                    reason: "cannot be combined with `ephemeral = true`",
                });
            }
            (Some(dir), false) if dir.as_os_str().is_empty() => {
                return Err(ConfigError::InvalidValue {
                    app_id: None,
                    key: "data_dir",
                    reason: "must not be empty",
                });
            }
            (Some(dir), false) => Storage::Dir(dir),
            (None, true) => Storage::Memory,
            (None, false) => Storage::StandardDir,
        };
        Ok(config)
    }
}

impl FileApp {
    fn into_app_config(self) -> Result<AppConfig, ConfigError> {
        // The broker checks a login's App ID with the default account rules before it looks the
        // app up, so an app whose id breaks them could never be logged in to.
        if let Err(e) = Limits::default().account("App ID", &self.app_id) {
            return Err(ConfigError::InvalidAppId {
                app_id: self.app_id,
                reason: e.message,
            });
        }
        if self.certificate.is_empty() {
            return Err(ConfigError::EmptyCertificate {
                app_id: self.app_id,
            });
        }
        let id = Some(self.app_id.as_str());
        let mut app = AppConfig::new(self.app_id.clone(), self.certificate.into_bytes());
        app.allow_no_token = self.allow_no_token;

        let limits = &mut app.limits;
        if let Some(v) = positive(self.max_name_chars, id, "max_name_chars")? {
            limits.max_name_chars = v;
        }
        if let Some(v) = positive(
            self.max_user_attr_value_chars,
            id,
            "max_user_attr_value_chars",
        )? {
            limits.max_user_attr_value_chars = v;
        }
        if let Some(v) = positive(
            self.max_channel_attr_value_chars,
            id,
            "max_channel_attr_value_chars",
        )? {
            limits.max_channel_attr_value_chars = v;
        }
        if let Some(v) = positive(self.max_message_bytes, id, "max_message_bytes")? {
            limits.max_message_bytes = v;
        }
        if let Some(v) = positive(self.max_user_attrs, id, "max_user_attrs")? {
            app.max_user_attrs = v;
        }
        if let Some(v) = positive(
            self.max_channels_per_session,
            id,
            "max_channels_per_session",
        )? {
            app.max_channels_per_session = v;
        }
        if let Some(v) = positive(
            self.channel_messages_per_user,
            id,
            "channel_messages_per_user",
        )? {
            app.channel_messages_per_user = v;
        }
        if let Some(v) = positive(
            self.channel_messages_per_channel,
            id,
            "channel_messages_per_channel",
        )? {
            app.channel_messages_per_channel = v;
        }
        if let Some(v) = positive(self.max_notified_members, id, "max_notified_members")? {
            app.max_notified_members = v;
        }
        if let Some(s) = positive(self.channel_ttl_s, id, "channel_ttl_s")? {
            app.default_channel_ttl = Duration::from_secs(s);
        }
        if let Some(v) = positive(self.max_channel_attrs, id, "max_channel_attrs")? {
            app.max_channel_attrs = v;
        }

        let mut offline = OfflinePolicy::default();
        if let Some(enabled) = self.offline_messages {
            offline.enabled = enabled;
        }
        if let Some(v) = positive(self.offline_max_per_account, id, "offline_max_per_account")? {
            offline.max_per_account = v;
        }
        if let Some(s) = positive(self.offline_ttl_s, id, "offline_ttl_s")? {
            offline.ttl = Duration::from_secs(s);
        }
        app.offline = offline;
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        listen = "0.0.0.0:7500"
        heartbeat_interval_ms = 5000
        login_timeout_ms = 3000
        max_frame_bytes = 32768
        outbound_budget_bytes = 1048576
        data_dir = "/var/lib/beckon"

        [[apps]]
        app_id = "myapp"
        certificate = "5cfd2fd1755d40ecb72977518be15d3b"
        allow_no_token = true
        max_name_chars = 64
        max_user_attr_value_chars = 100
        max_channel_attr_value_chars = 200
        max_message_bytes = 4096
        max_user_attrs = 10
        max_channels_per_session = 3
        channel_messages_per_user = 10
        channel_messages_per_channel = 20
        max_notified_members = 30
        channel_ttl_s = 40
        max_channel_attrs = 50
        offline_messages = false
        offline_max_per_account = 5
        offline_ttl_s = 60

        [[apps]]
        app_id = "other"
        certificate = "00112233445566778899aabbccddeeff"
    "#;

    fn err(toml: &str) -> ConfigError {
        ServerConfig::from_toml_str(toml).expect_err("config should be rejected")
    }

    #[test]
    fn full_config_parses() {
        let c = ServerConfig::from_toml_str(GOOD).unwrap();
        assert_eq!(c.listen, vec!["tcp://0.0.0.0:7500".parse().unwrap()]);
        assert_eq!(c.broker.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(c.broker.login_timeout, Duration::from_secs(3));
        assert_eq!(c.max_frame, 32768);
        assert_eq!(c.outbound_budget_bytes, 1 << 20);
        assert_eq!(c.storage, Storage::Dir("/var/lib/beckon".into()));
        assert!(!c.broker.apps.is_development());

        let app = c.broker.apps.lookup("myapp").unwrap();
        assert_eq!(
            app.certificate.as_deref(),
            Some(&b"5cfd2fd1755d40ecb72977518be15d3b"[..])
        );
        assert!(app.allow_no_token);
        assert_eq!(
            app.limits,
            Limits {
                max_name_chars: 64,
                max_user_attr_value_chars: 100,
                max_channel_attr_value_chars: 200,
                max_message_bytes: 4096,
            }
        );
        assert_eq!(app.max_user_attrs, 10);
        assert_eq!(app.max_channels_per_session, 3);
        assert_eq!(app.channel_messages_per_user, 10);
        assert_eq!(app.channel_messages_per_channel, 20);
        assert_eq!(app.max_notified_members, 30);
        assert_eq!(app.default_channel_ttl, Duration::from_secs(40));
        assert_eq!(app.max_channel_attrs, 50);
        assert_eq!(
            app.offline,
            OfflinePolicy {
                enabled: false,
                max_per_account: 5,
                ttl: Duration::from_secs(60),
            }
        );

        let other = c.broker.apps.lookup("other").unwrap();
        assert!(!other.allow_no_token);
        assert_eq!(other.limits, Limits::default());
        assert_eq!(other.offline, OfflinePolicy::default());
        assert!(c.broker.apps.lookup("unknown").is_none());
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c =
            ServerConfig::from_toml_str("[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n").unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.max_frame, DEFAULT_MAX_FRAME);
        assert_eq!(c.outbound_budget_bytes, DEFAULT_OUTBOUND_BUDGET);
        assert!(
            c.outbound_budget_bytes >= c.outbound_budget_floor(),
            "by default every session can be resumed"
        );
        assert_eq!(c.broker.heartbeat_interval, Duration::from_secs(10));
        // A configured server keeps its data unless told otherwise.
        assert_eq!(c.storage, Storage::StandardDir);
    }

    #[test]
    fn storage_keys() {
        let apps = "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n";
        let c = ServerConfig::from_toml_str(&format!("ephemeral = true\n{apps}")).unwrap();
        assert_eq!(c.storage, Storage::Memory);
        let c = ServerConfig::from_toml_str(&format!("ephemeral = false\n{apps}")).unwrap();
        assert_eq!(c.storage, Storage::StandardDir);
        let c = ServerConfig::from_toml_str(&format!("data_dir = \"data\"\n{apps}")).unwrap();
        assert_eq!(c.storage, Storage::Dir("data".into()));

        let e = err(&format!("data_dir = \"/x\"\nephemeral = true\n{apps}"));
        assert!(
            matches!(
                e,
                ConfigError::InvalidValue {
                    key: "data_dir",
                    app_id: None,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("ephemeral"), "{e}");
        let e = err(&format!("data_dir = \"\"\n{apps}"));
        assert!(
            matches!(
                e,
                ConfigError::InvalidValue {
                    key: "data_dir",
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            err(&format!("ephemeral = 1\n{apps}")),
            ConfigError::Toml(_)
        ));
    }

    #[test]
    fn storage_resolution() {
        assert_eq!(Storage::Memory.dir(), Ok(None));
        assert_eq!(
            Storage::Dir("/srv/beckon".into()).dir(),
            Ok(Some("/srv/beckon".into()))
        );
        // The standard directory depends on the environment, which tests must not change
        // (the binary's tests set it per process); it is at least consistent.
        match Storage::standard_dir() {
            Some(dir) => {
                assert_eq!(Storage::StandardDir.dir(), Ok(Some(dir.clone())));
                assert!(dir.is_absolute() && dir.ends_with("beckon"), "{dir:?}");
            }
            None => assert!(
                Storage::StandardDir
                    .dir()
                    .unwrap_err()
                    .contains("--data-dir")
            ),
        }
    }

    #[test]
    fn load_resolves_a_relative_data_dir_against_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "beckon-server-config-dir-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.toml");
        let apps = "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n";
        std::fs::write(&path, format!("data_dir = \"data\"\n{apps}")).unwrap();
        let relative = ServerConfig::load(&path).map(|c| c.storage);
        std::fs::write(&path, format!("data_dir = \"/abs\"\n{apps}")).unwrap();
        let absolute = ServerConfig::load(&path).map(|c| c.storage);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(relative.unwrap(), Storage::Dir(dir.join("data")));
        assert_eq!(absolute.unwrap(), Storage::Dir("/abs".into()));
    }

    #[test]
    fn development_serves_unknown_apps_besides_configured_ones() {
        let c = ServerConfig::from_toml_str(
            "development = true\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
        )
        .unwrap();
        assert!(c.broker.apps.is_development());
        assert!(c.broker.apps.lookup("a").unwrap().certificate.is_some());
        assert!(
            c.broker
                .apps
                .lookup("anything")
                .unwrap()
                .certificate
                .is_none()
        );
        // Development mode alone is a valid config.
        assert!(ServerConfig::from_toml_str("development = true").is_ok());
    }

    #[test]
    fn development_constructor() {
        let c = ServerConfig::development();
        assert_eq!(c.listen, default_listen());
        assert!(c.broker.apps.is_development());
        assert_eq!(c.storage, Storage::Memory, "tests must not write to disk");
        assert_ne!(
            c.broker.server_secret,
            ServerConfig::development().broker.server_secret,
            "every start gets a fresh secret"
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let c = ServerConfig::from_toml_str(GOOD).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("5cfd2fd1"), "{text}");
        assert!(!text.contains("server_secret"), "{text}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(matches!(
            err("listn = \"127.0.0.1:1\""),
            ConfigError::Toml(_)
        ));
        let e = err("[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\ncertficate = \"d\"\n");
        assert!(matches!(e, ConfigError::Toml(_)));
        assert!(e.to_string().contains("certficate"), "{e}");
    }

    #[test]
    fn syntax_and_type_errors() {
        assert!(matches!(err("listen = "), ConfigError::Toml(_)));
        assert!(matches!(
            err("development = true\nlisten = \"not an address\""),
            ConfigError::Listen { .. }
        ));
        assert!(matches!(err("listen = 5"), ConfigError::Toml(_)));
        assert!(matches!(
            err("heartbeat_interval_ms = \"10\""),
            ConfigError::Toml(_)
        ));
        assert!(matches!(
            err("heartbeat_interval_ms = -1"),
            ConfigError::Toml(_)
        ));
        assert!(matches!(err("development = 1"), ConfigError::Toml(_)));
        assert!(matches!(
            err("[[apps]]\napp_id = \"a\"\n"),
            ConfigError::Toml(_)
        ));
    }

    #[test]
    fn no_apps_without_development() {
        assert!(matches!(err(""), ConfigError::NoApps));
        assert!(matches!(err("development = false"), ConfigError::NoApps));
    }

    #[test]
    fn empty_certificate() {
        let e = err("[[apps]]\napp_id = \"a\"\ncertificate = \"\"\n");
        assert!(
            matches!(&e, ConfigError::EmptyCertificate { app_id } if app_id == "a"),
            "{e}"
        );
    }

    #[test]
    fn invalid_app_ids() {
        for id in ["", "my app", "tab\there", &"x".repeat(129)] {
            let toml = format!("[[apps]]\napp_id = {id:?}\ncertificate = \"c\"\n");
            assert!(
                matches!(err(&toml), ConfigError::InvalidAppId { .. }),
                "{id:?} should be rejected"
            );
        }
    }

    #[test]
    fn duplicate_app() {
        let e = err(
            "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n[[apps]]\napp_id = \"a\"\ncertificate = \"d\"\n",
        );
        assert!(matches!(&e, ConfigError::DuplicateApp { app_id } if app_id == "a"));
    }

    #[test]
    fn zero_values_are_rejected() {
        for key in [
            "heartbeat_interval_ms",
            "login_timeout_ms",
            "max_frame_bytes",
            "outbound_budget_bytes",
        ] {
            let e = err(&format!(
                "{key} = 0\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n"
            ));
            assert!(
                matches!(&e, ConfigError::InvalidValue { key: k, app_id: None, .. } if *k == key),
                "{key}: {e}"
            );
        }
        for key in [
            "max_name_chars",
            "max_user_attr_value_chars",
            "max_channel_attr_value_chars",
            "max_message_bytes",
            "max_user_attrs",
            "max_channels_per_session",
            "channel_messages_per_user",
            "channel_messages_per_channel",
            "max_notified_members",
            "channel_ttl_s",
            "max_channel_attrs",
            "offline_max_per_account",
            "offline_ttl_s",
        ] {
            let e = err(&format!(
                "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n{key} = 0\n"
            ));
            assert!(
                matches!(&e, ConfigError::InvalidValue { key: k, app_id: Some(a), .. } if *k == key && a == "a"),
                "{key}: {e}"
            );
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn oversized_max_frame() {
        let e =
            err("max_frame_bytes = 4294967296\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n");
        assert!(matches!(
            e,
            ConfigError::InvalidValue {
                key: "max_frame_bytes",
                ..
            }
        ));
    }

    #[test]
    fn load_reports_the_path() {
        let path = std::env::temp_dir().join(format!(
            "beckon-server-missing-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        let e = ServerConfig::load(&path).unwrap_err();
        assert!(matches!(&e, ConfigError::Io { path: p, .. } if *p == path));
        assert!(e.to_string().contains("cannot read config file"), "{e}");
    }

    #[test]
    fn load_reads_a_file() {
        let path = std::env::temp_dir().join(format!(
            "beckon-server-config-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, GOOD).unwrap();
        let c = ServerConfig::load(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            c.unwrap().listen,
            vec!["tcp://0.0.0.0:7500".parse().unwrap()]
        );
    }

    #[test]
    fn listen_takes_one_url_or_many() {
        let c = ServerConfig::from_toml_str(
            "development = true\nlisten = [\"tcp://127.0.0.1:7400\", \"quic://127.0.0.1:7400\", \"wss://[::1]:443/signal\"]\n",
        )
        .unwrap();
        let urls: Vec<String> = c.listen.iter().map(ToString::to_string).collect();
        assert_eq!(
            urls,
            [
                "tcp://127.0.0.1:7400",
                "quic://127.0.0.1:7400",
                "wss://[::1]:443/signal"
            ]
        );
        for (toml, why) in [
            ("listen = []", "at least one"),
            ("listen = [\"http://x:1\"]", "scheme"),
            ("listen = [\"tcp://x:1\", \"ws://x:1/ws\"]", "already uses"),
        ] {
            let e =
                ServerConfig::from_toml_str(&format!("development = true\n{toml}\n")).unwrap_err();
            assert!(matches!(e, ConfigError::Listen { .. }), "{toml}: {e}");
            assert!(e.to_string().contains(why), "{toml}: {e}");
        }
    }

    #[test]
    fn tls_files_are_read_and_checked() {
        let e =
            ServerConfig::from_toml_str("development = true\ntls_cert = \"/nonexistent.pem\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("go together"), "{e}");
        let e = ServerConfig::from_toml_str(
            "development = true\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Tls { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
    }
}
