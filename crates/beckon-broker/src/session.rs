//! A session and its event stream: what the broker keeps for one logged-in client instance,
//! across connections.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon_token::Privileges;

use crate::ConnId;
use crate::config::AppConfig;
use crate::frame::OutFrame;

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
    /// The store position of a p2p message: its record is deleted when the client
    /// acknowledges it, and stays in the store for the account's next session otherwise.
    record: Option<u64>,
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
    pub(crate) fn retain(&mut self, seq: u64, frame: OutFrame, record: Option<u64>) {
        self.unacked_bytes += frame.len();
        self.unacked.push_back(Retained { seq, frame, record });
    }

    /// Forgets every event up to `up_to`, which the client has; adds the store positions of
    /// the p2p messages among them to `records`.
    pub(crate) fn ack(&mut self, up_to: u64, records: &mut Vec<u64>) {
        while self.unacked.front().is_some_and(|r| r.seq <= up_to) {
            if let Some(r) = self.unacked.pop_front() {
                self.unacked_bytes -= r.frame.len();
                records.extend(r.record);
            }
        }
    }

    /// The store positions of the p2p messages the client has not acknowledged.
    pub(crate) fn records(&self) -> std::collections::HashSet<u64> {
        self.unacked.iter().filter_map(|r| r.record).collect()
    }

    /// The number and bytes of unacknowledged events.
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.unacked.len(), self.unacked_bytes)
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
}

/// Where a session stands in its account's queue of stored messages (positions, see
/// [`StoreOp`](crate::StoreOp)).
///
/// Every p2p message for the account is in the store until the client acknowledges it. The
/// session is handed them in position order: directly as they are accepted while it is caught
/// up (and has room), otherwise by reads of the store in portions. So a session that falls
/// behind — at login, or by holding too much unacknowledged — never overtakes its own backlog.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// The first position accepted after the session began: messages before it were stored
    /// while the account was offline (or held by an earlier session).
    pub(crate) since: u64,
    /// Every message up to this position was handed to the session, or is not in the store.
    pub(crate) cursor: u64,
    /// The highest position accepted for the account while the session exists (0: none).
    pub(crate) tail: u64,
    /// The store may hold messages after `cursor` that the session does not know of: set at
    /// login, until a read finds the end of the queue.
    pub(crate) behind: bool,
    /// A read of the store is under way.
    pub(crate) reading: bool,
    /// A read failed: the rest waits in the store for the account's next session (in a
    /// cluster, for the next notice of stored messages, which reads the queue again).
    pub(crate) failed: bool,
    /// Another node of a cluster stored messages for the account: the whole queue is read
    /// again (a rescan) once no read is under way. Another node's positions come from its own
    /// block, so they may lie below `cursor`.
    pub(crate) rescan_pending: bool,
    /// A rescan under way, to continue after this position.
    pub(crate) rescan: Option<u64>,
    /// Positions acknowledged while a read was under way: that read may still return them
    /// (their deletion follows it), and they must not be handed over again.
    pub(crate) acked_during_read: Vec<u64>,
}

impl Inbox {
    pub(crate) fn new(since: u64) -> Self {
        Self {
            since,
            cursor: 0,
            tail: 0,
            behind: true,
            reading: false,
            failed: false,
            rescan_pending: false,
            rescan: None,
            acked_during_read: Vec::new(),
        }
    }

    /// Whether every message accepted for the account has been handed to the session.
    pub(crate) fn caught_up(&self) -> bool {
        !self.behind && !self.reading && self.tail <= self.cursor
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
    /// The session's place in its account's stored messages.
    pub(crate) inbox: Inbox,
    /// The account's `_conn_timeout`, once read (at login, and as the session sets it).
    pub(crate) conn_timeout: Option<String>,
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
            inbox: Inbox::new(0),
            conn_timeout: None,
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
            s.retain(seq, frame(n), (n != 20).then_some(n as u64));
        }
        assert_eq!(s.next_seq(), 4);
        assert!(s.holds_at_least(3, usize::MAX) && !s.holds_more_than(3, 60));
        assert!(s.holds_more_than(3, 59));
        let mut records = Vec::new();
        s.ack(2, &mut records);
        assert_eq!(s.replay(), [frame(30)]);
        assert!(!s.holds_at_least(2, 31) && s.holds_at_least(2, 30));
        assert_eq!(records, [10], "the positions of the messages acknowledged");
        s.ack(u64::MAX, &mut records);
        assert_eq!(records, [10, 30]);
        assert!(s.replay().is_empty() && !s.holds_more_than(0, 0));
    }

    #[test]
    fn rate_windows_reset_every_second() {
        let (mut w, t) = (RateWindow::default(), Instant::now());
        assert!(w.allow(t, 2) && w.allow(t, 2) && !w.allow(t, 2));
        assert!(w.allow(t + Duration::from_secs(1), 2));
    }
}
