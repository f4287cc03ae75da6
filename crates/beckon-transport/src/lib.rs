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
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

use beckon_proto::codec::{FrameDecoder, length_prefix};

/// The smallest and largest amount a [`FrameReader`] asks the stream for at once.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// What a [`FrameReader`] reads onto the stack while no partial frame is buffered.
const PROBE: usize = 2048;

/// The least a [`FrameWriter`] allocates at the start of a batch.
const WRITE_BATCH_START: usize = 4096;

/// Frames a [`FrameWriter`] buffers before writing them out even without a flush.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Reads whole frames from a byte stream.
///
/// Its buffer adapts to the traffic: a read that fills what was asked for doubles the next
/// request (up to 64 KiB), one that brings less than a quarter halves it (down to 512 bytes).
/// A busy connection reads in large chunks; one waiting between frames holds no buffer.
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
            let (n, asked) = if self.buf.is_empty() {
                // Between frames: wait without a buffer (see `poll_between_frames`).
                let n = std::future::poll_fn(|cx| self.poll_between_frames(cx)).await?;
                (n, PROBE)
            } else {
                if self.buf.capacity() - self.buf.len() < self.want {
                    self.buf.reserve(self.want);
                }
                let asked = self.buf.capacity() - self.buf.len();
                (self.inner.read_buf(&mut self.buf).await?, asked)
            };
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

    /// Reads while no partial frame is buffered. The read goes to the stack first and only
    /// what arrived is copied into the buffer, which is freed whenever the stream has nothing
    /// to give: an idle connection, the common case for a signaling server, holds no read
    /// buffer at all while it waits. The bytes read; 0 at the end of the stream.
    fn poll_between_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // Uninitialised: zeroing it would cost as much as the read on a busy connection.
        let mut probe = [MaybeUninit::<u8>::uninit(); PROBE];
        let mut rb = ReadBuf::uninit(&mut probe);
        match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
            Poll::Pending => {
                // Frames handed out keep their own part of the old allocation alive.
                self.buf = BytesMut::new();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let got = rb.filled();
                if self.buf.capacity() > 2 * self.want.max(PROBE) {
                    self.buf = BytesMut::new();
                }
                self.buf.reserve(self.want.max(got.len()));
                self.buf.extend_from_slice(got);
                Poll::Ready(Ok(got.len()))
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
            // A batch usually holds several frames: start it with room for twice as many as the
            // last, so that a batch a little deeper than the last is not copied into a buffer
            // twice the size halfway through.
            let room = self
                .last_batch
                .saturating_mul(2)
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
    use std::time::Duration;

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
    async fn a_reader_waiting_between_frames_holds_no_buffer() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut r = FrameReader::new(b, 1024);
        let mut w = FrameWriter::new(a);
        w.write_frame(b"hello", b"").await.unwrap();
        w.write_frame(b"wor", b"ld").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"hello");
        assert!(r.buf.capacity() > 0, "the second frame is buffered");
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"world");
        let waited = tokio::time::timeout(Duration::from_millis(20), r.read_frame()).await;
        assert!(waited.is_err(), "nothing more was sent");
        assert_eq!(r.buf.capacity(), 0, "an idle reader holds no buffer");
        // Half a frame: the reader keeps it while it waits for the rest.
        let whole = [&length_prefix(6)[..], b"ag"].concat();
        w.write_frame(b"", b"").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"");
        let mut raw = w.inner;
        raw.write_all(&whole).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(20), r.read_frame()).await;
        assert!(waited.is_err(), "the frame is not whole yet");
        assert!(r.buf.capacity() > 0, "a partial frame is kept");
        raw.write_all(b"ainx").await.unwrap();
        assert_eq!(&r.read_frame().await.unwrap().unwrap()[..], b"againx");
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
