//! One connection's way out: the [`Outbox`] the broker loop fills, the writer task that empties
//! it onto the socket, and the loop's [`WriterHandle`] to both.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use beckon_broker::OutFrame;
use beckon_proto::codec::LENGTH_PREFIX;
use beckon_transport::FrameTx;

/// A batch left with more room than this is dropped rather than kept for the next one.
const OUTBOX_KEEP: usize = 64;

/// The frames waiting for one connection's writer task.
///
/// A queue that costs nothing while empty (a channel would hold a block of slots for every
/// connection, idle or not), and that the writer empties a whole batch at a time. Its size is
/// bounded by a byte budget the broker loop enforces as it pushes
/// ([`WriterHandle::push_within`]).
#[derive(Default)]
struct Outbox {
    state: Mutex<OutboxState>,
    ready: Notify,
}

#[derive(Default)]
struct OutboxState {
    frames: VecDeque<OutFrame>,
    /// The broker loop is done with the connection: the writer flushes what is left and ends.
    closed: bool,
    /// The writer has ended (a write failed, or it was aborted): nothing more is taken.
    writer_gone: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // The lock is never held across anything that can panic; recover regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame; gives it back when the writer has ended.
    fn push(&self, frame: OutFrame) -> Result<(), OutFrame> {
        let mut st = self.lock();
        if st.writer_gone {
            return Err(frame);
        }
        let was_empty = st.frames.is_empty();
        st.frames.push_back(frame);
        drop(st);
        // A non-empty queue has a wake-up pending already, and the writer takes it all.
        if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Swaps the queued frames into `batch` (which must be empty), waiting for some; `false`
    /// once the outbox is closed and drained.
    async fn take(&self, batch: &mut VecDeque<OutFrame>) -> bool {
        loop {
            {
                let mut st = self.lock();
                if !st.frames.is_empty() {
                    std::mem::swap(&mut st.frames, batch);
                    return true;
                }
                if st.closed {
                    return false;
                }
            }
            // A notification between the check and this wait is kept as a permit.
            self.ready.notified().await;
        }
    }

    /// The writer has ended: refuse further frames and free the queued ones.
    fn writer_gone(&self) {
        let mut st = self.lock();
        st.writer_gone = true;
        st.frames = VecDeque::new();
    }
}

/// Spawns the writer task of a connection whose sending half is `tx`. Returns the broker
/// loop's handle to it, the task, and a receiver that resolves once the loop has let go of the
/// handle, whatever the reason.
pub(super) fn spawn_writer(
    tx: FrameTx,
) -> (
    WriterHandle,
    JoinHandle<io::Result<()>>,
    oneshot::Receiver<()>,
) {
    let outbox = Arc::new(Outbox::default());
    let queued = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(write_frames(outbox.clone(), tx, queued.clone()));
    let (close_signal, closed) = oneshot::channel();
    let handle = WriterHandle {
        outbox,
        queued,
        abort: task.abort_handle(),
        _close_signal: close_signal,
    };
    (handle, task, closed)
}

/// The broker loop's side of one connection's writer.
pub(crate) struct WriterHandle {
    outbox: Arc<Outbox>,
    /// Bytes handed to the writer and not yet written; the loop adds, the writer subtracts.
    queued: Arc<AtomicUsize>,
    /// Stops the writer at once, dropping what it holds (for slow consumers).
    abort: AbortHandle,
    /// Never sent: dropped with the loop's entry, it tells the connection task that the loop
    /// is done with the connection, whatever the reason.
    _close_signal: oneshot::Sender<()>,
}

impl WriterHandle {
    /// Queues a frame unless that takes the bytes queued and not yet written over `budget`;
    /// then the frame is dropped and the total it would have made is returned.
    pub(super) fn push_within(&self, frame: OutFrame, budget: usize) -> Result<(), usize> {
        let n = frame.len() + LENGTH_PREFIX;
        // Added before sending so the writer's subtraction can never underflow.
        let queued = self.queued.fetch_add(n, Ordering::Relaxed) + n;
        if queued > budget {
            return Err(queued);
        }
        if self.outbox.push(frame).is_err() {
            // The writer has stopped (write error); its connection task reports the disconnect.
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues a last frame before the connection closes, outside the budget: it is small and
    /// the connection is ending anyway.
    pub(super) fn push_unbudgeted(&self, frame: OutFrame) {
        let n = frame.len() + LENGTH_PREFIX;
        // Counted like any frame, or the writer's subtraction would wrap the counter.
        self.queued.fetch_add(n, Ordering::Relaxed);
        if self.outbox.push(frame).is_err() {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Stops the writer at once, dropping what is queued (for a slow consumer).
    pub(super) fn abort(&self) {
        self.abort.abort();
    }
}

impl Drop for WriterHandle {
    /// Whatever the reason the loop lets go of a connection, its writer flushes and ends.
    fn drop(&mut self) {
        self.outbox.close();
    }
}

/// Writes what the broker loop queues, a batch per flush, until the loop closes the outbox.
async fn write_frames(
    outbox: Arc<Outbox>,
    mut writer: FrameTx,
    queued: Arc<AtomicUsize>,
) -> io::Result<()> {
    /// Marks the outbox when the writer ends, however it ends (an error, or an abort).
    struct Gone(Arc<Outbox>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.writer_gone();
        }
    }
    let _gone = Gone(outbox.clone());
    let mut batch = VecDeque::new();
    while outbox.take(&mut batch).await {
        let mut written = 0;
        // The whole queue goes out in one flush: one syscall for many frames when it is deep.
        for frame in batch.drain(..) {
            written += frame.len() + LENGTH_PREFIX;
            writer.write_frame(&frame.head, &frame.body).await?;
        }
        writer.flush().await?;
        queued.fetch_sub(written, Ordering::Relaxed);
        if batch.capacity() > OUTBOX_KEEP {
            batch = VecDeque::new();
        }
    }
    writer.shutdown().await
}
