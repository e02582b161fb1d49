//! The app-server backend's native conversation on the real codex: the client's tools reach the
//! model as function tools, earlier turns as items of their own, and the model's function calls
//! come back as the client's tool calls. The exec backend describes tools in the prompt
//! instead (`a_tool_call_round_trip` in main.rs), so these run in the app-server pass only.

use serde_json::{json, Value};

use crate::{mock_model::TEXT, post, post_json, setup};

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

/// The model request's input items without codex's own developer and environment messages:
/// everything after codex's `<environment_context>` user message.
fn conversation_items(request: &Value) -> Vec<Value> {
    let input = request["input"].as_array().unwrap();
    let start = input
        .iter()
        .position(|item| {
            item["role"] == "user"
                && item["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("<environment_context>"))
        })
        .map_or(0, |at| at + 1);
    input[start..].to_vec()
}

/// An item reduced to what the conversation said: role or type, and text, call or output.
fn essence(item: &Value) -> Value {
    match item["type"].as_str() {
        Some("function_call") => {
            json!({"function_call": item["name"], "call_id": item["call_id"], "arguments": item["arguments"]})
        }
        Some("function_call_output") => {
            json!({"function_call_output": item["call_id"], "output": item["output"]})
        }
        _ => json!({
            item["role"].as_str().unwrap_or("?"): item["content"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|part| part["text"].as_str().map_or_else(|| part["type"].clone(), |t| json!(t)))
                .collect::<Vec<_>>()
        }),
    }
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn the_model_gets_the_clients_tools_as_functions_and_earlier_turns_as_items() {
    let setup = setup(&[]).await;
    let body = json!({"model": "codex-local", "tools": [weather_tool()], "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! Ask me about the weather."},
        {"role": "user", "content": "Weather in Paris? [[native_tool]]"},
    ]});
    let (status, reply) = post_json(&setup, &body).await;
    assert_eq!(status, 200, "{reply}");
    let requests = setup.mock.requests.0.lock().unwrap();
    assert_eq!(requests.len(), 1, "the turn ended at the call");
    let request = &requests[0];
    let tool = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "get_weather")
        .expect("the client's tool is a function tool of the model request");
    assert_eq!(tool["type"], "function");
    assert_eq!(tool["parameters"]["required"], json!(["city"]));
    let developer_text = request["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["role"] == "developer")
        .flat_map(|item| item["content"].as_array().unwrap().clone())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    assert!(
        developer_text
            .iter()
            .any(|t| t.starts_with("You are a weather bot.")),
        "the system message is a developer message: {developer_text:?}"
    );
    let items: Vec<Value> = conversation_items(request).iter().map(essence).collect();
    assert_eq!(
        items,
        [
            json!({"user": ["Hi"]}),
            json!({"assistant": ["Hello! Ask me about the weather."]}),
            json!({"user": ["Weather in Paris? [[native_tool]]"]}),
        ],
        "each earlier turn is an item of its own, in order"
    );
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn a_native_tool_round_trip() {
    let setup = setup(&[]).await;
    let first = json!({"model": "codex-local", "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "Weather in Paris? [[native_tool]]"}]});
    let (status, reply) = post_json(&setup, &first).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let message = &reply["choices"][0]["message"];
    let call = &message["tool_calls"][0];
    assert_eq!(
        call["id"], "call_native_1",
        "codex's call id, so the result matches"
    );
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert!(message["content"].is_null(), "{message}");

    let second = json!({"model": "codex-local", "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "Weather in Paris? [[native_tool]]"},
        message,
        {"role": "tool", "tool_call_id": "call_native_1", "content": "18 C and sunny"}
    ]});
    let (status, reply) = post_json(&setup, &second).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "The tool says: 18 C and sunny"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    let requests = setup.mock.requests.0.lock().unwrap();
    let items: Vec<Value> = conversation_items(&requests[1])
        .iter()
        .map(essence)
        .collect();
    assert_eq!(
        items,
        [
            json!({"user": ["Weather in Paris? [[native_tool]]"]}),
            json!({"function_call": "get_weather", "call_id": "call_native_1", "arguments": "{\"city\":\"Paris\"}"}),
            json!({"function_call_output": "call_native_1", "output": "18 C and sunny"}),
        ],
        "the call and its result as the model's own items"
    );
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn two_calls_in_one_response_are_one_streamed_reply() {
    let setup = setup(&[]).await;
    let body = json!({"model": "codex-local", "stream": true, "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "Paris and Rome? [[native_tools_parallel]]"}]});
    let (status, text) = post(&setup, &body).await;
    assert_eq!(status, 200, "{text}");
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let calls: Vec<(u64, String, String)> = chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|call| {
            (
                call["index"].as_u64().unwrap(),
                call["id"].as_str().unwrap().to_owned(),
                call["function"]["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            (0, "call_native_1".into(), "{\"city\":\"Paris\"}".into()),
            (1, "call_native_2".into(), "{\"city\":\"Rome\"}".into()),
        ]
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("tool_calls")]);
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn an_image_in_an_earlier_turn_reaches_the_model_in_its_turn() {
    let setup = setup(&[]).await;
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let body = json!({"model": "codex-local", "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": png}}
        ]},
        {"role": "assistant", "content": "A white pixel."},
        {"role": "user", "content": "And its size?"},
    ]});
    let (status, reply) = post_json(&setup, &body).await;
    assert_eq!(status, 200, "{reply}");
    let requests = setup.mock.requests.0.lock().unwrap();
    let items = conversation_items(&requests[0]);
    let image = items[0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["type"] == "input_image")
        .expect("the image stays in the first user turn");
    assert_eq!(image["image_url"], png, "passed through byte for byte");
    assert_eq!(items.len(), 3, "{items:#?}");
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn a_reply_that_ends_in_calls_leaves_no_turn_behind() {
    let setup = setup(&[]).await;
    let body = json!({"model": "codex-local", "stream": true, "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "Weather in Paris? [[native_tool]]"}]});
    let (status, text) = post(&setup, &body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"tool_calls\""), "{text}");
    // codex waited for the call's result when the reply ended; the interrupted turn made no
    // further model request, and the same process answers the next request at once.
    let (status, reply) = post_json(&setup, &crate::chat("again", false)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], TEXT);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        setup.mock.requests.0.lock().unwrap().len(),
        2,
        "no model request after the reply that ended in a call"
    );
    assert_eq!(setup.mock.open_streams.count(), 0);
}

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn openwebui_shaped_requests_with_tools_still_answer() {
    let setup = setup(&[]).await;
    // OpenWebUI offers its tools on every request, its background tasks included.
    for prompt in [
        "### Task:\nGenerate a concise title for the chat.",
        "Tell me a joke.",
    ] {
        let body = json!({"model": "codex-local", "stream": true, "tools": [weather_tool()], "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": prompt}]});
        let (status, text) = post(&setup, &body).await;
        assert_eq!(status, 200, "{text}");
        let content: String = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(content, TEXT, "{prompt}");
        assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
    }
}
