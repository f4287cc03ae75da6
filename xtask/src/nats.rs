//! NATS under the same loads: `nats-server` (Debian package `nats-server`) as a child process on
//! a free port, driven with the `async-nats` client.
//!
//! A p2p pair is a subscriber to `p2p.<i>` and a publisher to it, each on its own connection;
//! the fan-out is `members` subscribers of one subject and a publisher; an idle session is a
//! connection with one subscription; a login is a connection authenticated with a token
//! (`nats-server --auth`, which compares a shared secret: no signature is verified).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::{Client, ConnectOptions, Subject};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use crate::load::{Flow, Gate, Payload, Shared, Tally, Tasks};
use crate::procs::{Pinning, Ready, ServerProc, free_port};

/// Messages handled before a receiver commits its tally.
const READ_BATCH: usize = 64;

/// A running `nats-server`.
#[derive(Debug)]
pub(crate) struct NatsServer {
    pub(crate) proc: ServerProc,
    url: Arc<str>,
}

/// Starts `nats-server` on 127.0.0.1 and a free port, requiring `token` if given.
pub(crate) fn start(
    bin: &Path,
    pinning: &Pinning,
    token: Option<&str>,
) -> Result<NatsServer, String> {
    let port = free_port()?;
    let mut cmd = pinning.command(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(token) = token {
        cmd.args(["--auth", token]);
    }
    let addr = ([127, 0, 0, 1], port).into();
    let (proc, _) = ServerProc::start("nats-server", cmd, Ready::Accepts(addr))?;
    Ok(NatsServer {
        proc,
        url: format!("nats://127.0.0.1:{port}").into(),
    })
}

async fn connect(url: &str, token: Option<&str>) -> Result<Client, String> {
    let options = match token {
        Some(t) => ConnectOptions::with_token(t.to_owned()),
        None => ConnectOptions::new(),
    };
    options
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to nats-server: {e}"))
}

/// Connects, subscribes to `subject`, and makes sure the server has the subscription.
async fn subscriber(
    url: &str,
    subject: String,
) -> Result<(Client, async_nats::Subscriber), String> {
    let client = connect(url, None).await?;
    let sub = client
        .subscribe(subject)
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    Ok((client, sub))
}

fn receiver(
    server: &NatsServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    subject: String,
    tasks: &mut Tasks,
) {
    let (url, shared, flow) = (server.url.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let (_client, mut sub) = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            subscriber(&url, subject).await?
        };
        shared.ready.add_permits(1);
        let mut tally = Tally::new(shared.recorder.clone(), flow);
        loop {
            let m = sub.next().await.ok_or("the subscription ended")?;
            tally.add(&m.payload);
            for _ in 1..READ_BATCH {
                match sub.next().now_or_never() {
                    Some(Some(m)) => tally.add(&m.payload),
                    Some(None) => return Err("the subscription ended".into()),
                    None => break,
                }
            }
            tally.commit();
        }
    });
}

fn sender(
    server: &NatsServer,
    shared: &Shared,
    flow: &Arc<Flow>,
    subject: String,
    per_message: u64,
    window: u64,
    tasks: &mut Tasks,
) {
    let (url, shared, flow) = (server.url.clone(), shared.clone(), flow.clone());
    tasks.spawn(async move {
        let client = {
            let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
            connect(&url, None).await?
        };
        shared.ready.add_permits(1);
        let subject = Subject::from(subject);
        let mut gate = Gate::new(shared.control.clone(), flow, per_message, window);
        let mut payload = Payload::new();
        loop {
            let n = gate.quota(gate.delivered());
            if n == 0 {
                gate.changed().await;
                continue;
            }
            for _ in 0..n {
                let body = Bytes::copy_from_slice(payload.stamp());
                client
                    .publish(subject.clone(), body)
                    .await
                    .map_err(|e| format!("cannot publish: {e}"))?;
            }
            gate.sent(n);
        }
    });
}

/// The p2p shape: `pairs` subscriber/publisher pairs.
pub(crate) fn p2p(
    server: &NatsServer,
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
    server: &NatsServer,
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
    server: &NatsServer,
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

/// `sessions` connections with one subscription each, held until aborted.
pub(crate) fn idle(server: &NatsServer, shared: &Shared, sessions: usize, tasks: &mut Tasks) {
    for i in 0..sessions {
        let (url, shared) = (server.url.clone(), shared.clone());
        tasks.spawn(async move {
            let (_client, mut sub) = {
                let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
                subscriber(&url, format!("idle.{i}")).await?
            };
            shared.ready.add_permits(1);
            while sub.next().await.is_some() {}
            Err("the subscription ended".into())
        });
    }
}

/// `conns` workers connecting with `token` (the server checks it), counting, closing, again.
pub(crate) fn login(
    server: &NatsServer,
    token: &str,
    conns: usize,
    logins: &Arc<AtomicU64>,
    tasks: &mut Tasks,
) {
    for _ in 0..conns {
        let (url, token, logins) = (server.url.clone(), token.to_owned(), logins.clone());
        tasks.spawn(async move {
            loop {
                // `connect` returns once the server answered CONNECT + PING with PONG, so the
                // token has been checked.
                let client = connect(&url, Some(&token)).await?;
                logins.fetch_add(1, Ordering::Relaxed);
                drop(client);
            }
        });
    }
}
