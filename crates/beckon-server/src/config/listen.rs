//! Listen URLs and certificates: what the configuration file and the command line share.

use std::path::Path;

use beckon_transport::{Endpoint, Scheme, ServerTls};

use super::ConfigError;

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
        let udp = e.scheme == Scheme::Quic;
        if e.port != 0
            && endpoints
                .iter()
                .any(|o| (o.scheme == Scheme::Quic) == udp && o.host == e.host && o.port == e.port)
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
