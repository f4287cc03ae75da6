//! Tokio adapters that move Beckon frames over network transports.
//!
//! A transport gives the session protocol an ordered, reliable stream of whole frames. Five
//! schemes are offered, chosen by URL: `tcp://`, `tls://` (TLS over TCP, rustls), `quic://` (one
//! bidirectional QUIC stream, quinn), `ws://` and `wss://` (one binary WebSocket message per
//! frame, tokio-tungstenite). The stream schemes carry a 4-byte big-endian length before each
//! frame (`beckon_proto::codec`). Whatever the scheme, a connection is a [`FrameRx`] and a
//! [`FrameTx`], so no feature code knows which transport it runs on. The crate knows nothing
//! about what the frames mean.
//!
//! ```no_run
//! # async fn demo() -> Result<(), beckon_transport::TransportError> {
//! use beckon_transport::{ClientTls, Endpoint, connect};
//!
//! let endpoint: Endpoint = "quic://127.0.0.1:7400".parse()?;
//! let tls = ClientTls { dangerous_accept_any_cert: true, ..ClientTls::default() };
//! let (mut rx, mut tx) = connect(&endpoint, &tls, 64 * 1024).await?;
//! tx.write_frame(b"frame bytes", b"").await?;
//! tx.flush().await?;
//! let reply = rx.read_frame().await?;
//! # Ok(()) }
//! ```

mod conn;
mod endpoint;
mod listen;
mod static_files;
mod tls;
pub mod upgrade;

pub use conn::{FrameRx, FrameTx, connect, from_tcp};
pub use endpoint::{Endpoint, Scheme, TransportError};
pub use listen::{Incoming, Listener, ListenerConfig};
pub use static_files::{StaticFile, StaticFiles};
pub use tls::{ClientTls, ServerTls};

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

use beckon_proto::codec::{FrameDecoder, length_prefix};

/// The smallest and largest amount a [`FrameReader`] asks the stream for at once.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// The least a [`FrameWriter`] allocates at the start of a batch.
const WRITE_BATCH_START: usize = 4096;

/// Frames a [`FrameWriter`] buffers before writing them out even without a flush.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Reads whole frames from a byte stream.
///
/// Its buffer adapts to the traffic: a read that fills what was asked for doubles the next
/// request (up to 64 KiB), one that brings less than a quarter halves it (down to 512 bytes),
/// and a buffer left empty between frames shrinks back to that size. A busy connection reads in
/// large chunks; an idle one holds half a kilobyte while it waits.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    want: usize,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_frame: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            want: READ_MIN,
            decoder: FrameDecoder::new(max_frame),
        }
    }

    /// The next frame; `Ok(None)` when the peer closed the stream cleanly between frames.
    ///
    /// An oversized frame is an `InvalidData` error; a stream that ends inside a frame is
    /// `UnexpectedEof`.
    pub async fn read_frame(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.buf.is_empty() && self.buf.capacity() > 2 * self.want {
                // Frames handed out keep their own part of the old allocation alive.
                self.buf = BytesMut::new();
            }
            if self.buf.capacity() - self.buf.len() < self.want {
                self.buf.reserve(self.want);
            }
            let asked = self.buf.capacity() - self.buf.len();
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame",
                    ))
                };
            }
            if n == asked {
                self.want = (self.want * 2).min(READ_MAX);
            } else if n < asked / 4 {
                self.want = (self.want / 2).max(READ_MIN);
            }
        }
    }

    /// The next frame if a whole one is already buffered, without reading; `None` otherwise
    /// (including when the buffer holds a bad frame, which the next
    /// [`read_frame`](Self::read_frame) reports).
    pub fn try_buffered(&mut self) -> Option<Bytes> {
        match self.decoder.decode(&mut self.buf) {
            Ok(Some(frame)) => Some(frame),
            _ => None,
        }
    }

    /// Reads and discards raw input until the peer closes the stream (or reading fails),
    /// whatever state the framing is in: for lingering after a close, even one caused by a
    /// bad frame.
    pub async fn discard_until_eof(&mut self) {
        self.buf = BytesMut::new();
        let mut sink = [0u8; 1024];
        while let Ok(n) = self.inner.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }

    /// Whether a whole frame is already buffered (so `read_frame` will not wait).
    pub fn has_buffered_frame(&self) -> bool {
        let mut probe = self.buf.clone();
        matches!(self.decoder.decode(&mut probe), Ok(Some(_)))
    }
}

/// Writes frames to a byte stream through a buffer; call [`flush`](Self::flush) after a batch.
///
/// The buffer exists only between the first frame of a batch and its flush, so an idle
/// connection holds none.
#[derive(Debug)]
pub struct FrameWriter<W: AsyncWrite> {
    inner: W,
    buf: Vec<u8>,
    /// The size of the last batch written out: the next batch starts with this much room, so a
    /// busy connection does not regrow its buffer from scratch every time.
    last_batch: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            last_batch: 0,
        }
    }

    /// Queues one frame whose payload is `head` followed by `body`.
    pub async fn write_frame(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        if self.buf.capacity() == 0 {
            // A batch usually holds several frames: start it with room for as many as the last.
            let room = self
                .last_batch
                .clamp(WRITE_BATCH_START, WRITE_HIGH_WATER + 1024);
            self.buf.reserve((4 + head.len() + body.len()).max(room));
        }
        self.buf
            .extend_from_slice(&length_prefix(head.len() + body.len()));
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(body);
        if self.buf.len() >= WRITE_HIGH_WATER {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn write_out(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.last_batch = buf.len();
            self.inner.write_all(&buf).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.write_out().await?;
        self.inner.flush().await
    }

    /// Flushes and shuts the write side down.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.write_out().await?;
        self.inner.shutdown().await
    }
}

/// The two halves of a framed TCP connection.
pub type TcpFramed = (FrameReader<OwnedReadHalf>, FrameWriter<OwnedWriteHalf>);

/// Frames an accepted or connected TCP stream (with Nagle's algorithm off).
pub fn frame_tcp(stream: TcpStream, max_frame: usize) -> io::Result<TcpFramed> {
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok((FrameReader::new(r, max_frame), FrameWriter::new(w)))
}

/// Connects to a server over TCP.
pub async fn connect_tcp(addr: impl ToSocketAddrs, max_frame: usize) -> io::Result<TcpFramed> {
    frame_tcp(TcpStream::connect(addr).await?, max_frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_cross_a_duplex_pipe() {
        // A small pipe: the writer only gets through while the reader drains it.
        let (a, b) = tokio::io::duplex(64);
        let mut r = FrameReader::new(b, 1024);
        let writer = tokio::spawn(async move {
            let mut w = FrameWriter::new(a);
            for i in 0..50u32 {
                w.write_frame(&i.to_be_bytes(), b"tail").await.unwrap();
            }
            w.shutdown().await.unwrap();
        });
        for i in 0..50u32 {
            let f = r.read_frame().await.unwrap().unwrap();
            assert_eq!(&f[..4], &i.to_be_bytes());
            assert_eq!(&f[4..], b"tail");
        }
        assert!(r.read_frame().await.unwrap().is_none());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn frames_of_every_size_survive_the_adaptive_buffers() {
        let (a, b) = tokio::io::duplex(8 * 1024);
        let sizes: Vec<usize> = (0..600u32)
            .map(|i| match i % 7 {
                0 => 100_000 + i as usize,
                1 => 0,
                2 => 511,
                3 => 4096,
                _ => (i as usize * 37) % 2000,
            })
            .collect();
        let expected = sizes.clone();
        let writer = tokio::spawn(async move {
            let mut w = FrameWriter::new(a);
            for (i, n) in sizes.into_iter().enumerate() {
                let body = vec![(i % 251) as u8; n];
                w.write_frame(&(i as u32).to_be_bytes(), &body)
                    .await
                    .unwrap();
                if i % 5 == 0 {
                    w.flush().await.unwrap();
                }
            }
            w.shutdown().await.unwrap();
        });
        let mut r = FrameReader::new(b, 200_000);
        for (i, n) in expected.into_iter().enumerate() {
            let f = r.read_frame().await.unwrap().unwrap();
            assert_eq!(&f[..4], &(i as u32).to_be_bytes());
            assert_eq!(f.len(), 4 + n);
            assert!(f[4..].iter().all(|b| *b == (i % 251) as u8));
        }
        assert!(r.read_frame().await.unwrap().is_none());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_errors() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 1, 0, 0]).await.unwrap();
        let mut r = FrameReader::new(b, 1024);
        let e = r.read_frame().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 1, 2]).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, 1024);
        let e = r.read_frame().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
