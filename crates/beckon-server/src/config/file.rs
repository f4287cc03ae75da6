//! The configuration file's top level, as TOML has it, and its resolution into a
//! [`ServerConfig`].
//!
//! The file is parsed into plain structs first and only then checked and turned into a
//! `ServerConfig`, so every check lives in one place (`into_config`, and `into_app_config` for
//! each `[[apps]]` table) and reports a typed error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use beckon_broker::{Apps, DEFAULT_MAX_EVENT_BYTES};
use beckon_token::Secret;

use super::apps::FileApp;
use super::{ConfigError, ServerConfig, Storage, load_tls, parse_listen};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    listen: Option<FileListen>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    handshake_timeout_ms: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    login_timeout_ms: Option<u64>,
    max_frame_bytes: Option<usize>,
    outbound_budget_bytes: Option<usize>,
    login_rate: Option<u32>,
    login_burst: Option<u32>,
    login_rate_per_address: Option<u32>,
    login_burst_per_address: Option<u32>,
    #[serde(default)]
    login_limit_loopback: bool,
    login_max_retry_after_ms: Option<u64>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default)]
    development: bool,
    #[serde(default)]
    apps: Vec<FileApp>,
    admin: Option<String>,
    cluster: Option<super::cluster::FileCluster>,
}

/// `listen = "tcp://…"` or `listen = ["tcp://…", "quic://…"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileListen {
    One(String),
    Many(Vec<String>),
}

/// Rejects zero, which for every count and duration here would make the server unusable.
pub(super) fn positive<T: Default + PartialEq>(
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

/// `set_positive!(app_id, file.key => target)` stores the file's `key`, when it is given, in
/// `target` (converted by `convert` in the form `file.key => target, convert`). Zero is
/// refused with [`ConfigError::InvalidValue`] naming the key, which is the field's own name,
/// and the app for `Some(app_id)`.
macro_rules! set_positive {
    ($app_id:expr, $file:ident . $key:ident => $target:expr) => {
        set_positive!($app_id, $file.$key => $target, std::convert::identity)
    };
    ($app_id:expr, $file:ident . $key:ident => $target:expr, $convert:expr) => {
        if let Some(value) = positive($file.$key, $app_id, stringify!($key))? {
            $target = $convert(value);
        }
    };
}
pub(super) use set_positive;

impl FileConfig {
    pub(super) fn into_config(
        self,
        secret: Secret<[u8; 32]>,
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
        let max_event_bytes = DEFAULT_MAX_EVENT_BYTES;
        let mut seen = HashSet::new();
        for app in self.apps {
            let app = app.into_app_config(max_event_bytes)?;
            if !seen.insert(app.app_id.clone()) {
                return Err(ConfigError::DuplicateApp { app_id: app.app_id });
            }
            apps.insert(app);
        }

        let mut config = ServerConfig::with_apps(apps, secret);
        if let Some(cluster) = self.cluster {
            config.set_cluster(Some(cluster.into_config()?));
        }
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
        let from_ms = Duration::from_millis;
        set_positive!(None, self.handshake_timeout_ms => config.handshake_timeout, from_ms);
        set_positive!(None, self.heartbeat_interval_ms => config.broker.heartbeat_interval, from_ms);
        set_positive!(None, self.login_timeout_ms => config.broker.login_timeout, from_ms);
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
        set_positive!(None, self.outbound_budget_bytes => config.outbound_budget_bytes);
        let admission = &mut config.broker.admission;
        set_positive!(None, self.login_rate => admission.logins_per_s);
        set_positive!(None, self.login_burst => admission.login_burst);
        set_positive!(None, self.login_rate_per_address => admission.logins_per_address_per_s);
        set_positive!(None, self.login_burst_per_address => admission.login_burst_per_address);
        set_positive!(None, self.login_max_retry_after_ms => admission.max_retry_after, from_ms);
        admission.limit_loopback = self.login_limit_loopback;
        if let Some(url) = self.admin {
            config.admin =
                Some(
                    super::parse_admin(&url).map_err(|reason| ConfigError::InvalidValue {
                        app_id: None,
                        key: "admin",
                        reason,
                    })?,
                );
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
