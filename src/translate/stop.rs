//! `stop` sequences: the content ends before the first one, also one that spans two messages or
//! two streamed pieces. A streamed piece may end with the start of a sequence the next piece
//! completes, so those last characters wait until it is known which it is: nothing of a stop
//! sequence ever reaches the client.

/// The answer's content as accepted, and how much of it may go out.
#[derive(Debug)]
pub(super) struct StopSequences {
    sequences: Vec<String>,
    /// The content accepted so far, separators included: where a sequence spanning two messages
    /// begins, whether the next message needs a separator, and the JSON answer to check.
    accepted: String,
    /// How much of `accepted` has gone out. Less than all of it only while a streamed message
    /// holds back a tail that could be the start of a stop sequence.
    emitted: usize,
    /// A stop sequence was met: no more content or calls.
    stopped: bool,
}

impl StopSequences {
    pub(super) fn new(sequences: Vec<String>) -> Self {
        StopSequences {
            sequences,
            accepted: String::new(),
            emitted: 0,
            stopped: false,
        }
    }

    /// Whether a stop sequence was met: the answer's content is over.
    pub(super) fn stopped(&self) -> bool {
        self.stopped
    }

    /// All content accepted so far, also what a stop sequence or a held-back tail kept in.
    pub(super) fn accepted(&self) -> &str {
        &self.accepted
    }

    /// Takes `text` into the content and returns what may go out now: everything up to the
    /// first stop sequence (which stops the content), counting sequences that begin in content
    /// already accepted. Within a message still being written (`complete` false) the last
    /// characters that could begin a stop sequence wait for the next piece. Once stopped,
    /// nothing is taken.
    pub(super) fn accept(&mut self, text: &str, complete: bool) -> Option<String> {
        if self.stopped {
            return None;
        }
        self.accepted.push_str(text);
        let first = self
            .sequences
            .iter()
            .filter_map(|s| self.accepted.find(s.as_str()))
            .min();
        let until = match first {
            Some(at) => {
                self.stopped = true;
                at
            }
            None if complete => self.accepted.len(),
            None => {
                let longest = self.sequences.iter().map(String::len).max().unwrap_or(0);
                let mut safe =
                    self.accepted.len() - longest.saturating_sub(1).min(self.accepted.len());
                while !self.accepted.is_char_boundary(safe) {
                    safe -= 1;
                }
                safe
            }
        };
        let out = self
            .accepted
            .get(self.emitted..until)
            .unwrap_or_default()
            .to_owned();
        self.emitted = self.emitted.max(until);
        (!out.is_empty()).then_some(out)
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

    fn stop(sequences: &[&str]) -> StopSequences {
        StopSequences::new(sequences.iter().map(|&s| s.to_owned()).collect())
    }

    #[test]
    fn without_sequences_everything_goes_out_at_once() {
        let mut content = stop(&[]);
        assert_eq!(content.accept("Hel", false), Some("Hel".into()));
        assert_eq!(content.accept("", true), None, "nothing new, nothing out");
        assert!(!content.stopped());
        assert_eq!(content.accepted(), "Hel");
    }

    #[test]
    fn a_tail_that_could_begin_a_sequence_waits_until_the_message_completes() {
        let mut content = stop(&["END", "x"]);
        assert_eq!(
            content.accept("abcd", false),
            Some("ab".into()),
            "the longest sequence less one"
        );
        assert_eq!(content.accept("", true), Some("cd".into()));
        assert!(!content.stopped());
    }

    #[test]
    fn a_held_back_tail_never_splits_a_character() {
        let mut content = stop(&["xy"]);
        assert_eq!(content.accept("aé", false), Some("a".into()));
        assert_eq!(content.accept("", true), Some("é".into()));
    }

    #[test]
    fn the_first_sequence_ends_the_content_and_nothing_is_taken_after() {
        let mut content = stop(&["two", "one"]);
        assert_eq!(content.accept("zero one two", true), Some("zero ".into()));
        assert!(content.stopped());
        assert_eq!(content.accept("more", true), None);
        assert_eq!(
            content.accepted(),
            "zero one two",
            "what follows the sequence in the same text is accepted, not sent"
        );
    }

    #[test]
    fn a_sequence_that_began_in_content_already_sent_sends_nothing_more() {
        let mut content = stop(&["\n\nSecond"]);
        assert_eq!(content.accept("First.", true), Some("First.".into()));
        assert_eq!(content.accept("\n\nSecond.", true), None);
        assert!(content.stopped());
    }

    #[test]
    fn a_stop_sequence_ends_the_content_even_across_messages() {
        let options = || Options {
            stop: vec!["END".into(), "\n\nSecond".into()],
            ..Options::default()
        };
        let mut translator = Translator::with_options(Arc::from("q"), options());
        let mut deltas = translator.on_event(message("One. END two."));
        deltas.extend(translator.on_event(message("ignored")));
        assert_eq!(deltas, [Delta::Content("One. ".into())]);

        let mut translator = Translator::with_options(Arc::from("q"), options());
        let mut deltas = translator.on_event(message("First."));
        deltas.extend(translator.on_event(message("Second.")));
        deltas.extend(translator.on_event(ThreadEvent::TurnCompleted { usage: USAGE }));
        assert_eq!(
            deltas[0],
            Delta::Content("First.".into()),
            "the separator starts the stop sequence"
        );
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        assert!(matches!(
            deltas.last(),
            Some(Delta::Finish {
                reason: FinishReason::Stop,
                ..
            })
        ));
    }

    fn stream_with_stop(stop: &str, pieces: &[&str]) -> Vec<Delta> {
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                stop: vec![stop.into()],
                ..Options::default()
            },
        );
        let mut deltas: Vec<Delta> = pieces
            .iter()
            .flat_map(|p| translator.on_run_event(piece("m", PartialKind::AgentMessage, p)))
            .collect();
        deltas.extend(translator.on_run_event(done(
            "m",
            ItemDetails::AgentMessage {
                text: pieces.concat(),
            },
        )));
        deltas
    }

    #[test]
    fn with_stop_sequences_pieces_stream_holding_back_what_could_begin_one() {
        assert_eq!(
            stream_with_stop("END", &["Hello E", "ND more"]),
            [Delta::Content("Hello".into()), Delta::Content(" ".into())],
            "the sequence spans two pieces and nothing of it goes out"
        );
        assert_eq!(
            stream_with_stop("xyz", &["ab", "cd"]),
            [Delta::Content("ab".into()), Delta::Content("cd".into())],
            "the held-back tail goes out when the message completes"
        );
        assert_eq!(
            stream_with_stop("é", &["aé", "b"]),
            [Delta::Content("a".into())],
            "multi-byte characters are never split"
        );
    }
}
