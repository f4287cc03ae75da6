//! Delivery under stress, over real sockets: what one account does to its own messages must
//! cost nobody else anything, and must keep the delivery contract (SPEC §5) for itself.
//!
//! Each test runs a bystander beside the account under stress: a session of its own that only
//! pings and measures how long each pong takes. It must stay connected throughout, and its
//! longest wait (printed) is how long the broker kept everybody else waiting.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use beckon_proto::codec::{decode_server, encode_client};
use beckon_proto::pb::{self, client_frame, event, request::Op, server_frame};
use beckon_server::{Server, ServerConfig, ServerHandle, Storage};

use common::process::TempDir;
use common::{Bystander, BystanderReport, Client};

const APP: &str = "stress";

/// The longest a bystander may wait for a pong. Generous for a loaded machine running a debug
/// build; a broker that stores a backlog one message at a time stalls for tens of seconds.
const BYSTANDER_BOUND: Duration = Duration::from_secs(2);

/// How long one expected frame may take. Long on purpose: a stalled broker is to be measured
/// by the bystander, not cut short here.
const PATIENCE: Duration = Duration::from_secs(180);

/// A development server on 127.0.0.1, over TCP, with `storage`; `tune` adjusts the broker.
async fn server(storage: Storage, tune: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = ServerConfig::development();
    config.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
    config.storage = storage;
    tune(&mut config);
    Server::spawn(config).await.expect("bind 127.0.0.1:0")
}

/// Reports what the bystander saw and checks it stayed connected and was answered in time.
fn check_bystander(test: &str, r: &BystanderReport) {
    eprintln!(
        "{test}: bystander longest wait {:?} over {} pings{}",
        r.longest,
        r.pings,
        r.dropped
            .as_deref()
            .map(|d| format!(", dropped: {d}"))
            .unwrap_or_default()
    );
    assert!(r.dropped.is_none(), "the bystander was dropped: {r:?}");
    assert!(
        r.longest <= BYSTANDER_BOUND,
        "the bystander waited {:?} for an answer (bound {BYSTANDER_BOUND:?})",
        r.longest
    );
}

/// A raw protocol session that reads patiently.
struct Raw {
    c: Client,
    /// Instant messages received, as (sender, body, server id).
    got: Vec<(String, String, u64)>,
    /// The highest event sequence number seen.
    last_seq: u64,
    next_request: u64,
}

impl Raw {
    async fn login(addr: SocketAddr, account: &str) -> Self {
        let c = Self::login_frame(addr, account).await;
        let mut raw = Self {
            c,
            got: Vec::new(),
            last_seq: 0,
            next_request: 1,
        };
        match raw.next().await {
            Some(server_frame::Kind::LoginOk(_)) => raw,
            other => panic!("{account}: expected LoginOk, got {other:?}"),
        }
    }

    /// Sends the login frame without waiting for its answer.
    async fn login_frame(addr: SocketAddr, account: &str) -> Client {
        let mut c = Client::connect(addr).await;
        c.send(client_frame::Kind::Login(pb::Login {
            app_id: APP.into(),
            account: account.into(),
            token: beckon_proto::NO_TOKEN.into(),
            protocol_version: beckon_proto::PROTOCOL_VERSION,
            ..Default::default()
        }))
        .await;
        c
    }

    /// The next frame; `None` once the server closed the connection.
    async fn next(&mut self) -> Option<server_frame::Kind> {
        let read = tokio::time::timeout(PATIENCE, self.c.reader.read_frame())
            .await
            .expect("the server answered in time");
        let kind = match read {
            Ok(Some(bytes)) => decode_server(&bytes).expect("a valid server frame"),
            Ok(None) | Err(_) => return None,
        };
        if let server_frame::Kind::Event(e) = &kind {
            self.last_seq = self.last_seq.max(e.seq);
            if let Some(event::Body::InstantMessage(m)) = &e.body {
                self.got
                    .push((m.sender.clone(), m.msg.clone(), m.server_msg_id));
            }
        }
        Some(kind)
    }

    async fn ack(&mut self) {
        let up_to = self.last_seq;
        self.c
            .send(client_frame::Kind::Ack(pb::Ack { up_to }))
            .await;
    }

    /// Pipelines one request per body, all to `to`; returns their ids.
    async fn send_all(&mut self, to: &str, bodies: impl IntoIterator<Item = String>) -> Vec<u64> {
        let mut ids = Vec::new();
        for msg in bodies {
            let id = self.next_request;
            self.next_request += 1;
            let op = Op::SendInstantMessage(pb::SendInstantMessage {
                account: to.into(),
                msg,
                msg_id: format!("m{id}"),
            });
            let frame = encode_client(client_frame::Kind::Request(pb::Request {
                id,
                op: Some(op),
            }));
            self.c.writer.write_frame(&frame, b"").await.expect("write");
            ids.push(id);
        }
        self.c.writer.flush().await.expect("flush");
        ids
    }

    /// Reads until `n` replies came (acknowledging as it goes) or the server closed the
    /// connection; returns the replies' codes by request id.
    async fn replies(&mut self, n: usize, ack: bool) -> Vec<(u64, i32)> {
        let mut codes = Vec::new();
        while codes.len() < n {
            let Some(kind) = self.next().await else { break };
            if let server_frame::Kind::Event(pb::Event {
                body: Some(event::Body::Reply(r)),
                ..
            }) = kind
            {
                codes.push((r.request_id, r.code));
                if ack && codes.len() % 64 == 0 {
                    self.ack().await;
                }
            }
        }
        if ack {
            self.ack().await;
        }
        codes
    }

    /// Reads (acknowledging) until `n` instant messages have arrived in all.
    async fn receive(&mut self, n: usize) {
        let mut since_ack = 0;
        let mut quiet_since = tokio::time::Instant::now();
        while self.got.len() < n {
            let before = self.got.len();
            match tokio::time::timeout(Duration::from_millis(50), self.next()).await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("closed after {} of {n} messages", self.got.len()),
                Err(_) => {
                    // Nothing more for now: acknowledge, so that the server sends the rest.
                    if since_ack > 0 {
                        self.ack().await;
                        since_ack = 0;
                    }
                    assert!(
                        quiet_since.elapsed() < PATIENCE,
                        "stuck after {} of {n} messages",
                        self.got.len()
                    );
                    continue;
                }
            }
            if self.got.len() > before {
                quiet_since = tokio::time::Instant::now();
            }
            since_ack += self.got.len() - before;
            if since_ack >= 64 {
                self.ack().await;
                since_ack = 0;
            }
        }
        self.ack().await;
    }

    /// The bodies received so far.
    fn bodies(&self) -> Vec<String> {
        self.got.iter().map(|(_, m, _)| m.clone()).collect()
    }
}

fn numbered(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|i| format!("{i:06}"))
}

/// Item: a session that ends holding thousands of unacknowledged messages (a recipient that
/// never reads; an account sending to itself without acknowledging), and logins of an account
/// with a large stored backlog (eight at once, each kicking the one before), must not stall
/// the server: the bystander is answered within seconds throughout, and the backlog arrives
/// whole, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_stall_the_server() {
    const N: usize = 8000;
    const SELF_SENDS: usize = 9000;
    let data = TempDir::new("stall");
    let server = server(Storage::Dir(data.path().to_owned()), |_| {}).await;
    let addr = server.local_addr();
    let bystander = Bystander::start(addr, APP, "bystander", beckon_proto::NO_TOKEN).await;
    let started = std::time::Instant::now();

    // A recipient that never reads: everything it is sent stays unacknowledged.
    let sink = Raw::login(addr, "sink").await;
    let mut source = Raw::login(addr, "source").await;
    source.send_all("sink", numbered(0..N)).await;
    let codes = source.replies(N, true).await;
    assert!(codes.iter().all(|(_, c)| *c == 0), "every send succeeds");

    // Eight logins of the account at once: each ends the session before it (which holds the
    // whole backlog unacknowledged) and is handed the backlog in its turn.
    eprintln!(
        "stall: phase A sent at {:?} {:?}",
        started.elapsed(),
        server.stats().await
    );
    let mut logins = Vec::new();
    for _ in 0..8 {
        logins.push(Raw::login_frame(addr, "sink").await);
    }
    // A ninth, once they are all in, reads everything.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut last = Raw::login(addr, "sink").await;
    last.receive(N).await;
    assert_eq!(
        last.bodies(),
        numbered(0..N).collect::<Vec<_>>(),
        "the backlog arrives whole, in order, once"
    );
    drop((sink, logins));
    eprintln!(
        "stall: phase A done at {:?} {:?}",
        started.elapsed(),
        server.stats().await
    );

    // An account that sends to itself and never acknowledges: its session holds thousands of
    // its messages unacknowledged when it ends (it overflows, or the next login kicks it).
    let mut selfie = Raw::login(addr, "selfie").await;
    selfie.send_all("selfie", numbered(0..SELF_SENDS)).await;
    let codes = selfie.replies(SELF_SENDS, false).await;
    drop(selfie);
    let succeeded: Vec<String> = codes
        .iter()
        .filter(|(_, c)| *c == 0)
        .map(|(id, _)| format!("{:06}", id - 1))
        .collect();
    assert!(!succeeded.is_empty());
    let mut again = Raw::login(addr, "selfie").await;
    again.receive(succeeded.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nothing more comes (a repeat would be recorded here).
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), again.next()).await {}
    // Every message reported sent arrives, once and in order; a message whose success the
    // client never heard (its session ended first) may arrive too.
    let got: Vec<String> = again.bodies();
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {got:?}"
    );
    let missing: Vec<&String> = succeeded.iter().filter(|m| !got.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "reported sent, never received: {missing:?}"
    );
    assert!(got.len() <= SELF_SENDS);

    let report = bystander.finish().await;
    server.shutdown().await;
    check_bystander("stall", &report);
}

/// Item: a session handed part of a stored backlog and then kicked by a new login: the new
/// session gets the whole backlog in per-sender order (what the old one held unacknowledged
/// first, then the rest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_backlog_keeps_its_order() {
    const N: usize = 1000;
    let server = server(Storage::Memory, |c| {
        c.broker.max_unacked_events = 256;
        if let Some(app) = c.broker.apps.development.as_mut() {
            app.offline.max_per_account = 5000;
        }
    })
    .await;
    let addr = server.local_addr();
    let bystander = Bystander::start(addr, APP, "bystander", beckon_proto::NO_TOKEN).await;

    let mut source = Raw::login(addr, "source").await;
    source.send_all("sink", numbered(0..N)).await;
    let codes = source.replies(N, true).await;
    assert!(
        codes.iter().all(|(_, c)| *c == 0),
        "every message is stored"
    );

    // The first session is handed a portion of the backlog and acknowledges none of it.
    let mut first = Raw::login(addr, "sink").await;
    while first.got.is_empty() {
        first.next().await.expect("a stored message");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A second login takes over.
    let mut second = Raw::login(addr, "sink").await;
    second.receive(N).await;
    while first.next().await.is_some() {}
    assert!(
        !first.got.is_empty() && first.got.len() < N,
        "the first session held part of the backlog: {}",
        first.got.len()
    );
    let got = second.bodies();
    let want: Vec<String> = numbered(0..N).collect();
    if got != want {
        let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
        panic!(
            "out of order from position {first_wrong:?}: got {:?} … ({} in all)",
            &got[first_wrong.unwrap_or(0)..][..5.min(got.len())],
            got.len()
        );
    }

    let report = bystander.finish().await;
    server.shutdown().await;
    check_bystander("kicked backlog", &report);
}

/// Item: messages that reach a session after it answered its logout, and before the client
/// acknowledged that answer, are not lost: they wait for the account's next login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_racing_a_logout_is_not_lost() {
    const N: usize = 20;
    let server = server(Storage::Memory, |_| {}).await;
    let addr = server.local_addr();
    let bystander = Bystander::start(addr, APP, "bystander", beckon_proto::NO_TOKEN).await;

    let mut leaver = Raw::login(addr, "leaver").await;
    leaver
        .c
        .send(client_frame::Kind::Request(pb::Request {
            id: 1,
            op: Some(Op::Logout(pb::Logout {})),
        }))
        .await;
    let reply = leaver.replies(1, false).await;
    assert_eq!(reply, [(1, 0)], "the logout is answered");
    let logout_seq = leaver.last_seq;

    // Messages sent while the client has not yet acknowledged its logout answer.
    let mut source = Raw::login(addr, "source").await;
    source.send_all("leaver", numbered(0..N)).await;
    let codes = source.replies(N, true).await;
    assert!(codes.iter().all(|(_, c)| *c == 0), "{codes:?}");

    // The client acknowledges the logout answer (and only that); the server closes.
    leaver
        .c
        .send(client_frame::Kind::Ack(pb::Ack { up_to: logout_seq }))
        .await;
    while leaver.next().await.is_some() {}

    // At the next login every message reported sent arrives, in order.
    let mut back = Raw::login(addr, "leaver").await;
    let arrived = tokio::time::timeout(Duration::from_secs(5), back.receive(N)).await;
    let got = back.bodies();
    assert!(
        arrived.is_ok(),
        "reported sent but lost: only {} of {N} arrived: {got:?}",
        got.len()
    );
    assert_eq!(got, numbered(0..N).collect::<Vec<_>>());

    let report = bystander.finish().await;
    server.shutdown().await;
    check_bystander("logout race", &report);
}
