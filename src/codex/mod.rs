//! Running codex: what one answer needs ([`Turn`]), the backend that runs it, and the events
//! that come back. Handlers only see [`Backend`], never a process.

pub mod events;
pub mod exec;
mod lines;
mod process;

use futures_util::stream::BoxStream;

use crate::error::ProxyError;
pub use events::{CodexUsage, ItemDetails, ThreadEvent, ThreadItem};

/// Everything codex needs for one answer, built once from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The rendered conversation, written to codex's stdin.
    pub prompt: String,
    /// Passed as `-m`; `None` lets codex use its configured default.
    pub model: Option<String>,
    /// Attached with `-i`, in order; the prompt refers to them as `[image N]`.
    pub images: Vec<crate::images::Image>,
    /// `-c key=value` overrides for this turn only (reasoning effort).
    pub config: Vec<String>,
    /// A JSON Schema the answer must follow, passed with `--output-schema`.
    pub output_schema: Option<serde_json::Value>,
}

/// What a running codex reports: its events in order, then exactly one [`RunEvent::Exited`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Event(ThreadEvent),
    Exited(ExitReport),
}

/// How the codex process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitReport {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// The last lines codex wrote to stderr, for errors that carry no event.
    pub stderr_tail: String,
}

/// The stream a run produces. Dropping it stops the run and releases everything it holds.
pub type RunStream = BoxStream<'static, RunEvent>;

/// Whether codex can be run, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodexStatus {
    Ready { path: String, version: String },
    Unavailable { reason: String },
}

/// Runs one turn of codex. The `exec` backend starts one `codex exec --json` per turn.
pub trait Backend: Send + Sync + 'static {
    /// Starts codex for `turn`. Errors here happen before any response is sent.
    fn run(&self, turn: Turn) -> Result<RunStream, ProxyError>;

    /// Reports whether codex is installed and its version, without running a model.
    fn status(&self) -> futures_util::future::BoxFuture<'_, CodexStatus>;
}
