//! Handlers for resource collections: lists with Xero's query semantics (`where`, `order`,
//! paging, `IDs`/`Statuses`/`ContactIDs`/`InvoiceNumbers`, `searchTerm`, `includeArchived`,
//! `summaryOnly`, `If-Modified-Since`), fetching one record by id or number, batch writes
//! (`PUT` creates, `POST` creates or updates, `summarizeErrors`, `Idempotency-Key`), real
//! deletes, and the journal log (`offset` paging).

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::ledger::{Ledger, Replay, Tx};
use super::model::{get, get_path, get_str, parse_instant};
use super::resources::{self, Kind, Resource, WriteCtx};
use super::{envelope, query, subresources, Call};
use crate::problem::Problem;
use crate::state::lock;

/// `GET /Journals[?offset=N]` (the 100 journals after number N) and `GET /Journals/{id|number}`.
pub(super) fn journals_list(call: &Call<'_>) -> Result<Response, Problem> {
    if call.method != Method::GET {
        return Err(Problem::MethodNotAllowed);
    }
    let ledger = lock(&call.ledger);
    if let Some(key) = call.segments.get(1) {
        let journal = ledger
            .journals
            .iter()
            .find(|j| {
                get_str(j, "JournalID").is_some_and(|id| id.eq_ignore_ascii_case(key))
                    || j["JournalNumber"]
                        .as_u64()
                        .map(|n| n.to_string())
                        .as_deref()
                        == Some(key.as_str())
            })
            .cloned()
            .ok_or(Problem::NotFound)?;
        return Ok(Json(envelope(
            &call.provider,
            call.now,
            "Journals",
            json!([journal]),
        ))
        .into_response());
    }
    let offset: u64 = match call.params.get("offset") {
        Some(o) => o.trim().parse().map_err(|_| {
            Problem::BadRequest(format!("offset must be a journal number, not '{o}'"))
        })?,
        None => 0,
    };
    let since = call
        .headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            DateTime::parse_from_rfc2822(v)
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| parse_instant(v))
        });
    let payments_only = call.params.flag("paymentsOnly");
    let page: Vec<Value> = ledger
        .journals
        .iter()
        .filter(|j| j["JournalNumber"].as_u64().is_some_and(|n| n > offset))
        .filter(|j| {
            since.is_none_or(|s| {
                get_str(j, "CreatedDateUTC")
                    .and_then(parse_instant)
                    .is_some_and(|c| c > s)
            })
        })
        .filter(|j| {
            !payments_only
                || get_str(j, "SourceType")
                    .is_some_and(|t| t.ends_with("PAYMENT") || t.starts_with("CASH"))
        })
        .take(100)
        .cloned()
        .collect();
    Ok(Json(envelope(
        &call.provider,
        call.now,
        "Journals",
        Value::Array(page),
    ))
    .into_response())
}

pub(super) fn lookup<'l>(ledger: &'l Ledger, resource: &Resource, key: &str) -> Option<&'l Value> {
    ledger.get(resource.name, key).or_else(|| {
        let field = resource.number_field?;
        ledger
            .records(resource.name)
            .find(|r| get_str(r, field).is_some_and(|n| n.eq_ignore_ascii_case(key)))
    })
}

/// Fields left out of list items by `summaryOnly=true`.
const SUMMARY_DROPS: &[&str] = &[
    "LineItems",
    "Payments",
    "CreditNotes",
    "Prepayments",
    "Overpayments",
    "Addresses",
    "Phones",
    "ContactPersons",
    "ContactGroups",
    "BankAccountDetails",
    "Allocations",
];

pub(super) fn list(call: &Call<'_>, resource: &Resource) -> Result<Response, Problem> {
    let params = &call.params;
    let ledger = lock(&call.ledger);
    let filter = params
        .get("where")
        .filter(|w| !w.trim().is_empty())
        .map(query::parse_where)
        .transpose()
        .map_err(|e| Problem::BadRequest(format!("The 'where' filter could not be parsed: {e}")))?;
    let order = params
        .get("order")
        .map(query::parse_order)
        .transpose()
        .map_err(|e| {
            Problem::BadRequest(format!("The 'order' parameter could not be parsed: {e}"))
        })?;
    let since = call
        .headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            DateTime::parse_from_rfc2822(v)
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| parse_instant(v))
        });
    let ids = params.list("IDs");
    let statuses = params.list("Statuses");
    let contact_ids = params.list("ContactIDs");
    let numbers = params.list("InvoiceNumbers");
    let search = params.get("searchTerm").map(str::to_lowercase);
    let include_archived = params.flag("includeArchived");
    let lower = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    let mut records: Vec<&Value> = ledger
        .records(resource.name)
        .filter(|r| {
            resource.kind != Kind::Contact
                || include_archived
                || ids.is_some()
                || get_str(r, "ContactStatus") != Some("ARCHIVED")
        })
        .filter(|r| {
            ids.as_ref()
                .is_none_or(|s| s.contains(&lower(get(r, resource.id_field))))
        })
        .filter(|r| {
            statuses.as_ref().is_none_or(|s| {
                resource
                    .status_field
                    .is_some_and(|f| s.contains(&lower(get(r, f))))
            })
        })
        .filter(|r| {
            contact_ids.as_ref().is_none_or(|s| {
                s.contains(&lower(get_path(r, &["Contact".into(), "ContactID".into()])))
            })
        })
        .filter(|r| {
            numbers.as_ref().is_none_or(|s| {
                resource
                    .number_field
                    .is_some_and(|f| s.contains(&lower(get(r, f))))
            })
        })
        .filter(|r| {
            since.is_none_or(|since| {
                get_str(r, "UpdatedDateUTC")
                    .and_then(parse_instant)
                    .is_some_and(|updated| updated > since)
            })
        })
        .filter(|r| {
            search.as_ref().is_none_or(|term| {
                resource.search.iter().any(|f| {
                    get_str(r, f).is_some_and(|v| v.to_lowercase().contains(term.as_str()))
                })
            })
        })
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    if let Some(order) = &order {
        query::sort(&mut records, order);
    }
    let mut pagination = None;
    if resource.paged {
        let page: usize = match params.get("page") {
            Some(p) => p.trim().parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                Problem::BadRequest(format!("page must be a positive number, not '{p}'"))
            })?,
            None => 1,
        };
        let page_size: usize = match params.get("pageSize") {
            Some(p) => p
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| {
                    Problem::BadRequest(format!("pageSize must be a positive number, not '{p}'"))
                })?
                .min(1000),
            None => 100,
        };
        let item_count = records.len();
        let page_count = item_count.div_ceil(page_size);
        records = records
            .into_iter()
            .skip((page - 1).saturating_mul(page_size))
            .take(page_size)
            .collect();
        pagination = Some(
            json!({"page": page, "pageSize": page_size, "pageCount": page_count, "itemCount": item_count}),
        );
    } else if let (true, Some(p)) = (resource.page_only, params.get("page")) {
        let page: usize = p.trim().parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
            Problem::BadRequest(format!("page must be a positive number, not '{p}'"))
        })?;
        records = records
            .into_iter()
            .skip((page - 1).saturating_mul(100))
            .take(100)
            .collect();
    }
    let summary_only = params.flag("summaryOnly");
    let items: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            if summary_only {
                if let Some(map) = r.as_object_mut() {
                    for key in SUMMARY_DROPS {
                        map.remove(*key);
                    }
                }
            }
            r
        })
        .collect();
    let mut body = envelope(&call.provider, call.now, resource.name, Value::Array(items));
    if let Some(p) = pagination {
        body.insert("pagination".into(), p);
    }
    Ok(Json(body).into_response())
}

pub(super) fn get_one(
    call: &Call<'_>,
    resource: &Resource,
    key: &str,
) -> Result<Response, Problem> {
    let ledger = lock(&call.ledger);
    let record = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    Ok(Json(envelope(
        &call.provider,
        call.now,
        resource.name,
        json!([record]),
    ))
    .into_response())
}

/// The elements of a write body: `{"Invoices":[…]}`, `[…]` or one bare object.
fn elements(body: &[u8], resource: &Resource) -> Result<Vec<Value>, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::BadRequest(format!("The request body is not valid JSON: {e}")))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(ref map) => match map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(resource.name))
        {
            Some((_, Value::Array(items))) => Ok(items.clone()),
            Some((_, item @ Value::Object(_))) => Ok(vec![item.clone()]),
            _ => Ok(vec![value]),
        },
        _ => Err(Problem::BadRequest(
            "The request body must be a JSON object or array".into(),
        )),
    }
}

/// Xero's 400 body for failed elements.
pub(super) fn validation_body(failed: Vec<Value>) -> Value {
    json!({
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": failed,
    })
}

pub(super) fn failed_element(input: &Value, errors: &[String]) -> Value {
    let mut element = match input {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    element.insert("HasErrors".into(), json!(true));
    element.insert("StatusAttributeString".into(), json!("ERROR"));
    element.insert(
        "ValidationErrors".into(),
        Value::Array(errors.iter().map(|m| json!({"Message": m})).collect()),
    );
    Value::Object(element)
}

pub(super) fn write(
    call: &Call<'_>,
    resource: &'static Resource,
    target: Option<&str>,
    create_only: bool,
) -> Result<Response, Problem> {
    if resource.kind == Kind::ReadOnly {
        return Err(Problem::MethodNotAllowed);
    }
    let idempotency = call
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if idempotency.as_ref().is_some_and(|k| k.len() > 128) {
        return Err(Problem::BadRequest(
            "Idempotency-Key must be 128 characters or less".into(),
        ));
    }
    let replay_key = idempotency.map(|k| format!("{}:{}", call.bearer.client_id, k));
    let mut ledger = lock(&call.ledger);
    if let Some(replay) = replay_key.as_ref().and_then(|k| ledger.idempotency.get(k)) {
        let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
        return Ok((status, Json(replay.body.clone())).into_response());
    }
    let items = elements(&call.body, resource)?;
    if items.is_empty() {
        return Err(Problem::BadRequest(format!(
            "No {} were supplied",
            resource.name
        )));
    }
    let summarize = !call
        .params
        .get("summarizeErrors")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let ctx = WriteCtx {
        now: call.now,
        base_currency: get_str(&ledger.organisation, "BaseCurrency")
            .unwrap_or("NZD")
            .to_owned(),
    };
    if let Some(key) = target {
        if lookup(&ledger, resource, key).is_none() {
            return Err(Problem::NotFound);
        }
    }
    let target_id = target.and_then(|key| {
        lookup(&ledger, resource, key)
            .and_then(|r| get_str(r, resource.id_field))
            .map(str::to_owned)
    });
    let mut tx = Tx::new(&mut ledger);
    let mut results: Vec<Result<String, Value>> = Vec::new();
    for input in &items {
        let existing_id = if let Some(id) = &target_id {
            Some(id.clone())
        } else if create_only {
            None
        } else {
            let by_id = get_str(input, resource.id_field).filter(|s| !s.is_empty());
            match by_id {
                Some(id) => match tx.get(resource.name, id) {
                    Some(_) => Some(id.to_owned()),
                    None => {
                        results.push(Err(failed_element(
                            input,
                            &[format!(
                                "The {} {id} could not be found.",
                                resource.id_field
                            )],
                        )));
                        continue;
                    }
                },
                None => resource
                    .number_field
                    .filter(|_| resource.kind != Kind::Contact)
                    .and_then(|f| get_str(input, f).map(|n| (f, n)))
                    .and_then(|(f, n)| {
                        tx.find(resource.name, |r| {
                            get_str(r, f).is_some_and(|x| x.eq_ignore_ascii_case(n))
                        })
                    })
                    .and_then(|r| get_str(r, resource.id_field).map(str::to_owned)),
            }
        };
        let existing = existing_id
            .as_ref()
            .and_then(|id| tx.get(resource.name, id).cloned());
        let savepoint = tx.savepoint();
        match resources::apply(resource, &mut tx, existing.as_ref(), input, &ctx) {
            Ok(record) => {
                let id = get_str(&record, resource.id_field)
                    .unwrap_or_default()
                    .to_owned();
                tx.stage(resource.name, &id, record);
                results.push(Ok(id));
            }
            Err(errors) => {
                tx.rollback_to(savepoint);
                results.push(Err(failed_element(input, &errors)));
            }
        }
    }
    let any_failed = results.iter().any(Result::is_err);
    let (status, body) = if any_failed && summarize {
        drop(tx);
        let failed: Vec<Value> = results.into_iter().filter_map(Result::err).collect();
        (StatusCode::BAD_REQUEST, validation_body(failed))
    } else {
        let written = tx.commit();
        let items: Vec<Value> = results
            .into_iter()
            .map(|r| match r {
                Ok(id) => {
                    let mut record = ledger
                        .get(resource.name, &id)
                        .cloned()
                        .unwrap_or(Value::Null);
                    if !summarize {
                        if let Some(map) = record.as_object_mut() {
                            map.insert("StatusAttributeString".into(), json!("OK"));
                        }
                    }
                    record
                }
                Err(failed) => failed,
            })
            .collect();
        subresources::publish(call, &mut ledger, written);
        (
            StatusCode::OK,
            Value::Object(envelope(
                &call.provider,
                call.now,
                resource.name,
                Value::Array(items),
            )),
        )
    };
    if let Some(key) = replay_key {
        ledger.idempotency.insert(
            key,
            Replay {
                status: status.as_u16(),
                body: body.clone(),
                at: call.now,
            },
        );
    }
    Ok((status, Json(body)).into_response())
}

pub(super) fn delete(call: &Call<'_>, resource: &Resource, key: &str) -> Result<Response, Problem> {
    let mut ledger = lock(&call.ledger);
    let record = lookup(&ledger, resource, key)
        .cloned()
        .ok_or(Problem::NotFound)?;
    let id = get_str(&record, resource.id_field)
        .unwrap_or_default()
        .to_owned();
    if resource.kind == Kind::Account {
        let code = get_str(&record, "Code").unwrap_or_default().to_owned();
        let system = get(&record, "SystemAccount").is_some_and(|s| !s.is_null());
        let used = !code.is_empty()
            && ledger
                .records("Invoices")
                .chain(ledger.records("CreditNotes"))
                .any(|i| {
                    get(i, "LineItems")
                        .and_then(Value::as_array)
                        .is_some_and(|lines| {
                            lines
                                .iter()
                                .any(|l| get_str(l, "AccountCode") == Some(code.as_str()))
                        })
                });
        if system || used {
            let message = if system {
                "System accounts cannot be deleted."
            } else {
                "This account has been used in transactions and cannot be deleted. Archive it instead."
            };
            return Err(Problem::Validation(validation_body(vec![failed_element(
                &record,
                &[message.to_owned()],
            )])));
        }
    }
    ledger.remove(resource.name, &id);
    if resource.kind == Kind::Item {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut deleted = record;
    if let Some(map) = deleted.as_object_mut() {
        map.insert("Status".into(), json!("DELETED"));
    }
    Ok(Json(envelope(
        &call.provider,
        call.now,
        resource.name,
        json!([deleted]),
    ))
    .into_response())
}
