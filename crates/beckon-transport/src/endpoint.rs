//! Server URLs: `scheme://host:port[/path]`.

use std::fmt;
use std::str::FromStr;

/// How frames travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Tcp,
    Tls,
    Quic,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Quic => "quic",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Whether the scheme needs certificates.
    pub fn is_secure(self) -> bool {
        matches!(self, Self::Tls | Self::Quic | Self::Wss)
    }

    /// All schemes, for parameterised tests and help texts.
    pub const ALL: [Scheme; 5] = [Self::Tcp, Self::Tls, Self::Quic, Self::Ws, Self::Wss];
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a server listens or a client connects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The HTTP path of a WebSocket endpoint (`/ws` by default); empty for other schemes.
    pub path: String,
}

/// A transport could not be set up or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The URL is not one this crate understands.
    BadUrl {
        url: String,
        reason: String,
    },
    /// Certificates could not be made, read or used.
    Tls(String),
    Io(std::io::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl { url, reason } => write!(f, "bad server URL {url:?}: {reason}"),
            Self::Tls(why) => write!(f, "TLS: {why}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<TransportError> for std::io::Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

impl Endpoint {
    /// `host:port` as the socket layer wants it (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same endpoint on another port (e.g. the one a listener on port 0 got).
    pub fn with_port(&self, port: u16) -> Self {
        Self {
            port,
            ..self.clone()
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority(), self.path)
    }
}

impl FromStr for Endpoint {
    type Err = TransportError;

    /// Parses `scheme://host:port[/path]`; a bare `host:port` means `tcp://`.
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| TransportError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "tcp" => Scheme::Tcp,
                    "tls" => Scheme::Tls,
                    "quic" => Scheme::Quic,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    _ => return Err(bad("the scheme must be tcp, tls, quic, ws or wss")),
                };
                (scheme, rest)
            }
            None => (Scheme::Tcp, url),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("a port is required"))?;
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("a port is required"))?
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        // Brackets only enclose an IPv6 address; in a host they would print as another URL.
        if host.contains(['[', ']']) {
            return Err(bad("the host contains a '[' or ']'"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number up to 65535"))?;
        let path = match scheme {
            Scheme::Ws | Scheme::Wss if path.is_empty() => "/ws".to_owned(),
            Scheme::Ws | Scheme::Wss => path.to_owned(),
            _ if path.is_empty() || path == "/" => String::new(),
            _ => return Err(bad("only ws:// and wss:// URLs have a path")),
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let e: Endpoint = "quic://127.0.0.1:7400".parse().unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Quic, "127.0.0.1", 7400)
        );
        let e: Endpoint = "ws://127.0.0.1:7401/ws".parse().unwrap();
        assert_eq!((e.scheme, e.path.as_str()), (Scheme::Ws, "/ws"));
        let e: Endpoint = "wss://[::1]:443".parse().unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.path.as_str()),
            (Scheme::Wss, "::1", "/ws")
        );
        assert_eq!(e.to_string(), "wss://[::1]:443/ws");
        let e: Endpoint = "127.0.0.1:7400".parse().unwrap();
        assert_eq!(e.scheme, Scheme::Tcp);
        assert_eq!(e.to_string(), "tcp://127.0.0.1:7400");
        for bad in [
            "http://x:1",
            "tcp://x",
            "tcp://:1",
            "tcp://x:99999",
            "tcp://x:1/path",
            "[::1:5",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    /// Found by the `config` fuzz target: a host with a `]` and a `:` was accepted, but printed
    /// in brackets (it has a `:`) it no longer parsed, so a URL the server had accepted could
    /// not be shown back to the user as one. Brackets only ever enclose an IPv6 address.
    #[test]
    fn brackets_are_never_part_of_a_host() {
        for bad in [
            "=11}=[][z`:!11z`:8",
            "tcp://a]:b:1",
            "tcp://a[b:1",
            "[[::1]:5",
            "ws://x]:1/ws",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
        for good in [
            "tcp://[::1]:1",
            "quic://[fe80::1%eth0]:7",
            "tcp://a:b:1",
            "wss://h:2/p",
        ] {
            let e: Endpoint = good.parse().unwrap();
            assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e, "{good}");
        }
    }
}
