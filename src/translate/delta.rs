//! What the translator yields: one answer as API-neutral steps. Each API renders the same deltas
//! in its own shape, streamed or folded into one reply, so no API decides anything about the answer.

use crate::{error::ProxyError, usage::TokenUsage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    ToolCalls,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::ToolCalls => "tool_calls",
        }
    }
}

/// One complete tool call, placed by `index` among the answer's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub index: u32,
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One step of an OpenAI answer. A turn yields content, reasoning and tool calls in order, then
/// exactly one terminal delta: `Finish` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Reasoning(String),
    Content(String),
    ToolCall(ToolCall),
    /// A command codex ran (agent mode), reported only when [`super::Options`] asks: what an
    /// agent watching codex work is shown. No API answer carries it.
    Ran {
        command: String,
        exit_code: Option<i64>,
    },
    Finish {
        reason: FinishReason,
        usage: TokenUsage,
    },
    Failed(ProxyError),
}

impl Delta {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Delta::Finish { .. } | Delta::Failed(_))
    }
}
