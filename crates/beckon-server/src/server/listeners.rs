//! The listening sockets: binding one per URL with the certificate the secure schemes present,
//! and an accept task per listener that hands what it accepts to the server's main loop.

use std::io;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use beckon_transport::{Incoming, Listener, ListenerConfig, Scheme, ServerTls};

use super::{ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, ACCEPT_QUEUE, LISTENER_CLOSE};
use crate::config::ServerConfig;

/// Binds a listener for every URL of `config.listen`, in order, and returns them with the
/// certificate the secure ones present (`None` when no listener is secure).
///
/// # Errors
///
/// A certificate that cannot be made or used, or the error of binding a socket, with its URL.
pub(super) async fn bind(
    config: &ServerConfig,
) -> io::Result<(Vec<Listener>, Option<CertificateDer<'static>>)> {
    let tls = server_tls(config)?;
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
    Ok((listeners, certificate))
}

/// The certificate and key of the secure listeners: `config.tls`, or a self-signed
/// certificate made now; `None` when no listener is secure.
fn server_tls(config: &ServerConfig) -> io::Result<Option<ServerTls>> {
    if !config.listen.iter().any(|e| e.scheme.is_secure()) {
        return Ok(None);
    }
    if let Some(tls) = &config.tls {
        return Ok(Some(tls.clone()));
    }
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
        "no certificate configured (--tls-cert/--tls-key): the secure listeners use a \
         self-signed one made now, which clients accept only when told to"
    );
    Ok(Some(tls))
}

/// The accept tasks of a serving server, one per listener, all feeding one queue.
pub(super) struct Acceptors {
    tasks: JoinSet<()>,
    accepted: mpsc::Receiver<(Scheme, Incoming)>,
    listeners: Vec<Arc<Listener>>,
}

impl Acceptors {
    /// Starts accepting on every listener.
    pub(super) fn start(listeners: Vec<Listener>) -> Self {
        let (accepted_tx, accepted) = mpsc::channel(ACCEPT_QUEUE);
        let listeners: Vec<Arc<Listener>> = listeners.into_iter().map(Arc::new).collect();
        let mut tasks = JoinSet::new();
        for listener in &listeners {
            tasks.spawn(accept_loop(listener.clone(), accepted_tx.clone()));
        }
        Self {
            tasks,
            accepted,
            listeners,
        }
    }

    /// The next accepted connection, with the scheme of its listener.
    pub(super) async fn next(&mut self) -> Option<(Scheme, Incoming)> {
        self.accepted.recv().await
    }

    /// Stops accepting, and drops what was accepted but not yet taken. QUIC connections
    /// already open live on until [`Stopped::close`].
    pub(super) async fn stop(self) -> Stopped {
        let Self {
            mut tasks,
            accepted,
            listeners,
        } = self;
        tasks.shutdown().await;
        drop(accepted);
        Stopped(listeners)
    }
}

/// Listeners that accept no more.
pub(super) struct Stopped(Vec<Arc<Listener>>);

impl Stopped {
    /// Lets QUIC finish its connections' closes, for at most [`LISTENER_CLOSE`], then frees
    /// the sockets, so that a restart on the same addresses can bind them. Called once every
    /// connection has ended.
    pub(super) async fn close(self) {
        let closing = async {
            for listener in &self.0 {
                listener.close_and_wait().await;
            }
        };
        if tokio::time::timeout(LISTENER_CLOSE, closing).await.is_err() {
            debug!("QUIC connections still closing; not waiting for them");
        }
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
