//! `/mcp` on the real codex's app-server, driven by the official MCP Python SDK: `codex` starts a
//! thread, `codex-reply` continues it, and the model request of the reply carries the first
//! turn, as codex's own thread holds it. `make test-real-codex` gives the SDK's interpreter as
//! `SDK_PYTHON` (the Python suite's venv, which has `mcp`).

use serde_json::{json, Value};

use crate::{
    mock_model::{MockModel, REASONING, TEXT},
    sdk_round_trip::python_client,
};

/// The mock model's answer to a `[[reasoning]]` prompt.
const REASONED: &str = "Reasoned answer from the mock model.";

/// An MCP client session, printed as one JSON line per message it saw: what an agent sends
/// and gets.
const SCRIPT: &str = r#"
import json, sys, anyio, httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

def show(**line):
    print(json.dumps(line), flush=True)

async def main():
    headers = {"Authorization": "Bearer mcp-key"}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=120)) as http:
        async with streamable_http_client(sys.argv[1] + "/mcp", http_client=http) as (r, w, _):
            async with ClientSession(r, w) as s:
                init = await s.initialize()
                show(step="initialize", server=init.serverInfo.name, protocol=init.protocolVersion)
                tools = await s.list_tools()
                show(step="tools/list", tools=[t.name for t in tools.tools])
                async def progress(value, total, message):
                    show(step="progress", message=message)
                args = {"prompt": "Remember the word PEAR. [[reasoning]]",
                        "developer_instructions": "Answer in one line."}
                show(step="tools/call", tool="codex", arguments=args)
                first = await s.call_tool("codex", args, progress_callback=progress)
                show(step="result", isError=first.isError, text=first.content[0].text,
                     structured=first.structuredContent)
                args = {"threadId": first.structuredContent["threadId"], "prompt": "Which word was it?"}
                show(step="tools/call", tool="codex-reply", arguments=args)
                reply = await s.call_tool("codex-reply", args)
                show(step="result", isError=reply.isError, text=reply.content[0].text,
                     structured=reply.structuredContent)

anyio.run(main)
"#;

#[tokio::test]
#[ignore = "app-server only: runs in the app-server pass of make test-real-codex"]
async fn an_mcp_client_continues_a_codex_thread_whose_first_turn_the_model_sees_again() {
    let mock = MockModel::start().await;
    let stdout = python_client(&mock, &[("API_KEYS", "mcp-key")], SCRIPT).await;
    // The session, for whoever reads the test's output (`--nocapture`).
    println!("{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let results: Vec<&Value> = lines.iter().filter(|l| l["step"] == "result").collect();
    assert_eq!(results.len(), 2, "{stdout}");
    for (result, answer) in results.iter().zip([REASONED, TEXT]) {
        assert_eq!(result["isError"], false, "{result}");
        assert_eq!(result["text"], answer);
    }
    let thread = &results[0]["structured"]["threadId"];
    assert_eq!(&results[1]["structured"]["threadId"], thread);
    assert!(
        lines
            .iter()
            .any(|l| l["step"] == "progress" && l["message"].as_str() == Some(REASONING)),
        "codex's reasoning came as progress: {stdout}"
    );

    // Two model requests, the second holding the whole thread: the instructions, the first
    // question and answer, then the new question.
    let requests = mock.requests.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let said = |request: &Value| -> Vec<Value> {
        request["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["type"] == "message")
            .map(|item| {
                let text: String = item["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|part| part["text"].as_str())
                    .collect();
                json!([item["role"], text])
            })
            .filter(|pair| {
                let text = pair[1].as_str().unwrap_or_default();
                !text.starts_with("<environment_context>") && !text.starts_with("You are Codex")
            })
            .collect()
    };
    let second = said(&requests[1]);
    for (n, request) in requests.iter().enumerate() {
        println!("model request {}: {}", n + 1, Value::from(said(request)));
    }
    let tail: Vec<Value> = second.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            json!(["user", "Remember the word PEAR. [[reasoning]]"]),
            json!(["assistant", REASONED]),
            json!(["user", "Which word was it?"]),
        ],
        "{second:?}"
    );
    assert!(
        second
            .iter()
            .any(|m| m[0] == "developer" && m[1].as_str().unwrap().contains("Answer in one line.")),
        "{second:?}"
    );
}
