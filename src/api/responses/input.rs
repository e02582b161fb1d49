//! The Responses API's request converted into the proxy's own conversation and tool set: the
//! `instructions`, and `input` as a string or as items (messages with text and image parts,
//! earlier `function_call`s and their `function_call_output`s).

use serde_json::Value;

use crate::{
    conversation::{Call, Conversation, Item, Part},
    error::ProxyError,
    images,
};

/// `instructions` and `input` as a conversation; an item that cannot be sent to codex is a 400
/// naming its place.
pub fn conversation(instructions: Option<&str>, input: &Value) -> Result<Conversation, ProxyError> {
    let mut items = Vec::new();
    if let Some(text) = instructions.filter(|text| !text.trim().is_empty()) {
        items.push(Item::Instructions {
            parts: vec![Part::Text(text.to_owned())],
        });
    }
    match input {
        Value::String(text) => items.push(Item::User {
            parts: vec![Part::Text(text.clone())],
        }),
        Value::Array(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                add_item(&mut items, index, entry)?;
            }
        }
        _ => {
            return Err(ProxyError::invalid(
                "`input` must be a string or an array of input items.",
                "input",
            ))
        }
    }
    if !items
        .iter()
        .any(|item| !matches!(item, Item::Instructions { .. }))
    {
        return Err(ProxyError::invalid(
            "`input` is empty: send at least one message, for example \"Hello\".",
            "input",
        ));
    }
    Ok(Conversation { items })
}

/// How many `input_image` parts `input` holds (in messages and tool outputs), counted before
/// any is decoded.
pub fn image_parts(input: &Value) -> usize {
    let parts = |content: &Value| {
        content
            .as_array()
            .into_iter()
            .flatten()
            .filter(|part| part["type"] == "input_image")
            .count()
    };
    input
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| parts(&item["content"]) + parts(&item["output"]))
        .sum()
}

fn invalid(index: usize, field: &str, message: String) -> ProxyError {
    ProxyError::InvalidRequest {
        message,
        param: Some(if field.is_empty() {
            format!("input[{index}]")
        } else {
            format!("input[{index}].{field}")
        }),
    }
}

fn string<'a>(entry: &'a Value, index: usize, field: &str) -> Result<&'a str, ProxyError> {
    entry[field].as_str().ok_or_else(|| {
        invalid(
            index,
            field,
            format!("input[{index}].{field} must be a string."),
        )
    })
}

fn add_item(items: &mut Vec<Item>, index: usize, entry: &Value) -> Result<(), ProxyError> {
    let kind = entry["type"].as_str().unwrap_or("message");
    match kind {
        "message" => {
            let parts = parts(index, &entry["content"])?;
            let item = match entry["role"].as_str() {
                Some("user") => Item::User { parts },
                Some("system" | "developer") => Item::Instructions { parts },
                Some("assistant") => Item::Assistant {
                    parts,
                    calls: Vec::new(),
                },
                _ => {
                    return Err(invalid(
                        index,
                        "role",
                        format!("input[{index}].role must be \"user\", \"assistant\", \"system\" or \"developer\"."),
                    ))
                }
            };
            items.push(item);
        }
        "function_call" => {
            let call = Call {
                id: string(entry, index, "call_id")?.to_owned(),
                name: string(entry, index, "name")?.to_owned(),
                arguments: string(entry, index, "arguments")?.to_owned(),
            };
            // Calls of one answer follow each other: they join the answer before them.
            match items.last_mut() {
                Some(Item::Assistant { calls, .. }) => calls.push(call),
                _ => items.push(Item::Assistant {
                    parts: Vec::new(),
                    calls: vec![call],
                }),
            }
        }
        "function_call_output" => {
            let call_id = string(entry, index, "call_id")?.to_owned();
            let parts = match &entry["output"] {
                Value::String(text) => vec![Part::Text(text.clone())],
                output @ Value::Array(_) => self::parts(index, output)?,
                _ => {
                    return Err(invalid(
                        index,
                        "output",
                        format!("input[{index}].output must be a string or an array of content parts."),
                    ))
                }
            };
            items.push(Item::ToolResult {
                call_id,
                name: None,
                parts,
            });
        }
        // Reasoning the client sends back: codex should see what was said, not old thoughts.
        "reasoning" => {}
        other => {
            return Err(invalid(
                index,
                "type",
                format!("input[{index}].type {other:?} is not supported: send messages, function_call, function_call_output and item_reference items."),
            ))
        }
    }
    Ok(())
}

fn parts(index: usize, content: &Value) -> Result<Vec<Part>, ProxyError> {
    match content {
        Value::String(text) => Ok(vec![Part::Text(text.clone())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(at, part)| match part["type"].as_str() {
                Some("input_text" | "output_text" | "text") => part["text"]
                    .as_str()
                    .map(|text| Part::Text(text.to_owned()))
                    .ok_or_else(|| {
                        invalid(index, &format!("content[{at}].text"), format!("input[{index}].content[{at}].text must be a string."))
                    }),
                Some("input_image") => {
                    let param = format!("input[{index}].content[{at}].image_url");
                    match part["image_url"].as_str() {
                        Some(url) => images::decode(url, &param).map(Part::Image),
                        None => Err(ProxyError::InvalidRequest {
                            message: format!("{param} must be a data URL (file ids are not supported)."),
                            param: Some(param),
                        }),
                    }
                }
                other => Err(invalid(
                    index,
                    &format!("content[{at}].type"),
                    format!("input[{index}].content[{at}].type {other:?} is not supported: send input_text or input_image parts."),
                )),
            })
            .collect(),
        _ => Err(invalid(
            index,
            "content",
            format!("input[{index}].content must be a string or an array of content parts."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_string_is_one_user_turn_after_the_instructions() {
        let conversation = conversation(Some("Be brief."), &json!("Hi")).unwrap();
        assert_eq!(
            conversation.items,
            [
                Item::Instructions {
                    parts: vec![Part::Text("Be brief.".into())]
                },
                Item::User {
                    parts: vec![Part::Text("Hi".into())]
                },
            ]
        );
    }

    #[test]
    fn calls_join_their_answer_and_outputs_are_tool_results() {
        let input = json!([
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "Sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "Rain"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]);
        let items = conversation(None, &input).unwrap().items;
        assert_eq!(items.len(), 4, "{items:?}");
        let Item::Assistant { calls, .. } = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(calls.len(), 2);
        assert!(
            matches!(&items[3], Item::ToolResult { call_id, parts, .. } if call_id == "c2" && parts == &[Part::Text("Rain".into())])
        );
    }

    #[test]
    fn images_are_counted_in_messages_and_tool_outputs_without_decoding() {
        let input = json!([
            {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "not even a URL"}]},
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "x"}]},
            {"role": "user", "content": "text only"},
        ]);
        assert_eq!(image_parts(&input), 2);
        assert_eq!(image_parts(&json!("hi")), 0);
    }

    #[test]
    fn what_cannot_be_sent_is_a_400_naming_its_place() {
        let param = |input: Value| match conversation(None, &input) {
            Err(ProxyError::InvalidRequest { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(param(json!(42)).as_deref(), Some("input"));
        assert_eq!(param(json!([])).as_deref(), Some("input"));
        assert_eq!(
            param(json!([{"role": "robot", "content": "x"}])).as_deref(),
            Some("input[0].role")
        );
        assert_eq!(
            param(json!([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]))
                .as_deref(),
            Some("input[0].content[0].type")
        );
        assert_eq!(
            param(json!([{"type": "web_search_call"}])).as_deref(),
            Some("input[0].type")
        );
    }
}
