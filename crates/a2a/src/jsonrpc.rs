//! JSON-RPC 2.0 normalising for the proxy, and the A2A method names of both protocol
//! versions.
//!
//! The proxy forwards what the caller sent, in the dialect the caller chose: it never renames
//! a method. It only makes a bare body a JSON-RPC request and gives a message its `messageId`
//! (the queue's idempotency key). [`operation`] knows both spellings of every method (v0.3
//! `message/send`, v1.0 `SendMessage`), so logs, activity rows and the queue treat them alike.
//!
//! Must not know: HTTP or storage.

use serde_json::{Map, Value, json};
use uuid::Uuid;

/// An A2A operation, whichever version named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    ListTasks,
    CancelTask,
    SubscribeToTask,
    PushNotificationConfig,
    GetExtendedAgentCard,
}

/// The protocol version a method name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// v0.3 slash names (`message/send`): what the original and its runtimes speak.
    V03,
    /// v1.0 PascalCase names (`SendMessage`).
    V10,
}

/// The operation and dialect of a JSON-RPC method name; `None` for a method A2A does not define
/// (still forwarded: agents may speak extensions).
pub fn operation(method: &str) -> Option<(Operation, Dialect)> {
    use Dialect::{V03, V10};
    use Operation::*;
    Some(match method {
        "message/send" => (SendMessage, V03),
        "SendMessage" => (SendMessage, V10),
        "message/stream" => (SendStreamingMessage, V03),
        "SendStreamingMessage" => (SendStreamingMessage, V10),
        "tasks/get" => (GetTask, V03),
        "GetTask" => (GetTask, V10),
        "tasks/list" => (ListTasks, V03),
        "ListTasks" => (ListTasks, V10),
        "tasks/cancel" => (CancelTask, V03),
        "CancelTask" => (CancelTask, V10),
        "tasks/resubscribe" => (SubscribeToTask, V03),
        "SubscribeToTask" => (SubscribeToTask, V10),
        "agent/getAuthenticatedExtendedCard" => (GetExtendedAgentCard, V03),
        "GetExtendedAgentCard" => (GetExtendedAgentCard, V10),
        m if m.starts_with("tasks/pushNotificationConfig/") => (PushNotificationConfig, V03),
        m if m.ends_with("TaskPushNotificationConfig") => (PushNotificationConfig, V10),
        _ => return None,
    })
}

/// Headers of the A2A protocol that the proxy forwards unchanged (lower-case).
pub const FORWARDED_HEADERS: &[&str] = &["a2a-version", "a2a-extensions"];

/// A request ready to forward.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub body: Value,
    pub method: String,
    /// `params.message.messageId` (added when missing), for sends.
    pub message_id: Option<String>,
}

/// Why a body cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    #[error("body must be a JSON object (a JSON-RPC 2.0 request, or {{\"method\", \"params\"}})")]
    NotAnObject,
    #[error("method must be a non-empty string")]
    BadMethod,
    #[error("jsonrpc must be \"2.0\"")]
    BadVersion,
}

/// Makes `body` a JSON-RPC 2.0 request: a body without `jsonrpc` is wrapped as
/// `{jsonrpc, id, method, params}` (method defaults to `message/send`, params to the rest of the
/// body), and a message without `messageId` gets a fresh one.
pub fn normalise(body: Value) -> Result<Normalised, NormaliseError> {
    let Value::Object(mut obj) = body else {
        return Err(NormaliseError::NotAnObject);
    };
    let mut req = if obj.contains_key("jsonrpc") {
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(NormaliseError::BadVersion);
        }
        if !obj.contains_key("id") {
            obj.insert("id".into(), json!(Uuid::new_v4().to_string()));
        }
        obj
    } else {
        let method = match obj.remove("method") {
            None => Value::String("message/send".into()),
            Some(m) => m,
        };
        let id = obj.remove("id").unwrap_or_else(|| json!(Uuid::new_v4().to_string()));
        let params = match obj.remove("params") {
            Some(p) => p,
            None => Value::Object(std::mem::take(&mut obj)),
        };
        let mut req = Map::new();
        req.insert("jsonrpc".into(), json!("2.0"));
        req.insert("id".into(), id);
        req.insert("method".into(), method);
        req.insert("params".into(), params);
        req
    };
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or(NormaliseError::BadMethod)?
        .to_owned();
    let message_id = match req
        .get_mut("params")
        .and_then(|p| p.get_mut("message"))
        .and_then(Value::as_object_mut)
    {
        Some(message) => match message.get("messageId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Some(id.to_owned()),
            _ => {
                let id = Uuid::new_v4().to_string();
                message.insert("messageId".into(), json!(id));
                Some(id)
            }
        },
        None => None,
    };
    Ok(Normalised {
        body: Value::Object(req),
        method,
        message_id,
    })
}

/// `result.metadata.tool_trace` of an answer, if the agent reported one.
pub fn tool_trace(answer: &Value) -> Option<&Value> {
    answer.pointer("/result/metadata/tool_trace").filter(|v| !v.is_null())
}

/// `result.usage` of an answer, if the agent reported token usage.
pub fn usage(answer: &Value) -> Option<&Value> {
    answer.pointer("/result/usage").filter(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_body_becomes_a_send_with_a_message_id() {
        let n = normalise(json!({ "message": { "role": "user", "parts": [] } })).unwrap();
        assert_eq!(n.method, "message/send");
        assert_eq!(n.body["jsonrpc"], "2.0");
        assert!(n.body["id"].is_string());
        let mid = n.body["params"]["message"]["messageId"].as_str().unwrap();
        assert_eq!(n.message_id.as_deref(), Some(mid));
    }

    #[test]
    fn a_full_request_keeps_its_method_id_and_message_id() {
        let body = json!({ "jsonrpc": "2.0", "id": 7, "method": "SendMessage",
            "params": { "message": { "messageId": "m-1", "parts": [] } } });
        let n = normalise(body.clone()).unwrap();
        assert_eq!(n.body, body);
        assert_eq!(n.method, "SendMessage");
        assert_eq!(n.message_id.as_deref(), Some("m-1"));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert_eq!(normalise(json!([1])), Err(NormaliseError::NotAnObject));
        assert_eq!(
            normalise(json!({ "jsonrpc": "1.0", "method": "x" })),
            Err(NormaliseError::BadVersion)
        );
        assert_eq!(
            normalise(json!({ "jsonrpc": "2.0", "method": "" })),
            Err(NormaliseError::BadMethod)
        );
        assert_eq!(normalise(json!({ "method": 3 })), Err(NormaliseError::BadMethod));
    }

    #[test]
    fn both_dialects_name_the_same_operations() {
        assert_eq!(operation("message/send"), Some((Operation::SendMessage, Dialect::V03)));
        assert_eq!(operation("SendMessage"), Some((Operation::SendMessage, Dialect::V10)));
        assert_eq!(
            operation("tasks/cancel").map(|o| o.0),
            operation("CancelTask").map(|o| o.0)
        );
        assert_eq!(
            operation("tasks/pushNotificationConfig/set").map(|o| o.0),
            Some(Operation::PushNotificationConfig)
        );
        assert_eq!(operation("custom/thing"), None);
    }
}
