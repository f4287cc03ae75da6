//! The server's configuration: the TOML file model (`ServerConfig::from_toml_str`) and the
//! listen URLs the file and the command line's `--listen` share (`parse_listen`).
//!
//! Asserts: any text is a configuration or a typed error with a message, never a panic; an
//! accepted configuration has at least one listener and no zero count, duration or size; every
//! listen URL accepted prints as a URL that parses back to the same endpoint. Each line of the
//! input is also tried as one `--listen` value list.
//!
//! A file naming `tls_cert` or `tls_key` makes the server read those files, so such inputs are
//! skipped: the fuzzer reads nothing from disk.

#![no_main]

use libfuzzer_sys::fuzz_target;

use beckon_server::{Endpoint, ServerConfig, parse_listen};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let urls: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Ok(endpoints) = parse_listen(&urls) {
        assert_eq!(endpoints.len(), urls.len());
        for e in &endpoints {
            round_trips(e);
        }
    }

    if let Ok(table) = toml::from_str::<toml::Table>(text)
        && (table.contains_key("tls_cert") || table.contains_key("tls_key"))
    {
        return;
    }
    match ServerConfig::from_toml_str(text) {
        Ok(config) => {
            assert!(!config.listen.is_empty());
            for e in &config.listen {
                round_trips(e);
            }
            assert!(config.max_frame > 0 && u32::try_from(config.max_frame).is_ok());
            assert!(config.outbound_budget_bytes > 0);
            assert!(!config.handshake_timeout.is_zero());
            assert!(!config.broker.heartbeat_interval.is_zero());
            assert!(!config.broker.login_timeout.is_zero());
            assert!(config.outbound_budget_floor() >= config.max_frame);
            let _ = format!("{config:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});

fn round_trips(e: &Endpoint) {
    let text = e.to_string();
    match text.parse::<Endpoint>() {
        Ok(back) => assert_eq!(&back, e, "{text} parses to another endpoint"),
        Err(err) => panic!("{e:?} prints as {text:?}, which does not parse: {err}"),
    }
}
