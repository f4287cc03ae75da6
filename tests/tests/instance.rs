//! The SDK's own surface: callbacks and event streams, dropping an instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use beckon_sdk::{Callbacks, Config, Event, Instance};
use beckon_tests::{APP_ID, TIMEOUT, TestServer, expect_event, server_with};

#[tokio::test]
async fn callback_get_returns_what_was_set() {
    let sdk = Instance::new(Config::new("tcp://127.0.0.1:7400")).expect("a tcp url");
    assert!(sdk.callback_get().is_none());
    let first: Arc<dyn Callbacks> = Arc::new(Counter::default());
    sdk.callback_set(first.clone());
    assert!(Arc::ptr_eq(&sdk.callback_get().expect("set"), &first));
    let second: Arc<dyn Callbacks> = Arc::new(Counter::default());
    sdk.callback_set(second.clone());
    assert!(Arc::ptr_eq(&sdk.callback_get().expect("set"), &second));
}

#[derive(Default)]
struct Counter {
    logins: AtomicUsize,
}

impl Callbacks for Counter {
    fn on_login_success(&self, _uid: u32, _fd: i32) {
        self.logins.fetch_add(1, Ordering::SeqCst);
    }
}

/// Panics in every callback it implements.
struct Panicky;

impl Callbacks for Panicky {
    fn on_login_success(&self, _uid: u32, _fd: i32) {
        panic!("a deliberately broken callback (expected in this test)");
    }
    fn on_query_user_status_result(&self, _name: &str, _status: &str) {
        panic!("a deliberately broken callback (expected in this test)");
    }
}

#[tokio::test]
async fn a_panicking_callback_does_not_stop_the_instance() {
    let server = TestServer::start().await;
    let sdk = Instance::new(beckon_tests::config(server.url())).expect("a valid url");
    sdk.callback_set(Arc::new(Panicky));
    let mut events = sdk.events();
    sdk.login(APP_ID, "alice", &server.token("alice"), 0, "");
    expect_event(
        &mut events,
        |e| matches!(e, Event::LoginSuccess { .. }),
        TIMEOUT,
    )
    .await;
    sdk.query_user_status("alice");
    let ev = expect_event(
        &mut events,
        |e| matches!(e, Event::QueryUserStatusResult { .. }),
        TIMEOUT,
    )
    .await;
    assert_eq!(
        ev,
        Event::QueryUserStatusResult {
            name: "alice".into(),
            status: "1".into()
        }
    );
    assert_eq!(sdk.get_status(), 2);
}

#[tokio::test]
async fn every_stream_gets_every_later_event() {
    let server = TestServer::start().await;
    let sdk = Instance::new(beckon_tests::config(server.url())).expect("a valid url");
    let counter = Arc::new(Counter::default());
    sdk.callback_set(counter.clone());
    let mut a = sdk.events();
    let mut b = sdk.events();
    let dropped = sdk.events();
    drop(dropped);
    sdk.login(APP_ID, "alice", &server.token("alice"), 0, "");
    for s in [&mut a, &mut b] {
        let ev = expect_event(s, |e| matches!(e, Event::LoginSuccess { .. }), TIMEOUT).await;
        assert!(matches!(ev, Event::LoginSuccess { uid, fd: 0 } if uid != 0));
    }
    assert_eq!(counter.logins.load(Ordering::SeqCst), 1);

    // A stream made later sees only what happens after it.
    let mut late = sdk.events();
    sdk.query_user_status("bob");
    let first = expect_event(&mut late, |e| !matches!(e, Event::Log { .. }), TIMEOUT).await;
    assert_eq!(
        first,
        Event::QueryUserStatusResult {
            name: "bob".into(),
            status: "0".into()
        }
    );
    // The stream is also a `futures_core::Stream`.
    fn is_stream<S: futures_core::Stream<Item = Event> + Unpin>(_: &S) {}
    is_stream(&late);
}

#[tokio::test]
async fn dropping_an_instance_closes_its_connection() {
    let (server, [alice, _bob]) = server_with(["alice", "bob"]).await;
    assert_eq!(server.stats().await.connections, 2);
    let mut events = alice.events;
    drop(alice.sdk);
    // The driver stops: the stream ends and the server sees the connection close.
    let ended =
        tokio::time::timeout(TIMEOUT, async { while events.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the event stream did not end");
    server
        .await_stats("the connection's close", |s| s.connections == 1)
        .await;
}

#[tokio::test]
async fn generated_message_ids_differ_across_instances() {
    // Nothing is sent: no instance logs in, so any address will do.
    let new = || Instance::new(Config::new("tcp://127.0.0.1:9")).expect("a tcp url");
    let instances = [new(), new()];
    let mut ids = std::collections::HashSet::new();
    for round in 0..100 {
        for sdk in &instances {
            let id = if round % 2 == 0 {
                sdk.message_instant_send("bob", 0, "hi", "")
            } else {
                sdk.message_channel_send("room", "hi", "")
            };
            assert!(ids.insert(id), "a generated id came twice");
        }
    }
    assert_eq!(
        instances[0].message_instant_send("bob", 0, "hi", "mine"),
        "mine"
    );
}
