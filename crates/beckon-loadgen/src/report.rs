//! What the benchmark shows: a progress line while it runs, and the final table — one row per
//! figure, one column per system, then the Beckon/peer ratios — of medians over the rounds.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::cli::{Options, Shape, System};

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Figure {
    P2pRate,
    P2pCpuPeak,
    P2pCpuFixed,
    P2pKernelFixed,
    P2pInstructions,
    P2pP50,
    P2pP99,
    P2pP999,
    P2pServerCpu,
    P2pGeneratorCpu,
    FanoutRate,
    FanoutCpuPeak,
    FanoutCpuFixed,
    FanoutKernelFixed,
    FanoutInstructions,
    FanoutP50,
    FanoutP99,
    FanoutServerCpu,
    FanoutGeneratorCpu,
    IdleBytes,
    IdleRss,
    LoginRate,
    LoginCpu,
    LoginKernel,
    LoginServerCpu,
    LoginGeneratorCpu,
}

/// How a figure reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A rate: more is better.
    Rate,
    /// A latency, a CPU time, an instruction count or memory: less is better.
    Cost,
    /// A share in percent (of one core, or of the server's CPU time): context, no ratio.
    Percent,
}

impl Figure {
    pub(crate) const ALL: [Figure; 26] = [
        Figure::P2pRate,
        Figure::P2pCpuPeak,
        Figure::P2pCpuFixed,
        Figure::P2pKernelFixed,
        Figure::P2pInstructions,
        Figure::P2pP50,
        Figure::P2pP99,
        Figure::P2pP999,
        Figure::P2pServerCpu,
        Figure::P2pGeneratorCpu,
        Figure::FanoutRate,
        Figure::FanoutCpuPeak,
        Figure::FanoutCpuFixed,
        Figure::FanoutKernelFixed,
        Figure::FanoutInstructions,
        Figure::FanoutP50,
        Figure::FanoutP99,
        Figure::FanoutServerCpu,
        Figure::FanoutGeneratorCpu,
        Figure::IdleBytes,
        Figure::IdleRss,
        Figure::LoginRate,
        Figure::LoginCpu,
        Figure::LoginKernel,
        Figure::LoginServerCpu,
        Figure::LoginGeneratorCpu,
    ];

    fn label(self, opts: &Options) -> String {
        match self {
            Figure::P2pRate => "p2p msg/s (peak)".into(),
            Figure::P2pCpuPeak => "p2p server CPU µs/msg (peak)".into(),
            Figure::P2pCpuFixed => format!(
                "p2p server CPU µs/msg at {} msg/s",
                thousands(opts.p2p_rate as f64)
            ),
            Figure::P2pKernelFixed => "  of which kernel %".into(),
            Figure::P2pInstructions => format!(
                "p2p server instructions/msg (callgrind, {} msgs)",
                thousands(opts.cg_messages as f64)
            ),
            Figure::P2pP50 => "p2p p50 µs (at 50 % of peak)".into(),
            Figure::P2pP99 => "p2p p99 µs".into(),
            Figure::P2pP999 => "p2p p999 µs".into(),
            Figure::P2pServerCpu => "p2p peak: server CPU %".into(),
            Figure::P2pGeneratorCpu => "p2p peak: generator CPU %".into(),
            Figure::FanoutRate => "fanout deliveries/s (peak)".into(),
            Figure::FanoutCpuPeak => "fanout server CPU µs/delivery (peak)".into(),
            Figure::FanoutCpuFixed => format!(
                "fanout server CPU µs/delivery at {}/s",
                thousands(opts.fanout_rate as f64)
            ),
            Figure::FanoutKernelFixed => "  of which kernel %".into(),
            Figure::FanoutInstructions => format!(
                "fanout server instructions/delivery (callgrind, {} × {})",
                thousands(opts.cg_fanouts as f64),
                thousands(opts.members as f64)
            ),
            Figure::FanoutP50 => "fanout p50 µs (at 50 % of peak)".into(),
            Figure::FanoutP99 => "fanout p99 µs".into(),
            Figure::FanoutServerCpu => "fanout peak: server CPU %".into(),
            Figure::FanoutGeneratorCpu => "fanout peak: generator CPU %".into(),
            Figure::IdleBytes => "idle bytes/session (server RSS)".into(),
            Figure::IdleRss => format!(
                "idle server RSS MiB ({} sessions)",
                thousands(opts.sessions as f64)
            ),
            Figure::LoginRate => "logins/s (raw: connect, frame each way, close)".into(),
            Figure::LoginCpu => "login: server CPU µs/login".into(),
            Figure::LoginKernel => "  of which kernel %".into(),
            Figure::LoginServerCpu => "login: server CPU %".into(),
            Figure::LoginGeneratorCpu => "login: generator CPU %".into(),
        }
    }

    fn kind(self) -> Kind {
        match self {
            Figure::P2pRate | Figure::FanoutRate | Figure::LoginRate => Kind::Rate,
            Figure::P2pKernelFixed
            | Figure::FanoutKernelFixed
            | Figure::LoginKernel
            | Figure::P2pServerCpu
            | Figure::P2pGeneratorCpu
            | Figure::FanoutServerCpu
            | Figure::FanoutGeneratorCpu
            | Figure::LoginServerCpu
            | Figure::LoginGeneratorCpu => Kind::Percent,
            _ => Kind::Cost,
        }
    }

    fn shape(self) -> Shape {
        match self {
            Figure::P2pRate
            | Figure::P2pCpuPeak
            | Figure::P2pCpuFixed
            | Figure::P2pKernelFixed
            | Figure::P2pP50
            | Figure::P2pP99
            | Figure::P2pP999
            | Figure::P2pServerCpu
            | Figure::P2pGeneratorCpu => Shape::P2p,
            Figure::FanoutRate
            | Figure::FanoutCpuPeak
            | Figure::FanoutCpuFixed
            | Figure::FanoutKernelFixed
            | Figure::FanoutP50
            | Figure::FanoutP99
            | Figure::FanoutServerCpu
            | Figure::FanoutGeneratorCpu => Shape::Fanout,
            Figure::P2pInstructions | Figure::FanoutInstructions => Shape::Callgrind,
            Figure::IdleBytes | Figure::IdleRss => Shape::Idle,
            Figure::LoginRate
            | Figure::LoginCpu
            | Figure::LoginKernel
            | Figure::LoginServerCpu
            | Figure::LoginGeneratorCpu => Shape::Login,
        }
    }

    fn format(self, v: f64) -> String {
        match (self, self.kind()) {
            (Figure::P2pCpuPeak | Figure::P2pCpuFixed, _)
            | (Figure::FanoutCpuPeak | Figure::FanoutCpuFixed | Figure::LoginCpu, _) => {
                if v < 10.0 {
                    format!("{v:.2}")
                } else {
                    format!("{v:.1}")
                }
            }
            (_, Kind::Rate) => thousands(v),
            (Figure::IdleBytes | Figure::P2pInstructions | Figure::FanoutInstructions, _) => {
                thousands(v)
            }
            (Figure::IdleRss, _) => format!("{v:.0}"),
            (_, Kind::Cost) if v < 100.0 => format!("{v:.1}"),
            (_, Kind::Cost) => thousands(v),
            (_, Kind::Percent) => format!("{v:.0}"),
        }
    }
}

/// `1234567.8` → `1,234,568`.
pub(crate) fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// The `q` quantile (0..=1) of sorted samples.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Everything measured, round by round.
#[derive(Debug, Default)]
pub(crate) struct Results {
    values: BTreeMap<(Figure, System), Vec<f64>>,
    /// Cells where a round failed, with the reason.
    failures: BTreeMap<(Shape, System), Vec<String>>,
    /// Cells where the shape does not apply to the system.
    not_applicable: Vec<(Shape, System)>,
    /// Caveats about single measurements.
    notes: Vec<String>,
}

impl Results {
    pub(crate) fn add(&mut self, figure: Figure, system: System, value: f64) {
        self.values.entry((figure, system)).or_default().push(value);
    }

    pub(crate) fn fail(&mut self, shape: Shape, system: System, why: String) {
        self.failures.entry((shape, system)).or_default().push(why);
    }

    /// A caveat printed under the table.
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn not_applicable(&mut self, shape: Shape, system: System) {
        if !self.not_applicable.contains(&(shape, system)) {
            self.not_applicable.push((shape, system));
        }
    }

    fn cell(&self, figure: Figure, system: System) -> Cell {
        if self.not_applicable.contains(&(figure.shape(), system)) {
            return Cell::NotApplicable;
        }
        match self.values.get(&(figure, system)).and_then(|v| median(v)) {
            Some(v) => Cell::Value(v),
            None if self.failures.contains_key(&(figure.shape(), system)) => Cell::Failed,
            None => Cell::Missing,
        }
    }

    /// The table as Markdown: figures of the shapes that ran, columns of the systems that
    /// ran, then Beckon/peer ratios.
    pub(crate) fn table(&self, opts: &Options, systems: &[System]) -> String {
        let shapes = &opts.shapes;
        let peers: Vec<System> = systems
            .iter()
            .copied()
            .filter(|s| *s != System::Beckon)
            .collect();
        let mut header = vec!["figure".to_owned()];
        header.extend(systems.iter().map(|s| s.name().to_owned()));
        header.extend(peers.iter().map(|p| format!("beckon/{p}")));
        let mut rows = vec![header];
        for figure in Figure::ALL {
            if !shapes.contains(&figure.shape()) {
                continue;
            }
            let mut row = vec![figure.label(opts)];
            for s in systems {
                row.push(match self.cell(figure, *s) {
                    Cell::Value(v) => figure.format(v),
                    Cell::NotApplicable => "n/a".into(),
                    Cell::Failed => "failed".into(),
                    Cell::Missing => "-".into(),
                });
            }
            for p in &peers {
                let ratio = match (
                    figure.kind(),
                    self.cell(figure, System::Beckon),
                    self.cell(figure, *p),
                ) {
                    (Kind::Percent, _, _) => String::new(),
                    (_, Cell::Value(b), Cell::Value(v)) if v > 0.0 => format!("{:.2}×", b / v),
                    _ => "-".into(),
                };
                row.push(ratio);
            }
            rows.push(row);
        }
        markdown(&rows)
    }

    /// Notes under the table: every caveat, and every failure with its reason.
    pub(crate) fn notes(&self) -> Vec<String> {
        let failures = self.failures.iter().flat_map(|((shape, system), whys)| {
            whys.iter()
                .map(move |why| format!("{} / {system} failed: {why}", shape.name()))
        });
        self.notes.iter().cloned().chain(failures).collect()
    }
}

enum Cell {
    Value(f64),
    NotApplicable,
    Failed,
    Missing,
}

fn markdown(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| {
        rows.iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let line = |r: &Vec<String>| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pad = widths[i] - s.chars().count();
                if i == 0 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&line(r));
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        "-".repeat(*w)
                    } else {
                        format!("{}:", "-".repeat(w.saturating_sub(1)))
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", rule.join(" | ")));
        }
    }
    out
}

/// The progress line on stderr: redrawn in place on a terminal, one line per step otherwise.
#[derive(Debug)]
pub(crate) struct Progress {
    total: usize,
    step: usize,
    label: String,
    tty: bool,
    started: Instant,
}

impl Progress {
    pub(crate) fn new(total: usize) -> Self {
        Self {
            total,
            step: 0,
            label: String::new(),
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// Starts the next step (one measurement, or one setup).
    pub(crate) fn step(&mut self, label: String) {
        self.step += 1;
        self.label = label;
        if self.tty {
            self.draw(0.0, "");
        } else {
            eprintln!(
                "[{}/{}] {} ({:.0} s in)",
                self.step,
                self.total,
                self.label,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// Redraws the current step: `done` in 0..=1, with a live figure.
    pub(crate) fn update(&self, done: f64, live: &str) {
        if self.tty {
            self.draw(done, live);
        }
    }

    fn draw(&self, done: f64, live: &str) {
        const WIDTH: usize = 24;
        let filled = ((done.clamp(0.0, 1.0) * WIDTH as f64) as usize).min(WIDTH);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K[{}/{}] {:<34} [{bar}] {live}",
            self.step, self.total, self.label
        );
        let _ = err.flush();
    }

    /// Clears the line before ordinary output.
    pub(crate) fn clear(&self) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.2), "0");
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.99), Some(4));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
    }

    #[test]
    fn table_has_medians_ratios_and_gaps() {
        let mut r = Results::default();
        for v in [100.0, 300.0, 200.0] {
            r.add(Figure::P2pRate, System::Beckon, v);
        }
        r.add(Figure::P2pRate, System::Nats, 100.0);
        r.fail(Shape::P2p, System::Raw, "refused".into());
        r.not_applicable(Shape::Login, System::Raw);
        let opts = Options {
            shapes: vec![Shape::P2p, Shape::Login],
            ..Options::default()
        };
        let t = r.table(&opts, &[System::Beckon, System::Nats, System::Raw]);
        let p2p = t.lines().find(|l| l.contains("p2p msg/s")).unwrap();
        assert!(p2p.contains("200"), "{t}");
        assert!(p2p.contains("2.00×"), "{t}");
        assert!(p2p.contains("failed"), "{t}");
        let login = t.lines().find(|l| l.contains("logins/s")).unwrap();
        assert!(login.contains("n/a"), "{t}");
        assert!(!t.contains("fanout"), "{t}");
        assert_eq!(r.notes(), ["p2p / raw failed: refused"]);
    }
}
