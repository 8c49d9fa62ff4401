//! The Xero node as the workflow engine sees it (`ledgerflow.xero`): evaluates each item's
//! parameters, reads binary inputs for uploads, hands the batch to [`crate::run`] through the
//! host, and turns results back into items (failed items become error items when the node
//! continues on failure, so exactly the failed items come out as errors).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use ledgerflow_engine::{
    BinaryData, CredentialRef, Item, Node, NodeContext, NodeDescription, NodeError, NodeOutput,
    PairedItem, WorkflowNode,
};
use serde_json::Value;

use crate::params::{check_operation, resolve_resource, Op};
use crate::{BinaryIn, Input, Outcome, XeroConnection, XeroParams};

pub const TYPE_NAME: &str = "ledgerflow.xero";
pub const CREDENTIAL_TYPE: &str = "xeroOAuth2Api";

/// What the server provides: the credential's connection and a client to run with.
#[async_trait]
pub trait XeroHost: Send + Sync {
    async fn connection(&self, credential: &CredentialRef) -> Result<XeroConnection, String>;
    async fn run(
        &self,
        connection: &XeroConnection,
        run_key: &str,
        inputs: &[Input],
    ) -> Vec<Outcome>;
}

pub struct XeroNode {
    pub host: Arc<dyn XeroHost>,
}

fn static_param<'a>(node: &'a WorkflowNode, key: &str) -> Option<&'a str> {
    node.parameters
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.starts_with('=') && !s.contains("{{"))
}

#[async_trait]
impl Node for XeroNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: TYPE_NAME,
            display_name: "Xero",
            trigger: false,
            raw_parameters: &[],
        }
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        if !node.credentials.contains_key(CREDENTIAL_TYPE) {
            return Err("choose a Xero OAuth2 API credential (credentials.xeroOAuth2Api)".into());
        }
        let (Some(resource), Some(operation)) = (
            static_param(node, "resource"),
            static_param(node, "operation"),
        ) else {
            return Ok(()); // set by expressions: checked per item at run time
        };
        let op = Op::parse(operation).ok_or_else(|| format!("unknown operation '{operation}'"))?;
        if matches!(op, Op::Report | Op::ApiCall) {
            return Ok(());
        }
        let (r, _) =
            resolve_resource(resource).ok_or_else(|| format!("unknown resource '{resource}'"))?;
        check_operation(r, op)
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let credential = ctx
            .node
            .credentials
            .get(CREDENTIAL_TYPE)
            .cloned()
            .ok_or_else(|| NodeError::new("choose a Xero OAuth2 API credential"))?;
        let connection = self
            .host
            .connection(&credential)
            .await
            .map_err(NodeError::new)?;
        let count = ctx.items().len();
        let mut out = NodeOutput::single(Vec::new());
        let mut inputs = Vec::with_capacity(count);
        let mut indexes = Vec::with_capacity(count);
        for i in 0..count {
            let params: XeroParams = match ctx.parameters_as(i) {
                Ok(p) => p,
                Err(e) => {
                    ctx.item_failed(&mut out, i, e)?;
                    continue;
                }
            };
            let attachment = if Op::parse(&params.operation) == Some(Op::UploadAttachment) {
                let prop = params
                    .binary_property
                    .clone()
                    .unwrap_or_else(|| "data".into());
                ctx.items()[i]
                    .binary
                    .as_ref()
                    .and_then(|b| b.get(&prop))
                    .and_then(|b| {
                        Some(BinaryIn {
                            data: base64::engine::general_purpose::STANDARD
                                .decode(&b.data)
                                .ok()?
                                .into(),
                            mime: b.mime_type.clone(),
                            file_name: b.file_name.clone(),
                        })
                    })
            } else {
                None
            };
            inputs.push(Input { params, attachment });
            indexes.push(i);
        }
        // Same execution, node and run → same idempotency keys, so a retried or resumed run
        // cannot create a record twice.
        let run_key = format!(
            "{}:{}:{}",
            ctx.execution.execution_id, ctx.node.name, ctx.run_index
        );
        let results = self.host.run(&connection, &run_key, &inputs).await;
        for ((i, input), result) in indexes.into_iter().zip(&inputs).zip(results) {
            match result {
                Ok(produced) => {
                    for p in produced {
                        let mut item = Item::new(p.json);
                        item.paired_item = Some(PairedItem::item(i));
                        if let Some(b) = p.binary {
                            let prop = input
                                .params
                                .binary_property
                                .clone()
                                .unwrap_or_else(|| "data".into());
                            item.binary = Some(BTreeMap::from([(
                                prop,
                                BinaryData {
                                    data: base64::engine::general_purpose::STANDARD.encode(&b.data),
                                    mime_type: b.mime,
                                    file_extension: b
                                        .file_name
                                        .rsplit('.')
                                        .next()
                                        .map(str::to_string),
                                    file_size: Some(b.data.len().to_string()),
                                    file_name: Some(b.file_name),
                                },
                            )]));
                        }
                        out.outputs[0].push(item);
                    }
                }
                Err(message) => ctx.item_failed(&mut out, i, NodeError::new(message))?,
            }
        }
        Ok(out)
    }
}
