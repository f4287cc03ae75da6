//! Server instructions per delivery, counted by valgrind's callgrind: the figure the noise of a
//! shared machine does not move, and the one each optimisation of the server is judged by.
//!
//! Each system's server starts under `valgrind --tool=callgrind --instr-atstart=no`, pinned
//! like every server (so `beckon-server` sees one core and runs its one-thread runtime; the
//! bare forwarder, one worker; `nats-server`, `GOMAXPROCS` 1 and, because its preemption
//! signals trip callgrind, `GODEBUG=asyncpreemptoff=1`). The shape's connections are set up
//! uninstrumented; then `callgrind_control` turns instrumentation on and zeroes the counters,
//! every sender sends its share of a fixed number of messages as fast as its window allows,
//! the generator waits until all of them were delivered and the server has gone quiet (so
//! acknowledgements sent after the last delivery count too), and `callgrind_control` dumps
//! the counters. Instructions ÷ deliveries is the figure: user-space instructions of the
//! whole server process; the kernel's share of the work is not in it (see the CPU-time rows).
//!
//! The profiles stay in the directory the run prints, for `callgrind_annotate`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cli::Shape;
use crate::driver::Driver;
use crate::load::{Mode, Recorder, Shared, Tasks, task_end};
use crate::measure::{Ctx, check_open_files, quiesce, set_up_stream};
use crate::procs;
use crate::report::{Figure, Progress, Results, thousands};

/// How long the workload may take under callgrind before the measurement gives up.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The server counts as quiet once its CPU time has not moved for this long.
const QUIET: Duration = Duration::from_millis(500);
/// How long to wait for the server to go quiet after the last delivery, at most.
const QUIET_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether valgrind and `callgrind_control` are installed; why not, otherwise.
pub(crate) fn available() -> Result<(), String> {
    for program in ["valgrind", "callgrind_control"] {
        if procs::find_in_path(program).is_none() {
            return Err(format!(
                "{program} is not installed (Debian package valgrind): no instruction counts"
            ));
        }
    }
    Ok(())
}

/// A fresh directory for this run's profiles.
pub(crate) fn profile_dir() -> Result<PathBuf, String> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = std::env::temp_dir().join(format!("beckon-callgrind-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Counts the server's instructions per delivery for the p2p and the fan-out workload.
pub(crate) async fn measure<D: Driver>(
    ctx: &Ctx<'_>,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let dir = ctx
        .callgrind
        .as_deref()
        .ok_or("callgrind needs a profile directory")?;
    let p2p = workload::<D>(ctx, dir, Shape::P2p, progress).await?;
    results.add(Figure::P2pInstructions, D::SYSTEM, p2p.per_delivery);
    let fanout = workload::<D>(ctx, dir, Shape::Fanout, progress).await?;
    results.add(Figure::FanoutInstructions, D::SYSTEM, fanout.per_delivery);
    Ok(format!(
        "p2p {} instructions/msg ({} in {} deliveries; {}); fan-out {} instructions/delivery \
         ({} in {} deliveries; {})",
        thousands(p2p.per_delivery),
        thousands(p2p.instructions as f64),
        thousands(p2p.deliveries as f64),
        p2p.profile.display(),
        thousands(fanout.per_delivery),
        thousands(fanout.instructions as f64),
        thousands(fanout.deliveries as f64),
        fanout.profile.display(),
    ))
}

/// What one workload counted.
struct Count {
    instructions: u64,
    deliveries: u64,
    per_delivery: f64,
    profile: PathBuf,
}

/// Runs one workload (`shape` is p2p or fan-out) on a server under callgrind.
async fn workload<D: Driver>(
    ctx: &Ctx<'_>,
    dir: &Path,
    shape: Shape,
    progress: &mut Progress,
) -> Result<Count, String> {
    let (opts, system) = (ctx.opts, D::SYSTEM);
    let fanout = shape == Shape::Fanout;
    check_open_files(if fanout {
        opts.members + 1
    } else {
        opts.pairs * 2
    })?;
    progress.step(format!("callgrind · {} · {system}", shape.name()));
    let (mut server, driver) = D::start(ctx, shape)?;
    let pid = server.pid();
    let (control, control_rx) = watch::channel(Mode::Hold);
    let recorder = Arc::new(Recorder::default());
    let shared = Shared::new(control_rx, recorder.clone());
    let mut tasks = Tasks::new();
    let (per_message, senders) =
        set_up_stream(&driver, opts, fanout, &shared, &mut tasks, progress).await?;
    let senders = senders as u64;
    // Each sender sends its share; the p2p total is rounded up to a multiple of the pairs.
    let per_sender = if fanout {
        opts.cg_fanouts as u64
    } else {
        (opts.cg_messages as u64).div_ceil(senders)
    };
    let expected = per_sender * senders * per_message as u64;

    control_callgrind(pid, &["--instr=on"])?;
    control_callgrind(pid, &["--zero"])?;
    let d0 = recorder.deliveries();
    control
        .send(Mode::Count(per_sender))
        .map_err(|_| "the load is gone")?;
    let start = Instant::now();
    loop {
        let done = recorder.deliveries() - d0;
        progress.update(
            done as f64 / expected as f64,
            &format!(
                "{}/{} deliveries",
                thousands(done as f64),
                thousands(expected as f64)
            ),
        );
        if done >= expected {
            break;
        }
        if start.elapsed() > WORKLOAD_TIMEOUT {
            return Err(format!(
                "{done} of {expected} deliveries after {WORKLOAD_TIMEOUT:?} under callgrind"
            ));
        }
        server.check_alive()?;
        tokio::select! {
            Some(r) = tasks.join_next() => return Err(task_end(r, "the load")),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let deliveries = recorder.deliveries() - d0;
    quiet(pid, &mut tasks).await?;
    quiesce(&recorder, &mut tasks).await?;
    control_callgrind(pid, &["--dump"])?;
    let profile = latest_dump(dir, pid)?;
    let instructions = totals(&profile)?;
    tasks.shutdown().await;
    // Killed: no final profile is written, the dump above is the figure.
    drop(server);
    Ok(Count {
        instructions,
        deliveries,
        per_delivery: instructions as f64 / deliveries.max(1) as f64,
        profile,
    })
}

/// Waits until the server's CPU time stops moving: what the last deliveries set off
/// (acknowledgements, replies) has been handled.
async fn quiet(pid: u32, tasks: &mut Tasks) -> Result<(), String> {
    let deadline = Instant::now() + QUIET_TIMEOUT;
    let mut last = procs::cpu_seconds(pid)?;
    while Instant::now() < deadline {
        tokio::select! {
            Some(r) = tasks.join_next() => return Err(task_end(r, "the load")),
            () = tokio::time::sleep(QUIET) => {}
        }
        let now = procs::cpu_seconds(pid)?;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

/// Runs `callgrind_control <args> <pid>`.
fn control_callgrind(pid: u32, args: &[&str]) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("OK") {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {} {pid} failed: {}{}",
            args.join(" "),
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The newest profile the server `pid` dumped into `dir` (`callgrind.<pid>.<n>`).
fn latest_dump(dir: &Path, pid: u32) -> Result<PathBuf, String> {
    let prefix = format!("callgrind.{pid}.");
    // The dump is written by the server; give it a moment to appear.
    for _ in 0..50 {
        let newest = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n: u32 = name.strip_prefix(&prefix)?.parse().ok()?;
                Some((n, e.path()))
            })
            .max_by_key(|(n, _)| *n);
        if let Some((_, path)) = newest
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\ntotals:"))
        {
            return Ok(path);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no profile {}{prefix}<n> after the dump",
        dir.display()
    ))
}

/// The instruction count of a callgrind profile (its `totals:` line).
fn totals(profile: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(profile)
        .map_err(|e| format!("cannot read {}: {e}", profile.display()))?;
    parse_totals(&text).ok_or_else(|| format!("no totals in {}", profile.display()))
}

fn parse_totals(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_totals_line() {
        let profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 12871\n\
                       fn=(1) main\n3 5\ntotals: 12871\n";
        assert_eq!(parse_totals(profile), Some(12871));
        assert_eq!(parse_totals("events: Ir\n"), None);
    }
}
