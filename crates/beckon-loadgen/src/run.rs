//! The run: round by round, shape by shape, system by system, one [`measure`] each, on a
//! runtime of its own, with the servers pinned to one core and the load generator (this
//! process, one tokio thread) to the other; then the table of medians.
//!
//! [`measure`]: crate::measure

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Notify;

use crate::beckon::Beckon;
use crate::callgrind;
use crate::cli::{Options, Shape, System};
use crate::forwarder::Raw;
use crate::measure::{self, Ctx};
#[cfg(feature = "peers")]
use crate::nats::Nats;
use crate::procs::{self, Pinning};
#[cfg(feature = "peers")]
use crate::redis_pubsub::Redis;
use crate::report::{Progress, Results};

/// Runs the benchmark; `Err` when it could not run at all (a signal, no runtime).
pub(crate) fn main(opts: &Options, server_bin: &Path) -> Result<(), String> {
    let cpus = cpu_count();
    // Before any thread starts, so all of them inherit the generator's core.
    let pinning = Pinning::apply();
    // Every connection of the largest shape, plus the spare files of `check_open_files`.
    let wanted = [
        opts.sessions,
        opts.members + 1,
        opts.conns * 2,
        opts.pairs * 2,
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as u64
        + 1024;
    let files = procs::raise_open_files_limit(wanted);
    watch_signals();
    run(opts, server_bin, &pinning, cpus, &files)
}

/// Set, with the reason, once SIGINT or SIGTERM arrived.
static STOP: OnceLock<String> = OnceLock::new();
/// Wakes whatever waits in [`stopped`]; works across runtimes.
static STOPPING: Notify = Notify::const_new();

/// Watches for SIGINT and SIGTERM on a thread of its own for the whole run (tokio's signal
/// handling is process-wide, while every measurement gets a runtime of its own).
fn watch_signals() {
    let watcher = std::thread::Builder::new()
        .name("signals".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let why = rt.block_on(async {
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(mut s) => {
                            s.recv().await;
                        }
                        Err(_) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "interrupted",
                    () = term => "terminated",
                }
            });
            let _ = STOP.set(why.to_owned());
            STOPPING.notify_waiters();
        });
    if let Err(e) = watcher {
        eprintln!("bench: cannot watch for signals ({e}); Ctrl-C may leave servers running");
    }
}

/// Resolves once a signal asked the benchmark to stop, with the reason.
async fn stopped() -> String {
    loop {
        let notified = STOPPING.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(why) = STOP.get() {
            return why.clone();
        }
        notified.await;
    }
}

/// Runs one measurement on a runtime of its own, dropped afterwards: whatever the client
/// libraries left running (connection tasks, sockets) goes with it, so one measurement never
/// burdens the next. `Err` only when a signal stopped the benchmark; the measurement's own
/// outcome is inside.
fn isolated<F: Future<Output = Result<String, String>>>(
    cell: F,
) -> Result<Result<String, String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let outcome = rt.block_on(async {
        tokio::select! {
            r = cell => Ok(r),
            why = stopped() => Err(why),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    outcome
}

fn run(
    opts: &Options,
    server_bin: &Path,
    pinning: &Pinning,
    cpus: usize,
    files: &str,
) -> Result<(), String> {
    let mut ctx = Ctx {
        opts,
        server_bin,
        pinning,
        peer_bins: Vec::new(),
        callgrind: None,
    };
    println!("## cargo xtask bench {}", opts.to_args().join(" "));
    println!();
    for line in describe_machine(cpus) {
        println!("- {line}");
    }
    println!("- {}", pinning.describe());
    println!(
        "- {files}; beckon-server raises its own soft limit to its hard limit at start, and the \
         peers inherit this process's"
    );
    println!(
        "- Beckon over {}; peers over their own TCP protocols",
        opts.transport.name()
    );
    println!(
        "- {} per measurement, {} round(s); {} p2p pairs, {} fan-out members, {} idle \
         sessions, {} login connections; 256-byte payloads",
        humane(opts.duration),
        opts.rounds,
        opts.pairs,
        opts.members,
        opts.sessions,
        opts.conns
    );
    println!("- beckon-server: {}", server_bin.display());
    if opts.shapes.contains(&Shape::Callgrind) {
        match callgrind::available().and_then(|()| callgrind::profile_dir()) {
            Ok(dir) => {
                println!(
                    "- callgrind: {} p2p messages and {} fan-out messages to {} members, each \
                     system's server alone under valgrind (one thread: beckon-server's \
                     one-core runtime, the forwarder's one worker, GOMAXPROCS=1); profiles in \
                     {} (callgrind_annotate <file>){}",
                    opts.cg_messages,
                    opts.cg_fanouts,
                    opts.members,
                    dir.display(),
                    if callgrind_every_round(opts) {
                        ""
                    } else {
                        "; first round only"
                    }
                );
                ctx.callgrind = Some(dir);
            }
            Err(why) => println!("- callgrind: {why}"),
        }
    }

    let mut systems = vec![System::Beckon];
    for peer in &opts.peers {
        let program = match peer {
            System::Nats => "nats-server",
            System::Redis => "redis-server",
            System::Raw => {
                println!("- raw: the load generator's bare tokio forwarder");
                systems.push(System::Raw);
                continue;
            }
            System::Beckon | System::Cluster(_) => continue,
        };
        if !cfg!(feature = "peers") {
            println!(
                "- this load generator was built without its NATS and Redis drivers: skipping \
                 the {peer} column (`cargo xtask bench` builds them; by hand: cargo build \
                 --release -p beckon-loadgen --features peers)"
            );
            continue;
        }
        let Some(bin) = procs::find_in_path(program) else {
            println!(
                "- {program} is not installed: skipping the {peer} column \
                 (Debian package `{program}`: apt-get install {program})"
            );
            continue;
        };
        println!("- {program}: {}", version_of(&bin));
        ctx.peer_bins.push((*peer, bin));
        systems.push(*peer);
    }
    if !opts.nodes.is_empty() {
        match procs::find_in_path("redis-server") {
            Some(bin) => {
                println!(
                    "- cluster-N: N beckon-server nodes in cluster mode on one redis-server \
                     ({}, persistence off), clients spread over the nodes (every p2p pair \
                     spans two nodes when N > 1, fan-out members go round the nodes, the \
                     publisher on the first); CPU and memory are the nodes' and \
                     redis-server's together; all pinned like beckon",
                    version_of(&bin)
                );
                for n in &opts.nodes {
                    #[expect(clippy::cast_possible_truncation, reason = "at most MAX_NODES")]
                    systems.push(System::Cluster(*n as u8));
                }
            }
            None => println!(
                "- redis-server is not installed: skipping the cluster columns (Debian \
                 package `redis-server`)"
            ),
        }
    }
    println!();

    let total: usize = opts.rounds
        * opts
            .shapes
            .iter()
            .map(|shape| {
                systems
                    .iter()
                    .filter(|s| applies(*shape, **s))
                    .map(|_| match shape {
                        Shape::P2p | Shape::Fanout => 3,
                        Shape::Callgrind if !callgrind_every_round(opts) => 0,
                        Shape::Callgrind => 2,
                        Shape::Idle | Shape::Login => 1,
                    })
                    .sum::<usize>()
            })
            .sum::<usize>()
        + if opts.shapes.contains(&Shape::Callgrind) && !callgrind_every_round(opts) {
            2 * systems.len()
        } else {
            0
        };
    let mut progress = Progress::new(total);
    let mut results = Results::default();
    for round in 1..=opts.rounds {
        for shape in &opts.shapes {
            if *shape == Shape::Callgrind
                && (ctx.callgrind.is_none() || (round > 1 && !callgrind_every_round(opts)))
            {
                continue;
            }
            for system in &systems {
                if !applies(*shape, *system) {
                    results.not_applicable(*shape, *system);
                    continue;
                }
                let outcome = match measure(&ctx, *shape, *system, &mut progress, &mut results) {
                    Ok(outcome) => outcome,
                    Err(why) => {
                        progress.clear();
                        return Err(why);
                    }
                };
                progress.clear();
                match outcome {
                    Ok(line) => println!("round {round}: {} · {system}: {line}", shape.name()),
                    Err(e) => {
                        println!("round {round}: {} · {system}: FAILED: {e}", shape.name());
                        results.fail(*shape, *system, e);
                    }
                }
            }
        }
    }
    progress.clear();
    println!();
    println!(
        "### Medians of {} round(s); ratios are Beckon ÷ peer (above 1 is better for rates, \
         below 1 for latencies and memory); CPU is % of one core",
        opts.rounds
    );
    println!();
    print!("{}", results.table(opts, &systems));
    let notes = results.notes();
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("- {n}");
        }
    }
    Ok(())
}

/// Whether a shape means anything for a system: Redis has no login (the forwarder's login is
/// its bare connect, hello, welcome and close); callgrind profiles one server process, not a
/// cluster's several.
fn applies(shape: Shape, system: System) -> bool {
    !matches!(
        (shape, system),
        (Shape::Login, System::Redis) | (Shape::Callgrind, System::Cluster(_))
    )
}

/// Instruction counts repeat closely and take minutes under valgrind: measured in the first
/// round only, unless they are all that was asked for.
fn callgrind_every_round(opts: &Options) -> bool {
    opts.shapes == [Shape::Callgrind]
}

/// Measures `shape` on `system` on a runtime of its own ([`isolated`]).
fn measure(
    ctx: &Ctx<'_>,
    shape: Shape,
    system: System,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<Result<String, String>, String> {
    let (p, r) = (progress, results);
    match system {
        System::Beckon => isolated(measure::shape::<Beckon>(ctx, shape, p, r)),
        System::Cluster(1) => isolated(measure::shape::<Beckon<1>>(ctx, shape, p, r)),
        System::Cluster(2) => isolated(measure::shape::<Beckon<2>>(ctx, shape, p, r)),
        System::Cluster(3) => isolated(measure::shape::<Beckon<3>>(ctx, shape, p, r)),
        System::Cluster(4) => isolated(measure::shape::<Beckon<4>>(ctx, shape, p, r)),
        System::Cluster(n) => Ok(Err(format!("{n} nodes: --nodes takes 1 to 4"))),
        System::Raw => isolated(measure::shape::<Raw>(ctx, shape, p, r)),
        #[cfg(feature = "peers")]
        System::Nats => isolated(measure::shape::<Nats>(ctx, shape, p, r)),
        #[cfg(feature = "peers")]
        System::Redis => isolated(measure::shape::<Redis>(ctx, shape, p, r)),
        #[cfg(not(feature = "peers"))]
        System::Nats | System::Redis => Ok(Err(format!(
            "this load generator was built without the {system} driver (--features peers)"
        ))),
    }
}

fn humane(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Logical CPUs of the machine (not only those this process may use).
fn cpu_count() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// The machine, for the report: CPU model and count, memory, kernel, date, commit.
fn describe_machine(cpus: usize) -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or_else(|| "?".into(), |kb| format!("{:.0}", kb / 1024.0 / 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "?".into())
    };
    vec![
        format!(
            "machine: {cpus} × {model}, {mem_gib} GiB, Linux {}; load average {load} before \
             the run (anything else running skews the figures)",
            kernel.trim()
        ),
        format!(
            "date: {}; commit: {}",
            run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            run("git", &["describe", "--always", "--dirty"])
        ),
    ]
}

/// The first line of `bin --version`.
fn version_of(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| bin.display().to_string())
}
