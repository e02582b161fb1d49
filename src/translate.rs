//! The translator: a pure state machine from codex events to OpenAI deltas.
//!
//! No I/O happens here, so every case is a unit test. Streaming sends the deltas as SSE chunks;
//! non-streaming folds the very same deltas into one reply, so the two cannot disagree.

use std::{collections::HashMap, sync::Arc};

use crate::{
    codex::{ExitReport, ItemDetails, Partial, PartialKind, RunEvent, ThreadEvent},
    error::ProxyError,
    structured,
    tools::{self, extract::extract, ToolChoice, ToolSet},
    usage::TokenUsage,
};

/// Separates consecutive agent messages (and reasoning items) of one turn.
const ITEM_SEPARATOR: &str = "\n\n";

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

/// Where codex's reasoning summary goes (`REASONING_OUTPUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningOutput {
    /// `reasoning_content`, which OpenWebUI shows as a collapsible block.
    #[default]
    ReasoningContent,
    /// Inside the content, wrapped in `<think>` tags, for clients that read content only.
    Think,
    /// Left out.
    None,
}

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

#[derive(Debug)]
pub struct Translator {
    /// The prompt as codex received it, counted only when codex reports no usage.
    prompt: Arc<str>,
    /// The client's tools; when set (and not native), calls are read out of every agent
    /// message.
    tools: Option<Arc<ToolSet>>,
    native_tools: bool,
    reasoning_output: ReasoningOutput,
    /// The request's stop sequences: content ends before the first one.
    stop: Vec<String>,
    json: bool,
    /// The content accepted so far: whether the next message needs a separator, where a stop
    /// sequence spanning two messages begins, and the JSON answer to check.
    sent: String,
    /// How much of `sent` has gone out. Less than all of it only while a streamed message
    /// holds back a tail that could be the start of a stop sequence.
    emitted: usize,
    /// A stop sequence was met: no more content or calls.
    stopped: bool,
    answer: String,
    reasoning: String,
    messages: usize,
    reasonings: usize,
    calls: u32,
    /// The last top-level `error` notice: the reason when codex ends without `turn.failed`.
    last_notice: Option<String>,
    /// Items streamed piece by piece so far, by item id: their completion only adds what the
    /// pieces missed.
    streamed: HashMap<String, Streamed>,
    finished: bool,
}

/// What was sent of an item still being written.
#[derive(Debug, Default)]
struct Streamed {
    /// The item's text so far, without the separator sent before it.
    text: String,
    /// The reasoning summary part the last piece belonged to.
    part: u32,
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
            prompt,
            tools: options.tools,
            native_tools: options.native_tools,
            reasoning_output: options.reasoning_output,
            stop: options.stop,
            json: options.json,
            sent: String::new(),
            emitted: 0,
            stopped: false,
            answer: String::new(),
            reasoning: String::new(),
            messages: 0,
            reasonings: 0,
            calls: 0,
            last_notice: None,
            streamed: HashMap::new(),
            finished: false,
        }
    }

    pub fn on_run_event(&mut self, event: RunEvent) -> Vec<Delta> {
        match event {
            RunEvent::Event(event) => self.on_event(event),
            RunEvent::Partial(partial) => self.on_partial(partial),
            RunEvent::ToolCall(call) => {
                if self.finished || self.stopped {
                    return Vec::new();
                }
                let index = self.calls;
                self.calls += 1;
                vec![Delta::ToolCall(ToolCall {
                    index,
                    id: call.id,
                    name: call.name,
                    arguments: call.arguments,
                })]
            }
            RunEvent::Failed(err) => {
                if std::mem::replace(&mut self.finished, true) {
                    return Vec::new();
                }
                vec![Delta::Failed(err)]
            }
            RunEvent::Exited(report) => self.on_exit(report),
        }
    }

    pub fn on_event(&mut self, event: ThreadEvent) -> Vec<Delta> {
        if self.finished {
            return Vec::new();
        }
        match event {
            ThreadEvent::ItemCompleted { item } => match item.details {
                ItemDetails::AgentMessage { text } => {
                    self.messages += 1;
                    self.answer.push_str(&text);
                    match self.streamed.remove(&item.id) {
                        Some(streamed) => self.rest_of_message(&streamed.text, &text),
                        None => self.agent_message(text),
                    }
                }
                ItemDetails::Reasoning { text } if self.streamed.contains_key(&item.id) => {
                    let streamed = self.streamed.remove(&item.id).unwrap_or_default();
                    let rest = rest_of(&streamed.text, &text);
                    self.reasoning.push_str(&text);
                    self.reasonings += 1;
                    match self.reasoning_output {
                        ReasoningOutput::Think => vec![Delta::Content(format!(
                            "{}\n</think>\n\n",
                            rest.unwrap_or_default()
                        ))],
                        _ => rest.map(Delta::Reasoning).into_iter().collect(),
                    }
                }
                ItemDetails::Reasoning { text } if !text.is_empty() => {
                    let text = joined(self.reasonings > 0, text);
                    self.reasonings += 1;
                    self.reasoning.push_str(&text);
                    match self.reasoning_output {
                        ReasoningOutput::ReasoningContent => vec![Delta::Reasoning(text)],
                        ReasoningOutput::Think if !self.stopped => {
                            vec![Delta::Content(format!(
                                "<think>\n{}\n</think>\n\n",
                                text.trim()
                            ))]
                        }
                        ReasoningOutput::Think | ReasoningOutput::None => Vec::new(),
                    }
                }
                ItemDetails::Error { message } => {
                    tracing::warn!(%message, "codex warning");
                    Vec::new()
                }
                ItemDetails::CommandExecution {
                    command, exit_code, ..
                } => {
                    // The command can carry the user's words: debug only.
                    tracing::debug!(%command, ?exit_code, "codex ran a command");
                    Vec::new()
                }
                ItemDetails::Reasoning { .. } | ItemDetails::Other => Vec::new(),
            },
            ThreadEvent::Error { message } => {
                tracing::warn!(%message, "codex reported an error");
                self.last_notice = Some(message);
                Vec::new()
            }
            ThreadEvent::TurnFailed { error } => {
                self.finished = true;
                vec![Delta::Failed(ProxyError::codex_failed(error.message))]
            }
            ThreadEvent::TurnCompleted { usage } => {
                self.finished = true;
                if self.messages == 0 && self.calls == 0 {
                    return vec![Delta::Failed(ProxyError::codex_failed(
                        "codex finished the turn without an answer (no agent message)",
                    ))];
                }
                if self.json
                    && self.calls == 0
                    && serde_json::from_str::<serde_json::Value>(&self.sent).is_err()
                {
                    return vec![Delta::Failed(ProxyError::codex_failed(
                        "codex's answer is not valid JSON, though response_format asked for JSON",
                    ))];
                }
                let reason = if self.calls > 0 {
                    FinishReason::ToolCalls
                } else {
                    if let Some(set) = self
                        .tools
                        .as_ref()
                        .filter(|set| set.choice != ToolChoice::Auto)
                    {
                        tracing::warn!(choice = ?set.choice, "tool_choice asked for a call but the answer has none");
                    }
                    FinishReason::Stop
                };
                let usage = if usage.input_tokens == 0 && usage.output_tokens == 0 {
                    tracing::debug!("codex reported no token usage; counting with o200k");
                    TokenUsage::estimate(&self.prompt, &self.answer, &self.reasoning)
                } else {
                    TokenUsage::from_codex(&usage)
                };
                vec![Delta::Finish { reason, usage }]
            }
            ThreadEvent::ThreadStarted { .. }
            | ThreadEvent::TurnStarted
            | ThreadEvent::ItemStarted { .. }
            | ThreadEvent::ItemUpdated { .. }
            | ThreadEvent::Unknown => Vec::new(),
        }
    }

    /// Whether content may go out piece by piece. Tool calls written in the text and JSON can
    /// only be read in a whole message, so those answers wait for it.
    fn streams_content(&self) -> bool {
        (self.tools.is_none() || self.native_tools) && !self.json
    }

    /// A piece of an item codex is still writing: sent at once where the answer's shape allows.
    pub fn on_partial(&mut self, partial: Partial) -> Vec<Delta> {
        if self.finished {
            return Vec::new();
        }
        let first = !self.streamed.contains_key(&partial.item_id);
        match partial.kind {
            PartialKind::AgentMessage => {
                if !self.streams_content() || self.stopped {
                    return Vec::new();
                }
                let text = joined(first && !self.sent.is_empty(), partial.text.clone());
                self.streamed
                    .entry(partial.item_id)
                    .or_default()
                    .text
                    .push_str(&partial.text);
                self.accept(&text, false)
                    .map(Delta::Content)
                    .into_iter()
                    .collect()
            }
            PartialKind::ReasoningSummary { part } => {
                let think = match self.reasoning_output {
                    ReasoningOutput::ReasoningContent => false,
                    ReasoningOutput::Think if !self.stopped => true,
                    ReasoningOutput::Think | ReasoningOutput::None => return Vec::new(),
                };
                let entry = self.streamed.entry(partial.item_id).or_default();
                let separator = if think && first {
                    // Each reasoning item is a `<think>` block of its own, closed on completion.
                    "<think>\n"
                } else if first && self.reasonings > 0 {
                    ITEM_SEPARATOR
                } else if !first && part != entry.part {
                    entry.text.push('\n');
                    "\n"
                } else {
                    ""
                };
                entry.part = part;
                entry.text.push_str(&partial.text);
                if first && self.reasonings > 0 {
                    self.reasoning.push_str(ITEM_SEPARATOR);
                }
                let text = format!("{separator}{}", partial.text);
                vec![if think {
                    Delta::Content(text)
                } else {
                    Delta::Reasoning(text)
                }]
            }
        }
    }

    /// A streamed message completed: only what its pieces did not carry is sent.
    fn rest_of_message(&mut self, streamed: &str, text: &str) -> Vec<Delta> {
        if self.stopped {
            return Vec::new();
        }
        let rest = rest_of(streamed, text)
            .map(|rest| joined(streamed.is_empty() && !self.sent.is_empty(), rest))
            .unwrap_or_default();
        self.accept(&rest, true)
            .map(Delta::Content)
            .into_iter()
            .collect()
    }

    /// An agent message: content, or with tools in play, prose and the calls read out of it.
    fn agent_message(&mut self, text: String) -> Vec<Delta> {
        let (prose, found) = match &self.tools {
            Some(set) if !self.native_tools => {
                let extraction = extract(&text, set);
                (extraction.content, extraction.calls)
            }
            _ if self.json => (structured::unfence(&text).to_owned(), Vec::new()),
            _ => (text, Vec::new()),
        };
        let mut deltas = Vec::new();
        if self.stopped {
            return deltas;
        }
        if !prose.is_empty() {
            let prose = joined(!self.sent.is_empty(), prose);
            let prose = self.accept(&prose, true).unwrap_or_default();
            if !prose.is_empty() {
                deltas.push(Delta::Content(prose));
            }
            if self.stopped {
                return deltas;
            }
        }
        let parallel = self.tools.as_ref().is_none_or(|set| set.parallel);
        for call in found {
            if !parallel && self.calls > 0 {
                tracing::warn!(tool = %call.name, "parallel_tool_calls is false; dropping a further call");
                continue;
            }
            deltas.push(Delta::ToolCall(ToolCall {
                index: self.calls,
                id: tools::call_id(),
                name: call.name,
                arguments: call.arguments,
            }));
            self.calls += 1;
        }
        deltas
    }

    /// Takes `text` into the content and returns what may go out now: everything up to the
    /// first stop sequence (which sets `stopped`), counting sequences that begin in content
    /// already accepted. Within a message still being written (`complete` false) the last
    /// characters that could begin a stop sequence wait for the next piece.
    fn accept(&mut self, text: &str, complete: bool) -> Option<String> {
        self.sent.push_str(text);
        let first = self
            .stop
            .iter()
            .filter_map(|s| self.sent.find(s.as_str()))
            .min();
        let until = match first {
            Some(at) => {
                self.stopped = true;
                at
            }
            None if complete => self.sent.len(),
            None => {
                let longest = self.stop.iter().map(String::len).max().unwrap_or(0);
                let mut safe = self.sent.len() - longest.saturating_sub(1).min(self.sent.len());
                while !self.sent.is_char_boundary(safe) {
                    safe -= 1;
                }
                safe
            }
        };
        let out = self
            .sent
            .get(self.emitted..until)
            .unwrap_or_default()
            .to_owned();
        self.emitted = self.emitted.max(until);
        (!out.is_empty()).then_some(out)
    }

    /// codex exited. Without `turn.completed` or `turn.failed` before it, the turn failed,
    /// whatever it printed: an agent message is not an answer until the turn completes.
    pub fn on_exit(&mut self, report: ExitReport) -> Vec<Delta> {
        if std::mem::replace(&mut self.finished, true) {
            return Vec::new();
        }
        let status = match report.code {
            Some(code) => format!("exit code {code}"),
            None => "a signal".to_owned(),
        };
        let mut message = match self.last_notice.take() {
            Some(notice) => notice,
            None => format!("codex ended ({status}) before finishing the turn"),
        };
        let stderr = report.stderr_tail.trim();
        if !stderr.is_empty() {
            message.push_str(&format!("; codex stderr: {}", last_chars(stderr, 1000)));
        }
        vec![Delta::Failed(ProxyError::codex_failed(message))]
    }
}

/// What `text` adds to the `streamed` pieces of the same item; `None` when nothing is left. Should
/// the pieces not be a prefix of the whole (they always are with codex 0.169.0), what was sent
/// stays sent and the difference is logged.
fn rest_of(streamed: &str, text: &str) -> Option<String> {
    match text.strip_prefix(streamed) {
        Some("") => None,
        Some(rest) => Some(rest.to_owned()),
        None => {
            tracing::warn!(
                streamed = streamed.len(),
                whole = text.len(),
                "an item's streamed pieces differ from its final text"
            );
            None
        }
    }
}

/// `text`, after a separator when it follows an earlier item of the same kind.
fn joined(after_another: bool, text: String) -> String {
    if after_another {
        format!("{ITEM_SEPARATOR}{text}")
    } else {
        text
    }
}

fn last_chars(text: &str, max: usize) -> &str {
    let count = text.chars().count();
    if count <= max {
        return text;
    }
    let start = text.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::{CodexUsage, ThreadItem};
    use crate::error::FailureKind;

    fn completed(id: &str, details: ItemDetails) -> ThreadEvent {
        ThreadEvent::ItemCompleted {
            item: ThreadItem {
                id: id.into(),
                details,
            },
        }
    }

    fn message(text: &str) -> ThreadEvent {
        completed("item_0", ItemDetails::AgentMessage { text: text.into() })
    }

    fn run(events: Vec<ThreadEvent>, exit: Option<ExitReport>) -> Vec<Delta> {
        let mut translator = Translator::new(Arc::from("say hi"), None);
        let mut deltas: Vec<Delta> = events
            .into_iter()
            .flat_map(|e| translator.on_event(e))
            .collect();
        deltas.extend(translator.on_exit(exit.unwrap_or_default()));
        deltas
    }

    const USAGE: CodexUsage = CodexUsage {
        input_tokens: 120,
        cached_input_tokens: 40,
        cache_write_input_tokens: 0,
        output_tokens: 19,
        reasoning_output_tokens: 7,
    };

    #[test]
    fn several_messages_are_joined_with_a_blank_line_and_usage_is_codexs() {
        let deltas = run(
            vec![
                completed(
                    "item_0",
                    ItemDetails::Reasoning {
                        text: "think".into(),
                    },
                ),
                message("one"),
                message("two"),
                ThreadEvent::TurnCompleted { usage: USAGE },
            ],
            None,
        );
        assert_eq!(deltas[0], Delta::Reasoning("think".into()));
        assert_eq!(deltas[1], Delta::Content("one".into()));
        assert_eq!(deltas[2], Delta::Content("\n\ntwo".into()));
        assert_eq!(
            deltas[3],
            Delta::Finish {
                reason: FinishReason::Stop,
                usage: TokenUsage::from_codex(&USAGE)
            }
        );
        assert_eq!(deltas.len(), 4, "exit after completion adds nothing");
    }

    #[test]
    fn zero_usage_is_estimated() {
        let deltas = run(
            vec![
                message("Hello from the mock model."),
                ThreadEvent::TurnCompleted {
                    usage: CodexUsage::default(),
                },
            ],
            None,
        );
        let Delta::Finish { usage, .. } = &deltas[1] else {
            panic!("{deltas:?}")
        };
        assert!(usage.estimated);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2, 6));
    }

    #[test]
    fn an_answer_then_exit_without_completion_is_a_failure() {
        let deltas = run(
            vec![message("partial"), ThreadEvent::Error { message: "stream disconnected before completion: stream closed before response.completed".into() }],
            Some(ExitReport { code: Some(1), stderr_tail: String::new() }),
        );
        assert_eq!(deltas[0], Delta::Content("partial".into()));
        let Delta::Failed(err) = &deltas[1] else {
            panic!("{deltas:?}")
        };
        assert!(err.message().starts_with("stream disconnected"));
        assert_eq!(deltas.len(), 2);
    }

    #[test]
    fn a_crash_reports_the_exit_and_stderr() {
        let deltas = run(
            vec![],
            Some(ExitReport {
                code: None,
                stderr_tail: "thread 'main' panicked".into(),
            }),
        );
        let [Delta::Failed(err)] = deltas.as_slice() else {
            panic!("{deltas:?}")
        };
        assert_eq!(err.message(), "codex ended (a signal) before finishing the turn; codex stderr: thread 'main' panicked");
    }

    #[test]
    fn turn_failed_is_classified_and_retry_notices_are_not_fatal() {
        let deltas = run(
            vec![
                ThreadEvent::Error {
                    message: "Reconnecting... 1/5".into(),
                },
                ThreadEvent::TurnFailed {
                    error: crate::codex::events::TurnError {
                        message: "Quota exceeded. Check your plan and billing details.".into(),
                    },
                },
            ],
            Some(ExitReport {
                code: Some(1),
                stderr_tail: String::new(),
            }),
        );
        let [Delta::Failed(ProxyError::CodexFailed { kind, .. })] = deltas.as_slice() else {
            panic!("{deltas:?}")
        };
        assert_eq!(*kind, FailureKind::QuotaExceeded);
    }

    #[test]
    fn with_tools_calls_leave_the_content_and_set_the_finish_reason() {
        let set = Some(crate::tools::tests::offered(
            vec![crate::tools::tests::tool(
                "get_time",
                serde_json::json!({"type": "object"}),
                false,
            )],
            false,
        ));
        let mut translator = Translator::new(Arc::from("what time is it"), set);
        let mut deltas = translator.on_event(message(
            "Checking.\n{\"name\": \"get_time\", \"arguments\": {}}",
        ));
        deltas.extend(translator.on_event(message("{\"name\": \"get_time\", \"arguments\": {}}")));
        deltas.extend(translator.on_event(ThreadEvent::TurnCompleted { usage: USAGE }));
        assert_eq!(deltas[0], Delta::Content("Checking.".into()));
        let Delta::ToolCall(call) = &deltas[1] else {
            panic!("{deltas:?}")
        };
        assert_eq!(
            (call.index, call.name.as_str(), call.arguments.as_str()),
            (0, "get_time", "{}")
        );
        assert!(
            matches!(
                &deltas[2],
                Delta::Finish {
                    reason: FinishReason::ToolCalls,
                    ..
                }
            ),
            "{deltas:?}"
        );
        assert_eq!(
            deltas.len(),
            3,
            "parallel_tool_calls false drops the second message's call"
        );
    }

    #[test]
    fn think_mode_puts_reasoning_in_the_content_and_none_drops_it() {
        for (output, expected) in [
            (
                ReasoningOutput::Think,
                vec![
                    Delta::Content("<think>\nhmm\n</think>\n\n".into()),
                    Delta::Content("Answer.".into()),
                ],
            ),
            (
                ReasoningOutput::None,
                vec![Delta::Content("Answer.".into())],
            ),
        ] {
            let mut translator = Translator::with_options(
                Arc::from("q"),
                Options {
                    reasoning_output: output,
                    ..Options::default()
                },
            );
            let mut deltas = translator.on_event(completed(
                "item_0",
                ItemDetails::Reasoning { text: "hmm".into() },
            ));
            deltas.extend(translator.on_event(message("Answer.")));
            assert_eq!(deltas, expected, "{output:?}");
        }
    }

    #[test]
    fn a_stop_sequence_ends_the_content_even_across_messages() {
        let options = || Options {
            stop: vec!["END".into(), "\n\nSecond".into()],
            ..Options::default()
        };
        let mut translator = Translator::with_options(Arc::from("q"), options());
        let mut deltas = translator.on_event(message("One. END two."));
        deltas.extend(translator.on_event(message("ignored")));
        assert_eq!(deltas, [Delta::Content("One. ".into())]);

        let mut translator = Translator::with_options(Arc::from("q"), options());
        let mut deltas = translator.on_event(message("First."));
        deltas.extend(translator.on_event(message("Second.")));
        deltas.extend(translator.on_event(ThreadEvent::TurnCompleted { usage: USAGE }));
        assert_eq!(
            deltas[0],
            Delta::Content("First.".into()),
            "the separator starts the stop sequence"
        );
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        assert!(matches!(
            deltas.last(),
            Some(Delta::Finish {
                reason: FinishReason::Stop,
                ..
            })
        ));
    }

    fn piece(item: &str, kind: PartialKind, text: &str) -> RunEvent {
        RunEvent::Partial(Partial {
            item_id: item.into(),
            kind,
            text: text.into(),
        })
    }

    fn done(id: &str, details: ItemDetails) -> RunEvent {
        RunEvent::Event(completed(id, details))
    }

    #[test]
    fn streamed_pieces_go_out_at_once_and_completion_adds_only_what_they_missed() {
        let mut translator = Translator::new(Arc::from("q"), None);
        let summary = |part| PartialKind::ReasoningSummary { part };
        let events = [
            piece("rs", summary(0), "Think"),
            piece("rs", summary(0), "ing."),
            piece("rs", summary(1), "More."),
            done(
                "rs",
                ItemDetails::Reasoning {
                    text: "Thinking.\nMore.".into(),
                },
            ),
            piece("m1", PartialKind::AgentMessage, "Hel"),
            piece("m1", PartialKind::AgentMessage, "lo"),
            done(
                "m1",
                ItemDetails::AgentMessage {
                    text: "Hello!".into(),
                },
            ),
            piece("m2", PartialKind::AgentMessage, "Bye."),
            done(
                "m2",
                ItemDetails::AgentMessage {
                    text: "Bye.".into(),
                },
            ),
            RunEvent::Event(ThreadEvent::TurnCompleted { usage: USAGE }),
        ];
        let deltas: Vec<Delta> = events
            .into_iter()
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        assert_eq!(
            deltas[..7],
            [
                Delta::Reasoning("Think".into()),
                Delta::Reasoning("ing.".into()),
                Delta::Reasoning("\nMore.".into()),
                Delta::Content("Hel".into()),
                Delta::Content("lo".into()),
                Delta::Content("!".into()),
                Delta::Content("\n\nBye.".into()),
            ]
        );
        assert!(matches!(
            deltas[7],
            Delta::Finish {
                reason: FinishReason::Stop,
                ..
            }
        ));
        assert_eq!(deltas.len(), 8);
    }

    #[test]
    fn think_mode_streams_the_summary_inside_its_think_block() {
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                reasoning_output: ReasoningOutput::Think,
                ..Options::default()
            },
        );
        let summary = PartialKind::ReasoningSummary { part: 0 };
        let events = [
            piece("rs", summary, "hm"),
            piece("rs", summary, "m"),
            done("rs", ItemDetails::Reasoning { text: "hmm".into() }),
            piece("m", PartialKind::AgentMessage, "Answer."),
            done(
                "m",
                ItemDetails::AgentMessage {
                    text: "Answer.".into(),
                },
            ),
        ];
        let deltas: Vec<Delta> = events
            .into_iter()
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        assert_eq!(
            deltas,
            [
                Delta::Content("<think>\nhm".into()),
                Delta::Content("m".into()),
                Delta::Content("\n</think>\n\n".into()),
                Delta::Content("Answer.".into()),
            ],
            "the same content as the whole item gives, in pieces"
        );
    }

    #[test]
    fn with_native_tools_pieces_stream_and_calls_arrive_as_events() {
        let tools = vec![crate::tools::tests::tool(
            "get_time",
            serde_json::json!({"type": "object"}),
            false,
        )];
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                tools: Some(crate::tools::tests::offered(tools, true)),
                native_tools: true,
                ..Options::default()
            },
        );
        // Text that looks like a call is only text: calls are events now.
        let looks_like_a_call = r#"{"name": "get_time", "arguments": {}}"#;
        assert_eq!(
            translator.on_run_event(piece("m", PartialKind::AgentMessage, looks_like_a_call)),
            [Delta::Content(looks_like_a_call.into())]
        );
        translator.on_run_event(done(
            "m",
            ItemDetails::AgentMessage {
                text: looks_like_a_call.into(),
            },
        ));
        let call = |id: &str| {
            RunEvent::ToolCall(crate::codex::NativeCall {
                id: id.into(),
                name: "get_time".into(),
                arguments: "{}".into(),
            })
        };
        let deltas: Vec<Delta> = [call("call_a"), call("call_b")]
            .into_iter()
            .chain([RunEvent::Event(ThreadEvent::TurnCompleted {
                usage: CodexUsage {
                    input_tokens: 5,
                    output_tokens: 1,
                    ..CodexUsage::default()
                },
            })])
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        let ids: Vec<(u32, &str)> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::ToolCall(call) => Some((call.index, call.id.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            ids,
            [(0, "call_a"), (1, "call_b")],
            "codex's ids, indexed in order"
        );
        assert!(matches!(
            deltas.last(),
            Some(Delta::Finish {
                reason: FinishReason::ToolCalls,
                ..
            })
        ));
    }

    #[test]
    fn with_tools_pieces_wait_for_the_whole_message() {
        let tools = vec![crate::tools::tests::tool(
            "get_time",
            serde_json::json!({"type": "object"}),
            false,
        )];
        let mut translator = Translator::new(
            Arc::from("q"),
            Some(crate::tools::tests::offered(tools, true)),
        );
        let call = r#"{"name": "get_time", "arguments": {}}"#;
        assert_eq!(
            translator.on_run_event(piece("m", PartialKind::AgentMessage, call)),
            []
        );
        let deltas =
            translator.on_run_event(done("m", ItemDetails::AgentMessage { text: call.into() }));
        assert!(
            matches!(deltas.as_slice(), [Delta::ToolCall(_)]),
            "{deltas:?}"
        );
    }

    fn stream_with_stop(stop: &str, pieces: &[&str]) -> Vec<Delta> {
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                stop: vec![stop.into()],
                ..Options::default()
            },
        );
        let mut deltas: Vec<Delta> = pieces
            .iter()
            .flat_map(|p| translator.on_run_event(piece("m", PartialKind::AgentMessage, p)))
            .collect();
        deltas.extend(translator.on_run_event(done(
            "m",
            ItemDetails::AgentMessage {
                text: pieces.concat(),
            },
        )));
        deltas
    }

    #[test]
    fn with_stop_sequences_pieces_stream_holding_back_what_could_begin_one() {
        assert_eq!(
            stream_with_stop("END", &["Hello E", "ND more"]),
            [Delta::Content("Hello".into()), Delta::Content(" ".into())],
            "the sequence spans two pieces and nothing of it goes out"
        );
        assert_eq!(
            stream_with_stop("xyz", &["ab", "cd"]),
            [Delta::Content("ab".into()), Delta::Content("cd".into())],
            "the held-back tail goes out when the message completes"
        );
        assert_eq!(
            stream_with_stop("é", &["aé", "b"]),
            [Delta::Content("a".into())],
            "multi-byte characters are never split"
        );
    }

    #[test]
    fn a_backend_failure_ends_the_turn_once() {
        let mut translator = Translator::new(Arc::from("q"), None);
        let failure = ProxyError::codex_failed("codex interrupted the turn");
        assert_eq!(
            translator.on_run_event(RunEvent::Failed(failure.clone())),
            [Delta::Failed(failure)]
        );
        assert_eq!(
            translator.on_run_event(RunEvent::Exited(ExitReport::default())),
            []
        );
    }

    #[test]
    fn completion_without_any_message_is_not_reported_as_success() {
        let deltas = run(vec![ThreadEvent::TurnCompleted { usage: USAGE }], None);
        assert!(
            matches!(deltas.as_slice(), [Delta::Failed(_)]),
            "{deltas:?}"
        );
    }
}
