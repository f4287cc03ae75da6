//! Redis pub/sub under the same loads: `redis-server` (Debian package `redis-server`) as a child
//! process on a free port with persistence off, driven with the `redis` crate on tokio.
//!
//! Subscribers are pub/sub connections; a publisher is a multiplexed connection sending its
//! `PUBLISH` commands in pipelines, one per batch its window allows, several batches in flight. Redis has no login to compare:
//! that shape is n/a.

use std::path::Path;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use redis::Client;
use redis::aio::MultiplexedConnection;

use crate::load::{Flow, Gate, Payload, Shared, Tally, Tasks};
use crate::procs::{Pinning, Ready, ServerProc, free_port};

/// Messages handled before a receiver commits its tally.
const READ_BATCH: usize = 64;

/// A running `redis-server`.
#[derive(Debug)]
pub(crate) struct RedisServer {
    pub(crate) proc: ServerProc,
    client: Client,
}

/// Starts `redis-server` on 127.0.0.1 and a free port, without persistence, accepting
/// `max_clients` connections.
pub(crate) fn start(
    bin: &Path,
    pinning: &Pinning,
    max_clients: usize,
) -> Result<RedisServer, String> {
    let port = free_port()?;
    let mut cmd = pinning.command(bin);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxclients",
        &max_clients.to_string(),
        "--daemonize",
        "no",
    ]);
    let addr = ([127, 0, 0, 1], port).into();
    let (proc, _) = ServerProc::start("redis-server", cmd, Ready::Accepts(addr))?;
    let client = Client::open(format!("redis://127.0.0.1:{port}/"))
        .map_err(|e| format!("bad redis URL: {e}"))?;
    Ok(RedisServer { proc, client })
}

fn receiver(
    server: &RedisServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    channel: String,
    tasks: &mut Tasks,
) {
    let (client, shared, flow) = (server.client.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let (_sink, mut stream) = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .map_err(|e| format!("cannot connect to redis-server: {e}"))?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|e| format!("cannot subscribe: {e}"))?;
            pubsub.split()
        };
        shared.ready.add_permits(1);
        let mut tally = Tally::new(shared.recorder.clone(), flow);
        loop {
            let m = stream.next().await.ok_or("the subscription ended")?;
            tally.add(m.get_payload_bytes());
            for _ in 1..READ_BATCH {
                match stream.next().now_or_never() {
                    Some(Some(m)) => tally.add(m.get_payload_bytes()),
                    Some(None) => return Err("the subscription ended".into()),
                    None => break,
                }
            }
            tally.commit();
        }
    });
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

fn sender(
    server: &RedisServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    channel: String,
    per_message: u64,
    window: u64,
    tasks: &mut Tasks,
) {
    let (client, shared, flow) = (server.client.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let conn = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| format!("cannot connect to redis-server: {e}"))?
        };
        shared.ready.add_permits(1);
        let channel: Arc<str> = channel.into();
        let mut gate = Gate::new(shared.control.clone(), flow, per_message, window);
        let mut payload = Payload::new();
        let mut in_flight = FuturesUnordered::new();
        loop {
            let n = gate.quota(gate.delivered());
            if n > 0 {
                let bodies = (0..n).map(|_| payload.stamp().to_vec()).collect();
                in_flight.push(publish(conn.clone(), channel.clone(), bodies));
                gate.sent(n);
                // Polls the new commands into the pipeline and collects finished replies.
                while let Some(Some(r)) = in_flight.next().now_or_never() {
                    r?;
                }
                continue;
            }
            tokio::select! {
                Some(r) = in_flight.next(), if !in_flight.is_empty() => r?,
                () = gate.changed() => {}
            }
        }
    });
}

/// The p2p shape: `pairs` subscriber/publisher pairs on channels `p2p.<i>`.
pub(crate) fn p2p(
    server: &RedisServer,
    shared: &Shared,
    pairs: usize,
    window: u64,
    tasks: &mut Tasks,
) {
    for i in 0..pairs {
        let flow = Arc::new(Flow::default());
        receiver(server, shared, &flow, format!("p2p.{i}"), tasks);
        sender(server, shared, &flow, format!("p2p.{i}"), 1, window, tasks);
    }
}

/// The fan-out members: subscribers of `fanout`.
pub(crate) fn fanout_members(
    server: &RedisServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    tasks: &mut Tasks,
) {
    for _ in 0..members {
        receiver(server, shared, flow, "fanout".into(), tasks);
    }
}

/// The fan-out publisher.
pub(crate) fn fanout_publisher(
    server: &RedisServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    window: u64,
    tasks: &mut Tasks,
) {
    sender(
        server,
        shared,
        flow,
        "fanout".into(),
        members as u64,
        window,
        tasks,
    );
}

/// `sessions` pub/sub connections subscribed to a channel each, held until aborted.
pub(crate) fn idle(server: &RedisServer, shared: &Shared, sessions: usize, tasks: &mut Tasks) {
    for i in 0..sessions {
        let (client, shared) = (server.client.clone(), shared.clone());
        tasks.spawn(async move {
            let (_sink, mut stream) = {
                let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
                let mut pubsub = client
                    .get_async_pubsub()
                    .await
                    .map_err(|e| format!("cannot connect to redis-server: {e}"))?;
                pubsub
                    .subscribe(format!("idle.{i}"))
                    .await
                    .map_err(|e| format!("cannot subscribe: {e}"))?;
                pubsub.split()
            };
            shared.ready.add_permits(1);
            while stream.next().await.is_some() {}
            Err("the subscription ended".into())
        });
    }
}
