//! The subset of `codex app-server`'s JSON-RPC protocol (v2) the proxy speaks, typed after the
//! schema codex 0.169.0 generates (`codex app-server generate-json-schema`). Newline-delimited
//! JSON over stdio, without the `"jsonrpc"` field. Fields the proxy does not read are left out
//! (serde ignores them), so additions in later codex versions are harmless.
//!
//! `fake-codex app-server` does not share these types: it spells the wire its own way, after the
//! real transcripts (`fake-codex/app_server/wire.rs`), so a field renamed here is one it no
//! longer understands. `tests/it/app_server_wire.rs` holds both sides' messages against the real
//! sessions in `../shared/codex-transcripts/app_server_*.wire.jsonl`, field by field, and the
//! real-codex suite checks them against the installed codex's schema (experimental API
//! included: dynamic tools and raw events need it).
//!
//! Each request is declared once (`requests!`), its method beside its params and result;
//! each routed notification likewise (`notifications!`).

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

/// A request the proxy sends: its method name, paired once with its params and its result.
pub trait Request {
    const METHOD: &'static str;
    type Params: Serialize;
    type Result: DeserializeOwned;
}

/// Declares each request as a type that pairs its method with its params and result, as
/// codex's own protocol crate does: the name is written in one place only.
macro_rules! requests {
    ($($(#[$doc:meta])* $name:ident = $method:literal ($params:ty) -> $result:ty;)*) => {
        $(
            $(#[$doc])*
            pub enum $name {}
            impl Request for $name {
                const METHOD: &'static str = $method;
                type Params = $params;
                type Result = $result;
            }
        )*
    };
}

requests! {
    /// The handshake; `initialized` follows as a notification.
    Initialize = "initialize" (InitializeParams) -> InitializeResponse;
    ThreadStart = "thread/start" (ThreadStartParams) -> ThreadStartResponse;
    /// Puts earlier turns into a thread as Responses API items (stable, no capability).
    ThreadInjectItems = "thread/inject_items" (ThreadInjectItemsParams) -> Value;
    TurnStart = "turn/start" (TurnStartParams) -> TurnStartResponse;
    TurnInterrupt = "turn/interrupt" (TurnInterruptParams) -> Value;
    ThreadUnsubscribe = "thread/unsubscribe" (ThreadUnsubscribeParams) -> Value;
    ModelList = "model/list" (ModelListParams) -> ModelListResponse;
    AccountRead = "account/read" (AccountReadParams) -> AccountReadResponse;
    /// Needs a ChatGPT login: codex refuses it with -32600 otherwise.
    AccountRateLimitsRead = "account/rateLimits/read" (AccountReadParams) -> RateLimitsRead;
}

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
    pub capabilities: Capabilities,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Needed for `dynamicTools` and `experimentalRawEvents` on `thread/start`.
    pub experimental_api: bool,
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
    /// The request's system and developer messages; codex sends them to the model as a
    /// developer message after its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_instructions: Option<String>,
    /// The client's function tools, offered to the model beside codex's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dynamic_tools: Vec<DynamicToolSpec>,
    /// `rawResponseItem/completed` and `rawResponse/completed`: the only signal that a model
    /// response is over, and so that it holds no further tool calls.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub experimental_raw_events: bool,
}

/// One client tool as codex takes it (`DynamicToolSpec`, function kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicToolSpec {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadInjectItemsParams {
    pub thread_id: String,
    pub items: Vec<ResponseItem>,
}

/// A Responses API input item, as `thread/inject_items` takes it (snake_case, as OpenAI's
/// Responses API spells them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseItem {
    Message {
        /// `user`, `assistant` or `developer` (codex drops `system` silently).
        role: String,
        content: Vec<ContentItem>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        /// JSON-encoded, as the model wrote them.
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    /// A `data:` URL.
    InputImage {
        image_url: String,
    },
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

/// Declares the notifications a run acts on: each method name once, beside its params type
/// (every one of which carries the `threadId` it is routed by).
macro_rules! notifications {
    ($($(#[$doc:meta])* $variant:ident($params:ty) = $method:literal,)*) => {
        /// The notifications of a turn the proxy acts on, by `method`. The others
        /// (`item/started`, `thread/status/changed`, ...) are never parsed.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "method", content = "params")]
        pub enum TurnNotification {
            $($(#[$doc])* #[serde(rename = $method)] $variant($params),)*
        }

        impl TurnNotification {
            /// Every method above: the ones the reader routes to a run.
            pub const METHODS: &'static [&'static str] = &[$($method),*];

            /// The thread a notification belongs to, for routing.
            pub fn thread_id(&self) -> &str {
                match self {
                    $(TurnNotification::$variant(n) => &n.thread_id,)*
                }
            }
        }
    };
}

notifications! {
    AgentMessageDelta(TextDelta) = "item/agentMessage/delta",
    ReasoningSummaryDelta(SummaryDelta) = "item/reasoning/summaryTextDelta",
    ItemCompleted(ItemCompleted) = "item/completed",
    TokenUsageUpdated(TokenUsageUpdated) = "thread/tokenUsage/updated",
    /// An item of the model's response, raw (`experimentalRawEvents`).
    RawItemCompleted(RawItemCompleted) = "rawResponseItem/completed",
    /// The model's response ended (`experimentalRawEvents`); its usage.
    RawResponseCompleted(RawResponseCompleted) = "rawResponse/completed",
    Error(ErrorNotification) = "error",
    TurnCompleted(TurnCompleted) = "turn/completed",
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawItemCompleted {
    pub thread_id: String,
    pub turn_id: String,
    pub item: RawItem,
}

/// A raw Responses API item; only function calls matter to the proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawItem {
    FunctionCall {
        call_id: String,
        name: String,
        /// As the model wrote them: JSON-encoded, though not always valid JSON.
        #[serde(default)]
        arguments: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawResponseCompleted {
    pub thread_id: String,
    pub turn_id: String,
    #[serde(default)]
    pub usage: Option<TokenUsageBreakdown>,
}

/// The server request `item/tool/call`: the model called one of the client's tools, and codex
/// waits for the result.
pub const TOOL_CALL: &str = "item/tool/call";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallParams {
    pub thread_id: String,
    pub turn_id: String,
    pub call_id: String,
    pub tool: String,
    /// A JSON value, not a string.
    #[serde(default)]
    pub arguments: Value,
}

/// The answer to `item/tool/call`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    pub content_items: Vec<ToolContent>,
    pub success: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToolContent {
    InputText { text: String },
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
