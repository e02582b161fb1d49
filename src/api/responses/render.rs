//! The run's deltas as a Responses API `response`: its `output` items (reasoning with its
//! summary, the message, function calls) and `usage`, folded into one object or streamed as the
//! event sequence the SDKs expect, each event with its `sequence_number`.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::{
    error::ProxyError,
    translate::{Delta, FinishReason, ToolCall},
    usage::TokenUsage,
};

/// What the response object carries besides its output: its id, model, time and the request's
/// settings it echoes.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub created_at: i64,
    pub model: String,
    /// The request's `instructions`, `metadata`, `tools`, `tool_choice`, `parallel_tool_calls`,
    /// `text`, `reasoning`, as given.
    pub echoed: serde_json::Map<String, Value>,
}

impl Envelope {
    fn response(&self, status: &str, output: Vec<Value>, usage: Option<&TokenUsage>) -> Value {
        let mut response = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": output,
            "error": null,
            // The proxy never cuts an answer short (no max_output_tokens reaches codex), so a
            // response is never `incomplete`.
            "incomplete_details": null,
            "completed_at": (status == "completed").then(crate::api::chat::unix_now),
            "usage": usage.map(usage_json),
        });
        let text: String = response["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "message")
            .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|part| part["text"].as_str().map(str::to_owned))
            .collect();
        response["output_text"] = Value::String(text);
        if let Some(map) = response.as_object_mut() {
            for (key, value) in &self.echoed {
                map.insert(key.clone(), value.clone());
            }
        }
        response
    }
}

fn usage_json(usage: &TokenUsage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens(),
    })
}

fn item_id(prefix: &str) -> String {
    crate::ids::random_id(prefix)
}

fn reasoning_item(id: &str, text: Option<&str>) -> Value {
    let summary: Vec<Value> = text
        .map(|text| json!({"type": "summary_text", "text": text}))
        .into_iter()
        .collect();
    json!({"id": id, "type": "reasoning", "summary": summary})
}

fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text
        .map(|text| json!({"type": "output_text", "text": text, "annotations": []}))
        .into_iter()
        .collect();
    json!({"id": id, "type": "message", "role": "assistant", "status": status, "content": content})
}

fn call_item(id: &str, status: &str, call: &ToolCall, arguments: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call.id,
           "name": call.name, "arguments": arguments})
}

/// The error object of a failed response: OpenAI's code for it, and its message.
fn error_json(err: &ProxyError) -> Value {
    json!({"code": err.code().unwrap_or("server_error"), "message": err.message()})
}

/// Non-streaming is the fold of streaming: the same deltas, collected into the output items.
pub async fn fold(
    envelope: Envelope,
    deltas: impl Stream<Item = Delta>,
) -> Result<Value, ProxyError> {
    let mut deltas = std::pin::pin!(deltas);
    let (mut reasoning, mut content, mut calls) = (None::<String>, None::<String>, Vec::new());
    while let Some(delta) = deltas.next().await {
        match delta {
            Delta::Reasoning(text) => reasoning.get_or_insert_with(String::new).push_str(&text),
            Delta::Content(text) => content.get_or_insert_with(String::new).push_str(&text),
            Delta::ToolCall(call) => calls.push(call),
            Delta::Ran { .. } => {}
            Delta::Failed(err) => return Err(err),
            Delta::Finish { usage, .. } => {
                let mut output = Vec::new();
                if let Some(text) = &reasoning {
                    output.push(reasoning_item(&item_id("rs_"), Some(text)));
                }
                if content.is_some() || calls.is_empty() {
                    output.push(message_item(
                        &item_id("msg_"),
                        "completed",
                        Some(content.as_deref().unwrap_or_default()),
                    ));
                }
                for call in &calls {
                    output.push(call_item(
                        &item_id("fc_"),
                        "completed",
                        call,
                        &call.arguments,
                    ));
                }
                return Ok(envelope.response("completed", output, Some(&usage)));
            }
        }
    }
    Err(ProxyError::codex_failed(
        "codex output ended without a result",
    ))
}

/// The item being written, between its `output_item.added` and `.done`.
enum Open {
    Reasoning { id: String, text: String },
    Message { id: String, text: String },
}

/// The streamed events, in the order OpenAI sends them.
struct Events {
    envelope: Envelope,
    sequence: u64,
    open: Option<Open>,
    /// The finished output items, for `response.completed`.
    output: Vec<Value>,
    on_completed: Option<OnCompleted>,
}

impl Events {
    fn event(&mut self, kind: &str, mut body: Value) -> Bytes {
        body["type"] = Value::String(kind.to_owned());
        body["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        Bytes::from(format!("event: {kind}\ndata: {body}\n\n"))
    }

    fn start(&mut self) -> Vec<Bytes> {
        let response = self.envelope.response("in_progress", Vec::new(), None);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    /// Ends the item being written, if any.
    fn close(&mut self) -> Vec<Bytes> {
        let index = self.index();
        match self.open.take() {
            None => Vec::new(),
            Some(Open::Reasoning { id, text }) => {
                let part = json!({"type": "summary_text", "text": text});
                let item = reasoning_item(&id, Some(&text));
                let out = vec![
                    self.event("response.reasoning_summary_text.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text})),
                    self.event("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part})),
                    self.event("response.output_item.done", json!({"output_index": index, "item": item})),
                ];
                self.output.push(item);
                out
            }
            Some(Open::Message { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let item = message_item(&id, "completed", Some(&text));
                let out = vec![
                    self.event("response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text})),
                    self.event("response.content_part.done", json!({"item_id": id, "output_index": index, "content_index": 0, "part": part})),
                    self.event("response.output_item.done", json!({"output_index": index, "item": item})),
                ];
                self.output.push(item);
                out
            }
        }
    }

    fn on_delta(&mut self, delta: Delta) -> Vec<Bytes> {
        let mut out = Vec::new();
        match delta {
            Delta::Ran { .. } => {}
            Delta::Reasoning(text) => {
                if !matches!(self.open, Some(Open::Reasoning { .. })) {
                    out.extend(self.close());
                    let id = item_id("rs_");
                    let index = self.index();
                    out.push(self.event(
                        "response.output_item.added",
                        json!({"output_index": index, "item": reasoning_item(&id, None)}),
                    ));
                    out.push(self.event("response.reasoning_summary_part.added", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
                    self.open = Some(Open::Reasoning {
                        id,
                        text: String::new(),
                    });
                }
                let index = self.index();
                if let Some(Open::Reasoning { id, text: so_far }) = &mut self.open {
                    so_far.push_str(&text);
                    let id = id.clone();
                    out.push(self.event("response.reasoning_summary_text.delta", json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text})));
                }
            }
            Delta::Content(text) => {
                if !matches!(self.open, Some(Open::Message { .. })) {
                    out.extend(self.close());
                    let id = item_id("msg_");
                    let index = self.index();
                    out.push(self.event("response.output_item.added", json!({"output_index": index, "item": message_item(&id, "in_progress", None)})));
                    out.push(self.event("response.content_part.added", json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
                    self.open = Some(Open::Message {
                        id,
                        text: String::new(),
                    });
                }
                let index = self.index();
                if let Some(Open::Message { id, text: so_far }) = &mut self.open {
                    so_far.push_str(&text);
                    let id = id.clone();
                    out.push(self.event("response.output_text.delta", json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text})));
                }
            }
            Delta::ToolCall(call) => {
                out.extend(self.close());
                let id = item_id("fc_");
                let index = self.index();
                out.push(self.event("response.output_item.added", json!({"output_index": index, "item": call_item(&id, "in_progress", &call, "")})));
                out.push(self.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": call.arguments}),
                ));
                out.push(self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": call.arguments}),
                ));
                let item = call_item(&id, "completed", &call, &call.arguments);
                out.push(self.event(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                ));
                self.output.push(item);
            }
            Delta::Finish { reason, usage } => {
                out.extend(self.close());
                if reason == FinishReason::Stop
                    && self
                        .output
                        .iter()
                        .all(|i| i["type"] != "message" && i["type"] != "function_call")
                {
                    // An answer with nothing to say still has its (empty) message.
                    self.output
                        .push(message_item(&item_id("msg_"), "completed", Some("")));
                }
                let response = self.envelope.response(
                    "completed",
                    std::mem::take(&mut self.output),
                    Some(&usage),
                );
                if let Some(keep) = self.on_completed.take() {
                    keep(&response);
                }
                out.push(self.event("response.completed", json!({"response": response})));
            }
            Delta::Failed(err) => {
                tracing::warn!(error = %err, "codex failed mid-stream; sending response.failed");
                out.extend(self.close());
                let mut response =
                    self.envelope
                        .response("failed", std::mem::take(&mut self.output), None);
                response["error"] = error_json(&err);
                out.push(self.event("response.failed", json!({"response": response})));
            }
        }
        out
    }
}

/// What is done with a completed response (kept for `previous_response_id`).
pub type OnCompleted = Box<dyn FnOnce(&Value) + Send>;

/// The deltas as Responses API events; `on_completed` gets the response of
/// `response.completed`.
pub fn stream(
    envelope: Envelope,
    deltas: impl Stream<Item = Delta> + Send + 'static,
    keepalive: std::time::Duration,
    on_completed: OnCompleted,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let mut events = Events {
        envelope,
        sequence: 0,
        open: None,
        output: Vec::new(),
        on_completed: Some(on_completed),
    };
    let first = events.start().concat();
    super::super::sse::events(
        Some(Bytes::from(first)),
        deltas,
        keepalive,
        false,
        move |delta| events.on_delta(delta),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: "resp_1".into(),
            created_at: 1,
            model: "codex-local".into(),
            echoed: serde_json::Map::new(),
        }
    }

    fn events_of(deltas: Vec<Delta>) -> Vec<Value> {
        let mut events = Events {
            envelope: envelope(),
            sequence: 0,
            open: None,
            output: Vec::new(),
            on_completed: None,
        };
        let mut bytes = events.start();
        for delta in deltas {
            bytes.extend(events.on_delta(delta));
        }
        bytes
            .iter()
            .map(|b| {
                let text = String::from_utf8_lossy(b);
                let data = text.split_once("data: ").unwrap().1.trim();
                serde_json::from_str(data).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_reasoned_answer_streams_in_openais_event_order() {
        let usage = TokenUsage {
            prompt_tokens: 10,
            completion_tokens: 3,
            ..TokenUsage::default()
        };
        let events = events_of(vec![
            Delta::Reasoning("Think".into()),
            Delta::Content("Hel".into()),
            Delta::Content("lo".into()),
            Delta::Finish {
                reason: FinishReason::Stop,
                usage,
            },
        ]);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let numbers: Vec<u64> = events
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..16).collect::<Vec<_>>());
        let done = &events[15]["response"];
        assert_eq!(done["status"], "completed");
        assert!(done["completed_at"].is_i64(), "{done}");
        assert!(events[0]["response"]["completed_at"].is_null());
        assert_eq!(done["output_text"], "Hello");
        assert_eq!(done["output"][0]["summary"][0]["text"], "Think");
        assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(done["usage"]["total_tokens"], 13);
        assert_eq!(
            events[12]["text"], "Hello",
            "output_text.done carries the whole text"
        );
    }

    #[test]
    fn calls_are_function_call_items_and_a_failure_is_response_failed() {
        let call = ToolCall {
            index: 0,
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        };
        let events = events_of(vec![
            Delta::ToolCall(call),
            Delta::Finish {
                reason: FinishReason::ToolCalls,
                usage: TokenUsage::default(),
            },
        ]);
        let done = &events.last().unwrap()["response"];
        assert_eq!(done["output"].as_array().unwrap().len(), 1, "{done}");
        assert_eq!(done["output"][0]["type"], "function_call");
        assert_eq!(done["output"][0]["call_id"], "call_1");
        assert_eq!(done["output"][0]["arguments"], "{\"city\":\"Paris\"}");

        let failed = events_of(vec![
            Delta::Content("Part".into()),
            Delta::Failed(ProxyError::Timeout("codex did not finish".into())),
        ]);
        let last = failed.last().unwrap();
        assert_eq!(last["type"], "response.failed");
        assert_eq!(last["response"]["status"], "failed");
        assert!(last["response"]["completed_at"].is_null());
        assert!(last["response"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not finish"));
    }
}
