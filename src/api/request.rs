//! Request wire types of `POST /v1/chat/completions`, as the OpenAI SDKs and OpenWebUI send them.
//! Fields not listed here are accepted and ignored.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{Example, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
    Enum, Object, Union,
};

/// `Type`, `ParseFromJSON` and `ToJSON` for an enum of a string (`$text`) or an array of
/// `$item` (`$list`). poem-openapi's `Union` derive gives every union `"type": "object"` beside
/// its `anyOf`, which says no string or array is valid (spec checkers refuse `"stop": "\n"`), so
/// these describe themselves with the `anyOf` alone.
macro_rules! string_or_array {
    ($name:ident, $text:ident, $list:ident, $item:ty) => {
        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference(stringify!($name).to_owned())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>(stringify!($name).to_owned(), |registry| {
                    <Vec<$item>>::register(registry);
                    MetaSchema {
                        any_of: vec![JsonString::schema_ref(), <Vec<$item>>::schema_ref()],
                        ..MetaSchema::ANY
                    }
                })
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
                match value {
                    Some(serde_json::Value::String(text)) => Ok($name::$text(JsonString(text))),
                    Some(list @ serde_json::Value::Array(_)) => {
                        <Vec<$item>>::parse_from_json(Some(list))
                            .map($name::$list)
                            .map_err(ParseError::propagate)
                    }
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                match self {
                    $name::$text(text) => text.to_json(),
                    $name::$list(list) => list.to_json(),
                }
            }
        }
    };
}

#[derive(Debug, Clone, Object)]
#[oai(example, skip_serializing_if_is_none)]
pub struct ChatCompletionRequest {
    /// A model id from `GET /v1/models`.
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    #[oai(nullable)]
    pub stream: Option<bool>,
    #[oai(nullable)]
    pub stream_options: Option<StreamOptions>,
    /// How many choices to generate; only 1 is supported.
    #[oai(nullable)]
    pub n: Option<u32>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub temperature: Option<f64>,
    /// Accepted for compatibility; codex does not expose sampling parameters.
    #[oai(nullable)]
    pub top_p: Option<f64>,
    /// Accepted for compatibility; codex does not cap its answer length.
    #[oai(nullable)]
    pub max_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not cap its answer length.
    #[oai(nullable)]
    pub max_completion_tokens: Option<u64>,
    /// Accepted for compatibility; codex does not take a seed.
    #[oai(nullable)]
    pub seed: Option<i64>,
    /// An end-user id, logged with the request.
    #[oai(nullable)]
    pub user: Option<JsonString>,
    /// Tools the model may call.
    #[oai(nullable)]
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto`, `required`, or `{"type":"function","function":{"name":...}}`.
    #[oai(nullable)]
    pub tool_choice: Option<serde_json::Value>,
    #[oai(nullable)]
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text"}`, `{"type": "json_object"}`, or `{"type": "json_schema", "json_schema":
    /// {"name": ..., "schema": {...}, "strict": true}}` (a strict schema must follow OpenAI's
    /// strict rules; one not marked strict is made strict as OpenAI's SDKs do).
    #[oai(nullable)]
    pub response_format: Option<serde_json::Value>,
    /// Up to 4 sequences; the answer ends before the first of them.
    #[oai(nullable)]
    pub stop: Option<Stop>,
    /// How hard the model thinks: `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `max` or
    /// `ultra` (which ones a model takes, codex's `model/list` says).
    /// Passed to codex as `model_reasoning_effort`; unset keeps codex's default.
    #[oai(nullable)]
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

/// One stop sequence or several.
#[derive(Debug, Clone)]
pub enum Stop {
    One(JsonString),
    Many(Vec<JsonString>),
}

string_or_array!(Stop, One, Many, JsonString);

#[derive(Debug, Clone, Object)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` and empty `choices`.
    #[oai(nullable)]
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
    #[oai(nullable)]
    pub content: Option<MessageContent>,
    #[oai(nullable)]
    pub name: Option<JsonString>,
    /// Calls an earlier assistant turn made.
    #[oai(nullable)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On `tool` messages: the call this message answers.
    #[oai(nullable)]
    pub tool_call_id: Option<JsonString>,
}

/// Text, or an array of content parts.
#[derive(Debug, Clone)]
pub enum MessageContent {
    Text(JsonString),
    Parts(Vec<ContentPart>),
}

string_or_array!(MessageContent, Text, Parts, ContentPart);

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
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct JsonString(pub String);

impl JsonString {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for JsonString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for JsonString {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<JsonString> for String {
    fn from(text: JsonString) -> Self {
        text.0
    }
}

impl std::fmt::Display for JsonString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
    #[oai(nullable)]
    pub detail: Option<JsonString>,
}

#[derive(Debug, Clone, Object)]
pub struct Tool {
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: JsonString,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, Object)]
pub struct FunctionDefinition {
    pub name: JsonString,
    #[oai(nullable)]
    pub description: Option<JsonString>,
    /// A JSON Schema object for the arguments.
    #[oai(nullable)]
    pub parameters: Option<serde_json::Value>,
    #[oai(nullable)]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Object)]
pub struct ToolCall {
    pub id: JsonString,
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: JsonString,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Object)]
pub struct FunctionCall {
    pub name: JsonString,
    /// The arguments as a JSON-encoded string.
    pub arguments: JsonString,
}
