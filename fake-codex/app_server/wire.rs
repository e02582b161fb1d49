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
    /// `{experimentalApi?, optOutNotificationMethods?}`: known to codex, unused here.
    #[serde(default)]
    #[allow(dead_code)]
    pub capabilities: Option<Value>,
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
    LocalImage { path: String },
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
                "summary",
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
