//! The broker loop: the one task that owns the [`Broker`], fed by every connection task through
//! one bounded channel, with one timer armed from the broker's next deadline.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use beckon_broker::{Broker, BrokerStats, ConnId, OutFrame, Output};
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, server_frame};
use beckon_transport::Scheme;

use super::outbox::WriterHandle;
use super::{INPUT_BATCH, RECONNECT_SPREAD};
use crate::config::ServerConfig;
use crate::store::ServerStore;

/// What connection tasks (and the handle) tell the broker loop.
pub(super) enum Input {
    Connect {
        conn: ConnId,
        peer: SocketAddr,
        scheme: Scheme,
        writer: WriterHandle,
    },
    Frame {
        conn: ConnId,
        payload: Bytes,
    },
    /// Frames that arrived together, in order: one hand-off for many when a client pipelines.
    Frames {
        conn: ConnId,
        payloads: Vec<Bytes>,
    },
    Disconnect {
        conn: ConnId,
        cause: Cause,
    },
    Stats(oneshot::Sender<BrokerStats>),
    Shutdown,
}

/// Why a connection task stopped reading.
#[derive(Debug)]
pub(super) enum Cause {
    /// The peer closed the connection.
    Eof,
    /// The peer sent a frame longer than the maximum, or a length prefix of garbage.
    Oversized(String),
    /// Reading failed (reset, or the stream ended inside a frame).
    Read(io::Error),
    /// Writing failed.
    Write(io::ErrorKind),
    /// The writer task ended unexpectedly.
    WriterEnded,
}

struct ConnEntry {
    peer: SocketAddr,
    writer: WriterHandle,
}

pub(super) struct BrokerLoop {
    broker: Broker<ServerStore>,
    inputs: mpsc::Receiver<Input>,
    /// Keyed by ids this server hands out, never by client input: a fast hash is safe.
    conns: FxHashMap<ConnId, ConnEntry>,
    outbound_budget: usize,
    /// Slow consumers the loop disconnected itself (the broker counts only its own).
    slow_consumers: u64,
}

impl BrokerLoop {
    pub(super) fn new(
        config: &ServerConfig,
        store: ServerStore,
        inputs: mpsc::Receiver<Input>,
    ) -> Self {
        // The only place the wall clock is read: the broker derives Unix time from this pair
        // and the monotonic instants it is given afterwards.
        let epoch = now();
        let epoch_unix_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2),
            Err(_) => {
                warn!("the system clock is before 1970; timestamps will be wrong");
                0
            }
        };
        Self {
            broker: Broker::new(config.broker.clone(), store, epoch, epoch_unix_ms),
            inputs,
            conns: FxHashMap::default(),
            outbound_budget: config.outbound_budget_bytes,
            slow_consumers: 0,
        }
    }

    pub(super) async fn run(mut self) {
        // One timer, re-armed only when the broker's next deadline changes.
        let sleep = tokio::time::sleep(Duration::ZERO);
        let mut sleep = std::pin::pin!(sleep);
        let mut armed = None;
        loop {
            let deadline = self.broker.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(TokioInstant::from_std(at));
                }
                armed = deadline;
            }
            let mut stop = false;
            tokio::select! {
                input = self.inputs.recv() => {
                    // Every sender is gone only once `run` has finished with the accept loop
                    // and every connection; nothing is left to serve.
                    let Some(input) = input else { break };
                    stop = self.handle_input(input);
                    for _ in 1..INPUT_BATCH {
                        if stop {
                            break;
                        }
                        match self.inputs.try_recv() {
                            Ok(input) => stop = self.handle_input(input),
                            Err(_) => break,
                        }
                    }
                }
                // Forgetting what is armed makes the next turn re-arm even an unchanged
                // deadline, so a completed timer can never make this select spin.
                () = &mut sleep, if armed.is_some() => armed = None,
            }
            // Checked after inputs too, so a steady stream of inputs cannot starve the timers.
            let now = now();
            if self.broker.poll_timeout().is_some_and(|at| at <= now) {
                self.broker.handle_timeout(now);
            }
            self.drain_outputs();
            if stop {
                self.shutdown();
                break;
            }
        }
    }

    /// Feeds one input to the broker; returns whether the loop must shut down.
    fn handle_input(&mut self, input: Input) -> bool {
        match input {
            Input::Connect {
                conn,
                peer,
                scheme,
                writer,
            } => {
                debug!(conn = conn.0, %peer, %scheme, "connection opened");
                self.conns.insert(conn, ConnEntry { peer, writer });
                self.broker.connect(conn, now());
            }
            Input::Frame { conn, payload } => {
                // Frames still in flight from a connection the loop already closed are dropped
                // (the broker would ignore them too).
                if self.conns.contains_key(&conn) {
                    self.broker.handle_frame(conn, &payload, now());
                }
            }
            Input::Frames { conn, payloads } => {
                let now = now();
                for payload in payloads {
                    // Checked per frame: one of them may have closed the connection.
                    if !self.conns.contains_key(&conn) {
                        break;
                    }
                    self.broker.handle_frame(conn, &payload, now);
                }
            }
            Input::Disconnect { conn, cause } => {
                // What earlier inputs of this batch produced for the connection goes out first
                // (e.g. replies to requests sent just before a half-close).
                self.drain_outputs();
                // Absent when the loop closed the connection itself; the broker forgot it then.
                if let Some(entry) = self.conns.remove(&conn) {
                    let (id, peer) = (conn.0, entry.peer);
                    match &cause {
                        Cause::Oversized(why) => {
                            debug!(conn = id, %peer, reason = %why, "closing: oversized frame");
                            // DESIGN: an oversized frame closes with LOGOUT_E_PACKET; the client
                            // hears why before the writer flushes and closes.
                            let kick = OutFrame::server(server_frame::Kind::Kick(pb::Kick {
                                code: ErrorCode::LogoutPacket.code(),
                                message: why.clone(),
                            }));
                            entry.writer.push_unbudgeted(kick);
                        }
                        Cause::Eof => debug!(conn = id, %peer, "connection closed by the peer"),
                        Cause::Read(e) => debug!(conn = id, %peer, error = %e, "connection lost"),
                        Cause::Write(kind) => {
                            debug!(conn = id, %peer, error = %kind, "connection lost: write failed");
                        }
                        Cause::WriterEnded => {
                            debug!(conn = id, %peer, "connection lost: writer ended")
                        }
                    }
                    self.broker.disconnect(conn, now());
                }
            }
            Input::Stats(reply) => {
                let mut stats = self.broker.stats();
                stats.slow_consumer_disconnects += self.slow_consumers;
                let _ = reply.send(stats);
            }
            Input::Shutdown => return true,
        }
        false
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.broker.poll_output() {
            match output {
                Output::Send { conn, frame } => self.send(conn, frame),
                Output::Close { conn, reason } => {
                    // Dropping the writer's handle closes its outbox: the writer writes what is
                    // queued, flushes and shuts the socket down; the connection task then ends.
                    if let Some(entry) = self.conns.remove(&conn) {
                        let (id, peer, code) = (conn.0, entry.peer, reason.code);
                        let why = &reason.message;
                        // LOGIN_E_* codes: the broker refused a login (bad token, unknown app…).
                        if (200..300).contains(&code.code()) {
                            debug!(conn = id, %peer, %code, reason = %why, "login failed");
                        } else {
                            debug!(conn = id, %peer, %code, reason = %why, "closing connection");
                        }
                    }
                }
            }
        }
    }

    /// Queues a frame for a connection's writer, enforcing the outbound byte budget.
    fn send(&mut self, conn: ConnId, frame: OutFrame) {
        let Some(entry) = self.conns.get(&conn) else {
            return; // Closed already.
        };
        if let Err(queued) = entry.writer.push_within(frame, self.outbound_budget) {
            self.slow_consumer(conn, queued);
        }
    }

    /// Disconnects a connection whose peer does not read fast enough. Its session waits in
    /// grace like any other lost connection; the backlog is dropped rather than flushed, since
    /// flushing is exactly what the peer cannot keep up with.
    fn slow_consumer(&mut self, conn: ConnId, queued: usize) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        self.slow_consumers += 1;
        warn!(
            conn = conn.0,
            peer = %entry.peer,
            queued_bytes = queued,
            budget_bytes = self.outbound_budget,
            "disconnecting slow consumer: outbound queue over budget"
        );
        entry.writer.abort();
        self.broker.disconnect(conn, now());
    }

    /// Tells every client to come back later and closes every connection, through the broker
    /// so that it also puts unacknowledged messages back in the store.
    fn shutdown(&mut self) {
        let count = self.conns.len();
        self.broker.shutdown(RECONNECT_SPREAD);
        self.drain_outputs();
        // The broker closed every connection it knew; anything left is dropped the same way.
        self.conns.clear();
        info!(connections = count, "told clients to reconnect later");
    }
}

/// The current instant as the broker wants it. Taken from tokio's clock so that tests which
/// pause time also move the broker's timers.
fn now() -> std::time::Instant {
    TokioInstant::now().into_std()
}
