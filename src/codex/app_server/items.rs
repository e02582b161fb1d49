//! The conversation as codex's app-server takes it natively: the leading instructions as the
//! thread's developer instructions, the client's tools as dynamic tools, every earlier message,
//! call and result as a Responses API item for `thread/inject_items`, and the last user message
//! as the turn's input. Pure, so every case is a unit test.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde_json::json;

use super::protocol::{ContentItem, DynamicToolSpec, ResponseItem};
use crate::{
    conversation::{Conversation, Item, Part},
    images::Image,
    prompt::strip_reasoning,
    tools::{ToolChoice, ToolSet},
};

/// What one request's thread is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadInput {
    pub developer_instructions: Option<String>,
    pub tools: Vec<DynamicToolSpec>,
    /// Injected before the turn starts, in order.
    pub history: Vec<ResponseItem>,
    /// The turn's input: the last user message, or nothing when the conversation ends in tool
    /// results or an answer (the model goes on from there).
    pub input: Vec<Part>,
    /// The call ids the conversation already holds: a raw `function_call` item with one of
    /// these is history codex echoes, not a call the model just made.
    pub known_calls: HashSet<String>,
    /// The name codex knows a client tool by, where it is not the tool's own: codex name ->
    /// client name.
    pub aliases: HashMap<String, String>,
}

/// Names of codex's own tools, in chat mode or in agent mode. codex accepts a dynamic tool of
/// the same name and then drops it without a word (its own tool answers the call, or
/// "unsupported call"), so a client tool of such a name is offered under an alias. The list
/// is the same in both modes: a name renamed for nothing costs nothing.
const CODEX_TOOL_NAMES: &[&str] = &[
    "apply_patch",
    "create_goal",
    "exec_command",
    "get_goal",
    "local_shell",
    "request_user_input",
    "shell",
    "shell_command",
    "spawn_agent",
    "tool_search",
    "update_goal",
    "update_plan",
    "view_image",
    "web_search",
    "write_stdin",
];

/// Whether codex keeps `name` for itself: one of its own tools, or an MCP tool's name, which
/// `thread/start` refuses as reserved.
fn reserved(name: &str) -> bool {
    CODEX_TOOL_NAMES.contains(&name) || name == "mcp" || name.starts_with("mcp__")
}

/// The name codex knows a client tool by: its own, or for a reserved one `client_<name>`, with
/// more underscores in front should an offered tool already have that name. The same for the
/// tools offered and for the calls in the history, whichever tools this request offers.
fn codex_name(name: &str, offered: Option<&ToolSet>) -> String {
    if !reserved(name) {
        return name.to_owned();
    }
    let taken = |alias: &str| offered.is_some_and(|set| set.get(alias).is_some());
    let mut alias = format!("client_{name}");
    while taken(&alias) {
        alias.insert(0, '_');
    }
    alias
}

/// What a call without a result in the conversation is answered with: the Responses API
/// refuses a call whose output is missing, and the client chose not to send one.
pub const MISSING_RESULT: &str = "(the client sent no result for this call)";

/// `conversation` as the thread's start, history and turn input. `instructions` are the API's
/// own additions to the developer instructions.
pub fn thread_input(
    conversation: Conversation,
    tools: Option<&ToolSet>,
    instructions: Vec<String>,
) -> ThreadInput {
    let codex_name = |name: &str| codex_name(name, tools);
    let aliases: HashMap<String, String> = tools
        .into_iter()
        .flat_map(|set| &set.tools)
        .filter(|tool| reserved(&tool.name))
        .map(|tool| (codex_name(&tool.name), tool.name.clone()))
        .collect();
    let mut items = conversation.items;
    let input = match items.last() {
        Some(Item::User { .. }) => match items.pop() {
            Some(Item::User { parts }) => parts,
            _ => unreachable!("the last item is a user message"),
        },
        _ => Vec::new(),
    };
    // The instructions before the first message are the thread's; later ones stay in place.
    let leading = items
        .iter()
        .take_while(|item| matches!(item, Item::Instructions { parts } if !has_images(parts)))
        .count();
    let mut developer: Vec<String> = items
        .drain(..leading)
        .map(|item| texts(item.parts()).join("\n"))
        .filter(|text| !text.trim().is_empty())
        .collect();
    if let Some(set) = tools {
        developer.extend(tool_instructions(set, &codex_name));
    }
    developer.extend(instructions);

    // Where each call's last result stands: a call is answered by a result after it.
    let results: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .filter_map(|(at, item)| match item {
            Item::ToolResult { call_id, .. } => Some((call_id.as_str(), at)),
            _ => None,
        })
        .collect();
    let mut calls_so_far: HashSet<String> = HashSet::new();
    let mut history = Vec::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        match item {
            Item::Instructions { parts } => {
                // Images go in a user message: the model takes them only there.
                history.push(message("developer", parts, false, false));
                if has_images(parts) {
                    history.push(message("user", parts, true, true));
                }
            }
            Item::User { parts } => history.push(message("user", parts, false, true)),
            Item::Assistant { parts, calls } => {
                let text = strip_reasoning(&texts(parts).join("\n"));
                if !text.is_empty() {
                    history.push(ResponseItem::Message {
                        role: "assistant".into(),
                        content: vec![ContentItem::OutputText { text }],
                    });
                }
                for call in calls {
                    history.push(ResponseItem::FunctionCall {
                        call_id: call.id.clone(),
                        name: codex_name(&call.name),
                        arguments: call.arguments.clone(),
                    });
                    calls_so_far.insert(call.id.clone());
                    if results
                        .get(call.id.as_str())
                        .is_none_or(|&result| result < at)
                    {
                        history.push(ResponseItem::FunctionCallOutput {
                            call_id: call.id.clone(),
                            output: MISSING_RESULT.into(),
                        });
                    }
                }
            }
            Item::ToolResult {
                call_id,
                name,
                parts,
            } => {
                let output = texts(parts).join("\n");
                if calls_so_far.contains(call_id) {
                    history.push(ResponseItem::FunctionCallOutput {
                        call_id: call_id.clone(),
                        output,
                    });
                } else {
                    // A result with no call before it: the Responses API refuses an orphan
                    // output, so the model reads it as the user's words.
                    let name = name.as_deref().unwrap_or("a tool");
                    history.push(ResponseItem::Message {
                        role: "user".into(),
                        content: vec![ContentItem::InputText {
                            text: format!("The result of {name} (call {call_id}):\n{output}"),
                        }],
                    });
                }
                if has_images(parts) {
                    history.push(message("user", parts, true, true));
                }
            }
        }
    }
    ThreadInput {
        developer_instructions: (!developer.is_empty()).then(|| developer.join("\n\n")),
        tools: tools
            .map(|set| dynamic_tools(set, &codex_name))
            .unwrap_or_default(),
        history,
        input,
        known_calls: calls_so_far,
        aliases,
    }
}

/// What codex offers no switch for, asked of the model in words.
fn tool_instructions(set: &ToolSet, codex_name: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut out = Vec::new();
    match &set.choice {
        ToolChoice::Auto => {}
        ToolChoice::Required => out.push(
            "In this reply, call one or more of the provided functions; do not answer with text alone."
                .to_owned(),
        ),
        ToolChoice::Named(name) => out.push(format!(
            "In this reply, call the function `{}`; do not answer with text alone.",
            codex_name(name)
        )),
    }
    if !set.parallel {
        out.push("Call at most one function per reply.".to_owned());
    }
    out
}

fn dynamic_tools(set: &ToolSet, codex_name: &dyn Fn(&str) -> String) -> Vec<DynamicToolSpec> {
    set.tools
        .iter()
        .map(|tool| DynamicToolSpec {
            kind: "function".into(),
            name: codex_name(&tool.name),
            description: tool.description.clone().unwrap_or_default(),
            input_schema: tool
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        })
        .collect()
}

fn texts(parts: &[Part]) -> Vec<&str> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            Part::Image(_) => None,
        })
        .collect()
}

fn has_images(parts: &[Part]) -> bool {
    parts.iter().any(|part| matches!(part, Part::Image(_)))
}

/// A message of `role` with its text (unless `images_only`: a tool result's or instruction's
/// images, the text given elsewhere) and, with `images`, its images.
fn message(role: &str, parts: &[Part], images_only: bool, images: bool) -> ResponseItem {
    let content = parts
        .iter()
        .filter_map(|part| match part {
            Part::Text(_) if images_only => None,
            Part::Image(_) if !images => None,
            Part::Text(text) => Some(ContentItem::InputText { text: text.clone() }),
            Part::Image(image) => Some(ContentItem::InputImage {
                image_url: data_url(image),
            }),
        })
        .collect();
    ResponseItem::Message {
        role: role.into(),
        content,
    }
}

fn data_url(image: &Image) -> String {
    format!(
        "data:{};base64,{}",
        image.media_type(),
        base64::engine::general_purpose::STANDARD.encode(&image.bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        conversation::Call,
        tools::{
            schema::SchemaBudget,
            tests::{offered, tool},
            ToolSet,
        },
    };

    fn text(text: &str) -> Vec<Part> {
        vec![Part::Text(text.into())]
    }

    fn user(text_: &str) -> Item {
        Item::User { parts: text(text_) }
    }

    fn input_text(role: &str, text: &str) -> ResponseItem {
        ResponseItem::Message {
            role: role.into(),
            content: vec![ContentItem::InputText { text: text.into() }],
        }
    }

    #[test]
    fn earlier_turns_are_items_in_order_and_the_last_user_message_is_the_input() {
        let conversation = Conversation {
            items: vec![
                Item::Instructions {
                    parts: text("Be brief."),
                },
                user("Hi"),
                Item::Assistant {
                    parts: text("<think>old thoughts</think>Hello!"),
                    calls: vec![],
                },
                user("Weather?"),
            ],
        };
        let thread = thread_input(conversation, None, vec![]);
        assert_eq!(thread.developer_instructions.as_deref(), Some("Be brief."));
        assert_eq!(
            thread.history,
            vec![
                input_text("user", "Hi"),
                ResponseItem::Message {
                    role: "assistant".into(),
                    content: vec![ContentItem::OutputText {
                        text: "Hello!".into()
                    }],
                },
            ]
        );
        assert_eq!(thread.input, text("Weather?"));
        assert!(thread.tools.is_empty());
    }

    #[test]
    fn a_conversation_ending_in_tool_results_has_no_input_and_keeps_call_ids() {
        let conversation = Conversation {
            items: vec![
                user("Weather in Paris?"),
                Item::Assistant {
                    parts: vec![],
                    calls: vec![Call {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: "{\"city\":\"Paris\"}".into(),
                    }],
                },
                Item::ToolResult {
                    call_id: "call_1".into(),
                    name: None,
                    parts: text("Sunny"),
                },
            ],
        };
        let set = offered(
            vec![tool("get_weather", json!({"type": "object"}), false)],
            true,
        );
        let thread = thread_input(conversation, Some(&set), vec![]);
        assert!(thread.input.is_empty());
        assert_eq!(
            thread.history,
            vec![
                input_text("user", "Weather in Paris?"),
                ResponseItem::FunctionCall {
                    call_id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
                ResponseItem::FunctionCallOutput {
                    call_id: "call_1".into(),
                    output: "Sunny".into(),
                },
            ]
        );
        assert_eq!(thread.tools.len(), 1);
        assert_eq!(thread.tools[0].name, "get_weather");
        assert!(thread.known_calls.contains("call_1"));
    }

    #[test]
    fn a_call_without_result_is_answered_and_an_orphan_result_is_the_users_words() {
        let conversation = Conversation {
            items: vec![
                Item::Assistant {
                    parts: vec![],
                    calls: vec![Call {
                        id: "a".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                },
                Item::ToolResult {
                    call_id: "zzz".into(),
                    name: Some("g".into()),
                    parts: text("42"),
                },
                user("go on"),
            ],
        };
        let thread = thread_input(conversation, None, vec![]);
        assert_eq!(
            thread.history[1],
            ResponseItem::FunctionCallOutput {
                call_id: "a".into(),
                output: MISSING_RESULT.into()
            }
        );
        assert_eq!(
            thread.history[2],
            input_text("user", "The result of g (call zzz):\n42")
        );
    }

    #[test]
    fn later_instructions_stay_in_place_and_the_apis_own_come_last() {
        let conversation = Conversation {
            items: vec![
                Item::Instructions {
                    parts: text("First."),
                },
                user("Hi"),
                Item::Instructions {
                    parts: text("Now in French."),
                },
                user("Bonjour"),
            ],
        };
        let set = ToolSet::new(
            vec![tool("f", json!({}), false)],
            Some(ToolChoice::Required),
            false,
            SchemaBudget::default(),
        )
        .unwrap()
        .unwrap();
        let thread = thread_input(conversation, Some(&set), vec!["Answer in JSON.".into()]);
        let developer = thread.developer_instructions.unwrap();
        assert!(developer.starts_with("First.\n\nIn this reply, call one or more"));
        assert!(developer.contains("at most one function per reply"));
        assert!(developer.ends_with("Answer in JSON."));
        assert_eq!(thread.history[1], input_text("developer", "Now in French."));
    }

    #[test]
    fn a_tool_named_like_one_of_codexs_own_is_offered_under_an_alias() {
        let set = offered(
            vec![
                tool("apply_patch", json!({}), false),
                tool("client_apply_patch", json!({}), false),
                tool("get_weather", json!({}), false),
            ],
            true,
        );
        let conversation = Conversation {
            items: vec![
                Item::Assistant {
                    parts: vec![],
                    calls: vec![Call {
                        id: "c".into(),
                        name: "apply_patch".into(),
                        arguments: "{}".into(),
                    }],
                },
                user("again"),
            ],
        };
        let thread = thread_input(conversation, Some(&set), vec![]);
        let names: Vec<&str> = thread.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["_client_apply_patch", "client_apply_patch", "get_weather"]
        );
        assert_eq!(
            thread
                .aliases
                .get("_client_apply_patch")
                .map(String::as_str),
            Some("apply_patch")
        );
        assert!(
            matches!(&thread.history[0], ResponseItem::FunctionCall { name, .. } if name == "_client_apply_patch"),
            "history calls it by the same alias"
        );
    }

    #[test]
    fn history_calls_of_reserved_names_are_renamed_whatever_is_offered_now() {
        let conversation = Conversation {
            items: vec![
                Item::ToolResult {
                    call_id: "c".into(),
                    name: None,
                    parts: text("early"),
                },
                Item::Assistant {
                    parts: vec![],
                    calls: vec![Call {
                        id: "c".into(),
                        name: "mcp__fs__read".into(),
                        arguments: "{}".into(),
                    }],
                },
                user("go on"),
            ],
        };
        let thread = thread_input(conversation, None, vec![]);
        assert!(
            matches!(&thread.history[1], ResponseItem::FunctionCall { name, .. } if name == "client_mcp__fs__read"),
            "{:?}",
            thread.history
        );
        assert_eq!(
            thread.history[2],
            ResponseItem::FunctionCallOutput {
                call_id: "c".into(),
                output: MISSING_RESULT.into()
            },
            "a result before its call does not answer it"
        );
    }

    #[test]
    fn images_in_earlier_turns_become_data_urls() {
        let png = Image {
            bytes: b"\x89PNG\r\n\x1a\nrest".to_vec(),
            extension: "png",
        };
        let conversation = Conversation {
            items: vec![
                Item::User {
                    parts: vec![Part::Text("Look".into()), Part::Image(png)],
                },
                user("And now?"),
            ],
        };
        let thread = thread_input(conversation, None, vec![]);
        let ResponseItem::Message { content, .. } = &thread.history[0] else {
            panic!()
        };
        assert!(
            matches!(&content[1], ContentItem::InputImage { image_url } if image_url.starts_with("data:image/png;base64,iVBORw0KGg"))
        );
    }
}
