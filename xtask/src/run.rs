//! The whole-system benchmark itself, run by the release build of the xtask
//! (`xtask load-run --server-bin PATH <bench options>`, started by [`crate::launch`]).
//!
//! Round by round, shape by shape, system by system: start a fresh server pinned to the
//! server core, set the load up from this process (pinned to the other core, one tokio thread),
//! measure, stop everything. The p2p and fan-out shapes measure twice on the same connections:
//! first the peak (senders flood within their windows), then latency at half that peak
//! (senders paced). Each measurement starts after a short warm-up and lasts `--duration`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};

use crate::beckon::{self, BeckonServer};
use crate::cli::{self, Bench, Options, Shape, System};
use crate::forwarder::{self, RawServer};
use crate::load::{Flow, Mode, Recorder, SETUP_TIMEOUT, Shared, Tasks, task_end};
use crate::nats::{self, NatsServer};
use crate::procs::{self, CpuMeter, CpuShare, Pinning, ServerProc};
use crate::redis_pubsub::{self, RedisServer};
use crate::report::{Figure, Progress, Results, quantile, thousands};

/// Messages a p2p sender may have outstanding.
const P2P_WINDOW: u64 = 128;
/// Messages the fan-out publisher may have outstanding (each to every member).
const FANOUT_WINDOW: u64 = 16;
/// The share of the peak at which latency is measured.
const LATENCY_LOAD: f64 = 0.5;
/// The token `nats-server --auth` is started with for the login shape.
const NATS_TOKEN: &str = "bench-token-0123456789abcdef";
/// How long the system may take to deliver what is in flight when senders stop.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A CPU share from which a process counts as the bottleneck.
const SATURATED: f64 = 0.9;
/// Open files the load generator needs beyond its connections.
const SPARE_FILES: u64 = 256;

/// `xtask load-run --server-bin PATH <bench options>`.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let (server_bin, rest) = match args {
        [flag, path, rest @ ..] if flag == "--server-bin" => (PathBuf::from(path), rest),
        _ => {
            eprintln!("usage: xtask load-run --server-bin PATH <bench options>");
            return ExitCode::from(2);
        }
    };
    let opts = match cli::parse_bench(rest) {
        Ok(Bench::Load(opts)) => opts,
        Ok(Bench::Micro(_)) => {
            eprintln!("xtask load-run: no load shape given");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("xtask load-run: {e}");
            return ExitCode::from(2);
        }
    };
    let cpus = cpu_count();
    // Before any thread starts, so all of them inherit the generator's core.
    let pinning = Pinning::apply();
    watch_signals();
    match run(&opts, &server_bin, &pinning, cpus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nbench: {e}");
            ExitCode::FAILURE
        }
    }
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

/// Everything a measurement needs to know.
struct Ctx<'a> {
    opts: &'a Options,
    server_bin: &'a Path,
    pinning: &'a Pinning,
    nats_bin: Option<PathBuf>,
    redis_bin: Option<PathBuf>,
}

fn run(opts: &Options, server_bin: &Path, pinning: &Pinning, cpus: usize) -> Result<(), String> {
    let mut ctx = Ctx {
        opts,
        server_bin,
        pinning,
        nats_bin: None,
        redis_bin: None,
    };
    println!("## cargo xtask bench {}", opts.to_args().join(" "));
    println!();
    for line in describe_machine(cpus) {
        println!("- {line}");
    }
    println!("- {}", pinning.describe());
    println!(
        "- Beckon over {}; peers over their own TCP protocols",
        opts.transport
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

    let mut systems = vec![System::Beckon];
    for peer in &opts.peers {
        match peer {
            System::Nats | System::Redis => {
                let program = if *peer == System::Nats {
                    "nats-server"
                } else {
                    "redis-server"
                };
                match procs::find_in_path(program) {
                    Some(bin) => {
                        println!("- {program}: {}", version_of(&bin));
                        if *peer == System::Nats {
                            ctx.nats_bin = Some(bin);
                        } else {
                            ctx.redis_bin = Some(bin);
                        }
                        systems.push(*peer);
                    }
                    None => println!(
                        "- {program} is not installed: skipping the {peer} column \
                         (Debian package `{program}`: apt-get install {program})"
                    ),
                }
            }
            System::Raw => {
                println!("- raw: the xtask's bare tokio forwarder");
                systems.push(System::Raw);
            }
            System::Beckon => {}
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
                        Shape::P2p | Shape::Fanout => 2,
                        Shape::Idle | Shape::Login => 1,
                    })
                    .sum::<usize>()
            })
            .sum::<usize>();
    let mut progress = Progress::new(total);
    let mut results = Results::default();
    for round in 1..=opts.rounds {
        for shape in &opts.shapes {
            for system in &systems {
                if !applies(*shape, *system) {
                    results.not_applicable(*shape, *system);
                    continue;
                }
                let (p, r) = (&mut progress, &mut results);
                let outcome = match shape {
                    Shape::P2p | Shape::Fanout => isolated(stream(&ctx, *shape, *system, p, r)),
                    Shape::Idle => isolated(idle(&ctx, *system, p, r)),
                    Shape::Login => isolated(login(&ctx, *system, p, r)),
                };
                let outcome = match outcome {
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
    print!("{}", results.table(&opts.shapes, &systems));
    let notes = results.notes();
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("- {n}");
        }
    }
    Ok(())
}

/// Whether a shape means anything for a system: Redis and the forwarder have no login.
fn applies(shape: Shape, system: System) -> bool {
    !(shape == Shape::Login && matches!(system, System::Redis | System::Raw))
}

/// A started server of any system.
enum Server {
    Beckon(BeckonServer),
    Nats(NatsServer),
    Redis(RedisServer),
    Raw(RawServer),
}

impl Server {
    fn proc(&mut self) -> &mut ServerProc {
        match self {
            Server::Beckon(s) => &mut s.proc,
            Server::Nats(s) => &mut s.proc,
            Server::Redis(s) => &mut s.proc,
            Server::Raw(s) => &mut s.proc,
        }
    }

    fn pid(&mut self) -> u32 {
        self.proc().pid()
    }

    /// The load's senders and receivers for a p2p or fan-out shape.
    fn spawn_stream(
        &self,
        shape: Shape,
        opts: &Options,
        shared: &Shared,
        flow: &Arc<Flow>,
        publisher: bool,
        tasks: &mut Tasks,
    ) {
        let members = opts.members;
        match (self, shape, publisher) {
            (Server::Beckon(s), Shape::P2p, _) => {
                beckon::p2p(&s.target, shared, opts.pairs, P2P_WINDOW, tasks);
            }
            (Server::Beckon(s), _, false) => {
                beckon::fanout_members(&s.target, shared, flow, members, tasks)
            }
            (Server::Beckon(s), _, true) => {
                beckon::fanout_publisher(&s.target, shared, flow, members, FANOUT_WINDOW, tasks)
            }
            (Server::Nats(s), Shape::P2p, _) => nats::p2p(s, shared, opts.pairs, P2P_WINDOW, tasks),
            (Server::Nats(s), _, false) => nats::fanout_members(s, shared, flow, members, tasks),
            (Server::Nats(s), _, true) => {
                nats::fanout_publisher(s, shared, flow, members, FANOUT_WINDOW, tasks)
            }
            (Server::Redis(s), Shape::P2p, _) => {
                redis_pubsub::p2p(s, shared, opts.pairs, P2P_WINDOW, tasks)
            }
            (Server::Redis(s), _, false) => {
                redis_pubsub::fanout_members(s, shared, flow, members, tasks)
            }
            (Server::Redis(s), _, true) => {
                redis_pubsub::fanout_publisher(s, shared, flow, members, FANOUT_WINDOW, tasks)
            }
            (Server::Raw(s), Shape::P2p, _) => {
                forwarder::p2p(s, shared, opts.pairs, P2P_WINDOW, tasks)
            }
            (Server::Raw(s), _, false) => {
                forwarder::fanout_members(s, shared, flow, members, tasks)
            }
            (Server::Raw(s), _, true) => {
                forwarder::fanout_publisher(s, shared, flow, members, FANOUT_WINDOW, tasks)
            }
        }
    }
}

/// Starts the server of `system` for `shape` (NATS requires a token for the login shape).
fn start_server(ctx: &Ctx<'_>, system: System, shape: Shape) -> Result<Server, String> {
    let connections = ctx.opts.sessions.max(ctx.opts.members) + ctx.opts.pairs * 2 + 64;
    let missing = |p: &str| format!("{p} is not installed");
    Ok(match system {
        System::Beckon => Server::Beckon(beckon::start(
            ctx.server_bin,
            ctx.pinning,
            ctx.opts.transport,
        )?),
        System::Nats => Server::Nats(nats::start(
            ctx.nats_bin
                .as_deref()
                .ok_or_else(|| missing("nats-server"))?,
            ctx.pinning,
            (shape == Shape::Login).then_some(NATS_TOKEN),
        )?),
        System::Redis => Server::Redis(redis_pubsub::start(
            ctx.redis_bin
                .as_deref()
                .ok_or_else(|| missing("redis-server"))?,
            ctx.pinning,
            connections,
        )?),
        System::Raw => Server::Raw(forwarder::start(ctx.pinning)?),
    })
}

/// Fails early when this process may not open `connections` sockets.
fn check_open_files(connections: usize) -> Result<(), String> {
    let needed = connections as u64 + SPARE_FILES;
    match procs::open_files_limit() {
        Some(limit) if limit < needed => Err(format!(
            "{connections} connections need about {needed} open files, but the limit is \
             {limit}; raise it (ulimit -n) or lower the count"
        )),
        _ => Ok(()),
    }
}

/// The warm-up before each measurement.
fn warm_up(opts: &Options) -> Duration {
    (opts.duration / 5).clamp(Duration::from_millis(200), Duration::from_secs(1))
}

/// Lets the load run for `d`, redrawing the progress line; fails if any task ends.
async fn hold(
    tasks: &mut Tasks,
    d: Duration,
    progress: &Progress,
    live: &dyn Fn(Duration) -> String,
) -> Result<(), String> {
    let start = Instant::now();
    let end = start + d;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let tick = (end - now).min(Duration::from_millis(250));
        tokio::select! {
            Some(r) = tasks.join_next() => return Err(task_end(r, "the load")),
            () = tokio::time::sleep(tick) => {}
        }
        let elapsed = start.elapsed();
        progress.update(
            elapsed.as_secs_f64() / d.as_secs_f64(),
            &format!(
                "{:.1}/{:.1} s  {}",
                elapsed.as_secs_f64(),
                d.as_secs_f64(),
                live(elapsed)
            ),
        );
    }
}

/// Waits until `n` tasks reported ready, with the count on the progress line.
async fn wait_ready(
    tasks: &mut Tasks,
    ready: &Semaphore,
    n: usize,
    what: &str,
    progress: &Progress,
) -> Result<(), String> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let have = ready.available_permits();
        progress.update(have as f64 / n as f64, &format!("{have}/{n} {what} set up"));
        if have >= n {
            if let Ok(p) = ready
                .acquire_many(u32::try_from(n).unwrap_or(u32::MAX))
                .await
            {
                p.forget();
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "setting up {n} {what} took longer than {SETUP_TIMEOUT:?} ({have} ready)"
            ));
        }
        tokio::select! {
            Some(r) = tasks.join_next() => return Err(task_end(r, &format!("setting up {what}"))),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Waits until deliveries stop (senders hold), at most [`QUIESCE_TIMEOUT`].
async fn quiesce(recorder: &Recorder, tasks: &mut Tasks) -> Result<(), String> {
    let deadline = Instant::now() + QUIESCE_TIMEOUT;
    let mut last = recorder.deliveries();
    while Instant::now() < deadline {
        tokio::select! {
            Some(r) = tasks.join_next() => return Err(task_end(r, "the load")),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let now = recorder.deliveries();
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

fn cpu_text(c: CpuShare) -> String {
    format!(
        "server CPU {:.0} %, generator CPU {:.0} %",
        c.server * 100.0,
        c.generator * 100.0
    )
}

/// The p2p or fan-out shape: peak, then latency at [`LATENCY_LOAD`] of it.
async fn stream(
    ctx: &Ctx<'_>,
    shape: Shape,
    system: System,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let opts = ctx.opts;
    let fanout = shape == Shape::Fanout;
    check_open_files(if fanout {
        opts.members + 1
    } else {
        opts.pairs * 2
    })?;
    progress.step(format!("{} · {system} · setup + peak", shape.name()));
    let mut server = start_server(ctx, system, shape)?;
    let pid = server.pid();
    let (control, control_rx) = watch::channel(Mode::Hold);
    let recorder = Arc::new(Recorder::default());
    let shared = Shared::new(control_rx, recorder.clone());
    let flow = Arc::new(Flow::default());
    let mut tasks = Tasks::new();
    let (per_message, senders) = if fanout {
        server.spawn_stream(shape, opts, &shared, &flow, false, &mut tasks);
        wait_ready(&mut tasks, &shared.ready, opts.members, "members", progress).await?;
        server.spawn_stream(shape, opts, &shared, &flow, true, &mut tasks);
        wait_ready(&mut tasks, &shared.ready, 1, "publisher", progress).await?;
        (opts.members as f64, 1.0)
    } else {
        server.spawn_stream(shape, opts, &shared, &flow, false, &mut tasks);
        wait_ready(
            &mut tasks,
            &shared.ready,
            opts.pairs * 2,
            "connections",
            progress,
        )
        .await?;
        (1.0, opts.pairs as f64)
    };
    let unit = if fanout { "deliveries/s" } else { "msg/s" };

    // Peak.
    let send = |m: Mode| control.send(m).map_err(|_| "the load is gone".to_owned());
    send(Mode::Flood)?;
    hold(&mut tasks, warm_up(opts), progress, &|_| {
        "warming up".into()
    })
    .await?;
    let (d0, t0, cpu) = (recorder.deliveries(), Instant::now(), CpuMeter::start(pid)?);
    let live = |_: Duration| {
        let rate = (recorder.deliveries() - d0) as f64 / t0.elapsed().as_secs_f64();
        format!("{} {unit}", thousands(rate))
    };
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let peak = (recorder.deliveries() - d0) as f64 / t0.elapsed().as_secs_f64();
    let peak_cpu = cpu.finish()?;
    server.proc().check_alive()?;
    send(Mode::Hold)?;
    quiesce(&recorder, &mut tasks).await?;
    if peak <= 0.0 {
        return Err("nothing was delivered".into());
    }

    // Latency at a share of the peak.
    let target = peak * LATENCY_LOAD;
    progress.step(format!(
        "{} · {system} · latency @ {}",
        shape.name(),
        thousands(target)
    ));
    send(Mode::Paced(target / per_message / senders))?;
    hold(&mut tasks, warm_up(opts), progress, &|_| {
        "warming up".into()
    })
    .await?;
    recorder.start_recording();
    let (d0, t0, cpu) = (recorder.deliveries(), Instant::now(), CpuMeter::start(pid)?);
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let mut samples = recorder.stop_recording();
    let achieved = (recorder.deliveries() - d0) as f64 / t0.elapsed().as_secs_f64();
    let paced_cpu = cpu.finish()?;
    send(Mode::Hold)?;
    server.proc().check_alive()?;
    tasks.shutdown().await;
    drop(server);

    // A saturated load generator, or one that fell behind the pace, measures itself too.
    if peak_cpu.generator >= SATURATED && peak_cpu.server < SATURATED {
        results.note(format!(
            "{} / {system}: the peak is bounded by the load generator ({})",
            shape.name(),
            cpu_text(peak_cpu)
        ));
    }
    if paced_cpu.generator >= SATURATED || achieved < target * 0.95 {
        results.note(format!(
            "{} / {system}: during the latency run the load generator was at {:.0} % CPU and \
             delivered {} of the {} {unit} asked: the latency includes queueing in the \
             generator",
            shape.name(),
            paced_cpu.generator * 100.0,
            thousands(achieved),
            thousands(target)
        ));
    }
    samples.sort_unstable();
    let us = |q: f64| quantile(&samples, q).map(|ns| ns as f64 / 1000.0);
    let (Some(p50), Some(p99), Some(p999)) = (us(0.5), us(0.99), us(0.999)) else {
        return Err("no latency samples".into());
    };
    let (rate_fig, p50_fig, p99_fig, server_fig, gen_fig) = if fanout {
        (
            Figure::FanoutRate,
            Figure::FanoutP50,
            Figure::FanoutP99,
            Figure::FanoutServerCpu,
            Figure::FanoutGeneratorCpu,
        )
    } else {
        (
            Figure::P2pRate,
            Figure::P2pP50,
            Figure::P2pP99,
            Figure::P2pServerCpu,
            Figure::P2pGeneratorCpu,
        )
    };
    results.add(rate_fig, system, peak);
    results.add(p50_fig, system, p50);
    results.add(p99_fig, system, p99);
    if !fanout {
        results.add(Figure::P2pP999, system, p999);
    }
    results.add(server_fig, system, peak_cpu.server * 100.0);
    results.add(gen_fig, system, peak_cpu.generator * 100.0);
    Ok(format!(
        "peak {} {unit} ({}); at {} {unit} ({}): p50 {p50:.0} µs, p99 {p99:.0} µs, \
         p999 {p999:.0} µs over {} samples",
        thousands(peak),
        cpu_text(peak_cpu),
        thousands(achieved),
        cpu_text(paced_cpu),
        samples.len()
    ))
}

/// The idle shape: server memory per logged-in session.
async fn idle(
    ctx: &Ctx<'_>,
    system: System,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let n = ctx.opts.sessions;
    check_open_files(n)?;
    progress.step(format!("idle · {system} · {n} sessions"));
    let mut server = start_server(ctx, system, Shape::Idle)?;
    let pid = server.pid();
    // Let the server finish starting before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = procs::rss_bytes(pid)?;
    let (_control, control_rx) = watch::channel(Mode::Hold);
    let shared = Shared::new(control_rx, Arc::new(Recorder::default()));
    let mut tasks = Tasks::new();
    match &server {
        Server::Beckon(s) => beckon::idle(&s.target, &shared, n, &mut tasks),
        Server::Nats(s) => nats::idle(s, &shared, n, &mut tasks),
        Server::Redis(s) => redis_pubsub::idle(s, &shared, n, &mut tasks),
        Server::Raw(s) => forwarder::idle(s, &shared, n, &mut tasks),
    }
    wait_ready(&mut tasks, &shared.ready, n, "sessions", progress).await?;
    let live = |_: Duration| {
        procs::rss_bytes(pid)
            .map(|rss| format!("server RSS {} MiB", rss >> 20))
            .unwrap_or_default()
    };
    hold(&mut tasks, ctx.opts.duration, progress, &live).await?;
    let after = procs::rss_bytes(pid)?;
    server.proc().check_alive()?;
    tasks.shutdown().await;
    drop(server);
    let per_session = after.saturating_sub(before) as f64 / n as f64;
    results.add(Figure::IdleBytes, system, per_session);
    Ok(format!(
        "{} bytes/session (server RSS {} MiB → {} MiB for {n} sessions)",
        thousands(per_session),
        before >> 20,
        after >> 20
    ))
}

/// The login shape: logins per second over `--conns` concurrent connections.
async fn login(
    ctx: &Ctx<'_>,
    system: System,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let opts = ctx.opts;
    check_open_files(opts.conns * 2)?;
    progress.step(format!("login · {system}"));
    let mut server = start_server(ctx, system, Shape::Login)?;
    let pid = server.pid();
    let logins = Arc::new(AtomicU64::new(0));
    let mut tasks = Tasks::new();
    match &server {
        Server::Beckon(s) => beckon::login(&s.target, opts.conns, &logins, &mut tasks),
        Server::Nats(s) => nats::login(s, NATS_TOKEN, opts.conns, &logins, &mut tasks),
        Server::Redis(_) | Server::Raw(_) => {
            return Err(format!("{system} has no login to measure"));
        }
    }
    hold(&mut tasks, warm_up(opts), progress, &|_| {
        "warming up".into()
    })
    .await?;
    let count = || logins.load(Ordering::Relaxed);
    let (c0, t0, cpu) = (count(), Instant::now(), CpuMeter::start(pid)?);
    let live = |_: Duration| {
        format!(
            "{} logins/s",
            thousands((count() - c0) as f64 / t0.elapsed().as_secs_f64())
        )
    };
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let rate = (count() - c0) as f64 / t0.elapsed().as_secs_f64();
    let share = cpu.finish()?;
    if share.generator >= SATURATED && share.server < SATURATED {
        results.note(format!(
            "login / {system}: bounded by the load generator ({})",
            cpu_text(share)
        ));
    }
    server.proc().check_alive()?;
    tasks.shutdown().await;
    drop(server);
    results.add(Figure::LoginRate, system, rate);
    results.add(Figure::LoginServerCpu, system, share.server * 100.0);
    results.add(Figure::LoginGeneratorCpu, system, share.generator * 100.0);
    Ok(format!(
        "{} logins/s ({})",
        thousands(rate),
        cpu_text(share)
    ))
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
