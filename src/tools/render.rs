//! What the model is told about the client's tools, and how to call them.
//!
//! The call format is the documented one: a JSON object `{"name": ..., "arguments": {...}}` per
//! call. Past calls in the conversation are shown in the same format, so the model sees its own
//! earlier calls written the way it is asked to write new ones.

use std::fmt::Write;

use serde_json::{json, Value};

use super::{ToolChoice, ToolSet};
use crate::prompt::escape_tags;

/// One call in the documented format, compact.
pub fn call_json(name: &str, arguments: &Value) -> String {
    json!({"name": name, "arguments": arguments}).to_string()
}

/// The `<tools>` section of the prompt.
pub fn tools_section(set: &ToolSet) -> String {
    let mut out = String::from("<tools>\n");
    out.push_str(
        "The user's application offers the tools below. They run on the user's side, not yours: \
you call one by writing a tool call in your reply, and its result comes back in a later \
<tool_result> message. Do not try to carry out these tools yourself with commands or files.\n\n",
    );
    for tool in &set.tools {
        let _ = writeln!(out, "<tool name=\"{}\">", tool.name);
        if let Some(description) = tool.description.as_deref().filter(|d| !d.trim().is_empty()) {
            let _ = writeln!(out, "description: {}", escape_tags(description.trim()));
        }
        let parameters = tool
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let _ = writeln!(
            out,
            "parameters (JSON Schema): {}",
            escape_tags(&parameters.to_string())
        );
        out.push_str("</tool>\n");
    }
    out.push_str("\nTo call a tool, write a JSON object of exactly this form, on its own line:\n");
    out.push_str("{\"name\": \"<tool name>\", \"arguments\": {<arguments that match the tool's parameters>}}\n");
    out.push_str("For example: ");
    let example = &set.tools[0];
    out.push_str(&call_json(&example.name, &json!({})));
    out.push('\n');
    if set.parallel {
        out.push_str("To call several tools at once, write one such object per line.\n");
    } else {
        out.push_str("Call at most one tool in a reply.\n");
    }
    out.push_str(match &set.choice {
        ToolChoice::Auto => {
            "Call a tool only when it helps answer the user; otherwise reply in plain text with no tool-call JSON.\n"
        }
        ToolChoice::Required => "You must call at least one of these tools in this reply.\n",
        ToolChoice::Named(_) => "You must call this tool in this reply.\n",
    });
    out.push_str(
        "When you call tools, write nothing after the calls: wait for their results. Never invent a tool result.\n",
    );
    out.push_str("</tools>\n\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::{schema::SchemaBudget, tests::tool};

    #[test]
    fn the_section_lists_each_tool_and_the_call_format() {
        let tools = vec![
            tool(
                "get_weather",
                json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
                false,
            ),
            tool("get_time", json!({"type": "object"}), false),
        ];
        let set = ToolSet::new(
            tools,
            Some(ToolChoice::Required),
            false,
            SchemaBudget::default(),
        )
        .unwrap()
        .unwrap();
        let text = tools_section(&set);
        assert!(text.contains("<tool name=\"get_weather\">\ndescription: The get_weather tool.\nparameters (JSON Schema): {\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}\n</tool>"), "{text}");
        assert!(
            text.contains("{\"name\": \"<tool name>\", \"arguments\": {"),
            "{text}"
        );
        assert!(text.contains("Call at most one tool in a reply."), "{text}");
        assert!(
            text.contains("You must call at least one of these tools"),
            "{text}"
        );
    }
}
