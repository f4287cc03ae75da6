//! Calls over TCP through the SDK (SPEC §8): invitations with every answer and ending, DTMF,
//! re-invitations, offline callees, timeouts, logouts, bad parameters, and phone calls through a
//! telephony gateway.
//!
//! The server's call timers are configured in milliseconds (`call_timeout`, `peer_online_wait`)
//! so no test waits the production 60 s or 20 s.

use std::time::Duration;

use serde_json::{Value, json};

use beckon_broker::GATEWAY_REGISTER;
use beckon_sdk::{CallId, Event};
use beckon_tests::call_events::*;
use beckon_tests::{TestServer, User, all_logged_in, logged_in, server_with};

// ---- the events, with the arguments the seeds give them ---------------------------------------

/// The next call callback of `u`: `want` but for its `extra`, which is JSON equal to `extra`.
async fn expect_call_json(u: &mut User, want: Event, extra: Value) {
    let mut got = next_call(u).await;
    let got_extra = match &mut got {
        Event::InviteReceived { extra, .. } | Event::InviteFailed { extra, .. } => {
            std::mem::take(extra)
        }
        other => panic!("{other:?} has no extra"),
    };
    assert_eq!(got, want, "{}'s next call event", u.account);
    assert_eq!(json_of(&got_extra), extra);
}

/// The next call callback of `u`, which must be `want`.
async fn expect_call(u: &mut User, want: Event) {
    assert_eq!(next_call(u).await, want, "{}'s next call event", u.account);
}

/// The next call callback of `u`, skipping other events.
async fn next_call(u: &mut User) -> Event {
    u.expect(is_call_event).await
}

/// Parses an `extra` as JSON.
fn json_of(extra: &str) -> Value {
    serde_json::from_str(extra).unwrap_or_else(|e| panic!("{extra:?} is not JSON: {e}"))
}

/// alice has invited bob to `channel`, bob has the invitation and alice knows it.
async fn ringing(alice: &mut User, bob: &mut User, channel: &str) {
    alice.sdk.channel_invite_user(channel, &bob.account, 0);
    assert_eq!(next_call(bob).await, received(channel, &alice.account, ""));
    assert_eq!(
        next_call(alice).await,
        received_by_peer(channel, &bob.account)
    );
}

/// alice and bob are in an accepted call on `channel`.
async fn talking(alice: &mut User, bob: &mut User, channel: &str) {
    ringing(alice, bob, channel).await;
    bob.sdk
        .channel_invite_accept(channel, &alice.account, 0, "");
    assert_eq!(next_call(alice).await, accepted(channel, &bob.account, ""));
}

/// A user logged in with the server privilege.
async fn privileged(server: &TestServer, account: &str) -> User {
    let mut u = User::new(server.url(), account);
    u.login_as_server(server).await;
    u
}

// ---- the call flows -----------------------------------------------------------------------------

#[tokio::test]
async fn invite_accept_dtmf_and_end_with_the_seed_arguments() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    let extra = r#"{"destMediaUid":123,"srcNum":"+15550100","note":"héllo"}"#;
    alice.sdk.channel_invite_user2("call-1", "bob", extra);
    expect_call(&mut bob, received("call-1", "alice", extra)).await;
    expect_call(&mut alice, received_by_peer("call-1", "bob")).await;
    let call = |peer: &str, outgoing| CallId {
        channel: "call-1".into(),
        peer: peer.into(),
        outgoing,
    };
    assert_eq!(alice.sdk.calls().await, [call("bob", true)]);
    assert_eq!(bob.sdk.calls().await, [call("alice", false)]);

    bob.sdk
        .channel_invite_accept("call-1", "alice", 0, r#"{"answer":"yes"}"#);
    expect_call(&mut alice, accepted("call-1", "bob", r#"{"answer":"yes"}"#)).await;
    assert!(
        bob.sdk.joined_channels().await.is_empty(),
        "accepting does not join"
    );

    alice
        .sdk
        .channel_invite_dtmf("call-1", "bob", "0123456789*#");
    expect_call(&mut bob, dtmf("call-1", "alice", "0123456789*#")).await;
    bob.sdk.channel_invite_dtmf("call-1", "alice", "5");
    expect_call(&mut alice, dtmf("call-1", "bob", "5")).await;

    bob.sdk.channel_invite_end("call-1", "alice", 0);
    expect_call(&mut bob, end_by_myself("call-1", "alice")).await;
    expect_call(&mut alice, end_by_peer("call-1", "bob")).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());

    assert_eq!(
        alice.calls.calls_starting_with("on_invite_"),
        [
            "on_invite_received_by_peer(call-1, bob, 0)",
            r#"on_invite_accepted_by_peer(call-1, bob, 0, {"answer":"yes"})"#,
            "on_invite_msg(call-1, bob, 0, DTMF, 5, )",
            "on_invite_end_by_peer(call-1, bob, 0, )",
        ]
    );
    assert_eq!(
        bob.calls.calls_starting_with("on_invite_"),
        [
            format!("on_invite_received(call-1, alice, 0, {extra})"),
            "on_invite_msg(call-1, alice, 0, DTMF, 0123456789*#, )".to_owned(),
            "on_invite_end_by_myself(call-1, alice, 0)".to_owned(),
        ]
    );

    // The channel of a call is joined separately; calling again afterwards is a new call.
    alice.join("call-1").await;
    bob.join("call-1").await;
    talking(&mut alice, &mut bob, "call-1").await;
}

#[tokio::test]
async fn a_refusal_carries_its_extra_back() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    ringing(&mut alice, &mut bob, "call-2").await;
    bob.sdk
        .channel_invite_refuse("call-2", "alice", 0, r#"{"reason":"busy"}"#);
    expect_call(&mut alice, refused("call-2", "bob", r#"{"reason":"busy"}"#)).await;
    assert!(
        alice
            .calls
            .saw(r#"on_invite_refused_by_peer(call-2, bob, 0, {"reason":"busy"})"#)
    );
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());

    // The call is over: answering it again fails locally.
    bob.sdk.channel_invite_refuse("call-2", "alice", 0, "");
    bob.expect_error("channelInviteRefuse", 1004).await;
    bob.sdk.channel_invite_accept("call-2", "alice", 0, "");
    bob.expect_error("channelInviteAccept", 1004).await;
    assert_eq!(
        bob.calls.calls_starting_with("on_invite_"),
        ["on_invite_received(call-2, alice, 0, )"],
        "refusing has no callback of its own"
    );
}

#[tokio::test]
async fn either_side_may_end_a_call_before_or_after_acceptance() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    // The caller ends while it rings.
    ringing(&mut alice, &mut bob, "c1").await;
    alice.sdk.channel_invite_end("c1", "bob", 0);
    expect_call(&mut alice, end_by_myself("c1", "bob")).await;
    expect_call(&mut bob, end_by_peer("c1", "alice")).await;
    bob.sdk.channel_invite_accept("c1", "alice", 0, "");
    bob.expect_error("channelInviteAccept", 1004).await;

    // The callee ends while it rings.
    ringing(&mut alice, &mut bob, "c2").await;
    bob.sdk.channel_invite_end("c2", "alice", 0);
    expect_call(&mut bob, end_by_myself("c2", "alice")).await;
    expect_call(&mut alice, end_by_peer("c2", "bob")).await;

    // The caller ends after acceptance (the callee's end is in the first test).
    talking(&mut alice, &mut bob, "c3").await;
    alice.sdk.channel_invite_end("c3", "bob", 0);
    expect_call(&mut alice, end_by_myself("c3", "bob")).await;
    expect_call(&mut bob, end_by_peer("c3", "alice")).await;

    // Ending twice: the second fails locally.
    alice.sdk.channel_invite_end("c3", "bob", 0);
    alice.expect_error("channelInviteEnd", 1004).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());
    assert_eq!(
        alice.calls.calls_starting_with("on_invite_end"),
        [
            "on_invite_end_by_myself(c1, bob, 0)",
            "on_invite_end_by_peer(c2, bob, 0, )",
            "on_invite_end_by_myself(c3, bob, 0)",
        ]
    );
    assert_eq!(
        bob.calls.calls_starting_with("on_invite_end"),
        [
            "on_invite_end_by_peer(c1, alice, 0, )",
            "on_invite_end_by_myself(c2, alice, 0)",
            "on_invite_end_by_peer(c3, alice, 0, )",
        ]
    );
}

#[tokio::test]
async fn an_immediate_answer_still_reports_the_receipt_first() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    alice.sdk.channel_invite_user("c", "bob", 0);
    expect_call(&mut bob, received("c", "alice", "")).await;
    bob.sdk.channel_invite_accept("c", "alice", 0, "");
    expect_call(&mut alice, received_by_peer("c", "bob")).await;
    expect_call(&mut alice, accepted("c", "bob", "")).await;
}

#[tokio::test]
async fn dtmf_digits_are_checked() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    talking(&mut alice, &mut bob, "c").await;

    for bad in ["12a", "", "1 2", "１"] {
        alice.sdk.channel_invite_dtmf("c", "bob", bad);
        alice.expect_error("channelInviteDTMF", 1004).await;
    }
    let longest = "1".repeat(128);
    alice.sdk.channel_invite_dtmf("c", "bob", &longest);
    expect_call(&mut bob, dtmf("c", "alice", &longest)).await;
    alice.sdk.channel_invite_dtmf("c", "bob", &"1".repeat(129));
    alice.expect_error("channelInviteDTMF", 1005).await;
    // DTMF on a call that does not exist.
    alice.sdk.channel_invite_dtmf("other", "bob", "1");
    alice.expect_error("channelInviteDTMF", 1004).await;

    // messageDTMFSend (obsolete) goes to the most recent call; uid and msgID are ignored.
    alice.sdk.message_dtmf_send(0, "77#", "an-id");
    expect_call(&mut bob, dtmf("c", "alice", "77#")).await;
    bob.sdk.message_dtmf_send(0, "*", "");
    expect_call(&mut alice, dtmf("c", "bob", "*")).await;
    alice.sdk.message_dtmf_send(0, "x", "");
    alice.expect_error("channelInviteDTMF", 1004).await;

    alice.sdk.channel_invite_end("c", "bob", 0);
    expect_call(&mut bob, end_by_peer("c", "alice")).await;
    alice.sdk.message_dtmf_send(0, "1", "");
    alice.expect_error("messageDTMFSend", 1004).await;
    // None of the refused digits reached bob.
    assert_eq!(
        bob.calls.calls_starting_with("on_invite_msg").len(),
        2,
        "{:?}",
        bob.calls.calls_starting_with("on_invite_msg")
    );
}

#[tokio::test]
async fn a_reinvitation_fails_with_701_and_keeps_the_call() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    alice.sdk.channel_invite_user2("c", "bob", r#"{"n":1}"#);
    expect_call(&mut bob, received("c", "alice", r#"{"n":1}"#)).await;
    expect_call(&mut alice, received_by_peer("c", "bob")).await;

    alice.sdk.channel_invite_user2("c", "bob", r#"{"n":2}"#);
    expect_call(&mut alice, failed("c", "bob", 701, r#"{"n":2}"#)).await;
    alice.expect_error("channelInviteUser2", 701).await;
    assert!(
        alice
            .calls
            .saw(r#"on_invite_failed(c, bob, 0, 701, {"n":2})"#)
    );

    // The first call is untouched, and another channel is another call.
    bob.sdk.channel_invite_accept("c", "alice", 0, "");
    expect_call(&mut alice, accepted("c", "bob", "")).await;
    alice.sdk.channel_invite_user("c", "bob", 0);
    expect_call(&mut alice, failed("c", "bob", 701, "")).await;
    ringing(&mut alice, &mut bob, "d").await;
    assert_eq!(
        bob.calls.calls_starting_with("on_invite_received("),
        [
            r#"on_invite_received(c, alice, 0, {"n":1})"#,
            "on_invite_received(d, alice, 0, )"
        ],
        "no second invitation reached bob"
    );
}

// ---- offline callees, timeouts, logouts ---------------------------------------------------------

#[tokio::test]
async fn require_peer_online_fails_at_once_for_an_offline_callee() {
    let server = TestServer::start().await; // the default 20 s wait: 703 must not wait for it
    let mut alice = logged_in(&server, "alice").await;
    let extra = r#"{"_require_peer_online":1}"#;
    let started = tokio::time::Instant::now();
    alice.sdk.channel_invite_user2("c", "bob", extra);
    expect_call(&mut alice, failed("c", "bob", 703, extra)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    alice.expect_error("channelInviteUser2", 703).await;
    assert!(alice.sdk.calls().await.is_empty());
}

#[tokio::test]
async fn an_invitation_waits_for_the_callee_to_log_in() {
    let server = TestServer::start_with_app(|a| a.peer_online_wait = Duration::from_secs(3)).await;
    let mut alice = logged_in(&server, "alice").await;
    let extra = r#"{"_require_peer_online":0}"#;
    alice.sdk.channel_invite_user2("c", "bob", extra);
    // The status query is answered after the invitation was taken, while bob is offline.
    assert_eq!(alice.status_of("bob").await, "0");
    let bob_login = tokio::time::Instant::now();
    let mut bob = logged_in(&server, "bob").await;
    expect_call(&mut bob, received("c", "alice", extra)).await;
    expect_call(&mut alice, received_by_peer("c", "bob")).await;
    assert!(bob_login.elapsed() < Duration::from_secs(3));
    bob.sdk
        .channel_invite_accept("c", "alice", 0, r#"{"late":true}"#);
    expect_call(&mut alice, accepted("c", "bob", r#"{"late":true}"#)).await;
}

#[tokio::test]
async fn an_invitation_to_a_callee_that_stays_offline_fails_with_703() {
    let server =
        TestServer::start_with_app(|a| a.peer_online_wait = Duration::from_millis(300)).await;
    let mut alice = logged_in(&server, "alice").await;
    let started = tokio::time::Instant::now();
    alice.sdk.channel_invite_user("c", "bob", 0);
    // The failure comes from the server's timer; it carries no extra.
    expect_call(&mut alice, failed("c", "bob", 703, "")).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "failed after {waited:?}, before the 300 ms wait"
    );
    assert_eq!(server.stats().await.call_timeouts, 1);
    assert!(alice.sdk.calls().await.is_empty());

    // The invitation is gone: bob logging in later gets nothing.
    let mut bob = logged_in(&server, "bob").await;
    assert_eq!(bob.status_of("bob").await, "1");
    assert!(bob.calls.calls_starting_with("on_invite_").is_empty());
}

#[tokio::test]
async fn an_unanswered_invitation_times_out_with_704() {
    let server = TestServer::start_with_app(|a| a.call_timeout = Duration::from_millis(300)).await;
    let [mut alice, mut bob] = all_logged_in(&server, ["alice", "bob"]).await;
    let started = tokio::time::Instant::now();
    alice.sdk.channel_invite_user2("c", "bob", r#"{"k":"v"}"#);
    expect_call(&mut bob, received("c", "alice", r#"{"k":"v"}"#)).await;
    alice
        .expect_eq(
            |e| matches!(e, Event::InviteFailed { .. }),
            failed("c", "bob", 704, ""),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    expect_call(&mut bob, end_by_peer("c", "alice")).await;
    assert_eq!(server.stats().await.call_timeouts, 1);
    bob.sdk.channel_invite_accept("c", "alice", 0, "");
    bob.expect_error("channelInviteAccept", 1004).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());
}

#[tokio::test]
async fn logging_out_ends_the_calls_on_both_sides() {
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    // The callee leaves while it rings: the caller fails with INVITE_E_PEEROFFLINE.
    ringing(&mut alice, &mut bob, "c1").await;
    bob.logout().await;
    expect_call(&mut alice, failed("c1", "bob", 703, "")).await;
    let calls = bob.calls.calls();
    let ended = calls
        .iter()
        .position(|c| c == "on_invite_end_by_peer(c1, alice, 0, )")
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert!(ended < calls.iter().position(|c| c == "on_logout(101)").unwrap());

    // The callee leaves an accepted call: the caller's call ends.
    bob.login(&server).await;
    talking(&mut alice, &mut bob, "c2").await;
    bob.logout().await;
    expect_call(&mut alice, end_by_peer("c2", "bob")).await;

    // The caller leaves while it rings: its invitation fails locally with INVITE_E_NET, and the
    // callee's call ends.
    bob.login(&server).await;
    ringing(&mut alice, &mut bob, "c3").await;
    alice.logout().await;
    let calls = alice.calls.calls();
    let failed_at = calls
        .iter()
        .position(|c| c == "on_invite_failed(c3, bob, 0, 702, )")
        .unwrap_or_else(|| panic!("{calls:?}"));
    assert!(failed_at < calls.iter().position(|c| c == "on_logout(101)").unwrap());
    expect_call(&mut bob, end_by_peer("c3", "alice")).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(bob.sdk.calls().await.is_empty());
}

// ---- bad calls ----------------------------------------------------------------------------------

#[tokio::test]
async fn answers_to_unknown_calls_and_bad_invitations_fail_locally() {
    let server = TestServer::start().await;
    let mut carol = User::new(server.url(), "carol");
    carol.sdk.channel_invite_user2("c", "bob", "");
    expect_call(&mut carol, failed("c", "bob", 1003, "")).await;
    carol.expect_error("channelInviteUser2", 1003).await;
    carol.sdk.channel_invite_accept("c", "bob", 0, "");
    carol.expect_error("channelInviteAccept", 1003).await;

    let [mut alice, mut bob] = all_logged_in(&server, ["alice", "bob"]).await;
    alice.sdk.channel_invite_accept("c", "bob", 0, "");
    alice.expect_error("channelInviteAccept", 1004).await;
    alice.sdk.channel_invite_refuse("c", "bob", 0, "");
    alice.expect_error("channelInviteRefuse", 1004).await;
    alice.sdk.channel_invite_end("c", "bob", 0);
    alice.expect_error("channelInviteEnd", 1004).await;
    alice.sdk.channel_invite_dtmf("c", "bob", "1");
    alice.expect_error("channelInviteDTMF", 1004).await;

    alice.sdk.channel_invite_user("c", "alice", 0);
    expect_call(&mut alice, failed("c", "alice", 1004, "")).await;
    alice.expect_error("channelInviteUser2", 1004).await;
    alice.sdk.channel_invite_user("c", "b o b", 0);
    expect_call(&mut alice, failed("c", "b o b", 1004, "")).await;
    alice.expect_error("channelInviteUser2", 1004).await;
    alice.sdk.channel_invite_user(&"c".repeat(129), "bob", 0);
    alice.expect_error("channelInviteUser2", 1005).await;
    alice.sdk.channel_invite_user("", "bob", 0);
    alice.expect_error("channelInviteUser2", 1004).await;

    // `extra` must be empty or a JSON object of at most 8 KiB.
    for (extra, code) in [("not json", 1004), ("[1,2]", 1004), ("\"s\"", 1004)] {
        alice.sdk.channel_invite_user2("c", "bob", extra);
        expect_call(&mut alice, failed("c", "bob", code, extra)).await;
        alice.expect_error("channelInviteUser2", code).await;
    }
    let pad = |n: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(n - 10));
    let too_big = pad(8193);
    assert_eq!(too_big.len(), 8193);
    alice.sdk.channel_invite_user2("c", "bob", &too_big);
    expect_call(&mut alice, failed("c", "bob", 1005, &too_big)).await;
    alice.expect_error("channelInviteUser2", 1005).await;
    assert!(alice.sdk.calls().await.is_empty());
    assert!(
        bob.calls.calls_starting_with("on_invite_").is_empty(),
        "nothing reached bob"
    );

    // The largest extra travels; a bad answer leaves the call ringing.
    let largest = pad(8192);
    alice.sdk.channel_invite_user2("c", "bob", &largest);
    expect_call(&mut bob, received("c", "alice", &largest)).await;
    bob.sdk.channel_invite_accept("c", "alice", 0, "not json");
    bob.expect_error("channelInviteAccept", 1004).await;
    bob.sdk.channel_invite_refuse("c", "alice", 0, &too_big);
    bob.expect_error("channelInviteRefuse", 1005).await;
    bob.sdk.channel_invite_accept("c", "alice", 0, &largest);
    alice
        .expect_eq(
            |e| matches!(e, Event::InviteAcceptedByPeer { .. }),
            accepted("c", "bob", &largest),
        )
        .await;
}

// ---- phone calls and obsolete interfaces ------------------------------------------------------

#[tokio::test]
async fn phone_invitations_go_through_a_registered_gateway() {
    if beckon_tests::skip_in_cluster(
        "telephony gateway registration is refused with 1001 in cluster mode (docs/cluster.md)",
    ) {
        return;
    }
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;

    // No gateway: INVITE_E_PEEROFFLINE.
    alice.sdk.channel_invite_phone("p1", "+15550100", 0);
    let want = failed("p1", "+15550100", 703, "");
    expect_call_json(&mut alice, want, json!({"_phone": 1})).await;
    // Registering needs the server privilege.
    let mut pretender = logged_in(&server, "pretender").await;
    let (err, _) = pretender.invoke(GATEWAY_REGISTER, "{}", "r0").await;
    assert_eq!(err, "1001");
    alice.sdk.channel_invite_phone("p1", "+15550100", 0);
    assert!(matches!(
        next_call(&mut alice).await,
        Event::InviteFailed { ecode: 703, .. }
    ));

    let mut gw = privileged(&server, "gateway").await;
    assert_eq!(
        gw.invoke(GATEWAY_REGISTER, "{}", "r1").await,
        (String::new(), json!({}))
    );

    // The gateway answers as the callee; the caller sees the number.
    alice
        .sdk
        .channel_invite_phone3("p2", "+15550100", "+15559999", r#"{"x":1}"#);
    let extra = json!({"x": 1, "_phone": 1, "srcNum": "+15559999"});
    expect_call_json(&mut gw, received("p2", "alice", ""), extra).await;
    expect_call(&mut alice, received_by_peer("p2", "+15550100")).await;
    let answer = r#"{"destNum":"+15550100"}"#;
    gw.sdk.channel_invite_accept("p2", "alice", 0, answer);
    expect_call(&mut alice, accepted("p2", "+15550100", answer)).await;
    alice.sdk.channel_invite_dtmf("p2", "+15550100", "123#");
    expect_call(&mut gw, dtmf("p2", "alice", "123#")).await;
    gw.sdk.channel_invite_dtmf("p2", "alice", "9");
    expect_call(&mut alice, dtmf("p2", "+15550100", "9")).await;
    alice.sdk.channel_invite_end("p2", "+15550100", 0);
    expect_call(&mut alice, end_by_myself("p2", "+15550100")).await;
    expect_call(&mut gw, end_by_peer("p2", "alice")).await;

    // channelInvitePhone2 names the source number; the gateway may refuse.
    alice.sdk.channel_invite_phone2("p3", "+15550101", "+1999");
    let extra = json!({"_phone": 1, "srcNum": "+1999"});
    expect_call_json(&mut gw, received("p3", "alice", ""), extra).await;
    expect_call(&mut alice, received_by_peer("p3", "+15550101")).await;
    let answer = r#"{"destNum":"+15550101"}"#;
    gw.sdk.channel_invite_refuse("p3", "alice", 0, answer);
    expect_call(&mut alice, refused("p3", "+15550101", answer)).await;

    // A gateway going offline fails its calls and unregisters.
    alice.sdk.channel_invite_phone("p4", "+15550102", 0);
    assert!(matches!(
        next_call(&mut gw).await,
        Event::InviteReceived { .. }
    ));
    expect_call(&mut alice, received_by_peer("p4", "+15550102")).await;
    gw.logout().await;
    expect_call(&mut alice, failed("p4", "+15550102", 703, "")).await;
    alice.sdk.channel_invite_phone("p5", "+15550103", 0);
    assert!(matches!(
        next_call(&mut alice).await,
        Event::InviteFailed { ecode: 703, .. }
    ));
    // A phone invitation needs a phone number.
    gw.login_as_server(&server).await;
    gw.invoke(GATEWAY_REGISTER, "{}", "r2").await;
    alice.sdk.channel_invite_phone("p6", "bob", 0);
    assert!(matches!(
        next_call(&mut alice).await,
        Event::InviteFailed { ecode: 1004, .. }
    ));
}

#[tokio::test]
async fn a_gateway_carrying_one_call_may_answer_without_dest_num() {
    if beckon_tests::skip_in_cluster(
        "telephony gateway registration is refused with 1001 in cluster mode (docs/cluster.md)",
    ) {
        return;
    }
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;
    let mut gw = privileged(&server, "gateway").await;
    gw.invoke(GATEWAY_REGISTER, "{}", "r").await;
    alice.sdk.channel_invite_phone("p", "+15550100", 0);
    assert!(matches!(
        next_call(&mut gw).await,
        Event::InviteReceived { .. }
    ));
    gw.sdk.channel_invite_accept("p", "alice", 0, "");
    alice
        .expect_eq(
            |e| {
                matches!(
                    e,
                    Event::InviteAcceptedByPeer { .. } | Event::InviteFailed { .. }
                )
            },
            accepted("p", "+15550100", ""),
        )
        .await;
}

#[tokio::test]
async fn is_online_follows_the_login() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    assert!(!alice.sdk.is_online());
    alice.login(&server).await;
    assert!(alice.sdk.is_online());
    alice.logout().await;
    assert!(!alice.sdk.is_online());
}
