//! Cluster mode end to end: nodes in this process sharing a real `redis-server` that the test
//! starts on a free 127.0.0.1 port (persistence off), with clients on different nodes.
//!
//! `redis-server` must be installed (`.ci/run` installs it); without it these tests fail
//! with a message that says so.

use std::time::Duration;

use beckon_sdk::Event;
use beckon_server::{ClusterConfig, ClusterUrl, Server, ServerConfig};
use beckon_tests::{Redis, TIMEOUT, TestServer, User, unused_addr};

/// Waits until `account`'s presence entry names node `node` (a claim reaches Redis just
/// after the login answer).
async fn await_claim(redis: &Redis, account: &str, node: &str) {
    let app = beckon_tests::APP_ID;
    let key = format!("beckon:presence:{{{}:{app}:{account}}}", app.len());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let entry = redis.cmd(&["GET", &key]).await.expect("redis answers");
        if entry.starts_with(&format!("{node}/")) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{account} is not claimed by node {node}: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn node(redis: &Redis, id: &str) -> ClusterConfig {
    ClusterConfig {
        node_id: id.to_owned(),
        node_ttl: Duration::from_millis(1_500),
        redis_timeout: Duration::from_millis(500),
        ..ClusterConfig::new(&redis.url()).expect("a redis URL")
    }
}

async fn start_node(redis: &Redis, id: &str) -> TestServer {
    let cluster = node(redis, id);
    TestServer::start_with(move |c| {
        c.set_cluster(Some(cluster));
        c.admin = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await
}

/// A Redis, nodes "a" and "b" on it, alice logged in on a and bob on b.
async fn alice_on_a_bob_on_b() -> (Redis, TestServer, TestServer, User, User) {
    let redis = Redis::start().await;
    let (a, b) = (start_node(&redis, "a").await, start_node(&redis, "b").await);
    let mut alice = User::new(a.url(), "alice");
    alice.login(&a).await;
    let mut bob = User::new(b.url(), "bob");
    bob.login(&b).await;
    (redis, a, b, alice, bob)
}

#[tokio::test]
async fn a_login_on_another_node_kicks_the_first_session() {
    let redis = Redis::start().await;
    let (a, b) = (start_node(&redis, "a").await, start_node(&redis, "b").await);
    let mut first = User::new(a.url(), "alice");
    first.login(&a).await;
    await_claim(&redis, "alice", "a").await;
    let mut second = User::new(b.url(), "alice");
    second.login(&b).await;
    first.expect_next(Event::Logout { ecode: 103 }).await;
    assert_eq!(first.sdk.get_status(), 0);
    assert_eq!(second.sdk.get_status(), 2);
    // And back: a login on the first node kicks the session on the second.
    await_claim(&redis, "alice", "b").await;
    let mut third = User::new(a.url(), "alice");
    third.login(&a).await;
    second.expect_next(Event::Logout { ecode: 103 }).await;
    assert_eq!(third.sdk.get_status(), 2);
}

#[tokio::test]
async fn query_user_status_sees_every_node() {
    let (_redis, _a, b, mut alice, mut bob) = alice_on_a_bob_on_b().await;
    // A claim reaches Redis just after the login answer (see docs/cluster.md).
    alice.await_status_of("bob", "1").await;
    bob.await_status_of("alice", "1").await;
    assert_eq!(alice.status_of("nobody").await, "0");
    bob.logout().await;
    alice.await_status_of("bob", "0").await;
    bob.login(&b).await;
    alice.await_status_of("bob", "1").await;
}

#[tokio::test]
async fn an_account_of_a_node_whose_registration_expired_is_offline() {
    let redis = Redis::start().await;
    let a = start_node(&redis, "a").await;
    let mut alice = User::new(a.url(), "alice");
    alice.login(&a).await;
    // A node that died: its presence entries stay, its registration is gone.
    let key = format!(
        "beckon:presence:{{{}:{}:ghost}}",
        beckon_tests::APP_ID.len(),
        beckon_tests::APP_ID
    );
    let set = redis.cmd(&["SET", &key, "dead-node/0123/7"]).await;
    assert_eq!(set.expect("redis answers"), "+OK");
    assert_eq!(alice.status_of("ghost").await, "0");
    // The same entry naming a live node's registration counts as online.
    let live = redis.cmd(&["SET", "beckon:node:{dead-node}", "0123"]).await;
    assert_eq!(live.expect("redis answers"), "+OK");
    assert_eq!(alice.status_of("ghost").await, "1");
}

#[tokio::test]
async fn what_is_not_cluster_wide_yet_fails_with_1001() {
    let (_redis, a, _b, _alice, _bob) = alice_on_a_bob_on_b().await;
    // Telephony gateway registration (channels and calls are cluster-wide).
    let mut gateway = User::new(a.url(), "gateway");
    gateway.login_as_server(&a).await;
    let (err, resp) = gateway
        .invoke(beckon_broker::GATEWAY_REGISTER, "{}", "register")
        .await;
    assert_eq!(err, "1001", "{resp}");
    let why = resp["error"].as_str().unwrap_or_default();
    assert!(why.contains("cluster mode"), "{resp}");

    // The admin API's accounts, kick, channels and channel messages.
    let admin = a.admin_url().expect("an admin listener");
    let token = a.server_token("ops");
    let app = beckon_tests::APP_ID;
    let http = reqwest::Client::new();
    let refused = [
        ("GET", format!("/v1/apps/{app}/accounts")),
        ("GET", format!("/v1/apps/{app}/accounts/alice")),
        ("POST", format!("/v1/apps/{app}/accounts/bob/kick")),
        ("GET", format!("/v1/apps/{app}/channels")),
        ("GET", format!("/v1/apps/{app}/channels/room")),
        ("POST", format!("/v1/apps/{app}/channels/room/messages")),
    ];
    for (method, path) in refused {
        let url = format!("{admin}{path}");
        let req = match method {
            "GET" => http.get(url),
            _ => http.post(url).json(&serde_json::json!({ "text": "hi" })),
        };
        let r = req.bearer_auth(&token).send().await.expect("answered");
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(status, 409, "{path}: {body}");
        assert_eq!(body["code"], 1001, "{path}: {body}");
        let why = body["message"].as_str().unwrap_or_default();
        assert!(why.contains("cluster mode"), "{path}: {body}");
    }
}

#[tokio::test]
async fn an_admin_message_reaches_its_recipient_on_any_node() {
    let (redis, a, b, mut alice, mut bob) = alice_on_a_bob_on_b().await;
    await_claim(&redis, "bob", "b").await;
    let admin = a.admin_url().expect("an admin listener");
    let token = a.server_token("ops");
    let app = beckon_tests::APP_ID;
    let http = reqwest::Client::new();
    let send = |to: &str, text: &str| {
        let url = format!("{admin}/v1/apps/{app}/accounts/{to}/messages");
        let req = http.post(url).bearer_auth(&token);
        let body = serde_json::json!({ "text": text });
        async move {
            let r = req.json(&body).send().await.expect("answered");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("JSON");
            (status, body)
        }
    };
    // On the admin's node, on the other node, and offline everywhere.
    let (status, body) = send("alice", "hi alice").await;
    assert_eq!(
        (status, &body["online"]),
        (200, &serde_json::json!(true)),
        "{body}"
    );
    alice.expect_message("ops", "hi alice").await;
    let (status, body) = send("bob", "hi bob").await;
    assert_eq!(
        (status, &body["online"]),
        (200, &serde_json::json!(true)),
        "{body}"
    );
    bob.expect_message("ops", "hi bob").await;
    let (status, body) = send("carol", "hi carol").await;
    assert_eq!(
        (status, &body["online"]),
        (200, &serde_json::json!(false)),
        "{body}"
    );
    let mut carol = User::new(b.url(), "carol");
    carol.login(&b).await;
    carol.expect_message("ops", "hi carol").await;
}

#[tokio::test]
async fn user_attributes_are_shared_by_the_nodes() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b().await;
    alice.sdk.set_attr("color", "blue");
    // Replies come in request order: this read follows the write.
    alice.sdk.get_attr("color");
    let mine = alice
        .expect(|e| matches!(e, Event::UserAttrResult { .. } | Event::Error { .. }))
        .await;
    assert!(
        matches!(&mine, Event::UserAttrResult { value, .. } if value == "blue"),
        "{mine:?}"
    );
    bob.sdk.get_user_attr("alice", "color");
    let got = bob
        .expect(|e| matches!(e, Event::UserAttrResult { .. } | Event::Error { .. }))
        .await;
    assert!(
        matches!(&got, Event::UserAttrResult { value, .. } if value == "blue"),
        "{got:?}"
    );
}

/// Waits for the outcome of message `id`; whether it succeeded, else its code.
async fn send_outcome(u: &mut User, id: &str) -> Result<(), i32> {
    let ev = u
        .expect(|e| {
            matches!(e, Event::MessageSendSuccess { message_id }
                | Event::MessageSendError { message_id, .. } if message_id == id)
        })
        .await;
    match ev {
        Event::MessageSendSuccess { .. } => Ok(()),
        Event::MessageSendError { ecode, .. } => Err(ecode),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn p2p_reaches_the_same_node_and_offline_accounts_wherever_they_log_in() {
    let redis = Redis::start().await;
    let (a, b) = (start_node(&redis, "a").await, start_node(&redis, "b").await);
    let mut alice = User::new(a.url(), "alice");
    alice.login(&a).await;
    let mut dave = User::new(a.url(), "dave");
    dave.login(&a).await;
    let id = alice.sdk.message_instant_send("dave", 0, "hi dave", "");
    assert_eq!(send_outcome(&mut alice, &id).await, Ok(()));
    dave.expect_message("alice", "hi dave").await;

    // carol is offline: stored in Redis, delivered when she logs in on the other node.
    let id = alice.sdk.message_instant_send("carol", 0, "hi carol", "");
    assert_eq!(send_outcome(&mut alice, &id).await, Ok(()));
    let mut carol = User::new(b.url(), "carol");
    carol.login(&b).await;
    carol.expect_message("alice", "hi carol").await;
}

/// Waits until every message of `sent` succeeded (any failure fails the test) and `n`
/// instant messages arrived; those, as (sender, text).
async fn sent_and_received(u: &mut User, sent: &[String], n: usize) -> Vec<(String, String)> {
    let mut got = Vec::with_capacity(n);
    let mut succeeded = 0;
    while got.len() < n || succeeded < sent.len() {
        let ev = u
            .expect(|e| {
                matches!(
                    e,
                    Event::MessageInstantReceive { .. }
                        | Event::MessageSendSuccess { .. }
                        | Event::MessageSendError { .. }
                )
            })
            .await;
        match ev {
            Event::MessageInstantReceive { account, msg, .. } => got.push((account, msg)),
            Event::MessageSendSuccess { message_id } if sent.contains(&message_id) => {
                succeeded += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn p2p_crosses_nodes_both_ways_in_order() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b().await;
    // Claims reach Redis just after the login answers (see docs/cluster.md).
    alice.await_status_of("bob", "1").await;
    bob.await_status_of("alice", "1").await;
    let (mut to_bob, mut to_alice) = (Vec::new(), Vec::new());
    for i in 0..10 {
        to_bob.push(
            alice
                .sdk
                .message_instant_send("bob", 0, &format!("a{i}"), ""),
        );
        to_alice.push(
            bob.sdk
                .message_instant_send("alice", 0, &format!("b{i}"), ""),
        );
    }
    let expected = |from: &str, p: &str| {
        (0..10)
            .map(|i| (from.to_owned(), format!("{p}{i}")))
            .collect::<Vec<_>>()
    };
    let got = sent_and_received(&mut alice, &to_bob, 10).await;
    assert_eq!(got, expected("bob", "b"));
    let got = sent_and_received(&mut bob, &to_alice, 10).await;
    assert_eq!(got, expected("alice", "a"));
    bob.expect_no_instant_message().await;
    alice.expect_no_instant_message().await;
}

#[tokio::test]
async fn a_burst_of_200_crosses_nodes_exactly_once_in_order() {
    let (_redis, _a, _b, mut alice, mut bob) = alice_on_a_bob_on_b().await;
    alice.await_status_of("bob", "1").await;
    let ids: Vec<_> = (0..200)
        .map(|i| {
            alice
                .sdk
                .message_instant_send("bob", 0, &format!("m{i}"), "")
        })
        .collect();
    assert!(sent_and_received(&mut alice, &ids, 0).await.is_empty());
    let got = sent_and_received(&mut bob, &[], 200).await;
    let expected: Vec<_> = (0..200)
        .map(|i| ("alice".to_owned(), format!("m{i}")))
        .collect();
    assert_eq!(got, expected);
    bob.expect_no_instant_message().await;
}

#[tokio::test]
async fn a_node_refuses_a_cluster_of_another_protocol_version() {
    let redis = Redis::start().await;
    let set = redis.cmd(&["SET", "beckon:version", "999"]).await;
    assert_eq!(set.expect("redis answers"), "+OK");
    let mut config = ServerConfig::development();
    config.listen = vec![beckon_tests::any_port(beckon_tests::scheme())];
    config.set_cluster(Some(node(&redis, "a")));
    let e = Server::bind(config)
        .await
        .expect_err("the node must refuse");
    let why = e.to_string();
    assert!(
        why.contains("protocol version 999") && why.contains("refusing to join"),
        "{why}"
    );
}

#[tokio::test]
async fn a_node_refuses_an_id_a_live_node_has() {
    let redis = Redis::start().await;
    let _a = start_node(&redis, "a").await;
    let mut config = ServerConfig::development();
    config.listen = vec![beckon_tests::any_port(beckon_tests::scheme())];
    config.set_cluster(Some(node(&redis, "a")));
    let why = Server::bind(config)
        .await
        .expect_err("the id is taken")
        .to_string();
    assert!(why.contains("in use by a live node"), "{why}");
}

#[tokio::test]
async fn a_node_without_its_redis_does_not_start() {
    let mut config = ServerConfig::development();
    config.listen = vec![beckon_tests::any_port(beckon_tests::scheme())];
    let url = format!("redis://{}", unused_addr());
    let mut cluster = ClusterConfig::new(&url).expect("a URL");
    cluster.redis_timeout = Duration::from_millis(200);
    config.set_cluster(Some(cluster));
    let why = Server::bind(config)
        .await
        .expect_err("no Redis")
        .to_string();
    assert!(why.contains(&url) && why.contains("Redis"), "{why}");
}

#[tokio::test]
async fn probes_report_redis_and_the_node_recovers_when_it_returns() {
    let mut redis = Redis::start().await;
    let a = start_node(&redis, "a").await;
    let admin = a.admin_url().expect("an admin listener");
    let http = reqwest::Client::new();
    let probe = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{admin}{path}"));
        async move {
            let r = http.get(url).send().await.expect("the probe answers");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("JSON");
            (status, body)
        }
    };
    let (status, body) = probe("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cluster"]["redis_reachable"], true, "{body}");
    assert_eq!(body["cluster"]["node_id"], "a", "{body}");

    redis.kill();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, body) = probe("/readyz").await;
        if status == 503 {
            assert_eq!(body["cluster"]["redis_reachable"], false, "{body}");
            assert!(body["cluster"]["error"].is_string(), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = probe("/healthz").await;
    assert_eq!(status, 200, "alive, though degraded: {body}");
    assert_eq!(body["status"], "degraded", "{body}");

    // Redis returns on the same address: the node is ready again by itself.
    let _redis = Redis::start_on(redis.addr()).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (status, body) = probe("/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = probe("/healthz").await;
    assert_eq!(body["status"], "alive", "{body}");
}

#[test]
fn cluster_urls_parse() {
    assert_eq!(
        beckon_server::parse_cluster_url("redis://127.0.0.1:6379"),
        Ok(ClusterUrl::Single("redis://127.0.0.1:6379".into()))
    );
    assert_eq!(
        beckon_server::parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"),
        Ok(ClusterUrl::Cluster(vec![
            "redis://10.0.0.1:7000".into(),
            "redis://10.0.0.2:7000".into()
        ]))
    );
    for bad in ["http://x", "redis+cluster://", "127.0.0.1:6379"] {
        assert!(beckon_server::parse_cluster_url(bad).is_err(), "{bad}");
    }
}
