//! The connection as the client sees it: opening and closing it, the connect deadline,
//! reconnect attempts with back-off and jitter, and heartbeats. What an attempt is *for* (a
//! login, a resume) and when to give up are the session's business (`session.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::ClientConfig;
use crate::ids::Rng;

/// The longest a server's retry-after is taken at its word: a longer hint (a server's own
/// maximum is a minute by default) is cut to this, so no reply can park a client for days.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(300);

/// The most jitter added to a server's retry-after (at most a sixteenth of it).
const MAX_WAIT_JITTER: Duration = Duration::from_millis(250);

/// What the client asks its driver to do with the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// Open a connection to the server, then call `handle_connected` (or `handle_disconnected`
    /// if it fails).
    Open,
    /// Flush pending transmits, then close the connection. Do not report it back.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LinkState {
    /// No connection.
    Idle,
    /// `Open` was issued; waiting for `handle_connected`.
    Connecting,
    /// The login frame was sent; waiting for the answer.
    Handshaking,
    /// Logged in on this connection.
    Ready,
}

/// What the heartbeat timer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Heartbeat {
    /// Three heartbeats passed without a word from the server.
    Lost,
    /// Nothing was sent for a heartbeat: send a ping.
    Ping,
}

#[derive(Debug)]
pub(super) struct Link {
    pub(super) state: LinkState,
    /// Connecting plus logging in must be done by then.
    deadline: Option<Instant>,
    /// When the next connection attempt starts.
    retry_at: Option<Instant>,
    /// The attempt under way, from 1; 0 when not (re)connecting.
    attempt: u32,
    /// When the first attempt of this series started.
    retry_started: Option<Instant>,
    last_tx: Instant,
    last_rx: Instant,
    rng: Rng,
    commands: VecDeque<ConnectionCommand>,
}

impl Link {
    pub(super) fn new(seed: u64, now: Instant) -> Self {
        Self {
            state: LinkState::Idle,
            deadline: None,
            retry_at: None,
            attempt: 0,
            retry_started: None,
            last_tx: now,
            last_rx: now,
            rng: Rng::new(seed ^ 0xD1B5_4A32_D192_ED03),
            commands: VecDeque::new(),
        }
    }

    pub(super) fn is(&self, state: LinkState) -> bool {
        self.state == state
    }

    /// Asks the driver for a connection that must be logged in within `timeout`.
    pub(super) fn open(&mut self, now: Instant, timeout: Duration) {
        self.state = LinkState::Connecting;
        self.deadline = Some(now + timeout);
        self.commands.push_back(ConnectionCommand::Open);
    }

    /// Asks the driver to close the connection, if there is one.
    pub(super) fn close(&mut self) {
        if self.state != LinkState::Idle {
            self.commands.push_back(ConnectionCommand::Close);
        }
        self.state = LinkState::Idle;
        self.deadline = None;
    }

    /// The driver reports the connection gone; false if there was none.
    pub(super) fn disconnected(&mut self) -> bool {
        if self.state == LinkState::Idle {
            return false;
        }
        self.state = LinkState::Idle;
        self.deadline = None;
        true
    }

    /// The driver reports the connection up; false if none was asked for.
    pub(super) fn connected(&mut self, now: Instant) -> bool {
        if self.state != LinkState::Connecting {
            return false;
        }
        self.state = LinkState::Handshaking;
        self.last_rx = now;
        true
    }

    /// The server accepted the login: the series of attempts is over.
    pub(super) fn ready(&mut self) {
        self.state = LinkState::Ready;
        self.deadline = None;
        self.attempt = 0;
        self.retry_started = None;
    }

    pub(super) fn sent(&mut self, now: Instant) {
        self.last_tx = now;
    }

    pub(super) fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    // ---- attempts -----------------------------------------------------------------------------

    /// A login starts its first attempt now.
    pub(super) fn first_attempt(&mut self, now: Instant, timeout: Duration) {
        self.attempt = 1;
        self.retry_started = Some(now);
        self.open(now, timeout);
    }

    /// A logged-in connection was lost: the first reconnect waits a random time up to the
    /// jitter, so the clients of a server that went away do not all come back at once.
    pub(super) fn first_reconnect(&mut self, now: Instant, jitter: Duration) {
        self.attempt = 1;
        self.retry_started = Some(now);
        let jitter = u64::try_from(jitter.as_micros()).unwrap_or(0);
        let wait = if jitter == 0 {
            0
        } else {
            self.rng.next_u64() % jitter
        };
        self.retry_at = Some(now + Duration::from_micros(wait));
    }

    /// The attempt under way failed: schedules the next one and returns its number, or `None`
    /// when `retry_count` attempts were made or `retry_time` has passed.
    pub(super) fn next_attempt(
        &mut self,
        now: Instant,
        retry_count: u32,
        retry_time: Duration,
        config: &ClientConfig,
    ) -> Option<u32> {
        let started = self.retry_started.unwrap_or(now);
        let out_of_time = now.saturating_duration_since(started) >= retry_time;
        if self.attempt >= retry_count || out_of_time {
            return None;
        }
        self.attempt += 1;
        let delay = self.backoff(self.attempt - 2, config);
        self.retry_at = Some(now + delay);
        Some(self.attempt)
    }

    /// The server refused the attempt for load and asked for `wait` (admission control, SPEC
    /// §10): the same attempt starts again after the wait, plus a little jitter, and neither
    /// the wait nor the refusal counts against the login's attempts or its time. The server
    /// tells each refused client its own time, so a crowd comes back as a ramp.
    pub(super) fn wait_for_server(&mut self, now: Instant, wait: Duration) {
        let wait = wait.min(MAX_SERVER_WAIT);
        let spread = u64::try_from((wait / 16).min(MAX_WAIT_JITTER).as_micros()).unwrap_or(0);
        let jitter = Duration::from_micros(if spread == 0 {
            0
        } else {
            self.rng.next_u64() % spread
        });
        self.retry_at = Some(now + wait + jitter);
        if let Some(started) = self.retry_started.as_mut() {
            *started += wait + jitter;
        }
    }

    /// The next attempt starts no sooner than `at` (the server asked for the wait).
    pub(super) fn not_before(&mut self, at: Instant) {
        if let Some(t) = self.retry_at.as_mut() {
            *t = (*t).max(at);
        }
    }

    /// No more attempts: the session is over.
    pub(super) fn stop(&mut self) {
        self.retry_at = None;
        self.deadline = None;
        self.attempt = 0;
        self.retry_started = None;
    }

    /// Exponential back-off with full jitter in its upper half, so many clients of one
    /// restarted server spread their reconnects.
    fn backoff(&mut self, attempt: u32, config: &ClientConfig) -> Duration {
        let base = config
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(config.max_backoff);
        let half = base / 2;
        let jitter = self.rng.next_u64() % (u64::try_from(half.as_micros()).unwrap_or(1).max(1));
        half + Duration::from_micros(jitter)
    }

    // ---- timers -------------------------------------------------------------------------------

    /// Whether the next attempt is due (it is then taken: the caller opens).
    pub(super) fn retry_due(&mut self, now: Instant) -> bool {
        let due = self.retry_at.is_some_and(|t| t <= now);
        if due {
            self.retry_at = None;
        }
        due
    }

    /// Whether connecting plus logging in took too long.
    pub(super) fn deadline_passed(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|t| t <= now)
    }

    /// What the heartbeat `hb` of a ready connection asks for now, if anything.
    pub(super) fn heartbeat(&self, now: Instant, hb: Duration) -> Option<Heartbeat> {
        if now.saturating_duration_since(self.last_rx) >= hb * 3 {
            Some(Heartbeat::Lost)
        } else if now.saturating_duration_since(self.last_tx) >= hb {
            Some(Heartbeat::Ping)
        } else {
            None
        }
    }

    /// The link's next wake-up: an attempt, the connect deadline, or (ready, with heartbeat
    /// `hb`) the next ping or the silence limit.
    pub(super) fn poll_timeout(&self, hb: Option<Duration>) -> Option<Instant> {
        let hb_at = hb
            .filter(|_| self.state == LinkState::Ready)
            .map(|hb| (self.last_tx + hb).min(self.last_rx + hb * 3));
        [self.retry_at, self.deadline, hb_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn poll_command(&mut self) -> Option<ConnectionCommand> {
        self.commands.pop_front()
    }
}
