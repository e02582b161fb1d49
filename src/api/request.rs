//! Request wire types of `POST /v1/chat/completions`, as the OpenAI SDKs and OpenWebUI send them.
//! Fields not listed here are accepted and ignored.

use std::borrow::Cow;

use poem_openapi::{
    registry::MetaSchemaRef,
    types::{Example, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
    Enum, Object, Union,
};

#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ChatCompletionRequest {
    /// A model id from `GET /v1/models`.
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// How many choices to generate; only 1 is supported.
    pub n: Option<u32>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    pub temperature: Option<f64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    pub top_p: Option<f64>,
    /// Accepted for compatibility; codex does not cap its answer length.
    pub max_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not cap its answer length.
    pub max_completion_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not take a seed.
    pub seed: Option<i64>,
    /// An end-user id, logged with the request.
    pub user: Option<String>,
    /// Tools the model may call.
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto`, `required`, or `{"type":"function","function":{"name":...}}`.
    pub tool_choice: Option<serde_json::Value>,
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text"}`, `{"type": "json_object"}`, or `{"type": "json_schema", "json_schema":
    /// {"name": ..., "schema": {...}, "strict": true}}` (a strict schema must follow OpenAI's
    /// strict rules; one not marked strict is made strict as OpenAI's SDKs do).
    pub response_format: Option<serde_json::Value>,
    /// Up to 4 sequences; the answer ends before the first of them.
    pub stop: Option<Stop>,
    /// How hard the model thinks: `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `max` or
    /// `ultra` (which ones a model takes, codex's `model/list` says).
    /// Passed to codex as `model_reasoning_effort`; unset keeps codex's default.
    pub reasoning_effort: Option<String>,
}

/// The example `/docs` fills in: a request that works as it stands (the one generated from the
/// schema sent `"model": "string"` and `"n": 0`, and failed).
impl Example for ChatCompletionRequest {
    fn example() -> Self {
        let example = serde_json::json!({
            "model": "codex-local",
            "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        });
        ChatCompletionRequest::parse_from_json(Some(example)).expect("the example is a request")
    }
}

#[derive(Debug, Clone, Union)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Object)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` and empty `choices`.
    pub include_usage: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Role {
    System,
    /// Newer OpenAI clients' name for system instructions; treated as `system`.
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChatMessage {
    pub role: Role,
    /// Text, or an array of content parts. May be null on assistant messages with `tool_calls`.
    pub content: Option<MessageContent>,
    pub name: Option<String>,
    /// Calls an earlier assistant turn made.
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On `tool` messages: the call this message answers.
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Union)]
pub enum MessageContent {
    Text(JsonString),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Union)]
#[oai(discriminator_name = "type")]
pub enum ContentPart {
    #[oai(mapping = "text")]
    Text(TextPart),
    #[oai(mapping = "image_url")]
    ImageUrl(ImageUrlPart),
}

#[derive(Debug, Clone, Object)]
pub struct TextPart {
    pub text: JsonString,
}

/// A string that must be a JSON string. poem-openapi's `String` also takes numbers and
/// booleans (`"content": 123` would become the text "123"), where OpenAI answers 400.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonString(pub String);

impl std::ops::Deref for JsonString {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl From<&str> for JsonString {
    fn from(text: &str) -> Self {
        JsonString(text.to_owned())
    }
}

impl Type for JsonString {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for JsonString {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(text)) => Ok(JsonString(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for JsonString {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.clone()))
    }
}

#[derive(Debug, Clone, Object)]
pub struct ImageUrlPart {
    pub image_url: ImageUrl,
}

#[derive(Debug, Clone, Object)]
pub struct ImageUrl {
    pub url: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct Tool {
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, Object)]
pub struct FunctionDefinition {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema object for the arguments.
    pub parameters: Option<serde_json::Value>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct ToolCall {
    pub id: String,
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Object)]
pub struct FunctionCall {
    pub name: String,
    /// The arguments as a JSON-encoded string.
    pub arguments: String,
}
