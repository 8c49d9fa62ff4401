//! Code: JavaScript over the items, in the execution's sandbox (same limits as expressions,
//! with the longer `code_timeout`). `mode` runOnceForAllItems (`items`, `$input.all()`, returns
//! a list) or runOnceForEachItem (`$json`, `$input.item`, `item`, returns one item). Returned
//! values may be `{json: {...}}` items or plain objects, which are wrapped as n8n does.

use serde_json::Value;

use crate::item::{Item, PairedItem};
use crate::node::{js_node_error, Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::workflow::WorkflowNode;

pub struct CodeNode;

fn to_item(value: Value, default_pair: Option<usize>) -> Result<Item, String> {
    let Value::Object(obj) = value else {
        return Err(format!(
            "code returned {value}, but each returned item must be an object, e.g. {{json: {{...}}}}"
        ));
    };
    let mut item = if obj.get("json").is_some_and(Value::is_object) {
        serde_json::from_value::<Item>(Value::Object(obj))
            .map_err(|e| format!("a returned item is not valid: {e}"))?
    } else {
        Item::new(Value::Object(obj))
    };
    if item.paired_item.is_none() {
        item.paired_item = default_pair.map(PairedItem::item);
    }
    Ok(item)
}

#[async_trait::async_trait]
impl Node for CodeNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "ledgerflow.code",
            display_name: "Code",
            trigger: false,
            raw_parameters: &["jsCode"],
        }
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        match node.parameters.get("language").and_then(Value::as_str) {
            None | Some("javaScript") => Ok(()),
            Some(other) => Err(format!(
                "Code in language '{other}' is not supported, only JavaScript"
            )),
        }
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let code = ctx
            .raw_parameters()
            .get("jsCode")
            .and_then(Value::as_str)
            .unwrap_or("return $input.all();")
            .to_string();
        let per_item =
            ctx.raw_parameters().get("mode").and_then(Value::as_str) == Some("runOnceForEachItem");
        let mut out = NodeOutput::single(Vec::new());
        if !per_item {
            let result = ctx
                .sandbox()
                .run_code(&code, None)
                .map_err(|e| js_node_error(e, 0))?;
            let list = match result {
                Value::Array(list) => list,
                Value::Null => Vec::new(),
                obj @ Value::Object(_) => vec![obj],
                other => {
                    return Err(NodeError::new(format!(
                        "code returned {other}; return a list of items, e.g. [{{json: {{...}}}}]"
                    )))
                }
            };
            for value in list {
                out.outputs[0].push(to_item(value, None).map_err(NodeError::new)?);
            }
            return Ok(out);
        }
        for i in 0..ctx.items().len() {
            let result = ctx
                .sandbox()
                .run_code(&code, Some(i))
                .map_err(|e| js_node_error(e, i))
                .and_then(|v| match v {
                    Value::Null => Ok(None),
                    v => to_item(v, Some(i))
                        .map(Some)
                        .map_err(|m| NodeError::new(m).at_item(i)),
                });
            match result {
                Ok(Some(item)) => out.outputs[0].push(item),
                Ok(None) => {}
                Err(e) => ctx.item_failed(&mut out, i, e)?,
            }
        }
        Ok(out)
    }
}
