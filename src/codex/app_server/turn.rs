//! One proxied request on the app-server: an ephemeral thread, one turn, and the translation of
//! the thread's notifications into the run events the exec backend would give.

use std::sync::Arc;

use super::{
    connection::{Connection, Routed},
    protocol::{
        Item, ThreadUnsubscribeParams, TokenUsageBreakdown, TurnError, TurnInterruptParams,
        TurnNotification, TurnStatus,
    },
};
use crate::{
    codex::{
        exec::{Attachments, WorkDir},
        CodexUsage, ExitReport, ItemDetails, Partial, PartialKind, RunEvent, ThreadEvent,
        ThreadItem,
    },
    error::{FailureKind, ProxyError},
};

/// Turns a thread's notifications into run events. Pure, so every case is a unit test.
#[derive(Debug, Default)]
pub struct TurnMapper {
    /// The sum of `last` over the turn's model requests: the turn's own usage, whatever the
    /// thread did before.
    usage: CodexUsage,
    finished: bool,
}

impl TurnMapper {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn on_notification(&mut self, notification: TurnNotification) -> Option<RunEvent> {
        if self.finished {
            return None;
        }
        match notification {
            TurnNotification::AgentMessageDelta(delta) => Some(RunEvent::Partial(Partial {
                item_id: delta.item_id,
                kind: PartialKind::AgentMessage,
                text: delta.delta,
            })),
            TurnNotification::ReasoningSummaryDelta(delta) => Some(RunEvent::Partial(Partial {
                item_id: delta.item_id,
                kind: PartialKind::ReasoningSummary {
                    part: delta.summary_index,
                },
                text: delta.delta,
            })),
            TurnNotification::ItemCompleted(completed) => {
                let (id, details) = match completed.item {
                    Item::AgentMessage { id, text } => (id, ItemDetails::AgentMessage { text }),
                    Item::Reasoning { id, summary } => (
                        id,
                        ItemDetails::Reasoning {
                            text: summary.join("\n"),
                        },
                    ),
                    Item::CommandExecution {
                        id,
                        command,
                        status,
                        aggregated_output,
                        exit_code,
                    } => (
                        id,
                        ItemDetails::CommandExecution {
                            command,
                            aggregated_output: aggregated_output.unwrap_or_default(),
                            exit_code,
                            status,
                        },
                    ),
                    Item::Other => return None,
                };
                Some(RunEvent::Event(ThreadEvent::ItemCompleted {
                    item: ThreadItem { id, details },
                }))
            }
            TurnNotification::TokenUsageUpdated(updated) => {
                add(&mut self.usage, &updated.token_usage.last);
                None
            }
            TurnNotification::Error(notice) => {
                if !notice.will_retry {
                    tracing::debug!(info = ?notice.error.codex_error_info, "codex app-server reported the turn's error");
                }
                Some(RunEvent::Event(ThreadEvent::Error {
                    message: notice.error.message,
                }))
            }
            TurnNotification::TurnCompleted(completed) => {
                let event = match completed.turn.status {
                    TurnStatus::InProgress => return None,
                    TurnStatus::Completed => {
                        RunEvent::Event(ThreadEvent::TurnCompleted { usage: self.usage })
                    }
                    TurnStatus::Failed => RunEvent::Failed(match &completed.turn.error {
                        Some(error) => turn_failure(error),
                        None => {
                            ProxyError::codex_failed("codex failed the turn without saying why")
                        }
                    }),
                    TurnStatus::Interrupted => RunEvent::Failed(ProxyError::codex_failed(
                        "codex interrupted the turn before it finished",
                    )),
                };
                self.finished = true;
                Some(event)
            }
        }
    }
}

fn add(sum: &mut CodexUsage, last: &TokenUsageBreakdown) {
    sum.input_tokens += last.input_tokens;
    sum.cached_input_tokens += last.cached_input_tokens;
    sum.cache_write_input_tokens += last.cache_write_input_tokens;
    sum.output_tokens += last.output_tokens;
    sum.reasoning_output_tokens += last.reasoning_output_tokens;
}

/// The error of a failed turn. codex's message decides, as it does for the exec backend, so both
/// backends answer alike; `codexErrorInfo` settles what the message leaves open.
pub fn turn_failure(error: &TurnError) -> ProxyError {
    let by_message = FailureKind::classify(&error.message);
    let kind = match (by_message, error.codex_error_info.as_ref()) {
        (FailureKind::Upstream, Some(info)) => kind_of_info(info).unwrap_or(by_message),
        _ => by_message,
    };
    ProxyError::CodexFailed {
        kind,
        message: error.message.clone(),
        reset_in: None,
    }
}

/// `codexErrorInfo`: a camelCase name, or a one-key object carrying the provider's HTTP status.
fn kind_of_info(info: &serde_json::Value) -> Option<FailureKind> {
    if let Some(name) = info.as_str() {
        return match name {
            "contextWindowExceeded" => Some(FailureKind::ContextLength),
            "usageLimitExceeded" | "rateLimitExceeded" => Some(FailureKind::RateLimited),
            "unauthorized" => Some(FailureKind::Unauthenticated),
            _ => None,
        };
    }
    let status = info
        .as_object()?
        .values()
        .next()?
        .get("httpStatusCode")?
        .as_u64()?;
    match status {
        429 => Some(FailureKind::RateLimited),
        401 | 403 => Some(FailureKind::Unauthenticated),
        _ => None,
    }
}

/// What one request holds on the app-server. Dropping it (the reply ended, the client left, a
/// deadline passed) interrupts a turn still running and unsubscribes the thread, so codex
/// unloads it; the turn's files and working directory are removed.
pub struct ThreadLease {
    pub connection: Arc<Connection>,
    pub thread_id: String,
    pub turn_id: Option<String>,
    pub finished: bool,
    pub _files: Attachments,
    pub _workdir: WorkDir,
}

impl ThreadLease {
    /// The turn ended: dropping the lease only unsubscribes.
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for ThreadLease {
    fn drop(&mut self) {
        self.connection.unroute(&self.thread_id);
        if self.connection.has_exited() {
            return;
        }
        if let (false, Some(turn_id)) = (self.finished, &self.turn_id) {
            tracing::debug!(thread = %self.thread_id, "interrupting the codex turn");
            self.connection.call_detached(
                "turn/interrupt",
                &TurnInterruptParams {
                    thread_id: self.thread_id.clone(),
                    turn_id: turn_id.clone(),
                },
            );
        }
        self.connection.call_detached(
            "thread/unsubscribe",
            &ThreadUnsubscribeParams {
                thread_id: self.thread_id.clone(),
            },
        );
    }
}

/// The run events of a leased thread's turn, ending with its terminal event or the process's
/// exit.
pub fn events(
    mut lease: ThreadLease,
    mut routed: tokio::sync::mpsc::UnboundedReceiver<Routed>,
) -> crate::codex::RunStream {
    use futures_util::StreamExt;
    async_stream::stream! {
        let mut mapper = TurnMapper::default();
        while let Some(message) = routed.recv().await {
            match message {
                Routed::Notification(notification) => {
                    if let Some(event) = mapper.on_notification(notification) {
                        if mapper.is_finished() {
                            lease.finish();
                            yield event;
                            return;
                        }
                        yield event;
                    }
                }
                Routed::Exited(report) => {
                    lease.finish();
                    yield RunEvent::Exited(report);
                    return;
                }
            }
        }
        lease.finish();
        yield RunEvent::Exited(ExitReport::default());
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::app_server::protocol::{
        CompletedTurn, ErrorNotification, TextDelta, ThreadTokenUsage, TokenUsageUpdated,
        TurnCompleted,
    };

    fn usage(input: u64, output: u64) -> TurnNotification {
        let last = TokenUsageBreakdown {
            total_tokens: input + output,
            input_tokens: input,
            cached_input_tokens: 0,
            cache_write_input_tokens: 0,
            output_tokens: output,
            reasoning_output_tokens: 0,
        };
        TurnNotification::TokenUsageUpdated(TokenUsageUpdated {
            thread_id: "t".into(),
            turn_id: "u".into(),
            token_usage: ThreadTokenUsage { total: last, last },
        })
    }

    fn completed(status: TurnStatus, error: Option<TurnError>) -> TurnNotification {
        TurnNotification::TurnCompleted(TurnCompleted {
            thread_id: "t".into(),
            turn: CompletedTurn {
                id: "u".into(),
                status,
                error,
            },
        })
    }

    #[test]
    fn usage_is_the_sum_of_each_model_requests_last() {
        let mut mapper = TurnMapper::default();
        assert_eq!(mapper.on_notification(usage(100, 10)), None);
        assert_eq!(mapper.on_notification(usage(200, 20)), None);
        let Some(RunEvent::Event(ThreadEvent::TurnCompleted { usage })) =
            mapper.on_notification(completed(TurnStatus::Completed, None))
        else {
            panic!()
        };
        assert_eq!((usage.input_tokens, usage.output_tokens), (300, 30));
        assert!(mapper.is_finished());
        assert_eq!(
            mapper.on_notification(usage_delta()),
            None,
            "nothing after the end"
        );
    }

    fn usage_delta() -> TurnNotification {
        TurnNotification::AgentMessageDelta(TextDelta {
            thread_id: "t".into(),
            turn_id: "u".into(),
            item_id: "m".into(),
            delta: "late".into(),
        })
    }

    #[test]
    fn deltas_become_partials_and_retry_notices_are_not_terminal() {
        let mut mapper = TurnMapper::default();
        assert_eq!(
            mapper.on_notification(usage_delta()),
            Some(RunEvent::Partial(Partial {
                item_id: "m".into(),
                kind: PartialKind::AgentMessage,
                text: "late".into()
            }))
        );
        let notice = TurnNotification::Error(ErrorNotification {
            error: TurnError {
                message: "Reconnecting... 1/5".into(),
                codex_error_info: None,
            },
            will_retry: true,
            thread_id: "t".into(),
            turn_id: "u".into(),
        });
        assert!(matches!(
            mapper.on_notification(notice),
            Some(RunEvent::Event(ThreadEvent::Error { .. }))
        ));
        assert!(!mapper.is_finished());
    }

    #[test]
    fn failures_are_classified_by_message_then_by_codex_error_info() {
        let failure = |message: &str, info: serde_json::Value| {
            let mut mapper = TurnMapper::default();
            let error = TurnError {
                message: message.into(),
                codex_error_info: Some(info),
            };
            match mapper.on_notification(completed(TurnStatus::Failed, Some(error))) {
                Some(RunEvent::Failed(ProxyError::CodexFailed { kind, .. })) => kind,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            failure(
                "Quota exceeded. Check your plan and billing details.",
                serde_json::json!("usageLimitExceeded")
            ),
            FailureKind::QuotaExceeded,
            "the message wins, as on the exec backend"
        );
        assert_eq!(
            failure("something odd", serde_json::json!("contextWindowExceeded")),
            FailureKind::ContextLength
        );
        assert_eq!(
            failure(
                "something odd",
                serde_json::json!({"httpConnectionFailed": {"httpStatusCode": 429}})
            ),
            FailureKind::RateLimited
        );
        assert_eq!(
            failure("something odd", serde_json::json!("other")),
            FailureKind::Upstream
        );
    }

    #[test]
    fn an_interrupted_turn_is_a_failure() {
        let mut mapper = TurnMapper::default();
        assert!(matches!(
            mapper.on_notification(completed(TurnStatus::Interrupted, None)),
            Some(RunEvent::Failed(_))
        ));
    }
}
