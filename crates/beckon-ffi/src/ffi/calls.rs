//! Calls: invitations to users and phones, accept, refuse, end, and DTMF.

use std::ffi::c_char;

use beckon_sdk::Event;

use super::{Sig, call, raw};
use crate::args::WRONG_PARAM;

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

/// `channelInviteUser`.
///
/// # Safety
///
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
