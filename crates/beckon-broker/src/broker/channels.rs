//! Channel requests (SPEC §7) and who hears about them: members, `_agora_channel_event`,
//! `_agora_user_online`; the channel timers. The channels' state is `crate::channels`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use beckon_proto::pb;
use beckon_proto::validate::{self, channel_attr};
use beckon_proto::{CallError, CallResult, ErrorCode, SYSTEM_ACCOUNT};

use super::{Broker, Caller, EndReason, TimerKey};
use crate::SessionId;
use crate::channels::{AppFull, CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL, attr_cost, is_special};
use crate::config::AppConfig;
use crate::frame::{BodyField, EventBody};
use crate::invoke::USER_LIST_LEN;
use crate::store::Store;

/// What a field costs in an encoded event besides its text: a tag and a length, with room.
const FIELD_OVERHEAD: usize = 8;

/// The refusal for a session without the server privilege that asks about a special channel.
fn forbidden(name: &str) -> CallError {
    CallError::new(
        ErrorCode::JoinChannelForbidden,
        format!("{name} needs the server privilege"),
    )
}

impl<S: Store> Broker<S> {
    // ---- requests ---------------------------------------------------------------------------

    /// `channelJoin`: the answer carries the member list and the attributes (SPEC §7). When
    /// the attributes do not fit in one event beside the members, the rest follow the answer as
    /// attribute updates, which a client reports the same way. A join whose state would not fit
    /// in what the session may still hold is refused, changing nothing.
    pub(super) fn channel_join(
        &mut self,
        me: &Caller,
        name: &str,
    ) -> CallResult<pb::ChannelJoined> {
        let app = &me.app;
        app.limits.channel("channelID", name)?;
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        self.join_fits(me, name)?;
        let mut left = Vec::new();
        if !self.channels.is_member(&app.app_id, name, &me.account) {
            if self.channels.get(&app.app_id, name).is_none() {
                self.make_room_for_channel(app)?;
            }
            // One channel per session by default: joining leaves the oldest joined channels.
            let joined = self
                .sessions
                .get(&me.sid)
                .map(|s| s.channels.clone())
                .unwrap_or_default();
            let max = app.max_channels_per_session.max(1);
            if joined.len() >= max {
                for old in &joined[..=joined.len() - max] {
                    self.remove_member(app, old, &me.account, me.sid);
                    left.push(old.to_string());
                }
            }
            self.add_member(app, name, &me.account, me.sid);
        }
        let c = (self.channels.get(&app.app_id, name))
            .ok_or_else(|| CallError::new(ErrorCode::JoinChannelOther, "the channel vanished"))?;
        let accounts = c.latest(USER_LIST_LEN);
        let members_bytes: usize = accounts.iter().map(|a| a.len() + FIELD_OVERHEAD).sum();
        let mut room = self
            .config
            .max_event_bytes
            .saturating_sub(members_bytes + 1024);
        let mut attrs = Vec::new();
        let mut overflow = Vec::new();
        for (k, v) in c.attrs() {
            let cost = attr_cost(k, v) + 3 * FIELD_OVERHEAD;
            let attr = pb::Attr {
                name: k.clone(),
                value: v.clone(),
            };
            if cost <= room && overflow.is_empty() {
                room -= cost;
                attrs.push(attr);
            } else {
                overflow.push(attr);
            }
        }
        for attr in overflow {
            let update = pb::ChannelAttrUpdated {
                channel: name.to_owned(),
                name: attr.name,
                value: attr.value,
                r#type: "update".to_owned(),
            };
            let body = EventBody::new(BodyField::ChannelAttrUpdated, &update);
            self.follow_ups.push((me.sid, body));
        }
        Ok(pb::ChannelJoined {
            channel: name.to_owned(),
            accounts,
            attrs,
            left,
        })
    }

    /// Whether the state a join of `name` hands over (members, attributes) fits in what the
    /// caller's session may still hold unacknowledged; else `JOINCHANNEL_E_OTHER`.
    fn join_fits(&self, me: &Caller, name: &str) -> CallResult {
        let Some(c) = self.channels.get(&me.app.app_id, name) else {
            return Ok(());
        };
        let members: usize = c
            .latest(USER_LIST_LEN)
            .iter()
            .map(|a| a.len() + FIELD_OVERHEAD)
            .sum();
        let state = members + c.attr_bytes() + c.attrs().len() * 4 * FIELD_OVERHEAD + 1024;
        let events = c.attrs().len() + 1;
        let cfg = &self.config;
        let full = self.sessions.get(&me.sid).is_some_and(|s| {
            s.events.holds_at_least(
                cfg.max_unacked_events.saturating_sub(events),
                cfg.max_unacked_bytes.saturating_sub(state),
            )
        });
        if full {
            return Err(CallError::new(
                ErrorCode::JoinChannelOther,
                format!(
                    "{name} hands over {state} bytes of members and attributes, more than this \
                     session can hold unacknowledged now; join again once the client has \
                     caught up"
                ),
            ));
        }
        Ok(())
    }

    /// Makes room for a new channel in the caller's app (SPEC has no limit; the app's
    /// `max_channels` does): the channel empty longest ends, or the request fails.
    fn make_room_for_channel(&mut self, app: &AppConfig) -> CallResult {
        match self.channels.make_room(&app.app_id, app.max_channels) {
            Ok(evicted) => {
                self.stats.channels_evicted += u64::from(evicted.is_some());
                Ok(())
            }
            Err(AppFull) => Err(CallError::new(
                ErrorCode::JoinChannelOther,
                format!(
                    "the app holds its maximum of {} channels, none of them empty",
                    app.max_channels
                ),
            )),
        }
    }

    /// `channelLeave`: members see the caller leave.
    pub(super) fn channel_leave(&mut self, me: &Caller, name: &str) -> CallResult {
        me.app.limits.channel("channelID", name)?;
        if !self.channels.is_member(&me.app.app_id, name, &me.account) {
            return Err(CallError::new(
                ErrorCode::LeaveChannelOther,
                format!("not a member of {name}"),
            ));
        }
        self.remove_member(&me.app, name, &me.account, me.sid);
        Ok(())
    }

    /// `channelQueryUserNum`: members now (membership not needed; the special channels'
    /// need the server privilege).
    pub(super) fn channel_query_user_num(&self, me: &Caller, name: &str) -> CallResult<u32> {
        me.app.limits.channel("channelID", name)?;
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        let num = self
            .channels
            .get(&me.app.app_id, name)
            .map_or(0, |c| c.len());
        Ok(u32::try_from(num).unwrap_or(u32::MAX))
    }

    /// `channelQueryUserIsIn`: whether `account` is a member (membership not needed).
    pub(super) fn channel_query_user_is_in(
        &self,
        me: &Caller,
        name: &str,
        account: &str,
    ) -> CallResult<bool> {
        validate::channel_member(&me.app.limits, name, account)?;
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        Ok(self.channels.is_member(&me.app.app_id, name, account))
    }

    /// `(total members, latest `n` members oldest first)`. A list too large for one answer
    /// is refused with `GENERAL_E_LARGE_PARAM`, pointing at `num`.
    pub(super) fn channel_user_list(
        &self,
        me: &Caller,
        name: &str,
        n: usize,
    ) -> CallResult<(usize, Vec<String>)> {
        me.app.limits.channel("channelID", name)?;
        if is_special(name) && !me.privileged {
            return Err(forbidden(name));
        }
        let Some(c) = self.channels.get(&me.app.app_id, name) else {
            return Ok((0, Vec::new()));
        };
        // Counted before anything is copied, as the JSON answer will spell each member:
        // `["<account>",0],` with `"` and `\` escaped.
        let listed = n.min(c.len());
        let bytes: usize = c
            .latest_iter()
            .take(listed)
            .map(|a| a.len() + a.bytes().filter(|b| matches!(b, b'"' | b'\\')).count() + 6)
            .sum::<usize>()
            + 64;
        if bytes > self.config.max_event_bytes {
            return Err(CallError::large_param(format!(
                "the {listed} latest members of {name} take {bytes} bytes, more than one \
                 answer carries ({} bytes); ask for fewer with \"num\"",
                self.config.max_event_bytes
            )));
        }
        Ok((c.len(), c.latest(listed)))
    }

    /// Members, or sessions with the server privilege, may change a channel's attributes.
    fn may_write_attrs(&self, me: &Caller, name: &str) -> CallResult {
        if me.privileged || self.channels.is_member(&me.app.app_id, name, &me.account) {
            Ok(())
        } else {
            Err(CallError::failed(format!(
                "only members of {name} may change its attributes"
            )))
        }
    }

    /// Counts an attribute change against the channel's `_setattr_limit`.
    fn attr_rate(&mut self, me: &Caller, name: &str) -> CallResult {
        match self.channels.get_mut(&me.app.app_id, name) {
            Some(c) => c.allow_attr_write(name, self.now),
            None => Ok(()),
        }
    }

    /// `channelSetAttr`; an empty value deletes (SPEC §7).
    pub(super) fn channel_set_attr(
        &mut self,
        me: &Caller,
        channel: &str,
        name: &str,
        value: &str,
    ) -> CallResult {
        let app = &me.app;
        validate::channel_attr_write(&app.limits, channel, name, value)?;
        self.may_write_attrs(me, channel)?;
        if value.is_empty() {
            return self.channel_del_attr(me, channel, name);
        }
        let existing = self.channels.get(&app.app_id, channel);
        if existing.is_some_and(|c| c.attrs_full(name, app.max_channel_attrs)) {
            return Err(CallError::failed(format!(
                "a channel may hold at most {} attributes",
                app.max_channel_attrs
            )));
        }
        let bytes = existing.map_or(attr_cost(name, value), |c| c.attr_bytes_with(name, value));
        if bytes > app.max_channel_attr_bytes {
            return Err(CallError::failed(format!(
                "{channel}'s attributes would take {bytes} bytes; a channel holds at most {} \
                 bytes of attribute names and values",
                app.max_channel_attr_bytes
            )));
        }
        if existing.is_none() {
            self.make_room_for_channel(app)?;
        }
        self.attr_rate(me, channel)?;
        let now = self.now;
        let (c, created) = self.channels.get_or_create(&app.app_id, channel);
        c.set_attr(name, value);
        let auto_update = if name == channel_attr::AUTO_UPDATE_NUM
            || name == channel_attr::AUTO_UPDATE_TOTAL_NUM
        {
            c.arm_auto_update(now)
        } else {
            None
        };
        let ttl = if created {
            c.arm_ttl(now, app.default_channel_ttl, app.max_channel_ttl)
        } else {
            None
        };
        let id = c.id();
        if let Some(at) = auto_update {
            self.arm(at, TimerKey::AutoUpdate(id));
        }
        if let Some(at) = ttl {
            // Made by a write of a session with the server privilege, empty: it holds it.
            self.arm(at, TimerKey::ChannelTtl(id));
            self.left_empty(app, channel, &me.account, me.privileged);
        }
        self.broadcast_attr(&app.app_id, channel, name, value, "update");
        Ok(())
    }

    /// `channelDelAttr`.
    pub(super) fn channel_del_attr(
        &mut self,
        me: &Caller,
        channel: &str,
        name: &str,
    ) -> CallResult {
        validate::channel_attr_delete(&me.app.limits, channel, name)?;
        self.may_write_attrs(me, channel)?;
        self.attr_rate(me, channel)?;
        let removed =
            (self.channels.get_mut(&me.app.app_id, channel)).is_some_and(|c| c.del_attr(name));
        if removed {
            self.broadcast_attr(&me.app.app_id, channel, name, "", "del");
        }
        Ok(())
    }

    /// `channelClearAttr`: every attribute, built-ins included; members get one "clear".
    pub(super) fn channel_clear_attr(&mut self, me: &Caller, channel: &str) -> CallResult {
        me.app.limits.channel("channelID", channel)?;
        self.may_write_attrs(me, channel)?;
        self.attr_rate(me, channel)?;
        if let Some(c) = self.channels.get_mut(&me.app.app_id, channel) {
            c.clear_attrs();
            self.broadcast_attr(&me.app.app_id, channel, "", "", "clear");
        }
        Ok(())
    }

    /// What a channel message must pass on one node and in cluster mode alike: its fields,
    /// the server privilege for `force`, else membership (`is_member`), and the sender's
    /// per-user rate (counted when it passes).
    pub(super) fn may_send_channel_message(
        &mut self,
        me: &Caller,
        m: &pb::SendChannelMessage,
        is_member: bool,
    ) -> CallResult {
        let app = &me.app;
        validate::channel_message(&app.limits, &m.channel, &m.msg, &m.msg_id)?;
        if m.force {
            if !me.privileged {
                return Err(CallError::new(
                    ErrorCode::SendMessageOther,
                    "messageChannelSendForce needs the server privilege",
                ));
            }
        } else if !is_member {
            return Err(CallError::new(
                ErrorCode::SendMessageOther,
                format!("not a member of {}", m.channel),
            ));
        }
        let (now, per_user) = (self.now, app.channel_messages_per_user);
        if let Some(s) = self.sessions.get_mut(&me.sid)
            && !s.channel_messages.allow(now, per_user)
        {
            return Err(CallError::new(
                ErrorCode::SendMessageRateLimit,
                format!("at most {per_user} channel messages per second per user"),
            ));
        }
        Ok(())
    }

    /// `messageChannelSend` and `messageChannelSendForce` (`force`, server privilege).
    pub(super) fn channel_send(&mut self, me: &Caller, m: pb::SendChannelMessage) -> CallResult {
        let app = &me.app;
        let is_member = (self.channels).is_member(&app.app_id, &m.channel, &me.account);
        self.may_send_channel_message(me, &m, is_member)?;
        let now = self.now;
        let Some(c) = self.channels.get_mut(&app.app_id, &m.channel) else {
            return Ok(()); // A forced message to a channel nobody is in reaches nobody.
        };
        if let Err(limit) = c.allow_message(now, app.channel_messages_per_channel) {
            return Err(CallError::new(
                ErrorCode::SendMessageRateLimit,
                format!("{} allows {limit} messages per second", m.channel),
            ));
        }
        let id = self.message_id();
        self.fan_out_message(&app.app_id, &m.channel, &me.account, m.msg, id);
        Ok(())
    }

    // ---- membership -------------------------------------------------------------------------

    fn add_member(&mut self, app: &AppConfig, name: &str, account: &Arc<str>, sid: SessionId) {
        self.channels.get_or_create(&app.app_id, name);
        self.channels.add(&app.app_id, name, account, sid);
        let Some(c) = self.channels.get(&app.app_id, name) else {
            return;
        };
        let notify = c.notifies_members(app.max_notified_members);
        let mut others = c.sessions();
        others.retain(|s| *s != sid);
        let special = c.special();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.push(Arc::from(name));
        }
        let event = notify.then_some(BodyField::ChannelUserJoined);
        self.membership_changed(app, name, account, others, event, special, "channel_join");
    }

    /// Takes `account` out of `name`; its own session is told by the caller.
    fn remove_member(&mut self, app: &AppConfig, name: &str, account: &str, sid: SessionId) {
        let Some(c) = self.channels.get_mut(&app.app_id, name) else {
            return;
        };
        if !c.remove(account) {
            return;
        }
        let notify = c.notifies_members(app.max_notified_members);
        let others = c.sessions();
        let special = c.special();
        let ttl = c.arm_ttl(self.now, app.default_channel_ttl, app.max_channel_ttl);
        let id = c.id();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.channels.retain(|c| &**c != name);
        }
        let event = notify.then_some(BodyField::ChannelUserLeft);
        self.membership_changed(app, name, account, others, event, special, "channel_leave");
        if let Some(at) = ttl {
            self.arm(at, TimerKey::ChannelTtl(id));
            let session = self.sessions.get(&sid);
            let privileged = session.is_some_and(|s| s.privileged());
            let holder = session.map(|s| s.account.clone());
            let holder = holder.unwrap_or_else(|| Arc::from(account));
            self.left_empty(app, name, &holder, privileged);
        }
    }

    /// `holder` left `name` empty: the channel counts among the empty channels it holds, and
    /// the oldest of those beyond the app's quota end now. A session with the server privilege
    /// (an app's own backend, which may prepare many channels) has no such quota; the app's
    /// `max_channels` still holds.
    fn left_empty(&mut self, app: &AppConfig, name: &str, holder: &Arc<str>, privileged: bool) {
        let max = if privileged {
            usize::MAX
        } else {
            app.max_empty_channels_per_account
        };
        let evicted = (self.channels).left_empty(&app.app_id, name, holder, self.now, max);
        self.stats.channels_evicted += evicted.len() as u64;
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
            let member = pb::ChannelMember {
                channel: name.to_owned(),
                account: account.to_owned(),
            };
            self.emit_all(others, &EventBody::new(field, &member));
        }
        if !special {
            let ev =
                json!({"event": system_event, "channel": name, "account": account}).to_string();
            self.system_event(&app.app_id, CHANNEL_EVENT_CHANNEL, ev);
        }
    }

    /// Takes an ending session out of every channel (members see it leave) and tells
    /// `_agora_user_online`; on shutdown nobody is told anything.
    pub(super) fn leave_all_channels(&mut self, sid: SessionId, reason: EndReason) {
        if self.config.cluster {
            self.cluster_leave_all(sid, reason);
        }
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if reason == EndReason::Shutdown {
            return;
        }
        if self.config.cluster && reason == EndReason::Kicked {
            // Another session of the account took over (on any node): it stays online, and
            // that session's node announced it.
            return;
        }
        let (app, account, channels) = (s.app.clone(), s.account.clone(), s.channels.clone());
        for ch in channels {
            self.remove_member(&app, &ch, &account, sid);
        }
        let ev = json!({"event": "user_offline", "account": &*account}).to_string();
        self.system_event(&app.app_id, USER_ONLINE_CHANNEL, ev);
    }

    pub(super) fn announce_online(&mut self, app: &str, account: &str) {
        let ev = json!({"event": "user_online", "account": account}).to_string();
        self.system_event(app, USER_ONLINE_CHANNEL, ev);
    }

    // ---- fan-out ----------------------------------------------------------------------------

    fn system_event(&mut self, app: &str, channel: &str, body: String) {
        if self.config.cluster {
            // `_agora_channel_event` is published by the cluster's join and leave scripts.
            if channel == USER_ONLINE_CHANNEL {
                self.cluster_system_event(app, channel, body);
            }
            return;
        }
        if self
            .channels
            .get(app, channel)
            .is_some_and(|c| !c.is_empty())
        {
            let id = self.message_id();
            self.fan_out_message(app, channel, SYSTEM_ACCOUNT, body, id);
        }
    }

    /// One encoding of the message, one small head per member.
    fn fan_out_message(&mut self, app: &str, channel: &str, sender: &str, msg: String, id: u64) {
        let Some(c) = self.channels.get(app, channel) else {
            return;
        };
        let members = c.sessions();
        let message = pb::ChannelMessage {
            channel: channel.to_owned(),
            sender: sender.to_owned(),
            msg,
            server_msg_id: id,
        };
        self.stats.channel_deliveries += members.len() as u64;
        self.emit_all(
            members,
            &EventBody::new(BodyField::ChannelMessage, &message),
        );
    }

    fn broadcast_attr(&mut self, app: &str, channel: &str, name: &str, value: &str, kind: &str) {
        let Some(c) = self.channels.get(app, channel) else {
            return;
        };
        let members = c.sessions();
        if members.is_empty() {
            return;
        }
        let update = pb::ChannelAttrUpdated {
            channel: channel.to_owned(),
            name: name.to_owned(),
            value: value.to_owned(),
            r#type: kind.to_owned(),
        };
        self.emit_all(
            members,
            &EventBody::new(BodyField::ChannelAttrUpdated, &update),
        );
    }

    // ---- timers -----------------------------------------------------------------------------

    pub(super) fn channel_ttl_due(&mut self, id: u64, now: Instant) {
        let Some((app, name)) = self.channels.name_of(id) else {
            return;
        };
        if self
            .channels
            .get(&app, &name)
            .is_some_and(|c| c.expired(now))
        {
            self.channels.remove(id);
            self.stats.channels_expired += 1;
        }
    }

    pub(super) fn auto_update_due(&mut self, id: u64, now: Instant) {
        let Some((app, name)) = self.channels.name_of(id) else {
            return;
        };
        let Some(c) = self.channels.get_mut(&app, &name) else {
            return;
        };
        let (reports, next) = c.auto_update_due(now);
        if let Some(at) = next {
            self.arm(at, TimerKey::AutoUpdate(id));
        }
        for (attr, n) in reports {
            self.broadcast_attr(&app, &name, attr, &n.to_string(), "update");
        }
    }

    // ---- getters ----------------------------------------------------------------------------

    /// `_member_num` / `_total_member_num` and the stored attributes, for tests and admin.
    pub fn channel_attrs(&self, app: &str, channel: &str) -> Option<BTreeMap<String, String>> {
        Some(self.channels.get(app, channel)?.attrs_with_counts())
    }

    /// Members of a channel in join order.
    pub fn channel_members(&self, app: &str, channel: &str) -> Vec<String> {
        let c = self.channels.get(app, channel);
        c.map(|c| c.members().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Channels that exist in `app` (with members or waiting out their TTL).
    pub fn channel_count(&self, app: &str) -> usize {
        self.channels.count(app)
    }
}
