//! The rules of each request kind: one function per kind, called by the client before it sends
//! and by the broker on what it receives, so both sides accept the same parameters and refuse
//! the rest with the same code.
//!
//! The order of the checks inside a function is part of the rule: when two parameters are bad,
//! both sides report the first one.

use super::{Extra, Limits};
use crate::error::{CallError, CallResult};

/// The one user attribute name starting with `_` that users may set (SPEC §6).
pub const CONN_TIMEOUT_ATTR: &str = "_conn_timeout";

/// Built-in channel attributes (SPEC §7).
pub mod channel_attr {
    /// 1 (default): members hear each other join and leave; 0: they do not.
    pub const USER_NOTIFICATION: &str = "_userNotification";
    /// Seconds an empty channel and its attributes live.
    pub const CHANNEL_TTL: &str = "_channel_ttl";
    /// Read-only: the member count.
    pub const MEMBER_NUM: &str = "_member_num";
    /// Every n seconds, members get `_member_num` if it changed.
    pub const AUTO_UPDATE_NUM: &str = "_auto_update_num";
    /// Read-only: distinct accounts that ever joined.
    pub const TOTAL_MEMBER_NUM: &str = "_total_member_num";
    /// Every n seconds, members get `_total_member_num` if it changed.
    pub const AUTO_UPDATE_TOTAL_NUM: &str = "_auto_update_total_num";
    /// Channel messages per second.
    pub const SENDMSG_LIMIT: &str = "_sendmsg_limit";
    /// Attribute updates per second.
    pub const SETATTR_LIMIT: &str = "_setattr_limit";
}

/// DTMF digits of one `channelInviteDTMF` at most (as many as a name has characters).
fn max_dtmf(limits: &Limits) -> usize {
    limits.max_name_chars
}

impl Limits {
    /// A call's `extra`: at most the message size, and empty or a JSON object.
    pub fn extra(&self, extra: &str) -> CallResult<Extra> {
        self.message("extra", extra)?;
        Extra::parse(extra)
    }

    /// DTMF digits: `[0-9*#]+` (1004), at most as many as a name has characters (1005).
    pub fn dtmf(&self, dtmf: &str) -> CallResult {
        if dtmf.is_empty()
            || !dtmf
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(CallError::wrong_param("dtmf must be digits, * or #"));
        }
        if dtmf.len() > max_dtmf(self) {
            return Err(CallError::large_param(format!(
                "dtmf has more than {} digits",
                max_dtmf(self)
            )));
        }
        Ok(())
    }
}

/// An App ID: named like an account, under the default limits (an app's own limits are only
/// known once the App ID is).
pub fn app_id(app_id: &str) -> CallResult {
    Limits::default().identifier("App ID", app_id)
}

/// `login(appId, account, token, …)`.
pub fn login(limits: &Limits, app: &str, account: &str, token: &str) -> CallResult {
    app_id(app)?;
    limits.account("account", account)?;
    if token.is_empty() {
        return Err(CallError::wrong_param(
            "token must not be empty (use _no_need_token where the app allows it)",
        ));
    }
    Ok(())
}

/// `messageInstantSend(account, uid, msg, msgID)`.
pub fn instant_message(limits: &Limits, account: &str, msg: &str, msg_id: &str) -> CallResult {
    limits.account("account", account)?;
    limits.message("msg", msg)?;
    limits.id("msgID", msg_id)
}

/// `messageChannelSend(channelID, msg, msgID)` and its forced form.
pub fn channel_message(limits: &Limits, channel: &str, msg: &str, msg_id: &str) -> CallResult {
    limits.channel("channelID", channel)?;
    limits.message("msg", msg)?;
    limits.id("msgID", msg_id)
}

/// `getUserAttr(account, name)`.
pub fn user_attr_read(limits: &Limits, account: &str, name: &str) -> CallResult {
    limits.account("account", account)?;
    limits.attr_name("name", name)
}

/// `setAttr(name, value)`: built-in names are read-only except `_conn_timeout`, whose value
/// must be a whole number of seconds (or empty, to delete).
pub fn user_attr_write(limits: &Limits, name: &str, value: &str) -> CallResult {
    limits.attr_name("name", name)?;
    limits.user_attr_value("value", value)?;
    if name.starts_with('_') {
        if name != CONN_TIMEOUT_ATTR {
            return Err(CallError::wrong_param(format!(
                "attribute {name} is built-in and read-only; only {CONN_TIMEOUT_ATTR} may be set"
            )));
        }
        if !value.is_empty() && conn_timeout_secs(value).is_none() {
            return Err(CallError::wrong_param(format!(
                "{CONN_TIMEOUT_ATTR} must be a whole number of seconds, not {value:?}"
            )));
        }
    }
    Ok(())
}

/// The seconds a `_conn_timeout` value names, if it is a whole number.
pub fn conn_timeout_secs(value: &str) -> Option<u32> {
    value.parse().ok()
}

/// `channelQueryUserIsIn(channelID, account)`.
pub fn channel_member(limits: &Limits, channel: &str, account: &str) -> CallResult {
    limits.channel("channelID", channel)?;
    limits.account("account", account)
}

/// `channelSetAttr(channelID, name, value)`: built-in attributes take only their own kind of
/// value, the read-only ones none, and other names starting with `_` are reserved.
pub fn channel_attr_write(limits: &Limits, channel: &str, name: &str, value: &str) -> CallResult {
    use channel_attr::*;
    limits.channel("channelID", channel)?;
    limits.attr_name("name", name)?;
    limits.channel_attr_value("value", value)?;
    if !name.starts_with('_') {
        return Ok(());
    }
    let valid = match name {
        MEMBER_NUM | TOTAL_MEMBER_NUM => return Err(read_only(name)),
        USER_NOTIFICATION => value.is_empty() || value == "0" || value == "1",
        CHANNEL_TTL | AUTO_UPDATE_NUM | AUTO_UPDATE_TOTAL_NUM | SENDMSG_LIMIT | SETATTR_LIMIT => {
            value.is_empty() || value.parse::<u32>().is_ok()
        }
        _ => {
            return Err(CallError::wrong_param(format!(
                "{name} is not a built-in attribute; names starting with _ are reserved"
            )));
        }
    };
    if valid {
        Ok(())
    } else if name == USER_NOTIFICATION {
        Err(CallError::wrong_param(format!("{name} must be 0 or 1")))
    } else {
        Err(CallError::wrong_param(format!(
            "{name} must be a whole number"
        )))
    }
}

/// `channelDelAttr(channelID, name)`: the read-only built-ins cannot be deleted.
pub fn channel_attr_delete(limits: &Limits, channel: &str, name: &str) -> CallResult {
    limits.channel("channelID", channel)?;
    limits.attr_name("name", name)?;
    if name == channel_attr::MEMBER_NUM || name == channel_attr::TOTAL_MEMBER_NUM {
        return Err(read_only(name));
    }
    Ok(())
}

fn read_only(name: &str) -> CallError {
    CallError::wrong_param(format!("{name} is read-only"))
}

/// Whether `s` is a phone number: digits, optionally after a `+`.
pub fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `channelInviteUser2(channelID, account, extra)` (and the phone forms, which set `_phone`)
/// by `caller`. Returns the parsed `extra`.
pub fn invite(
    limits: &Limits,
    caller: &str,
    channel: &str,
    callee: &str,
    extra: &str,
) -> CallResult<Extra> {
    let parsed = invite_answer(limits, channel, callee, extra)?;
    if callee == caller {
        return Err(CallError::wrong_param("a user cannot invite itself"));
    }
    if parsed.flag(super::EXTRA_PHONE) && !is_phone_number(callee) {
        return Err(CallError::wrong_param(
            "a phone invitation needs a phone number (digits, optionally after +)",
        ));
    }
    Ok(parsed)
}

/// `channelInviteAccept` / `channelInviteRefuse(channelID, account, uid, extra)`; `peer` is
/// the caller. Returns the parsed `extra`.
pub fn invite_answer(limits: &Limits, channel: &str, peer: &str, extra: &str) -> CallResult<Extra> {
    limits.channel("channelID", channel)?;
    limits.account("account", peer)?;
    limits.extra(extra)
}

/// `channelInviteEnd(channelID, account, uid)`.
pub fn invite_end(limits: &Limits, channel: &str, account: &str) -> CallResult {
    limits.channel("channelID", channel)?;
    limits.account("account", account)
}

/// `channelInviteDTMF(channelID, phoneNum, dtmf)`.
pub fn invite_dtmf(limits: &Limits, channel: &str, account: &str, dtmf: &str) -> CallResult {
    invite_end(limits, channel, account)?;
    limits.dtmf(dtmf)
}

/// `invoke(name, req, callID)`: the envelope only. The functions and their arguments are the
/// server's to know (a newer server may offer more), so the broker checks those itself.
pub fn invoke(limits: &Limits, name: &str, req: &str, call_id: &str) -> CallResult {
    if name.is_empty() {
        return Err(CallError::wrong_param("name must not be empty"));
    }
    limits.message("req", req)?;
    limits.id("callID", call_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::tests::code;

    #[test]
    fn user_attr_names() {
        let l = Limits::default();
        assert_eq!(code(user_attr_write(&l, "color", "blue")), 0);
        assert_eq!(code(user_attr_write(&l, "_conn_timeout", "30")), 0);
        assert_eq!(code(user_attr_write(&l, "_conn_timeout", "")), 0);
        assert_eq!(code(user_attr_write(&l, "_conn_timeout", "soon")), 1004);
        assert_eq!(code(user_attr_write(&l, "_conn_timeout", "-1")), 1004);
        assert_eq!(code(user_attr_write(&l, "_member_num", "3")), 1004);
        assert_eq!(code(user_attr_write(&l, "", "3")), 1004);
        assert_eq!(conn_timeout_secs("30"), Some(30));
        assert_eq!(conn_timeout_secs(" 30"), None);
    }

    #[test]
    fn channel_attr_built_ins() {
        let l = Limits::default();
        let set = |name: &str, value: &str| code(channel_attr_write(&l, "c", name, value));
        assert_eq!(set("topic", "anything"), 0);
        assert_eq!(set("_userNotification", "0"), 0);
        assert_eq!(set("_userNotification", "2"), 1004);
        assert_eq!(set("_channel_ttl", "60"), 0);
        assert_eq!(set("_channel_ttl", "soon"), 1004);
        assert_eq!(set("_sendmsg_limit", ""), 0);
        assert_eq!(set("_member_num", "1"), 1004);
        assert_eq!(set("_reserved", "1"), 1004);
        assert_eq!(set("", "1"), 1004);
        assert_eq!(set("topic", &"v".repeat(8097)), 1005);
        let del = |name: &str| code(channel_attr_delete(&l, "c", name));
        assert_eq!(del("topic"), 0);
        assert_eq!(del("_userNotification"), 0);
        assert_eq!(del("_total_member_num"), 1004);
        assert_eq!(code(channel_attr_delete(&l, "", "topic")), 1004);
    }

    #[test]
    fn invitations() {
        let l = Limits::default();
        assert_eq!(code(invite(&l, "alice", "c", "bob", "")), 0);
        assert_eq!(code(invite(&l, "alice", "c", "alice", "")), 1004);
        assert_eq!(code(invite(&l, "alice", "c", "bob", " ")), 1004);
        assert_eq!(
            code(invite(&l, "alice", "c", "bob", r#"{"_phone":1}"#)),
            1004
        );
        assert_eq!(
            code(invite(&l, "alice", "c", "+1555", r#"{"_phone":1}"#)),
            0
        );
        assert_eq!(code(invite(&l, "alice", "", "bob", "bad")), 1004);
        // The order of the checks: the channel, the callee, then `extra`.
        assert_eq!(
            code(invite(&l, "alice", "c", &"b".repeat(129), "bad")),
            1005
        );
        let too_big = format!(r#"{{"p":"{}"}}"#, "x".repeat(8192));
        assert_eq!(code(invite(&l, "alice", "c", "bob", &too_big)), 1005);
        assert_eq!(code(invite_answer(&l, "c", "alice", "[]")), 1004);
        assert!(is_phone_number("+15550100") && is_phone_number("0"));
        assert!(!is_phone_number("+") && !is_phone_number("") && !is_phone_number("1-2"));
    }

    #[test]
    fn dtmf_and_invoke() {
        let l = Limits::default();
        let long = "1".repeat(129);
        for (dtmf, want) in [("12*#", 0), ("", 1004), ("1a", 1004), (&*long, 1005)] {
            assert_eq!(code(invite_dtmf(&l, "c", "bob", dtmf)), want, "{dtmf:?}");
        }
        assert_eq!(code(invite_dtmf(&l, "c", "bo b", "1")), 1004);
        let huge = "x".repeat(8193);
        let envelopes: [(&str, &str, &str, i32); 4] = [
            ("f", "{}", "", 0),
            ("", "{}", "", 1004),
            ("f", &huge, "", 1005),
            ("f", "{}", "a\u{0}", 1004),
        ];
        for (name, req, call_id, want) in envelopes {
            assert_eq!(
                code(invoke(&l, name, req, call_id)),
                want,
                "{name:?} {call_id:?}"
            );
        }
    }

    #[test]
    fn logins() {
        let l = Limits::default();
        let long = "a".repeat(129);
        let cases = [
            ("app", "alice", "t", 0),
            ("", "alice", "t", 1004),
            ("app", "al ice", "t", 1004),
            ("app", "alice", "", 1004),
            (&*long, "alice", "", 1005),
        ];
        for (app, account, token, want) in cases {
            assert_eq!(
                code(login(&l, app, account, token)),
                want,
                "{app:?} {account:?} {token:?}"
            );
        }
    }
}
