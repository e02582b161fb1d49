//! What the fake model does, chosen by the last `[[name]]` marker in the prompt.
//!
//! Answers and failure texts are the ones the real codex 0.169.0 printed against a mock model
//! (`../shared/codex-transcripts/`, `../shared/codex-cli.md` 3.3).

use std::time::Duration;

use codex_openai_proxy::codex::{CodexUsage, ItemDetails};

use crate::argv::Cli;

/// Markers and what they do; `fake-codex` documents itself from this table.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "text",
        "one answer (the default when the prompt has no marker)",
    ),
    ("minimal", "one answer with no cached tokens"),
    ("reasoning", "a reasoning summary, then the answer"),
    ("multi", "two agent messages in one turn"),
    ("shell", "a command_execution item, then the answer (with the shell tool off: an answer saying so)"),
    ("tools", "answers `TOOLS: <names>`: the tools codex 0.169.0 offers the model under the given -c switches"),
    ("echo", "answers `ECHO: <prompt>`"),
    (
        "echo_json",
        "answers the prompt as one JSON string, so JSON in it cannot be read as a tool call",
    ),
    ("zero_usage", "an answer with all-zero usage"),
    ("http400", "turn.failed: unknown model"),
    ("http401", "turn.failed: provider rejected the key"),
    ("http429", "turn.failed: rate limited"),
    ("http500", "turn.failed: provider overloaded"),
    ("context", "turn.failed: context window exceeded"),
    ("quota", "turn.failed: quota exceeded"),
    ("usage_limit", "turn.failed: ChatGPT plan usage limit"),
    ("plan", "the answer; app-server also reports a ChatGPT plus plan's limits, `[[plan:N]]` with N% of its 5-hour window used (42 by default)"),
    ("plan_spent", "turn.failed: the plan's usage limit, \"try again later\"; app-server first reports the 5-hour window 100% used, resetting in an hour"),
    ("missing_env", "turn.failed: provider key variable unset"),
    (
        "answer_then_fail",
        "an answer, a retry notice, then turn.failed",
    ),
    ("crash", "no terminal event, a panic on stderr, exit 101"),
    (
        "crash_mid",
        "an answer, then a panic with no terminal event, exit 101",
    ),
    ("silent_exit", "exits 1 with nothing on stdout or stderr"),
    ("noise", "non-JSON lines mixed into stdout"),
    (
        "huge_line",
        "a 5 MiB stdout line that is not an event, then the answer",
    ),
    ("big_answer", "a 1 MiB answer in one agent message (`[[big_answer:N]]`: N such messages)"),
    ("stderr_flood", "2 MiB on stderr, then the answer"),
    (
        "slow",
        "the answer with 300 ms between events (`[[slow:MS]]` sets the delay)",
    ),
    (
        "env",
        "answers its working directory and the names of its environment variables",
    ),
    (
        "hang",
        "starts a child process and never finishes (`[[hang:FILE]]` writes both pids to FILE)",
    ),
    ("cut", "an answer, then the stream closed before response.completed (no retries): turn.failed"),
    ("fail_then_hang", "turn.failed, then stays running with a child (`[[fail_then_hang:FILE]]` writes both pids)"),
    ("tool_call", "prose, then a call of the first offered tool as a bare JSON object"),
    ("tool_call_fenced", "a call of the first offered tool in a ```json fence"),
    ("tool_calls_two", "two calls of the first offered tool, one per line"),
    ("tool_calls_array", "two calls of the first offered tool as one JSON array"),
    ("tool_call_string_args", "a call whose arguments are a JSON-encoded string"),
    ("tool_flow", "calls the first offered tool (`[[tool_flow:N]]`: N calls, one city each); once a tool result follows, answers with it. On an app-server thread with `dynamicTools` the model calls the first dynamic tool natively: `[[tool_flow:N]]` makes N calls in one model response (arguments `{\"city\":\"Paris\"}`, then Rome, Berlin, ... when the tool's inputSchema has a `city` property or none, else an instance of the schema), each an `item/tool/call` request to the client, after the response's end (`rawResponse/completed`; `[[tool_flow:N:early]]`: each right after its call's raw item, before the end, as codex does when the model streams slowly); once the history ends in tool results it answers `The tool says: <each output's text, joined by \"; \">` (a JSON-RPC error reply: `dynamic tool request failed`)"),
    ("items", "app-server: answers one JSON object of what the model would get, `{\"developer\": <developerInstructions or null>, \"tools\": [<dynamicTools names>], \"items\": [<the thread's history: injected items but system messages and unknown kinds, earlier turns' input, answers, calls and results>], \"input\": [<this turn's input>]}`; history items as `{type, role?, text? (text parts joined), images? (input_image count), call_id?, name?, arguments?, output? (its text)}`, input as `{type: text, text}`, `{type: localImage}`, `{type: image}`"),
    ("typing", "the answer in small deltas MS ms apart (`[[typing:MS]]`, 50 by default); `exec` prints it whole when done"),
    ("overloaded", "app-server refuses turn/start with JSON-RPC -32001 (server overloaded); `exec` answers"),
    ("threads", "answers `THREADS: <n>`: the threads this process has loaded (app-server; exec has one)"),
    ("stamped", "`[[stamped:N:MS]]`: N agent messages MS ms apart, each `t=<unix µs when sent>`"),
    ("account", "answers `ACCOUNT: <the last part of CODEX_HOME>`: which account's codex took the turn"),
    ("images", "answers `IMAGES: <path> <bytes>; ...` for each `-i` image, as read from disk"),
    ("config", "answers `CONFIG: <the -c overrides, in order>`"),
    ("json", "a JSON answer: with --output-schema an instance of the schema, otherwise {\"answer\": ...}"),
    ("fenced_json", "a JSON object inside a ```json fence"),
];

pub const TEXT_ANSWER: &str = "Hello from the mock model.";

#[derive(Debug, Clone)]
pub enum Step {
    /// A completed item (command executions also get their `item.started`).
    Item(ItemDetails),
    /// A top-level `error` event: a notice, not the end of the turn.
    Notice(String),
    /// A line on stdout that is not an event.
    Raw(String),
    /// Text on stderr.
    Stderr(String),
    /// An agent message whose text is the moment it is written: `t=<unix microseconds>`.
    Stamped,
}

#[derive(Debug, Clone)]
pub enum End {
    Completed(CodexUsage),
    Failed(String),
    /// The process dies without a terminal event.
    Crash {
        stderr: String,
        code: u8,
    },
    /// The process never ends on its own; the pids go to the file when one is named. With a
    /// failure, `turn.failed` is printed first.
    Hang {
        pid_file: Option<String>,
        failure: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Script {
    /// Warning items printed before `turn.started`.
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    pub end: End,
    pub delay: Duration,
    /// Between an agent message's deltas (app-server); `exec` waits as long before printing it.
    pub delta_delay: Duration,
}

/// How the app-server splits a text into deltas: a few characters each, like model tokens, and
/// bigger pieces for long texts so a 1 MiB answer stays a few hundred lines.
pub fn pieces(text: &str) -> Vec<&str> {
    let size = if text.len() > 4096 { 4096 } else { 6 };
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// The models codex 0.169.0 bundles metadata for; others get a warning item.
const KNOWN_MODELS: &[&str] = &[
    "gpt-6.1-sol",
    "gpt-6-astra",
    "gpt-6-sol",
    "gpt-6-luna",
    "gpt-5.6-sol",
    "gpt-6.1-terra",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-daybreak-blue-latest",
    "gpt-daybreak-red-latest",
    "gpt-5.5",
    "codex-auto-review",
];

pub const DEFAULT_MODEL: &str = "gpt-6.1-sol";

const fn usage(input: u64, cached: u64, output: u64, reasoning: u64) -> CodexUsage {
    CodexUsage {
        input_tokens: input,
        cached_input_tokens: cached,
        cache_write_input_tokens: 0,
        output_tokens: output,
        reasoning_output_tokens: reasoning,
    }
}

pub const TEXT_USAGE: CodexUsage = usage(120, 40, 12, 0);

/// A model response that calls tools (as the mock model of the real transcripts reported it).
pub const TOOL_CALL_USAGE: CodexUsage = usage(200, 0, 20, 0);

/// The cities the model asks the weather of, one per call of `[[tool_flow:N]]`.
const CITIES: &[&str] = &[
    "Paris", "Rome", "Berlin", "Madrid", "Vienna", "Lisbon", "Prague", "Oslo",
];

/// The arguments of the model's call number `n` (from 0) of a tool taking `schema`:
/// `{"city": <city n>}` when the schema has a `city` property or names none (`City 9` and on
/// after the list), otherwise an instance of the schema.
pub fn tool_arguments(schema: &serde_json::Value, n: usize) -> serde_json::Value {
    let properties = schema
        .get("properties")
        .and_then(serde_json::Value::as_object);
    if properties.is_none_or(|p| p.is_empty() || p.contains_key("city")) {
        let city = CITIES
            .get(n)
            .map_or_else(|| format!("City {}", n + 1), |city| (*city).to_owned());
        return serde_json::json!({ "city": city });
    }
    instance_of(schema)
}

fn message(text: &str) -> Step {
    Step::Item(ItemDetails::AgentMessage { text: text.into() })
}

/// The file in `CODEX_HOME` that spends the account: it holds the Unix second its usage limit
/// resets at, and until then every turn fails with codex's usage-limit message.
pub const SPENT_FILE: &str = "fake-codex-spent-until";

/// The file in `CODEX_HOME` that logs the account out: every turn fails as a rejected login.
pub const LOGGED_OUT_FILE: &str = "fake-codex-logged-out";

/// What the account's home scripts for every turn, whatever the prompt: a spent usage limit
/// (with the wait codex words it with) or a login the provider rejects.
fn home_says() -> Option<End> {
    let home = std::path::PathBuf::from(std::env::var_os("CODEX_HOME")?);
    if home.join(LOGGED_OUT_FILE).exists() {
        return Some(End::Failed(
            "unexpected status 401 Unauthorized: Your authentication token has expired. Please try signing in again., url: https://chatgpt.com/backend-api/codex/responses".into(),
        ));
    }
    let until: u64 = std::fs::read_to_string(home.join(SPENT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let left = until.checked_sub(now).filter(|left| *left > 0)?;
    Some(End::Failed(format!(
        "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again in {} minutes.",
        left.div_ceil(60)
    )))
}

/// The last `[[name]]` or `[[name:arg]]` marker in the prompt: in a rendered conversation
/// that is the one in the newest message.
pub fn marker(prompt: &str) -> Option<(&str, Option<&str>)> {
    let start = prompt.rfind("[[")?;
    let inner = &prompt[start + 2..];
    let inner = &inner[..inner.find("]]")?];
    Some(match inner.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (inner, None),
    })
}

pub fn script_for(prompt: &str, cli: &Cli) -> Script {
    let model = cli.model.clone().unwrap_or_else(|| DEFAULT_MODEL.into());
    let warnings = if KNOWN_MODELS.contains(&model.as_str()) {
        vec![]
    } else {
        vec![format!(
            "Model metadata for `{model}` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."
        )]
    };
    if let Some(end) = home_says() {
        return Script {
            warnings,
            steps: vec![],
            end,
            delay: Duration::ZERO,
            delta_delay: Duration::ZERO,
        };
    }
    let (name, arg) = marker(prompt).unwrap_or(("text", None));
    let mut delay = Duration::ZERO;
    let mut delta_delay = Duration::ZERO;
    let (steps, end) = match name {
        "minimal" => (vec![message("Minimal answer.")], End::Completed(usage(120, 0, 12, 0))),
        "reasoning" => (
            vec![
                Step::Item(ItemDetails::Reasoning { text: "**Thinking** about the mock question before answering.".into() }),
                message("Reasoned answer from the mock model."),
            ],
            End::Completed(usage(120, 40, 19, 7)),
        ),
        "multi" => (vec![message("First message."), message("Second message.")], End::Completed(usage(120, 40, 14, 0))),
        "shell" if !cli.tool_enabled("exec_command") => (
            vec![message("I cannot run commands here.")],
            End::Completed(usage(120, 40, 8, 0)),
        ),
        "tools" => (
            vec![message(&format!("TOOLS: {}", cli.offered_tools().join(",")))],
            End::Completed(TEXT_USAGE),
        ),
        "shell" => (
            vec![
                Step::Item(ItemDetails::CommandExecution {
                    command: "/bin/bash -lc 'echo mock-shell-output'".into(),
                    aggregated_output: "mock-shell-output\n".into(),
                    exit_code: Some(0),
                    status: "completed".into(),
                }),
                message("The command printed mock-shell-output."),
            ],
            End::Completed(usage(320, 40, 32, 0)),
        ),
        "echo" => (vec![message(&format!("ECHO: {prompt}"))], End::Completed(TEXT_USAGE)),
        "echo_json" => (vec![message(&serde_json::Value::String(prompt.to_owned()).to_string())], End::Completed(TEXT_USAGE)),
        "threads" => (vec![message("THREADS: 1")], End::Completed(TEXT_USAGE)),
        "account" => {
            let home = std::env::var_os("CODEX_HOME").map(std::path::PathBuf::from);
            let name = home
                .as_deref()
                .and_then(std::path::Path::file_name)
                .map_or_else(|| "none".into(), |n| n.to_string_lossy().into_owned());
            (vec![message(&format!("ACCOUNT: {name}"))], End::Completed(TEXT_USAGE))
        }
        "zero_usage" => (vec![message(TEXT_ANSWER)], End::Completed(CodexUsage::default())),
        "http400" => (vec![], End::Failed(format!("The model `{model}` does not exist or you do not have access to it."))),
        "http401" => (
            vec![],
            End::Failed(format!(
                "unexpected status 401 Unauthorized: Incorrect API key provided: sk-mock., url: {}/responses",
                cli.base_url()
            )),
        ),
        "http429" => (vec![], End::Failed("exceeded retry limit, last status: 429 Too Many Requests".into())),
        "http500" => (
            vec![],
            End::Failed("We\u{2019}re currently experiencing high demand, which may cause temporary errors.".into()),
        ),
        "context" => (
            vec![],
            End::Failed(
                "Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.".into(),
            ),
        ),
        "quota" => (vec![], End::Failed("Quota exceeded. Check your plan and billing details.".into())),
        "usage_limit" => (
            vec![],
            End::Failed("You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again in 3 days 2 hours 5 minutes.".into()),
        ),
        "missing_env" => (vec![], End::Failed("Missing environment variable: `MOCK_KEY_NOT_SET`.".into())),
        "plan_spent" => (
            vec![],
            End::Failed("You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again later.".into()),
        ),
        "answer_then_fail" => (
            vec![
                message("Partial answer."),
                Step::Notice("Reconnecting... 1/5 (stream disconnected before completion: stream closed before response.completed)".into()),
            ],
            End::Failed("stream disconnected before completion: stream closed before response.completed".into()),
        ),
        "cut" => (
            vec![message("Partial answer.")],
            End::Failed("stream disconnected before completion: stream closed before response.completed".into()),
        ),
        "crash" => (
            vec![],
            End::Crash {
                stderr: "thread 'main' panicked at codex-rs/exec/src/lib.rs:1:1:\nfake-codex crash scenario".into(),
                code: 101,
            },
        ),
        "crash_mid" => (
            vec![message("Partial answer.")],
            End::Crash {
                stderr: "thread 'main' panicked at codex-rs/exec/src/lib.rs:1:1:\nfake-codex crash scenario".into(),
                code: 101,
            },
        ),
        "silent_exit" => (vec![], End::Crash { stderr: String::new(), code: 1 }),
        "huge_line" => (vec![Step::Raw("x".repeat(5 * 1024 * 1024)), message(TEXT_ANSWER)], End::Completed(TEXT_USAGE)),
        "big_answer" => {
            let mib = arg.and_then(|n| n.parse().ok()).unwrap_or(1);
            (vec![message(&"0123456789abcde\n".repeat(64 * 1024)); mib], End::Completed(TEXT_USAGE))
        }
        "stderr_flood" => (
            vec![Step::Stderr(format!("{}\n", "e".repeat(1023)).repeat(2 * 1024)), message(TEXT_ANSWER)],
            End::Completed(TEXT_USAGE),
        ),
        "noise" => (
            vec![
                Step::Raw("this line is not JSON".into()),
                Step::Raw("{\"truncated\":".into()),
                Step::Raw("[1,2,3]".into()),
                message(TEXT_ANSWER),
            ],
            End::Completed(TEXT_USAGE),
        ),
        "typing" => {
            delta_delay = Duration::from_millis(arg.and_then(|ms| ms.parse().ok()).unwrap_or(50));
            (vec![message(TEXT_ANSWER)], End::Completed(TEXT_USAGE))
        }
        "slow" => {
            delay = Duration::from_millis(arg.and_then(|ms| ms.parse().ok()).unwrap_or(300));
            (vec![message(TEXT_ANSWER)], End::Completed(TEXT_USAGE))
        }
        "json" => {
            let answer = match cli.output_schema.as_deref().map(std::fs::read_to_string) {
                Some(Ok(schema)) => serde_json::from_str(&schema).map(|s| instance_of(&s)).unwrap_or_default(),
                Some(Err(_)) => return unreadable_schema(cli),
                None => serde_json::json!({"answer": TEXT_ANSWER}),
            };
            (vec![message(&answer.to_string())], End::Completed(TEXT_USAGE))
        }
        "fenced_json" => (vec![message("```json\n{\"answer\": 42}\n```")], End::Completed(TEXT_USAGE)),
        "config" => (
            vec![message(&format!("CONFIG: {}", cli.config_overrides.join(" | ")))],
            End::Completed(TEXT_USAGE),
        ),
        "images" => {
            let listed: Vec<String> = cli
                .images
                .iter()
                .map(|path| format!("{path} {}", std::fs::metadata(path).map_or(0, |m| m.len())))
                .collect();
            (vec![message(&format!("IMAGES: {}", listed.join("; ")))], End::Completed(TEXT_USAGE))
        }
        "env" => {
            let mut names: Vec<String> = std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
            names.sort();
            let cwd = match &cli.cd {
                Some(dir) => dir.clone(),
                None => std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            };
            (vec![message(&format!("cwd={cwd}\nenv={}", names.join(",")))], End::Completed(TEXT_USAGE))
        }
        "tool_call" | "tool_call_fenced" | "tool_calls_two" | "tool_calls_array" | "tool_call_string_args" | "tool_flow" => {
            let calls = arg.and_then(|n| n.split(':').next()?.parse().ok()).unwrap_or(1);
            (vec![message(&tool_answer(name, prompt, calls))], End::Completed(usage(150, 40, 24, 0)))
        }
        "stamped" => {
            let mut args = arg.unwrap_or("10:10").split(':');
            let count = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
            delay = Duration::from_millis(args.next().and_then(|ms| ms.parse().ok()).unwrap_or(10));
            ((0..count).map(|_| Step::Stamped).collect(), End::Completed(TEXT_USAGE))
        }
        "hang" => (vec![], End::Hang { pid_file: arg.map(str::to_owned), failure: None }),
        "fail_then_hang" => (
            vec![],
            End::Hang {
                pid_file: arg.map(str::to_owned),
                failure: Some("exceeded retry limit, last status: 429 Too Many Requests".into()),
            },
        ),
        _ => (vec![message(TEXT_ANSWER)], End::Completed(TEXT_USAGE)),
    };
    Script {
        warnings,
        steps,
        end,
        delay,
        delta_delay,
    }
}

/// A plain answer of `text`.
pub fn answer(text: &str) -> Script {
    Script {
        warnings: vec![],
        steps: vec![message(text)],
        end: End::Completed(TEXT_USAGE),
        delay: Duration::ZERO,
        delta_delay: Duration::ZERO,
    }
}

/// The first tool the prompt offers, as the proxy renders tools (`<tool name="...">`).
fn first_tool(prompt: &str) -> Option<&str> {
    let start = prompt.find("<tool name=\"")? + "<tool name=\"".len();
    let len = prompt[start..].find('"')?;
    Some(&prompt[start..start + len])
}

/// What a model that follows the tool instructions writes, in the shape the scenario names.
/// The answer of a model that follows the prompt's tool format; `tool_flow` makes `calls`
/// calls, one per line, one per city of [`CITIES`].
fn tool_answer(shape: &str, prompt: &str, calls: usize) -> String {
    let Some(tool) = first_tool(prompt) else {
        return "No tools were offered.".into();
    };
    let call = |city: &str| format!(r#"{{"name": "{tool}", "arguments": {{"city": "{city}"}}}}"#);
    match shape {
        "tool_call_fenced" => format!("```json\n{}\n```", call("Paris")),
        "tool_calls_two" => format!("{}\n{}", call("Paris"), call("Rome")),
        "tool_calls_array" => format!("[{}, {}]", call("Paris"), call("Rome")),
        "tool_call_string_args" => {
            format!(r#"{{"name": "{tool}", "arguments": "{{\"city\": \"Paris\"}}"}}"#)
        }
        "tool_flow" => {
            // After the last user turn, a tool result means the call was answered.
            let last_user = prompt.rfind("<user>").unwrap_or(0);
            match prompt[last_user..].find("<tool_result") {
                Some(at) => {
                    let result = &prompt[last_user + at..];
                    let body = result.split_once(">\n").map_or("", |(_, rest)| rest);
                    let body = body.split("\n</tool_result>").next().unwrap_or("");
                    format!("The tool says: {body}")
                }
                None => {
                    let lines: Vec<String> = CITIES
                        .iter()
                        .cycle()
                        .take(calls.clamp(1, 64))
                        .map(|city| call(city))
                        .collect();
                    format!("Let me look that up.\n{}", lines.join("\n"))
                }
            }
        }
        _ => format!("I'll check the weather.\n{}", call("Paris")),
    }
}

/// A value that satisfies a (strict) JSON Schema: every required property, typed.
fn instance_of(schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, sub)| (key.clone(), instance_of(sub)))
                .collect(),
        ),
        Some("array") => json!([]),
        Some("string") => schema["enum"].get(0).cloned().unwrap_or(json!("mock")),
        Some("number") | Some("integer") => json!(1),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
}

/// codex's failure when the --output-schema file cannot be read.
fn unreadable_schema(cli: &Cli) -> Script {
    Script {
        warnings: vec![],
        steps: vec![],
        end: End::Failed(format!(
            "Failed to read output schema file {}",
            cli.output_schema.as_deref().unwrap_or_default()
        )),
        delay: Duration::ZERO,
        delta_delay: Duration::ZERO,
    }
}
