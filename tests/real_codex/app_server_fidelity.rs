//! `fake-codex app-server` against the real `codex app-server` on the same scenarios: the same
//! JSON-RPC requests go to both, and what the proxy reads back must agree: the order of the
//! notifications it acts on (runs of deltas counted once), the item types, the turn's status,
//! and every error's message, `willRetry` and `codexErrorInfo`. Every notification of both must
//! also parse as the proxy's protocol types.

use std::process::Stdio;

use codex_openai_proxy::codex::app_server::protocol::TurnNotification;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{mock_model::MockModel, real_codex};

const SCENARIOS: &[&str] = &[
    "text",
    "reasoning",
    "http401",
    "http429",
    "http500",
    "context",
    "quota",
    "cut",
];

const ROUTED: &[&str] = &[
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/completed",
    "thread/tokenUsage/updated",
    "error",
    "turn/completed",
];

/// One turn on a fresh app-server: the notifications of its thread, up to `turn/completed`.
async fn one_turn(
    program: &str,
    mock: &MockModel,
    home: &std::path::Path,
    prompt: &str,
) -> Vec<Value> {
    let workdir = tempfile::tempdir().unwrap();
    let mut args = vec!["app-server".to_owned()];
    for pair in mock.codex_config().split("; ") {
        args.extend(["-c".to_owned(), pair.to_owned()]);
    }
    let mut child = tokio::process::Command::new(program)
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEX_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let requests = [
        json!({"method": "initialize", "id": 0, "params": {"clientInfo": {"name": "fidelity", "title": null, "version": "0"}}}),
        json!({"method": "initialized"}),
        json!({"method": "thread/start", "id": 1, "params": {"model": "gpt-5.5", "cwd": workdir.path().display().to_string(), "approvalPolicy": "never", "sandbox": "read-only", "ephemeral": true}}),
    ];
    for request in &requests {
        stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut thread_id = None;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{program}: no turn/completed for {prompt:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{program}: stdout closed"));
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["id"] == 1 {
            let id = message["result"]["thread"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let turn = json!({"method": "turn/start", "id": 2, "params": {"threadId": id, "input": [{"type": "text", "text": prompt, "text_elements": []}]}});
            stdin
                .write_all(format!("{turn}\n").as_bytes())
                .await
                .unwrap();
            thread_id = Some(id);
            continue;
        }
        let Some(method) = message["method"].as_str() else {
            continue;
        };
        if !ROUTED.contains(&method)
            || message["params"]["threadId"].as_str() != thread_id.as_deref()
        {
            continue;
        }
        serde_json::from_value::<TurnNotification>(message.clone())
            .unwrap_or_else(|err| panic!("{program}: the proxy cannot read {message}: {err}"));
        let done = method == "turn/completed";
        seen.push(message);
        if done {
            return seen;
        }
    }
}

/// What the proxy's reading depends on, run by run.
fn essence(notifications: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for n in notifications {
        let params = &n["params"];
        let entry = match n["method"].as_str().unwrap() {
            "item/completed" => json!({"item/completed": params["item"]["type"]}),
            "error" => json!({"error": {
                "message": params["error"]["message"],
                "codexErrorInfo": params["error"]["codexErrorInfo"],
                "willRetry": params["willRetry"],
            }}),
            "turn/completed" => json!({"turn/completed": {
                "status": params["turn"]["status"],
                "message": params["turn"]["error"]["message"],
                "codexErrorInfo": params["turn"]["error"]["codexErrorInfo"],
            }}),
            method => json!(method),
        };
        if out.last() != Some(&entry) || !entry.is_string() {
            out.push(entry);
        }
    }
    out
}

#[tokio::test]
async fn fake_app_server_matches_the_real_one_scenario_by_scenario() {
    if crate::backend() != "app-server" {
        return; // runs with the app-server pass of the suite
    }
    let mock = MockModel::start().await;
    let home = tempfile::tempdir().unwrap();
    for scenario in SCENARIOS {
        let prompt = format!("fidelity [[{scenario}]]");
        let real = one_turn(&real_codex(), &mock, home.path(), &prompt).await;
        let fake = one_turn(
            env!("CARGO_BIN_EXE_fake-codex"),
            &mock,
            home.path(),
            &prompt,
        )
        .await;
        assert_eq!(
            essence(&fake),
            essence(&real),
            "{scenario}\nreal: {real:#?}\nfake: {fake:#?}"
        );
    }
}
