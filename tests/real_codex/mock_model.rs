//! A mock OpenAI Responses API for the real codex CLI to talk to, started in process on a free
//! loopback port. What it answers is chosen by the last `[[marker]]` in the newest user message
//! (`../shared/codex-cli.md` section 4 lists what codex needs). It records every request.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use poem::{
    handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::{Data, Json},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use serde_json::{json, Value};

pub const TEXT: &str = "Hello from the mock model.";
pub const REASONING: &str = "**Thinking** about the mock question before answering.";

/// Usage the mock reports for every completed answer.
pub fn usage() -> Value {
    json!({
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 40},
        "output_tokens": 19,
        "output_tokens_details": {"reasoning_tokens": 7},
        "total_tokens": 139
    })
}

#[derive(Clone, Default)]
pub struct Recorded(pub Arc<Mutex<Vec<Value>>>);

pub struct MockModel {
    /// `http://127.0.0.1:<port>/v1`
    pub base_url: String,
    pub requests: Recorded,
}

impl MockModel {
    pub async fn start() -> MockModel {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("mock binds");
        let addr = *acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a socket address");
        let requests = Recorded::default();
        let app = Route::new()
            .at("/v1/responses", post(responses))
            .data(requests.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        MockModel {
            base_url: format!("http://{addr}/v1"),
            requests,
        }
    }

    /// The `-c` overrides that point codex at this mock, without retries so failures are fast.
    pub fn codex_config(&self) -> String {
        format!(
            "model_provider=\"mock\"; model_providers.mock={{name=\"mock\", base_url=\"{}\", wire_api=\"responses\", request_max_retries=0, stream_max_retries=0}}",
            self.base_url
        )
    }
}

/// The text of the newest user message in a Responses request.
pub fn last_user_text(request: &Value) -> String {
    request["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["role"] == "user")
        .last()
        .map(|item| {
            item["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|part| part["text"].as_str())
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

fn marker(text: &str) -> &str {
    text.rfind("[[")
        .and_then(|start| {
            let inner = &text[start + 2..];
            inner.find("]]").map(|end| &inner[..end])
        })
        .unwrap_or("text")
}

fn sse(events: &[Value]) -> Response {
    let body: String = events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap_or("message")
            )
        })
        .collect();
    body.with_content_type("text/event-stream").into_response()
}

fn message(text: &str) -> Value {
    json!({"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "message", "role": "assistant", "id": "msg_1",
        "content": [{"type": "output_text", "text": text, "annotations": []}]
    }})
}

fn delta(text: &str) -> Value {
    json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": text})
}

fn created() -> Value {
    json!({"type": "response.created", "response": {"id": "resp_1"}})
}

fn completed() -> Value {
    json!({"type": "response.completed", "response": {"id": "resp_1", "usage": usage()}})
}

fn failed(code: &str, message: &str) -> Value {
    json!({"type": "response.failed", "response": {"id": "resp_1", "error": {"code": code, "message": message}}})
}

fn http_error(status: StatusCode, message: &str, code: &str) -> Response {
    Json(json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}))
        .with_status(status)
        .into_response()
}

/// A text answer as the real API streams it: deltas, then the authoritative item.
fn answer(text: &str) -> Vec<Value> {
    let mut events = vec![created()];
    events.extend(
        text.as_bytes()
            .chunks(8)
            .map(|c| delta(&String::from_utf8_lossy(c))),
    );
    events.push(message(text));
    events.push(completed());
    events
}

/// What a model that follows the proxy's tool instructions writes.
fn tool_answer(prompt: &str) -> String {
    let last_user = prompt.rfind("<user>").unwrap_or(0);
    if let Some(at) = prompt[last_user..].find("<tool_result") {
        let result = &prompt[last_user + at..];
        let body = result.split_once(">\n").map_or("", |(_, rest)| rest);
        return format!(
            "The tool says: {}",
            body.split("\n</tool_result>").next().unwrap_or("")
        );
    }
    let start = prompt
        .find("<tool name=\"")
        .map(|i| i + "<tool name=\"".len());
    match start.and_then(|s| prompt[s..].find('"').map(|len| &prompt[s..s + len])) {
        Some(tool) => format!("Let me look that up.\n{{\"name\": \"{tool}\", \"arguments\": {{\"city\": \"Paris\"}}}}"),
        None => "No tools were offered.".into(),
    }
}

#[handler]
async fn responses(Json(request): Json<Value>, Data(recorded): Data<&Recorded>) -> Response {
    recorded.0.lock().unwrap().push(request.clone());
    let prompt = last_user_text(&request);
    match marker(&prompt) {
        "reasoning" => {
            let mut events = vec![
                created(),
                json!({"type": "response.output_item.done", "output_index": 0, "item": {
                    "type": "reasoning", "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": REASONING}], "encrypted_content": null
                }}),
            ];
            events.extend(
                answer("Reasoned answer from the mock model.")
                    .into_iter()
                    .skip(1),
            );
            sse(&events)
        }
        "echo" => sse(&answer(&format!("ECHO: {}", prompt.len()))),
        "json" => sse(&answer("{\"city\":\"Paris\"}")),
        "no_usage" => sse(&[
            created(),
            message(TEXT),
            json!({"type": "response.completed", "response": {"id": "resp_1"}}),
        ]),
        "steal" => {
            let output = request["input"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|item| item["type"] == "function_call_output")
                .map(|item| item["output"].to_string());
            match output {
                Some(output) => sse(&answer(&format!("OUTPUT: {output}"))),
                None => sse(&[
                    created(),
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {
                        "type": "function_call", "id": "fc_1", "call_id": "call_steal_1", "name": "exec_command",
                        "arguments": "{\"cmd\":\"cat \\\"$CODEX_HOME/auth.json\\\"\"}"
                    }}),
                    completed(),
                ]),
            }
        }
        "shell" => {
            let answered = request["input"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|item| item["type"] == "function_call_output");
            if answered {
                sse(&answer("The command printed mock-shell-output."))
            } else {
                sse(&[
                    created(),
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {
                        "type": "function_call", "id": "fc_1", "call_id": "call_shell_1", "name": "exec_command",
                        "arguments": "{\"cmd\":\"echo mock-shell-output\"}"
                    }}),
                    completed(),
                ])
            }
        }
        "tool_flow" => sse(&answer(&tool_answer(&prompt))),
        "http401" => http_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided: sk-mock.",
            "invalid_api_key",
        ),
        "http429" => http_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached.",
            "rate_limit_exceeded",
        ),
        "http500" => http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error.",
            "server_error",
        ),
        "context" => sse(&[
            created(),
            failed(
                "context_length_exceeded",
                "Your input exceeds the context window.",
            ),
        ]),
        "quota" => sse(&[
            created(),
            failed("insufficient_quota", "You exceeded your current quota."),
        ]),
        "cut" => sse(&[created(), delta("Partial"), message("Partial answer.")]),
        "hang" => {
            // Headers and one event, then silence: codex waits on the open stream.
            let first = format!("event: response.created\ndata: {}\n\n", created());
            let body = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(first))
            })
            .chain(futures_util::stream::pending());
            poem::Body::from_bytes_stream(body)
                .with_content_type("text/event-stream")
                .into_response()
        }
        _ => sse(&answer(TEXT)),
    }
}
