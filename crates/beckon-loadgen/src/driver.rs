//! The one interface every system under test implements: [`Driver`] starts the system's server
//! and connects its clients; a [`Receiver`] counts what arrives (an [`Inbox`], which yields one
//! message at a time, is one), a [`Sender`] sends stamped messages. The shapes are written once
//! against it ([`crate::shapes`]), and so is every measurement ([`crate::measure`]).
//!
//! A connection learns what it is for from its [`Role`]: which part of which shape, and its
//! index. Each driver maps roles to its own names (a NATS subject, a Redis channel, a Beckon
//! account, a forwarder id); what a pair or a group shares is decided here, once.

use std::future::Future;

use futures_util::FutureExt;

use crate::cli::{Shape, System};
use crate::load::{Gate, Payload, Tally};
use crate::measure::Ctx;
use crate::procs::ServerProc;

/// Messages a receiver hands to its tally before it commits them: what arrived together, up to
/// this many.
pub(crate) const READ_BATCH: usize = 64;

/// A connection's part in a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    /// The receiving side of p2p pair `i`.
    P2pReceiver(usize),
    /// The sending side of p2p pair `pair`, of `pairs`.
    P2pSender { pair: usize, pairs: usize },
    /// Member `i` of the fan-out channel.
    FanoutMember(usize),
    /// The fan-out's publisher.
    FanoutPublisher,
    /// Idle session `i`.
    Idle(usize),
}

impl Role {
    /// The subject (NATS) or channel (Redis) the role subscribes or publishes to: one per p2p
    /// pair, one for the whole fan-out, one of its own per idle session.
    #[cfg_attr(not(feature = "peers"), allow(dead_code, reason = "for the peers"))]
    pub(crate) fn topic(self) -> String {
        match self {
            Role::P2pReceiver(i) | Role::P2pSender { pair: i, .. } => format!("p2p.{i}"),
            Role::FanoutMember(_) | Role::FanoutPublisher => "fanout".into(),
            Role::Idle(i) => format!("idle.{i}"),
        }
    }
}

/// How the load generator drives one system: start its server, connect its clients.
///
/// A driver is the clients' handle on a running server (an address, a URL, a client factory):
/// cheap to clone, one clone per task. Every future it returns does nothing until polled, so
/// the shapes can bound how many connections set up at once.
pub(crate) trait Driver: Clone + Send + Sync + Sized + 'static {
    /// The system, for the table and for messages.
    const SYSTEM: System;

    type Receiver: Receiver;
    type Sender: Sender;

    /// Starts the system's server, pinned, ready for a measurement of `shape`; the process is
    /// killed when the [`ServerProc`] is dropped.
    fn start(ctx: &Ctx<'_>, shape: Shape) -> Result<(ServerProc, Self), String>;

    /// Connects a receiver in `role`, and does what makes it receive (logging in,
    /// subscribing, joining).
    fn receiver(&self, role: Role) -> impl Future<Output = Result<Self::Receiver, String>> + Send;

    /// Connects a sender in `role`, ready to send to its receivers.
    fn sender(&self, role: Role) -> impl Future<Output = Result<Self::Sender, String>> + Send;

    /// One login of worker `worker`: connect, authenticate (the server verifies a credential),
    /// and end the session again. A system without logins says so with an error (the login
    /// shape does not apply to it).
    fn login(&self, worker: usize) -> impl Future<Output = Result<(), String>> + Send;
}

/// A connection that receives the messages of its role.
pub(crate) trait Receiver: Send + 'static {
    /// Waits for the next message, then adds it and those that arrived with it (up to
    /// [`READ_BATCH`]) to `tally`. `Err` once the connection is lost.
    fn receive(&mut self, tally: &mut Tally) -> impl Future<Output = Result<(), String>> + Send;
}

/// A connection that sends the messages of its role.
pub(crate) trait Sender: Send + 'static {
    /// How many of the messages sent are done, given that `delivered` of them reached every
    /// receiver: by default just those; a system that acknowledges sends also waits for that.
    fn confirmed(&self, delivered: u64) -> u64 {
        delivered
    }

    /// Sends `n` messages, each stamped afresh from `payload`.
    fn send(
        &mut self,
        n: u64,
        payload: &mut Payload,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Waits until `gate` may allow more ([`Gate::changed`]), handling meanwhile whatever the
    /// connection brings.
    fn wait(&mut self, gate: &mut Gate) -> impl Future<Output = Result<(), String>> + Send {
        async {
            gate.changed().await;
            Ok(())
        }
    }
}

/// A connection that yields its messages one at a time (a subscription, a frame reader); it
/// is a [`Receiver`] that waits for one message, then takes those already there without
/// waiting, up to [`READ_BATCH`].
pub(crate) trait Inbox: Send + 'static {
    type Message;

    /// The next message, waiting for it; `Err` once the connection is lost. Dropping the
    /// future before it is ready loses nothing.
    fn next(&mut self) -> impl Future<Output = Result<Self::Message, String>> + Send;

    /// The body of a message.
    fn payload(message: &Self::Message) -> &[u8];
}

impl<I: Inbox> Receiver for I {
    async fn receive(&mut self, tally: &mut Tally) -> Result<(), String> {
        let m = self.next().await?;
        tally.add(I::payload(&m));
        for _ in 1..READ_BATCH {
            match self.next().now_or_never() {
                Some(m) => tally.add(I::payload(&m?)),
                None => break,
            }
        }
        Ok(())
    }
}
