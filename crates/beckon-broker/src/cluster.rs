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
    Resubscribed,
}

/// Presence questions the broker waits for at once, at most: beyond it a `queryUserStatus`
/// is refused, so clients asking faster than the cluster answers cannot grow the table.
pub const MAX_PENDING_QUERIES: usize = 4_096;

/// What the caller hears when a request needs something this node cannot do cluster-wide.
pub(crate) fn not_cluster_wide(what: &str) -> beckon_proto::CallError {
    beckon_proto::CallError::failed(format!(
        "{what} is not available in cluster mode yet: this server runs as one node of a \
         cluster and would answer from its own node only"
    ))
}
