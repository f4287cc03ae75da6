//! The operator listener's address: `admin = "http://HOST:PORT"` in the file, `--admin` on the
//! command line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where `--admin` without a value, and the documentation, put the operator listener: the
/// loopback interface, so metrics and the admin API are not reachable from elsewhere unless an
/// operator says so.
pub const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7480);

/// Parses `http://HOST:PORT` (or a bare `HOST:PORT`), HOST an IP address or `localhost`.
///
/// # Errors
///
/// What is wrong, for a URL with another scheme, a path, a host name other than `localhost`,
/// or no port.
pub fn parse_admin(url: &str) -> Result<SocketAddr, &'static str> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return Err("the admin listener speaks plain HTTP: use http://HOST:PORT"),
        None => url,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("the admin URL takes no path: use http://HOST:PORT");
    }
    if let Ok(addr) = rest.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match rest.rsplit_once(':') {
        Some(("localhost", port)) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| "the admin URL's port is not a number from 0 to 65535"),
        Some(_) => Err("the admin URL's host must be an IP address or localhost"),
        None => Err("the admin URL needs a port: http://HOST:PORT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        let ok = [
            ("http://127.0.0.1:7480", "127.0.0.1:7480"),
            ("http://127.0.0.1:7480/", "127.0.0.1:7480"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("http://[::1]:9", "[::1]:9"),
            ("http://localhost:7480", "127.0.0.1:7480"),
        ];
        for (url, addr) in ok {
            assert_eq!(parse_admin(url), Ok(addr.parse().unwrap()), "{url}");
        }
        for bad in [
            "https://127.0.0.1:7480",
            "http://127.0.0.1:7480/admin",
            "http://example.com:80",
            "http://127.0.0.1",
            "http://localhost:99999",
            "",
        ] {
            assert!(parse_admin(bad).is_err(), "{bad}");
        }
    }
}
