//! `stop` and `REASONING_OUTPUT`: the same answer, shaped by the request or the server.

use serde_json::{json, Value};

use crate::support::{
    chat, client, client_on, json_of, post_chat, redact, snapshot, sse_of, BACKENDS,
};

#[tokio::test]
async fn stop_ends_the_answer_before_the_sequence_streamed_or_not() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let mut request = chat("[[multi]]", false);
        request["stop"] = json!(["Second", "never"]);
        let (status, body) = post_chat(&cli, &request).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "First message.\n\n"
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        snapshot!("shaping_stop_json", redact(body.clone()));

        request["stream"] = json!(true);
        request["stop"] = json!("Second");
        let (_, _, events) = sse_of(
            cli.post("/v1/chat/completions")
                .body_json(&request)
                .send()
                .await,
        )
        .await;
        let content: String = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "First message.\n\n");

        request["stop"] = json!(["a", "b", "c", "d", "e"]);
        let (status, body) = post_chat(&cli, &request).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some("stop"))
        );
    }
}

#[tokio::test]
async fn reasoning_output_think_wraps_the_summary_in_the_content() {
    for backend in BACKENDS {
        let (status, body) = json_of(
            client_on(backend, &[("REASONING_OUTPUT", "think")])
                .post("/v1/chat/completions")
                .body_json(&chat("[[reasoning]]", false))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let message = &body["choices"][0]["message"];
        assert_eq!(
            message["content"],
            "<think>\n**Thinking** about the mock question before answering.\n</think>\n\nReasoned answer from the mock model."
        );
        assert!(message.get("reasoning_content").is_none());
        snapshot!("shaping_reasoning_think_json", redact(body.clone()));
    }
}

#[tokio::test]
async fn reasoning_output_none_leaves_the_summary_out() {
    for backend in BACKENDS {
        let (_, body) = json_of(
            client_on(backend, &[("REASONING_OUTPUT", "none")])
                .post("/v1/chat/completions")
                .body_json(&chat("[[reasoning]]", false))
                .send()
                .await,
        )
        .await;
        let message = &body["choices"][0]["message"];
        assert_eq!(message["content"], "Reasoned answer from the mock model.");
        assert!(message.get("reasoning_content").is_none());
    }
}

fn schema() -> serde_json::Value {
    json!({"type": "object", "additionalProperties": false, "required": ["city", "temperature"],
        "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}}})
}

#[tokio::test]
async fn a_json_schema_goes_to_codex_and_the_answer_is_its_json() {
    for backend in BACKENDS {
        let mut request = chat("[[json]]", false);
        request["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "weather", "strict": true, "schema": schema()}});
        let (status, body) = post_chat(&client_on(backend, &[]), &request).await;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value =
            serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap())
                .unwrap();
        assert_eq!(
            answer,
            json!({"city": "mock", "temperature": 1}),
            "fake-codex answered from the schema file it was given"
        );
        snapshot!("shaping_json_schema_json", redact(body));
    }
}

#[tokio::test]
async fn a_schema_that_breaks_openais_strict_rules_is_a_400_saying_which() {
    let mut lax = schema();
    lax.as_object_mut().unwrap().remove("additionalProperties");
    let mut request = chat("[[json]]", false);
    // Not marked strict (as instructor and the llm CLI send it): made strict, and answered.
    request["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "weather", "schema": lax}});
    let (status, body) = post_chat(&client(&[]), &request).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(answer.is_object(), "{answer}");
    // Marked strict: the client's schema must follow the rules.
    request["response_format"]["json_schema"]["strict"] = json!(true);
    let (status, body) = post_chat(&client(&[]), &request).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("additionalProperties"),
        "{body}"
    );
    snapshot!("shaping_json_schema_not_strict", body);
}

#[tokio::test]
async fn json_object_asks_for_json_unfences_it_and_refuses_prose() {
    let cli = client(&[]);
    let mut request = chat("[[fenced_json]]", false);
    request["response_format"] = json!({"type": "json_object"});
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(
        (status, body["choices"][0]["message"]["content"].as_str()),
        (200, Some("{\"answer\": 42}")),
        "{body}"
    );

    request["messages"][0]["content"] = json!("[[echo]]");
    let (status, body) = post_chat(&cli, &request).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("codex_error")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{body}"
    );
}
