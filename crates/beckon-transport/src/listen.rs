//! Server side: listeners for every scheme, and the handshakes of what they accept.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::conn::{
    BoxIo, FrameRx, FrameTx, QuicGuard, from_stream, from_ws, quic_transport, ws_config,
};
use crate::endpoint::{Endpoint, Scheme, TransportError};
use crate::static_files::{StaticFiles, respond_file};
use crate::tls::ServerTls;
use crate::upgrade::{self, HeadStatus, Route};

/// What to listen on.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    pub endpoint: Endpoint,
    /// Required by `tls`, `quic` and `wss`.
    pub tls: Option<ServerTls>,
    pub max_frame: usize,
}

enum Kind {
    Tcp(TcpListener),
    Tls(TcpListener, TlsAcceptor),
    Quic(quinn::Endpoint),
    Ws(TcpListener, Option<TlsAcceptor>),
}

/// A bound listener of one scheme.
pub struct Listener {
    endpoint: Endpoint,
    local: SocketAddr,
    kind: Kind,
    max_frame: usize,
    static_files: Option<Arc<StaticFiles>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

enum IncomingKind {
    Tcp(TcpStream),
    Tls(TcpStream, TlsAcceptor),
    Quic(Box<quinn::Incoming>),
    Ws(
        TcpStream,
        Option<TlsAcceptor>,
        String,
        Option<Arc<StaticFiles>>,
    ),
}

/// An accepted connection whose handshake has not run yet: run it in the connection's own task
/// (with a timeout), so a slow handshake never holds up the accept loop.
pub struct Incoming {
    peer: SocketAddr,
    kind: IncomingKind,
    max_frame: usize,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds the listener; port 0 picks a free port (see [`endpoint`](Self::endpoint)).
    pub async fn bind(config: ListenerConfig) -> Result<Self, TransportError> {
        let ep = &config.endpoint;
        let tls = || {
            config
                .tls
                .as_ref()
                .ok_or_else(|| TransportError::Tls(format!("{} needs a certificate", ep.scheme)))
        };
        let (kind, local) = match ep.scheme {
            Scheme::Tcp => {
                let l = TcpListener::bind(ep.authority()).await?;
                let local = l.local_addr()?;
                (Kind::Tcp(l), local)
            }
            Scheme::Tls => {
                let acceptor = TlsAcceptor::from(Arc::new(tls()?.rustls_config()?));
                let l = TcpListener::bind(ep.authority()).await?;
                let local = l.local_addr()?;
                (Kind::Tls(l, acceptor), local)
            }
            Scheme::Ws | Scheme::Wss => {
                let acceptor = if ep.scheme == Scheme::Wss {
                    let mut c = tls()?.rustls_config()?;
                    c.alpn_protocols = vec![b"http/1.1".to_vec()];
                    Some(TlsAcceptor::from(Arc::new(c)))
                } else {
                    None
                };
                let l = TcpListener::bind(ep.authority()).await?;
                let local = l.local_addr()?;
                (Kind::Ws(l, acceptor), local)
            }
            Scheme::Quic => {
                let crypto =
                    quinn::crypto::rustls::QuicServerConfig::try_from(tls()?.rustls_config()?)
                        .map_err(|e| TransportError::Tls(e.to_string()))?;
                let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
                sc.transport_config(Arc::new(quic_transport()));
                let addr = tokio::net::lookup_host(ep.authority())
                    .await?
                    .next()
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing")
                    })?;
                let e = quinn::Endpoint::server(sc, addr)?;
                let local = e.local_addr()?;
                (Kind::Quic(e), local)
            }
        };
        Ok(Self {
            endpoint: ep.with_port(local.port()),
            local,
            kind,
            max_frame: config.max_frame,
            static_files: None,
        })
    }

    /// Serves `files` over plain HTTP on this listener (before the WebSocket upgrade, on any
    /// path other than the WebSocket's own). Only WebSocket listeners speak HTTP; on the other
    /// schemes the table is ignored.
    pub fn serve_static(&mut self, files: Arc<StaticFiles>) {
        self.static_files = Some(files);
    }

    /// The endpoint with the port actually bound.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next connection; its handshake runs in [`Incoming::establish`].
    pub async fn accept(&self) -> io::Result<Incoming> {
        let (peer, kind) = match &self.kind {
            Kind::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                (peer, IncomingKind::Tcp(s))
            }
            Kind::Tls(l, a) => {
                let (s, peer) = l.accept().await?;
                (peer, IncomingKind::Tls(s, a.clone()))
            }
            Kind::Ws(l, a) => {
                let (s, peer) = l.accept().await?;
                (
                    peer,
                    IncomingKind::Ws(
                        s,
                        a.clone(),
                        self.endpoint.path.clone(),
                        self.static_files.clone(),
                    ),
                )
            }
            Kind::Quic(e) => {
                let incoming = e.accept().await.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotConnected, "the QUIC endpoint is closed")
                })?;
                (
                    incoming.remote_address(),
                    IncomingKind::Quic(Box::new(incoming)),
                )
            }
        };
        Ok(Incoming {
            peer,
            kind,
            max_frame: self.max_frame,
        })
    }

    /// Stops accepting (QUIC tells its peers; TCP listeners close when dropped).
    pub fn close(&self) {
        if let Kind::Quic(e) = &self.kind {
            e.close(0u32.into(), b"server shutting down");
        }
    }

    /// [`close`](Self::close)s, then waits until every QUIC connection of this listener has
    /// finished closing, so that once the listener is dropped its UDP port is free again. Call
    /// it after the connections were given their chance to end cleanly: a QUIC close ends
    /// whatever is still open at once.
    pub async fn close_and_wait(&self) {
        self.close();
        if let Kind::Quic(e) = &self.kind {
            e.wait_idle().await;
        }
    }
}

impl Incoming {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Completes the transport handshake. `Ok(None)`: the connection was a plain HTTP request
    /// (`GET /healthz`, a static file, or a wrong path) answered here, not a session.
    pub async fn establish(self) -> io::Result<Option<(FrameRx, FrameTx)>> {
        let max = self.max_frame;
        match self.kind {
            IncomingKind::Tcp(s) => {
                s.set_nodelay(true)?;
                let (r, w) = s.into_split();
                Ok(Some(from_stream(r, w, max, None)))
            }
            IncomingKind::Tls(s, a) => {
                s.set_nodelay(true)?;
                let tls = a.accept(s).await?;
                let (r, w) = tokio::io::split(tls);
                Ok(Some(from_stream(r, w, max, None)))
            }
            IncomingKind::Quic(incoming) => {
                let connection = (*incoming)
                    .await
                    .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()))?;
                let (send, recv) = connection
                    .accept_bi()
                    .await
                    .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e.to_string()))?;
                let guard = Arc::new(QuicGuard {
                    connection,
                    endpoint: None,
                });
                Ok(Some(from_stream(recv, send, max, Some(guard))))
            }
            IncomingKind::Ws(s, a, path, files) => {
                s.set_nodelay(true)?;
                let mut io: BoxIo = match a {
                    Some(a) => Box::new(a.accept(s).await?),
                    None => Box::new(s),
                };
                let head = read_request_head(&mut io).await?;
                let target = upgrade::target(&head);
                let upgrading = upgrade::is_upgrade(&head);
                let file = files.as_deref().and_then(|f| f.get(target));
                if let Some(file) = file.filter(|_| !(upgrading && target == path)) {
                    respond_file(&mut io, &head, file).await?;
                    return Ok(None);
                }
                match upgrade::route(&head, &path) {
                    Route::Health => {
                        respond(&mut io, "200 OK", "ok\n").await?;
                        return Ok(None);
                    }
                    Route::NotFound => {
                        respond(&mut io, "404 Not Found", "not found\n").await?;
                        return Ok(None);
                    }
                    Route::Upgrade => {}
                }
                let prefixed: BoxIo = Box::new(Prefixed {
                    prefix: head,
                    inner: io,
                });
                let ws =
                    tokio_tungstenite::accept_async_with_config(prefixed, Some(ws_config(max)))
                        .await
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                Ok(Some(from_ws(ws, max)))
            }
        }
    }
}

/// Reads until the request head is whole (see [`upgrade::head_status`]); returns everything
/// read, which may go on past the head.
async fn read_request_head(io: &mut BoxIo) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match upgrade::head_status(&buf) {
            HeadStatus::Complete => return Ok(buf.freeze()),
            HeadStatus::TooLarge => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP request head too large",
                ));
            }
            HeadStatus::Incomplete => {}
        }
        if io.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed during the HTTP request",
            ));
        }
    }
}

async fn respond(io: &mut BoxIo, status: &str, body: &str) -> io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    io.write_all(response.as_bytes()).await?;
    io.shutdown().await
}

/// A stream that first yields bytes already read from it.
struct Prefixed {
    prefix: Bytes,
    inner: BoxIo,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
