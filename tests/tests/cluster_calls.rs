//! Calls between accounts on different cluster nodes, end to end: two nodes in this process
//! on a real `redis-server` that the test starts on a free 127.0.0.1 port, the caller on one
//! node and the callee on the other, through the SDK.
//!
//! `redis-server` must be installed (`.ci/run` installs it); without it these tests fail
//! with a message that says so. Call timers are configured in seconds here, so no test waits
//! the production 60 s or 20 s.

use std::time::Duration;

use beckon_broker::AppConfig;
use beckon_sdk::Event;
use beckon_server::ClusterConfig;
use beckon_tests::call_events::*;
use beckon_tests::{Redis, TestServer, User, test_apps_with};

async fn start_node(redis: &Redis, id: &str, app: fn(&mut AppConfig)) -> TestServer {
    let cluster = ClusterConfig {
        node_id: id.to_owned(),
        node_ttl: Duration::from_millis(1_500),
        redis_timeout: Duration::from_millis(500),
        ..ClusterConfig::new(&redis.url()).expect("a redis URL")
    };
    TestServer::start_with(move |c| {
        c.set_cluster(Some(cluster));
        c.broker.apps = test_apps_with(app);
    })
    .await
}

/// A Redis, nodes "a" and "b" on it (their apps adjusted by `app`), alice logged in on a and
/// bob on b, each seeing the other online (a claim reaches Redis just after the login answer).
async fn alice_on_a_bob_on_b(
    app: fn(&mut AppConfig),
) -> (Redis, TestServer, TestServer, User, User) {
    let redis = Redis::start().await;
    let a = start_node(&redis, "a", app).await;
    let b = start_node(&redis, "b", app).await;
    let mut alice = User::new(a.url(), "alice");
    alice.login(&a).await;
    let mut bob = User::new(b.url(), "bob");
    bob.login(&b).await;
    alice.await_status_of("bob", "1").await;
    bob.await_status_of("alice", "1").await;
    (redis, a, b, alice, bob)
}

fn defaults(_: &mut AppConfig) {}

// ---- the events ---------------------------------------------------------------------------------

/// The next call callback of `u`, which must be `want`.
async fn expect_call(u: &mut User, want: Event) {
    let got = u.expect(is_call_event).await;
    assert_eq!(got, want, "{}'s next call event", u.account);
}

/// alice (on a) has invited bob (on b) to `channel`; bob has it, and alice knows.
async fn ringing(alice: &mut User, bob: &mut User, channel: &str) {
    alice.sdk.channel_invite_user2(channel, "bob", r#"{"k":1}"#);
    expect_call(bob, received(channel, "alice", r#"{"k":1}"#)).await;
    expect_call(alice, received_by_peer(channel, "bob")).await;
}

// ---- the flows ----------------------------------------------------------------------------------

#[tokio::test]
async fn invite_received_accept_dtmf_and_end_across_nodes() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b(defaults).await;
    ringing(&mut alice, &mut bob, "call-1").await;
    bob.sdk
        .channel_invite_accept("call-1", "alice", 0, r#"{"answer":"yes"}"#);
    expect_call(&mut alice, accepted("call-1", "bob", r#"{"answer":"yes"}"#)).await;
    alice.sdk.channel_invite_dtmf("call-1", "bob", "12#");
    expect_call(&mut bob, dtmf("call-1", "alice", "12#")).await;
    bob.sdk.channel_invite_dtmf("call-1", "alice", "5");
    expect_call(&mut alice, dtmf("call-1", "bob", "5")).await;
    bob.sdk.channel_invite_end("call-1", "alice", 0);
    expect_call(&mut bob, end_by_myself("call-1", "alice")).await;
    expect_call(&mut alice, end_by_peer("call-1", "bob")).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());

    // And the other way round, ended by the caller after acceptance.
    bob.sdk.channel_invite_user2("call-2", "alice", "");
    expect_call(&mut alice, received("call-2", "bob", "")).await;
    expect_call(&mut bob, received_by_peer("call-2", "alice")).await;
    alice.sdk.channel_invite_accept("call-2", "bob", 0, "");
    expect_call(&mut bob, accepted("call-2", "alice", "")).await;
    bob.sdk.channel_invite_end("call-2", "alice", 0);
    expect_call(&mut bob, end_by_myself("call-2", "alice")).await;
    expect_call(&mut alice, end_by_peer("call-2", "bob")).await;
}

#[tokio::test]
async fn a_refusal_and_a_cancellation_cross_nodes() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b(defaults).await;
    ringing(&mut alice, &mut bob, "c").await;
    bob.sdk
        .channel_invite_refuse("c", "alice", 0, r#"{"why":"busy"}"#);
    expect_call(&mut alice, refused("c", "bob", r#"{"why":"busy"}"#)).await;
    assert!(alice.sdk.calls().await.is_empty());

    // The caller cancels before an answer.
    ringing(&mut alice, &mut bob, "d").await;
    alice.sdk.channel_invite_end("d", "bob", 0);
    expect_call(&mut alice, end_by_myself("d", "bob")).await;
    expect_call(&mut bob, end_by_peer("d", "alice")).await;
    // The call is gone on bob's node too: accepting it now is a wrong parameter.
    bob.sdk.channel_invite_accept("d", "alice", 0, "");
    bob.expect_error("channelInviteAccept", 1004).await;
}

#[tokio::test]
async fn bad_call_requests_across_nodes_get_the_specs_codes() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b(defaults).await;
    ringing(&mut alice, &mut bob, "c").await;
    alice.sdk.channel_invite_user2("c", "bob", "");
    alice.expect_error("channelInviteUser2", 701).await;
    bob.sdk.channel_invite_accept("other", "alice", 0, "");
    bob.expect_error("channelInviteAccept", 1004).await;
    alice.sdk.channel_invite_dtmf("c", "bob", "12x");
    alice.expect_error("channelInviteDTMF", 1004).await;
    alice.sdk.channel_invite_user2("c2", "bob", "not json");
    alice.expect_error("channelInviteUser2", 1004).await;
    // Nothing changed: the call still rings and can be accepted.
    bob.sdk.channel_invite_accept("c", "alice", 0, "");
    expect_call(&mut alice, accepted("c", "bob", "")).await;
}

#[tokio::test]
async fn an_invitation_to_an_account_on_no_node_fails_with_703() {
    let (_redis, _a, b, mut alice, _bob) =
        alice_on_a_bob_on_b(|a| a.peer_online_wait = Duration::from_secs(4)).await;
    let extra = r#"{"_require_peer_online":1}"#;
    alice.sdk.channel_invite_user2("c", "carol", extra);
    expect_call(&mut alice, failed("c", "carol", 703, extra)).await;
    alice.expect_error("channelInviteUser2", 703).await;

    // Without it the invitation waits, and rings when carol logs in on the other node.
    alice.sdk.channel_invite_user2("w", "carol", "");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut carol = User::new(b.url(), "carol");
    carol.login(&b).await;
    expect_call(&mut carol, received("w", "alice", "")).await;
    expect_call(&mut alice, received_by_peer("w", "carol")).await;
    carol.sdk.channel_invite_accept("w", "alice", 0, "");
    expect_call(&mut alice, accepted("w", "carol", "")).await;

    // Nobody logs in: it fails with 703 when the wait ends.
    let started = tokio::time::Instant::now();
    alice.sdk.channel_invite_user2("x", "dave", "");
    expect_call(&mut alice, failed("x", "dave", 703, "")).await;
    assert!(started.elapsed() >= Duration::from_secs(3), "waited");
}

#[tokio::test]
async fn an_unanswered_invitation_times_out_for_the_caller_and_ends_for_the_callee() {
    let (_redis, _a, _b, mut alice, mut bob) =
        alice_on_a_bob_on_b(|a| a.call_timeout = Duration::from_secs(2)).await;
    ringing(&mut alice, &mut bob, "c").await;
    expect_call(&mut alice, failed("c", "bob", 704, "")).await;
    expect_call(&mut bob, end_by_peer("c", "alice")).await;
}

#[tokio::test]
async fn a_callee_logging_out_fails_the_invitation_on_the_callers_node() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b(defaults).await;
    ringing(&mut alice, &mut bob, "c").await;
    bob.logout().await;
    expect_call(&mut alice, failed("c", "bob", 703, "")).await;
}

#[tokio::test]
async fn with_redis_stopped_calls_fail_clearly() {
    let (mut redis, _a, _b, mut alice, mut bob) =
        alice_on_a_bob_on_b(|a| a.call_timeout = Duration::from_secs(3)).await;
    ringing(&mut alice, &mut bob, "c").await;
    redis.kill();
    // A new invitation cannot reach bob's node: it fails with INVITE_E_NET.
    alice.sdk.channel_invite_user2("n", "bob", "");
    expect_call(&mut alice, failed("n", "bob", 702, "")).await;
    alice.expect_error("channelInviteUser2", 702).await;
    // bob's answer to the ringing call cannot reach alice's node: the call ends for bob.
    bob.sdk.channel_invite_accept("c", "alice", 0, "");
    expect_call(&mut bob, end_by_peer("c", "alice")).await;
    // alice's invitation was never answered as far as her node knows: it times out.
    expect_call(&mut alice, failed("c", "bob", 704, "")).await;
}
