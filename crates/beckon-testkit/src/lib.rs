//! The deterministic simulation harness: N sans-IO clients and one broker on virtual time.
//!
//! [`Sim`] wires [`beckon_client::Client`]s to a [`beckon_broker::Broker`] through simulated
//! links with latency, and jumps a virtual clock from one wake-up to the next, so that thousands
//! of schedules run in seconds with no sockets and no sleeping. Links are FIFO (like a stream
//! transport); faults are injected with [`Sim::cut`]. Every run is a pure function of its seed
//! and the operations applied. [`wire`] drives a broker with raw frames instead, as an
//! untrusted client or a benchmark does. It is test support, not a product crate.
//!
//! ```
//! use beckon_client::{Event, Status};
//! use beckon_testkit::Sim;
//!
//! let mut sim = Sim::new(7);
//! let alice = sim.add_client();
//! let bob = sim.add_client();
//! sim.login(alice, "alice");
//! sim.login(bob, "bob");
//! sim.run_until_idle();
//! sim.act(alice, |c, now| c.message_instant_send("bob", "hi", "m1", now));
//! sim.run_until_idle();
//! assert!(sim.events(bob).iter().any(|e| matches!(e,
//!     Event::MessageInstantReceive { account, msg, .. } if account == "alice" && msg == "hi")));
//! assert!(sim.events(alice).contains(&Event::MessageSendSuccess { message_id: "m1".into() }));
//! assert_eq!(sim.client(bob).status(), Status::LoggedIn);
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore, Output};
use beckon_client::{Client, ClientConfig, ConnectionCommand, Event, Rng};

pub mod wire;

/// The App ID every simulated client logs in to.
pub const APP_ID: &str = "sim";

#[derive(Debug)]
enum Delivery {
    /// The connection reached the broker and the client learns it is up.
    Connected {
        client: usize,
        conn: ConnId,
    },
    ToBroker {
        conn: ConnId,
        payload: Bytes,
    },
    ToClient {
        client: usize,
        conn: ConnId,
        payload: Bytes,
    },
    /// The broker closed the connection; the client notices after the frames before it.
    ClosedByBroker {
        client: usize,
        conn: ConnId,
    },
    /// The client closed the connection; the broker notices after the frames before it.
    ClosedByClient {
        conn: ConnId,
    },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    order: u64,
    delivery: Delivery,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Debug)]
struct SimClient {
    client: Client,
    conn: Option<ConnId>,
    events: Vec<Event>,
}

/// Knobs of the simulated network.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// One-way latency is drawn uniformly from this range (FIFO order is kept per link).
    pub min_latency: Duration,
    pub max_latency: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(20),
        }
    }
}

/// What a schedule does to a client's session or to time besides API calls: the steps the
/// property tests share ([`Sim::disturb`]).
#[derive(Clone, Copy, Debug)]
pub enum Disturbance {
    /// The client calls `logout`.
    Logout(usize),
    /// The client logs in (again) as its account.
    Login(usize),
    /// The client's connection breaks ([`Sim::cut`]).
    Cut(usize),
    /// Virtual time moves on by this many milliseconds.
    Advance(u64),
    /// This many [`Sim::step`]s.
    Steps(u8),
}

/// A broker and N clients on virtual time.
#[derive(Debug)]
pub struct Sim {
    start: Instant,
    now: Instant,
    broker: Broker<MemoryStore>,
    clients: Vec<SimClient>,
    conn_owner: HashMap<ConnId, usize>,
    /// Per link direction, the latest delivery time, so links stay FIFO.
    link_clock: HashMap<(ConnId, bool), Instant>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    next_conn: u64,
    rng: Rng,
    net: NetConfig,
}

impl Sim {
    /// A simulation with a development-mode broker and default network.
    pub fn new(seed: u64) -> Self {
        Self::with_config(
            seed,
            BrokerConfig::new(Apps::development(), [seed as u8; 32]),
            NetConfig::default(),
        )
    }

    pub fn with_config(seed: u64, config: BrokerConfig, net: NetConfig) -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            broker: Broker::new(config, MemoryStore::new(), start, 1_700_000_000_000),
            clients: Vec::new(),
            conn_owner: HashMap::new(),
            link_clock: HashMap::new(),
            queue: BinaryHeap::new(),
            order: 0,
            next_conn: 1,
            rng: Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            net,
        }
    }

    /// A simulation of [`Sim::new`] with one client per account (client `i` is `accounts[i]`),
    /// each logged in, run until idle.
    pub fn logged_in(seed: u64, accounts: &[&str]) -> Self {
        let mut sim = Self::new(seed);
        for account in accounts {
            let idx = sim.add_client();
            sim.login(idx, account);
        }
        sim.run_until_idle();
        sim
    }

    /// Adds a client; returns its index.
    pub fn add_client(&mut self) -> usize {
        let idx = self.clients.len();
        let config = ClientConfig {
            seed: self.next_random(),
            ..ClientConfig::default()
        };
        self.clients.push(SimClient {
            client: Client::new(config, self.now),
            conn: None,
            events: Vec::new(),
        });
        idx
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The client, to call API methods on (pass [`Sim::now`] as the time).
    pub fn client(&mut self, idx: usize) -> &mut Client {
        &mut self.clients[idx].client
    }

    /// Calls an API method of a client at the current virtual time.
    pub fn act<R>(&mut self, idx: usize, f: impl FnOnce(&mut Client, Instant) -> R) -> R {
        let now = self.now;
        f(&mut self.clients[idx].client, now)
    }

    pub fn broker(&self) -> &Broker<MemoryStore> {
        &self.broker
    }

    /// Every event the client reported so far.
    pub fn events(&self, idx: usize) -> &[Event] {
        &self.clients[idx].events
    }

    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Logs the client in to [`APP_ID`] as `account` with `_no_need_token`.
    pub fn login(&mut self, idx: usize, account: &str) {
        let now = self.now;
        self.clients[idx]
            .client
            .login(APP_ID, account, beckon_proto::NO_TOKEN, "", now);
    }

    /// Sends an instant message from client `from` to `account` whose body is its id.
    pub fn send(&mut self, from: usize, account: &str, id: &str) {
        self.act(from, |c, now| c.message_instant_send(account, id, id, now));
    }

    /// The bodies of the instant messages client `idx` received, in order.
    pub fn received(&self, idx: usize) -> Vec<String> {
        let bodies = self.events(idx).iter().filter_map(|e| match e {
            Event::MessageInstantReceive { msg, .. } => Some(msg.clone()),
            _ => None,
        });
        bodies.collect()
    }

    /// How many of client `idx`'s events `want` matches.
    pub fn count(&self, idx: usize, want: impl Fn(&Event) -> bool) -> usize {
        self.events(idx).iter().filter(|e| want(e)).count()
    }

    /// Breaks the client's connection at once, as a network failure would: both ends notice
    /// immediately and whatever was in flight is lost.
    pub fn cut(&mut self, idx: usize) {
        let Some(conn) = self.clients[idx].conn.take() else {
            return;
        };
        self.conn_owner.remove(&conn);
        let now = self.now;
        self.broker.disconnect(conn, now);
        self.clients[idx].client.handle_disconnected(now);
    }

    /// Runs every output, then processes the next scheduled thing; false when nothing is left.
    pub fn step(&mut self) -> bool {
        self.pump();
        let next_delivery = self.queue.peek().map(|Reverse(s)| s.at);
        let next_timer = self.next_timer();
        let at = match (next_delivery, next_timer) {
            (None, None) => return false,
            (Some(d), None) => d,
            (None, Some(t)) => t,
            (Some(d), Some(t)) => d.min(t),
        };
        if at > self.now {
            self.now = at;
        }
        if next_delivery == Some(at) {
            if let Some(Reverse(s)) = self.queue.pop() {
                self.deliver(s.delivery);
            }
        } else {
            self.fire_timers();
        }
        self.pump();
        true
    }

    /// Applies `d`; client `i` logs in as `accounts[i]`.
    pub fn disturb(&mut self, d: Disturbance, accounts: &[&str]) {
        match d {
            Disturbance::Logout(c) => self.act(c, |cl, now| cl.logout(now)),
            Disturbance::Login(c) => self.login(c, accounts[c]),
            Disturbance::Cut(c) => self.cut(c),
            Disturbance::Advance(ms) => self.advance(Duration::from_millis(ms)),
            Disturbance::Steps(n) => self.steps(n),
        }
    }

    /// Runs until idle, lets `d` of virtual time pass, and runs until idle again.
    pub fn settle(&mut self, d: Duration) {
        self.run_until_idle();
        self.advance(d);
        self.run_until_idle();
    }

    /// [`step`](Self::step)s `n` times.
    pub fn steps(&mut self, n: u8) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Collects every client's pending outputs and events without advancing time.
    pub fn flush(&mut self) {
        self.pump();
    }

    /// Steps until nothing but far-off timers (heartbeats) remain.
    pub fn run_until_idle(&mut self) {
        let limit = self.now + Duration::from_secs(3);
        for _ in 0..1_000_000 {
            self.pump();
            if self.queue.is_empty() && self.next_timer().is_none_or(|t| t > limit) {
                return;
            }
            if !self.step() {
                return;
            }
        }
        panic!("the simulation did not settle");
    }

    /// Advances virtual time by `d`, processing everything due on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.pump();
            let next = [self.queue.peek().map(|Reverse(s)| s.at), self.next_timer()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = until;
        self.fire_timers();
        self.pump();
    }

    fn next_timer(&self) -> Option<Instant> {
        let clients = self.clients.iter().filter_map(|c| c.client.poll_timeout());
        clients.chain(self.broker.poll_timeout()).min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
        }
        for c in &mut self.clients {
            if c.client.poll_timeout().is_some_and(|t| t <= now) {
                c.client.handle_timeout(now);
            }
        }
    }

    fn latency(&mut self) -> Duration {
        let span = self.net.max_latency.saturating_sub(self.net.min_latency);
        let micros = u64::try_from(span.as_micros()).unwrap_or(0);
        let extra = if micros == 0 {
            0
        } else {
            self.next_random() % micros
        };
        self.net.min_latency + Duration::from_micros(extra)
    }

    fn schedule(&mut self, conn: ConnId, to_broker: bool, delivery: Delivery) {
        let lat = self.latency();
        let key = (conn, to_broker);
        let earliest = self.link_clock.get(&key).copied().unwrap_or(self.now);
        let at = (self.now + lat).max(earliest);
        self.link_clock.insert(key, at);
        self.order += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            order: self.order,
            delivery,
        }));
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for idx in 0..self.clients.len() {
                while let Some(cmd) = self.clients[idx].client.poll_connection() {
                    progressed = true;
                    match cmd {
                        ConnectionCommand::Open => {
                            let conn = ConnId(self.next_conn);
                            self.next_conn += 1;
                            if let Some(old) = self.clients[idx].conn.replace(conn) {
                                self.conn_owner.remove(&old);
                            }
                            self.conn_owner.insert(conn, idx);
                            self.schedule(conn, true, Delivery::Connected { client: idx, conn });
                        }
                        ConnectionCommand::Close => {
                            if let Some(conn) = self.clients[idx].conn.take() {
                                self.conn_owner.remove(&conn);
                                self.schedule(conn, true, Delivery::ClosedByClient { conn });
                            }
                        }
                    }
                }
                while let Some(payload) = self.clients[idx].client.poll_transmit() {
                    progressed = true;
                    if let Some(conn) = self.clients[idx].conn {
                        self.schedule(conn, true, Delivery::ToBroker { conn, payload });
                    }
                }
                while let Some(ev) = self.clients[idx].client.poll_event() {
                    progressed = true;
                    self.clients[idx].events.push(ev);
                }
            }
            while let Some(out) = self.broker.poll_output() {
                progressed = true;
                match out {
                    Output::Send { conn, frame } => {
                        if let Some(&client) = self.conn_owner.get(&conn) {
                            let payload = frame.to_bytes();
                            self.schedule(
                                conn,
                                false,
                                Delivery::ToClient {
                                    client,
                                    conn,
                                    payload,
                                },
                            );
                        }
                    }
                    Output::Close { conn, .. } => {
                        if let Some(&client) = self.conn_owner.get(&conn) {
                            self.schedule(conn, false, Delivery::ClosedByBroker { client, conn });
                        }
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Connected { client, conn } => {
                if self.clients[client].conn == Some(conn) {
                    self.broker.connect(conn, now);
                    self.clients[client].client.handle_connected(now);
                }
            }
            Delivery::ToBroker { conn, payload } => self.broker.handle_frame(conn, &payload, now),
            Delivery::ToClient {
                client,
                conn,
                payload,
            } => {
                if self.clients[client].conn == Some(conn) {
                    self.clients[client].client.handle_frame(&payload, now);
                }
            }
            Delivery::ClosedByBroker { client, conn } => {
                if self.clients[client].conn == Some(conn) {
                    self.clients[client].conn = None;
                    self.conn_owner.remove(&conn);
                    self.clients[client].client.handle_disconnected(now);
                }
            }
            Delivery::ClosedByClient { conn } => self.broker.disconnect(conn, now),
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
