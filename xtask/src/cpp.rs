//! The C and C++ SDK's checks, run against real `beckon-server` processes on free loopback
//! ports, from the SDK laid out by `cargo xtask dist cpp --debug`.
//!
//! [`test`] is the last step of `cargo xtask test` (alone: `cargo xtask test --cpp`):
//! 1. the headers compile as C99 and C11 (gcc, clang) and C++11 (g++, clang++), `-Wall -Wextra
//!    -Werror`: each header an application may include alone, then through the examples, the
//!    suite and a file written against `agora_sdk_win` with both factories (compiled and
//!    linked, not run);
//! 2. the C++ suite (`crates/beckon-ffi/tests/cpp/suite.cpp`), built with g++ and run;
//! 3. the same suite built with `-fsanitize=address,undefined` and run (LeakSanitizer checks at
//!    exit; the Rust library itself is not instrumented, but its allocations are checked);
//! 4. 1,000 create/login/logout/destroy cycles: heap growth per cycle in a plain build, and
//!    LeakSanitizer in a sanitized one;
//! 5. the suite and the 1,000 cycles under valgrind's memcheck, which checks the library's own
//!    (Rust) code too — ASan instruments only what g++ compiled — for invalid accesses,
//!    uninitialised reads and lost memory;
//! 6. the C example, linked dynamically and (through pkg-config) statically, run;
//! 7. two processes of the console chat example, built with the one-line command of its
//!    documentation, chat through the server;
//! 8. the CMake package, when `cmake` is installed.
//!
//! The debug build of the library is what is tested: `cargo test --workspace` has just built
//! every dependency in that profile, so this step adds one crate's compile and link instead of
//! a release build of the whole tree. Each suite run gets a fresh server.
//!
//! [`rtt`] (`cargo xtask cpp-rtt [rounds]`) measures the p2p round trip through the C++ API
//! beside the same loop through the Rust SDK, against one release server.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::dist::{self, NATIVE_STATIC_LIBS, Profile};
use crate::workspace_root;

/// The app of the suite's server that requires tokens, and its certificate.
const PRIV_APP: &str = "cpp-priv";
const PRIV_CERT: &str = "0123456789abcdef0123456789abcdef";
/// Accounts the suite logs in to that app with, and whether they have the server privilege.
const PRIV_ACCOUNTS: [(&str, bool); 5] = [
    ("gateway", true),
    ("admin", true),
    ("caller", false),
    ("member", false),
    ("outsider", false),
];
/// Bounds on each program run, so a hang fails the step instead of CI.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one line of the chat example may take to appear.
const CHAT_TIMEOUT: Duration = Duration::from_secs(20);

/// The headers an application may include, each complete on its own, as C and as C++.
const PUBLIC_HEADERS: [&str; 2] = ["agora_sig.h", "beckon_sig.h"];

const WARNINGS: [&str; 3] = ["-Wall", "-Wextra", "-Werror"];
const SANITIZE: [&str; 4] = [
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=undefined",
    "-g",
];

/// `cargo xtask test`'s C/C++ step.
pub(crate) fn test() -> ExitCode {
    match run_tests() {
        Ok(()) => {
            step("every check passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cargo xtask test: the C/C++ step failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_tests() -> Result<(), String> {
    for tool in ["gcc", "g++", "clang", "clang++", "pkg-config", "valgrind"] {
        if !on_path(tool) {
            return Err(format!(
                "{tool} is not installed (.ci/run installs it: apt-get install gcc g++ clang \
                 pkg-config valgrind)"
            ));
        }
    }
    step("dist cpp --debug (from the workspace's test build)");
    let built = dist::test_build()?;
    let sdk = dist::lay_out_cpp(Profile::Debug, &built.ffi_libs)?;
    let server_bin = dist::target_dir().join("debug/beckon-server");
    let out = dist::target_dir().join("cpp-tests");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tests = workspace_root().join("crates/beckon-ffi/tests/cpp");
    let inc = format!("-I{}", sdk.join("include").display());
    let libs = format!("-L{}", sdk.join("libs").display());
    let lib_path = sdk.join("libs");

    step("the headers as C99 and C11, C++11; agora_sdk_win with both factories");
    headers_alone(&inc, &out)?;
    for cc in ["gcc", "clang"] {
        for std in ["-std=c99", "-std=c11"] {
            let obj = out.join(format!("hello-{cc}{std}.o"));
            compile(
                cc,
                &[std, "-Wpedantic", "-c"],
                &[&sdk.join("examples/hello.c")],
                &inc,
                &obj,
            )?;
        }
    }
    for cxx in ["g++", "clang++"] {
        let bin = out.join(format!("win-{cxx}"));
        let src = tests.join("win_compile.cpp");
        compile_link(cxx, &["-std=c++11", "-Wpedantic"], &src, &inc, &libs, &bin)?;
        for src in [tests.join("suite.cpp"), sdk.join("examples/chat.cpp")] {
            compile(
                cxx,
                &["-std=c++11", "-fsyntax-only"],
                &[&src],
                &inc,
                Path::new(""),
            )?;
        }
    }

    step("the C++ suite (g++)");
    let suite = out.join("suite");
    compile_link(
        "g++",
        &["-std=c++11", "-O0", "-g"],
        &tests.join("suite.cpp"),
        &inc,
        &libs,
        &suite,
    )?;
    with_server(&server_bin, &out, |env| {
        run(&suite, &[], env, &lib_path, SUITE_TIMEOUT)
    })?;

    step("the C++ suite under AddressSanitizer, UndefinedBehaviorSanitizer, LeakSanitizer");
    let suite_asan = out.join("suite-asan");
    let mut flags = vec!["-std=c++11", "-O0"];
    flags.extend(SANITIZE);
    compile_link(
        "g++",
        &flags,
        &tests.join("suite.cpp"),
        &inc,
        &libs,
        &suite_asan,
    )?;
    with_server(&server_bin, &out, |env| {
        run(
            &suite_asan,
            &[],
            &sanitizer_env(env),
            &lib_path,
            SUITE_TIMEOUT,
        )
    })?;

    step("1,000 create/login/logout/destroy: heap growth, then LeakSanitizer");
    let leak = out.join("leak");
    compile_link(
        "g++",
        &["-std=c++11", "-O0", "-g"],
        &tests.join("leak.cpp"),
        &inc,
        &libs,
        &leak,
    )?;
    let leak_asan = out.join("leak-asan");
    compile_link(
        "g++",
        &flags,
        &tests.join("leak.cpp"),
        &inc,
        &libs,
        &leak_asan,
    )?;
    with_server(&server_bin, &out, |env| {
        run(&leak, &["1000"], env, &lib_path, PROGRAM_TIMEOUT)?;
        run(
            &leak_asan,
            &["1000"],
            &sanitizer_env(env),
            &lib_path,
            PROGRAM_TIMEOUT,
        )
    })?;

    step("the suite and 1,000 cycles under valgrind memcheck");
    let valgrind = |program: &Path, args: &[&str], env: &[(String, String)]| {
        let mut full = vec![
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
            "-q",
        ];
        let program = program.to_str().ok_or("a non-UTF-8 path")?;
        full.push(program);
        full.extend(args);
        run(Path::new("valgrind"), &full, env, &lib_path, SUITE_TIMEOUT)
    };
    with_server(&server_bin, &out, |env| valgrind(&suite, &[], env))?;
    with_server(&server_bin, &out, |env| valgrind(&leak, &["1000"], env))?;

    step("the C example, linked dynamically and statically (pkg-config --static)");
    let hello = out.join("hello");
    compile_link(
        "gcc",
        &["-std=c99"],
        &sdk.join("examples/hello.c"),
        &inc,
        &libs,
        &hello,
    )?;
    let pc = pkg_config(&sdk, &["--static", "--cflags", "--libs", "agorasig"])?;
    if !pc.contains(NATIVE_STATIC_LIBS.split(' ').next().unwrap_or_default()) {
        return Err(format!("pkg-config --static gave {pc:?}"));
    }
    let hello_static = out.join("hello-static");
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c99", "-o"])
        .arg(&hello_static)
        .arg(sdk.join("examples/hello.c"))
        .arg(sdk.join("libs/libagorasig.a"))
        .args(
            pc.split_whitespace()
                .filter(|f| !f.starts_with("-lagorasig")),
        );
    check(cmd)?;
    with_server(&server_bin, &out, |env| {
        run(&hello, &[], env, &lib_path, PROGRAM_TIMEOUT)?;
        run(
            &hello_static,
            &[],
            env,
            Path::new("/nonexistent"),
            PROGRAM_TIMEOUT,
        )
    })?;

    step("two chat processes (examples/chat.cpp, built as its documentation says)");
    let chat = out.join("chat");
    let mut cmd = Command::new("g++");
    cmd.current_dir(&sdk).args([
        "-std=c++11",
        "examples/chat.cpp",
        "-Iinclude",
        "-Llibs",
        "-lagorasig",
        "-lpthread",
        "-o",
    ]);
    cmd.arg(&chat);
    check(cmd)?;
    with_server(&server_bin, &out, |env| chat_pair(&chat, env, &lib_path))?;

    step("the CMake package");
    if on_path("cmake") {
        cmake_package(&sdk, &out)?;
    } else {
        eprintln!("   cmake is not installed: the CMake package was not tried");
    }
    Ok(())
}

fn step(what: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let at = START.get_or_init(Instant::now).elapsed();
    eprintln!("== c/c++ [{:>5.1} s]: {what}", at.as_secs_f64());
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Compiles a file that includes nothing but the header, for each of `PUBLIC_HEADERS`.
fn headers_alone(inc: &str, out: &Path) -> Result<(), String> {
    for header in PUBLIC_HEADERS {
        let text = format!("#include <{header}>\n");
        for (ext, compilers, std) in [
            ("c", ["gcc", "clang"], "-std=c99"),
            ("cpp", ["g++", "clang++"], "-std=c++11"),
        ] {
            let src = out.join(format!("alone-{}.{ext}", header.trim_end_matches(".h")));
            std::fs::write(&src, &text).map_err(|e| format!("{}: {e}", src.display()))?;
            for cc in compilers {
                compile(
                    cc,
                    &[std, "-Wpedantic", "-fsyntax-only"],
                    &[&src],
                    inc,
                    Path::new(""),
                )?;
            }
        }
    }
    Ok(())
}

/// `cc flags -Wall -Wextra -Werror inc srcs [-o out]`.
fn compile(cc: &str, flags: &[&str], srcs: &[&Path], inc: &str, out: &Path) -> Result<(), String> {
    let mut cmd = Command::new(cc);
    cmd.args(flags).args(WARNINGS).arg(inc).args(srcs);
    if !out.as_os_str().is_empty() {
        cmd.arg("-o").arg(out);
    }
    check(cmd)
}

/// Compiles and links one source against the SDK's shared library.
fn compile_link(
    cc: &str,
    flags: &[&str],
    src: &Path,
    inc: &str,
    libs: &str,
    out: &Path,
) -> Result<(), String> {
    let mut cmd = Command::new(cc);
    cmd.args(flags)
        .args(WARNINGS)
        .arg(inc)
        .arg(src)
        .arg(libs)
        .args(["-lagorasig", "-lpthread", "-o"])
        .arg(out);
    check(cmd)
}

fn check(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn pkg_config(sdk: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("pkg-config")
        .args(args)
        .env("PKG_CONFIG_PATH", sdk.join("libs/pkgconfig"))
        .output()
        .map_err(|e| format!("pkg-config: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "pkg-config {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn sanitizer_env(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.push((
        "ASAN_OPTIONS".into(),
        "detect_leaks=1:halt_on_error=1".into(),
    ));
    env.push((
        "UBSAN_OPTIONS".into(),
        "print_stacktrace=1:halt_on_error=1".into(),
    ));
    env
}

/// Runs `program` with `env` (and the library on `LD_LIBRARY_PATH`), killing it after
/// `timeout`.
fn run(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    lib_path: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("LD_LIBRARY_PATH", lib_path)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{} failed ({status})", program.display())),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} took over {timeout:?}", program.display()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{}: {e}", program.display())),
        }
    }
}

// ---- the server ------------------------------------------------------------------------------

/// A `beckon-server` child process; killed when dropped.
struct Server {
    child: Child,
    tcp: String,
    ws: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `bin` in development mode (any App ID, `_no_need_token`) plus [`PRIV_APP`],
    /// on free TCP and WebSocket ports, keeping everything in memory.
    fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Result<Self, String> {
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "development = true\n[[apps]]\napp_id = \"{PRIV_APP}\"\ncertificate = \"{PRIV_CERT}\"\n"
            ),
        )
        .map_err(|e| format!("{}: {e}", config.display()))?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args([
                "--ephemeral",
                "--listen",
                "tcp://127.0.0.1:0",
                "--listen",
                "ws://127.0.0.1:0/ws",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut server = Server {
            child,
            tcp: String::new(),
            ws: String::new(),
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading the server's output: {e}"))?;
            if let Some(url) = line.strip_prefix("beckon-server listening on ") {
                if url.starts_with("tcp://") {
                    server.tcp = url.to_owned();
                } else if url.starts_with("ws://") {
                    server.ws = url.to_owned();
                }
            }
            if !server.tcp.is_empty() && !server.ws.is_empty() {
                return Ok(server);
            }
        }
        Err("the server exited before listening".into())
    }

    /// What the suites read: the URLs, the token app and tokens for its accounts.
    fn env(&self, bin: &Path) -> Result<Vec<(String, String)>, String> {
        let mut env = vec![
            ("BECKON_URL".to_owned(), self.tcp.clone()),
            ("BECKON_TEST_WS_URL".to_owned(), self.ws.clone()),
            ("BECKON_TEST_PRIV_APP".to_owned(), PRIV_APP.to_owned()),
        ];
        for (account, server) in PRIV_ACCOUNTS {
            let mut cmd = Command::new(bin);
            cmd.args([
                "token",
                "--app-id",
                PRIV_APP,
                "--certificate",
                PRIV_CERT,
                "--account",
            ])
            .arg(account);
            if server {
                cmd.arg("--server");
            }
            let out = cmd
                .output()
                .map_err(|e| format!("beckon-server token: {e}"))?;
            if !out.status.success() {
                return Err(format!("beckon-server token failed for {account}"));
            }
            let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            env.push((format!("BECKON_TEST_TOKEN_{account}"), token));
        }
        Ok(env)
    }
}

/// Runs `f` with the environment of a fresh server.
fn with_server(
    bin: &Path,
    dir: &Path,
    f: impl FnOnce(&[(String, String)]) -> Result<(), String>,
) -> Result<(), String> {
    let server = Server::start(bin, dir, &[])?;
    let env = server.env(bin)?;
    f(&env)
}

// ---- two chat processes ------------------------------------------------------------------------

/// One chat process: its stdin, and its stdout lines as they come.
struct Chat {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chat {
    fn start(
        bin: &Path,
        name: &'static str,
        env: &[(String, String)],
        lib_path: &Path,
    ) -> Result<Self, String> {
        let mut child = Command::new(bin)
            .args(["chat-app", name])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("LD_LIBRARY_PATH", lib_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the chat: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Chat {
            name,
            child,
            stdin,
            lines,
        })
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.stdin, "{line}").map_err(|e| format!("{}: writing {line:?}: {e}", self.name))
    }

    /// Waits for an output line containing `text`.
    fn expect(&mut self, text: &str) -> Result<(), String> {
        let deadline = Instant::now() + CHAT_TIMEOUT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Ok(()),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(format!(
            "{} never printed {text:?}; it printed: {seen:?}",
            self.name
        ))
    }

    fn exits_cleanly(mut self) -> Result<(), String> {
        let deadline = Instant::now() + CHAT_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}", self.name))
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not exit after /quit", self.name))
    }
}

fn chat_pair(bin: &Path, env: &[(String, String)], lib_path: &Path) -> Result<(), String> {
    let mut bob = Chat::start(bin, "bob", env, lib_path)?;
    bob.expect("logged in as bob")?;
    let mut alice = Chat::start(bin, "alice", env, lib_path)?;
    alice.expect("logged in as alice")?;

    alice.say("/msg bob hi bob")?;
    bob.expect("alice: hi bob")?;
    bob.say("/join lobby")?;
    bob.expect("joined #lobby")?;
    alice.say("/join lobby")?;
    alice.expect("joined #lobby")?;
    alice.expect("members: ")?;
    bob.expect("* alice joined")?;
    alice.say("hello lobby")?;
    bob.expect("[#lobby] alice: hello lobby")?;
    alice.expect("[#lobby] alice: hello lobby")?;
    bob.say("/members")?;
    bob.expect("#lobby has 2 members")?;

    bob.say("/attr mood happy")?;
    bob.say("/attrs bob")?;
    bob.expect("attributes of bob: {\"mood\":\"happy\"}")?;
    alice.say("/attrs bob")?;
    alice.expect("\"mood\":\"happy\"")?;

    alice.say("/call bob")?;
    bob.expect("call from alice on #lobby")?;
    alice.expect("ringing bob")?;
    bob.say("/accept")?;
    alice.expect("bob accepted the call")?;
    alice.say("/dtmf 42#")?;
    bob.expect("DTMF from alice: 42#")?;
    bob.say("/end")?;
    bob.expect("call with alice ended")?;
    alice.expect("bob ended the call")?;
    alice.say("/who bob")?;
    alice.expect("bob is online")?;

    alice.say("/quit")?;
    alice.expect("bye")?;
    alice.exits_cleanly()?;
    bob.expect("* alice left")?;
    bob.say("/who alice")?;
    bob.expect("alice is offline")?;
    bob.say("/quit")?;
    bob.expect("bye")?;
    bob.exits_cleanly()
}

// ---- CMake ------------------------------------------------------------------------------------

fn cmake_package(sdk: &Path, out: &Path) -> Result<(), String> {
    let project = out.join("cmake-project");
    let build = project.join("build");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
    std::fs::write(
        project.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.10)\n\
         project(agorasig_check C CXX)\n\
         find_package(agorasig 0.1 REQUIRED)\n\
         add_executable(chat chat.cpp)\n\
         target_link_libraries(chat PRIVATE agorasig::agorasig)\n\
         add_executable(hello_static hello.c)\n\
         target_link_libraries(hello_static PRIVATE agorasig::agorasig_static)\n",
    )
    .map_err(|e| e.to_string())?;
    for f in ["chat.cpp", "hello.c"] {
        std::fs::copy(sdk.join("examples").join(f), project.join(f)).map_err(|e| e.to_string())?;
    }
    let mut configure = Command::new("cmake");
    configure
        .current_dir(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", sdk.display()))
        .arg("..");
    check(configure)?;
    let mut make = Command::new("cmake");
    make.current_dir(&build).args(["--build", "."]);
    check(make)
}

// ---- the round trip -----------------------------------------------------------------------------

/// `cargo xtask cpp-rtt [rounds]`.
pub(crate) fn rtt(args: &[String]) -> ExitCode {
    let rounds: usize = match args.first().map(|s| s.parse()) {
        None => 5000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: cargo xtask cpp-rtt [rounds]");
            return ExitCode::from(2);
        }
    };
    match measure(rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo xtask cpp-rtt: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(rounds: usize) -> Result<(), String> {
    let sdk = dist::cpp(Profile::Release)?;
    dist::cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "beckon-server",
        "--bin",
        "beckon-server",
    ])?;
    dist::cargo(&[
        "build",
        "--quiet",
        "--release",
        "-p",
        "beckon-ffi",
        "--example",
        "rtt_sdk",
    ])?;
    let target = dist::target_dir();
    let out = target.join("cpp-tests");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let cpp_bin = out.join("rtt");
    compile_link(
        "g++",
        &["-std=c++11", "-O2"],
        &workspace_root().join("crates/beckon-ffi/tests/cpp/rtt.cpp"),
        &format!("-I{}", sdk.join("include").display()),
        &format!("-L{}", sdk.join("libs").display()),
        &cpp_bin,
    )?;
    let rust_bin = target.join("release/examples/rtt_sdk");
    let server = Server::start(&target.join("release/beckon-server"), &out, &[])?;
    let lib_path = sdk.join("libs");
    let rounds_arg = rounds.to_string();

    println!(
        "p2p round trip, 256-byte messages, {rounds} round trips (after 200 warm-up), one at a \
         time, against one release beckon-server process over TCP on loopback"
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "client", "median", "p99", "p999", "max"
    );
    // Interleaved, twice each, so that a burst of load on the machine shows as a difference
    // between runs of the same client rather than between the clients.
    for pass in 1..=2 {
        for (name, bin) in [("Rust SDK", &rust_bin), ("C++ API (libagorasig)", &cpp_bin)] {
            let output = Command::new(bin)
                .arg(&rounds_arg)
                .env("BECKON_URL", &server.tcp)
                .env("LD_LIBRARY_PATH", &lib_path)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            let text = String::from_utf8_lossy(&output.stdout);
            let fields: Vec<f64> = text
                .split_whitespace()
                .skip(2)
                .filter_map(|f| f.parse().ok())
                .collect();
            if !output.status.success() || fields.len() != 4 {
                return Err(format!(
                    "{} failed: {}{}",
                    bin.display(),
                    text,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            println!(
                "{:<28} {:>7.1} µs {:>7.1} µs {:>7.1} µs {:>7.1} µs",
                format!("{name} (run {pass})"),
                fields[0],
                fields[1],
                fields[2],
                fields[3]
            );
        }
    }
    Ok(())
}
