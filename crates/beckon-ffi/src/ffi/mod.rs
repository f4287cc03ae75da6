//! The C ABI: every function `include/beckon_sig.h` declares, and nothing else.
//!
//! Each entry point runs its body under `catch_unwind` (a panic returns the function's
//! neutral value: nothing, NULL or 0), accepts a NULL handle as a no-op, and checks its string
//! arguments before the SDK sees them (`args`). The callers' side of the contract — handles
//! from this library, `(pointer, size)` pairs that point at `size` readable bytes — is the
//! header's, and each function's `# Safety` section repeats it.
//!
//! This module holds the shared shape of an entry point (`guard`, `live`, `call`), the
//! lifecycle, the configuration and the status queries; the seed API's areas have a file each:
//! `users` (login, messages, attributes), `channels` and `calls`.

use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use beckon_sdk::{Event, SDK_VERSION, Status};

use crate::args::{self, Raw, WRONG_PARAM};
pub use crate::callbacks::Callbacks;
use crate::runtime;
use crate::server;
use crate::sig::Live;
pub use crate::sig::Sig;

mod calls;
mod channels;
mod users;

pub use calls::*;
pub use channels::*;
pub use users::*;

/// Runs an entry point's body; a panic (already reported on stderr by the panic hook) makes
/// the entry point return `fallback`.
fn guard<R>(fallback: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// The live instance behind `sig`, if it is not NULL and not destroyed.
///
/// # Safety
///
/// `sig` is NULL or a handle returned by this library.
unsafe fn live(sig: *const Sig) -> Option<Arc<Live>> {
    // SAFETY: handles are never freed, so one this library returned is valid for ever.
    unsafe { sig.as_ref() }.and_then(Sig::live)
}

fn raw(name: &'static str, ptr: *const c_char, len: usize) -> Raw {
    Raw { name, ptr, len }
}

/// The shape of every call with string arguments: decode them; if one is bad, report the call
/// refused (its failure event, built by `failure` from the arguments read leniently, then
/// `onError`); else run `body`.
///
/// # Safety
///
/// `sig` as for [`live`]; every `Raw` points at `len` readable bytes, or is NULL.
unsafe fn call<const N: usize>(
    sig: *const Sig,
    name: &'static str,
    raws: [Raw; N],
    failure: impl FnOnce(&Live, [String; N]) -> Option<Event>,
    body: impl FnOnce(&Live, [&str; N]),
) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        let Some(live) = (unsafe { live(sig) }) else {
            return;
        };
        // SAFETY: forwarded from the caller; the bytes are read during this call only.
        match unsafe { args::texts(raws) } {
            Ok(texts) => body(&live, texts),
            Err(bad) => {
                // SAFETY: as above.
                let lenient = unsafe { args::lossy(raws) };
                let failure = failure(&live, lenient);
                live.push(args::refusal(name, bad, failure));
            }
        }
    });
}

/// The failure event of a refused message send.
fn send_error(live: &Live, msg_id: String) -> Option<Event> {
    Some(Event::MessageSendError {
        message_id: live.refused_msg_id(msg_id),
        ecode: WRONG_PARAM,
    })
}

// ---- lifecycle --------------------------------------------------------------------------------

/// `beckon_sig_create`: a new independent instance, or NULL if the library could not start.
#[unsafe(no_mangle)]
pub extern "C" fn beckon_sig_create() -> *mut Sig {
    guard(std::ptr::null_mut(), || {
        Sig::create().map_or(std::ptr::null_mut(), |s| std::ptr::from_ref(s).cast_mut())
    })
}

/// `beckon_sig_shared`: the shared instance of `slot`.
#[unsafe(no_mangle)]
pub extern "C" fn beckon_sig_shared(slot: u32) -> *mut Sig {
    guard(std::ptr::null_mut(), || {
        Sig::shared(slot).map_or(std::ptr::null_mut(), |s| std::ptr::from_ref(s).cast_mut())
    })
}

/// `beckon_sig_destroy`.
///
/// # Safety
///
/// `sig` is NULL or a handle returned by this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_destroy(sig: *mut Sig) {
    guard((), || {
        // SAFETY: handles are never freed (see `live`).
        if let Some(sig) = unsafe { sig.as_ref() } {
            sig.destroy();
        }
    });
}

/// `beckon_sig_set_callbacks`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`]; `callbacks` is NULL or points at `callbacks_size`
/// readable bytes laid out as `beckon_sig_callbacks`, whose members are NULL or functions of
/// the declared signatures.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_set_callbacks(
    sig: *mut Sig,
    callbacks: *const Callbacks,
    callbacks_size: usize,
    user: *mut c_void,
) {
    guard((), || {
        // SAFETY: handles are never freed.
        if let Some(sig) = unsafe { sig.as_ref() } {
            // SAFETY: the struct's size and layout are the caller's contract.
            let table = unsafe { crate::callbacks::copy_from_c(callbacks, callbacks_size) };
            sig.set_callbacks(table, user);
        }
    });
}

/// `beckon_sig_bind`.
///
/// # Safety
///
/// As [`beckon_sig_set_callbacks`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_bind(
    sig: *mut Sig,
    callbacks: *const Callbacks,
    callbacks_size: usize,
    user: *mut c_void,
) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: handles are never freed.
        match unsafe { sig.as_ref() } {
            Some(sig) => {
                // SAFETY: the struct's size and layout are the caller's contract.
                let table = unsafe { crate::callbacks::copy_from_c(callbacks, callbacks_size) };
                sig.bind(table, user)
            }
            None => std::ptr::null_mut(),
        }
    })
}

/// `beckon_sig_callbacks_size`.
#[unsafe(no_mangle)]
pub extern "C" fn beckon_sig_callbacks_size() -> usize {
    std::mem::size_of::<Callbacks>()
}

// ---- configuration ----------------------------------------------------------------------------

/// `beckon_set_server_url`: 0, or 1004 for a URL list the SDK cannot use.
///
/// # Safety
///
/// `url` is NULL or points at `url_size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_set_server_url(url: *const c_char, url_size: usize) -> c_int {
    guard(WRONG_PARAM, || {
        // SAFETY: the caller's contract.
        let Ok(url) = (unsafe { raw("url", url, url_size).text() }) else {
            return WRONG_PARAM;
        };
        let Some(rt) = runtime::shared() else {
            return WRONG_PARAM;
        };
        let _in_runtime = rt.enter();
        match server::set_process_url(Some(url).filter(|u| !u.trim().is_empty())) {
            Ok(()) => 0,
            Err(_) => WRONG_PARAM,
        }
    })
}

/// `beckon_sig_set_server_url`: 0, or 1004 for a URL list the SDK cannot use (also for a
/// destroyed or NULL handle).
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`]; `url` as for [`beckon_set_server_url`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_set_server_url(
    sig: *mut Sig,
    url: *const c_char,
    url_size: usize,
) -> c_int {
    guard(WRONG_PARAM, || {
        // SAFETY: the caller's contract.
        let (Some(live), Ok(url)) = (unsafe { live(sig) }, unsafe {
            raw("url", url, url_size).text()
        }) else {
            return WRONG_PARAM;
        };
        match live.set_own_url(Some(url).filter(|u| !u.trim().is_empty())) {
            Ok(()) => 0,
            Err(_) => WRONG_PARAM,
        }
    })
}

/// `beckon_sig_set_default_app_id`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`]; `app_id` is NULL or points at `app_id_size` readable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_set_default_app_id(
    sig: *mut Sig,
    app_id: *const c_char,
    app_id_size: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        call(
            sig,
            "getAgoraSDKInstanceWin",
            [raw("appId", app_id, app_id_size)],
            |_, _| None,
            |l, [app_id]| l.set_default_app_id(app_id),
        );
    }
}

// ---- miscellaneous ----------------------------------------------------------------------------

/// `start`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_start(sig: *mut Sig) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        if let Some(live) = unsafe { live(sig) } {
            live.start();
        }
    });
}

/// `stop`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_stop(sig: *mut Sig) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        if let Some(live) = unsafe { live(sig) } {
            live.stop();
        }
    });
}

/// `getStatus`: 0 for NULL or destroyed handles.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_get_status(sig: *const Sig) -> c_int {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        unsafe { live(sig) }.map_or(0, |l| l.status())
    })
}

/// `isOnline`: 1 when logged in and connected.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_is_online(sig: *const Sig) -> c_int {
    guard(0, || {
        // SAFETY: forwarded from the caller.
        let online = unsafe { live(sig) }.is_some_and(|l| l.status() == Status::LoggedIn as i32);
        c_int::from(online)
    })
}

/// `getSdkVersion`: the same for every handle, NULL included.
#[unsafe(no_mangle)]
pub extern "C" fn beckon_sig_get_sdk_version(_sig: *const Sig) -> c_int {
    c_int::try_from(SDK_VERSION).unwrap_or(c_int::MAX)
}
