//! Client tools: codex has no hook for them, so they are described in the prompt
//! ([`render`]) and the calls are read back out of the model's answer ([`extract`]).

pub mod extract;
pub mod render;
pub mod schema;

use std::sync::Arc;

use serde_json::Value;

use self::schema::{Checked, Checker, SchemaBudget};

/// A new tool call id: `call_` and 24 random alphanumerics, like OpenAI's.
pub fn call_id() -> String {
    crate::ids::random_id("call_")
}

/// One tool the client offered.
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    /// `strict: true`: a call whose arguments fail the schema is not emitted.
    pub strict: bool,
    checker: Option<Checker>,
}

impl std::fmt::Debug for ToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSpec")
            .field("name", &self.name)
            .field("strict", &self.strict)
            .finish()
    }
}

impl ToolSpec {
    /// Checks arguments against the tool's parameter schema, within the request's budget.
    pub fn check_arguments(&self, arguments: &Value) -> Checked {
        match &self.checker {
            Some(checker) => checker.check(arguments),
            None => Checked::Valid,
        }
    }
}

/// What the request allows the model to do with its tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    Required,
    Named(String),
}

/// The tools in play for one request. Absent when there are none or `tool_choice` is `none`:
/// then nothing is rendered and nothing is extracted.
#[derive(Debug)]
pub struct ToolSet {
    /// The tools the model is told about and whose calls count: all offered tools, or only
    /// the named one.
    pub tools: Vec<ToolSpec>,
    pub choice: ToolChoice,
    pub parallel: bool,
}

impl ToolSet {
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// The tool set for `tools`, offered under `choice` (`None`: the request offers none, or
    /// says `none`: then nothing is rendered and nothing extracted). A schema that cannot be
    /// used, or costs more than `budget`, is an error naming the tool's index.
    pub fn new(
        tools: Vec<ToolDef>,
        choice: Option<ToolChoice>,
        parallel: bool,
        budget: SchemaBudget,
    ) -> Result<Option<Arc<ToolSet>>, BadTool> {
        let Some(choice) = choice else {
            return Ok(None);
        };
        if tools.is_empty() {
            return Ok(None);
        }
        // One budget for all of the request's tools: it bounds what one request costs, however
        // many tools it sends.
        let mut left = budget.max_nodes;
        let mut specs = Vec::with_capacity(tools.len());
        for (index, tool) in tools.into_iter().enumerate() {
            let checker = match &tool.parameters {
                None => None,
                Some(schema) => {
                    let checker = Checker::new(
                        schema,
                        SchemaBudget {
                            max_nodes: left,
                            ..budget
                        },
                    )
                    .map_err(|reason| BadTool { index, reason })?;
                    left -= checker.nodes();
                    Some(checker)
                }
            };
            specs.push(ToolSpec {
                name: tool.name,
                description: tool.description,
                parameters: tool.parameters,
                strict: tool.strict,
                checker,
            });
        }
        if let ToolChoice::Named(name) = &choice {
            specs.retain(|tool| &tool.name == name);
        }
        Ok(Some(Arc::new(ToolSet {
            tools: specs,
            choice,
            parallel,
        })))
    }
}

/// A tool the client offers, as the API handed it over.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema for the arguments.
    pub parameters: Option<Value>,
    pub strict: bool,
}

/// A tool whose parameter schema cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTool {
    pub index: usize,
    pub reason: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub fn tool(name: &str, parameters: Value, strict: bool) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: Some(format!("The {name} tool.")),
            parameters: Some(parameters),
            strict,
        }
    }

    /// The set for `tools` offered with `tool_choice: auto`.
    pub fn offered(tools: Vec<ToolDef>, parallel: bool) -> Arc<ToolSet> {
        ToolSet::new(
            tools,
            Some(ToolChoice::Auto),
            parallel,
            SchemaBudget::default(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn none_and_no_tools_mean_no_tool_set() {
        let tools = vec![tool("a", json!({"type": "object"}), false)];
        assert!(ToolSet::new(tools, None, true, SchemaBudget::default())
            .unwrap()
            .is_none());
        assert!(ToolSet::new(
            Vec::new(),
            Some(ToolChoice::Auto),
            true,
            SchemaBudget::default()
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn a_named_choice_keeps_only_that_tool() {
        let tools = vec![tool("a", json!({}), false), tool("b", json!({}), false)];
        let set = ToolSet::new(
            tools,
            Some(ToolChoice::Named("b".into())),
            false,
            SchemaBudget::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            set.tools
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(set.choice, ToolChoice::Named("b".into()));
        assert!(!set.parallel);
    }

    #[test]
    fn the_node_budget_is_for_all_of_a_requests_tools() {
        // Each under the budget alone; together over it.
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}});
        let budget = SchemaBudget {
            max_nodes: 20,
            max_steps: 1_000_000,
        };
        let one = vec![tool("a", schema.clone(), false)];
        assert!(ToolSet::new(one, Some(ToolChoice::Auto), true, budget).is_ok());
        let many: Vec<ToolDef> = (0..5)
            .map(|i| tool(&format!("t{i}"), schema.clone(), false))
            .collect();
        let err = ToolSet::new(many, Some(ToolChoice::Auto), true, budget).unwrap_err();
        assert!(
            err.index > 0 && err.reason.contains("MAX_TOOL_SCHEMA_NODES"),
            "{err:?}"
        );
    }

    #[test]
    fn an_unusable_schema_names_its_tool() {
        let tools = vec![
            tool("a", json!({}), false),
            tool("b", json!({"type": 12}), false),
        ];
        let err =
            ToolSet::new(tools, Some(ToolChoice::Auto), true, SchemaBudget::default()).unwrap_err();
        assert_eq!(err.index, 1);
    }
}
