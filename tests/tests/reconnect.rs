//! Connection loss through the SDK's driver: reconnecting to a restarted server, and giving up
//! when it does not come back (SPEC §5).

use std::time::Duration;

use beckon_sdk::{ClientConfig, Event, Instance};
use beckon_tests::{APP_ID, TIMEOUT, TestServer, expect_event, logged_in};

/// An instance whose reconnect back-off is short, so the tests stay quick.
fn quick_instance(url: &str) -> Instance {
    let mut config = beckon_tests::config(url);
    config.client = ClientConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(2),
        ..config.client
    };
    Instance::new(config).expect("a tcp url")
}

#[tokio::test]
async fn a_restarted_server_is_reconnected_to() {
    let server = TestServer::start().await;
    let listen = server.endpoints().to_vec();
    let alice = quick_instance(server.url());
    let mut events = alice.events();
    alice.login2(APP_ID, "alice", &server.token("alice"), 0, "", 30, 50);
    expect_event(
        &mut events,
        |e| matches!(e, Event::LoginSuccess { .. }),
        TIMEOUT,
    )
    .await;

    server.shutdown().await;
    let ev = expect_event(
        &mut events,
        |e| matches!(e, Event::Reconnecting { .. }),
        TIMEOUT,
    )
    .await;
    assert_eq!(ev, Event::Reconnecting { nretry: 1 });
    let restarted = TestServer::start_with(|c| c.listen = listen).await;
    let ev = expect_event(
        &mut events,
        |e| matches!(e, Event::Reconnected { .. } | Event::Logout { .. }),
        TIMEOUT,
    )
    .await;
    assert_eq!(ev, Event::Reconnected { fd: 0 });
    assert_eq!(alice.get_status(), 2);

    // The session works on the new server.
    let mut bob = logged_in(&restarted, "bob").await;
    assert_eq!(bob.status_of("alice").await, "1");
    let id = alice.message_instant_send("bob", 0, "still here", "");
    let ev = expect_event(
        &mut events,
        |e| {
            matches!(
                e,
                Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
            )
        },
        TIMEOUT,
    )
    .await;
    assert_eq!(ev, Event::MessageSendSuccess { message_id: id });
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
    let alice = quick_instance(server.url());
    let mut events = alice.events();
    alice.login2(APP_ID, "alice", &server.token("alice"), 0, "", 30, 3);
    expect_event(
        &mut events,
        |e| matches!(e, Event::LoginSuccess { .. }),
        TIMEOUT,
    )
    .await;

    server.shutdown().await;
    let mut attempts = Vec::new();
    let end = loop {
        match expect_event(
            &mut events,
            |e| matches!(e, Event::Reconnecting { .. } | Event::Logout { .. }),
            TIMEOUT,
        )
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
    assert_eq!(alice.get_status(), 0);
}
