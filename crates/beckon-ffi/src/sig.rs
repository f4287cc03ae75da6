//! Handles (`beckon_sig *`) and the life of the instance behind one.
//!
//! A [`Sig`] is what a handle points at. It is allocated once and never freed (every handle is
//! kept in a process-wide list), so any handle the library ever returned stays valid: after
//! `destroy` it is a tombstone of a few dozen bytes whose calls are no-ops. Everything an
//! instance owns — the SDK [`Instance`], the SDK thread, the callbacks —
//! is in a [`Live`], which `destroy` takes out and tears down.
//!
//! Events flow: the instance's driver (a task on the shared runtime) → its [`EventStream`],
//! which the SDK thread waits on directly (the driver's send wakes it) → the application's
//! callbacks, one at a time. Arguments the library refuses itself (see `args`), a new stream
//! when a login moves the instance to another server, and the order to stop reach the SDK
//! thread on a second channel from the calling thread. Application code never runs on the
//! runtime, so it cannot stall another instance's I/O, and it may block or call `destroy`.
//!
//! Lock order: `Sig::live`, then `Live::state` or `Live::callbacks` (never both), then
//! `Live::run`. No lock is held while application code runs.

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use beckon_sdk::{Event, EventStream, Instance, Status};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::callbacks::{self, Callbacks};
use crate::runtime;
use crate::server::{self, Target};

/// How long the SDK thread waits for the rest of a stopped instance's events. A stopped driver
/// ends its stream at once; this bounds one that would not.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `LOGIN_E_OTHER`: the login could not start because of the library's configuration (the
/// server URL or the certificates to trust), not because of the server.
pub(crate) const LOGIN_E_OTHER: i32 = 200;

/// Every handle ever made, so that tombstones, and the application objects bound to them,
/// stay reachable (leak checkers report them as in use, which they are).
static HANDLES: Mutex<Vec<&'static Sig>> = Mutex::new(Vec::new());
/// The shared instances, by slot.
static SHARED: Mutex<Vec<(u32, &'static Sig)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set on SDK threads: `destroy` and `start` must not wait for an SDK thread from one.
    static ON_SDK_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic caught at the boundary may have poisoned a lock; the data under each of these
    // locks is valid after any partial update, so carry on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a `beckon_sig *` points at (opaque to C).
#[derive(Debug)]
pub struct Sig {
    /// `None` once destroyed.
    live: Mutex<Option<Arc<Live>>>,
    /// The user pointer bound with the callbacks; kept after `destroy`.
    user: AtomicPtr<c_void>,
    /// Held by a `destroy` for its whole teardown, so that a second one, on another thread,
    /// returns only when the first has finished (no callback runs after either returns).
    teardown: Mutex<()>,
}

/// The application's pointer, handed back to its callbacks on the SDK thread.
#[derive(Clone, Copy, Debug)]
struct User(*mut c_void);

// SAFETY: the library never dereferences the pointer; it only passes it back to the
// application's callbacks, which the header documents as running on the SDK thread. What the
// pointer refers to, and its thread safety, are the application's.
unsafe impl Send for User {}
// SAFETY: as above: shared references only copy the pointer value.
unsafe impl Sync for User {}

#[derive(Clone, Copy, Debug)]
struct Bound {
    table: Callbacks,
    user: User,
}

/// What the SDK thread receives besides the instance's events.
#[derive(Debug)]
enum Item {
    /// An event the library reports itself (a refused argument).
    Event(Event),
    /// The events of the instance that replaces the current one (whose driver has stopped):
    /// deliver the rest of the old stream, then these.
    Swap(EventStream),
    /// The instance has stopped: deliver the rest of its stream, then exit.
    Stop,
}

/// Everything a live instance owns.
#[derive(Debug)]
pub(crate) struct Live {
    rt: &'static Runtime,
    state: Mutex<State>,
    callbacks: Mutex<Option<Bound>>,
    queue: UnboundedSender<Item>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_id: OnceLock<ThreadId>,
    /// Set by a `destroy` that cannot wait for the SDK thread: deliver nothing more.
    closed: AtomicBool,
    run: Mutex<Run>,
    run_changed: Condvar,
    /// For message ids of sends the library refuses itself when the application gave none.
    refused_ids: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// `None` once `destroy` has begun.
    instance: Option<Instance>,
    /// What `instance` was made for.
    target: Target,
    /// `beckon_sig_set_server_url`.
    own_url: Option<String>,
    /// The App ID of a login that passes none.
    default_app_id: String,
}

/// `start` waits until `stops` changes or the instance is destroyed.
#[derive(Debug, Default)]
struct Run {
    stops: u64,
    destroyed: bool,
}

impl Sig {
    /// A new instance, or `None` if the runtime or the SDK thread could not be started.
    pub(crate) fn create() -> Option<&'static Sig> {
        let live = Live::open()?;
        let sig: &'static Sig = Box::leak(Box::new(Sig {
            live: Mutex::new(Some(live)),
            user: AtomicPtr::new(std::ptr::null_mut()),
            teardown: Mutex::new(()),
        }));
        lock(&HANDLES).push(sig);
        Some(sig)
    }

    /// The shared instance of `slot`: the same one until it is destroyed, then a new one.
    pub(crate) fn shared(slot: u32) -> Option<&'static Sig> {
        let mut shared = lock(&SHARED);
        if let Some((_, sig)) = shared.iter().find(|(s, _)| *s == slot)
            && sig.live().is_some()
        {
            return Some(sig);
        }
        let sig = Sig::create()?;
        shared.retain(|(s, _)| *s != slot);
        shared.push((slot, sig));
        Some(sig)
    }

    pub(crate) fn live(&self) -> Option<Arc<Live>> {
        lock(&self.live).clone()
    }

    /// Logs out, delivers what is queued, stops the SDK thread; later calls are no-ops.
    pub(crate) fn destroy(&self) {
        // On an SDK thread the teardown lock could be held by a `destroy` that is waiting for
        // this very thread: do not wait for it.
        let _teardown = (!ON_SDK_THREAD.get()).then(|| lock(&self.teardown));
        let live = lock(&self.live).take();
        if let Some(live) = live {
            live.shutdown();
        }
    }

    /// `beckon_sig_set_callbacks`.
    pub(crate) fn set_callbacks(&self, table: Option<Callbacks>, user: *mut c_void) {
        match self.live() {
            Some(live) => {
                let mut bound = lock(&live.callbacks);
                self.user.store(user, Ordering::Release);
                *bound = table.map(|table| Bound {
                    table,
                    user: User(user),
                });
            }
            None => self.user.store(user, Ordering::Release),
        }
    }

    /// `beckon_sig_bind`: binds `table` and `user` unless a user pointer is bound already;
    /// returns the pointer bound.
    pub(crate) fn bind(&self, table: Option<Callbacks>, user: *mut c_void) -> *mut c_void {
        let live = self.live();
        let mut bound = live.as_ref().map(|l| lock(&l.callbacks));
        if user.is_null() {
            return self.user.load(Ordering::Acquire);
        }
        match self.user.compare_exchange(
            std::ptr::null_mut(),
            user,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                if let Some(b) = bound.as_deref_mut() {
                    *b = table.map(|table| Bound {
                        table,
                        user: User(user),
                    });
                }
                user
            }
            Err(existing) => existing,
        }
    }
}

impl Live {
    fn open() -> Option<Arc<Live>> {
        let rt = runtime::shared()?;
        let _in_runtime = rt.enter();
        // The server is resolved again at each login; this first instance only has to exist
        // (it reports calls made before login), so a bad setting falls back to the default.
        let (target, instance) = match Target::resolve(None).and_then(|t| Ok((t.instance()?, t))) {
            Ok((instance, target)) => (target, instance),
            Err(_) => {
                let target = Target::fallback();
                (target.clone(), target.instance().ok()?)
            }
        };
        let (queue, items) = mpsc::unbounded_channel();
        let events = instance.events();
        let live = Arc::new(Live {
            rt,
            state: Mutex::new(State {
                instance: Some(instance),
                target,
                own_url: None,
                default_app_id: String::new(),
            }),
            callbacks: Mutex::new(None),
            queue,
            dispatcher: Mutex::new(None),
            dispatcher_id: OnceLock::new(),
            closed: AtomicBool::new(false),
            run: Mutex::new(Run::default()),
            run_changed: Condvar::new(),
            refused_ids: AtomicU64::new(0),
        });
        let for_thread = live.clone();
        let thread = thread::Builder::new()
            .name("agorasig-cb".into())
            .spawn(move || dispatch(&for_thread, items, events));
        match thread {
            Ok(handle) => {
                let _ = live.dispatcher_id.set(handle.thread().id());
                *lock(&live.dispatcher) = Some(handle);
                Some(live)
            }
            Err(e) => {
                eprintln!("agorasig: cannot start an SDK thread: {e}");
                None
            }
        }
    }

    /// Calls `f` with the SDK instance, unless `destroy` has begun.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Instance) -> R) -> Option<R> {
        lock(&self.state).instance.as_ref().map(f)
    }

    /// Queues events the library reports itself (refusals), behind those already queued.
    pub(crate) fn push(&self, events: Vec<Event>) {
        for ev in events {
            let _ = self.queue.send(Item::Event(ev));
        }
    }

    /// `status`, or 0 once `destroy` has begun.
    pub(crate) fn status(&self) -> i32 {
        self.with(Instance::get_status).unwrap_or(0)
    }

    /// A message id for a refused send: the application's, or a new one when it gave "".
    pub(crate) fn refused_msg_id(&self, given: String) -> String {
        if given.is_empty() {
            let n = self.refused_ids.fetch_add(1, Ordering::Relaxed) + 1;
            format!("refused-{n}")
        } else {
            given
        }
    }

    /// `login2`: resolves the server, makes a new SDK instance if it changed since the last
    /// login (only while logged out: a login while logged in or logging in is ignored by the
    /// SDK anyway), and logs in.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn login2(
        &self,
        app_id: &str,
        account: &str,
        token: &str,
        device_id: &str,
        retry_time_in_s: i32,
        retry_count: i32,
    ) {
        let mut st = lock(&self.state);
        let Some(current) = st.instance.as_ref() else {
            return;
        };
        if current.get_status() == Status::NotLoggedIn as i32
            && let Err(why) = self.retarget(&mut st)
        {
            drop(st);
            self.push(vec![
                Event::LoginFailed {
                    ecode: LOGIN_E_OTHER,
                },
                Event::Error {
                    name: "login".into(),
                    ecode: LOGIN_E_OTHER,
                    desc: why,
                },
            ]);
            return;
        }
        let app_id = if app_id.is_empty() {
            st.default_app_id.clone()
        } else {
            app_id.to_owned()
        };
        if let Some(instance) = st.instance.as_ref() {
            instance.login2(
                &app_id,
                account,
                token,
                0,
                device_id,
                retry_time_in_s,
                retry_count,
            );
        }
    }

    /// Points the instance at the server a login now resolves to.
    fn retarget(&self, st: &mut State) -> Result<(), String> {
        let target = Target::resolve(st.own_url.as_deref())?;
        if target == st.target {
            return Ok(());
        }
        let _in_runtime = self.rt.enter();
        let fresh = target.instance()?;
        // The old instance is logged out: dropping it stops its driver, which ends its stream;
        // the SDK thread delivers what is left of it before the new instance's events.
        let _ = self.queue.send(Item::Swap(fresh.events()));
        drop(st.instance.replace(fresh));
        st.target = target;
        Ok(())
    }

    pub(crate) fn set_own_url(&self, url: Option<&str>) -> Result<(), String> {
        if let Some(u) = url {
            let _in_runtime = self.rt.enter();
            server::check(u)?;
        }
        lock(&self.state).own_url = url.map(str::to_owned);
        Ok(())
    }

    pub(crate) fn set_default_app_id(&self, app_id: &str) {
        app_id.clone_into(&mut lock(&self.state).default_app_id);
    }

    /// `start`: waits for `stop` or `destroy`; returns at once on an SDK thread, which must
    /// not block.
    pub(crate) fn start(&self) {
        if ON_SDK_THREAD.get() {
            return;
        }
        let mut run = lock(&self.run);
        let seen = run.stops;
        while run.stops == seen && !run.destroyed {
            run = self
                .run_changed
                .wait(run)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(crate) fn stop(&self) {
        lock(&self.run).stops += 1;
        self.run_changed.notify_all();
    }

    /// Tears the instance down (see `Sig::destroy`).
    fn shutdown(self: Arc<Self>) {
        let instance = lock(&self.state).instance.take();
        // Log out and stop the driver: its stream then holds its last events, and ends.
        if let Some(instance) = instance {
            runtime::wait(self.rt, instance.destroy());
        }
        {
            lock(&self.run).destroyed = true;
            self.run_changed.notify_all();
        }
        let dispatcher = lock(&self.dispatcher).take();
        if ON_SDK_THREAD.get() {
            // Inside a callback — of this instance or another — waiting for this instance's
            // SDK thread could wait for ourselves: deliver nothing more and let it end alone.
            self.closed.store(true, Ordering::Release);
            let _ = self.queue.send(Item::Stop);
            drop(dispatcher);
        } else {
            let _ = self.queue.send(Item::Stop);
            if let Some(handle) = dispatcher {
                let _ = handle.join();
            }
        }
        *lock(&self.callbacks) = None;
    }
}

/// What the SDK thread waits for next.
enum Next {
    Event(Option<Event>),
    Item(Option<Item>),
}

/// The SDK thread: delivers the instance's events and the library's own, in order, to the
/// callbacks bound at that moment, until told to stop.
fn dispatch(live: &Live, mut items: UnboundedReceiver<Item>, events: EventStream) {
    ON_SDK_THREAD.set(true);
    let mut events = Some(events);
    loop {
        if live.closed.load(Ordering::Acquire) {
            return;
        }
        // Not a runtime thread: `block_on` polls here and parks this thread until a sender
        // (the driver, or a caller) wakes it.
        let next = live.rt.block_on(async {
            match events.as_mut() {
                Some(stream) => tokio::select! {
                    biased;
                    ev = stream.next() => Next::Event(ev),
                    item = items.recv() => Next::Item(item),
                },
                None => Next::Item(items.recv().await),
            }
        });
        match next {
            Next::Event(Some(ev)) | Next::Item(Some(Item::Event(ev))) => deliver(live, ev),
            // The driver stopped; a swap or the stop follows.
            Next::Event(None) => events = None,
            Next::Item(Some(Item::Swap(fresh))) => {
                drain(live, events.take());
                events = Some(fresh);
            }
            Next::Item(Some(Item::Stop) | None) => {
                drain(live, events.take());
                return;
            }
        }
    }
}

/// Delivers what is left of a stopped instance's events.
fn drain(live: &Live, events: Option<EventStream>) {
    let Some(mut events) = events else {
        return;
    };
    while !live.closed.load(Ordering::Acquire) {
        let next = live
            .rt
            .block_on(async { tokio::time::timeout(DRAIN_TIMEOUT, events.next()).await });
        match next {
            Ok(Some(ev)) => deliver(live, ev),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Calls the callback of `ev`, if one is bound.
fn deliver(live: &Live, ev: Event) {
    let bound = *lock(&live.callbacks);
    if let Some(Bound { table, user }) = bound {
        let delivered = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the table was copied from the application's struct, whose members the
            // header requires to have the declared signatures and to return normally; this is
            // the SDK thread, where the header says they run.
            unsafe { callbacks::deliver(&table, user.0, ev) }
        }));
        if delivered.is_err() {
            eprintln!("agorasig: internal error while delivering an event (skipped)");
        }
    }
}
