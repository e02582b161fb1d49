//! The streaming reply: OpenAI chunks as server-sent events, keep-alive comments while codex is
//! silent, an in-band error when codex fails after the headers are out, and `data: [DONE]`.

use std::{pin::pin, time::Duration};

use bytes::Bytes;
use futures_util::{stream::BoxStream, Stream, StreamExt};
use poem::{Body, IntoResponse, Response};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};

use super::response::{
    ChatCompletionChunk, ChunkChoice, ChunkDelta, ChunkToolCall, ErrorEnvelope, FunctionCallOut,
    Usage,
};
use crate::translate::Delta;

const DONE: &[u8] = b"data: [DONE]\n\n";
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// What every chunk of one reply shares.
#[derive(Debug, Clone)]
pub struct ChunkHeader {
    pub id: String,
    pub created: i64,
    pub model: String,
    pub include_usage: bool,
}

impl ChunkHeader {
    fn chunk(&self, delta: ChunkDelta, finish_reason: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
            }],
            usage: None,
        }
    }
}

/// Renders deltas as chat completion chunks. The first chunk carries the role and goes out at
/// once, so the client sees the reply begin even while codex is still starting.
pub fn render(
    header: ChunkHeader,
    deltas: impl Stream<Item = Delta> + Send + 'static,
    keepalive: Duration,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let first = event(&header.chunk(
        ChunkDelta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        },
        None,
    ));
    events(
        Some(first),
        deltas,
        keepalive,
        true,
        move |delta| match delta {
            Delta::Ran { .. } => Vec::new(),
            Delta::Reasoning(text) => vec![event(&header.chunk(
                ChunkDelta {
                    reasoning_content: Some(text),
                    ..Default::default()
                },
                None,
            ))],
            Delta::Content(text) => vec![event(&header.chunk(
                ChunkDelta {
                    content: Some(text),
                    ..Default::default()
                },
                None,
            ))],
            Delta::ToolCall(call) => {
                let tool_call = ChunkToolCall {
                    index: call.index,
                    id: call.id,
                    kind: "function".into(),
                    function: FunctionCallOut {
                        name: call.name,
                        arguments: call.arguments,
                    },
                };
                vec![event(&header.chunk(
                    ChunkDelta {
                        tool_calls: Some(vec![tool_call]),
                        ..Default::default()
                    },
                    None,
                ))]
            }
            Delta::Finish { reason, usage } => {
                let mut out = vec![event(
                    &header.chunk(ChunkDelta::default(), Some(reason.as_str())),
                )];
                if header.include_usage {
                    let mut chunk = header.chunk(ChunkDelta::default(), None);
                    chunk.choices.clear();
                    chunk.usage = Some(Usage::from(usage));
                    out.push(event(&chunk));
                }
                out
            }
            Delta::Failed(err) => vec![failure(&err)],
        },
    )
}

/// A failure after the headers are out, in band as an OpenAI error object.
pub fn failure(err: &crate::error::ProxyError) -> Bytes {
    tracing::warn!(error = %err, "codex failed mid-stream; sending an in-band error");
    event(&ErrorEnvelope::from(err))
}

/// The SSE loop every streamed API shares: `first`, then each delta as `render` makes it, a
/// keep-alive comment while codex is silent, and with `done` a `data: [DONE]` after the
/// terminal delta (the chat APIs end so; the Responses API ends with its last event).
pub fn events(
    first: Option<Bytes>,
    deltas: impl Stream<Item = Delta> + Send + 'static,
    keepalive: Duration,
    done: bool,
    mut render: impl FnMut(Delta) -> Vec<Bytes> + Send + 'static,
) -> impl Stream<Item = Bytes> + Send + 'static {
    async_stream::stream! {
        if let Some(first) = first {
            yield first;
        }
        let mut deltas = pin!(deltas);
        loop {
            // A comment line while codex is silent keeps proxies and clients from timing out,
            // and writing it is how a vanished client gets noticed.
            let delta = match tokio::time::timeout(keepalive, deltas.next()).await {
                Err(_) => {
                    yield Bytes::from_static(KEEP_ALIVE);
                    continue;
                }
                Ok(None) => break,
                Ok(Some(delta)) => delta,
            };
            let terminal = delta.is_terminal();
            for bytes in render(delta) {
                yield bytes;
            }
            if terminal {
                break;
            }
        }
        if done {
            yield Bytes::from_static(DONE);
        }
    }
}

/// One SSE event of a JSON value.
pub fn event(value: &impl ToJSON) -> Bytes {
    Bytes::from(format!("data: {}\n\n", value.to_json_string()))
}

/// A `text/event-stream` body of `T` events, typed for the OpenAPI spec.
pub struct EventStream<T>(pub BoxStream<'static, Bytes>, std::marker::PhantomData<T>);

impl<T> EventStream<T> {
    pub fn new(body: BoxStream<'static, Bytes>) -> Self {
        EventStream(body, std::marker::PhantomData)
    }
}

/// The chat completions stream.
pub type ChunkStream = EventStream<ChatCompletionChunk>;

impl<T: Type + Send> Payload for EventStream<T> {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    /// One event of the stream, as OpenAPI describes a `text/event-stream` body (and spec
    /// checkers such as schemathesis read it): its fields, `data` holding one JSON `T`, named by
    /// the title. The stream is not an array; describing it as one made every event a mismatch.
    fn schema_ref() -> MetaSchemaRef {
        let string = |description| {
            MetaSchemaRef::Inline(Box::new(MetaSchema {
                description: Some(description),
                ..MetaSchema::new("string")
            }))
        };
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            title: Some(format!("{} event", T::name())),
            description: Some("One server-sent event."),
            required: vec!["data"],
            properties: vec![
                (
                    "event",
                    string("The event's type, on Responses API events (`response.created`, ...)."),
                ),
                (
                    "data",
                    string("One JSON value of the type the title names; `[DONE]` ends a chat or text completion stream."),
                ),
            ],
            ..MetaSchema::new("object")
        }))
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for EventStream<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("text/event-stream")
            .header("Cache-Control", "no-cache")
            .header("X-Accel-Buffering", "no")
            .body(Body::from_bytes_stream(self.0.map(Ok::<_, std::io::Error>)))
    }
}
