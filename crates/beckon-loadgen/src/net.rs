//! Loopback connections from many source addresses.
//!
//! One source address gives at most one connection per local port to one server port (about
//! 28,000 with Linux's default port range), and every connect then scans the same crowded
//! range (the login shape leaves thousands of `TIME_WAIT` sockets behind), so the generator's
//! kernel time would go there. Connections to 127.0.0.1 therefore come from 127.0.0.2–251 in
//! turn: enough for a million idle connections, were the open-file limits that high.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpSocket, TcpStream};

/// Source addresses used in turn: 127.0.0.2 and the 249 after it.
const SOURCES: u64 = 250;

/// Connects to `addr` with Nagle's algorithm off, from the next of 127.0.0.2–251 when `addr`
/// is 127.0.0.1, or from the default address otherwise.
pub(crate) async fn connect_spread(addr: SocketAddr) -> io::Result<TcpStream> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let stream = if addr.ip() == IpAddr::from([127, 0, 0, 1]) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % SOURCES;
        let source = SocketAddr::from(([127, 0, 0, 2 + n as u8], 0));
        let socket = TcpSocket::new_v4()?;
        socket.bind(source)?;
        socket.connect(addr).await?
    } else {
        TcpStream::connect(addr).await?
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_connections_come_from_other_sources_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sources = std::collections::HashSet::new();
        for _ in 0..3 {
            let _client = connect_spread(addr).await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            assert_ne!(peer.ip(), IpAddr::from([127, 0, 0, 1]));
            sources.insert(peer.ip());
        }
        assert_eq!(sources.len(), 3, "{sources:?}");
    }
}
