//! Channels over TCP through the SDK (SPEC §7, §9): joining and leaving with every reason,
//! member events, queries, attributes and their built-ins, channel messages and their limits,
//! forced messages, the special channels, invoke, a crowded channel and bad inputs.
//!
//! Every wait is bounded: timers the server runs (grace, TTL, auto-updates) are configured in
//! milliseconds or single seconds, never the production defaults.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use beckon_sdk::Event;
use beckon_tests::{
    APP_ID, Proxy, TestServer, User, all_logged_in, cluster_mode, logged_in, server_with,
};

/// The next `on_channel_attr_updated` of `u`, which must be exactly this one.
async fn expect_attr(u: &mut User, channel: &str, name: &str, value: &str, kind: &str) {
    let [channel, name, value, kind] = [channel, name, value, kind].map(str::to_owned);
    let want = Event::ChannelAttrUpdated {
        channel,
        name,
        value,
        kind,
    };
    u.expect_next(want).await;
}

async fn expect_user_joined(u: &mut User, channel: &str, account: &str) {
    u.expect_next(member_event(channel, account, true)).await;
}

async fn expect_user_leaved(u: &mut User, channel: &str, account: &str) {
    u.expect_next(member_event(channel, account, false)).await;
}

/// `on_channel_user_joined` (or, unless `joined`, `..._leaved`) of `account` in `channel`.
fn member_event(channel: &str, account: &str, joined: bool) -> Event {
    let (channel, account) = (channel.to_owned(), account.to_owned());
    if joined {
        Event::ChannelUserJoined {
            channel,
            account,
            uid: 0,
        }
    } else {
        Event::ChannelUserLeaved {
            channel,
            account,
            uid: 0,
        }
    }
}

/// Waits for the outcome of channel message `id`: `None` for success, else the error code.
async fn send_outcome(u: &mut User, id: &str) -> Option<i32> {
    match u
        .expect(|e| {
            matches!(e, Event::MessageSendSuccess { message_id }
                | Event::MessageSendError { message_id, .. } if message_id == id)
        })
        .await
    {
        Event::MessageSendSuccess { .. } => None,
        Event::MessageSendError { ecode, .. } => Some(ecode),
        _ => unreachable!("matched a send outcome"),
    }
}

/// `(ecode, num)` of `channel_query_user_num`.
/// The outcomes of the channel messages `ids` (as [`send_outcome`]), in the order of `ids`,
/// whatever order they come in: in cluster mode a refusal the sender's node decides by itself
/// comes at once, before the successes of earlier messages that wait for Redis.
async fn send_outcomes(u: &mut User, ids: &[String]) -> Vec<Option<i32>> {
    let mut got: HashMap<String, Option<i32>> = HashMap::new();
    while got.len() < ids.len() {
        match u
            .expect(|e| {
                matches!(e, Event::MessageSendSuccess { message_id }
                    | Event::MessageSendError { message_id, .. } if ids.contains(message_id))
            })
            .await
        {
            Event::MessageSendSuccess { message_id } => got.insert(message_id, None),
            Event::MessageSendError { message_id, ecode } => got.insert(message_id, Some(ecode)),
            _ => unreachable!("matched a send outcome"),
        };
    }
    ids.iter().map(|id| got[id]).collect()
}

/// After `u`'s own channel write was answered, makes sure its own copy of what it wrote (a
/// message, an attribute update) has come: on one node it comes before the answer; in cluster
/// mode it comes back through Redis and may follow the answer, so this waits for a channel sync
/// (everything published on the channel before the marker has then come).
async fn own_copy_came(u: &mut User, channel: &str) {
    if cluster_mode() {
        u.sync_channel(channel).await;
    }
}

async fn user_num(u: &mut User, channel: &str) -> (i32, i32) {
    u.sdk.channel_query_user_num(channel);
    match u
        .expect(
            |e| matches!(e, Event::ChannelQueryUserNumResult { channel: c, .. } if c == channel),
        )
        .await
    {
        Event::ChannelQueryUserNumResult { ecode, num, .. } => (ecode, num),
        _ => unreachable!("matched ChannelQueryUserNumResult"),
    }
}

async fn is_in(u: &mut User, channel: &str, account: &str) -> i32 {
    u.sdk.channel_query_user_is_in(channel, account);
    match u
        .expect(|e| {
            matches!(e, Event::ChannelQueryUserIsIn { channel: c, account: a, .. }
                if c == channel && a == account)
        })
        .await
    {
        Event::ChannelQueryUserIsIn { is_in, .. } => is_in,
        _ => unreachable!("matched ChannelQueryUserIsIn"),
    }
}

fn attr_events(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelAttrUpdated {
                name, value, kind, ..
            } => Some((name.clone(), value.clone(), kind.clone())),
            _ => None,
        })
        .collect()
}

fn member_events(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChannelUserJoined { .. } | Event::ChannelUserLeaved { .. }
            )
        })
        .collect()
}

/// Users logged in to `server` as `accounts`, who joined "room" in that order.
async fn all_in_room<const N: usize>(server: &TestServer, accounts: [&str; N]) -> [User; N] {
    let mut users = all_logged_in(server, accounts).await;
    for u in &mut users {
        u.join("room").await;
    }
    users
}

/// `u` saw no attribute update of `channel` (up to a sync with it).
async fn expect_no_attr_events(u: &mut User, channel: &str) {
    let seen = u.sync_channel(channel).await;
    assert!(attr_events(&seen).is_empty(), "{seen:?}");
}

/// `u` saw no member join or leave in `channel` (up to a sync with it).
async fn expect_no_member_events(u: &mut User, channel: &str) {
    let seen = u.sync_channel(channel).await;
    assert!(member_events(&seen).is_empty(), "{seen:?}");
}

/// A user logged in with the server privilege.
async fn privileged(server: &TestServer, account: &str) -> User {
    let mut u = User::new(server.url(), account);
    u.login_as_server(server).await;
    u
}

/// Waits until `n` channels have expired.
async fn await_channels_expired(server: &TestServer, n: u64) {
    let what = format!("{n} channels' expiry");
    server.await_stats(&what, |s| s.channels_expired >= n).await;
}

// ---- joining and leaving ----------------------------------------------------------------------

#[tokio::test]
async fn join_reports_in_spec_order_and_members_follow_each_other() {
    let (_server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;

    assert_eq!(alice.join("room").await, ["alice"]);
    alice.sdk.channel_set_attr("room", "topic", "rust");
    alice.sdk.channel_set_attr("room", "color", "blue");
    expect_attr(&mut alice, "room", "topic", "rust", "update").await;
    expect_attr(&mut alice, "room", "color", "blue", "update").await;

    // onChannelJoined, onChannelUserList with the joiner, then every attribute as "update".
    assert_eq!(bob.join("room").await, ["alice", "bob"]);
    let mut attrs = Vec::new();
    for _ in 0..2 {
        match bob
            .expect(|e| matches!(e, Event::ChannelAttrUpdated { .. }))
            .await
        {
            Event::ChannelAttrUpdated {
                channel,
                name,
                value,
                kind,
            } => attrs.push(format!("{channel} {name}={value} {kind}")),
            _ => unreachable!(),
        }
    }
    attrs.sort();
    assert_eq!(attrs, ["room color=blue update", "room topic=rust update"]);
    let bob_calls = bob.calls.calls_starting_with("on_channel_");
    assert_eq!(
        bob_calls[..2],
        [
            "on_channel_joined(room)",
            "on_channel_user_list([alice, bob], [0, 0])"
        ]
    );
    assert_eq!(bob_calls.len(), 4, "{bob_calls:?}");
    expect_user_joined(&mut alice, "room", "bob").await;

    assert_eq!(carol.join("room").await, ["alice", "bob", "carol"]);
    expect_user_joined(&mut alice, "room", "carol").await;
    expect_user_joined(&mut bob, "room", "carol").await;

    bob.leave("room").await;
    assert!(bob.calls.saw("on_channel_leaved(room, 602)"));
    expect_user_leaved(&mut alice, "room", "bob").await;
    expect_user_leaved(&mut carol, "room", "bob").await;

    assert_eq!(
        alice.calls.calls_starting_with("on_channel_"),
        [
            "on_channel_joined(room)",
            "on_channel_user_list([alice], [0])",
            "on_channel_attr_updated(room, topic, rust, update)",
            "on_channel_attr_updated(room, color, blue, update)",
            "on_channel_user_joined(bob, 0)",
            "on_channel_user_joined(carol, 0)",
            "on_channel_user_leaved(bob, 0)",
        ]
    );

    // Joining again answers as a fresh join, without member events for the others.
    assert_eq!(carol.join("room").await, ["alice", "carol"]);
    expect_no_member_events(&mut alice, "room").await;

    // Leaving a channel not joined.
    bob.sdk.channel_leave("room");
    bob.expect_error("channelLeave", 600).await;
    assert_eq!(
        bob.calls.calls_starting_with("on_channel_leaved"),
        ["on_channel_leaved(room, 602)"],
        "a failed leave reports no onChannelLeaved"
    );
}

#[tokio::test]
async fn logout_and_kick_leave_with_603_and_601() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = all_in_room(&server, ["alice", "bob"]).await;
    expect_user_joined(&mut alice, "room", "bob").await;

    // Logout: LEAVECHANNEL_E_LOGOUT, before onLogout.
    alice.logout().await;
    let calls = alice.calls.calls();
    let leaved = calls
        .iter()
        .position(|c| c == "on_channel_leaved(room, 603)")
        .unwrap_or_else(|| panic!("no on_channel_leaved(room, 603) in {calls:?}"));
    let logout = calls.iter().position(|c| c == "on_logout(101)").unwrap();
    assert!(leaved < logout, "{calls:?}");
    expect_user_leaved(&mut bob, "room", "alice").await;
    assert_eq!(is_in(&mut bob, "room", "alice").await, 0);

    // A second login of the account kicks the first: LEAVECHANNEL_E_KICKED, then onLogout(103).
    alice.login(&server).await;
    alice.join("room").await;
    expect_user_joined(&mut bob, "room", "alice").await;
    let mut second = logged_in(&server, "alice").await;
    alice
        .expect_eq(
            |e| matches!(e, Event::ChannelLeaved { .. } | Event::Logout { .. }),
            Event::ChannelLeaved {
                channel: "room".into(),
                ecode: 601,
            },
        )
        .await;
    alice.expect_next(Event::Logout { ecode: 103 }).await;
    expect_user_leaved(&mut bob, "room", "alice").await;
    // The new session is not in the channel.
    assert_eq!(is_in(&mut bob, "room", "alice").await, 0);
    assert_eq!(user_num(&mut second, "room").await, (0, 1));
    assert_eq!(
        alice.calls.calls_starting_with("on_channel_leaved"),
        [
            "on_channel_leaved(room, 603)",
            "on_channel_leaved(room, 601)"
        ]
    );
}

/// Grace shortened to 500 ms (the `_conn_timeout` of 20 s is clamped to it).
async fn short_grace_server() -> TestServer {
    TestServer::start_with(|c| {
        c.broker.min_grace = Duration::from_millis(100);
        c.broker.default_grace = Duration::from_millis(500);
        c.broker.max_grace = Duration::from_millis(500);
    })
    .await
}

#[tokio::test]
async fn offline_after_the_grace_period_leaves_with_604() {
    let server = short_grace_server().await;
    let proxy = Proxy::start(&server).await;
    let mut alice = User::quick(proxy.url(), "alice");
    alice.login_retrying(&server, 2).await;
    alice.sdk.set_attr("_conn_timeout", "20");
    alice.join("room").await;
    let mut bob = logged_in(&server, "bob").await;
    bob.join("room").await;
    expect_user_joined(&mut alice, "room", "bob").await;

    proxy.cut();
    let cut = tokio::time::Instant::now();
    alice.expect_next(Event::Logout { ecode: 102 }).await;
    let calls: Vec<String> = alice
        .calls
        .calls()
        .into_iter()
        .filter(|c| {
            c.starts_with("on_reconnecting")
                || c.starts_with("on_channel_leaved")
                || c.starts_with("on_logout")
        })
        .collect();
    assert_eq!(
        calls,
        [
            "on_reconnecting(1)",
            "on_reconnecting(2)",
            "on_channel_leaved(room, 604)",
            "on_logout(102)"
        ]
    );

    // The server keeps the session for the grace period, then the others see it leave.
    expect_user_leaved(&mut bob, "room", "alice").await;
    let waited = cut.elapsed();
    assert!(
        waited >= Duration::from_millis(450),
        "alice left after {waited:?}, before her grace period ended"
    );
    bob.await_status_of("alice", "0").await;
    assert_eq!(user_num(&mut bob, "room").await, (0, 1));
}

#[tokio::test]
async fn a_reconnect_keeps_the_channel_within_grace_and_rejoins_after_it() {
    let server = short_grace_server().await;
    let proxy = Proxy::start(&server).await;
    let mut alice = User::quick(proxy.url(), "alice");
    alice.login_retrying(&server, 1000).await;
    let mut bob = logged_in(&server, "bob").await;
    bob.join("room").await;
    assert_eq!(alice.join("room").await, ["bob", "alice"]);
    expect_user_joined(&mut bob, "room", "alice").await;

    // Within grace: the session resumes, nobody sees a leave or a join.
    proxy.cut();
    proxy.reopen();
    alice.expect_reconnected().await;
    bob.expect_none(800, |e| {
        matches!(
            e,
            Event::ChannelUserJoined { .. } | Event::ChannelUserLeaved { .. }
        )
    })
    .await;
    let seen = alice.sync_channel("room").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::ChannelJoined { .. })),
        "no rejoin after a resume: {seen:?}"
    );

    // After grace: the session is gone; the reconnect is a fresh login and the SDK joins again.
    proxy.cut();
    expect_user_leaved(&mut bob, "room", "alice").await;
    proxy.reopen();
    alice.expect_reconnected().await;
    alice
        .expect_next(Event::ChannelJoined {
            channel: "room".into(),
        })
        .await;
    expect_user_joined(&mut bob, "room", "alice").await;
    assert_eq!(
        alice.calls.calls_starting_with("on_channel_joined"),
        ["on_channel_joined(room)", "on_channel_joined(room)"]
    );
    assert!(
        alice
            .calls
            .calls_starting_with("on_channel_leaved")
            .is_empty()
    );
    assert_eq!(alice.sdk.joined_channels().await, ["room"]);
}

#[tokio::test]
async fn joining_another_channel_leaves_the_first_unless_the_app_allows_more() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    bob.join("a").await;
    assert_eq!(alice.join("a").await, ["bob", "alice"]);
    expect_user_joined(&mut bob, "a", "alice").await;
    assert_eq!(alice.join("b").await, ["alice"]);
    assert_eq!(
        alice.calls.calls_starting_with("on_channel_"),
        [
            "on_channel_joined(a)",
            "on_channel_user_list([bob, alice], [0, 0])",
            "on_channel_leaved(a, 602)",
            "on_channel_joined(b)",
            "on_channel_user_list([alice], [0])",
        ]
    );
    expect_user_leaved(&mut bob, "a", "alice").await;
    assert_eq!(alice.sdk.joined_channels().await, ["b"]);

    // An app with max_channels_per_session = 2 keeps two, and leaves the oldest for a third.
    let server = TestServer::start_with_app(|a| a.max_channels_per_session = 2).await;
    let [mut alice, mut bob] = all_logged_in(&server, ["alice", "bob"]).await;
    bob.join("a").await;
    alice.join("a").await;
    expect_user_joined(&mut bob, "a", "alice").await;
    alice.join("b").await;
    assert_eq!(alice.sdk.joined_channels().await, ["a", "b"]);
    expect_no_member_events(&mut bob, "a").await;
    // Both channels deliver.
    let id = bob.sdk.message_channel_send("a", "to a", "");
    assert_eq!(send_outcome(&mut bob, &id).await, None);
    alice
        .expect_eq(
            |e| matches!(e, Event::MessageChannelReceive { msg, .. } if msg == "to a"),
            Event::MessageChannelReceive {
                channel: "a".into(),
                account: "bob".into(),
                uid: 0,
                msg: "to a".into(),
            },
        )
        .await;
    alice.join("c").await;
    assert_eq!(alice.sdk.joined_channels().await, ["b", "c"]);
    let tail: Vec<String> = alice
        .calls
        .calls_starting_with("on_channel_")
        .into_iter()
        .rev()
        .take(3)
        .collect();
    assert_eq!(
        tail,
        [
            "on_channel_user_list([alice], [0])",
            "on_channel_joined(c)",
            "on_channel_leaved(a, 602)",
        ]
    );
    expect_user_leaved(&mut bob, "a", "alice").await;
}

#[tokio::test]
async fn membership_queries_need_no_membership() {
    let (_server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;
    alice.join("room").await;
    bob.join("room").await;

    assert_eq!(user_num(&mut carol, "room").await, (0, 2));
    assert!(
        carol
            .calls
            .saw("on_channel_query_user_num_result(room, 0, 2)")
    );
    assert_eq!(is_in(&mut carol, "room", "alice").await, 1);
    assert_eq!(is_in(&mut carol, "room", "carol").await, 0);
    assert_eq!(is_in(&mut carol, "room", "nobody").await, 0);
    assert!(
        carol
            .calls
            .saw("on_channel_query_user_is_in(room, alice, 1)")
    );
    assert!(
        carol
            .calls
            .saw("on_channel_query_user_is_in(room, carol, 0)")
    );
    assert_eq!(user_num(&mut carol, "nowhere").await, (0, 0));
    assert_eq!(is_in(&mut carol, "nowhere", "alice").await, 0);

    bob.leave("room").await;
    assert_eq!(user_num(&mut carol, "room").await, (0, 1));
    assert_eq!(is_in(&mut carol, "room", "bob").await, 0);

    // Bad parameters fail locally, through the result callback where there is one.
    carol.sdk.channel_query_user_num("");
    carol
        .expect_next(Event::ChannelQueryUserNumResult {
            channel: String::new(),
            ecode: 1004,
            num: 0,
        })
        .await;
    carol.expect_error("channelQueryUserNum", 1004).await;
    carol.sdk.channel_query_user_is_in("room", "two words");
    carol.expect_error("channelQueryUserIsIn", 1004).await;
    carol
        .sdk
        .channel_query_user_is_in(&"r".repeat(129), "alice");
    carol.expect_error("channelQueryUserIsIn", 1005).await;
}

// ---- invoke -----------------------------------------------------------------------------------

#[tokio::test]
async fn invoke_runs_every_channel_function() {
    let (_server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;
    alice.join("room").await;
    bob.join("room").await;
    expect_user_joined(&mut alice, "room", "bob").await;
    let both = json!({"num": 2, "list": [["alice", 0], ["bob", 0]]});
    for (name, req, want) in [
        ("channel_query_num", r#"{"name":"room"}"#, json!({"num": 2})),
        (
            "channel_query_user_isin",
            r#"{"name":"room","account":"bob"}"#,
            json!({"isin": 1}),
        ),
        (
            "channel_query_user_isin",
            r#"{"name":"room","account":"carol"}"#,
            json!({"isin": 0}),
        ),
        ("channel_query_userlist", r#"{"name":"room"}"#, both.clone()),
        ("channel_query_userlist_all", r#"{"name":"room"}"#, both),
        // num keeps the latest members.
        (
            "channel_query_userlist_all",
            r#"{"name":"room","num":1}"#,
            json!({"num": 2, "list": [["bob", 0]]}),
        ),
        (
            "channel_query_userlist",
            r#"{"name":"none"}"#,
            json!({"num": 0, "list": []}),
        ),
    ] {
        assert_eq!(carol.signal_ok(name, req).await, want, "{name}({req})");
    }

    // Attribute writes by a member reach every member as callbacks. (On one node the writer's
    // own update comes before its onInvokeRet, which `invoke` waits for: read it from the
    // callbacks once `own_copy_came`.)
    let set = r#"{"channel":"room","name":"color","value":"red"}"#;
    assert_eq!(alice.signal_ok("channel_set_attr", set).await, json!({}));
    own_copy_came(&mut alice, "room").await;
    assert!(
        alice
            .calls
            .saw("on_channel_attr_updated(room, color, red, update)")
    );
    expect_attr(&mut bob, "room", "color", "red", "update").await;
    let del = r#"{"channel":"room","name":"color"}"#;
    assert_eq!(bob.signal_ok("channel_del_attr", del).await, json!({}));
    own_copy_came(&mut bob, "room").await;
    assert!(bob.calls.saw("on_channel_attr_updated(room, color, , del)"));
    expect_attr(&mut alice, "room", "color", "", "del").await;
    alice.sdk.channel_set_attr("room", "size", "3");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "size", "3", "update").await;
    }
    let clear = r#"{"channel":"room"}"#;
    assert_eq!(
        alice.signal_ok("channel_clear_attr", clear).await,
        json!({})
    );
    own_copy_came(&mut alice, "room").await;
    assert!(alice.calls.saw("on_channel_attr_updated(room, , , clear)"));
    expect_attr(&mut bob, "room", "", "", "clear").await;

    // Failures: a non-member writing, missing or mistyped arguments, unknown functions.
    let (err, resp) = carol
        .signal(
            "channel_set_attr",
            r#"{"channel":"room","name":"x","value":"1"}"#,
        )
        .await;
    assert_eq!(err, "1001");
    assert!(resp["error"].is_string(), "{resp}");
    assert!(carol.calls.saw("on_error(invoke, 1001)"));
    for (name, req) in [
        ("channel_query_num", "{}"),
        ("channel_query_user_isin", r#"{"name":"room"}"#),
        (
            "channel_query_userlist_all",
            r#"{"name":"room","num":"ten"}"#,
        ),
        ("channel_set_attr", r#"{"channel":"room","name":"x"}"#),
        ("channel_del_attr", r#"{"channel":"room"}"#),
        ("channel_clear_attr", r#"{"name":"room"}"#),
        ("channel_query_num", "not json"),
        ("channel_no_such_function", "{}"),
    ] {
        let (err, _) = alice.signal(name, req).await;
        assert_eq!(err, "1004", "{name} {req}");
    }
    expect_no_attr_events(&mut bob, "room").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_of_three_hundred_members() {
    const N: usize = 300;
    const NOTIFIED: usize = 250;
    let server = TestServer::start_with_app(|a| a.max_notified_members = NOTIFIED).await;
    let names: Vec<String> = (0..N).map(|i| format!("m{i:03}")).collect();
    let mut users: Vec<User> = names.iter().map(|n| User::new(server.url(), n)).collect();
    for u in &users {
        u.sdk
            .login(APP_ID, &u.account, &server.token(&u.account), 0, "");
    }
    for u in &mut users {
        u.await_login(APP_ID).await;
    }
    // One at a time, so the join order is known; each joiner's list is the latest 200.
    for (i, u) in users.iter_mut().enumerate() {
        let list = u.join("crowd").await;
        let from = (i + 1).saturating_sub(200);
        assert_eq!(list, names[from..=i], "the list of joiner {i}");
    }

    // Join events stop once the channel has more than max_notified_members.
    let seen = users[0].sync_channel("crowd").await;
    let joined: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::ChannelUserJoined { account, .. } => Some(account.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(joined, names[1..NOTIFIED]);
    users[N - 1].leave("crowd").await;
    expect_no_member_events(&mut users[0], "crowd").await;

    let mut outsider = logged_in(&server, "outsider").await;
    let list = |from: usize, to: usize| -> Value {
        Value::Array(names[from..to].iter().map(|a| json!([a, 0])).collect())
    };
    let n = N - 1;
    let crowd = r#"{"name":"crowd"}"#;
    let num = outsider.signal_ok("channel_query_num", crowd).await;
    assert_eq!(num, json!({"num": n}));
    assert_eq!(user_num(&mut outsider, "crowd").await, (0, 299));
    let latest = outsider.signal_ok("channel_query_userlist", crowd).await;
    assert_eq!(
        latest,
        json!({"num": n, "list": list(n - 200, n)}),
        "channel_query_userlist has the latest 200"
    );
    let all = outsider
        .signal_ok("channel_query_userlist_all", crowd)
        .await;
    assert_eq!(
        all,
        json!({"num": n, "list": list(0, n)}),
        "channel_query_userlist_all has everyone"
    );
    for num in [0, 10, 250, 1000] {
        let req = json!({"name": "crowd", "num": num}).to_string();
        let resp = outsider.signal_ok("channel_query_userlist_all", &req).await;
        let from = n.saturating_sub(num);
        assert_eq!(resp, json!({"num": n, "list": list(from, n)}), "num {num}");
    }

    // A member's message reaches all 299.
    let id = users[5]
        .sdk
        .message_channel_send("crowd", "to the crowd", "");
    assert_eq!(send_outcome(&mut users[5], &id).await, None);
    own_copy_came(&mut users[5], "crowd").await;
    // (On one node the sender's own copy came before its success, which `send_outcome` waited
    // for; in cluster mode `own_copy_came` waited for it.)
    assert!(
        users[5]
            .calls
            .saw("on_message_channel_receive(crowd, m005, 0, to the crowd)")
    );
    for u in users.iter_mut().take(n).filter(|u| u.account != "m005") {
        let ev = u
            .expect(
                |e| matches!(e, Event::MessageChannelReceive { msg, .. } if msg == "to the crowd"),
            )
            .await;
        assert!(
            matches!(&ev, Event::MessageChannelReceive { account, .. } if account == "m005"),
            "{ev:?}"
        );
    }
}

// ---- attributes -------------------------------------------------------------------------------

#[tokio::test]
async fn attribute_changes_reach_every_member() {
    let (server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;
    let admin = privileged(&server, "admin").await;
    alice.join("room").await;
    bob.join("room").await;

    alice.sdk.channel_set_attr("room", "color", "blue");
    bob.sdk.channel_set_attr("room", "size", "3");
    alice.sdk.channel_set_attr("room", "color", "green");
    for u in [&mut alice, &mut bob] {
        let mut got = Vec::new();
        for _ in 0..3 {
            match u
                .expect(|e| matches!(e, Event::ChannelAttrUpdated { .. }))
                .await
            {
                Event::ChannelAttrUpdated { name, value, .. } => {
                    got.push(format!("{name}={value}"))
                }
                _ => unreachable!(),
            }
        }
        // Each writer's updates stay in order (blue before green).
        let colors: Vec<&String> = got.iter().filter(|g| g.starts_with("color")).collect();
        assert_eq!(colors, ["color=blue", "color=green"], "{}", u.account);
        assert!(got.contains(&"size=3".to_owned()), "{got:?}");
    }
    assert!(
        bob.calls
            .saw("on_channel_attr_updated(room, color, green, update)")
    );

    alice.sdk.channel_del_attr("room", "color");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "color", "", "del").await;
    }
    // An empty value deletes too; deleting what is not there changes nothing.
    bob.sdk.channel_set_attr("room", "size", "");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "size", "", "del").await;
    }
    alice.sdk.channel_del_attr("room", "never-set");
    alice.sdk.channel_set_attr("room", "a", "1");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "a", "1", "update").await;
    }
    bob.sdk.channel_clear_attr("room");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "", "", "clear").await;
    }
    assert!(alice.calls.saw("on_channel_attr_updated(room, , , clear)"));

    // Non-members may not write; the server privilege may.
    carol.sdk.channel_set_attr("room", "x", "1");
    carol.expect_error("channelSetAttr", 1001).await;
    carol.sdk.channel_del_attr("room", "a");
    carol.expect_error("channelDelAttr", 1001).await;
    carol.sdk.channel_clear_attr("room");
    carol.expect_error("channelClearAttr", 1001).await;
    admin
        .sdk
        .channel_set_attr("room", "notice", "from the server");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "notice", "from the server", "update").await;
    }

    // Values up to 8096 characters; names up to 128; built-ins are checked.
    let longest = "é".repeat(8096);
    alice.sdk.channel_set_attr("room", "long", &longest);
    expect_attr(&mut bob, "room", "long", &longest, "update").await;
    alice
        .sdk
        .channel_set_attr("room", "long", &"v".repeat(8097));
    alice.expect_error("channelSetAttr", 1005).await;
    alice.sdk.channel_set_attr("room", &"n".repeat(129), "v");
    alice.expect_error("channelSetAttr", 1005).await;
    alice.sdk.channel_set_attr("room", "", "v");
    alice.expect_error("channelSetAttr", 1004).await;
    alice.sdk.channel_del_attr("room", "");
    alice.expect_error("channelDelAttr", 1004).await;
    alice.sdk.channel_set_attr("", "n", "v");
    alice.expect_error("channelSetAttr", 1004).await;
    for (name, value) in [
        ("_member_num", "5"),
        ("_total_member_num", "5"),
        ("_reserved", "1"),
        ("_userNotification", "2"),
        ("_channel_ttl", "soon"),
        ("_sendmsg_limit", "-1"),
    ] {
        alice.sdk.channel_set_attr("room", name, value);
        alice.expect_error("channelSetAttr", 1004).await;
    }
    alice.sdk.channel_del_attr("room", "_member_num");
    alice.expect_error("channelDelAttr", 1004).await;
    // None of the refused writes reached anyone.
    expect_no_attr_events(&mut bob, "room").await;
}

#[tokio::test]
async fn user_notification_0_silences_member_events() {
    let (_server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;
    alice.join("room").await;
    alice.sdk.channel_set_attr("room", "_userNotification", "0");
    expect_attr(&mut alice, "room", "_userNotification", "0", "update").await;

    assert_eq!(bob.join("room").await, ["alice", "bob"]);
    expect_attr(&mut bob, "room", "_userNotification", "0", "update").await;
    bob.leave("room").await;
    expect_no_member_events(&mut alice, "room").await;

    alice.sdk.channel_set_attr("room", "_userNotification", "1");
    expect_attr(&mut alice, "room", "_userNotification", "1", "update").await;
    carol.join("room").await;
    expect_user_joined(&mut alice, "room", "carol").await;
    carol.leave("room").await;
    expect_user_leaved(&mut alice, "room", "carol").await;
}

#[tokio::test]
async fn empty_channels_expire_after_their_ttl() {
    if beckon_tests::skip_in_cluster(
        "it counts the broker's own channel expiries (channels_expired); in cluster mode an empty \
         channel's attributes expire in Redis by their TTL (docs/cluster.md, tested in \
         cluster_channels.rs)",
    ) {
        return;
    }
    let server =
        TestServer::start_with_app(|a| a.default_channel_ttl = Duration::from_millis(300)).await;
    let mut alice = logged_in(&server, "alice").await;
    let mut admin = privileged(&server, "admin").await;

    // `_channel_ttl` of 1 s: attributes outlive the last member for that long.
    alice.join("t1").await;
    alice.sdk.channel_set_attr("t1", "_channel_ttl", "1");
    alice.sdk.channel_set_attr("t1", "color", "blue");
    expect_attr(&mut alice, "t1", "_channel_ttl", "1", "update").await;
    expect_attr(&mut alice, "t1", "color", "blue", "update").await;
    alice.leave("t1").await;
    alice.join("t1").await;
    let seen = alice.sync_channel("t1").await;
    assert_eq!(
        attr_events(&seen),
        [
            ("_channel_ttl".into(), "1".into(), "update".into()),
            ("color".into(), "blue".into(), "update".into())
        ],
        "rejoined within the TTL"
    );
    alice.leave("t1").await;
    let left = tokio::time::Instant::now();
    await_channels_expired(&server, 1).await;
    assert!(
        left.elapsed() >= Duration::from_millis(900),
        "expired after {:?}, before its 1 s TTL",
        left.elapsed()
    );
    alice.join("t1").await;
    let seen = alice.sync_channel("t1").await;
    assert!(attr_events(&seen).is_empty(), "a fresh channel: {seen:?}");
    alice.leave("t1").await;
    await_channels_expired(&server, 2).await; // the default TTL of this app: 300 ms

    // A channel created by a privileged attribute write starts its TTL at once.
    admin.sdk.channel_set_attr("t2", "color", "red");
    admin.sdk.channel_query_user_num("t2"); // the reply follows the write's
    admin
        .expect(|e| matches!(e, Event::ChannelQueryUserNumResult { .. }))
        .await;
    await_channels_expired(&server, 3).await;
    alice.join("t2").await;
    expect_no_attr_events(&mut alice, "t2").await;
}

#[tokio::test]
async fn member_counts_are_reported_when_auto_update_is_on() {
    let (_server, [mut alice, mut bob, mut carol]) = server_with(["alice", "bob", "carol"]).await;
    alice.join("c").await;
    alice.sdk.channel_set_attr("c", "_member_num", "7");
    alice.expect_error("channelSetAttr", 1004).await;
    alice.sdk.channel_set_attr("c", "_total_member_num", "7");
    alice.expect_error("channelSetAttr", 1004).await;

    alice.sdk.channel_set_attr("c", "_auto_update_num", "1");
    expect_attr(&mut alice, "c", "_auto_update_num", "1", "update").await;
    expect_attr(&mut alice, "c", "_member_num", "1", "update").await;
    bob.join("c").await;
    expect_user_joined(&mut alice, "c", "bob").await;
    for u in [&mut alice, &mut bob] {
        let ev = u
            .expect(
                |e| matches!(e, Event::ChannelAttrUpdated { name, .. } if name == "_member_num"),
            )
            .await;
        assert_eq!(
            ev,
            Event::ChannelAttrUpdated {
                channel: "c".into(),
                name: "_member_num".into(),
                value: "2".into(),
                kind: "update".into()
            },
            "{}",
            u.account
        );
    }

    // `_total_member_num` counts everyone who ever joined.
    alice
        .sdk
        .channel_set_attr("c", "_auto_update_total_num", "1");
    bob.leave("c").await;
    carol.join("c").await;
    carol
        .expect_eq(
            |e| matches!(e, Event::ChannelAttrUpdated { name, .. } if name == "_total_member_num"),
            Event::ChannelAttrUpdated {
                channel: "c".into(),
                name: "_total_member_num".into(),
                value: "3".into(),
                kind: "update".into(),
            },
        )
        .await;
    // Turning it off stops the reports.
    alice.sdk.channel_set_attr("c", "_auto_update_num", "0");
    alice
        .sdk
        .channel_set_attr("c", "_auto_update_total_num", "0");
    expect_attr(&mut carol, "c", "_auto_update_num", "0", "update").await;
    expect_attr(&mut carol, "c", "_auto_update_total_num", "0", "update").await;
    alice.sync_channel("c").await; // reports sent before the switch are behind us
    carol.leave("c").await;
    let count_update = |e: &Event| {
        matches!(e, Event::ChannelAttrUpdated { name, .. }
            if name.starts_with("_member") || name.starts_with("_total"))
    };
    alice.expect_none(1200, count_update).await;
}

#[tokio::test]
async fn sendmsg_and_setattr_limits_apply_per_channel() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = all_in_room(&server, ["alice", "bob"]).await;
    alice.sdk.channel_set_attr("room", "_sendmsg_limit", "3");
    alice.sdk.channel_set_attr("room", "_setattr_limit", "2");
    for u in [&mut alice, &mut bob] {
        expect_attr(u, "room", "_sendmsg_limit", "3", "update").await;
        expect_attr(u, "room", "_setattr_limit", "2", "update").await;
    }

    // Within one second: three messages pass, the rest fail with SENDMESSAGE_E_RATELIMIT.
    let ids: Vec<String> = (0..5)
        .map(|i| alice.sdk.message_channel_send("room", &format!("m{i}"), ""))
        .collect();
    let outcomes = send_outcomes(&mut alice, &ids).await;
    assert_eq!(outcomes, [None, None, None, Some(402), Some(402)]);
    assert!(alice.calls.saw("on_error(messageChannelSend, 402)"));
    for i in 0..3 {
        let ev = bob
            .expect(|e| matches!(e, Event::MessageChannelReceive { .. }))
            .await;
        assert!(
            matches!(&ev, Event::MessageChannelReceive { msg, .. } if *msg == format!("m{i}")),
            "{ev:?}"
        );
    }

    // Two attribute writes per second, then GENERAL_E_FAILED.
    bob.sdk.channel_set_attr("room", "a", "1");
    bob.sdk.channel_set_attr("room", "b", "2");
    bob.sdk.channel_set_attr("room", "c", "3");
    bob.expect_error("channelSetAttr", 1001).await;
    // The channel's three messages of this second are used: the marker waits for the next.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let seen = alice.sync_channel("room").await;
    assert_eq!(
        attr_events(&seen),
        [
            ("a".into(), "1".into(), "update".into()),
            ("b".into(), "2".into(), "update".into())
        ]
    );
}

// ---- messages ---------------------------------------------------------------------------------

#[tokio::test]
async fn channel_messages_reach_every_member_in_order() {
    const PER_SENDER: usize = 20;
    let server = TestServer::start().await;
    let mut members = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let mut u = logged_in(&server, name).await;
        u.join("room").await;
        members.push(u);
    }
    let mut dave = logged_in(&server, "dave").await;

    // Everyone sends at once, pipelined.
    let mut ids: Vec<Vec<String>> = Vec::new();
    for u in &members {
        ids.push(
            (0..PER_SENDER)
                .map(|i| {
                    u.sdk
                        .message_channel_send("room", &format!("{}-{i}", u.account), "")
                })
                .collect(),
        );
    }
    let own = members[0]
        .sdk
        .message_channel_send("room", "with my id", "alice-id-1");
    assert_eq!(own, "alice-id-1");
    for (u, ids) in members.iter_mut().zip(&ids) {
        let mut pending: Vec<&String> = ids.iter().collect();
        let mut received: HashMap<String, Vec<usize>> = HashMap::new();
        let total = PER_SENDER * 3 + 1;
        let mut n = 0;
        while n < total || !pending.is_empty() {
            match u
                .expect(|e| {
                    matches!(
                        e,
                        Event::MessageChannelReceive { .. }
                            | Event::MessageSendSuccess { .. }
                            | Event::MessageSendError { .. }
                    )
                })
                .await
            {
                Event::MessageChannelReceive {
                    channel,
                    account,
                    uid,
                    msg,
                } => {
                    assert_eq!((channel.as_str(), uid), ("room", 0));
                    n += 1;
                    if msg == "with my id" {
                        continue;
                    }
                    let (sender, i) = msg.rsplit_once('-').expect("sender-i");
                    assert_eq!(sender, account);
                    received
                        .entry(account)
                        .or_default()
                        .push(i.parse().expect("a number"));
                }
                Event::MessageSendSuccess { message_id } => {
                    pending.retain(|id| **id != message_id);
                }
                other => panic!("{}: {other:?}", u.account),
            }
        }
        assert_eq!(n, total, "{} received", u.account);
        for sender in ["alice", "bob", "carol"] {
            assert_eq!(
                received[sender],
                (0..PER_SENDER).collect::<Vec<_>>(),
                "{} got {sender}'s messages out of order",
                u.account
            );
        }
    }
    assert!(
        members[0]
            .calls
            .saw("on_message_channel_receive(room, bob, 0, bob-0)")
    );
    assert!(
        members[1]
            .calls
            .saw("on_message_channel_receive(room, alice, 0, with my id)")
    );

    // Not a member: SENDMESSAGE_E_OTHER.
    let id = dave.sdk.message_channel_send("room", "let me in", "");
    assert_eq!(send_outcome(&mut dave, &id).await, Some(400));
    dave.expect_error("messageChannelSend", 400).await;
    assert!(dave.calls.saw(&format!("on_message_send_error({id}, 400)")));
    let seen = members[0].sync_channel("room").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::MessageChannelReceive { .. })),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_user_may_send_60_channel_messages_per_second() {
    let server = TestServer::start().await;
    let [mut eve, mut bob] = all_in_room(&server, ["eve", "bob"]).await;
    let ids: Vec<String> = (0..70)
        .map(|i| eve.sdk.message_channel_send("room", &format!("m{i}"), ""))
        .collect();
    let mut failed = Vec::new();
    for (i, outcome) in send_outcomes(&mut eve, &ids).await.into_iter().enumerate() {
        if let Some(code) = outcome {
            assert_eq!(code, 402, "message {i}");
            failed.push(i);
        }
    }
    assert_eq!(failed, (60..70).collect::<Vec<_>>());
    for i in 0..60 {
        let ev = bob
            .expect(|e| matches!(e, Event::MessageChannelReceive { .. }))
            .await;
        assert!(
            matches!(&ev, Event::MessageChannelReceive { msg, .. } if *msg == format!("m{i}")),
            "{ev:?}"
        );
    }
    // The limit is per second.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let id = eve.sdk.message_channel_send("room", "later", "");
    assert_eq!(send_outcome(&mut eve, &id).await, None);
}

#[tokio::test]
async fn message_bodies_are_limited_to_8192_bytes() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = all_in_room(&server, ["alice", "bob"]).await;
    for body in ["x".repeat(8192), "é".repeat(4096), String::new()] {
        let id = alice.sdk.message_channel_send("room", &body, "");
        assert_eq!(send_outcome(&mut alice, &id).await, None);
        let ev = bob
            .expect(|e| matches!(e, Event::MessageChannelReceive { .. }))
            .await;
        assert!(
            matches!(&ev, Event::MessageChannelReceive { msg, .. } if *msg == body),
            "a body of {} bytes",
            body.len()
        );
    }
    for body in ["x".repeat(8193), "é".repeat(4097)] {
        let id = alice.sdk.message_channel_send("room", &body, "");
        assert_eq!(send_outcome(&mut alice, &id).await, Some(1005));
        alice.expect_error("messageChannelSend", 1005).await;
    }
    let id = alice.sdk.message_channel_send("room", "ok", "my id");
    assert_eq!(id, "my id");
    assert_eq!(
        send_outcome(&mut alice, &id).await,
        None,
        "spaces are visible"
    );
    let id = alice.sdk.message_channel_send("room", "ok", "bad\u{1}id");
    assert_eq!(send_outcome(&mut alice, &id).await, Some(1004));
    let id = alice.sdk.message_channel_send("", "ok", "");
    assert_eq!(send_outcome(&mut alice, &id).await, Some(1004));
    let seen = bob.sync_channel("room").await;
    let bodies: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::MessageChannelReceive { msg, .. } => Some(msg.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["ok"], "only the accepted message arrived");
}

#[tokio::test]
async fn send_force_needs_the_server_privilege() {
    let (server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    let mut admin = privileged(&server, "admin").await;
    alice.join("room").await;

    let id = bob.sdk.message_channel_send_force("room", "sneaky", "");
    assert_eq!(send_outcome(&mut bob, &id).await, Some(400));
    assert!(bob.calls.saw(&format!("on_message_send_error({id}, 400)")));

    let id = admin
        .sdk
        .message_channel_send_force("room", "from the server", "force-1");
    assert_eq!(id, "force-1");
    assert_eq!(send_outcome(&mut admin, &id).await, None);
    assert!(admin.calls.saw("on_message_send_success(force-1)"));
    alice
        .expect_next(Event::MessageChannelReceive {
            channel: "room".into(),
            account: "admin".into(),
            uid: 0,
            msg: "from the server".into(),
        })
        .await;
    // To a channel nobody is in: success, reaching nobody.
    let id = admin
        .sdk
        .message_channel_send_force("empty-room", "anyone?", "");
    assert_eq!(send_outcome(&mut admin, &id).await, None);
    let seen = alice.sync_channel("room").await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::MessageChannelReceive { .. })),
        "{seen:?}"
    );
    assert!(
        !admin
            .calls
            .calls()
            .iter()
            .any(|c| c.starts_with("on_message_channel_receive")),
        "the forcing session is not a member"
    );
}

#[tokio::test]
async fn a_refused_forced_message_names_message_channel_send_force() {
    let server = TestServer::start().await;
    let mut bob = logged_in(&server, "bob").await;
    let id = bob.sdk.message_channel_send_force("room", "sneaky", "");
    assert_eq!(send_outcome(&mut bob, &id).await, Some(400));
    bob.expect_error("messageChannelSendForce", 400).await;
}

// ---- special channels ---------------------------------------------------------------------------

/// The next `_system` message on `channel`, as JSON.
async fn system_event(u: &mut User, channel: &str) -> Value {
    match u
        .expect(|e| matches!(e, Event::MessageChannelReceive { channel: c, .. } if c == channel))
        .await
    {
        Event::MessageChannelReceive {
            account, uid, msg, ..
        } => {
            assert_eq!((account.as_str(), uid), ("_system", 0));
            serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{msg:?} is not JSON: {e}"))
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn special_channels_report_logins_and_channel_events_to_servers() {
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;
    for special in ["_agora_user_online", "_agora_channel_event"] {
        alice.sdk.channel_join(special);
        alice
            .expect_eq(
                |e| {
                    matches!(
                        e,
                        Event::ChannelJoinFailed { .. } | Event::ChannelJoined { .. }
                    )
                },
                Event::ChannelJoinFailed {
                    channel: special.into(),
                    ecode: 301,
                },
            )
            .await;
        alice.expect_error("channelJoin", 301).await;
        assert!(
            alice
                .calls
                .saw(&format!("on_channel_join_failed({special}, 301)"))
        );
    }
    assert!(alice.sdk.joined_channels().await.is_empty());

    let mut presence = privileged(&server, "presence-monitor").await;
    let mut channels = privileged(&server, "channel-monitor").await;
    presence.join("_agora_user_online").await;
    channels.join("_agora_channel_event").await;

    let mut bob = logged_in(&server, "bob").await;
    assert_eq!(
        system_event(&mut presence, "_agora_user_online").await,
        json!({"event": "user_online", "account": "bob"})
    );
    bob.join("room").await;
    assert_eq!(
        system_event(&mut channels, "_agora_channel_event").await,
        json!({"event": "channel_join", "channel": "room", "account": "bob"})
    );
    bob.leave("room").await;
    assert_eq!(
        system_event(&mut channels, "_agora_channel_event").await,
        json!({"event": "channel_leave", "channel": "room", "account": "bob"})
    );
    bob.join("room").await;
    assert_eq!(
        system_event(&mut channels, "_agora_channel_event").await,
        json!({"event": "channel_join", "channel": "room", "account": "bob"})
    );
    bob.logout().await;
    assert_eq!(
        system_event(&mut presence, "_agora_user_online").await,
        json!({"event": "user_offline", "account": "bob"})
    );
    assert_eq!(
        system_event(&mut channels, "_agora_channel_event").await,
        json!({"event": "channel_leave", "channel": "room", "account": "bob"})
    );
    let received = presence
        .calls
        .calls_starting_with("on_message_channel_receive(_agora_user_online, _system, 0, {");
    assert_eq!(received.len(), 2, "{received:?}");
}

// ---- bad input ----------------------------------------------------------------------------------

#[tokio::test]
async fn bad_channel_parameters_are_refused_with_their_codes() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    // Before login: GENERAL_E_NOT_LOGIN.
    alice.sdk.channel_join("room");
    alice.expect_error("channelJoin", 1003).await;
    assert!(alice.calls.saw("on_channel_join_failed(room, 1003)"));
    let id = alice.sdk.message_channel_send("room", "hi", "");
    assert_eq!(send_outcome(&mut alice, &id).await, Some(1003));
    alice.expect_error("messageChannelSend", 1003).await;
    alice.sdk.channel_set_attr("room", "a", "b");
    alice.expect_error("channelSetAttr", 1003).await;
    alice.login(&server).await;

    let longest = "é".repeat(128);
    for (name, code) in [
        (String::new(), 1004),
        ("r".repeat(129), 1005),
        ("é".repeat(129), 1005),
        ("a\u{7}b".to_owned(), 1004),
    ] {
        alice.sdk.channel_join(&name);
        alice
            .expect_next(Event::ChannelJoinFailed {
                channel: name.clone(),
                ecode: code,
            })
            .await;
        alice.expect_error("channelJoin", code).await;
        alice.sdk.channel_leave(&name);
        alice.expect_error("channelLeave", code).await;
    }
    assert_eq!(alice.join(&longest).await, ["alice"]);
    assert_eq!(alice.join("with spaces ✓").await, ["alice"]);
    assert_eq!(alice.sdk.joined_channels().await, ["with spaces ✓"]);
}
