//! Shared test helpers: the app on fake-codex, request builders, SSE parsing, redaction.

use codex_openai_proxy::config::Config;
use poem::{test::TestClient, Endpoint, Response};
use serde_json::{json, Value};

pub fn fake_codex() -> &'static str {
    env!("CARGO_BIN_EXE_fake-codex")
}

/// The configuration a user would have, with fake-codex as codex and `extra` on top. A test
/// that names no `CODEX_BACKEND` tests the exec backend's behaviour (a process per request, the
/// prompt it reads); the default backend, app-server, is named by the suites that cover it
/// (`client_on`, `BACKENDS`).
pub fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !vars.iter().any(|(k, _)| k == "CODEX_PATH") {
        vars.push(("CODEX_PATH".to_owned(), fake_codex().to_owned()));
    }
    if !vars.iter().any(|(k, _)| k == "CODEX_BACKEND") {
        vars.push(("CODEX_BACKEND".to_owned(), "exec".to_owned()));
    }
    Config::from_vars(vars).expect("test configuration is valid")
}

pub fn client(extra: &[(&str, &str)]) -> TestClient<impl Endpoint<Output = Response>> {
    TestClient::new(codex_openai_proxy::app(config(extra)))
}

/// The values of `CODEX_BACKEND`: suites that run on both iterate over these.
pub const BACKENDS: &[&str] = &["exec", "app-server"];

/// A client on fake-codex through `backend`, with `extra` on top.
pub fn client_on(
    backend: &str,
    extra: &[(&str, &str)],
) -> TestClient<impl Endpoint<Output = Response>> {
    let mut vars = vec![("CODEX_BACKEND", backend)];
    vars.extend_from_slice(extra);
    client(&vars)
}

/// A stream with each run of content (or reasoning) chunks merged into one chunk: what is
/// left when how finely the answer was split no longer counts.
pub fn coalesced(events: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for event in events {
        let delta = &event["choices"][0]["delta"];
        let only = |key: &str| {
            delta
                .as_object()
                .is_some_and(|d| d.len() == 1 && d.contains_key(key))
                && event["choices"][0]["finish_reason"].is_null()
        };
        let key = ["content", "reasoning_content"]
            .into_iter()
            .find(|k| only(k));
        if let (Some(key), Some(last)) = (key, out.last_mut()) {
            let last_delta = &last["choices"][0]["delta"];
            let mergeable = last_delta
                .as_object()
                .is_some_and(|d| d.len() == 1 && d.contains_key(key))
                && last["choices"][0]["finish_reason"].is_null();
            if mergeable {
                let joined = format!(
                    "{}{}",
                    last_delta[key].as_str().unwrap_or(""),
                    delta[key].as_str().unwrap_or("")
                );
                last["choices"][0]["delta"][key] = Value::String(joined);
                continue;
            }
        }
        out.push(event.clone());
    }
    out
}

/// A one-message chat request.
pub fn chat(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "codex-local",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

/// Status and JSON body of a response.
pub async fn json_of(resp: poem::test::TestResponse) -> (u16, Value) {
    let status = resp.0.status().as_u16();
    let body = resp
        .0
        .into_body()
        .into_string()
        .await
        .expect("body is text");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("body is not JSON: {body}")),
    )
}

/// Polls `check` until it gives a value, or fails with the last state it described once
/// `limit` has passed: for state the server reaches on its own (a background fetch, a probe, a
/// process ending), rather than a sleep standing in for it.
pub async fn eventually<T>(
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(state) => assert!(
                std::time::Instant::now() < deadline,
                "not within {limit:?}: {state}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The codex runs a server binary reports running, from its `/metrics`.
pub async fn running_runs(server: &crate::server::Server) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("codex_proxy_codex_running "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The `/metrics` text.
pub async fn metrics_text<E: Endpoint>(cli: &TestClient<E>) -> String {
    cli.get("/metrics")
        .send()
        .await
        .0
        .into_body()
        .into_string()
        .await
        .expect("metrics are text")
}

/// Status and JSON body of a `POST /v1/chat/completions`.
pub async fn post_chat<E: Endpoint>(cli: &TestClient<E>, body: &Value) -> (u16, Value) {
    json_of(
        cli.post("/v1/chat/completions")
            .body_json(body)
            .send()
            .await,
    )
    .await
}

/// Status, content type and the `data:` payloads of an SSE response (`[DONE]` as a string).
pub async fn sse_of(resp: poem::test::TestResponse) -> (u16, String, Vec<Value>) {
    let status = resp.0.status().as_u16();
    let content_type = resp.0.content_type().unwrap_or_default().to_owned();
    let body = resp
        .0
        .into_body()
        .into_string()
        .await
        .expect("body is text");
    let events = body
        .split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect();
    (status, content_type, events)
}

/// Whether a process is still running; a zombie has exited and only awaits its parent.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// The pids fake-codex's `[[hang:FILE]]` wrote: itself and its child.
pub async fn pids_from(file: &std::path::Path) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Ok(pids) = text
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<i32>, _>>()
            {
                if pids.len() == 2 {
                    return pids;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fake-codex never wrote {}",
            file.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits up to `limit` for every pid to be gone.
pub async fn all_gone_within(pids: &[i32], limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while pids.iter().any(|&pid| alive(pid)) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    true
}

/// Replaces what changes on every run (ids, timestamps) so replies can be snapshotted.
pub fn redact(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match (key.as_str(), &*v) {
                        ("id", Value::String(s)) if s.starts_with("chatcmpl-") => {
                            assert_eq!(
                                s.len(),
                                "chatcmpl-".len() + 24,
                                "completion ids have 24 random characters"
                            );
                            *v = json!("[chatcmpl-id]");
                        }
                        ("id", Value::String(s)) if s.starts_with("call_") => {
                            assert_eq!(
                                s.len(),
                                "call_".len() + 24,
                                "call ids have 24 random characters"
                            );
                            *v = json!("[call-id]");
                        }
                        ("created", Value::Number(_)) => *v = json!("[created]"),
                        _ => walk(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// `insta::assert_json_snapshot!` writing to the top-level `snapshots/` folder.
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!($name, $value);
        })
    };
}
pub(crate) use snapshot;

/// `insta::assert_snapshot!` for text, writing to the top-level `snapshots/` folder.
macro_rules! text_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
pub(crate) use text_snapshot;
