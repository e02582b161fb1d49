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
        let name = match self.aliases.get(name) {
            Some(client) => client.as_str(),
            // A client tool offered under an alias is never called by its own name: that name
            // is codex's own tool.
            None if self.aliases.values().any(|client| client == name) => return None,
            None => name,
        };
        let set = self.tools.as_ref()?;
        set.get(name).map(|tool| tool.name.clone())
    }
}

/// A call of one of the client's tools, as the model made it (its raw response item).
#[derive(Debug, Clone)]
struct RawCall {
    call_id: String,
    /// The client's name of the tool.
    name: String,
    /// As the model wrote them; not always valid JSON.
    arguments: String,
}

/// The client's calls of one model response, gathered until the response is over.
#[derive(Debug, Default)]
struct Response {
    /// The response's `function_call` items for the client's tools, in order.
    calls: Vec<RawCall>,
    /// codex's `item/tool/call` requests, as they came: needed only to send calls back to the
    /// model (codex asks for each call whose arguments parse, in any order, before or after
    /// the response ends).
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
                if let RawItem::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } = raw.item
                {
                    let client_tool = self.offered.client_tool(&name);
                    if let (Some(name), false) =
                        (client_tool, self.offered.known_calls.contains(&call_id))
                    {
                        self.response.calls.push(RawCall {
                            call_id,
                            name,
                            arguments,
                        });
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
                if notice.will_retry {
                    // The model's response is made again from the start, its calls with it.
                    self.response = Response::default();
                } else {
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

    /// Once the model's response is over, its calls of the client's tools are the client's:
    /// the run ends with them, whether or not codex has asked for them yet (the interrupt that
    /// ends the turn cancels what it still waits for). A strict tool's call whose arguments
    /// break its schema sends the response back to the model instead: each call codex asks
    /// about is answered as failed, once it has asked about all of them.
    fn settle(&mut self) -> Vec<Step> {
        if !self.response.done {
            return Vec::new();
        }
        let Some(set) = self.offered.tools.clone() else {
            self.response = Response::default();
            return Vec::new();
        };
        if self.response.calls.is_empty() {
            // A response without the client's calls (text, or codex's own tools): the turn
            // goes on. Requests for such a response are answered as they come.
            self.response = Response::default();
            return Vec::new();
        }
        let calls = &self.response.calls;
        let kept = if set.parallel { calls.len() } else { 1 };
        for dropped in &calls[kept..] {
            tracing::warn!(tool = %dropped.name, "parallel_tool_calls is false; dropping a further call");
        }
        let broken: Vec<Option<String>> = calls
            .iter()
            .enumerate()
            .map(|(n, call)| {
                let spec = set.get(&call.name).filter(|_| n < kept)?;
                let arguments = match serde_json::from_str::<Value>(&call.arguments) {
                    Ok(arguments) => arguments,
                    Err(err) if spec.strict => {
                        return Some(format!("they are not valid JSON ({err})"))
                    }
                    Err(_) => return None,
                };
                match spec.check_arguments(&arguments) {
                    Checked::Invalid(reason) if spec.strict => Some(reason),
                    Checked::Invalid(reason) => {
                        tracing::warn!(tool = %call.name, %reason, "a tool call's arguments do not match its schema");
                        None
                    }
                    Checked::TooCostly(reason) => {
                        tracing::debug!(tool = %call.name, %reason, "a tool call's arguments were not checked");
                        None
                    }
                    Checked::Valid => None,
                }
            })
            .collect();
        if broken.iter().all(Option::is_none) {
            let mut steps: Vec<Step> = calls[..kept]
                .iter()
                .map(|call| {
                    // Compact JSON, as OpenAI sends; arguments that do not parse as they are.
                    let arguments = serde_json::from_str::<Value>(&call.arguments)
                        .map_or_else(|_| call.arguments.clone(), |value| value.to_string());
                    Step::Event(RunEvent::ToolCall(NativeCall {
                        id: call.call_id.clone(),
                        name: call.name.clone(),
                        arguments,
                    }))
                })
                .collect();
            steps.push(Step::Event(RunEvent::Event(ThreadEvent::TurnCompleted {
                usage: self.usage,
            })));
            self.finished = true;
            return steps;
        }
        if self.rejected >= MAX_REJECTED_RESPONSES {
            self.finished = true;
            return vec![Step::Event(RunEvent::Failed(ProxyError::codex_failed(format!(
                "the model called a strict tool with arguments that do not match its schema {} times",
                self.rejected + 1
            ))))];
        }
        // codex asks about every call whose arguments parse (it answers the others itself);
        // all of them are answered before the model goes on.
        let asked = |call: &RawCall| {
            serde_json::from_str::<Value>(&call.arguments).is_err()
                || self
                    .response
                    .requests
                    .iter()
                    .any(|(_, p)| p.call_id == call.call_id)
        };
        if !calls.iter().all(asked) {
            return Vec::new();
        }
        self.rejected += 1;
        tracing::info!(
            attempt = self.rejected,
            "the model's tool call breaks its strict schema; asking it again"
        );
        let response = std::mem::take(&mut self.response);
        response
            .requests
            .into_iter()
            .map(|(id, params)| {
                let reason = response
                    .calls
                    .iter()
                    .position(|c| c.call_id == params.call_id)
                    .and_then(|at| broken[at].clone());
                let text = match reason {
                    Some(reason) => format!(
                        "The arguments of `{}` do not match its schema: {reason}. Call it again with arguments that do.",
                        params.tool
                    ),
                    None => "Not run: another call in this reply had invalid arguments. Make the calls again.".to_owned(),
                };
                Step::Answer {
                    id,
                    result: failed_call(text),
                }
            })
            .collect()
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
    /// Always `Some` until a kept thread takes it back.
    pub workdir: Option<WorkDir>,
    /// Set for a thread kept past its turn: it goes back to be kept rather than let go.
    pub keep: Option<super::kept::Keeping>,
}

impl ThreadLease {
    /// The turn ended: dropping the lease only unsubscribes.
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for ThreadLease {
    fn drop(&mut self) {
        if self.connection.has_exited() {
            self.connection.unroute(&self.thread_id);
            if let Some(keeping) = self.keep.take() {
                keeping.threads.release(&keeping.key);
            }
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
        if let Some(keeping) = self.keep.take() {
            // No client tools run on a kept thread, so nothing waits for its route.
            self.connection.unroute(&self.thread_id);
            keeping.threads.put_back(
                &keeping.key,
                super::kept::Kept {
                    connection: self.connection.clone(),
                    thread_id: self.thread_id.clone(),
                    workdir: self.workdir.take().expect("the lease holds its workdir"),
                },
            );
            return;
        }
        // The interrupt also cancels the `item/tool/call` requests still waiting for the client's
        // results (codex answers the model "cancelled" and forgets them): they get no answer, as
        // one after the interrupt would only be logged as unexpected, and one before it would
        // start the model's next response.
        self.connection
            .request_detached::<ThreadUnsubscribe>(&ThreadUnsubscribeParams {
                thread_id: self.thread_id.clone(),
            });
        // Only now: a tool call codex sent before the interrupt reached it still finds the
        // route (and the run gone, so it is left unanswered); one declined before the
        // interrupt would start the model's next response.
        self.connection.unroute(&self.thread_id);
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
                tools: Some(offered(
                    vec![
                        tool("get_weather", schema, strict),
                        tool("apply_patch", json!({"type": "object"}), false),
                    ],
                    parallel,
                )),
                known_calls: ["call_old".to_owned()].into(),
                aliases: [("client_apply_patch".to_owned(), "apply_patch".to_owned())].into(),
            })
        }

        fn raw_call(call_id: &str, name: &str, arguments: &str) -> TurnNotification {
            TurnNotification::RawItemCompleted(RawItemCompleted {
                thread_id: "t".into(),
                turn_id: "u".into(),
                item: RawItem::FunctionCall {
                    call_id: call_id.into(),
                    name: name.into(),
                    arguments: arguments.into(),
                },
            })
        }

        fn paris(call_id: &str) -> TurnNotification {
            raw_call(call_id, "get_weather", r#"{"city": "Paris"}"#)
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

        fn calls(steps: &[Step]) -> Vec<(String, String, String)> {
            steps
                .iter()
                .filter_map(|step| match step {
                    Step::Event(RunEvent::ToolCall(call)) => {
                        Some((call.id.clone(), call.name.clone(), call.arguments.clone()))
                    }
                    _ => None,
                })
                .collect()
        }

        #[test]
        fn the_calls_of_a_response_end_the_run_when_the_response_ends() {
            let mut mapper = mapper(false, true);
            // History codex echoes is not a new call, and codex's own tool is not the
            // client's tool it was renamed away from.
            assert!(mapper.on_notification(paris("call_old")).is_empty());
            assert!(mapper
                .on_notification(raw_call("call_own", "apply_patch", "{}"))
                .is_empty());
            assert!(mapper.on_notification(paris("call_1")).is_empty());
            assert!(mapper
                .on_notification(raw_call("call_2", "client_apply_patch", "{ }"))
                .is_empty());
            // A request before the end changes nothing.
            assert!(mapper
                .on_tool_call(json!(0), request("call_1", json!({"city": "Paris"})))
                .is_empty());
            let steps = mapper.on_notification(response_done(200));
            assert_eq!(
                calls(&steps),
                [
                    (
                        "call_1".into(),
                        "get_weather".into(),
                        r#"{"city":"Paris"}"#.into()
                    ),
                    ("call_2".into(), "apply_patch".into(), "{}".into()),
                ],
                "compact JSON, the client's names, the model's order"
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
        fn a_call_codex_never_asks_about_does_not_hold_the_run() {
            // Arguments that do not parse: codex answers the model itself and sends no request.
            let mut mapper = mapper(false, true);
            mapper.on_notification(raw_call("call_1", "get_weather", "{\"city\": "));
            let steps = mapper.on_notification(response_done(1));
            assert_eq!(calls(&steps)[0].2, "{\"city\": ", "as the model wrote them");
            assert!(mapper.is_finished());
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
        fn a_retried_response_forgets_the_calls_of_the_attempt() {
            let mut mapper = mapper(false, true);
            mapper.on_notification(paris("call_1"));
            mapper.on_notification(TurnNotification::Error(ErrorNotification {
                error: TurnError {
                    message: "Reconnecting... 1/5".into(),
                    codex_error_info: None,
                },
                will_retry: true,
                thread_id: "t".into(),
                turn_id: "u".into(),
            }));
            mapper.on_notification(paris("call_2"));
            let steps = mapper.on_notification(response_done(1));
            assert_eq!(
                calls(&steps)
                    .iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>(),
                ["call_2"]
            );
        }

        #[test]
        fn parallel_false_keeps_the_first_call_and_checks_only_it() {
            let mut mapper = mapper(true, false);
            mapper.on_notification(paris("call_1"));
            mapper.on_notification(raw_call("call_2", "get_weather", r#"{"town": 1}"#));
            let steps = mapper.on_notification(response_done(1));
            assert_eq!(calls(&steps).len(), 1);
            assert_eq!(calls(&steps)[0].0, "call_1");
        }

        #[test]
        fn a_strict_tools_broken_call_goes_back_to_the_model_a_bounded_number_of_times() {
            let mut mapper = mapper(true, true);
            for attempt in 1..=MAX_REJECTED_RESPONSES {
                let (bad, good) = (format!("bad_{attempt}"), format!("good_{attempt}"));
                mapper.on_notification(raw_call(&bad, "get_weather", r#"{"town": 1}"#));
                mapper.on_notification(paris(&good));
                assert!(
                    mapper.on_notification(response_done(1)).is_empty(),
                    "waits for codex to ask about both"
                );
                assert!(mapper
                    .on_tool_call(json!("b"), request(&bad, json!({"town": 1})))
                    .is_empty());
                let steps =
                    mapper.on_tool_call(json!("g"), request(&good, json!({"city": "Paris"})));
                let texts: Vec<(bool, String)> = steps
                    .iter()
                    .map(|step| match step {
                        Step::Answer { result, .. } => {
                            let ToolContent::InputText { text } = &result.content_items[0];
                            (result.success, text.clone())
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert_eq!(texts.len(), 2, "{steps:?}");
                assert!(texts.iter().all(|(success, _)| !success));
                assert!(texts[0].1.contains("do not match its schema"), "{texts:?}");
                assert!(texts[1].1.starts_with("Not run"), "{texts:?}");
                assert!(!mapper.is_finished());
            }
            mapper.on_notification(raw_call("call_last", "get_weather", "{}"));
            let steps = mapper.on_notification(response_done(1));
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
            mapper.on_notification(raw_call("call_1", "get_weather", r#"{"town": 1}"#));
            let steps = mapper.on_notification(response_done(1));
            assert_eq!(calls(&steps).len(), 1);
        }
    }
}
