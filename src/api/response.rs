//! Response wire types: the JSON reply, the SSE chunks, models, health, and the error envelope.

use poem_openapi::{Enum, Object};

use crate::{error::ProxyError, usage::TokenUsage};

#[derive(Debug, Clone, Object)]
pub struct ChatCompletion {
    /// `chatcmpl-` followed by a random id.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model id the client asked for.
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Object)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: String,
}

#[derive(Debug, Clone, Object)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// Null when the answer is nothing but tool calls.
    #[oai(nullable)]
    pub content: Option<String>,
    /// codex's reasoning summary, when it produced one.
    #[oai(skip_serializing_if_is_none)]
    pub reasoning_content: Option<String>,
    /// The tools the model called; `finish_reason` is then `tool_calls`.
    #[oai(skip_serializing_if_is_none)]
    pub tool_calls: Option<Vec<ToolCallOut>>,
}

#[derive(Debug, Clone, Object)]
pub struct ToolCallOut {
    /// `call_` followed by 24 random characters.
    pub id: String,
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: String,
    pub function: FunctionCallOut,
}

#[derive(Debug, Clone, Object)]
pub struct FunctionCallOut {
    pub name: String,
    /// The arguments as compact JSON text.
    pub arguments: String,
}

/// A tool call in a stream: complete in one chunk, placed by `index`.
#[derive(Debug, Clone, Object)]
pub struct ChunkToolCall {
    pub index: u32,
    pub id: String,
    #[oai(rename = "type")]
    pub kind: String,
    pub function: FunctionCallOut,
}

#[derive(Debug, Clone, Object)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    pub created: i64,
    pub model: String,
    /// Empty on the usage chunk sent with `stream_options.include_usage`.
    pub choices: Vec<ChunkChoice>,
    #[oai(skip_serializing_if_is_none)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Object)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    /// Set on exactly one chunk of a successful stream.
    #[oai(nullable)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Object)]
pub struct ChunkDelta {
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub content: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub reasoning_content: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub tool_calls: Option<Vec<ChunkToolCall>>,
}

#[derive(Debug, Clone, Object)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Clone, Object)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Object)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

impl From<TokenUsage> for Usage {
    fn from(usage: TokenUsage) -> Self {
        Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: usage.cached_tokens,
            },
            completion_tokens_details: CompletionTokensDetails {
                reasoning_tokens: usage.reasoning_tokens,
            },
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Model>,
}

#[derive(Debug, Clone, Object)]
pub struct Model {
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds; the server's start time.
    pub created: i64,
    pub owned_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum HealthState {
    /// codex was found and answered `--version`.
    Ok,
    /// The server runs, but chat requests will fail until codex is fixed.
    Degraded,
}

#[derive(Debug, Clone, Object)]
pub struct Health {
    pub status: HealthState,
    pub codex: CodexHealth,
    /// The ChatGPT plan's usage limits as codex last reported them (app-server backend with a
    /// ChatGPT login, after its first turn).
    #[oai(skip_serializing_if_is_none)]
    pub plan_limits: Option<PlanLimitsOut>,
    /// The codex logins turns run on (`CODEX_ACCOUNTS`; one, `default`, when unset).
    pub accounts: Vec<AccountHealth>,
}

/// One codex account: whether it takes turns now, and why not. No secret is shown.
#[derive(Debug, Clone, Object)]
pub struct AccountHealth {
    pub name: String,
    pub state: AccountState,
    /// Turns running on it now.
    pub running: u64,
    /// When a cooling account takes turns again, in Unix seconds.
    #[oai(skip_serializing_if_is_none)]
    pub cooling_until: Option<i64>,
    /// Its ChatGPT plan's usage limits as codex last reported them.
    #[oai(skip_serializing_if_is_none)]
    pub plan_limits: Option<PlanLimitsOut>,
}

/// Whether an account takes turns now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AccountState {
    /// It takes turns.
    Ready,
    /// At a usage or rate limit, until `cooling_until`.
    Cooling,
    /// codex could not authenticate with it: out until it is logged in again.
    LoggedOut,
}

impl From<crate::accounts::State> for AccountState {
    fn from(state: crate::accounts::State) -> Self {
        match state {
            crate::accounts::State::Ready => AccountState::Ready,
            crate::accounts::State::Cooling => AccountState::Cooling,
            crate::accounts::State::LoggedOut => AccountState::LoggedOut,
        }
    }
}

impl From<crate::accounts::AccountView> for AccountHealth {
    fn from(view: crate::accounts::AccountView) -> Self {
        AccountHealth {
            name: view.name,
            state: view.state.into(),
            running: view.running as u64,
            cooling_until: view.cooling_until,
            plan_limits: view.plan_limits.map(Into::into),
        }
    }
}

/// A plan's usage limits: a short rolling window and a weekly one.
#[derive(Debug, Clone, Object)]
pub struct PlanLimitsOut {
    #[oai(skip_serializing_if_is_none)]
    pub plan_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub primary: Option<PlanWindowOut>,
    #[oai(skip_serializing_if_is_none)]
    pub secondary: Option<PlanWindowOut>,
}

#[derive(Debug, Clone, Object)]
pub struct PlanWindowOut {
    pub used_percent: i64,
    #[oai(skip_serializing_if_is_none)]
    pub window_minutes: Option<i64>,
    /// When the window resets, in Unix seconds.
    #[oai(skip_serializing_if_is_none)]
    pub resets_at: Option<i64>,
}

impl From<crate::codex::plan_limits::PlanLimits> for PlanLimitsOut {
    fn from(limits: crate::codex::plan_limits::PlanLimits) -> Self {
        let window = |w: crate::codex::plan_limits::Window| PlanWindowOut {
            used_percent: w.used_percent,
            window_minutes: w.window_minutes,
            resets_at: w.resets_at,
        };
        PlanLimitsOut {
            plan_type: limits.plan_type,
            primary: limits.primary.map(window),
            secondary: limits.secondary.map(window),
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct CodexHealth {
    pub available: bool,
    #[oai(skip_serializing_if_is_none)]
    pub path: Option<String>,
    /// What `codex --version` printed.
    #[oai(skip_serializing_if_is_none)]
    pub version: Option<String>,
    /// Whether that version is one this server is tested with (`supported_versions`).
    #[oai(skip_serializing_if_is_none)]
    pub version_supported: Option<bool>,
    /// The codex versions this server is tested with, oldest to newest.
    pub supported_versions: String,
    /// codex's login, as found at start-up: `chatgpt`, `api_key`, `not_needed` (a custom model
    /// provider), `missing`, or the kind codex names.
    #[oai(skip_serializing_if_is_none)]
    pub login: Option<String>,
    /// Why codex cannot be used, and how to fix it.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, Object)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    pub message: String,
    #[oai(rename = "type")]
    pub kind: String,
    /// The request field at fault, when there is one.
    #[oai(nullable)]
    pub param: Option<String>,
    /// A stable code to branch on, such as `invalid_api_key` or `rate_limit_exceeded`.
    #[oai(nullable)]
    pub code: Option<String>,
}

impl From<&ProxyError> for ErrorEnvelope {
    fn from(err: &ProxyError) -> Self {
        ErrorEnvelope {
            error: ErrorBody {
                message: err.message(),
                kind: err.error_type().to_owned(),
                param: err.param().map(str::to_owned),
                code: err.code().map(str::to_owned),
            },
        }
    }
}
