//! The operator listener end to end: a scripted scenario and the exact counters a scrape shows
//! (parsed with a Prometheus text parser), every admin endpoint with every kind of bad token,
//! bad JSON and paging, the OpenAPI document against the routes, and a reload that rotates a
//! certificate while sessions stay connected.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use beckon_sdk::Event;
use beckon_tests::{
    APP_ID, CERT, OTHER_APP_ID, OTHER_CERT, TIMEOUT, TestServer, User, mint_token, mint_token_with,
    scheme, unix_now,
};
use beckon_token::Privileges;

/// A sample's labels, as the tests name them.
type Labels<'a> = Vec<(&'a str, &'a str)>;

async fn server() -> TestServer {
    TestServer::start_with(|c| c.admin = Some("127.0.0.1:0".parse().unwrap())).await
}

fn admin_token() -> String {
    mint_token_with(APP_ID, CERT, "ops", unix_now() + 600, Privileges::SERVER)
}

struct Admin {
    http: Client,
    base: String,
}

impl Admin {
    fn of(server: &TestServer) -> Self {
        Self {
            http: Client::new(),
            base: server
                .admin_url()
                .expect("the admin listener is configured"),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.expect("the admin listener answers");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&admin_token()), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let body = body.to_string();
        self.call(Method::POST, path, Some(&admin_token()), Some(&body))
            .await
    }

    async fn scrape(&self) -> prometheus_parse::Scrape {
        let resp = (self.http.get(format!("{}/metrics", self.base)).send())
            .await
            .expect("a scrape");
        assert_eq!(resp.status(), StatusCode::OK);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = resp.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).expect("the exposition parses")
    }
}

/// The value of the sample `name` whose labels include `labels`; 0 when there is none (a
/// counter that never moved may be absent). Panics when several samples match.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<_> = (scrape.samples.iter())
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    match matching.first().map(|s| &s.value) {
        None => 0.0,
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v,
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            buckets.last().map_or(0.0, |b| b.count)
        }
        Some(other) => panic!("{name}: {other:?}"),
    }
}

/// Polls the scrape until `done`, for gauges that follow closing sockets.
async fn scrape_until(
    admin: &Admin,
    what: &str,
    done: impl Fn(&prometheus_parse::Scrape) -> bool,
) -> prometheus_parse::Scrape {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let scrape = admin.scrape().await;
        if done(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            scrape.samples
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_scripted_scenario_shows_exact_counters() {
    if beckon_tests::skip_in_cluster(
        "it reads exact counters from one server's /metrics; in cluster mode each node counts \
         only its own clients",
    ) {
        return;
    }
    let server = server().await;
    let admin = Admin::of(&server);
    let mut alice = User::new(server.url(), "alice");
    let mut bob = User::new(server.url(), "bob");
    alice.login(&server).await;
    bob.login(&server).await;

    // A login with a token signed by another certificate: LOGIN_E_TOKENWRONG.
    let mut eve = User::new(server.url(), "eve");
    let bad = mint_token(APP_ID, OTHER_CERT, "eve", unix_now() + 60);
    eve.sdk.login(APP_ID, "eve", &bad, 0, "");
    eve.expect(|e| matches!(e, Event::LoginFailed { .. })).await;

    for i in 0..2 {
        alice
            .sdk
            .message_instant_send("bob", 0, &format!("hi {i}"), "");
        bob.expect_message("alice", &format!("hi {i}")).await;
    }
    bob.join("room").await;
    alice.join("room").await;
    alice.sync_channel("room").await; // One channel message, to both members.

    alice.sdk.channel_invite_user("call", "bob", 0);
    bob.expect(|e| matches!(e, Event::InviteReceived { .. }))
        .await;
    bob.sdk.channel_invite_accept("call", "alice", 0, "");
    alice
        .expect(|e| matches!(e, Event::InviteAcceptedByPeer { .. }))
        .await;
    alice.sdk.channel_invite_end("call", "bob", 0);
    bob.expect(|e| matches!(e, Event::InviteEndByPeer { .. }))
        .await;

    bob.logout().await;
    alice.sdk.message_instant_send("bob", 0, "later", "");
    alice
        .expect(|e| matches!(e, Event::MessageSendSuccess { .. }))
        .await;

    let transport = scheme().as_str();
    let s = scrape_until(&admin, "bob's and eve's connections closing", |s| {
        value(s, "beckon_connections", &[("transport", transport)]) == 1.0
    })
    .await;
    let app = [("app", APP_ID)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut l = app.to_vec();
        l.extend_from_slice(extra);
        l
    };
    let expected: &[(&str, Labels<'_>, f64)] = &[
        ("beckon_logins_total", with(&[("code", "0")]), 2.0),
        ("beckon_logins_total", with(&[("code", "206")]), 1.0),
        (
            "beckon_requests_total",
            with(&[("kind", "messageInstantSend"), ("code", "0")]),
            3.0,
        ),
        (
            "beckon_requests_total",
            with(&[("kind", "channelJoin"), ("code", "0")]),
            2.0,
        ),
        (
            "beckon_requests_total",
            with(&[("kind", "messageChannelSend"), ("code", "0")]),
            1.0,
        ),
        (
            "beckon_requests_total",
            with(&[("kind", "channelInviteUser"), ("code", "0")]),
            1.0,
        ),
        (
            "beckon_requests_total",
            with(&[("kind", "logout"), ("code", "0")]),
            1.0,
        ),
        (
            "beckon_p2p_messages_total",
            vec![("outcome", "delivered")],
            2.0,
        ),
        (
            "beckon_p2p_messages_total",
            vec![("outcome", "stored")],
            1.0,
        ),
        ("beckon_channel_deliveries_total", vec![], 2.0),
        ("beckon_calls_total", vec![("outcome", "accepted")], 1.0),
        ("beckon_calls_total", vec![("outcome", "ended")], 1.0),
        ("beckon_calls_total", vec![("outcome", "refused")], 0.0),
        ("beckon_calls_total", vec![("outcome", "failed")], 0.0),
        ("beckon_calls_in_progress", vec![], 0.0),
        ("beckon_sessions", app.to_vec(), 1.0),
        ("beckon_sessions_in_grace", app.to_vec(), 0.0),
        // bob left when he logged out; the channel waits out its TTL with alice in it.
        ("beckon_channels", app.to_vec(), 1.0),
        ("beckon_channel_members", app.to_vec(), 1.0),
        (
            "beckon_connections_opened_total",
            vec![("transport", transport)],
            3.0,
        ),
        ("beckon_kicks_total", vec![("by", "login")], 0.0),
        (
            "beckon_disconnects_total",
            vec![("reason", "slow_consumer")],
            0.0,
        ),
        ("beckon_store_errors_total", vec![], 0.0),
    ];
    for (name, labels, want) in expected {
        assert_eq!(value(&s, name, labels), *want, "{name} {labels:?}");
    }
    // Every p2p message is written ahead and deleted once acknowledged, in transactions that
    // merge whatever is waiting: at least one commit, at most one per write.
    let commits = value(
        &s,
        "beckon_store_operation_duration_seconds",
        &[("op", "commit")],
    );
    assert!((1.0..=6.0).contains(&commits), "{commits} commits");
    // Only bounded label values: the apps the server serves and fixed sets.
    for sample in &s.samples {
        if let Some(app) = sample.labels.get("app") {
            assert!(
                [APP_ID, OTHER_APP_ID, "e2e-dev-app"].contains(&app),
                "{sample:?}"
            );
        }
    }
    assert!(value(&s, "beckon_broker_busy_seconds_total", &[]) > 0.0);
    assert!(value(&s, "beckon_broker_queue_capacity", &[]) > 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn every_endpoint_refuses_bad_tokens() {
    if beckon_tests::skip_in_cluster(
        "it expects the admin API's accounts, kick and channel endpoints to answer; they are \
         refused with 1001 in cluster mode",
    ) {
        return;
    }
    let server = server().await;
    let admin = Admin::of(&server);
    let later = unix_now() + 600;
    let tokens: [(&str, Option<String>, StatusCode, i64); 6] = [
        ("missing", None, StatusCode::UNAUTHORIZED, 206),
        (
            "garbage",
            Some("not-a-token".into()),
            StatusCode::UNAUTHORIZED,
            206,
        ),
        (
            "wrong certificate",
            Some(mint_token_with(
                APP_ID,
                OTHER_CERT,
                "ops",
                later,
                Privileges::SERVER,
            )),
            StatusCode::UNAUTHORIZED,
            206,
        ),
        (
            "expired",
            Some(mint_token_with(
                APP_ID,
                CERT,
                "ops",
                unix_now() - 1,
                Privileges::SERVER,
            )),
            StatusCode::UNAUTHORIZED,
            204,
        ),
        (
            "another app's",
            Some(mint_token_with(
                OTHER_APP_ID,
                OTHER_CERT,
                "ops",
                later,
                Privileges::SERVER,
            )),
            StatusCode::UNAUTHORIZED,
            206,
        ),
        (
            "without the privilege",
            Some(mint_token(APP_ID, CERT, "ops", later)),
            StatusCode::FORBIDDEN,
            1001,
        ),
    ];
    let message = json!({ "text": "hi" }).to_string();
    let token_req = json!({ "account": "zoe" }).to_string();
    let endpoints: Vec<(Method, String, Option<&str>)> = vec![
        (Method::GET, format!("/v1/apps/{APP_ID}/accounts"), None),
        (
            Method::GET,
            format!("/v1/apps/{APP_ID}/accounts/alice"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/apps/{APP_ID}/accounts/alice/kick"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/apps/{APP_ID}/accounts/alice/messages"),
            Some(&message),
        ),
        (Method::GET, format!("/v1/apps/{APP_ID}/channels"), None),
        (
            Method::GET,
            format!("/v1/apps/{APP_ID}/channels/room"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/apps/{APP_ID}/channels/room/messages"),
            Some(&message),
        ),
        (
            Method::POST,
            format!("/v1/apps/{APP_ID}/tokens"),
            Some(&token_req),
        ),
    ];
    let mut alice = User::new(server.url(), "alice");
    alice.login(&server).await;
    for (method, path, body) in &endpoints {
        for (what, token, status, code) in &tokens {
            let (got, v) = admin
                .call(method.clone(), path, token.as_deref(), *body)
                .await;
            assert_eq!(got, *status, "{method} {path} with a {what} token: {v}");
            assert_eq!(v["code"], *code, "{method} {path} with a {what} token: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        }
    }
    // The reload endpoint too (a token of any served app may ask, with the privilege).
    for (what, token, status, _) in &tokens[..4] {
        let (got, v) = admin
            .call(Method::POST, "/v1/reload", token.as_deref(), None)
            .await;
        assert_eq!(got, *status, "reload with a {what} token: {v}");
    }
    // Nothing changed: alice is still here and heard nothing.
    let (_, v) = admin
        .get(&format!("/v1/apps/{APP_ID}/accounts/alice"))
        .await;
    assert_eq!(v["connected"], true, "{v}");
    alice
        .expect_none(100, |e| {
            matches!(
                e,
                Event::Logout { .. } | Event::MessageInstantReceive { .. }
            )
        })
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_lists_kicks_sends_and_mints() {
    if beckon_tests::skip_in_cluster(
        "the admin API's accounts, kick, channels and channel messages are refused with 1001 in \
         cluster mode (its p2p messages are tested on nodes in tests/cluster.rs)",
    ) {
        return;
    }
    let server = server().await;
    let admin = Admin::of(&server);
    let mut users = Vec::new();
    for name in ["dave", "alice", "carol", "bob"] {
        let mut u = User::new(server.url(), name);
        u.login(&server).await;
        users.push(u);
    }
    let accounts = format!("/v1/apps/{APP_ID}/accounts");
    let (status, v) = admin.get(&format!("{accounts}?limit=3")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({ "accounts": ["alice", "bob", "carol"], "next": "carol" })
    );
    let (_, v) = admin.get(&format!("{accounts}?limit=3&after=carol")).await;
    assert_eq!(v, json!({ "accounts": ["dave"], "next": null }));
    for bad in ["limit=0", "limit=1001", "limit=abc", "page=2"] {
        let (status, v) = admin.get(&format!("{accounts}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["code"], 1004, "{bad}: {v}");
    }

    users[1].join("room").await; // alice
    users[3].join("room").await; // bob
    let (_, v) = admin.get(&format!("/v1/apps/{APP_ID}/channels")).await;
    assert_eq!(
        v,
        json!({ "channels": [{ "channel": "room", "members": 2 }], "next": null })
    );
    let (_, v) = admin.get(&format!("/v1/apps/{APP_ID}/channels/room")).await;
    assert_eq!(v["members"], json!(["alice", "bob"]), "{v}");
    assert_eq!(v["attributes"]["_member_num"], "2", "{v}");
    let (status, v) = admin
        .get(&format!("/v1/apps/{APP_ID}/channels/nowhere"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    users[1].sdk.set_attr("color", "blue");
    users[1].sdk.get_attr("color"); // Answered after the set: it is stored by then.
    users[1]
        .expect(|e| matches!(e, Event::UserAttrResult { .. }))
        .await;
    let (_, v) = admin
        .get(&format!("/v1/apps/{APP_ID}/accounts/alice"))
        .await;
    assert_eq!(v["online"], true, "{v}");
    assert_eq!(v["channels"], json!(["room"]), "{v}");
    assert_eq!(v["attributes"]["color"], "blue", "{v}");
    assert_eq!(v["uid"], beckon_broker::uid_for(APP_ID, "alice"), "{v}");

    // A broadcast to the channel and a p2p message, from the token's account.
    let (status, v) = admin
        .post(
            &format!("/v1/apps/{APP_ID}/channels/room/messages"),
            json!({ "text": "maintenance at noon" }),
        )
        .await;
    assert_eq!(
        (status, &v["recipients"]),
        (StatusCode::OK, &json!(2)),
        "{v}"
    );
    for i in [1, 3] {
        users[i]
            .expect_eq(
                |e| matches!(e, Event::MessageChannelReceive { .. }),
                Event::MessageChannelReceive {
                    channel: "room".into(),
                    account: "ops".into(),
                    uid: 0,
                    msg: "maintenance at noon".into(),
                },
            )
            .await;
    }
    let (status, v) = admin
        .post(
            &format!("/v1/apps/{APP_ID}/accounts/carol/messages"),
            json!({ "text": "hello carol" }),
        )
        .await;
    assert_eq!(
        (status, &v["online"]),
        (StatusCode::OK, &json!(true)),
        "{v}"
    );
    users[2].expect_message("ops", "hello carol").await;

    // Bad bodies: not JSON, the wrong shape, unknown fields, too large, no content type.
    let messages = format!("/v1/apps/{APP_ID}/accounts/carol/messages");
    let t = admin_token();
    for body in ["{", "[]", r#"{"text": 5}"#, r#"{"text": "a", "extra": 1}"#] {
        let (status, v) = admin
            .call(Method::POST, &messages, Some(&t), Some(body))
            .await;
        assert_eq!(status.as_u16() / 100, 4, "{body}: {v}");
        assert_eq!(v["code"], 1004, "{body}: {v}");
    }
    let huge = json!({ "text": "x".repeat(100_000) }).to_string();
    let (status, v) = admin
        .call(Method::POST, &messages, Some(&t), Some(&huge))
        .await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!(1005)),
        "{v}"
    );
    let (status, v) = admin
        .post(&messages, json!({ "text": "x".repeat(8193) }))
        .await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!(1005)),
        "{v}"
    );
    users[2].expect_no_instant_message().await;

    // Minting.
    let (status, v) = admin
        .post(
            &format!("/v1/apps/{APP_ID}/tokens"),
            json!({ "account": "zoe", "expire_in": 60 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let minted = v["token"].as_str().unwrap();
    beckon_token::verify(CERT, minted, APP_ID, "zoe", unix_now()).expect("a valid token");
    let mut zoe = User::new(server.url(), "zoe");
    zoe.login_with(APP_ID, minted).await;
    let (status, v) = admin
        .post(
            &format!("/v1/apps/{APP_ID}/tokens"),
            json!({ "account": "a b" }),
        )
        .await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!(1004)),
        "{v}"
    );

    // The kick: the client hears LOGOUT_E_KICKED; a second kick finds nobody.
    let kick = format!("/v1/apps/{APP_ID}/accounts/dave/kick");
    let (status, v) = admin.post(&kick, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    users[0].expect_next(Event::Logout { ecode: 103 }).await;
    let (status, v) = admin.post(&kick, json!({})).await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::NOT_FOUND, &json!(108)),
        "{v}"
    );

    let (status, v) = admin.get("/v1/apps/nope/accounts").await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::NOT_FOUND, &json!(202)),
        "{v}"
    );
    let (status, v) = admin.get("/v2/whatever").await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::NOT_FOUND, &json!(1002)),
        "{v}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes_and_each_answers() {
    if beckon_tests::skip_in_cluster(
        "it expects every documented route to answer as documented; the admin API's accounts, \
         kick and channel endpoints are refused with 1001 in cluster mode",
    ) {
        return;
    }
    let server = server().await;
    let admin = Admin::of(&server);
    let (status, doc) = admin.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = (beckon_server::ADMIN_ROUTES.iter())
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, routed, "the document and the router disagree");

    // Each route answers (not 404 or 405), and documents the status it gives here.
    for (method, path) in &routed {
        let concrete = path
            .replace("{app}", APP_ID)
            .replace("{account}", "alice")
            .replace("{channel}", "room");
        let body = match path.as_str() {
            p if p.ends_with("/messages") => Some(json!({ "text": "x" }).to_string()),
            p if p.ends_with("/tokens") => Some(json!({ "account": "zoe" }).to_string()),
            _ => None,
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let t = admin_token();
        let (status, v) = admin
            .call(method.clone(), &concrete, Some(&t), body.as_deref())
            .await;
        assert!(
            status != StatusCode::NOT_FOUND || v.get("code") != Some(&json!(1002)),
            "{method} {concrete}: {status} {v}"
        );
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
        let op = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(
            op["responses"].get(status.as_str()).is_some(),
            "{method} {path} answered {status}, which the document does not list: {v}"
        );
    }
    server.shutdown().await;
}

/// A configuration file serving [`APP_ID`] with `certificate`.
fn config_file(path: &std::path::Path, certificate: &str) {
    std::fs::write(
        path,
        format!("[[apps]]\napp_id = \"{APP_ID}\"\ncertificate = \"{certificate}\"\n"),
    )
    .unwrap();
}

#[tokio::test]
async fn a_reload_rotates_a_certificate_and_keeps_sessions() {
    if beckon_tests::skip_in_cluster(
        "it reloads through one server's admin API and lists accounts through it; each node \
         reloads its own file, and the accounts listing is refused with 1001 in cluster mode",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("beckon-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("beckon-{}.toml", scheme()));
    let old_cert = std::str::from_utf8(CERT).unwrap();
    config_file(&path, old_cert);
    let file = path.clone();
    let server = TestServer::start_with(move |c| {
        c.admin = Some("127.0.0.1:0".parse().unwrap());
        c.config_file = Some(file);
    })
    .await;
    let admin = Admin::of(&server);
    let mut alice = User::new(server.url(), "alice");
    alice.login(&server).await;
    let mut carl = User::new(server.url(), "carl");
    carl.login_with(
        OTHER_APP_ID,
        &mint_token(OTHER_APP_ID, OTHER_CERT, "carl", unix_now() + 600),
    )
    .await;

    let new_cert = "99999999999999999999999999999999";
    config_file(&path, new_cert);
    let report = server.reload().await.expect("the reload");
    assert_eq!(report.apps_removed, [OTHER_APP_ID]);
    // carl's app is gone from the file: he is logged out, saying why.
    carl.expect_next(Event::Logout { ecode: 103 }).await;

    // alice stays connected and keeps working.
    alice.sdk.message_instant_send("alice", 0, "still here", "");
    alice.expect_message("alice", "still here").await;

    // Old tokens no longer log in; new ones do.
    let mut bob = User::new(server.url(), "bob");
    let old = mint_token(APP_ID, CERT, "bob", unix_now() + 600);
    bob.sdk.login(APP_ID, "bob", &old, 0, "");
    bob.expect_next(Event::LoginFailed { ecode: 206 }).await;
    let new = mint_token(APP_ID, new_cert.as_bytes(), "bob", unix_now() + 600);
    bob.login_with(APP_ID, &new).await;

    // The admin API follows the rotation; a reload through it reports the same.
    let old_admin = mint_token_with(APP_ID, CERT, "ops", unix_now() + 600, Privileges::SERVER);
    let (status, _) = admin
        .call(Method::POST, "/v1/reload", Some(&old_admin), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let new_admin = mint_token_with(
        APP_ID,
        new_cert.as_bytes(),
        "ops",
        unix_now() + 600,
        Privileges::SERVER,
    );
    let (status, v) = admin
        .call(Method::POST, "/v1/reload", Some(&new_admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["apps_removed"], json!([]), "{v}");

    // A broken file changes nothing.
    std::fs::write(&path, "this is not toml [").unwrap();
    let (status, v) = admin
        .call(Method::POST, "/v1/reload", Some(&new_admin), None)
        .await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!(1001)),
        "{v}"
    );
    let (_, v) = admin
        .call(
            Method::GET,
            &format!("/v1/apps/{APP_ID}/accounts"),
            Some(&new_admin),
            None,
        )
        .await;
    assert_eq!(v["accounts"], json!(["alice", "bob"]), "{v}");
    let _ = std::fs::remove_file(&path);
    server.shutdown().await;
}

#[tokio::test]
async fn probes_answer_without_a_token() {
    let server = server().await;
    let admin = Admin::of(&server);
    let (status, v) = admin.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, &v["status"]), (StatusCode::OK, &json!("alive")));
    let (status, v) = admin.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((status, &v["ready"]), (StatusCode::OK, &json!(true)), "{v}");
    server.shutdown().await;
}
