//! Channels in cluster mode end to end: two nodes in this process sharing a real
//! `redis-server` that the test starts on a free 127.0.0.1 port (persistence off), with
//! members on both nodes.
//!
//! `redis-server` must be installed (`.ci/run` installs it); without it these tests fail
//! with a message that says so.

use std::time::Duration;

use beckon_sdk::Event;
use beckon_server::ClusterConfig;
use beckon_tests::{Redis, TIMEOUT, TestServer, User};

async fn start_node(redis: &Redis, id: &str) -> TestServer {
    let cluster = ClusterConfig {
        node_id: id.to_owned(),
        node_ttl: Duration::from_millis(1_500),
        redis_timeout: Duration::from_millis(500),
        ..ClusterConfig::new(&redis.url()).expect("a redis URL")
    };
    TestServer::start_with(move |c| c.set_cluster(Some(cluster))).await
}

/// A Redis, nodes "a" and "b" on it, alice logged in on a, bob and carol on b.
async fn three_on_two_nodes() -> (Redis, TestServer, TestServer, User, User, User) {
    let redis = Redis::start().await;
    let (a, b) = (start_node(&redis, "a").await, start_node(&redis, "b").await);
    let mut alice = User::new(a.url(), "alice");
    alice.login(&a).await;
    let mut bob = User::new(b.url(), "bob");
    bob.login(&b).await;
    let mut carol = User::new(b.url(), "carol");
    carol.login(&b).await;
    (redis, a, b, alice, bob, carol)
}

fn joined(channel: &str, account: &str) -> Event {
    Event::ChannelUserJoined {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
    }
}

fn left(channel: &str, account: &str) -> Event {
    Event::ChannelUserLeaved {
        channel: channel.into(),
        account: account.into(),
        uid: 0,
    }
}

fn is_member_event(e: &Event) -> bool {
    matches!(
        e,
        Event::ChannelUserJoined { .. } | Event::ChannelUserLeaved { .. }
    )
}

#[tokio::test]
async fn members_join_events_and_counts_span_the_nodes() {
    let (_redis, a, _b, mut alice, mut bob, mut carol) = three_on_two_nodes().await;
    assert_eq!(alice.join("room").await, ["alice"]);
    assert_eq!(bob.join("room").await, ["alice", "bob"]);
    alice
        .expect_eq(is_member_event, joined("room", "bob"))
        .await;
    assert_eq!(carol.join("room").await, ["alice", "bob", "carol"]);
    alice
        .expect_eq(is_member_event, joined("room", "carol"))
        .await;
    bob.expect_eq(is_member_event, joined("room", "carol"))
        .await;

    // Counts and lists from a node with one member, asked by a non-member.
    let mut dave = User::new(a.url(), "dave");
    dave.login(&a).await;
    dave.sdk.channel_query_user_num("room");
    let num = dave
        .expect(|e| matches!(e, Event::ChannelQueryUserNumResult { .. }))
        .await;
    assert_eq!(
        num,
        Event::ChannelQueryUserNumResult {
            channel: "room".into(),
            ecode: 0,
            num: 3
        }
    );
    let list = dave
        .signal_ok("channel_query_userlist", r#"{"name":"room"}"#)
        .await;
    assert_eq!(
        list,
        serde_json::json!({"num": 3, "list": [["alice", 0], ["bob", 0], ["carol", 0]]})
    );
    let is_in = dave
        .signal_ok(
            "channel_query_user_isin",
            r#"{"name":"room","account":"bob"}"#,
        )
        .await;
    assert_eq!(is_in, serde_json::json!({"isin": 1}));
}

#[tokio::test]
async fn a_channel_message_reaches_members_on_both_nodes_once_in_order() {
    let (_redis, _a, _b, mut alice, mut bob, mut carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    carol.join("room").await;
    const N: usize = 30;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(alice.sdk.message_channel_send("room", &format!("a{i}"), ""));
        ids.push(bob.sdk.message_channel_send("room", &format!("b{i}"), ""));
    }
    // alice and bob each sent N; every send succeeds.
    for (u, sends) in [(&mut alice, N), (&mut bob, N), (&mut carol, 0)] {
        let mut got: Vec<(String, String)> = Vec::new();
        let mut succeeded = 0;
        while got.len() < 2 * N || succeeded < sends {
            let ev = u
                .expect(|e| {
                    matches!(
                        e,
                        Event::MessageChannelReceive { .. }
                            | Event::MessageSendSuccess { .. }
                            | Event::MessageSendError { .. }
                    )
                })
                .await;
            match ev {
                Event::MessageChannelReceive { account, msg, .. } => got.push((account, msg)),
                Event::MessageSendSuccess { message_id } => {
                    assert!(ids.contains(&message_id));
                    succeeded += 1;
                }
                other => panic!("{}: a send failed: {other:?}", u.account),
            }
        }
        for (sender, p) in [("alice", "a"), ("bob", "b")] {
            let texts: Vec<_> = (got.iter().filter(|g| g.0 == sender))
                .map(|g| g.1.clone())
                .collect();
            let expected: Vec<_> = (0..N).map(|i| format!("{p}{i}")).collect();
            assert_eq!(texts, expected, "{}: {sender}'s messages", u.account);
        }
        // Nothing more: no message twice.
        let more = u.sync_channel("room").await;
        let extra: Vec<_> = (more.iter())
            .filter(|e| {
                matches!(e, Event::MessageChannelReceive { msg, .. } if !msg.starts_with("sync-"))
            })
            .collect();
        assert!(extra.is_empty(), "{}: {extra:?}", u.account);
    }
}

#[tokio::test]
async fn leave_and_logout_are_seen_on_the_other_node() {
    let (_redis, _a, _b, mut alice, mut bob, mut carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    carol.join("room").await;
    alice
        .expect_eq(is_member_event, joined("room", "bob"))
        .await;
    alice
        .expect_eq(is_member_event, joined("room", "carol"))
        .await;
    bob.expect_eq(is_member_event, joined("room", "carol"))
        .await;
    bob.leave("room").await;
    alice.expect_eq(is_member_event, left("room", "bob")).await;
    carol.expect_eq(is_member_event, left("room", "bob")).await;
    alice.logout().await;
    carol
        .expect_eq(is_member_event, left("room", "alice"))
        .await;
    let num = carol
        .signal_ok("channel_query_num", r#"{"name":"room"}"#)
        .await;
    assert_eq!(num, serde_json::json!({"num": 1}));
}

#[tokio::test]
async fn channel_attributes_are_shared_by_the_nodes() {
    let (_redis, _a, _b, mut alice, mut bob, mut carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    alice.sdk.channel_set_attr("room", "topic", "rust");
    let want = Event::ChannelAttrUpdated {
        channel: "room".into(),
        name: "topic".into(),
        value: "rust".into(),
        kind: "update".into(),
    };
    let is_attr = |e: &Event| matches!(e, Event::ChannelAttrUpdated { .. });
    bob.expect_eq(is_attr, want.clone()).await;
    alice.expect_eq(is_attr, want.clone()).await;
    // A new member on the other node gets the attributes with its join.
    carol.join("room").await;
    carol.expect_eq(is_attr, want).await;
    // Bad input: the spec's codes, nothing changes.
    let (err, _) = carol
        .signal(
            "channel_set_attr",
            r#"{"channel":"room","name":"_member_num","value":"3"}"#,
        )
        .await;
    assert_eq!(err, "1004");
    let long = "x".repeat(129);
    let req = serde_json::json!({"channel": "room", "name": long, "value": "v"}).to_string();
    let (err, _) = carol.signal("channel_set_attr", &req).await;
    assert_eq!(err, "1005");
    let (err, _) = carol
        .signal(
            "channel_set_attr",
            r#"{"channel":"elsewhere","name":"n","value":"v"}"#,
        )
        .await;
    assert_eq!(err, "1001", "only members may write");
    carol
        .signal_ok("channel_del_attr", r#"{"channel":"room","name":"topic"}"#)
        .await;
    alice
        .expect_eq(
            is_attr,
            Event::ChannelAttrUpdated {
                channel: "room".into(),
                name: "topic".into(),
                value: String::new(),
                kind: "del".into(),
            },
        )
        .await;
}

#[tokio::test]
async fn bad_channel_requests_get_the_spec_codes() {
    let (_redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    for (channel, ecode) in [
        ("", 1004),
        (&*"x".repeat(129), 1005),
        ("_agora_user_online", 301),
    ] {
        alice.sdk.channel_join(channel);
        let ev = alice
            .expect(|e| matches!(e, Event::ChannelJoinFailed { .. }))
            .await;
        assert_eq!(
            ev,
            Event::ChannelJoinFailed {
                channel: channel.into(),
                ecode
            }
        );
    }
    // Not a member (bob is on the other node): 400; too large: 1005.
    let id = bob.sdk.message_channel_send("room", "hi", "");
    let ev = bob
        .expect(|e| matches!(e, Event::MessageSendError { message_id, .. } if *message_id == id))
        .await;
    assert_eq!(
        ev,
        Event::MessageSendError {
            message_id: id,
            ecode: 400
        }
    );
    let id = alice
        .sdk
        .message_channel_send("room", &"x".repeat(8193), "");
    let ev = alice
        .expect(|e| matches!(e, Event::MessageSendError { message_id, .. } if *message_id == id))
        .await;
    assert_eq!(
        ev,
        Event::MessageSendError {
            message_id: id,
            ecode: 1005
        }
    );
    bob.sdk.channel_leave("room");
    let ev = bob
        .expect(|e| matches!(e, Event::Error { name, .. } if name == "channelLeave"))
        .await;
    assert!(matches!(ev, Event::Error { ecode: 600, .. }), "{ev:?}");
}

#[tokio::test]
async fn channels_fail_with_1001_while_redis_is_down() {
    let (mut redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    redis.kill();
    bob.sdk.channel_join("room");
    let ev = bob
        .expect(|e| {
            matches!(
                e,
                Event::ChannelJoined { .. } | Event::ChannelJoinFailed { .. }
            )
        })
        .await;
    assert_eq!(
        ev,
        Event::ChannelJoinFailed {
            channel: "room".into(),
            ecode: 1001
        }
    );
    let id = alice.sdk.message_channel_send("room", "hi", "");
    let ev = alice
        .expect(|e| matches!(e, Event::MessageSendError { message_id, .. } | Event::MessageSendSuccess { message_id } if *message_id == id))
        .await;
    assert_eq!(
        ev,
        Event::MessageSendError {
            message_id: id,
            ecode: 1001
        }
    );
    let (err, resp) = alice
        .signal("channel_query_num", r#"{"name":"room"}"#)
        .await;
    assert_eq!(err, "1001");
    assert!(
        resp["error"].as_str().is_some_and(|e| e.contains("Redis")),
        "{resp}"
    );
    alice.sdk.channel_leave("room");
    alice.expect_error("channelLeave", 1001).await;
}

#[tokio::test]
async fn a_dead_nodes_members_are_taken_out_and_the_others_hear_them_leave() {
    let (redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    alice
        .expect_eq(is_member_event, joined("room", "bob"))
        .await;
    // A member of a node that died (no registration), and one of a live node.
    let app = beckon_tests::APP_ID;
    let tag = format!("{{{}:{app}:room}}", app.len());
    let sessions = format!("beckon:chan:{tag}:sessions");
    let members = format!("beckon:chan:{tag}:members");
    let set = [
        "HSET",
        &sessions,
        "ghost",
        "dead-node/0123/7",
        "keeper",
        "live-node/4567/8",
    ];
    assert_eq!(redis.cmd(&set).await.expect("redis answers"), ":2");
    let add = ["ZADD", &members, "100", "ghost", "101", "keeper"];
    assert_eq!(redis.cmd(&add).await.expect("redis answers"), ":2");
    let live = redis
        .cmd(&["SET", "beckon:node:{live-node}", "4567"])
        .await
        .expect("redis answers");
    assert_eq!(live, "+OK");
    alice
        .expect_eq(is_member_event, left("room", "ghost"))
        .await;
    bob.expect_eq(is_member_event, left("room", "ghost")).await;
    let list = alice
        .signal_ok("channel_query_userlist", r#"{"name":"room"}"#)
        .await;
    assert_eq!(
        list,
        serde_json::json!({"num": 3, "list": [["alice", 0], ["bob", 0], ["keeper", 0]]})
    );
}

#[tokio::test]
async fn channels_work_again_after_the_subscriptions_are_cut() {
    let (redis, _a, b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    alice
        .expect_eq(is_member_event, joined("room", "bob"))
        .await;
    let killed = redis
        .cmd(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .expect("redis answers");
    assert!(killed.starts_with(':'), "{killed}");
    // Each node subscribes again, to its channels too: a message gets through again.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut i = 0;
    loop {
        alice
            .sdk
            .message_channel_send("room", &format!("probe-{i}"), "");
        i += 1;
        let got = tokio::time::timeout(Duration::from_millis(200), async {
            bob.expect(|e| matches!(e, Event::MessageChannelReceive { .. }))
                .await
        })
        .await;
        if got.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message got through"
        );
    }
    // And a join on the other node is answered and heard.
    let mut dave = User::new(b.url(), "dave");
    dave.login(&b).await;
    assert!(dave.join("room").await.contains(&"dave".to_owned()));
    alice
        .expect_eq(is_member_event, joined("room", "dave"))
        .await;
}

#[tokio::test]
async fn the_special_channels_see_logins_joins_and_leaves_on_every_node() {
    let redis = Redis::start().await;
    let (a, b) = (start_node(&redis, "a").await, start_node(&redis, "b").await);
    let mut presence = User::new(a.url(), "presence-watch");
    presence.login_as_server(&a).await;
    presence.join(beckon_broker::USER_ONLINE_CHANNEL).await;
    let mut events = User::new(a.url(), "channel-watch");
    events.login_as_server(&a).await;
    events.join(beckon_broker::CHANNEL_EVENT_CHANNEL).await;
    // carol, on the other node, logs in, joins and leaves a channel, and logs out.
    let mut carol = User::new(b.url(), "carol");
    carol.login(&b).await;
    carol.join("room").await;
    carol.leave("room").await;
    carol.logout().await;
    // carol's events (the watchers' own logins are among them too).
    let system = |e: &Event, channel: &str| {
        matches!(e, Event::MessageChannelReceive { channel: c, account, msg, .. }
            if c == channel && account == "_system" && msg.contains("carol"))
    };
    let body = |e: Event| -> serde_json::Value {
        match e {
            Event::MessageChannelReceive { msg, .. } => serde_json::from_str(&msg).expect("JSON"),
            other => panic!("{other:?}"),
        }
    };
    let online = beckon_broker::USER_ONLINE_CHANNEL;
    for want in ["user_online", "user_offline"] {
        let ev = body(presence.expect(|e| system(e, online)).await);
        assert_eq!(ev, serde_json::json!({"event": want, "account": "carol"}));
    }
    let channel_event = beckon_broker::CHANNEL_EVENT_CHANNEL;
    for want in ["channel_join", "channel_leave"] {
        let ev = body(events.expect(|e| system(e, channel_event)).await);
        assert_eq!(
            ev,
            serde_json::json!({"event": want, "channel": "room", "account": "carol"})
        );
    }
}

#[tokio::test]
async fn an_emptied_channels_attributes_live_out_its_ttl_in_redis() {
    let (redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    alice
        .signal_ok(
            "channel_set_attr",
            r#"{"channel":"room","name":"_channel_ttl","value":"60"}"#,
        )
        .await;
    let app = beckon_tests::APP_ID;
    let attrs = format!("beckon:chan:{{{}:{app}:room}}:attrs", app.len());
    assert_eq!(
        redis.cmd(&["PTTL", &attrs]).await.expect("redis answers"),
        ":-1",
        "kept while it has members"
    );
    alice.leave("room").await;
    let ttl: i64 = (redis.cmd(&["PTTL", &attrs]).await.expect("redis answers"))
        .trim_start_matches(':')
        .parse()
        .expect("a number");
    assert!((1..=60_000).contains(&ttl), "{ttl}");
    // A member on the other node: kept again, and handed the attribute.
    bob.join("room").await;
    assert_eq!(
        redis.cmd(&["PTTL", &attrs]).await.expect("redis answers"),
        ":-1"
    );
    let ev = bob
        .expect(|e| matches!(e, Event::ChannelAttrUpdated { .. }))
        .await;
    assert!(
        matches!(&ev, Event::ChannelAttrUpdated { name, value, .. } if name == "_channel_ttl" && value == "60"),
        "{ev:?}"
    );
}

#[tokio::test]
async fn auto_updates_report_the_cluster_wide_count_on_every_node() {
    let (_redis, _a, _b, mut alice, mut bob, mut carol) = three_on_two_nodes().await;
    alice.join("room").await;
    alice
        .signal_ok(
            "channel_set_attr",
            r#"{"channel":"room","name":"_auto_update_num","value":"1"}"#,
        )
        .await;
    bob.join("room").await;
    carol.join("room").await;
    let member_num = |want: &'static str| {
        move |e: &Event| {
            matches!(e, Event::ChannelAttrUpdated { name, value, .. }
                if name == "_member_num" && value == want)
        }
    };
    // Three members, two of them on node b: both nodes report the cluster's count.
    alice.expect(member_num("3")).await;
    bob.expect(member_num("3")).await;
}

#[tokio::test]
async fn a_member_list_larger_than_one_answer_is_refused_with_1005() {
    let (redis, _a, _b, mut alice, _bob, _carol) = three_on_two_nodes().await;
    alice.join("crowd").await;
    // 20,000 members of 128 characters (2.6 MB of names) written straight into Redis.
    let app = beckon_tests::APP_ID;
    let members = format!("beckon:chan:{{{}:{app}:crowd}}:members", app.len());
    let names: Vec<String> = (0..20_000).map(|i| format!("{i:0>128}")).collect();
    let mut zadd = vec!["ZADD".to_owned(), members];
    for (i, n) in names.iter().enumerate() {
        zadd.push((i + 10).to_string());
        zadd.push(n.clone());
    }
    let args: Vec<&str> = zadd.iter().map(String::as_str).collect();
    assert_eq!(redis.cmd(&args).await.expect("redis answers"), ":20000");
    let (err, resp) = alice
        .signal("channel_query_userlist_all", r#"{"name":"crowd"}"#)
        .await;
    assert_eq!(err, "1005", "{resp}");
    assert!(
        resp["error"].as_str().is_some_and(|e| e.contains("num")),
        "{resp}"
    );
    // Fewer fit.
    let list = alice
        .signal_ok("channel_query_userlist_all", r#"{"name":"crowd","num":3}"#)
        .await;
    assert_eq!(list["num"], 20_001, "{list}");
    assert_eq!(list["list"].as_array().map(Vec::len), Some(3), "{list}");
}

/// Sends a channel message and waits for its outcome: `Ok`, or the error code.
async fn channel_send_outcome(u: &mut User, channel: &str, msg: &str) -> Result<(), i32> {
    let id = u.sdk.message_channel_send(channel, msg, "");
    let ev = u
        .expect(|e| {
            matches!(e, Event::MessageSendSuccess { message_id }
                | Event::MessageSendError { message_id, .. } if *message_id == id)
        })
        .await;
    match ev {
        Event::MessageSendSuccess { .. } => Ok(()),
        Event::MessageSendError { ecode, .. } => Err(ecode),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_channels_message_rate_holds_over_the_whole_cluster() {
    let (_redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    alice
        .signal_ok(
            "channel_set_attr",
            r#"{"channel":"room","name":"_sendmsg_limit","value":"5"}"#,
        )
        .await;
    // alice (node a) uses up the second's 5 messages; bob (node b) is refused with 402 within
    // that second, though his node has sent none.
    let start = std::time::Instant::now();
    for i in 0..5 {
        let sent = channel_send_outcome(&mut alice, "room", &format!("m{i}")).await;
        if sent.is_err() {
            assert!(start.elapsed() > Duration::from_millis(900), "{sent:?}");
            return; // A slow machine: the second ran out before the test could use it.
        }
    }
    let bobs = channel_send_outcome(&mut bob, "room", "one more").await;
    if start.elapsed() < Duration::from_millis(900) {
        assert_eq!(bobs, Err(402));
    }
    // The next second allows messages again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        channel_send_outcome(&mut bob, "room", "later").await,
        Ok(())
    );
}

#[tokio::test]
async fn a_channels_attribute_rate_holds_over_the_whole_cluster() {
    let (_redis, _a, _b, mut alice, mut bob, _carol) = three_on_two_nodes().await;
    alice.join("room").await;
    bob.join("room").await;
    alice
        .signal_ok(
            "channel_set_attr",
            r#"{"channel":"room","name":"_setattr_limit","value":"3"}"#,
        )
        .await;
    let set = |name: &str| format!(r#"{{"channel":"room","name":"{name}","value":"v"}}"#);
    // alice (node a) uses up the second's 3 updates; bob (node b) is refused within it.
    let start = std::time::Instant::now();
    for name in ["a1", "a2", "a3"] {
        let (err, resp) = alice.signal("channel_set_attr", &set(name)).await;
        if !err.is_empty() {
            assert!(start.elapsed() > Duration::from_millis(900), "{resp}");
            return; // A slow machine: the second ran out before the test could use it.
        }
    }
    let (err, resp) = bob.signal("channel_set_attr", &set("b1")).await;
    if start.elapsed() < Duration::from_millis(900) {
        assert_eq!(err, "1001", "{resp}");
        let why = resp["error"].as_str().unwrap_or_default();
        assert!(why.contains("attribute updates per second"), "{resp}");
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    bob.signal_ok("channel_set_attr", &set("b1")).await;
}
