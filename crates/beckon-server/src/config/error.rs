//! Why a configuration was refused.

use std::fmt;
use std::path::PathBuf;

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
    /// `[cluster]` (or `--cluster`) makes no sense.
    Cluster { reason: String },
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
            Self::Cluster { reason } => write!(f, "invalid config: [cluster]: {reason}"),
        }
    }
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
