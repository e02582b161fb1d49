//! `POST /v1/chat/completions`: one path for every request. The request becomes a [`Turn`],
//! the backend runs it, the translator turns codex's events into deltas, and the deltas are
//! either streamed as SSE or folded into one JSON reply.

use std::sync::Arc;

use futures_util::{future::BoxFuture, FutureExt, Stream, StreamExt};
use poem::web::RemoteAddr;
use poem_openapi::{payload::Json, ApiResponse, OpenApi, ResponseContent};
use tokio::{
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use super::{
    auth::Authorized,
    conversation,
    error::ApiError,
    request::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Stop},
    request_id::InSpan,
    response::{AssistantMessage, ChatCompletion, Choice, FunctionCallOut, ToolCallOut, Usage},
    sse::{self, ChunkHeader, ChunkStream},
    ApiTags, AppState,
};
use crate::{
    codex::{RunStream, SharedBackend, Turn, TurnInput},
    config::{Limits, REASONING_EFFORTS},
    conversation::Part,
    error::ProxyError,
    metrics::{Metrics, RequestOutcome, RunGuard},
    prompt,
    structured::{self, ResponseFormat},
    tools::schema::SchemaBudget,
    translate::{Delta, Options, Translator},
    usage::{count_tokens_up_to, Counted},
};

/// The `model` label of requests for a model this server does not list.
const UNKNOWN_MODEL: &str = "unknown";

pub struct ChatApi {
    pub state: Arc<AppState>,
}

#[derive(ResponseContent)]
pub enum ChatBody {
    Json(Json<ChatCompletion>),
    Stream(ChunkStream),
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    /// The answer: a `chat.completion` object, or with `stream: true` a stream of
    /// `chat.completion.chunk` events ending with `data: [DONE]`. A failure after the stream
    /// started arrives in band as `data: {"error": {...}}` before `[DONE]`.
    #[oai(status = 200)]
    Ok(ChatBody),
}

#[OpenApi(tag = "ApiTags::Chat")]
impl ChatApi {
    /// Create a chat completion
    ///
    /// Runs codex on the conversation. Works like OpenAI's endpoint of the same name.
    #[oai(
        path = "/v1/chat/completions",
        method = "post",
        operation_id = "createChatCompletion"
    )]
    async fn create(
        &self,
        _auth: Authorized,
        remote: &RemoteAddr,
        body: Json<ChatCompletionRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let model = body.0.model.clone();
        let label = match self
            .state
            .config
            .resolve_model(&model, &self.state.backend.models())
        {
            Some(_) => model.as_str(),
            None => UNKNOWN_MODEL,
        };
        let mut outcome = Some(self.state.metrics.request(label));
        let result = self.answer(remote, body.0, &mut outcome).await;
        // Still here: the request failed before its run started, which now owns the count.
        if let (Some(outcome), Err(err)) = (outcome.as_mut(), &result) {
            outcome.ended_with(err.0.status().as_u16());
        }
        result
    }
}

impl ChatApi {
    async fn answer(
        &self,
        remote: &RemoteAddr,
        request: ChatCompletionRequest,
        outcome: &mut Option<RequestOutcome>,
    ) -> Result<ChatResponse, ApiError> {
        let state = &self.state;
        let plan = Plan::from_request(state, &request)?;
        let prompt = plan.transcript.clone();
        check_prompt_size(
            &prompt,
            state.config.limits.max_prompt_tokens,
            &state.counting,
        )
        .await?;
        tracing::info!(model = %request.model, stream = plan.stream, messages = request.messages.len(), user = request.user.as_deref().unwrap_or(""), "chat completion");

        let client_gone = {
            let (connections, remote) = (state.connections.clone(), remote.clone());
            move || {
                let (connections, remote) = (connections.clone(), remote.clone());
                async move { connections.client_gone(&remote).await }
            }
        };
        let permit = tokio::select! {
            permit = take_slot(state) => permit?,
            () = client_gone() => return Err(ProxyError::ClientGone.into()),
        };
        let run = state.backend.run(plan.turn).await?;
        let deltas = deltas(
            Run {
                events: run,
                permit,
                _run: state.metrics.run(),
                metrics: state.metrics.clone(),
                limits: state.config.limits.clone(),
                client_gone: client_gone().boxed(),
                stop_runs: state.stop_runs.clone(),
                outcome: outcome.take().expect("a run is started once"),
                backend: state.backend.clone(),
            },
            prompt,
            plan.options,
        );
        let header = ChunkHeader {
            id: completion_id(),
            created: unix_now(),
            model: request.model,
            include_usage: plan.include_usage,
        };
        if plan.stream {
            // The reply streams out after this handler returns; it keeps the request's span.
            let body = InSpan::new(
                sse::render(header, deltas, state.config.keepalive).boxed(),
                Span::current(),
            )
            .boxed();
            Ok(ChatResponse::Ok(ChatBody::Stream(ChunkStream(body))))
        } else {
            Ok(ChatResponse::Ok(ChatBody::Json(Json(
                fold(header, deltas).await?,
            ))))
        }
    }
}

/// `stop` as a list: at most 4 non-empty sequences, as OpenAI allows.
fn stop_sequences(stop: Option<&Stop>) -> Result<Vec<String>, ProxyError> {
    let sequences = match stop {
        None => Vec::new(),
        Some(Stop::One(one)) => vec![one.clone()],
        Some(Stop::Many(many)) => many.clone(),
    };
    if sequences.len() > 4 || sequences.iter().any(String::is_empty) {
        return Err(ProxyError::invalid(
            "`stop` takes up to 4 non-empty strings.",
            "stop",
        ));
    }
    Ok(sequences)
}

/// `reasoning_effort`, checked against [`REASONING_EFFORTS`].
fn requested_effort(effort: Option<&str>) -> Result<Option<String>, ProxyError> {
    match effort {
        None => Ok(None),
        Some(effort) if REASONING_EFFORTS.contains(&effort) => Ok(Some(effort.to_owned())),
        Some(other) => Err(ProxyError::invalid(
            format!(
                "`reasoning_effort` {other:?} is not one of {}.",
                REASONING_EFFORTS.join(", ")
            ),
            "reasoning_effort",
        )),
    }
}

/// OpenWebUI's background tasks (titles, tags, follow-ups) arrive as a user message that
/// starts with `### Task:`.
fn is_background_task(messages: &[ChatMessage]) -> bool {
    let last_user = messages.iter().rev().find(|m| m.role == Role::User);
    let text = match last_user.and_then(|m| m.content.as_ref()) {
        Some(MessageContent::Text(text)) => text.as_str(),
        Some(MessageContent::Parts(parts)) => match parts.first() {
            Some(ContentPart::Text(part)) => part.text.as_str(),
            _ => "",
        },
        None => "",
    };
    text.trim_start().starts_with("### Task:")
}

/// How many image parts the conversation holds, counted before any is decoded.
fn image_parts(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .filter_map(|m| match &m.content {
            Some(MessageContent::Parts(parts)) => Some(parts),
            _ => None,
        })
        .flatten()
        .filter(|part| matches!(part, ContentPart::ImageUrl(_)))
        .count()
}

/// Waits up to `QUEUE_TIMEOUT_SECS` for one of the `MAX_CONCURRENCY` codex slots.
async fn take_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ProxyError> {
    let limits = &state.config.limits;
    let _queued = state.metrics.queued();
    match tokio::time::timeout(limits.queue_timeout, state.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            tracing::warn!(
                slots = limits.max_concurrency,
                "every codex slot is busy; refusing with 429"
            );
            Err(ProxyError::Overloaded {
                slots: limits.max_concurrency,
                waited_secs: limits.queue_timeout.as_secs(),
            })
        }
    }
}

/// Refuses a prompt over `MAX_PROMPT_TOKENS` before any process starts. A token is at least one
/// byte, so only a prompt longer in bytes than the limit needs counting; that counting stops
/// once past the limit, and runs off the async threads, a few at a time (`counting`).
async fn check_prompt_size(
    prompt: &Arc<str>,
    limit: u64,
    counting: &Semaphore,
) -> Result<(), ProxyError> {
    if prompt.len() as u64 <= limit {
        return Ok(());
    }
    let _turn = counting.acquire().await.expect("never closed");
    let text = prompt.clone();
    let counted = tokio::task::spawn_blocking(move || count_tokens_up_to(&text, limit))
        .await
        .unwrap_or(Counted::MoreThan(u64::MAX));
    match counted {
        Counted::Exactly(_) => Ok(()),
        Counted::MoreThan(tokens) => Err(ProxyError::PromptTooLong { tokens, limit }),
    }
}

/// A started codex run and everything it holds until its reply ends.
struct Run {
    events: RunStream,
    /// The codex slot; released when the reply's stream ends or is dropped.
    permit: OwnedSemaphorePermit,
    /// Counts the run as running and times it, until the reply ends.
    _run: RunGuard,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// Resolves if the client closes its connection first.
    client_gone: BoxFuture<'static, ()>,
    /// Cancelled when the server stops for good.
    stop_runs: CancellationToken,
    /// The request's count in `/metrics`, with the status the run ends with.
    outcome: RequestOutcome,
    /// The backend, for the plan limits a usage-limit failure is told about.
    backend: SharedBackend,
}

/// What the request asks for, checked before codex starts.
struct Plan {
    /// The conversation as the exec prompt: what the request's size is checked by, and what
    /// usage is estimated from when codex reports none.
    transcript: Arc<str>,
    turn: Turn,
    options: Options,
    stream: bool,
    include_usage: bool,
}

impl Plan {
    fn from_request(state: &AppState, request: &ChatCompletionRequest) -> Result<Self, ProxyError> {
        if request.n.is_some_and(|n| n != 1) {
            return Err(ProxyError::invalid(
                "`n` must be 1: this server generates one choice per request. Send several requests for several answers.",
                "n",
            ));
        }
        let choice = state
            .config
            .resolve_model(&request.model, &state.backend.models())
            .ok_or_else(|| ProxyError::ModelNotFound(request.model.clone()))?;
        // The request's own effort wins, then the model id's, then the task routing's.
        let task = is_background_task(&request.messages);
        let routed = |setting: &Option<String>| if task { setting.clone() } else { None };
        let model = routed(&state.config.task_model).or(choice.model);
        let effort = requested_effort(request.reasoning_effort.as_deref())?
            .or(choice.effort)
            .or(routed(&state.config.task_reasoning_effort));
        let tools = conversation::tools(
            request.tools.as_deref(),
            request.tool_choice.as_ref(),
            request.parallel_tool_calls,
            SchemaBudget {
                max_nodes: state.config.limits.max_tool_schema_nodes,
                max_steps: state.config.limits.max_tool_check_steps,
            },
        )?;
        let format = ResponseFormat::from_request(request.response_format.as_ref())?;
        let images = image_parts(&request.messages);
        let max_images = state.config.limits.max_images;
        if images > max_images {
            return Err(ProxyError::invalid(
                format!("The conversation has {images} images, more than this server's limit of {max_images} (MAX_IMAGES)."),
                "messages",
            ));
        }
        let conversation = conversation::conversation(&request.messages)?;
        let images = conversation
            .items
            .iter()
            .flat_map(|item| item.parts())
            .any(|part| matches!(part, Part::Image(_)));
        // Measured as the exec prompt, whichever way the backend takes it.
        let transcript = prompt::transcript(&conversation, tools.as_deref());
        if transcript.trim().is_empty() && !images {
            return Err(ProxyError::invalid(
                "The conversation has no text for codex to answer: give the user message some content.",
                "messages",
            ));
        }
        // The backend renders it as it takes it: one prompt (exec) or items (app-server).
        let input = TurnInput::Items {
            conversation,
            tools: tools.clone(),
            instructions: (format == ResponseFormat::JsonObject)
                .then(|| structured::JSON_OBJECT_INSTRUCTION.to_owned())
                .into_iter()
                .collect(),
        };
        Ok(Plan {
            transcript: Arc::from(transcript),
            turn: Turn {
                input,
                model,
                effort,
                output_schema: match &format {
                    ResponseFormat::JsonSchema(schema) => Some(schema.clone()),
                    _ => None,
                },
            },
            options: Options {
                tools,
                native_tools: state.backend.takes_items(),
                reasoning_output: state.config.reasoning_output,
                stop: stop_sequences(request.stop.as_ref())?,
                json: format.wants_json(),
            },
            stream: request.stream.unwrap_or(false),
            include_usage: request
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        })
    }
}

/// How many deltas may wait for the client to take them.
const DELTA_BUFFER: usize = 64;

/// The deltas of one run, ending with its terminal delta. The run is driven by a task of its
/// own, so its deadlines fire whether or not the client reads: the run stops, and its process
/// group is killed, when the reply is dropped, a deadline passes, the client leaves or leaves
/// its reply unread for `CODEX_IDLE_TIMEOUT_SECS`, or the server stops.
fn deltas(
    run: Run,
    prompt: Arc<str>,
    options: Options,
) -> impl Stream<Item = Delta> + Send + 'static {
    let (tx, mut rx) = mpsc::channel(DELTA_BUFFER);
    tokio::spawn(drive(run, prompt, options, tx).instrument(Span::current()));
    async_stream::stream! {
        while let Some(delta) = rx.recv().await {
            yield delta;
        }
    }
}

/// Runs `run` to its end, sending each delta to `tx`.
async fn drive(run: Run, prompt: Arc<str>, options: Options, tx: mpsc::Sender<Delta>) {
    let Run {
        mut events,
        permit: _permit,
        _run,
        metrics,
        limits,
        mut client_gone,
        stop_runs,
        mut outcome,
        backend,
    } = run;
    let mut translator = Translator::with_options(prompt, options);
    let deadline = Instant::now() + limits.codex_timeout;
    // The last word of a run that is being stopped: sent only if there is room for it.
    let last_word = |outcome: &mut RequestOutcome, err: ProxyError| {
        outcome.ended_with(err.status().as_u16());
        let _ = tx.try_send(Delta::Failed(err));
    };
    loop {
        let silence_ends = Instant::now() + limits.codex_idle_timeout;
        let wake = deadline.min(silence_ends);
        let next = tokio::select! {
            biased;
            () = &mut client_gone => {
                tracing::info!("the client closed the connection; stopping codex");
                return last_word(&mut outcome, ProxyError::ClientGone);
            }
            () = tx.closed() => return,
            () = stop_runs.cancelled() => {
                tracing::warn!("the server is stopping; ending this request");
                return last_word(&mut outcome, ProxyError::ShuttingDown);
            }
            next = tokio::time::timeout_at(wake, events.next()) => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(_) => {
                let message = if wake == deadline {
                    format!(
                        "codex did not finish within {} s (CODEX_TIMEOUT_SECS) and was stopped.",
                        limits.codex_timeout.as_secs()
                    )
                } else {
                    format!(
                        "codex was silent for {} s (CODEX_IDLE_TIMEOUT_SECS) and was stopped.",
                        limits.codex_idle_timeout.as_secs()
                    )
                };
                tracing::warn!("{message}");
                return last_word(&mut outcome, ProxyError::Timeout(message));
            }
        };
        for delta in translator.on_run_event(event) {
            // A spent plan's failure says when the plan resets, from the limits codex reported.
            let delta = match delta {
                Delta::Failed(err) => Delta::Failed(
                    err.with_plan_reset(
                        backend
                            .plan_limits()
                            .and_then(|limits| limits.seconds_until_usable(unix_now())),
                    ),
                ),
                other => other,
            };
            match &delta {
                Delta::Finish { usage, .. } => {
                    metrics.tokens(usage);
                    outcome.ended_with(200);
                }
                Delta::Failed(err) => outcome.ended_with(err.status().as_u16()),
                _ => {}
            }
            let terminal = delta.is_terminal();
            match tokio::time::timeout(limits.codex_idle_timeout, tx.send(delta)).await {
                Ok(Ok(())) => {}
                // The reply was dropped: nobody is listening any more.
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!(
                        "the client has not read its reply for {} s (CODEX_IDLE_TIMEOUT_SECS); stopping codex",
                        limits.codex_idle_timeout.as_secs()
                    );
                    return;
                }
            }
            if terminal {
                return;
            }
        }
    }
    let err = ProxyError::codex_failed("codex output ended without an exit status");
    outcome.ended_with(err.status().as_u16());
    let _ = tx.send(Delta::Failed(err)).await;
}

/// Non-streaming is the fold of streaming: the same deltas, collected.
async fn fold(
    header: ChunkHeader,
    deltas: impl Stream<Item = Delta>,
) -> Result<ChatCompletion, ProxyError> {
    let mut deltas = std::pin::pin!(deltas);
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    while let Some(delta) = deltas.next().await {
        match delta {
            Delta::Content(text) => content.push_str(&text),
            Delta::ToolCall(call) => tool_calls.push(ToolCallOut {
                id: call.id,
                kind: "function".into(),
                function: FunctionCallOut {
                    name: call.name,
                    arguments: call.arguments,
                },
            }),
            Delta::Reasoning(text) => reasoning.get_or_insert_with(String::new).push_str(&text),
            Delta::Failed(err) => return Err(err),
            Delta::Finish { reason, usage } => {
                return Ok(ChatCompletion {
                    id: header.id,
                    object: "chat.completion".into(),
                    created: header.created,
                    model: header.model,
                    choices: vec![Choice {
                        index: 0,
                        message: AssistantMessage {
                            role: "assistant".into(),
                            // OpenAI's shape: null content when the answer is nothing but calls.
                            content: (!content.is_empty() || tool_calls.is_empty())
                                .then_some(content),
                            reasoning_content: reasoning,
                            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                        },
                        finish_reason: reason.as_str().into(),
                    }],
                    usage: Usage::from(usage),
                });
            }
        }
    }
    Err(ProxyError::codex_failed(
        "codex output ended without a result",
    ))
}

fn completion_id() -> String {
    crate::ids::random_id("chatcmpl-")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
