//! Client tools: codex has no hook for them, so they are described in the prompt
//! ([`render`]) and the calls are read back out of the model's answer ([`extract`]).

pub mod extract;
pub mod render;
pub mod schema;

use std::sync::Arc;

use serde_json::Value;

use self::schema::{Checked, Checker, SchemaBudget};
use crate::{api::request::Tool, error::ProxyError};

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

    /// Builds the tool set from the request fields, refusing what OpenAI would refuse and a
    /// schema over `budget`.
    pub fn from_request(
        tools: Option<&[Tool]>,
        tool_choice: Option<&Value>,
        parallel_tool_calls: Option<bool>,
        budget: SchemaBudget,
    ) -> Result<Option<Arc<ToolSet>>, ProxyError> {
        let tools = tools.unwrap_or_default();
        let choice = match tool_choice {
            None | Some(Value::Null) => Some(ToolChoice::Auto),
            Some(Value::String(s)) => match s.as_str() {
                "none" => None,
                "auto" => Some(ToolChoice::Auto),
                "required" => Some(ToolChoice::Required),
                other => {
                    return Err(ProxyError::invalid(
                        format!("`tool_choice` {other:?} is not one of \"none\", \"auto\", \"required\", or {{\"type\":\"function\",\"function\":{{\"name\":...}}}}."),
                        "tool_choice",
                    ))
                }
            },
            Some(value) => match value.pointer("/function/name").and_then(Value::as_str) {
                Some(name) => Some(ToolChoice::Named(name.to_owned())),
                None => {
                    return Err(ProxyError::invalid(
                        "`tool_choice` must be \"none\", \"auto\", \"required\", or {\"type\":\"function\",\"function\":{\"name\":\"<tool>\"}}.",
                        "tool_choice",
                    ))
                }
            },
        };
        let Some(choice) = choice else {
            return Ok(None);
        };
        if tools.is_empty() {
            return match choice {
                ToolChoice::Auto => Ok(None),
                _ => Err(ProxyError::invalid(
                    "`tool_choice` asks for a tool call but `tools` is empty: offer at least one tool.",
                    "tool_choice",
                )),
            };
        }
        let mut specs = Vec::with_capacity(tools.len());
        for (index, tool) in tools.iter().enumerate() {
            specs.push(spec(index, tool, budget)?);
        }
        if let ToolChoice::Named(name) = &choice {
            specs.retain(|tool| &tool.name == name);
            if specs.is_empty() {
                return Err(ProxyError::invalid(
                    format!(
                        "`tool_choice` names the function {name:?}, which is not among `tools`."
                    ),
                    "tool_choice",
                ));
            }
        }
        Ok(Some(Arc::new(ToolSet {
            tools: specs,
            choice,
            parallel: parallel_tool_calls.unwrap_or(true),
        })))
    }
}

fn spec(index: usize, tool: &Tool, budget: SchemaBudget) -> Result<ToolSpec, ProxyError> {
    let param = |field: &str| format!("tools[{index}].{field}");
    if tool.kind != "function" {
        return Err(ProxyError::InvalidRequest {
            message: format!(
                "tools[{index}] has type {:?}; only \"function\" tools are supported.",
                tool.kind
            ),
            param: Some(param("type")),
        });
    }
    let name = &tool.function.name;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(ProxyError::InvalidRequest {
            message: format!(
                "tools[{index}].function.name {name:?} must be 1 to 64 letters, digits, underscores or dashes."
            ),
            param: Some(param("function.name")),
        });
    }
    let checker = match &tool.function.parameters {
        None => None,
        Some(schema) => {
            Some(
                Checker::new(schema, budget).map_err(|err| ProxyError::InvalidRequest {
                    message: format!(
                        "tools[{index}].function.parameters cannot be used as a JSON Schema: {err}"
                    ),
                    param: Some(param("function.parameters")),
                })?,
            )
        }
    };
    Ok(ToolSpec {
        name: name.clone(),
        description: tool.function.description.clone(),
        parameters: tool.function.parameters.clone(),
        strict: tool.function.strict.unwrap_or(false),
        checker,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::request::FunctionDefinition;
    use crate::tools::schema::SchemaBudget;

    pub fn tool(name: &str, parameters: Value, strict: bool) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: Some(format!("The {name} tool.")),
                parameters: Some(parameters),
                strict: Some(strict),
            },
        }
    }

    #[test]
    fn none_and_no_tools_mean_no_tool_set() {
        let tools = [tool("a", json!({"type": "object"}), false)];
        assert!(ToolSet::from_request(
            Some(&tools),
            Some(&json!("none")),
            None,
            SchemaBudget::default()
        )
        .unwrap()
        .is_none());
        assert!(
            ToolSet::from_request(None, None, None, SchemaBudget::default())
                .unwrap()
                .is_none()
        );
        assert!(ToolSet::from_request(
            Some(&[]),
            Some(&json!("auto")),
            None,
            SchemaBudget::default()
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn a_named_choice_keeps_only_that_tool() {
        let tools = [tool("a", json!({}), false), tool("b", json!({}), false)];
        let set = ToolSet::from_request(
            Some(&tools),
            Some(&json!({"type": "function", "function": {"name": "b"}})),
            Some(false),
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
    fn bad_tool_definitions_are_400s_naming_the_field() {
        let cases = [
            (
                vec![tool("a", json!({}), false)],
                json!("sometimes"),
                "tool_choice",
            ),
            (
                vec![tool("a", json!({}), false)],
                json!({"type": "function", "function": {"name": "zzz"}}),
                "tool_choice",
            ),
            (
                vec![tool("bad name!", json!({}), false)],
                json!("auto"),
                "tools[0].function.name",
            ),
            (
                vec![tool("a", json!({"type": 12}), false)],
                json!("auto"),
                "tools[0].function.parameters",
            ),
            (vec![], json!("required"), "tool_choice"),
        ];
        for (tools, choice, param) in cases {
            let err =
                ToolSet::from_request(Some(&tools), Some(&choice), None, SchemaBudget::default())
                    .unwrap_err();
            assert_eq!(err.param(), Some(param), "{err}");
            assert_eq!(err.status().as_u16(), 400);
        }
    }
}
