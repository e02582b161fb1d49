//! Where codex's reasoning summary goes. OpenWebUI shows `reasoning_content` as a collapsible
//! block; clients that read only the content get it as `<think>` blocks inside the content
//! instead; some want none of it. Whichever, the reasoning is counted for usage, and a reasoning
//! item streamed in pieces gives the client the same text as the whole item would.

use std::collections::HashMap;

use super::{
    items::{joined, rest_of, ITEM_SEPARATOR},
    Delta,
};

/// Where codex's reasoning summary goes (`REASONING_OUTPUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningOutput {
    /// `reasoning_content`, which OpenWebUI shows as a collapsible block.
    #[default]
    ReasoningContent,
    /// Inside the content, wrapped in `<think>` tags, for clients that read content only.
    Think,
    /// Left out.
    None,
}

/// Where one reasoning item goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `Delta::Reasoning`.
    Reasoning,
    /// `Delta::Content`, as a `<think>` block of its own.
    Think,
}

impl ReasoningOutput {
    /// Where a reasoning item goes, `None` when nowhere. A `<think>` block is content, so once a
    /// stop sequence has ended the content no new block begins.
    fn place(self, stopped: bool) -> Option<Place> {
        match self {
            ReasoningOutput::ReasoningContent => Some(Place::Reasoning),
            ReasoningOutput::Think if !stopped => Some(Place::Think),
            ReasoningOutput::Think | ReasoningOutput::None => None,
        }
    }
}

const THINK_OPEN: &str = "<think>\n";
const THINK_CLOSE: &str = "\n</think>\n\n";

/// The turn's reasoning: where it goes, and what of it went out.
#[derive(Debug)]
pub(super) struct Reasoning {
    output: ReasoningOutput,
    /// All reasoning summaries, joined as sent, whether sent or not: counted only when codex
    /// reports no usage.
    text: String,
    /// Reasoning items completed so far: whether the next one needs a separator.
    items: usize,
    /// Items streamed piece by piece so far, by item id: their completion only adds what the
    /// pieces missed (and closes a `<think>` block the pieces opened).
    streamed: HashMap<String, Streamed>,
}

/// What was sent of a reasoning item still being written.
#[derive(Debug)]
struct Streamed {
    /// Where its pieces went: where the rest goes too, whatever happens meanwhile.
    place: Place,
    /// The item's text so far, without the separator sent before it.
    text: String,
    /// The summary part the last piece belonged to.
    part: u32,
}

impl Reasoning {
    pub(super) fn new(output: ReasoningOutput) -> Self {
        Reasoning {
            output,
            text: String::new(),
            items: 0,
            streamed: HashMap::new(),
        }
    }

    /// The reasoning so far, for counting its tokens.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// A piece of a summary codex is still writing, sent at once; `stopped` says whether a stop
    /// sequence has ended the content.
    pub(super) fn piece(
        &mut self,
        item_id: String,
        part: u32,
        text: &str,
        stopped: bool,
    ) -> Option<Delta> {
        let place = self.output.place(stopped)?;
        let first = !self.streamed.contains_key(&item_id);
        let entry = self.streamed.entry(item_id).or_insert(Streamed {
            place,
            text: String::new(),
            part: 0,
        });
        let separator = if place == Place::Think && first {
            // Each reasoning item is a `<think>` block of its own, closed on completion.
            THINK_OPEN
        } else if first && self.items > 0 {
            ITEM_SEPARATOR
        } else if !first && part != entry.part {
            entry.text.push('\n');
            "\n"
        } else {
            ""
        };
        entry.part = part;
        entry.text.push_str(text);
        if first && self.items > 0 {
            self.text.push_str(ITEM_SEPARATOR);
        }
        let out = format!("{separator}{text}");
        Some(match place {
            Place::Think => Delta::Content(out),
            Place::Reasoning => Delta::Reasoning(out),
        })
    }

    /// A reasoning item completed with its whole `text`: what of it goes out, if anything.
    pub(super) fn completed(
        &mut self,
        item_id: &str,
        text: String,
        stopped: bool,
    ) -> Option<Delta> {
        if let Some(streamed) = self.streamed.remove(item_id) {
            let rest = rest_of(&streamed.text, &text);
            self.text.push_str(&text);
            self.items += 1;
            return match streamed.place {
                Place::Think => Some(Delta::Content(format!(
                    "{}{THINK_CLOSE}",
                    rest.unwrap_or_default()
                ))),
                Place::Reasoning => rest.map(Delta::Reasoning),
            };
        }
        if text.is_empty() {
            return None;
        }
        let text = joined(self.items > 0, text);
        self.items += 1;
        self.text.push_str(&text);
        match self.output.place(stopped)? {
            Place::Reasoning => Some(Delta::Reasoning(text)),
            Place::Think => Some(Delta::Content(format!(
                "{THINK_OPEN}{}{THINK_CLOSE}",
                text.trim()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        codex::{ItemDetails, PartialKind},
        translate::{fixtures::*, Options, Translator},
    };

    #[test]
    fn items_are_joined_whether_streamed_or_whole_and_all_are_counted() {
        for output in [ReasoningOutput::ReasoningContent, ReasoningOutput::None] {
            let mut reasoning = Reasoning::new(output);
            let mut deltas: Vec<Delta> = reasoning
                .completed("r1", "a".into(), false)
                .into_iter()
                .collect();
            deltas.extend(reasoning.piece("r2".into(), 0, "b", false));
            deltas.extend(reasoning.completed("r2", "b".into(), false));
            deltas.extend(reasoning.completed("r3", "c".into(), false));
            let expected = match output {
                ReasoningOutput::None => Vec::new(),
                _ => vec![
                    Delta::Reasoning("a".into()),
                    Delta::Reasoning("\n\nb".into()),
                    Delta::Reasoning("\n\nc".into()),
                ],
            };
            assert_eq!(deltas, expected, "{output:?}");
            assert_eq!(
                reasoning.text(),
                "a\n\nb\n\nc",
                "counted even when left out"
            );
        }
    }

    #[test]
    fn an_empty_item_is_nothing_and_no_separator_follows_it() {
        let mut reasoning = Reasoning::new(ReasoningOutput::ReasoningContent);
        assert_eq!(reasoning.completed("r1", String::new(), false), None);
        assert_eq!(
            reasoning.completed("r2", "a".into(), false),
            Some(Delta::Reasoning("a".into()))
        );
    }

    #[test]
    fn a_think_block_the_pieces_opened_is_closed_even_after_a_stop_sequence() {
        let mut reasoning = Reasoning::new(ReasoningOutput::Think);
        assert_eq!(
            reasoning.piece("r".into(), 0, "hm", false),
            Some(Delta::Content("<think>\nhm".into()))
        );
        assert_eq!(
            reasoning.piece("r".into(), 0, "m", true),
            None,
            "no more of it"
        );
        assert_eq!(
            reasoning.completed("r", "hmm".into(), true),
            Some(Delta::Content("m\n</think>\n\n".into())),
            "the rest and the close"
        );
        assert_eq!(
            reasoning.completed("r2", "more".into(), true),
            None,
            "no new block after the stop"
        );
    }

    #[test]
    fn think_mode_puts_reasoning_in_the_content_and_none_drops_it() {
        for (output, expected) in [
            (
                ReasoningOutput::Think,
                vec![
                    Delta::Content("<think>\nhmm\n</think>\n\n".into()),
                    Delta::Content("Answer.".into()),
                ],
            ),
            (
                ReasoningOutput::None,
                vec![Delta::Content("Answer.".into())],
            ),
        ] {
            let mut translator = Translator::with_options(
                Arc::from("q"),
                Options {
                    reasoning_output: output,
                    ..Options::default()
                },
            );
            let mut deltas = translator.on_event(completed(
                "item_0",
                ItemDetails::Reasoning { text: "hmm".into() },
            ));
            deltas.extend(translator.on_event(message("Answer.")));
            assert_eq!(deltas, expected, "{output:?}");
        }
    }

    #[test]
    fn think_mode_streams_the_summary_inside_its_think_block() {
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                reasoning_output: ReasoningOutput::Think,
                ..Options::default()
            },
        );
        let summary = PartialKind::ReasoningSummary { part: 0 };
        let events = [
            piece("rs", summary, "hm"),
            piece("rs", summary, "m"),
            done("rs", ItemDetails::Reasoning { text: "hmm".into() }),
            piece("m", PartialKind::AgentMessage, "Answer."),
            done(
                "m",
                ItemDetails::AgentMessage {
                    text: "Answer.".into(),
                },
            ),
        ];
        let deltas: Vec<Delta> = events
            .into_iter()
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        assert_eq!(
            deltas,
            [
                Delta::Content("<think>\nhm".into()),
                Delta::Content("m".into()),
                Delta::Content("\n</think>\n\n".into()),
                Delta::Content("Answer.".into()),
            ],
            "the same content as the whole item gives, in pieces"
        );
    }
}
