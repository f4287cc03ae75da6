//! A secret never prints: App Certificates, the server secret, the TLS private key, tokens and
//! resume secrets stay out of every `Debug` of the configuration and the server, and out of
//! the server's logs at the most verbose level.

mod common;

use std::process::Command;

use beckon_broker::AppConfig;
use beckon_server::{Server, ServerConfig};
use beckon_token::{Privileges, TokenClaims};

use common::Client;
use common::process::{BIN, ServerProcess, TempFile};

const APP: &str = "myapp";
const CERT: &str = "5cfd2fd1755d40ecb72977518be15d3b";

/// A configuration file with an app, its certificate and a TLS certificate and key, and the
/// texts that must never appear in what the server prints.
struct Fixture {
    config: TempFile,
    _cert: TempFile,
    _key: TempFile,
    /// The certificate as text and as bytes, and every line of the key's PEM body.
    secrets: Vec<String>,
}

fn fixture() -> Fixture {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key_pem = ck.signing_key.serialize_pem();
    let cert = TempFile::new("cert.pem", &ck.cert.pem());
    let key = TempFile::new("key.pem", &key_pem);
    let config = TempFile::new(
        "secrets.toml",
        &format!(
            "listen = [\"tcp://127.0.0.1:0\", \"tls://127.0.0.1:0\"]\nephemeral = true\n\
             tls_cert = {:?}\ntls_key = {:?}\n\
             [[apps]]\napp_id = \"{APP}\"\ncertificate = \"{CERT}\"\n",
            cert.path_str(),
            key.path_str(),
        ),
    );
    let mut secrets = vec![CERT.to_owned()];
    secrets.extend(renderings(CERT.as_bytes()));
    secrets.extend(
        key_pem
            .lines()
            .filter(|line| !line.starts_with("-----") && line.len() >= 16)
            .map(str::to_owned),
    );
    Fixture {
        config,
        _cert: cert,
        _key: key,
        secrets,
    }
}

/// The ways secret bytes could be printed: as `Debug` prints a byte array, and in hex.
fn renderings(secret: &[u8]) -> [String; 2] {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    [format!("{secret:?}"), hex]
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} prints a secret ({secret}): {text}"
        );
    }
}

/// Checks `value`'s `Debug`, plain and pretty.
fn assert_debug_clean(what: &str, value: &impl std::fmt::Debug, secrets: &[String]) {
    assert_clean(what, &format!("{value:?}"), secrets);
    assert_clean(what, &format!("{value:#?}"), secrets);
}

#[tokio::test]
async fn debug_of_a_config_or_a_server_never_holds_a_secret() {
    let f = fixture();
    let config = ServerConfig::load(&f.config.0).expect("a valid config");
    assert!(config.tls.is_some());
    let app = config.broker.apps.lookup(APP).unwrap();
    assert_eq!(
        app.certificate.as_ref().map(|c| c.expose().as_slice()),
        Some(CERT.as_bytes())
    );
    let mut secrets = f.secrets.clone();
    secrets.extend(renderings(config.broker.server_secret.expose()));
    assert!(format!("{config:?}").contains("ServerConfig"));
    assert_debug_clean("a config read from a file", &config, &secrets);

    // Built in code, with an app added to the public broker configuration.
    let mut built = ServerConfig::development();
    built.broker.apps.insert(AppConfig::new(APP, CERT));
    let mut built_secrets = f.secrets.clone();
    built_secrets.extend(renderings(built.broker.server_secret.expose()));
    assert_debug_clean("a config built in code", &built, &built_secrets);

    // A bound server prints its configuration, still without them.
    let server = Server::bind(config).await.expect("binds");
    assert_debug_clean("a bound server", &server, &secrets);
    let handle = Server::spawn(ServerConfig::load(&f.config.0).unwrap())
        .await
        .unwrap();
    assert_debug_clean("a running server", &handle, &f.secrets);
    handle.shutdown().await;
}

#[tokio::test]
async fn the_server_logs_no_secret_at_trace_level() {
    let f = fixture();
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", f.config.path_str()])
        .env("RUST_LOG", "trace");
    let mut server = ServerProcess::spawn_listening(cmd, 2);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |cert: &str| {
        let claims = TokenClaims {
            app_id: APP.into(),
            account: "alice".into(),
            issued_at: now,
            expires_at: now + 600,
            privileges: Privileges::NONE,
        };
        beckon_token::mint(cert.as_bytes(), &claims)
    };
    let (good, forged) = (token(CERT), token("not the certificate"));
    let mut client = Client::connect(server.addr).await;
    let ok = client.login_ok(APP, "alice", &good).await;
    client.ping_pong(1).await;
    let mut refused = Client::connect(server.addr).await;
    refused.login(APP, "alice", &forged).await;

    server.signal("TERM");
    drop((client, refused));
    let (status, log) = server.wait();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    let mut secrets = f.secrets.clone();
    secrets.extend([good, forged]);
    secrets.extend(renderings(&ok.resume_secret));
    assert_clean("the log", &log, &secrets);
}
