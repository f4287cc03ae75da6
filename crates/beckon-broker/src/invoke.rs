//! `invoke`: the remote functions of SPEC §9.

use serde_json::{Map, Value, json};

use beckon_proto::{CallError, ErrorCode};

use crate::SessionId;
use crate::broker::Broker;
use crate::config::AppConfig;
use crate::store::Store;
use std::time::Instant;

const PREFIX: &str = "io.agora.signal.";
/// Registers the calling session (server privilege) as the app's telephony gateway.
pub const GATEWAY_REGISTER: &str = "io.beckon.gateway_register";

/// Runs one function; returns the error code (None on success) and the response JSON.
pub(crate) fn run<S: Store>(
    broker: &mut Broker<S>,
    sid: SessionId,
    app: &AppConfig,
    caller: &str,
    name: &str,
    req: &str,
    now: Instant,
) -> (Option<ErrorCode>, String) {
    match dispatch(broker, sid, app, caller, name, req, now) {
        Ok(v) => (None, v.to_string()),
        Err(e) => (Some(e.code), json!({ "error": e.message }).to_string()),
    }
}

fn dispatch<S: Store>(
    broker: &mut Broker<S>,
    sid: SessionId,
    app: &AppConfig,
    caller: &str,
    name: &str,
    req: &str,
    now: Instant,
) -> Result<Value, CallError> {
    if name == GATEWAY_REGISTER {
        broker.register_gateway(sid, app, caller)?;
        return Ok(json!({}));
    }
    let function = name.strip_prefix(PREFIX).unwrap_or("");
    let args = || parse_args(req);
    match function {
        "user_query_user_status" => {
            let args = args()?;
            let account = string_arg(&args, "account")?;
            app.limits.account("account", account)?;
            let online = broker.is_online(&app.app_id, account);
            Ok(json!({ "status": u8::from(online) }))
        }
        "user_set_attr" => {
            let args = args()?;
            let name = string_arg(&args, "name")?;
            let value = string_arg(&args, "value")?;
            broker.set_user_attr(app, caller, name, value)?;
            Ok(json!({}))
        }
        "user_get_attr" => {
            let args = args()?;
            let account = string_arg(&args, "account")?;
            let name = string_arg(&args, "name")?;
            let value = broker.get_user_attr(app, account, name)?;
            Ok(json!({ "value": value }))
        }
        "user_get_attr_all" => {
            let args = args()?;
            let account = string_arg(&args, "account")?;
            let all = broker.get_user_attr_all(app, account)?;
            serde_json::from_str(&all)
                .map_err(|e| CallError::new(ErrorCode::GeneralFailed, e.to_string()))
        }
        "channel_query_num" => {
            let args = args()?;
            let channel = string_arg(&args, "name")?;
            Ok(json!({ "num": broker.channel_query_user_num(app, channel)? }))
        }
        "channel_query_user_isin" => {
            let args = args()?;
            let channel = string_arg(&args, "name")?;
            let account = string_arg(&args, "account")?;
            let is_in = broker.channel_query_user_is_in(app, channel, account)?;
            Ok(json!({ "isin": u8::from(is_in) }))
        }
        "channel_query_userlist" | "channel_query_userlist_all" => {
            let args = args()?;
            let channel = string_arg(&args, "name")?;
            let max = if function == "channel_query_userlist" {
                200
            } else {
                match args.get("num") {
                    None => 1_000_000,
                    Some(v) => v
                        .as_u64()
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                        .ok_or_else(|| {
                            CallError::new(
                                ErrorCode::GeneralWrongParam,
                                "argument \"num\" must be a whole number",
                            )
                        })?,
                }
            };
            let (num, list) = broker.channel_user_list(app, channel, max)?;
            let list: Vec<Value> = list.into_iter().map(|a| json!([a, 0])).collect();
            Ok(json!({ "num": num, "list": list }))
        }
        "channel_set_attr" => {
            let args = args()?;
            let channel = string_arg(&args, "channel")?;
            let attr = string_arg(&args, "name")?;
            let value = string_arg(&args, "value")?;
            broker.channel_set_attr(sid, app, caller, channel, attr, value, now)?;
            Ok(json!({}))
        }
        "channel_del_attr" => {
            let args = args()?;
            let channel = string_arg(&args, "channel")?;
            let attr = string_arg(&args, "name")?;
            broker.channel_del_attr(sid, app, caller, channel, attr, now)?;
            Ok(json!({}))
        }
        "channel_clear_attr" => {
            let args = args()?;
            let channel = string_arg(&args, "channel")?;
            broker.channel_clear_attr(sid, app, caller, channel, now)?;
            Ok(json!({}))
        }
        _ => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            format!("unknown function {name:?}"),
        )),
    }
}

fn parse_args(req: &str) -> Result<Map<String, Value>, CallError> {
    match serde_json::from_str::<Value>(req) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            "the request must be a JSON object",
        )),
        Err(e) => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            format!("the request is not valid JSON: {e}"),
        )),
    }
}

fn string_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, CallError> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            format!("argument {key:?} must be a string"),
        )),
        None => Err(CallError::new(
            ErrorCode::GeneralWrongParam,
            format!("argument {key:?} is missing"),
        )),
    }
}
