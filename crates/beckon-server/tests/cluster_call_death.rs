//! A cluster node killed with SIGKILL in the middle of an accepted call: the other side's call
//! ends (`onInviteEndByPeer`) once the dead node's registration expires (`node_ttl_ms`) and
//! the next check of the call finds no one there (every 10 s), with nothing sent by the dead
//! node. Likewise a ringing invitation whose callee's node is killed fails for its caller
//! (703), long before its timeout.
//!
//! Needs `redis-server` (`.ci/run` installs it); without it the test fails saying so.

mod common;

use std::time::{Duration, Instant};

use beckon_proto::pb::{self, call_event::Kind, client_frame, event, request::Op, server_frame};

use common::Client;
use common::redis::DoomedPair;

/// How long a node counts as alive after its last refresh, in this test.
const NODE_TTL: Duration = Duration::from_millis(1_500);

/// How long the test waits for what it expects, at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// Sends request `id` carrying `op`.
async fn request(client: &mut Client, id: u64, op: Op) {
    let req = pb::Request { id, op: Some(op) };
    client.send(client_frame::Kind::Request(req)).await;
}

/// Reads `client`'s frames (pinging now and then, so the server keeps the connection) until
/// a call event of `kind` arrives; panics after `patience`.
async fn await_call(client: &mut Client, kind: Kind, patience: Duration) -> pb::CallEvent {
    let deadline = Instant::now() + patience;
    let mut nonce = 1_000;
    loop {
        assert!(
            Instant::now() < deadline,
            "no {kind:?} call event within {patience:?}"
        );
        nonce += 1;
        client
            .send(client_frame::Kind::Ping(pb::Ping { nonce }))
            .await;
        let Ok(frame) = tokio::time::timeout(Duration::from_millis(500), client.recv()).await
        else {
            continue;
        };
        match frame.expect("the session goes on") {
            server_frame::Kind::Event(pb::Event {
                body: Some(event::Body::Call(c)),
                ..
            }) if c.kind() == kind => return c,
            server_frame::Kind::Event(pb::Event {
                body: Some(event::Body::Reply(r)),
                ..
            }) => assert_eq!(r.code, 0, "{r:?}"),
            _ => {}
        }
    }
}

/// alice invites bob until the invitation rings (bob's claim reaches Redis just after his
/// login answer); returns the invitation bob received.
async fn ring(alice: &mut Client, bob: &mut Client) -> pb::CallEvent {
    let mut id = 0;
    let ringing = Instant::now();
    loop {
        id += 1;
        let invite = Op::Invite(pb::Invite {
            channel: format!("call-{id}"),
            account: "bob".into(),
            extra: String::new(),
        });
        request(alice, id, invite).await;
        let reply = loop {
            match alice.recv().await.expect("the session goes on") {
                server_frame::Kind::Event(pb::Event {
                    body: Some(event::Body::Reply(r)),
                    ..
                }) if r.request_id == id => break r,
                _ => {}
            }
        };
        if reply.code == 0 {
            break;
        }
        assert!(ringing.elapsed() < PATIENCE, "bob never rang: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = await_call(bob, Kind::Received, PATIENCE).await;
    assert_eq!(received.account, "alice");
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_call_ends_for_the_survivor_when_the_other_node_is_killed() {
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

    let received = ring(&mut alice, &mut bob).await;
    let accept = Op::InviteAccept(pb::InviteAnswer {
        channel: received.channel.clone(),
        account: "alice".into(),
        extra: String::new(),
    });
    request(&mut bob, 1, accept).await;
    await_call(&mut alice, Kind::AcceptedByPeer, PATIENCE).await;

    doomed.signal("KILL");
    let killed = Instant::now();
    let ended = await_call(&mut bob, Kind::EndByPeer, PATIENCE).await;
    assert_eq!(
        (ended.account.as_str(), ended.channel),
        ("alice", received.channel)
    );
    eprintln!(
        "bob's call ended {:?} after alice's node was killed (node TTL {NODE_TTL:?}, a check \
         every 10 s)",
        killed.elapsed()
    );
    survivor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_invitation_fails_for_its_caller_when_the_callees_node_is_killed() {
    let DoomedPair {
        doomed,
        survivor,
        keep: _keep,
    } = DoomedPair::start(NODE_TTL).await;

    let mut alice = Client::connect(survivor.local_addr()).await;
    alice
        .login_ok("demo", "alice", beckon_proto::NO_TOKEN)
        .await;
    let mut bob = Client::connect(doomed.addr).await;
    bob.login_ok("demo", "bob", beckon_proto::NO_TOKEN).await;
    let received = ring(&mut alice, &mut bob).await;

    doomed.signal("KILL");
    let killed = Instant::now();
    // The invitation's timeout is 60 s: only the checks end it within the patience.
    let failed = await_call(&mut alice, Kind::Failed, PATIENCE).await;
    assert_eq!(
        (failed.account.as_str(), failed.channel, failed.code),
        (
            "bob",
            received.channel,
            beckon_proto::ErrorCode::InvitePeerOffline.code()
        )
    );
    eprintln!(
        "alice's invitation failed {:?} after bob's node was killed (node TTL {NODE_TTL:?}, a \
         check every 10 s)",
        killed.elapsed()
    );
    survivor.shutdown().await;
}
