//! Login, the user's own session, instant messages, user status and user attributes.

use std::ffi::{c_char, c_int};

use beckon_sdk::{Event, Status};

use super::{Sig, call, raw, send_error};
use crate::args::WRONG_PARAM;

/// `login`: `login2` with the default retry policy.
///
/// # Safety
///
/// `sig` as for [`beckon_sig_destroy`](super::beckon_sig_destroy); each `(pointer, size)` pair is NULL or points at
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// `sig` as for [`beckon_sig_destroy`](super::beckon_sig_destroy).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// `sig` as for [`beckon_sig_destroy`](super::beckon_sig_destroy).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
