//! One proxied request on the app-server: an ephemeral thread, one turn, and the translation of
//! the thread's notifications into the run events the exec backend would give, plus the client's
//! tool calls when codex hands them over.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use serde_json::Value;

use super::{
    connection::{Connection, Routed},
    protocol::{
        Item, RawItem, ThreadUnsubscribe, ThreadUnsubscribeParams, TokenUsageBreakdown,
        ToolCallParams, ToolCallResult, ToolContent, TurnError, TurnInterrupt, TurnInterruptParams,
        TurnNotification, TurnStatus,
    },
};
use crate::{
    codex::{
        exec::{Attachments, WorkDir},
        CodexUsage, ExitReport, ItemDetails, NativeCall, Partial, PartialKind, RunEvent,
        ThreadEvent, ThreadItem,
    },
    error::{FailureKind, ProxyError},
    tools::{schema::Checked, ToolSet},
};

/// How many model responses in one request may call a strict tool with arguments that break
/// its schema before the request fails: each is sent back to the model to correct.
pub const MAX_REJECTED_RESPONSES: u32 = 2;

/// What the mapper asks for, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Event(RunEvent),
    /// Answer codex's `item/tool/call` request `id` (a call sent back to the model).
    Answer {
        id: Value,
        result: ToolCallResult,
    },
}

/// The client's tools in play on a thread, and what tells the model's calls from history.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    pub tools: Option<Arc<ToolSet>>,
    /// Call ids the injected conversation holds: codex echoes them as raw items.
    pub known_calls: HashSet<String>,
    /// codex name -> the client's, for tools offered under an alias.
    pub aliases: HashMap<String, String>,
}

impl Offered {
    /// The client's name of the tool codex calls `name`, when it is one of the client's.
    fn client_tool(&self, name: &str) -> Option<String> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        let set = self.tools.as_ref()?;
        set.get(name).map(|tool| tool.name.clone())
    }
}

/// The client's calls of one model response, gathered until the response is over.
#[derive(Debug, Default)]
struct Response {
    /// The call ids of the response's `function_call` items for the client's tools, in order.
    calls: Vec<String>,
    /// codex's `item/tool/call` requests for them, as they came.
    requests: Vec<(Value, ToolCallParams)>,
    /// `rawResponse/completed` came: the response holds no further calls.
    done: bool,
}

/// Turns a thread's notifications into run events. Pure, so every case is a unit test.
#[derive(Debug, Default)]
pub struct TurnMapper {
    /// The sum of each model request's usage: the turn's own usage, whatever the thread did
    /// before.
    usage: CodexUsage,
    offered: Offered,
    response: Response,
    rejected: u32,
    /// The run's terminal event went out.
    finished: bool,
    /// codex ended the turn (`turn/completed`); otherwise a finished run still has a turn
    /// running (it ended with the client's tool calls) that must be interrupted.
    turn_over: bool,
}

impl TurnMapper {
    pub fn new(offered: Offered) -> Self {
        TurnMapper {
            offered,
            ..TurnMapper::default()
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether codex ended the turn itself.
    pub fn turn_over(&self) -> bool {
        self.turn_over
    }

    /// With the client's tools offered, codex's raw events are asked for: the only sign that
    /// a model response is over. Its usage is then counted per response from them.
    fn raw_events(&self) -> bool {
        self.offered.tools.is_some()
    }

    /// codex asks for the result of a call of one of the client's tools.
    pub fn on_tool_call(&mut self, id: Value, params: ToolCallParams) -> Vec<Step> {
        if self.finished {
            return Vec::new();
        }
        let Some(client_name) = self.offered.client_tool(&params.tool) else {
            return vec![Step::Answer {
                id,
                result: failed_call(format!("There is no tool named `{}`.", params.tool)),
            }];
        };
        let mut params = params;
        params.tool = client_name;
        self.response.requests.push((id, params));
        self.settle()
    }

    pub fn on_notification(&mut self, notification: TurnNotification) -> Vec<Step> {
        if self.finished {
            return Vec::new();
        }
        let event = match notification {
            TurnNotification::AgentMessageDelta(delta) => RunEvent::Partial(Partial {
                item_id: delta.item_id,
                kind: PartialKind::AgentMessage,
                text: delta.delta,
            }),
            TurnNotification::ReasoningSummaryDelta(delta) => RunEvent::Partial(Partial {
                item_id: delta.item_id,
                kind: PartialKind::ReasoningSummary {
                    part: delta.summary_index,
                },
                text: delta.delta,
            }),
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
                    Item::Other => return Vec::new(),
                };
                RunEvent::Event(ThreadEvent::ItemCompleted {
                    item: ThreadItem { id, details },
                })
            }
            TurnNotification::TokenUsageUpdated(updated) => {
                if !self.raw_events() {
                    add(&mut self.usage, &updated.token_usage.last);
                }
                return Vec::new();
            }
            TurnNotification::RawItemCompleted(raw) => {
                if let RawItem::FunctionCall { call_id, name } = raw.item {
                    let client_tool = self.offered.client_tool(&name).is_some();
                    if client_tool && !self.offered.known_calls.contains(&call_id) {
                        self.response.calls.push(call_id);
                    }
                }
                return Vec::new();
            }
            TurnNotification::RawResponseCompleted(completed) => {
                if let Some(usage) = &completed.usage {
                    add(&mut self.usage, usage);
                }
                self.response.done = true;
                return self.settle();
            }
            TurnNotification::Error(notice) => {
                if !notice.will_retry {
                    tracing::debug!(info = ?notice.error.codex_error_info, "codex app-server reported the turn's error");
                }
                RunEvent::Event(ThreadEvent::Error {
                    message: notice.error.message,
                })
            }
            TurnNotification::TurnCompleted(completed) => {
                let event = match completed.turn.status {
                    TurnStatus::InProgress => return Vec::new(),
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
                self.turn_over = true;
                event
            }
        };
        vec![Step::Event(event)]
    }

    /// Once the model's response is over and codex has asked for every client call in it, the
    /// calls are the client's: the run ends with them. A strict tool's call whose arguments
    /// break its schema sends the whole response back to the model instead.
    fn settle(&mut self) -> Vec<Step> {
        let response = &self.response;
        if !response.done {
            return Vec::new();
        }
        let asked = |call: &String| response.requests.iter().any(|(_, p)| &p.call_id == call);
        if !response.calls.iter().all(asked) {
            return Vec::new();
        }
        let response = std::mem::take(&mut self.response);
        if response.requests.is_empty() {
            return Vec::new(); // a response without calls: the turn goes on
        }
        let Some(set) = self.offered.tools.clone() else {
            return Vec::new();
        };
        let mut requests = response.requests;
        // In the order the model made them.
        requests.sort_by_key(|(_, p)| {
            response
                .calls
                .iter()
                .position(|c| c == &p.call_id)
                .unwrap_or(usize::MAX)
        });
        let broken: Vec<Option<String>> = requests
            .iter()
            .map(|(_, p)| match set.get(&p.tool) {
                Some(spec) => match spec.check_arguments(&p.arguments) {
                    Checked::Invalid(reason) if spec.strict => Some(reason),
                    Checked::Invalid(reason) => {
                        tracing::warn!(tool = %p.tool, %reason, "a tool call's arguments do not match its schema");
                        None
                    }
                    Checked::TooCostly(reason) => {
                        tracing::debug!(tool = %p.tool, %reason, "a tool call's arguments were not checked");
                        None
                    }
                    Checked::Valid => None,
                },
                None => None,
            })
            .collect();
        if broken.iter().any(Option::is_some) {
            self.rejected += 1;
            if self.rejected > MAX_REJECTED_RESPONSES {
                self.finished = true;
                // The requests stay unanswered: the interrupt cancels them.
                return vec![Step::Event(RunEvent::Failed(ProxyError::codex_failed(format!(
                    "the model called a strict tool with arguments that do not match its schema {} times",
                    self.rejected
                ))))];
            }
            tracing::info!(
                attempt = self.rejected,
                "the model's tool call breaks its strict schema; asking it again"
            );
            return requests
                .into_iter()
                .zip(broken)
                .map(|((id, params), broken)| Step::Answer {
                    id,
                    result: failed_call(match broken {
                        Some(reason) => format!(
                            "The arguments of `{}` do not match its schema: {reason}. Call it again with arguments that do.",
                            params.tool
                        ),
                        None => "Not run: another call in this reply had invalid arguments. Make the calls again.".to_owned(),
                    }),
                })
                .collect();
        }
        let mut steps = Vec::with_capacity(requests.len() + 1);
        for (n, (_, params)) in requests.iter().enumerate() {
            if n > 0 && !set.parallel {
                tracing::warn!(tool = %params.tool, "parallel_tool_calls is false; dropping a further call");
                continue;
            }
            steps.push(Step::Event(RunEvent::ToolCall(NativeCall {
                id: params.call_id.clone(),
                name: params.tool.clone(),
                arguments: params.arguments.to_string(),
            })));
        }
        steps.push(Step::Event(RunEvent::Event(ThreadEvent::TurnCompleted {
            usage: self.usage,
        })));
        self.finished = true;
        // codex's requests for them stay unanswered: the interrupt that ends the turn cancels
        // them, and the client's results come with its next request.
        steps
    }
}

/// A call's result that tells the model it failed, and why.
fn failed_call(text: String) -> ToolCallResult {
    ToolCallResult {
        content_items: vec![ToolContent::InputText { text }],
        success: false,
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
            self.connection
                .request_detached::<TurnInterrupt>(&TurnInterruptParams {
                    thread_id: self.thread_id.clone(),
                    turn_id: turn_id.clone(),
                });
        }
        // The interrupt also cancels the `item/tool/call` requests still waiting for the client's
        // results (codex answers the model "cancelled" and forgets them): they get no answer, as
        // one after the interrupt would only be logged as unexpected, and one before it would
        // start the model's next response.
        self.connection
            .request_detached::<ThreadUnsubscribe>(&ThreadUnsubscribeParams {
                thread_id: self.thread_id.clone(),
            });
    }
}

/// The run events of a leased thread's turn, ending with its terminal event or the process's
/// exit.
pub fn events(
    mut lease: ThreadLease,
    mut routed: tokio::sync::mpsc::UnboundedReceiver<Routed>,
    offered: Offered,
) -> crate::codex::RunStream {
    use futures_util::StreamExt;
    async_stream::stream! {
        let mut mapper = TurnMapper::new(offered);
        while let Some(message) = routed.recv().await {
            let steps = match message {
                Routed::Notification(notification) => mapper.on_notification(notification),
                Routed::ToolCall { id, params } => mapper.on_tool_call(id, params),
                Routed::Exited(report) => {
                    lease.finish();
                    yield RunEvent::Exited(report);
                    return;
                }
            };
            if mapper.turn_over() {
                lease.finish();
            }
            for step in steps {
                match step {
                    Step::Event(event) => yield event,
                    Step::Answer { id, result } => lease.connection.answer_tool_call(&id, result),
                }
            }
            if mapper.is_finished() {
                return;
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

    /// The one event a notification gives, if any.
    fn on(mapper: &mut TurnMapper, notification: TurnNotification) -> Option<RunEvent> {
        let mut steps = mapper.on_notification(notification);
        assert!(steps.len() <= 1, "{steps:?}");
        steps.pop().map(|step| match step {
            Step::Event(event) => event,
            other => panic!("{other:?}"),
        })
    }

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
        assert_eq!(on(&mut mapper, usage(100, 10)), None);
        assert_eq!(on(&mut mapper, usage(200, 20)), None);
        let Some(RunEvent::Event(ThreadEvent::TurnCompleted { usage })) =
            on(&mut mapper, completed(TurnStatus::Completed, None))
        else {
            panic!()
        };
        assert_eq!((usage.input_tokens, usage.output_tokens), (300, 30));
        assert!(mapper.is_finished());
        assert_eq!(
            on(&mut mapper, usage_delta()),
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
            on(&mut mapper, usage_delta()),
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
            on(&mut mapper, notice),
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
            match on(&mut mapper, completed(TurnStatus::Failed, Some(error))) {
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
            on(&mut mapper, completed(TurnStatus::Interrupted, None)),
            Some(RunEvent::Failed(_))
        ));
    }

    mod tool_calls {
        use serde_json::json;

        use super::*;
        use crate::{
            codex::app_server::protocol::{RawItemCompleted, RawResponseCompleted},
            tools::tests::{offered, tool},
        };

        fn mapper(strict: bool, parallel: bool) -> TurnMapper {
            let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
            TurnMapper::new(Offered {
                tools: Some(offered(vec![tool("get_weather", schema, strict)], parallel)),
                known_calls: ["call_old".to_owned()].into(),
                aliases: HashMap::new(),
            })
        }

        fn raw_call(call_id: &str, name: &str) -> TurnNotification {
            TurnNotification::RawItemCompleted(RawItemCompleted {
                thread_id: "t".into(),
                turn_id: "u".into(),
                item: RawItem::FunctionCall {
                    call_id: call_id.into(),
                    name: name.into(),
                },
            })
        }

        fn response_done(input: u64) -> TurnNotification {
            TurnNotification::RawResponseCompleted(RawResponseCompleted {
                thread_id: "t".into(),
                turn_id: "u".into(),
                usage: Some(TokenUsageBreakdown {
                    input_tokens: input,
                    output_tokens: 10,
                    ..TokenUsageBreakdown::default()
                }),
            })
        }

        fn request(call_id: &str, arguments: Value) -> ToolCallParams {
            ToolCallParams {
                thread_id: "t".into(),
                turn_id: "u".into(),
                call_id: call_id.into(),
                tool: "get_weather".into(),
                arguments,
            }
        }

        fn calls(steps: &[Step]) -> Vec<(String, String)> {
            steps
                .iter()
                .filter_map(|step| match step {
                    Step::Event(RunEvent::ToolCall(call)) => {
                        Some((call.id.clone(), call.arguments.clone()))
                    }
                    _ => None,
                })
                .collect()
        }

        #[test]
        fn the_calls_of_a_response_end_the_run_once_codex_asked_for_each() {
            let mut mapper = mapper(false, true);
            // History codex echoes is not a new call.
            assert!(mapper
                .on_notification(raw_call("call_old", "get_weather"))
                .is_empty());
            assert!(mapper
                .on_notification(raw_call("call_1", "get_weather"))
                .is_empty());
            assert!(mapper
                .on_notification(raw_call("call_2", "get_weather"))
                .is_empty());
            assert!(mapper.on_notification(response_done(200)).is_empty());
            // codex's requests come in any order; the calls go out in the model's.
            let first = mapper.on_tool_call(json!(1), request("call_2", json!({"city": "Rome"})));
            assert!(first.is_empty(), "one call is still to come: {first:?}");
            let steps = mapper.on_tool_call(json!(0), request("call_1", json!({"city": "Paris"})));
            assert_eq!(
                calls(&steps),
                [
                    ("call_1".to_owned(), r#"{"city":"Paris"}"#.to_owned()),
                    ("call_2".to_owned(), r#"{"city":"Rome"}"#.to_owned()),
                ]
            );
            let Some(Step::Event(RunEvent::Event(ThreadEvent::TurnCompleted { usage }))) =
                steps.last()
            else {
                panic!("{steps:?}")
            };
            assert_eq!(usage.input_tokens, 200, "usage counted per raw response");
            assert!(
                mapper.is_finished() && !mapper.turn_over(),
                "the turn is left to be interrupted"
            );
        }

        #[test]
        fn a_response_without_calls_lets_the_turn_go_on_and_usage_is_not_counted_twice() {
            let mut mapper = mapper(false, true);
            assert!(mapper.on_notification(response_done(100)).is_empty());
            assert!(on(&mut mapper, usage(100, 10)).is_none());
            let Some(RunEvent::Event(ThreadEvent::TurnCompleted { usage })) =
                on(&mut mapper, completed(TurnStatus::Completed, None))
            else {
                panic!()
            };
            assert_eq!(usage.input_tokens, 100);
            assert!(mapper.turn_over());
        }

        #[test]
        fn parallel_false_keeps_the_first_call() {
            let mut mapper = mapper(false, false);
            mapper.on_notification(raw_call("call_1", "get_weather"));
            mapper.on_notification(raw_call("call_2", "get_weather"));
            mapper.on_notification(response_done(1));
            mapper.on_tool_call(json!(0), request("call_1", json!({"city": "Paris"})));
            let steps = mapper.on_tool_call(json!(1), request("call_2", json!({"city": "Rome"})));
            assert_eq!(calls(&steps).len(), 1);
            assert_eq!(calls(&steps)[0].0, "call_1");
        }

        #[test]
        fn a_strict_tools_broken_call_goes_back_to_the_model_a_bounded_number_of_times() {
            let mut mapper = mapper(true, true);
            for attempt in 1..=MAX_REJECTED_RESPONSES {
                let id = format!("call_{attempt}");
                mapper.on_notification(raw_call(&id, "get_weather"));
                mapper.on_notification(response_done(1));
                let steps = mapper.on_tool_call(json!(attempt), request(&id, json!({"town": 1})));
                let [Step::Answer { result, .. }] = steps.as_slice() else {
                    panic!("{steps:?}")
                };
                assert!(!result.success);
                let ToolContent::InputText { text } = &result.content_items[0];
                assert!(text.contains("do not match its schema"), "{text}");
                assert!(!mapper.is_finished());
            }
            mapper.on_notification(raw_call("call_last", "get_weather"));
            mapper.on_notification(response_done(1));
            let steps = mapper.on_tool_call(json!(99), request("call_last", json!({})));
            assert!(
                matches!(steps.as_slice(), [Step::Event(RunEvent::Failed(_))]),
                "{steps:?}"
            );
            assert!(mapper.is_finished() && !mapper.turn_over());
        }

        #[test]
        fn a_non_strict_tools_broken_call_is_the_clients_and_an_unknown_tool_is_refused() {
            let mut mapper = mapper(false, true);
            let mut unknown = request("call_x", json!({}));
            unknown.tool = "rm_rf".into();
            let steps = mapper.on_tool_call(json!(5), unknown);
            assert!(matches!(steps.as_slice(), [Step::Answer { result, .. }] if !result.success));
            mapper.on_notification(raw_call("call_1", "get_weather"));
            mapper.on_notification(response_done(1));
            let steps = mapper.on_tool_call(json!(0), request("call_1", json!({"town": 1})));
            assert_eq!(calls(&steps).len(), 1);
        }
    }
}
