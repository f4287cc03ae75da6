//! The C ABI: every function `include/agora_sig.h` declares, and nothing else.
//!
//! Each entry point runs its body under `catch_unwind` (a panic returns the function's
//! neutral value: nothing, NULL or 0), accepts a NULL handle as a no-op, and checks its string
//! arguments before the SDK sees them (`args`). The callers' side of the contract — handles
//! from this library, `(pointer, size)` pairs that point at `size` readable bytes — is the
//! header's, and each function's `# Safety` section repeats it.

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

/// The failure event of a refused invitation.
fn invite_failed(channel: String, account: String, extra: String) -> Option<Event> {
    Some(Event::InviteFailed {
        channel,
        account,
        uid: 0,
        ecode: WRONG_PARAM,
        extra,
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

// ---- login and users --------------------------------------------------------------------------

/// `login`: `login2` with the default retry policy.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`]; each `(pointer, size)` pair is NULL or points at
/// `size` readable bytes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_login(
    sig: *mut Sig,
    app_id: *const c_char,
    app_id_size: usize,
    account: *const c_char,
    account_size: usize,
    token: *const c_char,
    token_size: usize,
    uid: u32,
    device_id: *const c_char,
    device_id_size: usize,
) {
    // SAFETY: forwarded from the caller; 0 retries means the SDK's defaults.
    unsafe {
        beckon_sig_login2(
            sig,
            app_id,
            app_id_size,
            account,
            account_size,
            token,
            token_size,
            uid,
            device_id,
            device_id_size,
            0,
            0,
        );
    }
}

/// `login2`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_login2(
    sig: *mut Sig,
    app_id: *const c_char,
    app_id_size: usize,
    account: *const c_char,
    account_size: usize,
    token: *const c_char,
    token_size: usize,
    _uid: u32,
    device_id: *const c_char,
    device_id_size: usize,
    retry_time_in_s: c_int,
    retry_count: c_int,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "login",
            [
                raw("appId", app_id, app_id_size),
                raw("account", account, account_size),
                raw("token", token, token_size),
                raw("deviceID", device_id, device_id_size),
            ],
            // As the SDK: a login while logged in or logging in is ignored, so it cannot fail.
            |l, _| {
                (l.status() == Status::NotLoggedIn as i32)
                    .then_some(Event::LoginFailed { ecode: WRONG_PARAM })
            },
            |l, [app_id, account, token, device_id]| {
                l.login2(
                    app_id,
                    account,
                    token,
                    device_id,
                    retry_time_in_s,
                    retry_count,
                );
            },
        );
    }
}

/// `logout`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_logout(sig: *mut Sig) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "logout",
            [],
            |_, _| None,
            |l, []| _ = l.with(|i| i.logout()),
        )
    }
}

/// `invoke`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_invoke(
    sig: *mut Sig,
    name: *const c_char,
    name_size: usize,
    req: *const c_char,
    req_size: usize,
    call_id: *const c_char,
    call_id_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "invoke",
            [
                raw("name", name, name_size),
                raw("req", req, req_size),
                raw("callID", call_id, call_id_size),
            ],
            |_, [_, _, call_id]| {
                Some(Event::InvokeRet {
                    call_id,
                    err: WRONG_PARAM.to_string(),
                    resp: String::new(),
                })
            },
            |l, [name, req, call_id]| _ = l.with(|i| i.invoke(name, req, call_id)),
        );
    }
}

/// `messageInstantSend`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_message_instant_send(
    sig: *mut Sig,
    account: *const c_char,
    account_size: usize,
    uid: u32,
    msg: *const c_char,
    msg_size: usize,
    msg_id: *const c_char,
    msg_id_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "messageInstantSend",
            [
                raw("account", account, account_size),
                raw("msg", msg, msg_size),
                raw("msgID", msg_id, msg_id_size),
            ],
            |l, [_, _, id]| send_error(l, id),
            |l, [account, msg, id]| _ = l.with(|i| i.message_instant_send(account, uid, msg, id)),
        );
    }
}

/// `queryUserStatus`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_query_user_status(
    sig: *mut Sig,
    account: *const c_char,
    account_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "queryUserStatus",
            [raw("account", account, account_size)],
            |_, _| None,
            |l, [account]| _ = l.with(|i| i.query_user_status(account)),
        );
    }
}

/// `setAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_set_attr(
    sig: *mut Sig,
    name: *const c_char,
    name_size: usize,
    value: *const c_char,
    value_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "setAttr",
            [
                raw("name", name, name_size),
                raw("value", value, value_size),
            ],
            |_, _| None,
            |l, [name, value]| _ = l.with(|i| i.set_attr(name, value)),
        );
    }
}

/// `getAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_get_attr(sig: *mut Sig, name: *const c_char, name_size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "getAttr",
            [raw("name", name, name_size)],
            |_, _| None,
            |l, [name]| _ = l.with(|i| i.get_attr(name)),
        );
    }
}

/// `getAttrAll`.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_get_attr_all(sig: *mut Sig) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "getAttrAll",
            [],
            |_, _| None,
            |l, []| _ = l.with(|i| i.get_attr_all()),
        );
    }
}

/// `getUserAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_get_user_attr(
    sig: *mut Sig,
    account: *const c_char,
    account_size: usize,
    name: *const c_char,
    name_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "getUserAttr",
            [
                raw("account", account, account_size),
                raw("name", name, name_size),
            ],
            |_, _| None,
            |l, [account, name]| _ = l.with(|i| i.get_user_attr(account, name)),
        );
    }
}

/// `getUserAttrAll`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_get_user_attr_all(
    sig: *mut Sig,
    account: *const c_char,
    account_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "getUserAttrAll",
            [raw("account", account, account_size)],
            |_, _| None,
            |l, [account]| _ = l.with(|i| i.get_user_attr_all(account)),
        );
    }
}

// ---- channels ---------------------------------------------------------------------------------

/// `channelJoin`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_join(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelJoin",
            [raw("channelID", channel, channel_size)],
            |_, [channel]| {
                Some(Event::ChannelJoinFailed {
                    channel,
                    ecode: WRONG_PARAM,
                })
            },
            |l, [channel]| _ = l.with(|i| i.channel_join(channel)),
        );
    }
}

/// `channelLeave`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_leave(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelLeave",
            [raw("channelID", channel, channel_size)],
            |_, _| None,
            |l, [channel]| _ = l.with(|i| i.channel_leave(channel)),
        );
    }
}

/// `channelQueryUserNum`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_query_user_num(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelQueryUserNum",
            [raw("channelID", channel, channel_size)],
            |_, [channel]| {
                Some(Event::ChannelQueryUserNumResult {
                    channel,
                    ecode: WRONG_PARAM,
                    num: 0,
                })
            },
            |l, [channel]| _ = l.with(|i| i.channel_query_user_num(channel)),
        );
    }
}

/// `channelQueryUserIsIn`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_query_user_is_in(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelQueryUserIsIn",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
            ],
            |_, _| None,
            |l, [channel, account]| _ = l.with(|i| i.channel_query_user_is_in(channel, account)),
        );
    }
}

/// `channelSetAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_set_attr(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    name: *const c_char,
    name_size: usize,
    value: *const c_char,
    value_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelSetAttr",
            [
                raw("channelID", channel, channel_size),
                raw("name", name, name_size),
                raw("value", value, value_size),
            ],
            |_, _| None,
            |l, [channel, name, value]| _ = l.with(|i| i.channel_set_attr(channel, name, value)),
        );
    }
}

/// `channelDelAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_del_attr(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    name: *const c_char,
    name_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelDelAttr",
            [
                raw("channelID", channel, channel_size),
                raw("name", name, name_size),
            ],
            |_, _| None,
            |l, [channel, name]| _ = l.with(|i| i.channel_del_attr(channel, name)),
        );
    }
}

/// `channelClearAttr`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_clear_attr(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelClearAttr",
            [raw("channelID", channel, channel_size)],
            |_, _| None,
            |l, [channel]| _ = l.with(|i| i.channel_clear_attr(channel)),
        );
    }
}

/// `messageChannelSend`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_message_channel_send(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    msg: *const c_char,
    msg_size: usize,
    msg_id: *const c_char,
    msg_id_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "messageChannelSend",
            [
                raw("channelID", channel, channel_size),
                raw("msg", msg, msg_size),
                raw("msgID", msg_id, msg_id_size),
            ],
            |l, [_, _, id]| send_error(l, id),
            |l, [channel, msg, id]| _ = l.with(|i| i.message_channel_send(channel, msg, id)),
        );
    }
}

/// `messageChannelSendForce`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_message_channel_send_force(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    msg: *const c_char,
    msg_size: usize,
    msg_id: *const c_char,
    msg_id_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "messageChannelSendForce",
            [
                raw("channelID", channel, channel_size),
                raw("msg", msg, msg_size),
                raw("msgID", msg_id, msg_id_size),
            ],
            |l, [_, _, id]| send_error(l, id),
            |l, [channel, msg, id]| {
                _ = l.with(|i| i.message_channel_send_force(channel, msg, id));
            },
        );
    }
}

// ---- calls ------------------------------------------------------------------------------------

/// `channelInviteUser`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_user(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
    uid: u32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteUser",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
            ],
            |_, [channel, account]| invite_failed(channel, account, String::new()),
            |l, [channel, account]| _ = l.with(|i| i.channel_invite_user(channel, account, uid)),
        );
    }
}

/// `channelInviteUser2`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_user2(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
    extra: *const c_char,
    extra_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteUser2",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
                raw("extra", extra, extra_size),
            ],
            |_, [channel, account, extra]| invite_failed(channel, account, extra),
            |l, [channel, account, extra]| {
                _ = l.with(|i| i.channel_invite_user2(channel, account, extra));
            },
        );
    }
}

/// `channelInvitePhone` (obsolete).
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_phone(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    phone_num: *const c_char,
    phone_num_size: usize,
    uid: u32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInvitePhone",
            [
                raw("channelID", channel, channel_size),
                raw("phoneNum", phone_num, phone_num_size),
            ],
            |_, [channel, phone]| invite_failed(channel, phone, String::new()),
            |l, [channel, phone]| _ = l.with(|i| i.channel_invite_phone(channel, phone, uid)),
        );
    }
}

/// `channelInvitePhone2` (obsolete).
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_phone2(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    phone_num: *const c_char,
    phone_num_size: usize,
    sources_num: *const c_char,
    sources_num_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInvitePhone2",
            [
                raw("channelID", channel, channel_size),
                raw("phoneNum", phone_num, phone_num_size),
                raw("sourcesNum", sources_num, sources_num_size),
            ],
            |_, [channel, phone, _]| invite_failed(channel, phone, String::new()),
            |l, [channel, phone, sources]| {
                _ = l.with(|i| i.channel_invite_phone2(channel, phone, sources));
            },
        );
    }
}

/// `channelInvitePhone3` (obsolete).
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_channel_invite_phone3(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    phone_num: *const c_char,
    phone_num_size: usize,
    sources_num: *const c_char,
    sources_num_size: usize,
    extra: *const c_char,
    extra_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInvitePhone3",
            [
                raw("channelID", channel, channel_size),
                raw("phoneNum", phone_num, phone_num_size),
                raw("sourcesNum", sources_num, sources_num_size),
                raw("extra", extra, extra_size),
            ],
            |_, [channel, phone, _, extra]| invite_failed(channel, phone, extra),
            |l, [channel, phone, sources, extra]| {
                _ = l.with(|i| i.channel_invite_phone3(channel, phone, sources, extra));
            },
        );
    }
}

/// `channelInviteDTMF`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_dtmf(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    phone_num: *const c_char,
    phone_num_size: usize,
    dtmf: *const c_char,
    dtmf_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteDTMF",
            [
                raw("channelID", channel, channel_size),
                raw("phoneNum", phone_num, phone_num_size),
                raw("dtmf", dtmf, dtmf_size),
            ],
            |_, _| None,
            |l, [channel, phone, dtmf]| _ = l.with(|i| i.channel_invite_dtmf(channel, phone, dtmf)),
        );
    }
}

/// `channelInviteAccept`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_channel_invite_accept(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
    uid: u32,
    extra: *const c_char,
    extra_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteAccept",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
                raw("extra", extra, extra_size),
            ],
            |_, _| None,
            |l, [channel, account, extra]| {
                _ = l.with(|i| i.channel_invite_accept(channel, account, uid, extra));
            },
        );
    }
}

/// `channelInviteRefuse`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn beckon_sig_channel_invite_refuse(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
    uid: u32,
    extra: *const c_char,
    extra_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteRefuse",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
                raw("extra", extra, extra_size),
            ],
            |_, _| None,
            |l, [channel, account, extra]| {
                _ = l.with(|i| i.channel_invite_refuse(channel, account, uid, extra));
            },
        );
    }
}

/// `channelInviteEnd`.
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_channel_invite_end(
    sig: *mut Sig,
    channel: *const c_char,
    channel_size: usize,
    account: *const c_char,
    account_size: usize,
    uid: u32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "channelInviteEnd",
            [
                raw("channelID", channel, channel_size),
                raw("account", account, account_size),
            ],
            |_, _| None,
            |l, [channel, account]| _ = l.with(|i| i.channel_invite_end(channel, account, uid)),
        );
    }
}

/// `messageDTMFSend` (obsolete).
///
/// # Safety
///
/// As [`beckon_sig_login`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn beckon_sig_message_dtmf_send(
    sig: *mut Sig,
    uid: u32,
    msg: *const c_char,
    msg_size: usize,
    msg_id: *const c_char,
    msg_id_size: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        call(
            sig,
            "messageDTMFSend",
            [raw("msg", msg, msg_size), raw("msgID", msg_id, msg_id_size)],
            |_, _| None,
            |l, [msg, id]| _ = l.with(|i| i.message_dtmf_send(uid, msg, id)),
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
