//! One measurement of one shape on one system, for any [`Driver`]: start a fresh server, set
//! the shape's connections up ([`crate::shapes`]), measure, stop everything.
//!
//! The p2p and fan-out shapes measure twice on the same connections: first the peak (senders
//! flood within their windows), then latency at half that peak (senders paced). Each
//! measurement starts after a short warm-up and lasts `--duration`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use crate::callgrind;
use crate::cli::{Options, Shape, System};
use crate::driver::Driver;
use crate::load::{Flow, Mode, Recorder, SETUP_TIMEOUT, Shared, Tasks, task_end};
use crate::procs::{self, CpuMeter, CpuShare, Pinning};
use crate::report::{Figure, Progress, Results, quantile, thousands};
use crate::shapes;

/// The share of the peak at which latency is measured.
const LATENCY_LOAD: f64 = 0.5;
/// How long the system may take to deliver what is in flight when senders stop.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(5);
/// A CPU share from which a process counts as the bottleneck.
const SATURATED: f64 = 0.9;
/// Open files the load generator needs beyond its connections.
const SPARE_FILES: u64 = 256;

/// Everything a measurement needs to know.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) server_bin: &'a Path,
    pub(crate) pinning: &'a Pinning,
    /// The executables of the peers found installed.
    pub(crate) peer_bins: Vec<(System, PathBuf)>,
    /// Set while measuring under callgrind: servers then run under valgrind, writing their
    /// profiles into this directory.
    pub(crate) callgrind: Option<PathBuf>,
}

impl Ctx<'_> {
    /// The command that starts a server `program`: pinned to the servers' core, and under
    /// valgrind's callgrind (with instrumentation off until the workload starts) while
    /// measuring instructions.
    pub(crate) fn server_command(&self, program: &Path) -> Command {
        match &self.callgrind {
            None => self.pinning.command(program),
            Some(dir) => {
                let mut cmd = self.pinning.command(Path::new("valgrind"));
                cmd.args(["--tool=callgrind", "--instr-atstart=no"])
                    .arg(format!(
                        "--callgrind-out-file={}/callgrind.%p",
                        dir.display()
                    ))
                    .arg(program);
                // Go's asynchronous preemption signals trip callgrind (nats-server).
                cmd.env("GODEBUG", "asyncpreemptoff=1");
                cmd
            }
        }
    }

    /// The executable of the peer `system`.
    #[cfg_attr(not(feature = "peers"), allow(dead_code, reason = "for the peers"))]
    pub(crate) fn peer_bin(&self, system: System) -> Result<&Path, String> {
        self.peer_bins
            .iter()
            .find(|(s, _)| *s == system)
            .map(|(_, bin)| bin.as_path())
            .ok_or_else(|| format!("no {system} server is installed"))
    }
}

/// Measures `shape` on the system `D` drives; the line to print, or why it failed.
pub(crate) async fn shape<D: Driver>(
    ctx: &Ctx<'_>,
    shape: Shape,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    match shape {
        Shape::P2p | Shape::Fanout => stream::<D>(ctx, shape, progress, results).await,
        Shape::Callgrind => callgrind::measure::<D>(ctx, progress, results).await,
        Shape::Idle => idle::<D>(ctx, progress, results).await,
        Shape::Login => login::<D>(ctx, progress, results).await,
    }
}

/// Fails early when this process may not open `connections` sockets.
pub(crate) fn check_open_files(connections: usize) -> Result<(), String> {
    let needed = connections as u64 + SPARE_FILES;
    match procs::open_files_limit() {
        Some(limit) if limit < needed => Err(format!(
            "{connections} connections need about {needed} open files, but the limit is \
             {limit} (the hard limit, `ulimit -Hn`, which only a privileged user can raise); \
             lower the count"
        )),
        _ => Ok(()),
    }
}

/// The warm-up before each measurement.
fn warm_up(opts: &Options) -> Duration {
    (opts.duration / 5).clamp(Duration::from_millis(200), Duration::from_secs(1))
}

/// Lets the load run for `d`, redrawing the progress line; fails if any task ends.
pub(crate) async fn hold(
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

/// [`hold`] for the warm-up.
async fn warm(tasks: &mut Tasks, opts: &Options, progress: &Progress) -> Result<(), String> {
    hold(tasks, warm_up(opts), progress, &|_| "warming up".into()).await
}

/// Waits until `n` tasks reported ready, with the count on the progress line.
pub(crate) async fn wait_ready(
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
pub(crate) async fn quiesce(recorder: &Recorder, tasks: &mut Tasks) -> Result<(), String> {
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

/// The figures of a p2p or fan-out measurement.
struct StreamFigures {
    rate: Figure,
    cpu_peak: Figure,
    cpu_fixed: Figure,
    kernel_fixed: Figure,
    p50: Figure,
    p99: Figure,
    p999: Option<Figure>,
    server_cpu: Figure,
    generator_cpu: Figure,
}

impl StreamFigures {
    fn of(shape: Shape) -> Self {
        if shape == Shape::Fanout {
            Self {
                rate: Figure::FanoutRate,
                cpu_peak: Figure::FanoutCpuPeak,
                cpu_fixed: Figure::FanoutCpuFixed,
                kernel_fixed: Figure::FanoutKernelFixed,
                p50: Figure::FanoutP50,
                p99: Figure::FanoutP99,
                p999: None,
                server_cpu: Figure::FanoutServerCpu,
                generator_cpu: Figure::FanoutGeneratorCpu,
            }
        } else {
            Self {
                rate: Figure::P2pRate,
                cpu_peak: Figure::P2pCpuPeak,
                cpu_fixed: Figure::P2pCpuFixed,
                kernel_fixed: Figure::P2pKernelFixed,
                p50: Figure::P2pP50,
                p99: Figure::P2pP99,
                p999: Some(Figure::P2pP999),
                server_cpu: Figure::P2pServerCpu,
                generator_cpu: Figure::P2pGeneratorCpu,
            }
        }
    }
}

/// Sets up the connections of the p2p or fan-out shape and waits until they are ready;
/// returns the deliveries that make one message, and the number of senders.
pub(crate) async fn set_up_stream<D: Driver>(
    driver: &D,
    opts: &Options,
    fanout: bool,
    shared: &Shared,
    tasks: &mut Tasks,
    progress: &Progress,
) -> Result<(f64, f64), String> {
    Ok(if fanout {
        let flow = Arc::new(Flow::default());
        shapes::fanout_members(driver, shared, &flow, opts.members, tasks);
        wait_ready(tasks, &shared.ready, opts.members, "members", progress).await?;
        shapes::fanout_publisher(driver, shared, &flow, opts.members, tasks);
        wait_ready(tasks, &shared.ready, 1, "publisher", progress).await?;
        (opts.members as f64, 1.0)
    } else {
        shapes::p2p(driver, shared, opts.pairs, tasks);
        let n = opts.pairs * 2;
        wait_ready(tasks, &shared.ready, n, "connections", progress).await?;
        (1.0, opts.pairs as f64)
    })
}

/// The p2p or fan-out shape: peak, then a fixed offered load (`--p2p-rate`,
/// `--fanout-rate`), then latency at [`LATENCY_LOAD`] of the peak. Server CPU per delivery
/// comes from the first two.
async fn stream<D: Driver>(
    ctx: &Ctx<'_>,
    shape: Shape,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let (opts, system) = (ctx.opts, D::SYSTEM);
    let fanout = shape == Shape::Fanout;
    check_open_files(if fanout {
        opts.members + 1
    } else {
        opts.pairs * 2
    })?;
    progress.step(format!("{} · {system} · setup + peak", shape.name()));
    let (mut server, driver) = D::start(ctx, shape)?;
    let pids = server.pids();
    let (control, control_rx) = watch::channel(Mode::Hold);
    let recorder = Arc::new(Recorder::default());
    let shared = Shared::new(control_rx, recorder.clone());
    let mut tasks = Tasks::new();
    let (per_message, senders) =
        set_up_stream(&driver, opts, fanout, &shared, &mut tasks, progress).await?;
    let unit = if fanout { "deliveries/s" } else { "msg/s" };

    // Peak.
    let send = |m: Mode| control.send(m).map_err(|_| "the load is gone".to_owned());
    send(Mode::Flood)?;
    warm(&mut tasks, opts, progress).await?;
    let (d0, t0, cpu) = (
        recorder.deliveries(),
        Instant::now(),
        CpuMeter::start(&pids)?,
    );
    let live = |_: Duration| {
        let rate = (recorder.deliveries() - d0) as f64 / t0.elapsed().as_secs_f64();
        format!("{} {unit}", thousands(rate))
    };
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let peak_deliveries = recorder.deliveries() - d0;
    let peak = peak_deliveries as f64 / t0.elapsed().as_secs_f64();
    let peak_cpu = cpu.finish()?;
    server.check_alive()?;
    send(Mode::Hold)?;
    quiesce(&recorder, &mut tasks).await?;
    if peak <= 0.0 {
        return Err("nothing was delivered".into());
    }

    // A fixed offered load, the same for every system: server CPU per delivery where neither
    // side is saturated.
    let fixed = if fanout {
        opts.fanout_rate
    } else {
        opts.p2p_rate
    } as f64;
    progress.step(format!(
        "{} · {system} · fixed {}",
        shape.name(),
        thousands(fixed)
    ));
    send(Mode::Paced(fixed / per_message / senders))?;
    warm(&mut tasks, opts, progress).await?;
    let (d0, t0, cpu) = (
        recorder.deliveries(),
        Instant::now(),
        CpuMeter::start(&pids)?,
    );
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let fixed_deliveries = recorder.deliveries() - d0;
    let fixed_achieved = fixed_deliveries as f64 / t0.elapsed().as_secs_f64();
    let fixed_cpu = cpu.finish()?;
    server.check_alive()?;
    send(Mode::Hold)?;
    quiesce(&recorder, &mut tasks).await?;

    // Latency at a share of the peak.
    let target = peak * LATENCY_LOAD;
    progress.step(format!(
        "{} · {system} · latency @ {}",
        shape.name(),
        thousands(target)
    ));
    send(Mode::Paced(target / per_message / senders))?;
    warm(&mut tasks, opts, progress).await?;
    recorder.start_recording();
    let (d0, t0, cpu) = (
        recorder.deliveries(),
        Instant::now(),
        CpuMeter::start(&pids)?,
    );
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let mut samples = recorder.stop_recording();
    let achieved = (recorder.deliveries() - d0) as f64 / t0.elapsed().as_secs_f64();
    let paced_cpu = cpu.finish()?;
    send(Mode::Hold)?;
    server.check_alive()?;
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
    if fixed_achieved < fixed * 0.95
        || fixed_cpu.generator >= SATURATED
        || fixed_cpu.server >= SATURATED
    {
        results.note(format!(
            "{} / {system}: at the fixed load of {} {unit}, {} were delivered ({}): CPU per \
             delivery there is not an unsaturated figure",
            shape.name(),
            thousands(fixed),
            thousands(fixed_achieved),
            cpu_text(fixed_cpu)
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
    let figures = StreamFigures::of(shape);
    results.add(figures.rate, system, peak);
    let peak_per = peak_cpu.server_micros_per(peak_deliveries);
    if let Some((us, _)) = peak_per {
        results.add(figures.cpu_peak, system, us);
    }
    let fixed_per = fixed_cpu.server_micros_per(fixed_deliveries);
    if let Some((us, kernel)) = fixed_per {
        results.add(figures.cpu_fixed, system, us);
        results.add(figures.kernel_fixed, system, kernel * 100.0);
    }
    results.add(figures.p50, system, p50);
    results.add(figures.p99, system, p99);
    if let Some(p999_figure) = figures.p999 {
        results.add(p999_figure, system, p999);
    }
    results.add(figures.server_cpu, system, peak_cpu.server * 100.0);
    results.add(figures.generator_cpu, system, peak_cpu.generator * 100.0);
    let per = |p: Option<(f64, f64)>| {
        p.map_or_else(
            || "-".to_owned(),
            |(us, kernel)| format!("{us:.2} µs/delivery, {:.0} % kernel", kernel * 100.0),
        )
    };
    Ok(format!(
        "peak {} {unit} ({}; {}); fixed {} {unit} ({}; {}); at {} {unit} ({}): p50 {p50:.0} \
         µs, p99 {p99:.0} µs, p999 {p999:.0} µs over {} samples",
        thousands(peak),
        cpu_text(peak_cpu),
        per(peak_per),
        thousands(fixed_achieved),
        cpu_text(fixed_cpu),
        per(fixed_per),
        thousands(achieved),
        cpu_text(paced_cpu),
        samples.len()
    ))
}

/// The idle shape: server memory per session.
async fn idle<D: Driver>(
    ctx: &Ctx<'_>,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let (n, system) = (ctx.opts.sessions, D::SYSTEM);
    check_open_files(n)?;
    progress.step(format!("idle · {system} · {n} sessions"));
    let (mut server, driver) = D::start(ctx, Shape::Idle)?;
    let pids = server.pids();
    // Let the server finish starting before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = procs::rss_total(&pids)?;
    let (_control, control_rx) = watch::channel(Mode::Hold);
    let shared = Shared::new(control_rx, Arc::new(Recorder::default()));
    let mut tasks = Tasks::new();
    shapes::idle(&driver, &shared, n, &mut tasks);
    wait_ready(&mut tasks, &shared.ready, n, "sessions", progress).await?;
    let live = |_: Duration| {
        procs::rss_total(&pids)
            .map(|rss| format!("server RSS {} MiB", rss >> 20))
            .unwrap_or_default()
    };
    hold(&mut tasks, ctx.opts.duration, progress, &live).await?;
    let after = procs::rss_total(&pids)?;
    server.check_alive()?;
    tasks.shutdown().await;
    drop(server);
    let per_session = after.saturating_sub(before) as f64 / n as f64;
    results.add(Figure::IdleBytes, system, per_session);
    results.add(Figure::IdleRss, system, after as f64 / f64::from(1 << 20));
    Ok(format!(
        "{} bytes/session (server RSS {} MiB → {} MiB for {n} sessions)",
        thousands(per_session),
        before >> 20,
        after >> 20
    ))
}

/// The login shape: logins per second over `--conns` concurrent connections.
async fn login<D: Driver>(
    ctx: &Ctx<'_>,
    progress: &mut Progress,
    results: &mut Results,
) -> Result<String, String> {
    let (opts, system) = (ctx.opts, D::SYSTEM);
    check_open_files(opts.conns * 2)?;
    progress.step(format!("login · {system}"));
    let (mut server, driver) = D::start(ctx, Shape::Login)?;
    let pids = server.pids();
    let logins = Arc::new(AtomicU64::new(0));
    let mut tasks = Tasks::new();
    shapes::login(&driver, opts.conns, &logins, &mut tasks);
    warm(&mut tasks, opts, progress).await?;
    let count = || logins.load(Ordering::Relaxed);
    let (c0, t0, cpu) = (count(), Instant::now(), CpuMeter::start(&pids)?);
    let live = |_: Duration| {
        format!(
            "{} logins/s",
            thousands((count() - c0) as f64 / t0.elapsed().as_secs_f64())
        )
    };
    hold(&mut tasks, opts.duration, progress, &live).await?;
    let done = count() - c0;
    let rate = done as f64 / t0.elapsed().as_secs_f64();
    let share = cpu.finish()?;
    if share.generator >= SATURATED && share.server < SATURATED {
        results.note(format!(
            "login / {system}: bounded by the load generator ({})",
            cpu_text(share)
        ));
    }
    server.check_alive()?;
    tasks.shutdown().await;
    drop(server);
    results.add(Figure::LoginRate, system, rate);
    let per = share.server_micros_per(done);
    if let Some((us, kernel)) = per {
        results.add(Figure::LoginCpu, system, us);
        results.add(Figure::LoginKernel, system, kernel * 100.0);
    }
    results.add(Figure::LoginServerCpu, system, share.server * 100.0);
    results.add(Figure::LoginGeneratorCpu, system, share.generator * 100.0);
    Ok(format!(
        "{} logins/s ({}{})",
        thousands(rate),
        cpu_text(share),
        per.map_or_else(String::new, |(us, kernel)| format!(
            "; {us:.1} µs of server CPU per login, {:.0} % of it in the kernel",
            kernel * 100.0
        ))
    ))
}
