//! Sub-resources and side effects of writes: webhook events and history records after a commit,
//! `…/{id}/History`, `…/{id}/Attachments`, credit note `Allocations`, contact group members,
//! tracking options, and the invoice extras `Email` and `OnlineInvoice`.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::handlers::{failed_element, lookup, validation_body};
use super::ledger::{Attachment, Ledger, Tx, Written};
use super::model::{get, get_path, get_str, ms_date};
use super::resources::{self, Resource, WriteCtx};
use super::{envelope, Call};
use crate::problem::Problem;
use crate::state::lock;
use crate::webhooks::Event;

/// After a commit: journals for what now posts differently, webhook events for contacts,
/// invoices and credit notes, and history records.
pub(super) fn publish(call: &Call<'_>, ledger: &mut Ledger, written: Vec<Written>) {
    for w in written {
        let Some(resource) = resources::find(w.collection) else {
            continue;
        };
        if let Some(after) = ledger.get(w.collection, &w.id).cloned() {
            super::journals::record_change(
                ledger,
                w.collection,
                w.before.as_ref(),
                &after,
                call.now,
            );
        }
        if let Some(category) = resource.webhook {
            call.sandbox.outbox.push(Event {
                tenant_id: call.tenant,
                category,
                event_type: if w.created { "CREATE" } else { "UPDATE" },
                resource: w.collection,
                resource_id: w.id.clone(),
                at: call.now,
            });
        }
        if resource.history {
            let record = ledger.get(w.collection, &w.id);
            let status = record
                .and_then(|r| get_str(r, "Status").or_else(|| get_str(r, "ContactStatus")))
                .map(str::to_owned);
            let changes = if w.created {
                "Created"
            } else if status != w.previous_status {
                match status.as_deref() {
                    Some("AUTHORISED") => "Approved",
                    Some("VOIDED") => "Voided",
                    Some("DELETED") => "Deleted",
                    Some("PAID") => "Paid",
                    Some("ARCHIVED") => "Archived",
                    Some("POSTED") => "Posted",
                    _ => "Edited",
                }
            } else {
                "Edited"
            };
            let details = record.map(history_details).unwrap_or_default();
            let entry = history_entry(call, changes, &details);
            ledger
                .history
                .entry(w.id.to_ascii_lowercase())
                .or_default()
                .push(entry);
        }
    }
}

/// "INV-0042 to Ridgeway University for 230.00", or the record's name.
fn history_details(record: &Value) -> String {
    let number = [
        "InvoiceNumber",
        "CreditNoteNumber",
        "Code",
        "Name",
        "Narration",
        "Reference",
    ]
    .iter()
    .find_map(|k| get_str(record, k).filter(|v| !v.is_empty()));
    let contact = get_path(record, &["Contact".into(), "Name".into()]).and_then(Value::as_str);
    let total = get(record, "Total")
        .or_else(|| get(record, "Amount"))
        .and_then(Value::as_f64);
    match (number, contact, total) {
        (Some(n), Some(c), Some(t)) => format!("{n} to {c} for {t:.2}"),
        (Some(n), _, Some(t)) => format!("{n} for {t:.2}"),
        (Some(n), _, None) => n.to_owned(),
        (None, _, Some(t)) => format!("{t:.2}"),
        _ => String::new(),
    }
}

fn history_entry(call: &Call<'_>, changes: &str, details: &str) -> Value {
    json!({
        "Changes": changes,
        "DateUTCString": call.now.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "DateUTC": ms_date(call.now),
        "User": format!("{} (via API)", call.provider),
        "Details": details,
    })
}

pub(super) fn history(
    call: &Call<'_>,
    resource: &Resource,
    key: &str,
) -> Result<Response, Problem> {
    let mut ledger = lock(&call.ledger);
    let id = lookup(&ledger, resource, key)
        .and_then(|r| get_str(r, resource.id_field))
        .map(str::to_ascii_lowercase)
        .ok_or(Problem::NotFound)?;
    match call.method {
        Method::GET => {
            let records = ledger.history.get(&id).cloned().unwrap_or_default();
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "HistoryRecords",
                Value::Array(records),
            ))
            .into_response())
        }
        Method::PUT | Method::POST => {
            let notes = match serde_json::from_slice::<Value>(&call.body) {
                Ok(body) => get(&body, "HistoryRecords")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_else(|| vec![body]),
                Err(e) => {
                    return Err(Problem::BadRequest(format!(
                        "The request body is not valid JSON: {e}"
                    )))
                }
            };
            let mut added = Vec::new();
            for note in notes {
                let Some(details) = get_str(&note, "Details").filter(|d| !d.trim().is_empty())
                else {
                    return Err(Problem::Validation(validation_body(vec![failed_element(
                        &note,
                        &["The Details of a history note are required.".to_owned()],
                    )])));
                };
                if details.chars().count() > 450 {
                    return Err(Problem::Validation(validation_body(vec![failed_element(
                        &note,
                        &["A history note must be 450 characters or less.".to_owned()],
                    )])));
                }
                added.push(history_entry(call, "Note", details));
            }
            ledger
                .history
                .entry(id)
                .or_default()
                .extend(added.iter().cloned());
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "HistoryRecords",
                Value::Array(added),
            ))
            .into_response())
        }
        _ => Err(Problem::MethodNotAllowed),
    }
}

pub(super) fn allocations(call: &Call<'_>, key: &str) -> Result<Response, Problem> {
    if !matches!(call.method, Method::PUT | Method::POST) {
        return Err(Problem::MethodNotAllowed);
    }
    let resource = resources::find("CreditNotes").ok_or(Problem::NotFound)?;
    let mut ledger = lock(&call.ledger);
    let credit_id = lookup(&ledger, resource, key)
        .and_then(|r| get_str(r, "CreditNoteID"))
        .map(str::to_owned)
        .ok_or(Problem::NotFound)?;
    let body: Value = serde_json::from_slice(&call.body)
        .map_err(|e| Problem::BadRequest(format!("The request body is not valid JSON: {e}")))?;
    let items = match get(&body, "Allocations") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![body],
    };
    let ctx = WriteCtx {
        now: call.now,
        base_currency: get_str(&ledger.organisation, "BaseCurrency")
            .unwrap_or("NZD")
            .to_owned(),
    };
    let mut tx = Tx::new(&mut ledger);
    let mut created = Vec::new();
    let mut failed = Vec::new();
    for item in &items {
        match super::rules::documents::allocate_credit(&mut tx, &credit_id, item, &ctx) {
            Ok(allocation) => created.push(allocation),
            Err(errors) => failed.push(failed_element(item, &errors)),
        }
    }
    if !failed.is_empty() {
        return Err(Problem::Validation(validation_body(failed)));
    }
    let written = tx.commit();
    publish(call, &mut ledger, written);
    Ok(Json(envelope(
        &call.provider,
        call.now,
        "Allocations",
        Value::Array(created),
    ))
    .into_response())
}

fn attachment_json(call: &Call<'_>, resource: &Resource, id: &str, a: &Attachment) -> Value {
    json!({
        "AttachmentID": a.id,
        "FileName": a.file_name,
        "Url": format!("{}/api.xro/2.0/{}/{id}/Attachments/{}", call.sandbox.base_url, resource.name,
            url::form_urlencoded::byte_serialize(a.file_name.as_bytes()).collect::<String>()),
        "MimeType": a.mime_type,
        "ContentLength": a.content.len(),
        "IncludeOnline": a.include_online,
    })
}

pub(super) fn attachments(
    call: &Call<'_>,
    resource: &'static Resource,
    key: &str,
    file: Option<&str>,
) -> Result<Response, Problem> {
    let mut ledger = lock(&call.ledger);
    let record = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    let id = get_str(&record, resource.id_field)
        .unwrap_or_default()
        .to_owned();
    let slot = id.to_ascii_lowercase();
    match (&call.method, file) {
        (&Method::GET, None) => {
            let list: Vec<Value> = ledger
                .attachments
                .get(&slot)
                .into_iter()
                .flatten()
                .map(|a| attachment_json(call, resource, &id, a))
                .collect();
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "Attachments",
                Value::Array(list),
            ))
            .into_response())
        }
        (&Method::GET, Some(name)) => {
            let found = ledger
                .attachments
                .get(&slot)
                .into_iter()
                .flatten()
                .find(|a| {
                    a.file_name.eq_ignore_ascii_case(name)
                        || a.id.to_string().eq_ignore_ascii_case(name)
                });
            let attachment = found.ok_or(Problem::NotFound)?;
            let mut response = attachment.content.clone().into_response();
            if let Ok(v) = HeaderValue::from_str(&attachment.mime_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            Ok(response)
        }
        (&Method::PUT | &Method::POST, Some(name)) => {
            if name.trim().is_empty() || name.len() > 100 {
                return Err(Problem::BadRequest(
                    "The attachment file name must be 1 to 100 characters".into(),
                ));
            }
            if call.body.is_empty() {
                return Err(Problem::BadRequest("The attachment has no content".into()));
            }
            let mime_type = call
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let attachment = Attachment {
                id: crate::state::new_uuid(),
                file_name: name.to_owned(),
                mime_type,
                include_online: call.params.flag("IncludeOnline"),
                content: call.body.to_vec(),
            };
            let body = attachment_json(call, resource, &id, &attachment);
            let list = ledger.attachments.entry(slot).or_default();
            list.retain(|a| !a.file_name.eq_ignore_ascii_case(name));
            list.push(attachment);
            let mut updated = record;
            if let Some(map) = updated.as_object_mut() {
                if map.contains_key("HasAttachments") {
                    map.insert("HasAttachments".into(), json!(true));
                }
            }
            ledger.upsert(resource.name, &id, updated);
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "Attachments",
                json!([body]),
            ))
            .into_response())
        }
        _ => Err(Problem::MethodNotAllowed),
    }
}

pub(super) fn email_invoice(call: &Call<'_>, key: &str) -> Result<Response, Problem> {
    if call.method != Method::POST {
        return Err(Problem::MethodNotAllowed);
    }
    let resource = resources::find("Invoices").ok_or(Problem::NotFound)?;
    let mut ledger = lock(&call.ledger);
    let mut invoice = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    let sendable = get_str(&invoice, "Type") == Some("ACCREC")
        && matches!(
            get_str(&invoice, "Status"),
            Some("AUTHORISED" | "PAID" | "SUBMITTED")
        );
    if !sendable {
        return Err(Problem::Validation(validation_body(vec![failed_element(
            &json!({}),
            &["Only approved sales invoices can be emailed.".to_owned()],
        )])));
    }
    let id = get_str(&invoice, "InvoiceID")
        .unwrap_or_default()
        .to_owned();
    if let Some(map) = invoice.as_object_mut() {
        map.insert("SentToContact".into(), json!(true));
    }
    ledger.upsert("Invoices", &id, invoice);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn online_invoice(call: &Call<'_>, key: &str) -> Result<Response, Problem> {
    let resource = resources::find("Invoices").ok_or(Problem::NotFound)?;
    let ledger = lock(&call.ledger);
    let invoice = lookup(&ledger, resource, key).ok_or(Problem::NotFound)?;
    let id = get_str(invoice, "InvoiceID").unwrap_or_default();
    let url = format!("{}/online-invoice/{id}", call.sandbox.base_url);
    Ok(Json(envelope(
        &call.provider,
        call.now,
        "OnlineInvoices",
        json!([{"OnlineInvoiceUrl": url}]),
    ))
    .into_response())
}

/// `PUT /ContactGroups/{id}/Contacts` adds members; `DELETE …/Contacts[/{ContactID}]` removes
/// one or all. Each member contact lists its groups in `ContactGroups`.
pub(super) fn group_members(
    call: &Call<'_>,
    key: &str,
    contact: Option<&str>,
) -> Result<Response, Problem> {
    let resource = resources::find("ContactGroups").ok_or(Problem::NotFound)?;
    let mut ledger = lock(&call.ledger);
    let mut group = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    let group_id = get_str(&group, "ContactGroupID")
        .unwrap_or_default()
        .to_owned();
    let summary = json!({"ContactGroupID": group_id, "Name": get(&group, "Name"), "Status": get(&group, "Status")});
    let mut members: Vec<Value> = get(&group, "Contacts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let member_id = |m: &Value| get_str(m, "ContactID").map(str::to_ascii_lowercase);
    let (removed, added, response) = match (&call.method, contact) {
        (&Method::PUT | &Method::POST, None) => {
            let body: Value = serde_json::from_slice(&call.body).map_err(|e| {
                Problem::BadRequest(format!("The request body is not valid JSON: {e}"))
            })?;
            let wanted = get(&body, "Contacts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_else(|| vec![body]);
            let mut added = Vec::new();
            for item in &wanted {
                let Some(found) =
                    get_str(item, "ContactID").and_then(|id| ledger.get("Contacts", id))
                else {
                    return Err(Problem::Validation(validation_body(vec![failed_element(
                        item,
                        &["The contact could not be found.".to_owned()],
                    )])));
                };
                let entry =
                    json!({"ContactID": get(found, "ContactID"), "Name": get(found, "Name")});
                if !members.iter().any(|m| member_id(m) == member_id(&entry)) {
                    members.push(entry.clone());
                }
                added.push(entry);
            }
            let body = Json(envelope(
                &call.provider,
                call.now,
                "Contacts",
                Value::Array(added.clone()),
            ))
            .into_response();
            (Vec::new(), added, body)
        }
        (&Method::DELETE, None) => (
            std::mem::take(&mut members),
            Vec::new(),
            StatusCode::NO_CONTENT.into_response(),
        ),
        (&Method::DELETE, Some(id)) => {
            let before = members.len();
            let (gone, kept): (Vec<Value>, Vec<Value>) = members
                .into_iter()
                .partition(|m| member_id(m).as_deref() == Some(id.to_ascii_lowercase().as_str()));
            members = kept;
            if members.len() == before {
                return Err(Problem::NotFound);
            }
            (gone, Vec::new(), StatusCode::NO_CONTENT.into_response())
        }
        _ => return Err(Problem::MethodNotAllowed),
    };
    if let Some(map) = group.as_object_mut() {
        map.insert("Contacts".into(), Value::Array(members));
    }
    ledger.upsert("ContactGroups", &group_id, group);
    for (member, joining) in added
        .iter()
        .map(|m| (m, true))
        .chain(removed.iter().map(|m| (m, false)))
    {
        let Some(id) = get_str(member, "ContactID") else {
            continue;
        };
        let Some(mut record) = ledger.get("Contacts", id).cloned() else {
            continue;
        };
        if let Some(Value::Array(groups)) = record.as_object_mut().and_then(|m| {
            m.entry("ContactGroups").or_insert(json!([]));
            m.get_mut("ContactGroups")
        }) {
            groups.retain(|g| get_str(g, "ContactGroupID") != Some(group_id.as_str()));
            if joining {
                groups.push(summary.clone());
            }
        }
        ledger.upsert("Contacts", id, record);
    }
    Ok(response)
}

/// `PUT /TrackingCategories/{id}/Options` adds an option (`{"Name"}`); `POST …/Options/{OptionID}`
/// renames or archives one; `DELETE …/Options/{OptionID}` removes it.
pub(super) fn tracking_options(
    call: &Call<'_>,
    key: &str,
    option: Option<&str>,
) -> Result<Response, Problem> {
    let resource = resources::find("TrackingCategories").ok_or(Problem::NotFound)?;
    let mut ledger = lock(&call.ledger);
    let mut category = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    let category_id = get_str(&category, "TrackingCategoryID")
        .unwrap_or_default()
        .to_owned();
    let mut options: Vec<Value> = get(&category, "Options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let body = || -> Result<Value, Problem> {
        serde_json::from_slice(&call.body)
            .map_err(|e| Problem::BadRequest(format!("The request body is not valid JSON: {e}")))
    };
    let invalid = |input: &Value, message: String| {
        Problem::Validation(validation_body(vec![failed_element(input, &[message])]))
    };
    let index = |options: &[Value], id: &str| {
        options.iter().position(|o| {
            get_str(o, "TrackingOptionID").is_some_and(|x| x.eq_ignore_ascii_case(id))
        })
    };
    let result = match (&call.method, option) {
        (&Method::PUT, None) => {
            let input = body()?;
            let items = get(&input, "Options")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_else(|| vec![input.clone()]);
            let mut added = Vec::new();
            for item in items {
                let name = get_str(&item, "Name")
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(invalid(
                        &item,
                        "A tracking option needs a Name of 1 to 100 characters.".into(),
                    ));
                }
                if options
                    .iter()
                    .any(|o| get_str(o, "Name").is_some_and(|n| n.eq_ignore_ascii_case(&name)))
                {
                    return Err(invalid(
                        &item,
                        format!("The tracking option {name} already exists."),
                    ));
                }
                let created = json!({"TrackingOptionID": crate::state::new_uuid(), "Name": name, "Status": "ACTIVE"});
                options.push(created.clone());
                added.push(created);
            }
            Json(envelope(
                &call.provider,
                call.now,
                "Options",
                Value::Array(added),
            ))
            .into_response()
        }
        (&Method::POST, Some(id)) => {
            let input = body()?;
            let i = index(&options, id).ok_or(Problem::NotFound)?;
            if let (Some(map), Some(name)) = (options[i].as_object_mut(), get_str(&input, "Name")) {
                map.insert("Name".into(), json!(name));
            }
            if let (Some(map), Some(status)) =
                (options[i].as_object_mut(), get_str(&input, "Status"))
            {
                map.insert("Status".into(), json!(status.to_ascii_uppercase()));
            }
            Json(envelope(
                &call.provider,
                call.now,
                "Options",
                json!([options[i].clone()]),
            ))
            .into_response()
        }
        (&Method::DELETE, Some(id)) => {
            let i = index(&options, id).ok_or(Problem::NotFound)?;
            let mut removed = options.remove(i);
            removed["Status"] = json!("DELETED");
            Json(envelope(
                &call.provider,
                call.now,
                "Options",
                json!([removed]),
            ))
            .into_response()
        }
        _ => return Err(Problem::MethodNotAllowed),
    };
    if let Some(map) = category.as_object_mut() {
        map.insert("Options".into(), Value::Array(options));
    }
    ledger.upsert("TrackingCategories", &category_id, category);
    Ok(result)
}
