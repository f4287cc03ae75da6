//! Child server processes and what Linux tells about processes: pinning to cores, resident
//! memory (`/proc/<pid>/status`) and CPU time (`/proc/<pid>/stat`).
//!
//! Every server the benchmark starts is a [`ServerProc`], which kills the process when dropped —
//! on success, on error and while a panic unwinds — so no server outlives the run.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// How long a server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a server's stderr is kept for error messages.
const LOG_TAIL: usize = 4096;

/// Where servers and the load generator run.
#[derive(Clone, Debug)]
pub(crate) struct Pinning {
    /// The core servers run on (`taskset -c N`), when pinning.
    pub(crate) server_core: Option<usize>,
    /// The core the load generator runs on, when pinning.
    pub(crate) generator_core: Option<usize>,
    /// Why there is no pinning, when there is none.
    pub(crate) why_not: Option<String>,
}

impl Pinning {
    /// Decides the cores: the first two this process may use, if it may use two and `taskset`
    /// is installed; pins the calling thread (and so every thread it starts later) to the
    /// generator's core.
    pub(crate) fn apply() -> Self {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let none = |why: String| Pinning {
            server_core: None,
            generator_core: None,
            why_not: Some(why),
        };
        if cores.len() < 2 {
            return none(format!(
                "only {} core available: servers and the load generator share it",
                cores.len()
            ));
        }
        if find_in_path("taskset").is_none() {
            return none(
                "taskset is not installed (Debian package util-linux): nothing is pinned".into(),
            );
        }
        let (server, generator) = (cores[0], cores[1]);
        // Threads inherit the affinity of the thread that creates them, so pinning this thread
        // before the runtime starts pins the whole load generator.
        if !core_affinity::set_for_current(generator) {
            return none("sched_setaffinity failed: nothing is pinned".into());
        }
        Pinning {
            server_core: Some(server.id),
            generator_core: Some(generator.id),
            why_not: None,
        }
    }

    /// A line for the report.
    pub(crate) fn describe(&self) -> String {
        match (self.server_core, self.generator_core, &self.why_not) {
            (Some(s), Some(g), _) => format!(
                "pinned: every server on CPU {s} (taskset -c {s}), the load generator on CPU {g}"
            ),
            (_, _, Some(why)) => format!("not pinned: {why}"),
            _ => "not pinned".into(),
        }
    }

    /// `program args…`, under `taskset -c N` when pinning.
    pub(crate) fn command(&self, program: &Path) -> Command {
        match self.server_core {
            Some(core) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(core.to_string()).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// The first `name` on `PATH` that is a file.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Starts a server that cannot be told port 0 on a port of 127.0.0.1 that was free a moment
/// ago (`command` makes its command line for that port), and waits until it accepts
/// connections there; returns it and the port.
#[cfg_attr(not(feature = "peers"), allow(dead_code, reason = "for the peers"))]
pub(crate) fn start_on_free_port(
    name: &str,
    command: impl FnOnce(&str) -> Command,
) -> Result<(ServerProc, u16), String> {
    let free = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
    let port = free.map_err(|e| format!("no free port: {e}"))?.port();
    let ready = Ready::Accepts(([127, 0, 0, 1], port).into());
    let (proc, _) = ServerProc::start(name, command(&port.to_string()), ready)?;
    Ok((proc, port))
}

/// How a started server tells that it is ready.
pub(crate) enum Ready<'a> {
    /// It prints a line starting with this prefix on stdout; the rest of the line is returned.
    Line(&'a str),
    /// It accepts TCP connections on this address.
    #[cfg_attr(not(feature = "peers"), allow(dead_code, reason = "for the peers"))]
    Accepts(SocketAddr),
}

/// A running server, killed on drop.
pub(crate) struct ServerProc {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
    /// Files the server reads while it runs (its configuration), removed once it is gone.
    files: Vec<TempFile>,
    /// The processes that make one system with this one (the other nodes of a cluster, the
    /// Redis they share): measured with it, and killed with it.
    companions: Vec<ServerProc>,
}

impl std::fmt::Debug for ServerProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProc")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl ServerProc {
    /// Starts `cmd` and waits until it is ready; returns it and, for [`Ready::Line`], the rest
    /// of the ready line.
    pub(crate) fn start(
        name: &str,
        mut cmd: Command,
        ready: Ready<'_>,
    ) -> Result<(Self, String), String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        // Both pipes are drained by threads for the life of the process, so the server never
        // blocks on a full pipe; stderr (and stdout after the ready line) is kept as a tail.
        let (line_tx, line_rx) = mpsc::channel::<String>();
        if let Some(out) = child.stdout.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = line_tx.send(line.clone());
                    keep_tail(&log, &line);
                }
            });
        }
        if let Some(mut err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep_tail(&log, &String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut proc = ServerProc {
            name: name.to_owned(),
            child,
            log,
            files: Vec::new(),
            companions: Vec::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let rest = loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                // Let the pipe threads catch the last words.
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!(
                    "{name} exited at start ({status}): {}",
                    proc.log_tail()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{name} was not ready within {READY_TIMEOUT:?}: {}",
                    proc.log_tail()
                ));
            }
            match &ready {
                Ready::Line(prefix) => {
                    if let Ok(line) = line_rx.recv_timeout(Duration::from_millis(50))
                        && let Some(rest) = line.trim().strip_prefix(prefix)
                    {
                        break rest.trim().to_owned();
                    }
                }
                Ready::Accepts(addr) => {
                    if TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok() {
                        break String::new();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        Ok((proc, rest))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This process and its companions: every process whose CPU time and memory count as the
    /// system's.
    pub(crate) fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pid())
            .chain(self.companions.iter().flat_map(ServerProc::pids))
            .collect()
    }

    /// Makes `other` part of this system: measured with it, checked with it, killed with it.
    pub(crate) fn with(mut self, other: ServerProc) -> Self {
        self.companions.push(other);
        self
    }

    /// Keeps `file` until the server is gone, then removes it.
    pub(crate) fn removing(mut self, file: TempFile) -> Self {
        self.files.push(file);
        self
    }

    /// The end of what the server printed, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        let log = log.trim();
        if log.is_empty() {
            "(it printed nothing)".into()
        } else {
            log.to_owned()
        }
    }

    /// Whether the process is still running.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        for companion in &mut self.companions {
            companion.check_alive()?;
        }
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited during the run ({status}): {}",
                self.name,
                self.log_tail()
            )),
            Err(e) => Err(format!("cannot check on {}: {e}", self.name)),
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // The files go after this, with the fields.
    }
}

fn keep_tail(log: &Mutex<String>, text: &str) {
    if let Ok(mut log) = log.lock() {
        log.push_str(text);
        log.push('\n');
        if log.len() > 2 * LOG_TAIL {
            let mut cut = log.len() - LOG_TAIL;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            log.drain(..cut);
        }
    }
}

/// A temporary file, removed on drop.
#[derive(Debug)]
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn new(tag: &str, contents: &str) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "beckon-loadgen-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self(path))
    }

    /// An empty directory, removed with what it holds when dropped.
    pub(crate) fn dir(tag: &str) -> Result<Self, String> {
        let file = Self::new(tag, "")?;
        std::fs::remove_file(file.path())
            .and_then(|()| std::fs::create_dir(file.path()))
            .map_err(|e| format!("cannot create {}: {e}", file.path().display()))?;
        Ok(file)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Resident memory of a process, in bytes (`VmRSS`).
pub(crate) fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in {path}"))
}

/// The resident memory of several processes together, in bytes.
pub(crate) fn rss_total(pids: &[u32]) -> Result<u64, String> {
    pids.iter().map(|pid| rss_bytes(*pid)).sum()
}

/// User and system CPU time of processes together (all their threads), in clock ticks.
fn cpu_ticks_total(pids: &[u32]) -> Result<(u64, u64), String> {
    pids.iter().try_fold((0, 0), |(u, s), pid| {
        let (pu, ps) = cpu_ticks(*pid)?;
        Ok((u + pu, s + ps))
    })
}

/// User and system CPU time of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces; count from after it.
    // utime and stime are fields 14 and 15, so the 12th and 13th after the parenthesis.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected {path}"))
    };
    Ok((field(11)?, field(12)?))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Total CPU time of a process so far, user plus system, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let (user, system) = cpu_ticks(pid)?;
    Ok((user + system) as f64 / ticks_per_second())
}

/// The CPU the server and the load generator (this process) used over an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuShare {
    /// The server's share: 1.0 is one core busy all the time.
    pub(crate) server: f64,
    /// The load generator's share.
    pub(crate) generator: f64,
    /// The server's CPU time in user space, seconds.
    pub(crate) server_user: f64,
    /// The server's CPU time in the kernel (system calls, and the TCP work done on its
    /// behalf), seconds.
    pub(crate) server_system: f64,
}

impl CpuShare {
    /// The server's CPU time in microseconds per unit of work (`units` deliveries or logins),
    /// and the share of it spent in the kernel.
    pub(crate) fn server_micros_per(&self, units: u64) -> Option<(f64, f64)> {
        let total = self.server_user + self.server_system;
        (units > 0 && total > 0.0).then(|| (total * 1e6 / units as f64, self.server_system / total))
    }
}

/// Takes the CPU time of the server and of this process at the start of an interval.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    server_pids: Vec<u32>,
    start: Instant,
    server: (u64, u64),
    generator: (u64, u64),
}

impl CpuMeter {
    /// Starts measuring the server's processes (a cluster's nodes and its Redis together).
    pub(crate) fn start(server_pids: &[u32]) -> Result<Self, String> {
        Ok(Self {
            server_pids: server_pids.to_vec(),
            start: Instant::now(),
            server: cpu_ticks_total(server_pids)?,
            generator: cpu_ticks(std::process::id())?,
        })
    }

    /// The shares and times since [`start`](Self::start).
    pub(crate) fn finish(&self) -> Result<CpuShare, String> {
        let wall = self.start.elapsed().as_secs_f64().max(1e-3);
        let (su, ss) = cpu_ticks_total(&self.server_pids)?;
        let (gu, gs) = cpu_ticks(std::process::id())?;
        let secs = |ticks: u64| ticks as f64 / ticks_per_second();
        let server_user = secs(su.saturating_sub(self.server.0));
        let server_system = secs(ss.saturating_sub(self.server.1));
        let generator = secs((gu + gs).saturating_sub(self.generator.0 + self.generator.1));
        Ok(CpuShare {
            server: (server_user + server_system) / wall,
            generator: generator / wall,
            server_user,
            server_system,
        })
    }
}

/// The limits on open files of this process: (soft, hard); `None` for unlimited.
pub(crate) fn open_files_limits() -> (Option<u64>, Option<u64>) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    (limit.current, limit.maximum)
}

/// The soft limit on open files of this process (servers started from it inherit it).
pub(crate) fn open_files_limit() -> Option<u64> {
    open_files_limits().0
}

/// Raises this process's limit on open files so that `wanted` files can be open: the soft
/// limit to the hard limit, and the hard limit too when `wanted` is above it and this process
/// is allowed to (a privileged process, up to the kernel's `fs.nr_open`). The servers it starts
/// inherit the limits. Returns a line for the report.
pub(crate) fn raise_open_files_limit(wanted: u64) -> String {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let show = |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let mut refused = String::new();
    if maximum.is_some_and(|hard| hard < wanted) {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: Some(wanted),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                return format!(
                    "open files: soft limit {} and hard limit {} raised to {wanted} (a privileged \
                 process; `fs.nr_open` bounds it), for this process and the servers it starts",
                    show(current),
                    show(maximum)
                );
            }
            Err(e) => {
                refused = format!(
                    "; raising the hard limit to {wanted} was refused ({e}: it takes \
                     CAP_SYS_RESOURCE)"
                );
            }
        }
    }
    if current == maximum {
        return format!(
            "open files: {} (soft = hard limit; `ulimit -Hn` bounds the sessions one process \
             can hold{refused})",
            show(maximum)
        );
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    ) {
        Ok(()) => format!(
            "open files: soft limit raised from {} to the hard limit, {} (`ulimit -Hn`; only a \
             privileged process can raise that{refused}), for this process and the servers it \
             starts",
            show(current),
            show(maximum)
        ),
        Err(e) => format!(
            "open files: {} (hard limit {}; raising the soft limit failed: {e})",
            show(current),
            show(maximum)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).unwrap() > 0);
        let meter = CpuMeter::start(&[me]).unwrap();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let share = meter.finish().unwrap();
        assert!(share.generator > 0.0 && share.generator < 4.0, "{share:?}");
        assert!(open_files_limit().unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() > 0.0);
    }

    #[test]
    fn a_server_that_exits_at_start_is_reported() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo broken config >&2; exit 3"]);
        let err = ServerProc::start("sh", cmd, Ready::Line("never")).unwrap_err();
        assert!(err.contains("exited at start"), "{err}");
        assert!(err.contains("broken config"), "{err}");
    }

    #[test]
    fn the_ready_line_is_returned_and_the_process_killed_on_drop() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'ready at tcp://x:1'; exec sleep 30"]);
        let (proc, rest) = ServerProc::start("sh", cmd, Ready::Line("ready at")).unwrap();
        assert_eq!(rest, "tcp://x:1");
        let pid = proc.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(proc);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
