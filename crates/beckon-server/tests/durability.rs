//! The durable store through the real binary: what survives `kill -9`, and a graceful restart
//! (SIGTERM, a new process on the same port and data directory) that SDK clients ride through
//! without losing a message.

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beckon_proto::pb::{self, client_frame, event, server_frame};
use beckon_sdk::{Config, Event, Instance};
use beckon_token::{Privileges, TokenClaims};

use common::process::{BIN, ServerProcess, TempDir, TempFile};
use common::{Bystander, BystanderReport, Client};

const APP: &str = "durable-app";
const CERT: &str = "00112233445566778899aabbccddeeff";

/// How long any one expected thing may take: generous for a loaded debug build.
const STEP: Duration = Duration::from_secs(20);

fn token(account: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    beckon_token::mint(
        CERT.as_bytes(),
        &TokenClaims {
            app_id: APP.into(),
            account: account.into(),
            issued_at: now - 60,
            expires_at: now + 3600,
            privileges: Privileges::NONE,
        },
    )
}

/// What the binary runs on across restarts: a config file with the test app, a data
/// directory, and a home for the standard data directory that must stay unused.
struct Setup {
    config: TempFile,
    data: TempDir,
    home: TempDir,
}

impl Setup {
    fn new() -> Self {
        Self {
            config: TempFile::new(
                "durable.toml",
                &format!("[[apps]]\napp_id = \"{APP}\"\ncertificate = \"{CERT}\"\n"),
            ),
            data: TempDir::new("data"),
            home: TempDir::new("xdg"),
        }
    }

    /// Starts the binary on `listen`, logging at info level.
    fn start(&self, listen: &str) -> ServerProcess {
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", listen, "--config", self.config.path_str()])
            .args(["--data-dir", self.data.path_str()])
            .env("RUST_LOG", "info")
            .env("XDG_DATA_HOME", self.home.path());
        ServerProcess::spawn(cmd)
    }
}

// ---- SDK users that record what happens to them -------------------------------------------------

/// An SDK instance whose events (all but `Log`) are recorded by a background task.
struct User {
    sdk: Instance,
    account: String,
    events: Arc<Mutex<Vec<Event>>>,
}

impl User {
    /// A new instance for `addr`, logged in with `login2(…, 30 s, 20 attempts)`.
    async fn login(addr: std::net::SocketAddr, account: &str) -> Self {
        let sdk = Instance::new(Config::new(format!("tcp://{addr}"))).unwrap();
        let mut stream = sdk.events();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        tokio::spawn(async move {
            while let Some(ev) = stream.next().await {
                if !matches!(ev, Event::Log { .. }) {
                    sink.lock().unwrap().push(ev);
                }
            }
        });
        sdk.login2(APP, account, &token(account), 0, "", 30, 20);
        let user = Self {
            sdk,
            account: account.to_owned(),
            events,
        };
        let ev = user
            .wait_for("a login answer", |e| {
                matches!(e, Event::LoginSuccess { .. } | Event::LoginFailed { .. })
            })
            .await;
        assert!(
            matches!(ev, Event::LoginSuccess { .. }),
            "{account}: {ev:?}"
        );
        user
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `f` holds of the recorded events.
    async fn wait_until(&self, what: &str, f: impl Fn(&[Event]) -> bool) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if f(&self.events.lock().unwrap()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}; events: {:#?}",
                self.account,
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The first recorded event that satisfies `f`, waiting for it; it is removed from the
    /// record so the next call finds the next one.
    async fn wait_for(&self, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        self.wait_until(what, |evs| evs.iter().any(&f)).await;
        let mut evs = self.events.lock().unwrap();
        let i = evs.iter().position(f).unwrap();
        evs.remove(i)
    }

    /// Messages received, as (sender, body), in order.
    fn received(&self) -> Vec<(String, String)> {
        received(&self.events())
    }

    /// Outcomes of sends: message id → success, or error code.
    fn outcomes(&self) -> HashMap<String, Vec<Result<(), i32>>> {
        let mut out: HashMap<String, Vec<Result<(), i32>>> = HashMap::new();
        for e in self.events() {
            match e {
                Event::MessageSendSuccess { message_id } => {
                    out.entry(message_id).or_default().push(Ok(()))
                }
                Event::MessageSendError { message_id, ecode } => {
                    out.entry(message_id).or_default().push(Err(ecode))
                }
                _ => {}
            }
        }
        out
    }

    /// The connection lifecycle events, in order.
    fn lifecycle(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Reconnecting { .. }
                        | Event::Reconnected { .. }
                        | Event::Logout { .. }
                        | Event::LoginSuccess { .. }
                        | Event::LoginFailed { .. }
                )
            })
            .collect()
    }

    async fn attr_all_of(&self, account: &str) -> String {
        self.sdk.get_user_attr_all(account);
        match self
            .wait_for(
                "onUserAttrAllResult",
                |e| matches!(e, Event::UserAttrAllResult { account: a, .. } if a == account),
            )
            .await
        {
            Event::UserAttrAllResult { value, .. } => value,
            _ => unreachable!(),
        }
    }

    async fn attr_of(&self, account: &str, name: &str) -> String {
        self.sdk.get_user_attr(account, name);
        match self
            .wait_for("onUserAttrResult", |e| {
                matches!(e, Event::UserAttrResult { account: a, name: n, .. } if a == account && n == name)
            })
            .await
        {
            Event::UserAttrResult { value, .. } => value,
            _ => unreachable!(),
        }
    }
}

/// The messages among `evs`, as (sender, body), in order.
fn received(evs: &[Event]) -> Vec<(String, String)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::MessageInstantReceive { account, msg, .. } => {
                Some((account.clone(), msg.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The numbers of the burst messages among `evs`, in the order received.
fn burst_numbers(evs: &[Event]) -> Vec<usize> {
    received(evs)
        .into_iter()
        .filter_map(|(from, msg)| {
            assert_eq!(from, "alice");
            msg.strip_prefix("burst #").map(|n| n.parse().unwrap())
        })
        .collect()
}

/// A raw protocol client that logs in and never acknowledges anything: whatever it is sent
/// stays unacknowledged on the server.
async fn raw_login(addr: std::net::SocketAddr, account: &str) -> Client {
    let mut c = Client::connect(addr).await;
    let ok = c.login_ok(APP, account, &token(account)).await;
    assert!(!ok.resumed);
    c
}

/// The next instant message a raw client gets (skipping other events).
async fn raw_next_message(c: &mut Client) -> pb::InstantMessage {
    loop {
        match c.recv().await {
            Some(server_frame::Kind::Event(pb::Event {
                body: Some(event::Body::InstantMessage(m)),
                ..
            })) => return m,
            Some(_) => {}
            None => panic!("the connection closed before a message came"),
        }
    }
}

// ---- kill -9 ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_and_offline_messages_survive_kill_9() {
    let setup = Setup::new();
    let mut server = setup.start("127.0.0.1:0");
    assert!(setup.data.path().join("beckon.redb").is_file());

    let alice = User::login(server.addr, "alice").await;
    let attrs = [
        ("color", "blue"),
        ("status", "héllo, wörld ✓"),
        ("_conn_timeout", "30"),
        ("gone", "soon"),
    ];
    for (name, value) in attrs {
        alice.sdk.set_attr(name, value);
    }
    alice.sdk.set_attr("gone", ""); // Deleted again.
    // Requests are applied in order: once this is answered, every write above is committed.
    let before = alice.attr_all_of("alice").await;
    let expected = r#"{"_conn_timeout":"30","color":"blue","status":"héllo, wörld ✓"}"#;
    assert_eq!(before, expected);

    // Messages for bob, who is offline: each success means it is in the store.
    const N: usize = 40;
    let ids: Vec<String> = (0..N)
        .map(|i| {
            alice
                .sdk
                .message_instant_send("bob", 0, &format!("offline #{i}"), &format!("m{i}"))
        })
        .collect();
    alice
        .wait_until("every send to be answered", |evs| {
            evs.iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
                    )
                })
                .count()
                == N
        })
        .await;
    let outcomes = alice.outcomes();
    for id in &ids {
        assert_eq!(outcomes[id], [Ok(())], "{id}");
    }

    server.signal("KILL");
    let (status, _) = server.wait();
    assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    drop(alice);

    // A new process on the same data directory.
    let mut server = setup.start("127.0.0.1:0");
    let carol = User::login(server.addr, "carol").await;
    assert_eq!(carol.attr_all_of("alice").await, expected);
    for (name, value) in attrs {
        let want = if name == "gone" { "" } else { value };
        assert_eq!(carol.attr_of("alice", name).await, want, "{name}");
    }

    let bob = User::login(server.addr, "bob").await;
    bob.wait_until("every stored message", |evs| {
        evs.iter()
            .filter(|e| matches!(e, Event::MessageInstantReceive { .. }))
            .count()
            >= N
    })
    .await;
    let want: Vec<(String, String)> = (0..N)
        .map(|i| ("alice".to_owned(), format!("offline #{i}")))
        .collect();
    // Logging out acknowledges everything received, so nothing is kept for bob any more.
    bob.sdk.logout();
    bob.wait_for("onLogout", |e| matches!(e, Event::Logout { .. }))
        .await;
    assert_eq!(bob.received(), want, "every message, once, in order");
    // The deletions bob's acknowledgements asked for are committed in order with what follows
    // them: once a later read is answered, they are durable. (A crash before that hands them
    // to the account's next session again: at least once per account, docs/operations.md.)
    assert_eq!(carol.attr_all_of("alice").await, expected);

    // Delivered and acknowledged means gone from the store, also across another crash.
    server.signal("KILL");
    let (_, log) = server.wait();
    assert!(log.contains("store: redb"), "{log}");
    assert!(log.contains("beckon.redb"), "{log}");
    let mut server = setup.start("127.0.0.1:0");
    let bob = User::login(server.addr, "bob").await;
    let mut probe = raw_login(server.addr, "dave").await;
    probe.ping_pong(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bob.received(), [], "nothing is delivered twice");
    let alice = User::login(server.addr, "alice").await;
    assert_eq!(alice.attr_all_of("alice").await, expected);
    server.signal("TERM");
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("store closed"), "{log}");
}

// ---- graceful restart -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_reconnects_clients_and_loses_no_message() {
    let setup = Setup::new();
    let mut server = setup.start("127.0.0.1:0");
    let addr = server.addr;

    let alice = User::login(addr, "alice").await;
    let bob = User::login(addr, "bob").await;
    alice.sdk.set_attr("color", "green");

    // Messages flow.
    alice.sdk.message_instant_send("bob", 0, "before", "before");
    bob.wait_until("the first message", |evs| {
        evs.iter()
            .any(|e| matches!(e, Event::MessageInstantReceive { msg, .. } if msg == "before"))
    })
    .await;

    // Carol reads but never acknowledges: her messages are unacknowledged at the shutdown.
    let mut carol = raw_login(addr, "carol").await;
    const FOR_CAROL: usize = 5;
    for i in 0..FOR_CAROL {
        alice
            .sdk
            .message_instant_send("carol", 0, &format!("to carol #{i}"), &format!("c{i}"));
    }
    let mut carol_ids = Vec::new();
    for i in 0..FOR_CAROL {
        let m = raw_next_message(&mut carol).await;
        assert_eq!(m.msg, format!("to carol #{i}"));
        assert!(!m.offline);
        carol_ids.push(m.server_msg_id);
    }

    // A burst still in flight when the server is told to stop.
    const BURST: usize = 200;
    for i in 0..BURST {
        alice
            .sdk
            .message_instant_send("bob", 0, &format!("burst #{i}"), &format!("b{i}"));
    }
    server.signal("TERM");
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "a clean exit: {log}");
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("store closed"), "{log}");
    drop(carol);

    // The same port, the same data directory.
    let mut server = setup.start(&addr.to_string());
    assert_eq!(server.addr, addr);
    for user in [&alice, &bob] {
        user.wait_until("onReconnected or onLogout", |evs| {
            evs.iter()
                .any(|e| matches!(e, Event::Reconnected { .. } | Event::Logout { .. }))
        })
        .await;
        // (The login answer was taken off the record when the user logged in.)
        let life = user.lifecycle();
        let [Event::Reconnecting { nretry: 1 }, rest @ ..] = life.as_slice() else {
            panic!("{}: {life:?}", user.account);
        };
        let Some((Event::Reconnected { fd: 0 }, retries)) = rest.split_last() else {
            panic!("{}: {life:?}", user.account);
        };
        for (i, e) in retries.iter().enumerate() {
            let want = u32::try_from(i).unwrap() + 2;
            assert_eq!(*e, Event::Reconnecting { nretry: want }, "{}", user.account);
        }
        assert_eq!(user.sdk.get_status(), 2);
    }

    // Every message of the burst has one outcome; every success reached bob exactly once, in
    // order. (A failure may have reached him too: its reply was lost with the connection.)
    alice
        .wait_until("an outcome for every send", |evs| {
            let ids: HashSet<_> = evs
                .iter()
                .filter_map(|e| match e {
                    Event::MessageSendSuccess { message_id }
                    | Event::MessageSendError { message_id, .. } => Some(message_id.clone()),
                    _ => None,
                })
                .collect();
            (0..BURST).all(|i| ids.contains(&format!("b{i}")))
        })
        .await;
    let outcomes = alice.outcomes();
    let mut succeeded = Vec::new();
    for i in 0..BURST {
        let id = format!("b{i}");
        match outcomes[&id].as_slice() {
            [Ok(())] => succeeded.push(i),
            [Err(_)] => {}
            other => panic!("{id}: more than one outcome: {other:?}"),
        }
    }
    bob.wait_until("every successful burst message", |evs| {
        let got: HashSet<usize> = burst_numbers(evs).into_iter().collect();
        succeeded.iter().all(|i| got.contains(i))
    })
    .await;

    // Messages flow again, both ways.
    alice.sdk.message_instant_send("bob", 0, "after", "after");
    bob.sdk.message_instant_send("alice", 0, "reply", "reply");
    bob.wait_until("the message after the restart", |evs| {
        evs.iter()
            .any(|e| matches!(e, Event::MessageInstantReceive { msg, .. } if msg == "after"))
    })
    .await;
    alice
        .wait_until("the reply after the restart", |evs| {
            evs.iter()
                .any(|e| matches!(e, Event::MessageInstantReceive { msg, .. } if msg == "reply"))
        })
        .await;
    // A sender hears success once the message is stored, which may be after its recipient
    // has it.
    for (user, id) in [(&alice, "after"), (&bob, "reply")] {
        user.wait_until("the outcome after the restart", |evs| {
            evs.iter().any(|e| {
                matches!(
                    e,
                    Event::MessageSendSuccess { message_id }
                        | Event::MessageSendError { message_id, .. } if message_id == id
                )
            })
        })
        .await;
        assert_eq!(user.outcomes()[id], [Ok(())], "{}", user.account);
    }

    let got = burst_numbers(&bob.events());
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(got, sorted, "in order and without duplicates: {got:?}");
    eprintln!(
        "graceful restart: burst={BURST} succeeded={} failed={} received={}",
        succeeded.len(),
        BURST - succeeded.len(),
        got.len()
    );
    for user in [&alice, &bob] {
        assert!(
            !user
                .lifecycle()
                .iter()
                .any(|e| matches!(e, Event::Logout { .. })),
            "{}: {:?}",
            user.account,
            user.lifecycle()
        );
    }

    // Carol's unacknowledged messages were kept and come at her next login, in order.
    let mut carol = raw_login(addr, "carol").await;
    for (i, id) in carol_ids.iter().enumerate() {
        let m = raw_next_message(&mut carol).await;
        assert_eq!(m.msg, format!("to carol #{i}"));
        assert_eq!(
            m.server_msg_id, *id,
            "the same message, so a client can drop repeats"
        );
        assert!(m.offline);
    }
    carol
        .send(client_frame::Kind::Ack(pb::Ack { up_to: u64::MAX }))
        .await;

    // And attributes too.
    assert_eq!(bob.attr_of("alice", "color").await, "green");

    server.signal("TERM");
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "{log}");
}

// ---- kill -9 in the middle of a burst ------------------------------------------------------------

/// The longest a bystander may wait for a pong while the server runs (not across its restart).
const BYSTANDER_BOUND: Duration = Duration::from_secs(2);

fn check_bystander(test: &str, phase: &str, r: &BystanderReport) {
    eprintln!(
        "{test}: bystander {phase}: longest wait {:?} over {} pings{}",
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
        "the bystander waited {:?} (bound {BYSTANDER_BOUND:?})",
        r.longest
    );
}

/// Sends `n` numbered messages from `from` to `to` (ids `k0…`, bodies `kill #i`), one every
/// millisecond or so, so that the burst is still going when, once `kill_after` of them are
/// answered, the bystander is stopped (its report is returned) and the server is killed with
/// SIGKILL.
async fn burst_then_kill(
    server: &mut ServerProcess,
    from: &Arc<User>,
    to: &str,
    (n, kill_after): (usize, usize),
    bystander: Bystander,
) -> BystanderReport {
    // At most this many sends without an outcome, so that the crash finds some in flight
    // however slow the machine (else a fast burst may be answered whole before the kill).
    const WINDOW: usize = 32;
    let sender = from.clone();
    let to = to.to_owned();
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let after_kill = killed.clone();
    let burst = tokio::spawn(async move {
        let mut before_kill = n;
        for i in 0..n {
            if before_kill == n && after_kill.load(std::sync::atomic::Ordering::Relaxed) {
                before_kill = i;
            }
            while !after_kill.load(std::sync::atomic::Ordering::Relaxed) {
                let answered = (sender.events().iter())
                    .filter(|e| {
                        matches!(
                            e,
                            Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
                        )
                    })
                    .count();
                if i < answered + WINDOW {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            sender
                .sdk
                .message_instant_send(&to, 0, &format!("kill #{i}"), &format!("k{i}"));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        before_kill
    });
    from.wait_until("part of the burst to be answered", |evs| {
        evs.iter()
            .filter(|e| matches!(e, Event::MessageSendSuccess { .. }))
            .count()
            >= kill_after
    })
    .await;
    let report = bystander.finish().await;
    server.signal("KILL");
    let (status, _) = server.wait();
    assert_eq!(status.signal(), Some(9), "killed: {status:?}");
    // The rest of the burst goes out at once, to wait in the SDK for the next server.
    killed.store(true, std::sync::atomic::Ordering::Relaxed);
    let before_kill = burst.await.unwrap();
    assert!(
        before_kill < n,
        "the crash came in the middle of the burst ({before_kill} of {n} sent before it)"
    );
    report
}

/// The numbers of the burst messages `from` was told were sent, once every send of the burst
/// has an outcome (those cut off by the crash fail, after the restart).
async fn succeeded_of_burst(from: &User, n: usize) -> Vec<usize> {
    from.wait_until("an outcome for every send", |evs| {
        let ids: HashSet<String> = evs
            .iter()
            .filter_map(|e| match e {
                Event::MessageSendSuccess { message_id }
                | Event::MessageSendError { message_id, .. } => Some(message_id.clone()),
                _ => None,
            })
            .collect();
        (0..n).all(|i| ids.contains(&format!("k{i}")))
    })
    .await;
    let outcomes = from.outcomes();
    let mut failed: HashMap<i32, usize> = HashMap::new();
    let succeeded = (0..n)
        .filter(|i| match outcomes[&format!("k{i}")].as_slice() {
            [Ok(())] => true,
            [Err(code)] => {
                *failed.entry(*code).or_default() += 1;
                false
            }
            other => panic!("k{i}: {other:?}"),
        })
        .collect();
    // Sends cut off by the crash fail (401), and so do those over an offline recipient's cap
    // once the new server has stored as many as it may (400): no restart window after a crash.
    eprintln!("burst: failed by code {failed:?}");
    succeeded
}

/// The numbers of the burst messages in order, from (sender, body) pairs.
fn kill_numbers(got: &[(String, String)]) -> Vec<usize> {
    got.iter()
        .filter_map(|(_, m)| m.strip_prefix("kill #").map(|n| n.parse().unwrap()))
        .collect()
}

/// Checks that every message reported sent arrived, in order and once.
fn check_every_success_once(test: &str, succeeded: &[usize], got: &[usize], n: usize) {
    eprintln!(
        "{test}: burst={n} succeeded={} failed={} received={}",
        succeeded.len(),
        n - succeeded.len(),
        got.len()
    );
    let missing: Vec<&usize> = succeeded.iter().filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "reported sent, never received: {missing:?}"
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order and once: {got:?}"
    );
}

/// A recipient whose connection is down and whose session waits in grace: every message its
/// senders were told was sent is delivered after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_to_a_recipient_in_grace_loses_nothing_reported_sent() {
    const N: usize = 600;
    let setup = Setup::new();
    let mut server = setup.start("127.0.0.1:0");
    let addr = server.addr;
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;

    // Dora logs in and loses her connection: her session waits in grace (120 s).
    let dora = raw_login(addr, "dora").await;
    drop(dora);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let alice = Arc::new(User::login(addr, "alice").await);
    let before = burst_then_kill(&mut server, &alice, "dora", (N, N / 3), bystander).await;

    let server = setup.start(&addr.to_string());
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;
    let succeeded = succeeded_of_burst(&alice, N).await;
    assert!(succeeded.len() >= N / 3);

    // Dora's next login gets every one of them.
    let mut dora = raw_login(addr, "dora").await;
    let mut got = Vec::new();
    while got.len() < succeeded.len() {
        let m = raw_next_message(&mut dora).await;
        assert!(m.offline, "{m:?}");
        got.push((m.sender, m.msg));
    }
    dora.send(client_frame::Kind::Ack(pb::Ack {
        up_to: u64::MAX / 2,
    }))
    .await;
    check_every_success_once("grace", &succeeded, &kill_numbers(&got), N);
    let after = bystander.finish().await;
    drop(server);
    check_bystander("grace", "before the crash", &before);
    check_bystander("grace", "after the restart", &after);
}

/// An online recipient (an SDK that acknowledges as usual) and a crash in the middle of a
/// burst: after the restart, every message reported sent reaches it once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_to_an_online_recipient_loses_nothing_reported_sent() {
    const N: usize = 600;
    let setup = Setup::new();
    let mut server = setup.start("127.0.0.1:0");
    let addr = server.addr;
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;
    let alice = Arc::new(User::login(addr, "alice").await);
    let bob = User::login(addr, "bob").await;
    let before = burst_then_kill(&mut server, &alice, "bob", (N, N / 3), bystander).await;

    let server = setup.start(&addr.to_string());
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;
    let succeeded = succeeded_of_burst(&alice, N).await;
    bob.wait_until("every message reported sent", |evs| {
        let got = kill_numbers(&received(evs));
        succeeded.iter().all(|i| got.contains(i))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // Late repeats would show up.
    check_every_success_once("online", &succeeded, &kill_numbers(&bob.received()), N);
    let after = bystander.finish().await;
    drop(server);
    check_bystander("online", "before the crash", &before);
    check_bystander("online", "after the restart", &after);
}

// ---- a graceful restart under load ----------------------------------------------------------------

/// Senders keep sending through a graceful restart (SIGTERM, a new process on the same port and
/// data directory) while their recipients reconnect in their own time: no send fails — neither
/// for the recipients' offline cap (400) nor for replies lost in the restart (401) — and every
/// message arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_under_load_fails_no_send() {
    const PAIRS: usize = 8;
    /// Per sender: about 100 messages a second for 4 s.
    const PER_SENDER: usize = 400;
    const PACE: Duration = Duration::from_millis(10);
    let setup = Setup::new();
    let mut server = setup.start("127.0.0.1:0");
    let addr = server.addr;
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;

    let mut senders = Vec::new();
    let mut recipients = Vec::new();
    for p in 0..PAIRS {
        senders.push(Arc::new(User::login(addr, &format!("s{p}")).await));
        recipients.push(User::login(addr, &format!("r{p}")).await);
    }
    let tasks: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(p, s)| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..PER_SENDER {
                    s.sdk.message_instant_send(
                        &format!("r{p}"),
                        0,
                        &format!("load #{i}"),
                        &format!("l{i}"),
                    );
                    tokio::time::sleep(PACE).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = bystander.finish().await;
    server.signal("TERM");
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "a clean exit: {log}");
    let server = setup.start(&addr.to_string());
    let bystander = Bystander::start(addr, APP, "bystander", &token("bystander")).await;
    for t in tasks {
        t.await.unwrap();
    }

    let mut failures: HashMap<i32, usize> = HashMap::new();
    let mut sent = 0;
    for (p, s) in senders.iter().enumerate() {
        s.wait_until("an outcome for every send", |evs| {
            evs.iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
                    )
                })
                .count()
                >= PER_SENDER
        })
        .await;
        let outcomes = s.outcomes();
        let mut succeeded = Vec::new();
        for i in 0..PER_SENDER {
            match outcomes[&format!("l{i}")].as_slice() {
                [Ok(())] => succeeded.push(i),
                [Err(code)] => *failures.entry(*code).or_default() += 1,
                other => panic!("s{p} l{i}: {other:?}"),
            }
        }
        sent += succeeded.len();
        let r = &recipients[p];
        r.wait_until("every message reported sent", |evs| {
            let got: Vec<usize> = received(evs)
                .iter()
                .filter_map(|(_, m)| m.strip_prefix("load #").map(|n| n.parse().unwrap()))
                .collect();
            succeeded.iter().all(|i| got.contains(i))
        })
        .await;
        let got: Vec<usize> = r
            .received()
            .iter()
            .filter_map(|(_, m)| m.strip_prefix("load #").map(|n| n.parse().unwrap()))
            .collect();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "r{p}: in order, once: {got:?}"
        );
    }
    let after = bystander.finish().await;
    eprintln!(
        "restart under load: sent={} succeeded={sent} failed by code={failures:?}",
        PAIRS * PER_SENDER
    );
    drop(server);
    assert!(
        failures.is_empty(),
        "sends failed across the restart: {failures:?}"
    );
    check_bystander("restart under load", "before the restart", &before);
    check_bystander("restart under load", "after the restart", &after);
}

// ---- the library --------------------------------------------------------------------------------

/// Sends request `id` and returns its reply (skipping other events).
async fn raw_request(c: &mut Client, id: u64, op: pb::request::Op) -> pb::Reply {
    c.send(client_frame::Kind::Request(pb::Request {
        id,
        op: Some(op),
    }))
    .await;
    loop {
        match c.recv().await {
            Some(server_frame::Kind::Event(pb::Event {
                body: Some(event::Body::Reply(r)),
                ..
            })) if r.request_id == id => return r,
            Some(_) => {}
            None => panic!("the connection closed before the reply to request {id}"),
        }
    }
}

#[tokio::test]
async fn an_embedded_server_opens_its_data_directory_and_holds_it_until_shut_down() {
    use beckon_server::{Server, ServerConfig, Storage};

    let data = TempDir::new("embedded");
    let config = || {
        let mut c = ServerConfig::development();
        c.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
        c.storage = Storage::Dir(data.path().join("nested"));
        c
    };
    let first = Server::spawn(config()).await.expect("the store opens");
    assert!(data.path().join("nested").join("beckon.redb").is_file());
    let e = Server::spawn(config())
        .await
        .expect_err("the directory is taken");
    assert!(e.to_string().contains("cannot open the store"), "{e}");

    let mut alice = Client::connect(first.local_addr()).await;
    alice.login_ok("app", "alice", beckon_proto::NO_TOKEN).await;
    let set = pb::request::Op::SetUserAttr(pb::SetUserAttr {
        name: "color".into(),
        value: "teal".into(),
    });
    assert_eq!(raw_request(&mut alice, 1, set).await.code, 0);
    drop(alice);
    first.shutdown().await;

    let second = Server::spawn(config())
        .await
        .expect("free again after shutdown");
    let mut bob = Client::connect(second.local_addr()).await;
    bob.login_ok("app", "bob", beckon_proto::NO_TOKEN).await;
    let get = pb::request::Op::GetUserAttr(pb::GetUserAttr {
        account: "alice".into(),
        name: "color".into(),
    });
    let reply = raw_request(&mut bob, 1, get).await;
    assert_eq!(
        reply.result,
        Some(pb::reply::Result::AttrValue(pb::AttrValue {
            value: "teal".into()
        }))
    );
    second.shutdown().await;
}
