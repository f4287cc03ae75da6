//! The connection tasks: one per accepted connection, which runs the transport handshake, then
//! reads frames into the broker loop and writes what the loop queues in its outbox.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use beckon_broker::{ConnId, OutFrame};
use beckon_proto::codec::LENGTH_PREFIX;
use beckon_transport::{FrameRx, FrameTx, Incoming, Scheme};

use super::broker_loop::{Cause, Input};
use super::outbox::{Outbox, Taken, WriterHandle};
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
        // Boxed: an async function's arguments stay in its future for its whole life, and the
        // accepted connection is only needed until the handshake.
        let f = serve_connection(conn, scheme, Box::new(incoming), self.link.clone());
        self.tasks.spawn(f);
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

/// Turns in a row the connection task may spend reading before it looks at its outbox.
const READ_TURNS: u32 = 16;

/// Runs one connection's transport handshake, then reads its frames into the broker loop and
/// writes what the loop queues for it.
async fn serve_connection(conn: ConnId, scheme: Scheme, incoming: Box<Incoming>, link: Link) {
    let Link {
        handshake_timeout,
        inputs,
        shutting_down,
    } = link;
    let peer = incoming.peer();
    // The handshake runs here, in the connection's own task and under a deadline, so a peer
    // that never finishes it (a stalled TLS hello, a half-sent HTTP upgrade) costs one idle
    // task and its buffers until the deadline, and holds up nobody else.
    let (mut rx, mut tx) =
        // Boxed: the handshake's state (a WebSocket upgrade's is kilobytes) is freed once it is
        // done, rather than sizing this task for the connection's whole life.
        match tokio::time::timeout(handshake_timeout, Box::pin((*incoming).establish())).await {
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

    let outbox = Arc::new(Outbox::default());
    let connect = Input::Connect {
        conn,
        peer,
        scheme,
        writer: WriterHandle::new(outbox.clone()),
    };
    if inputs.send(connect).await.is_err() {
        return; // Shutting down.
    }
    // However this task ends, the loop's further frames are refused (and freed) from then on.
    let _gone = Gone(&outbox);

    // One task reads and writes: a second task per connection would cost an idle session as
    // much memory again. A write that stalls (the peer reads nothing) holds up reading too;
    // such a peer is the slow consumer the loop's byte budget disconnects, and the write is
    // cut short when it does.
    let mut batch = VecDeque::new();
    // Turns in a row that read input; bounded so a peer that keeps sending cannot keep its
    // own replies from going out.
    let mut reads_in_row = 0;
    // Frames in the last batch written.
    let mut last_batch = 0;
    let end = loop {
        let taken = tokio::select! {
            // In order, which spares drawing a random one on every turn; input first, so the
            // broker loop hears an acknowledgement before this task writes what it queued.
            biased;
            read = rx.read_frame() => {
                match read {
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
                }
                reads_in_row += 1;
                if reads_in_row < READ_TURNS {
                    continue;
                }
                reads_in_row = 0;
                match outbox.try_take(&mut batch) {
                    Some(taken) => taken,
                    None => continue,
                }
            }
            taken = outbox.take(&mut batch) => taken,
        };
        reads_in_row = 0;
        let streaming = last_batch > 1;
        last_batch = batch.len();
        match taken {
            Taken::Frames => {
                match gather_and_write(&mut tx, &outbox, &mut batch, streaming).await {
                    Ok(Written::All) => {}
                    Ok(Written::Aborted) => return, // A slow consumer, logged by the loop.
                    Ok(Written::TimedOut) => {
                        debug!(conn = conn.0, %peer, "writer did not drain in time; dropping its queue");
                        return;
                    }
                    Err(e) => break Some(Cause::Write(e.kind())),
                }
            }
            // The loop dropped this connection (a close, a shutdown): it has forgotten it, so
            // nothing more is read.
            Taken::Closed => break None,
            Taken::Aborted => return,
        }
    };
    let write_failed = matches!(end, Some(Cause::Write(_)));
    if let Some(cause) = end {
        // The loop drops the writer's handle when it handles this, so the outbox closes.
        let _ = inputs.send(Input::Disconnect { conn, cause }).await;
    }
    drop(inputs);
    if write_failed {
        return;
    }

    // Flush what the loop still queues until it lets go, then shut our side down; but not
    // forever: a peer that reads nothing could hold this task indefinitely. Boxed, like the
    // linger below: what only the end of a connection needs should not size the task for its
    // whole life.
    let finish = async {
        loop {
            match outbox.take(&mut batch).await {
                Taken::Frames => match write_batch(&mut tx, &outbox, &mut batch).await? {
                    Written::All => {}
                    Written::Aborted | Written::TimedOut => return Ok(false),
                },
                Taken::Closed => break,
                Taken::Aborted => return Ok(false),
            }
        }
        tx.shutdown().await.map(|()| true)
    };
    match Box::pin(tokio::time::timeout(WRITER_DRAIN, finish)).await {
        // Our side is closed; wait briefly for the peer's close, so unread input cannot turn
        // our close into a reset (TCP) or an abrupt connection close (QUIC) that destroys the
        // frames just written.
        Ok(Ok(true)) => Box::pin(linger(&mut rx, shutting_down)).await,
        Ok(Ok(false)) => {}
        Ok(Err(e)) => debug!(conn = conn.0, %peer, error = %e, "write failed"),
        Err(_) => {
            debug!(conn = conn.0, %peer, "writer did not drain in time; dropping its queue");
        }
    }
}

/// Marks the outbox when the connection task ends, however it ends.
struct Gone<'a>(&'a Outbox);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        self.0.writer_gone();
    }
}

/// How a batch went out when it did not fail.
enum Written {
    All,
    /// The loop dropped the connection as a slow consumer while the write was stalled.
    Aborted,
    /// The loop let go of the connection while the write was stalled, and it stayed stalled
    /// for [`WRITER_DRAIN`].
    TimedOut,
}

/// Lets the other tasks that are ready run once before writing what was taken, then adds what
/// the outbox gathered meanwhile. The task is often woken for its input while the broker loop
/// is still queueing output for it; writing at once would send that output in two shallow
/// batches (each a write, a flush and an acknowledgement to handle) where a separate writer
/// task, woken only by the outbox, sent one.
async fn gather_and_write(
    tx: &mut FrameTx,
    outbox: &Outbox,
    batch: &mut VecDeque<OutFrame>,
    streaming: bool,
) -> io::Result<Written> {
    // Only once the connection is streaming (its last batch held more than one frame): a
    // reply or a login's answer goes out at once, as a burst of logins answered across a
    // yield would hold every connection's answer at the same time, a peak the allocator
    // keeps. Yielded before the write state is boxed, for the same reason.
    if streaming {
        tokio::task::yield_now().await;
        outbox.take_more(batch);
    }
    // Boxed: a write's state is as large as the rest of the task, and an idle connection,
    // the common case, should not carry it.
    Box::pin(write_batch(tx, outbox, batch)).await
}

/// Writes a batch taken from the outbox in one flush: one syscall for many frames when it is
/// deep. A write that stalls is cut short once the loop aborts the connection, or
/// [`WRITER_DRAIN`] after it lets go of it.
async fn write_batch(
    tx: &mut FrameTx,
    outbox: &Outbox,
    batch: &mut VecDeque<OutFrame>,
) -> io::Result<Written> {
    let mut written = 0;
    {
        let write = async {
            for frame in batch.drain(..) {
                written += frame.len() + LENGTH_PREFIX;
                tx.write_frame(&frame.head, &frame.body).await?;
            }
            tx.flush().await
        };
        let mut write = std::pin::pin!(write);
        tokio::select! {
            biased;
            done = &mut write => done?,
            end = outbox.ended() => match end {
                // Boxed: a rare path, which should not size every connection's task.
                Taken::Closed => match Box::pin(tokio::time::timeout(WRITER_DRAIN, &mut write)).await {
                    Ok(done) => done?,
                    Err(_) => return Ok(Written::TimedOut),
                },
                _ => return Ok(Written::Aborted),
            },
        }
    }
    outbox.written(written, batch);
    Ok(Written::All)
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
