//! The tool-call parser against tricky answers. Each case's input and result is snapshotted.

use std::sync::Arc;

use codex_openai_proxy::tools::{
    extract::extract, schema::SchemaBudget, ToolChoice, ToolDef, ToolSet,
};
use serde_json::{json, Value};

use crate::support::snapshot;

fn tool(name: &str, parameters: Value, strict: bool) -> ToolDef {
    ToolDef {
        name: name.into(),
        description: None,
        parameters: Some(parameters),
        strict,
    }
}

/// The tools offered under `choice`.
fn set(choice: ToolChoice, parallel: bool) -> Arc<ToolSet> {
    ToolSet::new(tools(), Some(choice), parallel, SchemaBudget::default())
        .unwrap()
        .unwrap()
}

fn tools() -> Vec<ToolDef> {
    vec![
        tool(
            "get_weather",
            json!({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}),
            false,
        ),
        tool(
            "search",
            json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"], "additionalProperties": false}),
            true,
        ),
        tool(
            "get_time",
            json!({"type": "object", "properties": {}}),
            false,
        ),
    ]
}

const CASES: &[(&str, &str)] = &[
    ("bare_object", r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#),
    ("prose_before_and_after", "Let me check that for you.\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\nOne moment."),
    ("fence_with_json_tag", "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n```"),
    ("fence_without_tag", "```\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n```"),
    ("prose_then_fence", "I'll look that up:\n\n```json\n{\"name\": \"search\", \"arguments\": {\"query\": \"rust async\"}}\n```\n"),
    ("two_calls_on_separate_lines", "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}"),
    ("three_calls_mixed_tools", "{\"name\": \"get_time\", \"arguments\": {}}\n{\"name\": \"search\", \"arguments\": {\"query\": \"news\"}}\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lima\"}}"),
    ("two_calls_on_one_line", r#"{"name": "get_time", "arguments": {}} {"name": "get_weather", "arguments": {"city": "Kyiv"}}"#),
    ("json_array_of_calls", r#"[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]"#),
    ("tool_calls_wrapper", r#"{"tool_calls": [{"name": "search", "arguments": {"query": "wrapper"}}]}"#),
    ("openai_shape_with_string_arguments", r#"{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}"#),
    ("arguments_as_encoded_string", r#"{"name": "get_weather", "arguments": "{\"city\":\"Berlin\",\"unit\":\"C\"}"}"#),
    ("nested_objects_and_arrays", r#"{"name": "get_weather", "arguments": {"city": "Paris", "options": {"days": [1, 2, {"hourly": true}], "meta": {"a": {"b": {}}}}}}"#),
    ("braces_and_quotes_inside_strings", r#"{"name": "search", "arguments": {"query": "what does } mean { in \"JSON\"? [x]"}}"#),
    ("escapes_inside_strings", r#"{"name": "search", "arguments": {"query": "line1\nline2\ttab \\ backslash \u00e9 \/"}}"#),
    ("unicode_arguments", r#"{"name": "get_weather", "arguments": {"city": "東京 🌸 Zürich"}}"#),
    ("unknown_tool_stays_content", r#"{"name": "launch_rockets", "arguments": {"count": 3}}"#),
    ("json_that_is_not_a_call", "Here is the config you asked for: {\"name\": \"prod\", \"replicas\": 3}"),
    ("truncated_call_stays_content", r#"{"name": "get_weather", "arguments": {"city": "Par"#),
    ("prose_discussing_json", "In JSON an object looks like {\"key\": \"value\"}, an array like [1, 2], and {} is empty."),
    ("call_inside_prose_about_json", "JSON objects use braces, like {\"a\": 1}. Now the call:\n{\"name\": \"get_time\", \"arguments\": {}}"),
    ("strict_tool_failing_its_schema_stays_content", r#"{"name": "search", "arguments": {"q": "missing the required field"}}"#),
    ("lax_tool_failing_its_schema_is_still_a_call", r#"{"name": "get_weather", "arguments": {"city": 42}}"#),
    ("call_without_arguments_key", r#"{"name": "get_time"}"#),
    ("parameters_instead_of_arguments", r#"{"name": "get_weather", "parameters": {"city": "Quito"}}"#),
    ("string_arguments_that_are_not_json", r#"{"name": "get_weather", "arguments": "Paris"}"#),
    ("fenced_json_that_is_not_a_call", "```json\n{\"city\": \"Paris\", \"temp\": 18}\n```"),
    ("fence_mixing_a_call_and_other_json", "```json\n{\"name\": \"get_time\", \"arguments\": {}}\n{\"note\": \"not a call\"}\n```"),
    ("markdown_brackets", "See [the docs](https://example.com) and footnote [1]."),
    ("array_with_a_non_call", r#"[{"name": "get_time", "arguments": {}}, {"other": true}]"#),
    ("python_dict_is_not_json", "{'name': 'get_weather', 'arguments': {'city': 'Paris'}}"),
    ("call_with_extra_keys_is_not_a_call", r#"{"name": "get_weather", "arguments": {"city": "Paris"}, "description": "a tool"}"#),
    ("plain_text_without_json", "The weather in Paris is mild today."),
];

#[test]
fn every_tricky_answer_parses_as_snapshotted() {
    let set = set(ToolChoice::Auto, true);
    assert!(CASES.len() >= 25);
    for (name, answer) in CASES {
        let extraction = extract(answer, &set);
        // A call's arguments are always compact JSON objects.
        for call in &extraction.calls {
            let args: Value = serde_json::from_str(&call.arguments).unwrap();
            assert!(args.is_object(), "{name}");
            assert_eq!(args.to_string(), call.arguments, "{name}: compact");
        }
        if extraction.calls.is_empty() {
            assert_eq!(
                extraction.content, *answer,
                "{name}: without calls the answer is untouched"
            );
        }
        snapshot!(
            format!("tool_parse_{name}"),
            json!({"answer": answer, "extraction": extraction})
        );
    }
}

#[test]
fn parallel_false_keeps_only_the_first_call() {
    let set = set(ToolChoice::Auto, false);
    let extraction = extract(CASES[5].1, &set);
    assert_eq!(extraction.calls.len(), 1);
    assert_eq!(extraction.calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(extraction.content, "");
}

#[test]
fn a_named_choice_only_counts_calls_of_that_tool() {
    let set = set(ToolChoice::Named("get_time".into()), true);
    let extraction = extract(CASES[6].1, &set);
    assert_eq!(
        extraction
            .calls
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["get_time"]
    );
}

#[test]
fn an_answer_of_unterminated_nestings_is_scanned_in_bounded_time() {
    let set = set(ToolChoice::Auto, true);
    // A call, then 1 MiB where every bracket opens a value that never closes: parsed from each
    // bracket, the rest of the answer would be read 40,000 times over.
    let call = r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#;
    let bomb = "[1,1,1,1,1,1,1,1,1,1,1,1,".repeat(40_000);
    let fences = "``` ".repeat(50_000);
    let answer = format!("{call}\n{bomb}\n{fences}");
    let started = std::time::Instant::now();
    let extraction = extract(&answer, &set);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(extraction.calls.len(), 1);
    assert_eq!(extraction.calls[0].arguments, r#"{"city":"Paris"}"#);
}
