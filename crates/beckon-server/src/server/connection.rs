//! The connection tasks: one per accepted connection, which runs the transport handshake, then
//! reads frames into the broker loop while a writer task beside it writes what the loop sends.

use std::io;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use beckon_broker::ConnId;
use beckon_transport::{FrameRx, Incoming, Scheme};

use super::broker_loop::{Cause, Input};
use super::outbox::spawn_writer;
use super::{LINGER, READ_BATCH, SHUTDOWN_DRAIN, SHUTDOWN_LINGER, WRITER_DRAIN};

/// The connection tasks of a serving server.
pub(super) struct Connections {
    tasks: JoinSet<()>,
    /// The id of the last connection; ids are never reused while the broker runs (it
    /// requires that).
    last: u64,
    /// What every connection task is started with.
    link: Link,
    /// Set once the server is shutting down, which cuts lingering short.
    shutting_down: watch::Sender<bool>,
}

/// What a connection task needs from the server: the handshake's deadline, the way into the
/// broker loop, and whether the server is shutting down.
#[derive(Clone, Debug)]
struct Link {
    handshake_timeout: Duration,
    inputs: mpsc::Sender<Input>,
    shutting_down: watch::Receiver<bool>,
}

impl Connections {
    pub(super) fn new(handshake_timeout: Duration, inputs: mpsc::Sender<Input>) -> Self {
        let (shutting_down, shutting_down_rx) = watch::channel(false);
        Self {
            tasks: JoinSet::new(),
            last: 0,
            link: Link {
                handshake_timeout,
                inputs,
                shutting_down: shutting_down_rx,
            },
            shutting_down,
        }
    }

    /// Starts the task of a connection just accepted, under a fresh id.
    pub(super) fn spawn(&mut self, scheme: Scheme, incoming: Incoming) {
        self.last += 1;
        let conn = ConnId(self.last);
        self.tasks
            .spawn(serve_connection(conn, scheme, incoming, self.link.clone()));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for a connection task to finish and forgets it, so the set does not grow without
    /// bound; `false` when there is none.
    pub(super) async fn reap(&mut self) -> bool {
        self.tasks.join_next().await.is_some()
    }

    /// Tells the broker loop to shut down — after every input already queued, so replies to
    /// them still go out — and waits for every connection to end, for at most
    /// [`SHUTDOWN_DRAIN`], then aborts the rest.
    pub(super) async fn shut_down(self) {
        let Self {
            mut tasks,
            last: _,
            link,
            shutting_down,
        } = self;
        let _ = shutting_down.send(true);
        let _ = link.inputs.send(Input::Shutdown).await;
        drop(link);
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = tasks.len(),
                "connections did not close in time; aborting them"
            );
            tasks.shutdown().await;
        }
    }
}

/// Runs one connection's transport handshake, then reads its frames into the broker loop, with
/// a writer task beside it.
async fn serve_connection(conn: ConnId, scheme: Scheme, incoming: Incoming, link: Link) {
    let Link {
        handshake_timeout,
        inputs,
        shutting_down,
    } = link;
    let peer = incoming.peer();
    // The handshake runs here, in the connection's own task and under a deadline, so a peer
    // that never finishes it (a stalled TLS hello, a half-sent HTTP upgrade) costs one idle
    // task and its buffers until the deadline, and holds up nobody else.
    let (mut rx, tx) =
        // Boxed: the handshake's state (a WebSocket upgrade's is kilobytes) is freed once it is
        // done, rather than sizing this task for the connection's whole life.
        match tokio::time::timeout(handshake_timeout, Box::pin(incoming.establish())).await {
            Ok(Ok(Some(pair))) => pair,
            Ok(Ok(None)) => {
                debug!(conn = conn.0, %peer, %scheme, "answered a plain HTTP request");
                return;
            }
            Ok(Err(e)) => {
                debug!(conn = conn.0, %peer, %scheme, error = %e, "closing: handshake failed");
                return;
            }
            Err(_) => {
                debug!(
                    conn = conn.0,
                    %peer,
                    %scheme,
                    timeout = ?handshake_timeout,
                    "closing: handshake not finished in time"
                );
                return;
            }
        };

    let (writer, mut writer_task, mut closed) = spawn_writer(tx);
    let connect = Input::Connect {
        conn,
        peer,
        scheme,
        writer,
    };
    if inputs.send(connect).await.is_err() {
        writer_task.abort();
        return; // Shutting down.
    }

    let mut writer_result = None;
    let cause = loop {
        tokio::select! {
            read = rx.read_frame() => match read {
                Ok(Some(payload)) => {
                    // Whatever else arrived in the same read goes in the same hand-off.
                    let input = match rx.try_buffered() {
                        None => Input::Frame { conn, payload },
                        Some(second) => {
                            let mut payloads = vec![payload, second];
                            while payloads.len() < READ_BATCH {
                                let Some(next) = rx.try_buffered() else { break };
                                payloads.push(next);
                            }
                            Input::Frames { conn, payloads }
                        }
                    };
                    if inputs.send(input).await.is_err() {
                        break None; // The broker loop is gone: shutting down.
                    }
                }
                Ok(None) => break Some(Cause::Eof),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    break Some(Cause::Oversized(e.to_string()));
                }
                Err(e) => break Some(Cause::Read(e)),
            },
            // The broker loop dropped this connection (a close, a slow consumer, a
            // shutdown): it has forgotten it, so nothing more is read.
            _ = &mut closed => break None,
            // A write failed (the writer ends cleanly only after the loop let go).
            done = &mut writer_task => {
                let cause = match &done {
                    Ok(Err(e)) => Cause::Write(e.kind()),
                    _ => Cause::WriterEnded,
                };
                writer_result = Some(done);
                break Some(cause);
            }
        }
    };
    if let Some(cause) = cause {
        // The loop drops the writer's handle when it handles this, so the writer finishes.
        let _ = inputs.send(Input::Disconnect { conn, cause }).await;
    }
    drop(inputs);

    // Wait for the writer to flush what is queued and shut its side down, but not forever: a
    // peer that reads nothing could hold it, and this task, indefinitely.
    let writer_result = match writer_result {
        Some(done) => done,
        // Boxed, like the linger below: what only the end of a connection needs should not
        // size the task for its whole life.
        None => match Box::pin(tokio::time::timeout(WRITER_DRAIN, &mut writer_task)).await {
            Ok(done) => done,
            Err(_) => {
                debug!(conn = conn.0, %peer, "writer did not drain in time; dropping its queue");
                writer_task.abort();
                return;
            }
        },
    };
    match writer_result {
        // Our side is closed; wait briefly for the peer's close, so unread input cannot turn
        // our close into a reset (TCP) or an abrupt connection close (QUIC) that destroys the
        // frames just written.
        Ok(Ok(())) => Box::pin(linger(&mut rx, shutting_down)).await,
        Ok(Err(e)) => debug!(conn = conn.0, %peer, error = %e, "write failed"),
        Err(_) => {} // Aborted: a slow consumer, already logged by the loop.
    }
}

/// Discards input until the peer closes, for at most [`LINGER`], or [`SHUTDOWN_LINGER`] once
/// the server is shutting down.
async fn linger(rx: &mut FrameRx, mut shutting_down: watch::Receiver<bool>) {
    let drain = rx.discard_until_closed();
    let cut_short = async {
        // An error means the server is gone altogether: cut short as well.
        let _ = shutting_down.wait_for(|down| *down).await;
        tokio::time::sleep(SHUTDOWN_LINGER).await;
    };
    tokio::select! {
        _ = tokio::time::timeout(LINGER, drain) => {}
        () = cut_short => {}
    }
}
