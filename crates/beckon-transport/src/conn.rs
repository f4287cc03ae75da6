//! One connection, whatever its scheme: a frame receiver and a frame sender.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::endpoint::{Endpoint, Scheme, TransportError};
use crate::tls::ClientTls;
use crate::{FrameReader, FrameWriter};

/// Anything a byte-stream transport reads from or writes to.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(crate) type BoxIo = Box<dyn Io>;
type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
type Ws = WebSocketStream<BoxIo>;

/// Keeps a QUIC connection (and a client's endpoint) alive as long as either half lives.
#[derive(Debug)]
#[allow(dead_code)] // Held for its drop, never read.
pub(crate) struct QuicGuard {
    pub(crate) connection: quinn::Connection,
    pub(crate) endpoint: Option<quinn::Endpoint>,
}

enum Rx {
    Stream(FrameReader<BoxRead>),
    Ws(SplitStream<Ws>),
}

enum Tx {
    Stream(FrameWriter<BoxWrite>),
    Ws(SplitSink<Ws, Message>),
}

/// Receives whole frames.
pub struct FrameRx {
    inner: Rx,
    max_frame: usize,
    _quic: Option<Arc<QuicGuard>>,
}

/// Sends whole frames; call [`flush`](Self::flush) after a batch.
pub struct FrameTx {
    inner: Tx,
    _quic: Option<Arc<QuicGuard>>,
}

impl std::fmt::Debug for FrameRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRx").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for FrameTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameTx").finish_non_exhaustive()
    }
}

impl FrameRx {
    /// The next frame; `Ok(None)` when the peer closed cleanly. Oversized frames and (on
    /// WebSocket) text messages are `InvalidData` errors.
    pub async fn read_frame(&mut self) -> io::Result<Option<Bytes>> {
        match &mut self.inner {
            Rx::Stream(r) => r.read_frame().await,
            Rx::Ws(ws) => loop {
                match ws.next().await {
                    None => return Ok(None),
                    Some(Ok(Message::Binary(b))) => {
                        if b.len() > self.max_frame {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "frame of {} bytes exceeds the maximum of {}",
                                    b.len(),
                                    self.max_frame
                                ),
                            ));
                        }
                        return Ok(Some(b));
                    }
                    Some(Ok(Message::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "text WebSocket message: frames travel as binary messages",
                        ));
                    }
                    Some(Ok(Message::Close(_))) => return Ok(None),
                    // Pings are answered by the WebSocket layer.
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ws_io(e)),
                }
            },
        }
    }
}

impl FrameRx {
    /// The next frame if one has already arrived whole and can be had without waiting; `None`
    /// otherwise (errors are left for [`read_frame`](Self::read_frame)). For handing frames on
    /// in batches.
    pub fn try_buffered(&mut self) -> Option<Bytes> {
        match &mut self.inner {
            Rx::Stream(r) => r.try_buffered(),
            Rx::Ws(_) => None,
        }
    }

    /// Reads and discards whatever the peer still sends until it closes (or the connection
    /// fails), even after a bad frame: for lingering after the local side has closed, so that
    /// unread input cannot turn the close into a reset that destroys the last frames sent.
    pub async fn discard_until_closed(&mut self) {
        match &mut self.inner {
            Rx::Stream(r) => r.discard_until_eof().await,
            Rx::Ws(ws) => while let Some(Ok(_)) = ws.next().await {},
        }
    }
}

impl FrameTx {
    /// Queues one frame whose payload is `head` followed by `body`.
    pub async fn write_frame(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Tx::Stream(w) => w.write_frame(head, body).await,
            Tx::Ws(ws) => {
                let mut b = BytesMut::with_capacity(head.len() + body.len());
                b.extend_from_slice(head);
                b.extend_from_slice(body);
                ws.feed(Message::Binary(b.freeze())).await.map_err(ws_io)
            }
        }
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Tx::Stream(w) => w.flush().await,
            Tx::Ws(ws) => ws.flush().await.map_err(ws_io),
        }
    }

    /// Flushes and closes the sending side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Tx::Stream(w) => w.shutdown().await,
            Tx::Ws(ws) => ws.close().await.map_err(ws_io),
        }
    }
}

fn ws_io(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Io(e) => e,
        E::ConnectionClosed | E::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// WebSocket buffers: tungstenite allocates its read buffer up front (128 KiB by default) and
/// lets its write buffer grow to 128 KiB before writing; signaling connections are many and
/// mostly idle, so both are kept small (a burst still grows the read buffer as needed, and every
/// batch of frames is flushed anyway).
const WS_READ_BUFFER: usize = 4 * 1024;
const WS_WRITE_BUFFER: usize = 16 * 1024;

pub(crate) fn ws_config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

pub(crate) fn from_stream<R, W>(
    r: R,
    w: W,
    max_frame: usize,
    quic: Option<Arc<QuicGuard>>,
) -> (FrameRx, FrameTx)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    (
        FrameRx {
            inner: Rx::Stream(FrameReader::new(Box::new(r), max_frame)),
            max_frame,
            _quic: quic.clone(),
        },
        FrameTx {
            inner: Tx::Stream(FrameWriter::new(Box::new(w))),
            _quic: quic,
        },
    )
}

pub(crate) fn from_ws(ws: Ws, max_frame: usize) -> (FrameRx, FrameTx) {
    let (sink, stream) = ws.split();
    (
        FrameRx {
            inner: Rx::Ws(stream),
            max_frame,
            _quic: None,
        },
        FrameTx {
            inner: Tx::Ws(sink),
            _quic: None,
        },
    )
}

pub(crate) fn quic_transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // One session stream per connection; a peer that opens more is simply not served.
    t.max_concurrent_bidi_streams(1u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(
        Duration::from_secs(30)
            .try_into()
            .expect("30 s is a valid idle timeout"),
    ));
    t
}

fn server_name(host: &str) -> Result<ServerName<'static>, TransportError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| TransportError::Tls(format!("bad server name {host:?}: {e}")))
}

async fn resolve(endpoint: &Endpoint) -> io::Result<SocketAddr> {
    tokio::net::lookup_host(endpoint.authority())
        .await?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolves to no address", endpoint.host),
            )
        })
}

async fn tcp(endpoint: &Endpoint) -> io::Result<TcpStream> {
    let s = TcpStream::connect(endpoint.authority()).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn tls_stream(
    endpoint: &Endpoint,
    tls: &ClientTls,
    alpn: bool,
) -> Result<BoxIo, TransportError> {
    let config = tls.rustls_config(alpn)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let s = tcp(endpoint).await?;
    Ok(Box::new(
        connector.connect(server_name(&endpoint.host)?, s).await?,
    ))
}

/// Frames a TCP stream connected some other way (say, from a chosen source address), as
/// [`connect`] frames a `tcp://` endpoint.
pub fn from_tcp(stream: TcpStream, max_frame: usize) -> io::Result<(FrameRx, FrameTx)> {
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok(from_stream(r, w, max_frame, None))
}

/// Connects to a server at `endpoint`.
pub async fn connect(
    endpoint: &Endpoint,
    tls: &ClientTls,
    max_frame: usize,
) -> Result<(FrameRx, FrameTx), TransportError> {
    match endpoint.scheme {
        Scheme::Tcp => {
            let (r, w) = tcp(endpoint).await?.into_split();
            Ok(from_stream(r, w, max_frame, None))
        }
        Scheme::Tls => {
            let s = tls_stream(endpoint, tls, true).await?;
            let (r, w) = tokio::io::split(s);
            Ok(from_stream(r, w, max_frame, None))
        }
        Scheme::Quic => {
            let addr = resolve(endpoint).await?;
            let bind: SocketAddr = if addr.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            }
            .parse()
            .expect("a literal address");
            let mut ep = quinn::Endpoint::client(bind)?;
            let crypto =
                quinn::crypto::rustls::QuicClientConfig::try_from(tls.rustls_config(true)?)
                    .map_err(|e| TransportError::Tls(e.to_string()))?;
            let mut config = quinn::ClientConfig::new(Arc::new(crypto));
            config.transport_config(Arc::new(quic_transport()));
            ep.set_default_client_config(config);
            let connection = ep
                .connect(addr, &endpoint.host)
                .map_err(|e| TransportError::Io(io::Error::other(e.to_string())))?
                .await
                .map_err(|e| {
                    TransportError::Io(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        e.to_string(),
                    ))
                })?;
            let (send, recv) = connection
                .open_bi()
                .await
                .map_err(|e| TransportError::Io(io::Error::other(e.to_string())))?;
            let guard = Arc::new(QuicGuard {
                connection,
                endpoint: Some(ep),
            });
            Ok(from_stream(recv, send, max_frame, Some(guard)))
        }
        Scheme::Ws | Scheme::Wss => {
            let io: BoxIo = if endpoint.scheme == Scheme::Wss {
                tls_stream(endpoint, tls, false).await?
            } else {
                Box::new(tcp(endpoint).await?)
            };
            let url = format!(
                "{}://{}{}",
                endpoint.scheme,
                endpoint.authority(),
                endpoint.path
            );
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(url, io, Some(ws_config(max_frame)))
                    .await
                    .map_err(|e| TransportError::Io(ws_io(e)))?;
            Ok(from_ws(ws, max_frame))
        }
    }
}
