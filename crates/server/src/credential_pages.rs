//! Credential pages beyond the list: the integrations picker (ADD NEW), the forms for each type
//! (the Xero OAuth2 API form with its OAuth Redirect URL and Copy URL button), a credential's own
//! page (status, organisations, Test, Disconnect, Reconnect, Delete), and the OAuth callback page.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ledgerflow_credentials::{CredentialType, FieldKind};
use ledgerflow_store::{Credential, CredentialPatch, NewCredential};
use serde_json::{Map, Value};

use crate::auth::{self, Principal};
use crate::connect::{self, CallbackQuery, ConnectError};
use crate::error::ApiError;
use crate::html::{alert, copy_field, esc, page, when, COPY_SCRIPT};
use crate::AppState;

type FormData = Form<HashMap<String, String>>;

fn user_of(p: &Principal) -> Option<(&str, &str)> {
    Some((p.user.email.as_str(), p.csrf.as_deref().unwrap_or("")))
}

fn csrf_input(p: &Principal) -> String {
    format!(
        r#"<input type="hidden" name="_csrf" value="{}">"#,
        esc(p.csrf.as_deref().unwrap_or(""))
    )
}

fn type_name(name: &str) -> &str {
    ledgerflow_credentials::get(name)
        .map(|t| t.display_name)
        .unwrap_or(name)
}

#[derive(serde::Deserialize, Default)]
pub struct NewQuery {
    #[serde(rename = "type")]
    type_name: Option<String>,
}

/// ADD NEW: the integrations picker, or the form of the chosen type.
pub async fn new_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<NewQuery>,
) -> Html<String> {
    let body = match q.type_name.as_deref().and_then(ledgerflow_credentials::get) {
        Some(ty) => form_page(&state, &p, ty, None, &HashMap::new(), ""),
        None => picker(),
    };
    page("New credential", "credentials", user_of(&p), &body)
}

fn picker() -> String {
    let items: String = ledgerflow_credentials::all()
        .map(|t| {
            let what = if t.integration {
                "Integration"
            } else {
                "Generic (HTTP Request)"
            };
            format!(
                r#"<tr class="integration" data-name="{search}"><td><strong>{name}</strong><div class="hint">{what} · {fields}</div></td><td style="text-align:right"><a class="btn secondary" id="pick-{id}" href="/credentials/new?type={id}">Select</a></td></tr>"#,
                search = esc(&format!("{} {}", t.display_name, t.name).to_lowercase()),
                name = esc(t.display_name),
                fields = esc(&t.fields.iter().map(|f| f.display_name).collect::<Vec<_>>().join(", ")),
                id = esc(t.name),
            )
        })
        .collect();
    format!(
        r#"<h1>Add a credential</h1><p class="sub">Pick the service to connect.</p>
<input class="search" id="integration-search" type="text" placeholder="Search integrations…" autofocus autocomplete="off">
<table><tbody id="integrations">{items}</tbody></table>
<p class="empty" id="no-match" hidden>No integration matches. Try another word, or use Header Auth / Basic Auth with the HTTP Request node.</p>
<script>
var search = document.getElementById('integration-search');
search.addEventListener('input', function () {{
  var q = search.value.trim().toLowerCase(), shown = 0;
  document.querySelectorAll('tr.integration').forEach(function (row) {{
    var hit = row.dataset.name.indexOf(q) >= 0; row.hidden = !hit; if (hit) shown++;
  }});
  document.getElementById('no-match').hidden = shown > 0;
}});
</script>"#
    )
}

fn field_input(
    f: &ledgerflow_credentials::FieldSpec,
    value: &str,
    existing_secret: bool,
) -> String {
    let id = format!("f-{}", f.name);
    let name = format!("data.{}", f.name);
    let control = if !f.options.is_empty() {
        let opts: String = f
            .options
            .iter()
            .map(|o| {
                format!(
                    r#"<option value="{o}"{sel}>{label}</option>"#,
                    o = esc(o),
                    sel = if *o == value { " selected" } else { "" },
                    label = esc(&option_label(o)),
                )
            })
            .collect();
        format!(r#"<select id="{id}" name="{name}">{opts}</select>"#)
    } else if f.kind == FieldKind::Scopes {
        format!(
            r#"<textarea id="{id}" name="{name}" spellcheck="false">{}</textarea>"#,
            esc(value)
        )
    } else if f.secret {
        let placeholder = if existing_secret {
            "Saved — leave empty to keep it"
        } else {
            ""
        };
        format!(
            r#"<input id="{id}" name="{name}" type="password" autocomplete="off" placeholder="{placeholder}" {req}>"#,
            req = if f.required && !existing_secret {
                "required"
            } else {
                ""
            },
        )
    } else {
        format!(
            r#"<input id="{id}" name="{name}" type="text" value="{}" autocomplete="off" {req}>"#,
            esc(value),
            req = if f.required { "required" } else { "" },
        )
    };
    let hint = if f.description.is_empty() {
        String::new()
    } else {
        format!(r#"<div class="hint">{}</div>"#, esc(f.description))
    };
    format!(
        r#"<label for="{id}">{}</label>{control}{hint}"#,
        esc(f.display_name)
    )
}

fn option_label(o: &str) -> String {
    match o {
        "granular" => "Granular scopes (apps created from 2 March 2026)".into(),
        "broad" => "Broad scopes (older apps)".into(),
        "production" => "Xero".into(),
        "sandbox" => "Xero sandbox (built into Ledgerflow)".into(),
        other => other.into(),
    }
}

/// Default values for a new credential's form.
fn defaults(state: &AppState, ty: &CredentialType) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = ty
        .fields
        .iter()
        .filter_map(|f| f.default.map(|d| (f.name.to_string(), d.to_string())))
        .collect();
    v.insert("name".into(), ty.display_name.into());
    if ty.name == "xeroOAuth2Api" {
        v.insert(
            "scope".into(),
            ledgerflow_xero::default_scopes(ledgerflow_xero::ScopeMode::Granular),
        );
        if state.config.sandbox_url.is_some() {
            v.insert("environment".into(), "sandbox".into());
            v.insert("name".into(), "Xero sandbox".into());
        }
    }
    v
}

/// The form for a type; `existing` when editing a saved credential.
fn form_page(
    state: &AppState,
    p: &Principal,
    ty: &CredentialType,
    existing: Option<&Credential>,
    submitted: &HashMap<String, String>,
    error: &str,
) -> String {
    let mut values = match existing {
        Some(c) => {
            let mut v: HashMap<String, String> = c
                .data
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            v.insert("name".into(), c.name.clone());
            v
        }
        None => defaults(state, ty),
    };
    values.extend(submitted.iter().map(|(k, v)| (k.clone(), v.clone())));
    let fields: String = ty
        .fields
        .iter()
        .map(|f| {
            let secret_set =
                existing.is_some_and(|c| c.secret_fields_set.iter().any(|s| s == f.name));
            field_input(
                f,
                values.get(f.name).map(String::as_str).unwrap_or(""),
                secret_set,
            )
        })
        .collect();
    let action = match existing {
        Some(c) => format!("/credentials/{}", esc(&c.id)),
        None => format!("/credentials/new?type={}", esc(ty.name)),
    };
    let name = values.get("name").cloned().unwrap_or_default();
    let common = format!(
        r#"{alert}<form method="post" action="{action}">{csrf}
<label for="f-name">Credential name</label><input id="f-name" name="name" type="text" value="{name}" required>"#,
        alert = alert("error", error),
        csrf = csrf_input(p),
        name = esc(&name),
    );
    if ty.auth == ledgerflow_credentials::AuthKind::OAuth2 {
        let sandbox = state.config.sandbox_url.as_deref();
        let banner = match sandbox {
            Some(base) => format!(
                r#"<div class="banner" id="sandbox-banner"><strong>Sandbox mode.</strong> This server runs a built-in Xero sandbox at <code>{}</code>. Credentials set to “Xero sandbox” talk to it instead of Xero; no Xero account is needed.</div>"#,
                esc(base)
            ),
            None => String::new(),
        };
        let connect_label = if existing.is_some() {
            "Save and reconnect"
        } else {
            "Connect"
        };
        let scope_defaults = format!(
            r#"<script>
(function () {{
  var modes = {{granular: {granular}, broad: {broad}}};
  var mode = document.getElementById('f-scopeMode'), scope = document.getElementById('f-scope');
  if (!mode || !scope) return;
  mode.addEventListener('change', function () {{
    var current = scope.value.trim();
    // Only replace a default list; never a list the person edited.
    if (!current || current === modes.granular || current === modes.broad) scope.value = modes[mode.value];
  }});
}})();
</script>"#,
            granular = serde_json::to_string(&ledgerflow_xero::default_scopes(
                ledgerflow_xero::ScopeMode::Granular
            ))
            .unwrap_or_default(),
            broad = serde_json::to_string(&ledgerflow_xero::default_scopes(
                ledgerflow_xero::ScopeMode::Broad
            ))
            .unwrap_or_default(),
        );
        let form = format!(
            r#"{common}
{fields}
<div class="actions"><button class="btn" type="submit" name="action" value="connect" id="connect">{connect_label}</button>
<button class="btn secondary" type="submit" name="action" value="save" id="save">Save without connecting</button>
<a class="btn link" href="/credentials">Cancel</a></div></form>{scope_defaults}"#
        );
        if existing.is_some() {
            // Embedded in the credential's own page, which shows the set-up card itself.
            return form;
        }
        format!(
            r#"<h1>{title}</h1><p class="sub">Connect Ledgerflow to your Xero organisations.</p>{banner}
<div class="grid"><section class="card">{form}</section>
<section class="card">{setup}</section></div>{COPY_SCRIPT}"#,
            title = esc(ty.display_name),
            setup = setup_card(state, connect_label),
        )
    } else {
        format!(
            r#"<div class="card" style="max-width:560px"><h1>{title}</h1><p class="sub">Used by HTTP Request nodes to sign requests.</p>{common}
{fields}<div class="actions"><button class="btn" type="submit" id="save" name="action" value="save">Save</button> <a class="btn secondary" href="/credentials">Cancel</a></div></form></div>"#,
            title = esc(ty.display_name),
        )
    }
}

/// How to register the Xero app: the OAuth Redirect URL with its Copy URL button, and the steps.
fn setup_card(state: &AppState, connect_label: &str) -> String {
    let portal = match state.config.sandbox_url.as_deref() {
        Some(base) => format!("{}/portal", base.trim_end_matches('/')),
        None => "https://developer.xero.com/app/manage".to_string(),
    };
    format!(
        r#"<h2>Set up your Xero app</h2>
{redirect}
<ol class="steps" style="margin-top:16px">
<li>Click <strong>Copy URL</strong> above.</li>
<li>Open <a href="{portal}" target="_blank" rel="noopener" id="developer-portal">Xero's developer portal</a>, click <strong>New app</strong>, choose <strong>Web app</strong>, and paste the URL as the <strong>Redirect URI</strong>.</li>
<li>In the app's <strong>Configuration</strong>, click <strong>Generate a secret</strong>.</li>
<li>Copy the <strong>Client id</strong> and <strong>Client secret</strong> into this form.</li>
<li>Click <strong>{connect_label}</strong> and allow access to the organisations you want to use.</li>
</ol>
<p class="hint">Xero shows an “invalid redirect_uri” error if the app's redirect URI is not exactly this URL.</p>"#,
        redirect = copy_field(
            "redirect-url",
            "OAuth Redirect URL",
            &connect::redirect_url(&state.config),
            "Copy URL"
        ),
        portal = esc(&portal),
    )
}

fn form_data(
    form: &HashMap<String, String>,
) -> (String, HashMap<String, String>, Map<String, Value>) {
    let name = form
        .get("name")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let submitted: HashMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("data.").map(|k| (k.to_string(), v.clone())))
        .chain(std::iter::once(("name".to_string(), name.clone())))
        .collect();
    let data: Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("data.")
                .map(|k| (k.to_string(), Value::String(v.trim().to_string())))
        })
        .collect();
    (name, submitted, data)
}

fn render_error(
    state: &AppState,
    p: &Principal,
    ty: &CredentialType,
    existing: Option<&Credential>,
    submitted: &HashMap<String, String>,
    msg: &str,
) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        page(
            "Credential",
            "credentials",
            user_of(p),
            &form_page(state, p, ty, existing, submitted, msg),
        ),
    )
        .into_response()
}

/// Saves a new credential; with `action=connect`, goes straight on to consent.
pub async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<NewQuery>,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let ty = q
        .type_name
        .as_deref()
        .and_then(ledgerflow_credentials::get)
        .ok_or_else(|| ApiError::bad_request("unknown_type", "pick a credential type first"))?;
    let (name, submitted, mut data) = form_data(&form);
    // Empty optional fields take their defaults.
    data.retain(|_, v| v.as_str().is_some_and(|s| !s.is_empty()));
    if name.is_empty() {
        return Ok(render_error(
            &state,
            &p,
            ty,
            None,
            &submitted,
            "Give the credential a name.",
        ));
    }
    let split = match ty.split_new(&Value::Object(data)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(render_error(
                &state,
                &p,
                ty,
                None,
                &submitted,
                &e.to_string(),
            ))
        }
    };
    let cred = state
        .store
        .create_credential(NewCredential {
            name,
            type_name: ty.name.into(),
            public: split.public,
            secret: split.secret,
        })
        .await?;
    after_save(&state, &p, &cred, form.get("action").map(String::as_str)).await
}

async fn after_save(
    state: &AppState,
    p: &Principal,
    cred: &Credential,
    action: Option<&str>,
) -> Result<Response, ApiError> {
    if action == Some("connect") {
        return match connect::start(state, &cred.id, &p.user.id).await {
            Ok(url) => Ok(Redirect::to(&url).into_response()),
            Err(e) => Ok(Redirect::to(&format!(
                "/credentials/{}?error={}",
                cred.id,
                enc(&e.to_string())
            ))
            .into_response()),
        };
    }
    Ok(Redirect::to(&format!("/credentials/{}?saved=1", cred.id)).into_response())
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Saves changes to a credential (secret fields left empty keep their value).
pub async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let existing = state.store.get_credential(&id).await?;
    let ty = ledgerflow_credentials::get(&existing.type_name)
        .ok_or_else(|| ApiError::internal(format!("unknown type {}", existing.type_name)))?;
    let (name, submitted, mut data) = form_data(&form);
    // An empty secret field means "keep"; an empty public field means "clear".
    data.retain(|k, v| {
        !(ty.field(k).is_some_and(|f| f.secret) && v.as_str().is_some_and(str::is_empty))
    });
    for (k, v) in data.iter_mut() {
        if v.as_str().is_some_and(str::is_empty) && !ty.field(k).is_some_and(|f| f.required) {
            *v = Value::Null;
        }
    }
    if name.is_empty() {
        return Ok(render_error(
            &state,
            &p,
            ty,
            Some(&existing),
            &submitted,
            "Give the credential a name.",
        ));
    }
    let split = match ty.split(&Value::Object(data)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(render_error(
                &state,
                &p,
                ty,
                Some(&existing),
                &submitted,
                &e.to_string(),
            ))
        }
    };
    let cred = state
        .store
        .update_credential(
            &id,
            CredentialPatch {
                name: Some(name),
                public: split.public,
                secret: split.secret,
            },
        )
        .await?;
    after_save(&state, &p, &cred, form.get("action").map(String::as_str)).await
}

#[derive(serde::Deserialize, Default)]
pub struct DetailQuery {
    saved: Option<String>,
    connected: Option<String>,
    disconnected: Option<String>,
    error: Option<String>,
}

/// A credential's own page.
pub async fn detail(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, ApiError> {
    let c = state.store.get_credential(&id).await?;
    let notice = if let Some(e) = &q.error {
        alert("error", e)
    } else if q.connected.is_some() {
        alert("ok", "Connected to Xero.")
    } else if q.saved.is_some() {
        alert("ok", "Saved.")
    } else if q.disconnected.is_some() {
        alert("ok", "Organisation disconnected.")
    } else {
        String::new()
    };
    Ok(page(
        &c.name,
        "credentials",
        user_of(&p),
        &detail_body(&state, &p, &c, &notice, None).await?,
    ))
}

async fn detail_body(
    state: &AppState,
    p: &Principal,
    c: &Credential,
    notice: &str,
    test: Option<&connect::TestReport>,
) -> Result<String, ApiError> {
    let ty = ledgerflow_credentials::get(&c.type_name);
    let csrf = csrf_input(p);
    let is_oauth = ty.is_some_and(|t| t.auth == ledgerflow_credentials::AuthKind::OAuth2);
    let mut body = format!(
        r#"<p><a href="/credentials">← Credentials</a></p><div class="row"><div><h1 id="credential-name">{name}</h1><p class="sub" style="margin:0"><span class="tag">{ty}</span></p></div>"#,
        name = esc(&c.name),
        ty = esc(type_name(&c.type_name)),
    );
    if is_oauth {
        let status = state.store.oauth_status(&c.id).await?;
        let label = match status.status.as_str() {
            "connected" => "Connected",
            "needs_reconnect" => "Needs reconnect",
            _ => "Never connected",
        };
        body.push_str(&format!(
            r#"<span class="badge {cls}" id="status">{label}</span></div>{notice}"#,
            cls = esc(&status.status),
        ));
        if let Some(reason) = &status.status_reason {
            body.push_str(&alert(
                "error",
                &format!("This credential needs reconnecting: {reason}"),
            ));
        }
        if let Some(report) = test {
            let rows: String = report
                .organisations
                .iter()
                .map(|o| {
                    format!(
                        "<li>{} {}: {}</li>",
                        if o.ok { "✓" } else { "✗" },
                        esc(&o.tenant_name),
                        esc(&o.message)
                    )
                })
                .collect();
            body.push_str(&format!(
                r#"<div class="alert {cls}" id="test-result"><strong>{msg}</strong><ul style="margin:6px 0 0">{rows}</ul></div>"#,
                cls = if report.ok { "ok" } else { "error" },
                msg = esc(&report.message),
            ));
        }
        let tenants = state.store.tenants(&c.id).await?;
        let org_rows: String = tenants
            .iter()
            .map(|t| {
                format!(
                    r#"<tr class="organisation"><td><strong>{name}</strong><div class="hint">{ty} · <code>{tid}</code></div></td><td style="text-align:right"><form method="post" action="/credentials/{id}/organisations/{tid}/disconnect" onsubmit="return confirm('Disconnect {name_js} from this credential? Xero will no longer let Ledgerflow reach it.')">{csrf}<button class="btn secondary" type="submit">Disconnect</button></form></td></tr>"#,
                    name = esc(&t.tenant_name),
                    name_js = esc(&t.tenant_name.replace('\'', "")),
                    ty = esc(&t.tenant_type.to_lowercase()),
                    tid = esc(&t.tenant_id),
                    id = esc(&c.id),
                )
            })
            .collect();
        let orgs = if tenants.is_empty() {
            r#"<p class="hint">No organisations yet. Click Connect and tick the organisations Ledgerflow may use.</p>"#.to_string()
        } else {
            format!(r#"<table id="organisations"><tbody>{org_rows}</tbody></table>"#)
        };
        let connect_label = if status.status == "never_connected" {
            "Connect"
        } else {
            "Reconnect"
        };
        let fmt_opt = |v: Option<i64>| v.map(when).unwrap_or_else(|| "—".into());
        let health = state.store.webhook_health(&c.id).await?;
        body.push_str(&format!(
            r#"<div class="grid"><div><section class="card"><h2>Organisations</h2>{orgs}
<div class="actions"><form method="post" action="/credentials/{id}/connect">{csrf}<button class="btn" id="reconnect" type="submit">{connect_label}</button></form>
<form method="post" action="/credentials/{id}/test">{csrf}<button class="btn secondary" id="test" type="submit">Test</button></form></div></section>
<section class="card"><h2>Settings</h2>{form}</section></div>
<div><section class="card"><h2>Connection</h2><dl class="kv">
<dt>Status</dt><dd>{label}</dd>
<dt>Scopes granted</dt><dd class="scopes">{scopes}</dd>
<dt>Access token expires</dt><dd>{expires}</dd>
<dt>Connected</dt><dd>{connected}</dd>
<dt>Last refresh</dt><dd>{refreshed}</dd>
<dt>Last error</dt><dd>{last_error}</dd></dl></section>
<section class="card">{setup}</section>
<section class="card" id="webhooks"><h2>Xero webhooks</h2>{webhook_url}
<p class="hint">In the Xero app's <strong>Webhooks</strong> settings, paste this as the delivery URL and copy the app's <strong>Webhook key</strong> into Settings here. Xero then checks the URL (“intent to receive”).</p>
<dl class="kv"><dt>Webhook key</dt><dd>{key_state}</dd><dt>Intent to receive</dt><dd id="intent-status">{intent}</dd>
<dt>Last delivery</dt><dd>{last_delivery}</dd><dt>Deliveries</dt><dd>{deliveries} ({events} events, {duplicates} duplicates)</dd>
<dt>Refused signatures</dt><dd>{bad}</dd></dl></section>
<section class="card" id="webhooks"><h2>Xero webhooks</h2>{webhook_url}
<p class="hint">In the Xero app's <strong>Webhooks</strong> settings, paste this as the delivery URL and copy the app's <strong>Webhook key</strong> into Settings here. Xero then checks the URL (“intent to receive”).</p>
<dl class="kv"><dt>Webhook key</dt><dd>{key_state}</dd><dt>Intent to receive</dt><dd id="intent-status">{intent}</dd>
<dt>Last delivery</dt><dd>{last_delivery}</dd><dt>Deliveries</dt><dd>{deliveries} ({events} events, {duplicates} duplicates)</dd>
<dt>Refused signatures</dt><dd>{bad}</dd></dl></section>
<section class="card"><h2>Delete</h2><p class="hint">Revokes the connection at Xero, then deletes the credential.</p>
<form method="post" action="/credentials/{id}/delete" onsubmit="return confirm('Delete this credential?')">{csrf}<button class="btn secondary" type="submit" id="delete">Delete credential</button></form></section></div></div>{COPY_SCRIPT}"#,
            id = esc(&c.id),
            scopes = if status.granted_scopes.is_empty() {
                "—".to_string()
            } else {
                status
                    .granted_scopes
                    .iter()
                    .map(|s| format!("<code>{}</code>", esc(s)))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            expires = fmt_opt(status.access_expires_at),
            connected = fmt_opt(status.connected_at),
            refreshed = fmt_opt(status.refreshed_at),
            last_error = esc(&match (&status.last_error, status.last_error_at) {
                (Some(e), Some(at)) => format!("{} ({})", e, when(at)),
                (Some(e), None) => e.clone(),
                _ => "—".into(),
            }),
            form = ty
                .map(|t| form_page(state, p, t, Some(c), &HashMap::new(), ""))
                .unwrap_or_default(),
            setup = setup_card(state, "Save and reconnect"),
            webhook_url = copy_field(
                "webhook-url",
                "Webhook delivery URL",
                &crate::webhooks::delivery_url(&state.config, &c.id),
                "Copy URL"
            ),
            key_state = if c.secret_fields_set.iter().any(|f| f == "webhookKey") {
                "Set"
            } else {
                "Not set — webhooks are refused until it is"
            },
            intent = if health.intent_passed() {
                format!("Passed ({})", fmt_opt(health.intent_probe_at))
            } else if health.intent_probe_at.is_some() {
                "Answered the signed probe; waiting for the wrongly signed one".to_string()
            } else {
                "Not yet checked by Xero".to_string()
            },
            last_delivery = fmt_opt(health.last_delivery_at),
            deliveries = health.deliveries,
            events = health.events,
            duplicates = health.duplicates,
            bad = health.bad_signatures,
        ));
    } else {
        let fields: String = c
            .data
            .iter()
            .map(|(k, v)| {
                format!(
                    "<dt>{}</dt><dd>{}</dd>",
                    esc(k),
                    esc(v.as_str().unwrap_or_default())
                )
            })
            .chain(
                c.secret_fields_set
                    .iter()
                    .map(|k| format!("<dt>{}</dt><dd>•••••• (set)</dd>", esc(k))),
            )
            .collect();
        body.push_str(&format!(
            r#"</div>{notice}<section class="card"><dl class="kv">{fields}</dl>
<div class="actions"><form method="post" action="/credentials/{id}/delete" onsubmit="return confirm('Delete this credential?')">{csrf}<button class="btn secondary" type="submit" id="delete">Delete credential</button></form></div></section>"#,
            id = esc(&c.id),
        ));
    }
    Ok(body)
}

/// Starts (re)connecting from the credential page.
pub async fn connect_start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match connect::start(&state, &id, &p.user.id).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(ConnectError::NotFound(m)) => return Err(ApiError::not_found(m)),
        Err(e) => Redirect::to(&format!("/credentials/{id}?error={}", enc(&e.to_string())))
            .into_response(),
    })
}

pub async fn test(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Html<String>, ApiError> {
    let c = state.store.get_credential(&id).await?;
    let report = connect::test(&state, &id).await.map_err(ApiError::from)?;
    Ok(page(
        &c.name,
        "credentials",
        user_of(&p),
        &detail_body(&state, &p, &c, "", Some(&report)).await?,
    ))
}

pub async fn disconnect(
    State(state): State<AppState>,
    Path((id, tenant)): Path<(String, String)>,
) -> Result<Redirect, ApiError> {
    Ok(match connect::disconnect(&state, &id, &tenant).await {
        Ok(()) => Redirect::to(&format!("/credentials/{id}?disconnected=1")),
        Err(ConnectError::NotFound(m)) => return Err(ApiError::not_found(m)),
        Err(e) => Redirect::to(&format!("/credentials/{id}?error={}", enc(&e.to_string()))),
    })
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): FormData,
) -> Result<Redirect, ApiError> {
    let force = form.get("force").is_some_and(|v| v == "1");
    Ok(match connect::delete(&state, &id, force).await {
        Ok(()) => Redirect::to("/credentials?deleted=1"),
        Err(ConnectError::NotFound(m)) => return Err(ApiError::not_found(m)),
        Err(e) => Redirect::to(&format!("/credentials/{id}?error={}", enc(&e.to_string()))),
    })
}

/// The OAuth callback (`/rest/oauth2-credential/callback`). Not behind the sign-in middleware:
/// its own checks are the single-use `state` and the signed-in person it was issued to.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let user = match auth::cookie(&headers, auth::SESSION_COOKIE) {
        Some(token) => state
            .store
            .session_user(&auth::sha256_hex(&token))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match connect::finish(&state, &q, user.as_ref().map(|u| u.id.as_str())).await {
        Ok(done) => Redirect::to(&format!(
            "/credentials/{}?connected={}",
            done.credential.id, done.added_now
        ))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "OAuth callback refused");
            let status = match e {
                ConnectError::Internal(_) | ConnectError::Upstream(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            (
                status,
                page(
                    "Could not connect",
                    "credentials",
                    None,
                    &format!(
                        r#"<div class="card narrow" style="max-width:560px"><h1>Could not connect</h1>{}<p><a class="btn" href="/credentials">Back to credentials</a></p></div>"#,
                        alert("error", &e.to_string())
                    ),
                ),
            )
                .into_response()
        }
    }
}
