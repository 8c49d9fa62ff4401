//! Running Xero operations for a batch of items: organisation choice, the scope check before
//! any call, batched writes (50 per call, `summarizeErrors=false`, each element's result or
//! validation error back to its own item, an idempotency key per batch derived from the run), and
//! every other operation call by call. Knows nothing of the workflow engine: the node adapter in
//! `lib.rs` turns items into [`Input`]s and [`Produced`] values back into items.

use bytes::Bytes;
use ledgerflow_xero::catalogue::{self, Removal, Resource};
use ledgerflow_xero::client::{element_messages, Body};
use ledgerflow_xero::{dates, AccessTokens, ApiError, ApiRequest, Endpoints, Target, XeroClient};
use reqwest::Method;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::params::{check_operation, resolve_resource, Op, XeroParams};

/// Xero's recommended batch size.
pub const BATCH: usize = 50;

/// What the node knows about its credential.
#[derive(Debug, Clone)]
pub struct XeroConnection {
    pub credential_id: String,
    pub endpoints: Endpoints,
    /// (tenant id, name) of each organisation the credential reaches.
    pub tenants: Vec<(String, String)>,
    pub granted_scopes: Vec<String>,
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct BinaryIn {
    pub data: Bytes,
    pub mime: String,
    pub file_name: Option<String>,
}

/// One item's work.
#[derive(Debug, Clone)]
pub struct Input {
    pub params: XeroParams,
    pub attachment: Option<BinaryIn>,
}

#[derive(Debug, Clone)]
pub struct BinaryOut {
    pub data: Bytes,
    pub mime: String,
    pub file_name: String,
}

/// One output item.
#[derive(Debug, Clone)]
pub struct Produced {
    pub json: Value,
    pub binary: Option<BinaryOut>,
}

impl Produced {
    fn json(json: Value) -> Produced {
        Produced { json, binary: None }
    }
}

pub type Outcome = Result<Vec<Produced>, String>;

/// Items written together: resource, operation, organisation and (for bills) invoice type.
type BatchKey = (&'static str, Op, String, Option<&'static str>);

struct Plan {
    resource: &'static Resource,
    bill: Option<&'static str>,
    op: Op,
    tenants: Vec<(String, String)>,
    tag_tenant: bool,
}

fn plan(conn: &XeroConnection, p: &XeroParams) -> Result<Plan, String> {
    let op = Op::parse(&p.operation).ok_or_else(|| {
        format!(
            "unknown operation '{}': use create, update, createOrUpdate, get, getMany, delete, email, onlineInvoice, pdf, history, addNote, uploadAttachment, listAttachments, downloadAttachment, allocate, addMember, removeMember, addOption, report or apiCall",
            p.operation
        )
    })?;
    let (resource, bill) = match op {
        Op::Report => (
            catalogue::resource("Organisation").expect("in catalogue"),
            None,
        ),
        Op::ApiCall => (
            catalogue::resource("Organisation").expect("in catalogue"),
            None,
        ),
        _ => resolve_resource(&p.resource).ok_or_else(|| {
            format!(
                "unknown resource '{}': use one of {}",
                p.resource,
                catalogue::RESOURCES
                    .iter()
                    .map(|r| r.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?,
    };
    check_operation(resource, op)?;
    // The scope check happens before any call: a missing scope is named, not discovered.
    let scopes = match op {
        Op::Report => {
            let name = p.report.as_deref().unwrap_or_default();
            Some(catalogue::report_scopes(name).ok_or_else(|| {
                format!(
                    "unknown report '{name}': use one of {}",
                    catalogue::REPORTS
                        .iter()
                        .map(|(r, _)| *r)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?)
        }
        Op::ApiCall => None,
        Op::UploadAttachment | Op::ListAttachments | Op::DownloadAttachment => {
            Some(catalogue::Scopes {
                broad: "accounting.attachments",
                granular: "accounting.attachments",
            })
        }
        _ => Some(resource.scopes),
    };
    if let Some(scopes) = scopes {
        if let Err(needed) = catalogue::check_scopes(&conn.granted_scopes, scopes, op.writes()) {
            return Err(if needed.is_empty() {
                format!("{} is read-only in Xero", resource.name)
            } else {
                format!(
                    "the credential was not granted the scope this needs ({}); edit the credential's scopes to include {} and reconnect it",
                    needed.join(" or "),
                    needed[0]
                )
            });
        }
    }
    let choice = p.organisation.as_deref().map(str::trim).unwrap_or("");
    let (tenants, tag_tenant) = if choice.eq_ignore_ascii_case("all") {
        (conn.tenants.clone(), true)
    } else if choice.is_empty() {
        match conn.tenants.as_slice() {
            [one] => (vec![one.clone()], false),
            [] => {
                return Err(
                    "the credential reaches no organisation; reconnect it and tick one".into(),
                )
            }
            _ => {
                return Err(format!(
                    "choose an organisation: this credential reaches {} ({}), or use \"all\"",
                    conn.tenants.len(),
                    conn.tenants
                        .iter()
                        .map(|t| t.1.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    } else {
        let by_name = choice.strip_prefix("name:").map(str::trim);
        let found = conn.tenants.iter().find(|(id, name)| match by_name {
            Some(n) => name.eq_ignore_ascii_case(n),
            None => id.eq_ignore_ascii_case(choice) || name.eq_ignore_ascii_case(choice),
        });
        match found {
            Some(t) => (vec![t.clone()], false),
            None => {
                return Err(format!(
                    "organisation '{choice}' is not connected to this credential; it reaches: {}",
                    conn.tenants
                        .iter()
                        .map(|(id, name)| format!("{name} ({id})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    };
    Ok(Plan {
        resource,
        bill,
        op,
        tenants,
        tag_tenant,
    })
}

/// Dates a person may give as `YYYY-MM-DD` or RFC 3339, in any `…Date` field of a body.
fn normalise_input_dates(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.ends_with("Date") {
                    if let Value::String(s) = val {
                        if let Ok(d) = dates::to_xero(s) {
                            *s = d;
                            continue;
                        }
                    }
                }
                normalise_input_dates(val);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise_input_dates),
        _ => {}
    }
}

fn idem_key(run_key: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(run_key.as_bytes());
    for p in parts {
        h.update(b"|");
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn tag(mut v: Value, tenant: &(String, String), on: bool) -> Value {
    if on {
        if let Value::Object(m) = &mut v {
            m.insert("xeroTenantId".into(), json!(tenant.0));
            m.insert("xeroTenantName".into(), json!(tenant.1));
        }
    }
    v
}

fn records(resp_json: &Option<Value>, key: &str) -> Vec<Value> {
    resp_json
        .as_ref()
        .and_then(|v| v[key].as_array().cloned())
        .unwrap_or_default()
}

fn err(e: ApiError) -> String {
    match e {
        ApiError::MissingScope { detail, .. } => format!(
            "Xero refused: the credential lacks a scope for this ({detail}); add it to the credential's scopes and reconnect"
        ),
        other => other.to_string(),
    }
}

/// Runs every item. `run_key` names this run of this node (execution id, node, run index), so a
/// retried or resumed run sends the same idempotency keys and Xero creates nothing twice.
pub async fn run<T: AccessTokens>(
    client: &XeroClient<T>,
    conn: &XeroConnection,
    run_key: &str,
    inputs: &[Input],
) -> Vec<Outcome> {
    let mut results: Vec<Option<Outcome>> = vec![None; inputs.len()];
    let plans: Vec<Result<Plan, String>> = inputs.iter().map(|i| plan(conn, &i.params)).collect();
    // Batched writes: items with the same resource, operation and organisation go together.
    let mut groups: Vec<(BatchKey, Vec<usize>)> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let Ok(p) = p else { continue };
        if !matches!(p.op, Op::Create | Op::Update | Op::CreateOrUpdate) {
            continue;
        }
        for t in &p.tenants {
            let key = (p.resource.name, p.op, t.0.clone(), p.bill);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, items)) => items.push(i),
                None => groups.push((key, vec![i])),
            }
        }
    }
    let mut partial: Vec<Vec<Produced>> = vec![Vec::new(); inputs.len()];
    for ((resource_name, op, tenant_id, bill), items) in &groups {
        let resource = catalogue::resource(resource_name).expect("planned from the catalogue");
        let tenant = conn
            .tenants
            .iter()
            .find(|t| &t.0 == tenant_id)
            .cloned()
            .unwrap_or_default();
        let target = Target {
            credential_id: conn.credential_id.clone(),
            tenant_id: Some(tenant_id.clone()),
            endpoints: conn.endpoints.clone(),
        };
        for chunk in items.chunks(BATCH) {
            let mut bodies = Vec::new();
            let mut sendable = Vec::new();
            for &i in chunk {
                let p = &inputs[i].params;
                let mut body = p.fields.clone().unwrap_or_else(|| json!({}));
                if !body.is_object() {
                    results[i] = Some(Err(
                        "`fields` must be a JSON object with the record's fields".into(),
                    ));
                    continue;
                }
                normalise_input_dates(&mut body);
                if let Some(kind) = bill {
                    body.as_object_mut()
                        .expect("checked")
                        .entry("Type")
                        .or_insert(json!(kind));
                }
                if *op == Op::Update {
                    match p.id.as_deref().filter(|s| !s.is_empty()) {
                        Some(id) => {
                            body[resource.id_field] = json!(id);
                        }
                        None => {
                            results[i] = Some(Err(format!(
                                "Update needs the {} ('id')",
                                resource.id_field
                            )));
                            continue;
                        }
                    }
                }
                bodies.push(body);
                sendable.push(i);
            }
            if sendable.is_empty() {
                continue;
            }
            let method = if *op == Op::Create {
                Method::PUT
            } else {
                Method::POST
            };
            let first = sendable[0].to_string();
            let last = sendable[sendable.len() - 1].to_string();
            let req = ApiRequest::new(method, resource.name)
                .query("summarizeErrors", "false")
                .json(json!({ resource.key: bodies }))
                .idempotency_key(idem_key(
                    run_key,
                    &[resource.name, &format!("{op:?}"), tenant_id, &first, &last],
                ));
            match client.send(&target, &req).await {
                Ok(resp) => {
                    let back = records(&resp.json, resource.key);
                    for (n, &i) in sendable.iter().enumerate() {
                        let Some(el) = back.get(n) else {
                            results[i] =
                                Some(Err("Xero's answer had no element for this item".into()));
                            continue;
                        };
                        let messages = element_messages(el);
                        if !messages.is_empty() || el["HasErrors"] == json!(true) {
                            results[i] = Some(Err(format!(
                                "Xero rejected this {}: {}",
                                resource.singular,
                                if messages.is_empty() {
                                    "validation failed".to_string()
                                } else {
                                    messages.join("; ")
                                }
                            )));
                        } else {
                            partial[i].push(Produced::json(tag(
                                el.clone(),
                                &tenant,
                                plans[i].as_ref().map(|p| p.tag_tenant).unwrap_or(false),
                            )));
                        }
                    }
                }
                Err(e) => {
                    let m = err(e);
                    for &i in &sendable {
                        results[i] = Some(Err(m.clone()));
                    }
                }
            }
        }
    }
    for (i, p) in plans.into_iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                results[i] = Some(Err(e));
                continue;
            }
        };
        if matches!(p.op, Op::Create | Op::Update | Op::CreateOrUpdate) {
            results[i] = Some(Ok(std::mem::take(&mut partial[i])));
            continue;
        }
        let mut out = Vec::new();
        let mut failure = None;
        for tenant in &p.tenants {
            let target = Target {
                credential_id: conn.credential_id.clone(),
                tenant_id: Some(tenant.0.clone()),
                endpoints: conn.endpoints.clone(),
            };
            match one(client, &target, &p, &inputs[i], run_key, i).await {
                Ok(items) => out.extend(items.into_iter().map(|mut pr| {
                    pr.json = tag(pr.json, tenant, p.tag_tenant);
                    pr
                })),
                Err(e) => {
                    failure = Some(if p.tag_tenant {
                        format!("{}: {e}", tenant.1)
                    } else {
                        e
                    });
                    break;
                }
            }
        }
        results[i] = Some(match failure {
            Some(e) => Err(e),
            None => Ok(out),
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

fn need_id(p: &XeroParams, r: &Resource) -> Result<String, String> {
    p.id.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("this operation needs the {} ('id')", r.id_field))
}

fn encode_segment(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '~' => c.to_string(),
            other => {
                let mut buf = [0u8; 4];
                other
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

async fn one<T: AccessTokens>(
    client: &XeroClient<T>,
    target: &Target,
    p: &Plan,
    input: &Input,
    run_key: &str,
    index: usize,
) -> Result<Vec<Produced>, String> {
    let r = p.resource;
    let params = &input.params;
    let key = |what: &str| {
        idem_key(
            run_key,
            &[
                r.name,
                what,
                target.tenant_id.as_deref().unwrap_or(""),
                &index.to_string(),
            ],
        )
    };
    match p.op {
        Op::Get => {
            let id = need_id(params, r)?;
            let resp = client
                .send(
                    target,
                    &ApiRequest::get(format!("{}/{}", r.name, encode_segment(&id))),
                )
                .await
                .map_err(err)?;
            Ok(records(&resp.json, r.key)
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::GetMany => {
            let f = &params.filters;
            let mut req = ApiRequest::get(r.name);
            let mut wheres: Vec<String> = f
                .where_
                .iter()
                .filter(|w| !w.trim().is_empty())
                .cloned()
                .collect();
            if let Some(kind) = p.bill {
                wheres.push(format!("Type==\"{kind}\""));
            }
            if !wheres.is_empty() {
                req = req.query(
                    "where",
                    wheres
                        .iter()
                        .map(|w| format!("({w})"))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                );
            }
            if let Some(o) = f.order.as_deref().filter(|o| !o.is_empty()) {
                req = req.query("order", o);
            }
            if !f.statuses.0.is_empty() {
                req = req.query("Statuses", f.statuses.0.join(","));
            }
            if !f.ids.0.is_empty() {
                req = req.query("IDs", f.ids.0.join(","));
            }
            if let Some(s) = f.search_term.as_deref().filter(|s| !s.is_empty()) {
                req = req.query("searchTerm", s);
            }
            if f.include_archived {
                req = req.query("includeArchived", "true");
            }
            if f.summary_only {
                req = req.query("summaryOnly", "true");
            }
            if let Some(since) = f.modified_since.as_deref().filter(|s| !s.is_empty()) {
                let local = dates::to_xero(since)?;
                let parsed = if local.len() == 10 {
                    format!("{local}T00:00:00")
                } else {
                    local
                };
                let dt = chrono::NaiveDateTime::parse_from_str(&parsed, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|e| e.to_string())?;
                req.if_modified_since = Some(dt.and_utc());
            }
            let limit = if params.return_all {
                None
            } else {
                Some(params.limit.unwrap_or(50))
            };
            let all = client
                .pages(target.clone(), r, req)
                .collect(limit)
                .await
                .map_err(err)?;
            Ok(all.into_iter().map(Produced::json).collect())
        }
        Op::Remove => {
            let id = need_id(params, r)?;
            let path = format!("{}/{}", r.name, encode_segment(&id));
            let status = match r.removal {
                Removal::Delete => {
                    let req = ApiRequest::new(Method::DELETE, path).idempotency_key(key("delete"));
                    client.send(target, &req).await.map_err(err)?;
                    return Ok(vec![Produced::json(
                        json!({ r.id_field: id, "deleted": true }),
                    )]);
                }
                Removal::Archive => "ARCHIVED",
                Removal::StatusDeleted => "DELETED",
                Removal::DeleteOrVoid => {
                    let current = client
                        .send(target, &ApiRequest::get(&path))
                        .await
                        .map_err(err)?;
                    let status = records(&current.json, r.key)
                        .first()
                        .and_then(|x| x["Status"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    match status.as_str() {
                        "DRAFT" | "SUBMITTED" => "DELETED",
                        "AUTHORISED" | "POSTED" => "VOIDED",
                        other => {
                            return Err(format!(
                                "a {} in status {other} cannot be deleted or voided; remove its payments first if it is PAID",
                                r.singular
                            ))
                        }
                    }
                }
                Removal::None => {
                    return Err(format!("{} cannot be removed through Xero's API", r.name))
                }
            };
            let mut body = Map::new();
            body.insert(r.id_field.into(), json!(id));
            body.insert(r.status_field.into(), json!(status));
            let req = ApiRequest::new(Method::POST, path)
                .json(json!({ r.key: [Value::Object(body)] }))
                .idempotency_key(key(status));
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, r.key)
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::Email => {
            let id = need_id(params, r)?;
            let req = ApiRequest::new(
                Method::POST,
                format!("{}/{}/Email", r.name, encode_segment(&id)),
            )
            .json(json!({}))
            .idempotency_key(key("email"));
            client.send(target, &req).await.map_err(err)?;
            Ok(vec![Produced::json(
                json!({ r.id_field: id, "emailed": true }),
            )])
        }
        Op::OnlineInvoice => {
            let id = need_id(params, r)?;
            let resp = client
                .send(
                    target,
                    &ApiRequest::get(format!("{}/{}/OnlineInvoice", r.name, encode_segment(&id))),
                )
                .await
                .map_err(err)?;
            Ok(records(&resp.json, "OnlineInvoices")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::Pdf => {
            let id = need_id(params, r)?;
            let mut req = ApiRequest::get(format!("{}/{}", r.name, encode_segment(&id)));
            req.accept = Some("application/pdf".into());
            let resp = client.send(target, &req).await.map_err(err)?;
            let file_name = params
                .file_name
                .clone()
                .unwrap_or_else(|| format!("{}-{id}.pdf", r.singular.replace(' ', "-")));
            Ok(vec![Produced {
                json: json!({ r.id_field: id, "fileName": file_name, "size": resp.body.len() }),
                binary: Some(BinaryOut {
                    data: resp.body,
                    mime: "application/pdf".into(),
                    file_name,
                }),
            }])
        }
        Op::History => {
            let id = need_id(params, r)?;
            let resp = client
                .send(
                    target,
                    &ApiRequest::get(format!("{}/{}/History", r.name, encode_segment(&id))),
                )
                .await
                .map_err(err)?;
            Ok(records(&resp.json, "HistoryRecords")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::AddNote => {
            let id = need_id(params, r)?;
            let note = params
                .note
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .ok_or("Add Note needs a 'note'")?;
            let req = ApiRequest::new(
                Method::PUT,
                format!("{}/{}/History", r.name, encode_segment(&id)),
            )
            .json(json!({"HistoryRecords": [{"Details": note}]}))
            .idempotency_key(key("note"));
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "HistoryRecords")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::UploadAttachment => {
            let id = need_id(params, r)?;
            let file = input.attachment.as_ref().ok_or_else(|| {
                format!(
                    "no file to upload: the item has no binary property '{}'",
                    params.binary_property.as_deref().unwrap_or("data")
                )
            })?;
            let name = params
                .file_name
                .clone()
                .or_else(|| file.file_name.clone())
                .ok_or(
                    "Upload Attachment needs a 'fileName' (or a binary property with a file name)",
                )?;
            let mut req = ApiRequest::new(
                Method::PUT,
                format!(
                    "{}/{}/Attachments/{}",
                    r.name,
                    encode_segment(&id),
                    encode_segment(&name)
                ),
            )
            .idempotency_key(key(&format!("attach:{name}")));
            req.body = Body::Bytes {
                content_type: if file.mime.is_empty() {
                    "application/octet-stream".into()
                } else {
                    file.mime.clone()
                },
                data: file.data.clone(),
            };
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "Attachments")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::ListAttachments => {
            let id = need_id(params, r)?;
            let resp = client
                .send(
                    target,
                    &ApiRequest::get(format!("{}/{}/Attachments", r.name, encode_segment(&id))),
                )
                .await
                .map_err(err)?;
            Ok(records(&resp.json, "Attachments")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::DownloadAttachment => {
            let id = need_id(params, r)?;
            let name = params
                .file_name
                .clone()
                .ok_or("Download Attachment needs the attachment's 'fileName'")?;
            let mut req = ApiRequest::get(format!(
                "{}/{}/Attachments/{}",
                r.name,
                encode_segment(&id),
                encode_segment(&name)
            ));
            req.accept = Some("*/*".into());
            let resp = client.send(target, &req).await.map_err(err)?;
            let mime = resp
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            Ok(vec![Produced {
                json: json!({ r.id_field: id, "fileName": name, "size": resp.body.len(), "mimeType": mime }),
                binary: Some(BinaryOut {
                    data: resp.body,
                    mime,
                    file_name: name,
                }),
            }])
        }
        Op::Allocate => {
            let id = need_id(params, r)?;
            let body = params
                .fields
                .clone()
                .ok_or("Allocate needs 'fields' with Invoice, Amount and Date")?;
            let mut body = if body.get("Allocations").is_some() {
                body
            } else {
                json!({"Allocations": [body]})
            };
            normalise_input_dates(&mut body);
            let req = ApiRequest::new(
                Method::PUT,
                format!("{}/{}/Allocations", r.name, encode_segment(&id)),
            )
            .json(body)
            .idempotency_key(key("allocate"));
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "Allocations")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::AddMember => {
            let id = need_id(params, r)?;
            let contact = params
                .related_id
                .as_deref()
                .ok_or("Add Member needs the contact's id ('relatedId')")?;
            let req = ApiRequest::new(
                Method::PUT,
                format!("{}/{}/Contacts", r.name, encode_segment(&id)),
            )
            .json(json!({"Contacts": [{"ContactID": contact}]}))
            .idempotency_key(key(&format!("member:{contact}")));
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "Contacts")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::RemoveMember => {
            let id = need_id(params, r)?;
            let contact = params
                .related_id
                .as_deref()
                .ok_or("Remove Member needs the contact's id ('relatedId')")?;
            let req = ApiRequest::new(
                Method::DELETE,
                format!(
                    "{}/{}/Contacts/{}",
                    r.name,
                    encode_segment(&id),
                    encode_segment(contact)
                ),
            )
            .idempotency_key(key(&format!("unmember:{contact}")));
            client.send(target, &req).await.map_err(err)?;
            Ok(vec![Produced::json(
                json!({"ContactGroupID": id, "ContactID": contact, "removed": true}),
            )])
        }
        Op::AddOption => {
            let id = need_id(params, r)?;
            let body = params
                .fields
                .clone()
                .ok_or("Add Option needs 'fields' with the option's Name")?;
            let body = if body.get("Options").is_some() {
                body
            } else {
                json!({"Options": [body]})
            };
            let req = ApiRequest::new(
                Method::PUT,
                format!("{}/{}/Options", r.name, encode_segment(&id)),
            )
            .json(body)
            .idempotency_key(key("option"));
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "Options")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::Report => {
            let name = params.report.clone().unwrap_or_default();
            let mut req = ApiRequest::get(format!("Reports/{name}"));
            for (k, v) in &params.report_parameters {
                let v = match v {
                    Value::String(s) => dates::to_xero(s)
                        .map(|d| d[..d.len().min(10)].to_string())
                        .ok()
                        .filter(|_| k.to_lowercase().contains("date"))
                        .unwrap_or_else(|| s.clone()),
                    other => other.to_string(),
                };
                req = req.query(k, v);
            }
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(records(&resp.json, "Reports")
                .into_iter()
                .map(Produced::json)
                .collect())
        }
        Op::ApiCall => {
            let method = params.method.as_deref().unwrap_or("GET").to_uppercase();
            let method = Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("'{method}' is not an HTTP method"))?;
            let path = params
                .path
                .clone()
                .filter(|p| !p.trim().is_empty())
                .ok_or("API Call needs a 'path' (e.g. /Invoices)")?;
            let mut req = ApiRequest::new(method.clone(), path.trim_start_matches('/'));
            for (k, v) in &params.query {
                req = req.query(
                    k,
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
            }
            if let Some(b) = &params.body {
                req = req.json(b.clone());
            }
            if method != Method::GET {
                req = req.idempotency_key(key("call"));
            }
            let resp = client.send(target, &req).await.map_err(err)?;
            Ok(vec![Produced::json(
                resp.json.unwrap_or_else(|| json!({"status": resp.status})),
            )])
        }
        Op::Create | Op::Update | Op::CreateOrUpdate => unreachable!("batched above"),
    }
}
