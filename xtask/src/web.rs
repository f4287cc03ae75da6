//! `cargo xtask web [--check]`: builds the Web SDK (`sdks/web`) and the copy of its classic
//! script that `beckon-server` embeds; and the Web SDK's step of `cargo xtask test`.
//!
//! - `cargo xtask web`: `npm ci` when `node_modules` is missing, `npm run build` (protobuf code
//!   generated from `crates/beckon-proto/proto/beckon.proto`, the ES module and its types, the
//!   minified `beckon-sig.js`), then copies `dist/beckon-sig.js` to
//!   `crates/beckon-server/assets/beckon-sig.js`, the file the server embeds (committed, so the
//!   Rust build never needs Node.js).
//! - `cargo xtask web --check`: builds, and fails when the embedded copy differs from the build
//!   (someone changed the SDK's sources without running `cargo xtask web`).
//! - [`test`]: builds `beckon-server` and `sdk-peer`, checks the embedded copy, then runs
//!   `npm test` (the SDK against a real server, and the browser tests in headless Chromium).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::workspace_root;

const EMBEDDED: &str = "crates/beckon-server/assets/beckon-sig.js";
pub(crate) const USAGE: &str = "usage: cargo xtask web [--check]";

pub(crate) fn run(args: &[String]) -> ExitCode {
    let check = match args {
        [] => false,
        [a] if a == "--check" => true,
        [a] if a == "--help" || a == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match build_and_compare(!check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo xtask web: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Web SDK's step of `cargo xtask test`; false when it failed (the reason is printed).
pub(crate) fn test() -> bool {
    let root = workspace_root();
    // The binaries the tests start, from the build the workspace's tests share.
    let built = crate::dist::test_build().map(drop);
    if let Err(e) = built.and_then(|()| build_and_compare(false)) {
        eprintln!("cargo xtask test: the web step failed: {e}");
        return false;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("debug");
    let tested = status(
        // The SDK was just built and the binaries too: no `pretest` (which would do both again).
        npm(&sdk_dir())
            .args(["test", "--ignore-scripts"])
            .env("BECKON_SERVER_BIN", target.join("beckon-server"))
            .env("BECKON_SDK_PEER_BIN", target.join("sdk-peer")),
        "npm test",
    );
    match tested {
        Ok(()) => true,
        Err(e) => {
            eprintln!("cargo xtask test: the web step failed: {e}");
            false
        }
    }
}

fn sdk_dir() -> PathBuf {
    workspace_root().join("sdks").join("web")
}

/// Builds the SDK; then writes the embedded copy (`update`) or fails when it differs.
fn build_and_compare(update: bool) -> Result<(), String> {
    let dir = sdk_dir();
    if !dir.join("node_modules").is_dir() {
        status(npm(&dir).arg("ci"), "npm ci")?;
    }
    status(npm(&dir).args(["run", "build"]), "npm run build")?;
    let built = read(&dir.join("dist").join("beckon-sig.js"))?;
    let embedded_path = workspace_root().join(EMBEDDED);
    if update {
        std::fs::write(&embedded_path, &built)
            .map_err(|e| format!("cannot write {}: {e}", embedded_path.display()))?;
        eprintln!("wrote {EMBEDDED} ({} bytes)", built.len());
        return Ok(());
    }
    if read(&embedded_path)? != built {
        return Err(format!(
            "{EMBEDDED} differs from a fresh build of sdks/web: run `cargo xtask web` and commit it"
        ));
    }
    eprintln!("{EMBEDDED} matches the build of sdks/web");
    Ok(())
}

fn npm(dir: &Path) -> Command {
    let mut c = Command::new("npm");
    c.current_dir(dir);
    c
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn status(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what} failed ({s})")),
        Err(e) => Err(format!(
            "cannot run {what}: {e} (the Web SDK needs Node.js 20 and npm)"
        )),
    }
}
