//! Merge v3: `append`, `combine` (`combineBy`: combineByFields | combineByPosition | combineAll)
//! and `chooseBranch`. It has two inputs (more with `numberInputs`, n8n 3.1+); the executor
//! makes it wait for all of them and runs it with what arrived once nothing else can run.

use serde_json::{Map, Value};

use crate::item::{get_path, Item, PairedItem, PairedItemRef};
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::workflow::WorkflowNode;

pub struct MergeNode;

fn pair(refs: &[(usize, usize)]) -> Option<PairedItem> {
    match refs {
        [] => None,
        [(input, item)] => Some(PairedItem::One(PairedItemRef {
            item: *item,
            input: *input,
        })),
        many => Some(PairedItem::Many(
            many.iter()
                .map(|(input, item)| PairedItemRef {
                    item: *item,
                    input: *input,
                })
                .collect(),
        )),
    }
}

fn merged(a: Option<(usize, &Item)>, b: Option<(usize, &Item)>, prefer_input1: bool) -> Item {
    let mut json = Map::new();
    let (first, second) = if prefer_input1 { (b, a) } else { (a, b) };
    let mut binary = None;
    let mut refs = Vec::new();
    for (input, entry) in [
        (if prefer_input1 { 1 } else { 0 }, first),
        (if prefer_input1 { 0 } else { 1 }, second),
    ] {
        if let Some((index, item)) = entry {
            json.extend(item.json.clone());
            if item.binary.is_some() {
                binary = item.binary.clone();
            }
            refs.push((input, index));
        }
    }
    refs.sort_unstable();
    Item {
        json,
        binary,
        paired_item: pair(&refs),
    }
}

fn tagged(input: usize, index: usize, item: &Item) -> Item {
    Item {
        paired_item: pair(&[(input, index)]),
        ..item.clone()
    }
}

#[async_trait::async_trait]
impl Node for MergeNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "ledgerflow.merge",
            display_name: "Merge",
            trigger: false,
            raw_parameters: &[],
        }
    }

    fn inputs(&self, node: &WorkflowNode) -> usize {
        node.parameters
            .get("numberInputs")
            .and_then(Value::as_u64)
            .map_or(2, |n| n.clamp(2, 10) as usize)
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        // Parameters of a Merge are evaluated once, against the first item of input 1.
        let p = ctx.parameters(0)?;
        let in1 = ctx.input(0).to_vec();
        let in2 = ctx.input(1).to_vec();
        let prefer_input1 = p
            .pointer("/options/clashHandling/values/resolveClash")
            .and_then(Value::as_str)
            == Some("preferInput1");
        let mode = p.get("mode").and_then(Value::as_str).unwrap_or("append");
        let out = match mode {
            "append" => {
                let mut out = Vec::new();
                for (input, items) in ctx.inputs.iter().enumerate() {
                    out.extend(items.iter().enumerate().map(|(i, it)| tagged(input, i, it)));
                }
                out
            }
            "chooseBranch" => match p.get("output").and_then(Value::as_str).unwrap_or("input1") {
                "input2" => in2
                    .iter()
                    .enumerate()
                    .map(|(i, it)| tagged(1, i, it))
                    .collect(),
                "empty" => vec![Item::empty()],
                _ => in1
                    .iter()
                    .enumerate()
                    .map(|(i, it)| tagged(0, i, it))
                    .collect(),
            },
            "combine" => match p
                .get("combineBy")
                .and_then(Value::as_str)
                .unwrap_or("combineByFields")
            {
                "combineByPosition" => {
                    let unpaired = p
                        .pointer("/options/includeUnpaired")
                        .and_then(Value::as_bool)
                        == Some(true);
                    let n = if unpaired {
                        in1.len().max(in2.len())
                    } else {
                        in1.len().min(in2.len())
                    };
                    (0..n)
                        .map(|i| {
                            merged(
                                in1.get(i).map(|x| (i, x)),
                                in2.get(i).map(|x| (i, x)),
                                prefer_input1,
                            )
                        })
                        .collect()
                }
                "combineAll" => {
                    let mut out = Vec::new();
                    for (i, a) in in1.iter().enumerate() {
                        for (j, b) in in2.iter().enumerate() {
                            out.push(merged(Some((i, a)), Some((j, b)), prefer_input1));
                        }
                    }
                    out
                }
                "combineByFields" => combine_by_fields(&p, &in1, &in2, prefer_input1)?,
                other => {
                    return Err(NodeError::new(format!(
                        "unknown 'Combine By' value '{other}'"
                    )))
                }
            },
            other => {
                return Err(NodeError::new(format!(
                    "Merge mode '{other}' is not supported (use append, combine or chooseBranch)"
                )))
            }
        };
        Ok(NodeOutput::single(out))
    }
}

fn combine_by_fields(
    p: &Value,
    in1: &[Item],
    in2: &[Item],
    prefer_input1: bool,
) -> Result<Vec<Item>, NodeError> {
    let pairs: Vec<(String, String)> = if p.get("advanced").and_then(Value::as_bool) == Some(true) {
        p.pointer("/mergeByFields/values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                (
                    v.get("field1")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    v.get("field2")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    } else {
        p.get("fieldsToMatchString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| (f.to_string(), f.to_string()))
            .collect()
    };
    if pairs.is_empty() || pairs.iter().any(|(a, b)| a.is_empty() || b.is_empty()) {
        return Err(NodeError::new(
            "'Fields to Match' is empty: name the field(s) both inputs share",
        ));
    }
    let key = |item: &Item, left: bool| -> Option<String> {
        let values: Vec<&Value> = pairs
            .iter()
            .map(|(a, b)| get_path(&item.json, if left { a } else { b }))
            .collect::<Option<Vec<_>>>()?;
        Some(serde_json::to_string(&values).unwrap_or_default())
    };
    let join = p
        .get("joinMode")
        .and_then(Value::as_str)
        .unwrap_or("keepMatches");
    let output_from = p
        .get("outputDataFrom")
        .and_then(Value::as_str)
        .unwrap_or("both");
    let mut matched2 = vec![false; in2.len()];
    let mut out = Vec::new();
    let mut unmatched1 = Vec::new();
    for (i, a) in in1.iter().enumerate() {
        let ka = key(a, true);
        let matches: Vec<usize> = match &ka {
            Some(k) => in2
                .iter()
                .enumerate()
                .filter(|(_, b)| key(b, false).as_ref() == Some(k))
                .map(|(j, _)| j)
                .collect(),
            None => Vec::new(),
        };
        if matches.is_empty() {
            unmatched1.push(i);
        }
        for j in &matches {
            matched2[*j] = true;
        }
        match join {
            "keepMatches" | "keepEverything" | "enrichInput1" | "enrichInput2" => {
                for j in &matches {
                    let item = match (join, output_from) {
                        ("keepMatches", "input1") => tagged(0, i, a),
                        ("keepMatches", "input2") => tagged(1, *j, &in2[*j]),
                        _ => merged(Some((i, a)), Some((*j, &in2[*j])), prefer_input1),
                    };
                    out.push(item);
                }
                if matches.is_empty() && matches!(join, "keepEverything" | "enrichInput1") {
                    out.push(tagged(0, i, a));
                }
            }
            _ => {}
        }
    }
    match join {
        "keepNonMatches" => {
            if output_from != "input2" {
                out.extend(unmatched1.iter().map(|i| tagged(0, *i, &in1[*i])));
            }
            if output_from != "input1" {
                out.extend(
                    matched2
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| !**m)
                        .map(|(j, _)| tagged(1, j, &in2[j])),
                );
            }
        }
        "keepEverything" | "enrichInput2" => {
            out.extend(
                matched2
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !**m)
                    .map(|(j, _)| tagged(1, j, &in2[j])),
            );
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn combine_by_fields_keeps_matches_and_enriches() {
        let in1 = vec![
            Item::new(json!({"id": 1, "a": "x"})),
            Item::new(json!({"id": 2, "a": "y"})),
        ];
        let in2 = vec![Item::new(json!({"id": 2, "b": "z"}))];
        let p =
            json!({"mode": "combine", "combineBy": "combineByFields", "fieldsToMatchString": "id"});
        let out = combine_by_fields(&p, &in1, &in2, false).expect("combines");
        assert_eq!(out.len(), 1);
        assert_eq!(
            Value::Object(out[0].json.clone()),
            json!({"id": 2, "a": "y", "b": "z"})
        );
        let p = json!({"fieldsToMatchString": "id", "joinMode": "enrichInput1"});
        let out = combine_by_fields(&p, &in1, &in2, false).expect("enriches");
        assert_eq!(out.len(), 2);
        assert_eq!(
            Value::Object(out[0].json.clone()),
            json!({"id": 1, "a": "x"})
        );
    }
}
