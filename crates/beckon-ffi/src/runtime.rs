//! The one tokio runtime every instance of the process shares.
//!
//! Made at the first `beckon_sig_create` and never shut down: an instance's driver is one small
//! task on it, so many instances cost no threads beyond their SDK threads. Two workers: the machines this runs on are clients, and a signaling client's I/O
//! is light; more would only compete with the application.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime.
const WORKERS: usize = 2;

/// The shared runtime, made on first use; `None` if the threads could not be started (the
/// error is printed once to stderr, and no instance can be created).
pub(crate) fn shared() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            match Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("agorasig-io")
                .enable_all()
                .build()
            {
                Ok(rt) => Some(rt),
                Err(e) => {
                    eprintln!("agorasig: cannot start the SDK's I/O threads: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Runs `fut` on the runtime and blocks the calling thread until it completes.
///
/// Unlike `Runtime::block_on`, this works on any thread, including one that is itself inside
/// some tokio runtime (an application's): the future runs on the shared runtime's workers and
/// the caller only waits on a channel. Returns `None` if the future panicked.
pub(crate) fn wait<F>(rt: &Runtime, fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().ok()
}
