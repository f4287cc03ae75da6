//! What an [`Instance`](crate::Instance) is built from, and what can go wrong building one.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::SystemTime;

use beckon_client::ClientConfig;
use beckon_transport::{ClientTls, Endpoint, Scheme, TransportError};

/// The default of [`Config::max_frame`]: 16 MiB.
pub const DEFAULT_MAX_SERVER_FRAME: usize = 16 * 1024 * 1024;

/// How an [`Instance`](crate::Instance) reaches its server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server URL: `tcp://`, `tls://`, `quic://`, `ws://` or `wss://` then `host:port`
    /// (WebSocket URLs may add a path, `/ws` by default); a bare `host:port` means TCP. Names
    /// are resolved at every connection attempt.
    pub server: String,
    /// More URLs of the same service, tried in turn when connecting to the previous one fails
    /// (a reconnect may move to another transport).
    pub alternates: Vec<String>,
    /// How the secure schemes check the server's certificate.
    pub tls: ClientTls,
    /// The largest frame accepted from the server, in bytes. Larger than the server's limit on
    /// client frames (64 KiB) because some replies are large: `channel_query_userlist_all` of a
    /// channel with 100,000 members is a few MiB of JSON.
    pub max_frame: usize,
    /// Tunables of the sans-IO client (timeouts, back-off, acknowledgements).
    pub client: ClientConfig,
}

impl Config {
    /// The defaults for `server`, with a random seed for the client: many clients of one
    /// restarted server spread their reconnects, and the message ids the client generates
    /// (from the seed) are unique across instances and processes.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            alternates: Vec::new(),
            tls: ClientTls::default(),
            max_frame: DEFAULT_MAX_SERVER_FRAME,
            client: ClientConfig {
                seed: random_u64(),
                ..ClientConfig::default()
            },
        }
    }

    /// Every URL, parsed, in the order they are tried.
    pub(crate) fn endpoints(&self) -> Result<Vec<Endpoint>, SdkError> {
        std::iter::once(&self.server)
            .chain(&self.alternates)
            .map(|url| parse(url))
            .collect()
    }
}

/// Why an [`Instance`](crate::Instance) could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdkError {
    /// The server URL names a transport this SDK does not have.
    UnsupportedScheme { server: String, scheme: String },
    /// The server is not of the form `[scheme://]host:port[/path]`.
    InvalidServer { server: String, reason: String },
    /// `Instance::new` was called outside a tokio runtime, so the driver could not be spawned.
    NoRuntime,
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedScheme { server, scheme } => write!(
                f,
                "unsupported server URL scheme {scheme:?} in {server:?}: use tcp, tls, quic, ws or wss"
            ),
            Self::InvalidServer { server, reason } => {
                write!(f, "invalid server address {server:?}: {reason}")
            }
            Self::NoRuntime => {
                f.write_str("beckon_sdk::Instance::new must be called from within a tokio runtime")
            }
        }
    }
}

impl std::error::Error for SdkError {}

/// A random number from the operating system, or, should that fail, from std's randomly keyed
/// hasher over the time (unique enough for a seed, which is all it is used for).
fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn parse(server: &str) -> Result<Endpoint, SdkError> {
    if let Some((scheme, _)) = server.split_once("://")
        && !Scheme::ALL
            .iter()
            .any(|s| s.as_str().eq_ignore_ascii_case(scheme))
    {
        return Err(SdkError::UnsupportedScheme {
            server: server.to_owned(),
            scheme: scheme.to_owned(),
        });
    }
    let trimmed = match server.split_once("://") {
        Some((scheme, rest))
            if !scheme.eq_ignore_ascii_case("ws") && !scheme.eq_ignore_ascii_case("wss") =>
        {
            format!("{scheme}://{}", rest.strip_suffix('/').unwrap_or(rest))
        }
        None => server.strip_suffix('/').unwrap_or(server).to_owned(),
        _ => server.to_owned(),
    };
    let e: Endpoint = trimmed.parse().map_err(|e| match e {
        TransportError::BadUrl { reason, .. } => SdkError::InvalidServer {
            server: server.to_owned(),
            reason,
        },
        other => SdkError::InvalidServer {
            server: server.to_owned(),
            reason: other.to_string(),
        },
    })?;
    if e.port == 0 {
        return Err(SdkError::InvalidServer {
            server: server.to_owned(),
            reason: "the port must be a number from 1 to 65535".into(),
        });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_and_bare_addresses_parse() {
        for (url, scheme) in [
            ("tcp://127.0.0.1:7400", Scheme::Tcp),
            ("TCP://localhost:1/", Scheme::Tcp),
            ("127.0.0.1:7400", Scheme::Tcp),
            ("[::1]:7400", Scheme::Tcp),
            ("tls://h:443", Scheme::Tls),
            ("quic://127.0.0.1:7400", Scheme::Quic),
            ("ws://127.0.0.1:7401/ws", Scheme::Ws),
            ("wss://h:443/signal", Scheme::Wss),
        ] {
            assert_eq!(parse(url).map(|e| e.scheme), Ok(scheme), "{url}");
        }
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let e = parse("http://127.0.0.1:7400").unwrap_err();
        assert_eq!(
            e,
            SdkError::UnsupportedScheme {
                server: "http://127.0.0.1:7400".into(),
                scheme: "http".into()
            }
        );
        assert!(e.to_string().contains("\"http\""), "{e}");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "tcp://",
            "127.0.0.1",
            "tcp://h:0",
            "tcp://h:70000",
            "tcp://h:1/path",
        ] {
            assert!(
                matches!(parse(bad), Err(SdkError::InvalidServer { .. })),
                "{bad}"
            );
        }
    }
}
