//! Channels: join and leave, member queries, channel attributes and channel messages.

use std::ffi::c_char;

use beckon_sdk::Event;

use super::{Sig, call, raw, send_error};
use crate::args::WRONG_PARAM;

/// `channelJoin`.
///
/// # Safety
///
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
/// As [`beckon_sig_login`](super::beckon_sig_login).
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
