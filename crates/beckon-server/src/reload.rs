//! Reloading the configuration without dropping anyone: SIGHUP and `POST /v1/reload` read the
//! configuration file again and hand its apps (certificates, limits, offline policies) to the
//! broker loop, which swaps them in between two inputs.
//!
//! Sessions stay connected and take the new limits; logins from then on are checked against
//! the new certificates; sessions of apps the file no longer names are logged out with
//! `LOGOUT_E_KICKED` and a message that says so. Listeners, TLS certificates, storage and the
//! admin address are read only at start: a change to them is reported in the log and waits for
//! a restart.

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tracing::info;

use beckon_broker::admin::ReloadReport;

use crate::config::ServerConfig;
use crate::server::Input;

/// A way to reload a running server's configuration, from [`Server::reloader`] or
/// [`ServerHandle::reload`].
///
/// [`Server::reloader`]: crate::Server::reloader
/// [`ServerHandle::reload`]: crate::ServerHandle::reload
#[derive(Clone, Debug)]
pub struct Reloader {
    inputs: mpsc::Sender<Input>,
    config_file: Option<PathBuf>,
}

impl Reloader {
    pub(crate) fn new(inputs: mpsc::Sender<Input>, config: &ServerConfig) -> Self {
        Self {
            inputs,
            config_file: config.config_file.clone(),
        }
    }

    /// Reads the configuration file again and serves its apps from now on.
    ///
    /// # Errors
    ///
    /// A sentence for the operator: the server runs without a configuration file, the file
    /// cannot be read or is invalid (then nothing changes), or the server is shutting down.
    pub async fn reload(&self) -> Result<ReloadReport, String> {
        let Some(path) = self.config_file.clone() else {
            return Err(
                "the server runs without a configuration file (--config): nothing to reload".into(),
            );
        };
        let loaded = tokio::task::spawn_blocking(move || ServerConfig::load(&path))
            .await
            .map_err(|e| format!("reading the configuration failed: {e}"))?;
        let config = loaded.map_err(|e| format!("the configuration was not reloaded: {e}"))?;
        let (reply, answer) = oneshot::channel();
        let input = Input::Reload {
            apps: Box::new(config.broker.apps),
            reply,
        };
        let shutting_down = || "the server is shutting down".to_owned();
        self.inputs.send(input).await.map_err(|_| shutting_down())?;
        let report = answer.await.map_err(|_| shutting_down())?;
        info!(
            apps_updated = report.apps_updated,
            apps_removed = ?report.apps_removed,
            sessions_ended = report.sessions_ended,
            "configuration reloaded"
        );
        Ok(report)
    }
}
