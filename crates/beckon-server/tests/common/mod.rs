//! Helpers shared by the socket tests: a raw protocol client over `beckon_transport`.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

pub(crate) mod process;

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
