//! The broker's side of storage: the batch being built, the batches its driver is carrying
//! out, and what each answer continues — a request's reply, a session's portion of stored
//! messages, its `_conn_timeout`.
//!
//! Nothing here waits: an operation goes into the batch with a note of what to do with its
//! answer, and the broker carries on with other inputs until the driver brings the answer back
//! (`handle_store_done`). Whatever the answer makes true (a message is stored, an attribute is
//! set) is only told to a client then.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use beckon_proto::pb::{self, reply};
use beckon_proto::{CallError, CallResult, ErrorCode, validate};

use super::{Broker, Caller};
use crate::SessionId;
use crate::admin::RequestKind;
use crate::config::AppConfig;
use crate::invoke::{self, Response};
use crate::offline;
use crate::store::{
    QueueLimit, Recovered, Store, StoreAnswer, StoreBatch, StoreDone, StoreError, StoreOp,
    StoredMessage,
};

/// The batch being built and the batches handed out, oldest first.
#[derive(Debug)]
pub(super) struct Storage {
    next_batch: u64,
    ops: Vec<StoreOp>,
    then: Vec<Then>,
    handed_out: VecDeque<(u64, Vec<Then>)>,
    /// How many operations recent batches held: the larger of the last batch and half the
    /// previous hint, so a burst's room is given back a few batches after it.
    room: usize,
    /// The position the next accepted message gets (positions start at 1).
    next_position: u64,
    /// Accounts a graceful shutdown found online → the end of their restart window (Unix ms).
    windows: HashMap<(String, String), u64>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            next_batch: 1,
            ops: Vec::new(),
            then: Vec::new(),
            handed_out: VecDeque::new(),
            room: 0,
            next_position: 1,
            windows: HashMap::new(),
        }
    }
}

/// What an operation's answer continues.
#[derive(Debug)]
pub(super) enum Then {
    Nothing,
    /// The reply to request `request` of session `sid`, tallied under `kind` for `app`.
    Answer {
        sid: SessionId,
        request: u64,
        via: Via,
        awaited: Awaited,
        tally: Option<(Arc<AppConfig>, RequestKind)>,
    },
    /// A session's read of its stored messages. Every position below `below` was handed out
    /// before the read was issued, so the read saw each of them that is stored.
    Portion {
        sid: SessionId,
        below: u64,
        /// A rescan (see `Inbox::rescan`): every stored message not held by the session is
        /// handed over, whatever its position; the cursor stays.
        rescan: bool,
    },
    /// A session's `_conn_timeout`, read at login.
    ConnTimeout {
        sid: SessionId,
    },
}

/// How a request asked: its reply is a `Reply` result, or an `invoke` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Via {
    Request,
    Invoke,
}

/// What a request waits for.
#[derive(Debug)]
pub(super) enum Awaited {
    /// A p2p message's write-ahead record at `position`; `online`: its recipient had a session
    /// (counted as delivered, else as stored and in the offline ledger); `limit`: the queue
    /// bound it was written under.
    Sent {
        recipient: String,
        online: bool,
        limit: Option<QueueLimit>,
        position: u64,
        /// In a cluster, for an account without a session on this node: once stored, the
        /// node holding the account's session (if any) is told to read its queue (the app).
        notify: Option<String>,
    },
    /// An attribute write; `conn_timeout`: the value, when it is the grace period's.
    AttrSet {
        max_attrs: usize,
        conn_timeout: Option<Option<String>>,
    },
    AttrRead,
    AttrsRead,
}

/// What a store (or cluster) answer makes of a request, before it is shaped for its `Via`.
pub(super) enum Answered {
    Done,
    /// Whether an account is online.
    Status(bool),
    Value(String),
    Attrs(Vec<(String, String)>),
}

impl<S: Store> Broker<S> {
    // ---- the driver's side ----------------------------------------------------------------

    /// Takes up where the store left off after a restart: positions continue above every
    /// stored one, and accounts a graceful shutdown found online get their restart window.
    /// Call it once, before the first input, with what [`Store::recover`] returned.
    pub fn recovered(&mut self, r: Recovered) {
        let st = &mut self.storage;
        st.next_position = st.next_position.max(r.next_position).max(1);
        st.windows.extend(
            r.windows
                .into_iter()
                .map(|(app, account, until)| ((app, account), until)),
        );
    }

    /// The store operations since the last call, as one batch to carry out on the store; then
    /// hand its answers to [`handle_store_done`](Self::handle_store_done). Batches must be
    /// answered in the order they were taken. `None` when there is nothing to do.
    #[must_use]
    pub fn poll_store(&mut self) -> Option<StoreBatch> {
        let st = &mut self.storage;
        if st.ops.is_empty() {
            return None;
        }
        let id = st.next_batch;
        st.next_batch += 1;
        st.room = (st.room / 2).max(st.ops.len());
        st.handed_out.push_back((id, std::mem::take(&mut st.then)));
        Some(StoreBatch {
            id,
            ops: std::mem::take(&mut st.ops),
        })
    }

    /// A batch from [`poll_store`](Self::poll_store) was carried out: what waited for it goes
    /// on (replies, stored messages delivered, and perhaps new store operations).
    pub fn handle_store_done(&mut self, done: StoreDone) {
        let Some(pos) = self
            .storage
            .handed_out
            .iter()
            .position(|(id, _)| *id == done.id)
        else {
            return; // Not a batch of ours, or answered already.
        };
        debug_assert_eq!(pos, 0, "batches are answered in order");
        let Some((_, thens)) = self.storage.handed_out.remove(pos) else {
            return;
        };
        let answers: Vec<Result<StoreAnswer, StoreError>> = match done.answers {
            Ok(answers) if answers.len() == thens.len() => answers,
            Ok(answers) => {
                let e = StoreError::Corrupt(format!(
                    "the store answered {} of {} operations",
                    answers.len(),
                    thens.len()
                ));
                thens.iter().map(|_| Err(e.again())).collect()
            }
            // Each operation counts the failure (the store logged it once, with its detail).
            Err(e) => thens.iter().map(|_| Err(e.again())).collect(),
        };
        for (then, answer) in thens.into_iter().zip(answers) {
            self.continue_with(then, answer);
        }
    }

    /// Whether every batch handed out has been answered and nothing waits to be handed out.
    pub fn store_idle(&self) -> bool {
        self.storage.ops.is_empty() && self.storage.handed_out.is_empty()
    }

    // ---- inside the broker -------------------------------------------------------------------

    pub(super) fn store_op(&mut self, op: StoreOp, then: Then) {
        let st = &mut self.storage;
        if st.ops.capacity() == 0 {
            // A batch starts with room for twice what recent batches held: a busy broker's
            // batches hold hundreds of operations, and growing them by doubling copies each
            // one again and again. Nothing is reserved while there is nothing to store.
            st.ops.reserve(st.room * 2);
            st.then.reserve(st.room * 2);
        }
        st.ops.push(op);
        st.then.push(then);
    }

    /// The position the next message accepted gets.
    pub(super) fn next_position(&self) -> u64 {
        self.storage.next_position
    }

    /// The position of a message being accepted.
    pub(super) fn take_position(&mut self) -> u64 {
        let p = self.storage.next_position;
        self.storage.next_position += 1;
        p
    }

    /// The bound of an account's queue while it has a session: what the session may hold, and
    /// never less than an offline account may be kept.
    pub(super) fn session_queue_limit(&self, app: &AppConfig) -> QueueLimit {
        QueueLimit {
            messages: self
                .config
                .max_unacked_events
                .max(app.offline.max_per_account),
            bytes: self.config.max_unacked_bytes,
        }
    }

    /// The bound of an offline account's queue: the app's offline cap, or, in the restart
    /// window of an account that was online at a graceful shutdown, a session's bound.
    pub(super) fn offline_queue_limit(&mut self, app: &AppConfig, account: &str) -> QueueLimit {
        let key = (app.app_id.clone(), account.to_owned());
        if let Some(until) = self.storage.windows.get(&key).copied() {
            if self.unix_ms(self.now) < until {
                return self.session_queue_limit(app);
            }
            self.storage.windows.remove(&key);
        }
        QueueLimit {
            messages: app.offline.max_per_account,
            bytes: usize::MAX,
        }
    }

    /// The account logged in: its restart window, if any, has served.
    pub(super) fn close_window(&mut self, app: &str, account: &str) {
        if !self.storage.windows.is_empty() {
            self.storage
                .windows
                .remove(&(app.to_owned(), account.to_owned()));
        }
    }

    /// Reads the session's next portion of stored messages if it is behind, has no read under
    /// way, and has acknowledged most of what it holds (so each read moves a large portion);
    /// a portion fills the session to half its bound.
    pub(super) fn top_up(&mut self, sid: SessionId) {
        let c = &self.config;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let inbox = &s.inbox;
        if inbox.reading
            || inbox.failed
            || s.logging_out.is_some()
            || !(inbox.behind
                || inbox.tail > inbox.cursor
                || inbox.rescan_pending
                || inbox.rescan.is_some())
        {
            return;
        }
        let (events, bytes) = s.events.held();
        if events > c.max_unacked_events / 8 || bytes > c.max_unacked_bytes / 8 {
            return;
        }
        // A normal read continues from the cursor; a rescan goes through the whole queue
        // once it is asked for, after the read under way (if any).
        if s.inbox.rescan_pending {
            s.inbox.rescan_pending = false;
            s.inbox.rescan = Some(0);
        }
        let rescan = s.inbox.rescan;
        let op = StoreOp::Messages {
            app: s.app.app_id.clone(),
            account: String::from(&*s.account),
            after: rescan.unwrap_or(s.inbox.cursor),
            max_count: (c.max_unacked_events / 2).saturating_sub(events).max(1),
            max_bytes: (c.max_unacked_bytes / 2).saturating_sub(bytes).max(1),
        };
        s.inbox.reading = true;
        s.inbox.acked_during_read.clear();
        let below = self.storage.next_position;
        let rescan = rescan.is_some();
        self.store_op(op, Then::Portion { sid, below, rescan });
    }

    fn continue_with(&mut self, then: Then, answer: Result<StoreAnswer, StoreError>) {
        match then {
            Then::Nothing => {
                if let Err(e) = answer {
                    self.store_failed(e);
                }
            }
            Then::Answer {
                sid,
                request,
                via,
                awaited,
                tally,
            } => {
                let result = self.answered(sid, awaited, answer);
                if let Some((app, kind)) = tally {
                    let code = result.as_ref().map_or_else(|e| e.code.code(), |_| 0);
                    self.tally_request(&app.app_id, kind, code);
                }
                self.finish_request(sid, request, via, result);
            }
            Then::Portion { sid, below, rescan } => self.portion(sid, below, rescan, answer),
            Then::ConnTimeout { sid } => match answer {
                Ok(StoreAnswer::Attr(value)) => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.conn_timeout = value;
                    }
                }
                // The default grace serves; the failure is counted (and logged by the store).
                Ok(other) => {
                    self.store_failed(unexpected(&other));
                }
                Err(e) => {
                    self.store_failed(e);
                }
            },
        }
    }

    /// What a request's store operation came to.
    fn answered(
        &mut self,
        sid: SessionId,
        awaited: Awaited,
        answer: Result<StoreAnswer, StoreError>,
    ) -> CallResult<Answered> {
        if let (Awaited::Sent { position, .. }, Err(_) | Ok(StoreAnswer::Full)) =
            (&awaited, &answer)
        {
            // Not kept: it no longer counts against its sender's quota.
            self.offline.deleted(*position);
        }
        let answer = answer.map_err(|e| self.store_failed(e))?;
        match (awaited, answer) {
            (
                Awaited::Sent {
                    online,
                    notify,
                    recipient,
                    ..
                },
                StoreAnswer::Done,
            ) => {
                if let Some(app) = notify {
                    self.cluster_stored(app, recipient);
                }
                if online {
                    self.stats.messages_delivered += 1;
                } else {
                    self.stats.messages_stored += 1;
                }
                Ok(Answered::Done)
            }
            (
                Awaited::Sent {
                    recipient,
                    online,
                    limit,
                    ..
                },
                StoreAnswer::Full,
            ) => {
                let held = limit.map_or(0, |l| l.messages);
                let why = if online {
                    format!("{recipient} already has {held} messages waiting to be delivered")
                } else {
                    format!("{recipient} is offline and already has {held} stored messages")
                };
                Err(CallError::new(ErrorCode::SendMessageOther, why))
            }
            (Awaited::AttrSet { conn_timeout, .. }, StoreAnswer::Done) => {
                if let Some(value) = conn_timeout
                    && let Some(s) = self.sessions.get_mut(&sid)
                {
                    s.conn_timeout = value;
                }
                Ok(Answered::Done)
            }
            (Awaited::AttrSet { max_attrs, .. }, StoreAnswer::Full) => Err(CallError::failed(
                format!("an account may hold at most {max_attrs} attributes"),
            )),
            (Awaited::AttrRead, StoreAnswer::Attr(value)) => {
                Ok(Answered::Value(value.unwrap_or_default()))
            }
            (Awaited::AttrsRead, StoreAnswer::Attrs(attrs)) => {
                self.fits_one_answer(&attrs)?;
                Ok(Answered::Attrs(attrs))
            }
            (_, other) => Err(self.store_failed(unexpected(&other))),
        }
    }

    /// Whether every attribute of an account fits in one answer, as the JSON object will spell
    /// them: a server configured for more attributes than one answer carries refuses rather
    /// than ending the session.
    fn fits_one_answer(&self, attrs: &[(String, String)]) -> CallResult {
        let json = |s: &str| {
            s.len()
                + s.bytes()
                    .filter(|b| *b < 0x20 || b"\"\\".contains(b))
                    .count()
                    * 5
        };
        let bytes: usize = attrs
            .iter()
            .map(|(k, v)| json(k) + json(v) + 6)
            .sum::<usize>()
            + 2;
        if bytes > self.config.max_event_bytes {
            return Err(CallError::failed(format!(
                "the attributes take {bytes} bytes, more than one answer carries ({} bytes); \
                 read them one by one",
                self.config.max_event_bytes
            )));
        }
        Ok(())
    }

    /// Sends a deferred reply, shaped as the request asked for it.
    pub(super) fn finish_request(
        &mut self,
        sid: SessionId,
        request: u64,
        via: Via,
        result: CallResult<Answered>,
    ) {
        let reply = match via {
            Via::Request => result.map(|a| match a {
                Answered::Done => None,
                Answered::Status(online) => {
                    Some(reply::Result::UserStatus(pb::UserStatus { online }))
                }
                Answered::Value(value) => Some(reply::Result::AttrValue(pb::AttrValue { value })),
                Answered::Attrs(attrs) => Some(reply::Result::AttrAll(pb::AttrAll {
                    json: invoke::attrs_json(&attrs),
                })),
            }),
            Via::Invoke => {
                let response = result.map(|a| match a {
                    Answered::Done => Response::Done,
                    Answered::Status(online) => Response::Status(online),
                    Answered::Value(v) => Response::Value(v),
                    Answered::Attrs(attrs) => Response::Attrs(attrs),
                });
                Ok(Some(reply::Result::InvokeResult(invoke::result(response))))
            }
        };
        self.reply(sid, request, reply);
    }

    /// A portion of stored messages for a session: delivered in position order (those past
    /// the app's TTL are dropped), then the next portion is read if the session has room.
    fn portion(
        &mut self,
        sid: SessionId,
        below: u64,
        rescan: bool,
        answer: Result<StoreAnswer, StoreError>,
    ) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return; // The session ended meanwhile; the messages wait for the next one.
        };
        s.inbox.reading = false;
        let (app, account, ttl) = (s.app.app_id.clone(), s.account.clone(), s.app.offline.ttl);
        let (messages, more) = match answer {
            Ok(StoreAnswer::Messages { messages, more }) => (messages, more),
            Ok(other) => return self.portion_failed(sid, unexpected(&other)),
            Err(e) => return self.portion_failed(sid, e),
        };
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let now_ms = self.unix_ms(self.now);
        // In a cluster, messages stored by other nodes are found by rescans too, whatever
        // their positions: none the session holds, or acknowledged meanwhile, is handed over
        // twice.
        let (held, acked) = if self.config.cluster {
            let s = self.sessions.get_mut(&sid);
            s.map(|s| {
                (
                    s.events.records(),
                    std::mem::take(&mut s.inbox.acked_during_read),
                )
            })
            .unwrap_or_default()
        } else {
            Default::default()
        };
        let last = messages.last().map(|(p, _)| *p);
        for (position, m) in messages {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return; // Ended (it overflowed): the rest stay stored.
            };
            if held.contains(&position) || acked.contains(&position) {
                continue;
            }
            if !rescan {
                if position <= s.inbox.cursor {
                    continue;
                }
                s.inbox.cursor = position;
            }
            if m.sent_at_ms.saturating_add(ttl_ms) < now_ms {
                self.stats.offline_expired += 1;
                self.delete_message(&app, &account, position);
                continue;
            }
            // A rescan finds what another node stored while the session was here; positions
            // from another node's block say nothing of when it was accepted.
            let offline = !rescan && position < s.inbox.since;
            if offline {
                self.stats.stored_delivered += 1;
            }
            self.deliver_instant(sid, position, m, offline);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if rescan {
            // Continued after the last position seen, or done (a new one may be pending).
            s.inbox.rescan = last.filter(|_| more);
            return self.top_up(sid);
        }
        s.inbox.behind = more;
        if !more {
            // Everything accepted before the read was issued is handed over.
            s.inbox.cursor = s.inbox.cursor.max(below.saturating_sub(1));
        }
        self.top_up(sid);
    }

    /// A read of stored messages failed: counted, and the session reads no more; what is
    /// stored waits for the account's next session.
    fn portion_failed(&mut self, sid: SessionId, e: StoreError) {
        self.store_failed(e);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.inbox.failed = true;
        }
    }

    /// Queues `message` for `recipient` in the store (write-ahead) and, when the recipient's
    /// session is caught up and has room, hands it over at once; the sender's reply waits for
    /// the record to be stored. Otherwise it waits in the store, under the queue's bound.
    ///
    /// `elsewhere`: in a cluster, the recipient has a session on another node; the message is
    /// stored under a session's bound, and once it is stored that node is told to read the
    /// account's queue (as it is for an account offline everywhere, in case it has just logged
    /// in somewhere).
    pub(super) fn accept_message(
        &mut self,
        me: &Caller,
        recipient: String,
        message: StoredMessage,
        elsewhere: bool,
    ) -> CallResult {
        let app = me.app.clone();
        let c = &self.config;
        let (half_events, half_bytes) = (c.max_unacked_events / 2, c.max_unacked_bytes / 2);
        let target = self.session_of(&app.app_id, &recipient);
        let direct = target.filter(|t| {
            self.sessions.get(t).is_some_and(|s| {
                s.logging_out.is_none()
                    && s.inbox.caught_up()
                    && !s.events.holds_at_least(half_events, half_bytes)
            })
        });
        let limit = match (direct, target) {
            (Some(_), _) => None,
            (None, Some(_)) => Some(self.session_queue_limit(&app)),
            (None, None) if elsewhere => Some(self.session_queue_limit(&app)),
            (None, None) if !app.offline.enabled => {
                return Err(CallError::new(
                    ErrorCode::SendMessagePeerOffline,
                    format!("{recipient} is offline and this app keeps no offline messages"),
                ));
            }
            (None, None) => Some(self.offline_queue_limit(&app, &recipient)),
        };
        // For an account without a session, the sender's and the app's quotas of stored
        // messages apply, and the message counts against them until its record is deleted.
        let cost = (target.is_none() && !elsewhere).then(|| offline::cost(&recipient, &message));
        if let Some(cost) = cost {
            (self.offline).check(&app.app_id, &me.account, cost, &app.offline)?;
        }
        let position = self.take_position();
        let mut message = message;
        message.server_msg_id = self.p2p_message_id(position);
        if let Some(cost) = cost {
            self.offline_stored(&app.app_id, &recipient, position, &message, cost);
        }
        let put = StoreOp::PutMessage {
            app: app.app_id.clone(),
            account: recipient.clone(),
            position,
            message: message.clone(),
            limit,
        };
        let notify = (self.config.cluster && target.is_none()).then(|| app.app_id.clone());
        let awaited = Awaited::Sent {
            recipient,
            online: target.is_some() || elsewhere,
            limit,
            position,
            notify,
        };
        let then = self.answer_to(me, Via::Request, awaited);
        self.store_op(put, then);
        if let Some(t) = target
            && let Some(s) = self.sessions.get_mut(&t)
        {
            s.inbox.tail = position;
        }
        if let Some(t) = direct {
            if let Some(s) = self.sessions.get_mut(&t) {
                s.inbox.cursor = position;
            }
            self.deliver_instant(t, position, message, false);
        }
        Ok(())
    }

    /// Writes one of the caller's attributes; the reply waits for the write.
    pub(super) fn store_attr(&mut self, me: &Caller, name: &str, value: &str, via: Via) {
        let value = (!value.is_empty()).then(|| value.to_owned());
        let conn_timeout = (name == validate::CONN_TIMEOUT_ATTR).then(|| value.clone());
        let max_attrs = me.app.max_user_attrs;
        let op = StoreOp::SetAttr {
            app: me.app.app_id.clone(),
            account: String::from(&*me.account),
            name: name.to_owned(),
            value,
            max_attrs,
        };
        let awaited = Awaited::AttrSet {
            max_attrs,
            conn_timeout,
        };
        self.store_op(op, self.answer_to(me, via, awaited));
    }

    /// Reads an attribute (`Some(name)`) or all of them; the reply waits for the read.
    pub(super) fn read_attrs(&mut self, me: &Caller, account: &str, name: Option<&str>, via: Via) {
        let (app, account) = (me.app.app_id.clone(), account.to_owned());
        let (op, awaited) = match name {
            Some(name) => (
                StoreOp::Attr {
                    app,
                    account,
                    name: name.to_owned(),
                },
                Awaited::AttrRead,
            ),
            None => (StoreOp::Attrs { app, account }, Awaited::AttrsRead),
        };
        self.store_op(op, self.answer_to(me, via, awaited));
    }

    fn answer_to(&self, me: &Caller, via: Via, awaited: Awaited) -> Then {
        Then::Answer {
            sid: me.sid,
            request: me.request,
            via,
            awaited,
            tally: me.kind.map(|kind| (me.app.clone(), kind)),
        }
    }
}

fn unexpected(answer: &StoreAnswer) -> StoreError {
    StoreError::Corrupt(format!("an answer of the wrong kind: {answer:?}"))
}
