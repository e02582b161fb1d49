//! The app-server wire against the real codex 0.169.0 and 0.171.0, without the real codex: the proxy's
//! app-server client drives fake-codex through a recorder (a shell script between the two that
//! tees each direction to a file), and both directions are held against the real session in
//! `../shared/codex-transcripts/` (`TRANSCRIPTS`: a plain turn, the client's tools as dynamic
//! tools with single and parallel calls and raw events, injected history and tool results),
//! message kind by message kind:
//!
//! - what the proxy sent: method names, and the params' keys at every level with their JSON
//!   types (values such as ids, paths and text may differ);
//! - what fake-codex sent: each result and notification's keys, nesting and JSON types;
//! - that the proxy's own protocol types read every server message of the transcript and of
//!   fake-codex, losing nothing they claim to read.
//!
//! A field renamed on either side (`threadId` -> `thread_id`) fails here, even though fake-codex
//! and the proxy would still agree with each other. Whatever the proxy or fake-codex writes that
//! the transcript lacks fails too, unless it is listed below with the reason it may differ.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    time::Duration,
};

use codex_openai_proxy::codex::app_server::{
    protocol::{
        Incoming, InitializeResponse, Item, ItemCompleted, RawItem, RawItemCompleted,
        ThreadStartResponse, ToolCallParams, TurnNotification, TurnStartResponse, TOOL_CALL,
    },
    ROUTED_METHODS,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

use crate::support::{chat, client_on, fake_codex, post_chat, sse_of};

/// The real sessions: a plain turn with reasoning (0.169.0), and the client's tools and an
/// injected conversation (0.171.0, `experimentalApi`; codex-cli.md 5.1a).
const TRANSCRIPTS: &[&str] = &[
    "app_server_single.wire.jsonl",
    "app_server_dynamic_tool.wire.jsonl",
    "app_server_dynamic_tools_parallel.wire.jsonl",
    "app_server_raw_events_parallel.wire.jsonl",
    "app_server_inject_history.wire.jsonl",
    "app_server_inject_tool_result.wire.jsonl",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::ToServer => "client->server",
            Dir::ToClient => "server->client",
        }
    }
}

/// Fields the transcript's messages have that the proxy may leave out.
struct Optional {
    dir: Dir,
    kind: &'static str,
    path: &'static str,
    why: &'static str,
}

const OPTIONAL: &[Optional] = &[Optional {
    dir: Dir::ToServer,
    kind: "thread/start",
    path: "params.model",
    why: "sent only when the request's model names a codex model (CODEX_MODEL, CODEX_MODELS); \
          `codex-local` without CODEX_MODEL runs codex's own default model, so the plain turn \
          here omits it and the reasoning turn sends it",
}];

/// Messages the proxy or fake-codex exchange that the transcript has no instance of, as
/// references of their own.
struct Extra {
    dir: Dir,
    kind: &'static str,
    message: Value,
    why: &'static str,
}

/// Paths whose value is the client's own JSON (a tool's JSON Schema): only its JSON type is
/// compared.
const OPAQUE: &[&str] = &["params.dynamicTools[].inputSchema"];

fn extras() -> Vec<Extra> {
    vec![
        Extra {
            dir: Dir::ToServer,
            kind: "thread/start",
            message: json!({"method": "thread/start", "id": 2, "params": {
                "cwd": "/tmp/w", "approvalPolicy": "never", "sandbox": "read-only", "ephemeral": true,
                "developerInstructions": "Be brief.",
            }}),
            why: "a request's system messages as the thread's developer instructions \
                  (ThreadStartParams' `developerInstructions`, codex-cli.md 5.1a); no transcript \
                  has a session with them. tests/real_codex checks the params against the \
                  installed codex's schema, and that the text reaches the model as a developer \
                  message",
        },
        Extra {
            dir: Dir::ToServer,
            kind: "turn/interrupt",
            message: json!({"method": "turn/interrupt", "id": 9, "params": {"threadId": "t", "turnId": "u"}}),
            why: "the proxy ends the codex turn once the model's response ends in the client's \
                  calls (and when a client leaves); the transcripts' sessions never interrupted. \
                  What the real codex 0.171.0 does then is in codex-cli.md 5.1a",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "result of turn/interrupt",
            message: json!({"id": 9, "result": {}}),
            why: "turn/interrupt's result, as the real codex 0.171.0 answered it with a call \
                  pending",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "rawResponseItem/completed (function_call)",
            // Captured offline from the real codex 0.171.0: inject_items with raw events on.
            message: json!({"method": "rawResponseItem/completed", "params": {"threadId": "01a23176-cbc6-7463-8768-da87bfcad2f5", "turnId": "auto-compact-0", "item": {"type": "function_call", "id": "fc_01a23176-cbf3-7ea3-80df-5369b10d1fd1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "call_id": "call_x1", "internal_chat_message_metadata_passthrough": {"turn_id": "auto-compact-0"}}}, "emittedAtMs": 1796126198771u64}),
            why: "codex echoes each injected item as a raw item on the turn id \
                  `auto-compact-0`, a call without the `status` the model's own calls have; the \
                  transcripts never injected with raw events on",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "rawResponseItem/completed (message)",
            message: json!({"method": "rawResponseItem/completed", "params": {"threadId": "01a23176-cbc6-7463-8768-da87bfcad2f5", "turnId": "auto-compact-0", "item": {"type": "message", "id": "msg_01a23176-cbf3-7ea3-80df-535d2fdf3bc7", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}], "internal_chat_message_metadata_passthrough": {"turn_id": "auto-compact-0", "create_time": 1796126198.771194, "content_item_kinds": ["unknown"]}}}, "emittedAtMs": 1796126198771u64}),
            why: "the same echo of an injected user message",
        },
        Extra {
            dir: Dir::ToServer,
            kind: "turn/start",
            message: json!({"method": "turn/start", "id": 2, "params": {
                "threadId": "t",
                "input": [{"type": "text", "text": "", "text_elements": []}],
                "effort": "high",
            }}),
            why: "a request's `reasoning_effort`: TurnStartParams' optional `effort` \
                  (codex-cli.md 5.1); the transcript's turns keep codex's default effort. \
                  tests/real_codex checks it against the installed codex's schema",
        },
        Extra {
            dir: Dir::ToServer,
            kind: "thread/unsubscribe",
            message: json!({"method": "thread/unsubscribe", "id": 3, "params": {"threadId": "t"}}),
            why: "the proxy unloads each finished thread (codex-cli.md 5.1); the transcript's \
                  session never did. tests/real_codex checks the params against the installed \
                  codex's schema",
        },
        Extra {
            dir: Dir::ToServer,
            kind: "account/read",
            message: json!({"method": "account/read", "id": 1, "params": {}}),
            why: "after each start the proxy asks which login codex runs with, for /health and \
                  the start-up line that says how to log in; the transcript's session never \
                  asked. tests/real_codex's doctor test reads it from the real codex",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "result of account/read",
            // What the real codex 0.171.0 answered offline, without a login.
            message: json!({"id": 1, "result": {"account": {"type": "apiKey"}, "userId": null, "requiresOpenaiAuth": true, "workspaceRouting": null}}),
            why: "account/read's result; the real codex answered `account: null` offline, and \
                  fake-codex plays an API-key login by default",
        },
        Extra {
            dir: Dir::ToServer,
            kind: "model/list",
            message: json!({"method": "model/list", "id": 1, "params": {}}),
            why: "the proxy lists codex's models in the background for /v1/models; the \
                  transcript's session never asked. tests/real_codex checks the params against \
                  the installed codex's schema",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "result of model/list",
            // One entry of what the real codex 0.171.0 answered offline, its long lists cut to
            // one element.
            message: serde_json::from_str(r#"{"id": 1, "result": {"data": [{"id": "gpt-6.2-sol", "model": "gpt-6.2-sol", "upgrade": null, "upgradeInfo": null, "availabilityNux": null, "displayName": "GPT-6.2-Sol", "description": "Fast, go-to model for coding and everyday work.", "modelSpecialty": null, "hidden": false, "supportedReasoningEfforts": [{"reasoningEffort": "low", "description": "Fast responses with lighter reasoning"}], "defaultReasoningEffort": "low", "inputModalities": ["text", "image"], "supportsPersonality": false, "multiAgentVersion": "v2", "additionalSpeedTiers": ["fast"], "serviceTiers": [{"id": "priority", "name": "Fast", "description": "2x speed, increased usage"}], "defaultServiceTier": null, "availableAccessPrograms": null, "isDefault": true}], "nextCursor": null}}"#).expect("the reference parses"),
            why: "model/list's result, as the real codex 0.171.0 answered it offline (its \
                  bundled catalogue)",
        },
        Extra {
            dir: Dir::ToClient,
            kind: "result of thread/unsubscribe",
            message: json!({"id": 3, "result": {"status": "unsubscribed"}}),
            why: "thread/unsubscribe's result, `{status}` (`unsubscribed` when the thread was \
                  loaded); the proxy sends the request detached and reads no result",
        },
    ]
}

/// Kinds of the transcript fake-codex does not play, and why that is fine.
const NOT_PLAYED: &[(&str, &str)] = &[
    (
        "configWarning",
        "a warning about the capture machine (no bubblewrap on PATH); the proxy skips it",
    ),
    (
        "remoteControl/status/changed",
        "codex's remote-control state; the proxy skips it",
    ),
];

/// Item types the proxy reads from `item/completed`; any other type may parse as `Item::Other`.
const READ_ITEMS: &[&str] = &["agentMessage", "reasoning", "commandExecution"];

fn transcript_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/codex-transcripts")
        .join(name)
}

/// One message and its kind: the method, `result of <method>` (or `error of`) for a response
/// (by the id of the request it answers), an item notification with its item's type.
#[derive(Debug, Clone)]
struct Message {
    dir: Dir,
    kind: String,
    value: Value,
}

fn classify(lines: Vec<(Dir, Value)>) -> Vec<Message> {
    let methods: HashMap<(Dir, String), String> = lines
        .iter()
        .filter_map(|(dir, value)| {
            Some((
                (*dir, value.get("id")?.to_string()),
                value.get("method")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    lines
        .into_iter()
        .map(|(dir, value)| {
            let kind = if let Some(method) = value["method"].as_str() {
                match value["params"]["item"]["type"].as_str() {
                    Some(item) => format!("{method} ({item})"),
                    None => method.to_owned(),
                }
            } else {
                let asker = match dir {
                    Dir::ToServer => Dir::ToClient,
                    Dir::ToClient => Dir::ToServer,
                };
                let method = value
                    .get("id")
                    .and_then(|id| methods.get(&(asker, id.to_string())))
                    .map_or("an unknown request", String::as_str);
                let what = if value.get("error").is_some() {
                    "error"
                } else {
                    "result"
                };
                format!("{what} of {method}")
            };
            Message { dir, kind, value }
        })
        .collect()
}

/// The messages of every real session, each session classified on its own (ids repeat).
fn transcript() -> Vec<Message> {
    TRANSCRIPTS
        .iter()
        .flat_map(|name| {
            let path = transcript_path(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("the real transcript {}: {err}", path.display()));
            classify(
                text.lines()
                    .map(|line| {
                        let entry: Value = serde_json::from_str(line).unwrap();
                        let dir = match entry["dir"].as_str().unwrap() {
                            "client->server" | "c2s" => Dir::ToServer,
                            "server->client" | "s2c" => Dir::ToClient,
                            other => panic!("{name}: unknown dir {other}"),
                        };
                        (dir, entry["msg"].clone())
                    })
                    .collect(),
            )
        })
        .collect()
}

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
/// must also have the same value. `optional` are paths `actual` may lack.
fn shape_diff(
    path: &str,
    reference: &Value,
    actual: &Value,
    optional: &[&str],
    out: &mut Vec<String>,
) {
    if OPAQUE.contains(&path) {
        if json_type(reference) != json_type(actual) {
            out.push(format!(
                "{path}: {} where the transcript has {}",
                json_type(actual),
                json_type(reference)
            ));
        }
        return;
    }
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
                    Some(have_value) => shape_diff(&at, want_value, have_value, optional, out),
                    None if optional.contains(&at.as_str()) => {}
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
                // The closest element of the transcript's array: elements may differ in kind.
                let best = want
                    .iter()
                    .map(|w| {
                        let mut diff = Vec::new();
                        shape_diff(&at, w, element, optional, &mut diff);
                        diff
                    })
                    .min_by_key(Vec::len)
                    .unwrap_or_default();
                out.extend(best);
            }
        }
        // A field the transcript has as null is nullable: any value fits it.
        (Value::Null, _) => {}
        _ if json_type(reference) != json_type(actual) => out.push(format!(
            "{}: {} where the transcript has {}",
            if path.is_empty() { "(message)" } else { path },
            json_type(actual),
            json_type(reference)
        )),
        _ => {}
    }
}

/// Differences of each message from the closest reference message of its kind.
fn compare(recorded: &[Message], references: &[Message]) -> Vec<String> {
    let mut failures = BTreeSet::new();
    for message in recorded {
        let optional: Vec<&str> = OPTIONAL
            .iter()
            .filter(|o| o.dir == message.dir && o.kind == message.kind)
            .map(|o| o.path)
            .collect();
        let candidates: Vec<&Message> = references
            .iter()
            .filter(|r| r.dir == message.dir && r.kind == message.kind)
            .collect();
        let who = format!("{} {}", message.dir.name(), message.kind);
        if candidates.is_empty() {
            failures.insert(format!(
                "{who}: the transcript has no such message\n    {}",
                message.value
            ));
            continue;
        }
        let best = candidates
            .iter()
            .map(|r| {
                let mut diff = Vec::new();
                shape_diff("", &r.value, &message.value, &optional, &mut diff);
                diff
            })
            .min_by_key(Vec::len)
            .unwrap_or_default();
        if !best.is_empty() {
            failures.insert(format!(
                "{who}:\n    {}\n    in {}",
                best.join("\n    "),
                message.value
            ));
        }
    }
    failures.into_iter().collect()
}

/// The paths in `parsed` (the proxy's reading, serialized again) that are not in `original`
/// with the same value: a field the proxy misnames with a default reads as that default.
fn lost(path: &str, parsed: &Value, original: &Value, out: &mut Vec<String>) {
    match (parsed, original) {
        (Value::Object(parsed), Value::Object(original)) => {
            for (key, value) in parsed {
                let at = join(path, key);
                match original.get(key) {
                    Some(original) => lost(&at, value, original, out),
                    None => out.push(format!("{at}: the proxy reads {value}, but it is not sent")),
                }
            }
        }
        (Value::Array(parsed), Value::Array(original)) if parsed.len() == original.len() => {
            for (p, o) in parsed.iter().zip(original) {
                lost(&format!("{path}[]"), p, o, out);
            }
        }
        _ if parsed != original => out.push(format!(
            "{path}: the proxy reads {parsed}, but {original} is sent"
        )),
        _ => {}
    }
}

fn reads_as<T: DeserializeOwned + Serialize>(value: &Value, out: &mut Vec<String>) {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(parsed) => lost("", &serde_json::to_value(parsed).unwrap(), value, out),
        Err(err) => out.push(format!("the proxy cannot read it: {err}")),
    }
}

/// What goes wrong when the proxy's protocol types read a server message.
fn proxy_reading(message: &Message) -> Vec<String> {
    let mut out = Vec::new();
    let value = &message.value;
    let incoming = match serde_json::from_value::<Incoming>(value.clone()) {
        Ok(incoming) => incoming,
        Err(err) => return vec![format!("not a JSON-RPC message to the proxy: {err}")],
    };
    match incoming {
        Incoming::Notification { method, params } => {
            if !ROUTED_METHODS.contains(&method.as_str()) {
                return out;
            }
            let notification = json!({"method": method, "params": params});
            match serde_json::from_value::<TurnNotification>(notification.clone()) {
                Ok(TurnNotification::ItemCompleted(ItemCompleted {
                    item: Item::Other,
                    thread_id,
                    turn_id,
                })) => {
                    let item = params["item"]["type"].as_str().unwrap_or_default();
                    if READ_ITEMS.contains(&item) {
                        out.push(format!(
                            "the proxy reads the {item} item as one it ignores (Item::Other)"
                        ));
                    }
                    lost(
                        "params",
                        &json!({"threadId": thread_id, "turnId": turn_id}),
                        &params,
                        &mut out,
                    );
                }
                Ok(TurnNotification::RawItemCompleted(RawItemCompleted {
                    item: RawItem::Other,
                    thread_id,
                    turn_id,
                })) => {
                    if params["item"]["type"] == "function_call" {
                        out.push("the proxy reads a function call as an item it ignores".into());
                    }
                    lost(
                        "params",
                        &json!({"threadId": thread_id, "turnId": turn_id}),
                        &params,
                        &mut out,
                    );
                }
                Ok(parsed) => lost(
                    "",
                    &serde_json::to_value(parsed).unwrap(),
                    &notification,
                    &mut out,
                ),
                Err(err) => out.push(format!("the proxy cannot read it: {err}")),
            }
        }
        Incoming::ServerRequest { method, params, .. } if method == TOOL_CALL => {
            reads_as::<ToolCallParams>(&params, &mut out)
        }
        Incoming::Error { .. } if message.kind.starts_with("error of ") => {}
        Incoming::Response { result, .. } => match message.kind.as_str() {
            "result of initialize" => reads_as::<InitializeResponse>(&result, &mut out),
            "result of thread/start" => reads_as::<ThreadStartResponse>(&result, &mut out),
            "result of turn/start" => reads_as::<TurnStartResponse>(&result, &mut out),
            _ => {} // results nobody waits for
        },
        other => out.push(format!(
            "the proxy reads it as {other:?}, not as a {}",
            message.kind
        )),
    }
    out
}

/// A `codex` for the proxy: fake-codex with both directions of its stdio teed to files when it
/// runs as the app-server (`--version` probes pass straight through). The proxy runs codex with
/// a cleared environment, so every path is written into the script.
struct Recorder {
    _dir: tempfile::TempDir,
    script: PathBuf,
    to_server: PathBuf,
    to_client: PathBuf,
}

impl Recorder {
    fn new() -> Recorder {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("codex");
        let to_server = dir.path().join("client-to-server.jsonl");
        let to_client = dir.path().join("server-to-client.jsonl");
        let quote = |path: &Path| shell_words::quote(&path.display().to_string()).into_owned();
        let tee = quote(&which::which("tee").expect("tee is on PATH"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = app-server ] || exec {fake} \"$@\"\n{tee} -a {} | {fake} \"$@\" | {tee} -a {}\n",
                quote(&to_server),
                quote(&to_client),
                fake = quote(Path::new(fake_codex())),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A process forked elsewhere in the suite while the script was open for writing keeps it
        // busy until that process execs: wait for that here rather than fail the proxy's start.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match std::process::Command::new(&script)
                .arg("--version")
                .stdin(std::process::Stdio::null())
                .output()
            {
                Ok(out) => {
                    assert!(out.status.success(), "the recorder does not run: {out:?}");
                    break;
                }
                Err(err) if err.raw_os_error() == Some(26) => {
                    // ETXTBSY
                    assert!(std::time::Instant::now() < deadline, "{err}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("the recorder does not run: {err}"),
            }
        }
        let _ = std::fs::remove_file(&to_server);
        let _ = std::fs::remove_file(&to_client);
        Recorder {
            _dir: dir,
            script,
            to_server,
            to_client,
        }
    }

    fn read(path: &Path, dir: Dir) -> Vec<(Dir, Value)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let value = serde_json::from_str(line).unwrap_or_else(|err| {
                    panic!(
                        "{} sent a line that is not JSON ({err}): {line}",
                        dir.name()
                    )
                });
                (dir, value)
            })
            .collect()
    }

    fn messages(&self) -> Vec<Message> {
        let mut lines = Self::read(&self.to_server, Dir::ToServer);
        lines.extend(Self::read(&self.to_client, Dir::ToClient));
        classify(lines)
    }

    /// The session so far, once `n` threads are unsubscribed and answered and every interrupt
    /// sent before is answered too (or after a while): the proxy sends both without waiting,
    /// and the answers come in whatever order codex gives them.
    async fn after_unsubscribes(&self, n: usize) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            let count = |dir: Dir, suffix: &str| {
                messages
                    .iter()
                    .filter(|m| m.dir == dir && m.kind.ends_with(suffix))
                    .count()
            };
            let unsubscribed = count(Dir::ToClient, " of thread/unsubscribe");
            let interrupts_answered = count(Dir::ToClient, " of turn/interrupt");
            let interrupts = messages
                .iter()
                .filter(|m| m.dir == Dir::ToServer && m.kind == "turn/interrupt")
                .count();
            let settled = unsubscribed >= n && interrupts_answered >= interrupts;
            if settled || tokio::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn the_lists_of_exceptions_name_what_the_transcript_has() {
    let transcript = transcript();
    for optional in OPTIONAL {
        let found = transcript.iter().any(|m| {
            m.dir == optional.dir
                && m.kind == optional.kind
                && optional
                    .path
                    .split('.')
                    .try_fold(&m.value, |v, key| v.get(key))
                    .is_some()
        });
        assert!(
            found,
            "optional {} {}: not in the transcript ({})",
            optional.kind, optional.path, optional.why
        );
    }
    for (kind, why) in NOT_PLAYED {
        assert!(
            transcript
                .iter()
                .any(|m| m.dir == Dir::ToClient && m.kind == *kind),
            "not played {kind}: not in the transcript ({why})"
        );
    }
    // An extra reference the transcript already has the shape of is one to remove.
    for extra in extras() {
        for message in transcript
            .iter()
            .filter(|m| m.dir == extra.dir && m.kind == extra.kind)
        {
            let mut diff = Vec::new();
            shape_diff("", &message.value, &extra.message, &[], &mut diff);
            assert!(
                !diff.is_empty(),
                "extra {}: the transcript has it already ({})",
                extra.kind,
                extra.why
            );
        }
    }
}

#[test]
fn the_proxy_reads_every_server_message_of_the_real_transcript() {
    let failures: Vec<String> = transcript()
        .iter()
        .filter(|m| m.dir == Dir::ToClient)
        .flat_map(|m| {
            proxy_reading(m)
                .into_iter()
                .map(|f| format!("{}: {f}\n    {}", m.kind, m.value))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_proxy_and_fake_codex_speak_the_real_app_server_wire() {
    let recorder = Recorder::new();
    let script = recorder.script.display().to_string();
    let cli = client_on(
        "app-server",
        &[("CODEX_PATH", &script), ("CODEX_MODELS", "gpt-5.5")],
    );

    // A plain turn on codex's default model, then a streamed one with reasoning and an effort.
    let (plain_status, plain) = post_chat(&cli, &chat("say hi", false)).await;
    let mut reasoning = chat("say hi [[reasoning]]", true);
    reasoning["model"] = json!("gpt-5.5");
    reasoning["reasoning_effort"] = json!("high");
    let (stream_status, _, events) = sse_of(
        cli.post("/v1/chat/completions")
            .body_json(&reasoning)
            .send()
            .await,
    )
    .await;
    // The client's tools and an earlier conversation, natively: a call and its result, two
    // calls in one response, a conversation of earlier turns, and a strict tool's broken call
    // sent back to the model as a failed call.
    let tool = |strict: bool, city: &str| {
        json!({"type": "function", "function": {"name": "get_weather", "description": "The weather.",
            "strict": strict,
            "parameters": {"type": "object", "properties": {"city": {"type": city}}, "required": ["city"], "additionalProperties": false}}})
    };
    let ask = json!({"role": "user", "content": "Weather in Paris? [[tool_flow]]"});
    let first =
        json!({"model": "codex-local", "tools": [tool(false, "string")], "messages": [ask]});
    let (call_status, call) = post_chat(&cli, &first).await;
    let message = call["choices"][0]["message"].clone();
    let answer = json!({"model": "codex-local", "tools": [tool(false, "string")], "messages": [
        ask, message,
        {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "Sunny"}]});
    let (answer_status, answered) = post_chat(&cli, &answer).await;
    let parallel = json!({"model": "codex-local", "tools": [tool(false, "string")], "messages": [
        {"role": "user", "content": "Paris and Rome? [[tool_flow:2]]"}]});
    let (parallel_status, two) = post_chat(&cli, &parallel).await;
    let history = json!({"model": "codex-local", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now? [[items]]"}]});
    let (history_status, items) = post_chat(&cli, &history).await;
    let strict =
        json!({"model": "codex-local", "tools": [tool(true, "integer")], "messages": [ask]});
    let (strict_status, refused) = post_chat(&cli, &strict).await;
    let recorded = recorder.after_unsubscribes(7).await;
    drop(cli);

    let mut references = transcript();
    let extras = extras();
    references.extend(extras.iter().map(|extra| Message {
        dir: extra.dir,
        kind: extra.kind.to_owned(),
        value: extra.message.clone(),
    }));

    // Every message of either side has the shape of the real one of its kind.
    let mut failures = compare(&recorded, &references);
    // And the proxy reads all that fake-codex sent, as it reads the real codex.
    for message in recorded.iter().filter(|m| m.dir == Dir::ToClient) {
        for failure in proxy_reading(message) {
            failures.push(format!(
                "{} {}: {failure}\n    {}",
                message.dir.name(),
                message.kind,
                message.value
            ));
        }
    }
    // Nothing of the transcript goes unchecked: each kind of it was exchanged here.
    let seen: BTreeSet<(Dir, &str)> = recorded.iter().map(|m| (m.dir, m.kind.as_str())).collect();
    let unplayed: BTreeSet<(Dir, &str)> = references
        .iter()
        .map(|m| (m.dir, m.kind.as_str()))
        .filter(|(dir, kind)| {
            let excused = *dir == Dir::ToClient && NOT_PLAYED.iter().any(|(k, _)| k == kind);
            !excused && !seen.contains(&(*dir, *kind))
        })
        .collect();
    for (dir, kind) in unplayed {
        failures.push(format!(
            "{} {kind}: in the transcript, but not exchanged here",
            dir.name()
        ));
    }
    assert!(
        failures.is_empty(),
        "the app-server wire differs from the real codex sessions ({TRANSCRIPTS:?}):\n{}",
        failures.join("\n")
    );

    // The turns themselves went through.
    assert_eq!(plain_status, 200, "{plain}");
    assert_eq!(
        plain["choices"][0]["message"]["content"],
        "Hello from the mock model."
    );
    assert_eq!(plain["usage"]["prompt_tokens"], 120, "{plain}");
    assert_eq!(stream_status, 200);
    let pieces: Vec<&str> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        pieces.len() > 1,
        "the answer streams delta by delta: {events:?}"
    );
    assert_eq!(pieces.concat(), "Reasoned answer from the mock model.");
    let reasoning_text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(reasoning_text.contains("Thinking"), "{events:?}");
    assert_eq!(events.last(), Some(&json!("[DONE]")));

    assert_eq!(call_status, 200, "{call}");
    assert_eq!(call["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(answer_status, 200, "{answered}");
    assert_eq!(
        answered["choices"][0]["message"]["content"],
        "The tool says: Sunny"
    );
    assert_eq!(parallel_status, 200, "{two}");
    assert_eq!(
        two["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{two}"
    );
    assert_eq!(history_status, 200, "{items}");
    let seen: Value =
        serde_json::from_str(items["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(seen["developer"], "Be brief.", "{seen}");
    assert_eq!(seen["items"].as_array().map(Vec::len), Some(2), "{seen}");
    // fake-codex's model answers the failed call's text instead of calling again.
    assert_eq!(strict_status, 200, "{refused}");
    let said = refused["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(said.contains("do not match its schema"), "{refused}");
}
