//! The subset of `codex app-server`'s JSON-RPC protocol (v2) the proxy speaks, typed after the
//! schema codex 0.169.0 generates (`codex app-server generate-json-schema`). Newline-delimited
//! JSON over stdio, without the `"jsonrpc"` field. Fields the proxy does not read are left out
//! (serde ignores them), so additions in later codex versions are harmless.
//!
//! `fake-codex app-server` does not share these types: it spells the wire its own way, after the
//! real transcripts (`fake-codex/app_server/wire.rs`), so a field renamed here is one it no
//! longer understands. `tests/it/app_server_wire.rs` holds both sides' messages against the real
//! session in `../shared/codex-transcripts/app_server_single.wire.jsonl`, field by field, and
//! the real-codex suite checks them against the real CLI.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JSON-RPC error code for "Server overloaded; retry later."
pub const OVERLOADED: i64 = -32001;

/// One line from the server: a response to one of our requests, a notification, or a request
/// of its own (approvals; none are sent with `approvalPolicy: "never"`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Incoming {
    Response {
        id: i64,
        result: Value,
    },
    Error {
        id: i64,
        error: RpcError,
    },
    ServerRequest {
        id: Value,
        method: String,
        #[serde(default)]
        params: Value,
    },
    Notification {
        method: String,
        #[serde(default)]
        params: Value,
    },
}

/// A request or notification from the client; `id` is absent on notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, thiserror::Error)]
#[error("{message} (JSON-RPC error {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    pub client_info: ClientInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    pub title: Option<String>,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResponse {
    pub user_agent: String,
}

/// `thread/start`: one ephemeral thread per proxied request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStartParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub cwd: String,
    /// `never`: nobody is there to approve anything, so codex must never ask.
    pub approval_policy: String,
    pub sandbox: String,
    pub ephemeral: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadStartResponse {
    pub thread: ThreadRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadRef {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartParams {
    pub thread_id: String,
    pub input: Vec<UserInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum UserInput {
    Text {
        text: String,
        /// Required by 0.169.0; the proxy never marks spans.
        text_elements: Vec<Value>,
    },
    LocalImage {
        path: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnStartResponse {
    pub turn: TurnRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnRef {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnInterruptParams {
    pub thread_id: String,
    pub turn_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadUnsubscribeParams {
    pub thread_id: String,
}

/// The notifications of a turn the proxy acts on, by `method`. Others (`item/started`,
/// `thread/status/changed`, rate limits, ...) parse as `Other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum TurnNotification {
    #[serde(rename = "item/agentMessage/delta")]
    AgentMessageDelta(TextDelta),
    #[serde(rename = "item/reasoning/summaryTextDelta")]
    ReasoningSummaryDelta(SummaryDelta),
    #[serde(rename = "item/completed")]
    ItemCompleted(ItemCompleted),
    #[serde(rename = "thread/tokenUsage/updated")]
    TokenUsageUpdated(TokenUsageUpdated),
    #[serde(rename = "error")]
    Error(ErrorNotification),
    #[serde(rename = "turn/completed")]
    TurnCompleted(TurnCompleted),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextDelta {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub delta: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDelta {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub delta: String,
    pub summary_index: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCompleted {
    pub item: Item,
    pub thread_id: String,
    pub turn_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Item {
    #[serde(rename_all = "camelCase")]
    AgentMessage { id: String, text: String },
    #[serde(rename_all = "camelCase")]
    Reasoning {
        id: String,
        #[serde(default)]
        summary: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    CommandExecution {
        id: String,
        command: String,
        status: String,
        #[serde(default)]
        aggregated_output: Option<String>,
        #[serde(default)]
        exit_code: Option<i64>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsageUpdated {
    pub thread_id: String,
    pub turn_id: String,
    pub token_usage: ThreadTokenUsage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadTokenUsage {
    pub total: TokenUsageBreakdown,
    /// The last model request: a turn that runs a tool makes several.
    pub last: TokenUsageBreakdown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsageBreakdown {
    pub total_tokens: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorNotification {
    pub error: TurnError,
    /// `true` for a retry notice; the turn goes on.
    pub will_retry: bool,
    pub thread_id: String,
    pub turn_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnError {
    pub message: String,
    /// A camelCase string (`contextWindowExceeded`) or a one-key object
    /// (`{"httpConnectionFailed": {"httpStatusCode": 429}}`).
    #[serde(default)]
    pub codex_error_info: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnCompleted {
    pub thread_id: String,
    pub turn: CompletedTurn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletedTurn {
    pub id: String,
    pub status: TurnStatus,
    #[serde(default)]
    pub error: Option<TurnError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TurnStatus {
    Completed,
    Interrupted,
    Failed,
    InProgress,
}

impl TurnNotification {
    /// The thread a notification belongs to, for routing.
    pub fn thread_id(&self) -> &str {
        match self {
            TurnNotification::AgentMessageDelta(n) => &n.thread_id,
            TurnNotification::ReasoningSummaryDelta(n) => &n.thread_id,
            TurnNotification::ItemCompleted(n) => &n.thread_id,
            TurnNotification::TokenUsageUpdated(n) => &n.thread_id,
            TurnNotification::Error(n) => &n.thread_id,
            TurnNotification::TurnCompleted(n) => &n.thread_id,
        }
    }
}

/// The method of the global notification that carries the plan's rate limits.
pub const RATE_LIMITS_UPDATED: &str = "account/rateLimits/updated";

/// `account/rateLimits/updated` params: a sparse update of the plan's limits (every field null
/// without a ChatGPT login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitsUpdated {
    pub rate_limits: RateLimitSnapshot,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSnapshot {
    #[serde(default)]
    pub primary: Option<RateLimitWindow>,
    #[serde(default)]
    pub secondary: Option<RateLimitWindow>,
    #[serde(default)]
    pub plan_type: Option<String>,
}

impl RateLimitSnapshot {
    pub fn into_limits(self) -> crate::codex::plan_limits::PlanLimits {
        let window = |w: RateLimitWindow| crate::codex::plan_limits::Window {
            used_percent: w.used_percent,
            window_minutes: w.window_duration_mins,
            resets_at: w.resets_at,
        };
        crate::codex::plan_limits::PlanLimits {
            plan_type: self.plan_type,
            primary: self.primary.map(window),
            secondary: self.secondary.map(window),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWindow {
    pub used_percent: i64,
    #[serde(default)]
    pub window_duration_mins: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    pub resets_at: Option<i64>,
}

/// `model/list` params: the models codex's picker lists (hidden ones left out), a page at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelListParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelListResponse {
    pub data: Vec<ModelEntry>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    pub id: String,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub supported_reasoning_efforts: Vec<ReasoningEffortOption>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningEffortOption {
    pub reasoning_effort: String,
}

/// `account/read` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountReadParams {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountReadResponse {
    /// `{"type": "chatgpt", "planType", "email"}`, `{"type": "apiKey"}`, ... or null.
    #[serde(default)]
    pub account: Option<Value>,
    pub requires_openai_auth: bool,
}

/// `account/rateLimits/read` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitsRead {
    pub rate_limits: RateLimitSnapshot,
}
