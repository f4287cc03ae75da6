//! Connection loss through the SDK's driver: reconnecting to a restarted server, and giving up
//! when it does not come back (SPEC §5).

use std::time::Duration;

use beckon_sdk::{ClientConfig, Event};
use beckon_tests::{TestServer, User, logged_in};

/// alice on `server`, whose reconnect back-off is short so the tests stay quick, logged in
/// with `retry_count` attempts.
async fn quick_alice(server: &TestServer, retry_count: i32) -> User {
    let mut config = beckon_tests::config(server.url());
    config.client = ClientConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(2),
        ..config.client
    };
    let mut alice = User::with_config(config, "alice");
    alice.login_retrying(server, retry_count).await;
    alice
}

#[tokio::test]
async fn a_restarted_server_is_reconnected_to() {
    if beckon_tests::skip_in_cluster(
        "it restarts the one server on its own addresses; a node's death is covered by the cluster fault tests",
    ) {
        return;
    }
    let server = TestServer::start().await;
    let listen = server.endpoints().to_vec();
    let mut alice = quick_alice(&server, 50).await;

    server.shutdown().await;
    alice.expect_next(Event::Reconnecting { nretry: 1 }).await;
    let restarted = TestServer::start_with(|c| c.listen = listen).await;
    alice.expect_reconnected().await;
    assert_eq!(alice.sdk.get_status(), 2);

    // The session works on the new server.
    let mut bob = logged_in(&restarted, "bob").await;
    assert_eq!(bob.status_of("alice").await, "1");
    let id = alice.sdk.message_instant_send("bob", 0, "still here", "");
    let outcome = |e: &Event| {
        matches!(
            e,
            Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
        )
    };
    alice
        .expect_eq(outcome, Event::MessageSendSuccess { message_id: id })
        .await;
    bob.expect_next(Event::MessageInstantReceive {
        account: "alice".into(),
        uid: 0,
        msg: "still here".into(),
    })
    .await;
}

#[tokio::test]
async fn reconnecting_gives_up_with_logout_102() {
    let server = TestServer::start().await;
    let mut alice = quick_alice(&server, 3).await;

    server.shutdown().await;
    let mut attempts = Vec::new();
    let end = loop {
        match alice
            .expect(|e| matches!(e, Event::Reconnecting { .. } | Event::Logout { .. }))
            .await
        {
            Event::Reconnecting { nretry } => attempts.push(nretry),
            other => break other,
        }
    };
    assert_eq!(
        attempts,
        [1, 2, 3],
        "one onReconnecting per attempt, counted from 1"
    );
    assert_eq!(end, Event::Logout { ecode: 102 });
    assert_eq!(alice.sdk.get_status(), 0);
}
