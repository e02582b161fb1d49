//! The chat completions request converted, once, into the proxy's own conversation and tool
//! set: everything below the API works on these, never on the wire types.

use std::sync::Arc;

use serde_json::Value;

use super::request::{ChatMessage, ContentPart, MessageContent, Role, Tool, ToolCall};
use crate::{
    conversation::{Call, Conversation, Item, Part},
    error::ProxyError,
    images,
    tools::{schema::SchemaBudget, ToolChoice, ToolDef, ToolSet},
};

/// The messages as a conversation, images decoded; a message that cannot be sent to codex is a
/// 400 naming its place.
pub fn conversation(messages: &[ChatMessage]) -> Result<Conversation, ProxyError> {
    if messages.is_empty() {
        return Err(ProxyError::invalid(
            "`messages` is empty: send at least one message, for example {\"role\":\"user\",\"content\":\"Hello\"}.",
            "messages",
        ));
    }
    let items = messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let parts = parts(index, message)?;
            Ok(match message.role {
                Role::System | Role::Developer => Item::Instructions { parts },
                Role::User => Item::User { parts },
                Role::Assistant => Item::Assistant {
                    parts,
                    calls: message.tool_calls.iter().flatten().map(call).collect(),
                },
                Role::Tool => Item::ToolResult {
                    call_id: message
                        .tool_call_id
                        .clone()
                        .map(String::from)
                        .unwrap_or_default(),
                    name: message.name.clone().map(String::from),
                    parts,
                },
            })
        })
        .collect::<Result<Vec<_>, ProxyError>>()?;
    Ok(Conversation { items })
}

fn call(call: &ToolCall) -> Call {
    Call {
        id: call.id.to_string(),
        name: call.function.name.to_string(),
        arguments: call.function.arguments.to_string(),
    }
}

fn parts(index: usize, message: &ChatMessage) -> Result<Vec<Part>, ProxyError> {
    match &message.content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![Part::Text(text.to_string())]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(part_index, part)| match part {
                ContentPart::Text(part) => Ok(Part::Text(part.text.to_string())),
                ContentPart::ImageUrl(part) => {
                    let param = format!("messages[{index}].content[{part_index}].image_url.url");
                    images::decode(&part.image_url.url, &param).map(Part::Image)
                }
            })
            .collect(),
    }
}

/// The most tools one request may offer, as OpenAI allows.
const MAX_TOOLS: usize = 128;

/// The tools the request offers, under its `tool_choice`, refusing what OpenAI would refuse.
pub fn tools(
    tools: Option<&[Tool]>,
    tool_choice: Option<&Value>,
    parallel_tool_calls: Option<bool>,
    budget: SchemaBudget,
) -> Result<Option<Arc<ToolSet>>, ProxyError> {
    let tools = tools.unwrap_or_default();
    if tools.len() > MAX_TOOLS {
        return Err(ProxyError::invalid(
            format!(
                "`tools` has {} tools; at most {MAX_TOOLS} may be offered at once.",
                tools.len()
            ),
            "tools",
        ));
    }
    let choice = match tool_choice {
        None | Some(Value::Null) => Some(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "none" => None,
            "auto" => Some(ToolChoice::Auto),
            "required" => Some(ToolChoice::Required),
            other => {
                return Err(ProxyError::invalid(
                    format!("`tool_choice` {other:?} is not one of \"none\", \"auto\", \"required\", or {{\"type\":\"function\",\"function\":{{\"name\":...}}}}."),
                    "tool_choice",
                ))
            }
        },
        Some(value) => match value.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(ToolChoice::Named(name.to_owned())),
            None => {
                return Err(ProxyError::invalid(
                    "`tool_choice` must be \"none\", \"auto\", \"required\", or {\"type\":\"function\",\"function\":{\"name\":\"<tool>\"}}.",
                    "tool_choice",
                ))
            }
        },
    };
    if let Some(choice) = &choice {
        if tools.is_empty() && *choice != ToolChoice::Auto {
            return Err(ProxyError::invalid(
                "`tool_choice` asks for a tool call but `tools` is empty: offer at least one tool.",
                "tool_choice",
            ));
        }
        if let ToolChoice::Named(name) = choice {
            if !tools.iter().any(|tool| &tool.function.name == name) {
                return Err(ProxyError::invalid(
                    format!(
                        "`tool_choice` names the function {name:?}, which is not among `tools`."
                    ),
                    "tool_choice",
                ));
            }
        }
    }
    let defs = tools
        .iter()
        .enumerate()
        .map(|(index, tool)| tool_def(index, tool))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, def) in defs.iter().enumerate() {
        if defs[..index].iter().any(|earlier| earlier.name == def.name) {
            return Err(ProxyError::InvalidRequest {
                message: format!(
                    "tools[{index}].function.name {:?} is offered twice: give each tool its own name.",
                    def.name
                ),
                param: Some(format!("tools[{index}].function.name")),
            });
        }
    }
    ToolSet::new(defs, choice, parallel_tool_calls.unwrap_or(true), budget).map_err(|bad| {
        ProxyError::InvalidRequest {
            message: format!(
                "tools[{}].function.parameters cannot be used as a JSON Schema: {}",
                bad.index, bad.reason
            ),
            param: Some(format!("tools[{}].function.parameters", bad.index)),
        }
    })
}

fn tool_def(index: usize, tool: &Tool) -> Result<ToolDef, ProxyError> {
    let param = |field: &str| format!("tools[{index}].{field}");
    if tool.kind.as_str() != "function" {
        return Err(ProxyError::InvalidRequest {
            message: format!(
                "tools[{index}] has type {:?}; only \"function\" tools are supported.",
                tool.kind
            ),
            param: Some(param("type")),
        });
    }
    let name = &tool.function.name;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(ProxyError::InvalidRequest {
            message: format!(
                "tools[{index}].function.name {name:?} must be 1 to 64 letters, digits, underscores or dashes."
            ),
            param: Some(param("function.name")),
        });
    }
    // OpenAI takes only an object schema for a function's arguments, and so does codex.
    let root_type = tool
        .function
        .parameters
        .as_ref()
        .and_then(|schema| schema.get("type"));
    if root_type.is_some_and(|kind| kind != "object") {
        return Err(ProxyError::InvalidRequest {
            message: format!(
                "tools[{index}].function.parameters must be a JSON Schema of type \"object\": a function takes named arguments."
            ),
            param: Some(param("function.parameters")),
        });
    }
    Ok(ToolDef {
        name: name.to_string(),
        description: tool.function.description.clone().map(String::from),
        parameters: tool.function.parameters.clone(),
        strict: tool.function.strict.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::request::{FunctionDefinition, ImageUrl, ImageUrlPart, TextPart};

    fn tool(name: &str, parameters: Value) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: None,
                parameters: Some(parameters),
                strict: None,
            },
        }
    }

    fn message(role: Role, content: MessageContent) -> ChatMessage {
        ChatMessage {
            role,
            content: Some(content),
            name: None,
            tool_calls: None,
            tool_call_id: None,
        }
    }

    #[test]
    fn bad_tool_definitions_are_400s_naming_the_field() {
        let cases = [
            (
                vec![tool("a", json!({}))],
                json!("sometimes"),
                "tool_choice",
            ),
            (
                vec![tool("a", json!({}))],
                json!({"type": "function", "function": {"name": "zzz"}}),
                "tool_choice",
            ),
            (
                vec![tool("bad name!", json!({}))],
                json!("auto"),
                "tools[0].function.name",
            ),
            (
                vec![tool("a", json!({"type": 12}))],
                json!("auto"),
                "tools[0].function.parameters",
            ),
            (vec![], json!("required"), "tool_choice"),
        ];
        for (offered, choice, param) in cases {
            let err =
                tools(Some(&offered), Some(&choice), None, SchemaBudget::default()).unwrap_err();
            assert_eq!(err.param(), Some(param), "{err}");
            assert_eq!(err.status().as_u16(), 400);
        }
    }

    #[test]
    fn none_offers_nothing_and_a_named_choice_keeps_its_tool() {
        let offered = [tool("a", json!({})), tool("b", json!({}))];
        let none = tools(
            Some(&offered),
            Some(&json!("none")),
            None,
            SchemaBudget::default(),
        );
        assert!(none.unwrap().is_none());
        let named = tools(
            Some(&offered),
            Some(&json!({"type": "function", "function": {"name": "b"}})),
            Some(false),
            SchemaBudget::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(named.tools.len(), 1);
        assert_eq!(named.choice, ToolChoice::Named("b".into()));
        assert!(!named.parallel);
    }

    #[test]
    fn messages_become_items_and_a_bad_image_is_refused_with_its_place() {
        let texts = message(
            Role::User,
            MessageContent::Parts(vec![
                ContentPart::Text(TextPart { text: "a".into() }),
                ContentPart::Text(TextPart { text: "b".into() }),
            ]),
        );
        assert_eq!(
            conversation(std::slice::from_ref(&texts)).unwrap().items,
            [Item::User {
                parts: vec![Part::Text("a".into()), Part::Text("b".into())]
            }]
        );
        let image = message(
            Role::User,
            MessageContent::Parts(vec![ContentPart::ImageUrl(ImageUrlPart {
                image_url: ImageUrl {
                    url: "data:image/png;base64,AAAA".into(),
                    detail: None,
                },
            })]),
        );
        let err = conversation(&[texts, image]).unwrap_err();
        assert_eq!(err.param(), Some("messages[1].content[0].image_url.url"));
        assert_eq!(err.status().as_u16(), 400);
    }

    #[test]
    fn no_messages_is_a_clear_400() {
        let err = conversation(&[]).unwrap_err();
        assert_eq!(
            (err.status().as_u16(), err.param()),
            (400, Some("messages"))
        );
    }
}
