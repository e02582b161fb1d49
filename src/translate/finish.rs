//! How a turn ends: with exactly one terminal delta, `Finish` or `Failed`, whatever codex does
//! after it. codex may exit without finishing the turn, and an agent message is not an answer
//! until the turn completes, so an exit that comes first fails the turn with the best reason
//! at hand.

use std::sync::Arc;

use crate::{
    codex::{CodexUsage, ExitReport},
    error::ProxyError,
    usage::TokenUsage,
};

/// Whether the turn's terminal delta is still to come.
#[derive(Debug)]
pub(super) enum Progress {
    Running(Running),
    Ended,
}

/// What a running turn keeps for its end.
#[derive(Debug, Default)]
pub(super) struct Running {
    /// The last top-level `error` notice: the reason when codex ends without `turn.failed`.
    pub last_notice: Option<String>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Progress::Running(Running::default())
    }

    pub(super) fn is_ended(&self) -> bool {
        matches!(self, Progress::Ended)
    }

    /// A notice codex printed: retries are reported this way too, so it ends nothing.
    pub(super) fn notice(&mut self, message: String) {
        if let Progress::Running(running) = self {
            running.last_notice = Some(message);
        }
    }

    /// Ends the turn, handing over what it kept; `None` when it had ended already, and its
    /// terminal delta is out.
    pub(super) fn end(&mut self) -> Option<Running> {
        match std::mem::replace(self, Progress::Ended) {
            Progress::Running(running) => Some(running),
            Progress::Ended => None,
        }
    }
}

/// What the answer held, counted for its finish.
#[derive(Debug)]
pub(super) struct Tally {
    /// The prompt as codex received it, counted only when codex reports no usage.
    prompt: Arc<str>,
    /// Every agent message's whole text, counted only when codex reports no usage.
    answer: String,
    messages: usize,
}

impl Tally {
    pub(super) fn new(prompt: Arc<str>) -> Self {
        Tally {
            prompt,
            answer: String::new(),
            messages: 0,
        }
    }

    /// An agent message codex completed, whatever of it goes out.
    pub(super) fn message(&mut self, text: &str) {
        self.messages += 1;
        self.answer.push_str(text);
    }

    /// Whether codex wrote any agent message: a turn without one, or a call, has no answer.
    pub(super) fn has_message(&self) -> bool {
        self.messages > 0
    }

    /// codex's usage, or where it reports none, the prompt, answer and `reasoning` counted.
    pub(super) fn usage(&self, usage: &CodexUsage, reasoning: &str) -> TokenUsage {
        if usage.input_tokens == 0 && usage.output_tokens == 0 {
            tracing::debug!("codex reported no token usage; counting with o200k");
            TokenUsage::estimate(&self.prompt, &self.answer, reasoning)
        } else {
            TokenUsage::from_codex(usage)
        }
    }
}

/// Why a turn failed that codex exited before finishing: its last notice, or the exit, with
/// the end of what it wrote to stderr.
pub(super) fn exit_failure(report: ExitReport, running: Running) -> ProxyError {
    let status = match report.code {
        Some(code) => format!("exit code {code}"),
        None => "a signal".to_owned(),
    };
    let mut message = match running.last_notice {
        Some(notice) => notice,
        None => format!("codex ended ({status}) before finishing the turn"),
    };
    let stderr = report.stderr_tail.trim();
    if !stderr.is_empty() {
        message.push_str(&format!("; codex stderr: {}", last_chars(stderr, 1000)));
    }
    ProxyError::codex_failed(message)
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
    use crate::{
        codex::{RunEvent, ThreadEvent},
        error::FailureKind,
        translate::{fixtures::*, Delta, Translator},
    };

    #[test]
    fn a_turn_ends_once_and_a_notice_after_changes_nothing() {
        let mut progress = Progress::new();
        progress.notice("Reconnecting... 1/5".into());
        progress.notice("stream disconnected".into());
        assert!(!progress.is_ended());
        let running = progress.end().expect("running");
        assert_eq!(running.last_notice.as_deref(), Some("stream disconnected"));
        progress.notice("late".into());
        assert!(progress.is_ended());
        assert!(progress.end().is_none());
    }

    #[test]
    fn only_the_end_of_stderr_is_kept() {
        assert_eq!(last_chars("short", 10), "short");
        assert_eq!(last_chars("äöü-tail", 4), "tail");
        assert_eq!(last_chars("aäö", 2), "äö", "whole characters");
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
