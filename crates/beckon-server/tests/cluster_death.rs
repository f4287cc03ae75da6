//! A cluster node killed with SIGKILL: its accounts go offline for the other nodes once its
//! registration expires (`node_ttl_ms`), with nothing to clean up after it.
//!
//! Needs `redis-server` (`.ci/run` installs it); without it the test fails saying so.

mod common;

use std::time::{Duration, Instant};

use beckon_proto::pb::{self, client_frame, event, request::Op, server_frame};

use common::Client;
use common::redis::DoomedPair;

/// How long a node counts as alive after its last refresh, in this test.
const NODE_TTL: Duration = Duration::from_millis(1_500);

/// How long the test waits for what it expects, at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// `queryUserStatus(account)` on `client`'s session, as request `id`.
async fn online(client: &mut Client, id: u64, account: &str) -> bool {
    let op = Op::QueryUserStatus(pb::QueryUserStatus {
        account: account.into(),
    });
    client
        .send(client_frame::Kind::Request(pb::Request {
            id,
            op: Some(op),
        }))
        .await;
    loop {
        let frame = client.recv().await.expect("the session goes on");
        if let server_frame::Kind::Event(pb::Event {
            body: Some(event::Body::Reply(r)),
            ..
        }) = frame
            && r.request_id == id
        {
            assert_eq!(r.code, 0, "{r:?}");
            return matches!(
                r.result,
                Some(pb::reply::Result::UserStatus(pb::UserStatus {
                    online: true
                }))
            );
        }
    }
}

/// Asks until `account` shows online (a claim reaches Redis just after the login answer).
async fn await_online(client: &mut Client, id: &mut u64, account: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        *id += 1;
        if online(client, *id, account).await {
            return;
        }
        assert!(Instant::now() < deadline, "{account} never showed online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_of_a_killed_node_go_offline_when_its_registration_expires() {
    let DoomedPair {
        doomed,
        survivor,
        keep: _keep,
    } = DoomedPair::start(NODE_TTL).await;

    let mut alice = Client::connect(doomed.addr).await;
    alice
        .login_ok("demo", "alice", beckon_proto::NO_TOKEN)
        .await;
    let mut bob = Client::connect(survivor.local_addr()).await;
    bob.login_ok("demo", "bob", beckon_proto::NO_TOKEN).await;

    let mut id = 0;
    await_online(&mut bob, &mut id, "alice").await;

    doomed.signal("KILL");
    let killed = Instant::now();
    loop {
        id += 1;
        if !online(&mut bob, id, "alice").await {
            break;
        }
        assert!(
            Instant::now() < killed + PATIENCE,
            "alice still online {PATIENCE:?} after her node was killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        bob.ping_pong(id).await;
    }
    eprintln!(
        "alice offline {:?} after her node was killed (node TTL {NODE_TTL:?})",
        killed.elapsed()
    );

    // She logs in on the survivor: nothing of the dead node stands in the way.
    let mut again = Client::connect(survivor.local_addr()).await;
    again
        .login_ok("demo", "alice", beckon_proto::NO_TOKEN)
        .await;
    await_online(&mut bob, &mut id, "alice").await;
    survivor.shutdown().await;
}
