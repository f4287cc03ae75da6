//! The Beckon signaling server: the tokio runtime that drives the sans-IO broker core.
//!
//! A [`Server`] accepts connections on any number of listeners — TCP, TLS over TCP, QUIC,
//! WebSocket and WebSocket over TLS, each chosen by a URL (see `beckon_transport`) — feeds
//! their frames to one [`beckon_broker::Broker`] owned by a single task, and writes what the
//! broker answers. It enforces what the core cannot see: the maximum
//! frame size, a per-connection outbound byte budget (a peer that does not read is disconnected
//! as a slow consumer), and a clean shutdown that tells every client to reconnect later. It
//! opens the broker's store ([`Storage`]): in memory, or durable in a data directory with
//! `beckon_store::RedbStore`. The `beckon-server` binary wraps this library with a command
//! line, a TOML config ([`ServerConfig::load`]) and signal handling.
//!
//! It is not the protocol logic (sessions, presence, messages, tokens are the broker's), and
//! not cluster mode: one process. No feature code knows which transport a connection came in
//! on; a session logged in over QUIC messages one on WebSocket like any other. Sessions and
//! channels live in memory; user attributes and offline messages live in the store.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use beckon_server::{Server, ServerConfig};
//!
//! let mut config = ServerConfig::development(); // any App ID, no token checks: tests only
//! config.listen = vec!["tcp://127.0.0.1:0".parse().unwrap()];
//! let server = Server::spawn(config).await?;
//! println!("serving on {}", server.local_addr());
//! println!("{:?}", server.stats().await);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Configuration file
//!
//! ```toml
//! listen = ["tcp://127.0.0.1:7400", "quic://127.0.0.1:7400", "ws://127.0.0.1:7401/ws"]
//!                                  # optional, this is the default; one URL or a list of
//!                                  #   tcp://, tls://, quic://, ws://…/path, wss://…/path
//! tls_cert = "/etc/beckon/cert.pem" # optional, with tls_key: PEM chain and key for tls, quic
//! tls_key = "/etc/beckon/key.pem"  #   and wss; without them a self-signed certificate is made
//! handshake_timeout_ms = 10000     # optional; TLS/QUIC/WebSocket handshakes must finish in it
//! heartbeat_interval_ms = 10000    # optional; a client silent for 3 intervals is lost
//! login_timeout_ms = 10000         # optional; a connection must log in within it
//! max_frame_bytes = 65536          # optional; a larger frame closes the connection
//! outbound_budget_bytes = 9437184  # optional; per-connection queue before "slow consumer"
//! development = false              # optional; true also serves unknown App IDs, unchecked
//! data_dir = "/var/lib/beckon"     # optional; the store is <data_dir>/beckon.redb; a relative
//!                                  #   path is relative to this file; default: the standard
//!                                  #   data directory ($XDG_DATA_HOME/beckon or
//!                                  #   $HOME/.local/share/beckon)
//! ephemeral = false                # optional; true keeps the store in memory (not with data_dir)
//!
//! [[apps]]
//! app_id = "myapp"
//! certificate = "5cfd2fd1755d40ecb72977518be15d3b"
//! allow_no_token = false           # optional; accept the `_no_need_token` token
//! max_name_chars = 128             # optional limits (SPEC §2), per app
//! max_user_attr_value_chars = 1024
//! max_channel_attr_value_chars = 8096
//! max_message_bytes = 8192
//! max_user_attrs = 256
//! max_channels_per_session = 1     # optional channel settings (SPEC §7), per app
//! channel_messages_per_user = 60   #   per second
//! channel_messages_per_channel = 200
//! max_notified_members = 512       #   larger channels send no join/leave events
//! channel_ttl_s = 7200             #   an empty channel's life without `_channel_ttl`
//! max_channel_attrs = 256
//! offline_messages = true          # optional offline p2p messages (SPEC §6)
//! offline_max_per_account = 100
//! offline_ttl_s = 3600
//! ```
//!
//! Unknown keys are errors, and so are zero counts or durations, an empty certificate, an
//! App ID no client could log in with, and a file with no app unless `development` is on.

mod admin;
mod cluster;
mod config;
mod metrics;
mod reload;
mod server;
mod store;
mod web;

pub use admin::ROUTES as ADMIN_ROUTES;
pub use beckon_transport::{Endpoint, Scheme, ServerTls};
pub use config::{
    ClusterConfig, ClusterUrl, DEFAULT_NODE_TTL, DEFAULT_REDIS_TIMEOUT, check_node_id,
    parse_cluster_url,
};
pub use config::{
    ConfigError, DEFAULT_ADMIN, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_LISTEN, DEFAULT_OUTBOUND_BUDGET,
    STORE_FILE, ServerConfig, Storage, default_listen, load_tls, parse_admin, parse_listen,
};
pub use reload::Reloader;
pub use server::{Server, ServerHandle};
pub use web::web_files;
