//! Requests sent or queued that have no reply yet. The queue knows ids, whether a request went
//! out, and how to send again after a reconnect; what a request is *for* — its frame, and what
//! its reply or failure reports — is its [`Pending`], which describes itself (`api/pending.rs`).

use std::collections::VecDeque;

use beckon_proto::CallError;
use beckon_proto::pb;

use super::api::Pending;

/// Why a request failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The client refused the call before queueing it (a bad argument, not logged in).
    Refused(CallError),
    /// The server answered with an error; `ecode` is the code as sent, which may be one this
    /// client does not know (`error` then says `General`).
    Answered { ecode: i32, error: CallError },
    /// No answer will come: the connection or the session ended first, or the reply was
    /// malformed.
    Unanswered(&'static str),
}

#[derive(Debug)]
pub(super) struct PendingRequest {
    id: u64,
    pub(super) pending: Pending,
    /// Whether it was sent on some connection (and may have been applied).
    sent: bool,
}

impl PendingRequest {
    fn frame(&mut self) -> pb::Request {
        self.sent = true;
        pb::Request {
            id: self.id,
            op: Some(self.pending.op()),
        }
    }
}

/// The queue of requests awaiting their reply, oldest first, with per-session increasing ids.
#[derive(Debug)]
pub(super) struct Requests {
    next_id: u64,
    queue: VecDeque<PendingRequest>,
}

impl Requests {
    pub(super) fn new() -> Self {
        Self {
            next_id: 1,
            queue: VecDeque::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues a request; returns its frame when `send_now` (the link is ready).
    pub(super) fn push(&mut self, pending: Pending, send_now: bool) -> Option<pb::Request> {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(PendingRequest {
            id,
            pending,
            sent: false,
        });
        let last = self.queue.back_mut()?;
        send_now.then(|| last.frame())
    }

    /// The request with this id, taken off the queue.
    pub(super) fn take(&mut self, id: u64) -> Option<Pending> {
        let pos = self.queue.iter().position(|p| p.id == id)?;
        self.queue.remove(pos).map(|p| p.pending)
    }

    /// A session was resumed: the frames of the requests the server has not applied, in order.
    /// (Those it applied have their replies among the replayed events.)
    pub(super) fn resend_unapplied(&mut self, last_applied: u64) -> Vec<pb::Request> {
        self.queue
            .iter_mut()
            .filter(|p| p.id > last_applied)
            .map(PendingRequest::frame)
            .collect()
    }

    /// The session is new or gone: ids start over. Returns what was queued; `requeue` puts a
    /// request that never went out back in line under a new id.
    pub(super) fn restart(&mut self) -> Vec<PendingRequest> {
        self.next_id = 1;
        std::mem::take(&mut self.queue).into()
    }

    /// Queues `p` again if it was never sent; gives it back if it was (it may have been
    /// applied, so it must fail rather than repeat).
    pub(super) fn requeue(&mut self, p: PendingRequest) -> Option<Pending> {
        if p.sent {
            return Some(p.pending);
        }
        self.push(p.pending, false);
        None
    }

    /// The frames of every queued request, all marked sent.
    pub(super) fn send_all(&mut self) -> Vec<pb::Request> {
        self.queue.iter_mut().map(PendingRequest::frame).collect()
    }
}
