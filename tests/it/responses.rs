//! `POST /v1/responses` on fake-codex, both backends: the response object, its event stream in
//! OpenAI's order, function calls and their outputs round trip, and what it refuses.

use serde_json::{json, Value};

use crate::support::{client_on, BACKENDS};

async fn post<E: poem::Endpoint>(cli: &poem::test::TestClient<E>, body: &Value) -> (u16, String) {
    let resp = cli.post("/v1/responses").body_json(body).send().await;
    let status = resp.0.status().as_u16();
    (status, resp.0.into_body().into_string().await.unwrap())
}

fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

fn weather() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

#[tokio::test]
async fn a_response_object_with_its_output_text_and_usage() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": "think [[reasoning]]", "instructions": "Be brief."}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let response: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(response["object"], "response");
        assert_eq!(response["status"], "completed");
        assert!(response["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(
            response["output_text"], "Reasoned answer from the mock model.",
            "{backend}"
        );
        let kinds: Vec<&str> = response["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reasoning", "message"], "{backend}: {response}");
        assert!(response["output"][0]["summary"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Thinking"));
        assert_eq!(response["usage"]["input_tokens"], 120, "{response}");
        assert_eq!(
            response["usage"]["output_tokens_details"]["reasoning_tokens"],
            7
        );
        assert_eq!(response["instructions"], "Be brief.");
    }
}

#[tokio::test]
async fn the_stream_is_openais_event_sequence_numbered_and_without_done() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": "hi [[reasoning]]", "stream": true}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(!body.contains("[DONE]"), "{body}");
        assert!(body.starts_with("event: response.created\n"), "{body}");
        let events = events(&body);
        let numbers: Vec<u64> = events
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"response.created"));
        assert_eq!(kinds.last(), Some(&"response.completed"), "{kinds:?}");
        for kind in [
            "response.output_item.added",
            "response.reasoning_summary_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
        ] {
            assert!(
                kinds.contains(&kind),
                "{backend}: {kind} missing from {kinds:?}"
            );
        }
        let text: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, "Reasoned answer from the mock model.");
        assert_eq!(
            events.last().unwrap()["response"]["output_text"],
            "Reasoned answer from the mock model."
        );
    }
}

#[tokio::test]
async fn a_function_call_and_its_output_round_trip() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let ask = json!({"role": "user", "content": "Weather in Paris? [[tool_flow]]"});
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": [ask], "tools": [weather()]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let response: Value = serde_json::from_str(&body).unwrap();
        let call = response["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap_or_else(|| panic!("{backend}: {response}"))
            .clone();
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["arguments"], "{\"city\":\"Paris\"}");
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "tools": [weather()], "input": [
                ask,
                {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]},
                {"type": "function_call_output", "call_id": call["call_id"], "output": "Sunny"},
            ]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let response: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(response["output_text"], "The tool says: Sunny", "{backend}");
    }
}

#[tokio::test]
async fn what_cannot_be_answered_is_an_openai_error() {
    let cli = client_on("app-server", &[]);
    for (body, status, param) in [
        (json!({"model": "codex-local", "input": 7}), 400, "input"),
        (
            json!({"model": "codex-local", "input": [{"type": "computer_call"}]}),
            400,
            "input[0].type",
        ),
        (
            json!({"model": "codex-local", "input": "hi", "previous_response_id": "resp_x"}),
            400,
            "previous_response_id",
        ),
        (
            json!({"model": "codex-local", "input": "hi", "reasoning": {"effort": "huge"}}),
            400,
            "reasoning_effort",
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
    for (body, param) in [
        (
            json!({"model": "codex-local", "input": "hi", "tools": "x"}),
            Some("tools"),
        ),
        (
            json!({"model": "codex-local", "input": "hi", "stream": "yes"}),
            Some("stream"),
        ),
        (
            json!({"model": "codex-local", "input": "hi", "store": 1}),
            None,
        ),
    ] {
        let (status, text) = post(&cli, &body).await;
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, reply["error"]["param"].as_str()),
            (400, param),
            "{reply}"
        );
        assert!(!text.contains("messages"), "{text}");
    }
    // Nothing to answer is refused before codex starts, on either backend (exec would refuse the
    // empty prompt, an app-server turn would answer it).
    for backend in crate::support::BACKENDS {
        let cli = client_on(backend, &[]);
        for input in [
            json!(""),
            json!("  "),
            json!([{"role": "user", "content": ""}]),
        ] {
            let (status, text) = post(&cli, &json!({"model": "codex-local", "input": input})).await;
            let reply: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                (status, reply["error"]["param"].as_str()),
                (400, Some("input")),
                "{backend}: {reply}"
            );
        }
    }
    let (status, text) = post(&cli, &json!({"model": "gpt-4o", "input": "hi"})).await;
    assert_eq!(status, 404, "{text}");
    // A JSON answer asked for with `text.format`, as the chat API's `response_format`.
    let (status, text) = post(
        &cli,
        &json!({"model": "codex-local", "input": "[[json]]", "text": {"format": {"type": "json_schema",
            "name": "weather", "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}}}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let response: Value = serde_json::from_str(&text).unwrap();
    let answer: Value = serde_json::from_str(response["output_text"].as_str().unwrap()).unwrap();
    assert!(answer.is_object(), "{answer}");
}

/// Ids and times made stable for a snapshot: the shape is what is reviewed.
fn stable(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match (key.as_str(), v.as_str()) {
                        ("id" | "item_id" | "call_id", Some(id)) => {
                            let prefix = id.split('_').next().unwrap_or_default();
                            *v = json!(format!("[{prefix}-id]"));
                        }
                        ("created_at", _) => *v = json!("[created_at]"),
                        ("completed_at", _) if v.is_number() => *v = json!("[completed_at]"),
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

#[tokio::test]
async fn each_event_sequence_as_snapshotted() {
    for (name, backend, body) in [
        (
            "responses_stream_reasoning_exec",
            "exec",
            json!({"model": "codex-local", "input": "hi [[reasoning]]", "stream": true}),
        ),
        (
            "responses_stream_tool_call_app_server",
            "app-server",
            json!({"model": "codex-local", "input": "Weather? [[tool_flow]]", "tools": [weather()], "stream": true}),
        ),
    ] {
        let (status, text) = post(&client_on(backend, &[]), &body).await;
        assert_eq!(status, 200, "{text}");
        crate::support::snapshot!(name, stable(Value::Array(events(&text))));
    }
}

#[tokio::test]
async fn a_stored_response_is_continued_retrieved_and_deleted() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": "Weather in Paris? [[tool_flow]]", "tools": [weather()]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let first: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(first["store"], true);
        let id = first["id"].as_str().unwrap().to_owned();
        let call = first["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap_or_else(|| panic!("{first}"))
            .clone();
        // Only the new item: the stored response brings the question and the call.
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "tools": [weather()], "previous_response_id": id,
                    "stream": true,
                    "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "Sunny"}]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let completed = events(&body).pop().unwrap();
        assert_eq!(
            completed["response"]["output_text"], "The tool says: Sunny",
            "{backend}"
        );
        assert_eq!(completed["response"]["previous_response_id"], id.as_str());
        let second = completed["response"]["id"].as_str().unwrap().to_owned();

        let got = cli.get(format!("/v1/responses/{second}")).send().await;
        assert_eq!(got.0.status().as_u16(), 200);
        let got: Value =
            serde_json::from_str(&got.0.into_body().into_string().await.unwrap()).unwrap();
        assert_eq!(got["output_text"], "The tool says: Sunny");

        let deleted = cli.delete(format!("/v1/responses/{id}")).send().await;
        assert_eq!(deleted.0.status().as_u16(), 200);
        let deleted: Value =
            serde_json::from_str(&deleted.0.into_body().into_string().await.unwrap()).unwrap();
        assert_eq!(
            deleted,
            json!({"id": id, "object": "response.deleted", "deleted": true})
        );
        let gone = cli.get(format!("/v1/responses/{id}")).send().await;
        assert_eq!(gone.0.status().as_u16(), 404);
        let gone: Value =
            serde_json::from_str(&gone.0.into_body().into_string().await.unwrap()).unwrap();
        assert!(
            gone["error"]["message"].as_str().unwrap().contains(&id),
            "{gone}"
        );
    }
}

/// What the Vercel AI SDK sends for the second step of a tool call: its earlier answer as an
/// `item_reference` to the stored item, the call and its output in full.
#[tokio::test]
async fn an_item_reference_is_the_stored_item_it_names() {
    for backend in BACKENDS {
        let cli = client_on(backend, &[]);
        let (status, body) = post(&cli, &json!({"model": "codex-local", "input": "say hi"})).await;
        assert_eq!(status, 200, "{body}");
        let first: Value = serde_json::from_str(&body).unwrap();
        let message = first["output"][0]["id"].as_str().unwrap().to_owned();
        assert!(message.starts_with("msg_"), "{first}");
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris? [[tool_flow]]"}]},
                {"type": "item_reference", "id": message},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
            ], "tools": [weather()]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let second: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(second["output_text"], "The tool says: Sunny", "{backend}");

        // The referenced answer is in the conversation codex sees: exec's prompt, app-server's
        // thread history.
        let shows = if *backend == "exec" {
            "[[echo]]"
        } else {
            "[[items]]"
        };
        let (status, body) = post(
            &cli,
            &json!({"model": "codex-local", "input": [
                {"role": "user", "content": "say hi"},
                {"type": "item_reference", "id": message},
                {"role": "user", "content": format!("and again {shows}")},
            ]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {body}");
        let echoed: Value = serde_json::from_str(&body).unwrap();
        let text = echoed["output_text"].as_str().unwrap();
        assert!(
            text.contains("Hello from the mock model."),
            "{backend}: {text}"
        );

        for (reference, message) in [
            (
                json!({"type": "item_reference", "id": "msg_unknown"}),
                "Item with id 'msg_unknown' not found.",
            ),
            (
                json!({"type": "item_reference", "id": 7}),
                "input[1].id must be a string.",
            ),
        ] {
            let (status, body) = post(
                &cli,
                &json!({"model": "codex-local", "input": [{"role": "user", "content": "hi"}, reference]}),
            )
            .await;
            assert_eq!(status, 400, "{body}");
            let error: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["message"], message);
            assert_eq!(error["error"]["param"], "input[1].id");
        }
    }
}

#[tokio::test]
async fn store_false_and_a_store_of_none_keep_nothing() {
    for (extra, body) in [
        (
            vec![],
            json!({"model": "codex-local", "input": "hi", "store": false}),
        ),
        (
            vec![("RESPONSES_STORED", "0")],
            json!({"model": "codex-local", "input": "hi"}),
        ),
    ] {
        let cli = client_on("exec", &extra);
        let (status, text) = post(&cli, &body).await;
        assert_eq!(status, 200, "{text}");
        let response: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(response["store"], false);
        let id = response["id"].as_str().unwrap();
        let got = cli.get(format!("/v1/responses/{id}")).send().await;
        assert_eq!(got.0.status().as_u16(), 404);
        let (status, text) = post(
            &cli,
            &json!({"model": "codex-local", "input": "again", "previous_response_id": id}),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("not found"), "{text}");
    }
}

#[tokio::test]
async fn a_chain_of_continuations_cannot_grow_past_the_body_limit() {
    let cli = client_on("exec", &[("MAX_BODY_BYTES", "4000")]);
    let mut previous: Option<String> = None;
    let mut refused = None;
    for round in 0..10 {
        let mut body = json!({"model": "codex-local", "input": "x".repeat(1000)});
        if let Some(id) = &previous {
            body["previous_response_id"] = json!(id);
        }
        let (status, text) = post(&cli, &body).await;
        if status != 200 {
            refused = Some((round, status, text));
            break;
        }
        let response: Value = serde_json::from_str(&text).unwrap();
        previous = Some(response["id"].as_str().unwrap().to_owned());
    }
    let (round, status, text) = refused.expect("the chain is refused at some point");
    assert!(round >= 2, "a few rounds fit: refused at {round}");
    assert_eq!(status, 400);
    assert!(text.contains("MAX_BODY_BYTES"), "{text}");
}

#[tokio::test]
async fn images_over_max_images_are_refused_before_any_is_decoded() {
    let cli = client_on("exec", &[("MAX_IMAGES", "1")]);
    let bogus = json!({"type": "input_image", "image_url": "data:image/png;base64,not-base64"});
    let (status, text) = post(
        &cli,
        &json!({"model": "codex-local", "input": [{"role": "user", "content": [bogus, bogus]}]}),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("MAX_IMAGES"),
        "the count, not a decoding error: {text}"
    );
}
