//! The conversation a request asks codex to continue, in the proxy's own terms: each API
//! converts its wire request into it once, at its edge, and each backend renders it (the exec
//! backend into one prompt). Nothing here knows HTTP or any API's field names.

use crate::images::Image;

/// The conversation so far, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    pub items: Vec<Item>,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// System or developer instructions, wherever they stood.
    Instructions {
        parts: Vec<Part>,
    },
    User {
        parts: Vec<Part>,
    },
    /// An earlier answer: its text (reasoning that clients send back left in) and the tool
    /// calls it made.
    Assistant {
        parts: Vec<Part>,
        calls: Vec<Call>,
    },
    /// The result of an earlier call; `name` when the client gave it.
    ToolResult {
        call_id: String,
        name: Option<String>,
        parts: Vec<Part>,
    },
}

/// A piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Image(Image),
}

/// A tool call an earlier answer made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub name: String,
    /// As the client sent them: JSON-encoded, though not always valid JSON.
    pub arguments: String,
}

impl Item {
    pub fn parts(&self) -> &[Part] {
        match self {
            Item::Instructions { parts }
            | Item::User { parts }
            | Item::Assistant { parts, .. }
            | Item::ToolResult { parts, .. } => parts,
        }
    }
}
