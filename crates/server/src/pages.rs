//! Web UI pages: owner set-up, sign-in, and Credentials.
//!
//! Forms post back to the page that showed them; errors re-render the form with a message that
//! says what to do and keep what the person typed (except passwords and secrets).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ledgerflow_store::NewCredential;
use serde_json::{Map, Value};

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
    let csrf = p.csrf.clone().unwrap_or_default();
    let rows: String = creds
        .iter()
        .map(|c| {
            let ty = ledgerflow_credentials::get(&c.type_name)
                .map(|t| t.display_name)
                .unwrap_or(&c.type_name);
            format!(
                r#"<tr><td><strong>{name}</strong></td><td><span class="tag">{ty}</span></td><td>{created}</td><td>{updated}</td>
<td style="text-align:right"><form method="post" action="/credentials/{id}/delete" onsubmit="return confirm('Delete this credential? Workflows that use it will stop working.')"><input type="hidden" name="_csrf" value="{csrf}"><button class="btn secondary" type="submit">Delete</button></form></td></tr>"#,
                name = esc(&c.name),
                ty = esc(ty),
                created = when(c.created_at),
                updated = when(c.updated_at),
                id = esc(&c.id),
                csrf = esc(&csrf),
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

#[derive(serde::Deserialize)]
pub struct NewQuery {
    #[serde(rename = "type")]
    type_name: Option<String>,
}

fn credential_form(
    ty: &ledgerflow_credentials::CredentialType,
    csrf: &str,
    values: &HashMap<String, String>,
    error: &str,
) -> String {
    let fields: String = ty
        .fields
        .iter()
        .map(|f| {
            let (kind, value) = if f.secret {
                ("password", String::new())
            } else {
                ("text", values.get(f.name).cloned().unwrap_or_default())
            };
            format!(
                r#"<label for="f-{n}">{label}</label><input id="f-{n}" name="data.{n}" type="{kind}" value="{value}" {req} autocomplete="off">{hint}"#,
                n = esc(f.name),
                label = esc(f.display_name),
                value = esc(&value),
                req = if f.required { "required" } else { "" },
                hint = if f.secret {
                    r#"<div class="hint">Stored encrypted; never shown again.</div>"#
                } else {
                    ""
                },
            )
        })
        .collect();
    format!(
        r#"<div class="card" style="max-width:560px"><h1>New {title} credential</h1><p class="sub">{desc}</p>{alert}
<form method="post" action="/credentials/new?type={ty}"><input type="hidden" name="_csrf" value="{csrf}">
<label for="f-name">Credential name</label><input id="f-name" name="name" type="text" value="{name}" required>
{fields}<p style="margin-top:20px"><button class="btn" type="submit" id="save">Save</button> <a class="btn secondary" href="/credentials">Cancel</a></p></form></div>"#,
        title = esc(ty.display_name),
        desc = "Fill in the fields and save. You can use the credential in HTTP Request nodes.",
        alert = alert("error", error),
        ty = esc(ty.name),
        csrf = esc(csrf),
        name = esc(values
            .get("name")
            .map(String::as_str)
            .unwrap_or(ty.display_name)),
    )
}

pub async fn credential_new(
    Extension(p): Extension<Principal>,
    Query(q): Query<NewQuery>,
) -> Result<Html<String>, ApiError> {
    let csrf = p.csrf.clone().unwrap_or_default();
    let body = match q.type_name.as_deref().and_then(ledgerflow_credentials::get) {
        Some(ty) => credential_form(ty, &csrf, &HashMap::new(), ""),
        None => {
            let items: String = ledgerflow_credentials::all()
                .map(|t| {
                    format!(
                        r#"<tr><td><strong>{name}</strong><div class="hint">{fields}</div></td><td style="text-align:right"><a class="btn secondary" href="/credentials/new?type={id}">Select</a></td></tr>"#,
                        name = esc(t.display_name),
                        fields = esc(&t.fields.iter().map(|f| f.display_name).collect::<Vec<_>>().join(", ")),
                        id = esc(t.name),
                    )
                })
                .collect();
            format!(
                r#"<h1>Add a credential</h1><p class="sub">Pick the kind of credential.</p><table><tbody>{items}</tbody></table>"#
            )
        }
    };
    Ok(page("New credential", "credentials", user_of(&p), &body))
}

pub async fn credential_create(
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
    let data: Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("data.")
                .map(|k| (k.to_string(), Value::String(v.clone())))
        })
        .collect();
    let name = field(&form, "name").trim().to_string();
    let csrf = p.csrf.clone().unwrap_or_default();
    let values: HashMap<String, String> = form
        .iter()
        .map(|(k, v)| (k.strip_prefix("data.").unwrap_or(k).to_string(), v.clone()))
        .collect();
    let error = if name.is_empty() {
        Some("Give the credential a name.".to_string())
    } else {
        None
    };
    let split = match error {
        Some(e) => Err(e),
        None => ty
            .split_new(&Value::Object(data))
            .map_err(|e| e.to_string()),
    };
    match split {
        Ok(split) => {
            state
                .store
                .create_credential(NewCredential {
                    name: name.clone(),
                    type_name: ty.name.into(),
                    public: split.public,
                    secret: split.secret,
                })
                .await?;
            let to = format!(
                "/credentials?created={}",
                url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(msg) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            page(
                "New credential",
                "credentials",
                user_of(&p),
                &credential_form(ty, &csrf, &values, &msg),
            ),
        )
            .into_response()),
    }
}

pub async fn credential_delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Redirect, ApiError> {
    state.store.delete_credential(&id).await?;
    Ok(Redirect::to("/credentials?deleted=1"))
}
