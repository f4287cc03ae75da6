//! What every system's load shares: the control of senders (hold, flood, paced), the window
//! of outstanding messages, timestamped payloads, and the recording of deliveries and
//! latencies.
//!
//! A sender sends while it has fewer than its window of messages outstanding — sent but not yet
//! delivered to every receiver it targets — so a system is driven at its peak without queues
//! growing without bound. In paced mode it also keeps to a rate, and the
//! latency of each delivery is the time from the send call to the receiver's handling of it,
//! both in this process, read from a timestamp in the payload. Paced senders wake at most once
//! a millisecond each, at staggered points of the millisecond (see [`FineTimer`]), and send
//! what fell due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// Payload bytes of every p2p and fan-out message.
pub(crate) const PAYLOAD: usize = 256;
/// Digits of the timestamp at the start of a payload (nanoseconds since [`base`]).
const STAMP_DIGITS: usize = 20;
/// Messages one sender may send before it looks at its inputs again.
pub(crate) const BURST: u64 = 256;
/// How long setting up a shape (connecting, logging in, joining) may take.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Logins or connections set up at the same time.
pub(crate) const SETUP_CONCURRENCY: usize = 128;

/// A task of a load: runs until aborted, or fails with a reason.
pub(crate) type Tasks = JoinSet<Result<(), String>>;

/// What senders are asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// Send nothing.
    Hold,
    /// Send whenever the window has room.
    Flood,
    /// Send this many messages per second (each sender), within the window.
    Paced(f64),
    /// Send this many messages in all (each sender, counted from when the mode was set), as
    /// fast as the window allows: a fixed workload.
    Count(u64),
}

/// The instant payload timestamps count from.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos_since_base(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base()).as_nanos()).unwrap_or(u64::MAX)
}

/// A message body: the send time in ASCII digits, then filler. ASCII, so it is also a `str`
/// for Beckon's string messages.
#[derive(Debug)]
pub(crate) struct Payload([u8; PAYLOAD]);

impl Payload {
    pub(crate) fn new() -> Self {
        base();
        Self([b'x'; PAYLOAD])
    }

    /// Stamps the payload with the current time and returns it.
    pub(crate) fn stamp(&mut self) -> &[u8] {
        let mut t = nanos_since_base(Instant::now());
        for d in self.0[..STAMP_DIGITS].iter_mut().rev() {
            *d = b'0' + (t % 10) as u8;
            t /= 10;
        }
        &self.0
    }

    /// [`stamp`](Self::stamp) as a string.
    pub(crate) fn stamp_str(&mut self) -> &str {
        // Only ASCII digits and 'x' are ever written.
        std::str::from_utf8(self.stamp()).unwrap_or_default()
    }
}

/// The time since a payload was stamped, in nanoseconds, if it carries a stamp.
pub(crate) fn age_nanos(payload: &[u8], now: Instant) -> Option<u64> {
    let digits = payload.get(..STAMP_DIGITS)?;
    let mut t = 0u64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        t = t.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(nanos_since_base(now).saturating_sub(t))
}

/// Deliveries of one flow (a p2p pair, or a whole fan-out): receivers count them, the sender
/// reads them to know what is outstanding.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    delivered: AtomicU64,
    progress: Notify,
}

impl Flow {
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// Every delivery of a load, and the latencies of those made while recording.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    deliveries: AtomicU64,
    recording: AtomicBool,
    samples: Mutex<Vec<u64>>,
}

impl Recorder {
    pub(crate) fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    /// Starts keeping latencies (dropping any kept before).
    pub(crate) fn start_recording(&self) {
        if let Ok(mut s) = self.samples.lock() {
            s.clear();
        }
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Stops keeping latencies and returns them, in nanoseconds.
    pub(crate) fn stop_recording(&self) -> Vec<u64> {
        self.recording.store(false, Ordering::Relaxed);
        self.samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

/// A receiver's count of what it got since its last [`commit`](Self::commit): receivers
/// handle a batch of messages, then commit once.
#[derive(Debug)]
pub(crate) struct Tally {
    recorder: Arc<Recorder>,
    flow: Arc<Flow>,
    count: u64,
    latencies: Vec<u64>,
    recording: bool,
}

impl Tally {
    pub(crate) fn new(recorder: Arc<Recorder>, flow: Arc<Flow>) -> Self {
        Self {
            recorder,
            flow,
            count: 0,
            latencies: Vec::new(),
            recording: false,
        }
    }

    /// One message received now.
    pub(crate) fn add(&mut self, payload: &[u8]) {
        if self.count == 0 {
            self.recording = self.recorder.recording.load(Ordering::Relaxed);
        }
        self.count += 1;
        if self.recording
            && let Some(age) = age_nanos(payload, Instant::now())
        {
            self.latencies.push(age);
        }
    }

    /// Publishes the batch: to the recorder, and to the sender waiting on the flow.
    pub(crate) fn commit(&mut self) {
        if self.count == 0 {
            return;
        }
        self.recorder
            .deliveries
            .fetch_add(self.count, Ordering::Relaxed);
        if !self.latencies.is_empty()
            && let Ok(mut s) = self.recorder.samples.lock()
        {
            s.append(&mut self.latencies);
        }
        self.latencies.clear();
        self.flow.delivered.fetch_add(self.count, Ordering::Relaxed);
        self.flow.progress.notify_one();
        self.count = 0;
    }
}

/// How often a paced sender wakes up at most: each wake-up sends what fell due since the last,
/// so the system sees a steady trickle from every sender, not a message per timer tick.
const PACE_SLOT: Duration = Duration::from_millis(1);

/// Wakes tasks at given instants, to a few tens of microseconds (tokio's timer works in whole
/// milliseconds, which would make every paced sender fire in the same tick and turn a steady
/// load into one burst per millisecond). One thread, started on first use; it inherits the
/// load generator's core.
#[derive(Debug)]
struct FineTimer {
    queue: Mutex<BinaryHeap<Reverse<(Instant, u64)>>>,
    wakers: Mutex<HashMap<u64, Arc<Notify>>>,
    more: Condvar,
}

impl FineTimer {
    fn get() -> &'static FineTimer {
        static TIMER: OnceLock<&'static FineTimer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static FineTimer = Box::leak(Box::new(FineTimer {
                queue: Mutex::new(BinaryHeap::new()),
                wakers: Mutex::new(HashMap::new()),
                more: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || timer.run())
                .expect("a thread for the pacer");
            timer
        })
    }

    /// A new waker, and its id.
    fn register(&self) -> (u64, Arc<Notify>) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        if let Ok(mut w) = self.wakers.lock() {
            w.insert(id, notify.clone());
        }
        (id, notify)
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut w) = self.wakers.lock() {
            w.remove(&id);
        }
    }

    /// Asks for waker `id` to be notified at `at`.
    fn wake_at(&self, id: u64, at: Instant) {
        if let Ok(mut q) = self.queue.lock() {
            // The thread is woken only when it would otherwise sleep past `at`.
            let earliest = q.peek().is_none_or(|Reverse((first, _))| at < *first);
            q.push(Reverse((at, id)));
            if earliest {
                self.more.notify_one();
            }
        }
    }

    fn run(&self) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, id))) = q.peek().copied() {
                if at > now {
                    break;
                }
                q.pop();
                if let Some(n) = self.wakers.lock().ok().and_then(|w| w.get(&id).cloned()) {
                    n.notify_one();
                }
            }
            let wait = q
                .peek()
                .map(|Reverse((at, _))| at.saturating_duration_since(now));
            q = match wait {
                Some(d) => match self.more.wait_timeout(q, d) {
                    Ok((q, _)) => q,
                    Err(_) => return,
                },
                None => match self.more.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                },
            };
        }
    }
}

/// A sender's side of the control: its mode, its window, how much it sent.
#[derive(Debug)]
pub(crate) struct Gate {
    control: watch::Receiver<Mode>,
    mode: Mode,
    flow: Arc<Flow>,
    /// Deliveries that make one message delivered (the fan-out's member count).
    per_message: u64,
    window: u64,
    sent: u64,
    /// The window, not the pace or the mode, held the last quota back.
    window_bound: bool,
    /// Where pacing counts from: (when, messages sent by then).
    pace_from: (Instant, u64),
    /// Where in [`PACE_SLOT`] this sender wakes up, so senders take turns.
    phase: Duration,
    /// This sender's waker on the [`FineTimer`].
    waker: (u64, Arc<Notify>),
    /// The wake-up already asked of the [`FineTimer`], if it is still to come.
    asked: Option<Instant>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        FineTimer::get().unregister(self.waker.0);
    }
}

impl Gate {
    pub(crate) fn new(
        control: watch::Receiver<Mode>,
        flow: Arc<Flow>,
        per_message: u64,
        window: u64,
    ) -> Self {
        let mode = *control.borrow();
        let waker = FineTimer::get().register();
        // Golden-ratio steps spread any number of senders evenly over the slot.
        let phase = PACE_SLOT.mul_f64((waker.0 as f64 * 0.618_033_988_75).fract());
        Self {
            mode,
            control,
            flow,
            per_message: per_message.max(1),
            window,
            sent: 0,
            window_bound: false,
            pace_from: (Instant::now(), 0),
            phase,
            waker,
            asked: None,
        }
    }

    /// Messages delivered to all their receivers so far.
    pub(crate) fn delivered(&self) -> u64 {
        self.flow.delivered() / self.per_message
    }

    /// How many messages may be sent now, given that `confirmed` of them are done (delivered,
    /// and acknowledged where the system acknowledges); at most [`BURST`].
    pub(crate) fn quota(&mut self, confirmed: u64) -> u64 {
        // `changed` may have marked the news seen already: compare values, not versions.
        let mode = *self.control.borrow_and_update();
        if mode != self.mode {
            self.mode = mode;
            self.pace_from = (Instant::now(), self.sent);
        }
        let room = self
            .window
            .saturating_sub(self.sent.saturating_sub(confirmed));
        let wanted = match self.mode {
            Mode::Hold => 0,
            Mode::Flood => u64::MAX,
            Mode::Count(n) => (self.pace_from.1 + n).saturating_sub(self.sent),
            Mode::Paced(rate) => {
                let elapsed = self.pace_from.0.elapsed().as_secs_f64();
                let due = self.pace_from.1 + (elapsed * rate) as u64;
                due.saturating_sub(self.sent)
            }
        };
        self.window_bound = wanted > room;
        wanted.min(room).min(BURST)
    }

    pub(crate) fn sent(&mut self, n: u64) {
        self.sent += n;
    }

    /// When a paced sender should next wake: when its next message is due, but not before its
    /// next turn in the slot.
    fn next_wake(&self, rate: f64) -> Instant {
        let (from, sent_then) = self.pace_from;
        let n = self.sent + 1 - sent_then;
        let due = from + Duration::from_secs_f64(n as f64 / rate);
        let now = Instant::now();
        let slot = PACE_SLOT.as_nanos().max(1);
        let since = now.saturating_duration_since(from + self.phase).as_nanos();
        let turns = u32::try_from(since / slot + 1).unwrap_or(u32::MAX);
        let turn = from + self.phase + PACE_SLOT.saturating_mul(turns);
        due.max(turn)
    }

    /// Resolves when the quota may have grown: deliveries progressed (when the window held the
    /// sender back), the mode changed, or (in paced mode) its next turn came.
    pub(crate) async fn changed(&mut self) {
        let paced = match self.mode {
            Mode::Paced(rate) if rate > 0.0 => {
                // A sender is often woken by something else (frames) before its turn; one
                // request per turn is enough.
                let at = self.next_wake(rate);
                let now = Instant::now();
                if self.asked.is_none_or(|asked| asked <= now || asked > at) {
                    FineTimer::get().wake_at(self.waker.0, at);
                    self.asked = Some(at);
                }
                true
            }
            _ => false,
        };
        let progress = self.window_bound || !paced;
        let waker = self.waker.1.clone();
        tokio::select! {
            () = self.flow.progress.notified(), if progress => {}
            r = self.control.changed() => {
                if r.is_err() {
                    // The coordinator is gone; the task is about to be aborted.
                    std::future::pending::<()>().await;
                }
            }
            () = waker.notified(), if paced => {}
        }
    }
}

/// What a load's tasks share with the coordinator.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) control: watch::Receiver<Mode>,
    pub(crate) recorder: Arc<Recorder>,
    /// Each task adds a permit once it is set up.
    pub(crate) ready: Arc<Semaphore>,
    /// Limits how many tasks set up at once.
    pub(crate) setup: Arc<Semaphore>,
}

impl Shared {
    pub(crate) fn new(control: watch::Receiver<Mode>, recorder: Arc<Recorder>) -> Self {
        Self {
            control,
            recorder,
            ready: Arc::new(Semaphore::new(0)),
            setup: Arc::new(Semaphore::new(SETUP_CONCURRENCY)),
        }
    }
}

/// Why a task that should run until aborted ended.
pub(crate) fn task_end(
    r: Result<Result<(), String>, tokio::task::JoinError>,
    what: &str,
) -> String {
    match r {
        Ok(Err(e)) => format!("{what}: {e}"),
        Ok(Ok(())) => format!("{what}: a task ended early"),
        Err(e) => format!("{what}: a task panicked or was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back() {
        let mut p = Payload::new();
        let before = Instant::now();
        let body = p.stamp().to_vec();
        assert_eq!(body.len(), PAYLOAD);
        assert!(p.stamp_str().is_ascii());
        let age = age_nanos(&body, before + Duration::from_millis(5)).unwrap();
        assert!(age <= 5_000_000, "{age}");
        assert_eq!(age_nanos(b"not a stamp at all, no", Instant::now()), None);
        assert_eq!(age_nanos(b"123", Instant::now()), None);
    }

    #[tokio::test]
    async fn the_gate_keeps_the_window_and_the_pace() {
        let (tx, rx) = watch::channel(Mode::Hold);
        let flow = Arc::new(Flow::default());
        let mut gate = Gate::new(rx, flow.clone(), 1, 100);
        assert_eq!(gate.quota(0), 0, "holding");
        tx.send(Mode::Flood).unwrap();
        assert_eq!(gate.quota(0), 100);
        gate.sent(100);
        assert_eq!(gate.quota(0), 0, "the window is full");
        let recorder = Arc::new(Recorder::default());
        let mut tally = Tally::new(recorder.clone(), flow.clone());
        for _ in 0..40 {
            tally.add(b"x");
        }
        tally.commit();
        assert_eq!(recorder.deliveries(), 40);
        tokio::time::timeout(Duration::from_secs(1), gate.changed())
            .await
            .expect("progress wakes the sender");
        assert_eq!(gate.quota(gate.delivered()), 40);

        tx.send(Mode::Paced(1000.0)).unwrap();
        assert_eq!(gate.quota(gate.delivered()), 0, "nothing is due yet");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let q = gate.quota(gate.delivered());
        assert!((10..=40).contains(&q), "{q}");
        gate.sent(q);

        // A fixed count: all of it as the window allows, then nothing more.
        tx.send(Mode::Count(150)).unwrap();
        let confirmed = gate.sent;
        assert_eq!(gate.quota(confirmed), 100, "the window bounds it");
        gate.sent(100);
        assert_eq!(gate.quota(gate.sent), 50);
        gate.sent(50);
        assert_eq!(gate.quota(gate.sent), 0, "the count is done");
    }
}
