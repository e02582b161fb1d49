//! Requests as clients really send them, and bad ones: each bad request gets an OpenAI-shaped
//! error with the right status and a message that says what to change.

use serde_json::{json, Value};

use crate::support::{chat, client, json_of, post_chat, redact, snapshot, text_snapshot};

async fn post(body: Value) -> (u16, Value) {
    post_chat(&client(&[]), &body).await
}

fn assert_openai_error(status: u16, body: &Value, expected_status: u16) {
    assert_eq!(status, expected_status, "{body}");
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.as_object().unwrap().contains_key("param")
            && error.as_object().unwrap().contains_key("code"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_openai_errors() {
    let cases: Vec<(&str, Value, u16)> = vec![
        (
            "n_above_one",
            json!({"model": "codex-local", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
            400,
        ),
        (
            "unknown_model",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            404,
        ),
        (
            "empty_messages",
            json!({"model": "codex-local", "messages": []}),
            400,
        ),
        ("missing_messages", json!({"model": "codex-local"}), 400),
        (
            "unknown_role",
            json!({"model": "codex-local", "messages": [{"role": "wizard", "content": "hi"}]}),
            400,
        ),
        (
            "wrong_type",
            json!({"model": "codex-local", "messages": "hi"}),
            400,
        ),
        (
            "image_url_not_fetched",
            json!({"model": "codex-local", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
            ]}]}),
            400,
        ),
    ];
    for (name, body, expected) in cases {
        let (status, reply) = post(body).await;
        assert_openai_error(status, &reply, expected);
        snapshot!(
            format!("bad_request_{name}"),
            json!({"status": status, "body": reply})
        );
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_media_type_are_openai_errors() {
    let cli = client(&[]);
    let resp = cli
        .post("/v1/chat/completions")
        .content_type("application/json")
        .body("{\"model\": \"codex-local\", \"messages\": [")
        .send()
        .await;
    let (status, body) = json_of(resp).await;
    assert_openai_error(status, &body, 400);
    snapshot!(
        "bad_request_malformed_json",
        json!({"status": status, "body": body})
    );

    let resp = cli
        .post("/v1/chat/completions")
        .content_type("text/plain")
        .body("hello")
        .send()
        .await;
    let (status, body) = json_of(resp).await;
    assert_openai_error(status, &body, 415);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );

    let (status, body) = json_of(cli.get("/v1/nothing").send().await).await;
    assert_openai_error(status, &body, 404);
}

#[tokio::test]
async fn sdk_style_requests_are_accepted() {
    // Unknown fields, nulls, the developer role and content parts, as the SDKs and OpenWebUI send them.
    let (status, body) = post(json!({
        "model": "codex-local",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two [[echo]]"}]}
        ],
        "temperature": 0.2, "top_p": null, "max_tokens": 50, "seed": 7, "user": "u1",
        "logprobs": false, "frequency_penalty": 0, "metadata": {"x": 1}, "stop": ["<never-said>"],
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.starts_with("ECHO: <instructions>\nBe terse.\n</instructions>"),
        "{answer}"
    );
    assert!(
        answer.contains("<user>\npart one\npart two [[echo]]\n</user>"),
        "{answer}"
    );
    snapshot!("sdk_style_request", redact(body));
}

#[tokio::test]
async fn tool_calls_and_results_in_history_reach_codex_as_a_transcript() {
    let (status, body) = post(json!({
        "model": "codex-local",
        "messages": [
            {"role": "system", "content": "You can look up the weather."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "18 C and sunny"},
            {"role": "user", "content": "Thanks! [[echo_json]]"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let echoed: String = serde_json::from_str(content).unwrap();
    text_snapshot!("tool_history_prompt", echoed.as_str());
}

#[tokio::test]
async fn a_prompt_beyond_the_argv_limit_reaches_codex_whole_on_stdin() {
    let big = format!("{} [[echo]]", "-x ".repeat(70_000)); // 210 KB, and it starts with a dash
    let (status, body) = post(chat(&big, false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"].as_str().unwrap(),
        format!("ECHO: {big}")
    );
}

#[tokio::test]
async fn codex_gets_an_explicit_environment_and_a_temp_dir_that_is_removed() {
    // The server binary with the keys in its own environment, as a user runs it.
    let server = crate::server::Server::start(&[("API_KEYS", "secret-that-codex-must-not-see")]);
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth("secret-that-codex-must-not-see")
        .json(&chat("[[env]]", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let cwd = answer
        .lines()
        .find_map(|l| l.strip_prefix("cwd="))
        .expect("cwd line");
    let env = answer
        .lines()
        .find_map(|l| l.strip_prefix("env="))
        .expect("env line");
    let names: Vec<&str> = env.split(',').collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    assert!(
        !names.contains(&"API_KEYS"),
        "the proxy's keys leaked to codex: {names:?}"
    );
    assert!(std::path::Path::new(cwd).is_absolute(), "{cwd}");
    assert!(
        !std::path::Path::new(cwd).exists(),
        "the per-request directory {cwd} was left behind"
    );
}

#[tokio::test]
async fn a_missing_codex_is_a_503_that_says_how_to_fix_it() {
    let cli = client(&[("CODEX_PATH", "/nonexistent/codex")]);
    let (status, body) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("hi", true))
            .send()
            .await,
    )
    .await;
    assert_openai_error(status, &body, 503);
    assert_eq!(body["error"]["code"], "codex_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CODEX_PATH"),
        "{body}"
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_405_that_names_the_right_one() {
    let resp = client(&[]).get("/v1/chat/completions").send().await;
    assert_eq!(
        resp.0.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let (status, body) = json_of(resp).await;
    assert_openai_error(status, &body, 405);
}
