//! Broker configuration: the apps it serves and the session protocol's knobs.

use std::time::Duration;

use beckon_proto::Limits;
use beckon_token::Secret;

use crate::NameMap;

/// How offline p2p messages are kept (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflinePolicy {
    /// Off: a message to an offline account fails with `SENDMESSAGE_E_PEEROFFLINE`.
    pub enabled: bool,
    /// Messages stored per account; a message beyond it fails with `SENDMESSAGE_E_OTHER`.
    pub max_per_account: usize,
    /// How long a stored message waits; then it leaves the store, delivered or not.
    pub ttl: Duration,
    /// Messages one sender may have stored for offline accounts; a message beyond it fails
    /// with `SENDMESSAGE_E_OTHER`.
    pub max_per_sender: usize,
    /// Bytes of stored messages the app may hold (each message counts its body, its sender and
    /// recipient, and a fixed overhead of [`OFFLINE_MESSAGE_OVERHEAD`] bytes); a message beyond
    /// it fails with `SENDMESSAGE_E_OTHER`.
    pub max_bytes: usize,
}

/// What a stored message costs besides its body and names, in the app's store quota: its id,
/// time and bookkeeping.
pub const OFFLINE_MESSAGE_OVERHEAD: usize = 64;

impl Default for OfflinePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_account: 100,
            ttl: Duration::from_secs(3600),
            max_per_sender: 1_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One app (tenant).
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub app_id: String,
    /// The App Certificate that signs this app's tokens. `None` means tokens are not verified,
    /// which only the development mode uses.
    pub certificate: Option<Secret<Vec<u8>>>,
    /// Whether the token `_no_need_token` logs in without a check.
    pub allow_no_token: bool,
    /// Whether the legacy token format (`1:<appId>:<expireTs>:<md5>`, SPEC §10) is accepted
    /// besides SignalingTokens, for an app moving from an existing token server. Weak (no
    /// HMAC, replayable until it expires, no privileges): off unless the app asks.
    pub legacy_tokens: bool,
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
    /// Bytes of attribute names and values (UTF-8) one channel may hold, built-ins included;
    /// a write beyond it fails with `GENERAL_E_FAILED`. It keeps a join's answer within one
    /// event ([`BrokerConfig::max_event_bytes`]).
    pub max_channel_attr_bytes: usize,
    /// The longest an empty channel lives: a `_channel_ttl` above it counts as this.
    pub max_channel_ttl: Duration,
    /// Empty channels one account may leave behind (channels it was the last to leave, still
    /// waiting out their TTL); leaving one more ends the oldest of them at once.
    pub max_empty_channels_per_account: usize,
    /// Channels the app may hold, empty ones included. Creating one more ends the channel that
    /// has been empty longest; when none is empty, the join fails with `JOINCHANNEL_E_OTHER`.
    pub max_channels: usize,
    /// Invitations one session may have in progress (placed and not ended: waiting for the
    /// callee, ringing, or accepted); one more fails with `INVITE_E_OTHER`.
    pub max_invites_per_session: usize,
    /// Invitations the app may have in progress; one more fails with `INVITE_E_OTHER`.
    pub max_invites: usize,
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
            certificate: Some(Secret::new(certificate.into())),
            allow_no_token: false,
            legacy_tokens: false,
            limits: Limits::default(),
            offline: OfflinePolicy::default(),
            max_user_attrs: 256,
            max_channels_per_session: 1,
            channel_messages_per_user: 60,
            channel_messages_per_channel: 200,
            max_notified_members: 512,
            default_channel_ttl: Duration::from_secs(7200),
            max_channel_attrs: 256,
            max_channel_attr_bytes: 256 * 1024,
            max_channel_ttl: Duration::from_secs(24 * 3600),
            max_empty_channels_per_account: 64,
            max_channels: 100_000,
            max_invites_per_session: 100,
            max_invites: 10_000,
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
    configured: NameMap<String, AppConfig>,
    /// When set, any App ID that is not configured is served with this template: the
    /// zero-config development mode. Never use it in production.
    pub development: Option<AppConfig>,
}

impl Apps {
    /// The zero-config development mode: any App ID, any token, `_no_need_token` allowed.
    pub fn development() -> Self {
        Self {
            configured: NameMap::default(),
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

    /// The configured apps, in no particular order.
    pub fn configured(&self) -> impl Iterator<Item = &AppConfig> {
        self.configured.values()
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

/// Admission control (SPEC §10): how many logins the broker takes per second, for the whole
/// server and per source address, before it refuses them with `GENERAL_E_OVERLOAD` and a
/// retry-after hint. Each is a token bucket: `…_per_s` tokens a second, at most `…_burst` saved
/// up. Refused logins are told distinct times to come back, one token's interval apart, so a
/// crowd returns as a ramp rather than all at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Logins per second for the whole server.
    pub logins_per_s: u32,
    /// Logins the whole server takes at once after a quiet spell.
    pub login_burst: u32,
    /// Logins per second from one source address (IPv6: one /64).
    pub logins_per_address_per_s: u32,
    /// Logins one source address may make at once after a quiet spell.
    pub login_burst_per_address: u32,
    /// Whether loopback addresses get a bucket of their own. Off by default: a reverse proxy on
    /// the same host makes every client look like 127.0.0.1, and one bucket would throttle all
    /// of them together (the server-wide bucket still applies).
    pub limit_loopback: bool,
    /// The longest wait a refused login is told to take.
    pub max_retry_after: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            logins_per_s: 5_000,
            login_burst: 5_000,
            logins_per_address_per_s: 20,
            login_burst_per_address: 100,
            limit_loopback: false,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl AdmissionConfig {
    /// No admission control: every login is taken (for benchmarks and tests that log in
    /// thousands of clients in one instant).
    pub fn unlimited() -> Self {
        Self {
            logins_per_s: u32::MAX,
            login_burst: u32::MAX,
            logins_per_address_per_s: u32::MAX,
            login_burst_per_address: u32::MAX,
            ..Self::default()
        }
    }
}

/// The default of [`BrokerConfig::max_event_bytes`]: 2 MiB, a quarter of what a session may
/// hold unacknowledged.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 2 * 1024 * 1024;

/// The broker's configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub apps: Apps,
    /// Admission control of logins.
    pub admission: AdmissionConfig,
    /// The largest answer the broker puts in one event: a join's member list and attributes
    /// beyond it follow as separate attribute events, and a member list or attribute dump
    /// beyond it is refused with a code. Well below `max_unacked_bytes`, so one answer never
    /// ends a session.
    pub max_event_bytes: usize,
    /// How often clients ping; a connection silent for three intervals is declared lost.
    pub heartbeat_interval: Duration,
    /// How long a new connection may take to send its login.
    pub login_timeout: Duration,
    /// Events a session may hold unacknowledged before it is disconnected as a slow consumer.
    pub max_unacked_events: usize,
    /// Bytes a session may hold unacknowledged before it is disconnected as a slow consumer.
    pub max_unacked_bytes: usize,
    /// Secret that derives session resume secrets and message ids; random per server start.
    pub server_secret: Secret<[u8; 32]>,
    /// How long a disconnected session waits for a resume when the account has no
    /// `_conn_timeout` attribute (SPEC §5).
    pub default_grace: Duration,
    /// Bounds `_conn_timeout` is clamped to.
    pub min_grace: Duration,
    pub max_grace: Duration,
    /// Whether this broker is one node of a cluster (see `Broker::poll_cluster`): presence is
    /// claimed and queried cluster-wide through its driver, and what is not cluster-wide yet
    /// is refused with `GENERAL_E_FAILED` rather than served from this node's view alone. The
    /// store must be the one every node shares (user attributes are served from it).
    pub cluster: bool,
}

impl BrokerConfig {
    pub fn new(apps: Apps, server_secret: [u8; 32]) -> Self {
        Self {
            apps,
            admission: AdmissionConfig::default(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            heartbeat_interval: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            max_unacked_events: 16 * 1024,
            max_unacked_bytes: 8 * 1024 * 1024,
            server_secret: Secret::new(server_secret),
            default_grace: Duration::from_secs(120),
            min_grace: Duration::from_secs(20),
            max_grace: Duration::from_secs(120),
            cluster: false,
        }
    }
}
