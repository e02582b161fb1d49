//! The `app-server` backend: every turn runs on one long-lived `codex app-server`, which streams
//! the answer token by token and saves codex's start-up on every request.
//!
//! A supervisor task keeps the process running: it starts it, performs the `initialize`
//! handshake, and when the process dies, fails the runs on it at once (their streams get
//! `Exited`), reports the failure on `/health`, and starts it again after a backoff.

mod connection;
mod items;
mod kept;
pub mod protocol;
mod turn;

use std::{
    ffi::OsString,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{future::BoxFuture, FutureExt};
use tokio::sync::{mpsc, watch};

use self::{
    connection::{CallError, Connection, OnLimits},
    items::thread_input,
    kept::{Claim, KeptThreads},
    protocol::{
        AccountRateLimitsRead, AccountRead, AccountReadParams, Capabilities, ClientInfo,
        Initialize, InitializeParams, ModelList, ModelListParams, ThreadInjectItems,
        ThreadInjectItemsParams, ThreadStart, ThreadStartParams, TurnStart, TurnStartParams,
        UserInput, OVERLOADED,
    },
    turn::{Offered, ThreadLease},
};
use super::{
    exec::{chat_overrides, effective_sandbox, Attachments, WorkDir},
    launch::{codex_env, resolve_program, VersionProbe},
    Backend, CodexModel, CodexStatus, RunStream, ThreadUse, Turn, TurnInput,
};
use crate::conversation::Part;
use crate::{
    codex::plan_limits::{PlanLimits, SharedPlanLimits},
    config::{AppServerInput, Config},
    error::{FailureKind, ProxyError},
    metrics::AppServerMetrics,
};

pub use kept::MAX_KEPT as MAX_KEPT_THREADS;

/// Notifications the reader routes to a run; all others are skipped unparsed.
pub const ROUTED_METHODS: &[&str] = protocol::TurnNotification::METHODS;

/// How long the handshake and each set-up request may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The restart delay after a process that served turns died: such a crash comes from a turn,
/// so the next process is started at once, and requests wait for it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A process that could not start, or died before serving a turn, is retried with a delay that
/// doubles each time up to this, and requests fail at once meanwhile.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a request waits for a process that is starting or restarting.
const START_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone)]
enum State {
    Starting,
    Ready(Arc<Connection>),
    Down {
        reason: String,
        retry_at: Instant,
        /// The process could not start (or died before serving a turn): requests fail at once
        /// rather than wait for a restart that is likely to fail again.
        start_failure: bool,
    },
}

/// Everything a process and its threads are started with.
#[derive(Debug, Clone)]
struct Settings {
    codex_path: PathBuf,
    codex_home: Option<PathBuf>,
    /// `-c` overrides for the whole process: `CODEX_CONFIG`, then chat mode's switches.
    overrides: Vec<String>,
    /// The most open sandbox a turn gets: always read-only in chat mode.
    sandbox: crate::config::Sandbox,
    workdir: Option<PathBuf>,
    /// `APP_SERVER_INPUT`: the conversation as items, or as the exec backend's prompt.
    input: AppServerInput,
}

impl Settings {
    fn from_config(config: &Config) -> Self {
        Settings {
            codex_path: config.codex_path.clone(),
            codex_home: config.codex_home.clone(),
            overrides: config
                .codex_config
                .iter()
                .cloned()
                .chain(
                    chat_overrides(config.codex_tools)
                        .iter()
                        .map(|s| (*s).to_owned()),
                )
                .collect(),
            sandbox: effective_sandbox(config.codex_tools, config.codex_sandbox),
            workdir: config.codex_workdir.clone(),
            input: config.app_server_input,
        }
    }

    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["app-server".into()];
        for raw in &self.overrides {
            args.push("-c".into());
            args.push(raw.into());
        }
        args.extend(["--listen".into(), "stdio://".into()]);
        args
    }
}

pub struct AppServerBackend {
    settings: Settings,
    /// The plan's limits as the process last reported them; kept across restarts.
    limits: SharedPlanLimits,
    /// The models codex offers, refreshed in the background.
    models: SharedModels,
    version: VersionProbe,
    state: watch::Receiver<State>,
    /// Threads kept past their turn ([`ThreadUse::Keep`]).
    kept: Arc<KeptThreads>,
    /// Dropping the backend stops the supervisor, which kills the process.
    _stop: watch::Sender<()>,
}

impl AppServerBackend {
    /// Starts the supervisor; needs a running tokio runtime.
    pub fn new(config: &Config, metrics: AppServerMetrics, login: SharedLogin) -> Self {
        let settings = Settings::from_config(config);
        let login_fix = login_command(config);
        let (state_tx, state) = watch::channel(State::Starting);
        let (stop, stopped) = watch::channel(());
        let limits = SharedPlanLimits::default();
        let on_limits: OnLimits = {
            let (limits, metrics) = (limits.clone(), metrics.clone());
            Arc::new(move |update| {
                let mut limits = limits.lock().expect("limits lock");
                limits.merge(update);
                metrics.plan_limits(&limits);
            })
        };
        let models = SharedModels::default();
        tokio::spawn(supervise(
            settings.clone(),
            state_tx,
            stopped,
            metrics,
            on_limits,
            models.clone(),
            (login, login_fix),
        ));
        AppServerBackend {
            limits,
            models,
            version: VersionProbe::new(&settings.codex_path, settings.codex_home.as_deref()),
            settings,
            state,
            kept: Arc::default(),
            _stop: stop,
        }
    }

    /// The running process, waiting for one that is starting or about to restart.
    async fn connection(&self) -> Result<Arc<Connection>, ProxyError> {
        let mut state = self.state.clone();
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            let current = state.borrow_and_update().clone();
            match current {
                State::Ready(connection) if !connection.has_exited() => return Ok(connection),
                State::Down {
                    reason,
                    retry_at,
                    start_failure: true,
                } => return Err(unavailable(&reason, retry_at)),
                _ => {}
            }
            if tokio::time::timeout_at(deadline, state.changed())
                .await
                .is_err()
            {
                return Err(ProxyError::CodexUnavailable(format!(
                    "codex app-server did not become ready within {} s",
                    START_WAIT.as_secs()
                )));
            }
        }
    }

    async fn start(&self, turn: Turn) -> Result<RunStream, ProxyError> {
        let settings = self.settings.clone();
        // From `thread/start` on, the set-up runs in a task of its own, to the end: a request
        // dropped half-way would otherwise leave a thread loaded that nothing unsubscribes.
        // Dropped after it, its stream (the lease) ends the thread, or keeps it.
        let setup = match turn.thread.clone() {
            ThreadUse::Once => {
                tokio::spawn(start_turn(self.connection().await?, settings, turn, None))
            }
            ThreadUse::Keep(key) => {
                let connection = self.connection().await?;
                self.kept.reserve(&key)?;
                let claim = Claim::reserved(self.kept.clone(), key);
                tokio::spawn(start_turn(connection, settings, turn, Some(claim)))
            }
            ThreadUse::Continue(key) => {
                let kept = self.kept.take(&key)?;
                let claim = Claim::taken(self.kept.clone(), key, kept);
                tokio::spawn(continue_turn(turn, claim))
            }
        };
        setup.await.unwrap_or_else(|err| {
            Err(ProxyError::codex_failed(format!(
                "the turn's set-up failed: {err}"
            )))
        })
    }
}

/// Starts `turn` on a new thread of `connection`: the conversation's earlier turns injected as
/// items, the client's tools offered as dynamic tools, the last user message as the input.
/// With a `claim`, the thread is kept once the turn ends.
async fn start_turn(
    connection: Arc<Connection>,
    settings: Settings,
    turn: Turn,
    claim: Option<Claim>,
) -> Result<RunStream, ProxyError> {
    let thread_input = match turn.input {
        TurnInput::Items {
            conversation,
            tools,
            instructions,
        } if settings.input == AppServerInput::Items => {
            let input = thread_input(conversation, tools.as_deref(), instructions);
            (input, tools)
        }
        // The exec backend's prompt, as one user message.
        input => {
            let (text, images) = input.into_prompt();
            let mut input = vec![Part::Text(text)];
            input.extend(images.into_iter().map(Part::Image));
            (
                items::ThreadInput {
                    developer_instructions: None,
                    tools: Vec::new(),
                    history: Vec::new(),
                    input,
                    known_calls: Default::default(),
                    aliases: Default::default(),
                },
                None,
            )
        }
    };
    let (thread_input, tools) = thread_input;
    let files = attachments(&thread_input.input)?;
    let workdir = WorkDir::new(turn.workdir.as_ref().or(settings.workdir.as_ref()))?;
    let offered_tools = !thread_input.tools.is_empty();
    let params = ThreadStartParams {
        model: turn.model.clone(),
        cwd: workdir.path().display().to_string(),
        approval_policy: "never".into(),
        sandbox: turn
            .sandbox
            .map_or(settings.sandbox, |asked| asked.min(settings.sandbox))
            .as_arg()
            .into(),
        ephemeral: true,
        developer_instructions: thread_input.developer_instructions,
        dynamic_tools: thread_input.tools,
        experimental_raw_events: offered_tools,
    };
    let thread = match timed(connection.request::<ThreadStart>(&params)).await {
        // What codex refuses in a thread/start is what the request brought: its tools.
        Err(ProxyError::CodexFailed { message, .. })
            if offered_tools && message.contains("-32600") =>
        {
            return Err(ProxyError::invalid(
                format!("codex refused the request's tools: {message}"),
                "tools",
            ))
        }
        other => other?,
    };
    // Marked before the turn is sent: a turn that crashes the process must find it marked.
    connection.served_a_turn();
    let (tx, rx) = mpsc::unbounded_channel();
    connection.route(&thread.thread.id, tx);
    let mut lease = ThreadLease {
        connection: connection.clone(),
        thread_id: thread.thread.id.clone(),
        turn_id: None,
        finished: false,
        _files: files,
        workdir: Some(workdir),
        keep: claim.map(Claim::into_keeping),
    };
    if !thread_input.history.is_empty() {
        timed(
            connection.request::<ThreadInjectItems>(&ThreadInjectItemsParams {
                thread_id: thread.thread.id.clone(),
                items: thread_input.history,
            }),
        )
        .await?;
    }
    let mut image_paths = lease._files.image_paths();
    let input = user_input(thread_input.input, &mut image_paths);
    drop(image_paths);
    let started = timed(connection.request::<TurnStart>(&TurnStartParams {
        thread_id: thread.thread.id,
        input,
        effort: turn.effort,
        output_schema: turn.output_schema,
    }))
    .await?;
    tracing::debug!(thread = %lease.thread_id, turn = %started.turn.id, "codex turn started on the app-server");
    lease.turn_id = Some(started.turn.id);
    let offered = Offered {
        tools: tools.filter(|_| offered_tools),
        known_calls: thread_input.known_calls,
        aliases: thread_input.aliases,
    };
    Ok(turn::events(lease, rx, offered))
}

/// Starts `turn` on the kept thread `claim` holds: its conversation is only the new message
/// (the thread has the rest), which becomes the turn's input.
async fn continue_turn(turn: Turn, mut claim: Claim) -> Result<RunStream, ProxyError> {
    let conversation = match turn.input {
        TurnInput::Items { conversation, .. } => conversation,
        input => {
            let (text, _) = input.into_prompt();
            crate::conversation::Conversation {
                items: vec![crate::conversation::Item::User {
                    parts: vec![Part::Text(text)],
                }],
            }
        }
    };
    let input = thread_input(conversation, None, Vec::new()).input;
    // Before the thread leaves the claim: a failure here hands it back untouched.
    let files = attachments(&input)?;
    let kept = claim.take_kept().expect("a continued thread was taken");
    let connection = kept.connection.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    connection.route(&kept.thread_id, tx);
    // From here the lease hands the thread back, whatever happens.
    let mut lease = ThreadLease {
        connection: connection.clone(),
        thread_id: kept.thread_id.clone(),
        turn_id: None,
        // Nothing to interrupt until the turn has started.
        finished: false,
        _files: files,
        workdir: Some(kept.workdir),
        keep: Some(claim.into_keeping()),
    };
    let mut image_paths = lease._files.image_paths();
    let input = user_input(input, &mut image_paths);
    drop(image_paths);
    connection.served_a_turn();
    let started = timed(connection.request::<TurnStart>(&TurnStartParams {
        thread_id: lease.thread_id.clone(),
        input,
        effort: turn.effort,
        output_schema: turn.output_schema,
    }))
    .await?;
    tracing::debug!(thread = %lease.thread_id, turn = %started.turn.id, "codex turn started on a kept thread");
    lease.turn_id = Some(started.turn.id);
    Ok(turn::events(
        lease,
        rx,
        Offered {
            tools: None,
            known_calls: Default::default(),
            aliases: Default::default(),
        },
    ))
}

/// The images of a turn's input, written to files `turn/start` can name.
fn attachments(input: &[Part]) -> Result<Attachments, ProxyError> {
    let images: Vec<_> = input
        .iter()
        .filter_map(|part| match part {
            Part::Image(image) => Some(image.clone()),
            Part::Text(_) => None,
        })
        .collect();
    Attachments::write(&images, None)
}

/// A turn's input parts as `turn/start` takes them: images by the path they were written to.
fn user_input<'a>(
    parts: Vec<Part>,
    image_paths: &mut impl Iterator<Item = &'a std::path::Path>,
) -> Vec<UserInput> {
    parts
        .into_iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(UserInput::Text {
                text,
                text_elements: Vec::new(),
            }),
            Part::Image(_) => image_paths.next().map(|path| UserInput::LocalImage {
                path: path.display().to_string(),
            }),
        })
        .collect()
}

impl Backend for AppServerBackend {
    fn run(&self, turn: Turn) -> BoxFuture<'_, Result<RunStream, ProxyError>> {
        self.start(turn).boxed()
    }

    fn takes_items(&self) -> bool {
        self.settings.input == AppServerInput::Items
    }

    fn keeps_threads(&self) -> bool {
        true
    }

    fn holds_thread(&self, key: &str) -> bool {
        self.kept.holds(key)
    }

    fn forget_thread(&self, key: &str) {
        self.kept.forget(key);
    }

    fn models(&self) -> Vec<CodexModel> {
        self.models.lock().expect("models lock").clone()
    }

    fn plan_limits(&self) -> Option<PlanLimits> {
        let limits = self.limits.lock().expect("limits lock").clone();
        limits.is_known().then_some(limits)
    }

    fn status(&self) -> BoxFuture<'_, CodexStatus> {
        async move {
            let current = self.state.borrow().clone();
            match current {
                State::Ready(connection) if connection.has_exited() => CodexStatus::Unavailable {
                    reason: "codex app-server exited; it is being restarted".into(),
                },
                State::Ready(_) => self.version.status().await,
                State::Starting => CodexStatus::Unavailable {
                    reason: "codex app-server is starting".into(),
                },
                State::Down {
                    reason, retry_at, ..
                } => CodexStatus::Unavailable {
                    reason: unavailable(&reason, retry_at).message(),
                },
            }
        }
        .boxed()
    }
}

fn unavailable(reason: &str, retry_at: Instant) -> ProxyError {
    let wait = retry_at.saturating_duration_since(Instant::now());
    ProxyError::CodexUnavailable(format!(
        "codex app-server is not running: {reason}. Restarting in {:.1} s.",
        wait.as_secs_f64()
    ))
}

/// A set-up request with [`CALL_TIMEOUT`], its failure as the client's error.
async fn timed<R>(
    call: impl std::future::Future<Output = Result<R, CallError>>,
) -> Result<R, ProxyError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(CallError::Rpc(error))) if error.code == OVERLOADED => {
            Err(ProxyError::CodexFailed {
                kind: FailureKind::RateLimited,
                message: format!("codex app-server is overloaded: {}", error.message),
                reset_in: None,
            })
        }
        Ok(Err(CallError::Closed)) => Err(ProxyError::CodexUnavailable(
            "codex app-server exited before it answered; it is being restarted. Retry in a moment."
                .into(),
        )),
        Ok(Err(err)) => Err(ProxyError::codex_failed(err.to_string())),
        Err(_) => Err(ProxyError::Timeout(format!(
            "codex app-server did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// One app-server of its own, asked one question at a time: what `doctor` checks. The process
/// is killed when the session is dropped.
pub struct Session {
    connection: Arc<Connection>,
}

/// Which login codex runs with, as `account/read` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    ChatGpt {
        plan: Option<String>,
    },
    ApiKey,
    /// Another kind codex names (a cloud provider's credentials).
    Other(String),
    /// None, and the configured provider needs one.
    Missing,
    /// None, and the configured provider needs none (a custom provider).
    NotNeeded,
}

impl Session {
    /// Starts codex's app-server with the server's settings and completes the handshake.
    pub async fn open(config: &Config) -> Result<Session, ProxyError> {
        let ignore: OnLimits = Arc::new(|_| {});
        let connection = launch(&Settings::from_config(config), ignore).await?;
        Ok(Session { connection })
    }

    pub async fn login(&self) -> Result<Login, ProxyError> {
        read_login(&self.connection).await
    }

    pub async fn models(&self) -> Result<Vec<CodexModel>, ProxyError> {
        fetch_models(&self.connection).await
    }

    /// The plan's limits; `None` when the login has none to read (an API key, no login).
    pub async fn plan_limits(&self) -> Result<Option<PlanLimits>, ProxyError> {
        read_plan_limits(&self.connection).await
    }
}

/// The plan's limits, read; `None` when the login has none (codex refuses the read without a
/// ChatGPT login).
async fn read_plan_limits(connection: &Connection) -> Result<Option<PlanLimits>, ProxyError> {
    let read = connection.request::<AccountRateLimitsRead>(&AccountReadParams {});
    match tokio::time::timeout(CALL_TIMEOUT, read).await {
        Ok(Ok(read)) => Ok(Some(read.rate_limits.into_limits()).filter(PlanLimits::is_known)),
        Ok(Err(CallError::Rpc(error))) if error.code == -32600 => Ok(None),
        Ok(Err(err)) => Err(ProxyError::codex_failed(err.to_string())),
        Err(_) => Err(ProxyError::Timeout(
            "account/rateLimits/read did not answer".into(),
        )),
    }
}

/// The login as found at start-up, for `/health`: `None` until known (or when codex could not
/// be asked).
pub type SharedLogin = Arc<std::sync::Mutex<Option<Login>>>;

/// Asks a short-lived app-server (the same binary either backend runs) which login codex runs
/// with: at start-up for the exec backend, which has no process to ask, and again while
/// `/health` finds none.
pub fn check_login(config: &Config, found: SharedLogin) {
    let config = config.clone();
    tokio::spawn(async move {
        let login = match Session::open(&config).await {
            Ok(session) => read_login(&session.connection).await,
            Err(err) => Err(err),
        };
        record_login(login, &found, &login_command(&config));
    });
}

/// The login a fresh process runs with and, for a ChatGPT login, the plan's limits, known
/// before its first turn.
async fn read_account(
    connection: Arc<Connection>,
    login: SharedLogin,
    login_fix: String,
    on_limits: OnLimits,
) {
    let found = read_login(&connection).await;
    if matches!(found, Ok(Login::ChatGpt { .. })) {
        if let Ok(Some(limits)) = read_plan_limits(&connection).await {
            on_limits(limits);
        }
    }
    record_login(found, &login, &login_fix);
}

/// Asks `connection` which login codex runs with.
async fn read_login(connection: &Connection) -> Result<Login, ProxyError> {
    let read = timed(connection.request::<AccountRead>(&AccountReadParams {})).await?;
    Ok(match read.account {
        None if read.requires_openai_auth => Login::Missing,
        None => Login::NotNeeded,
        Some(account) => match account.get("type").and_then(serde_json::Value::as_str) {
            Some("chatgpt") => Login::ChatGpt {
                plan: account
                    .get("planType")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            },
            Some("apiKey") => Login::ApiKey,
            other => Login::Other(other.unwrap_or("unknown").to_owned()),
        },
    })
}

/// Keeps what was found for `/health`, and says the one command that logs in when there is no
/// login (once per change).
fn record_login(login: Result<Login, ProxyError>, found: &SharedLogin, command: &str) {
    match login {
        Ok(login) => {
            let mut found = found.lock().expect("login lock");
            if login == Login::Missing && found.as_ref() != Some(&Login::Missing) {
                tracing::error!(
                    "codex is not logged in, so every request will fail: run `{command}` on this machine (or set CODEX_API_KEY)"
                );
            }
            tracing::debug!(?login, "codex login");
            *found = Some(login);
        }
        Err(err) => tracing::debug!(error = %err.message(), "could not ask codex for its login"),
    }
}

/// The command that logs codex in with the server's codex home.
pub fn login_command(config: &Config) -> String {
    let codex = config.codex_path.display();
    match &config.codex_home {
        Some(home) => format!("CODEX_HOME={} {codex} login", home.display()),
        None => format!("{codex} login"),
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.kill();
    }
}

/// The models codex offers, shared between the refresher and whoever lists them.
type SharedModels = Arc<std::sync::Mutex<Vec<CodexModel>>>;

/// How often codex's model list is fetched again: its catalogue changes with codex releases
/// and, for a ChatGPT login, with the backend's; `/v1/models` never waits for it.
const MODEL_REFRESH: Duration = Duration::from_secs(600);
/// Pages of `model/list` read at most: a catalogue is a page or two.
const MAX_MODEL_PAGES: usize = 20;

/// Fetches the model list now and then every [`MODEL_REFRESH`], for as long as the process
/// runs; a failed fetch keeps the last list.
async fn refresh_models(connection: Arc<Connection>, models: SharedModels) {
    loop {
        match fetch_models(&connection).await {
            Ok(fetched) => {
                tracing::debug!(count = fetched.len(), "codex models fetched");
                *models.lock().expect("models lock") = fetched;
            }
            Err(err) => tracing::warn!(error = %err.message(), "could not list codex's models"),
        }
        tokio::time::sleep(MODEL_REFRESH).await;
    }
}

async fn fetch_models(connection: &Connection) -> Result<Vec<CodexModel>, ProxyError> {
    let mut models = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_MODEL_PAGES {
        let page = timed(connection.request::<ModelList>(&ModelListParams { cursor })).await?;
        models.extend(page.data.into_iter().filter(|m| !m.hidden).map(|m| {
            CodexModel {
                id: m.id,
                efforts: m
                    .supported_reasoning_efforts
                    .into_iter()
                    .map(|e| e.reasoning_effort)
                    .collect(),
                is_default: m.is_default,
            }
        }));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(models)
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps one app-server running until `stop` is dropped.
async fn supervise(
    settings: Settings,
    state: watch::Sender<State>,
    mut stop: watch::Receiver<()>,
    metrics: AppServerMetrics,
    on_limits: OnLimits,
    models: SharedModels,
    (login, login_fix): (SharedLogin, String),
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        state.send_replace(State::Starting);
        let mut start_failure = true;
        let reason = match launch(&settings, on_limits.clone()).await {
            Ok(connection) => {
                tracing::info!(pid = connection.pid, "codex app-server ready");
                metrics.ready();
                state.send_replace(State::Ready(connection.clone()));
                // Asked once it serves, so that a slow answer never delays a request.
                let _account = AbortOnDrop(tokio::spawn(read_account(
                    connection.clone(),
                    login.clone(),
                    login_fix.clone(),
                    on_limits.clone(),
                )));
                let _refresher = AbortOnDrop(tokio::spawn(refresh_models(
                    connection.clone(),
                    models.clone(),
                )));
                tokio::select! {
                    report = connection.exited() => {
                        start_failure = !connection.has_served();
                        let status = match report.code {
                            Some(code) => format!("exit code {code}"),
                            None => "killed by a signal".to_owned(),
                        };
                        let stderr = report.stderr_tail.trim();
                        let stderr = stderr.lines().last().unwrap_or_default();
                        if stderr.is_empty() {
                            format!("it exited ({status})")
                        } else {
                            format!("it exited ({status}): {stderr}")
                        }
                    }
                    _ = stop.changed() => {
                        connection.kill();
                        return;
                    }
                }
            }
            Err(err) => err.message(),
        };
        if !start_failure {
            backoff = FIRST_BACKOFF;
        }
        let retry_at = Instant::now() + backoff;
        metrics.down();
        tracing::error!(%reason, retry_in_ms = backoff.as_millis() as u64, "codex app-server is down; restarting");
        state.send_replace(State::Down {
            reason,
            retry_at,
            start_failure,
        });
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        if start_failure {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Starts the process and completes the handshake.
async fn launch(settings: &Settings, on_limits: OnLimits) -> Result<Arc<Connection>, ProxyError> {
    let program = resolve_program(&settings.codex_path)?;
    let connection = Connection::spawn(
        &program,
        &settings.args(),
        codex_env(settings.codex_home.as_deref()),
        on_limits,
    )?;
    let params = InitializeParams {
        client_info: ClientInfo {
            name: "codex_openai_proxy".into(),
            title: Some("codex-openai-proxy".into()),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        capabilities: Capabilities {
            experimental_api: true,
        },
    };
    let handshake = connection.request::<Initialize>(&params);
    match tokio::time::timeout(CALL_TIMEOUT, handshake).await {
        Ok(Ok(response)) => {
            tracing::debug!(user_agent = %response.user_agent, "codex app-server initialized");
            connection.notify("initialized");
            Ok(connection)
        }
        Ok(Err(err)) => {
            connection.kill();
            let report = connection.exited().await;
            let stderr = report.stderr_tail.trim();
            Err(ProxyError::CodexUnavailable(format!(
                "codex app-server failed its handshake ({err}){}",
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {}", stderr.lines().last().unwrap_or_default())
                }
            )))
        }
        Err(_) => {
            connection.kill();
            Err(ProxyError::CodexUnavailable(format!(
                "codex app-server did not answer initialize within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        }
    }
}
