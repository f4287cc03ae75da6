//! Beckon under load: the release `beckon-server` as a child process, and a lean driver of the
//! sans-IO `beckon-client` over `beckon-transport` for the load generator.
//!
//! The driver is the SDK's driver (`beckon-sdk/src/driver.rs`) without what a benchmark does
//! not need: no command channel, no reader task, no callbacks, no reconnects. One task owns a
//! [`Session`]: it waits for a frame, the client's timer or its own wake-up, hands frames to
//! the client (up to [`READ_BATCH`] already buffered ones at a time), writes what the client
//! transmits and flushes once. A lost connection is an error, not a reconnect.
//!
//! The server runs with a configured app and certificate, so every login verifies a real
//! token minted with `beckon-token`; acknowledgements and success replies stay on. The only
//! limits raised are the channel message rates (60 per user and 200 per channel per second by
//! default), which would otherwise cap the fan-out shape.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::time::Sleep;

use beckon_client::{Client, ClientConfig, ConnectionCommand, Event};
use beckon_token::{Privileges, TokenClaims};
use beckon_transport::{ClientTls, Endpoint, FrameRx, FrameTx, Scheme};

use crate::load::{Flow, Gate, Payload, Shared, Tally, Tasks};
use crate::procs::{Pinning, Ready, ServerProc, TempFile};

/// The App ID the benchmark logs in to.
const APP_ID: &str = "bench";
/// The channel of the fan-out shape.
const CHANNEL: &str = "fanout";
/// Frames handled before the output is flushed.
const READ_BATCH: usize = 64;
/// Server message ids each client remembers to drop re-deliveries. Re-deliveries follow only
/// a resumed session, which a benchmark never has; the SDK's 4,096 would cost the load
/// generator a cache miss per message (a thousand fan-out members hold 40 MB of id sets)
/// without changing a byte on the wire.
const DEDUP_WINDOW: usize = 64;
/// The largest frame accepted from the server (as the SDK).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A running `beckon-server` and how to log in to it.
#[derive(Debug)]
pub(crate) struct BeckonServer {
    pub(crate) proc: ServerProc,
    pub(crate) target: Arc<Target>,
    _config: TempFile,
}

/// Where and how sessions log in.
#[derive(Debug)]
pub(crate) struct Target {
    endpoint: Endpoint,
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

/// Starts `bin --ephemeral --config <file> --listen <scheme>://127.0.0.1:0` and waits for its
/// "listening on" line.
pub(crate) fn start(bin: &Path, pinning: &Pinning, scheme: Scheme) -> Result<BeckonServer, String> {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id());
    let certificate = format!("{seed:032x}");
    let config = TempFile::new(
        "beckon.toml",
        &format!(
            "ephemeral = true\n\
             [[apps]]\n\
             app_id = \"{APP_ID}\"\n\
             certificate = \"{certificate}\"\n\
             channel_messages_per_user = 1000000000\n\
             channel_messages_per_channel = 1000000000\n"
        ),
    )?;
    let listen = match scheme {
        Scheme::Ws => "ws://127.0.0.1:0/ws".to_owned(),
        other => format!("{other}://127.0.0.1:0"),
    };
    let mut cmd = pinning.command(bin);
    cmd.arg("--ephemeral")
        .arg("--config")
        .arg(config.path())
        .arg("--listen")
        .arg(&listen)
        .env("RUST_LOG", "warn");
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
    Ok(BeckonServer {
        proc,
        target: Arc::new(Target {
            endpoint,
            tls: ClientTls {
                dangerous_accept_any_cert: true,
                ..ClientTls::default()
            },
            certificate,
        }),
        _config: config,
    })
}

/// One logged-in session: the client state machine and its connection.
struct Session {
    client: Client,
    rx: FrameRx,
    tx: FrameTx,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    events: Vec<Event>,
}

impl Session {
    /// Connects and logs in as `account` with a freshly minted token.
    async fn login(target: &Target, account: &str) -> Result<Session, String> {
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
        let (rx, tx) = if target.endpoint.scheme == Scheme::Tcp {
            // Loopback TCP from a source address of its own per connection: with one source
            // address, every connect scans the same crowded port range (the login shape leaves
            // thousands of TIME_WAIT sockets behind), and the generator's kernel time goes there.
            let stream = connect_spread(&target.endpoint)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", target.endpoint))?;
            beckon_transport::from_tcp(stream, MAX_FRAME)
                .map_err(|e| format!("cannot set up {}: {e}", target.endpoint))?
        } else {
            beckon_transport::connect(&target.endpoint, &target.tls, MAX_FRAME)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", target.endpoint))?
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

/// Logs in `account` (and joins the channel if asked) within the setup limit, then reports
/// ready.
async fn set_up(
    target: &Target,
    shared: &Shared,
    account: &str,
    join: bool,
) -> Result<Session, String> {
    let mut s = {
        let _permit = shared.setup.acquire().await.map_err(|e| e.to_string())?;
        let mut s = Session::login(target, account).await?;
        if join {
            s.join().await?;
        }
        s
    };
    s.events.clear();
    shared.ready.add_permits(1);
    Ok(s)
}

/// A receiver: counts every instant or channel message it gets.
async fn receive(
    target: Arc<Target>,
    shared: Shared,
    flow: Arc<Flow>,
    account: String,
    join: bool,
) -> Result<(), String> {
    let mut s = set_up(&target, &shared, &account, join).await?;
    let mut tally = Tally::new(shared.recorder.clone(), flow);
    loop {
        s.step(std::future::pending()).await?;
        for ev in s.events.drain(..) {
            match ev {
                Event::MessageInstantReceive { msg, .. }
                | Event::MessageChannelReceive { msg, .. } => tally.add(msg.as_bytes()),
                _ => {}
            }
        }
        tally.commit();
    }
}

/// Whom a sender sends to.
#[derive(Clone, Debug)]
enum To {
    Account(String),
    Channel,
}

/// A sender: sends stamped messages as its gate allows; a message is confirmed when it was
/// delivered and its success reply came back.
#[allow(clippy::too_many_arguments)]
async fn send(
    target: Arc<Target>,
    shared: Shared,
    flow: Arc<Flow>,
    account: String,
    to: To,
    per_message: u64,
    window: u64,
) -> Result<(), String> {
    let mut s = set_up(&target, &shared, &account, matches!(to, To::Channel)).await?;
    let mut gate = Gate::new(shared.control.clone(), flow, per_message, window);
    let mut payload = Payload::new();
    let mut succeeded = 0u64;
    loop {
        let n = gate.quota(gate.delivered().min(succeeded));
        if n > 0 {
            let now = Instant::now();
            for _ in 0..n {
                let body = payload.stamp_str();
                match &to {
                    To::Account(peer) => s.client.message_instant_send(peer, body, "", now),
                    To::Channel => s.client.message_channel_send(CHANNEL, body, "", now),
                };
            }
            gate.sent(n);
            s.drain().await?;
        } else {
            s.step(gate.changed()).await?;
        }
        for ev in s.events.drain(..) {
            match ev {
                Event::MessageSendSuccess { .. } => succeeded += 1,
                Event::MessageSendError { ecode, .. } => {
                    return Err(format!("a send failed with code {ecode}"));
                }
                _ => {}
            }
        }
    }
}

/// The p2p shape: `pairs` receivers `r<i>` and senders `s<i>`, each on its own connection.
pub(crate) fn p2p(
    target: &Arc<Target>,
    shared: &Shared,
    pairs: usize,
    window: u64,
    tasks: &mut Tasks,
) -> Vec<Arc<Flow>> {
    let flows: Vec<Arc<Flow>> = (0..pairs).map(|_| Arc::new(Flow::default())).collect();
    for (i, flow) in flows.iter().enumerate() {
        tasks.spawn(receive(
            target.clone(),
            shared.clone(),
            flow.clone(),
            format!("r{i}"),
            false,
        ));
        tasks.spawn(send(
            target.clone(),
            shared.clone(),
            flow.clone(),
            format!("s{i}"),
            To::Account(format!("r{i}")),
            1,
            window,
        ));
    }
    flows
}

/// The fan-out members `m<i>` (in the channel).
pub(crate) fn fanout_members(
    target: &Arc<Target>,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    tasks: &mut Tasks,
) {
    for i in 0..members {
        tasks.spawn(receive(
            target.clone(),
            shared.clone(),
            flow.clone(),
            format!("m{i}"),
            true,
        ));
    }
}

/// The fan-out publisher: a member too (a channel message goes to its sender as well; that
/// copy is not counted).
pub(crate) fn fanout_publisher(
    target: &Arc<Target>,
    shared: &Shared,
    flow: &Arc<Flow>,
    members: usize,
    window: u64,
    tasks: &mut Tasks,
) {
    tasks.spawn(send(
        target.clone(),
        shared.clone(),
        flow.clone(),
        "publisher".into(),
        To::Channel,
        members as u64,
        window,
    ));
}

/// `sessions` idle sessions `i<n>`, kept alive (heartbeats) until aborted.
pub(crate) fn idle(target: &Arc<Target>, shared: &Shared, sessions: usize, tasks: &mut Tasks) {
    for i in 0..sessions {
        let (target, shared) = (target.clone(), shared.clone());
        tasks.spawn(async move {
            let mut s = set_up(&target, &shared, &format!("i{i}"), false).await?;
            loop {
                s.step(std::future::pending()).await?;
                s.events.clear();
            }
        });
    }
}

/// `conns` workers, each logging in (a fresh connection and token verification), counting the
/// login, logging out, and again.
pub(crate) fn login(
    target: &Arc<Target>,
    conns: usize,
    logins: &Arc<AtomicU64>,
    tasks: &mut Tasks,
) {
    for w in 0..conns {
        let (target, logins) = (target.clone(), logins.clone());
        tasks.spawn(async move {
            let account = format!("l{w}");
            loop {
                let s = Session::login(&target, &account).await?;
                logins.fetch_add(1, Ordering::Relaxed);
                s.logout().await?;
            }
        });
    }
}

/// Connects to a loopback `endpoint` from one of 127.0.0.2–127.0.0.251 in turn, or from the
/// default address when the endpoint is not on 127.0.0.1.
async fn connect_spread(endpoint: &Endpoint) -> std::io::Result<tokio::net::TcpStream> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let addr: std::net::SocketAddr = endpoint
        .authority()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    if addr.ip() != std::net::IpAddr::from([127, 0, 0, 1]) {
        return tokio::net::TcpStream::connect(addr).await;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 250;
    let source = std::net::SocketAddr::from(([127, 0, 0, 2 + n as u8], 0));
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(source)?;
    socket.connect(addr).await
}
