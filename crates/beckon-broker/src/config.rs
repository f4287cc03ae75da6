//! Broker configuration: the apps it serves and the session protocol's knobs.

use std::collections::HashMap;
use std::time::Duration;

use beckon_proto::Limits;

/// How offline p2p messages are kept (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflinePolicy {
    /// Off: a message to an offline account fails with `SENDMESSAGE_E_PEEROFFLINE`.
    pub enabled: bool,
    /// Messages stored per account; a message beyond it fails with `SENDMESSAGE_E_OTHER`.
    pub max_per_account: usize,
    /// How long a stored message waits; older ones are dropped at delivery time.
    pub ttl: Duration,
}

impl Default for OfflinePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_account: 100,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// One app (tenant).
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub app_id: String,
    /// The App Certificate that signs this app's tokens. `None` means tokens are not verified,
    /// which only the development mode uses.
    pub certificate: Option<Vec<u8>>,
    /// Whether the token `_no_need_token` logs in without a check.
    pub allow_no_token: bool,
    pub limits: Limits,
    pub offline: OfflinePolicy,
    /// User attributes an account may hold (besides built-ins).
    pub max_user_attrs: usize,
    /// Channels one session may be in; joining one more leaves the oldest (SPEC §7).
    pub max_channels_per_session: usize,
    /// Channel messages one user may send per second (`SENDMESSAGE_E_RATELIMIT` beyond).
    pub channel_messages_per_user: u32,
    /// Channel messages per channel per second, unless `_sendmsg_limit` says otherwise.
    pub channel_messages_per_channel: u32,
    /// Above this many members a channel stops sending join/leave events (SPEC §7).
    pub max_notified_members: usize,
    /// How long an empty channel and its attributes live without `_channel_ttl`.
    pub default_channel_ttl: Duration,
    /// Attributes one channel may hold.
    pub max_channel_attrs: usize,
    /// How long an invitation rings unanswered before it fails with `INVITE_E_TIMEOUT`.
    pub call_timeout: Duration,
    /// How long an invitation to an offline callee waits for it (`_require_peer_online` 0).
    pub peer_online_wait: Duration,
}

impl AppConfig {
    /// A production app: tokens signed with `certificate` are required.
    pub fn new(app_id: impl Into<String>, certificate: impl Into<Vec<u8>>) -> Self {
        Self {
            app_id: app_id.into(),
            certificate: Some(certificate.into()),
            allow_no_token: false,
            limits: Limits::default(),
            offline: OfflinePolicy::default(),
            max_user_attrs: 256,
            max_channels_per_session: 1,
            channel_messages_per_user: 60,
            channel_messages_per_channel: 200,
            max_notified_members: 512,
            default_channel_ttl: Duration::from_secs(7200),
            max_channel_attrs: 256,
            call_timeout: Duration::from_secs(60),
            peer_online_wait: Duration::from_secs(20),
        }
    }

    /// The development template: no certificate, `_no_need_token` allowed.
    pub fn development(app_id: impl Into<String>) -> Self {
        Self {
            certificate: None,
            allow_no_token: true,
            ..Self::new(app_id, Vec::new())
        }
    }
}

/// Which apps the broker serves.
#[derive(Clone, Debug, Default)]
pub struct Apps {
    configured: HashMap<String, AppConfig>,
    /// When set, any App ID that is not configured is served with this template: the
    /// zero-config development mode. Never use it in production.
    pub development: Option<AppConfig>,
}

impl Apps {
    /// The zero-config development mode: any App ID, any token, `_no_need_token` allowed.
    pub fn development() -> Self {
        Self {
            configured: HashMap::new(),
            development: Some(AppConfig::development("")),
        }
    }

    pub fn insert(&mut self, app: AppConfig) {
        self.configured.insert(app.app_id.clone(), app);
    }

    /// Whether `app_id` is one of the configured apps (not served by the template).
    pub fn is_configured(&self, app_id: &str) -> bool {
        self.configured.contains_key(app_id)
    }

    pub fn is_development(&self) -> bool {
        self.development.is_some()
    }

    /// The configuration for `app_id`, if the broker serves it.
    pub fn lookup(&self, app_id: &str) -> Option<AppConfig> {
        if let Some(app) = self.configured.get(app_id) {
            return Some(app.clone());
        }
        self.development.as_ref().map(|t| AppConfig {
            app_id: app_id.to_owned(),
            ..t.clone()
        })
    }
}

/// The broker's configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub apps: Apps,
    /// How often clients ping; a connection silent for three intervals is declared lost.
    pub heartbeat_interval: Duration,
    /// How long a new connection may take to send its login.
    pub login_timeout: Duration,
    /// Events a session may hold unacknowledged before it is disconnected as a slow consumer.
    pub max_unacked_events: usize,
    /// Bytes a session may hold unacknowledged before it is disconnected as a slow consumer.
    pub max_unacked_bytes: usize,
    /// Secret that derives session resume secrets and message ids; random per server start.
    pub server_secret: [u8; 32],
    /// How long a disconnected session waits for a resume when the account has no
    /// `_conn_timeout` attribute (SPEC §5).
    pub default_grace: Duration,
    /// Bounds `_conn_timeout` is clamped to.
    pub min_grace: Duration,
    pub max_grace: Duration,
}

impl BrokerConfig {
    pub fn new(apps: Apps, server_secret: [u8; 32]) -> Self {
        Self {
            apps,
            heartbeat_interval: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            max_unacked_events: 16 * 1024,
            max_unacked_bytes: 8 * 1024 * 1024,
            server_secret,
            default_grace: Duration::from_secs(120),
            min_grace: Duration::from_secs(20),
            max_grace: Duration::from_secs(120),
        }
    }
}
