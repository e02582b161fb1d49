//! `fake-codex app-server` against the real `codex app-server` on the same scenarios: the same
//! JSON-RPC requests go to both, and what the proxy reads back must agree: the order of the
//! notifications it acts on (runs of deltas counted once), the item types, the turn's status,
//! and every error's message, `willRetry` and `codexErrorInfo`. Every notification of both must
//! also parse as the proxy's protocol types and follow the JSON Schema the installed codex
//! generates (`codex app-server generate-json-schema`), as must every request the proxy sends.

use codex_openai_proxy::codex::app_server::protocol::{
    Capabilities, ClientInfo, ContentItem, DynamicToolSpec, InitializeParams, ModelListParams,
    ResponseItem, ThreadInjectItemsParams, ThreadStartParams, ThreadUnsubscribeParams,
    ToolCallResult, ToolContent, TurnInterruptParams, TurnNotification, TurnStartParams, UserInput,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::{mock_model::MockModel, real_codex};

/// The scenarios of exec's fidelity test, and the notifications the proxy acts on.
use crate::fidelity::SCENARIOS;
use codex_openai_proxy::codex::app_server::ROUTED_METHODS as ROUTED;

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
    let mut child = crate::fidelity::spawn(program, home, &args);
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

/// The installed codex's protocol schema, generated into a temporary directory.
struct Schemas(tempfile::TempDir);

impl Schemas {
    fn generate() -> Schemas {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(real_codex())
            // With the experimental API, which the proxy asks for (dynamic tools, raw events).
            .args([
                "app-server",
                "generate-json-schema",
                "--experimental",
                "--out",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Schemas(dir)
    }

    /// Checks `value` against `file` (relative to the schema directory).
    fn check(&self, file: &str, value: &Value) {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(self.0.path().join(file)).unwrap())
                .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}\n{value}");
    }

    /// Checks a notification the proxy routes against its schema file.
    fn check_notification(&self, message: &Value) {
        let file = match message["method"].as_str().unwrap() {
            "item/agentMessage/delta" => "v2/AgentMessageDeltaNotification.json",
            "item/reasoning/summaryTextDelta" => "v2/ReasoningSummaryTextDeltaNotification.json",
            "item/completed" => "v2/ItemCompletedNotification.json",
            "thread/tokenUsage/updated" => "v2/ThreadTokenUsageUpdatedNotification.json",
            "error" => "v2/ErrorNotification.json",
            "rawResponseItem/completed" => "v2/RawResponseItemCompletedNotification.json",
            "rawResponse/completed" => "v2/RawResponseCompletedNotification.json",
            "turn/completed" => "v2/TurnCompletedNotification.json",
            other => panic!("not a routed method: {other}"),
        };
        self.check(file, &message["params"]);
    }
}

fn value(params: impl serde::Serialize) -> Value {
    serde_json::to_value(params).unwrap()
}

#[test]
fn the_requests_the_proxy_sends_follow_the_installed_codexs_schema() {
    let schemas = Schemas::generate();
    schemas.check(
        "v1/InitializeParams.json",
        &value(InitializeParams {
            client_info: ClientInfo {
                name: "codex_openai_proxy".into(),
                title: Some("codex-openai-proxy".into()),
                version: "0.1.0".into(),
            },
            capabilities: Capabilities {
                experimental_api: true,
            },
        }),
    );
    for (model, tools) in [(None, false), (Some("gpt-5.5".to_owned()), true)] {
        schemas.check(
            "v2/ThreadStartParams.json",
            &value(ThreadStartParams {
                model,
                cwd: "/tmp/turn".into(),
                approval_policy: "never".into(),
                sandbox: "read-only".into(),
                ephemeral: true,
                developer_instructions: tools.then(|| "Be brief.".into()),
                dynamic_tools: if tools {
                    vec![DynamicToolSpec {
                        kind: "function".into(),
                        name: "get_weather".into(),
                        description: "The weather.".into(),
                        input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                    }]
                } else {
                    vec![]
                },
                experimental_raw_events: tools,
            }),
        );
    }
    schemas.check(
        "v2/ThreadInjectItemsParams.json",
        &value(ThreadInjectItemsParams {
            thread_id: "t".into(),
            items: vec![
                ResponseItem::Message {
                    role: "user".into(),
                    content: vec![
                        ContentItem::InputText {
                            text: "Look".into(),
                        },
                        ContentItem::InputImage {
                            image_url: "data:image/png;base64,iVBORw0KGgo=".into(),
                        },
                    ],
                },
                ResponseItem::Message {
                    role: "assistant".into(),
                    content: vec![ContentItem::OutputText {
                        text: "A PNG.".into(),
                    }],
                },
                ResponseItem::FunctionCall {
                    call_id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
                ResponseItem::FunctionCallOutput {
                    call_id: "call_1".into(),
                    output: "Sunny".into(),
                },
            ],
        }),
    );
    schemas.check(
        "DynamicToolCallResponse.json",
        &value(ToolCallResult {
            content_items: vec![ToolContent::InputText {
                text: "Invalid arguments".into(),
            }],
            success: false,
        }),
    );
    schemas.check(
        "v2/TurnStartParams.json",
        &value(TurnStartParams {
            thread_id: "t".into(),
            input: vec![
                UserInput::Text {
                    text: "hi [image 1]".into(),
                    text_elements: vec![],
                },
                UserInput::LocalImage {
                    path: "/tmp/image-1.png".into(),
                },
            ],
            effort: Some("high".into()),
            output_schema: Some(json!({"type": "object"})),
        }),
    );
    schemas.check(
        "v2/TurnInterruptParams.json",
        &value(TurnInterruptParams {
            thread_id: "t".into(),
            turn_id: "u".into(),
        }),
    );
    schemas.check(
        "v2/ThreadUnsubscribeParams.json",
        &value(ThreadUnsubscribeParams {
            thread_id: "t".into(),
        }),
    );
    for cursor in [None, Some("2".to_owned())] {
        schemas.check(
            "v2/ModelListParams.json",
            &value(ModelListParams { cursor }),
        );
    }
}

/// Needs no proxy backend, so it runs once, in the app-server pass of `make test-real-codex`
/// (`--include-ignored`), and shows as ignored in the exec pass rather than as a pass.
#[tokio::test]
#[ignore = "runs in the app-server pass of make test-real-codex"]
async fn fake_app_server_matches_the_real_one_scenario_by_scenario() {
    let mock = MockModel::start().await;
    let home = tempfile::tempdir().unwrap();
    let schemas = Schemas::generate();
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
        for message in real.iter().chain(&fake) {
            schemas.check_notification(message);
        }
        assert_eq!(
            essence(&fake),
            essence(&real),
            "{scenario}\nreal: {real:#?}\nfake: {fake:#?}"
        );
    }
}
