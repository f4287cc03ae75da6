//! Login, logout, status and instances, through the SDK over real TCP (SPEC §4).

use std::time::Duration;

use beckon_sdk::{ClientConfig, Config, Event, Instance, SDK_VERSION, SdkError};
use beckon_tests::{
    APP_ID, CERT, DEV_APP_ID, OTHER_APP_ID, OTHER_CERT, TIMEOUT, TestServer, User, expect_event,
    logged_in, mint_token, server_with, unix_now, unused_addr,
};

#[tokio::test]
async fn login_with_a_minted_token_reports_the_uid() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    alice.login(&server).await;
    let uid = beckon_broker::uid_for(APP_ID, "alice");
    assert_eq!(
        alice.uid, uid,
        "the uid is the server's, stable per (app, account)"
    );
    assert_ne!(uid, 0);
    assert!(alice.calls.saw(&format!("on_login_success({uid}, 0)")));
    assert_eq!(alice.sdk.get_status(), 2);

    // The same account logs in with the same uid next time.
    alice.logout().await;
    alice.login(&server).await;
    assert_eq!(alice.uid, uid);
}

/// Logs `account` in to `app_id` with `token` and checks that it fails with `ecode`, reported
/// through both `on_login_failed` and `on_error("login", …)`, leaving the instance logged out.
async fn assert_login_fails(
    server: &TestServer,
    app_id: &str,
    account: &str,
    token: &str,
    ecode: i32,
) {
    let mut u = User::new(server.url(), account);
    u.sdk.login(app_id, account, token, 0, "");
    let ev = u
        .expect(|e| matches!(e, Event::LoginFailed { .. } | Event::LoginSuccess { .. }))
        .await;
    assert_eq!(
        ev,
        Event::LoginFailed { ecode },
        "login of {account:?} to {app_id:?} with token {token:?}"
    );
    assert!(
        u.calls.saw(&format!("on_login_failed({ecode})")),
        "{:?}",
        u.calls.calls()
    );
    assert!(
        u.calls.saw(&format!("on_error(login, {ecode})")),
        "{:?}",
        u.calls.calls()
    );
    assert_eq!(u.sdk.get_status(), 0);
}

#[tokio::test]
async fn wrong_signature_is_206() {
    let server = TestServer::start().await;
    let forged = mint_token(
        APP_ID,
        b"not the app certificate",
        "alice",
        unix_now() + 3600,
    );
    assert_login_fails(&server, APP_ID, "alice", &forged, 206).await;

    // Any change to a valid token breaks its signature.
    let mut tampered = server.token("alice").into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    assert_login_fails(&server, APP_ID, "alice", &tampered, 206).await;
    assert_login_fails(&server, APP_ID, "alice", "not-a-token", 206).await;
}

#[tokio::test]
async fn expired_token_is_204() {
    let server = TestServer::start().await;
    let expired = mint_token(APP_ID, CERT, "alice", unix_now() - 10);
    assert_login_fails(&server, APP_ID, "alice", &expired, 204).await;
}

#[tokio::test]
async fn token_of_another_account_is_206() {
    let server = TestServer::start().await;
    let bobs = server.token("bob");
    assert_login_fails(&server, APP_ID, "alice", &bobs, 206).await;
}

#[tokio::test]
async fn token_of_another_app_is_206() {
    let server = TestServer::start().await;
    // Signed by the other app for the other app …
    let other = mint_token(OTHER_APP_ID, OTHER_CERT, "alice", unix_now() + 3600);
    assert_login_fails(&server, APP_ID, "alice", &other, 206).await;
    // … and signed with this app's certificate but naming the other app.
    let misnamed = mint_token(OTHER_APP_ID, CERT, "alice", unix_now() + 3600);
    assert_login_fails(&server, APP_ID, "alice", &misnamed, 206).await;
    // The token works where it belongs.
    let mut alice = User::new(server.url(), "alice");
    alice.login_with(OTHER_APP_ID, &other).await;
}

#[tokio::test]
async fn unknown_app_is_202() {
    let server = TestServer::start().await;
    assert_login_fails(&server, "no-such-app", "alice", "_no_need_token", 202).await;
    let token = mint_token("no-such-app", CERT, "alice", unix_now() + 3600);
    assert_login_fails(&server, "no-such-app", "alice", &token, 202).await;
}

#[tokio::test]
async fn no_need_token_works_only_where_the_app_allows_it() {
    let server = TestServer::start().await;
    assert_login_fails(&server, APP_ID, "alice", "_no_need_token", 206).await;
    let mut dev = User::new(server.url(), "alice");
    dev.login_with(DEV_APP_ID, "_no_need_token").await;
    assert_eq!(dev.uid, beckon_broker::uid_for(DEV_APP_ID, "alice"));
}

#[tokio::test]
async fn bad_accounts_fail_with_1004_or_1005() {
    let server = TestServer::start().await;
    let long = "a".repeat(129);
    for (account, ecode) in [
        ("", 1004),
        ("al ice", 1004),
        (" alice", 1004),
        ("alice\t", 1004),
        ("al\u{7}ice", 1004),
        (long.as_str(), 1005),
    ] {
        assert_login_fails(&server, APP_ID, account, "_no_need_token", ecode).await;
    }
    // 128 characters (not bytes) is the limit.
    let longest = "é".repeat(128);
    let mut u = User::new(server.url(), &longest);
    u.login(&server).await;
    assert_eq!(
        server.stats().await.logins,
        1,
        "only the valid account logged in"
    );
}

#[tokio::test]
async fn unreachable_server_fails_with_201() {
    let mut config = Config::new(format!("tcp://{}", unused_addr()));
    config.client = ClientConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..config.client
    };
    let sdk = Instance::new(config).expect("a tcp url");
    let mut events = sdk.events();
    sdk.login2(APP_ID, "alice", "_no_need_token", 0, "", 30, 3);
    let ev = expect_event(
        &mut events,
        |e| matches!(e, Event::LoginFailed { .. } | Event::LoginSuccess { .. }),
        TIMEOUT,
    )
    .await;
    assert_eq!(ev, Event::LoginFailed { ecode: 201 });
    assert_eq!(sdk.get_status(), 0);

    // The default policy gives up too, after its three attempts.
    let sdk = Instance::new(Config::new(format!("127.0.0.1:{}", unused_addr().port())))
        .expect("a bare address");
    let mut events = sdk.events();
    sdk.login(APP_ID, "alice", "_no_need_token", 0, "");
    let ev = expect_event(
        &mut events,
        |e| matches!(e, Event::LoginFailed { .. }),
        TIMEOUT,
    )
    .await;
    assert_eq!(ev, Event::LoginFailed { ecode: 201 });
}

#[tokio::test]
async fn status_goes_0_1_2_0() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    assert_eq!(alice.sdk.get_status(), 0);
    alice
        .sdk
        .login(APP_ID, "alice", &server.token("alice"), 0, "");
    assert_eq!(
        alice.sdk.get_status(),
        1,
        "logging in as soon as login returns"
    );
    alice
        .expect(|e| matches!(e, Event::LoginSuccess { .. }))
        .await;
    assert_eq!(alice.sdk.get_status(), 2);
    alice.sdk.logout();
    alice.expect(|e| matches!(e, Event::Logout { .. })).await;
    assert_eq!(alice.sdk.get_status(), 0);

    // A login refused locally goes back to 0 as well.
    alice
        .sdk
        .login(APP_ID, "bad account", "_no_need_token", 0, "");
    alice
        .expect(|e| matches!(e, Event::LoginFailed { .. }))
        .await;
    assert_eq!(alice.sdk.get_status(), 0);
}

#[tokio::test]
async fn sdk_version_is_the_client_version() {
    let sdk = Instance::new(Config::new("tcp://127.0.0.1:7400")).expect("a tcp url");
    assert_eq!(sdk.get_sdk_version(), SDK_VERSION);
    // 1MMmmppbbb: Beckon 0.1.0, build 0.
    assert_eq!(sdk.get_sdk_version(), 1_000_100_000);
}

#[tokio::test]
async fn unsupported_scheme_fails_at_construction() {
    let err =
        Instance::new(Config::new("http://127.0.0.1:7400")).expect_err("http is not a transport");
    assert!(matches!(err, SdkError::UnsupportedScheme { ref scheme, .. } if scheme == "http"));
    assert!(err.to_string().contains("quic"), "{err}");
    for url in [
        "tls://127.0.0.1:7400",
        "quic://127.0.0.1:7400",
        "ws://127.0.0.1:7401/ws",
        "wss://[::1]:443",
    ] {
        assert!(Instance::new(Config::new(url)).is_ok(), "{url}");
    }
    assert!(matches!(
        Instance::new(Config::new("127.0.0.1")),
        Err(SdkError::InvalidServer { .. })
    ));
}

#[tokio::test]
async fn duplicate_login_kicks_the_first_session() {
    let (server, [mut first, mut second]) = server_with(["alice", "alice"]).await;
    first.expect_next(Event::Logout { ecode: 103 }).await;
    assert!(first.calls.saw("on_logout(103)"));
    assert_eq!(first.sdk.get_status(), 0);
    assert_eq!(second.sdk.get_status(), 2);

    // The second session is the account now: it receives what is sent to alice.
    let mut bob = logged_in(&server, "bob").await;
    assert_eq!(bob.status_of("alice").await, "1");
    bob.sdk
        .message_instant_send("alice", 0, "to the second", "");
    second.expect_message("bob", "to the second").await;
    first.expect_no_instant_message().await;
    assert_eq!(server.stats().await.kicks, 1);
}

#[tokio::test]
async fn logout_reports_101_and_a_second_logout_108() {
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;
    alice.sdk.logout();
    alice.expect_next(Event::Logout { ecode: 101 }).await;
    assert!(alice.calls.saw("on_logout(101)"));

    alice.sdk.logout();
    let ev = alice
        .expect(|e| matches!(e, Event::Error { .. } | Event::Logout { .. }))
        .await;
    assert!(
        matches!(&ev, Event::Error { name, ecode: 108, .. } if name == "logout"),
        "{ev:?}"
    );
    assert!(alice.calls.saw("on_error(logout, 108)"));
    assert_eq!(
        alice
            .calls
            .calls()
            .iter()
            .filter(|c| c.starts_with("on_logout"))
            .count(),
        1
    );
}

#[tokio::test]
async fn logout_during_login_cancels_it_with_203() {
    let server = TestServer::start().await;
    let mut alice = User::new(server.url(), "alice");
    alice
        .sdk
        .login(APP_ID, "alice", &server.token("alice"), 0, "");
    alice.sdk.logout();
    alice
        .expect_eq(
            |e| matches!(e, Event::LoginFailed { .. } | Event::LoginSuccess { .. }),
            Event::LoginFailed { ecode: 203 },
        )
        .await;
    assert_eq!(alice.sdk.get_status(), 0);
    // Not logged in afterwards: a fresh login works.
    alice.login(&server).await;
}

#[tokio::test]
async fn login_while_logged_in_is_ignored() {
    let server = TestServer::start().await;
    let mut alice = logged_in(&server, "alice").await;
    alice
        .sdk
        .login(APP_ID, "alice", &server.token("alice"), 0, "");
    alice
        .sdk
        .login(APP_ID, "someone-else", "_no_need_token", 0, "");
    // Still alice, on the same session (a second login would have kicked it).
    let mut bob = logged_in(&server, "bob").await;
    assert_eq!(bob.status_of("someone-else").await, "0");
    assert_eq!(bob.status_of("alice").await, "1");
    alice
        .expect_none(100, |e| {
            matches!(
                e,
                Event::LoginSuccess { .. } | Event::LoginFailed { .. } | Event::Logout { .. }
            )
        })
        .await;
    assert_eq!(alice.sdk.get_status(), 2);
    assert_eq!(server.stats().await.logins, 2);
}

#[tokio::test]
async fn destroy_logs_out() {
    let (_server, [mut bob, alice]) = server_with(["bob", "alice"]).await;
    let calls = alice.calls.clone();
    let mut events = alice.events;
    alice.sdk.destroy().await;
    assert!(calls.saw("on_logout(101)"), "{:?}", calls.calls());
    // The stream ends with the driver, after the logout.
    let ev = expect_event(&mut events, |e| matches!(e, Event::Logout { .. }), TIMEOUT).await;
    assert_eq!(ev, Event::Logout { ecode: 101 });
    let rest = tokio::time::timeout(TIMEOUT, async {
        while let Some(e) = events.next().await {
            assert!(matches!(e, Event::Log { .. }), "{e:?} after the logout");
        }
    })
    .await;
    assert!(rest.is_ok(), "the event stream did not end after destroy");
    bob.await_status_of("alice", "0").await;
}

#[tokio::test]
async fn two_instances_in_one_process_are_independent() {
    let (_server, [mut alice, mut bob]) = server_with(["alice", "bob"]).await;
    assert!(
        alice
            .calls
            .saw(&format!("on_login_success({}, 0)", alice.uid))
    );
    assert!(bob.calls.saw(&format!("on_login_success({}, 0)", bob.uid)));
    assert_ne!(alice.uid, bob.uid);
    // Neither saw the other's login.
    assert_eq!(
        alice.calls.calls(),
        [format!("on_login_success({}, 0)", alice.uid)]
    );
    assert_eq!(
        bob.calls.calls(),
        [format!("on_login_success({}, 0)", bob.uid)]
    );

    alice.logout().await;
    assert_eq!(alice.sdk.get_status(), 0);
    assert_eq!(bob.sdk.get_status(), 2);
    bob.await_status_of("alice", "0").await;
    assert_eq!(bob.status_of("bob").await, "1");
    bob.expect_none(50, |e| matches!(e, Event::Logout { .. }))
        .await;
}

#[tokio::test]
async fn consecutive_logins_land_on_different_nodes_in_cluster_mode() {
    let (server, users) = server_with(["alice", "bob", "carol"]).await;
    let nodes = beckon_tests::cluster_nodes().max(1);
    let mut want = vec![0; nodes];
    for i in 0..users.len() {
        want[i % nodes] += 1;
    }
    let sessions: Vec<usize> = (server.node_stats().await)
        .iter()
        .map(|s| s.sessions)
        .collect();
    assert_eq!(sessions, want, "sessions per node");
}
