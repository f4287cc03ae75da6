//! The deterministic simulation harness: N sans-IO clients and one broker on virtual time.
//!
//! [`Sim`] wires [`beckon_client::Client`]s to a [`beckon_broker::Broker`] through simulated
//! links with latency, and jumps a virtual clock from one wake-up to the next, so that thousands
//! of schedules run in seconds with no sockets and no sleeping. Links are FIFO (like a stream
//! transport); the broker's store batches are carried out after a latency of their own, in
//! order, as the server's store thread does. Faults are injected with [`Sim::cut`], and the
//! server itself can be killed ([`Sim::crash`]: what the store had not committed is lost) or
//! restarted ([`Sim::restart`]). Every run is a pure function of its seed and the operations
//! applied. [`wire`] drives a broker with raw frames instead, as an untrusted client or a
//! benchmark does. It is test support, not a product crate.
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

use beckon_broker::{Apps, Broker, BrokerConfig, ConnId, MemoryStore, Output, Store, StoreBatch};
use beckon_client::{Client, ClientConfig, ConnectionCommand, Event, Rng};

pub mod wire;

/// The App ID every simulated client logs in to.
pub const APP_ID: &str = "sim";

/// The Unix time (ms) the simulation starts at.
const UNIX_START_MS: u64 = 1_700_000_000_000;

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
    /// The store has carried out a batch of the broker of `epoch`.
    Committed {
        epoch: u64,
        batch: StoreBatch,
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

/// Knobs of the simulated network and store.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// One-way latency is drawn uniformly from this range (FIFO order is kept per link).
    pub min_latency: Duration,
    pub max_latency: Duration,
    /// How long the store takes over a batch, drawn uniformly up to this (batches complete in
    /// order).
    pub max_store_latency: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(20),
            max_store_latency: Duration::from_millis(5),
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
    /// The server is killed ([`Sim::crash`]).
    Crash,
    /// The server restarts gracefully ([`Sim::restart`]).
    Restart,
}

/// A broker and N clients on virtual time.
///
/// It scales to a hundred thousand clients: only the clients something happened to since the
/// last pump are polled (`dirty`), and the clients' timers wait in one heap (entries whose
/// client has re-armed since are skipped when they come up).
#[derive(Debug)]
pub struct Sim {
    start: Instant,
    now: Instant,
    broker: Broker<MemoryStore>,
    config: BrokerConfig,
    /// The store, which outlives brokers (its own handle; the broker's shares it).
    store: MemoryStore,
    /// Which broker this is: deliveries for an earlier one are dropped.
    epoch: u64,
    /// The latest time a store batch completes, so batches complete in order.
    store_clock: Instant,
    /// Stored messages the brokers before this one dropped for their age.
    expired_before: u64,
    clients: Vec<SimClient>,
    conn_owner: HashMap<ConnId, usize>,
    /// Per link direction, the latest delivery time, so links stay FIFO.
    link_clock: HashMap<(ConnId, bool), Instant>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    order: u64,
    next_conn: u64,
    rng: Rng,
    net: NetConfig,
    /// Clients to poll at the next pump, each once.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    /// (when, client) of the clients' timers; `armed` says which entry is current.
    client_timers: BinaryHeap<Reverse<(Instant, usize)>>,
    armed: Vec<Option<Instant>>,
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
        let store = MemoryStore::new();
        Self {
            start,
            now: start,
            broker: Broker::new(config.clone(), store.clone(), start, UNIX_START_MS),
            config,
            store,
            epoch: 0,
            store_clock: start,
            expired_before: 0,
            clients: Vec::new(),
            conn_owner: HashMap::new(),
            link_clock: HashMap::new(),
            queue: BinaryHeap::new(),
            order: 0,
            next_conn: 1,
            rng: Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            net,
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            client_timers: BinaryHeap::new(),
            armed: Vec::new(),
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
        self.is_dirty.push(false);
        self.armed.push(None);
        self.touch(idx);
        idx
    }

    /// Something may have happened to client `idx`: poll it at the next pump.
    fn touch(&mut self, idx: usize) {
        if !self.is_dirty[idx] {
            self.is_dirty[idx] = true;
            self.dirty.push(idx);
        }
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
        self.touch(idx);
        &mut self.clients[idx].client
    }

    /// Calls an API method of a client at the current virtual time.
    pub fn act<R>(&mut self, idx: usize, f: impl FnOnce(&mut Client, Instant) -> R) -> R {
        let now = self.now;
        self.touch(idx);
        f(&mut self.clients[idx].client, now)
    }

    pub fn broker(&self) -> &Broker<MemoryStore> {
        &self.broker
    }

    /// The store, as the broker's batches left it.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Kills the server, as `kill -9` would: every connection breaks at once, whatever was in
    /// flight to the server and every store batch not yet carried out is lost. A new server
    /// starts at once on the same store (with a new secret, as a new process would have).
    pub fn crash(&mut self) {
        let now = self.now;
        for idx in 0..self.clients.len() {
            if let Some(conn) = self.clients[idx].conn.take() {
                self.conn_owner.remove(&conn);
                self.forget_link(conn);
                self.clients[idx].client.handle_disconnected(now);
                self.touch(idx);
            }
        }
        self.replace_broker();
    }

    /// Restarts the server gracefully, as SIGTERM and a new process would: the store's batches
    /// under way complete, the broker shuts down (clients are told to come back later), its
    /// last batch is carried out, and a new server starts on the same store. What clients had
    /// in flight to the old server is not read.
    pub fn restart(&mut self) {
        self.pump();
        self.finish_store();
        self.broker.shutdown(Duration::from_secs(2));
        self.pump();
        self.finish_store();
        self.replace_broker();
    }

    /// Carries out, now and in order, every store batch under way, and what their answers
    /// lead to.
    fn finish_store(&mut self) {
        loop {
            let mut pending = Vec::new();
            let mut rest = BinaryHeap::new();
            for Reverse(s) in std::mem::take(&mut self.queue) {
                match s.delivery {
                    Delivery::Committed { epoch, batch } if epoch == self.epoch => {
                        pending.push(batch);
                    }
                    delivery => rest.push(Reverse(Scheduled { delivery, ..s })),
                }
            }
            self.queue = rest;
            while let Some(batch) = self.broker.poll_store() {
                pending.push(batch);
            }
            if pending.is_empty() {
                return;
            }
            pending.sort_by_key(|b| b.id);
            for batch in pending {
                self.commit(batch);
            }
            self.pump_outputs_only();
        }
    }

    fn commit(&mut self, batch: StoreBatch) {
        for done in self.store.execute(vec![batch]) {
            self.broker.handle_store_done(done);
        }
    }

    fn replace_broker(&mut self) {
        self.expired_before += self.broker.stats().offline_expired;
        self.epoch += 1;
        let secret = self.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes();
        let mut next = *self.config.server_secret.expose();
        for (i, b) in next.iter_mut().enumerate() {
            *b ^= secret[i % 8];
        }
        self.config.server_secret = next.into();
        let unix_ms = UNIX_START_MS + u64::try_from(self.elapsed().as_millis()).unwrap_or(0);
        let mut broker = Broker::new(self.config.clone(), self.store.clone(), self.now, unix_ms);
        broker.recovered(self.store.recover().expect("the memory store recovers"));
        self.broker = broker;
        self.store_clock = self.now;
    }

    /// Stored messages every broker of this simulation dropped for their age (SPEC §6).
    pub fn offline_expired(&self) -> u64 {
        self.expired_before + self.broker.stats().offline_expired
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
        self.touch(idx);
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
        self.forget_link(conn);
        let now = self.now;
        self.broker.disconnect(conn, now);
        self.clients[idx].client.handle_disconnected(now);
        self.touch(idx);
    }

    /// The connection is closed: nothing more is scheduled on it.
    fn forget_link(&mut self, conn: ConnId) {
        self.link_clock.remove(&(conn, true));
        self.link_clock.remove(&(conn, false));
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
            Disturbance::Crash => self.crash(),
            Disturbance::Restart => self.restart(),
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

    fn next_timer(&mut self) -> Option<Instant> {
        [self.next_client_timer(), self.broker.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The earliest current client timer (stale entries are dropped on the way).
    fn next_client_timer(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, idx))) = self.client_timers.peek().copied() {
            if self.armed[idx] == Some(at) {
                return Some(at);
            }
            self.client_timers.pop();
        }
        None
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        if self.broker.poll_timeout().is_some_and(|t| t <= now) {
            self.broker.handle_timeout(now);
        }
        while let Some(at) = self.next_client_timer().filter(|at| *at <= now) {
            let Some(Reverse((_, idx))) = self.client_timers.pop() else {
                break;
            };
            debug_assert_eq!(self.armed[idx], Some(at));
            self.armed[idx] = None;
            self.clients[idx].client.handle_timeout(now);
            self.touch(idx);
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
            while let Some(idx) = self.dirty.pop() {
                self.is_dirty[idx] = false;
                progressed |= self.pump_client(idx);
            }
            progressed |= self.pump_outputs_only();
            if !progressed && self.dirty.is_empty() {
                return;
            }
        }
    }

    /// Schedules the broker's outputs and store batches; whether there were any.
    fn pump_outputs_only(&mut self) -> bool {
        let mut progressed = false;
        while let Some(batch) = self.broker.poll_store() {
            progressed = true;
            let max = u64::try_from(self.net.max_store_latency.as_micros()).unwrap_or(0);
            let lat = Duration::from_micros(if max == 0 {
                0
            } else {
                self.next_random() % max
            });
            let at = (self.now + lat).max(self.store_clock);
            self.store_clock = at;
            self.order += 1;
            let epoch = self.epoch;
            self.queue.push(Reverse(Scheduled {
                at,
                order: self.order,
                delivery: Delivery::Committed { epoch, batch },
            }));
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
        progressed
    }

    /// Carries out what client `idx` asks for and re-arms its timer; whether it asked anything.
    fn pump_client(&mut self, idx: usize) -> bool {
        let mut progressed = false;
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
        let timer = self.clients[idx].client.poll_timeout();
        if timer != self.armed[idx] {
            self.armed[idx] = timer;
            if let Some(at) = timer {
                self.client_timers.push(Reverse((at, idx)));
            }
        }
        progressed
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        match d {
            Delivery::Connected { client, conn } => {
                if self.clients[client].conn == Some(conn) {
                    self.broker.connect(conn, now);
                    self.clients[client].client.handle_connected(now);
                    self.touch(client);
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
                    self.touch(client);
                }
            }
            Delivery::ClosedByBroker { client, conn } => {
                self.forget_link(conn);
                if self.clients[client].conn == Some(conn) {
                    self.clients[client].conn = None;
                    self.conn_owner.remove(&conn);
                    self.clients[client].client.handle_disconnected(now);
                    self.touch(client);
                }
            }
            Delivery::ClosedByClient { conn } => {
                self.forget_link(conn);
                self.broker.disconnect(conn, now);
            }
            Delivery::Committed { epoch, batch } => {
                if epoch == self.epoch {
                    self.commit(batch);
                }
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
