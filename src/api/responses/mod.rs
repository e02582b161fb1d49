//! `POST /v1/responses`: the Responses API that the newest clients speak (the OpenAI SDK's
//! `responses.create`, LangChain's default for codex models, the Agents SDK, the Vercel AI SDK).
//! The request is converted into the proxy's conversation and tool set at this edge
//! (`input.rs`), runs through the same run as chat completions, and its deltas are rendered as a
//! `response` object or its event stream (`render.rs`).

mod input;
mod render;
pub mod store;

use std::sync::Arc;

use futures_util::StreamExt;
use poem::web::RemoteAddr;
use poem_openapi::{
    param::{Header, Path},
    payload::Json,
    types::{Example, ParseFromJSON},
    ApiResponse, Object, OpenApi, ResponseContent,
};
use serde_json::{json, Value};
use tracing::Span;

use super::{
    auth::Authorized,
    chat::{requested_effort, unix_now},
    conversation,
    error::ApiError,
    request::JsonString,
    request_id::InSpan,
    run,
    sse::EventStream,
    ApiTags, AppState,
};
use crate::{
    codex::Turn,
    conversation::Part,
    error::ProxyError,
    metrics::RequestOutcome,
    prompt,
    structured::ResponseFormat,
    tools::schema::SchemaBudget,
    translate::{Options, ReasoningOutput},
};

pub struct ResponsesApi {
    pub state: Arc<AppState>,
    pub store: Arc<store::ResponseStore>,
}

impl ResponsesApi {
    pub fn new(state: Arc<AppState>) -> Self {
        let limits = &state.config.limits;
        let store = store::ResponseStore::new(limits.responses_stored, limits.responses_stored_age);
        ResponsesApi {
            state,
            store: Arc::new(store),
        }
    }
}

#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct CreateResponse {
    /// A model id from `GET /v1/models`.
    pub model: String,
    /// A string, or an array of input items: messages (`role`, `content` as a string or
    /// `input_text` / `input_image` parts), `function_call`, `function_call_output`, and
    /// `item_reference` to an output item of a stored response.
    pub input: Value,
    /// System instructions, before the input.
    #[oai(nullable)]
    pub instructions: Option<JsonString>,
    /// Function tools: `{"type": "function", "name", "description", "parameters", "strict"}`.
    #[oai(nullable)]
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required`, or `{"type": "function", "name": ...}`.
    #[oai(nullable)]
    pub tool_choice: Option<Value>,
    #[oai(nullable)]
    pub parallel_tool_calls: Option<bool>,
    /// `{"effort": ..., "summary": ...}`.
    #[oai(nullable)]
    pub reasoning: Option<Value>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", ...}}`.
    #[oai(nullable)]
    pub text: Option<Value>,
    /// Stream the response as its events.
    #[oai(nullable)]
    pub stream: Option<bool>,
    /// Keep the response (the default) for `previous_response_id` and `GET /v1/responses/{id}`,
    /// within `RESPONSES_STORED` and `RESPONSES_STORED_SECS`.
    #[oai(nullable)]
    pub store: Option<bool>,
    /// Continue a stored response: its conversation comes before `input`.
    #[oai(nullable)]
    pub previous_response_id: Option<JsonString>,
    /// Echoed in the response.
    #[oai(nullable)]
    pub metadata: Option<Value>,
    /// An end-user id, logged with the request.
    #[oai(nullable)]
    pub user: Option<JsonString>,
    /// Accepted for compatibility; codex does not cap its answer length.
    #[oai(nullable)]
    pub max_output_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub temperature: Option<f64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub top_p: Option<f64>,
}

/// The example `/docs` fills in: a request that works as it stands (the one generated from the
/// schema sent `"model": "string"` and `"previous_response_id": "string"`, and failed).
impl Example for CreateResponse {
    fn example() -> Self {
        let example = json!({
            "model": "codex-local",
            "input": "Say hello in one short sentence.",
        });
        CreateResponse::parse_from_json(Some(example)).expect("the example is a request")
    }
}

#[derive(ResponseContent)]
pub enum ResponsesBody {
    Json(Json<Value>),
    Stream(EventStream<Value>),
}

#[derive(ApiResponse)]
pub enum ResponsesResponse {
    /// A `response` object, or with `stream: true` its events (`response.created`, ...,
    /// `response.completed` or `response.failed`), each with a `sequence_number`.
    #[oai(status = 200)]
    Ok(ResponsesBody),
}

#[OpenApi(tag = "ApiTags::Chat")]
impl ResponsesApi {
    /// Create a response
    ///
    /// Runs codex on the input. Works like OpenAI's Responses API.
    #[oai(
        path = "/v1/responses",
        method = "post",
        operation_id = "createResponse"
    )]
    async fn create(
        &self,
        auth: Authorized,
        /// OpenWebUI's id of the conversation: its turns stay on one codex account.
        #[oai(name = "X-OpenWebUI-Chat-Id")]
        chat_id: Header<Option<String>>,
        remote: &RemoteAddr,
        body: Json<CreateResponse>,
    ) -> Result<ResponsesResponse, ApiError> {
        let caller = run::Caller::new(&auth, chat_id.0);
        let model = body.0.model.clone();
        run::answered(&self.state, &model, async |outcome| {
            self.answer(remote, caller, body.0, outcome).await
        })
        .await
    }

    /// Retrieve a response
    ///
    /// A stored response, as `POST /v1/responses` returned it.
    #[oai(
        path = "/v1/responses/:id",
        method = "get",
        operation_id = "getResponse"
    )]
    async fn retrieve(&self, _auth: Authorized, id: Path<String>) -> Result<Json<Value>, ApiError> {
        match self.store.get(&id.0) {
            Some(stored) => Ok(Json(stored.response)),
            None => Err(not_found(&id.0).into()),
        }
    }

    /// Delete a response
    #[oai(
        path = "/v1/responses/:id",
        method = "delete",
        operation_id = "deleteResponse"
    )]
    async fn delete(&self, _auth: Authorized, id: Path<String>) -> Result<Json<Value>, ApiError> {
        if self.store.delete(&id.0) {
            Ok(Json(
                json!({"id": id.0, "object": "response.deleted", "deleted": true}),
            ))
        } else {
            Err(not_found(&id.0).into())
        }
    }
}

/// OpenAI's answer for an id it does not know (never stored, expired, evicted or deleted).
fn not_found(id: &str) -> ProxyError {
    ProxyError::Http {
        status: poem::http::StatusCode::NOT_FOUND,
        message: format!("Response with id '{id}' not found."),
    }
}

/// A Responses tool (`{"type": "function", "name", ...}`) in the chat API's shape, which the
/// shared tool converter reads.
fn chat_tool(index: usize, tool: &Value) -> Result<super::request::Tool, ProxyError> {
    let kind = tool["type"].as_str().unwrap_or_default().to_owned();
    let name = tool["name"]
        .as_str()
        .ok_or_else(|| ProxyError::InvalidRequest {
            message: format!("tools[{index}].name must be a string."),
            param: Some(format!("tools[{index}].name")),
        })?;
    Ok(super::request::Tool {
        kind: JsonString(kind),
        function: super::request::FunctionDefinition {
            name: name.into(),
            description: tool["description"].as_str().map(JsonString::from),
            parameters: tool.get("parameters").filter(|p| !p.is_null()).cloned(),
            strict: tool["strict"].as_bool(),
        },
    })
}

impl ResponsesApi {
    /// An input item as codex should see it: an `item_reference` (`{"type": "item_reference",
    /// "id"}`) is the stored output item it names, as OpenAI resolves it. The Vercel AI SDK
    /// refers to its earlier answers so whenever `store` is on (its default and the proxy's):
    /// without this, the step after a tool call that came with text was a 400. An id that no
    /// stored response holds (never stored, `store: false`, evicted or expired) is OpenAI's 400
    /// "Item with id '...' not found.".
    fn referenced(&self, index: usize, entry: &Value) -> Result<Value, ProxyError> {
        if entry["type"] != "item_reference" {
            return Ok(entry.clone());
        }
        let param = format!("input[{index}].id");
        let Some(id) = entry["id"].as_str() else {
            return Err(ProxyError::InvalidRequest {
                message: format!("{param} must be a string."),
                param: Some(param),
            });
        };
        self.store
            .item(id)
            .ok_or_else(|| ProxyError::InvalidRequest {
                message: format!("Item with id '{id}' not found."),
                param: Some(param),
            })
    }

    async fn answer(
        &self,
        remote: &RemoteAddr,
        caller: run::Caller,
        request: CreateResponse,
        outcome: &mut Option<RequestOutcome>,
    ) -> Result<ResponsesResponse, ApiError> {
        let state = &self.state;
        // The input as items, after the conversation of the response it continues.
        let mut items = match &request.previous_response_id {
            None => Vec::new(),
            Some(id) => match self.store.get(id) {
                Some(stored) => stored.conversation,
                None => {
                    return Err(ProxyError::invalid(
                        format!("Previous response with id '{id}' not found."),
                        "previous_response_id",
                    )
                    .into())
                }
            },
        };
        match &request.input {
            Value::String(text) => items.push(json!({"role": "user", "content": text})),
            Value::Array(entries) => {
                for (index, entry) in entries.iter().enumerate() {
                    items.push(self.referenced(index, entry)?);
                }
            }
            _ => {}
        }
        // A chain of continuations may not grow a conversation past what one request may send:
        // that bounds what each stored response holds.
        let limit = state.config.limits.max_body_bytes;
        if request.previous_response_id.is_some()
            && items
                .iter()
                .map(|item| item.to_string().len())
                .sum::<usize>()
                > limit
        {
            return Err(ProxyError::invalid(
                format!("The conversation with the response it continues is larger than {limit} bytes (MAX_BODY_BYTES): start a new one, or send a shorter conversation in `input`."),
                "previous_response_id",
            )
            .into());
        }
        let choice = state
            .config
            .resolve_model(&request.model, &state.backend().models())
            .ok_or_else(|| ProxyError::ModelNotFound(request.model.clone()))?;
        let effort = requested_effort(
            request
                .reasoning
                .as_ref()
                .and_then(|r| r["effort"].as_str()),
        )?
        .or(choice.effort);
        let tools: Vec<super::request::Tool> = request
            .tools
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, tool)| chat_tool(index, tool))
            .collect::<Result<_, _>>()?;
        // `{"type": "function", "name"}` is the chat API's `{"type": "function", "function": {"name"}}`.
        let tool_choice = match &request.tool_choice {
            Some(choice) if choice.get("name").is_some() => {
                Some(json!({"type": "function", "function": {"name": choice["name"]}}))
            }
            other => other.clone(),
        };
        let tools = conversation::tools(
            Some(&tools),
            tool_choice.as_ref(),
            request.parallel_tool_calls,
            SchemaBudget {
                max_nodes: state.config.limits.max_tool_schema_nodes,
                max_steps: state.config.limits.max_tool_check_steps,
            },
        )?;
        // `text.format` is the chat API's `response_format`, its schema one level up.
        let format = match request.text.as_ref().and_then(|t| t.get("format")) {
            Some(format) if format["type"] == "json_schema" => {
                let chat_shape = json!({"type": "json_schema", "json_schema": {
                    "name": format["name"], "schema": format["schema"], "strict": format["strict"]}});
                ResponseFormat::from_request(Some(&chat_shape))?
            }
            other => ResponseFormat::from_request(other)?,
        };
        let input = if request.input.is_string() || request.input.is_array() {
            Value::Array(items.clone())
        } else {
            request.input.clone()
        };
        // Counted before any is decoded, as for chat completions.
        let images = input::image_parts(&input);
        let max_images = state.config.limits.max_images;
        if images > max_images {
            return Err(ProxyError::invalid(
                format!("The input has {images} images, more than this server's limit of {max_images} (MAX_IMAGES)."),
                "input",
            )
            .into());
        }
        let conversation = input::conversation(
            request.instructions.as_ref().map(JsonString::as_str),
            &input,
        )?;
        let transcript: Arc<str> = Arc::from(prompt::transcript(&conversation, tools.as_deref()));
        // As for chat completions: codex is not started on nothing (exec refuses an empty
        // prompt, an app-server turn would answer one).
        let images = conversation
            .items
            .iter()
            .flat_map(|item| item.parts())
            .any(|part| matches!(part, Part::Image(_)));
        if transcript.trim().is_empty() && !images {
            return Err(ProxyError::invalid(
                "The input has no text for codex to answer: give the user message some content.",
                "input",
            )
            .into());
        }
        let turn = Turn::new(conversation, tools.clone(), &format, choice.model, effort);
        let options = Options {
            tools,
            native_tools: state.backend().takes_items(),
            report_commands: false,
            // Reasoning is an output item of its own here, never inside the text.
            reasoning_output: match state.config.reasoning_output {
                ReasoningOutput::None => ReasoningOutput::None,
                _ => ReasoningOutput::ReasoningContent,
            },
            stop: Vec::new(),
            json: format.wants_json(),
        };
        let stream = request.stream.unwrap_or(false);
        tracing::info!(model = %request.model, stream, user = request.user.as_ref().map_or("", JsonString::as_str), "response");
        let mut echoed = serde_json::Map::new();
        echoed.insert("instructions".into(), json!(request.instructions));
        echoed.insert(
            "metadata".into(),
            request.metadata.unwrap_or_else(|| json!({})),
        );
        echoed.insert("tools".into(), json!(request.tools.unwrap_or_default()));
        echoed.insert(
            "tool_choice".into(),
            request.tool_choice.unwrap_or_else(|| json!("auto")),
        );
        echoed.insert(
            "parallel_tool_calls".into(),
            json!(request.parallel_tool_calls.unwrap_or(true)),
        );
        echoed.insert(
            "text".into(),
            request
                .text
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
        );
        echoed.insert(
            "reasoning".into(),
            request
                .reasoning
                .unwrap_or_else(|| json!({"effort": null, "summary": null})),
        );
        let store = request.store.unwrap_or(true) && state.config.limits.responses_stored > 0;
        echoed.insert("store".into(), json!(store));
        echoed.insert(
            "previous_response_id".into(),
            json!(request.previous_response_id),
        );
        let deltas = run::start(state, remote, caller, turn, transcript, options, outcome).await?;
        let envelope = render::Envelope {
            id: crate::ids::random_id("resp_"),
            created_at: unix_now(),
            model: request.model,
            echoed,
        };
        // A completed response is kept with the conversation it ends.
        let keep: render::OnCompleted = {
            let (store_to, id) = (self.store.clone(), envelope.id.clone());
            Box::new(move |response: &Value| {
                if store {
                    let mut conversation = items;
                    conversation.extend(response["output"].as_array().cloned().unwrap_or_default());
                    store_to.put(
                        id,
                        store::Stored {
                            response: response.clone(),
                            conversation,
                        },
                    );
                }
            })
        };
        if stream {
            let body = InSpan::new(
                render::stream(envelope, deltas, state.config.keepalive, keep).boxed(),
                Span::current(),
            )
            .boxed();
            Ok(ResponsesResponse::Ok(ResponsesBody::Stream(
                EventStream::new(body),
            )))
        } else {
            let response = render::fold(envelope, deltas).await?;
            keep(&response);
            Ok(ResponsesResponse::Ok(ResponsesBody::Json(Json(response))))
        }
    }
}
