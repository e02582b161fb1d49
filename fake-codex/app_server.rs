//! `fake-codex app-server`: the subset of `codex app-server`'s stdio JSON-RPC the proxy uses,
//! playing the same scenarios as `exec` (`scenario.rs`) as notifications, in the order the real
//! 0.169.0 sends them (`../shared/codex-transcripts/app_server_single.wire.jsonl`).
//!
//! Each turn plays on a thread of its own, so turns of different threads interleave as they do
//! on the real server. `turn/interrupt` stops a turn between two notifications and kills the
//! command a hanging turn started, as codex does.
//!
//! The wire is fake-codex's own (`app_server/wire.rs`, field names copied from the real
//! transcripts), not the proxy's protocol types: were the two sides typed alike, a field renamed
//! in the proxy would be renamed here too, and the tests could not see the change.

mod wire;

use std::{
    collections::HashMap,
    io::{BufRead, Write},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::sleep,
    time::{Duration, Instant},
};

use codex_openai_proxy::codex::{CodexUsage, ItemDetails};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use self::wire::{
    notification, now_ms, now_secs, InitializeParams, ThreadInfo, ThreadStartParams,
    ThreadUnsubscribeParams, TurnInterruptParams, TurnObject, TurnStartParams, TurnStatus,
    UserInput, OVERLOADED,
};
use crate::{
    argv::Cli,
    scenario::{self, End, Script, Step},
    VERSION,
};

struct Server {
    overrides: Vec<String>,
    /// The client's `clientInfo.name`, once it has sent `initialize`.
    client: Mutex<Option<String>>,
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
    send(&notification(method, params));
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
        client: Mutex::default(),
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

/// A request's params as fake-codex's own type of them.
fn parse<T: DeserializeOwned>(params: Value) -> Result<T, (i64, String)> {
    serde_json::from_value(params).map_err(invalid)
}

/// The login fake-codex plays: a ChatGPT one when its home holds `fake-chatgpt-login`, none
/// when it holds `fake-no-login` (files tests write), else an API key.
enum FakeLogin {
    ChatGpt,
    ApiKey,
    None,
}

fn fake_login() -> FakeLogin {
    let home = std::env::var_os("CODEX_HOME").map(std::path::PathBuf::from);
    let holds = |file: &str| home.as_ref().is_some_and(|home| home.join(file).exists());
    if holds("fake-chatgpt-login") {
        FakeLogin::ChatGpt
    } else if holds("fake-no-login") {
        FakeLogin::None
    } else {
        FakeLogin::ApiKey
    }
}

impl Server {
    fn handle(self: &Arc<Self>, method: &str, params: Value) -> Reply {
        let client = self.client.lock().expect("client").clone();
        let Some(client) = client else {
            if method != "initialize" {
                return Err((-32600, "Not initialized".into()));
            }
            let params: InitializeParams = parse(params)?;
            let (name, version) = (params.client_info.name, params.client_info.version);
            *self.client.lock().expect("client") = Some(name.clone());
            return Ok(json!({
                "userAgent": format!("{name}/{VERSION} (fake-codex) ({name}; {version})"),
                "codexHome": std::env::var("CODEX_HOME").unwrap_or_default(),
                "platformFamily": "unix",
                "platformOs": "linux",
            }));
        };
        match method {
            "initialize" => Err((-32600, "Already initialized".into())),
            "thread/start" => {
                let params: ThreadStartParams = parse(params)?;
                let info = ThreadInfo {
                    id: uuid::Uuid::now_v7().to_string(),
                    model: params
                        .model
                        .unwrap_or_else(|| scenario::DEFAULT_MODEL.into()),
                    approval_policy: params.approval_policy,
                    sandbox: params.sandbox,
                    cwd: params.cwd,
                    ephemeral: params.ephemeral,
                    originator: client,
                    created_at: now_secs(),
                };
                self.threads
                    .lock()
                    .expect("threads")
                    .insert(info.id.clone(), info.clone());
                notify("thread/started", json!({"thread": info.thread()}));
                Ok(info.start_result())
            }
            "turn/start" => self.start_turn(parse(params)?),
            "turn/interrupt" => {
                let params: TurnInterruptParams = parse(params)?;
                if let Some(flag) = self
                    .interrupts
                    .lock()
                    .expect("interrupts")
                    .get(&params.turn_id)
                {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(json!({}))
            }
            "thread/unsubscribe" => {
                let params: ThreadUnsubscribeParams = parse(params)?;
                let known = self
                    .threads
                    .lock()
                    .expect("threads")
                    .remove(&params.thread_id)
                    .is_some();
                Ok(json!({"status": if known { "unsubscribed" } else { "notSubscribed" }}))
            }
            "model/list" => Ok(wire::model_list(&parse(params)?)),
            "account/read" => {
                let _: wire::AccountReadParams = parse(params)?;
                let account = match fake_login() {
                    FakeLogin::ChatGpt => Some(
                        json!({"type": "chatgpt", "email": "someone@example.com", "planType": "plus", "workspaceName": null}),
                    ),
                    FakeLogin::ApiKey => Some(json!({"type": "apiKey"})),
                    FakeLogin::None => None,
                };
                Ok(
                    json!({"account": account, "userId": null, "requiresOpenaiAuth": true, "workspaceRouting": null}),
                )
            }
            // As the real codex: only a ChatGPT login has limits to read.
            "account/rateLimits/read" => match fake_login() {
                FakeLogin::ChatGpt => {
                    let mut read = wire::chatgpt_rate_limits(42, now_secs());
                    read["rateLimitsByLimitId"] = json!(null);
                    Ok(read)
                }
                _ => Err((
                    -32600,
                    "codex account authentication required to read rate limits".into(),
                )),
            },
            other => Err((-32601, format!("method not found: {other}"))),
        }
    }

    fn start_turn(self: &Arc<Self>, params: TurnStartParams) -> Reply {
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
            model: Some(thread.model.clone()),
            sandbox: Some(thread.sandbox.as_arg().to_owned()),
            cd: Some(thread.cwd.clone()),
            config_overrides: overrides,
            images,
            output_schema: schema_file.as_ref().map(|p| p.display().to_string()),
            ..Cli::default()
        };
        let plan = match scenario::marker(&prompt) {
            Some(("plan", used)) => Some(used.and_then(|n| n.parse().ok()).unwrap_or(42)),
            Some(("plan_spent", _)) => Some(100),
            _ => None,
        }
        .map(|used| wire::chatgpt_rate_limits(used, now_secs()));
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
        let turn = TurnObject {
            id: &turn_id,
            started_at: None,
            end: None,
        }
        .to_value();
        let player = Player {
            thread_id: params.thread_id,
            turn_id,
            cwd: thread.cwd.clone(),
            interrupted,
            started: Instant::now(),
            started_at: now_secs(),
            last_message: Mutex::default(),
            plan,
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
    started: Instant,
    /// `turn.startedAt`, unix seconds.
    started_at: u64,
    /// The turn's last completed agent message: a finished turn's `items`.
    last_message: Mutex<Option<Value>>,
    /// A ChatGPT plan's limits, reported when the turn starts (`[[plan]]`, `[[plan_spent]]`).
    plan: Option<Value>,
}

/// The turn was interrupted: the rest of it is not played.
struct Stopped;

impl Player {
    /// `threadId` and `turnId`, which every notification of a turn's items carries.
    fn ids(&self) -> Value {
        json!({"threadId": self.thread_id, "turnId": self.turn_id})
    }

    /// The params of an item notification: `extra` over the turn's ids.
    fn with_ids(&self, extra: Value) -> Value {
        let mut params = self.ids();
        if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), extra) {
            params.extend(extra);
        }
        params
    }

    /// Sleeps `delay`, then says whether the turn may go on.
    /// An interrupt cuts a long pause short, as it cuts codex's wait on the model.
    fn pause(&self, delay: Duration) -> Result<(), Stopped> {
        let until = Instant::now() + delay;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Stopped);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            sleep(left.min(Duration::from_millis(20)));
        }
    }

    fn play(&self, script: &Script, prompt: &str) {
        notify(
            "thread/status/changed",
            json!({"threadId": self.thread_id, "status": {"type": "active", "activeFlags": []}}),
        );
        let turn = TurnObject {
            id: &self.turn_id,
            started_at: Some(self.started_at),
            end: None,
        };
        notify(
            "turn/started",
            json!({"threadId": self.thread_id, "turn": turn.to_value()}),
        );
        if let Some(limits) = &self.plan {
            notify("account/rateLimits/updated", limits.clone());
        }
        let user_id = uuid::Uuid::now_v7().to_string();
        let at = now_ms();
        self.item_started(wire::user_message(&user_id, prompt, at, None), at);
        self.completed(wire::user_message(&user_id, prompt, at, Some(now_ms())));
        let mut child = None;
        if self.steps(script, &mut child).is_err() {
            self.end(TurnStatus::Interrupted, Value::Null);
        }
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn steps(&self, script: &Script, child: &mut Option<Child>) -> Result<(), Stopped> {
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
                    let at = now_ms();
                    self.item_started(wire::reasoning(&item_id, &[], at, None), at);
                    let parts: Vec<&str> = text.split('\n').collect();
                    for (index, part) in parts.iter().enumerate() {
                        notify(
                            "item/reasoning/summaryPartAdded",
                            self.with_ids(json!({"itemId": item_id, "summaryIndex": index})),
                        );
                        for piece in scenario::pieces(part) {
                            self.pause(script.delta_delay)?;
                            notify(
                                "item/reasoning/summaryTextDelta",
                                self.with_ids(json!({"itemId": item_id, "delta": piece, "summaryIndex": index})),
                            );
                        }
                    }
                    self.completed(wire::reasoning(&item_id, &parts, at, Some(now_ms())));
                }
                Step::Item(ItemDetails::CommandExecution {
                    command,
                    aggregated_output,
                    exit_code,
                    ..
                }) => {
                    let at = now_ms();
                    self.item_started(
                        json!({"type": "commandExecution", "id": item_id, "command": command, "cwd": self.cwd, "status": "inProgress", "commandActions": []}),
                        at,
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
                self.end(TurnStatus::Completed, Value::Null);
            }
            End::Failed(message) => {
                if message.contains("context window") {
                    // codex reports the full window's usage before it gives up.
                    self.usage(&CodexUsage::default());
                }
                self.error(message, false);
                self.end(TurnStatus::Failed, turn_error(message));
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
                    self.end(TurnStatus::Failed, turn_error(message));
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
        let at = now_ms();
        self.item_started(wire::agent_message(item_id, "", at, None), at);
        for piece in pieces {
            self.pause(delay)?;
            notify(
                "item/agentMessage/delta",
                self.with_ids(json!({"itemId": item_id, "delta": piece})),
            );
        }
        let item = wire::agent_message(item_id, &pieces.concat(), at, Some(now_ms()));
        *self.last_message.lock().expect("last message") = Some(item.clone());
        self.completed(item);
        Ok(())
    }

    fn item_started(&self, item: Value, started_at_ms: u64) {
        notify(
            "item/started",
            json!({"item": item, "threadId": self.thread_id, "turnId": self.turn_id, "startedAtMs": started_at_ms}),
        );
    }

    fn completed(&self, item: Value) {
        notify(
            "item/completed",
            json!({"item": item, "threadId": self.thread_id, "turnId": self.turn_id, "contentTokenCount": null, "completedAtMs": now_ms()}),
        );
    }

    /// The usage of one model request (fake-codex makes one per turn, so `total` is `last`), and
    /// the rate limits codex reports after each.
    fn usage(&self, usage: &CodexUsage) {
        let breakdown = wire::usage_breakdown(usage);
        notify(
            "thread/tokenUsage/updated",
            self.with_ids(json!({"tokenUsage": {
                "total": breakdown,
                "last": breakdown,
                "modelContextWindow": wire::MODEL_CONTEXT_WINDOW,
            }})),
        );
        notify("account/rateLimits/updated", wire::rate_limits());
    }

    fn error(&self, message: &str, will_retry: bool) {
        notify(
            "error",
            json!({"error": turn_error(message), "willRetry": will_retry, "threadId": self.thread_id, "turnId": self.turn_id}),
        );
    }

    fn end(&self, status: TurnStatus, error: Value) {
        notify(
            "thread/status/changed",
            json!({"threadId": self.thread_id, "status": {"type": "idle"}}),
        );
        let items = match status {
            TurnStatus::Completed => self.last_message.lock().expect("last message").clone(),
            _ => None,
        };
        let turn = TurnObject {
            id: &self.turn_id,
            started_at: Some(self.started_at),
            end: Some((
                status,
                error,
                now_secs(),
                self.started.elapsed().as_millis() as u64,
                items.into_iter().collect(),
            )),
        };
        notify(
            "turn/completed",
            json!({"threadId": self.thread_id, "turn": turn.to_value()}),
        );
    }
}

/// The error the real app-server 0.169.0 reports for each failure, its `codexErrorInfo` as
/// recorded against the mock model (the real-codex suite checks these stay the same).
fn turn_error(message: &str) -> Value {
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
    wire::turn_error(message, info)
}
