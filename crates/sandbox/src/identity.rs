//! Xero's identity service: the authorize pages (sign-in and consent), the token endpoint
//! (authorization code with PKCE, refresh-token rotation with a grace period, idle expiry),
//! revocation, OpenID discovery, JWKS, userinfo and the `/connections` tenant list.
//!
//! Owns OAuth semantics only; app registration lives in `portal`/`admin`, the look of pages in
//! `html`. Every expiry decision reads the sandbox clock.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::html::{error_page, escape, page};
use crate::problem::Problem;
use crate::scopes;
use crate::state::{
    lock, random_token, App, AuthCode, Connection, Grant, IntegrationType, RefreshRecord, Sandbox,
};

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(
            "/identity/connect/authorize",
            get(authorize).post(authorize_form),
        )
        .route("/connect/token", post(token))
        .route("/connect/revocation", post(revocation))
        .route("/connect/userinfo", get(userinfo))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/openid-configuration/jwks", get(jwks))
        .route("/connections", get(connections))
        .route("/Connections", get(connections))
        .route("/connections/{id}", delete(delete_connection))
        .route("/Connections/{id}", delete(delete_connection))
}

fn chrono_duration(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

// ---------------------------------------------------------------------------------------------
// Authorize

/// The parameters of an authorize request, carried through the sign-in and consent forms.
#[derive(Debug, Clone, Default)]
struct AuthorizeRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

impl AuthorizeRequest {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        Self {
            response_type: get("response_type").unwrap_or_default(),
            client_id: get("client_id").unwrap_or_default(),
            redirect_uri: get("redirect_uri").unwrap_or_default(),
            scope: get("scope").unwrap_or_default(),
            state: get("state"),
            code_challenge: get("code_challenge").filter(|c| !c.is_empty()),
            code_challenge_method: get("code_challenge_method").filter(|c| !c.is_empty()),
            nonce: get("nonce").filter(|c| !c.is_empty()),
        }
    }

    fn hidden_fields(&self) -> String {
        let values = [
            Some(&self.response_type),
            Some(&self.client_id),
            Some(&self.redirect_uri),
            Some(&self.scope),
            self.state.as_ref(),
            self.code_challenge.as_ref(),
            self.code_challenge_method.as_ref(),
            self.nonce.as_ref(),
        ];
        CARRIED
            .iter()
            .zip(values)
            .filter_map(|(name, value)| {
                value.map(|v| {
                    format!(
                        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                        escape(v)
                    )
                })
            })
            .collect()
    }

    /// Checks everything that must hold before the user is even asked. A failure is shown as an
    /// error page and never redirected: the redirect URI cannot be trusted yet.
    fn validate(&self, sandbox: &Sandbox) -> Result<App, AuthorizeError> {
        let world = lock(&sandbox.world);
        let Some(app) = world.app(&self.client_id).cloned() else {
            return Err(AuthorizeError::new(
                "Unknown client",
                format!(
                    "unauthorized_client: no app has the client id '{}'.",
                    self.client_id
                ),
            ));
        };
        if !app.redirect_uris.iter().any(|r| r == &self.redirect_uri) {
            return Err(AuthorizeError::new(
                "Invalid redirect URI",
                format!(
                    "invalid_request: '{}' is not a redirect URI registered for the app '{}'. Redirect URIs must match exactly.",
                    self.redirect_uri, app.name
                ),
            ));
        }
        if self.response_type != "code" {
            return Err(AuthorizeError::new(
                "Unsupported response type",
                format!(
                    "unsupported_response_type: response_type must be 'code', not '{}'.",
                    self.response_type
                ),
            ));
        }
        let requested = scopes::split(&self.scope);
        if requested.is_empty() {
            return Err(AuthorizeError::new(
                "Invalid scope",
                "invalid_scope: no scope was requested.".into(),
            ));
        }
        if let Err(problem) = scopes::check_requested(&requested, app.created) {
            return Err(AuthorizeError::new(
                "Invalid scope",
                format!("invalid_scope: {problem}."),
            ));
        }
        match (&self.code_challenge, self.code_challenge_method.as_deref()) {
            (Some(_), None | Some("S256") | Some("plain")) => {}
            (Some(_), Some(other)) => {
                return Err(AuthorizeError::new(
                    "Invalid code challenge method",
                    format!(
                    "invalid_request: code_challenge_method '{other}' is not supported; use S256."
                ),
                ))
            }
            (None, _) if app.integration_type == IntegrationType::Pkce => {
                return Err(AuthorizeError::new(
                    "Code challenge required",
                    "invalid_request: this app uses PKCE; a code_challenge is required.".into(),
                ))
            }
            (None, _) => {}
        }
        Ok(app)
    }

    fn redirect(&self, extra: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid redirect URI",
                "the registered redirect URI is not an absolute URL",
            );
        };
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in extra {
                query.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
        }
        Redirect::to(url.as_str()).into_response()
    }
}

/// A request that cannot be trusted: shown as an error page, never redirected.
#[derive(Debug)]
struct AuthorizeError {
    title: &'static str,
    detail: String,
}

impl AuthorizeError {
    fn new(title: &'static str, detail: String) -> Self {
        Self { title, detail }
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        error_page(StatusCode::BAD_REQUEST, self.title, &self.detail)
    }
}

async fn authorize(
    State(sandbox): State<Arc<Sandbox>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let request = AuthorizeRequest::from_pairs(&query);
    let app = match request.validate(&sandbox) {
        Ok(app) => app,
        Err(error) => return error.into_response(),
    };
    if sandbox.config.auto_approve {
        let (user_id, tenants) = {
            let world = lock(&sandbox.world);
            match world.users.first() {
                Some(user) => (user.id, user.tenants.clone()),
                None => {
                    return error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "No user",
                        "the sandbox has no user",
                    )
                }
            }
        };
        return approve(&sandbox, &request, user_id, &tenants);
    }
    Html(sign_in_page(&request, &app, None)).into_response()
}

async fn authorize_form(State(sandbox): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let request = AuthorizeRequest::from_pairs(&pairs);
    let app = match request.validate(&sandbox) {
        Ok(app) => app,
        Err(error) => return error.into_response(),
    };
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let now = sandbox.clock.now();
    match field("step") {
        Some("consent") => {
            let ticket = field("login_ticket").unwrap_or_default();
            let user = {
                let world = lock(&sandbox.world);
                world
                    .login_tickets
                    .get(ticket)
                    .filter(|(_, expires)| *expires > now)
                    .and_then(|(user_id, _)| world.user(*user_id).cloned())
            };
            let Some(user) = user else {
                return Html(sign_in_page(
                    &request,
                    &app,
                    Some("Your sign-in expired. Please sign in again."),
                ))
                .into_response();
            };
            if field("action") != Some("allow") {
                lock(&sandbox.world).login_tickets.remove(ticket);
                return request.redirect(&[("error", "access_denied")]);
            }
            let chosen: Vec<Uuid> = pairs
                .iter()
                .filter(|(k, _)| k == "tenant")
                .filter_map(|(_, v)| Uuid::parse_str(v).ok())
                .filter(|t| user.tenants.contains(t))
                .collect();
            let wants_org = scopes::split(&request.scope)
                .iter()
                .any(|s| !scopes::IDENTITY.contains(&s.as_str()));
            if wants_org && chosen.is_empty() {
                return Html(consent_page(
                    &sandbox,
                    &request,
                    &app,
                    &user.tenants,
                    ticket,
                    Some("Select at least one organisation to connect."),
                ))
                .into_response();
            }
            lock(&sandbox.world).login_tickets.remove(ticket);
            approve(&sandbox, &request, user.id, &chosen)
        }
        _ => {
            let email = field("email").unwrap_or_default().trim();
            let password = field("password").unwrap_or_default();
            let user = {
                let world = lock(&sandbox.world);
                world
                    .users
                    .iter()
                    .find(|u| {
                        u.email.eq_ignore_ascii_case(email)
                            && bool::from(u.password.as_bytes().ct_eq(password.as_bytes()))
                    })
                    .cloned()
            };
            let Some(user) = user else {
                return Html(sign_in_page(
                    &request,
                    &app,
                    Some("Your email or password is incorrect."),
                ))
                .into_response();
            };
            let ticket = random_token(32);
            lock(&sandbox.world)
                .login_tickets
                .insert(ticket.clone(), (user.id, now + Duration::minutes(10)));
            Html(consent_page(
                &sandbox,
                &request,
                &app,
                &user.tenants,
                &ticket,
                None,
            ))
            .into_response()
        }
    }
}

/// Records the consent: connects the chosen tenants under a new authentication event and
/// redirects back with a fresh authorisation code.
fn approve(
    sandbox: &Sandbox,
    request: &AuthorizeRequest,
    user_id: Uuid,
    tenants: &[Uuid],
) -> Response {
    let now = sandbox.clock.now();
    let auth_event_id = Uuid::new_v4();
    let code = random_token(43);
    let scopes = scopes::split(&request.scope);
    {
        let mut world = lock(&sandbox.world);
        for tenant in tenants {
            let existing = world.connections.iter_mut().find(|c| {
                c.client_id == request.client_id && c.user_id == user_id && c.tenant_id == *tenant
            });
            match existing {
                Some(connection) => {
                    connection.auth_event_id = auth_event_id;
                    connection.updated = now;
                }
                None => world.connections.push(Connection {
                    id: Uuid::new_v4(),
                    client_id: request.client_id.clone(),
                    user_id,
                    tenant_id: *tenant,
                    auth_event_id,
                    created: now,
                    updated: now,
                }),
            }
        }
        world.codes.insert(
            code.clone(),
            AuthCode {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                scopes: scopes.clone(),
                user_id,
                auth_event_id,
                challenge: request.code_challenge.clone().map(|c| {
                    (
                        c,
                        request
                            .code_challenge_method
                            .clone()
                            .unwrap_or_else(|| "plain".into()),
                    )
                }),
                nonce: request.nonce.clone(),
                expires: now + chrono_duration(sandbox.config.auth_code_ttl),
                used: false,
            },
        );
    }
    request.redirect(&[("code", &code), ("scope", &scopes.join(" "))])
}

fn sign_in_page(request: &AuthorizeRequest, app: &App, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>Log in to Xero</h1>\
         <p class=\"muted\"><strong>{app}</strong> wants to connect to your Xero account.</p>{error}\
         <form method=\"post\" action=\"/identity/connect/authorize\" id=\"login-form\">{hidden}\
         <input type=\"hidden\" name=\"step\" value=\"login\">\
         <label for=\"email\">Email address</label><input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" id=\"login\">Log in</button></div>\
         </form><p class=\"hint\">Sandbox demo user: <code>{email}</code> / <code>{password}</code></p></div>",
        app = escape(&app.name),
        hidden = request.hidden_fields(),
        email = crate::state::DEMO_EMAIL,
        password = crate::state::DEMO_PASSWORD,
    );
    page("Log in", true, &body)
}

fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" | "profile" | "email" => "View your name, email address and user profile",
        "offline_access" => "Keep access when you are not using the app",
        s if s.contains("contacts") => "Contacts",
        s if s.contains("invoices") => "Invoices, quotes, purchase orders and items",
        s if s.contains("payments") => "Payments, overpayments and prepayments",
        s if s.contains("banktransactions") => "Bank transactions and transfers",
        s if s.contains("manualjournals") => "Manual journals",
        s if s.contains("reports") => "Reports",
        s if s.contains("settings") => "Organisation settings, chart of accounts and tax rates",
        s if s.contains("transactions") => "Business transactions",
        s if s.contains("attachments") => "Attachments",
        s if s.contains("journals") => "Journals",
        s if s.contains("budgets") => "Budgets",
        _ => "Other data",
    }
}

fn consent_page(
    sandbox: &Sandbox,
    request: &AuthorizeRequest,
    app: &App,
    tenants: &[Uuid],
    ticket: &str,
    error: Option<&str>,
) -> String {
    let world = lock(&sandbox.world);
    let orgs: String = tenants
        .iter()
        .enumerate()
        .filter_map(|(i, t)| world.org(*t).map(|o| (i, o)))
        .map(|(i, org)| {
            format!(
                "<label class=\"org\" for=\"org-{i}\"><input type=\"checkbox\" id=\"org-{i}\" name=\"tenant\" value=\"{id}\" checked> {name}</label>",
                id = org.tenant_id,
                name = escape(&org.name)
            )
        })
        .collect();
    let mut access: Vec<&str> = scopes::split(&request.scope)
        .iter()
        .map(|s| scope_description(s))
        .collect();
    access.dedup();
    let access: String = access
        .iter()
        .map(|a| format!("<li>{}</li>", escape(a)))
        .collect();
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"consent-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>{app} wants access to</h1><ul class=\"scopes\" id=\"scopes\">{access}</ul>{error}\
         <form method=\"post\" action=\"/identity/connect/authorize\" id=\"consent-form\">{hidden}\
         <input type=\"hidden\" name=\"step\" value=\"consent\"><input type=\"hidden\" name=\"login_ticket\" value=\"{ticket}\">\
         <h2>Select organisations to connect</h2><div id=\"organisations\">{orgs}</div>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"action\" value=\"allow\" id=\"allow\">Allow access</button>\
         <button class=\"secondary\" type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button></div>\
         </form></div>",
        app = escape(&app.name),
        hidden = request.hidden_fields(),
        ticket = escape(ticket),
    );
    page("Allow access", true, &body)
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

/// A token endpoint error, `{"error": "…"}` with status 400 as Xero sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
}

impl TokenError {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({"error": self.code()}))).into_response()
    }
}

/// Reads the form body and authenticates the client (HTTP Basic or body credentials; PKCE apps
/// send only `client_id`).
fn client_and_form(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(App, HashMap<String, String>), TokenError> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b64| {
            let decoded = STANDARD
                .decode(b64.trim())
                .map_err(|_| TokenError::InvalidClient)?;
            let text = String::from_utf8(decoded).map_err(|_| TokenError::InvalidClient)?;
            let (id, secret) = text.split_once(':').ok_or(TokenError::InvalidClient)?;
            Ok::<_, TokenError>((id.to_owned(), Some(secret.to_owned())))
        })
        .transpose()?;
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id")
                .cloned()
                .ok_or(TokenError::InvalidClient)?,
            form.get("client_secret").cloned(),
        ),
    };
    let app = lock(&sandbox.world)
        .app(&client_id)
        .cloned()
        .ok_or(TokenError::InvalidClient)?;
    match (app.integration_type, &app.client_secret, secret) {
        (IntegrationType::Pkce, _, None) => {}
        (_, Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) => {}
        _ => return Err(TokenError::InvalidClient),
    }
    Ok((app, form))
}

async fn token(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: Bytes) -> Response {
    let grant_type = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let result =
        client_and_form(&sandbox, &headers, &body).and_then(|(app, form)| {
            match grant_type.as_str() {
                "authorization_code" => exchange_code(&sandbox, &app, &form),
                "refresh_token" => refresh(&sandbox, &app, &form),
                "client_credentials" => Err(TokenError::UnauthorizedClient),
                _ => Err(TokenError::UnsupportedGrantType),
            }
        });
    let outcome = if result.is_ok() { "ok" } else { "error" };
    *lock(&sandbox.counters)
        .grant_types
        .entry(format!("{grant_type} {outcome}"))
        .or_default() += 1;
    match result {
        Ok(tokens) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(tokens),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

fn verify_pkce(challenge: &(String, String), verifier: Option<&String>) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    let computed = match challenge.1.as_str() {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.clone(),
    };
    bool::from(computed.as_bytes().ct_eq(challenge.0.as_bytes()))
}

fn exchange_code(
    sandbox: &Sandbox,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let code = form.get("code").ok_or(TokenError::InvalidRequest)?;
    let now = sandbox.clock.now();
    let mut world = lock(&sandbox.world);
    let entry = world.codes.get_mut(code).ok_or(TokenError::InvalidGrant)?;
    if entry.used || entry.expires <= now || entry.client_id != app.client_id {
        return Err(TokenError::InvalidGrant);
    }
    if form.get("redirect_uri") != Some(&entry.redirect_uri) {
        return Err(TokenError::InvalidGrant);
    }
    match &entry.challenge {
        Some(challenge) if !verify_pkce(challenge, form.get("code_verifier")) => {
            return Err(TokenError::InvalidGrant)
        }
        Some(_) => {}
        None if app.integration_type == IntegrationType::Pkce => {
            return Err(TokenError::InvalidGrant)
        }
        None => {}
    }
    entry.used = true;
    let code = entry.clone();
    let grant_id = Uuid::new_v4();
    world.grants.insert(
        grant_id,
        Grant {
            client_id: app.client_id.clone(),
            user_id: code.user_id,
            auth_event_id: code.auth_event_id,
            scopes: code.scopes.clone(),
            revoked: false,
        },
    );
    drop(world);
    Ok(issue_tokens(sandbox, grant_id, code.nonce.as_deref()))
}

fn refresh(
    sandbox: &Sandbox,
    app: &App,
    form: &HashMap<String, String>,
) -> Result<Value, TokenError> {
    let presented = form
        .get("refresh_token")
        .ok_or(TokenError::InvalidRequest)?;
    let now = sandbox.clock.now();
    let grace = chrono_duration(sandbox.config.refresh_grace);
    let idle = chrono_duration(sandbox.config.refresh_idle_expiry);
    let grant_id = {
        let mut world = lock(&sandbox.world);
        let record = world
            .refresh_tokens
            .get(presented)
            .cloned()
            .ok_or(TokenError::InvalidGrant)?;
        let grant = world
            .grants
            .get(&record.grant_id)
            .ok_or(TokenError::InvalidGrant)?;
        if grant.revoked || grant.client_id != app.client_id {
            return Err(TokenError::InvalidGrant);
        }
        let usable = match record.rotated {
            None => now - record.issued <= idle,
            Some(rotated) => now - rotated <= grace,
        };
        if !usable {
            return Err(TokenError::InvalidGrant);
        }
        if record.rotated.is_none() {
            if let Some(r) = world.refresh_tokens.get_mut(presented) {
                r.rotated = Some(now);
            }
        }
        record.grant_id
    };
    Ok(issue_tokens(sandbox, grant_id, None))
}

/// Signs an access token (and id token when `openid` was granted) and, with `offline_access`,
/// adds a new refresh token to the grant.
fn issue_tokens(sandbox: &Sandbox, grant_id: Uuid, nonce: Option<&str>) -> Value {
    let now = sandbox.clock.now();
    let mut world = lock(&sandbox.world);
    let Some(grant) = world.grants.get(&grant_id).cloned() else {
        return json!({"error": "invalid_grant"});
    };
    let ttl = sandbox.config.access_token_ttl.as_secs() as i64;
    let iat = now.timestamp();
    let sub = grant.user_id.simple().to_string();
    let access = sandbox.signer.sign(&json!({
        "nbf": iat,
        "exp": iat + ttl,
        "iat": iat,
        "iss": sandbox.base_url,
        "aud": format!("{}/resources", sandbox.base_url),
        "client_id": grant.client_id,
        "sub": sub,
        "auth_time": iat,
        "xero_userid": grant.user_id,
        "global_session_id": grant_id.simple().to_string(),
        "sid": grant_id.simple().to_string(),
        "jti": Uuid::new_v4().simple().to_string(),
        "authentication_event_id": grant.auth_event_id,
        "scope": grant.scopes,
        "amr": ["pwd"],
    }));
    let mut response = json!({
        "access_token": access,
        "expires_in": ttl,
        "token_type": "Bearer",
        "scope": grant.scopes.join(" "),
    });
    if grant.scopes.iter().any(|s| s == "offline_access") {
        let refresh = random_token(64);
        world.refresh_tokens.insert(
            refresh.clone(),
            RefreshRecord {
                grant_id,
                issued: now,
                rotated: None,
            },
        );
        response["refresh_token"] = json!(refresh);
    }
    if grant.scopes.iter().any(|s| s == "openid") {
        if let Some(user) = world.user(grant.user_id) {
            let mut claims = json!({
                "nbf": iat, "exp": iat + 300, "iat": iat,
                "iss": sandbox.base_url, "aud": grant.client_id,
                "sub": sub, "auth_time": iat, "at_hash": URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]),
                "xero_userid": user.id, "global_session_id": grant_id.simple().to_string(),
                "sid": grant_id.simple().to_string(),
            });
            if grant.scopes.iter().any(|s| s == "email") {
                claims["email"] = json!(user.email);
                claims["preferred_username"] = json!(user.email);
            }
            if grant.scopes.iter().any(|s| s == "profile") {
                claims["given_name"] = json!(user.given_name);
                claims["family_name"] = json!(user.family_name);
                claims["name"] = json!(format!("{} {}", user.given_name, user.family_name));
            }
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            response["id_token"] = json!(sandbox.signer.sign(&claims));
        }
    }
    response
}

async fn revocation(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (app, form) = match client_and_form(&sandbox, &headers, &body) {
        Ok(pair) => pair,
        Err(error) => return error.into_response(),
    };
    let Some(token) = form.get("token") else {
        return TokenError::InvalidRequest.into_response();
    };
    let mut world = lock(&sandbox.world);
    let grant_id = world.refresh_tokens.get(token).map(|r| r.grant_id);
    if let Some(grant_id) = grant_id {
        let Some(grant) = world.grants.get_mut(&grant_id) else {
            return StatusCode::OK.into_response();
        };
        if grant.client_id != app.client_id {
            return StatusCode::OK.into_response();
        }
        grant.revoked = true;
        let user_id = grant.user_id;
        world.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
        world
            .connections
            .retain(|c| !(c.client_id == app.client_id && c.user_id == user_id));
    }
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens, discovery, userinfo, connections

/// What an access token proves.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub client_id: String,
    pub user_id: Uuid,
    pub auth_event_id: Uuid,
    pub scopes: Vec<String>,
}

/// Validates the `Authorization: Bearer` header against the signing key and the sandbox clock.
pub fn bearer(sandbox: &Sandbox, headers: &HeaderMap) -> Result<Bearer, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))?;
    let claims = sandbox
        .signer
        .verify(token.trim())
        .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))?;
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let now = sandbox.clock.now();
    if exp <= now.timestamp() {
        let at = DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or(now);
        return Err(Problem::Unauthorized(format!(
            "TokenExpired: token expired at {}",
            at.format("%m/%d/%Y %H:%M:%S")
        )));
    }
    let uuid = |key: &str| {
        claims[key]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| Problem::Unauthorized("AuthenticationUnsuccessful".into()))
    };
    Ok(Bearer {
        client_id: claims["client_id"].as_str().unwrap_or_default().to_owned(),
        user_id: uuid("xero_userid")?,
        auth_event_id: uuid("authentication_event_id")?,
        scopes: claims["scope"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

async fn discovery(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let base = &sandbox.base_url;
    Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/.well-known/openid-configuration/jwks"),
        "authorization_endpoint": format!("{base}/identity/connect/authorize"),
        "token_endpoint": format!("{base}/connect/token"),
        "userinfo_endpoint": format!("{base}/connect/userinfo"),
        "revocation_endpoint": format!("{base}/connect/revocation"),
        "scopes_supported": scopes::IDENTITY.iter().chain(scopes::CURRENT).chain(scopes::BROAD_RETIRED).collect::<Vec<_>>(),
        "claims_supported": ["sub", "xero_userid", "email", "given_name", "family_name", "name", "preferred_username", "global_session_id", "authentication_event_id"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "request_parameter_supported": false,
    }))
}

async fn jwks(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(sandbox.signer.jwks())
}

async fn userinfo(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let world = lock(&sandbox.world);
    let Some(user) = world.user(bearer.user_id) else {
        return Problem::Unauthorized("AuthenticationUnsuccessful".into()).into_response();
    };
    Json(json!({
        "sub": user.id.simple().to_string(),
        "xero_userid": user.id,
        "email": user.email,
        "preferred_username": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "name": format!("{} {}", user.given_name, user.family_name),
    }))
    .into_response()
}

fn connection_json(c: &Connection, tenant_name: &str) -> Value {
    // Xero's seven fractional digits, no zone designator.
    let fmt = |d: &DateTime<Utc>| {
        format!(
            "{}.{:07}",
            d.format("%Y-%m-%dT%H:%M:%S"),
            d.timestamp_subsec_nanos() / 100
        )
    };
    json!({
        "id": c.id,
        "authEventId": c.auth_event_id,
        "tenantId": c.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": tenant_name,
        "createdDateUtc": fmt(&c.created),
        "updatedDateUtc": fmt(&c.updated),
    })
}

async fn connections(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let filter = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authEventId"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let world = lock(&sandbox.world);
    let list: Vec<Value> = world
        .connections
        .iter()
        .filter(|c| c.client_id == bearer.client_id && c.user_id == bearer.user_id)
        .filter(|c| {
            filter
                .as_ref()
                .is_none_or(|f| c.auth_event_id.to_string() == *f)
        })
        .map(|c| {
            let name = world
                .org(c.tenant_id)
                .map(|o| o.name.as_str())
                .unwrap_or("");
            connection_json(c, name)
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn delete_connection(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let bearer = match bearer(&sandbox, &headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::NotFound.into_response();
    };
    let mut world = lock(&sandbox.world);
    let before = world.connections.len();
    world.connections.retain(|c| {
        !(c.id == id && c.client_id == bearer.client_id && c.user_id == bearer.user_id)
    });
    if world.connections.len() == before {
        return Problem::NotFound.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_plain_verify_only_the_matching_verifier() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
        let s256 = (
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            "S256".to_owned(),
        );
        assert!(verify_pkce(&s256, Some(&verifier)));
        assert!(!verify_pkce(&s256, Some(&"wrong".to_owned())));
        assert!(!verify_pkce(&s256, None));
        let plain = (verifier.clone(), "plain".to_owned());
        assert!(verify_pkce(&plain, Some(&verifier)));
    }
}
