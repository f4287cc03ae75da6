//! Cluster mode's channels on Redis (see `docs/cluster.md`, "Channels").
//!
//! - **state**: a channel's keys share one hash tag, `beckon:chan:{<len(app)>:<app>:<channel>}`:
//!   `:members` (sorted set: account, scored by join order), `:sessions` (hash: account →
//!   `<node>/<instance>/<session>`), `:seq` (the join counter) and `:attrs` (hash: name →
//!   value). Joins, leaves and attribute writes are Lua scripts: each checks, writes and
//!   publishes its event in one step, so an event's place among the channel's events is the
//!   place of its write.
//! - **topics**: `beckon:chan:<len(app)>:<app>:<channel>` carries the channel's events (joins,
//!   leaves, messages, attribute changes); only nodes with members subscribe to it, and each
//!   hands what it receives to its own members. A channel message is one `PUBLISH`.
//! - **joins**: the node subscribes to the channel's topic before the join script runs, and the
//!   script publishes the joiner's answer (member list, attributes) on the node's own topic
//!   just before the join event: the subscription connection delivers both in order with the
//!   channel's events, so the new member gets every event after its join and none before.
//!
//! The operations of one channel run on one worker, in order (see `ClusterSender::send`).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use redis::Value;
use redis::aio::PubSubSink;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use beckon_broker::{ChannelAnswer, ChannelEvent, ChannelOp, ClusterIn};
use beckon_proto::ErrorCode;

use super::Node;

/// Members a join hands over (SPEC §7: the latest 200).
const JOIN_LIST_LEN: usize = 200;

/// The prefix of every channel topic.
const TOPIC_PREFIX: &str = "beckon:chan:";

/// Publishes `_agora_channel_event`'s message that `ARGV[1]` joined or left channel `name`
/// (`kind`: `channel_join`, `channel_leave`) on `topic`, unless `topic` is empty (a special
/// channel's members are not reported). The JSON has its keys sorted, as a single node
/// writes it; the receiving nodes number the message (id 0).
const CHANNEL_EVENT_FN: &str = r#"
local function channel_event(topic, kind, account, name)
  if topic == '' then return end
  local body = '{"account":' .. cjson.encode(account) .. ',"channel":' .. cjson.encode(name)
    .. ',"event":"' .. kind .. '"}'
  redis.call('PUBLISH', topic, cjson.encode({t = 'msg', sender = '_system', msg = body, id = 0}))
end
"#;

/// `KEYS`: members, sessions, seq, attrs, ever (a HyperLogLog of the accounts that ever
/// joined). `ARGV`: account, session entry, channel topic, node topic, instance, query, app,
/// channel, session, list length, `_agora_channel_event`'s topic (empty for a special
/// channel).
const JOIN_SCRIPT: &str = r"
local prev = redis.call('HGET', KEYS[2], ARGV[1])
local state = 'new'
if prev == ARGV[2] then state = 'same' elseif prev then state = 'again' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if state == 'new' then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], seq, ARGV[1])
end
redis.call('PERSIST', KEYS[4])
redis.call('PFADD', KEYS[5], ARGV[1])
redis.call('PERSIST', KEYS[5])
local total = redis.call('PFCOUNT', KEYS[5])
local count = redis.call('ZCARD', KEYS[1])
local members = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[10]) - 1)
local attrs = redis.call('HGETALL', KEYS[4])
redis.call('PUBLISH', ARGV[4], cjson.encode({type = 'chan_joined', instance = ARGV[5],
  query = ARGV[6], app = ARGV[7], channel = ARGV[8], account = ARGV[1], session = ARGV[9],
  count = count, total = total, members = members, attrs = attrs}))
redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'join', account = ARGV[1], count = count,
  total = total, again = (state ~= 'new')}))
if state == 'new' then channel_event(ARGV[11], 'channel_join', ARGV[1], ARGV[8]) end
return state
";

/// How long an emptied channel's attributes live: `_channel_ttl` seconds, else `ARGV[d]` ms,
/// at most `ARGV[m]` ms (`KEYS[a]`: the attributes).
const TTL_FN: &str = r"
local function ttl_of(attrs, default_ms, max_ms)
  local ttl = tonumber(default_ms)
  local set = tonumber(redis.call('HGET', attrs, '_channel_ttl') or '')
  if set then ttl = set * 1000 end
  return math.min(ttl, tonumber(max_ms))
end
local function expire(attrs, ttl)
  if ttl <= 0 then redis.call('DEL', attrs) else redis.call('PEXPIRE', attrs, ttl) end
end
";

/// `KEYS`: members, sessions, seq, attrs, ever. `ARGV`: account, session entry, channel topic,
/// default TTL ms, max TTL ms, `_agora_channel_event`'s topic (empty for a special channel),
/// channel. Returns the members left, or -1 when that session was not a member.
const LEAVE_SCRIPT: &str = r"
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
local count = redis.call('ZCARD', KEYS[1])
if count == 0 then
  redis.call('DEL', KEYS[3])
  -- A special channel (no channel-event topic) never expires.
  if ARGV[6] ~= '' then
    local ttl = ttl_of(KEYS[4], ARGV[4], ARGV[5])
    expire(KEYS[4], ttl)
    expire(KEYS[5], ttl)
  end
end
redis.call('PUBLISH', ARGV[3], cjson.encode({t = 'leave', account = ARGV[1], count = count}))
channel_event(ARGV[6], 'channel_leave', ARGV[1], ARGV[7])
return count
";

/// `KEYS`: attrs, rate (the messages of the current second). `ARGV`: channel topic, the
/// message as published, the default messages per second. Publishes the message unless the
/// channel's rate (`_sendmsg_limit`, else the default) is used up this second, over the whole
/// cluster; returns 0, or the rate that refused it.
const SEND_SCRIPT: &str = r"
local limit = tonumber(redis.call('HGET', KEYS[1], '_sendmsg_limit') or '')
if not limit or limit <= 0 then limit = tonumber(ARGV[3]) end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], 1000) end
if n > limit then return limit end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 0
";

/// `KEYS`: members, attrs. `ARGV`: name, value, max attributes, max bytes, default TTL ms, max
/// TTL ms, channel topic, `1` for a special channel (which never expires). Returns `ok`, or
/// why the write was refused.
/// Counts an attribute write against the channel's `_setattr_limit` (none by default) in
/// Redis, over the whole cluster: `nil`, or `rate <limit>` when this second's are used up.
const ATTR_RATE_FN: &str = r"
local function attr_rate(attrs, rate)
  local limit = tonumber(redis.call('HGET', attrs, '_setattr_limit') or '')
  if not limit or limit <= 0 then return nil end
  local n = redis.call('INCR', rate)
  if n == 1 then redis.call('PEXPIRE', rate, 1000) end
  if n > limit then return 'rate ' .. limit end
  return nil
end
";

const SET_ATTR_SCRIPT: &str = r"
local all = redis.call('HGETALL', KEYS[2])
local exists = false
local bytes = #ARGV[1] + #ARGV[2]
for i = 1, #all, 2 do
  if all[i] == ARGV[1] then exists = true else bytes = bytes + #all[i] + #all[i + 1] end
end
if not exists and #all / 2 >= tonumber(ARGV[3]) then return 'attrs' end
if bytes > tonumber(ARGV[4]) then return 'bytes ' .. bytes end
local refused = attr_rate(KEYS[2], KEYS[3])
if refused then return refused end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 and ARGV[8] ~= '1' then
  expire(KEYS[2], ttl_of(KEYS[2], ARGV[5], ARGV[6]))
end
redis.call('PUBLISH', ARGV[7], cjson.encode({t = 'attr', name = ARGV[1], value = ARGV[2],
  kind = 'update'}))
return 'ok'
";

/// `KEYS`: attrs. `ARGV`: name, channel topic.
const DEL_ATTR_SCRIPT: &str = r"
local refused = attr_rate(KEYS[1], KEYS[2])
if refused then return refused end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], cjson.encode({t = 'attr', name = ARGV[1], value = '',
    kind = 'del'}))
end
return 'ok'
";

/// `KEYS`: members, attrs. `ARGV`: channel topic.
const CLEAR_ATTR_SCRIPT: &str = r"
local refused = attr_rate(KEYS[2], KEYS[3])
if refused then return refused end
local had = redis.call('DEL', KEYS[2])
if had == 1 or redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], cjson.encode({t = 'attr', name = '', value = '',
    kind = 'clear'}))
end
return 'ok'
";

/// `KEYS`: members. `ARGV`: how many, at most how many bytes (as the JSON answer spells each,
/// quotes aside). The count, the latest members (latest first), and 0 — or, when they would
/// take more bytes, no list and how many fitted plus one.
const USERS_SCRIPT: &str = r"
local num = redis.call('ZCARD', KEYS[1])
local want = math.min(tonumber(ARGV[1]), num)
local max_bytes = tonumber(ARGV[2])
local list, bytes, start = {}, 64, 0
while start < want do
  local stop = math.min(start + 999, want - 1)
  for _, a in ipairs(redis.call('ZREVRANGE', KEYS[1], start, stop)) do
    bytes = bytes + #a + 6
    if bytes > max_bytes then return {num, {}, #list + 1} end
    list[#list + 1] = a
  end
  start = stop + 1
end
return {num, list, 0}
";

/// Members of one channel on this node: (account, session).
type Local = HashSet<(String, u64)>;

/// The channel topics this node is subscribed to, with its members of each (a set, so that a
/// leave repeated or a join repeated counts once), and the sink of its subscription
/// connection (while it is connected).
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    topics: Mutex<HashMap<String, Local>>,
    sink: Mutex<Option<PubSubSink>>,
}

impl Subscriptions {
    fn sink(&self) -> Option<PubSubSink> {
        self.sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// This node's members of the channel, when it is subscribed to it.
    fn members(&self, topic: &str) -> Option<usize> {
        (self.topics.lock().unwrap_or_else(PoisonError::into_inner))
            .get(topic)
            .map(HashSet::len)
    }

    /// Records the topic (with no member yet), if it is not.
    fn track(&self, topic: &str) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.entry(topic.to_owned()).or_default();
    }

    fn add(&self, topic: &str, account: &str, session: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let local = topics.entry(topic.to_owned()).or_default();
        local.insert((account.to_owned(), session));
    }

    /// Takes a member out; how many are left.
    fn remove(&self, topic: &str, account: &str, session: u64) -> usize {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(local) = topics.get_mut(topic) else {
            return 0;
        };
        local.remove(&(account.to_owned(), session));
        local.len()
    }

    /// The subscription connection (re)connected: every channel topic with members here is
    /// subscribed again on it, and it takes the new subscriptions from now on.
    pub(crate) async fn connected(&self, mut sink: PubSubSink) -> Result<(), String> {
        let topics: Vec<String> = (self.topics.lock().unwrap_or_else(PoisonError::into_inner))
            .keys()
            .cloned()
            .collect();
        if !topics.is_empty() {
            sink.subscribe(&topics).await.map_err(|e| e.to_string())?;
        }
        *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        Ok(())
    }

    /// The subscription connection is gone.
    pub(crate) fn disconnected(&self) {
        *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The hash tag of a channel's keys; the app's length keeps app and channel apart whatever
/// they contain.
fn tag(app: &str, channel: &str) -> String {
    format!("{{{}:{app}:{channel}}}", app.len())
}

fn key(app: &str, channel: &str, what: &str) -> String {
    format!("beckon:chan:{}:{what}", tag(app, channel))
}

fn topic(app: &str, channel: &str) -> String {
    format!("{TOPIC_PREFIX}{}:{app}:{channel}", app.len())
}

/// Where joins and leaves of `channel` are reported: `_agora_channel_event`'s topic, or
/// nowhere ("") for a special channel.
fn channel_event_topic(app: &str, channel: &str) -> String {
    if beckon_proto::validate::is_special_channel(channel) {
        String::new()
    } else {
        topic(app, beckon_broker::CHANNEL_EVENT_CHANNEL)
    }
}

/// (app, channel) of a channel topic.
fn parse_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix(TOPIC_PREFIX)?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let app = rest.get(..len)?;
    let channel = rest.get(len..)?.strip_prefix(':')?;
    Some((app, channel))
}

/// What the failure of a channel operation's Redis command says to the caller.
fn unreachable(node: &Node, e: &str) -> (ErrorCode, String) {
    node.health.failed(e);
    (
        ErrorCode::GeneralFailed,
        format!("the cluster's Redis is unreachable ({e}); nothing was changed, try again later"),
    )
}

/// An event on a channel topic, as the scripts and the message publisher write it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    Join {
        account: String,
        count: usize,
        #[serde(default)]
        total: usize,
        again: bool,
    },
    Leave {
        account: String,
        count: usize,
    },
    Msg {
        sender: String,
        msg: String,
        id: u64,
    },
    Attr {
        name: String,
        value: String,
        kind: String,
    },
}

/// A join's answer on the joining node's topic (written by the join script).
#[derive(Debug, Deserialize)]
struct Joined {
    #[serde(rename = "type")]
    kind: String,
    instance: String,
    query: String,
    app: String,
    channel: String,
    account: String,
    session: String,
    count: usize,
    #[serde(default)]
    total: usize,
    /// Latest first; `{}` when empty (Lua's JSON encoder cannot tell an empty list).
    members: serde_json::Value,
    /// Flat name, value pairs; `{}` when empty.
    attrs: serde_json::Value,
}

fn strings(v: serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What a message on one of this node's subscriptions says about channels: `None` when it is
/// not about channels (a node topic's other messages).
pub(crate) fn input(node: &Node, topic: &str, payload: &[u8]) -> Option<Option<ClusterIn>> {
    if let Some((app, channel)) = parse_topic(topic) {
        let event = match serde_json::from_slice::<Wire>(payload) {
            Ok(Wire::Join {
                account,
                count,
                total,
                again,
            }) => ChannelEvent::Joined {
                account,
                count,
                total,
                again,
            },
            Ok(Wire::Leave { account, count }) => ChannelEvent::Left { account, count },
            Ok(Wire::Msg { sender, msg, id }) => ChannelEvent::Message { sender, msg, id },
            Ok(Wire::Attr { name, value, kind }) => ChannelEvent::Attr { name, value, kind },
            Err(e) => {
                warn!(error = %e, %topic, "cluster: a channel event this node does not understand");
                return Some(None);
            }
        };
        return Some(Some(ClusterIn::ChannelEvent {
            app: app.to_owned(),
            channel: channel.to_owned(),
            event,
        }));
    }
    let joined: Joined = serde_json::from_slice(payload).ok()?;
    if joined.kind != "chan_joined" {
        return None;
    }
    if joined.instance != node.instance {
        return Some(None); // For an earlier run of this node.
    }
    let (Ok(query), Ok(session)) = (joined.query.parse(), joined.session.parse()) else {
        return Some(None);
    };
    let mut members = strings(joined.members);
    members.reverse();
    let flat = strings(joined.attrs);
    let attrs = flat
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    Some(Some(ClusterIn::ChannelJoined {
        query,
        app: joined.app,
        channel: joined.channel,
        account: joined.account,
        session,
        count: joined.count,
        total: joined.total,
        members,
        attrs,
    }))
}

/// Carries out one channel operation; the broker's answer, when it waits for one.
pub(crate) async fn run(
    node: &Node,
    query: Option<u64>,
    app: String,
    channel: String,
    op: ChannelOp,
) -> Option<ClusterIn> {
    let result = match op {
        ChannelOp::Join { account, session } => {
            join(node, query.unwrap_or(0), &app, &channel, &account, session).await
        }
        ChannelOp::Leave {
            account,
            session,
            ttl_ms,
            max_ttl_ms,
        } => {
            leave(
                node,
                query.is_none(),
                &app,
                &channel,
                &account,
                session,
                ttl_ms,
                max_ttl_ms,
            )
            .await
        }
        ChannelOp::Send {
            sender,
            msg,
            id,
            per_second,
        } => {
            let payload = message_payload(&sender, &msg, id);
            let Some(per_second) = per_second else {
                let mut publish = redis::cmd("PUBLISH");
                publish.arg(topic(&app, &channel)).arg(payload);
                let result = ok_done(node, node.run::<Value>(&publish).await);
                return query.map(|query| ClusterIn::ChannelDone { query, result });
            };
            let mut eval = redis::cmd("EVAL");
            eval.arg(SEND_SCRIPT)
                .arg(2)
                .arg(key(&app, &channel, "attrs"))
                .arg(key(&app, &channel, "rate"))
                .arg(topic(&app, &channel))
                .arg(payload)
                .arg(per_second);
            match answered(node, node.run::<u64>(&eval).await) {
                Ok(0) => Ok(ChannelAnswer::Done),
                Ok(limit) => Err((
                    ErrorCode::SendMessageRateLimit,
                    format!("{channel} allows {limit} messages per second"),
                )),
                Err(e) => Err(e),
            }
        }
        ChannelOp::SetAttr {
            name,
            value,
            max_attrs,
            max_bytes,
            ttl_ms,
            max_ttl_ms,
        } => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(format!("{TTL_FN}{ATTR_RATE_FN}{SET_ATTR_SCRIPT}"))
                .arg(3)
                .arg(key(&app, &channel, "members"))
                .arg(key(&app, &channel, "attrs"))
                .arg(key(&app, &channel, "attr_rate"))
                .arg(&name)
                .arg(&value)
                .arg(max_attrs)
                .arg(max_bytes)
                .arg(ttl_ms)
                .arg(max_ttl_ms)
                .arg(topic(&app, &channel))
                .arg(if channel_event_topic(&app, &channel).is_empty() {
                    "1"
                } else {
                    "0"
                });
            match node.run::<String>(&eval).await {
                Ok(r) if r == "ok" => ok_done(node, Ok(())),
                Ok(r) if r.starts_with("rate ") => Err(attr_rate_refused(&channel, &r)),
                Ok(r) if r == "attrs" => Err((
                    ErrorCode::GeneralFailed,
                    format!("a channel may hold at most {max_attrs} attributes"),
                )),
                Ok(r) => Err((
                    ErrorCode::GeneralFailed,
                    format!(
                        "{channel}'s attributes would take {} bytes; a channel holds at most \
                         {max_bytes} bytes of attribute names and values",
                        r.trim_start_matches("bytes ")
                    ),
                )),
                Err(e) => Err(unreachable(node, &e)),
            }
        }
        ChannelOp::DelAttr { name } => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(format!("{ATTR_RATE_FN}{DEL_ATTR_SCRIPT}"))
                .arg(2)
                .arg(key(&app, &channel, "attrs"))
                .arg(key(&app, &channel, "attr_rate"))
                .arg(&name)
                .arg(topic(&app, &channel));
            attr_written(node, &channel, node.run::<String>(&eval).await)
        }
        ChannelOp::ClearAttr => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(format!("{ATTR_RATE_FN}{CLEAR_ATTR_SCRIPT}"))
                .arg(3)
                .arg(key(&app, &channel, "members"))
                .arg(key(&app, &channel, "attrs"))
                .arg(key(&app, &channel, "attr_rate"))
                .arg(topic(&app, &channel));
            attr_written(node, &channel, node.run::<String>(&eval).await)
        }
        ChannelOp::Num => {
            let mut zcard = redis::cmd("ZCARD");
            zcard.arg(key(&app, &channel, "members"));
            answered(node, node.run::<usize>(&zcard).await).map(ChannelAnswer::Num)
        }
        ChannelOp::IsIn { account } => {
            let mut zscore = redis::cmd("ZSCORE");
            zscore.arg(key(&app, &channel, "members")).arg(&account);
            answered(node, node.run::<Option<f64>>(&zscore).await)
                .map(|s| ChannelAnswer::IsIn(s.is_some()))
        }
        ChannelOp::Users { max, max_bytes } => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(USERS_SCRIPT)
                .arg(1)
                .arg(key(&app, &channel, "members"))
                .arg(max)
                .arg(max_bytes);
            match answered(node, node.run::<(usize, Vec<String>, usize)>(&eval).await) {
                Ok((num, mut list, 0)) => {
                    list.reverse();
                    Ok(ChannelAnswer::Users { num, list })
                }
                Ok((_, _, over)) => Err((
                    ErrorCode::GeneralLargeParam,
                    format!(
                        "the {over} latest members of {channel} take more bytes than one answer \
                         carries ({max_bytes} bytes); ask for fewer with \"num\""
                    ),
                )),
                Err(e) => Err(e),
            }
        }
    };
    query.map(|query| ClusterIn::ChannelDone { query, result })
}

/// `_setattr_limit` refused a write (`rate <limit>` from the script).
fn attr_rate_refused(channel: &str, r: &str) -> (ErrorCode, String) {
    let limit = r.trim_start_matches("rate ");
    (
        ErrorCode::GeneralFailed,
        format!("{channel} allows {limit} attribute updates per second"),
    )
}

/// What an attribute script's answer (`ok` or `rate <limit>`) says to the writer.
fn attr_written(
    node: &Node,
    channel: &str,
    r: Result<String, String>,
) -> Result<ChannelAnswer, (ErrorCode, String)> {
    match answered(node, r)? {
        r if r.starts_with("rate ") => Err(attr_rate_refused(channel, &r)),
        _ => Ok(ChannelAnswer::Done),
    }
}

fn answered<T>(node: &Node, r: Result<T, String>) -> Result<T, (ErrorCode, String)> {
    match r {
        Ok(v) => {
            node.health.ok();
            Ok(v)
        }
        Err(e) => Err(unreachable(node, &e)),
    }
}

fn ok_done<T>(node: &Node, r: Result<T, String>) -> Result<ChannelAnswer, (ErrorCode, String)> {
    answered(node, r).map(|_| ChannelAnswer::Done)
}

/// The sink of the node's subscription connection, waiting up to one command's timeout for it
/// while it is being made (a node that has just started, or a reconnect under way), so a join
/// in that moment is not refused.
async fn subscription(node: &Node) -> Option<PubSubSink> {
    let deadline = tokio::time::Instant::now() + node.config.redis_timeout;
    loop {
        if let Some(sink) = node.subscriptions.sink() {
            return Some(sink);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Subscribes the node to the channel's topic (if it is not yet), then writes the membership;
/// the answer itself arrives on the subscription.
async fn join(
    node: &Node,
    query: u64,
    app: &str,
    channel: &str,
    account: &str,
    session: u64,
) -> Result<ChannelAnswer, (ErrorCode, String)> {
    let topic = topic(app, channel);
    let subs = &node.subscriptions;
    let had = subs.members(&topic);
    if had.is_none() {
        let Some(mut sink) = subscription(node).await else {
            return Err((
                ErrorCode::GeneralFailed,
                "this node's subscription to the cluster's Redis is down; try again later".into(),
            ));
        };
        // Recorded first, so that a resubscription after a reconnect includes it.
        subs.track(&topic);
        if let Err(e) = sink.subscribe(&topic).await {
            drop_topic(node, &topic).await;
            return Err(unreachable(node, &e.to_string()));
        }
    }
    let entry = super::presence_value(&node.config.node_id, &node.instance, session);
    let mut eval = redis::cmd("EVAL");
    eval.arg(format!("{CHANNEL_EVENT_FN}{JOIN_SCRIPT}"))
        .arg(5)
        .arg(key(app, channel, "members"))
        .arg(key(app, channel, "sessions"))
        .arg(key(app, channel, "seq"))
        .arg(key(app, channel, "attrs"))
        .arg(key(app, channel, "ever"))
        .arg(account)
        .arg(&entry)
        .arg(&topic)
        .arg(super::node_topic(&node.config.node_id))
        .arg(&node.instance)
        .arg(query.to_string())
        .arg(app)
        .arg(channel)
        .arg(session.to_string())
        .arg(JOIN_LIST_LEN)
        .arg(channel_event_topic(app, channel));
    match node.run::<String>(&eval).await {
        Ok(_) => {
            node.health.ok();
            subs.add(&topic, account, session);
            Ok(ChannelAnswer::Done)
        }
        Err(e) => {
            if subs.members(&topic) == Some(0) {
                drop_topic(node, &topic).await;
            }
            Err(unreachable(node, &e))
        }
    }
}

/// Takes a member out; `forced`: the member is gone from this node whatever Redis says (its
/// session ended), so it no longer counts here either way.
#[allow(clippy::too_many_arguments)]
async fn leave(
    node: &Node,
    forced: bool,
    app: &str,
    channel: &str,
    account: &str,
    session: u64,
    ttl_ms: u64,
    max_ttl_ms: u64,
) -> Result<ChannelAnswer, (ErrorCode, String)> {
    let topic = topic(app, channel);
    let entry = super::presence_value(&node.config.node_id, &node.instance, session);
    let result = leave_script(node, app, channel, account, &entry, ttl_ms, max_ttl_ms).await;
    if let Err(e) = &result {
        warn!(error = %e, app, channel, account, "cluster: could not take a member out of a channel");
    }
    if (result.is_ok() || forced) && node.subscriptions.remove(&topic, account, session) == 0 {
        drop_topic(node, &topic).await;
    }
    answered(node, result).map(|_| ChannelAnswer::Done)
}

/// Runs the leave script: `account` leaves if `entry` is its membership.
async fn leave_script(
    node: &Node,
    app: &str,
    channel: &str,
    account: &str,
    entry: &str,
    ttl_ms: u64,
    max_ttl_ms: u64,
) -> Result<i64, String> {
    let mut eval = redis::cmd("EVAL");
    eval.arg(format!("{TTL_FN}{CHANNEL_EVENT_FN}{LEAVE_SCRIPT}"))
        .arg(5)
        .arg(key(app, channel, "members"))
        .arg(key(app, channel, "sessions"))
        .arg(key(app, channel, "seq"))
        .arg(key(app, channel, "attrs"))
        .arg(key(app, channel, "ever"))
        .arg(account)
        .arg(entry)
        .arg(topic(app, channel))
        .arg(ttl_ms)
        .arg(max_ttl_ms)
        .arg(channel_event_topic(app, channel))
        .arg(channel);
    node.run::<i64>(&eval).await
}

/// Channels one sweep round looks at, at most.
const SWEEP_CHANNELS: usize = 32;

/// Members one sweep looks at in one channel, at most.
const SWEEP_MEMBERS: usize = 10_000;

/// How long an emptied channel's attributes live when a sweep empties it (the driver does
/// not know the app's setting; `_channel_ttl` still wins, within the default maximum).
const SWEEP_TTL_MS: u64 = 7_200_000;
const SWEEP_MAX_TTL_MS: u64 = 24 * 3_600_000;

/// Takes the members of dead nodes out of the channels this node has members of: every
/// `node_ttl`, up to [`SWEEP_CHANNELS`] of them in turn. A member is dead when its entry names
/// an instance that is not its node's registered one (the node's registration expired, or
/// the node restarted), as for presence; members of this node's running instance are never
/// taken. Members on every node hear them leave.
pub(super) async fn sweep_dead_members(node: std::sync::Arc<Node>) {
    let mut tick = tokio::time::interval(node.config.node_ttl);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0usize;
    loop {
        tick.tick().await;
        let mut topics: Vec<String> = (node
            .subscriptions
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
        .keys()
        .cloned()
        .collect();
        if topics.is_empty() {
            continue;
        }
        topics.sort_unstable();
        let n = topics.len().min(SWEEP_CHANNELS);
        for i in 0..n {
            if let Some((app, channel)) = parse_topic(&topics[(next + i) % topics.len()]) {
                sweep(&node, app, channel).await;
            }
        }
        next = (next + n) % topics.len();
    }
}

/// Sweeps one channel (see [`sweep_dead_members`]).
async fn sweep(node: &Node, app: &str, channel: &str) {
    let sessions = key(app, channel, "sessions");
    let mut alive: HashMap<String, Option<String>> = HashMap::new();
    let (mut cursor, mut seen) = (0u64, 0usize);
    loop {
        let mut hscan = redis::cmd("HSCAN");
        hscan.arg(&sessions).arg(cursor).arg("COUNT").arg(500);
        let Ok((next, flat)) = node.run::<(u64, Vec<String>)>(&hscan).await else {
            return; // Redis is unreachable: the next round tries again.
        };
        for pair in flat.chunks_exact(2) {
            let (account, entry) = (&pair[0], &pair[1]);
            let Some((held_on, instance, _)) = super::parse_presence(entry) else {
                continue;
            };
            if held_on == node.config.node_id && instance == node.instance {
                continue;
            }
            if !alive.contains_key(held_on) {
                let mut get = redis::cmd("GET");
                get.arg(super::node_key(held_on));
                let Ok(registered) = node.run::<Option<String>>(&get).await else {
                    return;
                };
                alive.insert(held_on.to_owned(), registered);
            }
            if alive.get(held_on).and_then(Option::as_deref) == Some(instance) {
                continue;
            }
            match leave_script(
                node,
                app,
                channel,
                account,
                entry,
                SWEEP_TTL_MS,
                SWEEP_MAX_TTL_MS,
            )
            .await
            {
                Ok(n) if n >= 0 => {
                    debug!(
                        app,
                        channel,
                        account,
                        node = held_on,
                        "cluster: a dead node's member left"
                    );
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        seen += flat.len() / 2;
        cursor = next;
        if cursor == 0 || seen >= SWEEP_MEMBERS {
            return;
        }
    }
}

/// Forgets a topic without members here and unsubscribes from it.
async fn drop_topic(node: &Node, topic: &str) {
    let subs = &node.subscriptions;
    (subs.topics.lock().unwrap_or_else(PoisonError::into_inner)).remove(topic);
    // A failure needs nothing more: the connection is gone (a new one subscribes only to the
    // topics recorded), or it is shutting down.
    if let Some(mut sink) = subs.sink()
        && let Err(e) = sink.unsubscribe(topic).await
    {
        debug!(error = %e, %topic, "cluster: could not unsubscribe from a channel");
    }
}

/// A channel message as published.
fn message_payload(sender: &str, msg: &str, id: u64) -> Vec<u8> {
    let wire = Wire::Msg {
        sender: sender.to_owned(),
        msg: msg.to_owned(),
        id,
    };
    serde_json::to_vec(&wire).expect("a message serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_keep_app_and_channel_apart() {
        assert_eq!(parse_topic(&topic("a:b", "c")), Some(("a:b", "c")));
        assert_eq!(parse_topic(&topic("a", "b:c")), Some(("a", "b:c")));
        assert_ne!(topic("a:b", "c"), topic("a", "b:c"));
        assert_ne!(key("a:b", "c", "members"), key("a", "b:c", "members"));
        assert_eq!(parse_topic("beckon:node:x"), None);
        assert_eq!(parse_topic("beckon:chan:99:a:b"), None);
    }

    #[test]
    fn a_repeated_join_or_leave_counts_once() {
        let subs = Subscriptions::default();
        assert_eq!(subs.members("t"), None);
        subs.track("t");
        assert_eq!(subs.members("t"), Some(0));
        subs.add("t", "alice", 1);
        subs.add("t", "alice", 1);
        subs.add("t", "bob", 2);
        assert_eq!(subs.members("t"), Some(2));
        assert_eq!(subs.remove("t", "alice", 1), 1);
        assert_eq!(
            subs.remove("t", "alice", 1),
            1,
            "a second leave changes nothing"
        );
        assert_eq!(
            subs.remove("t", "bob", 9),
            1,
            "another session's leave neither"
        );
        assert_eq!(subs.remove("t", "bob", 2), 0);
        assert_eq!(subs.remove("gone", "bob", 2), 0);
    }

    #[test]
    fn a_message_round_trips() {
        let payload = message_payload("alice", "hi", u64::MAX);
        match serde_json::from_slice::<Wire>(&payload).unwrap() {
            Wire::Msg { sender, msg, id } => {
                assert_eq!(
                    (sender.as_str(), msg.as_str(), id),
                    ("alice", "hi", u64::MAX)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
