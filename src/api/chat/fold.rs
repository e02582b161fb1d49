//! A chat completion's JSON reply: the fold of the very deltas a stream sends, so the two
//! cannot disagree.

use futures_util::{Stream, StreamExt};

use super::super::{
    response::{AssistantMessage, ChatCompletion, Choice, FunctionCallOut, ToolCallOut, Usage},
    sse::ChunkHeader,
};
use crate::{error::ProxyError, translate::Delta};

/// Non-streaming is the fold of streaming: the same deltas, collected.
pub(super) async fn fold(
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
            Delta::Ran { .. } => {}
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
