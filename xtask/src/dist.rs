//! `cargo xtask dist cpp [--debug]`: the C and C++ SDK laid out as a user downloads it.
//!
//! Builds `beckon-ffi` and fills `target/dist/cpp/` (release) or `target/dist/cpp-debug/`
//! (`--debug`, what `cargo xtask test` uses):
//!
//! ```text
//! include/agora_sig.h                    the header applications include (C++ and C)
//! include/beckon_sig.h                   the C API, which agora_sig.h includes
//! include/beckon/agora_sig_impl.h        the C++ API's inline implementation
//! libs/libagorasig.so, libs/libagorasig.a
//! libs/pkgconfig/agorasig.pc             pkg-config --cflags --libs [--static] agorasig
//! share/cmake/agorasig/agorasigConfig.cmake (+ ConfigVersion)   find_package(agorasig)
//! examples/chat.cpp, examples/hello.c
//! README.md
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::workspace_root;

/// What a program linking `libagorasig.a` must add: the Rust standard library's system
/// dependencies on Linux (`rustc --print native-static-libs`). The C/C++ step of
/// `cargo xtask test` links the static library with exactly these, so a change shows there.
pub(crate) const NATIVE_STATIC_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

/// Which build of the library to lay out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
        }
    }
}

const USAGE: &str = "usage: cargo xtask dist cpp [--debug]";

pub(crate) fn main(args: &[String]) -> ExitCode {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let profile = match args.as_slice() {
        ["cpp"] | ["cpp", "--release"] => Profile::Release,
        ["cpp", "--debug"] => Profile::Debug,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cpp(profile) {
        Ok(dir) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cargo xtask dist cpp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `target/`, or `CARGO_TARGET_DIR`.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(
            || workspace_root().join("target"),
            |p| workspace_root().join(p),
        )
}

/// Removes what `cargo run` sets for the xtask binary (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`,
/// …) from a nested cargo command. Build scripts (ring's) fingerprint those variables, so a
/// nested build that inherits them rebuilds ring and everything above it, and the next
/// top-level build rebuilds them again.
pub(crate) fn clean_cargo_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key)
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cargo <args>` in the workspace, failing with the command line.
pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = clean_cargo_env(&mut Command::new(&cargo))
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

/// What `cargo test --workspace --no-run` built that the later steps of `cargo xtask test` run.
#[derive(Debug)]
pub(crate) struct TestBuild {
    /// The end-to-end suite's test executables (`tests/`, its unit tests included).
    pub(crate) e2e: Vec<PathBuf>,
    /// The directory holding `libagorasig.so` and `libagorasig.a`.
    pub(crate) ffi_libs: PathBuf,
}

/// Builds what every test of the workspace needs, exactly as the workspace pass of
/// `cargo test --workspace` does: the test executables, the binaries they start
/// (`target/debug/beckon-server`, `target/debug/sdk-peer`) and the C/C++ SDK's libraries.
///
/// The later steps reuse this build instead of asking cargo for one package (`-p`): cargo
/// unifies features over the packages selected, so a narrower selection would compile tokio and
/// everything above it a second time, with other features, for the same tests.
pub(crate) fn test_build() -> Result<TestBuild, String> {
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ];
    let output = clean_cargo_env(&mut Command::new(&cargo_bin))
        .args(args)
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cargo_bin}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo {} failed ({})",
            args.join(" "),
            output.status
        ));
    }
    let e2e_manifest = workspace_root().join("tests/Cargo.toml");
    let mut e2e = Vec::new();
    let mut ffi_libs = None;
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let test = v["profile"]["test"] == true;
        if test
            && v["manifest_path"].as_str().map(Path::new) == Some(e2e_manifest.as_path())
            && let Some(exe) = v["executable"].as_str()
        {
            e2e.push(PathBuf::from(exe));
        }
        let cdylib = v["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !test && cdylib && v["target"]["name"] == "agorasig" {
            let so = (v["filenames"].as_array().into_iter().flatten())
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with("/libagorasig.so"));
            ffi_libs = so.and_then(|so| Path::new(so).parent()).map(Path::to_owned);
        }
    }
    if e2e.is_empty() {
        return Err("cargo test --no-run reported no test of the end-to-end suite".into());
    }
    let ffi_libs = ffi_libs.ok_or("cargo test --no-run reported no libagorasig")?;
    Ok(TestBuild { e2e, ffi_libs })
}

/// Builds the library and lays the SDK out; returns the directory.
pub(crate) fn cpp(profile: Profile) -> Result<PathBuf, String> {
    let mut build = vec!["build", "--quiet", "-p", "beckon-ffi", "--lib"];
    if profile == Profile::Release {
        build.push("--release");
    }
    cargo(&build)?;
    lay_out_cpp(profile, &target_dir().join(profile.dir()))
}

/// Lays the SDK out from the libraries in `built`; returns the directory.
pub(crate) fn lay_out_cpp(profile: Profile, built: &Path) -> Result<PathBuf, String> {
    let root = workspace_root();
    let out = target_dir().join("dist").join(match profile {
        Profile::Release => "cpp",
        Profile::Debug => "cpp-debug",
    });
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| io_err(&out, &e))?;
    }
    let crate_dir = root.join("crates/beckon-ffi");
    copy_tree(&crate_dir.join("include"), &out.join("include"))?;
    for lib in ["libagorasig.so", "libagorasig.a"] {
        copy(&built.join(lib), &out.join("libs").join(lib))?;
    }
    for example in ["chat.cpp", "hello.c"] {
        copy(
            &root.join("examples/cpp").join(example),
            &out.join("examples").join(example),
        )?;
    }
    let version = env!("CARGO_PKG_VERSION");
    write(
        &out.join("libs/pkgconfig/agorasig.pc"),
        &pkg_config(version),
    )?;
    write(
        &out.join("share/cmake/agorasig/agorasigConfig.cmake"),
        CMAKE_CONFIG,
    )?;
    write(
        &out.join("share/cmake/agorasig/agorasigConfigVersion.cmake"),
        &cmake_version(version),
    )?;
    write(&out.join("README.md"), &readme(version, profile))?;
    Ok(out)
}

fn pkg_config(version: &str) -> String {
    format!(
        "prefix=${{pcfiledir}}/../..\n\
         includedir=${{prefix}}/include\n\
         libdir=${{prefix}}/libs\n\
         \n\
         Name: agorasig\n\
         Description: Beckon's C and C++ SDK: the Signaling API of the Linux and Windows SDKs\n\
         Version: {version}\n\
         Cflags: -I${{includedir}}\n\
         Libs: -L${{libdir}} -lagorasig -lpthread\n\
         Libs.private: {NATIVE_STATIC_LIBS}\n"
    )
}

const CMAKE_CONFIG: &str = r#"# agorasig: Beckon's C and C++ SDK.
#
#   find_package(agorasig REQUIRED)          # with agorasig_DIR or CMAKE_PREFIX_PATH pointing here
#   target_link_libraries(app PRIVATE agorasig::agorasig)          # libagorasig.so
#   target_link_libraries(app PRIVATE agorasig::agorasig_static)   # libagorasig.a
include(CMakeFindDependencyMacro)
find_dependency(Threads)

get_filename_component(_agorasig_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET agorasig::agorasig)
  add_library(agorasig::agorasig SHARED IMPORTED)
  set_target_properties(agorasig::agorasig PROPERTIES
    IMPORTED_LOCATION "${_agorasig_prefix}/libs/libagorasig.so"
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${_agorasig_prefix}/include"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()

if(NOT TARGET agorasig::agorasig_static)
  add_library(agorasig::agorasig_static STATIC IMPORTED)
  set_target_properties(agorasig::agorasig_static PROPERTIES
    IMPORTED_LOCATION "${_agorasig_prefix}/libs/libagorasig.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_agorasig_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;dl")
endif()

unset(_agorasig_prefix)
"#;

fn cmake_version(version: &str) -> String {
    format!(
        "set(PACKAGE_VERSION \"{version}\")\n\
         if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)\n\
         \x20 set(PACKAGE_VERSION_COMPATIBLE FALSE)\n\
         else()\n\
         \x20 set(PACKAGE_VERSION_COMPATIBLE TRUE)\n\
         \x20 if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)\n\
         \x20   set(PACKAGE_VERSION_EXACT TRUE)\n\
         \x20 endif()\n\
         endif()\n"
    )
}

fn readme(version: &str, profile: Profile) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "# Beckon C and C++ SDK {version} ({} build)\n\n",
        profile.dir()
    );
    s.push_str(README_BODY);
    s
}

const README_BODY: &str = r#"The Signaling API of the Linux SDK (`agora_sdk_cpp`) and of the Windows SDK
(`agora_sdk_win`) over a Beckon server: code written for those SDKs builds against
`include/agora_sig.h` and `libs/libagorasig` unchanged. C programs use the same API as
`beckon_sig_*` functions (see `include/beckon_sig.h`).

```
include/agora_sig.h             the header to include (C++11, or C99 for the C API)
include/beckon_sig.h            the C API alone (C99), which agora_sig.h includes
include/beckon/                 the C++ API's inline implementation, which agora_sig.h includes
libs/libagorasig.so, .a         the library
libs/pkgconfig/agorasig.pc      pkg-config
share/cmake/agorasig/            find_package(agorasig)
examples/chat.cpp               a console chat written against the Linux SDK's API
examples/hello.c                the C API
```

## Build

```sh
g++ -std=c++11 examples/chat.cpp -Iinclude -Llibs -lagorasig -lpthread -o chat
gcc -std=c99 examples/hello.c -Iinclude -Llibs -lagorasig -lpthread -o hello
```
At run time the loader must find `libagorasig.so`: `LD_LIBRARY_PATH=libs`, or link with
`-Wl,-rpath,'$ORIGIN/libs'`, or install it. To link statically instead:
```sh
g++ -std=c++11 examples/chat.cpp -Iinclude libs/libagorasig.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -o chat
PKG_CONFIG_PATH=libs/pkgconfig pkg-config --cflags --libs [--static] agorasig
cmake -DCMAKE_PREFIX_PATH=$PWD ...   # then find_package(agorasig), agorasig::agorasig
```

## The server

The API has no parameter for the server: an instance connects, at each login, to
`beckon_sig_set_server_url()` for that instance (`beckon_sig_of(api)` gives the handle of a
C++ instance), else `beckon_set_server_url()` for the process, else the environment variable
`BECKON_URL`, else `tcp://127.0.0.1:7400`. A URL is `tcp://`, `tls://`, `quic://`, `ws://` or
`wss://` then `host:port`; a comma-separated list gives alternates. Secure schemes trust the
PEM certificates in `BECKON_TLS_CA`, else the system's CA bundle.

```sh
BECKON_URL=tcp://127.0.0.1:7400 LD_LIBRARY_PATH=libs ./chat my-app alice
```

## Threads and lifetime

Each instance runs its callbacks on its own SDK thread, one at a time, in order; every method
may be called from any thread, callbacks included. `destroy()` logs out and delivers what is
queued; once it returns no callback of that instance runs, and calls on the destroyed object
are no-ops. Strings given to callbacks are NUL-terminated and valid until the callback returns.

The full guide (every method and callback, and what differs from the SDKs this API comes
from) is `docs/sdk-cpp.md` in the Beckon repository.
"#;

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Copies the files under `from` to `to`, subdirectories included.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(from).map_err(|e| io_err(from, &e))? {
        let path = entry.map_err(|e| io_err(from, &e))?.path();
        let dest = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            copy(&path, &dest)?;
        }
    }
    Ok(())
}

fn write(to: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    }
    std::fs::write(to, text).map_err(|e| io_err(to, &e))
}

fn io_err(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}
