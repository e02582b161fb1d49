//! `fake-codex app-server`: the subset of `codex app-server`'s stdio JSON-RPC the proxy uses,
//! playing the same scenarios as `exec` (`scenario.rs`) as notifications, in the order the real
//! 0.169.0 sends them (`../shared/codex-transcripts/app_server_single.wire.jsonl`).
//!
//! Each turn plays on a thread of its own, so turns of different threads interleave as they do
//! on the real server. `turn/interrupt` stops a turn between two notifications and kills the
//! command a hanging turn started, as codex does.
//!
//! The client's own tools and a prior conversation work natively, as on the real 0.171.0
//! (`../shared/codex-cli.md` 5.1a, the `app_server_*` transcripts beside the single one):
//! `thread/start`'s `dynamicTools` and `experimentalRawEvents` (both behind `initialize`'s
//! `capabilities.experimentalApi`), `thread/inject_items`, `turn/start` with an empty `input`,
//! and the `item/tool/call` requests fake-codex sends the client and waits on when the model
//! (`[[tool_flow]]`) calls a dynamic tool. Each thread keeps the history its model would see.
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
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::sleep,
    time::{Duration, Instant},
};

use codex_openai_proxy::codex::{CodexUsage, ItemDetails};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use self::wire::{
    notification, now_ms, now_secs, DynamicToolSpec, InitializeParams, Injected, ThreadInfo,
    ThreadInjectItemsParams, ThreadStartParams, ThreadUnsubscribeParams, TurnInterruptParams,
    TurnObject, TurnStartParams, TurnStatus, UserInput, OVERLOADED,
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
    /// `initialize`'s `capabilities.experimentalApi`: this connection may use the experimental
    /// API.
    experimental_api: AtomicBool,
    threads: Mutex<HashMap<String, Arc<Thread>>>,
    /// Running turns by id: set to stop them.
    interrupts: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Turns started but not yet playing: their turn/start is being answered.
    started: Mutex<Vec<(Player, Play)>>,
    /// Notifications that follow the response being answered (`thread/started`, raw events of
    /// injected items).
    after: Mutex<Vec<Value>>,
    rpc: Arc<Rpc>,
}

/// A thread: what `thread/start` set up, and the history its model sees.
struct Thread {
    info: ThreadInfo,
    tools: Vec<DynamicToolSpec>,
    /// `developerInstructions`.
    developer: Option<String>,
    /// `experimentalRawEvents`.
    raw_events: bool,
    /// Responses API items, oldest first: the injected ones (but `system` messages and unknown
    /// kinds, which the model never sees), each turn's input, the model's answers and calls, the
    /// calls' results, and codex's note of an interrupted turn.
    history: Mutex<Vec<Value>>,
    /// The thread's usage so far: `thread/tokenUsage/updated`'s `total`.
    usage: Mutex<CodexUsage>,
}

impl Thread {
    /// The text of the newest user message of the history (codex's own note of an interrupted
    /// turn aside): the prompt of a turn with no input of its own.
    fn last_user_text(&self) -> String {
        self.history
            .lock()
            .expect("history")
            .iter()
            .rev()
            .filter(|item| item["type"] == "message" && item["role"] == "user")
            .map(|item| wire::text_of(&item["content"]))
            .find(|text| text != wire::TURN_ABORTED)
            .unwrap_or_default()
    }

    /// The function the model calls: the first dynamic tool's.
    fn callable(&self) -> Option<(Option<String>, String, Value)> {
        self.tools.iter().find_map(|tool| {
            tool.callable().map(|(namespace, name, schema)| {
                (
                    namespace.map(str::to_owned),
                    name.to_owned(),
                    schema.clone(),
                )
            })
        })
    }
}

/// Requests fake-codex sends the client (`item/tool/call`), and where their responses go.
#[derive(Default)]
struct Rpc {
    /// Request ids count from 0 on each connection, as codex's do.
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::Sender<(u64, RpcReply)>>>,
    /// The ids of `turn/interrupt` requests by turn: answered once the turn is aborted.
    owed: Mutex<HashMap<String, Vec<Value>>>,
}

/// A client's response: its `result`, or its `error`.
type RpcReply = Result<Value, Value>;

impl Rpc {
    /// Sends a request; its response goes to `reply`.
    fn request(&self, method: &str, params: Value, reply: &mpsc::Sender<(u64, RpcReply)>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.waiting
            .lock()
            .expect("waiting")
            .insert(id, reply.clone());
        send(&json!({"method": method, "id": id, "params": params}));
        id
    }

    /// A message from the client without a `method`: the response to one of our requests.
    /// A response to a request nobody waits on any more (its turn was interrupted) is dropped.
    fn deliver(&self, message: &Value) {
        let Some(id) = message["id"].as_u64() else {
            return;
        };
        let reply = match message.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(message["result"].clone()),
        };
        if let Some(waiter) = self.waiting.lock().expect("waiting").remove(&id) {
            let _ = waiter.send((id, reply));
        }
    }

    /// Answers the `turn/interrupt` requests of `turn_id`.
    fn answer_interrupts(&self, turn_id: &str) {
        let owed = self.owed.lock().expect("owed").remove(turn_id);
        for id in owed.into_iter().flatten() {
            send(&json!({"id": id, "result": {}}));
        }
    }

    fn forget(&self, ids: impl IntoIterator<Item = u64>) {
        let mut waiting = self.waiting.lock().expect("waiting");
        for id in ids {
            waiting.remove(&id);
        }
    }
}

/// What a turn plays: a scenario's script, or the native tool flow (`[[tool_flow:N]]` on a
/// thread with dynamic tools: N calls in one model response; `[[tool_flow:N:early]]` sends each
/// call's request before the response is over).
enum Play {
    Script(Script),
    ToolFlow { calls: usize, early: bool },
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
        experimental_api: AtomicBool::new(false),
        threads: Mutex::default(),
        interrupts: Mutex::default(),
        started: Mutex::default(),
        after: Mutex::default(),
        rpc: Arc::default(),
    });
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(method) = message["method"].as_str() else {
            // The client's response to a request of ours: the waiting turn takes it.
            if message.get("result").is_some() || message.get("error").is_some() {
                server.rpc.deliver(&message);
            }
            continue;
        };
        let Some(id) = message.get("id").cloned() else {
            continue; // a notification (`initialized`)
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let initialized = server.client.lock().expect("client").is_some();
        let reply = match method {
            "turn/interrupt" if initialized => server.interrupt(&id, params),
            _ => Some(server.handle(method, params)),
        };
        match reply {
            Some(Ok(result)) => send(&json!({"id": id, "result": result})),
            Some(Err((code, text))) => {
                send(&json!({"id": id, "error": {"code": code, "message": text}}))
            }
            None => {} // answered when the turn is aborted
        }
        for after in std::mem::take(&mut *server.after.lock().expect("after")) {
            send(&after);
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
            let experimental = params.capabilities.is_some_and(|c| c.experimental_api);
            self.experimental_api.store(experimental, Ordering::SeqCst);
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
                let experimental = self.experimental_api.load(Ordering::SeqCst);
                let needs = |field: &str| {
                    (
                        -32600,
                        format!("thread/start.{field} requires experimentalApi capability"),
                    )
                };
                if params.dynamic_tools.is_some() && !experimental {
                    return Err(needs("dynamicTools"));
                }
                if params.experimental_raw_events && !experimental {
                    return Err(needs("experimentalRawEvents"));
                }
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
                let result = info.start_result();
                // After the answer, as the real codex sends it.
                self.after.lock().expect("after").push(notification(
                    "thread/started",
                    json!({"thread": info.thread()}),
                ));
                let thread = Thread {
                    tools: params.dynamic_tools.unwrap_or_default(),
                    developer: params.developer_instructions,
                    raw_events: params.experimental_raw_events,
                    history: Mutex::default(),
                    usage: Mutex::default(),
                    info,
                };
                self.threads
                    .lock()
                    .expect("threads")
                    .insert(thread.info.id.clone(), Arc::new(thread));
                Ok(result)
            }
            "thread/inject_items" => self.inject(parse(params)?),
            "turn/start" => self.start_turn(parse(params)?),
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

    /// `turn/interrupt`: a running turn stops, and the request is answered once it is aborted
    /// (after its calls are cancelled, before its `turn/completed`), as the real 0.171.0 answers;
    /// any other turn's interrupt at once.
    fn interrupt(&self, id: &Value, params: Value) -> Option<Reply> {
        let params: TurnInterruptParams = match parse(params) {
            Ok(params) => params,
            Err(err) => return Some(Err(err)),
        };
        let interrupts = self.interrupts.lock().expect("interrupts");
        let Some(flag) = interrupts.get(&params.turn_id) else {
            return Some(Ok(json!({})));
        };
        self.rpc
            .owed
            .lock()
            .expect("owed")
            .entry(params.turn_id.clone())
            .or_default()
            .push(id.clone());
        flag.store(true, Ordering::SeqCst);
        None
    }

    /// A thread by id, or codex's refusal: an id that is no UUID, or no thread's.
    fn thread(&self, id: &str) -> Result<Arc<Thread>, (i64, String)> {
        let uuid = wire::thread_id(id).map_err(|message| (-32600, message))?;
        self.threads
            .lock()
            .expect("threads")
            .get(&uuid)
            .cloned()
            .ok_or_else(|| (-32600, format!("thread not found: {uuid}")))
    }

    /// `thread/inject_items`: the items join the thread's history, as codex 0.171.0 takes them
    /// (all or none; `system` messages and unknown kinds dropped silently). With raw events on,
    /// each item's `rawResponseItem/completed` follows the answer, on no turn of the thread's
    /// (`auto-compact-0`), as on the real codex. (codex's own developer and environment items,
    /// which it announces there first on a thread's first injection, are left out: see
    /// `Player::play`.)
    fn inject(&self, params: ThreadInjectItemsParams) -> Reply {
        let thread = self.thread(&params.thread_id)?;
        let injected = params
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| wire::response_item(index, item))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| (-32600, message))?;
        if params.items.iter().any(wire::has_remote_image) {
            return Err((-32600, wire::REMOTE_IMAGE.into()));
        }
        if injected.is_empty() {
            return Err((-32600, wire::NO_ITEMS.into()));
        }
        let mut history = thread.history.lock().expect("history");
        for item in injected {
            let (raw, kept) = match item {
                Injected::Kept(item) => (wire::raw_injected(&item), Some(item)),
                Injected::System(item) => (wire::raw_injected(&item), None),
                Injected::Unknown => (json!({"type": "other"}), None),
            };
            if thread.raw_events {
                self.after.lock().expect("after").push(notification(
                    "rawResponseItem/completed",
                    json!({"threadId": thread.info.id, "turnId": wire::INJECTED_TURN_ID, "item": raw}),
                ));
            }
            history.extend(kept);
        }
        Ok(json!({}))
    }

    fn start_turn(self: &Arc<Self>, params: TurnStartParams) -> Reply {
        let thread = self.thread(&params.thread_id)?;
        let mut texts = Vec::new();
        let mut images = Vec::new();
        // The input as the model gets it, a user message of the history.
        let mut parts = Vec::new();
        for input in &params.input {
            match input {
                UserInput::Text { text, .. } => {
                    texts.push(text.clone());
                    parts.push(json!({"type": "input_text", "text": text}));
                }
                UserInput::LocalImage { path, .. } => {
                    images.push(path.clone());
                    parts.push(json!({"type": "input_image", "image_url": path}));
                }
                UserInput::Image { url, file_id, .. } => parts.push(
                    json!({"type": "input_image", "image_url": url.as_ref().or(file_id.as_ref())}),
                ),
            }
        }
        // A turn with no input of its own continues the history: its newest user message is
        // the prompt the scenario is read from.
        let prompt = if params.input.is_empty() {
            thread.last_user_text()
        } else {
            texts.concat()
        };
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
            model: Some(thread.info.model.clone()),
            sandbox: Some(thread.info.sandbox.as_arg().to_owned()),
            cd: Some(thread.info.cwd.clone()),
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
        let play = match scenario::marker(&prompt) {
            Some(("threads", _)) => {
                let loaded = self.threads.lock().expect("threads").len();
                Play::Script(scenario::answer(&format!("THREADS: {loaded}")))
            }
            Some(("items", _)) => {
                Play::Script(scenario::answer(&items_report(&thread, &params.input)))
            }
            Some(("tool_flow", arg)) if thread.callable().is_some() => {
                let (calls, timing) =
                    arg.map_or(("", ""), |a| a.split_once(':').unwrap_or((a, "")));
                Play::ToolFlow {
                    calls: calls.parse().unwrap_or(1).clamp(1, MAX_PARALLEL_CALLS),
                    early: timing == "early",
                }
            }
            _ => Play::Script(scenario::script_for(&prompt, &cli)),
        };
        if let Some(path) = schema_file {
            let _ = std::fs::remove_file(path);
        }
        if !params.input.is_empty() {
            thread
                .history
                .lock()
                .expect("history")
                .push(wire::input_message("user", parts));
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
            thread_id: thread.info.id.clone(),
            turn_id,
            cwd: thread.info.cwd.clone(),
            user_text: (!params.input.is_empty()).then(|| texts.concat()),
            texts,
            thread,
            rpc: self.rpc.clone(),
            interrupted,
            started: Instant::now(),
            started_at: now_secs(),
            last_message: Mutex::default(),
            plan,
        };
        self.started.lock().expect("started").push((player, play));
        Ok(json!({"turn": turn}))
    }

    /// Plays each started turn on a thread of its own.
    fn play_started_turns(self: &Arc<Self>) {
        for (player, play) in self.started.lock().expect("started").drain(..) {
            let server = self.clone();
            std::thread::spawn(move || {
                player.play(&play);
                server
                    .interrupts
                    .lock()
                    .expect("interrupts")
                    .remove(&player.turn_id);
                // An interrupt that came as the turn was ending anyway.
                server.rpc.answer_interrupts(&player.turn_id);
            });
        }
    }
}

/// The most calls `[[tool_flow:N]]` makes in one model response.
const MAX_PARALLEL_CALLS: usize = 64;

/// `[[items]]`'s answer: what the model of this turn would get, as one JSON object.
fn items_report(thread: &Thread, input: &[UserInput]) -> String {
    let items: Vec<Value> = thread
        .history
        .lock()
        .expect("history")
        .iter()
        .map(reduced_item)
        .collect();
    let input: Vec<Value> = input
        .iter()
        .map(|input| match input {
            UserInput::Text { text, .. } => json!({"type": "text", "text": text}),
            UserInput::LocalImage { .. } => json!({"type": "localImage"}),
            UserInput::Image { .. } => json!({"type": "image"}),
        })
        .collect();
    let tools: Vec<&str> = thread.tools.iter().map(DynamicToolSpec::name).collect();
    json!({"developer": thread.developer, "tools": tools, "items": items, "input": input})
        .to_string()
}

/// A history item for `[[items]]`: `{type, role?, text?, images?, call_id?, name?, arguments?,
/// output?}`, texts joined, images counted, a tool output as its text.
fn reduced_item(item: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("type".into(), item["type"].clone());
    match item["type"].as_str() {
        Some("message") => {
            out.insert("role".into(), item["role"].clone());
            out.insert("text".into(), json!(wire::text_of(&item["content"])));
            let images = item["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|part| part["type"] == "input_image")
                .count();
            if images > 0 {
                out.insert("images".into(), json!(images));
            }
        }
        Some("function_call") => {
            for key in ["call_id", "name", "arguments"] {
                out.insert(key.into(), item[key].clone());
            }
        }
        Some("function_call_output") => {
            out.insert("call_id".into(), item["call_id"].clone());
            out.insert("output".into(), json!(wire::text_of(&item["output"])));
        }
        _ => {}
    }
    Value::Object(out)
}

struct Player {
    thread: Arc<Thread>,
    rpc: Arc<Rpc>,
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
    /// The text of the turn's input, for its `userMessage` item: none for an empty input,
    /// which has no such item.
    user_text: Option<String>,
    /// The input's text parts.
    texts: Vec<String>,
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

    /// A `rawResponseItem/completed`, when the thread asked for raw events.
    fn raw(&self, item: Value) {
        if self.thread.raw_events {
            notify(
                "rawResponseItem/completed",
                self.with_ids(json!({"item": item})),
            );
        }
    }

    /// The `rawResponse/completed` that ends a model response, when the thread asked for raw
    /// events.
    fn raw_response(&self, usage: &CodexUsage) {
        if self.thread.raw_events {
            let (usage, metadata) = wire::raw_usage(usage);
            notify(
                "rawResponse/completed",
                self.with_ids(json!({"responseId": wire::model_id("resp"), "usage": usage, "usageMetadata": metadata})),
            );
        }
    }

    fn remember(&self, item: Value) {
        self.thread.history.lock().expect("history").push(item);
    }

    /// Raw events at a turn's start are the turn's input alone: codex also announces its own
    /// developer and environment messages there (on a thread's first turn, or its first
    /// injection), some 6 KB of prompt that says nothing about the client's conversation, so
    /// fake-codex leaves them out. A client must skip raw `message` items it did not send anyway.
    fn play(&self, play: &Play) {
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
        if let Some(text) = &self.user_text {
            let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
            self.raw(wire::raw_user_input(
                &format!("msg_{}", uuid::Uuid::now_v7()),
                &texts,
                &self.turn_id,
            ));
            let user_id = uuid::Uuid::now_v7().to_string();
            let at = now_ms();
            self.item_started(wire::user_message(&user_id, text, at, None), at);
            self.completed(wire::user_message(&user_id, text, at, Some(now_ms())));
        }
        let mut child = None;
        let played = match play {
            Play::Script(script) => self.steps(script, &mut child),
            Play::ToolFlow { calls, early } => self.tool_flow(*calls, *early),
        };
        if played.is_err() {
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
                    self.raw(wire::raw_model_reasoning(&item_id, &parts, &self.turn_id));
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
                self.raw_response(usage);
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
        let text = pieces.concat();
        let item = wire::agent_message(item_id, &text, at, Some(now_ms()));
        *self.last_message.lock().expect("last message") = Some(item.clone());
        self.completed(item);
        self.raw(wire::raw_model_message(item_id, &text, &self.turn_id));
        self.remember(wire::output_message(&text));
        Ok(())
    }

    /// The native tool flow: while the history does not end in tool results, the model calls
    /// the thread's first dynamic tool `calls` times in one response, and each call is a
    /// request to the client; then it answers with the results.
    fn tool_flow(&self, calls: usize, early: bool) -> Result<(), Stopped> {
        let Some((namespace, tool, schema)) = self.thread.callable() else {
            return Ok(());
        };
        loop {
            self.pause(Duration::ZERO)?;
            let outputs = self.trailing_outputs();
            if !outputs.is_empty() {
                let text = format!("The tool says: {}", outputs.join("; "));
                self.message(
                    &wire::model_id("msg"),
                    &scenario::pieces(&text),
                    Duration::ZERO,
                )?;
                self.raw_response(&scenario::TEXT_USAGE);
                self.usage(&scenario::TEXT_USAGE);
                self.end(TurnStatus::Completed, Value::Null);
                return Ok(());
            }
            self.call_tool(namespace.as_deref(), &tool, &schema, calls, early)?;
        }
    }

    /// The texts of the tool results the history ends with, oldest first.
    fn trailing_outputs(&self) -> Vec<String> {
        let history = self.thread.history.lock().expect("history");
        let mut outputs: Vec<String> = history
            .iter()
            .rev()
            .take_while(|item| item["type"] == "function_call_output")
            .map(|item| wire::text_of(&item["output"]))
            .collect();
        outputs.reverse();
        outputs
    }

    /// One model response of `count` calls of `tool`, as the real 0.171.0 plays it: the calls'
    /// raw items and the response's end (raw events), then for each call a `dynamicToolCall`
    /// item and an `item/tool/call` request, all outstanding at once; each item completes as
    /// its response comes; then the results' raw items and the response's usage. An interrupt
    /// abandons the calls still waiting (a late response to them is dropped): they fail with no
    /// content, and the model would get `dynamic tool call was cancelled ...`.
    ///
    /// `early`: each call's item and request right after its raw item, the response's end after
    /// them all. The real codex starts a call as soon as the model's stream holds it, so when
    /// the stream is slow (or the calls many) it plays this way, and the requests of one
    /// response come in any order (seen on 0.171.0 against a mock model sending three calls at
    /// once: `raw fc ×3, call 3, call 1, call 2, rawResponse/completed`; and with a pause
    /// between two: `raw fc 1, call 1, raw fc 2, rawResponse/completed, call 2`).
    fn call_tool(
        &self,
        namespace: Option<&str>,
        tool: &str,
        schema: &Value,
        count: usize,
        early: bool,
    ) -> Result<(), Stopped> {
        let calls: Vec<(String, Value)> = (0..count)
            .map(|n| (wire::model_id("call"), scenario::tool_arguments(schema, n)))
            .collect();
        let (replies, answers) = mpsc::channel();
        let mut waiting = HashMap::new();
        let mut started = Vec::new();
        let announce = |call_id: &str, arguments: &Value| {
            let arguments = arguments.to_string();
            self.raw(wire::raw_model_call(
                &wire::model_id("fc"),
                call_id,
                tool,
                &arguments,
                &self.turn_id,
            ));
            let mut call = wire::function_call(call_id, tool, &arguments);
            if let Some(namespace) = namespace {
                call["namespace"] = json!(namespace);
            }
            self.remember(call);
        };
        let mut ask = |n: usize, call_id: &str, arguments: &Value| {
            let at = now_ms();
            started.push(at);
            self.item_started(
                wire::dynamic_tool_call(call_id, namespace, tool, arguments, at, None),
                at,
            );
            let id = self.rpc.request(
                "item/tool/call",
                self.with_ids(json!({"callId": call_id, "namespace": namespace, "tool": tool, "arguments": arguments})),
                &replies,
            );
            waiting.insert(id, n);
        };
        if early {
            for (n, (call_id, arguments)) in calls.iter().enumerate() {
                announce(call_id, arguments);
                ask(n, call_id, arguments);
            }
            self.raw_response(&scenario::TOOL_CALL_USAGE);
        } else {
            for (call_id, arguments) in &calls {
                announce(call_id, arguments);
            }
            self.raw_response(&scenario::TOOL_CALL_USAGE);
            for (n, (call_id, arguments)) in calls.iter().enumerate() {
                ask(n, call_id, arguments);
            }
        }
        let complete = |n: usize, content_items: Value, success: bool| {
            let (call_id, arguments) = &calls[n];
            let now = now_ms();
            self.completed(wire::dynamic_tool_call(
                call_id,
                namespace,
                tool,
                arguments,
                started[n],
                Some((content_items, success, now.saturating_sub(started[n]), now)),
            ));
        };
        let mut outputs: Vec<Value> = vec![Value::Null; count];
        let mut stopped = false;
        while !waiting.is_empty() {
            if self.interrupted.load(Ordering::SeqCst) {
                self.rpc.forget(waiting.keys().copied());
                let mut abandoned: Vec<usize> = waiting.drain().map(|(_, n)| n).collect();
                abandoned.sort_unstable();
                for n in abandoned {
                    complete(n, json!([]), false);
                    outputs[n] = json!(wire::CALL_CANCELLED);
                }
                stopped = true;
                break;
            }
            let Ok((id, reply)) = answers.recv_timeout(Duration::from_millis(20)) else {
                continue;
            };
            let Some(n) = waiting.remove(&id) else {
                continue;
            };
            let failed = |text: &str| {
                (
                    json!([{"type": "inputText", "text": text}]),
                    false,
                    json!(text),
                )
            };
            let (content_items, success, output) = match reply {
                Err(_) => failed(wire::CALL_FAILED),
                Ok(result) => {
                    match serde_json::from_value::<wire::DynamicToolCallResponse>(result.clone()) {
                        Ok(response) => (
                            result["contentItems"].clone(),
                            response.success,
                            response.output(),
                        ),
                        Err(_) => failed(wire::CALL_INVALID),
                    }
                }
            };
            complete(n, content_items, success);
            outputs[n] = output;
        }
        for ((call_id, _), output) in calls.iter().zip(outputs) {
            self.raw(wire::raw_call_output(call_id, &output, &self.turn_id));
            self.remember(wire::function_call_output(call_id, output));
        }
        self.usage(&scenario::TOOL_CALL_USAGE);
        if stopped {
            Err(Stopped)
        } else {
            Ok(())
        }
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

    /// The usage of one model request (`last`) and the thread's so far (`total`), and the rate
    /// limits codex reports after each.
    fn usage(&self, usage: &CodexUsage) {
        let total = {
            let mut total = self.thread.usage.lock().expect("usage");
            total.input_tokens += usage.input_tokens;
            total.cached_input_tokens += usage.cached_input_tokens;
            total.cache_write_input_tokens += usage.cache_write_input_tokens;
            total.output_tokens += usage.output_tokens;
            total.reasoning_output_tokens += usage.reasoning_output_tokens;
            *total
        };
        notify(
            "thread/tokenUsage/updated",
            self.with_ids(json!({"tokenUsage": {
                "total": wire::usage_breakdown(&total),
                "last": wire::usage_breakdown(usage),
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
        if status == TurnStatus::Interrupted {
            // codex tells the model of the next turn that this one was cut short.
            self.raw(wire::raw_turn_aborted(&self.turn_id));
            self.remember(wire::input_message(
                "user",
                vec![json!({"type": "input_text", "text": wire::TURN_ABORTED})],
            ));
            self.rpc.answer_interrupts(&self.turn_id);
        }
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
