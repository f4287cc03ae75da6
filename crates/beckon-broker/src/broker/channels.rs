//! Channels (SPEC §7): membership, member events, attributes with their built-ins, channel
//! messages with rate limits, TTL and auto-update timers, and the special channels.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use beckon_proto::pb::{self, reply};
use beckon_proto::{CallError, ErrorCode, SYSTEM_ACCOUNT};
use beckon_token::Privileges;

use super::{Broker, EndReason, TimerKey};
use crate::SessionId;
use crate::config::AppConfig;
use crate::frame::{BodyField, EventBody};
use crate::store::Store;

/// Receives every login and logout of the app.
pub const USER_ONLINE_CHANNEL: &str = "_agora_user_online";
/// Receives every join and leave of every channel of the app.
pub const CHANNEL_EVENT_CHANNEL: &str = "_agora_channel_event";

/// Members reported by `onChannelUserList` and `channel_query_userlist`.
const USER_LIST_LEN: usize = 200;

const ATTR_USER_NOTIFICATION: &str = "_userNotification";
const ATTR_CHANNEL_TTL: &str = "_channel_ttl";
const ATTR_MEMBER_NUM: &str = "_member_num";
const ATTR_AUTO_UPDATE_NUM: &str = "_auto_update_num";
const ATTR_TOTAL_MEMBER_NUM: &str = "_total_member_num";
const ATTR_AUTO_UPDATE_TOTAL_NUM: &str = "_auto_update_total_num";
const ATTR_SENDMSG_LIMIT: &str = "_sendmsg_limit";
const ATTR_SETATTR_LIMIT: &str = "_setattr_limit";

fn is_special(name: &str) -> bool {
    name == USER_ONLINE_CHANNEL || name == CHANNEL_EVENT_CHANNEL
}

/// A count of events in the current one-second window.
#[derive(Debug, Default)]
pub(super) struct RateWindow {
    start: Option<Instant>,
    count: u32,
}

impl RateWindow {
    /// Counts one event if fewer than `limit` happened in the current second.
    pub(super) fn allow(&mut self, now: Instant, limit: u32) -> bool {
        if self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            self.start = Some(now);
            self.count = 0;
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }
}

#[derive(Debug)]
pub(super) struct Channel {
    id: u64,
    special: bool,
    /// Members in join order: order → account.
    members: BTreeMap<u64, Arc<str>>,
    /// account → (join order, session).
    index: HashMap<Arc<str>, (u64, SessionId)>,
    next_order: u64,
    attrs: BTreeMap<String, String>,
    /// Distinct accounts that ever joined (`_total_member_num`).
    ever: HashSet<Arc<str>>,
    ttl_until: Option<Instant>,
    messages: RateWindow,
    attr_writes: RateWindow,
    reported_num: Option<usize>,
    reported_total: Option<usize>,
    next_num_report: Option<Instant>,
    next_total_report: Option<Instant>,
}

impl Channel {
    fn new(id: u64, name: &str) -> Self {
        Self {
            id,
            special: is_special(name),
            members: BTreeMap::new(),
            index: HashMap::new(),
            next_order: 0,
            attrs: BTreeMap::new(),
            ever: HashSet::new(),
            ttl_until: None,
            messages: RateWindow::default(),
            attr_writes: RateWindow::default(),
            reported_num: None,
            reported_total: None,
            next_num_report: None,
            next_total_report: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    fn attr_u64(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(|v| v.parse().ok())
    }

    fn notifies_members(&self, max: usize) -> bool {
        self.attrs
            .get(ATTR_USER_NOTIFICATION)
            .is_none_or(|v| v != "0")
            && self.len() <= max
    }

    /// The latest `n` members, oldest first.
    fn latest(&self, n: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .members
            .values()
            .rev()
            .take(n)
            .map(|a| a.to_string())
            .collect();
        v.reverse();
        v
    }

    fn sessions(&self) -> Vec<SessionId> {
        self.index.values().map(|(_, s)| *s).collect()
    }
}

/// Per-app channel state.
#[derive(Debug, Default)]
pub(super) struct Channels {
    by_name: HashMap<Arc<str>, Channel>,
}

impl Channels {
    pub(super) fn get(&self, name: &str) -> Option<&Channel> {
        self.by_name.get(name)
    }
}

impl<S: Store> Broker<S> {
    fn channel_mut(&mut self, app: &str, name: &str) -> Option<&mut Channel> {
        self.apps.get_mut(app)?.channels.by_name.get_mut(name)
    }

    fn channel(&self, app: &str, name: &str) -> Option<&Channel> {
        self.apps.get(app)?.channels.get(name)
    }

    /// The channel, created empty if it does not exist.
    fn channel_or_create(&mut self, app: &str, name: &str) -> Option<&mut Channel> {
        let id = self.next_channel;
        let state = self.apps.get_mut(app)?;
        if !state.channels.by_name.contains_key(name) {
            self.next_channel += 1;
            let key: Arc<str> = Arc::from(name);
            state
                .channels
                .by_name
                .insert(key.clone(), Channel::new(id, name));
            self.channel_ids.insert(id, (Arc::from(app), key));
        }
        state.channels.by_name.get_mut(name)
    }

    fn is_member(&self, app: &str, channel: &str, account: &str) -> bool {
        self.channel(app, channel)
            .is_some_and(|c| c.index.contains_key(account))
    }

    // ---- requests ---------------------------------------------------------------------------

    pub(crate) fn channel_join(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &Arc<str>,
        name: &str,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", name)?;
        let privileges = self
            .sessions
            .get(&sid)
            .map_or(Privileges::NONE, |s| s.privileges);
        if is_special(name) && !privileges.contains(Privileges::SERVER) {
            return Err(CallError::new(
                ErrorCode::JoinChannelForbidden,
                format!("{name} needs the server privilege"),
            ));
        }
        let mut left = Vec::new();
        if !self.is_member(&app.app_id, name, account) {
            // One channel per session by default: joining leaves the oldest joined channels.
            let joined = self
                .sessions
                .get(&sid)
                .map(|s| s.channels.clone())
                .unwrap_or_default();
            let max = app.max_channels_per_session.max(1);
            if joined.len() >= max {
                for old in &joined[..=joined.len() - max] {
                    self.remove_member(app, old, account, sid, now);
                    left.push(old.to_string());
                }
            }
            self.add_member(app, name, account, sid);
        }
        let c = self
            .channel(&app.app_id, name)
            .ok_or_else(|| CallError::new(ErrorCode::JoinChannelOther, "the channel vanished"))?;
        Ok(Some(reply::Result::ChannelJoined(pb::ChannelJoined {
            channel: name.to_owned(),
            accounts: c.latest(USER_LIST_LEN),
            attrs: c
                .attrs
                .iter()
                .map(|(k, v)| pb::Attr {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            left,
        })))
    }

    pub(crate) fn channel_leave(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &Arc<str>,
        name: &str,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", name)?;
        if !self.is_member(&app.app_id, name, account) {
            return Err(CallError::new(
                ErrorCode::LeaveChannelOther,
                format!("not a member of {name}"),
            ));
        }
        self.remove_member(app, name, account, sid, now);
        Ok(None)
    }

    pub(crate) fn channel_query_user_num(
        &self,
        app: &AppConfig,
        name: &str,
    ) -> Result<u32, CallError> {
        app.limits.channel("channel", name)?;
        Ok(self
            .channel(&app.app_id, name)
            .map_or(0, |c| u32::try_from(c.len()).unwrap_or(u32::MAX)))
    }

    pub(crate) fn channel_query_user_is_in(
        &self,
        app: &AppConfig,
        name: &str,
        account: &str,
    ) -> Result<bool, CallError> {
        app.limits.channel("channel", name)?;
        app.limits.account("account", account)?;
        Ok(self.is_member(&app.app_id, name, account))
    }

    /// `(total members, latest `n` members oldest first)`.
    pub(crate) fn channel_user_list(
        &self,
        app: &AppConfig,
        name: &str,
        n: usize,
    ) -> Result<(usize, Vec<String>), CallError> {
        app.limits.channel("channel", name)?;
        Ok(self
            .channel(&app.app_id, name)
            .map_or((0, Vec::new()), |c| (c.len(), c.latest(n))))
    }

    fn may_write_attrs(
        &self,
        sid: SessionId,
        app: &AppConfig,
        account: &str,
        name: &str,
    ) -> Result<(), CallError> {
        let privileged = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.privileges.contains(Privileges::SERVER));
        if privileged || self.is_member(&app.app_id, name, account) {
            Ok(())
        } else {
            Err(CallError::new(
                ErrorCode::GeneralFailed,
                format!("only members of {name} may change its attributes"),
            ))
        }
    }

    fn attr_rate(&mut self, app: &AppConfig, name: &str, now: Instant) -> Result<(), CallError> {
        if let Some(c) = self.channel_mut(&app.app_id, name)
            && let Some(limit) = c.attr_u64(ATTR_SETATTR_LIMIT).filter(|l| *l > 0)
            && !c
                .attr_writes
                .allow(now, u32::try_from(limit).unwrap_or(u32::MAX))
        {
            return Err(CallError::new(
                ErrorCode::GeneralFailed,
                format!("{name} allows {limit} attribute updates per second"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // The seed's (channel, name, value) plus the caller.
    pub(crate) fn channel_set_attr(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &str,
        channel: &str,
        name: &str,
        value: &str,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", channel)?;
        app.limits.attr_name("attribute name", name)?;
        app.limits.channel_attr_value("attribute value", value)?;
        check_builtin_write(name, value)?;
        self.may_write_attrs(sid, app, account, channel)?;
        if value.is_empty() {
            return self.channel_del_attr(sid, app, account, channel, name, now);
        }
        let fresh = self
            .channel(&app.app_id, channel)
            .is_none_or(|c| !c.attrs.contains_key(name));
        if fresh
            && self
                .channel(&app.app_id, channel)
                .is_some_and(|c| c.attrs.len() >= app.max_channel_attrs)
        {
            return Err(CallError::new(
                ErrorCode::GeneralFailed,
                format!(
                    "a channel may hold at most {} attributes",
                    app.max_channel_attrs
                ),
            ));
        }
        self.attr_rate(app, channel, now)?;
        let created = self.channel(&app.app_id, channel).is_none();
        let Some(c) = self.channel_or_create(&app.app_id, channel) else {
            return Err(CallError::new(ErrorCode::GeneralFailed, "unknown app"));
        };
        c.attrs.insert(name.to_owned(), value.to_owned());
        if name == ATTR_AUTO_UPDATE_NUM || name == ATTR_AUTO_UPDATE_TOTAL_NUM {
            self.arm_auto_update(&app.app_id, channel, now);
        }
        if created {
            self.arm_ttl(&app.app_id, channel, now);
        }
        self.broadcast_attr(&app.app_id, channel, name, value, "update");
        Ok(None)
    }

    pub(crate) fn channel_del_attr(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &str,
        channel: &str,
        name: &str,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", channel)?;
        app.limits.attr_name("attribute name", name)?;
        if name == ATTR_MEMBER_NUM || name == ATTR_TOTAL_MEMBER_NUM {
            return Err(CallError::new(
                ErrorCode::GeneralWrongParam,
                format!("{name} is read-only"),
            ));
        }
        self.may_write_attrs(sid, app, account, channel)?;
        self.attr_rate(app, channel, now)?;
        let removed = self
            .channel_mut(&app.app_id, channel)
            .is_some_and(|c| c.attrs.remove(name).is_some());
        if removed {
            self.broadcast_attr(&app.app_id, channel, name, "", "del");
        }
        Ok(None)
    }

    pub(crate) fn channel_clear_attr(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &str,
        channel: &str,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", channel)?;
        self.may_write_attrs(sid, app, account, channel)?;
        self.attr_rate(app, channel, now)?;
        if let Some(c) = self.channel_mut(&app.app_id, channel) {
            c.attrs.clear();
            c.next_num_report = None;
            c.next_total_report = None;
            self.broadcast_attr(&app.app_id, channel, "", "", "clear");
        }
        Ok(None)
    }

    pub(crate) fn channel_send(
        &mut self,
        sid: SessionId,
        app: &AppConfig,
        account: &str,
        m: pb::SendChannelMessage,
        now: Instant,
    ) -> Result<Option<reply::Result>, CallError> {
        app.limits.channel("channel", &m.channel)?;
        app.limits.message("message", &m.msg)?;
        app.limits.id("message id", &m.msg_id)?;
        let privileged = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.privileges.contains(Privileges::SERVER));
        if m.force {
            if !privileged {
                return Err(CallError::new(
                    ErrorCode::SendMessageOther,
                    "messageChannelSendForce needs the server privilege",
                ));
            }
        } else if !self.is_member(&app.app_id, &m.channel, account) {
            return Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!("not a member of {}", m.channel),
            ));
        }
        let per_user = app.channel_messages_per_user;
        if let Some(s) = self.sessions.get_mut(&sid)
            && !s.channel_messages.allow(now, per_user)
        {
            return Err(CallError::new(
                ErrorCode::SendMessageRateLimit,
                format!("at most {per_user} channel messages per second per user"),
            ));
        }
        let default_limit = app.channel_messages_per_channel;
        let Some(c) = self.channel_mut(&app.app_id, &m.channel) else {
            return Ok(None); // A forced message to a channel nobody is in reaches nobody.
        };
        let limit = c
            .attr_u64(ATTR_SENDMSG_LIMIT)
            .filter(|l| *l > 0)
            .map_or(default_limit, |l| u32::try_from(l).unwrap_or(u32::MAX));
        if !c.messages.allow(now, limit) {
            return Err(CallError::new(
                ErrorCode::SendMessageRateLimit,
                format!("{} allows {limit} messages per second", m.channel),
            ));
        }
        let id = self.message_id();
        self.fan_out_message(&app.app_id, &m.channel, account, m.msg, id);
        Ok(None)
    }

    // ---- membership -------------------------------------------------------------------------

    fn add_member(&mut self, app: &AppConfig, name: &str, account: &Arc<str>, sid: SessionId) {
        let max_notified = app.max_notified_members;
        let Some(c) = self.channel_or_create(&app.app_id, name) else {
            return;
        };
        let order = c.next_order;
        c.next_order += 1;
        c.members.insert(order, account.clone());
        c.index.insert(account.clone(), (order, sid));
        c.ever.insert(account.clone());
        c.ttl_until = None;
        let notify = c.notifies_members(max_notified);
        let others: Vec<SessionId> = c
            .index
            .values()
            .map(|(_, s)| *s)
            .filter(|s| *s != sid)
            .collect();
        let special = c.special;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.push(Arc::from(name));
        }
        let event = notify.then_some(BodyField::ChannelUserJoined);
        self.membership_changed(app, name, account, others, event, special, "channel_join");
    }

    /// Tells the other members (when the channel notifies) and `_agora_channel_event` (for
    /// ordinary channels) that `account` joined or left `name`.
    #[allow(clippy::too_many_arguments)]
    fn membership_changed(
        &mut self,
        app: &AppConfig,
        name: &str,
        account: &str,
        others: Vec<SessionId>,
        member_event: Option<BodyField>,
        special: bool,
        system_event: &str,
    ) {
        if let Some(field) = member_event
            && !others.is_empty()
        {
            let body = EventBody::new(
                field,
                &pb::ChannelMember {
                    channel: name.to_owned(),
                    account: account.to_owned(),
                },
            );
            for s in others {
                self.emit_encoded(s, &body, None);
            }
        }
        if !special {
            let ev =
                json!({"event": system_event, "channel": name, "account": account}).to_string();
            self.system_event(&app.app_id, CHANNEL_EVENT_CHANNEL, ev);
        }
    }

    /// Takes `account` out of `name`; its own session is told by the caller.
    fn remove_member(
        &mut self,
        app: &AppConfig,
        name: &str,
        account: &str,
        sid: SessionId,
        now: Instant,
    ) {
        let max_notified = app.max_notified_members;
        let Some(c) = self.channel_mut(&app.app_id, name) else {
            return;
        };
        let Some((order, _)) = c.index.remove(account) else {
            return;
        };
        c.members.remove(&order);
        let notify = c.notifies_members(max_notified);
        let others = c.sessions();
        let empty = c.index.is_empty();
        let special = c.special;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.retain(|c| &**c != name);
        }
        let event = notify.then_some(BodyField::ChannelUserLeft);
        self.membership_changed(app, name, account, others, event, special, "channel_leave");
        if empty {
            self.arm_ttl(&app.app_id, name, now);
        }
    }

    /// Takes an ending session out of every channel (members see it leave).
    pub(super) fn leave_all_channels(&mut self, sid: SessionId, reason: EndReason, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let (app, account, channels) = (s.app.clone(), s.account.clone(), s.channels.clone());
        if reason != EndReason::Shutdown {
            for ch in channels {
                self.remove_member(&app, &ch, &account, sid, now);
            }
        }
        if reason != EndReason::Shutdown {
            let ev = json!({"event": "user_offline", "account": &*account}).to_string();
            self.system_event(&app.app_id, USER_ONLINE_CHANNEL, ev);
        }
    }

    pub(super) fn announce_online(&mut self, app: &str, account: &str) {
        let ev = json!({"event": "user_online", "account": account}).to_string();
        self.system_event(app, USER_ONLINE_CHANNEL, ev);
    }

    // ---- fan-out ----------------------------------------------------------------------------

    fn system_event(&mut self, app: &str, channel: &str, body: String) {
        if self.channel(app, channel).is_some_and(|c| c.len() > 0) {
            let id = self.message_id();
            self.fan_out_message(app, channel, SYSTEM_ACCOUNT, body, id);
        }
    }

    /// One encoding of the message, one small head per member.
    fn fan_out_message(&mut self, app: &str, channel: &str, sender: &str, msg: String, id: u64) {
        let Some(c) = self.channel(app, channel) else {
            return;
        };
        let members = c.sessions();
        let body = EventBody::new(
            BodyField::ChannelMessage,
            &pb::ChannelMessage {
                channel: channel.to_owned(),
                sender: sender.to_owned(),
                msg,
                server_msg_id: id,
            },
        );
        self.stats.channel_deliveries += members.len() as u64;
        for s in members {
            self.emit_encoded(s, &body, None);
        }
    }

    fn broadcast_attr(&mut self, app: &str, channel: &str, name: &str, value: &str, kind: &str) {
        let Some(c) = self.channel(app, channel) else {
            return;
        };
        let members = c.sessions();
        if members.is_empty() {
            return;
        }
        let body = EventBody::new(
            BodyField::ChannelAttrUpdated,
            &pb::ChannelAttrUpdated {
                channel: channel.to_owned(),
                name: name.to_owned(),
                value: value.to_owned(),
                r#type: kind.to_owned(),
            },
        );
        for s in members {
            self.emit_encoded(s, &body, None);
        }
    }

    // ---- timers -----------------------------------------------------------------------------

    fn arm_ttl(&mut self, app: &str, name: &str, now: Instant) {
        let default_ttl = self.apps.get(app).map(|a| a.config.default_channel_ttl);
        let Some(c) = self.channel_mut(app, name) else {
            return;
        };
        if c.special || !c.index.is_empty() {
            return;
        }
        let ttl = c
            .attr_u64(ATTR_CHANNEL_TTL)
            .map(Duration::from_secs)
            .or(default_ttl)
            .unwrap_or(Duration::from_secs(7200));
        let until = now + ttl;
        c.ttl_until = Some(until);
        let id = c.id;
        self.timers.push(Reverse((until, TimerKey::ChannelTtl(id))));
    }

    fn arm_auto_update(&mut self, app: &str, name: &str, now: Instant) {
        let Some(c) = self.channel_mut(app, name) else {
            return;
        };
        let every = |v: Option<u64>| v.filter(|n| *n > 0).map(|n| now + Duration::from_secs(n));
        c.next_num_report = every(c.attr_u64(ATTR_AUTO_UPDATE_NUM));
        c.next_total_report = every(c.attr_u64(ATTR_AUTO_UPDATE_TOTAL_NUM));
        let id = c.id;
        let due = [c.next_num_report, c.next_total_report]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = due {
            self.timers.push(Reverse((at, TimerKey::AutoUpdate(id))));
        }
    }

    pub(super) fn channel_ttl_due(&mut self, id: u64, now: Instant) {
        let Some((app, name)) = self.channel_ids.get(&id).cloned() else {
            return;
        };
        let due = self
            .channel(&app, &name)
            .is_some_and(|c| c.index.is_empty() && c.ttl_until.is_some_and(|t| t <= now));
        if due {
            if let Some(a) = self.apps.get_mut(&*app) {
                a.channels.by_name.remove(&*name);
            }
            self.channel_ids.remove(&id);
            self.stats.channels_expired += 1;
        }
    }

    pub(super) fn auto_update_due(&mut self, id: u64, now: Instant) {
        let Some((app, name)) = self.channel_ids.get(&id).cloned() else {
            return;
        };
        let Some(c) = self.channel_mut(&app, &name) else {
            return;
        };
        let mut reports = Vec::new();
        if let Some(at) = c.next_num_report
            && at <= now
        {
            let n = c.len();
            if c.reported_num != Some(n) {
                c.reported_num = Some(n);
                reports.push((ATTR_MEMBER_NUM, n));
            }
            let every = c.attr_u64(ATTR_AUTO_UPDATE_NUM).unwrap_or(0).max(1);
            c.next_num_report = Some(now + Duration::from_secs(every));
        }
        if let Some(at) = c.next_total_report
            && at <= now
        {
            let n = c.ever.len();
            if c.reported_total != Some(n) {
                c.reported_total = Some(n);
                reports.push((ATTR_TOTAL_MEMBER_NUM, n));
            }
            let every = c.attr_u64(ATTR_AUTO_UPDATE_TOTAL_NUM).unwrap_or(0).max(1);
            c.next_total_report = Some(now + Duration::from_secs(every));
        }
        let next = [c.next_num_report, c.next_total_report]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = next {
            self.timers.push(Reverse((at, TimerKey::AutoUpdate(id))));
        }
        for (attr, n) in reports {
            self.broadcast_attr(&app, &name, attr, &n.to_string(), "update");
        }
    }

    /// `_member_num` / `_total_member_num` and the stored attributes, for tests and admin.
    pub fn channel_attrs(&self, app: &str, channel: &str) -> Option<BTreeMap<String, String>> {
        let c = self.channel(app, channel)?;
        let mut a = c.attrs.clone();
        a.insert(ATTR_MEMBER_NUM.into(), c.len().to_string());
        a.insert(ATTR_TOTAL_MEMBER_NUM.into(), c.ever.len().to_string());
        Some(a)
    }

    /// Members of a channel in join order.
    pub fn channel_members(&self, app: &str, channel: &str) -> Vec<String> {
        self.channel(app, channel)
            .map(|c| c.members.values().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    }

    /// Channels that exist in `app` (with members or waiting out their TTL).
    pub fn channel_count(&self, app: &str) -> usize {
        self.apps.get(app).map_or(0, |a| a.channels.by_name.len())
    }
}

/// Writes to built-in attributes: read-only ones and malformed values are 1004.
fn check_builtin_write(name: &str, value: &str) -> Result<(), CallError> {
    if !name.starts_with('_') {
        return Ok(());
    }
    let wrong = |why: String| Err(CallError::new(ErrorCode::GeneralWrongParam, why));
    match name {
        ATTR_MEMBER_NUM | ATTR_TOTAL_MEMBER_NUM => wrong(format!("{name} is read-only")),
        ATTR_USER_NOTIFICATION => {
            if value.is_empty() || value == "0" || value == "1" {
                Ok(())
            } else {
                wrong(format!("{name} must be 0 or 1"))
            }
        }
        ATTR_CHANNEL_TTL
        | ATTR_AUTO_UPDATE_NUM
        | ATTR_AUTO_UPDATE_TOTAL_NUM
        | ATTR_SENDMSG_LIMIT
        | ATTR_SETATTR_LIMIT => {
            if value.is_empty() || value.parse::<u32>().is_ok() {
                Ok(())
            } else {
                wrong(format!("{name} must be a whole number"))
            }
        }
        _ => wrong(format!(
            "{name} is not a built-in attribute; names starting with _ are reserved"
        )),
    }
}
