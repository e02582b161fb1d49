//! Tool calling end to end on fake-codex, streamed and not: every answer shape becomes OpenAI
//! tool calls, with one finish_reason, indexed streamed calls, and no call JSON in the content.

use serde_json::{json, Value};

use crate::support::{client, client_on, json_of, post_chat, redact, snapshot, sse_of, BACKENDS};

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

fn request(prompt: &str, stream: bool) -> Value {
    json!({
        "model": "codex-local",
        "messages": [{"role": "user", "content": prompt}],
        "tools": [weather_tool()],
        "stream": stream,
    })
}

const SHAPES: &[(&str, &[&str], Option<&str>)] = &[
    (
        "tool_call",
        &["{\"city\":\"Paris\"}"],
        Some("I'll check the weather."),
    ),
    ("tool_call_fenced", &["{\"city\":\"Paris\"}"], None),
    (
        "tool_calls_two",
        &["{\"city\":\"Paris\"}", "{\"city\":\"Rome\"}"],
        None,
    ),
    (
        "tool_calls_array",
        &["{\"city\":\"Paris\"}", "{\"city\":\"Rome\"}"],
        None,
    ),
    ("tool_call_string_args", &["{\"city\":\"Paris\"}"], None),
];

/// The prompt-based tools on both backends (app-server with `APP_SERVER_INPUT=prompt`), against
/// the same snapshots: the calls are read from whole messages, so app-server's token pieces
/// change nothing here. app-server's native tools are in native_tools.rs.
#[tokio::test]
async fn every_call_shape_streamed_and_not() {
    for backend in BACKENDS {
        every_call_shape_on(backend).await;
    }
}

async fn every_call_shape_on(backend: &str) {
    let cli = client_on(backend, &[("APP_SERVER_INPUT", "prompt")]);
    for (shape, arguments, prose) in SHAPES {
        let prompt = format!("Weather? [[{shape}]]");
        let (status, body) = json_of(
            cli.post("/v1/chat/completions")
                .body_json(&request(&prompt, false))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200, "{shape}: {body}");
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{shape}");
        assert_eq!(
            choice["message"]["content"],
            prose.map_or(Value::Null, |p| json!(p)),
            "{shape}"
        );
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(
            calls
                .iter()
                .map(|c| c["function"]["arguments"].as_str().unwrap())
                .collect::<Vec<_>>(),
            *arguments,
            "{shape}"
        );
        for call in calls {
            assert_eq!(
                (call["type"].as_str(), call["function"]["name"].as_str()),
                (Some("function"), Some("get_weather"))
            );
            let id = call["id"].as_str().unwrap();
            assert!(
                id.starts_with("call_")
                    && id.len() == 29
                    && id[5..].chars().all(|c| c.is_ascii_alphanumeric()),
                "{id}"
            );
        }
        snapshot!(format!("tools_{shape}_json"), redact(body));

        let (status, _, events) = sse_of(
            cli.post("/v1/chat/completions")
                .body_json(&request(&prompt, true))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200);
        let mut finishes = Vec::new();
        let mut streamed_calls: Vec<(u64, String)> = Vec::new();
        let mut content = String::new();
        for event in events.iter().filter(|e| e.is_object()) {
            let choice = &event["choices"][0];
            content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(reason) = choice["finish_reason"].as_str() {
                finishes.push(reason.to_owned());
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert!(
                    call["id"].is_string()
                        && call["type"] == "function"
                        && call["function"]["name"] == "get_weather"
                );
                streamed_calls.push((
                    call["index"].as_u64().expect("index"),
                    call["function"]["arguments"].as_str().unwrap().to_owned(),
                ));
            }
        }
        assert_eq!(
            finishes,
            ["tool_calls"],
            "{shape}: exactly one finish_reason"
        );
        assert_eq!(
            streamed_calls.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..arguments.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(
            streamed_calls
                .iter()
                .map(|(_, a)| a.as_str())
                .collect::<Vec<_>>(),
            *arguments
        );
        assert!(
            !content.contains('{') && !content.contains("```"),
            "{shape}: call JSON leaked into content: {content:?}"
        );
        assert_eq!(content, prose.unwrap_or(""), "{shape}");
        snapshot!(format!("tools_{shape}_sse"), redact(Value::Array(events)));
    }
}

#[tokio::test]
async fn tool_choice_none_renders_no_tools_and_extracts_nothing() {
    let cli = client(&[]);
    let mut body = request("Weather? [[echo_json]]", false);
    body["tool_choice"] = json!("none");
    let (_, reply) = post_chat(&cli, &body).await;
    let prompt: String =
        serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        prompt, "Weather? [[echo_json]]",
        "no tools section, lone message sent verbatim"
    );

    // An answer that holds a call of an offered tool (the user's text, echoed back): with
    // `auto` it is a call, with `none` it stays content.
    let call = r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#;
    let mut body = request(&format!("{call} [[echo]]"), false);
    let (_, reply) = post_chat(&cli, &body).await;
    assert_eq!(
        reply["choices"][0]["finish_reason"], "tool_calls",
        "{reply}"
    );
    body["tool_choice"] = json!("none");
    let (status, reply) = post_chat(&cli, &body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert!(reply["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        format!("ECHO: {call} [[echo]]")
    );
}

#[tokio::test]
async fn required_and_named_choices_are_told_to_the_model() {
    let cli = client(&[]);
    for (choice, expected) in [
        (
            json!("required"),
            "You must call at least one of these tools in this reply.",
        ),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            "You must call this tool in this reply.",
        ),
        (
            json!("auto"),
            "Call a tool only when it helps answer the user",
        ),
    ] {
        let mut body = request("Weather? [[echo_json]]", false);
        body["tool_choice"] = choice.clone();
        body["parallel_tool_calls"] = json!(false);
        let (status, reply) = post_chat(&cli, &body).await;
        assert_eq!(status, 200, "{reply}");
        let prompt: String =
            serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap())
                .unwrap();
        assert!(prompt.contains(expected), "{choice}: {prompt}");
        assert!(
            prompt.contains("Call at most one tool in a reply."),
            "{choice}"
        );
        assert!(
            prompt
                .contains("<tool name=\"get_weather\">\ndescription: Current weather for a city."),
            "{prompt}"
        );
    }
}

#[tokio::test]
async fn parallel_false_returns_one_call() {
    let mut body = request("Weather? [[tool_calls_two]]", false);
    body["parallel_tool_calls"] = json!(false);
    let (_, reply) = post_chat(&client(&[]), &body).await;
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_call_result_round_trip_answers_with_the_result() {
    let cli = client(&[]);
    let (_, first) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&request("Weather in Paris? [[tool_flow]]", false))
            .send()
            .await,
    )
    .await;
    let call = first["choices"][0]["message"]["tool_calls"][0].clone();
    let follow_up = json!({
        "model": "codex-local",
        "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "Weather in Paris? [[tool_flow]]"},
            first["choices"][0]["message"].clone(),
            {"role": "tool", "tool_call_id": call["id"], "content": "18 C and sunny"}
        ]
    });
    let (status, second) = post_chat(&cli, &follow_up).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "The tool says: 18 C and sunny"
    );
}

#[tokio::test]
async fn bad_tool_definitions_are_400s() {
    let weather = json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}});
    for (tools, param) in [
        (
            json!([{"type": "function", "function": {"name": "has space", "parameters": {}}}]),
            "tools[0].function.name",
        ),
        // Both would be refused by codex's thread/start, or by the model, as a 502.
        (json!([weather, weather]), "tools[1].function.name"),
        (
            json!([{"type": "function", "function": {"name": "list", "parameters": {"type": "array"}}}]),
            "tools[0].function.parameters",
        ),
    ] {
        let mut body = request("hi", false);
        body["tools"] = tools;
        for backend in BACKENDS {
            let (status, reply) = post_chat(&client_on(backend, &[]), &body).await;
            assert_eq!(
                (status, reply["error"]["param"].as_str()),
                (400, Some(param)),
                "{backend}: {reply}"
            );
        }
    }
}
