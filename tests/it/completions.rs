//! `POST /v1/completions`: the prompt as one user turn, the answer as text, streamed and not,
//! on both backends.

use serde_json::{json, Value};

use crate::support::{client_on, json_of, post_chat, BACKENDS};

const ANSWER: &str = "Hello from the mock model.";

async fn post<E: poem::Endpoint>(cli: &poem::test::TestClient<E>, body: &Value) -> (u16, String) {
    let resp = cli.post("/v1/completions").body_json(body).send().await;
    let status = resp.0.status().as_u16();
    (status, resp.0.into_body().into_string().await.unwrap())
}

#[tokio::test]
async fn a_prompt_is_answered_as_text_streamed_or_not() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let (status, body) = post(&cli, &json!({"model": "codex-local", "prompt": "Say hi"})).await;
        assert_eq!(status, 200, "{backend}: {body}");
        let reply: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["object"], "text_completion");
        assert!(reply["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(reply["choices"][0]["text"], ANSWER, "{backend}");
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");
        assert!(reply["choices"][0]["logprobs"].is_null());
        assert_eq!(reply["usage"]["prompt_tokens"], 120, "{reply}");

        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "prompt": ["Say hi"], "stream": true,
                    "stream_options": {"include_usage": true}}),
        )
        .await;
        assert_eq!(status, 200);
        let events: Vec<&str> = body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .collect();
        assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["text"].as_str())
            .collect();
        assert_eq!(text, ANSWER, "{backend}: {body}");
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert_eq!(last["usage"]["completion_tokens"], 12, "{last}");
        assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    }
}

#[tokio::test]
async fn what_cannot_be_answered_is_an_openai_error() {
    let cli = client_on("exec", &[]);
    for (body, status, param) in [
        (
            json!({"model": "codex-local", "prompt": ["a", "b"]}),
            400,
            "prompt",
        ),
        (
            json!({"model": "codex-local", "prompt": "  "}),
            400,
            "prompt",
        ),
        (
            json!({"model": "codex-local", "prompt": "hi", "n": 2}),
            400,
            "n",
        ),
    ] {
        let (got, text) = post(&cli, &body).await;
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (got, reply["error"]["param"].as_str()),
            (status, Some(param)),
            "{reply}"
        );
    }
    // A body that does not parse is not explained as a chat request: there are no `messages`.
    let (status, text) = post(
        &cli,
        &json!({"model": "codex-local", "prompt": "hi", "stream": "yes"}),
    )
    .await;
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, reply["error"]["param"].as_str()),
        (400, Some("stream")),
        "{reply}"
    );
    let (status, text) = post(
        &cli,
        &json!({"model": "codex-local", "prompt": "hi", "stop": {}}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("messages"), "{text}");
    let (status, text) = post(&cli, &json!({"model": "gpt-4o", "prompt": "hi"})).await;
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 404);
    assert_eq!(reply["error"]["code"], "model_not_found");
    let keyed = client_on("exec", &[("API_KEYS", "k")]);
    let (status, _) = json_of(
        keyed
            .post("/v1/completions")
            .body_json(&json!({"model": "codex-local", "prompt": "hi"}))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 401);
    // The chat endpoint is unchanged beside it.
    let (status, _) = post_chat(&cli, &crate::support::chat("hi", false)).await;
    assert_eq!(status, 200);
}
