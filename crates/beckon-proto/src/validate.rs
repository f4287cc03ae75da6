//! Parameter validation (SPEC §2, §6–§9), in one place for the client and the broker alike.
//!
//! The client checks locally so that a bad call fails at once without a round trip; the broker
//! checks again, because it never trusts a client. Both call the same function of this module
//! for each request kind ([`invite`], [`channel_attr_write`], [`invoke`], …), so they accept
//! the same parameters and refuse the others with the same code and message.
//!
//! ```
//! use beckon_proto::validate::{self, Limits};
//!
//! let limits = Limits::default();
//! let extra = validate::invite(&limits, "alice", "room", "bob", r#"{"_require_peer_online":1}"#).unwrap();
//! assert!(extra.flag(validate::EXTRA_REQUIRE_PEER_ONLINE));
//! // White space is neither JSON nor empty.
//! assert_eq!(validate::invite(&limits, "alice", "room", "bob", " ").unwrap_err().code.code(), 1004);
//! ```

use crate::error::{CallError, CallResult};
use crate::{CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL};

mod json;
mod request;

pub use json::{
    EXTRA_DEST_NUMBER, EXTRA_PHONE, EXTRA_REQUIRE_PEER_ONLINE, EXTRA_SOURCE_NUMBER, Extra,
    InvokeArgs,
};
pub use request::{
    CONN_TIMEOUT_ATTR, app_id, channel_attr, channel_attr_delete, channel_attr_write,
    channel_member, channel_message, conn_timeout_secs, instant_message, invite, invite_answer,
    invite_dtmf, invite_end, invoke, is_phone_number, login, user_attr_read, user_attr_write,
};

/// What accounts and channel names SPEC reserves start with: no account may (the server's
/// `_system` included), and no channel but the special ones ([`is_special_channel`]).
pub const RESERVED_PREFIX: char = '_';

/// Whether `name` is one of SPEC's special channels (`_agora_user_online`,
/// `_agora_channel_event`), which only sessions with the server privilege may join or list.
pub fn is_special_channel(name: &str) -> bool {
    name == USER_ONLINE_CHANNEL || name == CHANNEL_EVENT_CHANNEL
}

/// Size limits of SPEC §2. The defaults are the spec's; every one is configurable per app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Accounts, channel names and attribute names, in characters.
    pub max_name_chars: usize,
    /// User attribute values, in characters.
    pub max_user_attr_value_chars: usize,
    /// Channel attribute values, in characters.
    pub max_channel_attr_value_chars: usize,
    /// P2P and channel message bodies and call `extra`, in bytes of UTF-8.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_name_chars: 128,
            max_user_attr_value_chars: 1024,
            max_channel_attr_value_chars: 8096,
            max_message_bytes: 8192,
        }
    }
}

impl Limits {
    /// The limits as the login reply announces them.
    pub fn to_wire(&self) -> crate::pb::Limits {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        crate::pb::Limits {
            max_name_chars: clamp(self.max_name_chars),
            max_user_attr_value_chars: clamp(self.max_user_attr_value_chars),
            max_channel_attr_value_chars: clamp(self.max_channel_attr_value_chars),
            max_message_bytes: clamp(self.max_message_bytes),
        }
    }

    /// Limits announced by a server; zero fields fall back to the defaults.
    pub fn from_wire(w: &crate::pb::Limits) -> Self {
        let d = Self::default();
        let pick = |v: u32, def: usize| if v == 0 { def } else { v as usize };
        Self {
            max_name_chars: pick(w.max_name_chars, d.max_name_chars),
            max_user_attr_value_chars: pick(
                w.max_user_attr_value_chars,
                d.max_user_attr_value_chars,
            ),
            max_channel_attr_value_chars: pick(
                w.max_channel_attr_value_chars,
                d.max_channel_attr_value_chars,
            ),
            max_message_bytes: pick(w.max_message_bytes, d.max_message_bytes),
        }
    }

    /// An account: 1..=max visible characters, no whitespace, not starting with `_` (reserved
    /// for the server's own names, such as the sender of system events, `_system`).
    pub fn account(&self, what: &str, account: &str) -> CallResult {
        self.identifier(what, account)?;
        if account.starts_with(RESERVED_PREFIX) {
            return Err(CallError::wrong_param(format!(
                "{what} {account:?}: names starting with _ are reserved"
            )));
        }
        Ok(())
    }

    /// A name without whitespace (an account, an App ID): 1..=max visible characters.
    fn identifier(&self, what: &str, value: &str) -> CallResult {
        self.name(what, value)?;
        if value.chars().any(char::is_whitespace) {
            return Err(CallError::wrong_param(format!(
                "{what} must not contain whitespace"
            )));
        }
        Ok(())
    }

    /// A channel name: 1..=max visible characters, not starting with `_` unless it is one of
    /// the special channels.
    pub fn channel(&self, what: &str, channel: &str) -> CallResult {
        self.name(what, channel)?;
        if channel.starts_with(RESERVED_PREFIX) && !is_special_channel(channel) {
            return Err(CallError::wrong_param(format!(
                "{what} {channel:?}: names starting with _ are reserved \
                 ({USER_ONLINE_CHANNEL} and {CHANNEL_EVENT_CHANNEL} are the only such channels)"
            )));
        }
        Ok(())
    }

    /// An attribute name: 1..=max visible characters.
    pub fn attr_name(&self, what: &str, name: &str) -> CallResult {
        self.name(what, name)
    }

    /// A user attribute value: visible characters (empty allowed: it deletes), bounded length.
    pub fn user_attr_value(&self, what: &str, value: &str) -> CallResult {
        check_chars(what, value, self.max_user_attr_value_chars, true)
    }

    /// A channel attribute value.
    pub fn channel_attr_value(&self, what: &str, value: &str) -> CallResult {
        check_chars(what, value, self.max_channel_attr_value_chars, true)
    }

    /// A p2p or channel message body: any text, empty allowed, bounded in bytes.
    pub fn message(&self, what: &str, msg: &str) -> CallResult {
        if msg.len() > self.max_message_bytes {
            return Err(CallError::large_param(format!(
                "{what} is {} bytes; the limit is {} bytes",
                msg.len(),
                self.max_message_bytes
            )));
        }
        Ok(())
    }

    /// A client-chosen message id or call id: empty allowed, visible, bounded like a name.
    pub fn id(&self, what: &str, id: &str) -> CallResult {
        check_chars(what, id, self.max_name_chars, true)
    }

    fn name(&self, what: &str, value: &str) -> CallResult {
        check_chars(what, value, self.max_name_chars, false)
    }
}

/// Whether `c` counts as a visible character (SPEC §1: not a control character).
pub fn is_visible(c: char) -> bool {
    !c.is_control()
}

fn check_chars(what: &str, value: &str, max: usize, allow_empty: bool) -> CallResult {
    if !allow_empty && value.is_empty() {
        return Err(CallError::wrong_param(format!("{what} must not be empty")));
    }
    // ASCII, the common case, is checked a byte at a time: its control characters are exactly
    // the bytes `is_ascii_control` names, and it has as many characters as bytes.
    let ascii = value.is_ascii();
    let bad = if ascii {
        (value.bytes()).find(u8::is_ascii_control).map(char::from)
    } else {
        value.chars().find(|c| !is_visible(*c))
    };
    if let Some(bad) = bad {
        return Err(CallError::wrong_param(format!(
            "{what} contains the control character U+{:04X}",
            bad as u32
        )));
    }
    // Counting stops one past the limit so a huge value costs no more than a legal one.
    let count = if ascii {
        value.len()
    } else {
        value.chars().take(max + 1).count()
    };
    if count > max {
        return Err(CallError::large_param(format!(
            "{what} is longer than {max} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ErrorCode;

    /// The code a check returned: 0 when it passed.
    pub(super) fn code<T>(r: CallResult<T>) -> i32 {
        r.err().map_or(0, |e| e.code.code())
    }

    #[test]
    fn accounts() {
        let l = Limits::default();
        assert_eq!(code(l.account("account", "alice")), 0);
        assert_eq!(code(l.account("account", "")), 1004);
        assert_eq!(code(l.account("account", "al ice")), 1004);
        assert_eq!(code(l.account("account", "al\tice")), 1004);
        assert_eq!(code(l.account("account", "al\u{7}ice")), 1004);
        assert_eq!(code(l.account("account", &"a".repeat(128))), 0);
        assert_eq!(code(l.account("account", &"a".repeat(129))), 1005);
        // Characters, not bytes.
        assert_eq!(code(l.account("account", &"é".repeat(128))), 0);
        assert_eq!(code(l.account("account", &"é".repeat(129))), 1005);
        // Reserved: the server's own names start with `_`.
        assert_eq!(code(l.account("account", "_system")), 1004);
        assert_eq!(code(l.account("account", "_x")), 1004);
        assert_eq!(code(l.account("account", "a_")), 0);
    }

    #[test]
    fn channels() {
        let l = Limits::default();
        assert_eq!(code(l.channel("c", "room")), 0);
        assert_eq!(
            code(l.channel("c", "a b")),
            0,
            "channel names may hold spaces"
        );
        assert_eq!(code(l.channel("c", "_agora_user_online")), 0);
        assert_eq!(code(l.channel("c", "_agora_channel_event")), 0);
        assert_eq!(code(l.channel("c", "_agora_other")), 1004);
        assert_eq!(code(l.channel("c", "_")), 1004);
        assert!(is_special_channel("_agora_user_online") && !is_special_channel("room"));
    }

    #[test]
    fn values_and_messages() {
        let l = Limits::default();
        assert_eq!(code(l.user_attr_value("v", "")), 0);
        assert_eq!(code(l.user_attr_value("v", &"x".repeat(1024))), 0);
        assert_eq!(code(l.user_attr_value("v", &"x".repeat(1025))), 1005);
        assert_eq!(code(l.channel_attr_value("v", &"x".repeat(8096))), 0);
        assert_eq!(code(l.channel_attr_value("v", &"x".repeat(8097))), 1005);
        assert_eq!(code(l.message("m", &"x".repeat(8192))), 0);
        assert_eq!(code(l.message("m", &"x".repeat(8193))), 1005);
        // 8192 bytes of UTF-8, not characters.
        assert_eq!(code(l.message("m", &"é".repeat(4097))), 1005);
        assert_eq!(code(l.message("m", "line\nbreaks are fine")), 0);
    }

    #[test]
    fn wire_round_trip() {
        let l = Limits {
            max_name_chars: 7,
            ..Limits::default()
        };
        assert_eq!(Limits::from_wire(&l.to_wire()), l);
        assert_eq!(Limits::from_wire(&Default::default()), Limits::default());
    }

    #[test]
    fn the_ascii_path_sees_the_same_control_characters() {
        for b in 0u8..=0x7f {
            assert_eq!(
                b.is_ascii_control(),
                !is_visible(char::from(b)),
                "byte {b:#04x}"
            );
        }
    }

    proptest! {
        #[test]
        fn account_validation_never_panics_and_is_consistent(s in ".{0,200}") {
            let l = Limits::default();
            match l.account("account", &s) {
                Ok(()) => {
                    prop_assert!(!s.is_empty() && !s.starts_with('_'));
                    prop_assert!(s.chars().count() <= 128);
                    prop_assert!(s.chars().all(|c| !c.is_whitespace() && !c.is_control()));
                }
                Err(e) => prop_assert!(matches!(e.code, ErrorCode::GeneralWrongParam | ErrorCode::GeneralLargeParam)),
            }
        }
    }
}
