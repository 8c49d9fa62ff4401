//! The Accounting API under `/api.xro/2.0`, stateful per organisation.
//!
//! Every call goes through the same gate, in Xero's order: bearer token (401, `TokenExpired`),
//! `xero-tenant-id` connected to the token's user and app (403), scopes broad or granular (401
//! `insufficient_scope`), rate limits (429), injected faults, then the resource. Paths are
//! matched case-insensitively. Bodies are JSON when the client sends `Accept: application/json`
//! and XML otherwise (Xero's default). Responses wrap arrays in Xero's envelope with `/Date(…)/` dates;
//! every admitted call carries `X-DayLimit-Remaining`, `X-MinLimit-Remaining` and
//! `X-AppMinLimit-Remaining` while limits are on.
//!
//! Submodules: [`ledger`] (records and transactions), [`model`] (wire helpers), [`query`]
//! (`where`/`order`), [`resources`] (resource table and write rules), [`reports`] (P&L, balance
//! sheet, trial balance), `subresources` (history, attachments, allocations, webhook events).
//! Documented resources that are not emulated answer 501.

pub mod journals;
pub mod ledger;
pub mod model;
mod pdf;
pub mod query;
pub mod reports;
pub mod resources;
pub mod rules;
mod subresources;
mod xml;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use self::ledger::{Ledger, Replay, Tx};
use self::model::{get, get_path, get_str, ms_date, parse_instant};
use self::resources::{Kind, Resource, WriteCtx};
use crate::faults;
use crate::identity::{bearer, Bearer};
use crate::limits::{Refusal, Remaining};
use crate::problem::Problem;
use crate::scopes::Access;
use crate::state::{lock, Sandbox};

/// Largest request body (attachments); Xero caps other POST bodies at 3.5 MB.
const MAX_BODY: usize = 25 * 1024 * 1024;

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/api.xro/2.0/{*rest}", any(dispatch))
        .route("/API.XRO/2.0/{*rest}", any(dispatch))
        .route("/Api.xro/2.0/{*rest}", any(dispatch))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Query parameters with case-insensitive names.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn list(&self, name: &str) -> Option<HashSet<String>> {
        self.get(name).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }
}

/// What a path addresses.
enum Target {
    Resource(&'static Resource),
    Organisation,
    Journals,
    InvoiceReminders,
    Report(&'static str, Access),
    NotEmulated(&'static str, Access),
}

const REPORTS_BROAD: &str = "accounting.reports.read";

/// Reports: path name and granular scope.
const REPORTS: &[(&str, &str)] = &[
    ("ProfitAndLoss", "accounting.reports.profitandloss.read"),
    ("BalanceSheet", "accounting.reports.balancesheet.read"),
    ("TrialBalance", "accounting.reports.trialbalance.read"),
    ("BankSummary", "accounting.reports.banksummary.read"),
    (
        "ExecutiveSummary",
        "accounting.reports.executivesummary.read",
    ),
    ("BudgetSummary", "accounting.reports.budgetsummary.read"),
    ("AgedPayablesByContact", "accounting.reports.aged.read"),
    ("AgedReceivablesByContact", "accounting.reports.aged.read"),
    ("TenNinetyNine", "accounting.reports.tenninetynine.read"),
];

fn route(segments: &[String]) -> Option<Target> {
    let first = segments.first()?;
    if let Some(resource) = resources::find(first) {
        return Some(Target::Resource(resource));
    }
    if first.eq_ignore_ascii_case("Organisation") || first.eq_ignore_ascii_case("Organisations") {
        return Some(Target::Organisation);
    }
    if first.eq_ignore_ascii_case("Journals") {
        return Some(Target::Journals);
    }
    if first.eq_ignore_ascii_case("InvoiceReminders") {
        return Some(Target::InvoiceReminders);
    }
    if first.eq_ignore_ascii_case("Reports") {
        let name = segments.get(1).map(String::as_str).unwrap_or("");
        return Some(
            match REPORTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((n, granular)) => Target::Report(n, Access::new(REPORTS_BROAD, granular)),
                None => Target::NotEmulated(
                    "Reports",
                    Access::new(REPORTS_BROAD, "accounting.reports.taxreports.read"),
                ),
            },
        );
    }
    resources::NOT_EMULATED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(first))
        .map(|(n, access)| Target::NotEmulated(n, *access))
}

/// The template of a call for the admin counters, e.g. `GET /api.xro/2.0/Invoices/{id}`.
fn endpoint_key(method: &Method, segments: &[String], target: Option<&Target>) -> String {
    let name = match target {
        Some(Target::Resource(r)) => r.name.to_owned(),
        Some(Target::Organisation) => "Organisation".to_owned(),
        Some(Target::Journals) => "Journals".to_owned(),
        Some(Target::InvoiceReminders) => "InvoiceReminders".to_owned(),
        Some(Target::Report(_, _)) => "Reports".to_owned(),
        Some(Target::NotEmulated(n, _)) => (*n).to_owned(),
        None => segments.first().cloned().unwrap_or_default(),
    };
    let mut key = format!("{method} /api.xro/2.0/{name}");
    for (i, segment) in segments.iter().enumerate().skip(1) {
        let report_name = matches!(target, Some(Target::Report(_, _))) && i == 1;
        if i == 1 && !report_name {
            key.push_str("/{id}");
        } else {
            key.push('/');
            key.push_str(segment);
        }
    }
    key
}

/// One admitted call.
pub(super) struct Call<'a> {
    sandbox: &'a Sandbox,
    method: Method,
    segments: Vec<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
    ledger: Arc<Mutex<Ledger>>,
    tenant: Uuid,
    provider: String,
    bearer: Bearer,
    now: DateTime<Utc>,
}

async fn dispatch(
    State(sandbox): State<Arc<Sandbox>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let rest = path.get("/api.xro/2.0/".len()..).unwrap_or("");
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| s.to_owned())
        })
        .collect();
    let target = route(&segments);
    sandbox.count(endpoint_key(&method, &segments, target.as_ref()));
    let Some(target) = target else {
        return Problem::NotFound.into_response();
    };
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let (tenant, ledger, provider) = match connected_tenant(&sandbox, &headers, &bearer) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
    let attachments = segments
        .get(2)
        .is_some_and(|s| s.eq_ignore_ascii_case("Attachments"));
    let access = match &target {
        Target::Resource(_) if attachments => {
            Access::new("accounting.attachments", "accounting.attachments")
        }
        Target::Resource(r) => r.access,
        Target::Organisation => Access::new("accounting.settings", "accounting.settings"),
        Target::Journals => Access::new("accounting.journals.read", "accounting.journals.read"),
        Target::InvoiceReminders => Access::new("accounting.settings", "accounting.settings"),
        Target::Report(_, access) | Target::NotEmulated(_, access) => *access,
    };
    let read = method == Method::GET;
    if !access.covered_by(&bearer.scopes, read) {
        return Problem::InsufficientScope(access.describe(read)).into_response();
    }
    let now = sandbox.clock.now();
    let permit = match sandbox.limits.admit(tenant, &bearer.client_id, now) {
        Ok(permit) => permit,
        Err(refusal) => return too_many(refusal),
    };
    if let Some(effect) = faults::effect_for(&sandbox, method.as_str(), &path) {
        if let Some(response) = faults::apply(effect).await {
            return with_limits(response, permit.remaining);
        }
    }
    let call = Call {
        sandbox: &sandbox,
        method,
        segments,
        params: Params::parse(uri.query()),
        headers,
        body,
        ledger,
        tenant,
        provider,
        bearer,
        now,
    };
    let wants_json = call
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"));
    let response = match handle(&call, &target) {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    };
    let response = if wants_json {
        response
    } else {
        as_xml(response).await
    };
    with_limits(response, permit.remaining)
}

/// Xero answers in XML unless the client asks for JSON: success and validation bodies are
/// re-rendered; authentication problems stay JSON, as Xero's do.
async fn as_xml(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let status = response.status();
    if !is_json || !(status.is_success() || status == StatusCode::BAD_REQUEST) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "response body unreadable",
        )
            .into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(xml::render(&value)))
}

fn connected_tenant(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    bearer: &Bearer,
) -> Result<(Uuid, Arc<Mutex<Ledger>>, String), Problem> {
    let tenant = headers
        .get("xero-tenant-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
        .ok_or_else(|| Problem::Forbidden("AuthenticationUnsuccessful".into()))?;
    let world = lock(&sandbox.world);
    let connected = world.connections.iter().any(|c| {
        c.tenant_id == tenant && c.client_id == bearer.client_id && c.user_id == bearer.user_id
    });
    let org = world.org(tenant).filter(|_| connected);
    let Some(org) = org else {
        return Err(Problem::Forbidden("AuthenticationUnsuccessful".into()));
    };
    let provider = world
        .app(&bearer.client_id)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    Ok((tenant, org.ledger.clone(), provider))
}

fn set_header(response: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(name, v);
    }
}

fn with_limits(mut response: Response, remaining: Option<Remaining>) -> Response {
    if let Some(r) = remaining {
        set_header(&mut response, "x-daylimit-remaining", r.day.to_string());
        set_header(&mut response, "x-minlimit-remaining", r.minute.to_string());
        set_header(
            &mut response,
            "x-appminlimit-remaining",
            r.app_minute.to_string(),
        );
    }
    response
}

fn too_many(refusal: Refusal) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"Title": "Too Many Requests", "Status": 429,
            "Detail": format!("Rate limit exceeded: {}", refusal.problem.header_value())})),
    )
        .into_response();
    set_header(
        &mut response,
        "x-rate-limit-problem",
        refusal.problem.header_value().to_owned(),
    );
    if let Some(seconds) = refusal.retry_after {
        set_header(&mut response, "retry-after", seconds.to_string());
    }
    with_limits(response, Some(refusal.remaining))
}

/// Xero's response envelope.
pub fn envelope(provider: &str, now: DateTime<Utc>, key: &str, items: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("Id".into(), json!(crate::state::new_uuid()));
    map.insert("Status".into(), json!("OK"));
    map.insert("ProviderName".into(), json!(provider));
    map.insert("DateTimeUTC".into(), json!(ms_date(now)));
    map.insert(key.into(), items);
    map
}

fn handle(call: &Call<'_>, target: &Target) -> Result<Response, Problem> {
    let wants_pdf = call
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/pdf"));
    let pdf_path = call.segments.len() == 3 && call.segments[2].eq_ignore_ascii_case("pdf");
    if wants_pdf || pdf_path {
        return document_pdf(call, target);
    }
    match target {
        Target::Resource(resource) => handle_resource(call, resource),
        Target::InvoiceReminders => {
            let settings =
                call.segments.len() == 2 && call.segments[1].eq_ignore_ascii_case("Settings");
            if !settings {
                return Err(Problem::NotFound);
            }
            if call.method != Method::GET {
                return Err(Problem::MethodNotAllowed);
            }
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "InvoiceReminders",
                json!([{"Enabled": false}]),
            ))
            .into_response())
        }
        Target::Organisation
            if call.segments.len() == 2 && call.segments[1].eq_ignore_ascii_case("Actions") =>
        {
            if call.method != Method::GET {
                return Err(Problem::MethodNotAllowed);
            }
            let actions: Vec<Value> = ORGANISATION_ACTIONS
                .iter()
                .map(|name| json!({"Name": name, "Status": "ALLOWED"}))
                .collect();
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "Actions",
                Value::Array(actions),
            ))
            .into_response())
        }
        Target::Organisation => {
            if call.segments.len() > 1 {
                return Err(Problem::NotImplemented(format!(
                    "Organisation/{}",
                    call.segments[1..].join("/")
                )));
            }
            if call.method != Method::GET {
                return Err(Problem::MethodNotAllowed);
            }
            let org = lock(&call.ledger).organisation.clone();
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "Organisations",
                json!([org]),
            ))
            .into_response())
        }
        Target::Journals => journals_list(call),
        Target::Report(name, _) => {
            if call.method != Method::GET {
                return Err(Problem::MethodNotAllowed);
            }
            let ledger = lock(&call.ledger);
            let report = reports::run(name, &ledger, &call.params, call.now)
                .ok_or_else(|| Problem::NotImplemented(format!("the {name} report")))??;
            Ok(Json(envelope(
                &call.provider,
                call.now,
                "Reports",
                json!([report]),
            ))
            .into_response())
        }
        Target::NotEmulated(name, _) => Err(Problem::NotImplemented(format!(
            "{name} ({})",
            call.segments.join("/")
        ))),
    }
}

/// `GET /Journals[?offset=N]` (the 100 journals after number N) and `GET /Journals/{id|number}`.
fn journals_list(call: &Call<'_>) -> Result<Response, Problem> {
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

/// What an app may do in the organisation (`GET /Organisation/Actions`); all allowed here.
const ORGANISATION_ACTIONS: &[&str] = &[
    "UseMulticurrency",
    "CreateApprovedInvoice",
    "CreateDraftInvoice",
    "CreateApprovedBill",
    "CreateDraftBill",
    "CreateApprovedPayment",
    "CreateSpendMoney",
    "CreateReceiveMoney",
    "CreateBankTransfer",
    "CreateJournals",
    "CreateContacts",
    "AttachFiles",
];

/// Titles of the documents Xero renders as PDF.
const PDF_TITLES: &[(&str, &str)] = &[
    ("Invoices", "Invoice"),
    ("CreditNotes", "Credit Note"),
    ("Quotes", "Quote"),
    ("PurchaseOrders", "Purchase Order"),
];

fn document_pdf(call: &Call<'_>, target: &Target) -> Result<Response, Problem> {
    let Target::Resource(resource) = target else {
        return Err(Problem::NotImplemented("PDF for this resource".into()));
    };
    let Some((_, title)) = PDF_TITLES.iter().find(|(n, _)| *n == resource.name) else {
        return Err(Problem::NotImplemented(format!(
            "PDF for {}",
            resource.name
        )));
    };
    if call.method != Method::GET || call.segments.len() < 2 {
        return Err(Problem::BadRequest(format!(
            "PDFs are available for one {} at a time: GET {}/{{id}}",
            title.to_lowercase(),
            resource.name
        )));
    }
    let ledger = lock(&call.ledger);
    let record = lookup(&ledger, resource, &call.segments[1]).ok_or(Problem::NotFound)?;
    let title = if get_str(record, "Type") == Some("ACCREC") {
        "Tax Invoice"
    } else {
        title
    };
    let number_field = resource.number_field.unwrap_or(resource.id_field);
    let bytes = pdf::render(title, record, number_field);
    Ok(([(header::CONTENT_TYPE, "application/pdf")], bytes).into_response())
}

fn handle_resource(call: &Call<'_>, resource: &'static Resource) -> Result<Response, Problem> {
    let segs = &call.segments;
    match (segs.len(), &call.method) {
        (1, &Method::GET) => list(call, resource),
        (1, &Method::PUT) => write(call, resource, None, true),
        (1, &Method::POST) => write(call, resource, None, false),
        (2, &Method::GET) => get_one(call, resource, &segs[1]),
        (2, &Method::POST) => write(call, resource, Some(&segs[1]), false),
        (2, &Method::DELETE) if resource.deletable => delete(call, resource, &segs[1]),
        (3, _) if resource.history && segs[2].eq_ignore_ascii_case("History") => {
            subresources::history(call, resource, &segs[1])
        }
        (3, _)
            if resource.kind == Kind::CreditNote && segs[2].eq_ignore_ascii_case("Allocations") =>
        {
            subresources::allocations(call, &segs[1])
        }
        (3 | 4, _)
            if resource.kind == Kind::TrackingCategory
                && segs[2].eq_ignore_ascii_case("Options") =>
        {
            subresources::tracking_options(call, &segs[1], segs.get(3).map(String::as_str))
        }
        (3 | 4, _)
            if resource.kind == Kind::ContactGroup && segs[2].eq_ignore_ascii_case("Contacts") =>
        {
            subresources::group_members(call, &segs[1], segs.get(3).map(String::as_str))
        }
        (3 | 4, _) if resource.attachments && segs[2].eq_ignore_ascii_case("Attachments") => {
            subresources::attachments(call, resource, &segs[1], segs.get(3).map(String::as_str))
        }
        (3, _) if resource.kind == Kind::Invoice && segs[2].eq_ignore_ascii_case("Email") => {
            subresources::email_invoice(call, &segs[1])
        }
        (3, &Method::GET)
            if resource.kind == Kind::Invoice && segs[2].eq_ignore_ascii_case("OnlineInvoice") =>
        {
            subresources::online_invoice(call, &segs[1])
        }
        (n, _) if n >= 3 => Err(Problem::NotImplemented(format!(
            "{}/{{id}}/{}",
            resource.name,
            segs[2..].join("/")
        ))),
        _ => Err(Problem::MethodNotAllowed),
    }
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

fn list(call: &Call<'_>, resource: &Resource) -> Result<Response, Problem> {
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

fn get_one(call: &Call<'_>, resource: &Resource, key: &str) -> Result<Response, Problem> {
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

fn write(
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

fn delete(call: &Call<'_>, resource: &Resource, key: &str) -> Result<Response, Problem> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn paths_route_case_insensitively_and_unknown_paths_do_not() {
        assert!(
            matches!(route(&segs("invoices")), Some(Target::Resource(r)) if r.name == "Invoices")
        );
        assert!(
            matches!(route(&segs("CONTACTS/abc")), Some(Target::Resource(r)) if r.name == "Contacts")
        );
        assert!(matches!(
            route(&segs("Reports/profitandloss")),
            Some(Target::Report("ProfitAndLoss", _))
        ));
        assert!(matches!(
            route(&segs("receipts")),
            Some(Target::NotEmulated("Receipts", _))
        ));
        assert!(
            route(&segs("Employees")).is_none(),
            "Employees were removed in 2026"
        );
        assert_eq!(
            endpoint_key(
                &Method::GET,
                &segs("invoices/123"),
                route(&segs("invoices/123")).as_ref()
            ),
            "GET /api.xro/2.0/Invoices/{id}"
        );
    }
}
