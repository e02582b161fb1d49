//! app-server's native tools end to end on fake-codex: the client's tools are codex's dynamic
//! tools, the model's calls come back as the client's tool calls under codex's call ids, the
//! results go back in as items, and the content streams while tools are offered.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{client_on, eventually, post_chat, sse_of};

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

fn request(messages: Value, stream: bool) -> Value {
    json!({"model": "codex-local", "messages": messages, "tools": [weather_tool()], "stream": stream})
}

fn ask(prompt: &str) -> Value {
    json!([{"role": "user", "content": prompt}])
}

/// The streamed tool calls as (index, id, arguments), and the finish reasons.
fn streamed_calls(events: &[Value]) -> (Vec<(u64, String, String)>, Vec<String>) {
    let chunks = events.iter().filter(|e| e.is_object());
    let mut calls = Vec::new();
    let mut finishes = Vec::new();
    for chunk in chunks {
        let choice = &chunk["choices"][0];
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            calls.push((
                call["index"].as_u64().unwrap(),
                call["id"].as_str().unwrap().to_owned(),
                call["function"]["arguments"].as_str().unwrap().to_owned(),
            ));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finishes.push(reason.to_owned());
        }
    }
    (calls, finishes)
}

#[tokio::test]
async fn a_call_and_its_result_make_a_round_trip_under_codexs_call_id() {
    let cli = client_on("app-server", &[]);
    let (status, reply) = post_chat(&cli, &request(ask("Weather? [[tool_flow]]"), false)).await;
    assert_eq!(status, 200, "{reply}");
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert!(message["content"].is_null(), "{message}");
    let call = &message["tool_calls"][0];
    let id = call["id"].as_str().unwrap();
    assert!(
        id.starts_with("call_") && id.len() == 17,
        "codex's own id, not a new one: {id}"
    );
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");

    let conversation = json!([
        {"role": "user", "content": "Weather? [[tool_flow]]"},
        message,
        {"role": "tool", "tool_call_id": id, "content": "Sunny, 21 C"}
    ]);
    let (status, reply) = post_chat(&cli, &request(conversation, false)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "The tool says: Sunny, 21 C"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn the_calls_of_one_response_stream_as_one_reply_in_any_order_codex_asks() {
    let cli = client_on("app-server", &[]);
    // `early`: codex asks for each call before the response is over.
    for prompt in [
        "Three cities? [[tool_flow:3]]",
        "Three cities? [[tool_flow:3:early]]",
    ] {
        let (status, _, events) = sse_of(
            cli.post("/v1/chat/completions")
                .body_json(&request(ask(prompt), true))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200);
        let (calls, finishes) = streamed_calls(&events);
        let indexed: Vec<(u64, &str)> = calls.iter().map(|(i, _, a)| (*i, a.as_str())).collect();
        assert_eq!(
            indexed,
            [
                (0, "{\"city\":\"Paris\"}"),
                (1, "{\"city\":\"Rome\"}"),
                (2, "{\"city\":\"Berlin\"}"),
            ],
            "{prompt}: {events:?}"
        );
        assert_eq!(finishes, ["tool_calls"], "{prompt}");
        assert_eq!(events.last(), Some(&json!("[DONE]")));
    }
}

#[tokio::test]
async fn parallel_tool_calls_false_gives_the_first_call_only() {
    let cli = client_on("app-server", &[]);
    let mut body = request(ask("Two? [[tool_flow:2]]"), false);
    body["parallel_tool_calls"] = json!(false);
    let (status, reply) = post_chat(&cli, &body).await;
    assert_eq!(status, 200, "{reply}");
    let calls = reply["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1, "{reply}");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
}

#[tokio::test]
async fn content_streams_piece_by_piece_with_tools_offered() {
    let cli = client_on("app-server", &[]);
    let (status, _, events) = sse_of(
        cli.post("/v1/chat/completions")
            .body_json(&request(ask("Tell me [[typing:5]]"), true))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let pieces: Vec<&str> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        pieces.len() > 3,
        "the answer streams as codex writes it, tools or not: {pieces:?}"
    );
}

#[tokio::test]
async fn a_reply_that_ends_in_calls_leaves_no_thread_behind() {
    let cli = client_on("app-server", &[]);
    let (status, reply) = post_chat(&cli, &request(ask("Weather? [[tool_flow:2]]"), false)).await;
    assert_eq!(status, 200, "{reply}");
    // The turn waited for the calls' results when the reply ended: it is interrupted and its
    // thread unsubscribed, so only the next request's own thread is loaded.
    eventually(Duration::from_secs(5), async || {
        let (_, reply) = post_chat(&cli, &request(ask("How many? [[threads]]"), false)).await;
        let said = reply["choices"][0]["message"]["content"].clone();
        if said == "THREADS: 1" {
            Ok(())
        } else {
            Err(format!("{said}"))
        }
    })
    .await;
}

#[tokio::test]
async fn earlier_turns_reach_codex_as_items_and_system_messages_as_its_instructions() {
    let cli = client_on("app-server", &[]);
    let conversation = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>hm</think>Hello!", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "Snow"},
        {"role": "user", "content": "And now? [[items]]"}
    ]);
    let (status, reply) = post_chat(&cli, &request(conversation, false)).await;
    assert_eq!(status, 200, "{reply}");
    let seen: Value =
        serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(seen["developer"], "Be brief.");
    assert_eq!(seen["tools"], json!(["get_weather"]));
    assert_eq!(
        seen["items"],
        json!([
            {"type": "message", "role": "user", "text": "Hi"},
            {"type": "message", "role": "assistant", "text": "Hello!"},
            {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "Snow"},
        ])
    );
    assert_eq!(
        seen["input"],
        json!([{"type": "text", "text": "And now? [[items]]"}])
    );
}
