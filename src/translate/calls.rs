//! Where an answer's tool calls come from. The app-server backend offers the client's tools to
//! the model as function tools and reports each call as an event, so its text is only text and
//! streams as it comes. The exec backend has no such hook: the tools are described in the
//! prompt, and the calls are read out of each agent message, which must be whole for that. One
//! request has one of the two, so the source is chosen once, when the translator is made.

use std::sync::Arc;

use super::{FinishReason, ToolCall};
use crate::{
    codex::NativeCall,
    tools::{
        self,
        extract::{extract, Extraction, FoundCall},
        ToolChoice, ToolSet,
    },
};

/// Where the calls of the request's tools come from.
#[derive(Debug)]
enum Source {
    /// The request has no tools in play: text is only text.
    None,
    /// The backend's events (app-server). The set is kept for what `tool_choice` asked.
    Native(Arc<ToolSet>),
    /// The answer's text (exec, tools described in the prompt).
    Text(Arc<ToolSet>),
}

/// The answer's tool calls: where they come from, and how many went out.
#[derive(Debug)]
pub(super) struct Calls {
    source: Source,
    /// The calls sent so far: the next one's index, and whether the answer ends in tool calls.
    count: u32,
}

impl Calls {
    /// The calls of `tools`, reported as events when the backend offers them natively.
    pub(super) fn new(tools: Option<Arc<ToolSet>>, native: bool) -> Self {
        let source = match tools {
            None => Source::None,
            Some(set) if native => Source::Native(set),
            Some(set) => Source::Text(set),
        };
        Calls { source, count: 0 }
    }

    /// Whether an agent message may go out piece by piece: calls written in the text can only
    /// be read in a whole message.
    pub(super) fn text_streams(&self) -> bool {
        !matches!(self.source, Source::Text(_))
    }

    /// A whole agent message split into its prose and the calls written in it; `None` when calls
    /// are not written in the text.
    pub(super) fn extract(&self, text: &str) -> Option<Extraction> {
        match &self.source {
            Source::Text(set) => Some(extract(text, set)),
            Source::None | Source::Native(_) => None,
        }
    }

    /// Whether any call went out.
    pub(super) fn any(&self) -> bool {
        self.count > 0
    }

    /// A call the backend reported, under codex's id (the client's result comes back under it).
    pub(super) fn native(&mut self, call: NativeCall) -> ToolCall {
        self.next(call.id, call.name, call.arguments)
    }

    /// Calls read out of the text, under new ids. With `parallel_tool_calls` false the answer
    /// keeps only its first call.
    pub(super) fn found(&mut self, found: Vec<FoundCall>) -> Vec<ToolCall> {
        let parallel = match &self.source {
            Source::None => true,
            Source::Native(set) | Source::Text(set) => set.parallel,
        };
        let mut calls = Vec::new();
        for call in found {
            if !parallel && self.count > 0 {
                tracing::warn!(tool = %call.name, "parallel_tool_calls is false; dropping a further call");
                continue;
            }
            calls.push(self.next(tools::call_id(), call.name, call.arguments));
        }
        calls
    }

    fn next(&mut self, id: String, name: String, arguments: String) -> ToolCall {
        let index = self.count;
        self.count += 1;
        ToolCall {
            index,
            id,
            name,
            arguments,
        }
    }

    /// How the answer finishes: with its calls, or a stop, which is logged when `tool_choice`
    /// asked for a call.
    pub(super) fn finish_reason(&self) -> FinishReason {
        if self.any() {
            return FinishReason::ToolCalls;
        }
        if let Source::Native(set) | Source::Text(set) = &self.source {
            if set.choice != ToolChoice::Auto {
                tracing::warn!(choice = ?set.choice, "tool_choice asked for a call but the answer has none");
            }
        }
        FinishReason::Stop
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        codex::{CodexUsage, ItemDetails, PartialKind, RunEvent, ThreadEvent},
        tools::tests::{offered, tool},
        translate::{fixtures::*, Delta, Options, Translator},
    };

    fn get_time(parallel: bool) -> Arc<ToolSet> {
        offered(
            vec![tool("get_time", json!({"type": "object"}), false)],
            parallel,
        )
    }

    fn native_call(id: &str) -> NativeCall {
        NativeCall {
            id: id.into(),
            name: "get_time".into(),
            arguments: "{}".into(),
        }
    }

    fn found() -> FoundCall {
        FoundCall {
            name: "get_time".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn calls_are_read_from_text_only_when_the_tools_are_not_native() {
        let call = r#"{"name": "get_time", "arguments": {}}"#;
        for (calls, in_text) in [
            (Calls::new(None, false), false),
            (Calls::new(None, true), false),
            (Calls::new(Some(get_time(true)), true), false),
            (Calls::new(Some(get_time(true)), false), true),
        ] {
            assert_eq!(calls.text_streams(), !in_text, "{calls:?}");
            assert_eq!(
                calls.extract(call).map(|e| e.calls.len()),
                in_text.then_some(1),
                "{calls:?}"
            );
        }
    }

    #[test]
    fn indexes_count_every_call_and_parallel_false_keeps_only_the_first() {
        let mut calls = Calls::new(Some(get_time(false)), false);
        assert!(!calls.any());
        let sent = calls.found(vec![found(), found()]);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].index, 0);
        assert!(sent[0].id.starts_with("call_"));
        assert!(calls.found(vec![found()]).is_empty(), "a later message too");
        assert_eq!(calls.finish_reason(), FinishReason::ToolCalls);

        let mut calls = Calls::new(None, true);
        let first = calls.native(native_call("call_a"));
        let second = calls.native(native_call("call_b"));
        assert_eq!(
            [(first.index, first.id), (second.index, second.id)],
            [(0, "call_a".to_owned()), (1, "call_b".to_owned())],
            "codex's ids, indexed in order"
        );
    }

    #[test]
    fn without_calls_the_answer_stops() {
        assert_eq!(
            Calls::new(Some(get_time(true)), true).finish_reason(),
            FinishReason::Stop
        );
    }

    #[test]
    fn with_tools_calls_leave_the_content_and_set_the_finish_reason() {
        let set = Some(crate::tools::tests::offered(
            vec![crate::tools::tests::tool(
                "get_time",
                serde_json::json!({"type": "object"}),
                false,
            )],
            false,
        ));
        let mut translator = Translator::new(Arc::from("what time is it"), set);
        let mut deltas = translator.on_event(message(
            "Checking.\n{\"name\": \"get_time\", \"arguments\": {}}",
        ));
        deltas.extend(translator.on_event(message("{\"name\": \"get_time\", \"arguments\": {}}")));
        deltas.extend(translator.on_event(ThreadEvent::TurnCompleted { usage: USAGE }));
        assert_eq!(deltas[0], Delta::Content("Checking.".into()));
        let Delta::ToolCall(call) = &deltas[1] else {
            panic!("{deltas:?}")
        };
        assert_eq!(
            (call.index, call.name.as_str(), call.arguments.as_str()),
            (0, "get_time", "{}")
        );
        assert!(
            matches!(
                &deltas[2],
                Delta::Finish {
                    reason: FinishReason::ToolCalls,
                    ..
                }
            ),
            "{deltas:?}"
        );
        assert_eq!(
            deltas.len(),
            3,
            "parallel_tool_calls false drops the second message's call"
        );
    }

    #[test]
    fn with_native_tools_pieces_stream_and_calls_arrive_as_events() {
        let tools = vec![crate::tools::tests::tool(
            "get_time",
            serde_json::json!({"type": "object"}),
            false,
        )];
        let mut translator = Translator::with_options(
            Arc::from("q"),
            Options {
                tools: Some(crate::tools::tests::offered(tools, true)),
                native_tools: true,
                ..Options::default()
            },
        );
        // Text that looks like a call is only text: calls are events now.
        let looks_like_a_call = r#"{"name": "get_time", "arguments": {}}"#;
        assert_eq!(
            translator.on_run_event(piece("m", PartialKind::AgentMessage, looks_like_a_call)),
            [Delta::Content(looks_like_a_call.into())]
        );
        translator.on_run_event(done(
            "m",
            ItemDetails::AgentMessage {
                text: looks_like_a_call.into(),
            },
        ));
        let call = |id: &str| {
            RunEvent::ToolCall(crate::codex::NativeCall {
                id: id.into(),
                name: "get_time".into(),
                arguments: "{}".into(),
            })
        };
        let deltas: Vec<Delta> = [call("call_a"), call("call_b")]
            .into_iter()
            .chain([RunEvent::Event(ThreadEvent::TurnCompleted {
                usage: CodexUsage {
                    input_tokens: 5,
                    output_tokens: 1,
                    ..CodexUsage::default()
                },
            })])
            .flat_map(|e| translator.on_run_event(e))
            .collect();
        let ids: Vec<(u32, &str)> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::ToolCall(call) => Some((call.index, call.id.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            ids,
            [(0, "call_a"), (1, "call_b")],
            "codex's ids, indexed in order"
        );
        assert!(matches!(
            deltas.last(),
            Some(Delta::Finish {
                reason: FinishReason::ToolCalls,
                ..
            })
        ));
    }

    #[test]
    fn with_tools_pieces_wait_for_the_whole_message() {
        let tools = vec![crate::tools::tests::tool(
            "get_time",
            serde_json::json!({"type": "object"}),
            false,
        )];
        let mut translator = Translator::new(
            Arc::from("q"),
            Some(crate::tools::tests::offered(tools, true)),
        );
        let call = r#"{"name": "get_time", "arguments": {}}"#;
        assert_eq!(
            translator.on_run_event(piece("m", PartialKind::AgentMessage, call)),
            []
        );
        let deltas =
            translator.on_run_event(done("m", ItemDetails::AgentMessage { text: call.into() }));
        assert!(
            matches!(deltas.as_slice(), [Delta::ToolCall(_)]),
            "{deltas:?}"
        );
    }
}
