//! Presence, user attributes, invoke, calls before login and bad inputs (SPEC §2, §6, §9).

use serde_json::{Value, json};

use beckon_sdk::Event;
use beckon_tests::{TestServer, User, logged_in, server_with};

/// Reads `account`'s attribute `name` through `getUserAttr` (or `getAttr` for oneself).
async fn attr(u: &mut User, account: &str, name: &str) -> String {
    if account == u.account {
        u.sdk.get_attr(name);
    } else {
        u.sdk.get_user_attr(account, name);
    }
    match u
        .expect(|e| matches!(e, Event::UserAttrResult { .. } | Event::Error { .. }))
        .await
    {
        Event::UserAttrResult {
            account: a,
            name: n,
            value,
        } => {
            assert_eq!((a.as_str(), n.as_str()), (account, name));
            value
        }
        other => panic!("reading {account}'s {name}: {other:?}"),
    }
}

/// Reads all of `account`'s attributes as JSON through `getUserAttrAll` (or `getAttrAll`).
async fn attrs(u: &mut User, account: &str) -> Value {
    if account == u.account {
        u.sdk.get_attr_all();
    } else {
        u.sdk.get_user_attr_all(account);
    }
    match u
        .expect(|e| matches!(e, Event::UserAttrAllResult { .. } | Event::Error { .. }))
        .await
    {
        Event::UserAttrAllResult { account: a, value } => {
            assert_eq!(a, account);
            serde_json::from_str(&value).unwrap_or_else(|e| panic!("{value:?} is not JSON: {e}"))
        }
        other => panic!("reading {account}'s attributes: {other:?}"),
    }
}

/// The next `on_error`, which must be `name` with `ecode`.
async fn expect_error(u: &mut User, name: &str, ecode: i32) {
    let ev = u.expect(|e| matches!(e, Event::Error { .. })).await;
    assert!(
        matches!(&ev, Event::Error { name: n, ecode: c, desc } if n == name && *c == ecode && !desc.is_empty()),
        "expected on_error({name}, {ecode}, <desc>), got {ev:?}"
    );
}

#[tokio::test]
async fn query_user_status_sees_online_and_offline() {
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    assert_eq!(alice.status_of("bob").await, "1");
    assert_eq!(alice.status_of("alice").await, "1");
    assert_eq!(alice.status_of("nobody").await, "0");
    assert!(alice.calls.saw("on_query_user_status_result(bob, 1)"));
    assert!(alice.calls.saw("on_query_user_status_result(nobody, 0)"));
    bob.logout().await;
    alice.await_status_of("bob", "0").await;
    bob.login(&server).await;
    alice.await_status_of("bob", "1").await;
}

#[tokio::test]
async fn user_attributes_between_two_users() {
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    assert_eq!(
        attr(&mut bob, "alice", "color").await,
        "",
        "missing reads empty"
    );
    assert_eq!(attrs(&mut bob, "alice").await, json!({}));

    alice.sdk.set_attr("color", "blue");
    alice.sdk.set_attr("food", "pizza");
    // Replies come in request order, so this read follows both writes.
    assert_eq!(attr(&mut alice, "alice", "color").await, "blue");
    assert!(alice.calls.saw("on_user_attr_result(alice, color, blue)"));
    assert_eq!(attr(&mut bob, "alice", "color").await, "blue");
    assert_eq!(attr(&mut bob, "alice", "food").await, "pizza");
    assert_eq!(attr(&mut bob, "alice", "other").await, "");
    let all = json!({"color": "blue", "food": "pizza"});
    assert_eq!(attrs(&mut alice, "alice").await, all);
    assert_eq!(attrs(&mut bob, "alice").await, all);
    assert_eq!(
        attrs(&mut alice, "bob").await,
        json!({}),
        "bob's are his own"
    );

    // An empty value deletes.
    alice.sdk.set_attr("food", "");
    assert_eq!(attr(&mut alice, "alice", "food").await, "");
    assert_eq!(attrs(&mut bob, "alice").await, json!({"color": "blue"}));

    // `_conn_timeout` is the one built-in users may set.
    alice.sdk.set_attr("_conn_timeout", "60");
    assert_eq!(attr(&mut alice, "alice", "_conn_timeout").await, "60");
    assert_eq!(attr(&mut bob, "alice", "_conn_timeout").await, "60");
    alice.sdk.set_attr("_conn_timeout", "");
    assert_eq!(attr(&mut alice, "alice", "_conn_timeout").await, "");

    // Attributes outlive the session.
    alice.logout().await;
    assert_eq!(attr(&mut bob, "alice", "color").await, "blue");
    alice.login(&server).await;
    assert_eq!(attr(&mut alice, "alice", "color").await, "blue");
}

#[tokio::test]
async fn bad_attribute_writes_fail_and_change_nothing() {
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;
    alice.sdk.set_attr("color", "blue");
    assert_eq!(attr(&mut alice, "alice", "color").await, "blue");

    for name in ["_member_num", "_x", "_conn_timeout_x"] {
        alice.sdk.set_attr(name, "1");
        expect_error(&mut alice, "setAttr", 1004).await;
        assert!(alice.calls.saw("on_error(setAttr, 1004)"));
    }
    alice.sdk.set_attr("_conn_timeout", "soon");
    expect_error(&mut alice, "setAttr", 1004).await;
    alice.sdk.set_attr("", "x");
    expect_error(&mut alice, "setAttr", 1004).await;
    alice.sdk.set_attr("color", &"v".repeat(1025));
    expect_error(&mut alice, "setAttr", 1005).await;
    alice.sdk.set_attr(&"n".repeat(129), "x");
    expect_error(&mut alice, "setAttr", 1005).await;
    alice.sdk.get_attr("");
    expect_error(&mut alice, "getAttr", 1004).await;
    alice.sdk.get_user_attr("", "color");
    expect_error(&mut alice, "getUserAttr", 1004).await;
    alice.sdk.get_user_attr("al ice", "color");
    expect_error(&mut alice, "getUserAttr", 1004).await;
    alice.sdk.get_user_attr_all(&"a".repeat(129));
    expect_error(&mut alice, "getUserAttrAll", 1005).await;

    assert_eq!(attrs(&mut alice, "alice").await, json!({"color": "blue"}));
    // The longest value is fine.
    let longest = "v".repeat(1024);
    alice.sdk.set_attr("color", &longest);
    assert_eq!(attr(&mut alice, "alice", "color").await, longest);
}

#[tokio::test]
async fn invoke_runs_the_user_functions() {
    let (_server, [mut alice, _bob]) = server_with(["alice", "bob"]).await;

    for (name, req, want) in [
        (
            "user_query_user_status",
            r#"{"account":"bob"}"#,
            json!({"status": 1}),
        ),
        (
            "user_query_user_status",
            r#"{"account":"carol"}"#,
            json!({"status": 0}),
        ),
        (
            "user_set_attr",
            r#"{"name":"mood","value":"happy"}"#,
            Value::Null,
        ),
        (
            "user_get_attr",
            r#"{"account":"alice","name":"mood"}"#,
            json!({"value": "happy"}),
        ),
        (
            "user_get_attr",
            r#"{"account":"alice","name":"none"}"#,
            json!({"value": ""}),
        ),
        (
            "user_get_attr_all",
            r#"{"account":"alice"}"#,
            json!({"mood": "happy"}),
        ),
    ] {
        let resp = alice.signal_ok(name, req).await;
        if !want.is_null() {
            assert_eq!(resp, want, "{name}({req})");
        }
    }
    // The invoke and the plain API see the same attributes.
    assert_eq!(attr(&mut alice, "alice", "mood").await, "happy");
    assert!(
        alice
            .calls
            .saw(r#"on_invoke_ret(user_query_user_status, , {"status":1})"#),
        "{:?}",
        alice.calls.calls()
    );

    // Unknown function, malformed request, wrong argument types: "1004".
    let f = |name: &str| format!("io.agora.signal.{name}");
    for (name, req) in [
        (f("no_such_function"), "{}"),
        ("user_query_user_status".to_owned(), r#"{"account":"bob"}"#),
        (f("user_query_user_status"), "{not json"),
        (f("user_query_user_status"), "[1,2]"),
        (f("user_query_user_status"), r#"{"account":7}"#),
        (f("user_get_attr"), r#"{"account":"alice"}"#),
        (f("user_set_attr"), r#"{"name":"_x","value":"1"}"#),
    ] {
        let (err, _) = alice.invoke(&name, req, "bad").await;
        assert_eq!(err, "1004", "invoke({name}, {req})");
    }
    assert!(alice.calls.saw("on_error(invoke, 1004)"));
    let all = alice
        .signal_ok("user_get_attr_all", r#"{"account":"alice"}"#)
        .await;
    assert_eq!(
        all,
        json!({"mood": "happy"}),
        "the failed calls changed nothing"
    );
}

#[tokio::test]
async fn every_call_before_login_is_1003() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    alice.sdk.query_user_status("bob");
    expect_error(&mut alice, "queryUserStatus", 1003).await;
    alice.sdk.set_attr("color", "blue");
    expect_error(&mut alice, "setAttr", 1003).await;
    alice.sdk.get_attr("color");
    expect_error(&mut alice, "getAttr", 1003).await;
    alice.sdk.get_attr_all();
    expect_error(&mut alice, "getAttrAll", 1003).await;
    alice.sdk.get_user_attr("bob", "color");
    expect_error(&mut alice, "getUserAttr", 1003).await;
    alice.sdk.get_user_attr_all("bob");
    expect_error(&mut alice, "getUserAttrAll", 1003).await;

    alice.sdk.invoke(
        "io.agora.signal.user_query_user_status",
        r#"{"account":"bob"}"#,
        "c1",
    );
    let ev = alice.expect(|e| matches!(e, Event::InvokeRet { .. })).await;
    assert!(
        matches!(&ev, Event::InvokeRet { call_id, err, .. } if call_id == "c1" && err == "1003"),
        "{ev:?}"
    );
    expect_error(&mut alice, "invoke", 1003).await;

    let id = alice.sdk.message_instant_send("bob", 0, "hi", "");
    alice
        .expect_eq(
            |e| {
                matches!(
                    e,
                    Event::MessageSendError { .. } | Event::MessageSendSuccess { .. }
                )
            },
            Event::MessageSendError {
                message_id: id.clone(),
                ecode: 1003,
            },
        )
        .await;
    assert!(
        alice
            .calls
            .saw(&format!("on_message_send_error({id}, 1003)"))
    );
    expect_error(&mut alice, "messageInstantSend", 1003).await;

    assert_eq!(alice.sdk.get_status(), 0);
    let stats = server.stats().await;
    assert_eq!(
        (stats.connections, stats.logins),
        (0, 0),
        "nothing reached the server"
    );

    // After all that, a login works and the same calls succeed.
    alice.login(&server).await;
    assert_eq!(alice.status_of("bob").await, "0");
}

#[tokio::test]
async fn bad_inputs_fail_with_their_codes_and_change_nothing() {
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;

    for (account, ecode) in [("", 1004), ("b ob", 1004), ("bob\n", 1004)] {
        alice.sdk.query_user_status(account);
        expect_error(&mut alice, "queryUserStatus", ecode).await;
    }
    alice.sdk.query_user_status(&"b".repeat(129));
    expect_error(&mut alice, "queryUserStatus", 1005).await;

    let too_big = "x".repeat(8193);
    let long_account = "b".repeat(129);
    for (to, msg, ecode) in [
        ("", "hi", 1004),
        ("b ob", "hi", 1004),
        (long_account.as_str(), "hi", 1005),
        ("bob", too_big.as_str(), 1005),
    ] {
        let id = alice.sdk.message_instant_send(to, 0, msg, "");
        let ev = alice
            .expect(|e| {
                matches!(
                    e,
                    Event::MessageSendError { .. } | Event::MessageSendSuccess { .. }
                )
            })
            .await;
        assert_eq!(
            ev,
            Event::MessageSendError {
                message_id: id,
                ecode
            },
            "message to {to:?} of {} bytes",
            msg.len()
        );
        expect_error(&mut alice, "messageInstantSend", ecode).await;
    }
    // 8 KiB is measured in bytes: 2049 four-byte characters are too many.
    let emoji = "😀".repeat(2049);
    let id = alice.sdk.message_instant_send("bob", 0, &emoji, "");
    alice
        .expect_next(Event::MessageSendError {
            message_id: id,
            ecode: 1005,
        })
        .await;
    // A message id with a control character is refused too.
    let ev_id = alice.sdk.message_instant_send("bob", 0, "hi", "bad\u{1}id");
    alice
        .expect_next(Event::MessageSendError {
            message_id: ev_id,
            ecode: 1004,
        })
        .await;

    // Still logged in, and bob got nothing but the valid message that follows.
    assert_eq!(alice.sdk.get_status(), 2);
    let largest = "y".repeat(8192);
    let id = alice.sdk.message_instant_send("bob", 0, &largest, "");
    alice
        .expect_eq(
            |e| {
                matches!(
                    e,
                    Event::MessageSendSuccess { .. } | Event::MessageSendError { .. }
                )
            },
            Event::MessageSendSuccess { message_id: id },
        )
        .await;
    bob.expect_next(Event::MessageInstantReceive {
        account: "alice".into(),
        uid: 0,
        msg: largest,
    })
    .await;
    bob.expect_no_instant_message().await;
    assert_eq!(server.stats().await.messages_delivered, 1);
    assert_eq!(server.stats().await.messages_stored, 0);
}
