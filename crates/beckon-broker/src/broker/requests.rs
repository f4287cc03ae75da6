//! Requests and acknowledgements: each request is applied once and answered with one reply
//! event; `invoke` functions run on the same handlers as the requests they mirror.

use beckon_proto::pb::{self, reply, request::Op};
use beckon_proto::{CallError, CallResult};

use super::storage::Via;
use super::{Broker, Caller};
use crate::SessionId;
use crate::admin::RequestKind;
use crate::frame::BodyField;
use crate::invoke::{self, Function, Response};
use crate::store::Store;

pub(super) type Reply = CallResult<Option<reply::Result>>;

/// A request's answer: now, or once the store has answered (the store's continuation replies).
enum Answer {
    Now(Reply),
    Later,
}

impl From<CallResult> for Answer {
    /// `Ok`: the request went to the store, which answers it; `Err`: refused now.
    fn from(r: CallResult) -> Self {
        match r {
            Ok(()) => Answer::Later,
            Err(e) => Answer::Now(Err(e)),
        }
    }
}

impl<S: Store> Broker<S> {
    pub(super) fn handle_request(&mut self, sid: SessionId, req: pb::Request) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if req.id <= s.last_applied_request {
            return; // A resend of a request already applied; its reply is in the event stream.
        }
        s.last_applied_request = req.id;
        if s.logging_out.is_some() {
            let e = CallError::new(
                beckon_proto::ErrorCode::GeneralNotLogin,
                "the session is logging out",
            );
            self.reply(sid, req.id, Err(e));
            return;
        }
        let kind = RequestKind::of(req.op.as_ref());
        let me = Caller {
            sid,
            app: s.app.clone(),
            account: s.account.clone(),
            privileged: s.privileged(),
            request: req.id,
            kind: Some(kind),
        };
        let answer = match req.op {
            None => Answer::Now(Err(CallError::wrong_param("unknown request kind"))),
            Some(Op::Logout(_)) => {
                // From the answer on, nothing more is routed to the session: messages for the
                // account wait in the store for its next login.
                self.tally_request(&me.app.app_id, kind, 0);
                let seq = self.reply(sid, req.id, Ok(None));
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.logging_out = seq;
                }
                return;
            }
            Some(op) => match self.cluster_refuses(&op) {
                Some(refused) => Answer::Now(Err(refused)),
                None => match self.cluster_channel_request(&me, op) {
                    Ok(Some(refused)) => Answer::Now(refused),
                    Ok(None) => Answer::Later,
                    Err(op) => self.run_op(&me, op),
                },
            },
        };
        if let Answer::Now(result) = answer {
            let code = result.as_ref().map_or_else(|e| e.code.code(), |_| 0);
            self.tally_request(&me.app.app_id, kind, code);
            self.reply(sid, req.id, result);
        }
        for (to, body) in std::mem::take(&mut self.follow_ups) {
            self.emit_encoded(to, &body, None);
        }
    }

    /// Emits the reply to a request; returns its sequence number.
    pub(super) fn reply(&mut self, sid: SessionId, request_id: u64, result: Reply) -> Option<u64> {
        let r = match result {
            Ok(result) => pb::Reply {
                request_id,
                code: 0,
                message: String::new(),
                result,
            },
            Err(e) => pb::Reply {
                request_id,
                code: e.code.code(),
                message: e.message,
                result: None,
            },
        };
        self.emit(sid, BodyField::Reply, &r, None)
    }

    fn run_op(&mut self, me: &Caller, op: Op) -> Answer {
        use reply::Result as R;
        let done = |r: CallResult| Answer::Now(r.map(|()| None));
        let now = |r: CallResult<R>| Answer::Now(r.map(Some));
        match op {
            // Answered by `handle_request`, which must know the reply's sequence number.
            Op::Logout(_) => Answer::Now(Ok(None)),
            Op::SendInstantMessage(m) => self.send_instant(me, m).into(),
            Op::SetUserAttr(a) => self
                .set_user_attr(me, &a.name, &a.value, Via::Request)
                .into(),
            Op::GetUserAttr(g) => self.user_attr(me, &g.account, &g.name, Via::Request).into(),
            Op::GetUserAttrAll(g) => self.user_attrs(me, &g.account, Via::Request).into(),
            Op::ChannelLeave(l) => done(self.channel_leave(me, &l.channel)),
            Op::ChannelSetAttr(a) => done(self.channel_set_attr(me, &a.channel, &a.name, &a.value)),
            Op::ChannelDelAttr(a) => done(self.channel_del_attr(me, &a.channel, &a.name)),
            Op::ChannelClearAttr(a) => done(self.channel_clear_attr(me, &a.channel)),
            Op::SendChannelMessage(m) => done(self.channel_send(me, m)),
            Op::Invite(m) => match self.call_invite(me, m) {
                Ok(true) => Answer::Later,
                other => done(other.map(|_| ())),
            },
            Op::InviteAccept(m) => done(self.call_answer(me, m, true)),
            Op::InviteRefuse(m) => done(self.call_answer(me, m, false)),
            Op::InviteEnd(m) => done(self.call_end(me, m)),
            Op::InviteDtmf(m) => done(self.call_dtmf(me, m)),
            Op::QueryUserStatus(q) => match self.user_status(me, &q.account, Via::Request) {
                Ok(Some(online)) => now(Ok(R::UserStatus(pb::UserStatus { online }))),
                Ok(None) => Answer::Later,
                Err(e) => Answer::Now(Err(e)),
            },
            Op::ChannelJoin(j) => now(self.channel_join(me, &j.channel).map(R::ChannelJoined)),
            Op::ChannelQueryUserNum(q) => now(self
                .channel_query_user_num(me, &q.channel)
                .map(|num| R::ChannelUserNum(pb::ChannelUserNum { num }))),
            Op::ChannelQueryUserIsIn(q) => now(self
                .channel_query_user_is_in(me, &q.channel, &q.account)
                .map(|is_in| R::ChannelIsIn(pb::ChannelIsIn { is_in }))),
            Op::Invoke(i) => match self.invoke(me, &i) {
                Some(result) => Answer::Now(Ok(Some(R::InvokeResult(result)))),
                None => Answer::Later,
            },
        }
    }

    /// `invoke`: the function's error, if any, is in the result (`err`), not the reply code.
    /// `None` when the store answers it.
    fn invoke(&mut self, me: &Caller, i: &pb::Invoke) -> Option<pb::InvokeResult> {
        let parsed = Function::parse(&me.app.limits, &i.name, &i.req, &i.call_id);
        let parsed = parsed.and_then(|f| match self.cluster_refuses_function(&f) {
            Some(refused) => Err(refused),
            None => Ok(f),
        });
        match parsed.and_then(|f| self.run_function(me, f)) {
            Ok(None) => None,
            Ok(Some(response)) => Some(invoke::result(Ok(response))),
            Err(e) => Some(invoke::result(Err(e))),
        }
    }

    /// Runs a function; `Ok(None)` when its answer comes from the store.
    fn run_function(&mut self, me: &Caller, f: Function) -> CallResult<Option<Response>> {
        let done = |r: CallResult| r.map(|()| Some(Response::Done));
        let later = |r: CallResult| r.map(|()| None);
        let f = match self.cluster_channel_function(me, f) {
            Ok(answer) => return answer,
            Err(f) => f,
        };
        match f {
            Function::UserStatus(account) => Ok(self
                .user_status(me, &account, Via::Invoke)?
                .map(Response::Status)),
            Function::SetUserAttr(name, value) => {
                later(self.set_user_attr(me, &name, &value, Via::Invoke))
            }
            Function::UserAttr(account, name) => {
                later(self.user_attr(me, &account, &name, Via::Invoke))
            }
            Function::UserAttrs(account) => later(self.user_attrs(me, &account, Via::Invoke)),
            Function::ChannelNum(channel) => self
                .channel_query_user_num(me, &channel)
                .map(|n| Some(Response::Num(n))),
            Function::ChannelIsIn(channel, account) => self
                .channel_query_user_is_in(me, &channel, &account)
                .map(|i| Some(Response::IsIn(i))),
            Function::ChannelUsers(channel, max) => self
                .channel_user_list(me, &channel, max)
                .map(|(num, list)| Some(Response::Users { num, list })),
            Function::SetChannelAttr(channel, name, value) => {
                done(self.channel_set_attr(me, &channel, &name, &value))
            }
            Function::DelChannelAttr(channel, name) => {
                done(self.channel_del_attr(me, &channel, &name))
            }
            Function::ClearChannelAttr(channel) => done(self.channel_clear_attr(me, &channel)),
            Function::RegisterGateway => done(self.register_gateway(me)),
        }
    }

    /// Forgets the session's events up to `up_to`, which its client has; the p2p messages
    /// among them leave the store.
    pub(super) fn forget_acknowledged(&mut self, sid: SessionId, up_to: u64) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let mut records = Vec::new();
        s.events.ack(up_to, &mut records);
        if records.is_empty() {
            return;
        }
        if s.inbox.reading {
            s.inbox.acked_during_read.extend_from_slice(&records);
        }
        let (app, account) = (s.app.app_id.clone(), s.account.clone());
        for position in records {
            self.delete_message(&app, &account, position);
        }
    }

    pub(super) fn handle_ack(&mut self, sid: SessionId, up_to: u64) {
        self.forget_acknowledged(sid, up_to);
        self.call_receipts(sid, up_to);
        // The next portion of stored messages, once most of what was handed over is
        // acknowledged.
        self.top_up(sid);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if let Some(logout_seq) = s.logging_out
            && up_to >= logout_seq
            && let Some(conn) = s.conn
        {
            self.close_after_logout(sid, conn);
        }
    }
}
