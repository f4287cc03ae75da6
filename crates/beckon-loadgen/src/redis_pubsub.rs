//! Redis pub/sub under the same loads: `redis-server` (Debian package `redis-server`) as a child
//! process on a free port with persistence off, driven with the `redis` crate on tokio.
//!
//! Subscribers are pub/sub connections; a publisher is a multiplexed connection sending its
//! `PUBLISH` commands in pipelines, one per batch its window allows, several batches in
//! flight. Redis has no login to compare: that shape is n/a.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use redis::Client;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};

use crate::cli::{Options, Shape, System};
use crate::driver::{self, Driver, Role};
use crate::load::{Gate, Payload};
use crate::measure::Ctx;
use crate::procs::{self, ServerProc};

/// The driver of a running `redis-server`.
#[derive(Clone, Debug)]
pub(crate) struct Redis(Client);

/// A pub/sub connection subscribed to the role's channel.
pub(crate) struct RedisReceiver {
    _sink: PubSubSink,
    stream: PubSubStream,
}

/// A pipeline of `PUBLISH` commands on its way.
type Publishing = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A publisher to one channel, with its pipelines in flight.
pub(crate) struct RedisSender {
    conn: MultiplexedConnection,
    channel: Arc<str>,
    in_flight: FuturesUnordered<Publishing>,
}

/// Connections the server must accept in any shape of the run.
fn max_clients(opts: &Options) -> usize {
    opts.sessions.max(opts.members) + opts.pairs * 2 + 64
}

fn cannot_connect(e: redis::RedisError) -> String {
    format!("cannot connect to redis-server: {e}")
}

impl Driver for Redis {
    const SYSTEM: System = System::Redis;
    type Receiver = RedisReceiver;
    type Sender = RedisSender;

    /// Starts `redis-server` on 127.0.0.1 and a free port, without persistence, accepting
    /// every connection of the run.
    fn start(ctx: &Ctx<'_>, _shape: Shape) -> Result<(ServerProc, Self), String> {
        let bin = ctx.peer_bin(Self::SYSTEM)?;
        let max_clients = max_clients(ctx.opts).to_string();
        let (proc, port) = procs::start_on_free_port("redis-server", |port| {
            let mut cmd = ctx.server_command(bin);
            cmd.args(["--port", port, "--bind", "127.0.0.1", "--save", ""]);
            cmd.args(["--appendonly", "no", "--maxclients", &max_clients]);
            cmd.args(["--daemonize", "no"]);
            cmd
        })?;
        let client = Client::open(format!("redis://127.0.0.1:{port}/"))
            .map_err(|e| format!("bad redis URL: {e}"))?;
        Ok((proc, Redis(client)))
    }

    async fn receiver(&self, role: Role) -> Result<RedisReceiver, String> {
        let mut pubsub = self.0.get_async_pubsub().await.map_err(cannot_connect)?;
        pubsub
            .subscribe(role.topic())
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        let (_sink, stream) = pubsub.split();
        Ok(RedisReceiver { _sink, stream })
    }

    async fn sender(&self, role: Role) -> Result<RedisSender, String> {
        let conn = self
            .0
            .get_multiplexed_async_connection()
            .await
            .map_err(cannot_connect)?;
        Ok(RedisSender {
            conn,
            channel: role.topic().into(),
            in_flight: FuturesUnordered::new(),
        })
    }

    async fn login(&self, _worker: usize) -> Result<(), String> {
        Err("redis-server has no login to measure".into())
    }
}

impl driver::Inbox for RedisReceiver {
    type Message = redis::Msg;

    async fn next(&mut self) -> Result<redis::Msg, String> {
        self.stream
            .next()
            .await
            .ok_or("the subscription ended".into())
    }

    fn payload(message: &redis::Msg) -> &[u8] {
        message.get_payload_bytes()
    }
}

/// Publishes a batch of messages as one pipeline (one future, one round trip).
async fn publish(
    mut conn: MultiplexedConnection,
    channel: Arc<str>,
    bodies: Vec<Vec<u8>>,
) -> Result<(), String> {
    let mut pipe = redis::pipe();
    for body in bodies {
        pipe.cmd("PUBLISH").arg(&*channel).arg(body).ignore();
    }
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(|e| format!("PUBLISH failed: {e}"))
}

impl driver::Sender for RedisSender {
    /// Puts the batch in flight as one pipeline, and collects the replies that came.
    async fn send(&mut self, n: u64, payload: &mut Payload) -> Result<(), String> {
        let bodies = (0..n).map(|_| payload.stamp().to_vec()).collect();
        let publishing = publish(self.conn.clone(), self.channel.clone(), bodies);
        self.in_flight.push(Box::pin(publishing));
        // Polls the new commands into the pipeline and collects finished replies.
        while let Some(Some(r)) = self.in_flight.next().now_or_never() {
            r?;
        }
        Ok(())
    }

    async fn wait(&mut self, gate: &mut Gate) -> Result<(), String> {
        tokio::select! {
            Some(r) = self.in_flight.next(), if !self.in_flight.is_empty() => r,
            () = gate.changed() => Ok(()),
        }
    }
}
