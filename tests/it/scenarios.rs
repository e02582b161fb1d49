//! Every fake-codex scenario through the API, as a JSON reply and as an SSE stream, snapshotted,
//! on both backends. The streaming and the folded replies must tell the same story: the same
//! text, the same usage, the same error. The app-server backend must give the very same JSON
//! replies as exec, and the same streams once content split into tokens is merged back.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::support::{
    chat, client, client_on, coalesced, json_of, redact, snapshot, sse_of, BACKENDS,
};

const SCENARIOS: &[&str] = &[
    "text",
    "minimal",
    "reasoning",
    "multi",
    "shell",
    "zero_usage",
    "http400",
    "http401",
    "http429",
    "http500",
    "context",
    "quota",
    "usage_limit",
    "missing_env",
    "answer_then_fail",
    "crash",
    "crash_mid",
    "silent_exit",
    "noise",
    "huge_line",
    "stderr_flood",
    "slow:20",
    "typing:5",
];

/// What a client ends up with from a stream: text, reasoning, finish reasons, usage, error.
fn assemble(events: &[Value]) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut finishes = Vec::new();
    let mut usage = Value::Null;
    let mut error = Value::Null;
    for event in events {
        if let Some(err) = event.get("error") {
            error = err.clone();
        }
        if let Some(u) = event.get("usage") {
            usage = u.clone();
        }
        for choice in event["choices"].as_array().into_iter().flatten() {
            content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            reasoning.push_str(choice["delta"]["reasoning_content"].as_str().unwrap_or(""));
            if let Some(reason) = choice["finish_reason"].as_str() {
                finishes.push(reason.to_owned());
            }
        }
    }
    json!({"content": content, "reasoning": reasoning, "finishes": finishes, "usage": usage, "error": error})
}

#[tokio::test]
async fn every_scenario_as_json_and_as_sse_on_both_backends() {
    // exec's streams, to hold app-server's against.
    let mut exec_streams: HashMap<&str, Vec<Value>> = HashMap::new();
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        for scenario in SCENARIOS {
            check_scenario(&cli, backend, scenario, &mut exec_streams).await;
        }
    }
}

async fn check_scenario<E: poem::Endpoint>(
    cli: &poem::test::TestClient<E>,
    backend: &str,
    scenario: &'static str,
    exec_streams: &mut HashMap<&'static str, Vec<Value>>,
) {
    {
        let prompt = format!("say hi [[{scenario}]]");
        let name = scenario.replace(':', "_");

        let (status, body) = json_of(
            cli.post("/v1/chat/completions")
                .body_json(&chat(&prompt, false))
                .send()
                .await,
        )
        .await;
        // One snapshot for both backends: the JSON reply may not depend on the backend.
        snapshot!(
            format!("scenario_{name}_json"),
            json!({"status": status, "body": redact(body.clone())})
        );

        let (sse_status, content_type, events) = sse_of(
            cli.post("/v1/chat/completions")
                .body_json(&chat(&prompt, true))
                .send()
                .await,
        )
        .await;
        assert_eq!(
            sse_status, 200,
            "{scenario}: a stream always starts with 200"
        );
        assert!(
            content_type.starts_with("text/event-stream"),
            "{scenario}: {content_type}"
        );
        let events = redact(Value::Array(events))
            .as_array()
            .cloned()
            .unwrap_or_default();
        if backend == "exec" {
            snapshot!(format!("scenario_{name}_sse"), Value::Array(events.clone()));
            exec_streams.insert(scenario, events.clone());
        } else {
            assert_eq!(
                coalesced(&events),
                coalesced(&exec_streams[scenario]),
                "{backend} {scenario}: the same stream as exec, token pieces merged"
            );
        }

        // The stream's invariants, whatever the scenario.
        assert_eq!(
            events.last(),
            Some(&json!("[DONE]")),
            "{scenario}: ends with [DONE]"
        );
        assert_eq!(
            events[0]["choices"][0]["delta"]["role"], "assistant",
            "{scenario}: first chunk has the role"
        );
        let streamed = assemble(&events);
        if status == 200 {
            assert_eq!(
                streamed["finishes"],
                json!(["stop"]),
                "{scenario}: exactly one finish_reason"
            );
            assert_eq!(
                streamed["content"], body["choices"][0]["message"]["content"],
                "{scenario}: same text"
            );
            assert_eq!(streamed["usage"], body["usage"], "{scenario}: same usage");
            let folded_reasoning = body["choices"][0]["message"]["reasoning_content"]
                .as_str()
                .unwrap_or("");
            assert_eq!(
                streamed["reasoning"], folded_reasoning,
                "{scenario}: same reasoning"
            );
        } else {
            assert_eq!(
                streamed["finishes"],
                json!([]),
                "{scenario}: a failed stream has no finish_reason"
            );
            assert_eq!(
                streamed["error"], body["error"],
                "{scenario}: same error in band as out of band"
            );
        }
    }
}

#[tokio::test]
async fn a_one_mib_answer_arrives_whole() {
    let (status, body) = json_of(
        client(&[])
            .post("/v1/chat/completions")
            .body_json(&chat("[[big_answer]]", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content, "0123456789abcde\n".repeat(64 * 1024));
}

#[tokio::test]
async fn zero_usage_is_estimated_with_o200k() {
    let (status, body) = json_of(
        client(&[])
            .post("/v1/chat/completions")
            .body_json(&chat("say hi [[zero_usage]]", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let prompt_tokens = codex_openai_proxy::usage::count_tokens("say hi [[zero_usage]]");
    let completion_tokens = codex_openai_proxy::usage::count_tokens("Hello from the mock model.");
    assert_eq!(body["usage"]["prompt_tokens"], prompt_tokens);
    assert_eq!(body["usage"]["completion_tokens"], completion_tokens);
    assert_eq!(
        body["usage"]["total_tokens"],
        prompt_tokens + completion_tokens
    );
}

#[tokio::test]
async fn usage_without_include_usage_is_not_streamed() {
    let mut request = chat("hi", true);
    request.as_object_mut().unwrap().remove("stream_options");
    let (status, _, events) = sse_of(
        client(&[])
            .post("/v1/chat/completions")
            .body_json(&request)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    // The whole answer still streams: the role, the content, one finish, then [DONE].
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the mock model.", "{events:?}");
    let finishes = events
        .iter()
        .filter(|e| e["choices"][0]["finish_reason"].is_string())
        .count();
    assert_eq!(finishes, 1, "{events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    // ... and no chunk carries usage.
    assert!(
        events.iter().all(|e| e.get("usage").is_none()),
        "{events:?}"
    );
    assert!(events
        .iter()
        .all(|e| e == "[DONE]" || e["choices"].as_array().is_some_and(|c| c.len() == 1)));
}

/// The point of the app-server backend: the answer reaches the client as codex writes it, in
/// as many chunks as codex sent deltas, where exec sends it whole at the end.
#[tokio::test]
async fn app_server_streams_the_answer_token_by_token() {
    let mut chunks = Vec::new();
    for backend in ["exec", "app-server"] {
        let (_, _, events) = sse_of(
            client_on(backend, &[])
                .post("/v1/chat/completions")
                .body_json(&chat("hi [[typing:5]]", true))
                .send()
                .await,
        )
        .await;
        let pieces: Vec<String> = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .collect();
        assert_eq!(pieces.concat(), "Hello from the mock model.", "{backend}");
        chunks.push(pieces.len());
    }
    assert_eq!(chunks, [1, 5], "exec: one chunk; app-server: one per delta");
}
