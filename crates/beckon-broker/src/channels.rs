//! The channels of every app (SPEC §7): members in join order, attributes with their built-ins
//! and their size, rate windows, the deadlines of TTL and auto-update reports, and who left
//! each empty channel behind. Plain state with its own invariants; the broker decides who hears
//! about a change.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use beckon_proto::CallError;
use beckon_proto::validate::channel_attr::*;
pub use beckon_proto::{CHANNEL_EVENT_CHANNEL, USER_ONLINE_CHANNEL};

use crate::SessionId;
use crate::session::RateWindow;
use crate::shrink::{shrink_deque, shrink_map};

/// Whether `name` is one of the special channels, which need the server privilege.
pub(crate) fn is_special(name: &str) -> bool {
    beckon_proto::validate::is_special_channel(name)
}

/// What an attribute costs in a channel's byte quota: its name and value in UTF-8.
pub(crate) fn attr_cost(name: &str, value: &str) -> usize {
    name.len() + value.len()
}

/// One channel.
///
/// Invariants: `members` and `index` name the same accounts (an account is in a channel once);
/// `ttl_until` and `emptied` are set only while the channel is empty; `attr_bytes` is the sum
/// of [`attr_cost`] over `attrs`.
#[derive(Debug)]
pub(crate) struct Channel {
    id: u64,
    special: bool,
    /// Members in join order: order → account.
    members: BTreeMap<u64, Arc<str>>,
    /// account → (join order, session).
    index: HashMap<Arc<str>, (u64, SessionId)>,
    next_order: u64,
    attrs: BTreeMap<String, String>,
    attr_bytes: usize,
    /// Distinct accounts that ever joined (`_total_member_num`), as 64-bit hashes: the count
    /// needs no names, and a hash costs 8 bytes where a name of a former member costs up to 512.
    ever: HashSet<u64>,
    ttl_until: Option<Instant>,
    /// While empty: since when, and the account that left it so (it holds the channel).
    emptied: Option<(Instant, Arc<str>)>,
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
            attr_bytes: 0,
            ever: HashSet::new(),
            ttl_until: None,
            emptied: None,
            messages: RateWindow::default(),
            attr_writes: RateWindow::default(),
            reported_num: None,
            reported_total: None,
            next_num_report: None,
            next_total_report: None,
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn special(&self) -> bool {
        self.special
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub(crate) fn contains(&self, account: &str) -> bool {
        self.index.contains_key(account)
    }

    fn attr_u64(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(|v| v.parse().ok())
    }

    /// A positive per-second limit set by a built-in attribute.
    fn limit(&self, name: &str) -> Option<u32> {
        self.attr_u64(name)
            .filter(|l| *l > 0)
            .map(|l| u32::try_from(l).unwrap_or(u32::MAX))
    }

    /// Whether members hear each other join and leave: `_userNotification` is not 0 and the
    /// channel has at most `max` members (SPEC §7, large channels).
    pub(crate) fn notifies_members(&self, max: usize) -> bool {
        self.attrs.get(USER_NOTIFICATION).is_none_or(|v| v != "0") && self.len() <= max
    }

    /// The latest `n` members, oldest first.
    pub(crate) fn latest(&self, n: usize) -> Vec<String> {
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

    /// The members from the latest joined back.
    pub(crate) fn latest_iter(&self) -> impl Iterator<Item = &str> {
        self.members.values().rev().map(|a| &**a)
    }

    /// Every member in join order.
    pub(crate) fn members(&self) -> impl Iterator<Item = &str> {
        self.members.values().map(|a| &**a)
    }

    /// The members' sessions.
    pub(crate) fn sessions(&self) -> Vec<SessionId> {
        self.index.values().map(|(_, s)| *s).collect()
    }

    /// Adds a member (not yet in the channel); the channel no longer expires.
    fn add(&mut self, account: &Arc<str>, sid: SessionId) {
        debug_assert!(!self.contains(account));
        let order = self.next_order;
        self.next_order += 1;
        self.members.insert(order, account.clone());
        self.index.insert(account.clone(), (order, sid));
        self.ever.insert(account_hash(account));
        self.ttl_until = None;
    }

    /// Removes a member; false when it was not one.
    pub(crate) fn remove(&mut self, account: &str) -> bool {
        let Some((order, _)) = self.index.remove(account) else {
            return false;
        };
        self.members.remove(&order);
        shrink_map(&mut self.index);
        true
    }

    pub(crate) fn attrs(&self) -> &BTreeMap<String, String> {
        &self.attrs
    }

    /// Whether setting `name` would add an attribute beyond `max`.
    pub(crate) fn attrs_full(&self, name: &str, max: usize) -> bool {
        !self.attrs.contains_key(name) && self.attrs.len() >= max
    }

    /// The bytes of the channel's attributes.
    pub(crate) fn attr_bytes(&self) -> usize {
        self.attr_bytes
    }

    /// The bytes of the channel's attributes once `name` is set to `value`.
    pub(crate) fn attr_bytes_with(&self, name: &str, value: &str) -> usize {
        let old = self.attrs.get(name).map_or(0, |v| attr_cost(name, v));
        self.attr_bytes - old + attr_cost(name, value)
    }

    pub(crate) fn set_attr(&mut self, name: &str, value: &str) {
        self.attr_bytes = self.attr_bytes_with(name, value);
        self.attrs.insert(name.to_owned(), value.to_owned());
    }

    /// Deletes an attribute; false when there was none.
    pub(crate) fn del_attr(&mut self, name: &str) -> bool {
        match self.attrs.remove(name) {
            Some(v) => {
                self.attr_bytes -= attr_cost(name, &v);
                true
            }
            None => false,
        }
    }

    /// Removes every attribute, built-ins included, and stops the auto-update reports.
    pub(crate) fn clear_attrs(&mut self) {
        self.attrs.clear();
        self.attr_bytes = 0;
        self.next_num_report = None;
        self.next_total_report = None;
    }

    /// Counts an attribute update against `_setattr_limit`.
    pub(crate) fn allow_attr_write(&mut self, name: &str, now: Instant) -> Result<(), CallError> {
        match self.limit(SETATTR_LIMIT) {
            Some(limit) if !self.attr_writes.allow(now, limit) => Err(CallError::failed(format!(
                "{name} allows {limit} attribute updates per second"
            ))),
            _ => Ok(()),
        }
    }

    /// Counts a message against `_sendmsg_limit`, or `default` without it; the limit that
    /// refused it otherwise.
    pub(crate) fn allow_message(&mut self, now: Instant, default: u32) -> Result<(), u32> {
        let limit = self.limit(SENDMSG_LIMIT).unwrap_or(default);
        if self.messages.allow(now, limit) {
            Ok(())
        } else {
            Err(limit)
        }
    }

    /// Starts the TTL of an empty, ordinary channel (`_channel_ttl`, else `default`, at most
    /// `max`); returns when it runs out.
    pub(crate) fn arm_ttl(
        &mut self,
        now: Instant,
        default: Duration,
        max: Duration,
    ) -> Option<Instant> {
        if self.special || !self.is_empty() {
            return None;
        }
        let ttl = self
            .attr_u64(CHANNEL_TTL)
            .map_or(default, Duration::from_secs)
            .min(max);
        let until = now + ttl;
        self.ttl_until = Some(until);
        Some(until)
    }

    /// Whether the channel is empty and its TTL has run out.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.is_empty() && self.ttl_until.is_some_and(|t| t <= now)
    }

    /// (Re)starts the `_auto_update_num` / `_auto_update_total_num` reports from their
    /// attributes; returns the first report's time.
    pub(crate) fn arm_auto_update(&mut self, now: Instant) -> Option<Instant> {
        let every = |v: Option<u64>| v.filter(|n| *n > 0).map(|n| now + Duration::from_secs(n));
        self.next_num_report = every(self.attr_u64(AUTO_UPDATE_NUM));
        self.next_total_report = every(self.attr_u64(AUTO_UPDATE_TOTAL_NUM));
        self.next_report()
    }

    /// When the channel's TTL runs out, while it is empty.
    pub(crate) fn ttl_until(&self) -> Option<Instant> {
        self.ttl_until
    }

    /// Whether an auto-update report is due at `at`.
    pub(crate) fn reports_at(&self, at: Instant) -> bool {
        self.next_num_report == Some(at) || self.next_total_report == Some(at)
    }

    fn next_report(&self) -> Option<Instant> {
        [self.next_num_report, self.next_total_report]
            .into_iter()
            .flatten()
            .min()
    }

    /// The reports due at `now` (attribute, count) — only counts that changed since the last
    /// report — and when the next report is due.
    pub(crate) fn auto_update_due(
        &mut self,
        now: Instant,
    ) -> (Vec<(&'static str, usize)>, Option<Instant>) {
        let mut reports = Vec::new();
        let (num, total) = (self.len(), self.ever.len());
        let due = |at: Option<Instant>| at.is_some_and(|at| at <= now);
        if due(self.next_num_report) {
            if self.reported_num.replace(num) != Some(num) {
                reports.push((MEMBER_NUM, num));
            }
            let every = self.attr_u64(AUTO_UPDATE_NUM).unwrap_or(0).max(1);
            self.next_num_report = Some(now + Duration::from_secs(every));
        }
        if due(self.next_total_report) {
            if self.reported_total.replace(total) != Some(total) {
                reports.push((TOTAL_MEMBER_NUM, total));
            }
            let every = self.attr_u64(AUTO_UPDATE_TOTAL_NUM).unwrap_or(0).max(1);
            self.next_total_report = Some(now + Duration::from_secs(every));
        }
        (reports, self.next_report())
    }

    /// The stored attributes with `_member_num` and `_total_member_num`.
    pub(crate) fn attrs_with_counts(&self) -> BTreeMap<String, String> {
        let mut a = self.attrs.clone();
        a.insert(MEMBER_NUM.into(), self.len().to_string());
        a.insert(TOTAL_MEMBER_NUM.into(), self.ever.len().to_string());
        a
    }
}

/// A channel's account in `ever`: a hash of its name.
fn account_hash(account: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    account.hash(&mut h);
    h.finish()
}

/// The channels of one app, with the empty ones in the order they became empty and under the
/// account that left each behind.
///
/// Invariants: `empty` holds (since, id) of exactly the ordinary channels that are empty;
/// `held` lists each of them once, under the account in its `emptied`, oldest first, and holds
/// no account with an empty list.
#[derive(Debug, Default)]
struct AppChannels {
    /// Keyed by names clients choose: SipHash.
    channels: HashMap<Arc<str>, Channel>,
    empty: BTreeSet<(Instant, u64)>,
    held: HashMap<Arc<str>, VecDeque<u64>>,
}

/// Every channel of every app, with ids for the timers.
///
/// Invariant: `ids` maps each channel's id to its (app, name) and nothing else.
#[derive(Debug)]
pub(crate) struct Channels {
    by_app: HashMap<Arc<str>, AppChannels>,
    /// Keyed by ids handed out here, never by client input: a fast hash is safe.
    ids: FxHashMap<u64, (Arc<str>, Arc<str>)>,
    next_id: u64,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            by_app: HashMap::new(),
            ids: FxHashMap::default(),
            next_id: 1,
        }
    }
}

/// Why a channel could not be made: the app holds its maximum and none of them is empty.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AppFull;

impl Channels {
    pub(crate) fn get(&self, app: &str, name: &str) -> Option<&Channel> {
        self.by_app.get(app)?.channels.get(name)
    }

    pub(crate) fn get_mut(&mut self, app: &str, name: &str) -> Option<&mut Channel> {
        self.by_app.get_mut(app)?.channels.get_mut(name)
    }

    /// Makes room for one more channel in `app`, which may hold `max`: when it is full, the
    /// channel that has been empty longest ends (its id is returned); when none is empty,
    /// [`AppFull`].
    pub(crate) fn make_room(&mut self, app: &str, max: usize) -> Result<Option<u64>, AppFull> {
        let Some(a) = self.by_app.get(app) else {
            return if max == 0 { Err(AppFull) } else { Ok(None) };
        };
        if a.channels.len() < max {
            return Ok(None);
        }
        let (_, oldest) = *a.empty.first().ok_or(AppFull)?;
        self.remove(oldest);
        Ok(Some(oldest))
    }

    /// The channel, created empty if it does not exist (then `true`).
    pub(crate) fn get_or_create(&mut self, app: &str, name: &str) -> (&mut Channel, bool) {
        let app_key =
            (self.by_app.get_key_value(app)).map_or_else(|| Arc::from(app), |(k, _)| k.clone());
        let channels = &mut self.by_app.entry(app_key.clone()).or_default().channels;
        let key =
            (channels.get_key_value(name)).map_or_else(|| Arc::from(name), |(k, _)| k.clone());
        let mut created = false;
        let channel = channels.entry(key.clone()).or_insert_with(|| {
            created = true;
            let id = self.next_id;
            self.next_id += 1;
            self.ids.insert(id, (app_key, key));
            Channel::new(id, name)
        });
        (channel, created)
    }

    /// Adds a member (not yet in it) to a channel that exists; the channel is no longer held
    /// by whoever left it empty.
    pub(crate) fn add(&mut self, app: &str, name: &str, account: &Arc<str>, sid: SessionId) {
        let Some(a) = self.by_app.get_mut(app) else {
            return;
        };
        let Some(c) = a.channels.get_mut(name) else {
            return;
        };
        c.add(account, sid);
        if let Some((since, holder)) = c.emptied.take() {
            let id = c.id;
            a.unhold(since, &holder, id);
        }
    }

    /// The channel `name` is empty now and waits out its TTL, left so by `holder`, who may hold
    /// `max` such channels: returns the ids of the holder's oldest empty channels beyond that,
    /// which have been removed.
    pub(crate) fn left_empty(
        &mut self,
        app: &str,
        name: &str,
        holder: &Arc<str>,
        now: Instant,
        max: usize,
    ) -> Vec<u64> {
        let Some(a) = self.by_app.get_mut(app) else {
            return Vec::new();
        };
        let Some(c) = a.channels.get_mut(name) else {
            return Vec::new();
        };
        if c.special || !c.is_empty() || c.emptied.is_some() {
            return Vec::new();
        }
        c.emptied = Some((now, holder.clone()));
        let id = c.id;
        a.empty.insert((now, id));
        let held = a.held.entry(holder.clone()).or_default();
        held.push_back(id);
        let excess = held.len().saturating_sub(max);
        let evicted: Vec<u64> = held.iter().take(excess).copied().collect();
        for id in &evicted {
            self.remove(*id);
        }
        evicted
    }

    pub(crate) fn is_member(&self, app: &str, name: &str, account: &str) -> bool {
        self.get(app, name).is_some_and(|c| c.contains(account))
    }

    /// The (app, name) of the channel with this id, if it still exists.
    pub(crate) fn name_of(&self, id: u64) -> Option<(Arc<str>, Arc<str>)> {
        self.ids.get(&id).cloned()
    }

    /// Removes the channel with this id, if it exists.
    pub(crate) fn remove(&mut self, id: u64) {
        let Some((app, name)) = self.ids.remove(&id) else {
            return;
        };
        shrink_map(&mut self.ids);
        let Some(a) = self.by_app.get_mut(&app) else {
            return;
        };
        if let Some(c) = a.channels.remove(&name)
            && let Some((since, holder)) = c.emptied
        {
            a.unhold(since, &holder, id);
        }
        shrink_map(&mut a.channels);
        if a.channels.is_empty() {
            self.by_app.remove(&app);
            shrink_map(&mut self.by_app);
        }
    }

    /// Every channel of `app` with its member count, in no particular order.
    pub(crate) fn summaries(&self, app: &str) -> Vec<(&str, usize)> {
        (self
            .by_app
            .get(app)
            .into_iter()
            .flat_map(|a| a.channels.iter()))
        .map(|(name, c)| (&**name, c.len()))
        .collect()
    }

    /// Per app: its channels and the memberships summed over them.
    pub(crate) fn per_app(&self) -> impl Iterator<Item = (&str, usize, usize)> {
        (self.by_app.iter()).map(|(app, channels)| {
            let members = channels.channels.values().map(Channel::len).sum();
            (&**app, channels.channels.len(), members)
        })
    }

    /// Channels that exist in `app`.
    pub(crate) fn count(&self, app: &str) -> usize {
        self.by_app.get(app).map_or(0, |a| a.channels.len())
    }

    /// (channels, empty channels, attribute bytes) in every app.
    pub(crate) fn held(&self) -> (usize, usize, usize) {
        let mut held = (0, 0, 0);
        for a in self.by_app.values() {
            held.0 += a.channels.len();
            held.1 += a.empty.len();
            held.2 += a.channels.values().map(Channel::attr_bytes).sum::<usize>();
        }
        held
    }
}

impl AppChannels {
    /// Forgets that channel `id`, empty since `since`, is held by `holder`.
    fn unhold(&mut self, since: Instant, holder: &Arc<str>, id: u64) {
        self.empty.remove(&(since, id));
        if let Some(held) = self.held.get_mut(holder) {
            held.retain(|h| *h != id);
            shrink_deque(held);
            if held.is_empty() {
                self.held.remove(holder);
                shrink_map(&mut self.held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_keeps_join_order_and_the_ever_count() {
        let mut c = Channel::new(1, "c");
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        c.add(&a, SessionId(1));
        c.add(&b, SessionId(2));
        assert!(c.remove("a") && !c.remove("a"));
        c.add(&a, SessionId(3));
        assert_eq!(c.members().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(c.latest(1), ["a"]);
        assert_eq!(c.attrs_with_counts()[MEMBER_NUM], "2");
        assert_eq!(c.attrs_with_counts()[TOTAL_MEMBER_NUM], "2");
    }

    #[test]
    fn only_empty_ordinary_channels_expire() {
        let now = Instant::now();
        let mut c = Channel::new(1, "c");
        let max = Duration::from_secs(60);
        c.set_attr(CHANNEL_TTL, "5");
        let until = c.arm_ttl(now, Duration::ZERO, max).unwrap();
        assert_eq!(until, now + Duration::from_secs(5));
        assert!(c.expired(until) && !c.expired(now));
        c.set_attr(CHANNEL_TTL, "4294967295");
        assert_eq!(
            c.arm_ttl(now, Duration::ZERO, max),
            Some(now + max),
            "at most max"
        );
        c.add(&Arc::from("a"), SessionId(1));
        assert!(!c.expired(until) && c.arm_ttl(now, Duration::ZERO, max).is_none());
        let mut special = Channel::new(2, USER_ONLINE_CHANNEL);
        assert!(special.arm_ttl(now, Duration::ZERO, max).is_none());
    }

    #[test]
    fn auto_updates_report_only_changes() {
        let now = Instant::now();
        let mut c = Channel::new(1, "c");
        c.set_attr(AUTO_UPDATE_NUM, "2");
        let first = c.arm_auto_update(now).unwrap();
        assert_eq!(first, now + Duration::from_secs(2));
        c.add(&Arc::from("a"), SessionId(1));
        assert_eq!(
            c.auto_update_due(first),
            (vec![(MEMBER_NUM, 1)], Some(first + Duration::from_secs(2)))
        );
        let (reports, _) = c.auto_update_due(first + Duration::from_secs(2));
        assert!(
            reports.is_empty(),
            "unchanged counts are not reported again"
        );
        c.clear_attrs();
        assert_eq!(
            c.auto_update_due(first + Duration::from_secs(9)),
            (vec![], None)
        );
    }

    #[test]
    fn the_table_hands_out_ids_and_forgets_them() {
        let mut t = Channels::default();
        let (c, created) = t.get_or_create("app", "c");
        let id = c.id();
        assert!(created);
        assert!(!t.get_or_create("app", "c").1);
        assert_eq!(
            t.name_of(id).map(|(a, n)| (a.to_string(), n.to_string())),
            Some(("app".into(), "c".into()))
        );
        assert_eq!((t.count("app"), t.count("other")), (1, 0));
        t.remove(id);
        assert!(t.get("app", "c").is_none() && t.name_of(id).is_none());
        assert!(t.by_app.is_empty(), "an app without channels is forgotten");
    }

    #[test]
    fn attribute_bytes_follow_every_write() {
        let mut c = Channel::new(1, "c");
        c.set_attr("ab", "xyz");
        c.set_attr("é", "");
        assert_eq!(c.attr_bytes(), 5 + 2);
        assert_eq!(c.attr_bytes_with("ab", "x"), 3 + 2);
        c.set_attr("ab", "x");
        assert!(c.del_attr("é") && !c.del_attr("é"));
        assert_eq!(c.attr_bytes(), 3);
        c.clear_attrs();
        assert_eq!(c.attr_bytes(), 0);
    }

    #[test]
    fn empty_channels_are_held_by_who_left_them_and_the_oldest_go_first() {
        let now = Instant::now();
        let mut t = Channels::default();
        let mallory: Arc<str> = Arc::from("mallory");
        let mut ids = Vec::new();
        for i in 0..4 {
            let name = format!("c{i}");
            let (c, _) = t.get_or_create("app", &name);
            ids.push(c.id());
            let at = now + Duration::from_secs(i);
            assert_eq!(
                t.left_empty("app", &name, &mallory, at, 3),
                (i == 3).then_some(ids[0]).into_iter().collect::<Vec<_>>()
            );
        }
        assert_eq!(t.count("app"), 3);
        assert_eq!(t.held(), (3, 3, 0));
        // Joining an empty channel takes it off the holder's list.
        t.add("app", "c1", &Arc::from("bob"), SessionId(1));
        assert_eq!(t.held(), (3, 2, 0));
        // A full app ends the channel empty longest, then refuses.
        assert_eq!(t.make_room("app", 3), Ok(Some(ids[2])));
        assert_eq!(t.make_room("app", 3), Ok(None));
        t.get_or_create("app", "c9");
        assert_eq!(t.make_room("app", 3), Ok(Some(ids[3])));
        t.get_or_create("app", "c10");
        assert_eq!(t.make_room("app", 3), Err(AppFull));
        let a = &t.by_app["app"];
        assert!(a.held.is_empty() && a.empty.is_empty());
    }
}
