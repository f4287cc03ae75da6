//! The broker's side of cluster mode: claims and releases of accounts, kicks from other nodes,
//! presence questions only the cluster can answer, and the requests that are refused because
//! they are not cluster-wide yet. Channels are `cluster_channels`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use beckon_proto::pb::request::Op;
use beckon_proto::{CallError, CallResult};

use super::storage::{Answered, Via};
use super::{Broker, Caller, EndReason};
use crate::SessionId;
use crate::admin::{AdminError, AdminResponse, RequestKind, Sent};
use crate::cluster::{
    ClusterIn, ClusterOut, MAX_PENDING_QUERIES, MAX_PENDING_QUERIES_PER_SESSION, MAX_WAITING_SENDS,
    MAX_WAITING_SENDS_PER_SESSION, not_cluster_wide,
};
use crate::config::AppConfig;
use crate::invoke::Function;
use crate::store::{Store, StoredMessage};

/// What the broker waits for from its cluster driver.
#[derive(Debug, Default)]
pub(super) struct ClusterState {
    pub(super) outputs: VecDeque<ClusterOut>,
    next_query: u64,
    queries: HashMap<u64, Pending>,
    /// The question under way for each (app, account) that messages wait on: later messages
    /// to that account wait behind it, in order, rather than asking again.
    locating: HashMap<(String, String), u64>,
    /// Per session: the questions it asked (`MAX_PENDING_QUERIES_PER_SESSION`) and its
    /// messages waiting for answers (`MAX_WAITING_SENDS_PER_SESSION`).
    per_session: HashMap<SessionId, (usize, usize)>,
    /// Messages waiting for a question's answer, over the node (`MAX_WAITING_SENDS`).
    waiting_sends: usize,
    /// The last id given to an admin answer that waits for the cluster.
    next_admin: u64,
    /// Admin answers that waited for the cluster, ready for the driver, by id.
    admin_answers: VecDeque<(u64, Result<AdminResponse, AdminError>)>,
}

impl ClusterState {
    /// Whether `sid` may ask one more question (`asks`) and have one more message waiting
    /// (`sends`).
    fn session_has_room(&self, sid: SessionId, asks: bool, sends: bool) -> bool {
        let (q, m) = self.per_session.get(&sid).copied().unwrap_or((0, 0));
        (!asks || q < MAX_PENDING_QUERIES_PER_SESSION)
            && (!sends || m < MAX_WAITING_SENDS_PER_SESSION)
    }

    /// Counts a question (`asks`) and a waiting message (`sends`) of `sid`; `add` false takes
    /// them off again.
    fn count(&mut self, sid: SessionId, asks: bool, sends: bool, add: bool) {
        let entry = self.per_session.entry(sid).or_insert((0, 0));
        let (dq, dm) = (usize::from(asks), usize::from(sends));
        if add {
            *entry = (entry.0 + dq, entry.1 + dm);
        } else {
            *entry = (entry.0.saturating_sub(dq), entry.1.saturating_sub(dm));
        }
        if *entry == (0, 0) {
            self.per_session.remove(&sid);
        }
    }
}

/// The session id of an admin's requests: no session has it (they are numbered from 1).
pub(super) const ADMIN_SID: SessionId = SessionId(0);

/// A request whose answer waits for the cluster.
#[derive(Debug)]
enum Pending {
    /// `queryUserStatus`: the answer is the reply.
    Status {
        sid: SessionId,
        request: u64,
        via: Via,
        tally: Option<(Arc<AppConfig>, RequestKind)>,
    },
    /// `messageInstantSend`s to an account without a session here, in the order they came:
    /// sent once the cluster says where it is.
    Send {
        app: String,
        recipient: String,
        /// The session whose message asked the question.
        asker: SessionId,
        sends: VecDeque<(Caller, StoredMessage)>,
    },
}

impl<S: Store> Broker<S> {
    /// The next thing a cluster node's driver must do (see [`ClusterOut`]); drain it after
    /// every input, beside [`poll_output`](Self::poll_output). Always `None` unless
    /// [`BrokerConfig::cluster`](crate::BrokerConfig::cluster) is set.
    #[must_use]
    pub fn poll_cluster(&mut self) -> Option<ClusterOut> {
        self.cluster.outputs.pop_front()
    }

    /// The next admin answer that waited for the cluster: the `id` its request was answered
    /// [`AdminResponse::Waiting`] with, and the answer. Drain it after every input, beside
    /// [`poll_cluster`](Self::poll_cluster). Always `None` unless
    /// [`BrokerConfig::cluster`](crate::BrokerConfig::cluster) is set.
    #[must_use]
    pub fn poll_admin(&mut self) -> Option<(u64, Result<AdminResponse, AdminError>)> {
        self.cluster.admin_answers.pop_front()
    }

    /// An id for an admin answer that will wait for the cluster.
    pub(super) fn next_admin_id(&mut self) -> u64 {
        self.cluster.next_admin += 1;
        self.cluster.next_admin
    }

    /// Presence questions waiting for the cluster's answer.
    pub fn cluster_queries(&self) -> usize {
        self.cluster.queries.len()
    }

    /// What the cluster tells this node (see [`ClusterIn`]).
    pub fn handle_cluster(&mut self, input: ClusterIn, now: std::time::Instant) {
        self.now = now;
        match input {
            ClusterIn::Kick {
                app,
                account,
                session,
                code,
                message,
            } => {
                let sid = SessionId(session);
                if self.session_of(&app, &account) != Some(sid) {
                    return; // Ended already, or a newer session of this node holds it.
                }
                self.stats.kicks += 1;
                if let Some(conn) = self.sessions.get(&sid).and_then(|s| s.conn) {
                    self.kick(conn, code, &message);
                }
                self.end_session(sid, EndReason::Kicked);
            }
            ClusterIn::Status { query, online } => {
                let online = online.map_err(|why| {
                    CallError::failed(format!("the cluster could not say who is online: {why}"))
                });
                match self.cluster.queries.remove(&query) {
                    None => {}
                    Some(Pending::Status {
                        sid,
                        request,
                        via,
                        tally,
                    }) => {
                        self.cluster.count(sid, true, false, false);
                        let result = online.map(Answered::Status);
                        if let Some((app, kind)) = tally {
                            let code = result.as_ref().map_or_else(|e| e.code.code(), |_| 0);
                            self.tally_request(&app.app_id, kind, code);
                        }
                        self.finish_request(sid, request, via, result);
                    }
                    Some(Pending::Send {
                        app,
                        recipient,
                        asker,
                        sends,
                    }) => {
                        self.cluster.locating.remove(&(app, recipient.clone()));
                        self.cluster.waiting_sends -= sends.len();
                        self.cluster.count(asker, true, false, false);
                        for (me, message) in sends {
                            self.cluster.count(me.sid, false, true, false);
                            self.send_after_status(&me, recipient.clone(), message, online.clone());
                        }
                    }
                }
            }
            ClusterIn::ChannelDone { .. }
            | ClusterIn::ChannelJoined { .. }
            | ClusterIn::ChannelEvent { .. } => self.handle_cluster_channel(input),
            ClusterIn::Stored { app, account } => {
                if let Some(sid) = self.session_of(&app, &account) {
                    self.rescan(sid);
                }
            }
            ClusterIn::Resubscribed => {
                let sids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for sid in sids {
                    self.rescan(sid);
                }
                self.cluster_channels_resubscribed();
            }
            ClusterIn::CallSignal {
                app,
                account,
                session,
                signal,
            } => self.call_signal_in(&app, &account, SessionId(session), signal),
            ClusterIn::CallSent { query, delivered } => self.call_signal_sent(query, delivered),
        }
        self.shrink_tables();
    }

    /// Queues an output for the driver.
    pub(super) fn cluster_out(&mut self, out: ClusterOut) {
        self.cluster.outputs.push_back(out);
    }

    /// The session reads its account's whole queue again. A read of it that failed earlier
    /// (Redis unreachable for a moment) is tried again too: on a single node the rest waits
    /// for the account's next session, but in a cluster the messages other nodes store for a
    /// session only ever reach it by such reads, and a rescan hands over each message once.
    fn rescan(&mut self, sid: SessionId) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.inbox.rescan_pending = true;
            s.inbox.failed = false;
            self.top_up(sid);
        }
    }

    /// A session of the account opened here: the cluster hears of it.
    pub(super) fn cluster_claim(&mut self, app: &str, account: &str, sid: SessionId) {
        if self.config.cluster {
            self.cluster.outputs.push_back(ClusterOut::Claim {
                app: app.to_owned(),
                account: account.to_owned(),
                session: sid.0,
            });
        }
    }

    /// Messages for the account were stored by this node while it had no session here.
    pub(super) fn cluster_stored(&mut self, app: String, account: String) {
        if self.config.cluster {
            self.cluster
                .outputs
                .push_back(ClusterOut::Stored { app, account });
        }
    }

    /// The account's session here ended.
    pub(super) fn cluster_release(&mut self, app: &str, account: &str, sid: SessionId) {
        if self.config.cluster {
            self.cluster.outputs.push_back(ClusterOut::Release {
                app: app.to_owned(),
                account: account.to_owned(),
                session: sid.0,
            });
        }
    }

    /// `queryUserStatus` of an account without a session on this node, in cluster mode: the
    /// cluster answers. `Ok(false)`: not in cluster mode, the broker answers now.
    pub(super) fn cluster_status(
        &mut self,
        me: &Caller,
        account: &str,
        via: Via,
    ) -> CallResult<bool> {
        if !self.config.cluster || self.is_online(&me.app.app_id, account) {
            return Ok(false);
        }
        if self.cluster.queries.len() >= MAX_PENDING_QUERIES {
            return Err(CallError::failed(
                "too many presence queries are waiting for the cluster; try again later",
            ));
        }
        if !self.cluster.session_has_room(me.sid, true, false) {
            return Err(CallError::failed(
                "this session has too many presence queries waiting for the cluster; try \
                 again later",
            ));
        }
        self.cluster.count(me.sid, true, false, true);
        let pending = Pending::Status {
            sid: me.sid,
            request: me.request,
            via,
            tally: me.kind.map(|kind| (me.app.clone(), kind)),
        };
        self.ask_status(&me.app.app_id, account, pending);
        Ok(true)
    }

    fn ask_status(&mut self, app: &str, account: &str, pending: Pending) {
        self.cluster.next_query += 1;
        let query = self.cluster.next_query;
        self.cluster.queries.insert(query, pending);
        self.cluster.outputs.push_back(ClusterOut::Status {
            query,
            app: app.to_owned(),
            account: account.to_owned(),
        });
    }

    /// `messageInstantSend` in cluster mode to an account without a session on this node:
    /// the cluster is asked whether it has one elsewhere first (`Ok(true)`: the send waits for
    /// the answer). `Ok(false)`: not in cluster mode, or the recipient is here.
    pub(super) fn cluster_holds_message(
        &mut self,
        me: &Caller,
        recipient: &str,
        message: &StoredMessage,
    ) -> CallResult<bool> {
        if !self.config.cluster {
            return Ok(false);
        }
        let key = (me.app.app_id.clone(), recipient.to_owned());
        let under_way = self.cluster.locating.get(&key).copied();
        if under_way.is_none() && self.is_online(&me.app.app_id, recipient) {
            return Ok(false);
        }
        if self.cluster.waiting_sends >= MAX_WAITING_SENDS
            || (under_way.is_none() && self.cluster.queries.len() >= MAX_PENDING_QUERIES)
        {
            return Err(CallError::failed(
                "too many messages are waiting for the cluster to locate their recipients; \
                 try again later",
            ));
        }
        let asks = under_way.is_none();
        if !self.cluster.session_has_room(me.sid, asks, true) {
            return Err(CallError::failed(
                "this session has too many messages waiting for the cluster to locate their \
                 recipients; try again later",
            ));
        }
        self.cluster.count(me.sid, asks, true, true);
        self.cluster.waiting_sends += 1;
        let send = (me.clone(), message.clone());
        // A message to an account whose location is being asked waits behind the messages
        // already waiting for it, even if the account has logged in here meanwhile: messages
        // from one sender keep their order.
        if let Some(Pending::Send { sends, .. }) =
            under_way.and_then(|query| self.cluster.queries.get_mut(&query))
        {
            sends.push_back(send);
            return Ok(true);
        }
        let pending = Pending::Send {
            app: me.app.app_id.clone(),
            recipient: recipient.to_owned(),
            asker: me.sid,
            sends: VecDeque::from([send]),
        };
        self.ask_status(&me.app.app_id, recipient, pending);
        let query = self.cluster.next_query;
        self.cluster.locating.insert(key, query);
        Ok(true)
    }

    /// The cluster said where a message's recipient is: stored for it, and when it is online
    /// on another node, that node is told to read the account's queue once it is stored.
    fn send_after_status(
        &mut self,
        me: &Caller,
        recipient: String,
        message: StoredMessage,
        online: CallResult<bool>,
    ) {
        let local = self.is_online(&me.app.app_id, &recipient);
        let reached = local || matches!(online, Ok(true));
        let before = self.next_position();
        let outcome = match online {
            Ok(online) => self.accept_message(me, recipient, message, online && !local),
            Err(e) => Err(e),
        };
        if me.sid == ADMIN_SID {
            // An admin's message: its answer, which waited for this, goes to the driver.
            let answer = match outcome {
                Ok(()) => {
                    self.stats.admin_messages += 1;
                    Ok(AdminResponse::Sent(Sent {
                        server_msg_id: self.p2p_message_id(before),
                        online: reached,
                        recipients: usize::from(reached),
                    }))
                }
                Err(e) => Err(AdminError::from(e)),
            };
            self.cluster.admin_answers.push_back((me.request, answer));
            return;
        }
        if let Err(e) = outcome {
            if let Some(kind) = me.kind {
                self.tally_request(&me.app.app_id, kind, e.code.code());
            }
            self.reply(me.sid, me.request, Err(e));
        }
    }

    /// In cluster mode, the refusal of a request that this node could only serve from its own
    /// view.
    pub(super) fn cluster_refuses(&self, op: &Op) -> Option<CallError> {
        if !self.config.cluster {
            return None;
        }
        match op {
            // User attributes live in the store, which every node of a cluster shares; call
            // signals travel to the node of the other side (`cluster_calls`); channels live in
            // the cluster's channel state (`cluster_channels`).
            Op::Logout(_)
            | Op::QueryUserStatus(_)
            | Op::Invoke(_)
            | Op::SetUserAttr(_)
            | Op::GetUserAttr(_)
            | Op::GetUserAttrAll(_)
            | Op::SendInstantMessage(_)
            | Op::Invite(_)
            | Op::InviteAccept(_)
            | Op::InviteRefuse(_)
            | Op::InviteEnd(_)
            | Op::InviteDtmf(_)
            | Op::ChannelJoin(_)
            | Op::ChannelLeave(_)
            | Op::ChannelSetAttr(_)
            | Op::ChannelDelAttr(_)
            | Op::ChannelClearAttr(_)
            | Op::SendChannelMessage(_)
            | Op::ChannelQueryUserNum(_)
            | Op::ChannelQueryUserIsIn(_) => None,
        }
    }

    /// As [`cluster_refuses`](Self::cluster_refuses), for an `invoke` function.
    pub(super) fn cluster_refuses_function(&self, f: &Function) -> Option<CallError> {
        if !self.config.cluster {
            return None;
        }
        let what = match f {
            Function::UserStatus(_)
            | Function::SetUserAttr(..)
            | Function::UserAttr(..)
            | Function::UserAttrs(_) => return None,
            Function::ChannelNum(_)
            | Function::ChannelIsIn(..)
            | Function::ChannelUsers(..)
            | Function::SetChannelAttr(..)
            | Function::DelChannelAttr(..)
            | Function::ClearChannelAttr(_) => return None,
            Function::RegisterGateway => "telephony gateway registration",
        };
        Some(not_cluster_wide(what))
    }
}
