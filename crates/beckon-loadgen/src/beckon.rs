//! Beckon under load: the release `beckon-server` as a child process, and a lean driver of the
//! sans-IO `beckon-client` over `beckon-transport` for the load generator.
//!
//! The driver is the SDK's driver (`beckon-sdk/src/driver.rs`) without what a benchmark does
//! not need: no command channel, no reader task, no callbacks, no reconnects. One task owns a
//! [`Session`]: it waits for a frame, the client's timer or its own wake-up, hands frames to
//! the client (up to [`READ_BATCH`] already buffered ones at a time), writes what the client
//! transmits and flushes once. A lost connection is an error, not a reconnect.
//!
//! `Beckon<N>` with `N` above 0 is Beckon in cluster mode: `N` servers sharing one
//! `redis-server` (`--cluster`), each session logged in to the node its [`Seat`] names, so that
//! every p2p message crosses nodes when there are two or more and fan-out members are spread
//! evenly; the system's CPU time and memory are the nodes' and Redis's together.
//!
//! The server runs with a configured app and certificate, so every login verifies a real
//! token minted with `beckon-token`; acknowledgements and success replies stay on. The only
//! limits raised are the channel message rates (60 per user and 200 per channel per second by
//! default), which would otherwise cap the fan-out shape.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::time::Sleep;

use beckon_client::{Client, ClientConfig, ConnectionCommand, Event};
use beckon_token::{Privileges, TokenClaims};
use beckon_transport::{ClientTls, Endpoint, FrameRx, FrameTx, Scheme};

use crate::cli::{Shape, System, Transport};
use crate::driver::{self, Driver, READ_BATCH, Role};
use crate::load::{Gate, Payload, Tally};
use crate::measure::Ctx;
use crate::net::connect_spread;
use crate::procs::{self, Ready, ServerProc, TempFile};

/// The App ID the benchmark logs in to.
const APP_ID: &str = "bench";
/// The channel of the fan-out shape.
const CHANNEL: &str = "fanout";
/// Server message ids each client remembers to drop re-deliveries. Re-deliveries follow only
/// a resumed session, which a benchmark never has; the SDK's 4,096 would cost the load
/// generator a cache miss per message (a thousand fan-out members hold 40 MB of id sets)
/// without changing a byte on the wire.
const DEDUP_WINDOW: usize = 64;
/// The largest frame accepted from the server (as the SDK).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The driver of running `beckon-server`s: where and how sessions log in. `NODES` is 0 for one
/// server on its own store, `N` for `N` nodes of a cluster on one Redis.
#[derive(Clone, Debug)]
pub(crate) struct Beckon<const NODES: usize = 0>(Arc<Target>);

/// Where and how sessions log in.
#[derive(Debug)]
struct Target {
    /// One per node; a session goes to the one its seat names.
    endpoints: Vec<Endpoint>,
    tls: ClientTls,
    certificate: String,
}

impl Target {
    /// A token for `account`, valid for a day.
    fn token(&self, account: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        beckon_token::mint(
            self.certificate.as_bytes(),
            &TokenClaims {
                app_id: APP_ID.to_owned(),
                account: account.to_owned(),
                issued_at: now,
                expires_at: now + 86_400,
                privileges: Privileges::NONE,
            },
        )
    }
}

/// Starts `bin --ephemeral --config <file> --listen <scheme>://127.0.0.1:0` (with `--store
/// durable`: `--data-dir <a temporary directory>` instead of `--ephemeral`) and waits for its
/// "listening on" line; with `nodes` above 0, a `redis-server` and that many nodes on it
/// (`--cluster`, each its own node id).
fn start(ctx: &Ctx<'_>, nodes: usize) -> Result<(ServerProc, Target), String> {
    let scheme = match ctx.opts.transport {
        Transport::Tcp => Scheme::Tcp,
        Transport::Quic => Scheme::Quic,
        Transport::Ws => Scheme::Ws,
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id());
    let certificate = format!("{seed:032x}");
    // The rate limits out of the way: the shapes measure the server's capacity, not its
    // admission control (5,000 logins/s by default) or its per-user message rates.
    let config = TempFile::new(
        "beckon.toml",
        &format!(
            "login_rate = 1000000000\n\
             login_burst = 1000000000\n\
             [[apps]]\n\
             app_id = \"{APP_ID}\"\n\
             certificate = \"{certificate}\"\n\
             channel_messages_per_user = 1000000000\n\
             channel_messages_per_channel = 1000000000\n"
        ),
    )?;
    let redis = if nodes > 0 {
        Some(start_redis()?)
    } else {
        None
    };
    let mut endpoints = Vec::new();
    let mut procs: Vec<ServerProc> = Vec::new();
    for node in 0..nodes.max(1) {
        let cluster = redis.as_ref().map(|(_, port)| {
            (
                format!("redis://127.0.0.1:{port}/"),
                format!("bench-{node}"),
            )
        });
        let (proc, endpoint) = start_node(ctx, scheme, &config, cluster)?;
        endpoints.push(endpoint);
        procs.push(proc);
    }
    let mut procs = procs.into_iter();
    let mut proc = procs.next().ok_or("no node was started")?.removing(config);
    for other in procs {
        proc = proc.with(other);
    }
    if let Some((redis, _)) = redis {
        proc = proc.with(redis);
    }
    let target = Target {
        endpoints,
        tls: ClientTls {
            dangerous_accept_any_cert: true,
            ..ClientTls::default()
        },
        certificate,
    };
    Ok((proc, target))
}

/// A `redis-server` on a free port, persistence off, for the nodes of a cluster.
fn start_redis() -> Result<(ServerProc, u16), String> {
    let bin = procs::find_in_path("redis-server")
        .ok_or("redis-server is not installed (Debian package `redis-server`); --nodes needs it")?;
    procs::start_on_free_port("redis-server", |port| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        cmd
    })
}

/// One `beckon-server` (a node of `cluster`: its Redis URL and node id, when given).
fn start_node(
    ctx: &Ctx<'_>,
    scheme: Scheme,
    config: &TempFile,
    cluster: Option<(String, String)>,
) -> Result<(ServerProc, Endpoint), String> {
    let listen = match scheme {
        Scheme::Ws => "ws://127.0.0.1:0/ws".to_owned(),
        other => format!("{other}://127.0.0.1:0"),
    };
    // A cluster's store is its Redis.
    let data = if ctx.opts.durable && cluster.is_none() {
        Some(TempFile::dir("data")?)
    } else {
        None
    };
    let mut cmd = ctx.server_command(ctx.server_bin);
    match (&data, &cluster) {
        (_, Some((url, node_id))) => cmd.arg("--cluster").arg(url).arg("--node-id").arg(node_id),
        (Some(dir), None) => cmd.arg("--data-dir").arg(dir.path()),
        (None, None) => cmd.arg("--ephemeral"),
    };
    cmd.arg("--config")
        .arg(config.path())
        .arg("--listen")
        .arg(&listen)
        .env("RUST_LOG", "warn");
    // Extra server arguments, e.g. `--admin http://127.0.0.1:0` to measure with metrics on.
    if let Ok(extra) = std::env::var("BECKON_BENCH_SERVER_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let (proc, printed) = ServerProc::start(
        "beckon-server",
        cmd,
        Ready::Line("beckon-server listening on"),
    )?;
    let endpoint: Endpoint = printed
        .parse()
        .map_err(|e| format!("beckon-server printed an address that does not parse: {e}"))?;
    if endpoint.scheme != scheme || endpoint.port == 0 {
        return Err(format!(
            "beckon-server was asked to listen on {listen} but says it listens on {endpoint}"
        ));
    }
    let proc = match data {
        Some(dir) => proc.removing(dir),
        None => proc,
    };
    Ok((proc, endpoint))
}

/// One logged-in session: the client state machine and its connection.
pub(crate) struct Session {
    client: Client,
    rx: FrameRx,
    tx: FrameTx,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    events: Vec<Event>,
}

impl Session {
    /// Connects to node `node` (modulo the nodes) and logs in as `account` with a freshly
    /// minted token.
    async fn login(target: &Target, account: &str, node: usize) -> Result<Session, String> {
        let endpoint = &target.endpoints[node % target.endpoints.len()];
        let now = Instant::now();
        let seed = account.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut client = Client::new(
            ClientConfig {
                seed,
                dedup_window: DEDUP_WINDOW,
                ..ClientConfig::default()
            },
            now,
        );
        client.login(APP_ID, account, &target.token(account), "", now);
        if client.poll_connection() != Some(ConnectionCommand::Open) {
            let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
            return Err(format!("the client refused to log in: {events:?}"));
        }
        let (rx, tx) = if endpoint.scheme == Scheme::Tcp {
            // Loopback TCP from many source addresses in turn (see `net`).
            let addr = endpoint
                .authority()
                .parse()
                .map_err(|e| format!("{endpoint} is not an address: {e}"))?;
            let stream = connect_spread(addr)
                .await
                .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
            beckon_transport::from_tcp(stream, MAX_FRAME)
                .map_err(|e| format!("cannot set up {endpoint}: {e}"))?
        } else {
            beckon_transport::connect(endpoint, &target.tls, MAX_FRAME)
                .await
                .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?
        };
        client.handle_connected(Instant::now());
        let mut s = Session {
            client,
            rx,
            tx,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            events: Vec::new(),
        };
        s.drain().await?;
        loop {
            let mut logged_in = false;
            for ev in s.events.drain(..) {
                match ev {
                    Event::LoginSuccess { .. } => logged_in = true,
                    Event::LoginFailed { ecode } => {
                        return Err(format!("login of {account} failed with code {ecode}"));
                    }
                    _ => {}
                }
            }
            if logged_in {
                return Ok(s);
            }
            s.step(std::future::pending()).await?;
        }
    }

    /// Waits for a frame, the client's timer or `wake`; handles what came and carries out what
    /// the client asks. Events are left in `self.events`.
    async fn step(&mut self, wake: impl Future<Output = ()>) -> Result<(), String> {
        let want = self.client.poll_timeout();
        if want != self.armed {
            if let Some(at) = want {
                self.timer.as_mut().reset(at.into());
            }
            self.armed = want;
        }
        let armed = self.armed.is_some();
        tokio::select! {
            biased;
            () = &mut self.timer, if armed => {
                self.armed = None;
                self.client.handle_timeout(Instant::now());
            }
            r = self.rx.read_frame() => {
                // One clock reading for the frames of one read: they arrived together.
                let now = Instant::now();
                self.frame(r, now)?;
                for _ in 1..READ_BATCH {
                    match self.rx.try_buffered() {
                        Some(frame) => self.client.handle_frame(&frame, now),
                        None => break,
                    }
                }
            }
            () = wake => {}
        }
        self.drain().await
    }

    fn frame(&mut self, r: std::io::Result<Option<Bytes>>, now: Instant) -> Result<(), String> {
        match r {
            Ok(Some(frame)) => {
                self.client.handle_frame(&frame, now);
                Ok(())
            }
            Ok(None) => Err("the server closed the connection".into()),
            Err(e) => Err(format!("the connection failed: {e}")),
        }
    }

    /// Carries out the client's outputs: connection commands, frames (flushed once), events.
    async fn drain(&mut self) -> Result<(), String> {
        let mut close = false;
        while let Some(cmd) = self.client.poll_connection() {
            match cmd {
                ConnectionCommand::Close => close = true,
                ConnectionCommand::Open => {
                    let why: Vec<Event> = std::iter::from_fn(|| self.client.poll_event()).collect();
                    return Err(format!("the session was lost: {why:?}"));
                }
            }
        }
        let mut wrote = false;
        while let Some(frame) = self.client.poll_transmit() {
            self.tx
                .write_frame(&frame, &[])
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
            wrote = true;
        }
        if close {
            let _ = self.tx.shutdown().await;
        } else if wrote {
            self.tx
                .flush()
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
        }
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
        Ok(())
    }

    /// Logs out and waits for the session to end.
    async fn logout(mut self) -> Result<(), String> {
        self.client.logout(Instant::now());
        self.drain().await?;
        loop {
            if self
                .events
                .iter()
                .any(|e| matches!(e, Event::Logout { .. }))
            {
                return Ok(());
            }
            self.events.clear();
            self.step(std::future::pending()).await?;
        }
    }

    /// Joins the benchmark channel and waits for the answer.
    async fn join(&mut self) -> Result<(), String> {
        self.client.channel_join(CHANNEL, Instant::now());
        self.drain().await?;
        loop {
            for ev in self.events.drain(..) {
                match ev {
                    Event::ChannelJoined { .. } => return Ok(()),
                    Event::ChannelJoinFailed { ecode, .. } => {
                        return Err(format!("joining {CHANNEL} failed with code {ecode}"));
                    }
                    _ => {}
                }
            }
            self.step(std::future::pending()).await?;
        }
    }
}

impl<const NODES: usize> Beckon<NODES> {
    /// Logs in as the seat's account on its node and joins the channel if asked; what the
    /// server sent meanwhile is dropped.
    async fn session(&self, seat: &Seat) -> Result<Session, String> {
        let mut s = Session::login(&self.0, &seat.account, seat.node).await?;
        if seat.joins {
            s.join().await?;
        }
        s.events.clear();
        Ok(s)
    }
}

/// Who a role is in Beckon: pair `i` is `s<i>` sending to `r<i>`; the fan-out has members
/// `m<i>` and a `publisher` that is a member too (a channel message goes to its sender as well;
/// that copy is not counted); idle sessions are `i<n>`. In a cluster, receiver `i` is on node
/// `i` and its sender on node `i + 1` (modulo the nodes), members and idle sessions go round
/// the nodes, and the publisher is on the first.
#[derive(Debug, PartialEq)]
struct Seat {
    account: String,
    /// The node it logs in to, modulo the nodes.
    node: usize,
    /// Whether it joins the fan-out channel.
    joins: bool,
    /// Whom it sends to, if it sends.
    to: Option<To>,
}

impl Seat {
    fn of(role: Role) -> Self {
        let (account, node, joins, to) = match role {
            Role::P2pReceiver(i) => (format!("r{i}"), i, false, None),
            Role::P2pSender { pair, .. } => {
                let to = To::Account(Seat::of(Role::P2pReceiver(pair)).account);
                (format!("s{pair}"), pair + 1, false, Some(to))
            }
            Role::FanoutMember(i) => (format!("m{i}"), i, true, None),
            Role::FanoutPublisher => ("publisher".into(), 0, true, Some(To::Channel)),
            Role::Idle(i) => (format!("i{i}"), i, false, None),
        };
        Seat {
            account,
            node,
            joins,
            to,
        }
    }
}

/// Whom a sender sends to.
#[derive(Clone, Debug, PartialEq)]
enum To {
    Account(String),
    Channel,
}

/// A sender: a message is confirmed when it was delivered and its success reply came back.
pub(crate) struct BeckonSender {
    session: Session,
    to: To,
    succeeded: u64,
}

impl BeckonSender {
    /// Counts the success replies among the events; a failed send fails the sender.
    fn take_replies(&mut self) -> Result<(), String> {
        for ev in self.session.events.drain(..) {
            match ev {
                Event::MessageSendSuccess { .. } => self.succeeded += 1,
                Event::MessageSendError { ecode, .. } => {
                    return Err(format!("a send failed with code {ecode}"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl<const NODES: usize> Driver for Beckon<NODES> {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "NODES is at most MAX_NODES"
    )]
    const SYSTEM: System = if NODES == 0 {
        System::Beckon
    } else {
        System::Cluster(NODES as u8)
    };
    type Receiver = Session;
    type Sender = BeckonSender;

    fn start(ctx: &Ctx<'_>, _shape: Shape) -> Result<(ServerProc, Self), String> {
        let (proc, target) = start(ctx, NODES)?;
        Ok((proc, Beckon(Arc::new(target))))
    }

    async fn receiver(&self, role: Role) -> Result<Session, String> {
        self.session(&Seat::of(role)).await
    }

    async fn sender(&self, role: Role) -> Result<BeckonSender, String> {
        let seat = Seat::of(role);
        let session = self.session(&seat).await?;
        let to = seat.to.ok_or_else(|| format!("{role:?} does not send"))?;
        Ok(BeckonSender {
            session,
            to,
            succeeded: 0,
        })
    }

    /// A fresh connection, a login with a token the server verifies, a logout; worker `w`
    /// logs in to node `w` (modulo the nodes).
    async fn login(&self, worker: usize) -> Result<(), String> {
        Session::login(&self.0, &format!("l{worker}"), worker)
            .await?
            .logout()
            .await
    }
}

/// A receiver counts every instant or channel message; its other events (and those of an
/// idle session) are dropped, its heartbeats kept going.
impl driver::Receiver for Session {
    async fn receive(&mut self, tally: &mut Tally) -> Result<(), String> {
        self.step(std::future::pending()).await?;
        for ev in self.events.drain(..) {
            match ev {
                Event::MessageInstantReceive { msg, .. }
                | Event::MessageChannelReceive { msg, .. } => tally.add(msg.as_bytes()),
                _ => {}
            }
        }
        Ok(())
    }
}

impl driver::Sender for BeckonSender {
    fn confirmed(&self, delivered: u64) -> u64 {
        delivered.min(self.succeeded)
    }

    async fn send(&mut self, n: u64, payload: &mut Payload) -> Result<(), String> {
        let (s, now) = (&mut self.session, Instant::now());
        for _ in 0..n {
            let body = payload.stamp_str();
            match &self.to {
                To::Account(peer) => s.client.message_instant_send(peer, body, "", now),
                To::Channel => s.client.message_channel_send(CHANNEL, body, "", now),
            };
        }
        s.drain().await?;
        self.take_replies()
    }

    async fn wait(&mut self, gate: &mut Gate) -> Result<(), String> {
        self.session.step(gate.changed()).await?;
        self.take_replies()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn seats_pair_senders_with_their_receivers_and_keep_accounts_apart() {
        let pairs = 4;
        let mut accounts = HashSet::new();
        for pair in 0..pairs {
            let receiver = Seat::of(Role::P2pReceiver(pair));
            let sender = Seat::of(Role::P2pSender { pair, pairs });
            assert_eq!(sender.to, Some(To::Account(receiver.account.clone())));
            assert_eq!(
                (receiver.joins, sender.joins, receiver.to),
                (false, false, None)
            );
            assert_eq!(sender.node, receiver.node + 1, "a pair spans two nodes");
            accounts.extend([receiver.account, sender.account]);
        }
        assert_eq!(accounts.len(), 2 * pairs, "{accounts:?}");

        let publisher = Seat::of(Role::FanoutPublisher);
        assert_eq!((publisher.joins, publisher.to), (true, Some(To::Channel)));
        assert_eq!(publisher.node, 0);
        // Members go round the nodes: with N nodes, member i is on node i % N.
        let members: HashSet<String> = (0..10)
            .map(|i| (i, Seat::of(Role::FanoutMember(i))))
            .inspect(|(i, m)| assert!(m.joins && m.to.is_none() && m.node == *i))
            .map(|(_, m)| m)
            .map(|m| m.account)
            .collect();
        assert_eq!(members.len(), 10);
        assert!(!members.contains(&publisher.account));
        let idle = Seat::of(Role::Idle(3));
        assert_eq!((idle.joins, idle.to), (false, None));
    }
}
