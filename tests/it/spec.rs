//! The OpenAPI spec is snapshotted, so every API change shows up in review.

use serde_json::json;

use crate::support::{client, json_of, snapshot};

#[tokio::test]
async fn openapi_spec() {
    let (status, spec) = json_of(client(&[]).get("/openapi.json").send().await).await;
    assert_eq!(status, 200);
    snapshot!("openapi_spec", spec);
}

#[tokio::test]
async fn docs_pages_are_served() {
    let cli = client(&[]);
    for (path, needle) in [("/docs", "swagger"), ("/redoc", "redoc")] {
        let resp = cli.get(path).send().await;
        assert_eq!(resp.0.status().as_u16(), 200, "{path}");
        let html = resp
            .0
            .into_body()
            .into_string()
            .await
            .unwrap()
            .to_lowercase();
        assert!(html.contains(needle), "{path} does not look like {needle}");
    }
}

#[tokio::test]
async fn the_docs_example_requests_work_as_they_stand() {
    let cli = client(&[]);
    let (_, spec) = json_of(cli.get("/openapi.json").send().await).await;
    for (schema, path) in [
        ("ChatCompletionRequest", "/v1/chat/completions"),
        ("CreateResponse", "/v1/responses"),
        ("CompletionRequest", "/v1/completions"),
    ] {
        let example = spec["components"]["schemas"][schema]["example"].clone();
        assert_eq!(example["model"], "codex-local", "{schema}: {example}");
        let (status, reply) = json_of(cli.post(path).body_json(&example).send().await).await;
        assert_eq!(
            status, 200,
            "what Swagger UI's Try it out sends to {path}: {reply}"
        );
    }
}

#[tokio::test]
async fn nulls_and_strings_are_taken_as_the_spec_says() {
    let cli = client(&[]);
    let routes = [
        (
            "/v1/chat/completions",
            json!({"model": "codex-local", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "codex-local", "input": "hi"}),
        ),
        (
            "/v1/completions",
            json!({"model": "codex-local", "prompt": "hi"}),
        ),
    ];
    for (path, base) in routes {
        let with = |field: &str, value: serde_json::Value| {
            let mut body = base.clone();
            body[field] = value;
            body
        };
        // An optional field sent as null is left out, as OpenAI takes it; the spec says nullable.
        for field in ["user", "temperature", "top_p", "stream"] {
            let (status, reply) = json_of(
                cli.post(path)
                    .body_json(&with(field, json!(null)))
                    .send()
                    .await,
            )
            .await;
            assert_eq!(status, 200, "{path} {field}: null: {reply}");
        }
        // A string field takes only a string (poem's String would take `false` as "false").
        let (status, reply) = json_of(
            cli.post(path)
                .body_json(&with("user", json!(false)))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 400, "{path} user: false: {reply}");
    }
    // So do the strings inside messages and tools.
    for message in [
        json!({"role": "tool", "tool_call_id": false, "content": "18 C"}),
        json!({"role": "user", "name": 7, "content": "hi"}),
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": true, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}),
    ] {
        let body = json!({"model": "codex-local", "messages": [{"role": "user", "content": "hi"}, message]});
        let (status, reply) = json_of(
            cli.post("/v1/chat/completions")
                .body_json(&body)
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 400, "{body}: {reply}");
    }
    let tool =
        json!({"type": "function", "function": {"name": false, "parameters": {"type": "object"}}});
    let body = json!({"model": "codex-local", "messages": [{"role": "user", "content": "hi"}], "tools": [tool]});
    let (status, reply) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&body)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    let instructions = json!({"model": "codex-local", "input": "hi", "instructions": 5});
    let (status, reply) = json_of(
        cli.post("/v1/responses")
            .body_json(&instructions)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    // `stop` is a string or an array of strings, nothing else.
    for (stop, expected) in [
        (json!("\n"), 200),
        (json!(["\n", "END"]), 200),
        (json!([false]), 400),
        (json!(5), 400),
    ] {
        let body = json!({"model": "codex-local", "prompt": "hi", "stop": stop});
        let (status, reply) =
            json_of(cli.post("/v1/completions").body_json(&body).send().await).await;
        assert_eq!(status, expected, "stop: {stop}: {reply}");
    }
}
