//! `invoke` (SPEC §9): a request names a function and passes its arguments as JSON. This module
//! turns that pair into a typed [`Function`] and a typed [`Response`] back into JSON; it knows
//! nothing of the broker, which carries the function out on its own data.
//!
//! Every malformed request — unknown name, request that is not a JSON object, an argument
//! missing or of the wrong type — is `GENERAL_E_WRONG_PARAM` (1004) with a message naming the
//! argument, found before anything runs.

use serde_json::{Value, json};

use beckon_proto::validate::{self, InvokeArgs};
use beckon_proto::{CallError, CallResult, Limits};

const PREFIX: &str = "io.agora.signal.";
/// Registers the calling session (server privilege) as the app's telephony gateway.
pub const GATEWAY_REGISTER: &str = "io.beckon.gateway_register";

/// Members `channel_query_userlist` reports (the latest ones).
pub(crate) const USER_LIST_LEN: usize = 200;
/// Members `channel_query_userlist_all` reports when `num` is not given.
const USER_LIST_ALL_LEN: usize = 1_000_000;

/// A function of SPEC §9 with its arguments, in the order the table below names them.
///
/// | variant | function and arguments | response |
/// |---|---|---|
/// | `UserStatus(account)` | `user_query_user_status {account}` | `{"status": 0\|1}` |
/// | `SetUserAttr(name, value)` | `user_set_attr {name, value}`, the caller's own | `{}` |
/// | `UserAttr(account, name)` | `user_get_attr {account, name}` | `{"value": v}` |
/// | `UserAttrs(account)` | `user_get_attr_all {account}` | `{name: value, …}` |
/// | `ChannelNum(channel)` | `channel_query_num {name}` | `{"num": n}` |
/// | `ChannelIsIn(channel, account)` | `channel_query_user_isin {name, account}` | `{"isin": 0\|1}` |
/// | `ChannelUsers(channel, max)` | `channel_query_userlist {name}` (max 200), `channel_query_userlist_all {name, num}` | `{"num": n, "list": [[account, uid], …]}` |
/// | `SetChannelAttr(channel, name, value)` | `channel_set_attr {channel, name, value}` | `{}` |
/// | `DelChannelAttr(channel, name)` | `channel_del_attr {channel, name}` | `{}` |
/// | `ClearChannelAttr(channel)` | `channel_clear_attr {channel}` | `{}` |
/// | `RegisterGateway` | [`GATEWAY_REGISTER`], no arguments | `{}` |
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Function {
    UserStatus(String),
    SetUserAttr(String, String),
    UserAttr(String, String),
    UserAttrs(String),
    ChannelNum(String),
    ChannelIsIn(String, String),
    ChannelUsers(String, usize),
    SetChannelAttr(String, String, String),
    DelChannelAttr(String, String),
    ClearChannelAttr(String),
    RegisterGateway,
}

impl Function {
    /// Parses an `invoke(name, req, callID)` request.
    pub(crate) fn parse(limits: &Limits, name: &str, req: &str, call_id: &str) -> CallResult<Self> {
        validate::invoke(limits, name, req, call_id)?;
        if name == GATEWAY_REGISTER {
            return Ok(Self::RegisterGateway);
        }
        let function = name.strip_prefix(PREFIX).unwrap_or("");
        let known = matches!(
            function,
            "user_query_user_status"
                | "user_set_attr"
                | "user_get_attr"
                | "user_get_attr_all"
                | "channel_query_num"
                | "channel_query_user_isin"
                | "channel_query_userlist"
                | "channel_query_userlist_all"
                | "channel_set_attr"
                | "channel_del_attr"
                | "channel_clear_attr"
        );
        if !known {
            return Err(CallError::wrong_param(format!("unknown function {name:?}")));
        }
        let args = InvokeArgs::parse(req)?;
        args.only(function, arguments(function))?;
        let s = |key: &str| args.string(key);
        Ok(match function {
            "user_query_user_status" => Self::UserStatus(s("account")?),
            "user_set_attr" => Self::SetUserAttr(s("name")?, s("value")?),
            "user_get_attr" => Self::UserAttr(s("account")?, s("name")?),
            "user_get_attr_all" => Self::UserAttrs(s("account")?),
            "channel_query_num" => Self::ChannelNum(s("name")?),
            "channel_query_user_isin" => Self::ChannelIsIn(s("name")?, s("account")?),
            "channel_query_userlist" => Self::ChannelUsers(s("name")?, USER_LIST_LEN),
            "channel_query_userlist_all" => {
                Self::ChannelUsers(s("name")?, args.count("num", USER_LIST_ALL_LEN)?)
            }
            "channel_set_attr" => Self::SetChannelAttr(s("channel")?, s("name")?, s("value")?),
            "channel_del_attr" => Self::DelChannelAttr(s("channel")?, s("name")?),
            _ => Self::ClearChannelAttr(s("channel")?),
        })
    }
}

/// The arguments `function` (a known name, without the prefix) takes; any other is refused.
fn arguments(function: &str) -> &'static [&'static str] {
    match function {
        "user_query_user_status" | "user_get_attr_all" => &["account"],
        "user_set_attr" => &["name", "value"],
        "user_get_attr" => &["account", "name"],
        "channel_query_num" | "channel_query_userlist" => &["name"],
        "channel_query_user_isin" => &["name", "account"],
        "channel_query_userlist_all" => &["name", "num"],
        "channel_set_attr" => &["channel", "name", "value"],
        "channel_del_attr" => &["channel", "name"],
        _ => &["channel"],
    }
}

/// What a function answers, before it is written as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Response {
    /// `{}`.
    Done,
    Status(bool),
    Value(String),
    Attrs(Vec<(String, String)>),
    Num(u32),
    IsIn(bool),
    /// The total and the members listed, oldest first (uids are reported as 0).
    Users {
        num: usize,
        list: Vec<String>,
    },
}

impl Response {
    /// The response JSON of `onInvokeRet`.
    pub(crate) fn to_json(&self) -> String {
        match self {
            Self::Done => "{}".to_owned(),
            Self::Status(online) => json!({ "status": u8::from(*online) }).to_string(),
            Self::Value(v) => json!({ "value": v }).to_string(),
            Self::Attrs(attrs) => attrs_json(attrs),
            Self::Num(n) => json!({ "num": n }).to_string(),
            Self::IsIn(is_in) => json!({ "isin": u8::from(*is_in) }).to_string(),
            Self::Users { num, list } => {
                let list: Vec<Value> = list.iter().map(|a| json!([a, 0])).collect();
                json!({ "num": num, "list": list }).to_string()
            }
        }
    }
}

/// An account's attributes as one JSON object, as `onUserAttrAllResult` and
/// `user_get_attr_all` report them.
pub(crate) fn attrs_json(attrs: &[(String, String)]) -> String {
    let map: serde_json::Map<String, Value> = attrs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(map).to_string()
}

/// What `onInvokeRet` gets for a function's outcome: `err` "" and the response, or the error
/// code and `{"error": "<why>"}`.
pub(crate) fn result(outcome: CallResult<Response>) -> beckon_proto::pb::InvokeResult {
    match outcome {
        Ok(response) => beckon_proto::pb::InvokeResult {
            err: String::new(),
            resp: response.to_json(),
        },
        Err(e) => beckon_proto::pb::InvokeResult {
            err: e.code.code().to_string(),
            resp: error_json(&e),
        },
    }
}

/// The response JSON of a failed function: `{"error": "<why>"}`.
pub(crate) fn error_json(e: &CallError) -> String {
    json!({ "error": e.message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, req: &str) -> CallResult<Function> {
        Function::parse(&Limits::default(), &format!("{PREFIX}{name}"), req, "c")
    }

    /// Each bad request is 1004 with a message that says what is wrong.
    fn refused(name: &str, req: &str, says: &str) {
        let e = parse(name, req).expect_err(req);
        assert_eq!(e.code.code(), 1004, "{name} {req}");
        assert!(e.message.contains(says), "{name} {req}: {:?}", e.message);
    }

    #[test]
    fn requests_parse_into_typed_functions() {
        assert_eq!(
            parse("user_get_attr", r#"{"account":"bob","name":"n"}"#).unwrap(),
            Function::UserAttr("bob".into(), "n".into())
        );
        assert_eq!(
            parse("channel_query_userlist", r#"{"name":"c"}"#).unwrap(),
            Function::ChannelUsers("c".into(), 200)
        );
        assert_eq!(
            parse("channel_query_userlist_all", r#"{"name":"c","num":5}"#).unwrap(),
            Function::ChannelUsers("c".into(), 5)
        );
        assert_eq!(
            parse("channel_query_userlist_all", r#"{"name":"c"}"#).unwrap(),
            Function::ChannelUsers("c".into(), 1_000_000)
        );
        let gateway = Function::parse(&Limits::default(), GATEWAY_REGISTER, "anything", "");
        assert_eq!(gateway.unwrap(), Function::RegisterGateway);
    }

    /// (function, request, what the message says).
    #[rustfmt::skip]
    const BAD_ARGUMENTS: [(&str, &str, &str); 19] = [
        ("user_set_attr", r#"{"account":"bob","name":"n","value":"v"}"#, "\"account\" is not used"),
        ("user_get_attr", r#"{"account":"bob","name":"n","extra":1}"#, "\"extra\" is not used"),
        ("channel_query_userlist", r#"{"name":"c","num":5}"#, "\"num\" is not used"),
        ("user_get_attr", "not json", "not valid JSON"),
        ("user_get_attr", "", "not valid JSON"),
        ("user_get_attr", "[1]", "must be a JSON object"),
        ("user_get_attr", r#"{"account":"bob"}"#, "\"name\" is missing"),
        ("user_get_attr", r#"{"account":1,"name":"n"}"#, "\"account\" must be a string"),
        ("user_set_attr", r#"{"name":"n","value":null}"#, "\"value\" must be a string"),
        ("user_query_user_status", "{}", "\"account\" is missing"),
        ("user_get_attr_all", r#"{"account":[]}"#, "must be a string"),
        ("channel_query_num", r#"{"channel":"c"}"#, "\"channel\" is not used"),
        ("channel_query_user_isin", r#"{"name":"c"}"#, "\"account\" is missing"),
        ("channel_query_userlist", r#"{"name":{}}"#, "must be a string"),
        ("channel_query_userlist_all", r#"{"name":"c","num":-1}"#, "whole number"),
        ("channel_query_userlist_all", r#"{"name":"c","num":"5"}"#, "whole number"),
        ("channel_set_attr", r#"{"channel":"c","name":"n"}"#, "\"value\" is missing"),
        ("channel_del_attr", r#"{"name":"n"}"#, "\"channel\" is missing"),
        ("channel_clear_attr", r#"{"name":"c"}"#, "\"name\" is not used"),
    ];

    #[test]
    fn bad_requests_are_1004_with_a_clear_message() {
        refused("nope", "{}", "unknown function");
        refused("", "{}", "unknown function");
        let bare = Function::parse(&Limits::default(), "user_get_attr", "{}", "");
        assert!(bare.unwrap_err().message.contains("unknown function"));
        for (name, req, says) in BAD_ARGUMENTS {
            refused(name, req, says);
        }
        let e = Function::parse(&Limits::default(), "", "{}", "").unwrap_err();
        assert_eq!(
            (e.code.code(), e.message.as_str()),
            (1004, "name must not be empty")
        );
        let huge = format!(r#"{{"account":"{}"}}"#, "x".repeat(9000));
        assert_eq!(
            parse("user_get_attr_all", &huge).unwrap_err().code.code(),
            1005
        );
    }

    #[test]
    fn responses_are_the_spec_json() {
        assert_eq!(Response::Done.to_json(), "{}");
        assert_eq!(Response::Status(true).to_json(), r#"{"status":1}"#);
        assert_eq!(Response::IsIn(false).to_json(), r#"{"isin":0}"#);
        assert_eq!(Response::Num(3).to_json(), r#"{"num":3}"#);
        assert_eq!(Response::Value("v".into()).to_json(), r#"{"value":"v"}"#);
        let attrs = vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ];
        assert_eq!(Response::Attrs(attrs).to_json(), r#"{"a":"1","b":"2"}"#);
        let users = Response::Users {
            num: 9,
            list: vec!["x".into()],
        };
        assert_eq!(users.to_json(), r#"{"list":[["x",0]],"num":9}"#);
        assert_eq!(
            error_json(&CallError::wrong_param("why")),
            r#"{"error":"why"}"#
        );
    }
}
