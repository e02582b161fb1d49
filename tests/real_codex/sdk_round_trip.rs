//! A full tool round trip written as a user writes it with the OpenAI Python SDK, against the
//! proxy binary on the real codex's app-server: the model calls the client's tool, the SDK
//! sends the result back, and the answer uses it. `make test-real-codex` gives the SDK's
//! interpreter as `SDK_PYTHON` (the Python suite's venv).

use crate::{mock_model::MockModel, real_codex, server::Server};

/// What the script prints: the call the SDK got, and the final answer.
const SCRIPT: &str = r#"
import json, sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="unused")
tools = [{"type": "function", "function": {"name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
messages = [{"role": "user", "content": "What's the weather in Paris? [[native_tool]]"}]
first = client.chat.completions.create(model="codex-local", messages=messages, tools=tools)
call = first.choices[0].message.tool_calls[0]
messages.append(first.choices[0].message.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id,
                 "content": "18 C and sunny in " + json.loads(call.function.arguments)["city"]})
final = client.chat.completions.create(model="codex-local", messages=messages, tools=tools)
print(json.dumps({
    "finish": first.choices[0].finish_reason,
    "call": [call.id, call.function.name, call.function.arguments],
    "answer": final.choices[0].message.content,
    "final_finish": final.choices[0].finish_reason,
}))
"#;

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn the_openai_python_sdk_makes_a_native_tool_round_trip() {
    let mock = MockModel::start().await;
    let stdout = python_client(&mock, &[], SCRIPT).await;
    let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "finish": "tool_calls",
            "call": ["call_native_1", "get_weather", "{\"city\":\"Paris\"}"],
            "answer": "The tool says: 18 C and sunny in Paris",
            "final_finish": "stop",
        })
    );
}

/// Runs `script` with the SDKs' Python (`SDK_PYTHON`), its first argument the base URL of the
/// proxy binary on the real codex's app-server against `mock` (with `extra` settings), and
/// returns what it printed; a failing script fails the test with its output.
pub async fn python_client(mock: &MockModel, extra: &[(&str, &str)], script: &str) -> String {
    let python = std::env::var("SDK_PYTHON").expect(
        "SDK_PYTHON must name the Python suite's venv interpreter; `make test-real-codex` sets it",
    );
    let home = tempfile::tempdir().unwrap();
    let (config, home_path) = (mock.codex_config(), home.path().display().to_string());
    let codex = real_codex();
    let mut settings = vec![
        ("CODEX_PATH", codex.as_str()),
        ("CODEX_CONFIG", config.as_str()),
        ("CODEX_HOME", home_path.as_str()),
        ("HOME", home_path.as_str()),
        ("CODEX_MODEL", "gpt-5.5"),
        ("CODEX_BACKEND", "app-server"),
    ];
    settings.extend_from_slice(extra);
    let server = Server::start(&settings);
    let (base, script) = (server.base.clone(), script.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", &script, &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(server);
    stdout
}
