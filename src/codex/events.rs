//! The JSONL events `codex exec --json` prints, one per stdout line.
//!
//! The types mirror codex's own wire format field for field (and in field order), so the same
//! types parse the real CLI's output and let `fake-codex` print output indistinguishable from it.
//! Unknown event and item types parse as `Unknown`/`Other` and are skipped, never fatal.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ThreadEvent {
    #[serde(rename = "thread.started")]
    ThreadStarted { thread_id: String },
    #[serde(rename = "turn.started")]
    TurnStarted,
    #[serde(rename = "turn.completed")]
    TurnCompleted { usage: CodexUsage },
    #[serde(rename = "turn.failed")]
    TurnFailed { error: TurnError },
    #[serde(rename = "item.started")]
    ItemStarted { item: ThreadItem },
    #[serde(rename = "item.updated")]
    ItemUpdated { item: ThreadItem },
    #[serde(rename = "item.completed")]
    ItemCompleted { item: ThreadItem },
    /// A notice: retries print it too, so it is not terminal on its own.
    #[serde(rename = "error")]
    Error { message: String },
    #[serde(other, skip_serializing)]
    Unknown,
}

/// Token usage on `turn.completed`: the thread's cumulative total, which for a fresh
/// `--ephemeral` thread is this turn's total. Older codex versions lack the last fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cached_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub reasoning_output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnError {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadItem {
    pub id: String,
    #[serde(flatten)]
    pub details: ItemDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemDetails {
    AgentMessage {
        text: String,
    },
    /// The reasoning summary, its parts joined with `\n`.
    Reasoning {
        text: String,
    },
    CommandExecution {
        command: String,
        aggregated_output: String,
        exit_code: Option<i64>,
        status: String,
    },
    /// A non-fatal warning, such as missing model metadata.
    Error {
        message: String,
    },
    #[serde(other, skip_serializing)]
    Other,
}

impl ThreadEvent {
    /// Parses one stdout line. Goes through `serde_json::Value` first because codex prints some
    /// items (`web_search`) with a duplicated `id` key, which typed parsing rejects.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(line)?;
        serde_json::from_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_line_of_a_real_transcript() {
        let lines = [
            r#"{"type":"thread.started","thread_id":"01a20ab3-cbe5-7043-881d-5650ceae5715"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Thinking**"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Hi."}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":120,"cached_input_tokens":40,"cache_write_input_tokens":0,"output_tokens":19,"reasoning_output_tokens":7}}"#,
        ];
        for line in lines {
            let event = ThreadEvent::parse(line).unwrap();
            assert_ne!(event, ThreadEvent::Unknown, "{line}");
            assert_eq!(
                serde_json::to_string(&event).unwrap(),
                line,
                "round trip keeps field order"
            );
        }
    }

    #[test]
    fn old_usage_without_new_fields_defaults_them_to_zero() {
        let event = ThreadEvent::parse(
            r#"{"type":"turn.completed","usage":{"input_tokens":5,"cached_input_tokens":0,"output_tokens":2}}"#,
        )
        .unwrap();
        let ThreadEvent::TurnCompleted { usage } = event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.reasoning_output_tokens
            ),
            (5, 2, 0)
        );
    }

    #[test]
    fn unknown_types_and_duplicate_keys_do_not_fail() {
        assert_eq!(
            ThreadEvent::parse(r#"{"type":"item.plan.delta","item_id":"x","delta":"y"}"#).unwrap(),
            ThreadEvent::Unknown
        );
        let web_search = r#"{"type":"item.completed","item":{"id":"item_0","type":"web_search","id":"ws_1","query":"q","action":{"type":"search","query":"q"}}}"#;
        let ThreadEvent::ItemCompleted { item } = ThreadEvent::parse(web_search).unwrap() else {
            panic!()
        };
        assert_eq!(item.details, ItemDetails::Other);
        assert!(ThreadEvent::parse("Reading additional input from stdin...").is_err());
    }
}
