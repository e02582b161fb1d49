//! `response_format`: JSON answers. A `json_schema` format is handed to codex with
//! `--output-schema`, which always sends it to the model in strict mode, so the schema is checked
//! against OpenAI's strict rules here first, where the error can say what to change.

use serde_json::Value;

use crate::error::ProxyError;

/// What the model is asked for when `response_format` is `json_object`.
pub const JSON_OBJECT_INSTRUCTION: &str = "Answer with one JSON object and nothing else.";

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Any JSON object; the model is asked for one and the answer is checked.
    JsonObject,
    /// An answer matching this schema, enforced by codex.
    JsonSchema(Value),
}

impl ResponseFormat {
    pub fn from_request(value: Option<&Value>) -> Result<Self, ProxyError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(ResponseFormat::Text);
        };
        match value.get("type").and_then(Value::as_str) {
            Some("text") => Ok(ResponseFormat::Text),
            Some("json_object") => Ok(ResponseFormat::JsonObject),
            Some("json_schema") => {
                let schema = value
                    .pointer("/json_schema/schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        ProxyError::invalid(
                            "`response_format.json_schema.schema` must be a JSON Schema object.",
                            "response_format.json_schema.schema",
                        )
                    })?;
                // codex always sends the schema strict. A schema the client marked strict must
                // already follow the rules (the 400 says where it does not); any other is made
                // strict the way OpenAI's SDKs do, as OpenAI itself would accept it.
                let strict = value.pointer("/json_schema/strict") == Some(&Value::Bool(true));
                let schema = if strict {
                    schema.clone()
                } else {
                    let mut schema = schema.clone();
                    make_strict(&mut schema);
                    schema
                };
                check_strict(&schema, "#")?;
                Ok(ResponseFormat::JsonSchema(schema))
            }
            _ => Err(ProxyError::invalid(
                "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\".",
                "response_format.type",
            )),
        }
    }

    pub fn wants_json(&self) -> bool {
        !matches!(self, ResponseFormat::Text)
    }
}

/// A schema made to follow OpenAI's strict mode, as its SDKs make one: every object with
/// properties gets `additionalProperties: false`, and a property it did not require becomes
/// required and nullable (the model answers `null` where it would have left it out). Depth is
/// bounded by the JSON parser's nesting limit.
fn make_strict(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.get("properties").is_some_and(Value::is_object) {
        let required: Vec<String> = map
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let Some(Value::Object(properties)) = map.get_mut("properties") else {
            unreachable!("checked above")
        };
        for (key, sub) in properties.iter_mut() {
            make_strict(sub);
            if !required.contains(key) {
                nullable(sub);
            }
        }
        let all: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
        map.insert("required".into(), Value::Array(all));
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["items", "additionalItems"] {
        if let Some(sub) = map.get_mut(key) {
            make_strict(sub);
        }
    }
    for key in ["anyOf", "allOf", "oneOf", "prefixItems"] {
        if let Some(Value::Array(subs)) = map.get_mut(key) {
            subs.iter_mut().for_each(make_strict);
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(subs)) = map.get_mut(key) {
            subs.values_mut().for_each(make_strict);
        }
    }
}

/// `schema`, also allowing `null`: in its `type` when that says it all, else as an `anyOf`.
fn nullable(schema: &mut Value) {
    let null = Value::String("null".into());
    let constrained = ["enum", "const", "$ref", "anyOf", "oneOf", "allOf"]
        .iter()
        .any(|key| schema.get(key).is_some());
    match schema.get_mut("type").filter(|_| !constrained) {
        Some(Value::String(kind)) if kind == "null" => {}
        Some(Value::String(kind)) => {
            let kind = Value::String(std::mem::take(kind));
            schema["type"] = Value::Array(vec![kind, null]);
        }
        Some(Value::Array(kinds)) if !kinds.contains(&null) => kinds.push(null),
        Some(Value::Array(_)) => {}
        _ => {
            let inner = std::mem::take(schema);
            *schema = serde_json::json!({"anyOf": [inner, {"type": "null"}]});
        }
    }
}

/// OpenAI's strict mode: every object lists all its properties in `required` and sets
/// `additionalProperties: false`, all the way down.
fn check_strict(schema: &Value, at: &str) -> Result<(), ProxyError> {
    let fail = |what: String| {
        ProxyError::invalid(
            format!(
                "`response_format.json_schema.schema` at {at}: {what}. codex sends the schema to the model in strict mode, where every object must set \"additionalProperties\": false and list all its properties in \"required\"."
            ),
            "response_format.json_schema.schema",
        )
    };
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(fail("\"additionalProperties\" is not false".into()));
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(missing) = properties
            .keys()
            .find(|key| !required.contains(&key.as_str()))
        {
            return Err(fail(format!("property {missing:?} is not in \"required\"")));
        }
        for (key, sub) in properties {
            check_strict(sub, &format!("{at}/properties/{key}"))?;
        }
    }
    for key in ["items", "additionalItems"] {
        if let Some(sub) = map.get(key) {
            check_strict(sub, &format!("{at}/{key}"))?;
        }
    }
    for key in ["anyOf", "allOf", "oneOf", "prefixItems"] {
        for (i, sub) in map
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            check_strict(sub, &format!("{at}/{key}/{i}"))?;
        }
    }
    for key in ["$defs", "definitions"] {
        for (name, sub) in map
            .get(key)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            check_strict(sub, &format!("{at}/{key}/{name}"))?;
        }
    }
    Ok(())
}

/// A JSON answer without the code fence models like to put around it.
pub fn unfence(text: &str) -> &str {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_schemas_pass_and_lax_ones_say_where() {
        let strict = json!({"type": "object", "additionalProperties": false, "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "object",
            "additionalProperties": false, "required": ["c"], "properties": {"c": {"type": "number"}}}}}});
        assert!(check_strict(&strict, "#").is_ok());

        let mut lax = strict.clone();
        lax["properties"]["b"]["items"]["required"] = json!([]);
        let err = check_strict(&lax, "#").unwrap_err();
        assert!(
            err.message()
                .contains("#/properties/b/items: property \"c\" is not in \"required\""),
            "{err}"
        );

        let mut open = strict;
        open.as_object_mut().unwrap().remove("additionalProperties");
        assert!(check_strict(&open, "#")
            .unwrap_err()
            .message()
            .contains("\"additionalProperties\" is not false"));
    }

    #[test]
    fn a_schema_not_marked_strict_is_made_strict_as_openais_sdks_do() {
        // What instructor and the llm CLI send: no `strict`, optional fields, open objects.
        let lax = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": {
        "type": "object", "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "role": {"enum": ["admin", "user"]},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}}});
        let ResponseFormat::JsonSchema(schema) = ResponseFormat::from_request(Some(&lax)).unwrap()
        else {
            panic!()
        };
        assert!(check_strict(&schema, "#").is_ok(), "{schema}");
        assert_eq!(
            schema["required"],
            json!(["name", "age", "role", "address"])
        );
        assert_eq!(schema["properties"]["name"], json!({"type": "string"}));
        assert_eq!(
            schema["properties"]["age"],
            json!({"type": ["integer", "null"]})
        );
        assert_eq!(
            schema["properties"]["role"],
            json!({"anyOf": [{"enum": ["admin", "user"]}, {"type": "null"}]})
        );
        let address = &schema["properties"]["address"];
        assert_eq!(address["type"], json!(["object", "null"]));
        assert_eq!(address["additionalProperties"], json!(false));
        assert_eq!(address["required"], json!(["city"]));
        // Marked strict, the same schema is the client's to fix.
        let mut marked = lax;
        marked["json_schema"]["strict"] = json!(true);
        assert!(ResponseFormat::from_request(Some(&marked)).is_err());
    }

    #[test]
    fn every_place_a_subschema_can_stand_is_checked() {
        let closed = json!({"type": "object", "additionalProperties": false, "required": ["x"], "properties": {"x": {"type": "string"}}});
        let open = json!({"type": "object", "properties": {"x": {"type": "string"}}});
        let wrap = |key: &str, sub: &Value| -> Value {
            match key {
                "anyOf" | "allOf" | "oneOf" | "prefixItems" => json!({key: [closed, sub]}),
                "$defs" | "definitions" => json!({key: {"ok": closed, "bad": sub}}),
                "items" | "additionalItems" => json!({"type": "array", key: sub}),
                _ => {
                    json!({"type": "object", "additionalProperties": false, "required": [key], "properties": {key: sub}})
                }
            }
        };
        for (key, at) in [
            ("anyOf", "#/anyOf/1"),
            ("allOf", "#/allOf/1"),
            ("oneOf", "#/oneOf/1"),
            ("prefixItems", "#/prefixItems/1"),
            ("$defs", "#/$defs/bad"),
            ("definitions", "#/definitions/bad"),
            ("items", "#/items"),
            ("additionalItems", "#/additionalItems"),
            ("nested", "#/properties/nested"),
        ] {
            assert!(check_strict(&wrap(key, &closed), "#").is_ok(), "{key}");
            let err = check_strict(&wrap(key, &open), "#").unwrap_err();
            assert!(err.message().contains(&format!("at {at}:")), "{key}: {err}");
            assert_eq!(err.param(), Some("response_format.json_schema.schema"));
        }
        // `additionalProperties: true` is not false; a schema without properties has no rule.
        let mut allowing = closed.clone();
        allowing["additionalProperties"] = json!(true);
        assert!(check_strict(&allowing, "#").is_err());
        assert!(check_strict(&json!({"type": "string"}), "#").is_ok());
    }

    #[test]
    fn formats_parse_and_fences_come_off() {
        assert_eq!(
            ResponseFormat::from_request(None).unwrap(),
            ResponseFormat::Text
        );
        assert_eq!(
            ResponseFormat::from_request(Some(&json!({"type": "json_object"}))).unwrap(),
            ResponseFormat::JsonObject
        );
        assert!(ResponseFormat::from_request(Some(&json!({"type": "xml"}))).is_err());
        assert_eq!(unfence("```json\n{\"a\": 1}\n```"), "{\"a\": 1}");
        assert_eq!(unfence(" {\"a\": 1} "), "{\"a\": 1}");
    }
}
