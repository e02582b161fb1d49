//! The translator: a pure state machine from codex events to API-neutral deltas.
//!
//! No I/O happens here, so every case is a unit test. Streaming sends the deltas as SSE chunks;
//! non-streaming folds the very same deltas into one reply, so the two cannot disagree. Every
//! API renders the same deltas, so an API adds a converter of its request and a renderer of
//! deltas, and nothing here.
//!
//! Each way a request shapes its answer is a part of its own, and [`Translator`] only routes
//! events to them: where tool calls come from (`calls`), what the text must be (`format`),
//! where content ends (`stop`), where reasoning goes (`reasoning`), how items join
//! (`items`) and how the turn ends (`finish`).

mod calls;
mod delta;
mod finish;
#[cfg(test)]
mod fixtures;
mod format;
mod items;
mod reasoning;
mod stop;

use std::{collections::HashMap, sync::Arc};

use self::{
    calls::Calls,
    finish::{exit_failure, Progress, Tally},
    format::Format,
    items::{joined, rest_of},
    reasoning::Reasoning,
    stop::StopSequences,
};
pub use self::{
    delta::{Delta, FinishReason, ToolCall},
    reasoning::ReasoningOutput,
};
use crate::{
    codex::{CodexUsage, ExitReport, ItemDetails, Partial, PartialKind, RunEvent, ThreadEvent},
    error::ProxyError,
    tools::ToolSet,
};

/// How one request wants its answer shaped.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub tools: Option<Arc<ToolSet>>,
    /// The backend offers the tools to the model as function tools and reports its calls as
    /// events: nothing is read out of the text, which streams as it comes.
    pub native_tools: bool,
    pub reasoning_output: ReasoningOutput,
    pub stop: Vec<String>,
    /// `response_format` asked for JSON: code fences come off and the answer must parse.
    pub json: bool,
    /// Report the commands codex runs as [`Delta::Ran`] (MCP's progress); the APIs' answers
    /// have no place for them.
    pub report_commands: bool,
}

/// One turn's translation: fed the turn's events in order, it yields the answer's deltas.
#[derive(Debug)]
pub struct Translator {
    calls: Calls,
    format: Format,
    /// The answer's content, which ends at the first stop sequence.
    content: StopSequences,
    /// Agent messages streamed piece by piece so far, by item id, with their text: their
    /// completion only adds what the pieces missed.
    streamed: HashMap<String, String>,
    reasoning: Reasoning,
    tally: Tally,
    progress: Progress,
    report_commands: bool,
}

impl Translator {
    pub fn new(prompt: Arc<str>, tools: Option<Arc<ToolSet>>) -> Self {
        Translator::with_options(
            prompt,
            Options {
                tools,
                ..Options::default()
            },
        )
    }

    pub fn with_options(prompt: Arc<str>, options: Options) -> Self {
        Translator {
            calls: Calls::new(options.tools, options.native_tools),
            format: Format::new(options.json),
            content: StopSequences::new(options.stop),
            streamed: HashMap::new(),
            reasoning: Reasoning::new(options.reasoning_output),
            tally: Tally::new(prompt),
            progress: Progress::new(),
            report_commands: options.report_commands,
        }
    }

    pub fn on_run_event(&mut self, event: RunEvent) -> Vec<Delta> {
        match event {
            RunEvent::Event(event) => self.on_event(event),
            RunEvent::Partial(partial) => self.on_partial(partial),
            RunEvent::ToolCall(call) => {
                if self.progress.is_ended() || self.content.stopped() {
                    return Vec::new();
                }
                vec![Delta::ToolCall(self.calls.native(call))]
            }
            RunEvent::Failed(err) => match self.progress.end() {
                Some(_) => vec![Delta::Failed(err)],
                None => Vec::new(),
            },
            RunEvent::Exited(report) => self.on_exit(report),
        }
    }

    pub fn on_event(&mut self, event: ThreadEvent) -> Vec<Delta> {
        if self.progress.is_ended() {
            return Vec::new();
        }
        match event {
            ThreadEvent::ItemCompleted { item } => match item.details {
                ItemDetails::AgentMessage { text } => {
                    self.tally.message(&text);
                    match self.streamed.remove(&item.id) {
                        Some(streamed) => self.rest_of_message(&streamed, &text),
                        None => self.agent_message(text),
                    }
                }
                ItemDetails::Reasoning { text } => self
                    .reasoning
                    .completed(&item.id, text, self.content.stopped())
                    .into_iter()
                    .collect(),
                ItemDetails::Error { message } => {
                    tracing::warn!(%message, "codex warning");
                    Vec::new()
                }
                ItemDetails::CommandExecution {
                    command, exit_code, ..
                } => {
                    // The command can carry the user's words: debug only.
                    tracing::debug!(%command, ?exit_code, "codex ran a command");
                    match self.report_commands {
                        true => vec![Delta::Ran { command, exit_code }],
                        false => Vec::new(),
                    }
                }
                ItemDetails::Other => Vec::new(),
            },
            ThreadEvent::Error { message } => {
                tracing::warn!(%message, "codex reported an error");
                self.progress.notice(message);
                Vec::new()
            }
            ThreadEvent::TurnFailed { error } => {
                self.progress.end();
                vec![Delta::Failed(ProxyError::codex_failed(error.message))]
            }
            ThreadEvent::TurnCompleted { usage } => {
                self.progress.end();
                vec![self.completed(&usage)]
            }
            ThreadEvent::ThreadStarted { .. }
            | ThreadEvent::TurnStarted
            | ThreadEvent::ItemStarted { .. }
            | ThreadEvent::ItemUpdated { .. }
            | ThreadEvent::Unknown => Vec::new(),
        }
    }

    /// The turn completed: the answer, if it is one.
    fn completed(&self, usage: &CodexUsage) -> Delta {
        if !self.tally.has_message() && !self.calls.any() {
            return Delta::Failed(ProxyError::codex_failed(
                "codex finished the turn without an answer (no agent message)",
            ));
        }
        if !self.calls.any() {
            if let Err(err) = self.format.check(self.content.accepted()) {
                return Delta::Failed(err);
            }
        }
        Delta::Finish {
            reason: self.calls.finish_reason(),
            usage: self.tally.usage(usage, self.reasoning.text()),
        }
    }

    /// Whether content may go out piece by piece. Tool calls written in the text and JSON can
    /// only be read in a whole message, so those answers wait for it.
    fn streams_content(&self) -> bool {
        self.calls.text_streams() && self.format.streams()
    }

    /// `text` after a separator when content went before it.
    fn after_content(&self, text: String) -> String {
        joined(!self.content.accepted().is_empty(), text)
    }

    /// A piece of an item codex is still writing: sent at once where the answer's shape allows.
    pub fn on_partial(&mut self, partial: Partial) -> Vec<Delta> {
        if self.progress.is_ended() {
            return Vec::new();
        }
        match partial.kind {
            PartialKind::AgentMessage => {
                if !self.streams_content() || self.content.stopped() {
                    return Vec::new();
                }
                let text = match self.streamed.get_mut(&partial.item_id) {
                    Some(streamed) => {
                        streamed.push_str(&partial.text);
                        partial.text
                    }
                    None => {
                        let text = self.after_content(partial.text.clone());
                        self.streamed.insert(partial.item_id, partial.text);
                        text
                    }
                };
                self.content
                    .accept(&text, false)
                    .map(Delta::Content)
                    .into_iter()
                    .collect()
            }
            PartialKind::ReasoningSummary { part } => self
                .reasoning
                .piece(partial.item_id, part, &partial.text, self.content.stopped())
                .into_iter()
                .collect(),
        }
    }

    /// A streamed message completed: only what its pieces did not carry is sent.
    fn rest_of_message(&mut self, streamed: &str, text: &str) -> Vec<Delta> {
        if self.content.stopped() {
            return Vec::new();
        }
        let rest = match rest_of(streamed, text) {
            Some(rest) if streamed.is_empty() => self.after_content(rest),
            Some(rest) => rest,
            None => String::new(),
        };
        self.content
            .accept(&rest, true)
            .map(Delta::Content)
            .into_iter()
            .collect()
    }

    /// A whole agent message: content, or with tools in the text, prose and the calls read out
    /// of it.
    fn agent_message(&mut self, text: String) -> Vec<Delta> {
        let (prose, found) = match self.calls.extract(&text) {
            Some(extraction) => (extraction.content, extraction.calls),
            None => (self.format.content(text), Vec::new()),
        };
        let mut deltas = Vec::new();
        if self.content.stopped() {
            return deltas;
        }
        if !prose.is_empty() {
            let prose = self.after_content(prose);
            deltas.extend(self.content.accept(&prose, true).map(Delta::Content));
            if self.content.stopped() {
                return deltas;
            }
        }
        deltas.extend(self.calls.found(found).into_iter().map(Delta::ToolCall));
        deltas
    }

    /// codex exited. Without `turn.completed` or `turn.failed` before it, the turn failed,
    /// whatever it printed: an agent message is not an answer until the turn completes.
    pub fn on_exit(&mut self, report: ExitReport) -> Vec<Delta> {
        match self.progress.end() {
            Some(running) => vec![Delta::Failed(exit_failure(report, running))],
            None => Vec::new(),
        }
    }
}
