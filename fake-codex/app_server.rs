//! `fake-codex app-server`: the subset of `codex app-server`'s stdio JSON-RPC the proxy uses,
//! playing the same scenarios as `exec` (`scenario.rs`) as notifications, in the order the real
//! 0.169.0 sends them (`../shared/codex-transcripts/app_server_single.wire.jsonl`).
//!
//! Each turn plays on a thread of its own, so turns of different threads interleave as they do
//! on the real server. `turn/interrupt` stops a turn between two notifications and kills the
//! command a hanging turn started, as codex does.

use std::{
    collections::HashMap,
    io::{BufRead, Write},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::sleep,
    time::Duration,
};

use codex_openai_proxy::codex::{
    app_server::protocol::{
        ErrorNotification, SummaryDelta, TextDelta, ThreadStartParams, ThreadTokenUsage,
        TokenUsageBreakdown, TokenUsageUpdated, TurnError, TurnNotification, TurnStartParams,
        TurnStatus, UserInput, OVERLOADED,
    },
    CodexUsage, ItemDetails,
};
use serde_json::{json, Value};

use crate::{
    argv::Cli,
    scenario::{self, End, Script, Step},
    VERSION,
};

/// What `thread/start` set up.
#[derive(Clone)]
struct ThreadInfo {
    model: Option<String>,
    sandbox: String,
    cwd: String,
}

struct Server {
    overrides: Vec<String>,
    threads: Mutex<HashMap<String, ThreadInfo>>,
    /// Running turns by id: set to stop them.
    interrupts: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Turns started but not yet playing: their turn/start is being answered.
    started: Mutex<Vec<(Player, Script, String)>>,
}

/// One line on stdout; lines from concurrent turns never mix.
fn send(message: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{message}");
    let _ = out.flush();
}

fn notify(method: &str, params: Value) {
    send(&json!({"method": method, "params": params}));
}

fn notify_turn(notification: TurnNotification) {
    send(&serde_json::to_value(notification).expect("notifications serialize"));
}

pub fn serve(overrides: Vec<String>) -> ExitCode {
    for raw in &overrides {
        if !raw.contains('=') {
            eprintln!("Error parsing -c overrides: Invalid override (missing '='): {raw}");
            return ExitCode::from(1);
        }
    }
    let server = Arc::new(Server {
        overrides,
        threads: Mutex::default(),
        interrupts: Mutex::default(),
        started: Mutex::default(),
    });
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(method), id) = (message["method"].as_str(), message.get("id")) else {
            continue;
        };
        let Some(id) = id.cloned() else {
            continue; // a notification (`initialized`)
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match server.handle(method, params) {
            Ok(result) => send(&json!({"id": id, "result": result})),
            Err((code, text)) => send(&json!({"id": id, "error": {"code": code, "message": text}})),
        }
        // A turn plays only once its turn/start is answered, as on the real server.
        server.play_started_turns();
    }
    // stdin closed: the client is gone, and so is the server.
    ExitCode::SUCCESS
}

type Reply = Result<Value, (i64, String)>;

fn invalid(err: impl std::fmt::Display) -> (i64, String) {
    (-32600, format!("Invalid request: {err}"))
}

impl Server {
    fn handle(self: &Arc<Self>, method: &str, params: Value) -> Reply {
        match method {
            "initialize" => {
                let name = params["clientInfo"]["name"].as_str().unwrap_or("client");
                Ok(json!({
                    "userAgent": format!("{name}/{VERSION} (fake-codex)"),
                    "codexHome": std::env::var("CODEX_HOME").unwrap_or_default(),
                    "platformFamily": "unix",
                    "platformOs": "linux",
                }))
            }
            "thread/start" => {
                let params: ThreadStartParams = serde_json::from_value(params).map_err(invalid)?;
                let id = uuid::Uuid::now_v7().to_string();
                let info = ThreadInfo {
                    model: params.model.clone(),
                    sandbox: params.sandbox.clone(),
                    cwd: params.cwd.clone(),
                };
                self.threads
                    .lock()
                    .expect("threads")
                    .insert(id.clone(), info);
                let thread = json!({
                    "id": id,
                    "sessionId": id,
                    "ephemeral": params.ephemeral,
                    "model": params.model.unwrap_or_else(|| scenario::DEFAULT_MODEL.into()),
                    "modelProvider": "openai",
                    "cwd": params.cwd,
                });
                notify("thread/started", json!({"thread": thread}));
                Ok(json!({"thread": thread}))
            }
            "turn/start" => self.start_turn(params),
            "turn/interrupt" => {
                let turn_id = params["turnId"].as_str().unwrap_or_default();
                if let Some(flag) = self.interrupts.lock().expect("interrupts").get(turn_id) {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(json!({}))
            }
            "thread/unsubscribe" => {
                let thread_id = params["threadId"].as_str().unwrap_or_default();
                let known = self
                    .threads
                    .lock()
                    .expect("threads")
                    .remove(thread_id)
                    .is_some();
                Ok(json!({"status": if known { "unsubscribed" } else { "notSubscribed" }}))
            }
            other => Err((-32601, format!("method not found: {other}"))),
        }
    }

    fn start_turn(self: &Arc<Self>, params: Value) -> Reply {
        let params: TurnStartParams = serde_json::from_value(params).map_err(invalid)?;
        let thread = self
            .threads
            .lock()
            .expect("threads")
            .get(&params.thread_id)
            .cloned()
            .ok_or_else(|| invalid(format!("thread not found: {}", params.thread_id)))?;
        let mut prompt = String::new();
        let mut images = Vec::new();
        for input in &params.input {
            match input {
                UserInput::Text { text, .. } => prompt.push_str(text),
                UserInput::LocalImage { path } => images.push(path.clone()),
            }
        }
        if let Some(("overloaded", _)) = scenario::marker(&prompt) {
            return Err((OVERLOADED, "Server overloaded; retry later.".into()));
        }
        let schema_file = params.output_schema.as_ref().map(|schema| {
            let path = std::env::temp_dir()
                .join(format!("fake-codex-schema-{}.json", uuid::Uuid::new_v4()));
            let _ = std::fs::write(&path, schema.to_string());
            path
        });
        let mut overrides = self.overrides.clone();
        if let Some(effort) = &params.effort {
            overrides.push(format!("model_reasoning_effort=\"{effort}\""));
        }
        let cli = Cli {
            json: true,
            skip_git_repo_check: true,
            model: thread.model.clone(),
            sandbox: Some(thread.sandbox.clone()),
            cd: Some(thread.cwd.clone()),
            config_overrides: overrides,
            images,
            output_schema: schema_file.as_ref().map(|p| p.display().to_string()),
            ..Cli::default()
        };
        let script = match scenario::marker(&prompt) {
            Some(("threads", _)) => {
                let loaded = self.threads.lock().expect("threads").len();
                scenario::answer(&format!("THREADS: {loaded}"))
            }
            _ => scenario::script_for(&prompt, &cli),
        };
        if let Some(path) = schema_file {
            let _ = std::fs::remove_file(path);
        }
        let turn_id = uuid::Uuid::now_v7().to_string();
        let interrupted = Arc::new(AtomicBool::new(false));
        self.interrupts
            .lock()
            .expect("interrupts")
            .insert(turn_id.clone(), interrupted.clone());
        let turn = json!({"id": turn_id, "items": [], "status": "inProgress", "error": null});
        let player = Player {
            thread_id: params.thread_id,
            turn_id,
            cwd: thread.cwd.clone(),
            interrupted,
        };
        self.started
            .lock()
            .expect("started")
            .push((player, script, prompt));
        Ok(json!({"turn": turn}))
    }

    /// Plays each started turn on a thread of its own.
    fn play_started_turns(self: &Arc<Self>) {
        for (player, script, prompt) in self.started.lock().expect("started").drain(..) {
            let server = self.clone();
            std::thread::spawn(move || {
                player.play(&script, &prompt);
                server
                    .interrupts
                    .lock()
                    .expect("interrupts")
                    .remove(&player.turn_id);
            });
        }
    }
}

struct Player {
    thread_id: String,
    turn_id: String,
    cwd: String,
    interrupted: Arc<AtomicBool>,
}

/// The turn was interrupted: the rest of it is not played.
struct Stopped;

impl Player {
    fn ids(&self) -> (String, String) {
        (self.thread_id.clone(), self.turn_id.clone())
    }

    /// Sleeps `delay`, then says whether the turn may go on.
    /// An interrupt cuts a long pause short, as it cuts codex's wait on the model.
    fn pause(&self, delay: Duration) -> Result<(), Stopped> {
        let until = std::time::Instant::now() + delay;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Stopped);
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            sleep(left.min(Duration::from_millis(20)));
        }
    }

    fn play(&self, script: &Script, prompt: &str) {
        let (thread_id, turn_id) = self.ids();
        notify(
            "thread/status/changed",
            json!({"threadId": thread_id, "status": {"type": "active", "activeFlags": []}}),
        );
        notify(
            "turn/started",
            json!({"threadId": thread_id, "turn": {"id": turn_id, "items": [], "status": "inProgress", "error": null}}),
        );
        let user = json!({"type": "userMessage", "id": uuid::Uuid::now_v7().to_string(), "content": [{"type": "text", "text": prompt, "text_elements": []}]});
        notify(
            "item/started",
            json!({"item": user, "threadId": thread_id, "turnId": turn_id}),
        );
        self.completed(user);
        let mut child = None;
        if self.steps(script, &mut child).is_err() {
            self.end(TurnStatus::Interrupted, None);
        }
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn steps(&self, script: &Script, child: &mut Option<Child>) -> Result<(), Stopped> {
        let (thread_id, turn_id) = self.ids();
        self.pause(script.delay)?;
        for (n, step) in script.steps.iter().enumerate() {
            self.pause(script.delay)?;
            let item_id = format!("item_{n}");
            match step {
                Step::Raw(line) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                Step::Stderr(text) => {
                    let _ = std::io::stderr().lock().write_all(text.as_bytes());
                }
                Step::Notice(message) => self.error(message, true),
                Step::Stamped => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    // One delta: the stamp is the moment this very line is written.
                    let stamp = format!("t={}", now.as_micros());
                    self.message(&item_id, &[stamp.as_str()], Duration::ZERO)?;
                }
                Step::Item(ItemDetails::AgentMessage { text }) => {
                    self.message(&item_id, &scenario::pieces(text), script.delta_delay)?;
                }
                Step::Item(ItemDetails::Reasoning { text }) => {
                    notify(
                        "item/started",
                        json!({"item": {"type": "reasoning", "id": item_id, "summary": [], "content": []}, "threadId": thread_id, "turnId": turn_id}),
                    );
                    let parts: Vec<&str> = text.split('\n').collect();
                    for (index, part) in parts.iter().enumerate() {
                        notify(
                            "item/reasoning/summaryPartAdded",
                            json!({"threadId": thread_id, "turnId": turn_id, "itemId": item_id, "summaryIndex": index}),
                        );
                        for piece in scenario::pieces(part) {
                            self.pause(script.delta_delay)?;
                            notify_turn(TurnNotification::ReasoningSummaryDelta(SummaryDelta {
                                thread_id: thread_id.clone(),
                                turn_id: turn_id.clone(),
                                item_id: item_id.clone(),
                                delta: piece.into(),
                                summary_index: index as u32,
                            }));
                        }
                    }
                    self.completed(json!({"type": "reasoning", "id": item_id, "summary": parts, "content": []}));
                }
                Step::Item(ItemDetails::CommandExecution {
                    command,
                    aggregated_output,
                    exit_code,
                    ..
                }) => {
                    notify(
                        "item/started",
                        json!({"item": {"type": "commandExecution", "id": item_id, "command": command, "cwd": self.cwd, "status": "inProgress", "commandActions": []}, "threadId": thread_id, "turnId": turn_id}),
                    );
                    self.pause(script.delay)?;
                    self.completed(json!({
                        "type": "commandExecution", "id": item_id, "command": command, "cwd": self.cwd,
                        "status": "completed", "commandActions": [], "aggregatedOutput": aggregated_output,
                        "exitCode": exit_code, "durationMs": 0,
                    }));
                }
                // Model-metadata warnings are `exec` items; the app-server logs them.
                Step::Item(_) => {}
            }
        }
        self.pause(script.delay)?;
        match &script.end {
            End::Completed(usage) => {
                self.usage(usage);
                self.end(TurnStatus::Completed, None);
            }
            End::Failed(message) => {
                if message.contains("context window") {
                    // codex reports the full window's usage before it gives up.
                    self.usage(&CodexUsage::default());
                }
                self.error(message, false);
                self.end(TurnStatus::Failed, Some(turn_error(message)));
            }
            End::Crash { stderr, code } => {
                // The whole app-server dies, and every turn on it with it.
                if !stderr.is_empty() {
                    eprintln!("{stderr}");
                }
                std::process::exit(i32::from(*code));
            }
            End::Hang { pid_file, failure } => {
                // A command still running, as codex's shell commands do; an interrupt kills it.
                *child = Command::new("sleep")
                    .arg("3600")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok();
                if let (Some(path), Some(child)) = (pid_file, child.as_ref()) {
                    let _ = std::fs::write(path, format!("{} {}", std::process::id(), child.id()));
                }
                if let Some(message) = failure {
                    self.error(message, false);
                    self.end(TurnStatus::Failed, Some(turn_error(message)));
                }
                loop {
                    self.pause(Duration::from_millis(20))?;
                }
            }
        }
        Ok(())
    }

    /// An agent message written as `pieces`, `delay` apart.
    fn message(&self, item_id: &str, pieces: &[&str], delay: Duration) -> Result<(), Stopped> {
        let (thread_id, turn_id) = self.ids();
        notify(
            "item/started",
            json!({"item": {"type": "agentMessage", "id": item_id, "text": ""}, "threadId": thread_id, "turnId": turn_id}),
        );
        for piece in pieces {
            self.pause(delay)?;
            notify_turn(TurnNotification::AgentMessageDelta(TextDelta {
                thread_id: thread_id.clone(),
                turn_id: turn_id.clone(),
                item_id: item_id.to_owned(),
                delta: (*piece).into(),
            }));
        }
        self.completed(json!({"type": "agentMessage", "id": item_id, "text": pieces.concat()}));
        Ok(())
    }

    fn completed(&self, item: Value) {
        let (thread_id, turn_id) = self.ids();
        notify(
            "item/completed",
            json!({"item": item, "threadId": thread_id, "turnId": turn_id, "completedAtMs": now_ms()}),
        );
    }

    fn usage(&self, usage: &CodexUsage) {
        let (thread_id, turn_id) = self.ids();
        let breakdown = TokenUsageBreakdown {
            total_tokens: usage.input_tokens + usage.output_tokens,
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            cache_write_input_tokens: usage.cache_write_input_tokens,
            output_tokens: usage.output_tokens,
            reasoning_output_tokens: usage.reasoning_output_tokens,
        };
        notify_turn(TurnNotification::TokenUsageUpdated(TokenUsageUpdated {
            thread_id,
            turn_id,
            token_usage: ThreadTokenUsage {
                total: breakdown,
                last: breakdown,
            },
        }));
    }

    fn error(&self, message: &str, will_retry: bool) {
        let (thread_id, turn_id) = self.ids();
        notify_turn(TurnNotification::Error(ErrorNotification {
            error: turn_error(message),
            will_retry,
            thread_id,
            turn_id,
        }));
    }

    fn end(&self, status: TurnStatus, error: Option<TurnError>) {
        let (thread_id, turn_id) = self.ids();
        notify(
            "thread/status/changed",
            json!({"threadId": thread_id, "status": {"type": "idle"}}),
        );
        notify(
            "turn/completed",
            json!({"threadId": thread_id, "turn": {"id": turn_id, "items": [], "status": status, "error": error}}),
        );
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// The `codexErrorInfo` the real app-server 0.169.0 attaches to each failure, as recorded
/// against the mock model (the real-codex suite checks these stay the same).
fn turn_error(message: &str) -> TurnError {
    let info = if message.contains("context window") {
        json!("contextWindowExceeded")
    } else if message.contains("Quota exceeded") || message.contains("usage limit") {
        json!("usageLimitExceeded")
    } else if message.contains("401 Unauthorized") {
        json!({"httpConnectionFailed": {"httpStatusCode": 401}})
    } else if message.contains("429") {
        json!({"responseTooManyFailedAttempts": {"httpStatusCode": 429}})
    } else if message.contains("high demand") {
        json!("internalServerError")
    } else {
        json!("other")
    };
    TurnError {
        message: message.to_owned(),
        codex_error_info: Some(info),
    }
}
