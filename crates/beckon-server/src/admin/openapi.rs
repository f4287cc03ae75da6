//! The OpenAPI 3.1 document of the operator listener, served at `/openapi.json`. A test holds
//! its paths to the router's routes (`ROUTES`) and exercises each.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// The error responses every authenticated endpoint may give.
fn auth_errors() -> Value {
    json!({
        "400": error_response("A malformed parameter, query or body (code 1004 or 1005)."),
        "401": error_response("No token, or one not valid for the app (LOGIN_E_TOKENWRONG 206, LOGIN_E_TOKENEXPIRED 204)."),
        "403": error_response("A valid token without the server privilege (GENERAL_E_FAILED 1001)."),
        "404": error_response("The app (LOGIN_E_FAILED 202), account or channel is not there."),
        "503": error_response("The server is shutting down."),
    })
}

fn with_errors(mut ok: Value) -> Value {
    if let (Some(map), Value::Object(errors)) = (ok.as_object_mut(), auth_errors()) {
        map.extend(errors);
    }
    ok
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({
        "200": {
            "description": description,
            "content": { "application/json": { "schema": schema } }
        }
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": "string" }
    })
}

fn page_params() -> Value {
    json!([
        path_param("app", "The App ID."),
        { "name": "after", "in": "query", "required": false,
          "description": "Start after this name (the previous page's `next`).",
          "schema": { "type": "string" } },
        { "name": "limit", "in": "query", "required": false,
          "description": "Items per page, 1 to 1000 (default 100).",
          "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
    ])
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// The document.
pub(crate) fn document() -> Value {
    let secured = json!([{ "bearer": [] }]);
    let app = path_param("app", "The App ID.");
    let account = path_param("account", "The account.");
    let channel = path_param("channel", "The channel name (percent-encoded).");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Beckon operator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Metrics, probes and the admin API of a Beckon server. Endpoints \
                under /v1 need `Authorization: Bearer <token>`: a SignalingToken of the app \
                with the server privilege (`beckon token --server`). Errors carry the \
                Signaling API's error code."
        },
        "paths": {
            "/healthz": { "get": {
                "summary": "Liveness: the process answers.",
                "responses": json_ok("Alive.", json!({ "type": "object" }))
            }},
            "/readyz": { "get": {
                "summary": "Readiness: the listeners accept and the broker loop answers.",
                "responses": {
                    "200": { "description": "Ready." },
                    "503": { "description": "Starting or shutting down." }
                }
            }},
            "/metrics": { "get": {
                "summary": "Metrics in the Prometheus text format (version 0.0.4).",
                "responses": { "200": {
                    "description": "The exposition.",
                    "content": { "text/plain": { "schema": { "type": "string" } } }
                }}
            }},
            "/openapi.json": { "get": {
                "summary": "This document.",
                "responses": json_ok("The OpenAPI document.", json!({ "type": "object" }))
            }},
            "/v1/reload": { "post": {
                "summary": "Read the configuration file again: apps, certificates and limits apply now, sessions stay.",
                "description": "A server token of any app the server serves may ask. Sessions of apps the file no longer names are logged out (LOGOUT_E_KICKED 103).",
                "security": secured,
                "responses": with_errors(json!({
                    "200": { "description": "Reloaded.", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Reload" } } } },
                    "422": error_response("No configuration file, or it is invalid: nothing changed.")
                }))
            }},
            "/v1/apps/{app}/accounts": { "get": {
                "summary": "Online accounts (connected or in grace), by name, a page at a time.",
                "security": secured,
                "parameters": page_params(),
                "responses": with_errors(json_ok("A page.", json!({ "$ref": "#/components/schemas/AccountPage" })))
            }},
            "/v1/apps/{app}/accounts/{account}": { "get": {
                "summary": "One account: its session, channels and attributes.",
                "security": secured,
                "parameters": [app, account],
                "responses": with_errors(json_ok("The account.", json!({ "$ref": "#/components/schemas/Account" })))
            }},
            "/v1/apps/{app}/accounts/{account}/kick": { "post": {
                "summary": "Log the account out: its client hears LOGOUT_E_KICKED (103).",
                "security": secured,
                "parameters": [app, account],
                "responses": with_errors(json_ok("Kicked.", json!({ "type": "object",
                    "properties": { "kicked": { "type": "string" }, "code": { "type": "integer" } } })))
            }},
            "/v1/apps/{app}/accounts/{account}/messages": { "post": {
                "summary": "Send a p2p message from the token's account: delivered, or stored while the account is offline.",
                "security": secured,
                "parameters": [app, account],
                "requestBody": json_body("Message"),
                "responses": with_errors(json_ok("Accepted.", json!({ "$ref": "#/components/schemas/Sent" })))
            }},
            "/v1/apps/{app}/channels": { "get": {
                "summary": "Channels, by name, a page at a time.",
                "security": secured,
                "parameters": page_params(),
                "responses": with_errors(json_ok("A page.", json!({ "$ref": "#/components/schemas/ChannelPage" })))
            }},
            "/v1/apps/{app}/channels/{channel}": { "get": {
                "summary": "One channel: members in join order and attributes.",
                "security": secured,
                "parameters": [app, channel],
                "responses": with_errors(json_ok("The channel.", json!({ "$ref": "#/components/schemas/Channel" })))
            }},
            "/v1/apps/{app}/channels/{channel}/messages": { "post": {
                "summary": "Send a channel message from the token's account (as messageChannelSendForce: no membership needed).",
                "security": secured,
                "parameters": [app, channel],
                "requestBody": json_body("Message"),
                "responses": with_errors(json_ok("Sent.", json!({ "$ref": "#/components/schemas/Sent" })))
            }},
            "/v1/apps/{app}/tokens": { "post": {
                "summary": "Mint a SignalingToken for an account of the app.",
                "security": secured,
                "parameters": [app],
                "requestBody": json_body("TokenRequest"),
                "responses": with_errors(json!({
                    "200": { "description": "The token.", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Token" } } } },
                    "409": error_response("The app has no certificate (development mode).")
                }))
            }}
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "A SignalingToken of the app with the server privilege." }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["code", "name", "message"], "properties": {
                    "code": { "type": "integer", "description": "The Signaling API error code (SPEC §3)." },
                    "name": { "type": "string", "description": "The code's name, e.g. LOGIN_E_TOKENWRONG." },
                    "message": { "type": "string" }
                }},
                "AccountPage": { "type": "object", "required": ["accounts", "next"], "properties": {
                    "accounts": { "type": "array", "items": { "type": "string" } },
                    "next": { "type": ["string", "null"], "description": "Pass as `after` for the next page; null on the last." }
                }},
                "Account": { "type": "object", "properties": {
                    "account": { "type": "string" },
                    "uid": { "type": "integer" },
                    "online": { "type": "boolean" },
                    "connected": { "type": "boolean", "description": "False while the session waits in grace." },
                    "session_id": { "type": ["string", "null"] },
                    "privileged": { "type": "boolean" },
                    "channels": { "type": "array", "items": { "type": "string" } },
                    "unacked_events": { "type": "integer" },
                    "attributes": { "type": "object", "additionalProperties": { "type": "string" } }
                }},
                "ChannelPage": { "type": "object", "required": ["channels", "next"], "properties": {
                    "channels": { "type": "array", "items": { "type": "object", "properties": {
                        "channel": { "type": "string" }, "members": { "type": "integer" } } } },
                    "next": { "type": ["string", "null"] }
                }},
                "Channel": { "type": "object", "properties": {
                    "channel": { "type": "string" },
                    "members": { "type": "array", "items": { "type": "string" } },
                    "attributes": { "type": "object", "additionalProperties": { "type": "string" } }
                }},
                "Message": { "type": "object", "required": ["text"], "additionalProperties": false,
                    "properties": { "text": { "type": "string", "description": "At most 8192 bytes." } } },
                "Sent": { "type": "object", "properties": {
                    "server_msg_id": { "type": "string", "description": "0 when a channel had no members." },
                    "online": { "type": "boolean" },
                    "recipients": { "type": "integer" }
                }},
                "TokenRequest": { "type": "object", "required": ["account"], "additionalProperties": false,
                    "properties": {
                        "account": { "type": "string" },
                        "expire_in": { "type": "integer", "minimum": 1, "default": 3600 },
                        "server": { "type": "boolean", "default": false }
                    }},
                "Token": { "type": "object", "properties": {
                    "token": { "type": "string" }, "expires_at": { "type": "integer" } } },
                "Reload": { "type": "object", "properties": {
                    "apps_removed": { "type": "array", "items": { "type": "string" } },
                    "sessions_ended": { "type": "integer" },
                    "apps_updated": { "type": "integer" }
                }}
            }
        }
    })
}
