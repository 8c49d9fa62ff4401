//! The authorize endpoint: request validation (error pages, never a redirect, for requests that
//! cannot be trusted), the sign-in and consent pages, auto-approval in test mode, and recording
//! the consent as connections plus a single-use authorisation code.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::chrono_duration;
use crate::html::{error_page, escape, page};
use crate::scopes;
use crate::state::{lock, random_token, App, AuthCode, Connection, IntegrationType, Sandbox};

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

pub(super) async fn authorize(
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

pub(super) async fn authorize_form(State(sandbox): State<Arc<Sandbox>>, body: Bytes) -> Response {
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
