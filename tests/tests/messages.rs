//! Peer-to-peer messages: delivery both ways, a 10,000-message pipeline, offline storage
//! (SPEC §5 delivery contract, §6).

use std::collections::{HashMap, HashSet};

use beckon_sdk::Event;
use beckon_tests::{TestServer, User, logged_in, server_with};

/// Waits for the outcome of message `id`, which must be a success.
async fn expect_sent(u: &mut User, id: &str) {
    u.expect_eq(
        |e| {
            matches!(e, Event::MessageSendSuccess { message_id }
                | Event::MessageSendError { message_id, .. } if message_id == id)
        },
        Event::MessageSendSuccess {
            message_id: id.to_owned(),
        },
    )
    .await;
}

#[tokio::test]
async fn messages_go_both_ways() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    let id = alice.sdk.message_instant_send("bob", 0, "hello bob", "");
    assert!(!id.is_empty(), "the SDK generates an id");
    expect_sent(&mut alice, &id).await;
    assert!(alice.calls.saw(&format!("on_message_send_success({id})")));
    bob.expect_message("alice", "hello bob").await;
    assert!(
        bob.calls
            .saw("on_message_instant_receive(alice, 0, hello bob)")
    );

    // The application's own id is kept; any text, including an empty body, travels.
    let id = bob
        .sdk
        .message_instant_send("alice", 0, "héllo ✓ {\"json\": true}", "my-id-1");
    assert_eq!(id, "my-id-1");
    expect_sent(&mut bob, "my-id-1").await;
    alice
        .expect_message("bob", "héllo ✓ {\"json\": true}")
        .await;
    let id = bob.sdk.message_instant_send("alice", 0, "", "");
    expect_sent(&mut bob, &id).await;
    alice.expect_message("bob", "").await;

    // A message to oneself is delivered too (the delivery may come before the confirmation).
    let id = alice
        .sdk
        .message_instant_send("alice", 0, "note to self", "");
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        outcomes.push(
            alice
                .expect(|e| {
                    matches!(
                        e,
                        Event::MessageInstantReceive { .. } | Event::MessageSendSuccess { .. }
                    )
                })
                .await,
        );
    }
    assert!(
        outcomes.contains(&Event::MessageSendSuccess { message_id: id }),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&Event::MessageInstantReceive {
            account: "alice".into(),
            uid: 0,
            msg: "note to self".into()
        }),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_arrive_once_in_order() {
    if beckon_tests::skip_in_cluster(
        "it pipelines 10,000 sends to an account on another node faster than the cluster \
         locates it; a session may have at most 4,096 sends waiting for that answer and the \
         sends beyond are refused with 1001 (MAX_WAITING_SENDS_PER_SESSION, docs/cluster.md)",
    ) {
        return;
    }
    const N: usize = 10_000;
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    // Pipelined: every send is queued before any outcome is awaited.
    let mut pending: HashMap<String, usize> = HashMap::with_capacity(N);
    for i in 0..N {
        let id = alice
            .sdk
            .message_instant_send("bob", 0, &format!("m{i}"), "");
        assert!(pending.insert(id, i).is_none(), "message id reused at {i}");
    }

    let sender = async {
        let mut confirmed = HashSet::with_capacity(N);
        while confirmed.len() < N {
            match alice
                .expect(|e| {
                    matches!(
                        e,
                        Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
                    )
                })
                .await
            {
                Event::MessageSendSuccess { message_id } => {
                    assert!(
                        pending.contains_key(&message_id),
                        "success for unknown id {message_id}"
                    );
                    assert!(
                        confirmed.insert(message_id.clone()),
                        "second success for {message_id}"
                    );
                }
                other => panic!("after {} successes: {other:?}", confirmed.len()),
            }
        }
    };
    let receiver = async {
        for i in 0..N {
            let ev = bob
                .expect(|e| matches!(e, Event::MessageInstantReceive { .. }))
                .await;
            match ev {
                Event::MessageInstantReceive { account, msg, .. } => {
                    assert_eq!(account, "alice");
                    assert_eq!(msg, format!("m{i}"), "message {i} out of order or lost");
                }
                _ => unreachable!(),
            }
        }
    };
    let started = std::time::Instant::now();
    tokio::join!(sender, receiver);
    eprintln!(
        "{N} messages confirmed and received in {:?}",
        started.elapsed()
    );

    // Nothing more: no duplicate outcome, no duplicate delivery.
    bob.expect_none(200, |e| matches!(e, Event::MessageInstantReceive { .. }))
        .await;
    alice
        .expect_none(50, |e| {
            matches!(
                e,
                Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
            )
        })
        .await;
    let successes = alice
        .calls
        .calls()
        .iter()
        .filter(|c| c.starts_with("on_message_send_success("))
        .count();
    assert_eq!(successes, N, "every success reached the callbacks once");
    assert_eq!(server.stats().await.messages_delivered, N as u64);
}

#[tokio::test]
async fn messages_to_an_offline_user_wait_for_the_next_login() {
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;

    // bob has never logged in.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            alice
                .sdk
                .message_instant_send("bob", 0, &format!("early {i}"), ""),
        );
    }
    for id in &ids {
        expect_sent(&mut alice, id).await;
    }
    assert_eq!(server.stats().await.messages_stored, 5);

    let mut bob = User::new(server.url(), "bob");
    bob.login(&server).await;
    for i in 0..5 {
        bob.expect_message("alice", &format!("early {i}")).await;
    }

    // bob logs out; what is sent meanwhile waits again, and live messages follow it in order.
    bob.logout().await;
    alice.await_status_of("bob", "0").await;
    for i in 0..3 {
        let id = alice
            .sdk
            .message_instant_send("bob", 0, &format!("late {i}"), "");
        expect_sent(&mut alice, &id).await;
    }
    bob.login(&server).await;
    let id = alice.sdk.message_instant_send("bob", 0, "live", "");
    expect_sent(&mut alice, &id).await;
    for i in 0..3 {
        bob.expect_message("alice", &format!("late {i}")).await;
    }
    bob.expect_message("alice", "live").await;
    bob.expect_no_instant_message().await;
    assert_eq!(server.stats().await.messages_stored, 8);
}
