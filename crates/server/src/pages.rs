//! Web UI pages: owner set-up, sign-in, and Credentials.
//!
//! Forms post back to the page that showed them; errors re-render the form with a message that
//! says what to do and keep what the person typed (except passwords and secrets).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use crate::auth::{self, Principal, PRE_CSRF_COOKIE};
use crate::error::ApiError;
use crate::html::{alert, esc, page, when};
use crate::AppState;

type FormData = Form<HashMap<String, String>>;

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(String::as_str).unwrap_or("")
}

/// The double-submit token for pre-sign-in forms: reuse the cookie's or make one.
fn pre_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match auth::cookie(headers, PRE_CSRF_COOKIE) {
        Some(t) if t.len() >= 32 => (t, None),
        _ => {
            let t = auth::random_token();
            let c = auth::set_cookie(state, PRE_CSRF_COOKIE, &t, 3600 * 12);
            (t, Some(c))
        }
    }
}

fn pre_csrf_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match (auth::cookie(headers, PRE_CSRF_COOKIE), form.get("_csrf")) {
        (Some(c), Some(f)) => !c.is_empty() && c.len() == f.len() && c == *f,
        _ => false,
    }
}

fn with_cookie(cookie: Option<String>, status: StatusCode, html: Html<String>) -> Response {
    let mut resp = (status, html).into_response();
    if let Some(c) = cookie {
        if let Ok(v) = c.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn setup_page(csrf: &str, email: &str, error: &str) -> Html<String> {
    page(
        "Set up",
        "",
        None,
        &format!(
            r#"<div class="card narrow"><h1>Welcome to Ledgerflow</h1><p class="sub">Create the owner account. It manages credentials, workflows and API keys on this server.</p>
{alert}<form method="post" action="/setup"><input type="hidden" name="_csrf" value="{csrf}">
<label for="email">Email</label><input id="email" name="email" type="email" value="{email}" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="10">
<div class="hint">At least 10 characters.</div>
<p><button class="btn" type="submit" id="create-owner">Create owner account</button></p></form></div>"#,
            alert = alert("error", error),
            csrf = esc(csrf),
            email = esc(email),
        ),
    )
}

fn signin_page(csrf: &str, email: &str, error: &str) -> Html<String> {
    page(
        "Sign in",
        "",
        None,
        &format!(
            r#"<div class="card narrow"><h1>Sign in</h1><p class="sub">Use the owner account of this Ledgerflow server.</p>
{alert}<form method="post" action="/signin"><input type="hidden" name="_csrf" value="{csrf}">
<label for="email">Email</label><input id="email" name="email" type="email" value="{email}" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button class="btn" type="submit" id="sign-in">Sign in</button></p></form></div>"#,
            alert = alert("error", error),
            csrf = esc(csrf),
            email = esc(email),
        ),
    )
}

pub async fn root(State(state): State<AppState>) -> Result<Redirect, ApiError> {
    Ok(Redirect::to(if state.store.user_count().await? == 0 {
        "/setup"
    } else {
        "/credentials"
    }))
}

pub async fn setup_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.store.user_count().await? > 0 {
        return Ok(Redirect::to("/signin").into_response());
    }
    let (csrf, cookie) = pre_csrf(&state, &headers);
    Ok(with_cookie(
        cookie,
        StatusCode::OK,
        setup_page(&csrf, "", ""),
    ))
}

pub async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let (csrf, cookie) = pre_csrf(&state, &headers);
    if !pre_csrf_ok(&headers, &form) {
        return Ok(with_cookie(
            cookie,
            StatusCode::FORBIDDEN,
            setup_page(
                &csrf,
                field(&form, "email"),
                "This form has expired. Please submit it again.",
            ),
        ));
    }
    if state.store.user_count().await? > 0 {
        return Ok(Redirect::to("/signin").into_response());
    }
    let (email, password) = (field(&form, "email"), field(&form, "password"));
    if let Err(msg) = auth::validate_new_account(email, password) {
        return Ok(with_cookie(
            cookie,
            StatusCode::UNPROCESSABLE_ENTITY,
            setup_page(&csrf, email, &msg),
        ));
    }
    let hash = hash_blocking(password.to_string()).await?;
    let user = state.store.create_owner(email, &hash).await?;
    tracing::info!(user = %user.email, "owner account created");
    let session = auth::start_session(&state, &user).await?;
    Ok((
        [(header::SET_COOKIE, session)],
        Redirect::to("/credentials"),
    )
        .into_response())
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
pub async fn hash_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

pub async fn signin_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.store.user_count().await? == 0 {
        return Ok(Redirect::to("/setup").into_response());
    }
    let (csrf, cookie) = pre_csrf(&state, &headers);
    Ok(with_cookie(
        cookie,
        StatusCode::OK,
        signin_page(&csrf, "", ""),
    ))
}

pub async fn signin_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): FormData,
) -> Result<Response, ApiError> {
    let (csrf, cookie) = pre_csrf(&state, &headers);
    let email = field(&form, "email");
    if !pre_csrf_ok(&headers, &form) {
        return Ok(with_cookie(
            cookie,
            StatusCode::FORBIDDEN,
            signin_page(&csrf, email, "This form has expired. Please sign in again."),
        ));
    }
    let user = state.store.user_by_email(email).await?;
    let password = field(&form, "password").to_string();
    let ok = match &user {
        Some(u) => {
            let hash = u.password_hash.clone();
            tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
                .await
                .map_err(ApiError::internal)?
        }
        None => false,
    };
    match (ok, user) {
        (true, Some(user)) => {
            let session = auth::start_session(&state, &user).await?;
            Ok((
                [(header::SET_COOKIE, session)],
                Redirect::to("/credentials"),
            )
                .into_response())
        }
        _ => {
            tracing::warn!("failed sign-in attempt");
            Ok(with_cookie(
                cookie,
                StatusCode::UNAUTHORIZED,
                signin_page(
                    &csrf,
                    email,
                    "The email or password is not right. Try again.",
                ),
            ))
        }
    }
}

pub async fn signout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    if let Some(h) = &p.session_token_hash {
        state.store.delete_session(h).await?;
    }
    let clear = auth::set_cookie(&state, auth::SESSION_COOKIE, "", 0);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/signin")).into_response())
}

fn user_of(p: &Principal) -> Option<(&str, &str)> {
    Some((p.user.email.as_str(), p.csrf.as_deref().unwrap_or("")))
}

#[derive(serde::Deserialize)]
pub struct Notice {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    deleted: Option<String>,
}

pub async fn credentials_list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, ApiError> {
    let creds = state.store.list_credentials().await?;
    let mut statuses = HashMap::new();
    for c in &creds {
        if ledgerflow_credentials::get(&c.type_name)
            .is_some_and(|t| t.auth == ledgerflow_credentials::AuthKind::OAuth2)
        {
            statuses.insert(c.id.clone(), state.store.oauth_status(&c.id).await?.status);
        }
    }
    let rows: String = creds
        .iter()
        .map(|c| {
            let status = match statuses.get(&c.id).map(String::as_str) {
                Some(s) => format!(
                    r#" <span class="badge {s}">{}</span>"#,
                    match s {
                        "connected" => "Connected",
                        "needs_reconnect" => "Needs reconnect",
                        _ => "Never connected",
                    }
                ),
                None => String::new(),
            };
            let ty = ledgerflow_credentials::get(&c.type_name)
                .map(|t| t.display_name)
                .unwrap_or(&c.type_name);
            format!(
                r#"<tr class="credential"><td><a href="/credentials/{id}"><strong>{name}</strong></a></td><td><span class="tag">{ty}</span>{status}</td><td>{created}</td><td>{updated}</td>
<td style="text-align:right"><a class="btn secondary" href="/credentials/{id}">Open</a></td></tr>"#,
                name = esc(&c.name),
                ty = esc(ty),
                created = when(c.created_at),
                updated = when(c.updated_at),
                id = esc(&c.id),
            )
        })
        .collect();
    let table = if creds.is_empty() {
        r#"<div class="card empty"><p><strong>No credentials yet.</strong></p><p>A credential holds what Ledgerflow needs to call an API for you. Add one to use it in workflows.</p><p><a class="btn" href="/credentials/new">Add your first credential</a></p></div>"#.to_string()
    } else {
        format!(
            r#"<table><thead><tr><th>Name</th><th>Type</th><th>Created</th><th>Updated</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#
        )
    };
    let msg = match (&notice.created, &notice.deleted) {
        (Some(n), _) => alert("ok", &format!("Credential “{n}” saved.")),
        (_, Some(_)) => alert("ok", "Credential deleted."),
        _ => String::new(),
    };
    Ok(page(
        "Credentials",
        "credentials",
        user_of(&p),
        &format!(
            r#"<div class="row"><div><h1>Credentials</h1><p class="sub" style="margin:0">Connections to the services your workflows use. Secrets are encrypted and never shown again.</p></div>
<a class="btn" id="add-new" href="/credentials/new">ADD NEW</a></div>{msg}{table}"#
        ),
    ))
}

/// The Xero node's documentation: resources, operations, parameters and scopes.
pub async fn xero_node_docs(Extension(p): Extension<Principal>) -> Html<String> {
    let d = ledgerflow_nodes_xero::docs::describe();
    let rows: String = d["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let ops: String = r["operations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    format!(
                        "<tr><td>{}</td><td class=\"hint\">{}</td><td><code>{}</code><div class=\"hint\">broad: <code>{}</code></div></td></tr>",
                        esc(o["operation"].as_str().unwrap_or_default()),
                        esc(o["parameters"].as_str().unwrap_or_default()),
                        esc(o["scope"].as_str().unwrap_or_default()),
                        esc(o["broadScope"].as_str().unwrap_or_default()),
                    )
                })
                .collect();
            format!(
                "<section class=\"card\" style=\"margin-bottom:16px\"><h2>{} <span class=\"hint\">id: {}</span></h2><table><thead><tr><th>Operation</th><th>Parameters</th><th>Scope</th></tr></thead><tbody>{ops}</tbody></table></section>",
                esc(r["resource"].as_str().unwrap_or_default()),
                esc(r["idField"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let reports: String = d["reports"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                esc(r["report"].as_str().unwrap_or_default()),
                esc(r["scope"].as_str().unwrap_or_default())
            )
        })
        .collect();
    page(
        "Xero node",
        "nodes",
        user_of(&p),
        &format!(
            r#"<h1>Xero node</h1><p class="sub">Type <code>ledgerflow.xero</code>, credential <code>xeroOAuth2Api</code>. {batching}</p>
<p class="hint">Organisation: {org}</p>{rows}
<section class="card"><h2>Reports</h2><p class="hint">Operation <code>report</code>; broad scope <code>accounting.reports.read</code>.</p><table><tbody>{reports}</tbody></table></section>"#,
            batching = esc(d["batching"].as_str().unwrap_or_default()),
            org = esc(d["organisation"].as_str().unwrap_or_default()),
        ),
    )
}
