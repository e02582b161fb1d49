//! A client's tool schema, compiled once per request and checked within a budget.
//!
//! A schema is client data: a 1.4 KB one of `anyOf` levels over `$ref`s doubles its size with
//! each level once the references are followed, and a backtracking `pattern` can take seconds
//! per string. So before compiling, the schema's size with every local `$ref` followed is
//! counted, stopping at [`SchemaBudget::max_nodes`]; patterns run on a linear-time regex engine;
//! and a call's arguments are only checked when schema size times argument size stays within
//! [`SchemaBudget::max_steps`].

use std::collections::{HashMap, HashSet};

use jsonschema::PatternOptions;
use serde_json::Value;

/// How much a tool schema may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaBudget {
    /// `MAX_TOOL_SCHEMA_NODES`: schema nodes, every `$ref` followed (a cycle once).
    pub max_nodes: usize,
    /// `MAX_TOOL_CHECK_STEPS`: schema nodes times argument values, per call.
    pub max_steps: u64,
}

impl Default for SchemaBudget {
    fn default() -> Self {
        let limits = crate::config::Limits::default();
        SchemaBudget {
            max_nodes: limits.max_tool_schema_nodes,
            max_steps: limits.max_tool_check_steps,
        }
    }
}

/// A compiled parameter schema and what checking against it costs.
pub struct Checker {
    validator: jsonschema::Validator,
    nodes: usize,
    max_steps: u64,
}

/// The outcome of checking a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Valid,
    /// The arguments break the schema; the text says how.
    Invalid(String),
    /// Checking would cost more than the budget allows; the text says by how much.
    TooCostly(String),
}

impl Checker {
    /// Compiles `schema`, or says why it cannot be used.
    pub fn new(schema: &Value, budget: SchemaBudget) -> Result<Checker, String> {
        let nodes = expanded_size(schema, budget.max_nodes)?;
        let validator = jsonschema::options()
            .with_pattern_options(PatternOptions::regex())
            .build(schema)
            .map_err(|err| err.to_string())?;
        Ok(Checker {
            validator,
            nodes,
            max_steps: budget.max_steps,
        })
    }

    /// The schema's size, every `$ref` followed.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    pub fn check(&self, arguments: &Value) -> Checked {
        let steps = (self.nodes as u64).saturating_mul(value_count(arguments));
        if steps > self.max_steps {
            return Checked::TooCostly(format!(
                "{} schema nodes times {} argument values is over MAX_TOOL_CHECK_STEPS ({})",
                self.nodes,
                value_count(arguments),
                self.max_steps
            ));
        }
        match self.validator.validate(arguments) {
            Ok(()) => Checked::Valid,
            Err(err) => Checked::Invalid(err.to_string()),
        }
    }
}

/// Every value in `value`, itself included.
fn value_count(value: &Value) -> u64 {
    let mut count = 0u64;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        count += 1;
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

/// The keywords that point elsewhere in the schema.
const REFERENCES: &[&str] = &["$ref", "$dynamicRef", "$recursiveRef"];

/// The schema's size with every local reference followed, a reference to one of its own
/// enclosing targets (a recursive schema) only once; an error past `max_nodes` or for a
/// reference that is not local.
fn expanded_size(root: &Value, max_nodes: usize) -> Result<usize, String> {
    let anchors = anchors(root);
    enum Step<'a> {
        Visit(&'a Value),
        /// Follow this reference to its target, unless it is already being followed above.
        Follow(&'a str, &'a Value),
        /// The subtree reached through this reference is done.
        Leave(&'a str),
    }
    let mut following: HashSet<&str> = HashSet::new();
    let mut stack = vec![Step::Visit(root)];
    let mut nodes = 0usize;
    while let Some(step) = stack.pop() {
        let value = match step {
            Step::Leave(reference) => {
                following.remove(reference);
                continue;
            }
            // Marked when its turn comes, not when it is found, so that its siblings' subtrees
            // are not taken for its own.
            Step::Follow(reference, target) => {
                if following.insert(reference) {
                    stack.push(Step::Leave(reference));
                    stack.push(Step::Visit(target));
                }
                continue;
            }
            Step::Visit(value) => value,
        };
        nodes += 1;
        if nodes > max_nodes {
            return Err(format!(
                "the request's tool schemas have more than MAX_TOOL_SCHEMA_NODES nodes once their `$ref`s are followed ({max_nodes} were left for this one), too costly to check"
            ));
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(Step::Visit)),
            Value::Object(map) => {
                for (key, child) in map {
                    match (REFERENCES.contains(&key.as_str()), child) {
                        (true, Value::String(reference)) => {
                            let target = resolve(root, &anchors, reference).ok_or_else(|| {
                                format!("`{key}` {reference:?} does not point into the schema itself (only local references such as \"#/$defs/name\" are followed)")
                            })?;
                            stack.push(Step::Follow(reference, target));
                        }
                        _ => stack.push(Step::Visit(child)),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(nodes)
}

/// `$anchor` and `$dynamicAnchor` names, to the subschema that declares them.
fn anchors(root: &Value) -> HashMap<&str, &Value> {
    let mut found = HashMap::new();
    let mut stack = vec![root];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for key in ["$anchor", "$dynamicAnchor"] {
                    if let Some(Value::String(name)) = map.get(key) {
                        found.insert(name.as_str(), value);
                    }
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    found
}

/// `#`, `#/json/pointer` (percent-decoded) or `#anchor`, within `root`.
fn resolve<'a>(
    root: &'a Value,
    anchors: &HashMap<&str, &'a Value>,
    reference: &str,
) -> Option<&'a Value> {
    let fragment = reference.strip_prefix('#')?;
    if fragment.is_empty() {
        return Some(root);
    }
    if fragment.starts_with('/') {
        return root.pointer(&percent_decoded(fragment)?);
    }
    anchors.get(fragment).copied()
}

fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `depth` levels, each an `anyOf` of two references to the next: 2^depth nodes once
    /// followed, from a schema of a few hundred bytes.
    pub fn doubling_schema(depth: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for level in 0..depth {
            let next = format!("#/$defs/l{}", level + 1);
            // The reference and a sibling subtree that references the same level again.
            defs.insert(
                format!("l{level}"),
                json!({"$ref": next, "properties": {"x": {"$ref": next}}}),
            );
        }
        defs.insert(format!("l{depth}"), json!({"type": "string"}));
        json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/l0"}}, "$defs": defs})
    }

    #[test]
    fn a_doubling_schema_is_refused_before_it_is_compiled() {
        let budget = SchemaBudget::default();
        let started = std::time::Instant::now();
        let err = Checker::new(&doubling_schema(24), budget)
            .err()
            .expect("2^24 nodes is over the budget");
        assert!(err.contains("MAX_TOOL_SCHEMA_NODES"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(Checker::new(&doubling_schema(5), budget).is_ok());
        let any_of = json!({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}, {"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/c"}, {"$ref": "#/$defs/c"}]}, "c": {"type": "string"}}, "$ref": "#/$defs/a"});
        let Ok(checker) = Checker::new(&any_of, budget) else {
            panic!("a small anyOf schema compiles");
        };
        // c: object and "string" (2); b: object, array, two references to c (4 + 2 * 2 = 8);
        // a: the same over b (4 + 2 * 8 = 20). The root, "$defs", each definition once where
        // it stands, and a again through the root's "$ref".
        assert_eq!(checker.nodes, 1 + 1 + (20 + 8 + 2) + 20);
    }

    #[test]
    fn a_recursive_schema_is_followed_once_and_still_checks() {
        let tree = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
            "required": ["name"]
        });
        let checker = Checker::new(&tree, SchemaBudget::default()).unwrap();
        assert_eq!(
            checker.check(&json!({"name": "a", "children": [{"name": "b", "children": []}]})),
            Checked::Valid
        );
        assert!(matches!(
            checker.check(&json!({"name": "a", "children": [{"children": []}]})),
            Checked::Invalid(_)
        ));
        let anchored = json!({"$defs": {"n": {"$anchor": "node", "type": "integer"}}, "items": {"$ref": "#node"}});
        assert!(Checker::new(&anchored, SchemaBudget::default()).is_ok());
    }

    #[test]
    fn references_outside_the_schema_are_refused() {
        for reference in [
            "https://example.com/s.json",
            "other.json#/a",
            "#/$defs/missing",
        ] {
            let err = Checker::new(&json!({"$ref": reference}), SchemaBudget::default())
                .err()
                .unwrap();
            assert!(err.contains("local references"), "{reference}: {err}");
        }
    }

    #[test]
    fn a_backtracking_pattern_runs_in_linear_time_or_is_refused() {
        let budget = SchemaBudget::default();
        // A back-reference needs a backtracking engine: refused as a schema.
        let backref =
            json!({"type": "array", "items": {"type": "string", "pattern": "^(a|aa)+\\1$"}});
        assert!(Checker::new(&backref, budget).is_err());
        // The classic exponential case without one runs in linear time.
        let nested = json!({"type": "array", "items": {"type": "string", "pattern": "^(a+)+$"}});
        let checker = Checker::new(&nested, budget).unwrap();
        let items: Vec<String> = (0..5000).map(|_| format!("{}b", "a".repeat(40))).collect();
        let started = std::time::Instant::now();
        assert!(matches!(checker.check(&json!(items)), Checked::Invalid(_)));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn arguments_too_large_for_the_schema_are_not_checked() {
        let budget = SchemaBudget {
            max_nodes: 1_000,
            max_steps: 10_000,
        };
        let checker = Checker::new(
            &json!({"type": "array", "items": {"type": "integer"}}),
            budget,
        )
        .unwrap();
        assert_eq!(checker.check(&json!([1, 2, 3])), Checked::Valid);
        let many: Vec<u32> = (0..10_000).collect();
        assert!(matches!(checker.check(&json!(many)), Checked::TooCostly(_)));
    }
}
