//! Beckon's C and C++ SDK: `libagorasig` and its header `include/agora_sig.h` (which includes
//! `include/beckon_sig.h`, the C API, and `include/beckon/agora_sig_impl.h`, the C++ classes).
//!
//! The header reproduces the Signaling API of the Linux SDK (`agora_sdk_cpp`) and of the
//! Windows SDK (`agora_sdk_win`) — `IAgoraAPI`, `ICallBack`, the factories — so existing C++
//! applications build against it and run unchanged, and offers the same API to C as plain
//! functions over an opaque handle (`beckon_sig`). The C++ classes are inline code in the
//! header, over the C functions: this library exports only C symbols, and nothing in it depends
//! on the application's C++ compiler or standard library.
//!
//! Underneath, each handle owns one [`beckon_sdk::Instance`] (the Rust SDK's public API, not a
//! driver of its own: the reconnect policy, request replay, heartbeats and checks are the Rust
//! SDK's, so the C and C++ SDK behaves exactly as the Rust one does), all instances share one
//! small tokio runtime, and each handle has one SDK thread that waits on the instance's
//! [`EventStream`](beckon_sdk::EventStream) itself (the driver's send wakes it) and calls the
//! application's callbacks in order. The SDK thread, not the runtime, runs application code, so a slow or blocking
//! callback delays only its own instance, and a callback may call `destroy`.
//!
//! What this crate adds to the Rust SDK is the C boundary:
//! - strings arrive as `(pointer, size)` pairs that may be NULL or not UTF-8; a bad one is
//!   refused with `GENERAL_E_WRONG_PARAM` through the same callbacks the SDK uses for bad input
//!   (`args`);
//! - strings leave NUL-terminated, valid for the duration of the callback (`callbacks`);
//! - handles are never freed, so a call on a destroyed instance is a no-op (`sig`);
//! - the server URL comes from the environment or a setter, as the seeds have no parameter for
//!   it (`server`);
//! - no panic crosses the boundary: every entry point and every callback invocation runs under
//!   `catch_unwind` (`ffi`).
//!
//! It is not a second SDK: it has no protocol logic of its own.
//!
//! ```no_run
//! // The C API from Rust, as a C program would use it (see `examples/cpp/hello.c`).
//! use agorasig::ffi::*;
//!
//! let sig = beckon_sig_create();
//! let (app, account, token) = ("demo", "alice", "_no_need_token");
//! // SAFETY: every (pointer, size) pair points at that many readable bytes.
//! unsafe {
//!     beckon_sig_login(
//!         sig,
//!         app.as_ptr().cast(), app.len(),
//!         account.as_ptr().cast(), account.len(),
//!         token.as_ptr().cast(), token.len(),
//!         0, std::ptr::null(), 0,
//!     );
//!     beckon_sig_destroy(sig);
//! }
//! ```

pub mod ffi;

mod args;
mod callbacks;
mod runtime;
mod server;
mod sig;
