//! Cluster mode, sans-IO: two brokers as two nodes, their cluster outputs carried out by a
//! presence table standing in for Redis. A login on one node kicks the account's session on
//! the other (103); `queryUserStatus` sees the whole cluster; what is not cluster-wide yet is
//! refused with `GENERAL_E_FAILED` and a `desc` that says so, and changes nothing.

use std::collections::HashMap;

use beckon_broker::{
    Apps, Broker, BrokerConfig, ClusterIn, ClusterOut, ConnId, MemoryStore, Recovered,
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
    next_request: u64,
}

impl Cluster {
    fn new(n: usize) -> Self {
        // One store every node shares, as the cluster's Redis is.
        let store = MemoryStore::new();
        let now = std::time::Instant::now();
        let nodes = (0..n)
            .map(|i| {
                let mut config = BrokerConfig::new(Apps::development(), [i as u8 + 1; 32]);
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
            next_request: 1,
        }
    }

    /// Carries out every node's cluster outputs until none is left (a kick may lead to a
    /// release).
    fn route(&mut self) {
        loop {
            let mut any = false;
            for node in 0..self.nodes.len() {
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
        }
    }

    fn login(&mut self, node: usize, conn: u64, account: &str) {
        self.nodes[node].login(ConnId(conn), APP, account);
        self.route();
    }

    fn request(&mut self, node: usize, conn: u64, op: Op) -> pb::Reply {
        let (reply, _) = self.request_all(node, conn, op);
        let n = &mut self.nodes[node];
        n.ack(ConnId(conn));
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
        (wire::reply_in(&mine, id).expect("a reply"), frames)
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
    let refused = [
        (wire::join("room"), "channels"),
        (
            Op::Invite(pb::Invite {
                account: "bob".into(),
                ..Default::default()
            }),
            "calls",
        ),
        (
            wire::invoke_request("io.agora.signal.channel_query_num", r#"{"name":"room"}"#),
            "channels",
        ),
    ];
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
fn p2p_reaches_a_recipient_on_the_same_node_or_offline_and_refuses_one_on_another() {
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

    // Online on another node: refused, and nothing is stored for it.
    let reply = c.request(0, 1, wire::send_instant("bob", "hi bob"));
    assert_eq!(reply.code, ErrorCode::GeneralFailed.code(), "{reply:?}");
    assert!(
        reply.message.contains("another node") && reply.message.contains("cluster mode"),
        "{reply:?}"
    );
    assert!(c.nodes[1].broker.store().messages(APP, "bob").is_empty());
    assert!(messages_in(&c.nodes[1].frames_to(ConnId(3))).is_empty());

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
