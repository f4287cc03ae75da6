//! One connection's way out: the [`Outbox`] the broker loop fills and the connection task
//! empties onto the socket, and the loop's [`WriterHandle`] to it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use beckon_broker::OutFrame;
use beckon_proto::codec::LENGTH_PREFIX;

/// A batch left with more room than this is dropped rather than kept for the next one.
const OUTBOX_KEEP: usize = 64;

/// The frames waiting to be written to one connection.
///
/// A queue that costs nothing while empty (a channel would hold a block of slots for every
/// connection, idle or not), and that the connection task empties a whole batch at a time. Its
/// size is bounded by a byte budget the broker loop enforces as it pushes
/// ([`WriterHandle::push_within`]).
#[derive(Default)]
pub(super) struct Outbox {
    state: Mutex<OutboxState>,
    /// Bytes handed to the connection and not yet written; the loop adds, the connection task
    /// subtracts.
    queued: AtomicUsize,
}

#[derive(Default)]
struct OutboxState {
    frames: VecDeque<OutFrame>,
    /// The broker loop is done with the connection: what is queued is flushed, then it ends.
    closed: bool,
    /// The broker loop dropped the connection as a slow consumer: it ends at once, dropping
    /// what is queued, even in the middle of a write.
    aborted: bool,
    /// The connection task has stopped writing (a write failed, or it ended): nothing more
    /// is taken.
    writer_gone: bool,
    /// The connection task, to wake when frames arrive in an empty queue or the connection
    /// ends. One task polls both [`Outbox::take`] and [`Outbox::ended`], so one waker serves
    /// both, and a future that stops waiting leaves nothing to unregister (a `Notify` would
    /// link and unlink a waiter on every turn of the task's loop).
    waker: Option<Waker>,
    /// How many frames the last batch taken held: the room a queue that starts again from
    /// nothing reserves at its first push, so a busy connection's queue is allocated once
    /// per batch instead of regrowing through every doubling.
    last_batch: u16,
}

impl OutboxState {
    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    fn take(&mut self, batch: &mut VecDeque<OutFrame>) -> Option<Taken> {
        if self.aborted {
            return Some(Taken::Aborted);
        }
        if !self.frames.is_empty() {
            std::mem::swap(&mut self.frames, batch);
            self.last_batch = batch.len().min(OUTBOX_KEEP) as u16;
            return Some(Taken::Frames);
        }
        self.closed.then_some(Taken::Closed)
    }

    fn register(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
    }
}

/// What [`Outbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Taken {
    /// Frames to write, swapped into the batch.
    Frames,
    /// The loop let go of the connection and everything queued was taken.
    Closed,
    /// The loop dropped the connection as a slow consumer.
    Aborted,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // The lock is never held across anything that can panic; recover regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame; gives it back when the connection no longer writes.
    fn push(&self, frame: OutFrame) -> Result<(), OutFrame> {
        let mut st = self.lock();
        if st.writer_gone || st.aborted {
            return Err(frame);
        }
        let was_empty = st.frames.is_empty();
        if st.frames.capacity() == 0 {
            let room = usize::from(st.last_batch);
            st.frames.reserve(room);
        }
        st.frames.push_back(frame);
        // A non-empty queue has a wake-up pending already, and the writer takes it all.
        if was_empty {
            st.wake();
        }
        Ok(())
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.wake();
    }

    fn abort(&self) {
        let mut st = self.lock();
        st.aborted = true;
        st.frames = VecDeque::new();
        st.wake();
    }

    /// Swaps the queued frames into `batch` (which must be empty), waiting for some, or for
    /// the end. Cancel-safe: nothing is taken unless it returns.
    pub(super) async fn take(&self, batch: &mut VecDeque<OutFrame>) -> Taken {
        std::future::poll_fn(|cx| self.poll_take(cx, batch)).await
    }

    /// What [`take`](Self::take) would return now, without waiting: `None` when it would wait.
    pub(super) fn try_take(&self, batch: &mut VecDeque<OutFrame>) -> Option<Taken> {
        self.lock().take(batch)
    }

    fn poll_take(&self, cx: &Context<'_>, batch: &mut VecDeque<OutFrame>) -> Poll<Taken> {
        // One lock for the check and the registration: a push in between would be missed.
        let mut st = self.lock();
        if let Some(taken) = st.take(batch) {
            return Poll::Ready(taken);
        }
        // About to wait, perhaps for a long time (most connections are idle): the room of
        // earlier batches goes back to the allocator meanwhile.
        if st.frames.capacity() > 0 {
            st.frames = VecDeque::new();
        }
        if batch.capacity() > 0 {
            *batch = VecDeque::new();
        }
        // Under the lock: a push after this wakes the task.
        st.register(cx);
        Poll::Pending
    }

    /// Appends to `batch` whatever was queued since [`take`](Self::take) filled it, unless the
    /// connection was dropped meanwhile.
    pub(super) fn take_more(&self, batch: &mut VecDeque<OutFrame>) {
        let mut st = self.lock();
        if !st.aborted {
            batch.append(&mut st.frames);
        }
    }

    /// Resolves once the loop has let go of the connection (`Closed`) or dropped it as a slow
    /// consumer (`Aborted`), whatever is still queued: for cutting a stalled write short.
    pub(super) async fn ended(&self) -> Taken {
        std::future::poll_fn(|cx| {
            let mut st = self.lock();
            if st.aborted {
                return Poll::Ready(Taken::Aborted);
            }
            if st.closed {
                return Poll::Ready(Taken::Closed);
            }
            st.register(cx);
            Poll::Pending
        })
        .await
    }

    /// `written` bytes of taken frames went out.
    pub(super) fn written(&self, written: usize, batch: &mut VecDeque<OutFrame>) {
        self.queued.fetch_sub(written, Ordering::Relaxed);
        if batch.capacity() > OUTBOX_KEEP {
            *batch = VecDeque::new();
        }
    }

    /// The connection no longer writes: refuse further frames and free the queued ones.
    pub(super) fn writer_gone(&self) {
        let mut st = self.lock();
        st.writer_gone = true;
        st.frames = VecDeque::new();
        // The task is ending: its waker would keep its memory alive as long as the loop
        // holds the outbox.
        st.waker = None;
    }
}

/// The broker loop's side of one connection's outbox.
pub(crate) struct WriterHandle {
    outbox: Arc<Outbox>,
}

impl WriterHandle {
    /// A handle to `outbox`; the connection task keeps the other reference.
    pub(super) fn new(outbox: Arc<Outbox>) -> Self {
        Self { outbox }
    }

    /// Queues a frame unless that takes the bytes queued and not yet written over `budget`;
    /// then the frame is dropped and the total it would have made is returned.
    pub(super) fn push_within(&self, frame: OutFrame, budget: usize) -> Result<(), usize> {
        let n = frame.len() + LENGTH_PREFIX;
        let queued = &self.outbox.queued;
        // Added before queueing so the writer's subtraction can never underflow.
        let total = queued.fetch_add(n, Ordering::Relaxed) + n;
        if total > budget {
            return Err(total);
        }
        if self.outbox.push(frame).is_err() {
            // The connection stopped writing (write error); its task reports the disconnect.
            queued.fetch_sub(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues a last frame before the connection closes, outside the budget: it is small and
    /// the connection is ending anyway.
    pub(super) fn push_unbudgeted(&self, frame: OutFrame) {
        let n = frame.len() + LENGTH_PREFIX;
        // Counted like any frame, or the writer's subtraction would wrap the counter.
        self.outbox.queued.fetch_add(n, Ordering::Relaxed);
        if self.outbox.push(frame).is_err() {
            self.outbox.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Ends the connection at once, dropping what is queued (for a slow consumer).
    pub(super) fn abort(&self) {
        self.outbox.abort();
    }
}

impl Drop for WriterHandle {
    /// Whatever the reason the loop lets go of a connection, what is queued is flushed and
    /// the connection ends.
    fn drop(&mut self) {
        self.outbox.close();
    }
}
