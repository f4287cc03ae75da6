//! The JSON parameters: a call's `extra` (SPEC §8) and an `invoke` request (SPEC §9).

use serde_json::{Map, Value};

use crate::error::{CallError, CallResult};

/// `extra` key: the invitation is a phone call through the app's gateway.
pub const EXTRA_PHONE: &str = "_phone";
/// `extra` key: fail at once if the callee is offline (SPEC §8).
pub const EXTRA_REQUIRE_PEER_ONLINE: &str = "_require_peer_online";
/// `extra` key: the calling number of a phone invitation.
pub const EXTRA_SOURCE_NUMBER: &str = "srcNum";
/// `extra` key: the number a gateway answers for, when it carries several calls of one caller.
pub const EXTRA_DEST_NUMBER: &str = "destNum";

/// A checked call `extra`: empty, or a JSON object.
///
/// **Decision**: SPEC §8 says "`extra` is JSON (≤ 8 KiB) or empty". A string of only white space
/// is neither (it is not empty, and it is not a JSON text), so it is refused with 1004 rather
/// than read as empty: the peer then only ever receives an `extra` it can parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra(Map<String, Value>);

impl Extra {
    /// Parses `extra` (its size is checked by [`Limits::extra`](crate::Limits::extra)).
    pub(crate) fn parse(extra: &str) -> CallResult<Self> {
        if extra.is_empty() {
            return Ok(Self::default());
        }
        if extra.trim().is_empty() {
            return Err(CallError::wrong_param(
                "extra must be empty or a JSON object, not white space",
            ));
        }
        json_object("extra", extra).map(Self)
    }

    /// Whether `key` is set: `true`, `1`, `"1"` or `"true"`.
    pub fn flag(&self, key: &str) -> bool {
        match self.0.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::String(s)) => s == "1" || s == "true",
            _ => false,
        }
    }

    /// The string value of `key`, if it is a string.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }

    /// The object's members.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// The arguments of an `invoke` request: a JSON object with typed getters whose errors name
/// the argument (1004).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeArgs(Map<String, Value>);

impl InvokeArgs {
    /// Parses an `invoke` request (`req_json`), which must be a JSON object.
    pub fn parse(req: &str) -> CallResult<Self> {
        json_object("the request", req).map(Self)
    }

    /// Refuses an argument that is not among `used` (1004, naming it): a function ignores
    /// nothing silently, so a caller that passes `account` to a function acting on its own
    /// account learns it at once.
    pub fn only(&self, function: &str, used: &[&str]) -> CallResult {
        match self.0.keys().find(|k| !used.contains(&k.as_str())) {
            None => Ok(()),
            Some(unused) => Err(CallError::wrong_param(format!(
                "argument {unused:?} is not used by {function}, which takes {}",
                if used.is_empty() {
                    "no arguments".to_owned()
                } else {
                    used.join(", ")
                }
            ))),
        }
    }

    /// A string argument that must be present.
    pub fn string(&self, key: &str) -> CallResult<String> {
        match self.0.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(CallError::wrong_param(format!(
                "argument {key:?} must be a string"
            ))),
            None => Err(CallError::wrong_param(format!(
                "argument {key:?} is missing"
            ))),
        }
    }

    /// A whole-number argument; `default` when absent.
    pub fn count(&self, key: &str, default: usize) -> CallResult<usize> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| {
                    CallError::wrong_param(format!("argument {key:?} must be a whole number"))
                }),
        }
    }
}

fn json_object(what: &str, text: &str) -> CallResult<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CallError::wrong_param(format!(
            "{what} must be a JSON object"
        ))),
        Err(e) => Err(CallError::wrong_param(format!(
            "{what} is not valid JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::tests::code;

    #[test]
    fn extra_is_empty_or_an_object() {
        assert_eq!(Extra::parse("").unwrap(), Extra::default());
        assert_eq!(code(Extra::parse(r#" {"a":1} "#)), 0);
        for bad in [
            " ", "\t\n", "not json", "[1]", "\"s\"", "1", "null", "{", "{} {}",
        ] {
            assert_eq!(code(Extra::parse(bad)), 1004, "{bad:?}");
        }
    }

    #[test]
    fn extra_flags_and_strings() {
        let e = Extra::parse(r#"{"a":1,"b":true,"c":"1","d":"true","e":2,"f":"x","g":0}"#).unwrap();
        for k in ["a", "b", "c", "d"] {
            assert!(e.flag(k), "{k}");
        }
        for k in ["e", "f", "g", "missing"] {
            assert!(!e.flag(k), "{k}");
        }
        assert_eq!(e.string("f"), Some("x"));
        assert_eq!(e.string("a"), None);
    }

    #[test]
    fn invoke_arguments_are_typed() {
        let a = InvokeArgs::parse(r#"{"s":"v","n":3,"neg":-1,"f":1.5}"#).unwrap();
        assert_eq!(a.string("s").unwrap(), "v");
        assert!(
            a.string("n")
                .unwrap_err()
                .message
                .contains("must be a string")
        );
        assert!(a.string("x").unwrap_err().message.contains("is missing"));
        assert_eq!(a.count("n", 7).unwrap(), 3);
        assert_eq!(a.count("x", 7).unwrap(), 7);
        assert_eq!(code(a.count("neg", 7)), 1004);
        assert_eq!(code(a.count("f", 7)), 1004);
        assert_eq!(code(a.count("s", 7)), 1004);
        for bad in ["", "not json", "[1]", "\"s\"", " "] {
            assert_eq!(code(InvokeArgs::parse(bad)), 1004, "{bad:?}");
        }
    }

    #[test]
    fn invoke_arguments_not_used_are_named() {
        let a = InvokeArgs::parse(r#"{"name":"n","account":"bob"}"#).unwrap();
        assert_eq!(code(a.only("f", &["name", "account"])), 0);
        let e = a.only("user_set_attr", &["name", "value"]).unwrap_err();
        assert_eq!(e.code.code(), 1004);
        assert!(e.message.contains("\"account\""), "{}", e.message);
        assert!(e.message.contains("name, value"), "{}", e.message);
        assert_eq!(code(InvokeArgs::parse("{}").unwrap().only("f", &[])), 0);
    }
}
