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

/// How many `[[hang]]` streams codex still holds open: one closes when codex gives up the
/// model request, as it does when its turn is interrupted.
#[derive(Clone, Default)]
pub struct OpenStreams(pub Arc<std::sync::atomic::AtomicUsize>);

impl OpenStreams {
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Counts one open stream until dropped with it.
struct Open(OpenStreams);

impl Open {
    fn new(streams: &OpenStreams) -> Self {
        streams.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Open(streams.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub struct MockModel {
    /// `http://127.0.0.1:<port>/v1`
    pub base_url: String,
    pub requests: Recorded,
    pub open_streams: OpenStreams,
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
        let open_streams = OpenStreams::default();
        let app = Route::new()
            .at("/v1/responses", post(responses))
            .data(requests.clone())
            .data(open_streams.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        MockModel {
            base_url: format!("http://{addr}/v1"),
            requests,
            open_streams,
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
        .rfind(|item| item["role"] == "user")
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

/// `[[paced]]`: an answer of this many deltas, this far apart, like a model writing at about
/// 40 tokens a second; what a user waits for before the first word is what the bench measures.
pub const PACED_DELTAS: usize = 20;
pub const PACED_GAP: std::time::Duration = std::time::Duration::from_millis(25);

/// The events of `[[paced]]`, each sent `gap` after the one before.
fn paced(deltas: usize, gap: std::time::Duration) -> Response {
    let text = "word ".repeat(deltas);
    let mut events = vec![created()];
    events.extend(
        message_events(&text)
            .into_iter()
            .filter(|e| e["type"] != "response.output_text.delta"),
    );
    let done = events.pop().expect("the message item");
    // The deltas go between the announced item and its completion.
    events.extend((0..deltas).map(|_| delta("word ")));
    events.push(done);
    events.push(completed());
    let body = futures_util::stream::iter(events).then(move |event| async move {
        tokio::time::sleep(gap).await;
        let kind = event["type"].as_str().unwrap_or("message").to_owned();
        Ok::<_, std::io::Error>(bytes::Bytes::from(format!(
            "event: {kind}\ndata: {event}\n\n"
        )))
    });
    poem::Body::from_bytes_stream(body)
        .with_content_type("text/event-stream")
        .into_response()
}

/// A text answer as the real API streams it: the item announced, deltas, then the
/// authoritative item (codex surfaces deltas only for an announced item).
fn answer(text: &str) -> Vec<Value> {
    let mut events = vec![created()];
    events.extend(message_events(text));
    events.push(completed());
    events
}

fn message_events(text: &str) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "response.output_item.added", "output_index": 0, "item": {
            "type": "message", "role": "assistant", "id": "msg_1", "content": []
        }}),
        json!({"type": "response.content_part.added", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
    ];
    events.extend(
        text.as_bytes()
            .chunks(8)
            .map(|c| delta(&String::from_utf8_lossy(c))),
    );
    events.push(message(text));
    events
}

/// A reasoning item with its summary streamed in pieces.
fn reasoning_events(summary: &str) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "response.output_item.added", "output_index": 0, "item": {
            "type": "reasoning", "id": "rs_1", "summary": []
        }}),
        json!({"type": "response.reasoning_summary_part.added", "output_index": 0, "summary_index": 0,
            "item_id": "rs_1", "part": {"type": "summary_text", "text": ""}}),
    ];
    events.extend(summary.as_bytes().chunks(10).map(|c| {
        json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0,
            "item_id": "rs_1", "delta": String::from_utf8_lossy(c)})
    }));
    events.push(
        json!({"type": "response.output_item.done", "output_index": 0, "item": {
            "type": "reasoning", "id": "rs_1",
            "summary": [{"type": "summary_text", "text": summary}], "encrypted_content": null
        }}),
    );
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

/// The tools codex offers of its own (every name seen in the recorded requests of
/// `../shared/codex-transcripts`, plus the reserved and plan tools): a function tool with any
/// other name in a request is the client's.
pub const CODEX_TOOLS: &[&str] = &[
    "exec_command",
    "write_stdin",
    "shell_command",
    "request_user_input",
    "apply_patch",
    "update_plan",
    "view_image",
    "get_goal",
    "create_goal",
    "update_goal",
    "tool_search",
    "web_search",
];

/// The name of the first function tool in the request that is not one of codex's own.
fn client_tool(request: &Value) -> Option<String> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tool| tool["type"] == "function")
        .filter_map(|tool| tool["name"].as_str())
        .find(|name| !CODEX_TOOLS.contains(name))
        .map(str::to_owned)
}

/// The outputs of the tool calls answered since the newest user message: a string output as it
/// is, an array of content parts as its texts run together.
fn tool_outputs(request: &Value) -> Vec<String> {
    let input = request["input"].as_array().cloned().unwrap_or_default();
    let after_user = input
        .iter()
        .rposition(|item| item["role"] == "user")
        .map_or(0, |at| at + 1);
    input[after_user..]
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| match &item["output"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|part| part["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            other => other.to_string(),
        })
        .collect()
}

/// `[[native_tool]]` / `[[native_tools_parallel]]`: a model that calls the client's own tool
/// (offered natively, as a function tool of the request) once per city in one response, and
/// once the outputs are back, says what they were.
fn native_tools(request: &Value, cities: &[&str]) -> Response {
    let outputs = tool_outputs(request);
    if !outputs.is_empty() {
        return sse(&answer(&format!("The tool says: {}", outputs.join("; "))));
    }
    let Some(tool) = client_tool(request) else {
        return sse(&answer("No tools were offered."));
    };
    let mut events = vec![created()];
    events.extend(cities.iter().enumerate().map(|(i, city)| {
        json!({"type": "response.output_item.done", "output_index": i, "item": {
            "type": "function_call", "id": format!("fc_{}", i + 1),
            "call_id": format!("call_native_{}", i + 1), "name": tool,
            "arguments": json!({"city": city}).to_string()
        }})
    }));
    events.push(completed());
    sse(&events)
}

#[handler]
async fn responses(
    Json(request): Json<Value>,
    Data(recorded): Data<&Recorded>,
    Data(open_streams): Data<&OpenStreams>,
) -> Response {
    recorded.0.lock().unwrap().push(request.clone());
    let prompt = last_user_text(&request);
    match marker(&prompt) {
        "reasoning" => {
            let mut events = vec![created()];
            events.extend(reasoning_events(REASONING));
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
        "native_tool" => native_tools(&request, &["Paris"]),
        "native_tools_parallel" => native_tools(&request, &["Paris", "Rome"]),
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
        "cut" => {
            let mut events = vec![created()];
            events.extend(message_events("Partial answer."));
            sse(&events)
        }
        "paced" => paced(PACED_DELTAS, PACED_GAP),
        "hang" => {
            // Headers and one event, then only SSE comments (which the server must write to
            // notice codex closing the stream): codex waits on the open stream.
            let first = format!("event: response.created\ndata: {}\n\n", created());
            let open = Open::new(open_streams);
            let body = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(first))
            })
            .chain(
                futures_util::stream::repeat_with(|| {
                    Ok(bytes::Bytes::from_static(b": still thinking\n\n"))
                })
                .then(|chunk| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    chunk
                }),
            )
            .map(move |chunk| {
                let _held = &open;
                chunk
            });
            poem::Body::from_bytes_stream(body)
                .with_content_type("text/event-stream")
                .into_response()
        }
        _ => sse(&answer(TEXT)),
    }
}

/// The output items and the answer text of an SSE body from this mock.
fn parse_sse(body: &str) -> (Vec<Value>, String) {
    let events: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let items = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect::<Vec<_>>();
    let text = items
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| i["content"][0]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    (items, text)
}

#[tokio::test]
async fn the_native_tool_markers_call_the_clients_first_tool_then_report_its_outputs() {
    let mock = MockModel::start().await;
    let client = reqwest::Client::new();
    let ask = |input: Value| {
        let request = json!({"model": "gpt-5.5", "input": input, "tools": [
            {"type": "function", "name": "request_user_input", "parameters": {}},
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "name": "get_weather", "parameters": {}},
            {"type": "function", "name": "get_time", "parameters": {}},
            {"type": "web_search"}
        ]});
        let post = client
            .post(format!("{}/responses", mock.base_url))
            .json(&request);
        async move { parse_sse(&post.send().await.unwrap().text().await.unwrap()) }
    };
    let user = |text: &str| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]});
    let (items, _) = ask(json!([user("weather? [[native_tools_parallel]]")])).await;
    let calls: Vec<_> = items
        .iter()
        .map(|i| json!([i["type"], i["name"], i["call_id"], i["arguments"]]))
        .collect();
    assert_eq!(
        calls,
        [
            json!([
                "function_call",
                "get_weather",
                "call_native_1",
                "{\"city\":\"Paris\"}"
            ]),
            json!([
                "function_call",
                "get_weather",
                "call_native_2",
                "{\"city\":\"Rome\"}"
            ])
        ]
    );
    let (items, _) = ask(json!([user("weather? [[native_tool]]")])).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let (_, text) = ask(json!([
        user("weather? [[native_tools_parallel]]"),
        {"type": "function_call", "call_id": "call_native_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_native_2", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_native_1", "output": "18 C"},
        {"type": "function_call_output", "call_id": "call_native_2", "output": [{"type": "input_text", "text": "21 C"}]}
    ]))
    .await;
    assert_eq!(text, "The tool says: 18 C; 21 C");
}
