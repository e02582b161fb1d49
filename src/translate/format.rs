//! What the answer's text must be (`response_format`). A JSON answer is read in whole messages
//! only: models like to put a code fence around it, which comes off, and what the client gets
//! must parse, or the turn fails rather than hand the client prose it will not be able to read.

use crate::{error::ProxyError, structured};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Text,
    Json,
}

impl Format {
    pub(super) fn new(json: bool) -> Self {
        if json {
            Format::Json
        } else {
            Format::Text
        }
    }

    /// Whether an agent message may go out piece by piece: JSON is unfenced and checked whole.
    pub(super) fn streams(self) -> bool {
        self == Format::Text
    }

    /// The content of a whole agent message.
    pub(super) fn content(self, text: String) -> String {
        match self {
            Format::Text => text,
            Format::Json => structured::unfence(&text).to_owned(),
        }
    }

    /// Whether `content`, the whole answer, is what was asked for.
    pub(super) fn check(self, content: &str) -> Result<(), ProxyError> {
        match self {
            Format::Json if serde_json::from_str::<serde_json::Value>(content).is_err() => {
                Err(ProxyError::codex_failed(
                    "codex's answer is not valid JSON, though response_format asked for JSON",
                ))
            }
            Format::Text | Format::Json => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        codex::{ItemDetails, PartialKind, ThreadEvent},
        translate::{fixtures::*, Delta, FinishReason, Options, Translator},
    };

    #[test]
    fn text_is_taken_as_written() {
        let text = "```json\n{}\n```";
        assert!(Format::Text.streams());
        assert_eq!(Format::Text.content(text.into()), text);
        assert!(Format::Text.check("not JSON").is_ok());
    }

    #[test]
    fn json_loses_its_fence_and_must_parse() {
        assert!(!Format::Json.streams());
        assert_eq!(
            Format::Json.content("```json\n{\"a\": 1}\n```".into()),
            "{\"a\": 1}"
        );
        assert_eq!(Format::Json.content(" [1] ".into()), "[1]");
        assert!(Format::Json.check("{\"a\": 1}").is_ok());
        let err = Format::Json.check("Here it is: {}").unwrap_err();
        assert!(err.message().contains("not valid JSON"), "{err}");
    }

    fn json_turn(pieces: &[&str], whole: &str) -> Vec<Delta> {
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                json: true,
                ..Options::default()
            },
        );
        let mut deltas: Vec<Delta> = pieces
            .iter()
            .flat_map(|p| translator.on_run_event(piece("m", PartialKind::AgentMessage, p)))
            .collect();
        deltas.extend(
            translator.on_run_event(done("m", ItemDetails::AgentMessage { text: whole.into() })),
        );
        deltas.extend(translator.on_event(ThreadEvent::TurnCompleted { usage: USAGE }));
        deltas
    }

    #[test]
    fn a_json_answer_waits_for_the_whole_message_and_goes_out_unfenced() {
        let deltas = json_turn(
            &["```json\n{\"a\":", " 1}\n```"],
            "```json\n{\"a\": 1}\n```",
        );
        assert_eq!(deltas[0], Delta::Content("{\"a\": 1}".into()));
        assert!(
            matches!(
                deltas[1..],
                [Delta::Finish {
                    reason: FinishReason::Stop,
                    ..
                }]
            ),
            "{deltas:?}"
        );
    }

    #[test]
    fn a_json_answer_that_does_not_parse_fails_the_turn() {
        let deltas = json_turn(&[], "Sure! {\"a\": 1}");
        assert!(
            matches!(deltas[..], [Delta::Content(_), Delta::Failed(_)]),
            "{deltas:?}"
        );
    }
}
