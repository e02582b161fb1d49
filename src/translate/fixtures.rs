//! codex events for the translator's tests, and a turn run through a translator.

use std::sync::Arc;

use super::{Delta, Translator};
use crate::codex::{
    CodexUsage, ExitReport, ItemDetails, Partial, PartialKind, RunEvent, ThreadEvent, ThreadItem,
};

pub const USAGE: CodexUsage = CodexUsage {
    input_tokens: 120,
    cached_input_tokens: 40,
    cache_write_input_tokens: 0,
    output_tokens: 19,
    reasoning_output_tokens: 7,
};

pub fn completed(id: &str, details: ItemDetails) -> ThreadEvent {
    ThreadEvent::ItemCompleted {
        item: ThreadItem {
            id: id.into(),
            details,
        },
    }
}

pub fn message(text: &str) -> ThreadEvent {
    completed("item_0", ItemDetails::AgentMessage { text: text.into() })
}

/// `events` through a translator without tools, then codex's exit.
pub fn run(events: Vec<ThreadEvent>, exit: Option<ExitReport>) -> Vec<Delta> {
    let mut translator = Translator::new(Arc::from("say hi"), None);
    let mut deltas: Vec<Delta> = events
        .into_iter()
        .flat_map(|e| translator.on_event(e))
        .collect();
    deltas.extend(translator.on_exit(exit.unwrap_or_default()));
    deltas
}

pub fn piece(item: &str, kind: PartialKind, text: &str) -> RunEvent {
    RunEvent::Partial(Partial {
        item_id: item.into(),
        kind,
        text: text.into(),
    })
}

pub fn done(id: &str, details: ItemDetails) -> RunEvent {
    RunEvent::Event(completed(id, details))
}
