//! A session and its event stream: what the broker keeps for one logged-in client instance,
//! across connections.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon_token::Privileges;

use crate::ConnId;
use crate::config::AppConfig;
use crate::frame::OutFrame;
use crate::store::StoredMessage;

/// A count of events in the current one-second window.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    start: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// Counts one event if fewer than `limit` happened in the current second.
    pub(crate) fn allow(&mut self, now: Instant, limit: u32) -> bool {
        if self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            self.start = Some(now);
            self.count = 0;
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }
}

#[derive(Debug)]
struct Retained {
    seq: u64,
    frame: OutFrame,
    /// A p2p message goes back to the offline store if its session ends before the ack.
    message: Option<StoredMessage>,
}

/// The events of a session in sequence, with those the client has not acknowledged.
///
/// Invariant: `unacked` holds increasing sequence numbers below `next_seq`, and `unacked_bytes`
/// is the sum of their frames' lengths.
#[derive(Debug)]
pub(crate) struct EventStream {
    next_seq: u64,
    unacked: VecDeque<Retained>,
    unacked_bytes: usize,
}

impl Default for EventStream {
    fn default() -> Self {
        Self {
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
        }
    }
}

impl EventStream {
    /// The sequence number the next event gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes the next sequence number for an event about to be framed.
    pub(crate) fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Keeps an event (numbered by [`take_seq`](Self::take_seq)) until it is acknowledged.
    pub(crate) fn retain(&mut self, seq: u64, frame: OutFrame, message: Option<StoredMessage>) {
        self.unacked_bytes += frame.len();
        self.unacked.push_back(Retained {
            seq,
            frame,
            message,
        });
    }

    /// Forgets every event up to `up_to`, which the client has.
    pub(crate) fn ack(&mut self, up_to: u64) {
        while self.unacked.front().is_some_and(|r| r.seq <= up_to) {
            if let Some(r) = self.unacked.pop_front() {
                self.unacked_bytes -= r.frame.len();
            }
        }
    }

    /// Events the client has not acknowledged yet.
    pub(crate) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Whether the unacknowledged events reach `events` in number or `bytes` in size.
    pub(crate) fn holds_at_least(&self, events: usize, bytes: usize) -> bool {
        self.unacked.len() >= events || self.unacked_bytes >= bytes
    }

    /// Whether the unacknowledged events exceed `events` in number or `bytes` in size.
    pub(crate) fn holds_more_than(&self, events: usize, bytes: usize) -> bool {
        self.unacked.len() > events || self.unacked_bytes > bytes
    }

    /// The unacknowledged events, to replay on a resumed connection.
    pub(crate) fn replay(&self) -> Vec<OutFrame> {
        self.unacked.iter().map(|r| r.frame.clone()).collect()
    }

    /// The p2p messages among the unacknowledged events, oldest first.
    pub(crate) fn into_messages(self) -> impl Iterator<Item = StoredMessage> {
        self.unacked.into_iter().filter_map(|r| r.message)
    }
}

/// One logged-in client instance of an account.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) app: Arc<AppConfig>,
    pub(crate) account: Arc<str>,
    /// The connection, or `None` while the session waits in grace for a resume.
    pub(crate) conn: Option<ConnId>,
    pub(crate) secret: Vec<u8>,
    pub(crate) grace_until: Option<Instant>,
    pub(crate) privileges: Privileges,
    pub(crate) events: EventStream,
    pub(crate) last_applied_request: u64,
    /// The logout reply was sent (its sequence number); the session ends when the client
    /// acknowledges it.
    pub(crate) logging_out: Option<u64>,
    /// Channels joined, oldest first.
    pub(crate) channels: Vec<Arc<str>>,
    pub(crate) channel_messages: RateWindow,
    /// (event seq, call) of invitations delivered to this session and not yet acknowledged.
    pub(crate) receipts: Vec<(u64, u64)>,
    /// Stored messages are still waiting in the store for room in this session.
    pub(crate) backlog: bool,
}

impl Session {
    pub(crate) fn new(
        app: Arc<AppConfig>,
        account: Arc<str>,
        conn: ConnId,
        secret: Vec<u8>,
        privileges: Privileges,
    ) -> Self {
        Self {
            app,
            account,
            conn: Some(conn),
            secret,
            grace_until: None,
            privileges,
            events: EventStream::default(),
            last_applied_request: 0,
            logging_out: None,
            channels: Vec::new(),
            channel_messages: RateWindow::default(),
            receipts: Vec::new(),
            backlog: false,
        }
    }

    /// Whether the session logged in with the server privilege (SPEC §10).
    pub(crate) fn privileged(&self) -> bool {
        self.privileges.contains(Privileges::SERVER)
    }

    /// Takes the receipts of invitations up to `up_to` (their calls, in order).
    pub(crate) fn take_receipts(&mut self, up_to: u64) -> Vec<u64> {
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.receipts)
            .into_iter()
            .partition(|(seq, _)| *seq <= up_to);
        self.receipts = rest;
        done.into_iter().map(|(_, call)| call).collect()
    }

    /// Drops the receipt of `call`; returns whether it was pending.
    pub(crate) fn drop_receipt(&mut self, call: u64) -> bool {
        let before = self.receipts.len();
        self.receipts.retain(|(_, c)| *c != call);
        self.receipts.len() < before
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(n: usize) -> OutFrame {
        OutFrame::whole(Bytes::from(vec![0; n]))
    }

    #[test]
    fn the_stream_counts_what_it_retains() {
        let mut s = EventStream::default();
        for n in [10, 20, 30] {
            let seq = s.take_seq();
            s.retain(seq, frame(n), None);
        }
        assert_eq!(s.next_seq(), 4);
        assert!(s.holds_at_least(3, usize::MAX) && !s.holds_more_than(3, 60));
        assert!(s.holds_more_than(3, 59));
        s.ack(2);
        assert_eq!(s.replay(), [frame(30)]);
        assert!(!s.holds_at_least(2, 31) && s.holds_at_least(2, 30));
        s.ack(u64::MAX);
        assert!(s.replay().is_empty() && !s.holds_more_than(0, 0));
    }

    #[test]
    fn rate_windows_reset_every_second() {
        let (mut w, t) = (RateWindow::default(), Instant::now());
        assert!(w.allow(t, 2) && w.allow(t, 2) && !w.allow(t, 2));
        assert!(w.allow(t + Duration::from_secs(1), 2));
    }
}
