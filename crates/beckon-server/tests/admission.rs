//! Admission control over real sockets: a storm of SDK clients logging in at once, then the
//! same clients reconnecting after the server is killed and started again on the same port.
//! The server (a child process, so the test and the server each hold one end of every
//! connection within their own file-descriptor limit) takes logins at its configured rate; each
//! refused client waits as told and comes back, and none gives up.
//!
//! 2,000 clients by default (at 400 logins/s, so each storm is a five-second ramp);
//! `BECKON_STORM_CLIENTS=10000` runs the full storm (at 2,000 logins/s). Run with
//! `--nocapture` to see the logins per second:
//! `BECKON_STORM_CLIENTS=10000 cargo test -p beckon-server --test admission -- --nocapture`.
//! The test raises its own soft file-descriptor limit when it can and stops early with a
//! message when the limit is too low for the count asked for.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Barrier, mpsc};

use beckon_sdk::{Config, Event, Instance};
use common::process::{ServerProcess, TempDir, TempFile};

const APP: &str = "storm";
/// A storm that takes longer than this has failed (it takes seconds).
const STORM_LIMIT: Duration = Duration::from_secs(120);

fn clients() -> usize {
    std::env::var("BECKON_STORM_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// What one client saw in a storm.
#[derive(Debug)]
struct Back {
    /// When it was logged in (again).
    at: Instant,
    /// How many times the server told it to wait.
    waits: usize,
}

/// Logins per whole second of the storm that began at `t0`.
fn series(backs: &[Back], t0: Instant) -> BTreeMap<u64, usize> {
    let mut per_second = BTreeMap::new();
    for b in backs {
        *per_second
            .entry(b.at.saturating_duration_since(t0).as_secs())
            .or_default() += 1;
    }
    per_second
}

fn report(title: &str, backs: &[Back], t0: Instant, rate: usize) {
    let per_second = series(backs, t0);
    let waits: usize = backs.iter().map(|b| b.waits).sum();
    let last = (backs.iter().map(|b| b.at.saturating_duration_since(t0)))
        .max()
        .unwrap_or_default();
    println!(
        "{title}: {} clients back in {last:.1?}, {waits} refusals for load",
        backs.len()
    );
    println!("{:>6} {:>10}", "second", "logins");
    for (s, n) in &per_second {
        println!("{s:>6} {n:>10}");
    }
    // The server's bucket holds `rate` tokens and gains `rate` a second: no second sees more
    // than twice the rate (tokens saved up plus the second's own), and the first one's burst
    // over, the rest see about the rate. (A client's clock is not the server's, so a login may
    // land in the next second: some slack.)
    let mut so_far = 0;
    for (s, n) in &per_second {
        assert!(
            *n <= 2 * rate + rate / 4,
            "second {s}: {n} logins at {rate}/s"
        );
        // By the end of second s the bucket has given out at most its burst and s + 1
        // seconds of its rate.
        so_far += n;
        let most = rate + rate * (*s as usize + 1);
        assert!(
            so_far <= most + rate / 4,
            "{so_far} logins by second {s}, more than {most}"
        );
    }
    let after_burst = backs.len().saturating_sub(2 * rate);
    assert!(
        last >= Duration::from_secs_f64(after_burst as f64 / rate as f64 * 0.8),
        "{last:?}: faster than the rate allows"
    );
}

/// Raises the soft limit on open files as far as the hard limit allows (the server child
/// inherits it); returns the limit now.
fn raise_fd_limit(want: u64) -> u64 {
    rlimit::increase_nofile_limit(want).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_and_a_restart_are_ramps() {
    let n = clients();
    let fds = raise_fd_limit(n as u64 + 1024);
    if (fds as usize) < n + 512 {
        panic!(
            "{n} clients need {} open files in this process and in the server's; the limit is \
             {fds} (ulimit -n): raise it or set BECKON_STORM_CLIENTS lower",
            n + 512
        );
    }
    let rate = (n / 5).max(100);
    let home = TempDir::new("storm-home");
    let config = TempFile::new(
        "storm.toml",
        &format!(
            "development = true\nephemeral = true\nlogin_rate = {rate}\nlogin_burst = {rate}\n"
        ),
    );
    let start = |listen: &str| {
        ServerProcess::start(
            &["--config", config.path_str(), "--listen", listen],
            home.path(),
        )
    };
    let mut server = start("tcp://127.0.0.1:0");
    let url = format!("tcp://{}", server.addr);

    // Every client logs in at the same moment, waits to be back after the restart, then ends
    // when told.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Result<Back, String>)>();
    let go = Arc::new(Barrier::new(n + 1));
    let done = Arc::new(Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (url, tx, go, done) = (url.clone(), tx.clone(), go.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let sdk = Instance::new(Config::new(url)).expect("an instance");
            let mut events = sdk.events();
            go.wait().await;
            sdk.login2(APP, &format!("user{i}"), "_no_need_token", 0, "", 60, 20);
            let back = until(&mut events, |e| matches!(e, Event::LoginSuccess { .. })).await;
            let _ = tx.send((0, back));
            let back = until(&mut events, |e| matches!(e, Event::Reconnected { .. })).await;
            let _ = tx.send((1, back));
            done.wait().await;
            sdk.destroy().await;
        }));
    }
    drop(tx);
    let cold_start = Instant::now();
    go.wait().await;
    let cold = collect(&mut rx, n, 0).await;

    // Killed: no GoAway, every connection breaks at once. Started again on the same port.
    let addr = server.addr;
    server.signal("KILL");
    server.wait();
    let server = start(&format!("tcp://{addr}"));
    let warm_start = Instant::now();
    assert_eq!(server.addr, addr);
    let warm = collect(&mut rx, n, 1).await;
    done.wait().await;
    for t in tasks {
        t.await.expect("a client task");
    }

    let title = format!("{n} clients log in at once ({rate} logins/s)");
    report(&title, &cold, cold_start, rate);
    let title = format!("{n} clients reconnect after a kill -9 and restart");
    report(&title, &warm, warm_start, rate);
    assert!(
        cold.iter().map(|b| b.waits).sum::<usize>() > 0,
        "the storm was throttled"
    );
}

/// Waits for the event `back` names; gives up (with what it saw) on a logout, a failed login
/// or after [`STORM_LIMIT`].
async fn until(
    events: &mut beckon_sdk::EventStream,
    back: impl Fn(&Event) -> bool,
) -> Result<Back, String> {
    let mut waits = 0;
    let deadline = tokio::time::Instant::now() + STORM_LIMIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .map_err(|_| format!("not back within {STORM_LIMIT:?}"))?
            .ok_or("the instance ended")?;
        match ev {
            ev if back(&ev) => {
                return Ok(Back {
                    at: Instant::now(),
                    waits,
                });
            }
            Event::Log { txt } if txt.contains("server is busy") => waits += 1,
            ev @ (Event::Logout { .. } | Event::LoginFailed { .. }) => {
                return Err(format!("gave up: {ev:?}"));
            }
            _ => {}
        }
    }
}

/// The outcomes of phase `phase` of all `n` clients.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(usize, Result<Back, String>)>,
    n: usize,
    phase: usize,
) -> Vec<Back> {
    let mut backs = Vec::with_capacity(n);
    while backs.len() < n {
        let (p, back) = rx.recv().await.expect("every client reports");
        assert_eq!(p, phase);
        backs.push(back.unwrap_or_else(|e| panic!("a client failed: {e}")));
    }
    backs
}
