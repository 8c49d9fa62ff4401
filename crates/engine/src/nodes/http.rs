//! HTTP Request (n8n v4 parameters): method, URL, query, headers, JSON/form/raw/binary body,
//! response as JSON/text/file, full response, never-error, pagination, and authentication
//! through the host's [`crate::CredentialProvider`].
//!
//! Secrets: credential headers and query values are added to the outgoing request only (headers
//! marked sensitive); nothing about the request, and no header, goes into the output or error
//! messages — only the response.

use std::time::Duration;

use base64::Engine as _;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::engine::sleep_cancellable;
use crate::host::AuthRequest;
use crate::item::{BinaryData, Item, PairedItem};
use crate::node::{Node, NodeContext, NodeDescription, NodeError, NodeOutput};
use crate::workflow::WorkflowNode;

pub struct HttpRequestNode;

fn pairs(
    p: &Value,
    list_ptr: &str,
    json_key: &str,
    specify_key: &str,
) -> Result<Vec<(String, String)>, String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if p.get(specify_key).and_then(Value::as_str) == Some("json") {
        let raw = p.get(json_key).cloned().unwrap_or(Value::Null);
        let obj = match raw {
            Value::String(s) if s.trim().is_empty() => Value::Object(Map::new()),
            Value::String(s) => serde_json::from_str(&s)
                .map_err(|e| format!("'{json_key}' is not valid JSON: {e}"))?,
            other => other,
        };
        return match obj {
            Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), as_text(v))).collect()),
            _ => Err(format!("'{json_key}' must be a JSON object")),
        };
    }
    Ok(p.pointer(list_ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("name")?.as_str()?.to_string(),
                as_text(e.get("value")?),
            ))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect())
}

struct Page {
    status: u16,
    headers: Map<String, Value>,
    body: Value,
    binary: Option<BinaryData>,
}

struct Prepared {
    method: reqwest::Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Body,
}

#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Raw(String, Vec<u8>),
}

fn prepare(p: &Value, item: &Item) -> Result<Prepared, String> {
    let method_name = p
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .map_err(|_| format!("'{method_name}' is not an HTTP method"))?;
    let url = p
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let parsed = url::Url::parse(&url).map_err(|e| {
        format!("URL '{url}' is not valid: {e} (it must start with http:// or https://)")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("URL '{url}' must use http or https"));
    }
    let on = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
    let query = if on("sendQuery") {
        pairs(
            p,
            "/queryParameters/parameters",
            "jsonQuery",
            "specifyQuery",
        )?
    } else {
        Vec::new()
    };
    let headers = if on("sendHeaders") {
        pairs(
            p,
            "/headerParameters/parameters",
            "jsonHeaders",
            "specifyHeaders",
        )?
    } else {
        Vec::new()
    };
    let body = if on("sendBody") {
        match p
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("json")
        {
            "json" => {
                if p.get("specifyBody").and_then(Value::as_str) == Some("json") {
                    match p.get("jsonBody").cloned().unwrap_or(Value::Null) {
                        Value::String(s) => Body::Json(
                            serde_json::from_str(&s)
                                .map_err(|e| format!("'JSON Body' is not valid JSON: {e}"))?,
                        ),
                        other => Body::Json(other),
                    }
                } else {
                    let mut obj = Map::new();
                    for e in p
                        .pointer("/bodyParameters/parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(name) = e.get("name").and_then(Value::as_str) {
                            obj.insert(
                                name.to_string(),
                                e.get("value").cloned().unwrap_or(Value::Null),
                            );
                        }
                    }
                    Body::Json(Value::Object(obj))
                }
            }
            "form-urlencoded" => Body::Form(pairs(
                p,
                "/bodyParameters/parameters",
                "body",
                "specifyBody",
            )?),
            "raw" => Body::Raw(
                p.get("rawContentType")
                    .and_then(Value::as_str)
                    .unwrap_or("text/plain")
                    .to_string(),
                match p.get("body") {
                    Some(Value::String(s)) => s.clone().into_bytes(),
                    Some(v) => v.to_string().into_bytes(),
                    None => Vec::new(),
                },
            ),
            "binaryData" => {
                let field = p
                    .get("inputDataFieldName")
                    .and_then(Value::as_str)
                    .unwrap_or("data");
                let bin = item
                    .binary
                    .as_ref()
                    .and_then(|b| b.get(field))
                    .ok_or_else(|| {
                        format!("the input item has no binary property '{field}' to send")
                    })?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&bin.data)
                    .map_err(|_| format!("binary property '{field}' is not valid base64"))?;
                Body::Raw(bin.mime_type.clone(), bytes)
            }
            other => return Err(format!("body content type '{other}' is not supported")),
        }
    } else {
        Body::None
    };
    Ok(Prepared {
        method,
        url,
        query,
        headers,
        body,
    })
}

fn response_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl HttpRequestNode {
    async fn send(
        &self,
        ctx: &NodeContext<'_>,
        req: &Prepared,
        format: &str,
        timeout: Duration,
    ) -> Result<Page, String> {
        let mut builder = ctx
            .services
            .http
            .request(req.method.clone(), &req.url)
            .timeout(timeout);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder = match &req.body {
            Body::None => builder,
            Body::Json(v) => builder.json(v),
            Body::Form(f) => builder.form(f),
            Body::Raw(ct, bytes) => builder
                .header("content-type", ct.as_str())
                .body(bytes.clone()),
        };
        // Authentication last, so a header from the parameters can't replace it unnoticed.
        let p = &ctx.node.parameters;
        let auth_type = match p
            .get("authentication")
            .and_then(Value::as_str)
            .unwrap_or("none")
        {
            "genericCredentialType" => p.get("genericAuthType").and_then(Value::as_str),
            "predefinedCredentialType" => p.get("nodeCredentialType").and_then(Value::as_str),
            _ => None,
        };
        if let Some(auth_type) = auth_type {
            let cred = ctx.node.credentials.get(auth_type).ok_or_else(|| {
                format!("no credential of type '{auth_type}' is selected: choose one in the node's Credential field")
            })?;
            let auth = ctx
                .services
                .credentials
                .authenticate(AuthRequest {
                    credential_type: auth_type,
                    credential: cred,
                    node: &ctx.node.name,
                    method: req.method.as_str(),
                    url: &req.url,
                })
                .await
                .map_err(|e| e.to_string())?;
            for (name, value) in &auth.headers {
                let mut hv = reqwest::header::HeaderValue::from_str(value.expose_secret())
                    .map_err(|_| {
                        format!(
                            "credential '{}' produced a header that is not valid",
                            cred.name
                        )
                    })?;
                hv.set_sensitive(true);
                builder = builder.header(name.as_str(), hv);
            }
            if !auth.query.is_empty() {
                let q: Vec<(&str, &str)> = auth
                    .query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose_secret()))
                    .collect();
                builder = builder.query(&q);
            }
        }
        let response = builder.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            format!("{} {} {kind}: {}", req.method, req.url, e.without_url())
        })?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (k, v) in response.headers() {
            headers.insert(k.as_str().to_string(), json!(v.to_str().unwrap_or("")));
        }
        let content_type = headers
            .get("content-type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let bytes = response.bytes().await.map_err(|e| {
            format!(
                "reading the response from {} failed: {}",
                req.url,
                e.without_url()
            )
        })?;
        let text = || String::from_utf8_lossy(&bytes).to_string();
        let (body, binary) = match format {
            "json" => (
                serde_json::from_slice(&bytes)
                    .map_err(|_| format!("the response from {} is not JSON", req.url))?,
                None,
            ),
            "text" => (Value::String(text()), None),
            "file" => (
                Value::Null,
                Some(binary_data(&bytes, &content_type, &req.url)),
            ),
            _ if content_type.contains("json") => (
                serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text())),
                None,
            ),
            _ if content_type.starts_with("text/")
                || content_type.contains("xml")
                || content_type.is_empty() =>
            {
                (Value::String(text()), None)
            }
            _ => (
                Value::Null,
                Some(binary_data(&bytes, &content_type, &req.url)),
            ),
        };
        Ok(Page {
            status,
            headers,
            body,
            binary,
        })
    }
}

fn binary_data(bytes: &[u8], content_type: &str, url: &str) -> BinaryData {
    let file_name = url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
        })
        .filter(|s| !s.is_empty());
    BinaryData {
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
        mime_type: content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        file_extension: file_name
            .as_deref()
            .and_then(|f| f.rsplit_once('.'))
            .map(|(_, e)| e.to_string()),
        file_name,
        file_size: Some(bytes.len().to_string()),
    }
}

fn page_items(page: Page, p: &Value, index: usize) -> Vec<Item> {
    let opts = p
        .pointer("/options/response/response")
        .cloned()
        .unwrap_or(Value::Null);
    let full = opts.get("fullResponse").and_then(Value::as_bool) == Some(true);
    let property = opts
        .get("outputPropertyName")
        .and_then(Value::as_str)
        .unwrap_or("data")
        .to_string();
    let paired = Some(PairedItem::item(index));
    if let Some(bin) = page.binary {
        let mut item = Item::new(if full {
            json!({"headers": page.headers, "statusCode": page.status})
        } else {
            json!({})
        });
        item.binary = Some([(property, bin)].into_iter().collect());
        item.paired_item = paired;
        return vec![item];
    }
    if full {
        let item = Item::new(
            json!({"body": page.body, "headers": page.headers, "statusCode": page.status}),
        );
        return vec![Item {
            paired_item: paired,
            ..item
        }];
    }
    let values = match page.body {
        Value::Array(list) => list,
        Value::String(s) => vec![json!({ property: s })],
        Value::Null => vec![json!({})],
        other => vec![other],
    };
    values
        .into_iter()
        .map(|v| Item {
            paired_item: paired.clone(),
            ..Item::new(v)
        })
        .collect()
}

#[async_trait::async_trait]
impl Node for HttpRequestNode {
    fn description(&self) -> NodeDescription {
        NodeDescription {
            type_name: "ledgerflow.httpRequest",
            display_name: "HTTP Request",
            trigger: false,
            // Pagination values refer to $response and are evaluated per page.
            raw_parameters: &["pagination"],
        }
    }

    fn validate(&self, node: &WorkflowNode) -> Result<(), String> {
        match node.parameters.get("url").and_then(Value::as_str) {
            Some(u) if !u.trim().is_empty() => Ok(()),
            _ => Err("the HTTP Request has no URL: set 'URL'".into()),
        }
    }

    async fn execute(&self, ctx: &mut NodeContext<'_>) -> Result<NodeOutput, NodeError> {
        let items = ctx.items().to_vec();
        let mut out = NodeOutput::single(Vec::new());
        for (i, item) in items.iter().enumerate() {
            match self.one_item(ctx, item, i).await {
                Ok(new) => out.outputs[0].extend(new),
                Err(e) => ctx.item_failed(&mut out, i, e)?,
            }
        }
        Ok(out)
    }
}

impl HttpRequestNode {
    async fn one_item(
        &self,
        ctx: &mut NodeContext<'_>,
        item: &Item,
        i: usize,
    ) -> Result<Vec<Item>, NodeError> {
        let p = ctx.parameters(i)?;
        let mut req = prepare(&p, item).map_err(|m| NodeError::new(m).at_item(i))?;
        let format = p
            .pointer("/options/response/response/responseFormat")
            .and_then(Value::as_str)
            .unwrap_or("autodetect")
            .to_string();
        let never_error = p
            .pointer("/options/response/response/neverError")
            .and_then(Value::as_bool)
            == Some(true);
        let timeout = Duration::from_millis(
            p.pointer("/options/timeout")
                .and_then(Value::as_u64)
                .unwrap_or(300_000),
        );
        let pagination = ctx
            .raw_parameters()
            .pointer("/options/pagination/pagination")
            .cloned()
            .unwrap_or(Value::Null);
        let mode = pagination
            .get("paginationMode")
            .and_then(Value::as_str)
            .unwrap_or("off")
            .to_string();
        let max_pages =
            if pagination.get("limitPagesFetched").and_then(Value::as_bool) == Some(true) {
                pagination
                    .get("maxRequests")
                    .and_then(Value::as_u64)
                    .unwrap_or(100)
            } else {
                u64::MAX
            };
        let interval = Duration::from_millis(
            pagination
                .get("requestInterval")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        );
        let mut results = Vec::new();
        let mut page_count: u64 = 0;
        loop {
            let page = self
                .send(ctx, &req, &format, timeout)
                .await
                .map_err(|m| NodeError::new(m).at_item(i))?;
            page_count += 1;
            let status = page.status;
            let complete_on_status = mode != "off"
                && pagination
                    .get("paginationCompleteWhen")
                    .and_then(Value::as_str)
                    == Some("receiveSpecificStatusCodes")
                && pagination
                    .get("statusCodesWhenComplete")
                    .map(|v| match v {
                        Value::String(s) => s.split(',').any(|c| c.trim() == status.to_string()),
                        Value::Number(n) => n.as_u64() == Some(u64::from(status)),
                        _ => false,
                    })
                    .unwrap_or(false);
            if status >= 400 && !never_error && !complete_on_status {
                let snippet: String = match &page.body {
                    Value::String(s) => s.chars().take(300).collect(),
                    Value::Null => String::new(),
                    other => other.to_string().chars().take(300).collect(),
                };
                return Err(NodeError {
                    description: Some(snippet.clone()),
                    ..NodeError::new(format!(
                        "{} {} returned status {status}: {snippet}",
                        req.method, req.url
                    ))
                }
                .at_item(i));
            }
            if complete_on_status {
                break;
            }
            let response_json =
                json!({"body": page.body, "headers": page.headers, "statusCode": status});
            let body_empty = response_is_empty(&page.body) && page.binary.is_none();
            results.extend(page_items(page, &p, i));
            if mode == "off" || page_count >= max_pages {
                break;
            }
            {
                let sandbox = ctx.sandbox();
                let set = |sb: &mut crate::expression::Sandbox, name: &str, v: &Value| {
                    sb.set_global(name, v)
                        .map_err(|e| NodeError::new(e.to_string()))
                };
                set(sandbox, "$response", &response_json)?;
                set(sandbox, "$pageCount", &json!(page_count))?;
            }
            let done = match pagination
                .get("paginationCompleteWhen")
                .and_then(Value::as_str)
                .unwrap_or("responseIsEmpty")
            {
                "responseIsEmpty" => body_empty,
                "other" => {
                    let expr = pagination
                        .get("completeExpression")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    matches!(ctx.evaluate(expr, i)?, Value::Bool(true))
                }
                _ => false,
            };
            if done {
                break;
            }
            match mode.as_str() {
                "responseContainsNextURL" => {
                    let next = pagination
                        .get("nextURL")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    match ctx.evaluate(next, i)? {
                        Value::String(u) if !u.is_empty() => {
                            req.url = u;
                            req.query.clear();
                        }
                        _ => break,
                    }
                }
                "updateAParameterInEachRequest" => {
                    for param in pagination
                        .pointer("/parameters/parameters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        let name = param
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let raw = param.get("value").and_then(Value::as_str).unwrap_or("");
                        let value = match ctx.evaluate(raw, i)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        match param.get("type").and_then(Value::as_str).unwrap_or("qs") {
                            "headers" => {
                                req.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
                                req.headers.push((name, value));
                            }
                            "body" => {
                                if let Body::Json(Value::Object(m)) = &mut req.body {
                                    m.insert(name, Value::String(value));
                                } else if let Body::Form(f) = &mut req.body {
                                    f.retain(|(k, _)| *k != name);
                                    f.push((name, value));
                                }
                            }
                            _ => {
                                req.query.retain(|(k, _)| *k != name);
                                req.query.push((name, value));
                            }
                        }
                    }
                }
                other => {
                    return Err(NodeError::new(format!(
                        "pagination mode '{other}' is not supported"
                    )))
                }
            }
            if !interval.is_zero() {
                sleep_cancellable(interval, ctx.cancel).await?;
            }
        }
        Ok(results)
    }
}
