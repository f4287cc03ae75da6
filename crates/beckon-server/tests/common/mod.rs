//! Helpers shared by the socket tests: a raw protocol client over `beckon_transport`.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

pub(crate) mod process;
pub(crate) mod redis;

use std::net::SocketAddr;
use std::time::Duration;

use beckon_proto::codec::{DEFAULT_MAX_FRAME, decode_server, encode_client};
use beckon_proto::pb::{self, client_frame, server_frame};
use beckon_transport::{FrameReader, FrameWriter};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long any single expected frame may take; generous for loaded CI machines.
pub(crate) const STEP: Duration = Duration::from_secs(5);

pub(crate) struct Client {
    pub(crate) reader: FrameReader<OwnedReadHalf>,
    pub(crate) writer: FrameWriter<OwnedWriteHalf>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let (reader, writer) = beckon_transport::connect_tcp(addr, DEFAULT_MAX_FRAME)
            .await
            .expect("connect");
        Self { reader, writer }
    }

    pub(crate) fn from_framed(
        (reader, writer): (FrameReader<OwnedReadHalf>, FrameWriter<OwnedWriteHalf>),
    ) -> Self {
        Self { reader, writer }
    }

    pub(crate) async fn send(&mut self, kind: client_frame::Kind) {
        self.writer
            .write_frame(&encode_client(kind), b"")
            .await
            .expect("write");
        self.writer.flush().await.expect("flush");
    }

    /// The next frame, `None` once the server closed the connection (cleanly or not).
    pub(crate) async fn recv(&mut self) -> Option<server_frame::Kind> {
        let frame = tokio::time::timeout(STEP, self.reader.read_frame())
            .await
            .expect("the server answered in time");
        match frame {
            Ok(Some(bytes)) => Some(decode_server(&bytes).expect("a valid server frame")),
            Ok(None) | Err(_) => None,
        }
    }

    pub(crate) async fn login(
        &mut self,
        app_id: &str,
        account: &str,
        token: &str,
    ) -> server_frame::Kind {
        self.send(client_frame::Kind::Login(pb::Login {
            app_id: app_id.into(),
            account: account.into(),
            token: token.into(),
            protocol_version: beckon_proto::PROTOCOL_VERSION,
            ..Default::default()
        }))
        .await;
        self.recv().await.expect("a login answer")
    }

    pub(crate) async fn login_ok(
        &mut self,
        app_id: &str,
        account: &str,
        token: &str,
    ) -> pb::LoginOk {
        match self.login(app_id, account, token).await {
            server_frame::Kind::LoginOk(ok) => ok,
            other => panic!("expected LoginOk, got {other:?}"),
        }
    }

    /// Sends a ping and expects its pong (skipping nothing: the pong must come next).
    pub(crate) async fn ping_pong(&mut self, nonce: u64) {
        self.send(client_frame::Kind::Ping(pb::Ping { nonce }))
            .await;
        assert_eq!(
            self.recv().await,
            Some(server_frame::Kind::Pong(pb::Pong { nonce }))
        );
    }

    /// Reads until the server closes the connection; returns the frames it sent first.
    pub(crate) async fn until_closed(&mut self) -> Vec<server_frame::Kind> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await {
            frames.push(f);
        }
        frames
    }
}

/// A connection for raw bytes: the test writes the wire format itself.
pub(crate) struct RawConn {
    pub(crate) reader: FrameReader<OwnedReadHalf>,
    pub(crate) write: OwnedWriteHalf,
}

impl RawConn {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (r, w) = stream.into_split();
        Self {
            reader: FrameReader::new(r, DEFAULT_MAX_FRAME),
            write: w,
        }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write");
        self.write.flush().await.expect("flush");
    }

    /// Reads until the server closes the connection; returns the frames it sent first.
    pub(crate) async fn until_closed(&mut self) -> Vec<server_frame::Kind> {
        let mut frames = Vec::new();
        loop {
            let frame = tokio::time::timeout(STEP, self.reader.read_frame())
                .await
                .expect("the server closed the connection in time");
            match frame {
                Ok(Some(bytes)) => frames.push(decode_server(&bytes).expect("a valid frame")),
                Ok(None) | Err(_) => return frames,
            }
        }
    }
}

/// The code of a `Kick`, or a panic naming what came instead.
pub(crate) fn kick_code(frame: &server_frame::Kind) -> i32 {
    match frame {
        server_frame::Kind::Kick(k) => k.code,
        other => panic!("expected Kick, got {other:?}"),
    }
}

// ---- a bystander ------------------------------------------------------------------------------

/// How long a bystander waits for one pong before it gives up on the server. Far above any
/// bound a test asserts, so that a stalled broker is measured rather than cut short.
const BYSTANDER_PATIENCE: Duration = Duration::from_secs(180);

/// What a bystander saw.
#[derive(Debug)]
pub(crate) struct BystanderReport {
    /// The longest wait for a pong.
    pub(crate) longest: Duration,
    pub(crate) pings: u64,
    /// Why its session ended before it was told to stop, if it did.
    pub(crate) dropped: Option<String>,
}

/// A logged-in session that does nothing but ping the server, from its own task, every 20 ms,
/// and records how long each pong took: how long the broker kept everybody else waiting.
pub(crate) struct Bystander {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<BystanderReport>,
}

impl Bystander {
    /// Logs `account` in to `app` with `token` on a connection of its own and starts pinging.
    pub(crate) async fn start(addr: SocketAddr, app: &str, account: &str, token: &str) -> Self {
        let mut c = Client::connect(addr).await;
        c.login_ok(app, account, token).await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut report = BystanderReport {
                longest: Duration::ZERO,
                pings: 0,
                dropped: None,
            };
            let mut nonce = 0u64;
            loop {
                if stopped.try_recv().is_ok() {
                    return report;
                }
                nonce += 1;
                c.send(client_frame::Kind::Ping(pb::Ping { nonce })).await;
                let sent = tokio::time::Instant::now();
                let pong = async {
                    loop {
                        match c.reader.read_frame().await {
                            Ok(Some(bytes)) => match decode_server(&bytes) {
                                Ok(server_frame::Kind::Pong(p)) if p.nonce == nonce => {
                                    return Ok(());
                                }
                                Ok(server_frame::Kind::Event(e)) => {
                                    let ack = client_frame::Kind::Ack(pb::Ack { up_to: e.seq });
                                    c.writer.write_frame(&encode_client(ack), b"").await.ok();
                                    c.writer.flush().await.ok();
                                }
                                Ok(_) => {}
                                Err(e) => return Err(format!("a bad frame: {e}")),
                            },
                            Ok(None) | Err(_) => {
                                return Err("the server closed the connection".to_owned());
                            }
                        }
                    }
                };
                match tokio::time::timeout(BYSTANDER_PATIENCE, pong).await {
                    Ok(Ok(())) => {
                        report.pings += 1;
                        report.longest = report.longest.max(sent.elapsed());
                    }
                    Ok(Err(why)) => {
                        report.dropped = Some(why);
                        return report;
                    }
                    Err(_) => {
                        report.dropped = Some(format!("no pong within {BYSTANDER_PATIENCE:?}"));
                        return report;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stop, task }
    }

    /// Stops pinging; returns what it saw.
    pub(crate) async fn finish(self) -> BystanderReport {
        let _ = self.stop.send(());
        self.task.await.expect("the bystander task")
    }
}
