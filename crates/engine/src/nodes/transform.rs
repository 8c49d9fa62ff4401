//! Item-shaping nodes: Set (Edit Fields), Split Out, Aggregate, Limit, Remove Duplicates, Sort
//! and No Op. Each reads the newest n8n parameter shape (older shapes are rewritten by
//! [`crate::import`]). None of them does I/O.

use serde_json::{json, Map, Value};

use crate::item::{get_path, remove_path, set_path, Item, PairedItem, PairedItemRef};
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};

fn description(type_name: &'static str, display_name: &'static str) -> NodeDescription {
    NodeDescription {
        type_name,
        display_name,
        trigger: false,
        raw_parameters: &[],
    }
}

fn field_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn lookup<'a>(json: &'a Map<String, Value>, field: &str, dot: bool) -> Option<&'a Value> {
    if dot {
        get_path(json, field)
    } else {
        json.get(field)
    }
}

/// Set (Edit Fields) v3.4.
pub struct SetNode;

fn convert(value: Value, ty: &str, name: &str) -> Result<Value, String> {
    let fail = |v: &Value, what: &str| format!("'{name}' value {v} can't be converted to {what}");
    Ok(match ty {
        "string" => match value {
            Value::String(_) => value,
            Value::Null => Value::String(String::new()),
            other => Value::String(other.to_string()),
        },
        "number" => match &value {
            Value::Number(_) => value,
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|n| {
                    if n.fract() == 0.0 && n.abs() < 9e15 {
                        Some(json!(n as i64))
                    } else {
                        serde_json::Number::from_f64(n).map(Value::Number)
                    }
                })
                .ok_or_else(|| fail(&value, "a number"))?,
            Value::Bool(b) => json!(i32::from(*b)),
            _ => return Err(fail(&value, "a number")),
        },
        "boolean" => match &value {
            Value::Bool(_) => value,
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => json!(true),
                "false" | "0" | "no" => json!(false),
                _ => return Err(fail(&value, "a boolean")),
            },
            Value::Number(n) => json!(n.as_f64() != Some(0.0)),
            _ => return Err(fail(&value, "a boolean")),
        },
        "array" => match &value {
            Value::Array(_) => value,
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Array(_)) => v,
                _ => return Err(fail(&value, "an array")),
            },
            _ => return Err(fail(&value, "an array")),
        },
        "object" => match &value {
            Value::Object(_) => value,
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(fail(&value, "an object")),
            },
            _ => return Err(fail(&value, "an object")),
        },
        _ => value,
    })
}

fn set_item(item: &Item, p: &Value) -> Result<Item, String> {
    let dot = p
        .pointer("/options/dotNotation")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let ignore_errors = p
        .pointer("/options/ignoreConversionErrors")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_other = p
        .get("includeOtherFields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut json = if include_other {
        match p.get("include").and_then(Value::as_str).unwrap_or("all") {
            "selected" => {
                let mut out = Map::new();
                for f in field_list(p.get("includeFields")) {
                    if let Some(v) = lookup(&item.json, &f, dot) {
                        set_path(&mut out, &f, v.clone());
                    }
                }
                out
            }
            "except" => {
                let mut out = item.json.clone();
                for f in field_list(p.get("excludeFields")) {
                    remove_path(&mut out, &f);
                }
                out
            }
            _ => item.json.clone(),
        }
    } else {
        Map::new()
    };
    if p.get("mode").and_then(Value::as_str) == Some("raw") {
        let raw = p.get("jsonOutput").cloned().unwrap_or(Value::Null);
        let parsed = match raw {
            Value::String(s) => serde_json::from_str::<Value>(&s)
                .map_err(|e| format!("'JSON' is not valid JSON: {e}"))?,
            other => other,
        };
        let Value::Object(obj) = parsed else {
            return Err("'JSON' must be a JSON object".into());
        };
        json.extend(obj);
    } else {
        for a in p
            .pointer("/assignments/assignments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = match a.get("name") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            if name.is_empty() {
                return Err("a field has no name: give every field a name".into());
            }
            let ty = a.get("type").and_then(Value::as_str).unwrap_or("string");
            let raw = a.get("value").cloned().unwrap_or(Value::Null);
            let value = match convert(raw.clone(), ty, &name) {
                Ok(v) => v,
                Err(_) if ignore_errors => raw,
                Err(e) => return Err(e),
            };
            if dot {
                set_path(&mut json, &name, value);
            } else {
                json.insert(name, value);
            }
        }
    }
    Ok(Item {
        json,
        binary: item.binary.clone(),
        paired_item: None,
    })
}

#[async_trait::async_trait]
impl Node for SetNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.set", "Edit Fields (Set)")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items: Vec<Item> = ctx.items().to_vec();
        let mut out = NodeOutput::single(Vec::with_capacity(items.len()));
        for (i, item) in items.iter().enumerate() {
            let result = ctx
                .parameters(i)
                .and_then(|p| set_item(item, &p).map_err(NodeError::new));
            match result {
                Ok(new) => out.outputs[0].push(new.paired(i)),
                Err(e) => ctx.item_failed(&mut out, i, e)?,
            }
        }
        Ok(out)
    }
}

/// No Op: passes items through.
pub struct NoOpNode;

#[async_trait::async_trait]
impl Node for NoOpNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.noOp", "No Operation, do nothing")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        Ok(NodeOutput::single(ctx.items().to_vec()))
    }
}

/// Split Out: `fieldToSplitOut`, `include` (noOtherFields | allOtherFields | selectedOtherFields),
/// `fieldsToInclude`, `options.destinationFieldName`, `options.disableDotNotation`.
pub struct SplitOutNode;

#[async_trait::async_trait]
impl Node for SplitOutNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.splitOut", "Split Out")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items: Vec<Item> = ctx.items().to_vec();
        let mut out = NodeOutput::single(Vec::new());
        for (i, item) in items.iter().enumerate() {
            let p = ctx.parameters(i)?;
            let dot = p
                .pointer("/options/disableDotNotation")
                .and_then(Value::as_bool)
                != Some(true);
            let fields = field_list(p.get("fieldToSplitOut"));
            if fields.is_empty() {
                return Err(NodeError::new(
                    "'Fields To Split Out' is empty: name the list field to split",
                ));
            }
            let include = p
                .get("include")
                .and_then(Value::as_str)
                .unwrap_or("noOtherFields");
            let destinations = field_list(p.pointer("/options/destinationFieldName"));
            for (f_index, field) in fields.iter().enumerate() {
                let Some(value) = lookup(&item.json, field, dot) else {
                    let e = NodeError::new(format!(
                        "the field '{field}' doesn't exist in the input item; check its name"
                    ));
                    ctx.item_failed(&mut out, i, e)?;
                    continue;
                };
                let elements = match value {
                    Value::Array(a) => a.clone(),
                    Value::Object(o) => o.values().cloned().collect(),
                    other => vec![other.clone()],
                };
                let destination = destinations.get(f_index).cloned();
                for element in elements {
                    let mut json = match include {
                        "allOtherFields" => {
                            let mut j = item.json.clone();
                            remove_path(&mut j, field);
                            j
                        }
                        "selectedOtherFields" => {
                            let mut j = Map::new();
                            for f in field_list(p.get("fieldsToInclude")) {
                                if let Some(v) = lookup(&item.json, &f, dot) {
                                    set_path(&mut j, &f, v.clone());
                                }
                            }
                            j
                        }
                        _ => Map::new(),
                    };
                    match (&element, &destination, include) {
                        (Value::Object(o), None, "noOtherFields") => json.extend(o.clone()),
                        _ => {
                            let key = destination.clone().unwrap_or_else(|| field.clone());
                            json.insert(key, element);
                        }
                    }
                    out.outputs[0].push(Item {
                        json,
                        binary: None,
                        paired_item: Some(PairedItem::item(i)),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Aggregate: `aggregate` (aggregateIndividualFields | aggregateAllItemData),
/// `fieldsToAggregate.fieldToAggregate[]{fieldToAggregate,renameField,outputFieldName}`,
/// `destinationFieldName`, `options.mergeLists`, `options.keepMissing`.
pub struct AggregateNode;

#[async_trait::async_trait]
impl Node for AggregateNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.aggregate", "Aggregate")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items: Vec<Item> = ctx.items().to_vec();
        if items.is_empty() {
            return Ok(NodeOutput::single(Vec::new()));
        }
        let p = ctx.parameters(0)?;
        let paired = PairedItem::Many(
            (0..items.len())
                .map(|i| PairedItemRef { item: i, input: 0 })
                .collect(),
        );
        let mut json = Map::new();
        if p.get("aggregate").and_then(Value::as_str) == Some("aggregateAllItemData") {
            let dest = p
                .get("destinationFieldName")
                .and_then(Value::as_str)
                .unwrap_or("data")
                .to_string();
            let include = p
                .get("include")
                .and_then(Value::as_str)
                .unwrap_or("allFields");
            let fields = field_list(p.get("fieldsToInclude").or(p.get("fieldsToExclude")));
            let list = items
                .iter()
                .map(|item| {
                    let mut j = match include {
                        "specifiedFields" => {
                            let mut j = Map::new();
                            for f in &fields {
                                if let Some(v) = get_path(&item.json, f) {
                                    set_path(&mut j, f, v.clone());
                                }
                            }
                            j
                        }
                        _ => item.json.clone(),
                    };
                    if include == "allFieldsExcept" {
                        for f in &fields {
                            remove_path(&mut j, f);
                        }
                    }
                    Value::Object(j)
                })
                .collect();
            json.insert(dest, Value::Array(list));
        } else {
            let merge_lists =
                p.pointer("/options/mergeLists").and_then(Value::as_bool) == Some(true);
            let keep_missing =
                p.pointer("/options/keepMissing").and_then(Value::as_bool) == Some(true);
            let specs = p
                .pointer("/fieldsToAggregate/fieldToAggregate")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if specs.is_empty() {
                return Err(NodeError::new(
                    "no fields to aggregate: add at least one input field name",
                ));
            }
            for spec in specs {
                let field = spec
                    .get("fieldToAggregate")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let out_name = match spec.get("renameField").and_then(Value::as_bool) {
                    Some(true) => spec
                        .get("outputFieldName")
                        .and_then(Value::as_str)
                        .unwrap_or(&field)
                        .to_string(),
                    _ => field.clone(),
                };
                let mut values = Vec::new();
                for item in &items {
                    match get_path(&item.json, &field) {
                        Some(Value::Array(a)) if merge_lists => values.extend(a.iter().cloned()),
                        Some(v) => values.push(v.clone()),
                        None if keep_missing => values.push(Value::Null),
                        None => {}
                    }
                }
                set_path(&mut json, &out_name, Value::Array(values));
            }
        }
        Ok(NodeOutput::single(vec![Item {
            json,
            binary: None,
            paired_item: Some(paired),
        }]))
    }
}

/// Limit: `maxItems` (default 1), `keep` (firstItems | lastItems).
pub struct LimitNode;

#[async_trait::async_trait]
impl Node for LimitNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.limit", "Limit")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items = ctx.items().to_vec();
        let p = ctx.parameters(0)?;
        let max = p
            .get("maxItems")
            .and_then(Value::as_f64)
            .unwrap_or(1.0)
            .max(0.0) as usize;
        let last = p.get("keep").and_then(Value::as_str) == Some("lastItems");
        let n = items.len();
        let kept: Vec<Item> = items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| if last { *i + max >= n } else { *i < max })
            .map(|(i, item)| item.paired(i))
            .collect();
        Ok(NodeOutput::single(kept))
    }
}

/// Remove Duplicates: `compare` (allFields | allFieldsExcept | selectedFields),
/// `fieldsToExclude`, `fieldsToCompare`, `options.removeOtherFields`.
pub struct RemoveDuplicatesNode;

#[async_trait::async_trait]
impl Node for RemoveDuplicatesNode {
    fn description(&self) -> NodeDescription {
        description("ledgerflow.removeDuplicates", "Remove Duplicates")
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items = ctx.items().to_vec();
        if items.is_empty() {
            return Ok(NodeOutput::single(Vec::new()));
        }
        let p = ctx.parameters(0)?;
        let compare = p
            .get("compare")
            .and_then(Value::as_str)
            .unwrap_or("allFields");
        let remove_other = p
            .pointer("/options/removeOtherFields")
            .and_then(Value::as_bool)
            == Some(true);
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let key = match compare {
                "selectedFields" => {
                    let fields = field_list(p.get("fieldsToCompare"));
                    if fields.is_empty() {
                        return Err(NodeError::new(
                            "'Fields To Compare' is empty: name at least one field",
                        ));
                    }
                    Value::Array(
                        fields
                            .iter()
                            .map(|f| get_path(&item.json, f).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                }
                "allFieldsExcept" => {
                    let mut j = item.json.clone();
                    for f in field_list(p.get("fieldsToExclude")) {
                        remove_path(&mut j, &f);
                    }
                    Value::Object(j)
                }
                _ => Value::Object(item.json.clone()),
            };
            if seen.insert(key.to_string()) {
                let item = if remove_other && compare == "selectedFields" {
                    let mut j = Map::new();
                    for f in field_list(p.get("fieldsToCompare")) {
                        if let Some(v) = get_path(&item.json, &f) {
                            set_path(&mut j, &f, v.clone());
                        }
                    }
                    Item { json: j, ..item }
                } else {
                    item
                };
                kept.push(item.paired(i));
            }
        }
        Ok(NodeOutput::single(kept))
    }
}

/// Sort: `type` simple (`sortFieldsUi.sortField[]{fieldName,order}`), random, or code
/// (`code`: a JavaScript comparator body over `a` and `b`).
pub struct SortNode;

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Greater,
        (_, None) => Ordering::Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[async_trait::async_trait]
impl Node for SortNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            raw_parameters: &["code"],
            ..description("ledgerflow.sort", "Sort")
        }
    }
    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items = ctx.items().to_vec();
        if items.is_empty() {
            return Ok(NodeOutput::single(Vec::new()));
        }
        let p = ctx.parameters(0)?;
        let mut indexed: Vec<(usize, Item)> = items.into_iter().enumerate().collect();
        match p.get("type").and_then(Value::as_str).unwrap_or("simple") {
            "random" => {
                // Fisher–Yates with random bytes from a v4 UUID per swap: no rand dependency.
                for i in (1..indexed.len()).rev() {
                    let r = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
                    let j = (r % (i as u128 + 1)) as usize;
                    indexed.swap(i, j);
                }
            }
            "code" => {
                let body = p
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("return 0;")
                    .to_string();
                let list = Value::Array(
                    indexed
                        .iter()
                        .map(|(i, it)| json!({"i": i, "json": it.json}))
                        .collect(),
                );
                let order = ctx
                    .sandbox()
                    .call_helper(
                        &format!("(list) => list.sort((x, y) => (function(a, b) {{ {body}\n }})(x.json, y.json)).map(x => x.i)"),
                        &[list],
                    )
                    .map_err(|e| NodeError::new(format!("sort code failed: {e}")))?;
                let order: Vec<usize> = serde_json::from_value(order).map_err(|_| {
                    NodeError::new("sort code must return a number from the comparison")
                })?;
                let mut by_index: Vec<Option<(usize, Item)>> =
                    indexed.into_iter().map(Some).collect();
                indexed = order
                    .into_iter()
                    .filter_map(|i| by_index.get_mut(i).and_then(Option::take))
                    .collect();
            }
            _ => {
                let fields: Vec<(String, bool)> = p
                    .pointer("/sortFieldsUi/sortField")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        (
                            f.get("fieldName")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            f.get("order").and_then(Value::as_str) == Some("descending"),
                        )
                    })
                    .collect();
                if fields.is_empty() {
                    return Err(NodeError::new("no sort fields: add the field to sort by"));
                }
                indexed.sort_by(|(_, a), (_, b)| {
                    for (field, desc) in &fields {
                        let o = compare_values(get_path(&a.json, field), get_path(&b.json, field));
                        let o = if *desc { o.reverse() } else { o };
                        if o != std::cmp::Ordering::Equal {
                            return o;
                        }
                    }
                    std::cmp::Ordering::Equal
                });
            }
        }
        Ok(NodeOutput::single(
            indexed
                .into_iter()
                .map(|(i, item)| item.paired(i))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_converts_types_and_uses_dot_notation() {
        let item = Item::new(json!({"keep": 1}));
        let p = json!({
            "includeOtherFields": true,
            "assignments": {"assignments": [
                {"name": "a.b", "value": "42", "type": "number"},
                {"name": "flag", "value": "true", "type": "boolean"}
            ]}
        });
        let out = set_item(&item, &p).expect("sets");
        assert_eq!(
            Value::Object(out.json),
            json!({"keep": 1, "a": {"b": 42}, "flag": true})
        );
        let bad = json!({"assignments": {"assignments": [{"name": "n", "value": "abc", "type": "number"}]}});
        let err = set_item(&item, &bad).expect_err("not a number");
        assert!(
            err.contains("'n' value \"abc\" can't be converted to a number"),
            "{err}"
        );
    }
}
