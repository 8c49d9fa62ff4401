//! Developer portal pages in the style of Xero's "My Apps": list apps, register a new app,
//! configure it (client id, redirect URIs, generate a client secret shown once, webhook delivery
//! URL and key, intent-to-receive check).
//!
//! Element ids are stable so browser tests can drive the pages:
//! `/portal/apps/new`: `#app-name`, `#integration-type` (`web` | `pkce`), `#company-url`,
//! `#redirect-uri`, `#create-app`. `/portal/apps/{client_id}`: `#client-id`, `#generate-secret`,
//! `#client-secret` (text = the secret, present only right after generating), `#redirect-uris`
//! (one per line), `#save-redirect-uris`, `#webhook-url`, `#save-webhook`, `#webhook-status`,
//! `#webhook-key`,
//! `#send-intent`, `#intent-result`, `#message`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::admin::{check_redirect_uri, register_app};
use crate::html::{error_page, escape, page};
use crate::state::{lock, random_token, App, IntegrationType, Sandbox};
use crate::webhooks::intent_to_receive;

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/portal", get(list))
        .route("/portal/apps", get(list).post(create))
        .route("/portal/apps/new", get(new_form))
        .route("/portal/apps/{client_id}", get(configuration))
        .route("/portal/apps/{client_id}/secret", post(generate_secret))
        .route(
            "/portal/apps/{client_id}/redirect-uris",
            post(save_redirects),
        )
        .route("/portal/apps/{client_id}/webhook", post(save_webhook))
        .route("/portal/apps/{client_id}/webhook/intent", post(send_intent))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

async fn list(State(sandbox): State<Arc<Sandbox>>) -> Html<String> {
    let world = lock(&sandbox.world);
    let rows: String = world
        .apps
        .iter()
        .map(|app| {
            format!(
                "<tr><td><a href=\"/portal/apps/{id}\" class=\"app-link\">{name}</a></td><td>{kind}</td><td><code>{id}</code></td><td>{created}</td></tr>",
                id = escape(&app.client_id),
                name = escape(&app.name),
                kind = app.integration_type.label(),
                created = app.created.format("%-d %b %Y"),
            )
        })
        .collect();
    let body = format!(
        "<div class=\"card\"><div style=\"display:flex;align-items:center\"><h1 style=\"margin:0\">My Apps</h1>\
         <a class=\"button primary\" id=\"new-app\" href=\"/portal/apps/new\" style=\"margin-left:auto\">New app</a></div>\
         <p class=\"muted\">Apps connect to Xero organisations with OAuth 2.0. This sandbox accepts the same flows as Xero.</p>\
         <table id=\"apps\"><thead><tr><th>App name</th><th>Integration type</th><th>Client id</th><th>Created</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>"
    );
    Html(page("My Apps", false, &body))
}

fn new_form_page(error: Option<&str>, values: &[(String, String)]) -> String {
    let v = |name: &str| escape(field(values, name));
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"message\">{}</p>", escape(e)))
        .unwrap_or_default();
    let selected = |kind: &str| {
        if field(values, "integration_type") == kind {
            " selected"
        } else {
            ""
        }
    };
    let body = format!(
        "<div class=\"card\"><h1>Add a new app</h1>{error}\
         <form method=\"post\" action=\"/portal/apps\" id=\"new-app-form\">\
         <label for=\"app-name\">App name</label><input type=\"text\" id=\"app-name\" name=\"app_name\" value=\"{name}\" required>\
         <label for=\"integration-type\">Integration type</label>\
         <select id=\"integration-type\" name=\"integration_type\">\
         <option value=\"web\"{web}>Web app</option><option value=\"pkce\"{pkce}>Mobile or desktop app (Auth code with PKCE)</option></select>\
         <div class=\"hint\">Web apps keep a client secret on a server. PKCE apps have no secret.</div>\
         <label for=\"company-url\">Company or application URL</label><input type=\"url\" id=\"company-url\" name=\"company_url\" value=\"{company}\" placeholder=\"https://\">\
         <label for=\"redirect-uri\">Redirect URI</label><input type=\"url\" id=\"redirect-uri\" name=\"redirect_uri\" value=\"{redirect}\" placeholder=\"https://example.com/callback\" required>\
         <div class=\"hint\">Must match exactly. https is required except for localhost.</div>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" id=\"create-app\">Create app</button>\
         <a class=\"button secondary\" href=\"/portal\" id=\"cancel\">Cancel</a></div></form></div>",
        name = v("app_name"),
        company = v("company_url"),
        redirect = v("redirect_uri"),
        web = selected("web"),
        pkce = selected("pkce"),
    );
    page("New app", true, &body)
}

async fn new_form() -> Html<String> {
    Html(new_form_page(None, &[]))
}

async fn create(State(sandbox): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let pairs = form(&body);
    let kind =
        IntegrationType::parse(field(&pairs, "integration_type")).unwrap_or(IntegrationType::Web);
    let redirect = field(&pairs, "redirect_uri").trim();
    let redirects = if redirect.is_empty() {
        Vec::new()
    } else {
        vec![redirect.to_owned()]
    };
    match register_app(
        &sandbox,
        field(&pairs, "app_name"),
        kind,
        field(&pairs, "company_url"),
        redirects,
        None,
        false,
    ) {
        Ok(app) => Redirect::to(&format!("/portal/apps/{}", app.client_id)).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Html(new_form_page(Some(&message), &pairs)),
        )
            .into_response(),
    }
}

fn find(sandbox: &Sandbox, client_id: &str) -> Option<App> {
    lock(&sandbox.world).app(client_id).cloned()
}

fn app_not_found(client_id: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "App not found",
        &format!("There is no app with the client id '{client_id}'."),
    )
}

/// What the configuration page shows besides the app itself.
#[derive(Default)]
struct Flash<'a> {
    secret: Option<&'a str>,
    message: Option<&'a str>,
    error: Option<&'a str>,
    intent: Option<(bool, &'a str)>,
}

fn configuration_page(app: &App, flash: Flash<'_>) -> String {
    let id = escape(&app.client_id);
    let secret = match (app.integration_type, flash.secret, &app.client_secret) {
        (IntegrationType::Pkce, _, _) => "<p class=\"muted\" id=\"no-secret\">PKCE apps do not use a client secret.</p>".to_owned(),
        (_, Some(secret), _) => format!(
            "<div class=\"field\"><div class=\"name\">Client secret</div><code class=\"secret\" id=\"client-secret\">{}</code></div>\
             <p class=\"notice\">Copy this secret now. It will not be shown again.</p>",
            escape(secret)
        ),
        (_, None, Some(_)) => "<div class=\"field\"><div class=\"name\">Client secret</div><span class=\"muted\" id=\"secret-hidden\">A secret has been generated. It is hidden.</span></div>".to_owned(),
        (_, None, None) => "<div class=\"field\"><div class=\"name\">Client secret</div><span class=\"muted\" id=\"secret-none\">No secret yet.</span></div>".to_owned(),
    };
    let secret_button = if app.integration_type == IntegrationType::Web {
        format!(
            "<form method=\"post\" action=\"/portal/apps/{id}/secret\"><button class=\"secondary\" type=\"submit\" id=\"generate-secret\">Generate a secret</button></form>"
        )
    } else {
        String::new()
    };
    let message = match (flash.message, flash.error) {
        (_, Some(e)) => format!("<p class=\"error\" id=\"message\">{}</p>", escape(e)),
        (Some(m), None) => format!("<p class=\"notice\" id=\"message\">{}</p>", escape(m)),
        _ => String::new(),
    };
    let intent = flash
        .intent
        .map(|(passed, detail)| {
            format!(
                "<p class=\"{}\" id=\"intent-result\" data-passed=\"{passed}\">{}</p>",
                if passed { "notice" } else { "error" },
                escape(detail)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"/portal\">&larr; My Apps</a></p>{message}\
         <div class=\"card\"><h1 id=\"app-title\">{name}</h1><p class=\"muted\">{kind} · created {created}</p>\
         <h2>Configuration</h2>\
         <div class=\"field\"><div class=\"name\">Client id</div><code id=\"client-id\">{id}</code></div>\
         {secret}{secret_button}\
         <form method=\"post\" action=\"/portal/apps/{id}/redirect-uris\">\
         <label for=\"redirect-uris\">Redirect URIs (one per line)</label>\
         <textarea id=\"redirect-uris\" name=\"redirect_uris\">{redirects}</textarea>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" id=\"save-redirect-uris\">Save</button></div></form></div>\
         <div class=\"card\"><h2>Webhooks</h2>\
         <p class=\"muted\">Xero sends contact, invoice and credit note events to this URL, signed with the webhook key.</p>\
         <form method=\"post\" action=\"/portal/apps/{id}/webhook\">\
         <label for=\"webhook-url\">Delivery URL</label><input type=\"url\" id=\"webhook-url\" name=\"webhook_url\" value=\"{webhook}\" placeholder=\"https://example.com/webhooks/xero\">\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" id=\"save-webhook\">Save</button></div></form>\
         <div class=\"field\"><div class=\"name\">Delivery status</div><span id=\"webhook-status\">{status}</span></div>\
         <div class=\"field\"><div class=\"name\">Webhook key</div><code class=\"secret\" id=\"webhook-key\">{key}</code></div>\
         <form method=\"post\" action=\"/portal/apps/{id}/webhook/intent\"><button class=\"secondary\" type=\"submit\" id=\"send-intent\">Send \"Intent to receive\"</button></form>{intent}</div>",
        name = escape(&app.name),
        kind = app.integration_type.label(),
        created = app.created.format("%-d %b %Y"),
        redirects = escape(&app.redirect_uris.join("\n")),
        webhook = escape(app.webhook_url.as_deref().unwrap_or_default()),
        key = escape(&app.webhook_key),
        status = match (&app.webhook_url, app.webhook_disabled) {
            (None, _) => "Not set up",
            (Some(_), false) => "Enabled",
            (Some(_), true) => "Disabled after failed deliveries. Save the URL or send \"Intent to receive\" to enable it again.",
        },
    );
    page(&app.name, false, &body)
}

async fn configuration(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
) -> Response {
    match find(&sandbox, &client_id) {
        Some(app) => Html(configuration_page(&app, Flash::default())).into_response(),
        None => app_not_found(&client_id),
    }
}

async fn generate_secret(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
) -> Response {
    let secret = random_token(48);
    let app = {
        let mut world = lock(&sandbox.world);
        match world.app_mut(&client_id) {
            Some(app) if app.integration_type == IntegrationType::Web => {
                app.client_secret = Some(secret.clone());
                Some(app.clone())
            }
            _ => None,
        }
    };
    match app {
        Some(app) => Html(configuration_page(
            &app,
            Flash {
                secret: Some(&secret),
                ..Flash::default()
            },
        ))
        .into_response(),
        None => error_page(
            StatusCode::NOT_FOUND,
            "No secret for this app",
            "The app does not exist or is a PKCE app, which has no secret.",
        ),
    }
}

async fn save_redirects(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form(&body);
    let uris: Vec<String> = field(&pairs, "redirect_uris")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let problem = if uris.is_empty() {
        Some("At least one redirect URI is required".to_owned())
    } else if uris.len() > 50 {
        Some("An app can have at most 50 redirect URIs".to_owned())
    } else {
        uris.iter().find_map(|u| check_redirect_uri(u).err())
    };
    let app = {
        let mut world = lock(&sandbox.world);
        let Some(app) = world.app_mut(&client_id) else {
            return app_not_found(&client_id);
        };
        if problem.is_none() {
            app.redirect_uris = uris;
        }
        app.clone()
    };
    let flash = match &problem {
        Some(e) => Flash {
            error: Some(e),
            ..Flash::default()
        },
        None => Flash {
            message: Some("Redirect URIs saved."),
            ..Flash::default()
        },
    };
    Html(configuration_page(&app, flash)).into_response()
}

async fn save_webhook(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form(&body);
    let url = field(&pairs, "webhook_url").trim().to_owned();
    let problem = (!url.is_empty() && url::Url::parse(&url).is_err())
        .then(|| format!("'{url}' is not an absolute URL"));
    let app = {
        let mut world = lock(&sandbox.world);
        let Some(app) = world.app_mut(&client_id) else {
            return app_not_found(&client_id);
        };
        if problem.is_none() {
            app.webhook_url = (!url.is_empty()).then_some(url);
            app.webhook_disabled = false;
        }
        app.clone()
    };
    let flash = match &problem {
        Some(e) => Flash {
            error: Some(e),
            ..Flash::default()
        },
        None => Flash {
            message: Some("Webhook settings saved."),
            ..Flash::default()
        },
    };
    Html(configuration_page(&app, flash)).into_response()
}

async fn send_intent(
    State(sandbox): State<Arc<Sandbox>>,
    Path(client_id): Path<String>,
) -> Response {
    let Some(app) = find(&sandbox, &client_id) else {
        return app_not_found(&client_id);
    };
    let Some(url) = app.webhook_url.clone() else {
        return Html(configuration_page(
            &app,
            Flash {
                error: Some("Save a delivery URL first."),
                ..Flash::default()
            },
        ))
        .into_response();
    };
    let report = intent_to_receive(&url, &app.webhook_key).await;
    if report.passed {
        crate::webhooks::set_disabled(&sandbox, &client_id, false);
    }
    let app = find(&sandbox, &client_id).unwrap_or(app);
    Html(configuration_page(
        &app,
        Flash {
            intent: Some((report.passed, &report.detail)),
            ..Flash::default()
        },
    ))
    .into_response()
}
