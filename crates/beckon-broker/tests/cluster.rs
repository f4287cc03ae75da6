//! Cluster mode, sans-IO: two brokers as two nodes, their cluster outputs carried out by a
//! presence table standing in for Redis. A login on one node kicks the account's session on
//! the other (103); `queryUserStatus` sees the whole cluster; p2p messages cross nodes through
//! the shared store and a notice to the recipient's node; channels are one membership over the
//! nodes (a fake channel table standing in for Redis's, publishing each event once to the
//! nodes with members); what is not cluster-wide yet is refused with `GENERAL_E_FAILED` and a
//! `desc` that says so, and changes nothing.

use std::collections::{BTreeMap, HashMap};

use beckon_broker::{
    Apps, Broker, BrokerConfig, ChannelAnswer, ChannelEvent, ChannelOp, ClusterIn, ClusterOut,
    ConnId, MemoryStore, Recovered,
};
use beckon_proto::ErrorCode;
use beckon_proto::pb::{self, request::Op, server_frame};
use beckon_testkit::wire::{self, Driver};

const APP: &str = "app";

/// Two nodes and the shared presence table: (app, account) → (node, session).
struct Cluster {
    nodes: Vec<Driver<MemoryStore>>,
    presence: HashMap<(String, String), (usize, u64)>,
    /// Whether the shared state is reachable; when not, questions fail.
    reachable: bool,
    /// Whether notices of stored messages are lost on their way (a pub/sub hiccup).
    lose_notices: bool,
    /// Whether notices wait in `delayed` until [`deliver_notices`](Self::deliver_notices).
    delay_notices: bool,
    delayed: Vec<(usize, ClusterIn)>,
    /// Frames a request's node sent to its other connections meanwhile, by (node, conn).
    elsewhere: HashMap<(usize, u64), Vec<server_frame::Kind>>,
    next_request: u64,
    /// The shared channel state: (app, channel) → members and attributes.
    chans: HashMap<(String, String), FakeChannel>,
    /// Whether channel operations wait in `held` (the cluster does not answer).
    hold_channel_ops: bool,
    held: Vec<(usize, ClusterOut)>,
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
        let store = MemoryStore::new();
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
            presence: HashMap::new(),
            reachable: true,
            lose_notices: false,
            delay_notices: false,
            delayed: Vec::new(),
            elsewhere: HashMap::new(),
            next_request: 1,
            chans: HashMap::new(),
            hold_channel_ops: false,
            held: Vec::new(),
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
            ClusterOut::Channel { .. } if self.hold_channel_ops => self.held.push((node, out)),
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
    // A session with the server privilege, which gateway registration needs.
    let token = beckon_token::mint(
        b"any certificate: development mode does not check it",
        &beckon_token::TokenClaims {
            app_id: APP.into(),
            account: "backend".into(),
            issued_at: 0,
            expires_at: u64::MAX,
            privileges: beckon_token::Privileges::SERVER,
        },
    );
    let n = &mut c.nodes[0];
    n.broker.connect(ConnId(3), n.now);
    n.broker
        .handle_frame(ConnId(3), &wire::login_frame(APP, "backend", &token), n.now);
    c.take(0, 3);
    let refused = [
        (
            1,
            Op::Invite(pb::Invite {
                account: "bob".into(),
                ..Default::default()
            }),
            "calls",
        ),
        (
            3,
            wire::invoke_request(beckon_broker::GATEWAY_REGISTER, "{}"),
            "calls",
        ),
    ];
    for (conn, op, what) in refused {
        let is_invoke = matches!(op, Op::Invoke(_));
        let reply = c.request(0, conn, op);
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
            ChannelOp::Send { sender, msg, id } => {
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
            ChannelOp::Users { max } => {
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
        for (node, out) in std::mem::take(&mut self.held) {
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
    assert_eq!(c.held.len(), MAX, "the rest never reached the cluster");
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
    n.broker
        .handle_cluster(ClusterIn::ChannelsInterrupted, n.now);
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
