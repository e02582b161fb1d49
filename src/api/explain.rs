//! Saying what to change when a request body does not parse.
//!
//! The typed extractor reports the first mismatch in terms of its own type names. When that
//! happens the body is read again here, against what clients most often get wrong, to name the
//! field at fault and what it should hold.

use serde_json::Value;

use crate::error::ProxyError;

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];
const PART_TYPES: &[&str] = &["text", "image_url"];

/// What a body route's request is built around, to name it in a complaint: the field and a
/// value of it that works.
fn main_field(path: &str) -> (&'static str, &'static str) {
    match path {
        "/v1/completions" => ("prompt", "\"Hello\""),
        "/v1/responses" => ("input", "\"Hello\""),
        _ => ("messages", "[{\"role\": \"user\", \"content\": \"Hello\"}]"),
    }
}

/// A precise complaint about `body`, sent to `path` (one of the routes that take a body), or
/// `None` when nothing here recognises the problem. Only chat completions have `messages`; the
/// other routes get the checks of the fields they share with it.
pub fn explain(path: &str, body: &[u8]) -> Option<ProxyError> {
    let (field, example) = main_field(path);
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) if err.is_syntax() || err.is_eof() => {
            return Some(invalid(
                format!(
                    "The body is not valid JSON ({err}). Send a JSON object such as {{\"model\": \"codex-local\", \"{field}\": {example}}}."
                ),
                None,
            ))
        }
        Err(err) => return Some(invalid(format!("The body could not be read as JSON: {err}."), None)),
    };
    let Value::Object(request) = &value else {
        return Some(invalid(
            format!("The body must be a JSON object with `model` and `{field}`."),
            None,
        ));
    };
    match request.get("model") {
        Some(Value::String(_)) => {}
        None | Some(Value::Null) => {
            return Some(invalid(
                "`model` is required: use an id from GET /v1/models, such as \"codex-local\".",
                "model",
            ))
        }
        Some(other) => {
            return Some(invalid(
                format!(
                    "`model` must be a string such as \"codex-local\", not {}.",
                    kind(other)
                ),
                "model",
            ))
        }
    }
    if field == "messages" {
        if let Some(err) = explain_messages(request) {
            return Some(err);
        }
    }
    let shared: &[(&str, &str)] = match field {
        "messages" => &[
            ("stream", "true or false"),
            ("n", "the number 1"),
            ("tools", "an array of tools"),
        ],
        "prompt" => &[("stream", "true or false"), ("n", "the number 1")],
        _ => &[("stream", "true or false"), ("tools", "an array of tools")],
    };
    for &(name, expected) in shared {
        let ok = match (name, request.get(name)) {
            (_, None | Some(Value::Null)) => true,
            ("stream", Some(v)) => v.is_boolean(),
            ("n", Some(v)) => v.is_u64(),
            (_, Some(v)) => v.is_array(),
        };
        if !ok {
            return Some(invalid_at(
                format!("`{name}` must be {expected}."),
                name.to_owned(),
            ));
        }
    }
    None
}

fn explain_messages(request: &serde_json::Map<String, Value>) -> Option<ProxyError> {
    let messages = match request.get("messages") {
        Some(Value::Array(messages)) => messages,
        None | Some(Value::Null) => {
            return Some(invalid(
                "`messages` is required: an array such as [{\"role\": \"user\", \"content\": \"Hello\"}].",
                "messages",
            ))
        }
        Some(other) => {
            return Some(invalid(
                format!("`messages` must be an array of {{\"role\", \"content\"}} objects, not {}.", kind(other)),
                "messages",
            ))
        }
    };
    messages
        .iter()
        .enumerate()
        .find_map(|(i, message)| explain_message(i, message))
}

fn explain_message(i: usize, message: &Value) -> Option<ProxyError> {
    let Value::Object(message) = message else {
        return Some(invalid_at(
            format!("`messages[{i}]` must be an object such as {{\"role\": \"user\", \"content\": \"Hello\"}}."),
            format!("messages[{i}]"),
        ));
    };
    match message.get("role") {
        Some(Value::String(role)) if ROLES.contains(&role.as_str()) => {}
        Some(Value::String(role)) => {
            return Some(invalid_at(
                format!(
                    "`messages[{i}].role` is {role:?}; it must be one of {}.",
                    ROLES.join(", ")
                ),
                format!("messages[{i}].role"),
            ))
        }
        _ => {
            return Some(invalid_at(
                format!(
                    "`messages[{i}].role` is required and must be one of {}.",
                    ROLES.join(", ")
                ),
                format!("messages[{i}].role"),
            ))
        }
    }
    match message.get("content") {
        None | Some(Value::Null | Value::String(_)) => None,
        Some(Value::Array(parts)) => parts.iter().enumerate().find_map(|(j, part)| {
            let part_type = part.get("type").and_then(Value::as_str);
            match part_type {
                Some("text") if part.get("text").is_some_and(Value::is_string) => None,
                Some("text") => Some(invalid_at(
                    format!("`messages[{i}].content[{j}]` is a text part without a string `text`."),
                    format!("messages[{i}].content[{j}].text"),
                )),
                Some("image_url") => None,
                other => Some(invalid_at(
                    format!(
                        "`messages[{i}].content[{j}].type` is {}; content parts must be one of {}.",
                        other.map_or("missing".to_owned(), |t| format!("{t:?}")),
                        PART_TYPES.join(", ")
                    ),
                    format!("messages[{i}].content[{j}].type"),
                )),
            }
        }),
        Some(other) => Some(invalid_at(
            format!(
                "`messages[{i}].content` must be a string or an array of content parts, not {}.",
                kind(other)
            ),
            format!("messages[{i}].content"),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(message: impl Into<String>, param: impl Into<Option<&'static str>>) -> ProxyError {
    ProxyError::invalid(message, param)
}

fn invalid_at(message: String, param: String) -> ProxyError {
    ProxyError::InvalidRequest {
        message,
        param: Some(param),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "/v1/chat/completions";

    fn param_of(body: &str) -> Option<String> {
        explain(CHAT, body.as_bytes()).and_then(|err| err.param().map(str::to_owned))
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(param_of(r#"{"messages": []}"#).as_deref(), Some("model"));
        assert_eq!(
            param_of(r#"{"model": "m", "messages": "hi"}"#).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param_of(r#"{"model": "m", "messages": [{"role": "wizard"}]}"#).as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param_of(r#"{"model": "m", "messages": [{"role": "user", "content": 5}]}"#).as_deref(),
            Some("messages[0].content")
        );
        assert_eq!(
            param_of(
                r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}"#
            )
            .as_deref(),
            Some("messages[0].content[0].type")
        );
        assert_eq!(
            param_of(r#"{"model": "m", "messages": [], "stream": "yes"}"#).as_deref(),
            Some("stream")
        );
    }

    #[test]
    fn bad_json_says_so_and_a_valid_body_is_left_alone() {
        let err = explain(CHAT, b"{\"model\": ").unwrap();
        assert!(
            err.message().starts_with("The body is not valid JSON"),
            "{err}"
        );
        assert!(explain(
            CHAT,
            br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#
        )
        .is_none());
    }

    #[test]
    fn the_other_routes_are_not_asked_for_messages() {
        let explained = |path, body: &str| {
            explain(path, body.as_bytes())
                .map(|err| (err.param().map(str::to_owned), err.message().to_owned()))
        };
        // A field of their own that does not parse is left to the generic complaint.
        assert_eq!(
            explained(
                "/v1/completions",
                r#"{"model": "m", "prompt": "hi", "stop": {}}"#
            ),
            None
        );
        assert_eq!(
            explained(
                "/v1/responses",
                r#"{"model": "m", "input": "hi", "store": 1}"#
            ),
            None
        );
        // The fields they share with chat completions are named.
        let (param, _) = explained(
            "/v1/completions",
            r#"{"model": "m", "prompt": "hi", "stream": "yes"}"#,
        )
        .unwrap();
        assert_eq!(param.as_deref(), Some("stream"));
        let (param, _) = explained(
            "/v1/responses",
            r#"{"model": "m", "input": "hi", "tools": "x"}"#,
        )
        .unwrap();
        assert_eq!(param.as_deref(), Some("tools"));
        // Only where the route has them: completions take no tools, responses no `n`.
        assert_eq!(
            explained(
                "/v1/completions",
                r#"{"model": "m", "prompt": "hi", "tools": "x", "stop": {}}"#
            ),
            None
        );
        assert_eq!(
            explained(
                "/v1/responses",
                r#"{"model": "m", "input": "hi", "n": "x", "store": 1}"#
            ),
            None
        );
        // And the examples name their own field.
        let (_, message) = explained("/v1/responses", "{").unwrap();
        assert!(message.contains(r#""input": "Hello""#), "{message}");
        let (_, message) = explained("/v1/completions", "[]").unwrap();
        assert_eq!(
            message,
            "The body must be a JSON object with `model` and `prompt`."
        );
    }
}
