//! What an [`Instance`](crate::Instance) is built from, and what can go wrong building one.

use std::fmt;

use beckon_client::ClientConfig;
use beckon_proto::codec::DEFAULT_MAX_FRAME;

/// How an [`Instance`](crate::Instance) reaches its server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server: `tcp://host:port`, or `host:port` (which means TCP). Names are resolved at
    /// every connection attempt.
    pub server: String,
    /// The largest frame accepted from the server, in bytes.
    pub max_frame: usize,
    /// Tunables of the sans-IO client (timeouts, back-off, acknowledgements).
    pub client: ClientConfig,
}

impl Config {
    /// The defaults for `server`, with a random seed for the client's reconnect jitter so that
    /// many clients of one restarted server spread their reconnects.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            max_frame: DEFAULT_MAX_FRAME,
            client: ClientConfig {
                seed: crate::id::random_u64(),
                ..ClientConfig::default()
            },
        }
    }
}

/// Why an [`Instance`](crate::Instance) could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdkError {
    /// The server URL names a transport this SDK does not have (only `tcp` exists for now).
    UnsupportedScheme { server: String, scheme: String },
    /// The server is not of the form `[tcp://]host:port`.
    InvalidServer {
        server: String,
        reason: &'static str,
    },
    /// `Instance::new` was called outside a tokio runtime, so the driver could not be spawned.
    NoRuntime,
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedScheme { server, scheme } => write!(
                f,
                "unsupported server URL scheme {scheme:?} in {server:?}: this SDK supports tcp:// only"
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

/// A server address the driver can connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `host:port`, resolved at each connection attempt.
    Tcp(String),
}

impl Endpoint {
    pub(crate) fn parse(server: &str) -> Result<Self, SdkError> {
        let invalid = |reason| SdkError::InvalidServer {
            server: server.to_owned(),
            reason,
        };
        let (scheme, rest) = match server.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => ("tcp", server),
        };
        if !scheme.eq_ignore_ascii_case("tcp") {
            return Err(SdkError::UnsupportedScheme {
                server: server.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(invalid(
                "a tcp server address has no path, query or fragment",
            ));
        }
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(invalid("the port is missing (expected host:port)"));
        };
        if host.is_empty() || host == "[]" {
            return Err(invalid("the host is missing (expected host:port)"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(invalid(
                "an IPv6 host must be in brackets, as in [::1]:7400",
            ));
        }
        match port.parse::<u16>() {
            Ok(p) if p != 0 => Ok(Self::Tcp(rest.to_owned())),
            _ => Err(invalid("the port must be a number from 1 to 65535")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls_and_bare_addresses_parse() {
        for (url, addr) in [
            ("tcp://127.0.0.1:7400", "127.0.0.1:7400"),
            ("TCP://localhost:1/", "localhost:1"),
            ("127.0.0.1:7400", "127.0.0.1:7400"),
            ("[::1]:7400", "[::1]:7400"),
            ("tcp://[::1]:9", "[::1]:9"),
        ] {
            assert_eq!(
                Endpoint::parse(url),
                Ok(Endpoint::Tcp(addr.into())),
                "{url}"
            );
        }
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        let e = Endpoint::parse("ws://127.0.0.1:7400").unwrap_err();
        assert_eq!(
            e,
            SdkError::UnsupportedScheme {
                server: "ws://127.0.0.1:7400".into(),
                scheme: "ws".into()
            }
        );
        assert!(e.to_string().contains("\"ws\""), "{e}");
        assert!(e.to_string().contains("tcp://"), "{e}");
        assert!(matches!(
            Endpoint::parse("quic://h:1"),
            Err(SdkError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "tcp://",
            "127.0.0.1",
            "tcp://127.0.0.1",
            ":7400",
            "h:0",
            "h:70000",
            "h:x",
            "::1:7400",
            "tcp://h:1/path",
            "h:1?q",
        ] {
            assert!(
                matches!(Endpoint::parse(bad), Err(SdkError::InvalidServer { .. })),
                "{bad:?} parsed"
            );
        }
    }
}
