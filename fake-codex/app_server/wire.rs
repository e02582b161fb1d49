//! The app-server wire as codex 0.169.0 spells it, written down on fake-codex's side alone.
//!
//! Every field name here is copied from the real session in
//! `../shared/codex-transcripts/app_server_single.wire.jsonl` (and `../shared/codex-cli.md` 5.1),
//! never from the proxy's `src/codex/app_server/protocol.rs`: fake-codex reads the client's
//! requests and writes its answers the way the real server does, so a field the proxy renames is
//! one fake-codex no longer understands (or one the proxy no longer finds), and the tests fail.
//!
//! Requests are read more strictly than codex reads them: codex ignores a field it does not know,
//! fake-codex refuses it, because such a field is one the client misnamed (real codex would
//! silently drop it and run with its default).

use serde::Deserialize;
use serde_json::{json, Value};

/// JSON-RPC error code for "Server overloaded; retry later." (`codex-rs/app-server/README.md`).
pub const OVERLOADED: i64 = -32001;

/// `initialize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitializeParams {
    #[serde(rename = "clientInfo")]
    pub client_info: ClientInfo,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
}

/// `initialize`'s `capabilities` (codex 0.171.0's `InitializeCapabilities`, the fields a proxy
/// has a use for).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Opens the experimental API: `thread/start`'s `dynamicTools` and `experimentalRawEvents`.
    #[serde(rename = "experimentalApi", default)]
    pub experimental_api: bool,
    /// Known to codex; fake-codex suppresses nothing.
    #[serde(rename = "optOutNotificationMethods", default)]
    #[allow(dead_code)]
    pub opt_out_notification_methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub title: Option<String>,
    pub version: String,
}

/// `approvalPolicy`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ApprovalPolicy {
    #[serde(rename = "untrusted")]
    Untrusted,
    #[serde(rename = "on-failure")]
    OnFailure,
    #[serde(rename = "on-request")]
    OnRequest,
    #[serde(rename = "never")]
    Never,
}

impl ApprovalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Untrusted => "untrusted",
            ApprovalPolicy::OnFailure => "on-failure",
            ApprovalPolicy::OnRequest => "on-request",
            ApprovalPolicy::Never => "never",
        }
    }
}

/// `sandbox`'s values: the `--sandbox` names of `codex exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SandboxMode {
    #[serde(rename = "read-only")]
    ReadOnly,
    #[serde(rename = "workspace-write")]
    WorkspaceWrite,
    #[serde(rename = "danger-full-access")]
    DangerFullAccess,
}

impl SandboxMode {
    /// As `codex exec --sandbox` takes it.
    pub fn as_arg(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }

    /// The sandbox policy `thread/start` answers with.
    fn policy(self) -> Value {
        match self {
            SandboxMode::ReadOnly => json!({"type": "readOnly", "networkAccess": false}),
            SandboxMode::WorkspaceWrite => json!({
                "type": "workspaceWrite", "writableRoots": [], "networkAccess": false,
                "excludeTmpdirEnvVar": false, "excludeSlashTmp": false,
            }),
            SandboxMode::DangerFullAccess => json!({"type": "dangerFullAccess"}),
        }
    }
}

/// `thread/start`. codex takes every field as optional; fake-codex insists on those a proxied
/// turn cannot do without (`approvalPolicy` above all: nobody is there to approve).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadStartParams {
    #[serde(default)]
    pub model: Option<String>,
    pub cwd: String,
    #[serde(rename = "approvalPolicy")]
    pub approval_policy: ApprovalPolicy,
    pub sandbox: SandboxMode,
    #[serde(default)]
    pub ephemeral: bool,
    /// The client's own tools (experimental API): codex offers them to the model and sends an
    /// `item/tool/call` request when the model calls one. Present at all, even `[]`, it needs
    /// `experimentalApi`; `null` does not (as the real 0.171.0 answered).
    #[serde(rename = "dynamicTools", default)]
    pub dynamic_tools: Option<Vec<DynamicToolSpec>>,
    /// A developer message codex sends the model after its own (stable API).
    #[serde(rename = "developerInstructions", default)]
    pub developer_instructions: Option<String>,
    /// Replaces codex's own base instructions (stable API); fake-codex has none to replace.
    #[serde(rename = "baseInstructions", default)]
    #[allow(dead_code)]
    pub base_instructions: Option<String>,
    /// `rawResponseItem/completed` and `rawResponse/completed` notifications (experimental API:
    /// `true` needs `experimentalApi`, `false` does not).
    #[serde(rename = "experimentalRawEvents", default)]
    pub experimental_raw_events: bool,
}

/// One of `thread/start`'s `dynamicTools` (codex 0.171.0's `DynamicToolSpec`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum DynamicToolSpec {
    #[serde(rename = "function")]
    Function {
        name: String,
        #[allow(dead_code)]
        description: String,
        #[serde(rename = "inputSchema")]
        input_schema: Value,
        #[serde(rename = "deferLoading", default)]
        #[allow(dead_code)]
        defer_loading: Option<bool>,
    },
    /// Tools under one name: the model calls them as `<namespace>.<tool>`, and `item/tool/call`
    /// names the namespace beside the tool.
    #[serde(rename = "namespace")]
    Namespace {
        name: String,
        #[allow(dead_code)]
        description: String,
        tools: Vec<NamespaceTool>,
    },
}

/// A function of a `namespace` dynamic tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum NamespaceTool {
    #[serde(rename = "function")]
    Function {
        name: String,
        #[allow(dead_code)]
        description: String,
        #[serde(rename = "inputSchema")]
        input_schema: Value,
        #[serde(rename = "deferLoading", default)]
        #[allow(dead_code)]
        defer_loading: Option<bool>,
    },
}

impl DynamicToolSpec {
    pub fn name(&self) -> &str {
        match self {
            DynamicToolSpec::Function { name, .. } | DynamicToolSpec::Namespace { name, .. } => {
                name
            }
        }
    }

    /// The function the model calls when it calls this tool: `(namespace, name, inputSchema)`;
    /// a namespace's first function.
    pub fn callable(&self) -> Option<(Option<&str>, &str, &Value)> {
        match self {
            DynamicToolSpec::Function {
                name, input_schema, ..
            } => Some((None, name, input_schema)),
            DynamicToolSpec::Namespace { name, tools, .. } => tools.first().map(
                |NamespaceTool::Function {
                     name: tool,
                     input_schema,
                     ..
                 }| { (Some(name.as_str()), tool.as_str(), input_schema) },
            ),
        }
    }
}

/// `thread/inject_items` (stable API): Responses API items appended to the thread's history
/// without a turn. The items are read one by one, as codex reads them ([`response_item`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadInjectItemsParams {
    #[serde(rename = "threadId")]
    pub thread_id: String,
    pub items: Vec<Value>,
}

/// `turn/start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnStartParams {
    #[serde(rename = "threadId")]
    pub thread_id: String,
    pub input: Vec<UserInput>,
    #[serde(default)]
    pub effort: Option<String>,
    #[serde(rename = "outputSchema", default)]
    pub output_schema: Option<Value>,
}

/// One element of `turn/start`'s `input`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum UserInput {
    #[serde(rename = "text")]
    Text {
        text: String,
        /// Required by 0.169.0 (codex-cli.md 5.1); spelled with an underscore on the wire.
        #[allow(dead_code)]
        text_elements: Vec<Value>,
    },
    #[serde(rename = "localImage")]
    LocalImage {
        path: String,
        #[serde(default)]
        #[allow(dead_code)]
        detail: Option<String>,
    },
    /// An image by URL (a `data:` URL, say) or by uploaded file id.
    #[serde(rename = "image")]
    Image {
        #[serde(default)]
        #[allow(dead_code)]
        url: Option<String>,
        #[serde(rename = "fileId", default)]
        #[allow(dead_code)]
        file_id: Option<String>,
        #[serde(default)]
        #[allow(dead_code)]
        detail: Option<String>,
    },
}

/// `turn/interrupt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnInterruptParams {
    #[serde(rename = "threadId")]
    #[allow(dead_code)]
    pub thread_id: String,
    #[serde(rename = "turnId")]
    pub turn_id: String,
}

/// `thread/unsubscribe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadUnsubscribeParams {
    #[serde(rename = "threadId")]
    pub thread_id: String,
}

/// `model/list` (codex 0.171.0's `ModelListParams`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelListParams {
    #[serde(rename = "includeHidden", default)]
    pub include_hidden: Option<bool>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Accepted, as codex does; fake-codex's pages are always two long.
    #[serde(default)]
    #[allow(dead_code)]
    pub limit: Option<u32>,
    #[serde(rename = "modelProvider", default)]
    #[allow(dead_code)]
    pub model_provider: Option<String>,
}

/// `account/read`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountReadParams {
    #[serde(rename = "refreshToken", default)]
    #[allow(dead_code)]
    pub refresh_token: Option<bool>,
}

/// One entry of codex's bundled catalogue as `model/list` writes it (the fields real codex
/// 0.171.0 sends, abridged values).
fn model_entry(id: &str, default: bool, hidden: bool, efforts: &[&str]) -> Value {
    json!({
        "id": id, "model": id, "upgrade": null, "upgradeInfo": null, "availabilityNux": null,
        "displayName": id.to_uppercase(), "description": format!("The {id} model."),
        "modelSpecialty": null, "hidden": hidden,
        "supportedReasoningEfforts": efforts.iter().map(|e| json!({"reasoningEffort": e, "description": format!("{e} reasoning")})).collect::<Vec<_>>(),
        "defaultReasoningEffort": efforts.first().copied().unwrap_or("medium"),
        "inputModalities": ["text", "image"], "supportsPersonality": false, "multiAgentVersion": "v2",
        "additionalSpeedTiers": [], "serviceTiers": [], "defaultServiceTier": null,
        "availableAccessPrograms": null, "isDefault": default,
    })
}

/// fake-codex's catalogue: two listed models, the first the default, and one hidden, two to a
/// page so that paging is exercised.
pub fn model_list(params: &ModelListParams) -> Value {
    let all = [
        model_entry(
            "gpt-6.2-sol",
            true,
            false,
            &["low", "medium", "high", "xhigh", "max", "ultra"],
        ),
        model_entry("gpt-5.5", false, false, &["low", "medium", "high", "xhigh"]),
        model_entry("codex-auto-review", false, true, &["medium"]),
    ];
    let listed: Vec<&Value> = all
        .iter()
        .filter(|m| params.include_hidden == Some(true) || m["hidden"] == false)
        .collect();
    let start: usize = params
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page: Vec<&Value> = listed.iter().skip(start).take(2).copied().collect();
    let next = (start + 2 < listed.len()).then(|| (start + 2).to_string());
    json!({"data": page, "nextCursor": next})
}

/// How a turn ended, as `turn.status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnStatus {
    Completed,
    Interrupted,
    Failed,
}

impl TurnStatus {
    fn as_str(self) -> &'static str {
        match self {
            TurnStatus::Completed => "completed",
            TurnStatus::Interrupted => "interrupted",
            TurnStatus::Failed => "failed",
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// A notification line: codex stamps each with `emittedAtMs` beside `method` and `params`.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"method": method, "params": params, "emittedAtMs": now_ms()})
}

/// What `thread/start` set up, and what its answers repeat.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    pub id: String,
    pub model: String,
    pub approval_policy: ApprovalPolicy,
    pub sandbox: SandboxMode,
    pub cwd: String,
    pub ephemeral: bool,
    /// The client's `clientInfo.name`.
    pub originator: String,
    pub created_at: u64,
}

impl ThreadInfo {
    /// The `thread` object of `thread/start`'s result and of `thread/started`.
    pub fn thread(&self) -> Value {
        let at = self.created_at;
        json!({
            "id": self.id,
            "environments": [{"environmentId": "local", "cwd": self.cwd, "runtimeWorkspaceRoots": [self.cwd]}],
            "extra": null,
            "sessionId": self.id,
            "forkedFromId": null,
            "attachedToThreadId": null,
            "parentThreadId": null,
            "preview": "",
            "ephemeral": self.ephemeral,
            "section": null,
            "sectionEnteredAt": null,
            "projectId": null,
            "historyMode": "paginated",
            "modelProvider": "openai",
            "model": self.model,
            "reasoningEffort": null,
            "createdAt": at,
            "updatedAt": at,
            "recencyAt": at,
            "status": {"type": "idle"},
            "path": null,
            "cwd": self.cwd,
            "cliVersion": crate::VERSION,
            "originator": self.originator,
            "source": "vscode",
            "canAcceptDirectInput": true,
            "threadSource": null,
            "agentNickname": null,
            "agentRole": null,
            "gitInfo": null,
            "name": null,
            "daybreakEnabled": null,
            "turns": [],
        })
    }

    /// `thread/start`'s result.
    pub fn start_result(&self) -> Value {
        json!({
            "thread": self.thread(),
            "model": self.model,
            "modelProvider": "openai",
            "serviceTier": null,
            "disabledPluginIds": [],
            "cwd": self.cwd,
            "runtimeWorkspaceRoots": [self.cwd],
            "instructionSources": [],
            "approvalPolicy": self.approval_policy.as_str(),
            "approvalsReviewer": "user",
            "sandbox": self.sandbox.policy(),
            "activePermissionProfile": null,
            "reasoningEffort": null,
            "multiAgentMode": "explicitRequestOnly",
        })
    }
}

/// A `turn` object. `turn/start`'s result has no `startedAt` yet; `turn/started` has it; a
/// finished turn has its end, duration, final agent message and `error`.
pub struct TurnObject<'a> {
    pub id: &'a str,
    pub started_at: Option<u64>,
    /// `(status, error, completedAt, durationMs, items)` of a finished turn.
    pub end: Option<(TurnStatus, Value, u64, u64, Vec<Value>)>,
}

impl TurnObject<'_> {
    pub fn to_value(&self) -> Value {
        let (status, error, completed_at, duration_ms, items, view) = match &self.end {
            None => (
                "inProgress",
                Value::Null,
                Value::Null,
                Value::Null,
                vec![],
                "notLoaded",
            ),
            Some((status, error, completed_at, duration_ms, items)) => (
                status.as_str(),
                error.clone(),
                json!(completed_at),
                json!(duration_ms),
                items.clone(),
                // As the real 0.171.0 ends an interrupted turn.
                if *status == TurnStatus::Interrupted {
                    "notLoaded"
                } else {
                    "summary"
                },
            ),
        };
        json!({
            "id": self.id,
            "rootTurnId": self.id,
            "items": items,
            "itemsView": view,
            "status": status,
            "error": error,
            "startedAt": self.started_at,
            "completedAt": completed_at,
            "durationMs": duration_ms,
        })
    }
}

/// A turn's error: in `turn.error` and in the `error` notification.
pub fn turn_error(message: &str, codex_error_info: Value) -> Value {
    json!({"message": message, "codexErrorInfo": codex_error_info, "additionalDetails": null})
}

/// An `agentMessage` item; `completedAtMs` is null while it is being written.
pub fn agent_message(id: &str, text: &str, started_at_ms: u64, completed: Option<u64>) -> Value {
    json!({
        "type": "agentMessage", "moderation": null, "id": id, "text": text, "phase": null,
        "memoryCitation": null, "delivery": null, "questions": null,
        "startedAtMs": started_at_ms, "completedAtMs": completed,
    })
}

/// A `reasoning` item.
pub fn reasoning(id: &str, summary: &[&str], started_at_ms: u64, completed: Option<u64>) -> Value {
    json!({
        "type": "reasoning", "id": id, "summary": summary, "content": [],
        "startedAtMs": started_at_ms, "completedAtMs": completed,
    })
}

/// The `userMessage` item of the turn's prompt.
pub fn user_message(id: &str, prompt: &str, started_at_ms: u64, completed: Option<u64>) -> Value {
    json!({
        "type": "userMessage", "id": id, "clientId": null,
        "content": [{"type": "text", "text": prompt, "text_elements": []}],
        "startedAtMs": started_at_ms, "completedAtMs": completed,
    })
}

/// A `TokenUsageBreakdown`.
pub fn usage_breakdown(usage: &codex_openai_proxy::codex::CodexUsage) -> Value {
    json!({
        "totalTokens": usage.input_tokens + usage.output_tokens,
        "inputTokens": usage.input_tokens,
        "cachedInputTokens": usage.cached_input_tokens,
        "cacheWriteInputTokens": usage.cache_write_input_tokens,
        "outputTokens": usage.output_tokens,
        "reasoningOutputTokens": usage.reasoning_output_tokens,
    })
}

/// The context window codex 0.169.0 reports for the bundled models.
pub const MODEL_CONTEXT_WINDOW: u64 = 258_400;

/// `account/rateLimits/updated` as a ChatGPT plus login gets it (shaped after the schema codex
/// generates, `AccountRateLimitsUpdatedNotification`): a 5-hour window `used_percent` used and
/// resetting in an hour, a weekly one 20% used.
pub fn chatgpt_rate_limits(used_percent: i64, now_secs: u64) -> Value {
    json!({"rateLimits": {
        "limitId": "codex", "limitName": null, "normalModelSlug": null,
        "primary": {"usedPercent": used_percent, "windowDurationMins": 300, "resetsAt": now_secs + 3600},
        "secondary": {"usedPercent": 20, "windowDurationMins": 10080, "resetsAt": now_secs + 4 * 86_400},
        "credits": {"hasCredits": false, "unlimited": false, "balance": null},
        "individualLimit": null, "spendControlReached": null, "planType": "plus",
        "rateLimitReachedType": if used_percent >= 100 { json!("rate_limit_reached") } else { Value::Null },
    }})
}

/// `account/rateLimits/updated` without a ChatGPT login: every field null.
pub fn rate_limits() -> Value {
    json!({"rateLimits": {
        "limitId": "codex", "limitName": null, "normalModelSlug": null, "primary": null,
        "secondary": null, "credits": null, "individualLimit": null, "spendControlReached": null,
        "planType": null, "rateLimitReachedType": null,
    }})
}

// --- `thread/inject_items`: Responses API items, read as codex 0.171.0 reads them -------------
//
// codex deserializes each item with serde into its `ResponseItem` and refuses the whole call on
// the first that does not parse: `items[<i>] is not a valid response item: <serde's message>`.
// The types below are named and ordered so that serde words its messages as codex's did against
// the real binary (`unknown variant ..., expected one of <in this order>`, `expected internally
// tagged enum ContentItem`, `data did not match any variant of untagged enum ...`: serde names
// the Rust type there, so these carry codex's type names). Unlike the
// request params above they take unknown fields, as codex does: an item may carry an `id`, a
// `status`, `annotations`...

/// The item kinds a proxy injects. Any other `type` parses as `Other`: codex 0.171.0 accepts
/// such an item and never shows it to the model (its own other kinds, `reasoning` and the like,
/// fake-codex takes unchecked and drops too).
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be checked, never read
#[serde(tag = "type")]
enum ResponseItem {
    #[serde(rename = "message")]
    Message {
        role: String,
        content: Vec<ContentItem>,
    },
    #[serde(rename = "function_call")]
    FunctionCall {
        name: String,
        arguments: String,
        call_id: String,
    },
    #[serde(rename = "function_call_output")]
    FunctionCallOutput {
        call_id: String,
        output: FunctionCallOutputBody,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be checked, never read
#[serde(tag = "type")]
enum ContentItem {
    #[serde(rename = "input_text")]
    InputText { text: String },
    #[serde(rename = "input_image")]
    InputImage {
        #[serde(flatten)]
        image: ImageReference,
    },
    #[serde(rename = "input_audio")]
    InputAudio {},
    #[serde(rename = "output_text")]
    OutputText { text: String },
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be checked, never read
#[serde(untagged)]
enum ImageReference {
    Url { image_url: String },
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be checked, never read
#[serde(untagged)]
enum FunctionCallOutputBody {
    #[allow(dead_code)]
    Text(String),
    Content(Vec<OutputContentItem>),
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // parsed to be checked, never read
#[serde(tag = "type")]
enum OutputContentItem {
    #[serde(rename = "input_text")]
    InputText { text: String },
    #[serde(rename = "input_image")]
    InputImage {
        #[serde(flatten)]
        image: ImageReference,
    },
}

/// How serde names a JSON value it did not expect, as codex's messages have it (a number is
/// just `number` where codex reads the item as a whole).
fn unexpected(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(_) => "number".into(),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

/// An injected item as codex keeps it.
pub enum Injected {
    /// Part of the history the model sees: the item as the client sent it.
    Kept(Value),
    /// A `system` message: codex records it but never sends it to the model.
    System(Value),
    /// A kind codex does not know (`ResponseItem::Other`).
    Unknown,
}

/// `items[index]` of `thread/inject_items`, or codex's refusal of it.
pub fn response_item(index: usize, value: &Value) -> Result<Injected, String> {
    let refuse = |why: String| format!("items[{index}] is not a valid response item: {why}");
    // codex reads the item through a wrapper first; these are that wrapper's words.
    let Some(object) = value.as_object() else {
        return Err(refuse(format!(
            "invalid type: {}, expected struct WrappedItem",
            unexpected(value)
        )));
    };
    match object.get("type") {
        None => return Err(refuse("missing field `item`".into())),
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(refuse(format!(
                "invalid type: {}, expected variant identifier",
                unexpected(other)
            )))
        }
    }
    let item: ResponseItem =
        serde_json::from_value(value.clone()).map_err(|err| refuse(err.to_string()))?;
    Ok(match item {
        ResponseItem::Other => Injected::Unknown,
        ResponseItem::Message { .. } if value["role"] == "system" => {
            Injected::System(value.clone())
        }
        _ => Injected::Kept(value.clone()),
    })
}

/// Whether a (parsed) item holds an `input_image` by remote URL, which codex refuses once
/// every item parses.
pub fn has_remote_image(item: &Value) -> bool {
    let parts = match item["type"].as_str() {
        Some("message") => &item["content"],
        Some("function_call_output") => &item["output"],
        _ => return false,
    };
    parts.as_array().into_iter().flatten().any(|part| {
        part["type"] == "input_image"
            && part["image_url"]
                .as_str()
                .is_some_and(|url| !url.starts_with("data:"))
    })
}

/// codex's refusal of an `input_image` that is not a `data:` URL (checked once every item
/// parses).
pub const REMOTE_IMAGE: &str =
    "remote image URLs are not supported; use an inline data URL instead";

/// `thread/inject_items` with no items.
pub const NO_ITEMS: &str = "items must not be empty";

/// The `turnId` codex 0.171.0 puts on the raw events of injected items: they belong to no turn.
pub const INJECTED_TURN_ID: &str = "auto-compact-0";

/// The joined text of a Responses message's or tool output's text parts (a plain-string
/// `output` is its own text).
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

// --- Items of the model's own, as codex keeps them and as its raw events show them ----------

/// A user message of the history.
pub fn input_message(role: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "role": role, "content": content})
}

/// An answer of the model in the history.
pub fn output_message(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
}

pub fn function_call(call_id: &str, name: &str, arguments: &str) -> Value {
    json!({"type": "function_call", "name": name, "arguments": arguments, "call_id": call_id})
}

pub fn function_call_output(call_id: &str, output: Value) -> Value {
    json!({"type": "function_call_output", "call_id": call_id, "output": output})
}

/// The user message codex records when a turn is interrupted.
pub const TURN_ABORTED: &str = "<turn_aborted>\nThe user interrupted the previous turn on purpose. Any running unified exec processes may still be running in the background. If any tools/commands were aborted, they may have partially executed.\n</turn_aborted>";

/// What the model gets for a call the client did not answer before the turn was interrupted.
pub const CALL_CANCELLED: &str = "dynamic tool call was cancelled before receiving a response";
/// ... for a call the client answered with a JSON-RPC error.
pub const CALL_FAILED: &str = "dynamic tool request failed";
/// ... for a call whose result is not `{contentItems, success}`.
pub const CALL_INVALID: &str = "dynamic tool response was invalid";

/// `create_time` of a raw item: unix seconds, fractional.
fn create_time() -> Value {
    json!(now_ms() as f64 / 1000.0)
}

/// An injected item as its `rawResponseItem/completed` shows it: with the `id` codex gives it
/// and the metadata codex adds (as the real 0.171.0 wrote them; a kind it does not know is
/// `{"type": "other"}`).
pub fn raw_injected(item: &Value) -> Value {
    let kind = item["type"].as_str().unwrap_or_default();
    let (Some(fields), Some(prefix)) = (
        item.as_object(),
        match kind {
            "message" => Some("msg"),
            "function_call" => Some("fc"),
            "function_call_output" => Some("fco"),
            _ => None,
        },
    ) else {
        return json!({"type": "other"});
    };
    let mut raw = serde_json::Map::new();
    raw.insert("type".into(), json!(kind));
    raw.insert(
        "id".into(),
        json!(format!("{prefix}_{}", uuid::Uuid::now_v7())),
    );
    raw.extend(
        fields
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "type" | "id"))
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    let mut meta = json!({"turn_id": INJECTED_TURN_ID});
    if kind == "function_call_output" || matches!(item["role"].as_str(), Some("user" | "developer"))
    {
        meta["create_time"] = create_time();
    }
    if kind == "message" {
        let parts = item["content"].as_array().map_or(0, Vec::len);
        meta["content_item_kinds"] = json!(vec!["unknown"; parts]);
    }
    raw.insert("internal_chat_message_metadata_passthrough".into(), meta);
    Value::Object(raw)
}

/// The raw item of a turn's input: a user message of `input_text` parts.
pub fn raw_user_input(id: &str, texts: &[&str], turn_id: &str) -> Value {
    json!({
        "type": "message", "id": id, "role": "user",
        "content": texts.iter().map(|text| json!({"type": "input_text", "text": text})).collect::<Vec<_>>(),
        "internal_chat_message_metadata_passthrough": {
            "turn_id": turn_id, "create_time": create_time(),
            "content_item_kinds": vec!["user.text"; texts.len()],
            "content_item_metadata": vec![json!({"provenance": {"type": "user"}}); texts.len()],
        },
    })
}

/// The raw item of the user message codex writes when a turn is interrupted.
pub fn raw_turn_aborted(turn_id: &str) -> Value {
    json!({
        "type": "message", "id": format!("msg_{}", uuid::Uuid::now_v7()), "role": "user",
        "content": [{"type": "input_text", "text": TURN_ABORTED}],
        "internal_chat_message_metadata_passthrough": {
            "turn_id": turn_id, "create_time": create_time(),
            "content_item_kinds": ["generic.turn_aborted"],
            "content_item_metadata": [{"provenance": {"type": "harness", "hook": false}}],
        },
    })
}

/// The raw item of an answer of the model.
pub fn raw_model_message(id: &str, text: &str, turn_id: &str) -> Value {
    json!({
        "type": "message", "status": "completed", "id": id, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
        "internal_chat_message_metadata_passthrough": {"turn_id": turn_id, "content_item_kinds": ["unknown"]},
    })
}

/// The raw item of a reasoning summary of the model (the Responses `reasoning` item).
pub fn raw_model_reasoning(id: &str, summary: &[&str], turn_id: &str) -> Value {
    json!({
        "type": "reasoning", "id": id,
        "summary": summary.iter().map(|text| json!({"type": "summary_text", "text": text})).collect::<Vec<_>>(),
        "encrypted_content": null,
        "internal_chat_message_metadata_passthrough": {"turn_id": turn_id},
    })
}

/// The raw item of a function call of the model.
pub fn raw_model_call(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    turn_id: &str,
) -> Value {
    json!({
        "type": "function_call", "status": "completed", "id": id, "name": name,
        "arguments": arguments, "call_id": call_id,
        "internal_chat_message_metadata_passthrough": {"turn_id": turn_id},
    })
}

/// The raw item of a tool's result as codex hands it to the model.
pub fn raw_call_output(call_id: &str, output: &Value, turn_id: &str) -> Value {
    json!({
        "type": "function_call_output", "id": format!("fco_{}", uuid::Uuid::now_v7()),
        "call_id": call_id, "output": output,
        "internal_chat_message_metadata_passthrough": {"turn_id": turn_id, "create_time": create_time()},
    })
}

/// A `dynamicToolCall` item: `end` is `(contentItems, success, durationMs, completedAtMs)` once
/// the client answered (or the call was cancelled).
pub fn dynamic_tool_call(
    call_id: &str,
    namespace: Option<&str>,
    tool: &str,
    arguments: &Value,
    started_at_ms: u64,
    end: Option<(Value, bool, u64, u64)>,
) -> Value {
    let (status, content_items, success, duration_ms, completed_at_ms) = match end {
        None => (
            "inProgress",
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ),
        Some((items, success, duration, completed)) => (
            if success { "completed" } else { "failed" },
            items,
            json!(success),
            json!(duration),
            json!(completed),
        ),
    };
    json!({
        "type": "dynamicToolCall", "id": call_id, "namespace": namespace, "tool": tool,
        "arguments": arguments, "status": status, "contentItems": content_items,
        "success": success, "durationMs": duration_ms, "startedAtMs": started_at_ms,
        "completedAtMs": completed_at_ms,
    })
}

/// The client's answer to `item/tool/call` (codex 0.171.0's `DynamicToolCallResponse`).
#[derive(Debug, Deserialize)]
pub struct DynamicToolCallResponse {
    #[serde(rename = "contentItems")]
    pub content_items: Vec<DynamicToolContent>,
    pub success: bool,
}

/// One of `contentItems` (`DynamicToolCallOutputContentItem`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum DynamicToolContent {
    #[serde(rename = "inputText")]
    Text { text: String },
    #[serde(rename = "inputImage")]
    Image {
        #[serde(rename = "imageUrl")]
        image_url: String,
    },
    /// Not something a Responses tool output holds: the model does not get it.
    #[serde(rename = "inputAudio")]
    Audio {
        #[serde(rename = "audioUrl")]
        #[allow(dead_code)]
        audio_url: String,
    },
}

impl DynamicToolCallResponse {
    /// The `function_call_output`'s `output` the model gets: one text is a plain string, as on
    /// the real 0.171.0; anything else a list of Responses content parts.
    pub fn output(&self) -> Value {
        match self.content_items.as_slice() {
            [DynamicToolContent::Text { text }] => json!(text),
            items => Value::Array(
                items
                    .iter()
                    .filter_map(|item| match item {
                        DynamicToolContent::Text { text } => {
                            Some(json!({"type": "input_text", "text": text}))
                        }
                        DynamicToolContent::Image { image_url } => {
                            Some(json!({"type": "input_image", "image_url": image_url}))
                        }
                        DynamicToolContent::Audio { .. } => None,
                    })
                    .collect(),
            ),
        }
    }
}

/// `rawResponse/completed`'s `usage` and `usageMetadata`: the breakdown, and the usage as the
/// Responses API wrote it.
pub fn raw_usage(usage: &codex_openai_proxy::codex::CodexUsage) -> (Value, Value) {
    let metadata = json!({"amount": null, "metadata": {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }});
    (usage_breakdown(usage), metadata)
}

/// An id as the model's ids look: `prefix_` and 12 hex digits (`call_0002ea79970d`).
pub fn model_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..12])
}

/// A thread id as codex reads it: a UUID in any of its spellings, named in the hyphenated one
/// (`thread not found: <that>`), or codex's refusal. The uuid crate codex 0.171.0 builds with
/// words two of its errors more fully than fake-codex's does, and counts a bad character's
/// place from 1: its words are restored here.
pub fn thread_id(id: &str) -> Result<String, String> {
    let err = match uuid::Uuid::parse_str(id) {
        Ok(uuid) => return Ok(uuid.hyphenated().to_string()),
        Err(err) => err.to_string(),
    };
    let err = if let Some(found) = err.strip_prefix("invalid length: found ") {
        format!("invalid length: expected length 32 for simple format, found {found}")
    } else if let Some((found, at)) = err
        .strip_prefix("invalid character: found ")
        .and_then(|rest| rest.rsplit_once(" at "))
    {
        let at = at
            .parse::<usize>()
            .map_or_else(|_| at.to_owned(), |at| (at + 1).to_string());
        format!("invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found {found} at {at}")
    } else {
        err
    };
    Err(format!("invalid thread id: {err}"))
}
