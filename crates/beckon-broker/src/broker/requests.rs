//! Requests and acknowledgements: each request is applied once and answered with one reply
//! event; `invoke` functions run on the same handlers as the requests they mirror.

use beckon_proto::pb::{self, reply, request::Op};
use beckon_proto::{CallError, CallResult};

use super::{Broker, Caller};
use crate::SessionId;
use crate::admin::RequestKind;
use crate::frame::BodyField;
use crate::invoke::{self, Function, Response};
use crate::store::Store;

type Reply = CallResult<Option<reply::Result>>;

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
        };
        let result = match req.op {
            None => Err(CallError::wrong_param("unknown request kind")),
            Some(Op::Logout(_)) => {
                self.tally_request(&me.app.app_id, kind, 0);
                let seq = self.reply(sid, req.id, Ok(None));
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.logging_out = seq;
                }
                return;
            }
            Some(op) => self.run_op(&me, op),
        };
        let code = result.as_ref().map_or_else(|e| e.code.code(), |_| 0);
        self.tally_request(&me.app.app_id, kind, code);
        self.reply(sid, req.id, result);
        for (to, body) in std::mem::take(&mut self.follow_ups) {
            self.emit_encoded(to, &body, None);
        }
    }

    /// Emits the reply to a request; returns its sequence number.
    fn reply(&mut self, sid: SessionId, request_id: u64, result: Reply) -> Option<u64> {
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

    fn run_op(&mut self, me: &Caller, op: Op) -> Reply {
        use reply::Result as R;
        let done = |r: CallResult| r.map(|()| None);
        let result = match op {
            // Answered by `handle_request`, which must know the reply's sequence number.
            Op::Logout(_) => return Ok(None),
            Op::SendInstantMessage(m) => return done(self.send_instant(me, m)),
            Op::SetUserAttr(a) => return done(self.set_user_attr(me, &a.name, &a.value)),
            Op::ChannelLeave(l) => return done(self.channel_leave(me, &l.channel)),
            Op::ChannelSetAttr(a) => {
                return done(self.channel_set_attr(me, &a.channel, &a.name, &a.value));
            }
            Op::ChannelDelAttr(a) => return done(self.channel_del_attr(me, &a.channel, &a.name)),
            Op::ChannelClearAttr(a) => return done(self.channel_clear_attr(me, &a.channel)),
            Op::SendChannelMessage(m) => return done(self.channel_send(me, m)),
            Op::Invite(m) => return done(self.call_invite(me, m)),
            Op::InviteAccept(m) => return done(self.call_answer(me, m, true)),
            Op::InviteRefuse(m) => return done(self.call_answer(me, m, false)),
            Op::InviteEnd(m) => return done(self.call_end(me, m)),
            Op::InviteDtmf(m) => return done(self.call_dtmf(me, m)),
            Op::QueryUserStatus(q) => R::UserStatus(pb::UserStatus {
                online: self.user_status(me, &q.account)?,
            }),
            Op::GetUserAttr(g) => R::AttrValue(pb::AttrValue {
                value: self.user_attr(me, &g.account, &g.name)?,
            }),
            Op::GetUserAttrAll(g) => R::AttrAll(pb::AttrAll {
                json: invoke::attrs_json(&self.user_attrs(me, &g.account)?),
            }),
            Op::ChannelJoin(j) => R::ChannelJoined(self.channel_join(me, &j.channel)?),
            Op::ChannelQueryUserNum(q) => R::ChannelUserNum(pb::ChannelUserNum {
                num: self.channel_query_user_num(me, &q.channel)?,
            }),
            Op::ChannelQueryUserIsIn(q) => R::ChannelIsIn(pb::ChannelIsIn {
                is_in: self.channel_query_user_is_in(me, &q.channel, &q.account)?,
            }),
            Op::Invoke(i) => R::InvokeResult(self.invoke(me, &i)),
        };
        Ok(Some(result))
    }

    /// `invoke`: the function's error, if any, is in the result (`err`), not the reply code.
    fn invoke(&mut self, me: &Caller, i: &pb::Invoke) -> pb::InvokeResult {
        let parsed = Function::parse(&me.app.limits, &i.name, &i.req, &i.call_id);
        match parsed.and_then(|f| self.run_function(me, f)) {
            Ok(response) => pb::InvokeResult {
                err: String::new(),
                resp: response.to_json(),
            },
            Err(e) => pb::InvokeResult {
                err: e.code.code().to_string(),
                resp: invoke::error_json(&e),
            },
        }
    }

    fn run_function(&mut self, me: &Caller, f: Function) -> CallResult<Response> {
        let done = |r: CallResult| r.map(|()| Response::Done);
        match f {
            Function::UserStatus(account) => self.user_status(me, &account).map(Response::Status),
            Function::SetUserAttr(name, value) => done(self.set_user_attr(me, &name, &value)),
            Function::UserAttr(account, name) => {
                self.user_attr(me, &account, &name).map(Response::Value)
            }
            Function::UserAttrs(account) => self.user_attrs(me, &account).map(Response::Attrs),
            Function::ChannelNum(channel) => {
                self.channel_query_user_num(me, &channel).map(Response::Num)
            }
            Function::ChannelIsIn(channel, account) => self
                .channel_query_user_is_in(me, &channel, &account)
                .map(Response::IsIn),
            Function::ChannelUsers(channel, max) => self
                .channel_user_list(me, &channel, max)
                .map(|(num, list)| Response::Users { num, list }),
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

    pub(super) fn handle_ack(&mut self, sid: SessionId, up_to: u64) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.events.ack(up_to);
        self.call_receipts(sid, up_to);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        // Top up from the store once most of what was handed over is acknowledged, so each
        // top-up moves a large batch (the store is read whole and the rest put back).
        let c = &self.config;
        if s.backlog
            && !s
                .events
                .holds_more_than(c.max_unacked_events / 8, c.max_unacked_bytes / 8)
        {
            let now = self.now;
            self.deliver_stored(sid, now);
        }
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
