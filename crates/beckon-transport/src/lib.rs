//! Tokio adapters that move Beckon frames over network transports.
//!
//! A transport gives the session protocol an ordered, reliable stream of whole frames. This
//! crate holds the stream framing (a 4-byte big-endian length before each frame, see
//! `beckon_proto::codec`) over any `AsyncRead`/`AsyncWrite`, and the TCP connector. It knows
//! nothing about what the frames mean.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let (mut reader, mut writer) = beckon_transport::connect_tcp("127.0.0.1:7400", 64 * 1024).await?;
//! writer.write_frame(b"frame bytes", b"").await?;
//! writer.flush().await?;
//! let reply = reader.read_frame().await?;
//! # Ok(()) }
//! ```

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

use beckon_proto::codec::{FrameDecoder, length_prefix};

/// Reads whole frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_frame: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(4096),
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
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(4096);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame",
                    ))
                };
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
#[derive(Debug)]
pub struct FrameWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner: BufWriter::with_capacity(64 * 1024, inner),
        }
    }

    /// Queues one frame whose payload is `head` followed by `body`.
    pub async fn write_frame(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(&length_prefix(head.len() + body.len()))
            .await?;
        self.inner.write_all(head).await?;
        if !body.is_empty() {
            self.inner.write_all(body).await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    /// Flushes and shuts the write side down.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.flush().await?;
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
        let (a, b) = tokio::io::duplex(64);
        let mut w = FrameWriter::new(a);
        let mut r = FrameReader::new(b, 1024);
        for i in 0..50u32 {
            w.write_frame(&i.to_be_bytes(), b"tail").await.unwrap();
        }
        w.shutdown().await.unwrap();
        for i in 0..50u32 {
            let f = r.read_frame().await.unwrap().unwrap();
            assert_eq!(&f[..4], &i.to_be_bytes());
            assert_eq!(&f[4..], b"tail");
        }
        assert!(r.read_frame().await.unwrap().is_none());
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
