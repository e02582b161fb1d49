//! Running codex: what one answer needs ([`Turn`]), the backend that runs it, and the events
//! that come back. Handlers only see [`Backend`], never a process.

pub mod app_server;
pub mod events;
pub mod exec;
mod launch;
mod lines;
pub mod plan_limits;
mod process;
pub mod versions;

use std::sync::Arc;

use futures_util::stream::BoxStream;

use crate::{conversation::Conversation, error::ProxyError, tools::ToolSet};
pub use app_server::{AppServerBackend, MAX_KEPT_THREADS};
pub use events::{CodexUsage, ItemDetails, ThreadEvent, ThreadItem};
pub use exec::ExecBackend;
pub use launch::{VersionProbe, PASSED_ENV};

/// Everything codex needs for one answer, built once from the request.
#[derive(Debug, Clone)]
pub struct Turn {
    pub input: TurnInput,
    /// Passed as `-m`; `None` lets codex use its configured default.
    pub model: Option<String>,
    /// The reasoning effort for this turn only; `None` keeps codex's configured one.
    pub effort: Option<String>,
    /// A JSON Schema the answer must follow, passed with `--output-schema`.
    pub output_schema: Option<serde_json::Value>,
    /// Whether the turn's thread outlives it.
    pub thread: ThreadUse,
    /// Where codex works for this turn (a directory inside `CODEX_WORKDIR`); `None` keeps the
    /// server's choice.
    pub workdir: Option<std::path::PathBuf>,
    /// A sandbox for this turn; never more open than the server's own (the stricter wins).
    pub sandbox: Option<crate::config::Sandbox>,
}

/// What becomes of a turn's thread. The APIs send the whole conversation each time, so their
/// turns each get a thread of their own; the MCP tools keep one for the next call
/// ([`Backend::keeps_threads`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ThreadUse {
    /// A new thread, let go when the turn ends.
    #[default]
    Once,
    /// A new thread, kept under this key once the turn ends.
    Keep(String),
    /// The next turn of the thread kept under this key; the turn's conversation is only the
    /// new message.
    Continue(String),
}

impl Turn {
    /// The turn for `conversation` and its tools, as every API builds it: the backend renders
    /// it as it takes it (one prompt on exec, items on app-server); a JSON object answer is asked
    /// for in words, a JSON schema becomes the turn's output schema.
    pub fn new(
        conversation: Conversation,
        tools: Option<Arc<ToolSet>>,
        format: &crate::structured::ResponseFormat,
        model: Option<String>,
        effort: Option<String>,
    ) -> Turn {
        use crate::structured::{ResponseFormat, JSON_OBJECT_INSTRUCTION};
        Turn {
            input: TurnInput::Items {
                conversation,
                tools,
                instructions: (*format == ResponseFormat::JsonObject)
                    .then(|| JSON_OBJECT_INSTRUCTION.to_owned())
                    .into_iter()
                    .collect(),
            },
            model,
            effort,
            output_schema: match format {
                ResponseFormat::JsonSchema(schema) => Some(schema.clone()),
                _ => None,
            },
            thread: ThreadUse::Once,
            workdir: None,
            sandbox: None,
        }
    }
}

/// The conversation, in the form the backend takes it ([`Backend::takes_items`]).
#[derive(Debug, Clone)]
pub enum TurnInput {
    /// One prompt (`codex exec`): the conversation rendered as text, the client's tools
    /// described in it.
    Prompt {
        /// Written to codex's stdin.
        text: String,
        /// Attached with `-i`, in order; the prompt refers to them as `[image N]`.
        images: Vec<crate::images::Image>,
    },
    /// The conversation as items and the client's tools as function tools (app-server).
    Items {
        conversation: Conversation,
        tools: Option<Arc<ToolSet>>,
        /// More developer instructions the API adds (the JSON answer `response_format` asks
        /// for, how to use the tools).
        instructions: Vec<String>,
    },
}

impl TurnInput {
    /// The prompt `codex exec` reads and the images it refers to; items are rendered into one.
    pub fn into_prompt(self) -> (String, Vec<crate::images::Image>) {
        match self {
            TurnInput::Prompt { text, images } => (text, images),
            TurnInput::Items {
                conversation,
                tools,
                instructions,
            } => {
                let mut rendered = crate::prompt::render(conversation, tools.as_deref());
                for instruction in instructions {
                    rendered.text.push_str("\n\n");
                    rendered.text.push_str(&instruction);
                }
                (rendered.text, rendered.images)
            }
        }
    }

    /// A plain prompt with no images (`doctor`, tests).
    pub fn text(text: impl Into<String>) -> Self {
        TurnInput::Prompt {
            text: text.into(),
            images: Vec::new(),
        }
    }
}

/// What a running codex reports, in order. A run ends with `turn.completed` or `turn.failed`
/// among its events, with [`RunEvent::Failed`], or with [`RunEvent::Exited`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Event(ThreadEvent),
    /// A piece of an item codex is still writing; the item's `item.completed` follows with the
    /// whole text. Only a backend that sees tokens as they come (app-server) sends these.
    Partial(Partial),
    /// The model called one of the client's tools (native tools, app-server): the client's
    /// tool call. The run's `turn.completed` follows once the model's response is over.
    ToolCall(NativeCall),
    /// The turn failed, already classified by the backend (app-server's structured errors).
    Failed(ProxyError),
    /// The codex process ended.
    Exited(ExitReport),
}

/// A streamed piece of an item, as `item/agentMessage/delta` or a reasoning summary delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    pub item_id: String,
    pub kind: PartialKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialKind {
    AgentMessage,
    /// A part of the reasoning summary; parts are joined with a newline.
    ReasoningSummary {
        part: u32,
    },
}

/// A call the model made of one of the client's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeCall {
    /// codex's call id: the client's result for it comes back under this id.
    pub id: String,
    pub name: String,
    /// Compact JSON.
    pub arguments: String,
}

/// How the codex process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitReport {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// The last lines codex wrote to stderr, for errors that carry no event.
    pub stderr_tail: String,
}

/// A model codex offers (`model/list` on the app-server backend), with the reasoning efforts
/// it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexModel {
    pub id: String,
    pub efforts: Vec<String>,
    /// The model codex uses when none is named: the one behind `codex-local`.
    pub is_default: bool,
}

/// Shared handle used by the app state.
pub type SharedBackend = std::sync::Arc<dyn Backend>;

/// The stream a run produces. Dropping it stops the run and releases everything it holds.
pub type RunStream = BoxStream<'static, RunEvent>;

/// Whether codex can be run, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodexStatus {
    Ready { path: String, version: String },
    Unavailable { reason: String },
}

/// Runs one turn of codex. The `exec` backend starts one `codex exec --json` per turn; the
/// `app-server` backend runs the turn on one long-lived `codex app-server`.
pub trait Backend: Send + Sync + 'static {
    /// Starts codex on `turn`. Errors here happen before any response is sent, so they keep
    /// their HTTP status even when the client asked for a stream.
    fn run(&self, turn: Turn)
        -> futures_util::future::BoxFuture<'_, Result<RunStream, ProxyError>>;

    /// Whether the backend takes the conversation as items and the tools as function tools
    /// ([`TurnInput::Items`]); otherwise it takes one prompt.
    fn takes_items(&self) -> bool {
        false
    }

    /// Reports whether codex is installed and its version, without running a model.
    fn status(&self) -> futures_util::future::BoxFuture<'_, CodexStatus>;

    /// The plan's usage limits as codex last reported them; `None` when it has not (`exec`
    /// reports none, and neither does an API-key login).
    fn plan_limits(&self) -> Option<plan_limits::PlanLimits> {
        None
    }

    /// The models codex offers, as last fetched in the background; empty when unknown (`exec`
    /// cannot ask).
    fn models(&self) -> Vec<CodexModel> {
        Vec::new()
    }

    /// Whether a turn's thread can outlive it ([`ThreadUse::Keep`]): app-server's threads stay
    /// loaded in its process; each `codex exec` ends with its thread.
    fn keeps_threads(&self) -> bool {
        false
    }

    /// Whether this backend keeps the thread under `key`.
    fn holds_thread(&self, _key: &str) -> bool {
        false
    }

    /// Lets the thread kept under `key` go (after its running turn, if one runs).
    fn forget_thread(&self, _key: &str) {}
}
