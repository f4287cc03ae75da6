//! The configuration's checks, from TOML text to the runtime config.

use beckon_broker::{AdmissionConfig, OfflinePolicy};
use beckon_proto::Limits;

use super::*;

const GOOD: &str = r#"
    listen = "0.0.0.0:7500"
    heartbeat_interval_ms = 5000
    login_timeout_ms = 3000
    max_frame_bytes = 32768
    outbound_budget_bytes = 1048576
    login_rate = 1000
    login_burst = 2000
    login_rate_per_address = 5
    login_burst_per_address = 10
    login_limit_loopback = true
    login_max_retry_after_ms = 30000
    data_dir = "/var/lib/beckon"

    [[apps]]
    app_id = "myapp"
    certificate = "5cfd2fd1755d40ecb72977518be15d3b"
    allow_no_token = true
    max_name_chars = 64
    max_user_attr_value_chars = 100
    max_channel_attr_value_chars = 200
    max_message_bytes = 4096
    max_user_attrs = 10
    max_channels_per_session = 3
    channel_messages_per_user = 10
    channel_messages_per_channel = 20
    max_notified_members = 30
    channel_ttl_s = 40
    max_channel_ttl_s = 80
    max_channel_attrs = 50
    max_channel_attr_bytes = 4096
    max_empty_channels_per_account = 6
    max_channels = 70
    max_invites_per_session = 8
    max_invites = 90
    legacy_tokens = true
    offline_messages = false
    offline_max_per_account = 5
    offline_max_per_sender = 7
    offline_max_bytes = 100000
    offline_ttl_s = 60

    [[apps]]
    app_id = "other"
    certificate = "00112233445566778899aabbccddeeff"
"#;

/// A path in the temporary directory that no other test (or test process) uses.
fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "beckon-server-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ))
}

fn err(toml: &str) -> ConfigError {
    ServerConfig::from_toml_str(toml).expect_err("config should be rejected")
}

#[test]
fn full_config_parses() {
    let c = ServerConfig::from_toml_str(GOOD).unwrap();
    assert_eq!(c.listen, vec!["tcp://0.0.0.0:7500".parse().unwrap()]);
    assert_eq!(c.broker.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(c.broker.login_timeout, Duration::from_secs(3));
    assert_eq!(c.max_frame, 32768);
    assert_eq!(c.outbound_budget_bytes, 1 << 20);
    assert_eq!(c.storage, Storage::Dir("/var/lib/beckon".into()));
    assert!(!c.broker.apps.is_development());
    assert_eq!(
        c.broker.admission,
        AdmissionConfig {
            logins_per_s: 1000,
            login_burst: 2000,
            logins_per_address_per_s: 5,
            login_burst_per_address: 10,
            limit_loopback: true,
            max_retry_after: Duration::from_secs(30),
        }
    );

    let app = c.broker.apps.lookup("myapp").unwrap();
    assert_eq!(
        app.certificate.as_ref().map(|c| c.expose().as_slice()),
        Some(&b"5cfd2fd1755d40ecb72977518be15d3b"[..])
    );
    assert!(app.allow_no_token);
    assert_eq!(
        app.limits,
        Limits {
            max_name_chars: 64,
            max_user_attr_value_chars: 100,
            max_channel_attr_value_chars: 200,
            max_message_bytes: 4096,
        }
    );
    assert_eq!(app.max_user_attrs, 10);
    assert_eq!(app.max_channels_per_session, 3);
    assert_eq!(app.channel_messages_per_user, 10);
    assert_eq!(app.channel_messages_per_channel, 20);
    assert_eq!(app.max_notified_members, 30);
    assert_eq!(app.default_channel_ttl, Duration::from_secs(40));
    assert_eq!(app.max_channel_ttl, Duration::from_secs(80));
    assert_eq!(app.max_channel_attrs, 50);
    assert_eq!(app.max_channel_attr_bytes, 4096);
    assert_eq!(app.max_empty_channels_per_account, 6);
    assert_eq!(app.max_channels, 70);
    assert_eq!(app.max_invites_per_session, 8);
    assert_eq!(app.max_invites, 90);
    assert!(app.legacy_tokens);
    assert_eq!(
        app.offline,
        OfflinePolicy {
            enabled: false,
            max_per_account: 5,
            ttl: Duration::from_secs(60),
            max_per_sender: 7,
            max_bytes: 100_000,
        }
    );

    let other = c.broker.apps.lookup("other").unwrap();
    assert!(!other.allow_no_token);
    assert!(!other.legacy_tokens, "legacy tokens are off by default");
    assert_eq!(other.limits, Limits::default());
    assert_eq!(other.offline, OfflinePolicy::default());
    assert!(c.broker.apps.lookup("unknown").is_none());
}

#[test]
fn minimal_config_takes_defaults() {
    let c = ServerConfig::from_toml_str("[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n").unwrap();
    assert_eq!(c.listen, default_listen());
    assert_eq!(c.max_frame, DEFAULT_MAX_FRAME);
    assert_eq!(c.outbound_budget_bytes, DEFAULT_OUTBOUND_BUDGET);
    assert!(
        c.outbound_budget_bytes >= c.outbound_budget_floor(),
        "by default every session can be resumed"
    );
    assert_eq!(c.broker.heartbeat_interval, Duration::from_secs(10));
    assert_eq!(c.broker.admission, AdmissionConfig::default());
    // A configured server keeps its data unless told otherwise.
    assert_eq!(c.storage, Storage::StandardDir);
}

#[test]
fn storage_keys() {
    let apps = "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n";
    let c = ServerConfig::from_toml_str(&format!("ephemeral = true\n{apps}")).unwrap();
    assert_eq!(c.storage, Storage::Memory);
    let c = ServerConfig::from_toml_str(&format!("ephemeral = false\n{apps}")).unwrap();
    assert_eq!(c.storage, Storage::StandardDir);
    let c = ServerConfig::from_toml_str(&format!("data_dir = \"data\"\n{apps}")).unwrap();
    assert_eq!(c.storage, Storage::Dir("data".into()));

    let e = err(&format!("data_dir = \"/x\"\nephemeral = true\n{apps}"));
    assert!(
        matches!(
            e,
            ConfigError::InvalidValue {
                key: "data_dir",
                app_id: None,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("ephemeral"), "{e}");
    let e = err(&format!("data_dir = \"\"\n{apps}"));
    assert!(
        matches!(
            e,
            ConfigError::InvalidValue {
                key: "data_dir",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        err(&format!("ephemeral = 1\n{apps}")),
        ConfigError::Toml(_)
    ));
}

#[test]
fn storage_resolution() {
    assert_eq!(Storage::Memory.dir(), Ok(None));
    assert_eq!(
        Storage::Dir("/srv/beckon".into()).dir(),
        Ok(Some("/srv/beckon".into()))
    );
    // The standard directory depends on the environment, which tests must not change
    // (the binary's tests set it per process); it is at least consistent.
    match Storage::standard_dir() {
        Some(dir) => {
            assert_eq!(Storage::StandardDir.dir(), Ok(Some(dir.clone())));
            assert!(dir.is_absolute() && dir.ends_with("beckon"), "{dir:?}");
        }
        None => assert!(
            Storage::StandardDir
                .dir()
                .unwrap_err()
                .contains("--data-dir")
        ),
    }
}

#[test]
fn load_resolves_a_relative_data_dir_against_the_file() {
    let dir = temp_path("config-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.toml");
    let apps = "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n";
    std::fs::write(&path, format!("data_dir = \"data\"\n{apps}")).unwrap();
    let relative = ServerConfig::load(&path).map(|c| c.storage);
    std::fs::write(&path, format!("data_dir = \"/abs\"\n{apps}")).unwrap();
    let absolute = ServerConfig::load(&path).map(|c| c.storage);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(relative.unwrap(), Storage::Dir(dir.join("data")));
    assert_eq!(absolute.unwrap(), Storage::Dir("/abs".into()));
}

#[test]
fn development_serves_unknown_apps_besides_configured_ones() {
    let c = ServerConfig::from_toml_str(
        "development = true\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n",
    )
    .unwrap();
    assert!(c.broker.apps.is_development());
    assert!(c.broker.apps.lookup("a").unwrap().certificate.is_some());
    assert!(
        c.broker
            .apps
            .lookup("anything")
            .unwrap()
            .certificate
            .is_none()
    );
    // Development mode alone is a valid config.
    assert!(ServerConfig::from_toml_str("development = true").is_ok());
}

#[test]
fn development_constructor() {
    let c = ServerConfig::development();
    assert_eq!(c.listen, default_listen());
    assert!(c.broker.apps.is_development());
    assert_eq!(c.storage, Storage::Memory, "tests must not write to disk");
    assert_ne!(
        c.broker.server_secret.expose(),
        ServerConfig::development().broker.server_secret.expose(),
        "every start gets a fresh secret"
    );
}

#[test]
fn debug_does_not_print_secrets() {
    let c = ServerConfig::from_toml_str(GOOD).unwrap();
    let text = format!("{c:?}");
    assert!(!text.contains("5cfd2fd1"), "{text}");
    let secret = format!("{:?}", c.broker.server_secret.expose());
    assert!(!text.contains(&secret[1..secret.len() - 1]), "{text}");
    assert!(text.contains("server_secret: [redacted]"), "{text}");
    assert!(text.contains("certificate: Some([redacted])"), "{text}");
}

#[test]
fn unknown_keys_are_errors() {
    assert!(matches!(
        err("listn = \"127.0.0.1:1\""),
        ConfigError::Toml(_)
    ));
    let e = err("[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\ncertficate = \"d\"\n");
    assert!(matches!(e, ConfigError::Toml(_)));
    assert!(e.to_string().contains("certficate"), "{e}");
}

#[test]
fn syntax_and_type_errors() {
    assert!(matches!(err("listen = "), ConfigError::Toml(_)));
    assert!(matches!(
        err("development = true\nlisten = \"not an address\""),
        ConfigError::Listen { .. }
    ));
    assert!(matches!(err("listen = 5"), ConfigError::Toml(_)));
    assert!(matches!(
        err("heartbeat_interval_ms = \"10\""),
        ConfigError::Toml(_)
    ));
    assert!(matches!(
        err("heartbeat_interval_ms = -1"),
        ConfigError::Toml(_)
    ));
    assert!(matches!(err("development = 1"), ConfigError::Toml(_)));
    assert!(matches!(
        err("[[apps]]\napp_id = \"a\"\n"),
        ConfigError::Toml(_)
    ));
}

#[test]
fn no_apps_without_development() {
    assert!(matches!(err(""), ConfigError::NoApps));
    assert!(matches!(err("development = false"), ConfigError::NoApps));
}

#[test]
fn empty_certificate() {
    let e = err("[[apps]]\napp_id = \"a\"\ncertificate = \"\"\n");
    assert!(
        matches!(&e, ConfigError::EmptyCertificate { app_id } if app_id == "a"),
        "{e}"
    );
}

#[test]
fn invalid_app_ids() {
    for id in ["", "my app", "tab\there", &"x".repeat(129)] {
        let toml = format!("[[apps]]\napp_id = {id:?}\ncertificate = \"c\"\n");
        assert!(
            matches!(err(&toml), ConfigError::InvalidAppId { .. }),
            "{id:?} should be rejected"
        );
    }
}

#[test]
fn duplicate_app() {
    let e = err(
        "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n[[apps]]\napp_id = \"a\"\ncertificate = \"d\"\n",
    );
    assert!(matches!(&e, ConfigError::DuplicateApp { app_id } if app_id == "a"));
}

#[test]
fn zero_values_are_rejected() {
    for key in [
        "heartbeat_interval_ms",
        "login_timeout_ms",
        "max_frame_bytes",
        "outbound_budget_bytes",
        "login_rate",
        "login_burst",
        "login_rate_per_address",
        "login_burst_per_address",
        "login_max_retry_after_ms",
    ] {
        let e = err(&format!(
            "{key} = 0\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n"
        ));
        assert!(
            matches!(&e, ConfigError::InvalidValue { key: k, app_id: None, .. } if *k == key),
            "{key}: {e}"
        );
    }
    for key in [
        "max_name_chars",
        "max_user_attr_value_chars",
        "max_channel_attr_value_chars",
        "max_message_bytes",
        "max_user_attrs",
        "max_channels_per_session",
        "channel_messages_per_user",
        "channel_messages_per_channel",
        "max_notified_members",
        "channel_ttl_s",
        "max_channel_ttl_s",
        "max_channel_attrs",
        "max_channel_attr_bytes",
        "max_empty_channels_per_account",
        "max_channels",
        "max_invites_per_session",
        "max_invites",
        "offline_max_per_account",
        "offline_max_per_sender",
        "offline_max_bytes",
        "offline_ttl_s",
    ] {
        let e = err(&format!(
            "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n{key} = 0\n"
        ));
        assert!(
            matches!(&e, ConfigError::InvalidValue { key: k, app_id: Some(a), .. } if *k == key && a == "a"),
            "{key}: {e}"
        );
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn quotas_that_contradict_each_other() {
    let app = "[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n";
    let e = err(&format!(
        "{app}channel_ttl_s = 100\nmax_channel_ttl_s = 50\n"
    ));
    assert!(
        matches!(
            &e,
            ConfigError::InvalidValue {
                key: "channel_ttl_s",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("max_channel_ttl_s"), "{e}");
    // A channel's attributes must fit in a join's answer beside its members.
    let e = err(&format!("{app}max_channel_attr_bytes = 3000000\n"));
    assert!(
        matches!(
            &e,
            ConfigError::InvalidValue {
                key: "max_channel_attr_bytes",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        ServerConfig::from_toml_str(&format!("{app}max_channel_attr_bytes = 1048576\n")).is_ok()
    );
}

#[test]
fn oversized_max_frame() {
    let e = err("max_frame_bytes = 4294967296\n[[apps]]\napp_id = \"a\"\ncertificate = \"c\"\n");
    assert!(matches!(
        e,
        ConfigError::InvalidValue {
            key: "max_frame_bytes",
            ..
        }
    ));
}

#[test]
fn load_reports_the_path() {
    let path = temp_path("missing").with_extension("toml");
    let e = ServerConfig::load(&path).unwrap_err();
    assert!(matches!(&e, ConfigError::Io { path: p, .. } if *p == path));
    assert!(e.to_string().contains("cannot read config file"), "{e}");
}

#[test]
fn load_reads_a_file() {
    let path = temp_path("config").with_extension("toml");
    std::fs::write(&path, GOOD).unwrap();
    let c = ServerConfig::load(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        c.unwrap().listen,
        vec!["tcp://0.0.0.0:7500".parse().unwrap()]
    );
}

#[test]
fn listen_takes_one_url_or_many() {
    let c = ServerConfig::from_toml_str(
        "development = true\nlisten = [\"tcp://127.0.0.1:7400\", \"quic://127.0.0.1:7400\", \"wss://[::1]:443/signal\"]\n",
    )
    .unwrap();
    let urls: Vec<String> = c.listen.iter().map(ToString::to_string).collect();
    assert_eq!(
        urls,
        [
            "tcp://127.0.0.1:7400",
            "quic://127.0.0.1:7400",
            "wss://[::1]:443/signal"
        ]
    );
    for (toml, why) in [
        ("listen = []", "at least one"),
        ("listen = [\"http://x:1\"]", "scheme"),
        ("listen = [\"tcp://x:1\", \"ws://x:1/ws\"]", "already uses"),
    ] {
        let e = ServerConfig::from_toml_str(&format!("development = true\n{toml}\n")).unwrap_err();
        assert!(matches!(e, ConfigError::Listen { .. }), "{toml}: {e}");
        assert!(e.to_string().contains(why), "{toml}: {e}");
    }
}

#[test]
fn tls_files_are_read_and_checked() {
    let e = ServerConfig::from_toml_str("development = true\ntls_cert = \"/nonexistent.pem\"\n")
        .unwrap_err();
    assert!(e.to_string().contains("go together"), "{e}");
    let e = ServerConfig::from_toml_str(
        "development = true\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
    )
    .unwrap_err();
    assert!(matches!(e, ConfigError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
}

#[test]
fn cluster_section_parses_and_turns_the_broker_into_a_node() {
    let c = ServerConfig::from_toml_str(
        r#"
        development = true
        [cluster]
        url = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
        node_id = "eu-1"
        node_ttl_ms = 9000
        redis_timeout_ms = 700
        "#,
    )
    .expect("a valid config");
    let cluster = c.cluster.expect("cluster mode");
    assert!(c.broker.cluster);
    assert_eq!(cluster.node_id, "eu-1");
    assert_eq!(cluster.node_ttl, Duration::from_millis(9000));
    assert_eq!(cluster.redis_timeout, Duration::from_millis(700));
    assert_eq!(
        cluster.url,
        ClusterUrl::Cluster(vec![
            "redis://10.0.0.1:7000".into(),
            "redis://10.0.0.2:7000".into()
        ])
    );

    let single = ServerConfig::from_toml_str("development = true").expect("valid");
    assert!(single.cluster.is_none() && !single.broker.cluster);
    let defaults = ServerConfig::from_toml_str(
        "development = true\n[cluster]\nurl = \"redis://127.0.0.1:6379\"\n",
    )
    .expect("valid");
    let d = defaults.cluster.expect("cluster mode");
    assert_eq!(d.node_ttl, DEFAULT_NODE_TTL);
    assert!(d.node_id.starts_with("node-"), "{}", d.node_id);
}

#[test]
fn cluster_urls_hide_passwords() {
    let url = parse_cluster_url("redis://user:secret@10.0.0.1:6379/2").expect("valid");
    assert_eq!(url.redacted(), "redis://user:***@10.0.0.1:6379/2");
    let url = parse_cluster_url("redis+cluster://:pw@h1:7000,h2:7000").expect("valid");
    assert!(!url.redacted().contains("pw"), "{}", url.redacted());
}

#[test]
fn bad_cluster_sections_are_refused() {
    for (toml, says) in [
        ("[cluster]\nurl = \"http://x\"", "redis://host:port"),
        (
            "[cluster]\nurl = \"redis://h:1\"\nnode_id = \"a/b\"",
            "node id",
        ),
        (
            "[cluster]\nurl = \"redis://h:1\"\nnode_id = \"\"",
            "node id",
        ),
        (
            "[cluster]\nurl = \"redis://h:1\"\nnode_ttl_ms = 0",
            "node_ttl_ms",
        ),
        ("[cluster]\nurl = \"redis://h:1\"\nsurprise = 1", "surprise"),
    ] {
        let e = err(&format!("development = true\n{toml}")).to_string();
        assert!(e.contains(says), "{toml}: {e}");
    }
}
