//! The proxy with the real codex CLI (the pinned @openai/codex the Makefile installs), fully
//! offline against an in-process mock of the Responses API. `make test` runs it; it needs
//! `REAL_CODEX`, the path of the native codex binary.

mod app_server_fidelity;
mod doctor;
#[path = "../common/doctor_output.rs"]
mod doctor_output;
mod fidelity;
mod mcp;
mod mock_model;
mod native_tools;
mod sdk_round_trip;
#[path = "../common/server.rs"]
mod server;

use std::time::Duration;

use codex_openai_proxy::config::Config;
use mock_model::{MockModel, REASONING, TEXT};
use poem::{endpoint::BoxEndpoint, test::TestClient, EndpointExt, Response};
use serde_json::{json, Value};

pub(crate) fn real_codex() -> String {
    std::env::var("REAL_CODEX").expect(
        "REAL_CODEX must name the real codex binary; `make test-real-codex` installs the pinned CLI and sets it",
    )
}

/// The backend under test: `make test-real-codex` runs the suite once with each.
pub(crate) fn backend() -> String {
    std::env::var("REAL_CODEX_BACKEND").unwrap_or_else(|_| "exec".into())
}

/// The proxy on the real codex, pointed at `mock`, with a codex home of its own.
struct Setup {
    client: TestClient<BoxEndpoint<'static, Response>>,
    mock: MockModel,
    codex_home: tempfile::TempDir,
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let mock = MockModel::start().await;
    let codex_home = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("CODEX_PATH".to_owned(), real_codex()),
        ("CODEX_CONFIG".to_owned(), mock.codex_config()),
        (
            "CODEX_HOME".to_owned(),
            codex_home.path().display().to_string(),
        ),
        ("CODEX_MODEL".to_owned(), "gpt-5.5".to_owned()),
        ("CODEX_BACKEND".to_owned(), backend()),
    ];
    vars.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(vars).unwrap();
    let app = codex_openai_proxy::app(config).boxed();
    Setup {
        client: TestClient::new(app),
        mock,
        codex_home,
    }
}

fn chat(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "codex-local",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

async fn post(setup: &Setup, body: &Value) -> (u16, String) {
    let resp = setup
        .client
        .post("/v1/chat/completions")
        .body_json(body)
        .send()
        .await;
    let status = resp.0.status().as_u16();
    (status, resp.0.into_body().into_string().await.unwrap())
}

async fn post_json(setup: &Setup, body: &Value) -> (u16, Value) {
    let (status, text) = post(setup, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

fn expected_usage() -> Value {
    json!({
        "prompt_tokens": 120, "completion_tokens": 19, "total_tokens": 139,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 7}
    })
}

#[tokio::test]
async fn a_plain_answer_with_the_mocks_usage() {
    let setup = setup(&[]).await;
    let (status, body) = post_json(&setup, &chat("say hi", false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], TEXT);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], expected_usage());
    let requests = setup.mock.requests.0.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0]["model"], "gpt-5.5",
        "CODEX_MODEL reaches the provider"
    );
}

#[tokio::test]
async fn a_streamed_answer_with_reasoning_and_usage() {
    let setup = setup(&[]).await;
    let (status, text) = post(&setup, &chat("think [[reasoning]]", true)).await;
    assert_eq!(status, 200);
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let field = |name: &str| -> String {
        events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"][name].as_str())
            .collect()
    };
    assert_eq!(field("reasoning_content"), REASONING);
    assert_eq!(field("content"), "Reasoned answer from the mock model.");
    assert_eq!(events.last().unwrap()["usage"], expected_usage());
    assert!(text.ends_with("data: [DONE]\n\n"));
    // The mock streams the answer in 8-byte deltas and the summary in 10-byte ones: exec
    // hands each over whole, app-server piece by piece.
    let chunks = |name: &str| {
        events
            .iter()
            .filter(|e| {
                e["choices"][0]["delta"][name]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            })
            .count()
    };
    let expected = match backend().as_str() {
        "app-server" => (5, 6),
        _ => (1, 1),
    };
    assert_eq!((chunks("content"), chunks("reasoning_content")), expected);
}

#[tokio::test]
async fn every_provider_failure_maps_to_its_openai_error() {
    let setup = setup(&[]).await;
    for (marker, status, code) in [
        ("http401", 502, "codex_unauthenticated"),
        ("http429", 429, "rate_limit_exceeded"),
        ("http500", 502, "codex_error"),
        ("context", 400, "context_length_exceeded"),
        ("quota", 429, "insufficient_quota"),
        ("cut", 502, "codex_error"),
    ] {
        let (got, body) = post_json(&setup, &chat(&format!("fail [[{marker}]]"), false)).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{marker}: {body}"
        );
    }
}

/// The exec backend's tools, described in the prompt; the app-server backend offers them as
/// function tools (native_tools.rs), so the mock model's prompt-reading answer does not apply.
#[tokio::test]
async fn a_tool_call_round_trip() {
    if backend() == "app-server" {
        return;
    }
    let setup = setup(&[]).await;
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
    let first = json!({"model": "codex-local", "tools": [tool], "messages": [{"role": "user", "content": "Weather in Paris? [[tool_flow]]"}]});
    let (status, reply) = post_json(&setup, &first).await;
    assert_eq!(status, 200, "{reply}");
    let message = &reply["choices"][0]["message"];
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    let second = json!({"model": "codex-local", "tools": [tool], "messages": [
        {"role": "user", "content": "Weather in Paris? [[tool_flow]]"},
        message,
        {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "18 C"}
    ]});
    let (status, reply) = post_json(&setup, &second).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "The tool says: 18 C"
    );
}

#[tokio::test]
async fn four_concurrent_requests() {
    let setup = std::sync::Arc::new(setup(&[]).await);
    let replies = futures_util::future::join_all((0..4).map(|i| {
        let setup = setup.clone();
        async move { post_json(&setup, &chat(&format!("hi {i}"), false)).await }
    }))
    .await;
    for (status, body) in replies {
        assert_eq!(
            (status, body["choices"][0]["message"]["content"].as_str()),
            (200, Some(TEXT))
        );
    }
    assert_eq!(setup.mock.requests.0.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_200_kib_prompt_reaches_the_model_whole() {
    let setup = setup(&[]).await;
    let prompt = format!("{} [[echo]]", "-x ".repeat(70_000));
    let (status, body) = post_json(&setup, &chat(&prompt, false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("ECHO: {}", prompt.len())
    );
    let requests = setup.mock.requests.0.lock().unwrap();
    assert_eq!(mock_model::last_user_text(&requests[0]), prompt);
}

/// Pids of running processes whose environment names `codex_home`: the codex runs of a setup.
fn codex_processes(codex_home: &std::path::Path) -> Vec<u32> {
    let needle = format!("CODEX_HOME={}", codex_home.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z');
            !zombie
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var == needle.as_bytes())
        })
        .collect()
}

#[tokio::test]
async fn a_streaming_client_that_leaves_stops_its_codex_turn() {
    let setup = setup(&[]).await;
    let resp = setup
        .client
        .post("/v1/chat/completions")
        .body_json(&chat("wait [[hang]]", true))
        .send()
        .await;
    resp.assert_status_is_ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while setup.mock.requests.0.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "codex never reached the mock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = codex_processes(setup.codex_home.path());
    assert!(!running.is_empty(), "codex is running");
    assert_eq!(setup.mock.open_streams.count(), 1);
    drop(resp);
    if backend() == "app-server" {
        // The app-server stays; the turn is interrupted, so codex drops its model request,
        // and the same process answers the next request.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while setup.mock.open_streams.count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "codex still waits on the model after its client left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, body) = post_json(&setup, &chat("again", false)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], TEXT);
        let app_server = running.iter().min().copied();
        assert!(
            codex_processes(setup.codex_home.path())
                .iter()
                .min()
                .copied()
                == app_server,
            "the same app-server process answered"
        );
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        let left = codex_processes(setup.codex_home.path());
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "codex outlived its client: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn with_its_tools_on_codex_runs_a_command_and_answers() {
    let setup = setup(&[("CODEX_TOOLS", "agent")]).await;
    let (status, body) = post_json(&setup, &chat("run it [[shell]]", false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The command printed mock-shell-output."
    );
    let requests = setup.mock.requests.0.lock().unwrap();
    assert_eq!(
        requests.len(),
        2,
        "codex sent the command's result back to the model"
    );
}

#[tokio::test]
async fn no_usage_from_the_model_is_estimated() {
    let setup = setup(&[]).await;
    let (status, body) = post_json(&setup, &chat("say hi [[no_usage]]", false)).await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert_eq!(
        usage["completion_tokens"],
        codex_openai_proxy::usage::count_tokens(TEXT)
    );
    assert_eq!(
        usage["prompt_tokens"],
        codex_openai_proxy::usage::count_tokens("say hi [[no_usage]]")
    );
}

const PLANTED: &str = "sk-planted-secret-for-the-test";

/// What codex offered the model on the mock's first request.
fn offered_tools(setup: &Setup) -> Vec<String> {
    let requests = setup.mock.requests.0.lock().unwrap();
    requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| {
            tool["name"]
                .as_str()
                .or(tool["type"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

/// What fake-codex claims codex offers under the same switches.
async fn fake_offers(mode: &str) -> String {
    let fast = setup(&[
        ("CODEX_TOOLS", mode),
        ("CODEX_PATH", env!("CARGO_BIN_EXE_fake-codex")),
    ])
    .await;
    let (_, body) = post_json(&fast, &chat("[[tools]]", false)).await;
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn chat_mode_offers_the_model_none_of_codexs_reaching_tools() {
    let setup = setup(&[]).await;
    let (status, _) = post_json(&setup, &chat("hi", false)).await;
    assert_eq!(status, 200);
    let tools = offered_tools(&setup);
    assert_eq!(
        tools,
        ["request_user_input", "apply_patch"],
        "recorded by the mock"
    );
    assert_eq!(
        fake_offers("chat").await,
        format!("TOOLS: {}", tools.join(",")),
        "fake-codex agrees"
    );

    let agent = self::setup(&[("CODEX_TOOLS", "agent")]).await;
    post_json(&agent, &chat("hi", false)).await;
    let tools = offered_tools(&agent);
    assert!(
        tools.iter().any(|t| t == "exec_command") && tools.iter().any(|t| t == "web_search"),
        "{tools:?}"
    );
    assert_eq!(
        fake_offers("agent").await,
        format!("TOOLS: {}", tools.join(",")),
        "fake-codex agrees"
    );
}

#[tokio::test]
async fn only_agent_mode_lets_a_prompt_read_codexs_login() {
    for (mode, leaks) in [("chat", false), ("agent", true)] {
        let setup = setup(&[("CODEX_TOOLS", mode)]).await;
        std::fs::write(
            setup.codex_home.path().join("auth.json"),
            format!("{{\"OPENAI_API_KEY\":\"{PLANTED}\"}}"),
        )
        .unwrap();
        let (status, body) = post_json(&setup, &chat("show me [[steal]]", false)).await;
        assert_eq!(status, 200, "{mode}: {body}");
        let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(answer.starts_with("OUTPUT: "), "{mode}: {answer}");
        assert_eq!(answer.contains(PLANTED), leaks, "{mode}: {answer}");
    }
}

#[tokio::test]
async fn an_image_reaches_the_model_as_an_input_image() {
    let setup = setup(&[]).await;
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let body = json!({"model": "codex-local", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": png}}
    ]}]});
    let (status, reply) = post_json(&setup, &body).await;
    assert_eq!(status, 200, "{reply}");
    let requests = setup.mock.requests.0.lock().unwrap();
    let user = requests[0]["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "user")
        .last()
        .unwrap()
        .clone();
    let image = user["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "input_image")
        .expect("an input_image part");
    assert!(
        image["image_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"),
        "{image}"
    );
}

#[tokio::test]
async fn a_json_schema_reaches_the_model_as_its_strict_text_format() {
    let setup = setup(&[]).await;
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["city"],
        "properties": {"city": {"type": "string"}}});
    let mut body = chat("weather [[json]]", false);
    body["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "w", "schema": schema}});
    let (status, reply) = post_json(&setup, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "{\"city\":\"Paris\"}"
    );
    let requests = setup.mock.requests.0.lock().unwrap();
    let format = &requests[0]["text"]["format"];
    assert_eq!(
        (format["type"].as_str(), format["strict"].as_bool()),
        (Some("json_schema"), Some(true)),
        "{format}"
    );
    assert_eq!(format["schema"], schema);
}
