//! What operators ask the broker: typed admin requests and their answers, and the counters a
//! metrics exporter publishes.
//!
//! The broker is single-writer, so an admin request is an input like a frame: the driver hands
//! [`AdminCall`] to [`Broker::admin`](crate::Broker::admin) on the task that owns the broker
//! and gets the answer back at once; outputs it caused (a kick frame, a delivered message) are
//! drained as after any input. In cluster mode an answer may wait for the cluster (a message to
//! an account on no session here): [`AdminResponse::Waiting`] names it, and
//! [`Broker::poll_admin`](crate::Broker::poll_admin) hands it over once it is known. The caller proves itself with a SignalingToken carrying the
//! `server` privilege for the app it names (SPEC §10), checked by the broker against the app's
//! current certificate, so a certificate rotated by a reload takes effect for admins too.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use beckon_proto::ErrorCode;

use crate::BrokerStats;

/// The most items one page of a listing holds.
pub const MAX_PAGE: usize = 1000;
/// Items per page when the request does not say.
pub const DEFAULT_PAGE: usize = 100;

/// The metrics label of apps served by the development template: any App ID is accepted
/// there, so App IDs must not become label values (an attacker could make unbounded series).
pub const DEVELOPMENT_APP_LABEL: &str = "_development";
/// The metrics label of logins that named no app the server serves.
pub const UNKNOWN_APP_LABEL: &str = "_unknown";

/// One admin request: the app it is about, the bearer token, and what is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCall {
    pub app_id: String,
    pub token: String,
    pub request: AdminRequest,
}

/// Where a listing starts and how much of it to return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Return names after this one (the previous page's `next`); `None` starts at the first.
    pub after: Option<String>,
    /// At most this many, 1..=[`MAX_PAGE`].
    pub limit: usize,
}

/// One page of a listing, in name order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` when this page is the last.
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    /// Only the token check: which account the token speaks for (a reload's authorization).
    Authorize,
    /// Online accounts (connected or in grace), by name.
    Accounts(PageRequest),
    /// One account: its session (if online), channels and attributes.
    Account { account: String },
    /// Ends the account's session: the client hears `LOGOUT_E_KICKED`.
    Kick { account: String },
    /// Channels (with members, or empty and waiting out their TTL), by name.
    Channels(PageRequest),
    /// One channel's members (join order) and attributes.
    Channel { channel: String },
    /// A p2p message from the token's account, online or stored offline like any other.
    SendMessage { to: String, text: String },
    /// A channel message from the token's account, as `messageChannelSendForce`: no
    /// membership needed.
    SendChannelMessage { channel: String, text: String },
    /// A token for `account` of the app, signed with its certificate.
    MintToken {
        account: String,
        expire_in: u64,
        server: bool,
    },
}

/// The answer to an [`AdminRequest`] of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminResponse {
    Authorized {
        account: String,
    },
    Accounts(Page<String>),
    Account(AccountInfo),
    Kicked,
    Channels(Page<ChannelSummary>),
    Channel(ChannelInfo),
    Sent(Sent),
    Token {
        token: String,
        expires_at: u64,
    },
    /// The answer waits for the cluster (cluster mode only): it comes later from
    /// [`Broker::poll_admin`](crate::Broker::poll_admin) with this `id`.
    Waiting {
        id: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub account: String,
    pub uid: u32,
    pub online: bool,
    /// Online with a connection; `false` while the session waits in grace.
    pub connected: bool,
    pub session_id: Option<u64>,
    pub privileged: bool,
    pub channels: Vec<String>,
    /// Events the session holds that the client has not acknowledged.
    pub unacked_events: usize,
    /// The account's user attributes, by name (kept while offline too).
    pub attributes: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSummary {
    pub channel: String,
    pub members: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub channel: String,
    /// Members in join order.
    pub members: Vec<String>,
    /// Attributes, with the read-only `_member_num` and `_total_member_num`.
    pub attributes: BTreeMap<String, String>,
}

/// What became of a message an admin sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub server_msg_id: u64,
    /// A p2p message: whether it went to a session (`true`) or to the offline store.
    pub online: bool,
    /// A channel message: the members it went to.
    pub recipients: usize,
}

/// The class of an admin failure, which an HTTP front maps to a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminErrorKind {
    /// No token, or one that is not valid for the app (401).
    Unauthorized,
    /// A valid token without the server privilege (403).
    Forbidden,
    /// The app, account or channel is not there (404).
    NotFound,
    /// A parameter is malformed or too large (400).
    BadRequest,
    /// Refused by a rate (429).
    RateLimited,
    /// Valid, but it cannot be done (409), e.g. minting in development mode.
    Conflict,
    /// The store failed (500).
    Failed,
}

/// Why an admin request failed: a class, the SPEC §3 code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    pub kind: AdminErrorKind,
    pub code: ErrorCode,
    pub message: String,
}

impl AdminError {
    pub fn new(kind: AdminErrorKind, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }
}

impl From<beckon_proto::CallError> for AdminError {
    fn from(e: beckon_proto::CallError) -> Self {
        let kind = match e.code {
            ErrorCode::GeneralWrongParam | ErrorCode::GeneralLargeParam => {
                AdminErrorKind::BadRequest
            }
            ErrorCode::SendMessageRateLimit | ErrorCode::GeneralRateLimit => {
                AdminErrorKind::RateLimited
            }
            ErrorCode::GeneralFailed => AdminErrorKind::Failed,
            _ => AdminErrorKind::Conflict,
        };
        Self::new(kind, e.code, e.message)
    }
}

/// What a reload changed (see [`Broker::reconfigure`](crate::Broker::reconfigure)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Apps with state in the broker that the new configuration no longer serves.
    pub apps_removed: Vec<String>,
    /// Sessions of those apps, logged out with `LOGOUT_E_KICKED`.
    pub sessions_ended: usize,
    /// Apps whose configuration (certificate, limits) was replaced.
    pub apps_updated: usize,
}

/// The kinds of request a client sends, as metrics labels: a fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    Unknown,
    Logout,
    SendInstantMessage,
    SetUserAttr,
    GetUserAttr,
    GetUserAttrAll,
    QueryUserStatus,
    ChannelJoin,
    ChannelLeave,
    ChannelSetAttr,
    ChannelDelAttr,
    ChannelClearAttr,
    ChannelQueryUserNum,
    ChannelQueryUserIsIn,
    SendChannelMessage,
    Invite,
    InviteAccept,
    InviteRefuse,
    InviteEnd,
    InviteDtmf,
    Invoke,
}

impl RequestKind {
    pub fn of(op: Option<&beckon_proto::pb::request::Op>) -> Self {
        use beckon_proto::pb::request::Op;
        match op {
            None => Self::Unknown,
            Some(Op::Logout(_)) => Self::Logout,
            Some(Op::SendInstantMessage(_)) => Self::SendInstantMessage,
            Some(Op::SetUserAttr(_)) => Self::SetUserAttr,
            Some(Op::GetUserAttr(_)) => Self::GetUserAttr,
            Some(Op::GetUserAttrAll(_)) => Self::GetUserAttrAll,
            Some(Op::QueryUserStatus(_)) => Self::QueryUserStatus,
            Some(Op::ChannelJoin(_)) => Self::ChannelJoin,
            Some(Op::ChannelLeave(_)) => Self::ChannelLeave,
            Some(Op::ChannelSetAttr(_)) => Self::ChannelSetAttr,
            Some(Op::ChannelDelAttr(_)) => Self::ChannelDelAttr,
            Some(Op::ChannelClearAttr(_)) => Self::ChannelClearAttr,
            Some(Op::ChannelQueryUserNum(_)) => Self::ChannelQueryUserNum,
            Some(Op::ChannelQueryUserIsIn(_)) => Self::ChannelQueryUserIsIn,
            Some(Op::SendChannelMessage(_)) => Self::SendChannelMessage,
            Some(Op::Invite(_)) => Self::Invite,
            Some(Op::InviteAccept(_)) => Self::InviteAccept,
            Some(Op::InviteRefuse(_)) => Self::InviteRefuse,
            Some(Op::InviteEnd(_)) => Self::InviteEnd,
            Some(Op::InviteDtmf(_)) => Self::InviteDtmf,
            Some(Op::Invoke(_)) => Self::Invoke,
        }
    }

    /// The label value: the request's name in the seeds' API style.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Logout => "logout",
            Self::SendInstantMessage => "messageInstantSend",
            Self::SetUserAttr => "setAttr",
            Self::GetUserAttr => "getUserAttr",
            Self::GetUserAttrAll => "getUserAttrAll",
            Self::QueryUserStatus => "queryUserStatus",
            Self::ChannelJoin => "channelJoin",
            Self::ChannelLeave => "channelLeave",
            Self::ChannelSetAttr => "channelSetAttr",
            Self::ChannelDelAttr => "channelDelAttr",
            Self::ChannelClearAttr => "channelClearAttr",
            Self::ChannelQueryUserNum => "channelQueryUserNum",
            Self::ChannelQueryUserIsIn => "channelQueryUserIsIn",
            Self::SendChannelMessage => "messageChannelSend",
            Self::Invite => "channelInviteUser",
            Self::InviteAccept => "channelInviteAccept",
            Self::InviteRefuse => "channelInviteRefuse",
            Self::InviteEnd => "channelInviteEnd",
            Self::InviteDtmf => "channelInviteDTMF",
            Self::Invoke => "invoke",
        }
    }
}

/// Counters of one app label: logins and requests by result code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppTally {
    pub logins: FxHashMap<i32, u64>,
    pub requests: FxHashMap<(RequestKind, i32), u64>,
}

/// Counters by app label, kept by the broker for a metrics exporter.
///
/// Labels are bounded: an app the configuration names is its own label; every app the
/// development template serves shares [`DEVELOPMENT_APP_LABEL`]; logins naming no served app
/// share [`UNKNOWN_APP_LABEL`]. Request kinds and codes are fixed sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tallies {
    pub apps: FxHashMap<Arc<str>, AppTally>,
}

impl Tallies {
    pub(crate) fn app(&mut self, label: &str) -> &mut AppTally {
        if !self.apps.contains_key(label) {
            self.apps.insert(Arc::from(label), AppTally::default());
        }
        self.apps.get_mut(label).expect("inserted above")
    }
}

/// Gauges of one app label at the moment of a [`Snapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppGauges {
    /// Sessions online, connected or in grace.
    pub sessions: usize,
    /// Of those, the ones waiting in grace without a connection.
    pub sessions_in_grace: usize,
    /// Channels; on a cluster node, the channels this node has members of (a channel with
    /// members on several nodes counts on each).
    pub channels: usize,
    /// Memberships summed over the app's channels; on a cluster node, this node's members
    /// only (the sum over the nodes is the cluster's).
    pub channel_members: usize,
}

/// Everything a metrics scrape publishes from the broker, taken at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub stats: BrokerStats,
    pub tallies: Tallies,
    pub gauges: BTreeMap<String, AppGauges>,
    pub calls_in_progress: usize,
}
