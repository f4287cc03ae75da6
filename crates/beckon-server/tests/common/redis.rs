//! A redis-server of a test's own, on a free loopback port, killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer its first `PING`.
const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct Redis {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Redis {
    pub(crate) fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): this test needs it on PATH")
            });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        // Owned by the guard from here on, which kills and waits for it whatever happens.
        let redis = Redis { child, addr };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let pong = TcpStream::connect(addr).and_then(|mut s| {
                s.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 7];
                s.read_exact(&mut buf)?;
                Ok(buf)
            });
            if matches!(pong, Ok(b) if &b == b"+PONG\r\n") {
                return redis;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
