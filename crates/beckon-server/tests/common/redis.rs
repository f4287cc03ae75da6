//! A redis-server of a test's own, on a free loopback port, killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beckon_server::{ClusterConfig, Server, ServerConfig, ServerHandle};

use super::process::{ServerProcess, TempDir, TempFile};

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

/// Two cluster nodes on a Redis of their own: `doomed`, a separate process the test may kill
/// with SIGKILL (node id "doomed"), and `survivor`, in this process (node id "survivor").
pub(crate) struct DoomedPair {
    pub(crate) doomed: ServerProcess,
    pub(crate) survivor: ServerHandle,
    /// What must outlive the nodes: their Redis and the doomed node's files.
    pub(crate) keep: Keep,
}

/// Redis and files the nodes of a [`DoomedPair`] need while they run.
pub(crate) struct Keep {
    _files: (TempFile, TempDir),
    _redis: Redis,
}

impl DoomedPair {
    /// Starts both, with `node_ttl` as their registrations' time to live.
    pub(crate) async fn start(node_ttl: Duration) -> DoomedPair {
        let redis = Redis::start();
        let url = format!("redis://{}", redis.addr);
        let toml = format!(
            "development = true\nlisten = \"tcp://127.0.0.1:0\"\n[cluster]\nurl = \"{url}\"\n\
             node_id = \"doomed\"\nnode_ttl_ms = {}\nredis_timeout_ms = 500\n",
            node_ttl.as_millis()
        );
        let file = TempFile::new("cluster.toml", &toml);
        let home = TempDir::new("cluster-home");
        let doomed = ServerProcess::start(&["--config", file.path_str()], home.path());

        let mut config = ServerConfig::development();
        config.listen = vec!["tcp://127.0.0.1:0".parse().expect("a URL")];
        config.set_cluster(Some(ClusterConfig {
            node_id: "survivor".into(),
            node_ttl,
            redis_timeout: Duration::from_millis(500),
            ..ClusterConfig::new(&url).expect("a URL")
        }));
        let survivor = Server::spawn(config).await.expect("the survivor starts");
        DoomedPair {
            doomed,
            survivor,
            keep: Keep {
                _files: (file, home),
                _redis: redis,
            },
        }
    }
}
