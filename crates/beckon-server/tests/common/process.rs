//! The `beckon-server` binary as a child process, and temporary files and directories.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_beckon-server");

/// How long a server process may take to exit after a signal.
const EXIT_WAIT: Duration = Duration::from_secs(15);

fn unique(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!(
        "beckon-server-test-{}-{nanos}-{n}-{tag}",
        std::process::id()
    ))
}

/// A temporary file removed on drop.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn new(name: &str, contents: &str) -> Self {
        let path = unique(name);
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    pub(crate) fn path_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A temporary directory removed (with its contents) on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let path = unique(tag);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn path_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed on drop if a test fails before it exits.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// The URL of every listener the server reported, in order.
    #[allow(dead_code)] // Not every test binary looks at them.
    pub(crate) endpoints: Vec<String>,
    // Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// What the server logged so far; a thread keeps reading so the pipe never fills up.
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `beckon-server args…` with `RUST_LOG=warn` and `XDG_DATA_HOME` set to
    /// `data_home`, so a server without `--data-dir` or `--ephemeral` never writes to the real
    /// home directory; waits for its "listening on" line.
    pub(crate) fn start(args: &[&str], data_home: &Path) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .env("XDG_DATA_HOME", data_home);
        Self::spawn(cmd)
    }

    /// Starts the server `cmd` describes (arguments, environment) and waits for its
    /// "listening on" line.
    pub(crate) fn spawn(cmd: Command) -> Self {
        Self::spawn_listening(cmd, 1)
    }

    /// Starts the server `cmd` describes and waits for `listeners` "listening on" lines.
    pub(crate) fn spawn_listening(mut cmd: Command, listeners: usize) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start beckon-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut endpoints = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let Some(url) = line.trim().strip_prefix("beckon-server listening on ") else {
                let _ = child.kill();
                let _ = child.wait();
                let _ = stderr_reader.join();
                let err = stderr.lock().unwrap().clone();
                panic!("unexpected line {line:?}; stderr: {err}");
            };
            endpoints.push(url.to_owned());
        }
        let endpoint: beckon_server::Endpoint = endpoints[0].parse().unwrap();
        let addr: SocketAddr = endpoint.authority().parse().unwrap();
        assert_ne!(addr.port(), 0, "the real port is printed");
        Self {
            child,
            addr,
            endpoints,
            _stdout: stdout,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// The next line the server printed on stdout after its "listening on" lines.
    pub(crate) fn next_stdout_line(&mut self) -> String {
        let mut line = String::new();
        self._stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name ("TERM", "INT", "KILL") with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// What the server has logged so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit; returns its status and everything it logged.
    pub(crate) fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + EXIT_WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a `beckon-server` command that is expected to exit by itself (its output is small);
/// returns (exit code, stdout, stderr). Panics if it is still running after a while.
pub(crate) fn run_to_exit(mut cmd: Command) -> (Option<i32>, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run beckon-server");
    let deadline = Instant::now() + EXIT_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("beckon-server was expected to exit by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status.code(), out, err)
}
