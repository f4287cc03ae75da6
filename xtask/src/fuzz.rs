//! `cargo xtask fuzz [--time S] [target…] [-- <libFuzzer flags>]`: builds the fuzz targets of
//! `fuzz/` with libFuzzer's instrumentation and runs each for S seconds, one after the other.
//!
//! The targets are libFuzzer programs (the `libfuzzer-sys` crate) in the `fuzz/` crate, which
//! is its own workspace so that no ordinary build compiles it. Building one needs the compiler
//! flags `cargo fuzz` passes: SanitizerCoverage (`-Cpasses=sancov-module` and its LLVM options)
//! and AddressSanitizer (`-Zsanitizer=address`). The last is unstable, and only the pinned
//! stable toolchain is installed, so the build runs with `RUSTC_BOOTSTRAP=1`, which lets stable
//! rustc take `-Z` flags; passing the flags here rather than installing `cargo-fuzz` keeps CI
//! to the toolchain alone. `--target <host>` keeps the flags off build scripts and proc macros,
//! as `cargo fuzz` does. The build goes to `target/fuzz`.
//!
//! Each target runs on its corpus, `fuzz/corpus/<target>`: the committed seeds, plus what the
//! fuzzer finds (named by content hash and ignored by git; `git add -f` those worth keeping),
//! with `fuzz/dict/<target>.dict` when there is one. A crash is written to
//! `fuzz/artifacts/<target>/`. libFuzzer's output goes to `target/fuzz/logs/<target>.log`;
//! what is printed per target is the executions, the coverage (`cov:` edges, `ft:` features),
//! the corpus size and the crash, if any.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::workspace_root;

/// Every target, in the order they run.
pub(crate) const TARGETS: [&str; 6] = [
    "frame_codec",
    "proto_frames",
    "token",
    "config",
    "ws_upgrade",
    "broker",
];

/// What `cargo fuzz build` passes, less what needs a nightly-only standard library build.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
    --cfg fuzzing \
    -Zsanitizer=address \
    -Cdebug-assertions";

/// The longest input per target: above every limit the decoder enforces, so that the fuzzer
/// can reach it (the WebSocket request head is refused at 8 KiB).
fn max_len(target: &str) -> usize {
    match target {
        "ws_upgrade" => 12 * 1024,
        "broker" => 16 * 1024,
        _ => 4096,
    }
}

/// One target's run.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) target: String,
    pub(crate) executions: u64,
    pub(crate) exec_per_sec: u64,
    pub(crate) cov: u64,
    pub(crate) ft: u64,
    pub(crate) corpus: u64,
    /// Why the run failed, and where the input that made it fail was written.
    pub(crate) crash: Option<String>,
}

pub(crate) const USAGE: &str =
    "usage: cargo xtask fuzz [--time SECONDS] [TARGET…] [-- <libFuzzer flags>]";

pub(crate) fn main(args: &[String]) -> ExitCode {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut extra = Vec::new();
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "--time" => {
                let Some(s) = tail.first().and_then(|s| s.parse().ok()) else {
                    eprintln!("cargo xtask fuzz: --time needs a number of seconds\n{USAGE}");
                    return ExitCode::from(2);
                };
                seconds = s;
                rest = &tail[1..];
                continue;
            }
            "--" => {
                extra = tail.to_vec();
                break;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => {
                eprintln!(
                    "cargo xtask fuzz: unknown target or argument {other:?}; targets: {}\n{USAGE}",
                    TARGETS.join(", ")
                );
                return ExitCode::from(2);
            }
        }
        rest = tail;
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    run(&targets, seconds, &extra)
}

/// Builds, runs every target in turn, prints the table; fails when a target crashed.
pub(crate) fn run(targets: &[String], seconds: u64, extra: &[String]) -> ExitCode {
    let root = workspace_root();
    let bin_dir = match build(&root, targets) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cargo xtask fuzz: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut summaries = Vec::new();
    for target in targets {
        eprintln!("== fuzz {target} for {seconds} s");
        match run_target(&root, &bin_dir, target, seconds, extra) {
            Ok(s) => {
                eprintln!("   {}", line(&s));
                summaries.push(s);
            }
            Err(e) => {
                eprintln!("cargo xtask fuzz: {target}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{:<14} {:>12} {:>9} {:>6} {:>7} {:>7}  result",
        "target", "executions", "exec/s", "cov", "ft", "corpus"
    );
    for s in &summaries {
        println!("{}", line(s));
    }
    if summaries.iter().any(|s| s.crash.is_some()) {
        eprintln!("cargo xtask fuzz: a target crashed; the inputs are in fuzz/artifacts/");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn line(s: &Summary) -> String {
    format!(
        "{:<14} {:>12} {:>9} {:>6} {:>7} {:>7}  {}",
        s.target,
        s.executions,
        s.exec_per_sec,
        s.cov,
        s.ft,
        s.corpus,
        s.crash.as_deref().unwrap_or("no crash")
    )
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// Builds the targets; returns the directory of their binaries.
fn build(root: &Path, targets: &[String]) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let target_dir = root.join("target").join("fuzz");
    eprintln!("== cargo build --release (fuzz/, libFuzzer and AddressSanitizer, {triple})");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--manifest-path")
        .arg(root.join("fuzz").join("Cargo.toml"))
        .arg("--target")
        .arg(&triple)
        .arg("--target-dir")
        .arg(&target_dir);
    for t in targets {
        cmd.arg("--bin").arg(t);
    }
    let mut flags = RUSTFLAGS.to_owned();
    if let Ok(more) = std::env::var("RUSTFLAGS") {
        flags.push(' ');
        flags.push_str(&more);
    }
    let status = cmd
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".into());
    }
    Ok(target_dir.join(triple).join("release"))
}

fn run_target(
    root: &Path,
    bin_dir: &Path,
    target: &str,
    seconds: u64,
    extra: &[String],
) -> Result<Summary, String> {
    let fuzz = root.join("fuzz");
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let logs = root.join("target").join("fuzz").join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let log = fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(bin_dir.join(target));
    cmd.arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={}", max_len(target)))
        // An input that takes this long is a hang, reported like a crash.
        .arg("-timeout=20")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    let dict = fuzz.join("dict").join(format!("{target}.dict"));
    if dict.exists() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    let status = cmd
        .args(extra)
        .env("ASAN_OPTIONS", asan_options())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin_dir.join(target).display()))?;
    let text = fs::read_to_string(&log_path).map_err(|e| format!("cannot read the log: {e}"))?;
    let mut summary = parse_log(target, &text);
    if !status.success() && summary.crash.is_none() {
        summary.crash = Some(format!("exited with {status}"));
    }
    if summary.crash.is_some() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("   | {l}");
        }
        eprintln!("   the whole log: {}", log_path.display());
    }
    Ok(summary)
}

/// ODR violations are reported for symbols Rust duplicates across codegen units on purpose;
/// `cargo fuzz` turns their detection off too.
fn asan_options() -> String {
    let mut options = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    if !options.is_empty() {
        options.push(':');
    }
    options.push_str("detect_odr_violation=0");
    options
}

/// Reads the numbers out of libFuzzer's output.
fn parse_log(target: &str, text: &str) -> Summary {
    let mut s = Summary {
        target: target.to_owned(),
        ..Summary::default()
    };
    let number_after = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let mut reason = None;
    let mut unit = None;
    for l in text.lines() {
        if l.starts_with('#') && l.contains(" cov: ") {
            s.cov = number_after(l, "cov:").unwrap_or(s.cov);
            s.ft = number_after(l, "ft:").unwrap_or(s.ft);
            s.corpus = number_after(l, "corp:").unwrap_or(s.corpus);
        }
        if let Some(n) = number_after(l, "stat::number_of_executed_units:") {
            s.executions = n;
        }
        if let Some(n) = number_after(l, "stat::average_exec_per_sec:") {
            s.exec_per_sec = n;
        }
        if reason.is_none()
            && (l.contains("panicked at")
                || l.contains("==ERROR:")
                || l.contains("ERROR: libFuzzer:")
                || l.contains("deadly signal"))
        {
            reason = Some(l.trim().to_owned());
        }
        if let Some(path) = l.split("Test unit written to ").nth(1) {
            unit = Some(path.trim().to_owned());
        }
    }
    if reason.is_some() || unit.is_some() {
        s.crash = Some(format!(
            "CRASH: {} (input: {})",
            reason.as_deref().unwrap_or("see the log"),
            unit.as_deref().unwrap_or("not written")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_output() {
        let log = "INFO: Seed: 1\n\
            #2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
            #4096\tpulse  cov: 80 ft: 200 corp: 20/300b lim: 40 exec/s: 2048 rss: 40Mb\n\
            #9000\tDONE   cov: 82 ft: 243 corp: 26/1475b lim: 2820 exec/s: 49411 rss: 156Mb\n\
            stat::number_of_executed_units: 296468\n\
            stat::average_exec_per_sec:     49411\n";
        let s = parse_log("t", log);
        assert_eq!(
            (s.executions, s.cov, s.ft, s.corpus),
            (296_468, 82, 243, 26)
        );
        assert!(s.crash.is_none());

        let crash = "#5\tNEW    cov: 3 ft: 3 corp: 2/2b\n\
            thread '<unnamed>' panicked at fuzz_targets/x.rs:3:5:\nboom\n\
            ==1== ERROR: libFuzzer: deadly signal\n\
            artifact_prefix='fuzz/artifacts/t/'; Test unit written to fuzz/artifacts/t/crash-abc\n\
            stat::number_of_executed_units: 7\n";
        let s = parse_log("t", crash);
        assert_eq!(s.executions, 7);
        let c = s.crash.unwrap();
        assert!(c.contains("panicked at fuzz_targets/x.rs:3:5"), "{c}");
        assert!(c.contains("fuzz/artifacts/t/crash-abc"), "{c}");
    }
}
