//! What a broker that is one node of a cluster asks of its driver, and what the driver tells it.
//!
//! The broker stays sans-IO: it never speaks to Redis. With [`BrokerConfig::cluster`] set it
//! hands its driver [`ClusterOut`]s ([`Broker::poll_cluster`]) — an account's session opened
//! or ended here, a presence question only the cluster can answer — and takes [`ClusterIn`]s
//! back ([`Broker::handle_cluster`]) — another node took an account, the answer to a question.
//! The driver keeps the shared state (presence: account → node and session) and carries
//! messages between nodes.
//!
//! [`BrokerConfig::cluster`]: crate::BrokerConfig::cluster
//! [`Broker::poll_cluster`]: crate::Broker::poll_cluster
//! [`Broker::handle_cluster`]: crate::Broker::handle_cluster

use beckon_proto::ErrorCode;

/// What a cluster node's broker asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterOut {
    /// Session `session` of `account` opened on this node: it is now the account's one session
    /// in the cluster. Whichever session held the account before, on another node, must end
    /// there ([`ClusterIn::Kick`] on that node).
    Claim {
        app: String,
        account: String,
        session: u64,
    },
    /// Session `session` of `account` ended on this node: the account is offline, unless a
    /// later claim (from any node) holds it already, which stays.
    Release {
        app: String,
        account: String,
        session: u64,
    },
    /// Whether `account` has a session on any live node: answer with [`ClusterIn::Status`]
    /// and the same `query`.
    Status {
        query: u64,
        app: String,
        account: String,
    },
    /// P2P messages for `account` were stored (in the shared store) by this node, which has
    /// no session of it: the node holding its session, if any, must be told
    /// ([`ClusterIn::Stored`] there). Losing it delays delivery to the account's next
    /// session, and loses nothing.
    Stored { app: String, account: String },
    /// A call event for `account`, which has no session on this node: hand it to the
    /// account's session on its node ([`ClusterIn::CallSignal`] there, naming that session),
    /// then answer [`ClusterIn::CallSent`] with the same `query`, whether it was handed over
    /// or not.
    CallSignal {
        query: u64,
        app: String,
        account: String,
        signal: crate::CallSignal,
    },
    /// A channel operation to carry out on the cluster's shared channel state (see
    /// [`ChannelOp`]); the outcome comes back as [`ClusterIn::ChannelDone`] with `query`,
    /// when there is one.
    Channel {
        query: Option<u64>,
        app: String,
        channel: String,
        op: ChannelOp,
    },
}

/// What a channel operation does in the cluster. Every operation on one channel is carried
/// out in the order the broker hands them over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelOp {
    /// `account` (session `session` here) joins: the node must receive the channel's events
    /// from before the membership is written on, then the membership is written and the
    /// channel's other members hear of it ([`ChannelEvent::Joined`]). Its answer, the member
    /// list and attributes, is [`ClusterIn::ChannelJoined`], which arrives in order with the
    /// channel's events; [`ClusterIn::ChannelDone`] says only whether it failed.
    Join {
        account: String,
        session: u64,
    },
    /// `account` (session `session` here) leaves, if that session is its member: members hear
    /// [`ChannelEvent::Left`]. `ttl_ms`: how long an emptied channel's attributes live
    /// without `_channel_ttl`; `max_ttl_ms`: at most.
    Leave {
        account: String,
        session: u64,
        ttl_ms: u64,
        max_ttl_ms: u64,
    },
    /// A channel message: every node with members hands it to them
    /// ([`ChannelEvent::Message`]). `per_second`: the channel's message rate, unless its
    /// `_sendmsg_limit` says otherwise, counted over the whole cluster (refused with 402
    /// beyond it); `None` for the system account's events, which no rate holds back.
    Send {
        sender: String,
        msg: String,
        id: u64,
        per_second: Option<u32>,
    },
    /// Sets an attribute, within `max_attrs` attributes and `max_bytes` bytes of names and
    /// values (refused with 1001 beyond them, changing nothing).
    SetAttr {
        name: String,
        value: String,
        max_attrs: usize,
        max_bytes: usize,
        ttl_ms: u64,
        max_ttl_ms: u64,
    },
    DelAttr {
        name: String,
    },
    ClearAttr,
    /// Members now ([`ChannelAnswer::Num`]).
    Num,
    /// Whether `account` is a member ([`ChannelAnswer::IsIn`]).
    IsIn {
        account: String,
    },
    /// The member count and the latest `max` members, oldest first ([`ChannelAnswer::Users`]);
    /// refused with 1005 once the list takes more than `max_bytes` (so a large channel costs
    /// no more than one answer can carry).
    Users {
        max: usize,
        max_bytes: usize,
    },
}

/// What a channel operation answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelAnswer {
    Done,
    Num(usize),
    IsIn(bool),
    Users { num: usize, list: Vec<String> },
}

/// Something that happened in a channel with members on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// `account` joined; `count`: members now; `total`: distinct accounts that ever joined
    /// (`_total_member_num`, an estimate); `again`: it was a member already (a new session of
    /// the account), which its fellow members do not hear about.
    Joined {
        account: String,
        count: usize,
        total: usize,
        again: bool,
    },
    Left {
        account: String,
        count: usize,
    },
    Message {
        sender: String,
        msg: String,
        id: u64,
    },
    /// An attribute changed: `kind` is "update", "del" or "clear".
    Attr {
        name: String,
        value: String,
        kind: String,
    },
}

/// What a cluster node's driver tells its broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterIn {
    /// Session `session` of `account` must end: another node claimed the account
    /// (`LOGOUT_E_KICKED`), or the claim of this one could not be made (the driver's code and
    /// reason). Nothing happens when that session has ended already.
    Kick {
        app: String,
        account: String,
        session: u64,
        code: ErrorCode,
        message: String,
    },
    /// The answer to [`ClusterOut::Status`] `query`: whether the account is online, or why
    /// the cluster could not say.
    Status {
        query: u64,
        online: Result<bool, String>,
    },
    /// Another node stored p2p messages for `account`: its session here (if any) reads the
    /// account's queue again and is handed those it does not hold yet.
    Stored { app: String, account: String },
    /// The outcome of [`ClusterOut::Channel`] `query`: its answer, or why it failed (the
    /// request fails with that code and reason).
    ChannelDone {
        query: u64,
        result: Result<ChannelAnswer, (ErrorCode, String)>,
    },
    /// The answer to a [`ChannelOp::Join`]: `account` is a member now, with `count` members
    /// in all, the latest of them `members` (oldest first, the joiner included), and the
    /// channel's attributes. It arrives in order with the channel's events: every event after
    /// it happened after the join.
    ChannelJoined {
        query: u64,
        app: String,
        channel: String,
        account: String,
        session: u64,
        count: usize,
        /// Distinct accounts that ever joined (an estimate).
        total: usize,
        members: Vec<String>,
        attrs: Vec<(String, String)>,
    },
    /// Something happened in a channel this node has members of.
    ChannelEvent {
        app: String,
        channel: String,
        event: ChannelEvent,
    },
    /// A call event from another node for session `session` of `account` here; nothing
    /// happens when that session has ended (but an invitation is refused back to its caller).
    CallSignal {
        app: String,
        account: String,
        session: u64,
        signal: crate::CallSignal,
    },
    /// What became of [`ClusterOut::CallSignal`] `query`: `Ok(true)` handed to the node holding
    /// the account's session, `Ok(false)` the account is on no live node, `Err` why the cluster
    /// could not say. The call fails on this node's side unless it was handed over.
    CallSent {
        query: u64,
        delivered: Result<bool, String>,
    },
    /// This node may have missed notices: its subscription to its topic was down and is back.
    /// Every session here reads its account's queue again, as for [`Stored`](Self::Stored).
    /// Channel events published meanwhile are lost too: joins waiting for their answer fail.
    Resubscribed,
}

/// Channel operations the broker waits for at once, at most: beyond it channel requests are
/// refused, so clients asking faster than the cluster answers cannot grow the table.
pub const MAX_PENDING_CHANNEL_OPS: usize = 4_096;

/// Channel operations one session may have waiting for the cluster at once: beyond it its
/// channel requests are refused, so one client cannot take the whole table.
pub const MAX_PENDING_CHANNEL_OPS_PER_SESSION: usize = 64;

/// Presence questions the broker waits for at once, at most: beyond it a `queryUserStatus`
/// is refused, so clients asking faster than the cluster answers cannot grow the table.
pub const MAX_PENDING_QUERIES: usize = 4_096;

/// Presence questions one session may have asked at once (its `queryUserStatus`, and its
/// messages to accounts whose location nobody is asking yet): beyond it they are refused, so
/// one client cannot take the node's whole [`MAX_PENDING_QUERIES`] from the others.
pub const MAX_PENDING_QUERIES_PER_SESSION: usize = 256;

/// Messages one session may have waiting for the cluster to locate their recipients: beyond it
/// its sends to accounts not on this node are refused, so one client cannot take the node's
/// whole [`MAX_WAITING_SENDS`].
pub const MAX_WAITING_SENDS_PER_SESSION: usize = 4_096;

/// Messages waiting for the cluster to locate their recipients, over the node: messages to one
/// recipient share one question (they wait behind it in order), so this bounds the messages
/// themselves, not the questions.
pub const MAX_WAITING_SENDS: usize = 16_384;

/// What the caller hears when a request needs something this node cannot do cluster-wide.
pub(crate) fn not_cluster_wide(what: &str) -> beckon_proto::CallError {
    beckon_proto::CallError::failed(format!(
        "{what} is not available in cluster mode yet: this server runs as one node of a \
         cluster and would answer from its own node only"
    ))
}
