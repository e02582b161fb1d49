//! How one turn's items join into one answer. codex may write several agent messages (and
//! reasoning items) in a turn; the client sees one text, so consecutive items of a kind are
//! set apart by a blank line. An item the backend streamed in pieces is then completed with its
//! whole text, of which only what the pieces missed may go out, or the client reads it twice.

/// Separates consecutive agent messages (and reasoning items) of one turn.
pub(super) const ITEM_SEPARATOR: &str = "\n\n";

/// `text`, after a separator when it follows an earlier item of the same kind.
pub(super) fn joined(after_another: bool, text: String) -> String {
    if after_another {
        format!("{ITEM_SEPARATOR}{text}")
    } else {
        text
    }
}

/// What `text` adds to the `streamed` pieces of the same item; `None` when nothing is left. Should
/// the pieces not be a prefix of the whole (they always are with codex 0.169.0), what was sent
/// stays sent and the difference is logged.
pub(super) fn rest_of(streamed: &str, text: &str) -> Option<String> {
    match text.strip_prefix(streamed) {
        Some("") => None,
        Some(rest) => Some(rest.to_owned()),
        None => {
            tracing::warn!(
                streamed = streamed.len(),
                whole = text.len(),
                "an item's streamed pieces differ from its final text"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        codex::{ItemDetails, PartialKind, RunEvent, ThreadEvent},
        translate::{fixtures::*, Delta, FinishReason, Translator},
        usage::TokenUsage,
    };

    #[test]
    fn the_rest_is_what_the_whole_adds_to_its_pieces() {
        assert_eq!(rest_of("Hel", "Hello"), Some("lo".into()));
        assert_eq!(rest_of("Hello", "Hello"), None, "nothing left");
        assert_eq!(rest_of("", "Hello"), Some("Hello".into()), "no pieces");
        assert_eq!(
            rest_of("Help", "Hello"),
            None,
            "what was sent stays sent; nothing is taken back or repeated"
        );
    }

    #[test]
    fn only_a_later_item_is_joined() {
        assert_eq!(joined(false, "one".into()), "one");
        assert_eq!(joined(true, "two".into()), "\n\ntwo");
    }

    #[test]
    fn several_messages_are_joined_with_a_blank_line_and_usage_is_codexs() {
        let deltas = run(
            vec![
                completed(
                    "item_0",
                    ItemDetails::Reasoning {
                        text: "think".into(),
                    },
                ),
                message("one"),
                message("two"),
                ThreadEvent::TurnCompleted { usage: USAGE },
            ],
            None,
        );
        assert_eq!(deltas[0], Delta::Reasoning("think".into()));
        assert_eq!(deltas[1], Delta::Content("one".into()));
        assert_eq!(deltas[2], Delta::Content("\n\ntwo".into()));
        assert_eq!(
            deltas[3],
            Delta::Finish {
                reason: FinishReason::Stop,
                usage: TokenUsage::from_codex(&USAGE)
            }
        );
        assert_eq!(deltas.len(), 4, "exit after completion adds nothing");
    }

    #[test]
    fn streamed_pieces_go_out_at_once_and_completion_adds_only_what_they_missed() {
        let mut translator = Translator::new(Arc::from("q"), None);
        let summary = |part| PartialKind::ReasoningSummary { part };
        let events = [
            piece("rs", summary(0), "Think"),
            piece("rs", summary(0), "ing."),
            piece("rs", summary(1), "More."),
            done(
                "rs",
                ItemDetails::Reasoning {
                    text: "Thinking.\nMore.".into(),
                },
            ),
            piece("m1", PartialKind::AgentMessage, "Hel"),
            piece("m1", PartialKind::AgentMessage, "lo"),
            done(
                "m1",
                ItemDetails::AgentMessage {
                    text: "Hello!".into(),
                },
            ),
            piece("m2", PartialKind::AgentMessage, "Bye."),
            done(
                "m2",
                ItemDetails::AgentMessage {
                    text: "Bye.".into(),
                },
            ),
            RunEvent::Event(ThreadEvent::TurnCompleted { usage: USAGE }),
        ];
        let deltas: Vec<Delta> = events
            .into_iter()
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        assert_eq!(
            deltas[..7],
            [
                Delta::Reasoning("Think".into()),
                Delta::Reasoning("ing.".into()),
                Delta::Reasoning("\nMore.".into()),
                Delta::Content("Hel".into()),
                Delta::Content("lo".into()),
                Delta::Content("!".into()),
                Delta::Content("\n\nBye.".into()),
            ]
        );
        assert!(matches!(
            deltas[7],
            Delta::Finish {
                reason: FinishReason::Stop,
                ..
            }
        ));
        assert_eq!(deltas.len(), 8);
    }
}
