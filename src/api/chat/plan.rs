//! A chat completion request checked and converted, before codex starts: the turn codex gets
//! and the options that shape its answer.

use std::sync::Arc;

use super::super::{
    conversation,
    request::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Stop},
    AppState,
};
use crate::{
    codex::Turn, config::REASONING_EFFORTS, conversation::Part, error::ProxyError, prompt,
    structured::ResponseFormat, tools::schema::SchemaBudget, translate::Options,
};

/// `stop` as a list: at most 4 non-empty sequences, as OpenAI allows.
pub(in crate::api) fn stop_sequences(stop: Option<&Stop>) -> Result<Vec<String>, ProxyError> {
    let sequences = match stop {
        None => Vec::new(),
        Some(Stop::One(one)) => vec![one.0.clone()],
        Some(Stop::Many(many)) => many.iter().map(|s| s.0.clone()).collect(),
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
pub(in crate::api) fn requested_effort(effort: Option<&str>) -> Result<Option<String>, ProxyError> {
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

/// What the request asks for, checked before codex starts.
pub(super) struct Plan {
    /// The conversation as the exec prompt: what the request's size is checked by, and what
    /// usage is estimated from when codex reports none.
    pub(super) transcript: Arc<str>,
    pub(super) turn: Turn,
    pub(super) options: Options,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
}

impl Plan {
    pub(super) fn from_request(
        state: &AppState,
        request: &ChatCompletionRequest,
    ) -> Result<Self, ProxyError> {
        if request.n.is_some_and(|n| n != 1) {
            return Err(ProxyError::invalid(
                "`n` must be 1: this server generates one choice per request. Send several requests for several answers.",
                "n",
            ));
        }
        let choice = state
            .config
            .resolve_model(&request.model, &state.backend().models())
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
        Ok(Plan {
            transcript: Arc::from(transcript),
            turn: Turn::new(conversation, tools.clone(), &format, model, effort),
            options: Options {
                tools,
                native_tools: state.backend().takes_items(),
                report_commands: false,
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
