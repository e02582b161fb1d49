//! fake-codex's app-server on its own, driven over stdio the way a client drives codex: the
//! client's tools (`dynamicTools`, `item/tool/call`), raw events, an injected conversation
//! (`thread/inject_items`) and turns that continue it (`input: []`), held to what the real
//! codex 0.171.0 did in `../shared/codex-transcripts/app_server_*.wire.jsonl` and in the probes
//! codex-cli.md 5.1a describes: the same errors word for word, the same order of notifications,
//! and, message kind by message kind, the same keys, nesting and JSON types.

use std::{
    collections::{BTreeSet, HashMap},
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{json, Value};

use crate::support::fake_codex;

/// How long any one message may take to come.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dir {
    ToServer,
    ToClient,
}

/// One `fake-codex app-server` process and everything said on its stdio, in order.
struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    log: Vec<(Dir, Value)>,
    next_id: u64,
    _home: tempfile::TempDir,
}

impl Session {
    fn start() -> Session {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(fake_codex())
            .arg("app-server")
            .env("CODEX_HOME", home.path())
            .current_dir(home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-codex starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("a line that is not JSON ({err}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            stdin,
            lines,
            log: Vec::new(),
            next_id: 1,
            _home: home,
        }
    }

    /// A session after `initialize` (with `capabilities.experimentalApi` as given) and
    /// `initialized`.
    fn initialized(experimental: bool) -> Session {
        let mut session = Session::start();
        let result = session.ok(
            "initialize",
            json!({"clientInfo": {"name": "probe", "title": null, "version": "0.0.1"},
                   "capabilities": {"experimentalApi": experimental}}),
        );
        assert!(result["userAgent"].is_string(), "{result}");
        session.send(json!({"method": "initialized"}));
        session
    }

    fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
        self.log.push((Dir::ToServer, message));
    }

    fn tail(&self) -> String {
        let start = self.log.len().saturating_sub(12);
        self.log[start..]
            .iter()
            .map(|(dir, m)| format!("  {dir:?} {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The next message from the server.
    fn next(&mut self) -> Value {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(message) => {
                self.log.push((Dir::ToClient, message.clone()));
                message
            }
            Err(_) => panic!(
                "nothing from fake-codex in {PATIENCE:?}; lately:\n{}",
                self.tail()
            ),
        }
    }

    /// Server messages up to the first that `wanted` accepts, which is returned.
    fn until(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let message = self.next();
            if wanted(&message) {
                return message;
            }
        }
    }

    fn until_method(&mut self, method: &str) -> Value {
        self.until(|m| m["method"] == method)
    }

    /// Whatever the server says within `wait`.
    fn quiet_for(&mut self, wait: Duration) -> Vec<Value> {
        let mut said = Vec::new();
        while let Ok(message) = self.lines.recv_timeout(wait) {
            self.log.push((Dir::ToClient, message.clone()));
            said.push(message);
        }
        said
    }

    /// A request and its response (`result` or `error`).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"method": method, "id": id, "params": params}));
        self.until(|m| m.get("method").is_none() && m["id"] == id)
    }

    fn ok(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(
            response.get("result").is_some(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    fn error(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(
            response.get("error").is_some(),
            "{method} did not fail: {response}"
        );
        response["error"].clone()
    }

    /// A new ephemeral thread with `extra` on the params the proxy sends.
    fn thread(&mut self, extra: Value) -> String {
        let mut params = json!({"cwd": "/tmp", "approvalPolicy": "never", "sandbox": "read-only", "ephemeral": true});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let result = self.ok("thread/start", params);
        result["thread"]["id"].as_str().unwrap().to_owned()
    }

    /// Starts a turn of `text` (none: `input: []`) and returns its id.
    fn turn(&mut self, thread: &str, text: Option<&str>) -> String {
        let input = match text {
            Some(text) => json!([{"type": "text", "text": text, "text_elements": []}]),
            None => json!([]),
        };
        let result = self.ok("turn/start", json!({"threadId": thread, "input": input}));
        result["turn"]["id"].as_str().unwrap().to_owned()
    }

    /// Answers a server request.
    fn reply(&mut self, request: &Value, result: Value) {
        self.send(json!({"id": request["id"], "result": result}));
    }

    /// The server messages of the log from `from` on.
    fn said_since(&self, from: usize) -> Vec<Value> {
        self.log[from..]
            .iter()
            .filter(|(dir, _)| *dir == Dir::ToClient)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Get the current weather for a city.",
           "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}})
}

fn text_result(text: &str) -> Value {
    json!({"contentItems": [{"type": "inputText", "text": text}], "success": true})
}

/// The final answer of a finished turn.
fn answer_of(completed: &Value) -> &str {
    completed["params"]["turn"]["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
}

/// `[[items]]`'s report of a turn that ended with `completed`.
fn report_of(completed: &Value) -> Value {
    serde_json::from_str(answer_of(completed))
        .unwrap_or_else(|err| panic!("[[items]] answered no JSON ({err}): {completed}"))
}

fn item_type(message: &Value) -> &str {
    message["params"]["item"]["type"].as_str().unwrap_or("")
}

#[test]
fn the_experimental_fields_need_the_experimental_api() {
    let mut plain = Session::initialized(false);
    for tools in [json!([weather_tool()]), json!([])] {
        assert_eq!(
            plain.error("thread/start", json!({"cwd": "/tmp", "approvalPolicy": "never", "sandbox": "read-only", "dynamicTools": tools})),
            json!({"code": -32600, "message": "thread/start.dynamicTools requires experimentalApi capability"})
        );
    }
    assert_eq!(
        plain.error("thread/start", json!({"cwd": "/tmp", "approvalPolicy": "never", "sandbox": "read-only", "experimentalRawEvents": true})),
        json!({"code": -32600, "message": "thread/start.experimentalRawEvents requires experimentalApi capability"})
    );
    // What the stable API has is fine without it (as on the real 0.171.0).
    plain.thread(json!({"dynamicTools": null, "experimentalRawEvents": false,
                        "developerInstructions": "Be brief.", "baseInstructions": "You are a test."}));

    let mut experimental = Session::initialized(true);
    experimental.thread(json!({"dynamicTools": [weather_tool()], "experimentalRawEvents": true}));
}

#[test]
fn injected_items_are_the_history_the_model_gets() {
    let mut s = Session::initialized(true);
    let thread =
        s.thread(json!({"dynamicTools": [weather_tool()], "developerInstructions": "Be brief."}));
    let items = json!([
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "SYS: you are a pirate."}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "H1 user: "}, {"type": "input_text", "text": "my name is Ann."},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "H2 assistant: hi Ann."}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Mind the parrot."}]},
        {"type": "function_call", "name": "lookup", "arguments": "{\"q\": \"ann\"}", "call_id": "call_hist1"},
        {"type": "reasoning_of_the_future", "whatever": 1},
        {"type": "function_call_output", "call_id": "call_hist1", "output": "H3 tool: Ann is 30."},
    ]);
    assert_eq!(
        s.ok(
            "thread/inject_items",
            json!({"threadId": thread, "items": items})
        ),
        json!({})
    );
    let completed_turn = {
        let from = s.log.len();
        s.send(
            json!({"method": "turn/start", "id": 99, "params": {"threadId": thread, "input": [
            {"type": "text", "text": "Final question [[items]]", "text_elements": []},
            {"type": "localImage", "path": "/nonexistent/cat.png"}]}}),
        );
        let completed = s.until_method("turn/completed");
        assert!(s.said_since(from).iter().any(|m| m["id"] == 99));
        completed
    };
    assert_eq!(
        report_of(&completed_turn),
        json!({
            "developer": "Be brief.",
            "tools": ["get_weather"],
            "items": [
                {"type": "message", "role": "user", "text": "H1 user: my name is Ann.", "images": 1},
                {"type": "message", "role": "assistant", "text": "H2 assistant: hi Ann."},
                {"type": "message", "role": "developer", "text": "Mind the parrot."},
                {"type": "function_call", "call_id": "call_hist1", "name": "lookup", "arguments": "{\"q\": \"ann\"}"},
                {"type": "function_call_output", "call_id": "call_hist1", "output": "H3 tool: Ann is 30."},
            ],
            "input": [{"type": "text", "text": "Final question [[items]]"}, {"type": "localImage"}],
        }),
        "system messages and unknown kinds are dropped, the rest kept in order"
    );
    // Later turns keep the history, their own turns included.
    s.turn(&thread, Some("[[items]]"));
    let later = report_of(&s.until_method("turn/completed"));
    let kinds: Vec<(&str, &str)> = later["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap(),
                i["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 7, "{later}");
    assert_eq!(
        &kinds[5..],
        &[("message", "user"), ("message", "assistant")]
    );
    assert_eq!(later["items"][5]["text"], "Final question [[items]]");
}

#[test]
fn injections_are_refused_in_codexs_words() {
    let mut s = Session::initialized(false);
    let thread = s.thread(json!({}));
    let refused = |s: &mut Session, items: Value| {
        s.error(
            "thread/inject_items",
            json!({"threadId": thread, "items": items}),
        )
    };
    let user = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "kept?"}]});
    assert_eq!(
        refused(
            &mut s,
            json!([user, {"type": "message", "role": "user", "content": "plain string"}])
        ),
        json!({"code": -32600, "message": "items[1] is not a valid response item: invalid type: string \"plain string\", expected a sequence"})
    );
    let cases = [
        (json!([]), "items must not be empty"),
        (json!([{"type": "message", "role": "user", "content": [{"type": "foo"}]}]),
         "items[0] is not a valid response item: unknown variant `foo`, expected one of `input_text`, `input_image`, `input_audio`, `output_text`"),
        (json!([{"type": "function_call", "name": "f", "arguments": {"a": 1}, "call_id": "c"}]),
         "items[0] is not a valid response item: invalid type: map, expected a string"),
        (json!([{"type": "function_call_output", "call_id": "c"}]),
         "items[0] is not a valid response item: missing field `output`"),
        (json!([{"role": "user", "content": []}]), "items[0] is not a valid response item: missing field `item`"),
        (json!(["str"]), "items[0] is not a valid response item: invalid type: string \"str\", expected struct WrappedItem"),
        (json!([{"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/cat.png"}]}]),
         "remote image URLs are not supported; use an inline data URL instead"),
    ];
    for (items, message) in cases {
        assert_eq!(
            refused(&mut s, items.clone()),
            json!({"code": -32600, "message": message}),
            "{items}"
        );
    }
    // A refused call injects nothing.
    s.turn(&thread, Some("[[items]]"));
    assert_eq!(
        report_of(&s.until_method("turn/completed"))["items"],
        json!([])
    );
    let unknown = "01a230a8-2f82-7f91-8e87-6b0ac0a9fb27";
    assert_eq!(
        s.error(
            "thread/inject_items",
            json!({"threadId": unknown, "items": [user]})
        ),
        json!({"code": -32600, "message": format!("thread not found: {unknown}")})
    );
    assert_eq!(
        s.error(
            "thread/inject_items",
            json!({"threadId": "nope", "items": [user]})
        ),
        json!({"code": -32600, "message": "invalid thread id: invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `n` at 1"})
    );
}

#[test]
fn a_turn_without_input_continues_the_history() {
    let mut s = Session::initialized(false);
    let thread = s.thread(json!({}));
    s.ok(
        "thread/inject_items",
        json!({"threadId": thread, "items": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "my name is Ann [[echo]]"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi Ann"}]},
        ]}),
    );
    let from = s.log.len();
    s.turn(&thread, None);
    let completed = s.until_method("turn/completed");
    assert_eq!(
        answer_of(&completed),
        "ECHO: my name is Ann [[echo]]",
        "the newest user message is the prompt"
    );
    assert!(
        !s.said_since(from)
            .iter()
            .any(|m| item_type(m) == "userMessage"),
        "no input, no userMessage item (as in app_server_inject_tool_result)"
    );
}

#[test]
fn a_tool_flow_round_trip() {
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()]}));
    let turn = s.turn(&thread, Some("What's the weather in Paris? [[tool_flow]]"));
    let from = s.log.len();
    let call = s.until_method("item/tool/call");
    assert_eq!(call["id"], 0, "request ids count from 0: {call}");
    let call_id = call["params"]["callId"].as_str().unwrap().to_owned();
    assert!(
        call_id.len() == 17
            && call_id.starts_with("call_")
            && call_id[5..].chars().all(|c| c.is_ascii_hexdigit()),
        "{call_id}"
    );
    assert_eq!(
        call["params"],
        json!({"threadId": thread, "turnId": turn, "callId": call_id, "namespace": null,
               "tool": "get_weather", "arguments": {"city": "Paris"}})
    );
    let started = s.said_since(from);
    let item = started
        .iter()
        .find(|m| m["method"] == "item/started" && item_type(m) == "dynamicToolCall")
        .expect("the dynamicToolCall item starts before the request");
    assert_eq!(item["params"]["item"]["id"], call_id.as_str());
    assert_eq!(item["params"]["item"]["status"], "inProgress");

    s.reply(&call, text_result("Sunny, 21C in Paris"));
    let completed = s.until_method("turn/completed");
    assert_eq!(completed["params"]["turn"]["status"], "completed");
    assert_eq!(answer_of(&completed), "The tool says: Sunny, 21C in Paris");
    let said = s.said_since(from);
    let done = said
        .iter()
        .find(|m| m["method"] == "item/completed" && item_type(m) == "dynamicToolCall")
        .unwrap();
    assert_eq!(done["params"]["item"]["status"], "completed");
    assert_eq!(done["params"]["item"]["success"], true);
    assert_eq!(
        done["params"]["item"]["contentItems"],
        json!([{"type": "inputText", "text": "Sunny, 21C in Paris"}])
    );
    let deltas: Vec<&str> = said
        .iter()
        .filter(|m| m["method"] == "item/agentMessage/delta")
        .map(|m| m["params"]["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.len() > 1, "the answer streams: {deltas:?}");
    assert_eq!(deltas.concat(), "The tool says: Sunny, 21C in Paris");
    // One usage per model response: the call, then the answer; `total` adds up.
    let usages: Vec<&Value> = said
        .iter()
        .filter(|m| m["method"] == "thread/tokenUsage/updated")
        .map(|m| &m["params"]["tokenUsage"])
        .collect();
    assert_eq!(usages.len(), 2);
    let tokens = |v: &Value| v["totalTokens"].as_u64().unwrap();
    assert_eq!(
        tokens(&usages[1]["total"]),
        tokens(&usages[0]["last"]) + tokens(&usages[1]["last"])
    );
}

#[test]
fn the_parallel_variant_has_n_requests_outstanding() {
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()]}));
    s.turn(&thread, Some("[[tool_flow:3]]"));
    let calls: Vec<Value> = (0..3).map(|_| s.until_method("item/tool/call")).collect();
    assert_eq!(
        calls.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        [json!(0), json!(1), json!(2)]
    );
    assert_eq!(
        calls
            .iter()
            .map(|c| c["params"]["arguments"]["city"].clone())
            .collect::<Vec<_>>(),
        [json!("Paris"), json!("Rome"), json!("Berlin")]
    );
    assert!(
        s.quiet_for(Duration::from_millis(200)).is_empty(),
        "all three wait on the client"
    );
    // Answered out of order: a JSON-RPC error, a failure, a success.
    s.send(json!({"id": 2, "error": {"code": -32000, "message": "client failed"}}));
    s.reply(
        &calls[1],
        json!({"contentItems": [{"type": "inputText", "text": "no data for Rome"}], "success": false}),
    );
    s.reply(&calls[0], text_result("sunny in Paris"));
    let from = s.log.len();
    let completed = s.until_method("turn/completed");
    assert_eq!(
        answer_of(&completed),
        "The tool says: sunny in Paris; no data for Rome; dynamic tool request failed",
        "the results in the order of the calls"
    );
    let items: HashMap<String, Value> = s
        .said_since(from)
        .into_iter()
        .filter(|m| m["method"] == "item/completed" && item_type(m) == "dynamicToolCall")
        .map(|m| {
            let item = m["params"]["item"].clone();
            (item["arguments"]["city"].as_str().unwrap().to_owned(), item)
        })
        .collect();
    assert_eq!(items["Paris"]["status"], "completed");
    assert_eq!(items["Rome"]["status"], "failed");
    assert_eq!(items["Rome"]["success"], false);
    assert_eq!(
        items["Berlin"]["contentItems"],
        json!([{"type": "inputText", "text": "dynamic tool request failed"}])
    );
    assert_eq!(items["Berlin"]["status"], "failed");
    // Request ids count on over the connection.
    s.turn(&thread, Some("again [[tool_flow]]"));
    assert_eq!(s.until_method("item/tool/call")["id"], 3);
}

/// What a server message is, for the order of a turn's notifications.
fn label(message: &Value) -> Option<String> {
    let method = message["method"].as_str()?;
    let item = &message["params"]["item"];
    Some(match method {
        "item/agentMessage/delta" | "account/rateLimits/updated" => return None,
        "rawResponseItem/completed" => match item["role"].as_str() {
            Some(role) => format!("raw {} {role}", item["type"].as_str().unwrap()),
            None => format!("raw {}", item["type"].as_str().unwrap()),
        },
        "rawResponse/completed" => "raw end".into(),
        "item/started" | "item/completed" => format!("{method} {}", item_type(message)),
        other => other.to_owned(),
    })
}

#[test]
fn raw_events_end_each_model_response_before_its_calls() {
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()], "experimentalRawEvents": true}));
    s.turn(&thread, Some("[[tool_flow:2]]"));
    let from = s.log.len();
    let calls = [
        s.until_method("item/tool/call"),
        s.until_method("item/tool/call"),
    ];
    s.reply(&calls[1], text_result("sunny in Rome"));
    s.reply(&calls[0], text_result("sunny in Paris"));
    s.until_method("turn/completed");
    let said = s.said_since(from);
    let labels: Vec<String> = said.iter().filter_map(label).collect();
    assert_eq!(
        labels,
        [
            "thread/status/changed",
            "turn/started",
            "raw message user",
            "item/started userMessage",
            "item/completed userMessage",
            "raw function_call",
            "raw function_call",
            "raw end",
            "item/started dynamicToolCall",
            "item/tool/call",
            "item/started dynamicToolCall",
            "item/tool/call",
            "item/completed dynamicToolCall",
            "item/completed dynamicToolCall",
            "raw function_call_output",
            "raw function_call_output",
            "thread/tokenUsage/updated",
            "item/started agentMessage",
            "item/completed agentMessage",
            "raw message assistant",
            "raw end",
            "thread/tokenUsage/updated",
            "thread/status/changed",
            "turn/completed",
        ],
        "as in app_server_raw_events_parallel.wire.jsonl"
    );
    // The calls of a response are its function_call items, each matched by a request.
    let raw_calls: Vec<&Value> = said
        .iter()
        .filter(|m| m["method"] == "rawResponseItem/completed" && item_type(m) == "function_call")
        .map(|m| &m["params"]["item"])
        .collect();
    let requested: Vec<&Value> = calls.iter().map(|c| &c["params"]["callId"]).collect();
    assert_eq!(
        raw_calls.iter().map(|i| &i["call_id"]).collect::<Vec<_>>(),
        requested
    );
    assert_eq!(raw_calls[0]["arguments"], "{\"city\":\"Paris\"}");
    assert!(raw_calls[0]["arguments"].is_string());
    let outputs: Vec<(&Value, &Value)> = said
        .iter()
        .filter(|m| {
            m["method"] == "rawResponseItem/completed" && item_type(m) == "function_call_output"
        })
        .map(|m| {
            (
                &m["params"]["item"]["call_id"],
                &m["params"]["item"]["output"],
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [
            (requested[0], &json!("sunny in Paris")),
            (requested[1], &json!("sunny in Rome"))
        ]
    );

    // Injected items have raw events too, on no turn of the thread's.
    s.ok(
        "thread/inject_items",
        json!({"threadId": thread, "items": [
            {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]},
            {"type": "unknown_kind"},
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
        ]}),
    );
    let raw: Vec<Value> = (0..3)
        .map(|_| s.until_method("rawResponseItem/completed"))
        .collect();
    assert!(raw
        .iter()
        .all(|m| m["params"]["turnId"] == "auto-compact-0"));
    assert_eq!(
        raw.iter().map(item_type).collect::<Vec<_>>(),
        ["message", "other", "function_call_output"]
    );
}

#[test]
fn early_requests_come_before_the_end_of_their_response() {
    // As the real codex plays a slow stream: a call starts as soon as the model wrote it.
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()], "experimentalRawEvents": true}));
    s.turn(&thread, Some("[[tool_flow:2:early]]"));
    let from = s.log.len();
    let calls = [
        s.until_method("item/tool/call"),
        s.until_method("item/tool/call"),
    ];
    s.until_method("rawResponse/completed");
    let labels: Vec<String> = s.said_since(from).iter().filter_map(label).collect();
    let first_call = labels
        .iter()
        .position(|l| l == "raw function_call")
        .unwrap();
    assert_eq!(
        &labels[first_call..],
        [
            "raw function_call",
            "item/started dynamicToolCall",
            "item/tool/call",
            "raw function_call",
            "item/started dynamicToolCall",
            "item/tool/call",
            "raw end",
        ]
    );
    s.reply(&calls[0], text_result("a"));
    s.reply(&calls[1], text_result("b"));
    assert_eq!(
        answer_of(&s.until_method("turn/completed")),
        "The tool says: a; b"
    );
}

#[test]
fn an_interrupt_while_calls_are_pending_ends_the_turn_interrupted() {
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()], "experimentalRawEvents": true}));
    let turn = s.turn(&thread, Some("[[tool_flow:2]]"));
    let calls = [
        s.until_method("item/tool/call"),
        s.until_method("item/tool/call"),
    ];
    let from = s.log.len();
    assert_eq!(
        s.ok(
            "turn/interrupt",
            json!({"threadId": thread, "turnId": turn})
        ),
        json!({})
    );
    let completed = s.until_method("turn/completed");
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    assert_eq!(completed["params"]["turn"]["items"], json!([]));
    let said = s.said_since(from);
    // In the order of the real 0.171.0's (codex-cli.md 5.1a): the calls fail, the model's
    // history gets their cancellation and codex's note, then the interrupt is answered.
    let labels: Vec<String> = said
        .iter()
        .filter_map(|m| match m.get("method") {
            Some(_) => label(m),
            None => Some("result of turn/interrupt".into()),
        })
        .collect();
    assert_eq!(
        labels,
        [
            "item/completed dynamicToolCall",
            "item/completed dynamicToolCall",
            "raw function_call_output",
            "raw function_call_output",
            "thread/tokenUsage/updated",
            "raw message user",
            "result of turn/interrupt",
            "thread/status/changed",
            "turn/completed",
        ]
    );
    let abandoned: Vec<&Value> = said
        .iter()
        .filter(|m| m["method"] == "item/completed" && item_type(m) == "dynamicToolCall")
        .collect();
    for item in &abandoned {
        let item = &item["params"]["item"];
        assert_eq!(
            (&item["status"], &item["success"], &item["contentItems"]),
            (&json!("failed"), &json!(false), &json!([]))
        );
    }
    // A late answer is dropped: nothing more is said.
    s.reply(&calls[0], text_result("late"));
    assert_eq!(s.quiet_for(Duration::from_millis(300)), Vec::<Value>::new());
    // The model of the next turn learns the calls were cancelled.
    s.turn(&thread, Some("[[items]]"));
    let report = report_of(&s.until_method("turn/completed"));
    let cancelled: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| &i["output"])
        .collect();
    assert_eq!(
        cancelled,
        [&json!("dynamic tool call was cancelled before receiving a response"); 2]
    );
    assert!(report["items"].as_array().unwrap().last().unwrap()["text"]
        .as_str()
        .unwrap()
        .starts_with("<turn_aborted>"));
}

// --- The shape of it all, against the real transcripts --------------------------------------

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// How `actual` differs in shape from `reference`: keys, nesting and JSON types; a `type` tag
/// must also have the same value (after tests/it/app_server_wire.rs).
fn shape_diff(path: &str, reference: &Value, actual: &Value, out: &mut Vec<String>) {
    match (reference, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, want_value) in want {
                let at = join(path, key);
                match have.get(key) {
                    Some(have_value) if key == "type" && want_value.is_string() => {
                        if have_value != want_value {
                            out.push(format!(
                                "{at}: {have_value} where the transcript has {want_value}"
                            ));
                        }
                    }
                    Some(have_value) => shape_diff(&at, want_value, have_value, out),
                    None => out.push(format!("{at}: missing (the transcript has it)")),
                }
            }
            for key in have.keys().filter(|key| !want.contains_key(*key)) {
                out.push(format!("{}: not in the transcript", join(path, key)));
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            let at = format!("{path}[]");
            for element in have {
                if want.is_empty() {
                    out.push(format!(
                        "{at}: an element where the transcript's array is always empty"
                    ));
                    continue;
                }
                let best = want
                    .iter()
                    .map(|w| {
                        let mut diff = Vec::new();
                        shape_diff(&at, w, element, &mut diff);
                        diff
                    })
                    .min_by_key(Vec::len)
                    .unwrap_or_default();
                out.extend(best);
            }
        }
        _ if json_type(reference) != json_type(actual) => out.push(format!(
            "{}: {} where the transcript has {}",
            if path.is_empty() { "(message)" } else { path },
            json_type(actual),
            json_type(reference)
        )),
        _ => {}
    }
}

/// Each server message with its kind: the method (an item notification with its item's type,
/// a raw item with its type), or `result of <method>` for a response.
fn kinds(log: &[(Dir, Value)]) -> Vec<(String, Value)> {
    let asked: HashMap<String, String> = log
        .iter()
        .filter(|(dir, _)| *dir == Dir::ToServer)
        .filter_map(|(_, m)| Some((m.get("id")?.to_string(), m["method"].as_str()?.to_owned())))
        .collect();
    log.iter()
        .filter(|(dir, _)| *dir == Dir::ToClient)
        .map(|(_, m)| {
            let kind = match m["method"].as_str() {
                Some(method) => match m["params"]["item"]["type"].as_str() {
                    Some(item) => format!("{method} ({item})"),
                    None => method.to_owned(),
                },
                None => format!(
                    "{} of {}",
                    if m.get("error").is_some() {
                        "error"
                    } else {
                        "result"
                    },
                    asked
                        .get(&m["id"].to_string())
                        .map_or("an unknown request", String::as_str)
                ),
            };
            (kind, m.clone())
        })
        .collect()
}

/// Transcript kinds fake-codex does not play.
const NOT_PLAYED: &[(&str, &str)] = &[
    (
        "configWarning",
        "a warning about the capture machine (no bubblewrap on PATH)",
    ),
    (
        "remoteControl/status/changed",
        "codex's remote-control state",
    ),
];

/// Raw items of codex's own prompt at a turn's start (its developer messages and the
/// `<environment_context>` user message): fake-codex leaves them out (`Player::play`).
fn codexs_own_raw(message: &Value) -> bool {
    let item = &message["params"]["item"];
    message["method"] == "rawResponseItem/completed"
        && (item["role"] == "developer"
            || item["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("<environment_context>")))
}

fn transcript(name: &str) -> Vec<(Dir, Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/codex-transcripts")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("the real transcript {}: {err}", path.display()));
    text.lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            let dir = match entry["dir"].as_str().unwrap() {
                "c2s" => Dir::ToServer,
                "s2c" => Dir::ToClient,
                other => panic!("{name}: unknown dir {other}"),
            };
            (dir, entry["msg"].clone())
        })
        .collect()
}

/// The kinds in order, each run of one kind (deltas) as one.
fn order(kinds: &[(String, Value)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (kind, message) in kinds {
        let skipped = NOT_PLAYED.iter().any(|(k, _)| k == kind) || codexs_own_raw(message);
        if !skipped && out.last() != Some(kind) {
            out.push(kind.clone());
        }
    }
    out
}

/// fake-codex's session against the real one: every server message shaped as the closest real
/// one of its kind, every kind of the real session played, and in the same order.
fn same_shape_as(name: &str, log: &[(Dir, Value)]) {
    let real = kinds(&transcript(name));
    let fake = kinds(log);
    let mut failures = BTreeSet::new();
    for (kind, message) in &fake {
        let candidates: Vec<&Value> = real
            .iter()
            .filter(|(k, m)| k == kind && !codexs_own_raw(m))
            .map(|(_, m)| m)
            .collect();
        if candidates.is_empty() {
            failures.insert(format!(
                "{kind}: the transcript has no such message\n    {message}"
            ));
            continue;
        }
        let best = candidates
            .iter()
            .map(|reference| {
                let mut diff = Vec::new();
                shape_diff("", reference, message, &mut diff);
                diff
            })
            .min_by_key(Vec::len)
            .unwrap_or_default();
        if !best.is_empty() {
            failures.insert(format!(
                "{kind}:\n    {}\n    in {message}",
                best.join("\n    ")
            ));
        }
    }
    let (real_order, fake_order) = (order(&real), order(&fake));
    if real_order != fake_order {
        failures.insert(format!(
            "the order differs:\n  real: {real_order:?}\n  fake: {fake_order:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "fake-codex's app-server differs from the real codex 0.171.0 session {name}:\n{}",
        failures.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_dynamic_tool_flow_has_the_shape_of_the_real_one() {
    // As app_server_dynamic_tool.wire.jsonl: one call, answered.
    let mut s = Session::initialized(true);
    let thread = s.thread(json!({"dynamicTools": [weather_tool()]}));
    s.turn(&thread, Some("What's the weather in Paris? [[tool_flow]]"));
    let call = s.until_method("item/tool/call");
    s.reply(&call, text_result("Sunny, 21C in Paris"));
    s.until_method("turn/completed");
    s.quiet_for(Duration::from_millis(100));
    same_shape_as("app_server_dynamic_tool.wire.jsonl", &s.log);

    // As app_server_raw_events_parallel.wire.jsonl: two calls in one response, raw events.
    let mut s = Session::initialized(true);
    let tool = json!({"type": "function", "name": "get_weather", "description": "w",
                      "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let thread = s.thread(json!({"experimentalRawEvents": true, "dynamicTools": [tool]}));
    s.turn(&thread, Some("[[tool_flow:2]]"));
    let calls = [
        s.until_method("item/tool/call"),
        s.until_method("item/tool/call"),
    ];
    s.reply(&calls[0], text_result("sunny in Paris"));
    s.reply(&calls[1], text_result("sunny in Rome"));
    s.until_method("turn/completed");
    s.quiet_for(Duration::from_millis(100));
    same_shape_as("app_server_raw_events_parallel.wire.jsonl", &s.log);
}

#[test]
fn injected_history_turns_have_the_shape_of_the_real_ones() {
    // As app_server_inject_tool_result.wire.jsonl: user + call + result, then `input: []`.
    let mut s = Session::initialized(true);
    let tool = json!({"type": "function", "name": "get_weather", "description": "w",
                      "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let thread = s.thread(json!({"dynamicTools": [tool]}));
    s.ok(
        "thread/inject_items",
        json!({"threadId": thread, "items": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather in Paris? [[tool_flow]]"}]},
            {"type": "function_call", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "call_id": "call_client_1"},
            {"type": "function_call_output", "call_id": "call_client_1", "output": "CLIENT-RESULT 19C"},
        ]}),
    );
    s.turn(&thread, None);
    let completed = s.until_method("turn/completed");
    assert_eq!(answer_of(&completed), "The tool says: CLIENT-RESULT 19C");
    s.quiet_for(Duration::from_millis(100));
    same_shape_as("app_server_inject_tool_result.wire.jsonl", &s.log);
}
