//! The error codes of SPEC §3, with their numbers kept exactly.

use std::fmt;

/// An error code as the seeds' API reports it (`int ecode`).
///
/// The numbers are part of the public API and never change; additions take new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorCode {
    Success = 0,
    LogoutOther = 100,
    LogoutUser = 101,
    LogoutNet = 102,
    LogoutKicked = 103,
    LogoutPacket = 104,
    LogoutTokenExpired = 105,
    LogoutOldVersion = 106,
    LogoutTokenWrong = 107,
    LogoutAlreadyLogout = 108,
    LoginOther = 200,
    LoginNet = 201,
    LoginFailed = 202,
    LoginCancel = 203,
    LoginTokenExpired = 204,
    LoginOldVersion = 205,
    LoginTokenWrong = 206,
    LoginTokenKicked = 207,
    LoginAlreadyLogin = 208,
    JoinChannelOther = 300,
    JoinChannelForbidden = 301,
    SendMessageOther = 400,
    SendMessageTimeout = 401,
    SendMessageRateLimit = 402,
    SendMessagePeerOffline = 403,
    QueryUserNumOther = 500,
    QueryUserNumTimeout = 501,
    QueryUserNumByUser = 502,
    LeaveChannelOther = 600,
    LeaveChannelKicked = 601,
    LeaveChannelByUser = 602,
    LeaveChannelLogout = 603,
    LeaveChannelDisconn = 604,
    InviteOther = 700,
    InviteReinvite = 701,
    InviteNet = 702,
    InvitePeerOffline = 703,
    InviteTimeout = 704,
    InviteCantRecv = 705,
    General = 1000,
    GeneralFailed = 1001,
    GeneralUnknown = 1002,
    GeneralNotLogin = 1003,
    GeneralWrongParam = 1004,
    GeneralLargeParam = 1005,
    GeneralRateLimit = 1006,
    GeneralOverload = 1007,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 47] = [
        Self::Success,
        Self::LogoutOther,
        Self::LogoutUser,
        Self::LogoutNet,
        Self::LogoutKicked,
        Self::LogoutPacket,
        Self::LogoutTokenExpired,
        Self::LogoutOldVersion,
        Self::LogoutTokenWrong,
        Self::LogoutAlreadyLogout,
        Self::LoginOther,
        Self::LoginNet,
        Self::LoginFailed,
        Self::LoginCancel,
        Self::LoginTokenExpired,
        Self::LoginOldVersion,
        Self::LoginTokenWrong,
        Self::LoginTokenKicked,
        Self::LoginAlreadyLogin,
        Self::JoinChannelOther,
        Self::JoinChannelForbidden,
        Self::SendMessageOther,
        Self::SendMessageTimeout,
        Self::SendMessageRateLimit,
        Self::SendMessagePeerOffline,
        Self::QueryUserNumOther,
        Self::QueryUserNumTimeout,
        Self::QueryUserNumByUser,
        Self::LeaveChannelOther,
        Self::LeaveChannelKicked,
        Self::LeaveChannelByUser,
        Self::LeaveChannelLogout,
        Self::LeaveChannelDisconn,
        Self::InviteOther,
        Self::InviteReinvite,
        Self::InviteNet,
        Self::InvitePeerOffline,
        Self::InviteTimeout,
        Self::InviteCantRecv,
        Self::General,
        Self::GeneralFailed,
        Self::GeneralUnknown,
        Self::GeneralNotLogin,
        Self::GeneralWrongParam,
        Self::GeneralLargeParam,
        Self::GeneralRateLimit,
        Self::GeneralOverload,
    ];

    /// The code's number.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The code with this number, if there is one.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// The constant's name as the Web seed spells it, e.g. `LOGIN_E_TOKENWRONG`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::LogoutOther => "LOGOUT_E_OTHER",
            Self::LogoutUser => "LOGOUT_E_USER",
            Self::LogoutNet => "LOGOUT_E_NET",
            Self::LogoutKicked => "LOGOUT_E_KICKED",
            Self::LogoutPacket => "LOGOUT_E_PACKET",
            Self::LogoutTokenExpired => "LOGOUT_E_TOKENEXPIRED",
            Self::LogoutOldVersion => "LOGOUT_E_OLDVERSION",
            Self::LogoutTokenWrong => "LOGOUT_E_TOKENWRONG",
            Self::LogoutAlreadyLogout => "LOGOUT_E_ALREADY_LOGOUT",
            Self::LoginOther => "LOGIN_E_OTHER",
            Self::LoginNet => "LOGIN_E_NET",
            Self::LoginFailed => "LOGIN_E_FAILED",
            Self::LoginCancel => "LOGIN_E_CANCEL",
            Self::LoginTokenExpired => "LOGIN_E_TOKENEXPIRED",
            Self::LoginOldVersion => "LOGIN_E_OLDVERSION",
            Self::LoginTokenWrong => "LOGIN_E_TOKENWRONG",
            Self::LoginTokenKicked => "LOGIN_E_TOKEN_KICKED",
            Self::LoginAlreadyLogin => "LOGIN_E_ALREADY_LOGIN",
            Self::JoinChannelOther => "JOINCHANNEL_E_OTHER",
            Self::JoinChannelForbidden => "JOINCHANNEL_E_FORBIDDEN",
            Self::SendMessageOther => "SENDMESSAGE_E_OTHER",
            Self::SendMessageTimeout => "SENDMESSAGE_E_TIMEOUT",
            Self::SendMessageRateLimit => "SENDMESSAGE_E_RATELIMIT",
            Self::SendMessagePeerOffline => "SENDMESSAGE_E_PEEROFFLINE",
            Self::QueryUserNumOther => "QUERYUSERNUM_E_OTHER",
            Self::QueryUserNumTimeout => "QUERYUSERNUM_E_TIMEOUT",
            Self::QueryUserNumByUser => "QUERYUSERNUM_E_BYUSER",
            Self::LeaveChannelOther => "LEAVECHANNEL_E_OTHER",
            Self::LeaveChannelKicked => "LEAVECHANNEL_E_KICKED",
            Self::LeaveChannelByUser => "LEAVECHANNEL_E_BYUSER",
            Self::LeaveChannelLogout => "LEAVECHANNEL_E_LOGOUT",
            Self::LeaveChannelDisconn => "LEAVECHANNEL_E_DISCONN",
            Self::InviteOther => "INVITE_E_OTHER",
            Self::InviteReinvite => "INVITE_E_REINVITE",
            Self::InviteNet => "INVITE_E_NET",
            Self::InvitePeerOffline => "INVITE_E_PEEROFFLINE",
            Self::InviteTimeout => "INVITE_E_TIMEOUT",
            Self::InviteCantRecv => "INVITE_E_CANTRECV",
            Self::General => "GENERAL_E",
            Self::GeneralFailed => "GENERAL_E_FAILED",
            Self::GeneralUnknown => "GENERAL_E_UNKNOWN",
            Self::GeneralNotLogin => "GENERAL_E_NOT_LOGIN",
            Self::GeneralWrongParam => "GENERAL_E_WRONG_PARAM",
            Self::GeneralLargeParam => "GENERAL_E_LARGE_PARAM",
            Self::GeneralRateLimit => "GENERAL_E_RATELIMIT",
            Self::GeneralOverload => "GENERAL_E_OVERLOAD",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl From<ErrorCode> for i32 {
    fn from(code: ErrorCode) -> i32 {
        code.code()
    }
}

/// The outcome of a call: its result, or why it was rejected.
pub type CallResult<T = ()> = Result<T, CallError>;

/// A rejected call: the SPEC error code plus a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: ErrorCode,
    pub message: String,
}

impl CallError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `GENERAL_E_WRONG_PARAM` (1004): an empty or malformed parameter.
    pub fn wrong_param(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::GeneralWrongParam, message)
    }

    /// `GENERAL_E_LARGE_PARAM` (1005): a parameter over its limit.
    pub fn large_param(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::GeneralLargeParam, message)
    }

    /// `GENERAL_E_FAILED` (1001): the request was well formed but could not be carried out.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::GeneralFailed, message)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_sorted_and_round_trip() {
        for pair in ErrorCode::ALL.windows(2) {
            assert!(pair[0].code() < pair[1].code(), "{:?}", pair);
        }
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::from_code(99), None);
    }

    #[test]
    fn spec_numbers() {
        assert_eq!(ErrorCode::LogoutKicked.code(), 103);
        assert_eq!(ErrorCode::LoginTokenWrong.code(), 206);
        assert_eq!(ErrorCode::LoginTokenExpired.code(), 204);
        assert_eq!(ErrorCode::GeneralWrongParam.code(), 1004);
        assert_eq!(ErrorCode::GeneralLargeParam.code(), 1005);
        assert_eq!(ErrorCode::InviteTimeout.code(), 704);
        assert_eq!(ErrorCode::GeneralOverload.name(), "GENERAL_E_OVERLOAD");
    }
}
