//! Call signals between cluster nodes: what one node's broker tells the node holding the other
//! side of a call (see `docs/cluster.md`, Calls).
//!
//! Each node keeps the half of a call that belongs to its own session: the caller's node its
//! invitation (with the invitation timeout), the callee's node a copy that the callee answers.
//! Every event one side's node would hand the other side's session travels as a
//! [`CallSignal`] instead ([`ClusterOut::CallSignal`]); the other node applies it to its copy
//! and hands the event to its session ([`ClusterIn::CallSignal`]).
//!
//! [`ClusterOut::CallSignal`]: crate::ClusterOut::CallSignal
//! [`ClusterIn::CallSignal`]: crate::ClusterIn::CallSignal

use beckon_proto::pb::{self, call_event::Kind};

/// DTMF signals one session may have on their way to other nodes at once; beyond it
/// `channelInviteDTMF` is refused with `GENERAL_E_FAILED` (1001).
pub const MAX_PENDING_SIGNALS_PER_SESSION: usize = 64;

/// One call event for a session on another node: the fields of the event it becomes there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallSignal {
    /// The event's kind (`CallEvent.Kind`): 1 received (an invitation), 2 received by peer,
    /// 3 accepted, 4 refused, 5 failed, 6 ended by peer, 7 a message (DTMF).
    pub kind: i32,
    pub channel: String,
    /// The other side of the call, as the recipient names it.
    pub account: String,
    /// Whether the recipient is the call's caller (else its callee).
    pub to_caller: bool,
    pub extra: String,
    /// The failure code of a failed call.
    pub code: i32,
    pub msg_type: String,
    pub msg_data: String,
}

impl CallSignal {
    pub(crate) fn from_event(ev: &pb::CallEvent) -> Self {
        Self {
            kind: ev.kind,
            channel: ev.channel.clone(),
            account: ev.account.clone(),
            to_caller: ev.caller,
            extra: ev.extra.clone(),
            code: ev.code,
            msg_type: ev.msg_type.clone(),
            msg_data: ev.msg_data.clone(),
        }
    }

    pub(crate) fn event(&self) -> pb::CallEvent {
        pb::CallEvent {
            kind: self.kind,
            channel: self.channel.clone(),
            account: self.account.clone(),
            extra: self.extra.clone(),
            code: self.code,
            msg_type: self.msg_type.clone(),
            msg_data: self.msg_data.clone(),
            caller: self.to_caller,
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        Kind::try_from(self.kind).unwrap_or(Kind::Unspecified)
    }
}
