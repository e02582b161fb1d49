//! Configuration: one struct, read once from the environment (and `.env`), validated at start-up.
//!
//! The README table, `.env.example` and this struct describe the same variables; a bad value
//! stops start-up with a message that names the variable, rather than failing on a request later.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer};

use crate::codex::CodexModel;

pub use crate::translate::ReasoningOutput;
use tracing_subscriber::EnvFilter;

/// The model id every deployment lists; it runs codex with its own configured default model
/// (or `CODEX_MODEL` when set).
pub const DEFAULT_MODEL_ID: &str = "codex-local";

/// Whether codex may use its own tools (shell, web search, ...) when it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolsMode {
    /// The default: codex answers as a chat model. Its shell, web search, image viewer, goal and
    /// sub-agent tools are switched off and it runs in the read-only sandbox, so a client cannot
    /// make it read files on the server (its own login included).
    Chat,
    /// codex keeps its tools, in `CODEX_SANDBOX`. Whoever can call the API can then read what the
    /// codex process can read.
    Agent,
}

/// codex's `-s/--sandbox` modes, from the strictest to the most open (so `min` is the stricter
/// of two). Anything else is refused at start-up, not passed to codex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sandbox {
    ReadOnly,
    WorkspaceWrite,
    DangerFullAccess,
}

impl Sandbox {
    pub fn as_arg(self) -> &'static str {
        match self {
            Sandbox::ReadOnly => "read-only",
            Sandbox::WorkspaceWrite => "workspace-write",
            Sandbox::DangerFullAccess => "danger-full-access",
        }
    }
}

/// `CODEX_BACKEND`: how turns reach codex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// One `codex exec --json` process per request: nothing shared between requests.
    Exec,
    /// One long-lived `codex app-server` for every request: token streaming, no start-up cost,
    /// the conversation as items and the client's tools as function tools.
    #[default]
    AppServer,
}

/// `APP_SERVER_INPUT`: how the app-server backend hands codex the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppServerInput {
    /// Earlier turns as items of their own, the client's tools as function tools.
    #[default]
    Items,
    /// The exec backend's prompt as one user message, tools described in it.
    Prompt,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    #[serde(default, deserialize_with = "comma_list")]
    api_keys: Vec<String>,
    #[serde(default, deserialize_with = "comma_list")]
    cors_origins: Vec<String>,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: String,
    #[serde(default, deserialize_with = "non_empty")]
    codex_path: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_model: Option<String>,
    #[serde(default, deserialize_with = "comma_list")]
    codex_models: Vec<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_sandbox: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_config: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_tools: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_backend: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    app_server_input: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_workdir: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    reasoning_output: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    log_format: Option<String>,
    #[serde(default, deserialize_with = "comma_list")]
    effort_models: Vec<String>,
    #[serde(default, deserialize_with = "non_empty")]
    task_model: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    task_reasoning_effort: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_home: Option<String>,
    #[serde(default, deserialize_with = "comma_list")]
    codex_accounts: Vec<String>,
    #[serde(default, deserialize_with = "non_empty")]
    log_level: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    keepalive_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_concurrency: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    queue_timeout_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_timeout_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    codex_idle_timeout_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    shutdown_grace_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_body_bytes: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_prompt_tokens: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_images: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    responses_stored: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    responses_stored_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    mcp_threads: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    mcp_thread_idle_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    header_timeout_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    body_timeout_secs: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_connections: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    http2_max_streams: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_tool_schema_nodes: Option<String>,
    #[serde(default, deserialize_with = "non_empty")]
    max_tool_check_steps: Option<String>,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bearer keys a client must present; empty means the API is open.
    pub api_keys: Vec<ApiKey>,
    /// `CORS_ORIGINS`: the browser origins allowed to call the API (`*`: any); empty, CORS is
    /// off.
    pub cors_origins: Vec<String>,
    pub host: IpAddr,
    pub port: u16,
    /// The codex executable: a path, or a name looked up on `PATH`.
    pub codex_path: PathBuf,
    /// Passed to codex as `-m` for `codex-local`; unset means codex's own default.
    pub codex_model: Option<String>,
    /// Extra model ids listed by `/v1/models`; each is passed to codex as `-m <id>`.
    pub codex_models: Vec<String>,
    pub codex_sandbox: Sandbox,
    /// `CODEX_TOOLS`: `chat` (default) or `agent`.
    pub codex_tools: ToolsMode,
    /// `CODEX_BACKEND`: `app-server` (default) or `exec`.
    pub codex_backend: BackendKind,
    /// `APP_SERVER_INPUT`: `items` (default) or `prompt`.
    pub app_server_input: AppServerInput,
    /// The directory codex works in (`-C`); unset, each request gets a fresh empty one.
    pub codex_workdir: Option<PathBuf>,
    /// Where codex's reasoning summary goes.
    pub reasoning_output: ReasoningOutput,
    /// `LOG_FORMAT`: `text` (default) or `json`, one object per line.
    pub log_json: bool,
    /// `EFFORT_MODELS`: efforts listed as extra model ids, `codex-local-<effort>`.
    pub effort_models: EffortModels,
    /// `TASK_MODEL`: the codex model for OpenWebUI's background tasks (`### Task:` prompts).
    pub task_model: Option<String>,
    /// `TASK_REASONING_EFFORT`: the effort for those tasks.
    pub task_reasoning_effort: Option<String>,
    /// Extra `-c key=value` overrides for every codex run (`CODEX_CONFIG`, `;`-separated).
    pub codex_config: Vec<String>,
    /// The codex home (login, config) codex runs with; unset means codex's own default. Each
    /// account's backend runs with its own ([`Config::for_account`]).
    pub codex_home: Option<PathBuf>,
    /// `CODEX_ACCOUNTS`: the codex logins requests are spread over, in order; one, `default`
    /// with `CODEX_HOME`, when unset.
    pub accounts: Vec<AccountSpec>,
    /// A tracing filter directive (`info`, `debug`, `codex_openai_proxy=trace,info`, ...).
    pub log_level: String,
    /// How often an SSE comment is sent while codex is silent.
    pub keepalive: Duration,
    /// Limits on codex runs and requests.
    pub limits: Limits,
}

/// One entry of `API_KEYS`: a key, and the account its requests must use (`key@account`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    /// Index into [`Config::accounts`]; `None` lets the pool choose.
    pub account: Option<usize>,
}

/// One codex login: a name for logs, `/health` and `/metrics`, and its codex home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub name: String,
    /// `None` leaves codex its own default home (the single account without `CODEX_HOME`).
    pub home: Option<PathBuf>,
}

/// The account's name when `CODEX_ACCOUNTS` is unset.
pub const DEFAULT_ACCOUNT: &str = "default";

/// How much work the server takes on, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// codex processes running at once.
    pub max_concurrency: usize,
    /// How long a request waits for a free slot before a 429.
    pub queue_timeout: Duration,
    /// The longest a codex run may take in all.
    pub codex_timeout: Duration,
    /// The longest codex may stay silent between two events, and the longest a client may
    /// leave its reply unread before it counts as gone.
    pub codex_idle_timeout: Duration,
    /// How long running requests may finish after SIGTERM or SIGINT.
    pub shutdown_grace: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest prompt accepted, in o200k tokens, checked before codex starts.
    pub max_prompt_tokens: u64,
    /// Most images one request may attach.
    pub max_images: usize,
    /// Most Responses API responses kept for `previous_response_id` and retrieval.
    pub responses_stored: usize,
    /// How long a stored response is kept.
    pub responses_stored_age: Duration,
    /// Most threads the MCP `codex` tool keeps for `codex-reply` at once.
    pub mcp_threads: usize,
    /// How long an MCP thread is kept after its last use.
    pub mcp_thread_idle: Duration,
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Open connections at once; `None` derives the number from the process's fd limit.
    pub max_connections: Option<usize>,
    /// Concurrent HTTP/2 streams one connection may open.
    pub http2_max_streams: u32,
    /// The most schema nodes a tool's `parameters` may expand to (every `$ref` followed), so
    /// compiling and checking it stays cheap.
    pub max_tool_schema_nodes: usize,
    /// The most work one tool call's argument check may take: schema nodes times argument
    /// values. A call over it is reported as unchecked rather than checked for minutes.
    pub max_tool_check_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrency: 8,
            queue_timeout: Duration::from_secs(30),
            codex_timeout: Duration::from_secs(600),
            codex_idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            max_body_bytes: 20 * 1024 * 1024,
            max_prompt_tokens: 272_000,
            max_images: 64,
            responses_stored: 256,
            responses_stored_age: Duration::from_secs(3600),
            mcp_threads: 32,
            mcp_thread_idle: Duration::from_secs(1800),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_connections: None,
            http2_max_streams: 32,
            max_tool_schema_nodes: 10_000,
            max_tool_check_steps: 20_000_000,
        }
    }
}

/// A whole number of at least `min`, or the default when unset.
fn number(name: &str, value: Option<&str>, default: u64, min: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{name} must be a whole number of at least {min}, got {value:?}"
                ))
            }),
    }
}

/// `EFFORT_MODELS`: which `<model>-<effort>` ids are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffortModels {
    /// These efforts, for every model (those codex says a model takes, when it has said).
    Listed(Vec<String>),
    /// Every effort codex says each model takes (app-server only: exec cannot ask).
    All,
}

/// What a model id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    /// Passed as `-m`; `None` keeps codex's configured default.
    pub model: Option<String>,
    /// A reasoning effort the id carries (`codex-local-high`).
    pub effort: Option<String>,
}

/// The reasoning efforts codex's models take.
pub const REASONING_EFFORTS: &[&str] = &[
    "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra",
];

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

fn default_host() -> String {
    "0.0.0.0".into()
}

fn default_port() -> String {
    "8000".into()
}

/// An empty variable (`CODEX_MODEL=` in `.env`) means "unset", not "the empty string".
fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?.unwrap_or_default();
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `CODEX_ACCOUNTS` (`name=path,...`), or the one account `CODEX_HOME` names.
fn accounts(
    listed: Vec<String>,
    codex_home: Option<&str>,
) -> Result<Vec<AccountSpec>, ConfigError> {
    if listed.is_empty() {
        return Ok(vec![AccountSpec {
            name: DEFAULT_ACCOUNT.into(),
            home: codex_home.map(PathBuf::from),
        }]);
    }
    // CODEX_HOME, which images set for the single login, is then not used: each account
    // names its own home.
    let mut accounts: Vec<AccountSpec> = Vec::new();
    for entry in listed {
        let Some((name, home)) = entry.split_once('=').map(|(n, h)| (n.trim(), h.trim())) else {
            return Err(ConfigError(format!(
                "CODEX_ACCOUNTS entries are name=path (the account's codex home), got {entry:?}"
            )));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError(format!(
                "CODEX_ACCOUNTS: an account name is letters, digits, '-', '_' or '.', got {name:?}"
            )));
        }
        if accounts.iter().any(|a| a.name == name) {
            return Err(ConfigError(format!(
                "CODEX_ACCOUNTS names the account {name:?} twice"
            )));
        }
        if !std::path::Path::new(home).is_dir() {
            return Err(ConfigError(format!(
                "CODEX_ACCOUNTS: the codex home of {name:?} must be an existing directory, got {home:?}"
            )));
        }
        accounts.push(AccountSpec {
            name: name.to_owned(),
            home: Some(PathBuf::from(home)),
        });
    }
    Ok(accounts)
}

/// `API_KEYS`, each key bound to the account after its last `@`, if it has one.
fn api_keys(listed: Vec<String>, accounts: &[AccountSpec]) -> Result<Vec<ApiKey>, ConfigError> {
    listed
        .into_iter()
        .map(|entry| match entry.rsplit_once('@') {
            None => Ok(ApiKey {
                key: entry,
                account: None,
            }),
            Some((key, name)) => {
                let account = accounts.iter().position(|a| a.name == name.trim());
                match (key.trim(), account) {
                    ("", _) => Err(ConfigError(
                        "API_KEYS: a key@account entry has no key before the @".into(),
                    )),
                    (key, Some(index)) => Ok(ApiKey {
                        key: key.to_owned(),
                        account: Some(index),
                    }),
                    (_, None) => Err(ConfigError(format!(
                        "API_KEYS binds a key to the account {name:?}, which is not one of {} (CODEX_ACCOUNTS); a key may not contain '@' otherwise",
                        accounts
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        })
        .collect()
}

/// Splits `CODEX_CONFIG` into `key=value` overrides at `;` or newlines that are not inside a
/// quoted string, table or array, so inline TOML tables keep their commas and semicolons.
fn config_overrides(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, ';' | '\n') if depth == 0 => {
                pieces.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    pieces.push(current);
    let pieces: Vec<String> = pieces
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(bad) = pieces
        .iter()
        .find(|p| !p.contains('=') || p.starts_with('='))
    {
        return Err(ConfigError(format!(
            "CODEX_CONFIG must be key=value overrides separated by ';', such as model_reasoning_summary=\"detailed\"; got {bad:?}"
        )));
    }
    Ok(pieces)
}

/// Efforts, each checked against [`REASONING_EFFORTS`].
fn efforts(name: &str, values: Vec<String>) -> Result<Vec<String>, ConfigError> {
    match values
        .iter()
        .find(|v| !REASONING_EFFORTS.contains(&v.as_str()))
    {
        Some(bad) => Err(ConfigError(format!(
            "{name} takes reasoning efforts from {}, got {bad:?}",
            REASONING_EFFORTS.join(", ")
        ))),
        None => Ok(values),
    }
}

impl Config {
    /// Reads `.env` (when present) into the process environment, then the environment.
    /// Variables already set in the environment win over `.env`.
    pub fn load() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(ConfigError(format!(".env could not be read: {err}"))),
        }
        Self::from_vars(std::env::vars())
    }

    /// Builds the configuration from explicit variables; used by [`Config::load`] and by tests.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = envy::from_iter(vars).map_err(|err| ConfigError(err.to_string()))?;
        let host = raw.host.trim().parse::<IpAddr>().map_err(|_| {
            ConfigError(format!(
                "HOST must be an IP address such as 0.0.0.0 or 127.0.0.1, got {:?}",
                raw.host
            ))
        })?;
        let port = raw.port.trim().parse::<u16>().map_err(|_| {
            ConfigError(format!(
                "PORT must be a number from 0 to 65535, got {:?}",
                raw.port
            ))
        })?;
        let codex_sandbox = match raw.codex_sandbox.as_deref() {
            None => Sandbox::ReadOnly,
            Some(value) => serde_json::from_value(serde_json::Value::String(value.to_owned()))
                .map_err(|_| {
                    ConfigError(format!(
                        "CODEX_SANDBOX must be one of read-only, workspace-write, danger-full-access, got {value:?}"
                    ))
                })?,
        };
        let log_level = raw.log_level.unwrap_or_else(|| "info".into());
        EnvFilter::try_new(&log_level).map_err(|err| {
            ConfigError(format!(
                "LOG_LEVEL must be a level (error, warn, info, debug, trace) or a tracing filter, got {log_level:?}: {err}"
            ))
        })?;
        let keepalive_secs = number("KEEPALIVE_SECS", raw.keepalive_secs.as_deref(), 15, 1)?;
        let defaults = Limits::default();
        let secs = |name: &str, value: &Option<String>, default: Duration, min: u64| {
            number(name, value.as_deref(), default.as_secs(), min).map(Duration::from_secs)
        };
        let limits = Limits {
            max_concurrency: number(
                "MAX_CONCURRENCY",
                raw.max_concurrency.as_deref(),
                defaults.max_concurrency as u64,
                1,
            )? as usize,
            queue_timeout: secs(
                "QUEUE_TIMEOUT_SECS",
                &raw.queue_timeout_secs,
                defaults.queue_timeout,
                0,
            )?,
            codex_timeout: secs(
                "CODEX_TIMEOUT_SECS",
                &raw.codex_timeout_secs,
                defaults.codex_timeout,
                1,
            )?,
            codex_idle_timeout: secs(
                "CODEX_IDLE_TIMEOUT_SECS",
                &raw.codex_idle_timeout_secs,
                defaults.codex_idle_timeout,
                1,
            )?,
            shutdown_grace: secs(
                "SHUTDOWN_GRACE_SECS",
                &raw.shutdown_grace_secs,
                defaults.shutdown_grace,
                0,
            )?,
            max_body_bytes: number(
                "MAX_BODY_BYTES",
                raw.max_body_bytes.as_deref(),
                defaults.max_body_bytes as u64,
                1024,
            )? as usize,
            max_prompt_tokens: number(
                "MAX_PROMPT_TOKENS",
                raw.max_prompt_tokens.as_deref(),
                defaults.max_prompt_tokens,
                1,
            )?,
            max_images: number(
                "MAX_IMAGES",
                raw.max_images.as_deref(),
                defaults.max_images as u64,
                0,
            )? as usize,
            responses_stored: number(
                "RESPONSES_STORED",
                raw.responses_stored.as_deref(),
                defaults.responses_stored as u64,
                0,
            )? as usize,
            responses_stored_age: secs(
                "RESPONSES_STORED_SECS",
                &raw.responses_stored_secs,
                defaults.responses_stored_age,
                1,
            )?,
            mcp_threads: number(
                "MCP_THREADS",
                raw.mcp_threads.as_deref(),
                defaults.mcp_threads as u64,
                1,
            )?
            .min(crate::codex::MAX_KEPT_THREADS as u64) as usize,
            mcp_thread_idle: secs(
                "MCP_THREAD_IDLE_SECS",
                &raw.mcp_thread_idle_secs,
                defaults.mcp_thread_idle,
                1,
            )?,
            header_timeout: secs(
                "HEADER_TIMEOUT_SECS",
                &raw.header_timeout_secs,
                defaults.header_timeout,
                1,
            )?,
            body_timeout: secs(
                "BODY_TIMEOUT_SECS",
                &raw.body_timeout_secs,
                defaults.body_timeout,
                1,
            )?,
            // 0, like unset, derives the limit from the fd limit.
            max_connections: match number("MAX_CONNECTIONS", raw.max_connections.as_deref(), 0, 0)?
            {
                0 => None,
                n => Some(n as usize),
            },
            http2_max_streams: number(
                "HTTP2_MAX_STREAMS",
                raw.http2_max_streams.as_deref(),
                u64::from(defaults.http2_max_streams),
                1,
            )?
            .min(u64::from(u32::MAX)) as u32,
            max_tool_schema_nodes: number(
                "MAX_TOOL_SCHEMA_NODES",
                raw.max_tool_schema_nodes.as_deref(),
                defaults.max_tool_schema_nodes as u64,
                1,
            )? as usize,
            max_tool_check_steps: number(
                "MAX_TOOL_CHECK_STEPS",
                raw.max_tool_check_steps.as_deref(),
                defaults.max_tool_check_steps,
                1,
            )?,
        };
        if let Some(bad) = raw
            .codex_models
            .iter()
            .find(|id| id.as_str() == DEFAULT_MODEL_ID)
        {
            return Err(ConfigError(format!(
                "CODEX_MODELS must not repeat {bad:?}, which is always listed; set CODEX_MODEL to choose the model behind it"
            )));
        }
        let accounts = accounts(raw.codex_accounts, raw.codex_home.as_deref())?;
        Ok(Config {
            api_keys: api_keys(raw.api_keys, &accounts)?,
            accounts,
            cors_origins: raw.cors_origins,
            host,
            port,
            codex_path: PathBuf::from(raw.codex_path.unwrap_or_else(|| "codex".into())),
            codex_model: raw.codex_model,
            codex_models: raw.codex_models,
            codex_sandbox,
            codex_tools: match raw.codex_tools.as_deref() {
                None | Some("chat") => ToolsMode::Chat,
                Some("agent") => ToolsMode::Agent,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "CODEX_TOOLS must be chat (codex answers without its own tools, the default) or agent (codex may run commands and read files), got {other:?}"
                    )))
                }
            },
            codex_backend: match raw.codex_backend.as_deref() {
                Some("exec") => BackendKind::Exec,
                None | Some("app-server") => BackendKind::AppServer,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "CODEX_BACKEND must be app-server (one long-lived codex app-server, streaming tokens, tools as function tools, the default) or exec (one codex process per request), got {other:?}"
                    )))
                }
            },
            app_server_input: match raw.app_server_input.as_deref() {
                None | Some("items") => AppServerInput::Items,
                Some("prompt") => AppServerInput::Prompt,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "APP_SERVER_INPUT must be items (earlier turns as items, tools as function tools, the default) or prompt (the exec backend's prompt, tools described in it), got {other:?}"
                    )))
                }
            },
            effort_models: match raw.effort_models.as_slice() {
                [all] if all == "all" => EffortModels::All,
                _ => EffortModels::Listed(efforts("EFFORT_MODELS", raw.effort_models)?),
            },
            task_model: raw.task_model,
            task_reasoning_effort: efforts(
                "TASK_REASONING_EFFORT",
                raw.task_reasoning_effort.into_iter().collect(),
            )?
            .pop(),
            log_json: match raw.log_format.as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => return Err(ConfigError(format!("LOG_FORMAT must be text or json, got {other:?}"))),
            },
            reasoning_output: match raw.reasoning_output.as_deref() {
                None | Some("reasoning_content") => ReasoningOutput::ReasoningContent,
                Some("think") => ReasoningOutput::Think,
                Some("none") => ReasoningOutput::None,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "REASONING_OUTPUT must be reasoning_content, think or none, got {other:?}"
                    )))
                }
            },
            codex_workdir: match raw.codex_workdir {
                None => None,
                Some(dir) if std::path::Path::new(&dir).is_dir() => Some(PathBuf::from(dir)),
                Some(dir) => {
                    return Err(ConfigError(format!("CODEX_WORKDIR must be an existing directory, got {dir:?}")))
                }
            },
            codex_config: match raw.codex_config.as_deref() {
                None => Vec::new(),
                Some(value) => config_overrides(value)?,
            },
            codex_home: raw.codex_home.map(PathBuf::from),
            log_level,
            keepalive: Duration::from_secs(keepalive_secs),
            limits,
        })
    }

    /// The configuration one account's backend runs with: its codex home.
    pub fn for_account(&self, account: &AccountSpec) -> Config {
        Config {
            codex_home: account.home.clone(),
            ..self.clone()
        }
    }

    /// The model ids `/v1/models` lists, in order: `codex-local`, `CODEX_MODELS`, then the
    /// models codex offers (`codex`, from `model/list`; empty on exec), each followed by its
    /// effort ids.
    pub fn model_ids(&self, codex: &[CodexModel]) -> Vec<String> {
        self.catalogue(codex)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The codex model (`-m`) and reasoning effort behind a listed model id; `None` for an
    /// unlisted id.
    pub fn resolve_model(&self, id: &str, codex: &[CodexModel]) -> Option<ModelChoice> {
        self.catalogue(codex)
            .into_iter()
            .find_map(|(listed, choice)| (listed == id).then_some(choice))
    }

    /// Every listed id with what it stands for: one place for both the list and the lookup.
    fn catalogue(&self, codex: &[CodexModel]) -> Vec<(String, ModelChoice)> {
        // The bases: the id, the model passed as `-m`, and the efforts codex says it takes
        // (`None` when codex has not said).
        let known = |id: &str| codex.iter().find(|m| m.id == id).map(|m| m.efforts.clone());
        let default_efforts = codex
            .iter()
            .find(|m| m.is_default)
            .map(|m| m.efforts.clone());
        let mut bases: Vec<(String, Option<String>, Option<Vec<String>>)> = vec![(
            DEFAULT_MODEL_ID.to_owned(),
            self.codex_model.clone(),
            match &self.codex_model {
                Some(model) => known(model),
                None => default_efforts,
            },
        )];
        for id in &self.codex_models {
            bases.push((id.clone(), Some(id.clone()), known(id)));
        }
        for model in codex {
            if !bases.iter().any(|(id, _, _)| *id == model.id) {
                bases.push((
                    model.id.clone(),
                    Some(model.id.clone()),
                    Some(model.efforts.clone()),
                ));
            }
        }
        let plain = |model: &Option<String>| ModelChoice {
            model: model.clone(),
            effort: None,
        };
        let mut out: Vec<(String, ModelChoice)> = bases
            .iter()
            .map(|(id, model, _)| (id.clone(), plain(model)))
            .collect();
        for (id, model, supported) in &bases {
            let efforts: Vec<String> = match (&self.effort_models, supported) {
                // `all`: every effort codex says the model takes.
                (EffortModels::All, Some(supported)) => supported.clone(),
                (EffortModels::All, None) => Vec::new(),
                // Listed: those the model takes, when codex has said.
                (EffortModels::Listed(listed), Some(supported)) => listed
                    .iter()
                    .filter(|e| supported.contains(e))
                    .cloned()
                    .collect(),
                (EffortModels::Listed(listed), None) => listed.clone(),
            };
            out.extend(efforts.into_iter().map(|effort| {
                (
                    format!("{id}-{effort}"),
                    ModelChoice {
                        model: model.clone(),
                        effort: Some(effort),
                    },
                )
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_readme() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert!(config.api_keys.is_empty());
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.port, 8000);
        assert_eq!(config.codex_path, PathBuf::from("codex"));
        assert_eq!(config.codex_model, None);
        assert_eq!(config.codex_sandbox, Sandbox::ReadOnly);
        assert_eq!(config.codex_tools, ToolsMode::Chat);
        assert_eq!(config.codex_backend, BackendKind::AppServer);
        assert_eq!(config.app_server_input, AppServerInput::Items);
        assert_eq!(
            Config::from_vars(vars(&[("CODEX_BACKEND", "exec")]))
                .unwrap()
                .codex_backend,
            BackendKind::Exec
        );
        assert_eq!(config.log_level, "info");
        assert_eq!(config.keepalive, Duration::from_secs(15));
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.limits.max_concurrency, 8);
    }

    #[test]
    fn accounts_are_named_codex_homes_and_keys_may_be_bound_to_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let listed = format!("alice={}, bob={}", a.path().display(), b.path().display());
        let config = Config::from_vars(vars(&[
            ("CODEX_ACCOUNTS", &listed),
            ("API_KEYS", "k-pool, k-bob@bob"),
        ]))
        .unwrap();
        let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(config.accounts[1].home.as_deref(), Some(b.path()));
        assert_eq!(
            config.api_keys,
            [
                ApiKey {
                    key: "k-pool".into(),
                    account: None
                },
                ApiKey {
                    key: "k-bob".into(),
                    account: Some(1)
                },
            ]
        );
        assert_eq!(
            config
                .for_account(&config.accounts[0])
                .codex_home
                .as_deref(),
            Some(a.path())
        );

        // CODEX_HOME (an image's default) does not add an account to the list.
        let with_home =
            Config::from_vars(vars(&[("CODEX_ACCOUNTS", &listed), ("CODEX_HOME", "/h")])).unwrap();
        assert_eq!(with_home.accounts, config.accounts);

        // Unset: one account, `default`, with CODEX_HOME.
        let single =
            Config::from_vars(vars(&[("CODEX_HOME", "/h"), ("API_KEYS", "k@default")])).unwrap();
        assert_eq!(
            single.accounts,
            [AccountSpec {
                name: "default".into(),
                home: Some("/h".into())
            }]
        );
        assert_eq!(single.api_keys[0].account, Some(0));

        let home = a.path().display().to_string();
        for (vars_, says) in [
            (
                vec![
                    ("CODEX_ACCOUNTS", format!("alice={home}")),
                    ("API_KEYS", "k@carol".into()),
                ],
                "carol",
            ),
            (
                vec![("CODEX_ACCOUNTS", format!("alice={home},alice={home}"))],
                "twice",
            ),
            (vec![("CODEX_ACCOUNTS", "alice".into())], "name=path"),
            (vec![("CODEX_ACCOUNTS", "a b=/tmp".into())], "letters"),
            (
                vec![("CODEX_ACCOUNTS", "alice=/no/such/home".into())],
                "existing directory",
            ),
            (vec![("API_KEYS", "@default".into())], "no key"),
        ] {
            let pairs: Vec<(String, String)> =
                vars_.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let err = Config::from_vars(pairs).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn lists_are_comma_separated_and_blank_entries_dropped() {
        let config = Config::from_vars(vars(&[
            ("API_KEYS", " k1, ,k2 "),
            ("CODEX_MODELS", "gpt-5.5,gpt-6-sol"),
            ("CODEX_MODEL", ""),
        ]))
        .unwrap();
        let keys: Vec<&str> = config.api_keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(
            config.model_ids(&[]),
            ["codex-local", "gpt-5.5", "gpt-6-sol"]
        );
        assert_eq!(config.codex_model, None);
        let choice = |model: Option<&str>, effort: Option<&str>| {
            Some(ModelChoice {
                model: model.map(str::to_owned),
                effort: effort.map(str::to_owned),
            })
        };
        assert_eq!(
            config.resolve_model("gpt-5.5", &[]),
            choice(Some("gpt-5.5"), None)
        );
        assert_eq!(config.resolve_model("codex-local", &[]), choice(None, None));
        assert_eq!(config.resolve_model("gpt-4o", &[]), None);

        let config = Config::from_vars(vars(&[
            ("CODEX_MODELS", "gpt-5.5"),
            ("EFFORT_MODELS", "low,high"),
        ]))
        .unwrap();
        assert_eq!(
            config.model_ids(&[]),
            [
                "codex-local",
                "gpt-5.5",
                "codex-local-low",
                "codex-local-high",
                "gpt-5.5-low",
                "gpt-5.5-high"
            ]
        );
        assert_eq!(
            config.resolve_model("gpt-5.5-high", &[]),
            choice(Some("gpt-5.5"), Some("high"))
        );
        assert_eq!(
            config.resolve_model("codex-local-low", &[]),
            choice(None, Some("low"))
        );
        assert_eq!(config.resolve_model("codex-local-medium", &[]), None);
    }

    #[test]
    fn codex_config_splits_outside_quotes_and_tables() {
        let config = Config::from_vars(vars(&[(
            "CODEX_CONFIG",
            "model_provider=\"mock\"; model_providers.mock={name=\"m;x\", base_url=\"http://h/v1\"}\nmodel_reasoning_summary=detailed",
        )]))
        .unwrap();
        assert_eq!(
            config.codex_config,
            [
                "model_provider=\"mock\"",
                "model_providers.mock={name=\"m;x\", base_url=\"http://h/v1\"}",
                "model_reasoning_summary=detailed"
            ]
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("HOST", "not an ip"),
            ("CODEX_SANDBOX", "yolo"),
            ("KEEPALIVE_SECS", "0"),
            ("LOG_LEVEL", "info,[[["),
            ("CODEX_MODELS", "codex-local"),
            ("MAX_CONCURRENCY", "0"),
            ("QUEUE_TIMEOUT_SECS", "soon"),
            ("CODEX_TIMEOUT_SECS", "0"),
            ("CODEX_IDLE_TIMEOUT_SECS", "-5"),
            ("SHUTDOWN_GRACE_SECS", "1.5"),
            ("MAX_BODY_BYTES", "10"),
            ("MAX_PROMPT_TOKENS", "lots"),
            ("MAX_IMAGES", "many"),
            ("HEADER_TIMEOUT_SECS", "0"),
            ("BODY_TIMEOUT_SECS", "0"),
            ("MAX_CONNECTIONS", "-1"),
            ("HTTP2_MAX_STREAMS", "0"),
            ("MAX_TOOL_SCHEMA_NODES", "0"),
            ("MAX_TOOL_CHECK_STEPS", "x"),
            ("CODEX_CONFIG", "no_equals_sign"),
            ("CODEX_TOOLS", "all"),
            ("CODEX_BACKEND", "mcp-server"),
            ("REASONING_OUTPUT", "inline"),
            ("LOG_FORMAT", "yaml"),
            ("EFFORT_MODELS", "low,turbo"),
            ("TASK_REASONING_EFFORT", "tiny"),
            ("CODEX_WORKDIR", "/nonexistent/dir"),
        ] {
            let err = Config::from_vars(vars(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{name}={value} gave {err}");
        }
    }
}
