//! Channels in cluster mode: the membership, member counts and attributes live in the
//! cluster's shared state (Redis, through the driver); this node keeps a replica of each
//! channel it has members of — its local members, the attributes and the member count, kept
//! current by the channel's events — and fans every event out to its local members.
//!
//! Every channel request becomes a [`ClusterOut::Channel`] whose answer the request waits
//! for; a join is answered by [`ClusterIn::ChannelJoined`], which reaches the node in order
//! with the channel's events, so a new member misses none that followed its join. Without
//! cluster mode nothing here runs: single-node channels are `broker/channels.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beckon_proto::pb::{self, reply, request::Op};
use beckon_proto::validate::{self, channel_attr};
use beckon_proto::{CallError, CallResult, ErrorCode, SYSTEM_ACCOUNT};

use super::requests::Reply;
use super::storage::Via;
use super::{Broker, Caller, EndReason, TimerKey};
use crate::SessionId;
use crate::admin::RequestKind;
use crate::channels::{attr_cost, is_special};
use crate::cluster::{
    ChannelAnswer, ChannelEvent, ChannelOp, ClusterIn, ClusterOut, MAX_PENDING_CHANNEL_OPS,
    MAX_PENDING_CHANNEL_OPS_PER_SESSION,
};
use crate::frame::{BodyField, EventBody};
use crate::invoke::{self, Function, Response};
use crate::session::RateWindow;
use crate::shrink::shrink_map;
use crate::store::Store;

/// What a field costs in an encoded event besides its text: a tag and a length, with room.
const FIELD_OVERHEAD: usize = 8;

/// A channel this node has members of, as the cluster's events describe it.
#[derive(Debug, Default)]
struct Replica {
    /// For the auto-update timer.
    id: u64,
    /// Local members: account → session.
    members: HashMap<Arc<str>, SessionId>,
    attrs: BTreeMap<String, String>,
    /// Members on every node, as of the latest event.
    count: usize,
    /// Distinct accounts that ever joined, as of the latest join (an estimate).
    total: usize,
    /// The `_auto_update_num` / `_auto_update_total_num` reports this node sends its own
    /// members: the counts last reported and when the next reports are due.
    reported: (Option<usize>, Option<usize>),
    next_reports: (Option<Instant>, Option<Instant>),
    /// This node's share of the channel's message and attribute-update rates.
    messages: RateWindow,
    attr_writes: RateWindow,
}

impl Replica {
    fn limit(&self, name: &str) -> Option<u32> {
        (self.attrs.get(name))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|l| *l > 0)
            .map(|l| u32::try_from(l).unwrap_or(u32::MAX))
    }

    fn notifies(&self, max: usize) -> bool {
        (self.attrs.get(channel_attr::USER_NOTIFICATION)).is_none_or(|v| v != "0")
            && self.count <= max
    }

    fn every(&self, name: &str) -> Option<Duration> {
        (self.attrs.get(name))
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
    }

    /// (Re)starts the auto-update reports from the attributes; the first report's time.
    fn arm_auto_update(&mut self, now: Instant) -> Option<Instant> {
        self.next_reports = (
            self.every(channel_attr::AUTO_UPDATE_NUM).map(|d| now + d),
            self.every(channel_attr::AUTO_UPDATE_TOTAL_NUM)
                .map(|d| now + d),
        );
        self.next_report()
    }

    fn next_report(&self) -> Option<Instant> {
        [self.next_reports.0, self.next_reports.1]
            .into_iter()
            .flatten()
            .min()
    }

    /// The reports due at `now` (attribute, count; only counts that changed since the last
    /// report) and when the next is due.
    fn auto_update_due(&mut self, now: Instant) -> (Vec<(&'static str, usize)>, Option<Instant>) {
        let mut reports = Vec::new();
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        if due(self.next_reports.0) {
            if self.reported.0.replace(self.count) != Some(self.count) {
                reports.push((channel_attr::MEMBER_NUM, self.count));
            }
            let every = self.every(channel_attr::AUTO_UPDATE_NUM);
            self.next_reports.0 = every.map(|d| now + d);
        }
        if due(self.next_reports.1) {
            if self.reported.1.replace(self.total) != Some(self.total) {
                reports.push((channel_attr::TOTAL_MEMBER_NUM, self.total));
            }
            let every = self.every(channel_attr::AUTO_UPDATE_TOTAL_NUM);
            self.next_reports.1 = every.map(|d| now + d);
        }
        (reports, self.next_report())
    }

    fn sessions_but(&self, account: &str) -> Vec<SessionId> {
        (self.members.iter())
            .filter(|(a, _)| &***a != account)
            .map(|(_, s)| *s)
            .collect()
    }
}

/// Who waits for a channel operation's answer.
#[derive(Debug)]
struct Waiting {
    sid: SessionId,
    request: u64,
    via: Via,
    app: Arc<crate::config::AppConfig>,
    account: Arc<str>,
    kind: Option<RequestKind>,
}

#[derive(Debug)]
enum Pending {
    /// A join, answered by `ClusterIn::ChannelJoined` (or a failure).
    Join { w: Waiting, channel: String },
    /// An explicit leave: the member goes here once the cluster has taken it out.
    Leave { w: Waiting, channel: String },
    /// Anything else: the answer is the reply.
    Plain { w: Waiting },
}

impl Pending {
    fn waiting(&self) -> &Waiting {
        match self {
            Pending::Join { w, .. } | Pending::Leave { w, .. } | Pending::Plain { w } => w,
        }
    }
}

/// What a channel request answers.
enum ChanReply {
    Done,
    Joined(pb::ChannelJoined),
    Answer(ChannelAnswer),
}

/// The broker's cluster channel state.
#[derive(Debug, Default)]
pub(super) struct ClusterChannels {
    next_query: u64,
    pending: HashMap<u64, Pending>,
    per_session: HashMap<SessionId, usize>,
    /// app → channel → replica; keyed by names clients choose (SipHash).
    replicas: HashMap<String, HashMap<String, Replica>>,
    /// Replica id → (app, channel), for the timers.
    ids: HashMap<u64, (String, String)>,
    next_id: u64,
}

impl ClusterChannels {
    fn replica(&self, app: &str, channel: &str) -> Option<&Replica> {
        self.replicas.get(app)?.get(channel)
    }

    fn replica_mut(&mut self, app: &str, channel: &str) -> Option<&mut Replica> {
        self.replicas.get_mut(app)?.get_mut(channel)
    }

    fn is_member(&self, app: &str, channel: &str, account: &str) -> bool {
        self.replica(app, channel)
            .is_some_and(|r| r.members.contains_key(account))
    }

    /// Takes a local member out, if it is that session's membership; the replica goes with
    /// its last local member.
    fn remove_member(&mut self, app: &str, channel: &str, account: &str, sid: SessionId) {
        let Some(channels) = self.replicas.get_mut(app) else {
            return;
        };
        let Some(r) = channels.get_mut(channel) else {
            return;
        };
        if r.members.get(account) != Some(&sid) {
            return; // A newer session of the account is the member.
        }
        r.members.remove(account);
        if r.members.is_empty() {
            self.ids.remove(&r.id);
            shrink_map(&mut self.ids);
            channels.remove(channel);
            shrink_map(channels);
            if channels.is_empty() {
                self.replicas.remove(app);
                shrink_map(&mut self.replicas);
            }
        }
    }

    /// (app, replicas, local members) in every app: this node's share of the channels, for
    /// the metrics' gauges.
    pub(super) fn per_app(&self) -> impl Iterator<Item = (&str, usize, usize)> {
        (self.replicas.iter()).map(|(app, channels)| {
            let members = channels.values().map(|r| r.members.len()).sum();
            (app.as_str(), channels.len(), members)
        })
    }

    fn take(&mut self, query: u64) -> Option<Pending> {
        let p = self.pending.remove(&query)?;
        let sid = p.waiting().sid;
        if let Some(n) = self.per_session.get_mut(&sid) {
            *n -= 1;
            if *n == 0 {
                self.per_session.remove(&sid);
            }
        }
        shrink_map(&mut self.pending);
        shrink_map(&mut self.per_session);
        Some(p)
    }
}

/// The refusal for a session without the server privilege that asks about a special channel.
fn forbidden(name: &str) -> CallError {
    CallError::new(
        ErrorCode::JoinChannelForbidden,
        format!("{name} needs the server privilege"),
    )
}

impl<S: Store> Broker<S> {
    /// Channel operations waiting for the cluster's answer.
    pub fn cluster_channel_ops(&self) -> usize {
        self.cluster_channels.pending.len()
    }

    /// This node's members of `channel` in cluster mode (its replica), sorted.
    pub fn cluster_local_members(&self, app: &str, channel: &str) -> Vec<String> {
        let mut v: Vec<String> = (self.cluster_channels.replica(app, channel))
            .map(|r| r.members.keys().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Channels this node holds a replica of, in cluster mode.
    pub fn cluster_replicas(&self) -> usize {
        self.cluster_channels
            .replicas
            .values()
            .map(HashMap::len)
            .sum()
    }

    // ---- requests ---------------------------------------------------------------------------

    /// A channel request in cluster mode; `Err(op)` when it is not one (or not in cluster
    /// mode). `Ok(None)`: the cluster answers it.
    pub(super) fn cluster_channel_request(
        &mut self,
        me: &Caller,
        op: Op,
    ) -> Result<Option<Reply>, Op> {
        if !self.config.cluster {
            return Err(op);
        }
        let via = Via::Request;
        let outcome = match op {
            Op::ChannelJoin(j) => self.cluster_join(me, &j.channel),
            Op::ChannelLeave(l) => self.cluster_leave(me, &l.channel),
            Op::ChannelSetAttr(a) => self.cluster_set_attr(me, &a.channel, &a.name, &a.value, via),
            Op::ChannelDelAttr(a) => self.cluster_del_attr(me, &a.channel, &a.name, via),
            Op::ChannelClearAttr(a) => self.cluster_clear_attr(me, &a.channel, via),
            Op::SendChannelMessage(m) => self.cluster_send(me, m),
            Op::ChannelQueryUserNum(q) => self.cluster_query(me, &q.channel, ChannelOp::Num, via),
            Op::ChannelQueryUserIsIn(q) => {
                validate::channel_member(&me.app.limits, &q.channel, &q.account).and_then(|()| {
                    let op = ChannelOp::IsIn { account: q.account };
                    self.cluster_query(me, &q.channel, op, via)
                })
            }
            other => return Err(other),
        };
        Ok(outcome.err().map(Err))
    }

    /// A channel function of `invoke` in cluster mode; `Err(f)` when it is not one.
    pub(super) fn cluster_channel_function(
        &mut self,
        me: &Caller,
        f: Function,
    ) -> Result<CallResult<Option<Response>>, Function> {
        if !self.config.cluster {
            return Err(f);
        }
        let via = Via::Invoke;
        let outcome = match f {
            Function::ChannelNum(c) => self.cluster_query(me, &c, ChannelOp::Num, via),
            Function::ChannelIsIn(c, account) => {
                validate::channel_member(&me.app.limits, &c, &account)
                    .and_then(|()| self.cluster_query(me, &c, ChannelOp::IsIn { account }, via))
            }
            Function::ChannelUsers(c, max) => {
                // No more than one answer can carry (an account takes at least 7 bytes).
                let max = max.min(self.config.max_event_bytes / 7);
                let max_bytes = self.config.max_event_bytes;
                self.cluster_query(me, &c, ChannelOp::Users { max, max_bytes }, via)
            }
            Function::SetChannelAttr(c, n, v) => self.cluster_set_attr(me, &c, &n, &v, via),
            Function::DelChannelAttr(c, n) => self.cluster_del_attr(me, &c, &n, via),
            Function::ClearChannelAttr(c) => self.cluster_clear_attr(me, &c, via),
            other => return Err(other),
        };
        Ok(outcome.map(|()| None))
    }

    /// Special channels need the server privilege, as on one node.
    fn cluster_special(me: &Caller, name: &str) -> CallResult {
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        Ok(())
    }

    /// A message of the system account to a special channel (`_agora_user_online`), for its
    /// members on every node: one publish, nobody waits for it.
    pub(super) fn cluster_system_event(&mut self, app: &str, channel: &str, body: String) {
        let position = self.take_position();
        let op = ChannelOp::Send {
            sender: SYSTEM_ACCOUNT.to_owned(),
            msg: body,
            id: self.p2p_message_id(position),
            per_second: None,
        };
        self.cluster_channel_out(None, app, channel, op);
    }

    /// Hands the driver a channel operation whose answer `pending` waits for.
    fn ask_channel(
        &mut self,
        me: &Caller,
        channel: &str,
        op: ChannelOp,
        pending: impl FnOnce(Waiting) -> Pending,
        via: Via,
    ) -> CallResult {
        let st = &mut self.cluster_channels;
        if st.pending.len() >= MAX_PENDING_CHANNEL_OPS {
            return Err(CallError::failed(
                "too many channel operations are waiting for the cluster; try again later",
            ));
        }
        if st.per_session.get(&me.sid).copied().unwrap_or(0) >= MAX_PENDING_CHANNEL_OPS_PER_SESSION
        {
            return Err(CallError::failed(format!(
                "this session has {MAX_PENDING_CHANNEL_OPS_PER_SESSION} channel operations \
                 waiting for the cluster already; wait for their answers"
            )));
        }
        *st.per_session.entry(me.sid).or_default() += 1;
        st.next_query += 1;
        let query = st.next_query;
        let w = Waiting {
            sid: me.sid,
            request: me.request,
            via,
            app: me.app.clone(),
            account: me.account.clone(),
            kind: me.kind,
        };
        st.pending.insert(query, pending(w));
        self.cluster_channel_out(Some(query), &me.app.app_id, channel, op);
        Ok(())
    }

    fn cluster_channel_out(&mut self, query: Option<u64>, app: &str, channel: &str, op: ChannelOp) {
        self.cluster_out(ClusterOut::Channel {
            query,
            app: app.to_owned(),
            channel: channel.to_owned(),
            op,
        });
    }

    fn cluster_join(&mut self, me: &Caller, name: &str) -> CallResult {
        me.app.limits.channel("channelID", name)?;
        Self::cluster_special(me, name)?;
        let op = ChannelOp::Join {
            account: me.account.to_string(),
            session: me.sid.0,
        };
        let channel = name.to_owned();
        self.ask_channel(me, name, op, |w| Pending::Join { w, channel }, Via::Request)
    }

    fn cluster_leave(&mut self, me: &Caller, name: &str) -> CallResult {
        me.app.limits.channel("channelID", name)?;
        Self::cluster_special(me, name)?;
        if !(self.cluster_channels).is_member(&me.app.app_id, name, &me.account) {
            return Err(CallError::new(
                ErrorCode::LeaveChannelOther,
                format!("not a member of {name}"),
            ));
        }
        let op = self.leave_op(&me.app, &me.account, me.sid);
        let channel = name.to_owned();
        self.ask_channel(
            me,
            name,
            op,
            |w| Pending::Leave { w, channel },
            Via::Request,
        )
    }

    fn leave_op(&self, app: &crate::config::AppConfig, account: &str, sid: SessionId) -> ChannelOp {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        ChannelOp::Leave {
            account: account.to_owned(),
            session: sid.0,
            ttl_ms: ms(app.default_channel_ttl),
            max_ttl_ms: ms(app.max_channel_ttl),
        }
    }

    fn cluster_query(&mut self, me: &Caller, name: &str, op: ChannelOp, via: Via) -> CallResult {
        me.app.limits.channel("channelID", name)?;
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        Self::cluster_special(me, name)?;
        self.ask_channel(me, name, op, |w| Pending::Plain { w }, via)
    }

    /// Members (of this node: the caller's session is here) or sessions with the server
    /// privilege may change a channel's attributes; this node's share of `_setattr_limit`.
    fn may_write_cluster_attrs(&mut self, me: &Caller, name: &str) -> CallResult {
        Self::cluster_special(me, name)?;
        let member = (self.cluster_channels).is_member(&me.app.app_id, name, &me.account);
        if !me.privileged && !member {
            return Err(CallError::failed(format!(
                "only members of {name} may change its attributes"
            )));
        }
        let now = self.now;
        if let Some(r) = self.cluster_channels.replica_mut(&me.app.app_id, name)
            && let Some(limit) = r.limit(channel_attr::SETATTR_LIMIT)
            && !r.attr_writes.allow(now, limit)
        {
            return Err(CallError::failed(format!(
                "{name} allows {limit} attribute updates per second"
            )));
        }
        Ok(())
    }

    fn cluster_set_attr(
        &mut self,
        me: &Caller,
        channel: &str,
        name: &str,
        value: &str,
        via: Via,
    ) -> CallResult {
        validate::channel_attr_write(&me.app.limits, channel, name, value)?;
        if value.is_empty() {
            return self.cluster_del_attr(me, channel, name, via);
        }
        self.may_write_cluster_attrs(me, channel)?;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let op = ChannelOp::SetAttr {
            name: name.to_owned(),
            value: value.to_owned(),
            max_attrs: me.app.max_channel_attrs,
            max_bytes: me.app.max_channel_attr_bytes,
            ttl_ms: ms(me.app.default_channel_ttl),
            max_ttl_ms: ms(me.app.max_channel_ttl),
        };
        self.ask_channel(me, channel, op, |w| Pending::Plain { w }, via)
    }

    fn cluster_del_attr(&mut self, me: &Caller, channel: &str, name: &str, via: Via) -> CallResult {
        validate::channel_attr_delete(&me.app.limits, channel, name)?;
        self.may_write_cluster_attrs(me, channel)?;
        let op = ChannelOp::DelAttr {
            name: name.to_owned(),
        };
        self.ask_channel(me, channel, op, |w| Pending::Plain { w }, via)
    }

    fn cluster_clear_attr(&mut self, me: &Caller, channel: &str, via: Via) -> CallResult {
        me.app.limits.channel("channelID", channel)?;
        self.may_write_cluster_attrs(me, channel)?;
        self.ask_channel(
            me,
            channel,
            ChannelOp::ClearAttr,
            |w| Pending::Plain { w },
            via,
        )
    }

    /// `messageChannelSend(Force)`: one operation for the whole channel; every node with
    /// members hands it to them. Answered once the cluster has taken it.
    fn cluster_send(&mut self, me: &Caller, m: pb::SendChannelMessage) -> CallResult {
        let app = me.app.clone();
        let is_member = (self.cluster_channels).is_member(&app.app_id, &m.channel, &me.account);
        self.may_send_channel_message(me, &m, is_member)?;
        let now = self.now;
        if let Some(r) = self.cluster_channels.replica_mut(&app.app_id, &m.channel) {
            let limit =
                (r.limit(channel_attr::SENDMSG_LIMIT)).unwrap_or(app.channel_messages_per_channel);
            if !r.messages.allow(now, limit) {
                return Err(CallError::new(
                    ErrorCode::SendMessageRateLimit,
                    format!("{} allows {limit} messages per second", m.channel),
                ));
            }
        }
        // Unique across the cluster: a position of this node's block, which no node shares
        // (the run's counter alone repeats on every node, and clients drop repeated ids).
        let position = self.take_position();
        let op = ChannelOp::Send {
            sender: me.account.to_string(),
            msg: m.msg,
            id: self.p2p_message_id(position),
            per_second: Some(app.channel_messages_per_channel),
        };
        self.ask_channel(me, &m.channel, op, |w| Pending::Plain { w }, Via::Request)
    }

    /// An ending session leaves its channels in the cluster (members there see it leave);
    /// on shutdown too, since the node's members would otherwise stay in the shared state.
    pub(super) fn cluster_leave_all(&mut self, sid: SessionId, _reason: EndReason) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let channels = std::mem::take(&mut s.channels);
        let (app, account) = (s.app.clone(), s.account.clone());
        for ch in channels {
            self.cluster_channels
                .remove_member(&app.app_id, &ch, &account, sid);
            let op = self.leave_op(&app, &account, sid);
            self.cluster_channel_out(None, &app.app_id, &ch, op);
        }
    }

    // ---- answers and events -----------------------------------------------------------------

    /// What the cluster says about channels.
    pub(super) fn handle_cluster_channel(&mut self, input: ClusterIn) {
        match input {
            ClusterIn::ChannelDone { query, result } => self.channel_done(query, result),
            ClusterIn::ChannelJoined {
                query,
                app,
                channel,
                account,
                session,
                count,
                total,
                members,
                attrs,
            } => self.channel_joined(
                query,
                &app,
                &channel,
                &account,
                SessionId(session),
                count,
                total,
                members,
                attrs,
            ),
            ClusterIn::ChannelEvent {
                app,
                channel,
                event,
            } => self.channel_event(&app, &channel, event),
            _ => {}
        }
    }

    /// The node's subscription was interrupted and is back: the answers of waiting joins may
    /// have been lost with it, so they fail, and whatever the cluster wrote for them is taken
    /// out again.
    pub(super) fn cluster_channels_resubscribed(&mut self) {
        let mut joins: Vec<u64> = (self.cluster_channels.pending.iter())
            .filter(|(_, p)| matches!(p, Pending::Join { .. }))
            .map(|(q, _)| *q)
            .collect();
        joins.sort_unstable();
        for query in joins {
            let Some(Pending::Join { w, channel }) = self.cluster_channels.take(query) else {
                continue;
            };
            let member = (self.cluster_channels.replica(&w.app.app_id, &channel))
                .is_some_and(|r| r.members.get(&w.account) == Some(&w.sid));
            if !member {
                let op = self.leave_op(&w.app, &w.account, w.sid);
                self.cluster_channel_out(None, &w.app.app_id, &channel, op);
            }
            let e = CallError::new(
                ErrorCode::GeneralFailed,
                format!(
                    "this node's subscription to the cluster was interrupted while {channel} \
                     was being joined; join again"
                ),
            );
            self.chan_reply(&w, Err(e));
        }
    }

    fn channel_done(&mut self, query: u64, result: Result<ChannelAnswer, (ErrorCode, String)>) {
        let result = result.map_err(|(code, why)| CallError::new(code, why));
        let Some(p) = self.cluster_channels.pending.get(&query) else {
            return;
        };
        if matches!(p, Pending::Join { .. }) && result.is_ok() {
            return; // The member list follows in order with the channel's events.
        }
        let Some(p) = self.cluster_channels.take(query) else {
            return;
        };
        match p {
            Pending::Join { w, .. } | Pending::Plain { w } => {
                let reply = result.map(|a| match a {
                    ChannelAnswer::Done => ChanReply::Done,
                    other => ChanReply::Answer(other),
                });
                self.chan_reply(&w, reply);
            }
            Pending::Leave { w, channel } => {
                if result.is_ok() {
                    self.forget_local_member(&w.app.app_id, &channel, &w.account, w.sid);
                }
                self.chan_reply(&w, result.map(|_| ChanReply::Done));
            }
        }
    }

    fn forget_local_member(&mut self, app: &str, channel: &str, account: &str, sid: SessionId) {
        self.cluster_channels
            .remove_member(app, channel, account, sid);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.retain(|c| &**c != channel);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn channel_joined(
        &mut self,
        query: u64,
        app: &str,
        channel: &str,
        account: &str,
        sid: SessionId,
        count: usize,
        total: usize,
        members: Vec<String>,
        attrs: Vec<(String, String)>,
    ) {
        let waiting = matches!(
            self.cluster_channels.pending.get(&query),
            Some(Pending::Join { w, channel: c })
                if w.sid == sid && c == channel && &*w.app.app_id == app
        );
        let live = (self.sessions.get(&sid)).is_some_and(|s| &*s.account == account);
        if !waiting || !live {
            // Nobody waits for it (the request failed meanwhile, or the session ended): the
            // membership is undone, unless the session is a member here.
            let member = (self.cluster_channels.replica(app, channel))
                .is_some_and(|r| r.members.get(account) == Some(&sid));
            if !member {
                let cfg = match self.cluster_channels.pending.get(&query) {
                    Some(p) => Some(p.waiting().app.clone()),
                    None => self.apps.get(app).map(|a| a.config.clone()),
                };
                let cfg =
                    cfg.unwrap_or_else(|| Arc::new(crate::config::AppConfig::development(app)));
                let op = self.leave_op(&cfg, account, sid);
                self.cluster_channel_out(None, app, channel, op);
            }
            if waiting {
                self.cluster_channels.take(query);
            }
            return;
        }
        let Some(Pending::Join { w, .. }) = self.cluster_channels.take(query) else {
            return;
        };
        // Whether the state handed over fits in what the session may still hold.
        let members_bytes: usize = members.iter().map(|a| a.len() + FIELD_OVERHEAD).sum();
        let attr_bytes: usize = attrs.iter().map(|(k, v)| attr_cost(k, v)).sum();
        let state = members_bytes + attr_bytes + attrs.len() * 4 * FIELD_OVERHEAD + 1024;
        let cfg = &self.config;
        let full = self.sessions.get(&sid).is_some_and(|s| {
            s.events.holds_at_least(
                cfg.max_unacked_events.saturating_sub(attrs.len() + 1),
                cfg.max_unacked_bytes.saturating_sub(state),
            )
        });
        let already = (self.cluster_channels.replica(app, channel))
            .is_some_and(|r| r.members.contains_key(account));
        if full {
            if !already {
                let op = self.leave_op(&w.app, account, sid);
                self.cluster_channel_out(None, app, channel, op);
            }
            let e = CallError::new(
                ErrorCode::JoinChannelOther,
                format!(
                    "{channel} hands over {state} bytes of members and attributes, more than \
                     this session can hold unacknowledged now; join again once the client has \
                     caught up"
                ),
            );
            self.chan_reply(&w, Err(e));
            return;
        }
        // The replica: this node hears the channel's events from now on.
        let st = &mut self.cluster_channels;
        let channels = st.replicas.entry(app.to_owned()).or_default();
        let r = channels.entry(channel.to_owned()).or_insert_with(|| {
            st.next_id += 1;
            st.ids
                .insert(st.next_id, (app.to_owned(), channel.to_owned()));
            Replica {
                id: st.next_id,
                ..Replica::default()
            }
        });
        r.members.insert(Arc::from(account), sid);
        r.attrs = attrs.iter().cloned().collect();
        r.count = count;
        r.total = total;
        let (id, first_report) = (r.id, r.arm_auto_update(self.now));
        if let Some(at) = first_report {
            self.arm(at, TimerKey::ClusterAutoUpdate(id));
        }
        // One channel per session by default: joining leaves the oldest joined channels.
        let mut left = Vec::new();
        if !already && let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.push(Arc::from(channel));
            let max = w.app.max_channels_per_session.max(1);
            let excess = s.channels.len().saturating_sub(max);
            left = s.channels.drain(..excess).map(|c| c.to_string()).collect();
        }
        for old in &left {
            self.cluster_channels.remove_member(app, old, account, sid);
            let op = self.leave_op(&w.app, account, sid);
            self.cluster_channel_out(None, app, old, op);
        }
        // Attributes that do not fit beside the members follow as updates.
        let mut room = self
            .config
            .max_event_bytes
            .saturating_sub(members_bytes + 1024);
        let (mut fit, mut overflow) = (Vec::new(), Vec::new());
        for (name, value) in attrs {
            let cost = attr_cost(&name, &value) + 3 * FIELD_OVERHEAD;
            let attr = pb::Attr { name, value };
            if cost <= room && overflow.is_empty() {
                room -= cost;
                fit.push(attr);
            } else {
                overflow.push(attr);
            }
        }
        let joined = pb::ChannelJoined {
            channel: channel.to_owned(),
            accounts: members,
            attrs: fit,
            left,
        };
        self.chan_reply(&w, Ok(ChanReply::Joined(joined)));
        for attr in overflow {
            let update = pb::ChannelAttrUpdated {
                channel: channel.to_owned(),
                name: attr.name,
                value: attr.value,
                r#type: "update".to_owned(),
            };
            let body = EventBody::new(BodyField::ChannelAttrUpdated, &update);
            self.emit_encoded(sid, &body, None);
        }
    }

    fn channel_event(&mut self, app: &str, channel: &str, event: ChannelEvent) {
        let max_notified = self
            .apps
            .get(app)
            .map_or(usize::MAX, |a| a.config.max_notified_members);
        let Some(r) = self.cluster_channels.replica_mut(app, channel) else {
            return; // No members here (any more).
        };
        match event {
            ChannelEvent::Joined {
                account,
                count,
                total,
                again,
            } => {
                r.count = count;
                r.total = total;
                if again || !r.notifies(max_notified) {
                    return;
                }
                let to = r.sessions_but(&account);
                self.member_event(to, BodyField::ChannelUserJoined, channel, account);
            }
            ChannelEvent::Left { account, count } => {
                r.count = count;
                if !r.notifies(max_notified) {
                    return;
                }
                let to = r.sessions_but(&account);
                self.member_event(to, BodyField::ChannelUserLeft, channel, account);
            }
            ChannelEvent::Message { sender, msg, id } => {
                let to: Vec<SessionId> = r.members.values().copied().collect();
                // Id 0: an event the cluster's scripts published (`_agora_channel_event`);
                // this node numbers it for its members.
                let id = if id == 0 {
                    let position = self.take_position();
                    self.p2p_message_id(position)
                } else {
                    id
                };
                let message = pb::ChannelMessage {
                    channel: channel.to_owned(),
                    sender,
                    msg,
                    server_msg_id: id,
                };
                self.stats.channel_deliveries += to.len() as u64;
                self.emit_all(to, &EventBody::new(BodyField::ChannelMessage, &message));
            }
            ChannelEvent::Attr { name, value, kind } => {
                match kind.as_str() {
                    "update" => {
                        r.attrs.insert(name.clone(), value.clone());
                    }
                    "del" => {
                        r.attrs.remove(&name);
                    }
                    _ => r.attrs.clear(),
                }
                let auto = name == channel_attr::AUTO_UPDATE_NUM
                    || name == channel_attr::AUTO_UPDATE_TOTAL_NUM
                    || kind == "clear";
                let now = self.now;
                let rearm = auto.then(|| (r.id, r.arm_auto_update(now)));
                let to: Vec<SessionId> = r.members.values().copied().collect();
                if let Some((id, Some(at))) = rearm {
                    self.arm(at, TimerKey::ClusterAutoUpdate(id));
                }
                let update = pb::ChannelAttrUpdated {
                    channel: channel.to_owned(),
                    name,
                    value,
                    r#type: kind,
                };
                self.emit_all(to, &EventBody::new(BodyField::ChannelAttrUpdated, &update));
            }
        }
    }

    /// A replica's auto-update reports are due: this node's members get the counts that
    /// changed.
    pub(super) fn cluster_auto_update_due(&mut self, id: u64, now: Instant) {
        let Some((app, channel)) = self.cluster_channels.ids.get(&id).cloned() else {
            return;
        };
        let Some(r) = self.cluster_channels.replica_mut(&app, &channel) else {
            return;
        };
        let (reports, next) = r.auto_update_due(now);
        let to: Vec<SessionId> = r.members.values().copied().collect();
        if let Some(at) = next {
            self.arm(at, TimerKey::ClusterAutoUpdate(id));
        }
        for (name, n) in reports {
            let update = pb::ChannelAttrUpdated {
                channel: channel.clone(),
                name: name.to_owned(),
                value: n.to_string(),
                r#type: "update".to_owned(),
            };
            let body = EventBody::new(BodyField::ChannelAttrUpdated, &update);
            self.emit_all(to.clone(), &body);
        }
    }

    /// Whether a replica's report is due at `at` (for the timer heap's compaction).
    pub(super) fn cluster_reports_at(&self, id: u64, at: Instant) -> bool {
        (self.cluster_channels.ids.get(&id))
            .and_then(|(app, channel)| self.cluster_channels.replica(app, channel))
            .is_some_and(|r| r.next_reports.0 == Some(at) || r.next_reports.1 == Some(at))
    }

    fn member_event(
        &mut self,
        to: Vec<SessionId>,
        field: BodyField,
        channel: &str,
        account: String,
    ) {
        if to.is_empty() {
            return;
        }
        let member = pb::ChannelMember {
            channel: channel.to_owned(),
            account,
        };
        self.emit_all(to, &EventBody::new(field, &member));
    }

    /// Replies to a channel request that waited for the cluster.
    fn chan_reply(&mut self, w: &Waiting, result: CallResult<ChanReply>) {
        use reply::Result as R;
        let reply: Reply = match w.via {
            Via::Request => result.map(|r| match r {
                ChanReply::Done => None,
                ChanReply::Joined(j) => Some(R::ChannelJoined(j)),
                ChanReply::Answer(ChannelAnswer::Num(n)) => {
                    let num = u32::try_from(n).unwrap_or(u32::MAX);
                    Some(R::ChannelUserNum(pb::ChannelUserNum { num }))
                }
                ChanReply::Answer(ChannelAnswer::IsIn(is_in)) => {
                    Some(R::ChannelIsIn(pb::ChannelIsIn { is_in }))
                }
                ChanReply::Answer(_) => None,
            }),
            Via::Invoke => {
                let max = self.config.max_event_bytes;
                let response = result.and_then(|r| match r {
                    ChanReply::Answer(ChannelAnswer::Num(n)) => {
                        Ok(Response::Num(u32::try_from(n).unwrap_or(u32::MAX)))
                    }
                    ChanReply::Answer(ChannelAnswer::IsIn(b)) => Ok(Response::IsIn(b)),
                    ChanReply::Answer(ChannelAnswer::Users { num, list }) => {
                        let bytes: usize = (list.iter())
                            .map(|a| {
                                a.len()
                                    + a.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
                                    + 6
                            })
                            .sum::<usize>()
                            + 64;
                        if bytes > max {
                            return Err(CallError::large_param(format!(
                                "the {} latest members take {bytes} bytes, more than one \
                                 answer carries ({max} bytes); ask for fewer with \"num\"",
                                list.len()
                            )));
                        }
                        Ok(Response::Users { num, list })
                    }
                    _ => Ok(Response::Done),
                });
                Ok(Some(R::InvokeResult(invoke::result(response))))
            }
        };
        if let Some(kind) = w.kind {
            let code = reply.as_ref().map_or_else(|e| e.code.code(), |_| 0);
            self.tally_request(&w.app.app_id, kind, code);
        }
        self.reply(w.sid, w.request, reply);
    }
}
