//! Cluster mode, sans-IO: two brokers as two nodes, their cluster outputs carried out by a
//! presence table standing in for Redis. A login on one node kicks the account's session on
//! the other (103); `queryUserStatus` sees the whole cluster; p2p messages cross nodes through
//! the shared store and a notice to the recipient's node; channels are one membership over the
//! nodes (a fake channel table standing in for Redis's, publishing each event once to the
//! nodes with members); what is not cluster-wide yet is refused with `GENERAL_E_FAILED` and a
//! `desc` that says so, and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beckon_broker::{
    AdminCall, AdminError, AdminRequest, AdminResponse, Apps, Broker, BrokerConfig, ChannelAnswer,
    ChannelEvent, ChannelOp, ClusterIn, ClusterOut, ConnId, MemoryStore, Recovered, Store,
    StoreBatch, StoreDone, StoreError, StoreOp, StoredMessage,
};
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, request::Op, server_frame};
use beckon_testkit::wire::{self, Driver};

const APP: &str = "app";

/// The shared store, whose reads of stored messages can be made to fail (Redis unreachable
/// for a moment).
#[derive(Clone, Debug)]
struct Shared {
    inner: MemoryStore,
    fail_reads: Arc<AtomicBool>,
}

impl Shared {
    fn messages(&self, app: &str, account: &str) -> Vec<StoredMessage> {
        self.inner.messages(app, account)
    }
}

impl Store for Shared {
    fn execute(&mut self, batches: Vec<StoreBatch>) -> Vec<StoreDone> {
        let reads = |b: &StoreBatch| b.ops.iter().any(|o| matches!(o, StoreOp::Messages { .. }));
        if self.fail_reads.load(Ordering::Relaxed) && batches.iter().any(reads) {
            let fail = |b: StoreBatch| StoreDone {
                id: b.id,
                answers: Err(StoreError::Unreachable("Redis is unreachable".into())),
            };
            return batches.into_iter().map(fail).collect();
        }
        self.inner.execute(batches)
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        self.inner.recover()
    }
}

/// Two nodes and the shared presence table: (app, account) → (node, session).
struct Cluster {
    nodes: Vec<Driver<Shared>>,
    /// Whether the shared store's reads fail.
    fail_reads: Arc<AtomicBool>,
    presence: HashMap<(String, String), (usize, u64)>,
    /// Whether the shared state is reachable; when not, questions fail.
    reachable: bool,
    /// Whether notices of stored messages are lost on their way (a pub/sub hiccup).
    lose_notices: bool,
    /// Whether notices wait in `delayed` until [`deliver_notices`](Self::deliver_notices).
    delay_notices: bool,
    delayed: Vec<(usize, ClusterIn)>,
    /// Whether call signals to other nodes find no one listening there (the node died).
    drop_signals: bool,
    /// Whether call signals wait in `held` unanswered (a slow Redis).
    hold_signals: bool,
    held: Vec<(usize, ClusterOut)>,
    /// The connections logged in, by (node, conn), which ping while time passes.
    conns: Vec<(usize, u64)>,
    /// Frames a request's node sent to its other connections meanwhile, by (node, conn).
    elsewhere: HashMap<(usize, u64), Vec<server_frame::Kind>>,
    next_request: u64,
    /// The shared channel state: (app, channel) → members and attributes.
    chans: HashMap<(String, String), FakeChannel>,
    /// Whether channel operations wait in `held_channel_ops` (the cluster does not answer).
    hold_channel_ops: bool,
    held_channel_ops: Vec<(usize, ClusterOut)>,
    /// Whether presence questions wait in `held_status` unanswered (a slow Redis).
    hold_status: bool,
    held_status: Vec<(usize, ClusterOut)>,
    /// Channel events published, and those each node received.
    publishes: usize,
    received: Vec<usize>,
}

/// One channel in the fake shared state.
#[derive(Debug, Default)]
struct FakeChannel {
    /// In join order: (account, node, session).
    members: Vec<(String, usize, u64)>,
    attrs: BTreeMap<String, String>,
    /// Accounts that ever joined.
    ever: std::collections::BTreeSet<String>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        // One store every node shares, as the cluster's Redis is.
        let fail_reads = Arc::new(AtomicBool::new(false));
        let store = Shared {
            inner: MemoryStore::new(),
            fail_reads: fail_reads.clone(),
        };
        let now = std::time::Instant::now();
        let nodes = (0..n)
            .map(|i| {
                // One configuration for every node, its server secret included.
                let mut config = BrokerConfig::new(Apps::development(), [1; 32]);
                config.cluster = true;
                let mut broker = Broker::new(config, store.clone(), now, 1_700_000_000_000);
                // Each node takes its own block of positions, as from the Redis store.
                broker.recovered(Recovered {
                    next_position: (i as u64 + 1) << 40,
                    ..Recovered::default()
                });
                Driver::with_broker(broker, now)
            })
            .collect();
        Self {
            nodes,
            fail_reads,
            presence: HashMap::new(),
            reachable: true,
            lose_notices: false,
            delay_notices: false,
            delayed: Vec::new(),
            drop_signals: false,
            hold_signals: false,
            held: Vec::new(),
            conns: Vec::new(),
            elsewhere: HashMap::new(),
            next_request: 1,
            chans: HashMap::new(),
            hold_channel_ops: false,
            held_channel_ops: Vec::new(),
            hold_status: false,
            held_status: Vec::new(),
            publishes: 0,
            received: vec![0; n],
        }
    }

    /// Carries out every node's store batches and cluster outputs until none is left (a kick
    /// may lead to a release, a stored message to a notice, a notice to a read).
    fn route(&mut self) {
        loop {
            let mut any = false;
            for node in 0..self.nodes.len() {
                wire::commit(&mut self.nodes[node].broker);
                while let Some(out) = self.nodes[node].broker.poll_cluster() {
                    any = true;
                    self.carry_out(node, out);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn carry_out(&mut self, node: usize, out: ClusterOut) {
        let now = self.nodes[node].now;
        match out {
            ClusterOut::Claim {
                app,
                account,
                session,
            } => {
                let key = (app.clone(), account.clone());
                if let Some((held_on, held)) = self.presence.insert(key, (node, session))
                    && held_on != node
                {
                    let kick = ClusterIn::Kick {
                        app,
                        account,
                        session: held,
                        code: ErrorCode::LogoutKicked,
                        message: "the account logged in on another node".into(),
                    };
                    let at = self.nodes[held_on].now;
                    self.nodes[held_on].broker.handle_cluster(kick, at);
                }
            }
            ClusterOut::Release {
                app,
                account,
                session,
            } => {
                let key = (app, account);
                if self.presence.get(&key) == Some(&(node, session)) {
                    self.presence.remove(&key);
                }
            }
            ClusterOut::Status { .. } if self.hold_status => self.held_status.push((node, out)),
            ClusterOut::Status {
                query,
                app,
                account,
            } => {
                let online = if self.reachable {
                    Ok(self.presence.contains_key(&(app, account)))
                } else {
                    Err("Redis is unreachable".to_owned())
                };
                let answer = ClusterIn::Status { query, online };
                self.nodes[node].broker.handle_cluster(answer, now);
            }
            ClusterOut::Channel { .. } if self.hold_channel_ops => {
                self.held_channel_ops.push((node, out))
            }
            ClusterOut::Channel {
                query,
                app,
                channel,
                op,
            } => self.channel_op(node, query, app, channel, op),
            ClusterOut::Stored { app, account } => {
                let key = (app.clone(), account.clone());
                if let Some(&(held_on, _)) = self.presence.get(&key)
                    && !self.lose_notices
                {
                    let at = self.nodes[held_on].now;
                    let notice = ClusterIn::Stored { app, account };
                    if self.delay_notices {
                        self.delayed.push((held_on, notice));
                    } else {
                        self.nodes[held_on].broker.handle_cluster(notice, at);
                    }
                }
            }
            ClusterOut::CallSignal {
                query,
                app,
                account,
                signal,
            } => {
                if self.hold_signals {
                    let out = ClusterOut::CallSignal {
                        query,
                        app,
                        account,
                        signal,
                    };
                    self.held.push((node, out));
                    return;
                }
                let delivered = match self.presence.get(&(app.clone(), account.clone())) {
                    _ if !self.reachable => Err("Redis is unreachable".to_owned()),
                    None => Ok(false),
                    Some(_) if self.drop_signals => Ok(false),
                    Some(&(held_on, session)) => {
                        let at = self.nodes[held_on].now;
                        let input = ClusterIn::CallSignal {
                            app,
                            account,
                            session,
                            signal,
                        };
                        self.nodes[held_on].broker.handle_cluster(input, at);
                        Ok(true)
                    }
                };
                let answer = ClusterIn::CallSent { query, delivered };
                let now = self.nodes[node].now;
                self.nodes[node].broker.handle_cluster(answer, now);
            }
        }
    }

    /// Answers the held presence questions, in order.
    fn release_status(&mut self) {
        self.hold_status = false;
        for (node, out) in std::mem::take(&mut self.held_status) {
            self.carry_out(node, out);
        }
        self.route();
    }

    /// Carries out the held call signals, in order.
    fn release_signals(&mut self) {
        self.hold_signals = false;
        for (node, out) in std::mem::take(&mut self.held) {
            self.carry_out(node, out);
        }
        self.route();
    }

    /// Lets `d` pass on every node in steps of a second, running their timers and carrying
    /// out what those ask of the cluster; the logged-in connections ping at each step, and
    /// every frame is kept for [`take`](Self::take).
    fn advance(&mut self, d: std::time::Duration) {
        let ping =
            beckon_proto::codec::encode_client(pb::client_frame::Kind::Ping(pb::Ping { nonce: 0 }));
        let steps = d.as_secs().max(1);
        let step = d / u32::try_from(steps).expect("a short test");
        for _ in 0..steps {
            for node in 0..self.nodes.len() {
                let n = &mut self.nodes[node];
                let until = n.now + step;
                while let Some(at) = n.broker.poll_timeout().filter(|at| *at <= until) {
                    n.now = n.now.max(at);
                    n.broker.handle_timeout(n.now);
                }
                n.now = until;
                n.broker.handle_timeout(until);
                for &(_, conn) in self.conns.iter().filter(|(at, _)| *at == node) {
                    n.broker.handle_frame(ConnId(conn), &ping, n.now);
                }
                let frames = wire::drain(&mut self.nodes[node].broker);
                self.keep(node, &frames);
            }
            self.route();
        }
    }

    /// Hands over the notices delayed so far, in the order they were sent.
    fn deliver_notices(&mut self) {
        for (node, notice) in std::mem::take(&mut self.delayed) {
            let at = self.nodes[node].now;
            self.nodes[node].broker.handle_cluster(notice, at);
        }
        self.route();
    }

    fn login(&mut self, node: usize, conn: u64, account: &str) {
        self.nodes[node].login(ConnId(conn), APP, account);
        self.conns.push((node, conn));
        self.route();
    }

    fn request(&mut self, node: usize, conn: u64, op: Op) -> pb::Reply {
        let (reply, _) = self.request_all(node, conn, op);
        self.ack(node, conn);
        reply
    }

    /// Sends a request; its reply, and every frame the node sent meanwhile, by connection.
    fn request_all(
        &mut self,
        node: usize,
        conn: u64,
        op: Op,
    ) -> (pb::Reply, Vec<(ConnId, server_frame::Kind)>) {
        let id = self.next_request;
        self.next_request += 1;
        let n = &mut self.nodes[node];
        n.broker
            .handle_frame(ConnId(conn), &wire::request_frame(id, op), n.now);
        self.route();
        let frames = wire::drain(&mut self.nodes[node].broker);
        let mine: Vec<_> = (frames.iter())
            .filter(|(c, _)| *c == ConnId(conn))
            .map(|(_, k)| k.clone())
            .collect();
        self.keep(node, &frames);
        (wire::reply_in(&mine, id).expect("a reply"), frames)
    }

    /// Keeps frames for [`take`](Self::take).
    fn keep(&mut self, node: usize, frames: &[(ConnId, server_frame::Kind)]) {
        for (c, k) in frames {
            self.elsewhere
                .entry((node, c.0))
                .or_default()
                .push(k.clone());
        }
    }

    /// Acknowledges every event `conn` on `node` had; what that hands over is kept.
    fn ack(&mut self, node: usize, conn: u64) {
        let n = &mut self.nodes[node];
        n.broker
            .handle_frame(ConnId(conn), &wire::ack_all_frame(), n.now);
        self.route();
        let frames = wire::drain(&mut self.nodes[node].broker);
        self.keep(node, &frames);
    }

    /// Every frame sent to `conn` on `node` so far and not yet taken.
    fn take(&mut self, node: usize, conn: u64) -> Vec<server_frame::Kind> {
        self.route();
        let frames = wire::drain(&mut self.nodes[node].broker);
        self.keep(node, &frames);
        self.elsewhere.remove(&(node, conn)).unwrap_or_default()
    }

    /// Connects `conn` on `node` and logs `account` in; every frame it got (the login answer
    /// and what was handed over at once).
    fn login_frames(&mut self, node: usize, conn: u64, account: &str) -> Vec<server_frame::Kind> {
        let n = &mut self.nodes[node];
        n.broker.connect(ConnId(conn), n.now);
        let login = wire::login_frame(APP, account, beckon_proto::NO_TOKEN);
        n.broker.handle_frame(ConnId(conn), &login, n.now);
        self.take(node, conn)
    }

    fn status(&mut self, node: usize, conn: u64, account: &str) -> pb::Reply {
        let op = Op::QueryUserStatus(pb::QueryUserStatus {
            account: account.into(),
        });
        self.request(node, conn, op)
    }
}

fn online(reply: &pb::Reply) -> bool {
    assert_eq!(reply.code, 0, "{reply:?}");
    match &reply.result {
        Some(pb::reply::Result::UserStatus(s)) => s.online,
        other => panic!("not a status: {other:?}"),
    }
}

#[test]
fn a_login_on_another_node_kicks_the_session_with_103() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    assert!(c.nodes[0].broker.is_online(APP, "alice"));
    c.login(1, 1, "alice");
    let kicked = c.nodes[0].frames_to(ConnId(1));
    let kick = kicked.iter().find_map(|k| match k {
        server_frame::Kind::Kick(k) => Some(k.clone()),
        _ => None,
    });
    assert_eq!(kick.map(|k| k.code), Some(ErrorCode::LogoutKicked.code()));
    assert!(c.nodes[0].closed.contains(&ConnId(1)));
    assert!(!c.nodes[0].broker.is_online(APP, "alice"));
    assert!(c.nodes[1].broker.is_online(APP, "alice"));
    assert_eq!(c.nodes[0].broker.stats().kicks, 1);
    // The kicked session's release did not take the account from its new node.
    assert_eq!(
        c.presence.get(&(APP.into(), "alice".into())).map(|p| p.0),
        Some(1)
    );
}

#[test]
fn a_stale_kick_ends_nothing() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    let n = &mut c.nodes[0];
    let stale = ClusterIn::Kick {
        app: APP.into(),
        account: "alice".into(),
        session: 999,
        code: ErrorCode::LogoutKicked,
        message: "stale".into(),
    };
    n.broker.handle_cluster(stale, n.now);
    assert!(n.broker.is_online(APP, "alice"));
    assert!(n.frames_to(ConnId(1)).is_empty());
    assert_eq!(n.broker.stats().kicks, 0);
}

#[test]
fn query_user_status_sees_the_whole_cluster() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    assert!(online(&c.status(0, 1, "bob")), "bob is on the other node");
    assert!(online(&c.status(0, 1, "alice")), "alice is here");
    assert!(!online(&c.status(0, 1, "carol")), "carol is nowhere");
    // bob logs out: offline everywhere.
    let bye = c.request(1, 2, Op::Logout(pb::Logout {}));
    assert_eq!(bye.code, 0);
    c.route();
    assert!(!online(&c.status(0, 1, "bob")));
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
}

#[test]
fn query_user_status_by_invoke_sees_the_whole_cluster() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    let op = wire::invoke_request(
        "io.agora.signal.user_query_user_status",
        r#"{"account":"bob"}"#,
    );
    let result = wire::invoke_result(c.request(0, 1, op));
    assert!(result.err.is_empty(), "{result:?}");
    assert_eq!(result.resp, r#"{"status":1}"#);
}

#[test]
fn an_unreachable_cluster_fails_the_query_with_a_reason() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.reachable = false;
    let reply = c.status(0, 1, "bob");
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert!(reply.message.contains("Redis is unreachable"), "{reply:?}");
    // A local account is known without asking.
    assert!(online(&c.status(0, 1, "alice")));
}

#[test]
fn what_is_not_cluster_wide_yet_is_refused_and_changes_nothing() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    let refused = [(
        wire::invoke_request(beckon_broker::GATEWAY_REGISTER, "{}"),
        "telephony gateway",
    )];
    for (op, what) in refused {
        let is_invoke = matches!(op, Op::Invoke(_));
        let reply = c.request(0, 1, op);
        let (code, desc) = if is_invoke {
            let r = wire::invoke_result(reply);
            (r.err.parse().expect("an error code"), r.resp)
        } else {
            (reply.code, reply.message)
        };
        assert_eq!(code, ErrorCode::GeneralFailed.code(), "{what}");
        assert!(
            desc.contains(what) && desc.contains("cluster mode"),
            "{what}: {desc}"
        );
    }
    assert_eq!(c.nodes[0].broker.channel_count(APP), 0);
    assert_eq!(c.nodes[0].broker.cluster_replicas(), 0);
    assert!(c.chans.values().all(|ch| ch.members.is_empty()));
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
}

#[test]
fn user_attributes_are_shared_through_the_store() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    let set = Op::SetUserAttr(pb::SetUserAttr {
        name: "color".into(),
        value: "blue".into(),
    });
    assert_eq!(c.request(0, 1, set).code, 0);
    let get = Op::GetUserAttr(pb::GetUserAttr {
        account: "alice".into(),
        name: "color".into(),
    });
    let reply = c.request(1, 2, get);
    assert_eq!(reply.code, 0, "{reply:?}");
    assert_eq!(
        reply.result,
        Some(pb::reply::Result::AttrValue(pb::AttrValue {
            value: "blue".into()
        }))
    );
}

/// The instant messages among decoded frames, as (sender, text, offline).
fn messages_in(frames: &[server_frame::Kind]) -> Vec<(String, String, bool)> {
    frames
        .iter()
        .filter_map(|k| match k {
            server_frame::Kind::Event(pb::Event {
                body: Some(pb::event::Body::InstantMessage(m)),
                ..
            }) => Some((m.sender.clone(), m.msg.clone(), m.offline)),
            _ => None,
        })
        .collect()
}

#[test]
fn p2p_reaches_a_recipient_on_the_same_node_on_another_or_offline() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(0, 2, "dave");
    c.login(1, 3, "bob");

    // Same node: delivered at once.
    let (reply, frames) = c.request_all(0, 1, wire::send_instant("dave", "hi dave"));
    assert_eq!(reply.code, 0, "{reply:?}");
    let to_dave: Vec<_> = (frames.into_iter())
        .filter(|(conn, _)| *conn == ConnId(2))
        .map(|(_, k)| k)
        .collect();
    let got = messages_in(&to_dave);
    assert_eq!(got, vec![("alice".into(), "hi dave".into(), false)]);

    // Offline everywhere: stored in the store every node shares, delivered at the next login
    // on any node.
    assert_eq!(
        c.request(0, 1, wire::send_instant("carol", "hi carol"))
            .code,
        0
    );
    let n = &mut c.nodes[1];
    n.broker.connect(ConnId(4), n.now);
    let login = wire::login_frame(APP, "carol", beckon_proto::NO_TOKEN);
    n.broker.handle_frame(ConnId(4), &login, n.now);
    c.route();
    let got = messages_in(&c.nodes[1].frames_to(ConnId(4)));
    assert_eq!(got, vec![("alice".into(), "hi carol".into(), true)]);

    // Online on another node: stored, and delivered there; its acknowledgement there deletes
    // the record.
    let reply = c.request(0, 1, wire::send_instant("bob", "hi bob"));
    assert_eq!(reply.code, 0, "{reply:?}");
    let got = messages_in(&c.nodes[1].frames_to(ConnId(3)));
    assert_eq!(got, vec![("alice".into(), "hi bob".into(), false)]);
    c.ack(1, 3);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());

    // The cluster cannot be asked: refused with the reason.
    c.reachable = false;
    let reply = c.request(0, 1, wire::send_instant("erin", "hi"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert!(reply.message.contains("Redis is unreachable"), "{reply:?}");
    assert!(c.nodes[0].broker.store().messages(APP, "erin").is_empty());
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
}

#[test]
fn a_single_node_broker_asks_nothing_of_a_cluster() {
    let mut d = Driver::new(BrokerConfig::new(Apps::development(), [9; 32]));
    d.login(ConnId(1), APP, "alice");
    let status = d.request(
        ConnId(1),
        Op::QueryUserStatus(pb::QueryUserStatus {
            account: "bob".into(),
        }),
    );
    assert!(!online(&status));
    let joined = d.request(ConnId(1), wire::join("room"));
    assert_eq!(joined.code, 0);
    // An invitation to an offline account waits on this node, as it always did.
    let invited = d.request(ConnId(1), invite("room", "bob", ""));
    assert_eq!(invited.code, 0);
    let refused = d.request(
        ConnId(1),
        invite("r2", "bob", r#"{"_require_peer_online":1}"#),
    );
    assert_eq!(refused.code, ErrorCode::InvitePeerOffline.code());
    assert_eq!(d.broker.calls_in_progress(), 1);
    assert_eq!(d.broker.poll_cluster(), None);
    let _: &Broker<MemoryStore> = &d.broker;
}

/// Sends `text` from the account on (`node`, `conn`) to `to`; the reply must be a success.
fn send(c: &mut Cluster, node: usize, conn: u64, to: &str, text: &str) {
    let reply = c.request(node, conn, wire::send_instant(to, text));
    assert_eq!(reply.code, 0, "{text}: {reply:?}");
}

#[test]
fn p2p_crosses_nodes_both_ways_in_order_exactly_once() {
    // Node 0's positions lie below node 1's (its block was taken first): alice's messages to
    // bob land below bob's cursor, bob's to alice above alice's.
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "dave");
    let (mut to_bob, mut to_alice) = (Vec::new(), Vec::new());
    for i in 0..20 {
        send(&mut c, 0, 1, "bob", &format!("a{i}"));
        send(&mut c, 1, 2, "alice", &format!("b{i}"));
        send(&mut c, 1, 3, "bob", &format!("d{i}"));
        // Acknowledged now and then only: what a session holds is not handed over again.
        to_bob.extend(messages_in(&c.take(1, 2)));
        to_alice.extend(messages_in(&c.take(0, 1)));
        if i % 3 == 0 {
            c.ack(1, 2);
            c.ack(0, 1);
        }
    }
    to_bob.extend(messages_in(&c.take(1, 2)));
    to_alice.extend(messages_in(&c.take(0, 1)));
    let texts = |got: &[(String, String, bool)], from: &str| -> Vec<String> {
        (got.iter().filter(|m| m.0 == from))
            .map(|m| m.1.clone())
            .collect()
    };
    let expected = |p: &str| (0..20).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(texts(&to_bob, "alice"), expected("a"));
    assert_eq!(texts(&to_bob, "dave"), expected("d"));
    assert_eq!(texts(&to_alice, "bob"), expected("b"));
    assert_eq!(to_bob.len(), 40, "each message once");
    assert_eq!(to_alice.len(), 20, "each message once");
    // Acknowledged on the recipients' nodes: no record is left.
    c.ack(1, 2);
    c.ack(0, 1);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
    assert!(c.nodes[0].broker.store().messages(APP, "alice").is_empty());
}

#[test]
fn a_lost_notice_delays_delivery_and_loses_nothing() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.lose_notices = true;
    send(&mut c, 0, 1, "bob", "first");
    assert!(messages_in(&c.take(1, 2)).is_empty());
    assert_eq!(c.nodes[1].broker.store().messages(APP, "bob").len(), 1);
    // The next notice that arrives makes bob's node read the whole queue: both, in order.
    c.lose_notices = false;
    send(&mut c, 0, 1, "bob", "second");
    let got: Vec<_> = (messages_in(&c.take(1, 2)).into_iter())
        .map(|m| m.1)
        .collect();
    assert_eq!(got, ["first", "second"]);

    // Lost again, and bob logs in anew (on the other node): his new session reads the queue.
    c.ack(1, 2);
    c.lose_notices = true;
    send(&mut c, 0, 1, "bob", "third");
    let got: Vec<_> = (messages_in(&c.login_frames(0, 3, "bob")).into_iter())
        .map(|m| m.1)
        .collect();
    assert_eq!(got, ["third"]);
}

#[test]
fn a_node_that_resubscribed_reads_every_sessions_queue_again() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    c.login(1, 4, "dave");
    // Node 1's subscription is down: the notices to it reach no one.
    c.lose_notices = true;
    send(&mut c, 0, 1, "bob", "to bob");
    send(&mut c, 0, 1, "carol", "to carol");
    assert!(messages_in(&c.take(1, 2)).is_empty());
    assert!(messages_in(&c.take(1, 3)).is_empty());
    // It is back: every session there reads its queue, and is handed each message once.
    c.lose_notices = false;
    let now = c.nodes[1].now;
    (c.nodes[1].broker).handle_cluster(ClusterIn::Resubscribed, now);
    c.route();
    let texts = |got: Vec<(String, String, bool)>| got.into_iter().map(|m| m.1).collect::<Vec<_>>();
    assert_eq!(texts(messages_in(&c.take(1, 2))), ["to bob"]);
    assert_eq!(texts(messages_in(&c.take(1, 3))), ["to carol"]);
    assert!(messages_in(&c.take(1, 4)).is_empty());
    // Once more: nothing is handed over twice, held or acknowledged.
    c.ack(1, 2);
    (c.nodes[1].broker).handle_cluster(ClusterIn::Resubscribed, now);
    c.route();
    assert!(messages_in(&c.take(1, 2)).is_empty());
    assert!(messages_in(&c.take(1, 3)).is_empty());
    c.ack(1, 3);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
    assert!(c.nodes[1].broker.store().messages(APP, "carol").is_empty());
}

#[test]
fn a_failed_read_is_tried_again_at_the_next_notice() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    // Redis fails bob's node's read: the message stays stored.
    c.fail_reads.store(true, Ordering::Relaxed);
    send(&mut c, 0, 1, "bob", "first");
    assert!(messages_in(&c.take(1, 2)).is_empty());
    // It answers again: the next notice makes bob's session read again, and it gets both.
    c.fail_reads.store(false, Ordering::Relaxed);
    send(&mut c, 0, 1, "bob", "second");
    let got: Vec<_> = (messages_in(&c.take(1, 2)).into_iter())
        .map(|m| m.1)
        .collect();
    assert_eq!(got, ["first", "second"]);
    // And once more after a failure with no later message: a resubscription reads again.
    c.ack(1, 2);
    c.fail_reads.store(true, Ordering::Relaxed);
    send(&mut c, 0, 1, "bob", "third");
    assert!(messages_in(&c.take(1, 2)).is_empty());
    c.fail_reads.store(false, Ordering::Relaxed);
    let now = c.nodes[1].now;
    (c.nodes[1].broker).handle_cluster(ClusterIn::Resubscribed, now);
    c.route();
    let got: Vec<_> = (messages_in(&c.take(1, 2)).into_iter())
        .map(|m| m.1)
        .collect();
    assert_eq!(got, ["third"]);
}

#[test]
fn a_burst_crosses_nodes_exactly_once_in_order() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    let mut got = Vec::new();
    for i in 0..200 {
        let n = &mut c.nodes[0];
        let id = 10_000 + i;
        let frame = wire::request_frame(id, wire::send_instant("bob", &format!("m{i}")));
        n.broker.handle_frame(ConnId(1), &frame, n.now);
        if i % 7 == 0 {
            got.extend(messages_in(&c.take(1, 2)));
        }
        if i % 50 == 0 {
            c.ack(1, 2);
        }
    }
    c.route();
    let replies = c.take(0, 1);
    for id in 10_000..10_200 {
        let reply = wire::reply_in(&replies, id).expect("a reply");
        assert_eq!(reply.code, 0, "{reply:?}");
    }
    got.extend(messages_in(&c.take(1, 2)));
    let texts: Vec<_> = got.into_iter().map(|m| m.1).collect();
    let expected: Vec<_> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    c.ack(1, 2);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
}

#[derive(Clone, Debug)]
enum Step {
    /// alice (node 0) or carol (node 1) sends bob (node 1) a message.
    Send(bool),
    /// bob acknowledges what he has.
    Ack,
    /// Notices from now on wait (or arrive at once again).
    Delay(bool),
    /// Notices from now on are lost (or arrive again).
    Lose(bool),
    /// The delayed notices arrive.
    Deliver,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => any::<bool>().prop_map(Step::Send),
        2 => Just(Step::Ack),
        1 => any::<bool>().prop_map(Step::Delay),
        1 => any::<bool>().prop_map(Step::Lose),
        1 => Just(Step::Deliver),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever the schedule of sends, acknowledgements and delayed or lost notices, bob gets
    /// every message once, each sender's in order, once a notice arrives again; and no record
    /// is left once he acknowledges them.
    #[test]
    fn messages_across_nodes_arrive_once_in_order_under_any_schedule(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let mut c = Cluster::new(2);
        c.login(0, 1, "alice");
        c.login(1, 2, "bob");
        c.login(1, 3, "carol");
        let mut got = Vec::new();
        let mut sent = [0usize; 2];
        for s in steps {
            match s {
                Step::Send(from_alice) => {
                    let (node, conn, who) = if from_alice { (0, 1, 0) } else { (1, 3, 1) };
                    let text = format!("{who}:{}", sent[who]);
                    sent[who] += 1;
                    send(&mut c, node, conn, "bob", &text);
                }
                Step::Ack => c.ack(1, 2),
                Step::Delay(on) => c.delay_notices = on,
                Step::Lose(on) => c.lose_notices = on,
                Step::Deliver => c.deliver_notices(),
            }
            got.extend(messages_in(&c.take(1, 2)));
        }
        // Notices flow again: one more message from each sender brings the rest along.
        c.lose_notices = false;
        c.delay_notices = false;
        c.deliver_notices();
        send(&mut c, 0, 1, "bob", &format!("0:{}", sent[0]));
        send(&mut c, 1, 3, "bob", &format!("1:{}", sent[1]));
        sent[0] += 1;
        sent[1] += 1;
        for _ in 0..4 {
            got.extend(messages_in(&c.take(1, 2)));
            c.ack(1, 2);
        }
        got.extend(messages_in(&c.take(1, 2)));
        for (who, count) in sent.iter().enumerate() {
            let from = if who == 0 { "alice" } else { "carol" };
            let texts: Vec<_> = (got.iter().filter(|m| m.0 == from)).map(|m| m.1.clone()).collect();
            let expected: Vec<_> = (0..*count).map(|i| format!("{who}:{i}")).collect();
            proptest::prop_assert_eq!(texts, expected);
        }
        proptest::prop_assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
    }
}

#[test]
fn a_message_acknowledged_while_a_rescan_reads_is_not_handed_over_again() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    send(&mut c, 0, 1, "bob", "m1");
    let got = messages_in(&c.take(1, 2));
    assert_eq!(got, vec![("alice".into(), "m1".into(), false)]);

    // m2 is stored by node 0; its notice makes node 1 read bob's queue, which still holds m1.
    let n = &mut c.nodes[0];
    let frame = wire::request_frame(500, wire::send_instant("bob", "m2"));
    n.broker.handle_frame(ConnId(1), &frame, n.now);
    let ask = c.nodes[0].broker.poll_cluster().expect("where is bob");
    c.carry_out(0, ask);
    wire::commit(&mut c.nodes[0].broker);
    let notice = c.nodes[0].broker.poll_cluster();
    assert!(
        matches!(notice, Some(ClusterOut::Stored { .. })),
        "{notice:?}"
    );
    let n = &mut c.nodes[1];
    let stored = ClusterIn::Stored {
        app: APP.into(),
        account: "bob".into(),
    };
    n.broker.handle_cluster(stored, n.now);
    let read = n.broker.poll_store().expect("a read of bob's queue");
    // bob acknowledges m1 while the read is under way: its deletion follows the read.
    n.broker
        .handle_frame(ConnId(2), &wire::ack_all_frame(), n.now);
    let mut store = n.broker.store().clone();
    for done in beckon_broker::Store::execute(&mut store, vec![read]) {
        n.broker.handle_store_done(done);
    }
    let got = messages_in(&c.take(1, 2));
    assert_eq!(
        got,
        vec![("alice".into(), "m2".into(), false)],
        "m1 once only"
    );
    c.ack(1, 2);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
}

// ---- calls across nodes ----------------------------------------------------------------------

use pb::call_event::Kind as CallKind;
use std::time::Duration;

fn invite(channel: &str, to: &str, extra: &str) -> Op {
    Op::Invite(pb::Invite {
        channel: channel.into(),
        account: to.into(),
        extra: extra.into(),
    })
}

fn answer(channel: &str, caller: &str, extra: &str, accept: bool) -> Op {
    let m = pb::InviteAnswer {
        channel: channel.into(),
        account: caller.into(),
        extra: extra.into(),
    };
    if accept {
        Op::InviteAccept(m)
    } else {
        Op::InviteRefuse(m)
    }
}

fn end(channel: &str, peer: &str, as_caller: bool) -> Op {
    Op::InviteEnd(pb::InviteEnd {
        channel: channel.into(),
        account: peer.into(),
        as_caller,
    })
}

fn dtmf(channel: &str, peer: &str, digits: &str, as_caller: bool) -> Op {
    Op::InviteDtmf(pb::InviteDtmf {
        channel: channel.into(),
        account: peer.into(),
        dtmf: digits.into(),
        as_caller,
    })
}

/// The call events among frames.
fn calls_in(frames: &[server_frame::Kind]) -> Vec<pb::CallEvent> {
    frames
        .iter()
        .filter_map(|k| match k {
            server_frame::Kind::Event(pb::Event {
                body: Some(pb::event::Body::Call(c)),
                ..
            }) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The kinds (with the account named and the code) of the call events `conn` on `node` got.
fn call_kinds(c: &mut Cluster, node: usize, conn: u64) -> Vec<(CallKind, String, i32)> {
    calls_in(&c.take(node, conn))
        .into_iter()
        .map(|e| (e.kind(), e.account, e.code))
        .collect()
}

/// alice on node 0 (conn 1), bob on node 1 (conn 2).
fn two_callers() -> Cluster {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c
}

/// alice invites bob to `room`; bob's node has the invitation ringing.
fn ringing(c: &mut Cluster) {
    let reply = c.request(0, 1, invite("room", "bob", r#"{"k":1}"#));
    assert_eq!(reply.code, 0, "{reply:?}");
    let got = calls_in(&c.take(1, 2));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind(), CallKind::Received);
    assert_eq!(
        (got[0].account.as_str(), got[0].extra.as_str()),
        ("alice", r#"{"k":1}"#)
    );
    assert!(!got[0].caller);
}

#[test]
fn a_call_crosses_nodes_invite_received_accept_dtmf_end() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    assert_eq!(
        c.nodes[1].broker.calls_in_progress(),
        1,
        "bob's node keeps its half"
    );
    // bob's client has the invitation: alice hears so.
    c.ack(1, 2);
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(CallKind::ReceivedByPeer, "bob".into(), 0)]
    );
    assert_eq!(
        c.request(1, 2, answer("room", "alice", r#"{"ok":1}"#, true))
            .code,
        0
    );
    let got = calls_in(&c.take(0, 1));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            got[0].kind(),
            got[0].account.as_str(),
            got[0].extra.as_str(),
            got[0].caller
        ),
        (CallKind::AcceptedByPeer, "bob", r#"{"ok":1}"#, true)
    );
    // DTMF both ways.
    assert_eq!(c.request(0, 1, dtmf("room", "bob", "12#", true)).code, 0);
    let got = calls_in(&c.take(1, 2));
    assert_eq!(
        (
            got[0].kind(),
            got[0].msg_type.as_str(),
            got[0].msg_data.as_str()
        ),
        (CallKind::Msg, "DTMF", "12#")
    );
    assert_eq!(c.request(1, 2, dtmf("room", "alice", "9", false)).code, 0);
    let got = calls_in(&c.take(0, 1));
    assert_eq!(
        (got[0].kind(), got[0].msg_data.as_str()),
        (CallKind::Msg, "9")
    );
    // The callee ends it.
    assert_eq!(c.request(1, 2, end("room", "alice", false)).code, 0);
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(CallKind::EndByPeer, "bob".into(), 0)]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), 0);
    assert_eq!(c.nodes[1].broker.cluster_call_signals(), 0);
}

#[test]
fn an_accepted_call_ended_by_its_caller_ends_on_the_other_node() {
    let mut c = two_callers();
    ringing(&mut c);
    // Answering before acknowledging: alice hears the receipt first, then the answer.
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    let kinds: Vec<_> = call_kinds(&mut c, 0, 1).into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, [CallKind::ReceivedByPeer, CallKind::AcceptedByPeer]);
    assert_eq!(c.request(0, 1, end("room", "bob", true)).code, 0);
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn a_refusal_crosses_nodes() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(
        c.request(1, 2, answer("room", "alice", r#"{"busy":1}"#, false))
            .code,
        0
    );
    let got = calls_in(&c.take(0, 1));
    let last = got.last().expect("events");
    assert_eq!(
        (last.kind(), last.account.as_str(), last.extra.as_str()),
        (CallKind::RefusedByPeer, "bob", r#"{"busy":1}"#)
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
    // The call is gone on both sides: answering or ending it again is a wrong parameter.
    let again = c.request(1, 2, answer("room", "alice", "", true));
    assert_eq!(again.code, ErrorCode::GeneralWrongParam.code());
    let again = c.request(0, 1, end("room", "bob", true));
    assert_eq!(again.code, ErrorCode::GeneralWrongParam.code());
}

#[test]
fn a_cancelled_invitation_ends_on_the_callees_node() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(0, 1, end("room", "bob", true)).code, 0);
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
    let late = c.request(1, 2, answer("room", "alice", "", true));
    assert_eq!(late.code, ErrorCode::GeneralWrongParam.code());
}

#[test]
fn bad_call_requests_across_nodes_get_the_specs_codes_and_change_nothing() {
    let mut c = two_callers();
    ringing(&mut c);
    let again = c.request(0, 1, invite("room", "bob", ""));
    assert_eq!(again.code, ErrorCode::InviteReinvite.code());
    let big_extra = format!(r#"{{"k":"{}"}}"#, "x".repeat(8200));
    let cases = [
        (0, 1, invite("", "bob", ""), ErrorCode::GeneralWrongParam),
        (0, 1, invite("room", "", ""), ErrorCode::GeneralWrongParam),
        (
            0,
            1,
            invite("room", "bob", "not json"),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            invite("room", &"b".repeat(129), ""),
            ErrorCode::GeneralLargeParam,
        ),
        (
            1,
            2,
            answer("other", "alice", "", true),
            ErrorCode::GeneralWrongParam,
        ),
        (
            1,
            2,
            answer("room", "carol", "", false),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            dtmf("room", "bob", "12a", true),
            ErrorCode::GeneralWrongParam,
        ),
        (
            1,
            2,
            end("room", "alice", true),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            answer("room", "bob", "", true),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            invite("room", "alice", ""),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            invite("room", "b ob", ""),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            invite(&"r".repeat(129), "bob", ""),
            ErrorCode::GeneralLargeParam,
        ),
        (
            0,
            1,
            invite("r2", "bob", &big_extra),
            ErrorCode::GeneralLargeParam,
        ),
        (
            1,
            2,
            answer("room", "alice", &big_extra, true),
            ErrorCode::GeneralLargeParam,
        ),
        (
            0,
            1,
            dtmf("room", "bob", "", true),
            ErrorCode::GeneralWrongParam,
        ),
        (
            0,
            1,
            dtmf("room", "bob", &"1".repeat(9000), true),
            ErrorCode::GeneralLargeParam,
        ),
        (
            0,
            1,
            dtmf("room", "carol", "1", true),
            ErrorCode::GeneralWrongParam,
        ),
        (1, 2, end("", "alice", false), ErrorCode::GeneralWrongParam),
    ];
    for (node, conn, op, code) in cases {
        let what = format!("{op:?}");
        let reply = c.request(node, conn, op);
        assert_eq!(reply.code, code.code(), "{what}: {reply:?}");
    }
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 1);
    assert!(call_kinds(&mut c, 1, 2).is_empty());
}

#[test]
fn an_invitation_to_an_account_on_no_node_fails_as_on_one_node() {
    let mut c = two_callers();
    // `_require_peer_online`: refused at once with 703.
    let reply = c.request(
        0,
        1,
        invite("room", "carol", r#"{"_require_peer_online":1}"#),
    );
    assert_eq!(reply.code, ErrorCode::InvitePeerOffline.code(), "{reply:?}");
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    // Otherwise it waits for carol (20 s), then fails with 703.
    assert_eq!(c.request(0, 1, invite("room", "carol", "")).code, 0);
    c.advance(Duration::from_secs(19));
    assert!(call_kinds(&mut c, 0, 1).is_empty());
    c.advance(Duration::from_secs(2));
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "carol".into(),
            ErrorCode::InvitePeerOffline.code()
        )]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), 0);
}

#[test]
fn a_waiting_invitation_rings_when_its_callee_logs_in_on_another_node() {
    let mut c = two_callers();
    assert_eq!(
        c.request(0, 1, invite("room", "carol", r#"{"x":2}"#)).code,
        0
    );
    c.advance(Duration::from_secs(5));
    let frames = c.login_frames(1, 3, "carol");
    c.conns.push((1, 3));
    assert!(
        calls_in(&frames).is_empty(),
        "not at once: the caller's node asks again"
    );
    c.advance(Duration::from_secs(3));
    let got = calls_in(&c.take(1, 3));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            got[0].kind(),
            got[0].account.as_str(),
            got[0].extra.as_str()
        ),
        (CallKind::Received, "alice", r#"{"x":2}"#)
    );
    assert_eq!(c.request(1, 3, answer("room", "alice", "", true)).code, 0);
    let kinds: Vec<_> = call_kinds(&mut c, 0, 1).into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, [CallKind::ReceivedByPeer, CallKind::AcceptedByPeer]);
    // Accepted: the wait is over, nothing fails later.
    c.advance(Duration::from_secs(30));
    assert!(call_kinds(&mut c, 0, 1).is_empty());
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
}

#[test]
fn a_waiting_invitation_rings_when_its_callee_logs_in_on_the_callers_node() {
    let mut c = two_callers();
    assert_eq!(c.request(0, 1, invite("room", "carol", "")).code, 0);
    let frames = c.login_frames(0, 3, "carol");
    let got = calls_in(&frames);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind(), CallKind::Received);
    c.advance(Duration::from_secs(25));
    assert!(
        !call_kinds(&mut c, 0, 3).contains(&(CallKind::Received, "alice".into(), 0)),
        "rung once"
    );
}

#[test]
fn an_unanswered_invitation_times_out_on_the_callers_node_and_ends_on_the_callees() {
    let mut c = two_callers();
    ringing(&mut c);
    c.advance(Duration::from_secs(61));
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InviteTimeout.code()
        )]
    );
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn a_side_going_offline_fails_or_ends_the_call_on_the_other_node() {
    // The callee logs out: the caller's invitation fails with 703.
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(1, 2, Op::Logout(pb::Logout {})).code, 0);
    c.route();
    let got = call_kinds(&mut c, 0, 1);
    assert_eq!(
        got.last(),
        Some(&(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InvitePeerOffline.code()
        )),
        "{got:?}"
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    // The caller is kicked by a login elsewhere: the callee's call ends.
    let mut c = two_callers();
    ringing(&mut c);
    c.login(1, 3, "alice");
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn a_signal_that_cannot_be_delivered_fails_the_call_instead_of_leaving_it_hanging() {
    // Redis unreachable at the invitation: refused with INVITE_E_NET and the reason.
    let mut c = two_callers();
    c.reachable = false;
    let reply = c.request(0, 1, invite("room", "bob", ""));
    assert_eq!(reply.code, ErrorCode::InviteNet.code(), "{reply:?}");
    assert!(reply.message.contains("Redis is unreachable"), "{reply:?}");
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);

    // The callee's node stops listening once the call rings: the caller's next signal does
    // not get there, and the caller hears the call fail with 703.
    let mut c = two_callers();
    ringing(&mut c);
    c.drop_signals = true;
    assert_eq!(c.request(0, 1, dtmf("room", "bob", "1", true)).code, 0);
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InvitePeerOffline.code()
        )]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);

    // An accepted call whose signal is lost ends for the side that is left.
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    c.take(0, 1);
    c.drop_signals = true;
    assert_eq!(c.request(1, 2, dtmf("room", "alice", "5", false)).code, 0);
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);

    // Redis goes away while a call rings: the callee's acceptance cannot reach the caller;
    // the callee hears the end.
    let mut c = two_callers();
    ringing(&mut c);
    c.reachable = false;
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    let kinds: Vec<_> = call_kinds(&mut c, 1, 2).into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, [CallKind::EndByPeer]);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn the_callees_copy_goes_when_the_callers_node_died_with_the_call() {
    let mut c = two_callers();
    ringing(&mut c);
    // The caller's node dies: nothing more comes from it, and its presence expires.
    c.presence.remove(&(APP.into(), "alice".into()));
    c.nodes[1].advance(Duration::from_secs(69));
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 1);
    let n = &mut c.nodes[1];
    let at = n.now + Duration::from_secs(2);
    n.broker.handle_timeout(at);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn call_signals_waiting_for_the_cluster_are_bounded() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    c.hold_signals = true;
    let max = beckon_broker::cluster_calls::MAX_PENDING_SIGNALS_PER_SESSION;
    for i in 0..max {
        let reply = c.request(0, 1, dtmf("room", "bob", "1", true));
        assert_eq!(reply.code, 0, "{i}: {reply:?}");
    }
    let refused = c.request(0, 1, dtmf("room", "bob", "1", true));
    assert_eq!(refused.code, ErrorCode::GeneralFailed.code(), "{refused:?}");
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), max);
    c.release_signals();
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), 0);
    let digits = calls_in(&c.take(1, 2))
        .into_iter()
        .filter(|e| e.kind() == CallKind::Msg)
        .count();
    assert_eq!(digits, max, "every digit accepted arrived, once");
    assert_eq!(c.request(0, 1, dtmf("room", "bob", "1", true)).code, 0);

    // Invitations a session places across nodes count against its bound as on one node.
    let mut c = two_callers();
    c.hold_signals = true;
    let per_session = 100; // The default `max_invites_per_session`.
    for i in 0..per_session {
        let id = c.next_request;
        c.next_request += 1;
        let n = &mut c.nodes[0];
        let op = invite(&format!("r{i}"), "bob", "");
        n.broker
            .handle_frame(ConnId(1), &wire::request_frame(id, op), n.now);
    }
    let refused = c.request(0, 1, invite("last", "bob", ""));
    assert_eq!(refused.code, ErrorCode::InviteOther.code(), "{refused:?}");
    c.release_signals();
    assert_eq!(c.nodes[1].broker.calls_in_progress(), per_session);
}

#[test]
fn a_stale_invitation_is_refused_back_to_its_caller() {
    let mut c = two_callers();
    let n = &mut c.nodes[1];
    let stale = ClusterIn::CallSignal {
        app: APP.into(),
        account: "bob".into(),
        session: 999,
        signal: beckon_broker::CallSignal {
            kind: CallKind::Received as i32,
            channel: "room".into(),
            account: "alice".into(),
            ..Default::default()
        },
    };
    n.broker.handle_cluster(stale, n.now);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
    c.route();
    assert!(call_kinds(&mut c, 1, 2).is_empty());
}

#[test]
fn an_accepted_call_ends_when_the_other_sides_node_dies() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    c.take(0, 1);
    // Alive: the checks change nothing.
    c.advance(Duration::from_secs(25));
    assert!(call_kinds(&mut c, 0, 1).is_empty());
    assert!(call_kinds(&mut c, 1, 2).is_empty());
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    // alice's node dies: its registration expires, so alice reads offline everywhere, and
    // bob's node hears nothing more from it. Within a check, bob's call ends.
    c.presence.remove(&(APP.into(), "alice".into()));
    c.advance(Duration::from_secs(11));
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn a_ringing_invitation_fails_when_the_callees_node_dies() {
    let mut c = two_callers();
    ringing(&mut c);
    c.take(0, 1);
    // Alive: the checks change nothing.
    c.advance(Duration::from_secs(25));
    assert!(call_kinds(&mut c, 0, 1).is_empty());
    assert!(call_kinds(&mut c, 1, 2).is_empty());
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    // bob's node dies: bob reads offline everywhere. Within a check, long before the
    // invitation's timeout, alice hears that bob is offline (703), as when he logs out.
    c.presence.remove(&(APP.into(), "bob".into()));
    c.advance(Duration::from_secs(11));
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InvitePeerOffline.code()
        )]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
}

#[test]
fn a_ringing_invitation_the_callees_node_no_longer_has_fails() {
    let mut c = two_callers();
    ringing(&mut c);
    c.take(0, 1);
    // bob refuses, and the refusal never reaches alice's node.
    c.drop_signals = true;
    assert_eq!(c.request(1, 2, answer("room", "alice", "", false)).code, 0);
    c.drop_signals = false;
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
    // alice's node asks bob's whether it still has the invitation: it does not, so it fails
    // for alice, and bob hears nothing more.
    c.advance(Duration::from_secs(11));
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InvitePeerOffline.code()
        )]
    );
    assert!(call_kinds(&mut c, 1, 2).is_empty());
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
}

#[test]
fn a_ringing_invitation_is_not_failed_by_checks_that_cannot_ask() {
    let mut c = two_callers();
    ringing(&mut c);
    c.take(0, 1);
    c.reachable = false;
    c.advance(Duration::from_secs(25));
    assert!(call_kinds(&mut c, 0, 1).is_empty());
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 1);
    // Redis back: it still rings, and times out as before.
    c.reachable = true;
    c.advance(Duration::from_secs(36));
    assert_eq!(
        call_kinds(&mut c, 0, 1),
        [(
            CallKind::Failed,
            "bob".into(),
            ErrorCode::InviteTimeout.code()
        )]
    );
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
}

#[test]
fn an_accepted_call_the_other_node_no_longer_has_ends() {
    let mut c = two_callers();
    ringing(&mut c);
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    c.take(0, 1);
    // alice ends it, and the end never reaches bob's node.
    c.drop_signals = true;
    assert_eq!(c.request(0, 1, end("room", "bob", true)).code, 0);
    c.drop_signals = false;
    assert_eq!(c.nodes[0].broker.calls_in_progress(), 0);
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 1);
    // bob's node asks alice's whether it still has the call: it does not, so it ends.
    c.advance(Duration::from_secs(11));
    assert_eq!(
        call_kinds(&mut c, 1, 2),
        [(CallKind::EndByPeer, "alice".into(), 0)]
    );
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 0);
}

#[test]
fn a_new_invitation_replaces_a_copy_whose_end_was_lost() {
    let mut c = two_callers();
    ringing(&mut c);
    c.drop_signals = true;
    assert_eq!(c.request(0, 1, end("room", "bob", true)).code, 0);
    c.drop_signals = false;
    assert_eq!(
        c.nodes[1].broker.calls_in_progress(),
        1,
        "bob's node missed the end"
    );
    let reply = c.request(0, 1, invite("room", "bob", r#"{"n":2}"#));
    assert_eq!(reply.code, 0, "{reply:?}");
    let got = calls_in(&c.take(1, 2));
    let got: Vec<_> = got.iter().map(|e| (e.kind(), e.extra.as_str())).collect();
    assert_eq!(
        got,
        [
            (CallKind::EndByPeer, ""),
            (CallKind::Received, r#"{"n":2}"#)
        ]
    );
    assert_eq!(c.nodes[1].broker.calls_in_progress(), 1);
    assert_eq!(c.request(1, 2, answer("room", "alice", "", true)).code, 0);
    let kinds: Vec<_> = call_kinds(&mut c, 0, 1).into_iter().map(|k| k.0).collect();
    assert_eq!(kinds, [CallKind::ReceivedByPeer, CallKind::AcceptedByPeer]);
}

#[test]
fn invitations_waiting_for_the_cluster_are_bounded_per_node() {
    let mut c = two_callers();
    c.hold_signals = true;
    let max = beckon_broker::cluster::MAX_PENDING_QUERIES;
    // Sessions of their own, each within its 100 invitations, until the node holds `max`.
    let mut sent = 0;
    let mut conn = 10;
    while sent < max {
        conn += 1;
        c.login(0, conn, &format!("caller{conn}"));
        for i in 0..100.min(max - sent) {
            let id = c.next_request;
            c.next_request += 1;
            let n = &mut c.nodes[0];
            let op = invite(&format!("r{i}"), "bob", "");
            n.broker
                .handle_frame(ConnId(conn), &wire::request_frame(id, op), n.now);
            sent += 1;
        }
    }
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), max);
    c.login(0, 9_999, "one-more");
    let refused = c.request(0, 9_999, invite("room", "bob", ""));
    assert_eq!(refused.code, ErrorCode::GeneralFailed.code(), "{refused:?}");
    assert!(refused.message.contains("too many"), "{refused:?}");
    assert_eq!(c.nodes[0].broker.cluster_call_signals(), max);
    // A local callee needs no signal: still served.
    c.login(0, 10_000, "local");
    assert_eq!(c.request(0, 9_999, invite("room", "local", "")).code, 0);
}

// ---- channels ---------------------------------------------------------------------------------

impl Cluster {
    /// Carries out a channel operation as the Redis scripts do: check, write, publish.
    fn channel_op(
        &mut self,
        node: usize,
        query: Option<u64>,
        app: String,
        channel: String,
        op: ChannelOp,
    ) {
        let now = self.nodes[node].now;
        if !self.reachable {
            if let Some(query) = query {
                let result = Err((ErrorCode::GeneralFailed, "Redis is unreachable".to_owned()));
                let done = ClusterIn::ChannelDone { query, result };
                self.nodes[node].broker.handle_cluster(done, now);
            }
            return;
        }
        let key = (app.clone(), channel.clone());
        let c = self.chans.entry(key.clone()).or_default();
        let result: Result<ChannelAnswer, (ErrorCode, String)> = match op {
            ChannelOp::Join { account, session } => {
                let found = c.members.iter().position(|m| m.0 == account);
                let again = found.is_some();
                match found {
                    Some(i) => c.members[i] = (account.clone(), node, session),
                    None => c.members.push((account.clone(), node, session)),
                }
                c.ever.insert(account.clone());
                let (count, total) = (c.members.len(), c.ever.len());
                let members: Vec<String> = c.members.iter().map(|m| m.0.clone()).collect();
                let members = members[members.len().saturating_sub(200)..].to_vec();
                let attrs: Vec<(String, String)> = c
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let joined = ClusterIn::ChannelJoined {
                    query: query.expect("a join waits"),
                    app: app.clone(),
                    channel: channel.clone(),
                    account: account.clone(),
                    session,
                    count,
                    total,
                    members,
                    attrs,
                };
                self.nodes[node].broker.handle_cluster(joined, now);
                let event = ChannelEvent::Joined {
                    account: account.clone(),
                    count,
                    total,
                    again,
                };
                self.publish(&key, event, None);
                if !again {
                    self.channel_event(&app, &channel, "channel_join", &account);
                }
                Ok(ChannelAnswer::Done)
            }
            ChannelOp::Leave {
                account, session, ..
            } => {
                let found = (c.members.iter()).position(|m| *m == (account.clone(), node, session));
                if let Some(i) = found {
                    c.members.remove(i);
                    let count = c.members.len();
                    let left = ChannelEvent::Left {
                        account: account.clone(),
                        count,
                    };
                    self.publish(&key, left, Some(node));
                    self.channel_event(&app, &channel, "channel_leave", &account);
                }
                Ok(ChannelAnswer::Done)
            }
            ChannelOp::Send {
                sender, msg, id, ..
            } => {
                self.publish(&key, ChannelEvent::Message { sender, msg, id }, None);
                Ok(ChannelAnswer::Done)
            }
            ChannelOp::SetAttr {
                name,
                value,
                max_attrs,
                ..
            } => {
                if !c.attrs.contains_key(&name) && c.attrs.len() >= max_attrs {
                    Err((
                        ErrorCode::GeneralFailed,
                        format!("a channel may hold at most {max_attrs} attributes"),
                    ))
                } else {
                    c.attrs.insert(name.clone(), value.clone());
                    let kind = "update".to_owned();
                    self.publish(&key, ChannelEvent::Attr { name, value, kind }, None);
                    Ok(ChannelAnswer::Done)
                }
            }
            ChannelOp::DelAttr { name } => {
                if c.attrs.remove(&name).is_some() {
                    let (value, kind) = (String::new(), "del".to_owned());
                    self.publish(&key, ChannelEvent::Attr { name, value, kind }, None);
                }
                Ok(ChannelAnswer::Done)
            }
            ChannelOp::ClearAttr => {
                c.attrs.clear();
                let (name, value, kind) = (String::new(), String::new(), "clear".to_owned());
                self.publish(&key, ChannelEvent::Attr { name, value, kind }, None);
                Ok(ChannelAnswer::Done)
            }
            ChannelOp::Num => Ok(ChannelAnswer::Num(c.members.len())),
            ChannelOp::IsIn { account } => Ok(ChannelAnswer::IsIn(
                c.members.iter().any(|m| m.0 == account),
            )),
            ChannelOp::Users { max, .. } => {
                let all: Vec<String> = c.members.iter().map(|m| m.0.clone()).collect();
                let list = all[all.len().saturating_sub(max)..].to_vec();
                Ok(ChannelAnswer::Users {
                    num: all.len(),
                    list,
                })
            }
        };
        if let Some(query) = query {
            let now = self.nodes[node].now;
            let done = ClusterIn::ChannelDone { query, result };
            self.nodes[node].broker.handle_cluster(done, now);
        }
    }

    /// One publish on the channel's topic: each node with members (and `also`, still
    /// subscribed while its last member leaves) receives it once.
    fn publish(&mut self, key: &(String, String), event: ChannelEvent, also: Option<usize>) {
        self.publishes += 1;
        let mut nodes: Vec<usize> = (self.chans.get(key).into_iter())
            .flat_map(|c| c.members.iter().map(|m| m.1))
            .chain(also)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        for node in nodes {
            self.received[node] += 1;
            let input = ClusterIn::ChannelEvent {
                app: key.0.clone(),
                channel: key.1.clone(),
                event: event.clone(),
            };
            let now = self.nodes[node].now;
            self.nodes[node].broker.handle_cluster(input, now);
        }
    }

    /// What the join and leave scripts publish on `_agora_channel_event` for an ordinary
    /// channel: a message of the system account, numbered by the receiving nodes (id 0).
    fn channel_event(&mut self, app: &str, channel: &str, kind: &str, account: &str) {
        if beckon_proto::validate::is_special_channel(channel) {
            return;
        }
        let msg = format!(r#"{{"account":"{account}","channel":"{channel}","event":"{kind}"}}"#);
        let key = (
            app.to_owned(),
            beckon_broker::CHANNEL_EVENT_CHANNEL.to_owned(),
        );
        let event = ChannelEvent::Message {
            sender: "_system".into(),
            msg,
            id: 0,
        };
        self.publish(&key, event, None);
    }

    /// Carries out the channel operations held so far.
    fn release_held(&mut self) {
        self.hold_channel_ops = false;
        for (node, out) in std::mem::take(&mut self.held_channel_ops) {
            self.carry_out(node, out);
        }
        self.route();
    }

    fn members(&self, channel: &str) -> Vec<String> {
        let key = (APP.to_owned(), channel.to_owned());
        (self.chans.get(&key).into_iter())
            .flat_map(|c| c.members.iter().map(|m| m.0.clone()))
            .collect()
    }

    fn join(&mut self, node: usize, conn: u64, channel: &str) -> pb::ChannelJoined {
        let reply = self.request(node, conn, wire::join(channel));
        assert_eq!(reply.code, 0, "{reply:?}");
        match reply.result {
            Some(pb::reply::Result::ChannelJoined(j)) => j,
            other => panic!("not a join answer: {other:?}"),
        }
    }

    fn channel_send(&mut self, node: usize, conn: u64, channel: &str, msg: &str) -> pb::Reply {
        let op = Op::SendChannelMessage(pb::SendChannelMessage {
            channel: channel.into(),
            msg: msg.into(),
            msg_id: String::new(),
            force: false,
        });
        self.request(node, conn, op)
    }

    fn invoke(&mut self, node: usize, conn: u64, name: &str, req: &str) -> pb::InvokeResult {
        let op = wire::invoke_request(&format!("io.agora.signal.{name}"), req);
        wire::invoke_result(self.request(node, conn, op))
    }
}

/// (event kind, channel, account or sender, text) of the channel events among frames.
fn channel_events(frames: &[server_frame::Kind]) -> Vec<(&'static str, String, String, String)> {
    use pb::event::Body;
    frames
        .iter()
        .filter_map(|k| match k {
            server_frame::Kind::Event(pb::Event { body: Some(b), .. }) => match b {
                Body::ChannelUserJoined(m) => Some((
                    "joined",
                    m.channel.clone(),
                    m.account.clone(),
                    String::new(),
                )),
                Body::ChannelUserLeft(m) => {
                    Some(("left", m.channel.clone(), m.account.clone(), String::new()))
                }
                Body::ChannelMessage(m) => Some((
                    "message",
                    m.channel.clone(),
                    m.sender.clone(),
                    m.msg.clone(),
                )),
                Body::ChannelAttrUpdated(a) => Some((
                    "attr",
                    a.channel.clone(),
                    format!("{}={}", a.name, a.value),
                    a.r#type.clone(),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn ev(
    kind: &'static str,
    channel: &str,
    who: &str,
    text: &str,
) -> (&'static str, String, String, String) {
    (kind, channel.into(), who.into(), text.into())
}

/// (channels, channel members) in the metrics' gauges of `node`.
fn channel_gauges(c: &Cluster, node: usize) -> (usize, usize) {
    let snap = c.nodes[node].broker.snapshot();
    let label = beckon_broker::admin::DEVELOPMENT_APP_LABEL;
    snap.gauges
        .get(label)
        .map_or((0, 0), |g| (g.channels, g.channel_members))
}

#[test]
fn each_nodes_channel_gauges_count_its_replicas_and_its_own_members() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    c.login(1, 4, "dave");
    assert_eq!(channel_gauges(&c, 0), (0, 0));
    c.join(0, 1, "room");
    c.join(1, 2, "room");
    c.join(1, 3, "room");
    c.join(1, 4, "hall");
    // "room" counts on both nodes; its members are split between them.
    assert_eq!(channel_gauges(&c, 0), (1, 1));
    assert_eq!(channel_gauges(&c, 1), (2, 3));
    assert_eq!(c.request(1, 2, wire::leave("room")).code, 0);
    assert_eq!(channel_gauges(&c, 1), (2, 2));
    assert_eq!(c.request(1, 3, wire::leave("room")).code, 0);
    c.route();
    assert_eq!(channel_gauges(&c, 0), (1, 1));
    assert_eq!(
        channel_gauges(&c, 1),
        (1, 1),
        "no member of room is left here"
    );
}

#[test]
fn channel_members_counts_and_join_events_span_the_nodes() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    let joined = c.join(0, 1, "room");
    assert_eq!(joined.accounts, ["alice"]);
    let joined = c.join(1, 2, "room");
    assert_eq!(
        joined.accounts,
        ["alice", "bob"],
        "the member list spans the nodes"
    );
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("joined", "room", "bob", "")],
        "alice (node 0) hears bob (node 1) join"
    );
    assert!(channel_events(&c.take(1, 2)).is_empty(), "not of itself");
    c.join(0, 1, "room"); // Again: nobody hears of it, nothing doubles.
    c.join(1, 3, "room");
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("joined", "room", "carol", "")]
    );
    assert_eq!(
        channel_events(&c.take(1, 2)),
        [ev("joined", "room", "carol", "")]
    );
    assert_eq!(c.members("room"), ["alice", "bob", "carol"]);

    // Counts and lists from any node, members or not.
    let num = c.request(
        1,
        3,
        Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
            channel: "room".into(),
        }),
    );
    assert_eq!(
        num.result,
        Some(pb::reply::Result::ChannelUserNum(pb::ChannelUserNum {
            num: 3
        }))
    );
    let is_in = |c: &mut Cluster, account: &str| {
        let op = Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
            channel: "room".into(),
            account: account.into(),
        });
        match c.request(0, 1, op).result {
            Some(pb::reply::Result::ChannelIsIn(i)) => i.is_in,
            other => panic!("{other:?}"),
        }
    };
    assert!(is_in(&mut c, "carol") && !is_in(&mut c, "dave"));
    let r = c.invoke(0, 1, "channel_query_userlist", r#"{"name":"room"}"#);
    assert_eq!(
        r.resp,
        r#"{"list":[["alice",0],["bob",0],["carol",0]],"num":3}"#
    );
    let r = c.invoke(
        1,
        2,
        "channel_query_userlist_all",
        r#"{"name":"room","num":1}"#,
    );
    assert_eq!(r.resp, r#"{"list":[["carol",0]],"num":3}"#);
    let r = c.invoke(1, 2, "channel_query_num", r#"{"name":"room"}"#);
    assert_eq!(r.resp, r#"{"num":3}"#);
    let r = c.invoke(
        1,
        2,
        "channel_query_user_isin",
        r#"{"name":"room","account":"bob"}"#,
    );
    assert_eq!(r.resp, r#"{"isin":1}"#);
    assert_eq!(
        c.nodes[0].broker.cluster_local_members(APP, "room"),
        ["alice"]
    );
    assert_eq!(
        c.nodes[1].broker.cluster_local_members(APP, "room"),
        ["bob", "carol"]
    );
    assert_eq!(
        c.nodes[0].broker.channel_count(APP),
        0,
        "no single-node channel"
    );
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
}

#[test]
fn a_channel_message_is_published_once_and_reaches_every_member_once_in_order() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    for (node, conn) in [(0, 1), (1, 2), (1, 3)] {
        c.join(node, conn, "room");
    }
    for conn in [(0, 1), (1, 2), (1, 3)] {
        c.take(conn.0, conn.1);
    }
    let (publishes, received) = (c.publishes, c.received.clone());
    for i in 0..20 {
        assert_eq!(c.channel_send(0, 1, "room", &format!("a{i}")).code, 0);
        assert_eq!(c.channel_send(1, 2, "room", &format!("b{i}")).code, 0);
    }
    assert_eq!(
        c.publishes - publishes,
        40,
        "one publish per message, not per member"
    );
    assert_eq!(
        c.received[0] - received[0],
        40,
        "each node receives each message once"
    );
    assert_eq!(
        c.received[1] - received[1],
        40,
        "node 1 has two members, gets it once"
    );
    for (node, conn) in [(0, 1), (1, 2), (1, 3)] {
        let frames = c.take(node, conn);
        // Message ids are unique across the nodes: clients drop an id they have seen.
        let mut ids: Vec<u64> = (frames.iter())
            .filter_map(|k| match k {
                server_frame::Kind::Event(pb::Event {
                    body: Some(pb::event::Body::ChannelMessage(m)),
                    ..
                }) => Some(m.server_msg_id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 40, "40 distinct message ids");
        let got = channel_events(&frames);
        assert_eq!(
            got.len(),
            40,
            "every member, the sender included, once each"
        );
        for sender in ["alice", "bob"] {
            let texts: Vec<_> = (got.iter().filter(|e| e.2 == sender))
                .map(|e| e.3.clone())
                .collect();
            let p = &sender[..1];
            let expected: Vec<_> = (0..20).map(|i| format!("{p}{i}")).collect();
            assert_eq!(texts, expected, "{sender}'s order at conn {conn}");
        }
    }
    assert_eq!(c.nodes[1].broker.stats().channel_deliveries, 80);
}

#[test]
fn leave_logout_and_kick_are_seen_on_every_node() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    for (node, conn) in [(0, 1), (1, 2), (1, 3)] {
        c.join(node, conn, "room");
    }
    c.take(0, 1);
    c.take(1, 2);
    c.take(1, 3);
    assert_eq!(c.request(1, 2, wire::leave("room")).code, 0);
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("left", "room", "bob", "")]
    );
    assert_eq!(
        channel_events(&c.take(1, 3)),
        [ev("left", "room", "bob", "")]
    );
    assert!(channel_events(&c.take(1, 2)).is_empty());
    // Not a member any more: leaving again is refused (600), sending too (400).
    assert_eq!(
        c.request(1, 2, wire::leave("room")).code,
        ErrorCode::LeaveChannelOther.code()
    );
    assert_eq!(
        c.channel_send(1, 2, "room", "x").code,
        ErrorCode::SendMessageOther.code()
    );
    // alice logs out: the others see her leave.
    assert_eq!(c.request(0, 1, Op::Logout(pb::Logout {})).code, 0);
    c.route();
    assert_eq!(
        channel_events(&c.take(1, 3)),
        [ev("left", "room", "alice", "")]
    );
    assert_eq!(c.members("room"), ["carol"]);
    assert_eq!(
        c.nodes[0].broker.cluster_replicas(),
        0,
        "node 0 has no member left"
    );
    // carol logs in on node 0: her session on node 1 is kicked and leaves the channel.
    c.login(0, 4, "carol");
    assert!(c.members("room").is_empty());
    assert_eq!(c.nodes[1].broker.cluster_replicas(), 0);
}

#[test]
fn joining_a_second_channel_leaves_the_first_on_every_node() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(0, 1, "one");
    c.join(1, 2, "one");
    let joined = c.join(0, 1, "two");
    assert_eq!(joined.left, ["one"]);
    assert!(channel_events(&c.take(1, 2)).contains(&ev("left", "one", "alice", "")));
    assert_eq!(c.members("one"), ["bob"]);
    assert_eq!(c.members("two"), ["alice"]);
    assert_eq!(
        c.nodes[0].broker.cluster_local_members(APP, "one"),
        Vec::<String>::new()
    );
}

#[test]
fn channel_attributes_are_shared_by_the_nodes() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    c.join(0, 1, "room");
    c.join(1, 2, "room");
    c.take(0, 1);
    c.take(1, 2);
    assert_eq!(
        c.request(0, 1, wire::set_channel_attr("room", "topic", "rust"))
            .code,
        0
    );
    assert_eq!(
        channel_events(&c.take(1, 2)),
        [ev("attr", "room", "topic=rust", "update")]
    );
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("attr", "room", "topic=rust", "update")]
    );
    // A new member on either node gets them in its join answer.
    let joined = c.join(1, 3, "room");
    let attrs: Vec<_> = joined
        .attrs
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(attrs, [("topic", "rust")]);
    c.take(1, 3);
    c.take(0, 1);
    let r = c.invoke(
        1,
        3,
        "channel_del_attr",
        r#"{"channel":"room","name":"topic"}"#,
    );
    assert!(r.err.is_empty(), "{r:?}");
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("attr", "room", "topic=", "del")]
    );
    let clear = Op::ChannelClearAttr(pb::ChannelClearAttr {
        channel: "room".into(),
    });
    assert_eq!(c.request(1, 2, clear).code, 0);
    assert_eq!(
        channel_events(&c.take(0, 1)),
        [ev("attr", "room", "=", "clear")]
    );
    // `_userNotification` 0, set on node 0, silences joins on node 1 too.
    assert_eq!(
        c.request(
            0,
            1,
            wire::set_channel_attr("room", "_userNotification", "0")
        )
        .code,
        0
    );
    c.take(1, 2);
    c.login(0, 5, "dave");
    c.join(0, 5, "room");
    assert!(
        channel_events(&c.take(1, 2)).is_empty(),
        "{:?}",
        c.members("room")
    );
}

#[test]
fn bad_channel_requests_get_the_spec_codes_and_change_nothing() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(0, 1, "room");
    let code = |c: &mut Cluster, op: Op| c.request(0, 1, op).code;
    let long = "x".repeat(129);
    let cases: Vec<(Op, ErrorCode)> = vec![
        (wire::join(""), ErrorCode::GeneralWrongParam),
        (wire::join(&long), ErrorCode::GeneralLargeParam),
        (wire::join("_reserved"), ErrorCode::GeneralWrongParam),
        (
            wire::join("_agora_user_online"),
            ErrorCode::JoinChannelForbidden,
        ),
        (wire::leave(""), ErrorCode::GeneralWrongParam),
        (wire::leave("elsewhere"), ErrorCode::LeaveChannelOther),
        (
            wire::set_channel_attr("room", "_member_num", "3"),
            ErrorCode::GeneralWrongParam,
        ),
        (
            wire::set_channel_attr("room", &long, "v"),
            ErrorCode::GeneralLargeParam,
        ),
        (
            wire::set_channel_attr("room", "n", &"v".repeat(8097)),
            ErrorCode::GeneralLargeParam,
        ),
        (
            wire::set_channel_attr("other", "n", "v"),
            ErrorCode::GeneralFailed,
        ),
        (
            Op::SendChannelMessage(pb::SendChannelMessage {
                channel: "room".into(),
                msg: "x".repeat(8193),
                msg_id: String::new(),
                force: false,
            }),
            ErrorCode::GeneralLargeParam,
        ),
        (
            Op::SendChannelMessage(pb::SendChannelMessage {
                channel: "other".into(),
                msg: "x".into(),
                msg_id: String::new(),
                force: false,
            }),
            ErrorCode::SendMessageOther,
        ),
        (
            Op::SendChannelMessage(pb::SendChannelMessage {
                channel: "room".into(),
                msg: "x".into(),
                msg_id: String::new(),
                force: true,
            }),
            ErrorCode::SendMessageOther,
        ),
        (
            Op::ChannelQueryUserIsIn(pb::ChannelQueryUserIsIn {
                channel: "room".into(),
                account: String::new(),
            }),
            ErrorCode::GeneralWrongParam,
        ),
        (
            Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
                channel: "_agora_channel_event".into(),
            }),
            ErrorCode::JoinChannelForbidden,
        ),
    ];
    let publishes = c.publishes;
    for (op, want) in cases {
        let what = format!("{op:?}");
        assert_eq!(code(&mut c, op), want.code(), "{what}");
    }
    let r = c.invoke(0, 1, "channel_query_num", r#"{"channel":"room"}"#);
    assert_eq!(r.err, "1004");
    assert_eq!(c.publishes, publishes, "nothing reached the channel");
    assert_eq!(c.members("room"), ["alice"]);
    assert!(c.members("other").is_empty());
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
}

#[test]
fn channel_limits_hold_in_cluster_mode() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(0, 1, "room");
    // 60 channel messages per second per user: the 61st is 402.
    for i in 0..60 {
        assert_eq!(c.channel_send(0, 1, "room", &format!("m{i}")).code, 0);
    }
    assert_eq!(
        c.channel_send(0, 1, "room", "too many").code,
        ErrorCode::SendMessageRateLimit.code()
    );
    // The app's attribute count holds across nodes (the shared state checks it).
    for i in 0..256 {
        let set = wire::set_channel_attr("room", &format!("a{i}"), "v");
        assert_eq!(c.request(0, 1, set).code, 0);
    }
    let reply = c.request(0, 1, wire::set_channel_attr("room", "one-more", "v"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert!(
        reply.message.contains("at most 256 attributes"),
        "{reply:?}"
    );
}

#[test]
fn channels_fail_with_1001_while_redis_is_unreachable_and_nothing_is_half_done() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(1, 2, "room");
    c.take(1, 2);
    c.reachable = false;
    let reply = c.request(0, 1, wire::join("room"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert!(reply.message.contains("Redis is unreachable"), "{reply:?}");
    assert_eq!(c.nodes[0].broker.cluster_replicas(), 0);
    let reply = c.request(1, 2, wire::leave("room"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert_eq!(
        c.nodes[1].broker.cluster_local_members(APP, "room"),
        ["bob"],
        "still a member"
    );
    assert_eq!(
        c.channel_send(1, 2, "room", "hi").code,
        ErrorCode::GeneralFailed.code()
    );
    let reply = c.request(1, 2, wire::set_channel_attr("room", "a", "b"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    let r = c.invoke(0, 1, "channel_query_userlist", r#"{"name":"room"}"#);
    assert_eq!(r.err, "1001", "{r:?}");
    assert!(channel_events(&c.take(1, 2)).is_empty());
    // Back: everything works again, and the membership is as it was.
    c.reachable = true;
    assert_eq!(c.members("room"), ["bob"]);
    assert_eq!(c.join(0, 1, "room").accounts, ["bob", "alice"]);
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
    assert_eq!(c.nodes[1].broker.cluster_channel_ops(), 0);
}

#[test]
fn channel_requests_waiting_for_the_cluster_are_bounded_per_session() {
    use beckon_broker::cluster::MAX_PENDING_CHANNEL_OPS_PER_SESSION as MAX;
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(0, 2, "bob");
    c.hold_channel_ops = true;
    let n = &mut c.nodes[0];
    for i in 0..MAX as u64 + 10 {
        let op = Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
            channel: "room".into(),
        });
        n.broker
            .handle_frame(ConnId(1), &wire::request_frame(1_000 + i, op), n.now);
    }
    c.route();
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), MAX);
    assert_eq!(
        c.held_channel_ops.len(),
        MAX,
        "the rest never reached the cluster"
    );
    let replies = c.take(0, 1);
    for i in MAX as u64..MAX as u64 + 10 {
        let reply = wire::reply_in(&replies, 1_000 + i).expect("refused at once");
        assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
        assert!(
            reply.message.contains("waiting for the cluster"),
            "{reply:?}"
        );
    }
    // Another session is not starved by it.
    let (reply_id, op) = (5_000, wire::join("room"));
    let n = &mut c.nodes[0];
    n.broker
        .handle_frame(ConnId(2), &wire::request_frame(reply_id, op), n.now);
    c.route();
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), MAX + 1);
    // The cluster answers: every request is answered once, and the table is empty.
    c.release_held();
    let replies = c.take(0, 1);
    for i in 0..MAX as u64 {
        let reply = wire::reply_in(&replies, 1_000 + i).expect("a reply");
        assert_eq!(reply.code, 0, "{reply:?}");
    }
    let bob = c.take(0, 2);
    assert_eq!(wire::reply_in(&bob, reply_id).map(|r| r.code), Some(0));
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
}

#[test]
fn a_join_whose_session_ended_while_it_waited_is_undone() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(1, 2, "room");
    c.hold_channel_ops = true;
    let n = &mut c.nodes[0];
    n.broker.handle_frame(
        ConnId(1),
        &wire::request_frame(77, wire::join("room")),
        n.now,
    );
    c.route();
    // alice logs in elsewhere: her session here ends before the join is carried out.
    c.hold_channel_ops = false;
    c.login(1, 3, "alice");
    c.release_held();
    assert_eq!(
        c.members("room"),
        ["bob"],
        "the late membership was taken out again"
    );
    assert_eq!(c.nodes[0].broker.cluster_replicas(), 0);
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
}

#[test]
fn joins_waiting_when_the_subscription_is_interrupted_fail_and_are_undone() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.join(1, 2, "room");
    c.hold_channel_ops = true;
    let n = &mut c.nodes[0];
    n.broker.handle_frame(
        ConnId(1),
        &wire::request_frame(88, wire::join("room")),
        n.now,
    );
    c.route();
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 1);
    let n = &mut c.nodes[0];
    n.broker.handle_cluster(ClusterIn::Resubscribed, n.now);
    let reply = wire::reply_in(&c.take(0, 1), 88).expect("a reply");
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code());
    assert!(reply.message.contains("interrupted"), "{reply:?}");
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
    // The join was carried out after all: its membership is taken out again.
    c.release_held();
    assert_eq!(c.members("room"), ["bob"]);
    assert_eq!(c.nodes[0].broker.cluster_replicas(), 0);
    // Joining again works (request ids go on above the one used here).
    c.next_request = 100;
    assert_eq!(c.join(0, 1, "room").accounts, ["bob", "alice"]);
}

/// Logs `account` in on (`node`, `conn`) with the server privilege.
fn login_privileged(c: &mut Cluster, node: usize, conn: u64, account: &str) {
    let token = beckon_token::mint(
        b"any certificate: development mode does not check it",
        &beckon_token::TokenClaims {
            app_id: APP.into(),
            account: account.into(),
            issued_at: 0,
            expires_at: u64::MAX,
            privileges: beckon_token::Privileges::SERVER,
        },
    );
    let n = &mut c.nodes[node];
    n.broker.connect(ConnId(conn), n.now);
    n.broker.handle_frame(
        ConnId(conn),
        &wire::login_frame(APP, account, &token),
        n.now,
    );
    c.route();
    c.take(node, conn);
}

#[test]
fn the_special_channels_see_logins_joins_and_leaves_on_every_node() {
    use beckon_broker::{CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL};
    let mut c = Cluster::new(2);
    login_privileged(&mut c, 0, 1, "presence-watch");
    login_privileged(&mut c, 0, 2, "channel-watch");
    c.join(0, 1, USER_ONLINE_CHANNEL);
    c.join(0, 2, CHANNEL_EVENT_CHANNEL);
    // Without the privilege: 301, as on one node.
    c.login(1, 3, "alice");
    assert_eq!(
        c.request(1, 3, wire::join(USER_ONLINE_CHANNEL)).code,
        ErrorCode::JoinChannelForbidden.code()
    );
    c.take(0, 1);
    c.take(0, 2);
    // carol logs in on node 1, joins and leaves a channel there, and logs out.
    c.login(1, 4, "carol");
    c.join(1, 4, "room");
    assert_eq!(c.request(1, 4, wire::leave("room")).code, 0);
    assert_eq!(c.request(1, 4, Op::Logout(pb::Logout {})).code, 0);
    c.route();
    let system = |frames: &[server_frame::Kind], channel: &str| -> Vec<String> {
        channel_events(frames)
            .into_iter()
            .filter(|e| e.0 == "message" && e.1 == channel && e.2 == "_system")
            .map(|e| e.3)
            .collect()
    };
    let online = system(&c.take(0, 1), USER_ONLINE_CHANNEL);
    assert_eq!(
        online,
        [
            r#"{"account":"carol","event":"user_online"}"#,
            r#"{"account":"carol","event":"user_offline"}"#
        ]
    );
    let frames = c.take(0, 2);
    let events = system(&frames, CHANNEL_EVENT_CHANNEL);
    assert_eq!(
        events,
        [
            r#"{"account":"carol","channel":"room","event":"channel_join"}"#,
            r#"{"account":"carol","channel":"room","event":"channel_leave"}"#
        ]
    );
    // Numbered by the receiving node: distinct, and not 0.
    let ids: Vec<u64> = (frames.iter())
        .filter_map(|k| match k {
            server_frame::Kind::Event(pb::Event {
                body: Some(pb::event::Body::ChannelMessage(m)),
                ..
            }) => Some(m.server_msg_id),
            _ => None,
        })
        .collect();
    assert!(
        ids.len() == 2 && ids[0] != ids[1] && !ids.contains(&0),
        "{ids:?}"
    );
    // A login that takes the account over from another node is no "offline".
    c.login(1, 5, "presence-watch-2");
    c.take(0, 1);
    c.login(0, 6, "presence-watch-2");
    let online = system(&c.take(0, 1), USER_ONLINE_CHANNEL);
    assert_eq!(
        online,
        [r#"{"account":"presence-watch-2","event":"user_online"}"#]
    );
}

#[test]
fn auto_updates_report_the_cluster_wide_counts_to_every_nodes_members() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");
    c.login(1, 3, "carol");
    c.join(0, 1, "room");
    let set = wire::set_channel_attr("room", "_auto_update_num", "1");
    assert_eq!(c.request(0, 1, set).code, 0);
    let set = wire::set_channel_attr("room", "_auto_update_total_num", "2");
    assert_eq!(c.request(0, 1, set).code, 0);
    c.join(1, 2, "room"); // Armed from the attributes in its join answer.
    c.join(1, 3, "room");
    assert_eq!(c.request(1, 3, wire::leave("room")).code, 0);
    c.take(0, 1);
    c.take(1, 2);
    let tick = |c: &mut Cluster, secs: u64| {
        for n in &mut c.nodes {
            n.now += std::time::Duration::from_secs(secs);
            n.broker.handle_timeout(n.now);
        }
    };
    let reports = |frames: &[server_frame::Kind]| -> Vec<String> {
        channel_events(frames)
            .into_iter()
            .filter(|e| e.0 == "attr")
            .map(|e| e.2)
            .collect()
    };
    tick(&mut c, 2);
    // Two members now, three ever: on both nodes alike.
    let want = ["_member_num=2", "_total_member_num=3"];
    assert_eq!(reports(&c.take(0, 1)), want);
    assert_eq!(reports(&c.take(1, 2)), want);
    // Nothing changed: nothing is reported again.
    tick(&mut c, 2);
    assert!(reports(&c.take(0, 1)).is_empty());
    // bob leaves: alice's node reports one member.
    assert_eq!(c.request(1, 2, wire::leave("room")).code, 0);
    tick(&mut c, 1);
    assert_eq!(reports(&c.take(0, 1)), ["_member_num=1"]);
}

#[test]
fn channel_operations_waiting_for_the_cluster_are_bounded_per_node() {
    use beckon_broker::cluster::{
        MAX_PENDING_CHANNEL_OPS as MAX, MAX_PENDING_CHANNEL_OPS_PER_SESSION as PER_SESSION,
    };
    let mut c = Cluster::new(2);
    let sessions = MAX / PER_SESSION + 2;
    for i in 0..sessions {
        c.login(0, 100 + i as u64, &format!("user{i}"));
    }
    c.hold_channel_ops = true;
    let mut refused = 0;
    for i in 0..sessions {
        let conn = ConnId(100 + i as u64);
        let n = &mut c.nodes[0];
        for k in 0..PER_SESSION as u64 {
            let op = Op::ChannelQueryUserNum(pb::ChannelQueryUserNum {
                channel: "room".into(),
            });
            n.broker
                .handle_frame(conn, &wire::request_frame(1_000 + k, op), n.now);
        }
        c.route();
        let replies = c.take(0, conn.0);
        refused += (1_000..1_000 + PER_SESSION as u64)
            .filter_map(|id| wire::reply_in(&replies, id))
            .filter(|r| r.message.contains("too many channel operations"))
            .count();
    }
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), MAX);
    assert_eq!(refused, sessions * PER_SESSION - MAX);
    c.release_held();
    assert_eq!(c.nodes[0].broker.cluster_channel_ops(), 0);
}

#[test]
fn messages_to_one_account_share_one_question_and_one_session_cannot_take_the_table() {
    use beckon_broker::cluster::{MAX_PENDING_QUERIES_PER_SESSION, MAX_WAITING_SENDS_PER_SESSION};
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(0, 3, "carol");
    c.login(1, 2, "bob");
    c.hold_status = true;
    // Alice pipelines more messages to bob than a session may have waiting, while the cluster
    // is slow to say where bob is.
    let total = MAX_WAITING_SENDS_PER_SESSION + 20;
    let first = c.next_request;
    for i in 0..total {
        let id = c.next_request;
        c.next_request += 1;
        let n = &mut c.nodes[0];
        let frame = wire::request_frame(id, wire::send_instant("bob", &format!("m{i}")));
        n.broker.handle_frame(ConnId(1), &frame, n.now);
    }
    c.route();
    // One question for all of them.
    let asked = (c.held_status.iter())
        .filter(|(_, o)| matches!(o, ClusterOut::Status { account, .. } if account == "bob"))
        .count();
    assert_eq!(asked, 1, "messages to one account wait behind one question");
    let frames: Vec<_> = c.take(0, 1);
    let refused: Vec<u64> = (first..first + total as u64)
        .filter(|id| wire::reply_in(&frames, *id).is_some_and(|r| r.code == 1001))
        .collect();
    assert_eq!(
        refused.len(),
        20,
        "beyond the session's bound, refused at once"
    );
    let r = wire::reply_in(&frames, refused[0]).expect("a reply");
    assert!(
        r.message.contains("this session has too many"),
        "{}",
        r.message
    );
    // Another session of the node is not refused: its question is asked.
    let id = c.next_request;
    c.next_request += 1;
    let n = &mut c.nodes[0];
    let op = Op::QueryUserStatus(pb::QueryUserStatus {
        account: "bob".into(),
    });
    n.broker
        .handle_frame(ConnId(3), &wire::request_frame(id, op), n.now);
    c.route();
    assert!(
        wire::reply_in(&c.take(0, 3), id).is_none(),
        "waits for the cluster"
    );
    assert_eq!(c.held_status.len(), 2);
    // The answers come: every waiting message goes to bob, in order, once; carol hears.
    c.release_status();
    assert!(wire::reply_in(&c.take(0, 3), id).is_some_and(|r| r.code == 0 && online(&r)));
    let replies = c.take(0, 1);
    let accepted = (first..first + total as u64)
        .filter(|id| wire::reply_in(&replies, *id).is_some_and(|r| r.code == 0))
        .count();
    assert_eq!(accepted, MAX_WAITING_SENDS_PER_SESSION);
    c.ack(0, 1);
    let got: Vec<String> = messages_in(&c.take(1, 2))
        .into_iter()
        .map(|m| m.1)
        .collect();
    let expected: Vec<String> = (0..total)
        .map(|i| format!("m{i}"))
        .filter(|m| {
            !refused
                .iter()
                .any(|id| *id == first + m[1..].parse::<u64>().unwrap())
        })
        .collect();
    assert_eq!(got, expected);
    // Nothing is left waiting: the session may send again.
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
    send(&mut c, 0, 1, "bob", "after");

    // Questions about many accounts: a session may have a bounded number asked at once.
    c.hold_status = true;
    let first = c.next_request;
    for i in 0..MAX_PENDING_QUERIES_PER_SESSION + 5 {
        let id = c.next_request;
        c.next_request += 1;
        let n = &mut c.nodes[0];
        let op = Op::QueryUserStatus(pb::QueryUserStatus {
            account: format!("nobody{i}"),
        });
        n.broker
            .handle_frame(ConnId(1), &wire::request_frame(id, op), n.now);
    }
    c.route();
    assert_eq!(c.held_status.len(), MAX_PENDING_QUERIES_PER_SESSION);
    let frames = c.take(0, 1);
    let refused = (first..c.next_request)
        .filter(|id| wire::reply_in(&frames, *id).is_some_and(|r| r.code == 1001))
        .count();
    assert_eq!(refused, 5);
    // Carol's question is still asked.
    let reply_id = c.next_request;
    c.next_request += 1;
    let n = &mut c.nodes[0];
    let op = Op::QueryUserStatus(pb::QueryUserStatus {
        account: "bob".into(),
    });
    n.broker
        .handle_frame(ConnId(3), &wire::request_frame(reply_id, op), n.now);
    c.route();
    assert_eq!(c.held_status.len(), MAX_PENDING_QUERIES_PER_SESSION + 1);
    c.release_status();
    assert!(wire::reply_in(&c.take(0, 3), reply_id).is_some_and(|r| r.code == 0));
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
}

// ---- the admin API --------------------------------------------------------------------------

/// A token of the app with the server privilege (development mode checks no signature).
fn admin_token() -> String {
    beckon_token::mint(
        b"any certificate",
        &beckon_token::TokenClaims {
            app_id: APP.into(),
            account: "ops".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            privileges: beckon_token::Privileges::SERVER,
        },
    )
}

impl Cluster {
    /// Runs an admin request on `node`; when its answer waits for the cluster, routes until it
    /// comes.
    fn admin(&mut self, node: usize, request: AdminRequest) -> Result<AdminResponse, AdminError> {
        let first = self.admin_now(node, request);
        self.route();
        let frames = wire::drain(&mut self.nodes[node].broker);
        self.keep(node, &frames);
        match first {
            Ok(AdminResponse::Waiting { id }) => self.admin_answer(node, id).expect("an answer"),
            other => other,
        }
    }

    /// Hands an admin request to `node` and returns what it answers at once.
    fn admin_now(
        &mut self,
        node: usize,
        request: AdminRequest,
    ) -> Result<AdminResponse, AdminError> {
        let call = AdminCall {
            app_id: APP.into(),
            token: admin_token(),
            request,
        };
        let now = self.nodes[node].now;
        self.nodes[node].broker.admin(call, now)
    }

    /// The waiting admin answer `id` of `node`, if it has come.
    fn admin_answer(&mut self, node: usize, id: u64) -> Option<Result<AdminResponse, AdminError>> {
        let mut found = None;
        while let Some((got, answer)) = self.nodes[node].broker.poll_admin() {
            assert!(found.is_none() || got != id, "answered twice");
            if got == id {
                found = Some(answer);
            }
        }
        found
    }
}

fn admin_message(to: &str, text: &str) -> AdminRequest {
    AdminRequest::SendMessage {
        to: to.into(),
        text: text.into(),
    }
}

fn sent(answer: Result<AdminResponse, AdminError>) -> beckon_broker::admin::Sent {
    match answer {
        Ok(AdminResponse::Sent(s)) => s,
        other => panic!("not sent: {other:?}"),
    }
}

#[test]
fn an_admin_message_reaches_its_recipient_on_any_node_or_offline() {
    let mut c = Cluster::new(2);
    c.login(0, 1, "alice");
    c.login(1, 2, "bob");

    // On this node: answered at once, delivered at once.
    let s = sent(c.admin_now(0, admin_message("alice", "hi alice")));
    assert!(s.online && s.server_msg_id != 0, "{s:?}");
    let got = messages_in(&c.take(0, 1));
    assert_eq!(got, vec![("ops".into(), "hi alice".into(), false)]);

    // On the other node: the answer waits for the cluster, then the message crosses over.
    let s = sent(c.admin(0, admin_message("bob", "hi bob")));
    assert!(s.online && s.server_msg_id != 0, "{s:?}");
    assert_eq!(s.recipients, 1);
    let got = messages_in(&c.take(1, 2));
    assert_eq!(got, vec![("ops".into(), "hi bob".into(), false)]);
    c.ack(1, 2);
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());

    // Offline everywhere: stored, handed over at the next login on any node.
    let s = sent(c.admin(0, admin_message("carol", "hi carol")));
    assert!(!s.online && s.server_msg_id != 0, "{s:?}");
    assert_eq!(s.recipients, 0);
    let frames = c.login_frames(1, 3, "carol");
    let got = messages_in(&frames);
    assert_eq!(got, vec![("ops".into(), "hi carol".into(), true)]);
    assert_eq!(c.nodes[0].broker.stats().admin_messages, 3);
}

#[test]
fn an_admin_message_waits_for_the_cluster_and_is_refused_when_it_cannot_answer() {
    let mut c = Cluster::new(2);
    c.login(1, 2, "bob");

    // Nothing is answered while the cluster has not said where bob is.
    c.hold_status = true;
    let first = c.admin_now(0, admin_message("bob", "one"));
    let Ok(AdminResponse::Waiting { id }) = first else {
        panic!("not waiting: {first:?}");
    };
    c.route();
    assert!(c.admin_answer(0, id).is_none());
    c.hold_status = false;
    for (node, out) in std::mem::take(&mut c.held_status) {
        c.carry_out(node, out);
    }
    let s = sent(
        c.admin_answer(0, id)
            .expect("answered once the cluster did"),
    );
    assert!(s.online, "{s:?}");
    let got = messages_in(&c.take(1, 2));
    assert_eq!(got, vec![("ops".into(), "one".into(), false)]);

    // Redis unreachable: refused with 1001 and the reason; nothing stored.
    c.reachable = false;
    let e = c
        .admin(0, admin_message("erin", "hi"))
        .expect_err("refused");
    assert_eq!(e.code, ErrorCode::GeneralFailed, "{e:?}");
    assert!(e.message.contains("Redis is unreachable"), "{e:?}");
    assert!(c.nodes[0].broker.store().messages(APP, "erin").is_empty());
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
    assert_eq!(c.nodes[0].broker.poll_admin(), None);
}

#[test]
fn admin_messages_waiting_for_the_cluster_are_bounded() {
    let mut c = Cluster::new(2);
    c.hold_status = true;
    let limit = beckon_broker::cluster::MAX_PENDING_QUERIES_PER_SESSION;
    for i in 0..limit {
        let first = c.admin_now(0, admin_message(&format!("user{i}"), "hi"));
        assert!(
            matches!(first, Ok(AdminResponse::Waiting { .. })),
            "{i}: {first:?}"
        );
    }
    let e = (c.admin_now(0, admin_message("one_more", "hi"))).expect_err("beyond the bound");
    assert_eq!(e.code, ErrorCode::GeneralFailed, "{e:?}");
    assert!(e.message.contains("try again later"), "{e:?}");
    c.route();
    c.release_status();
    let mut answers = 0;
    while let Some((_, answer)) = c.nodes[0].broker.poll_admin() {
        assert!(!sent(answer).online);
        answers += 1;
    }
    assert_eq!(answers, limit);
    assert_eq!(c.nodes[0].broker.cluster_queries(), 0);
}
