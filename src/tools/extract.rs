//! Reading tool calls back out of the model's answer.
//!
//! A scanner finds every JSON value in the text, in or out of fenced blocks, and serde_json does
//! the parsing, so braces and quotes inside strings, escapes and nesting are handled by a real
//! parser rather than a pattern. A value counts as a call only if it has a call's shape and names
//! an offered tool; any other JSON stays in the content, untouched.

use serde_json::{Map, Value};

use super::{schema::Checked, ToolSet};

/// A call found in the answer, arguments re-serialised as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundCall {
    pub name: String,
    pub arguments: String,
}

/// The answer split into what the user reads and the calls.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Extraction {
    pub content: String,
    pub calls: Vec<FoundCall>,
}

/// A stretch of the answer that holds calls and leaves the content.
struct Span {
    start: usize,
    end: usize,
    calls: Vec<FoundCall>,
}

/// How many times its own length the parser may read of one answer: a failed parse at every
/// bracket of an unterminated nesting would otherwise read the rest of the answer each time.
const PARSE_BUDGET_FACTOR: usize = 4;

pub fn extract(text: &str, set: &ToolSet) -> Extraction {
    let fences = fenced_spans(text, set);
    let mut spans = Vec::new();
    let mut budget = PARSE_BUDGET_FACTOR * text.len() + 64 * 1024;
    let mut at = 0;
    while let Some(offset) = text[at..].find(['{', '[']) {
        let start = at + offset;
        // Fences are sorted and apart: the one that could hold `start` is the last to begin
        // at or before it.
        let before = fences.partition_point(|s| s.start <= start);
        if let Some(fence) = before.checked_sub(1).map(|i| &fences[i]) {
            if start < fence.end {
                at = fence.end;
                continue;
            }
        }
        let (parsed, read) = first_value(&text[start..]);
        budget = budget.saturating_sub(read);
        if budget == 0 {
            tracing::warn!(
                "the answer is too costly to scan for more tool calls; the rest stays content"
            );
            break;
        }
        match parsed {
            Some((value, len)) => {
                if let Some(calls) = calls_in(&value, set) {
                    spans.push(Span {
                        start,
                        end: start + len,
                        calls,
                    });
                }
                // Skip the whole value: JSON nested in a non-call is not a call either.
                at = start + len;
            }
            None => at = start + 1,
        }
    }
    spans.extend(fences.into_iter().filter(|fence| !fence.calls.is_empty()));
    if spans.is_empty() {
        return Extraction {
            content: text.to_owned(),
            calls: Vec::new(),
        };
    }
    spans.sort_by_key(|s| s.start);

    let mut content = String::with_capacity(text.len());
    let mut calls = Vec::new();
    let mut copied = 0;
    for span in spans {
        content.push_str(&text[copied..span.start]);
        copied = span.end;
        calls.extend(span.calls);
    }
    content.push_str(&text[copied..]);

    if !set.parallel && calls.len() > 1 {
        tracing::warn!(
            found = calls.len(),
            "parallel_tool_calls is false; keeping only the first call"
        );
        calls.truncate(1);
    }
    Extraction {
        content: tidy(&content),
        calls,
    }
}

/// Parses the JSON value at the start of `text`, returning it and its length in bytes, and how
/// many bytes the parser read either way.
fn first_value(text: &str) -> (Option<(Value, usize)>, usize) {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match stream.next() {
        Some(Ok(value)) => {
            let len = stream.byte_offset();
            (Some((value, len)), len)
        }
        Some(Err(err)) => (None, error_offset(text, err.line(), err.column())),
        None => (None, text.len()),
    }
}

/// The byte offset of serde_json's 1-based line and column.
fn error_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start = match line {
        0 | 1 => 0,
        _ => text
            .match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1),
    };
    (line_start + column).min(text.len())
}

/// Fenced code blocks (```` ``` ```` or ```` ```json ````), each with its calls when its whole
/// body is tool calls, and with none when it is code the model shows: a call inside such a
/// block is an example, and taking it out would leave the block half emptied.
fn fenced_spans(text: &str, set: &ToolSet) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find("```") {
        let open = search + found;
        // Only the whitespace before the fence is looked at, not the whole line.
        let at_line_start = text[..open]
            .trim_end_matches(|c: char| c.is_whitespace() && c != '\n')
            .bytes()
            .last()
            .is_none_or(|b| b == b'\n');
        let Some(body_start) = text[open..].find('\n').map(|i| open + i + 1) else {
            break;
        };
        let Some(close) = text[body_start..].find("```").map(|i| body_start + i) else {
            break;
        };
        let tag = text[open + 3..body_start].trim();
        let tag_ok = tag.is_empty()
            || tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let end = close + 3;
        if at_line_start && tag_ok {
            match body_calls(&text[body_start..close], set) {
                Some(calls) => {
                    let end = if text[end..].starts_with('\n') {
                        end + 1
                    } else {
                        end
                    };
                    spans.push(Span {
                        start: open,
                        end,
                        calls,
                    });
                }
                None => spans.push(Span {
                    start: open,
                    end,
                    calls: Vec::new(),
                }),
            }
        }
        search = end;
    }
    spans
}

/// The calls in a fenced body made of nothing but call JSON (one or more values).
fn body_calls(body: &str, set: &ToolSet) -> Option<Vec<FoundCall>> {
    let mut calls = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
    for value in stream.by_ref() {
        calls.extend(calls_in(&value.ok()?, set)?);
    }
    (!calls.is_empty()).then_some(calls)
}

/// The calls a JSON value stands for: one call object, an array of them, or a
/// `{"tool_calls": [...]}` wrapper. `None` if it is not wholly calls of offered tools.
fn calls_in(value: &Value, set: &ToolSet) -> Option<Vec<FoundCall>> {
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| call(item.as_object()?, set))
            .collect(),
        Value::Object(map) => match map.get("tool_calls") {
            Some(Value::Array(items)) if map.len() == 1 && !items.is_empty() => items
                .iter()
                .map(|item| call(item.as_object()?, set))
                .collect(),
            _ => call(map, set).map(|c| vec![c]),
        },
        _ => None,
    }
}

/// Keys a call object may have besides its name and arguments.
const CALL_KEYS: &[&str] = &["name", "arguments", "parameters", "id", "type", "function"];

fn call(map: &Map<String, Value>, set: &ToolSet) -> Option<FoundCall> {
    // OpenAI's own shape: {"type":"function","function":{"name":...,"arguments":...}}.
    if let Some(Value::Object(function)) = map.get("function") {
        return call(function, set);
    }
    if !map.keys().all(|key| CALL_KEYS.contains(&key.as_str())) {
        return None;
    }
    let name = map.get("name")?.as_str()?;
    let tool = set.get(name)?;
    let arguments = match map.get("arguments").or_else(|| map.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(args)) => Value::Object(args.clone()),
        Some(Value::String(encoded)) => match serde_json::from_str::<Value>(encoded) {
            Ok(Value::Object(args)) => Value::Object(args),
            _ => return None,
        },
        Some(_) => return None,
    };
    let problem = match tool.check_arguments(&arguments) {
        Checked::Valid => None,
        Checked::Invalid(mismatch) => {
            // The mismatch quotes the arguments, which are the user's data: details at debug only.
            tracing::debug!(tool = name, %mismatch, "tool call arguments do not match the schema");
            Some("do not match the schema")
        }
        Checked::TooCostly(why) => {
            tracing::warn!(tool = name, %why, "tool call arguments too costly to check");
            Some("were not checked (too costly)")
        }
    };
    if let Some(problem) = problem {
        if tool.strict {
            tracing::warn!(
                tool = name,
                "the arguments of a call of a strict tool {problem}; left as content"
            );
            return None;
        }
        tracing::warn!(
            tool = name,
            "tool call arguments {problem}; returned as called"
        );
    }
    Some(FoundCall {
        name: name.to_owned(),
        arguments: arguments.to_string(),
    })
}

/// Tidies the content left around removed calls: no leading or trailing whitespace, and at most
/// one blank line where a call stood. Only called when something was removed.
fn tidy(content: &str) -> String {
    let mut out = content.trim().to_owned();
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
}
