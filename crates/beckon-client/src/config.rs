//! The client's tunables and the defaults the seeds fix.

use std::time::Duration;

/// The SDK version `getSdkVersion` reports (`1MMmmppbbb`): Beckon 0.1.0, build 0.
pub const SDK_VERSION: u32 = beckon_proto::sdk_version_number(0, 1, 0, 0);

/// Login defaults of the Rust and C++ SDKs (SPEC §5).
pub const DEFAULT_RETRY_TIME_S: i32 = 30;
pub const DEFAULT_RETRY_COUNT: i32 = 3;

/// Tunables of the client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Seeds the generator of message ids and reconnect jitter.
    pub seed: u64,
    /// How long an event may wait before it is acknowledged.
    pub ack_delay: Duration,
    /// Acknowledge at once when this many events are unacknowledged.
    pub ack_every: u64,
    /// How long connecting plus logging in may take before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// The first reconnect after a lost connection waits a random time up to this, so the
    /// clients of a server that went away do not all come back in the same instant.
    pub first_attempt_jitter: Duration,
    /// Back-off before the second attempt; doubles per attempt, with jitter, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Server message ids remembered to drop re-deliveries.
    pub dedup_window: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            seed: 0x5EED,
            ack_delay: Duration::from_millis(20),
            ack_every: 32,
            connect_timeout: Duration::from_secs(10),
            first_attempt_jitter: Duration::from_millis(500),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            dedup_window: 4096,
        }
    }
}
