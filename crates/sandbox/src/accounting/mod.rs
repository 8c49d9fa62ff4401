//! The Accounting API under `/api.xro/2.0`, stateful per organisation.
//!
//! Every call goes through the same gate, in Xero's order: bearer token (401, `TokenExpired`),
//! `xero-tenant-id` connected to the token's user and app (403), scopes broad or granular (401
//! `insufficient_scope`), rate limits (429), injected faults, then the resource. Paths are
//! matched case-insensitively. Bodies are JSON when the client sends `Accept: application/json`
//! and XML otherwise (Xero's default). Responses wrap arrays in Xero's envelope with
//! `/Date(…)/` dates; every admitted call carries `X-DayLimit-Remaining`, `X-MinLimit-Remaining` and
//! `X-AppMinLimit-Remaining` while limits are on.
//!
//! Submodules: [`ledger`] (records and staged transactions), [`model`] (wire helpers),
//! [`query`] (`where`/`order`), [`resources`] (the resource table), [`rules`] (write rules per
//! kind), `handlers` (list, get, write, delete, journals), `subresources` (history,
//! attachments, allocations, group members, tracking options, webhook events and journals after
//! a commit), [`journals`] (postings and the journal log), [`reports`], `xml` and `pdf`
//! (other representations).
//! Documented resources that are not emulated answer 501.

mod handlers;
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

use self::ledger::Ledger;
use self::model::{get_str, ms_date};
use self::resources::{Kind, Resource};
use crate::faults;
use crate::identity::{bearer, Bearer};
use crate::limits::{Refusal, Remaining};
use crate::problem::Problem;
use crate::scopes::Access;
use crate::state::{lock, Sandbox};

/// Largest request body (attachments).
const MAX_BODY: usize = 25 * 1024 * 1024;
/// Xero's cap on other request bodies: 3.5 MB.
const MAX_DOCUMENT_BODY: usize = 3_500_000;

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

/// Percent-decodes one path segment (`+` stays a plus sign, unlike in a query string).
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
        .map(decode_segment)
        .collect();
    let target = route(&segments);
    sandbox.count(endpoint_key(&method, &segments, target.as_ref()));
    let Some(target) = target else {
        return Problem::NotFound.into_response();
    };
    let attachments = segments
        .get(2)
        .is_some_and(|s| s.eq_ignore_ascii_case("Attachments"));
    if body.len() > MAX_DOCUMENT_BODY && !attachments {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"Title": "Request Entity Too Large", "Status": 413,
                "Detail": "Xero accepts request bodies up to 3.5 MB; send about 50 elements per request"})),
        )
            .into_response();
    }
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let (tenant, ledger, provider) = match connected_tenant(&sandbox, &headers, &bearer) {
        Ok(t) => t,
        Err(p) => return p.into_response(),
    };
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
    let mut lose_response = false;
    if let Some(effect) = faults::effect_for(&sandbox, method.as_str(), &path) {
        lose_response = effect.lose_response;
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
    if lose_response {
        // The change is made; the answer never arrives.
        return faults::broken_response();
    }
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
        Target::Journals => handlers::journals_list(call),
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
    let record = handlers::lookup(&ledger, resource, &call.segments[1]).ok_or(Problem::NotFound)?;
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
        (1, &Method::GET) => handlers::list(call, resource),
        (1, &Method::PUT) => handlers::write(call, resource, None, true),
        (1, &Method::POST) => handlers::write(call, resource, None, false),
        (2, &Method::GET) => handlers::get_one(call, resource, &segs[1]),
        (2, &Method::POST) => handlers::write(call, resource, Some(&segs[1]), false),
        (2, &Method::DELETE) if resource.deletable => handlers::delete(call, resource, &segs[1]),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn path_segments_are_percent_decoded_but_plus_stays_a_plus() {
        assert_eq!(
            decode_segment("contract%20v1+final.pdf"),
            "contract v1+final.pdf"
        );
        assert_eq!(decode_segment("100%"), "100%");
        assert_eq!(decode_segment("%E2%82%AC"), "€");
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
