//! `invoke`: the remote functions of SPEC §9.

use serde_json::{Map, Value, json};

use beckon_proto::{CallError, ErrorCode};

use crate::broker::Broker;
use crate::config::AppConfig;
use crate::store::Store;

const PREFIX: &str = "io.agora.signal.";

/// Runs one function; returns the error code (None on success) and the response JSON.
pub(crate) fn run<S: Store>(
    broker: &mut Broker<S>,
    app: &AppConfig,
    caller: &str,
    name: &str,
    req: &str,
) -> (Option<ErrorCode>, String) {
    match dispatch(broker, app, caller, name, req) {
        Ok(v) => (None, v.to_string()),
        Err(e) => (Some(e.code), json!({ "error": e.message }).to_string()),
    }
}

fn dispatch<S: Store>(
    broker: &mut Broker<S>,
    app: &AppConfig,
    caller: &str,
    name: &str,
    req: &str,
) -> Result<Value, CallError> {
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
        "channel_query_num"
        | "channel_query_user_isin"
        | "channel_query_userlist"
        | "channel_query_userlist_all"
        | "channel_set_attr"
        | "channel_del_attr"
        | "channel_clear_attr" => Err(CallError::new(
            ErrorCode::GeneralFailed,
            format!("{name}: channels are not available on this server version yet"),
        )),
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
