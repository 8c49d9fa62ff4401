//! The server over real HTTP on a loopback port: authentication, CSRF, the credentials API and
//! its error shapes, the pages, health and metrics.

use ledgerflow_server::{auth, AppState, ServerConfig};
use ledgerflow_store::{Keyring, Store};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};
use reqwest::{redirect, Response, StatusCode};
use serde_json::{json, Value};

struct TestApp {
    base: String,
    http: reqwest::Client,
    store: Store,
    state: AppState,
    _home: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery";

fn cookies_of(resp: &Response) -> Vec<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn hidden_csrf(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("form has a CSRF field")
        + 20;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// A browser-like session: its cookie header and the CSRF token its pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

impl TestApp {
    async fn spawn() -> TestApp {
        Self::spawn_with(None).await
    }

    async fn spawn_with(sandbox_url: Option<String>) -> TestApp {
        Self::spawn_on(sandbox_url, None).await
    }

    /// On the given database (a PostgreSQL test database), or a fresh SQLite file.
    async fn spawn_on(sandbox_url: Option<String>, database_url: Option<&str>) -> TestApp {
        let home = tempfile::tempdir().unwrap();
        let keyring = Keyring::load(home.path(), None).unwrap();
        let url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| ledgerflow_store::sqlite_url(home.path()));
        let store = Store::connect(&url, keyring).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(
            store.clone(),
            ServerConfig {
                public_url: base.parse().unwrap(),
                sandbox_url,
            },
        );
        ledgerflow_server::runtime::spawn(&state);
        tokio::spawn(ledgerflow_server::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        TestApp {
            base,
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            state,
            _home: home,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Walks the owner set-up form as a browser would and returns the signed-in session.
    async fn set_up_owner(&self) -> Session {
        let page = self.http.get(self.url("/setup")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let pre = cookies_of(&page);
        let pre_cookie = format!("{}={}", pre[0].0, pre[0].1);
        let token = hidden_csrf(&page.text().await.unwrap());
        let resp = self
            .http
            .post(self.url("/setup"))
            .header(COOKIE, &pre_cookie)
            .form(&[
                ("_csrf", token.as_str()),
                ("email", "owner@example.com"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        self.session_from(&resp).await
    }

    async fn session_from(&self, resp: &Response) -> Session {
        let (k, v) = cookies_of(resp)
            .into_iter()
            .find(|(k, _)| k == auth::SESSION_COOKIE)
            .expect("a session cookie");
        let cookie = format!("{k}={v}");
        let html = self
            .http
            .get(self.url("/credentials"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Session {
            csrf: hidden_csrf(&html),
            cookie,
        }
    }

    async fn api_key(&self) -> String {
        let owner = self.store.owner().await.unwrap().unwrap();
        let (key, prefix, hash) = auth::new_api_key();
        self.store
            .create_api_key(&owner.id, "test", &prefix, &hash)
            .await
            .unwrap();
        key
    }

    fn bearer(&self, key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        h
    }
}

async fn error_of(resp: Response) -> (StatusCode, String, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error body is JSON");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn protected_routes_answer_401_without_credentials_and_healthz_is_open() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for path in [
        "/api/v1/credentials",
        "/api/v1/credential-types",
        "/api/v1/openapi.json",
        "/metrics",
        "/credentials",
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        let (status, code, _) = error_of(resp).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
    }
    let resp = app
        .http
        .post(app.url("/api/v1/credentials"))
        .json(&json!({"name": "x", "type": "httpBasicAuth", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn a_browser_without_a_session_is_sent_to_setup_then_to_sign_in() {
    let app = TestApp::spawn().await;
    let page = |path: &'static str| {
        app.http
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
    };
    let resp = page("/credentials").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/setup");
    app.set_up_owner().await;
    let resp = page("/credentials").await.unwrap();
    assert_eq!(resp.headers()["location"], "/signin");
    // Once an owner exists, set-up is closed.
    let resp = page("/setup").await.unwrap();
    assert_eq!(resp.headers()["location"], "/signin");
}

#[tokio::test]
async fn bad_api_keys_get_401_and_good_ones_work() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let key = app.api_key().await;
    for bad in ["Bearer lf_wrong", "Basic abc", "Bearer "] {
        let resp = app
            .http
            .get(app.url("/api/v1/credentials"))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        let (status, _, message) = error_of(resp).await;
        assert_eq!(status, 401, "{bad}");
        assert!(
            message.contains("apikey create") || message.contains("Bearer"),
            "{message}"
        );
    }
    let resp = app
        .http
        .get(app.url("/api/v1/credentials"))
        .headers(app.bearer(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"data": []}));
}

#[tokio::test]
async fn form_posts_and_cookie_api_calls_without_csrf_are_refused() {
    let app = TestApp::spawn().await;
    let session = app.set_up_owner().await;

    // Signed-in form post with no token, and with a wrong one.
    for form in [vec![], vec![("_csrf", "0".repeat(64))]] {
        let resp = app
            .http
            .post(app.url("/credentials/new?type=httpBasicAuth"))
            .header(COOKIE, &session.cookie)
            .form(
                &form
                    .into_iter()
                    .chain([
                        ("name", "X".to_string()),
                        ("data.user", "u".into()),
                        ("data.password", "p".into()),
                    ])
                    .collect::<Vec<_>>(),
            )
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(resp).await;
        assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "csrf"));
    }
    // Cookie-authenticated JSON without the header.
    let body =
        json!({"name": "X", "type": "httpBasicAuth", "data": {"user": "u", "password": "p"}});
    let resp = app
        .http
        .post(app.url("/api/v1/credentials"))
        .header(COOKIE, &session.cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.store.count_credentials().await.unwrap(), 0);

    // With the token both work.
    let resp = app
        .http
        .post(app.url("/api/v1/credentials"))
        .header(COOKIE, &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = app
        .http
        .post(app.url("/credentials/new?type=httpBasicAuth"))
        .header(COOKIE, &session.cookie)
        .form(&[
            ("_csrf", session.csrf.as_str()),
            ("name", "From the form"),
            ("data.user", "u"),
            ("data.password", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.store.count_credentials().await.unwrap(), 2);

    // Pre-sign-in forms use the double-submit cookie: a post without it is refused.
    let resp = app
        .http
        .post(app.url("/signin"))
        .form(&[
            ("_csrf", "abc"),
            ("email", "owner@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(cookies_of(&resp)
        .iter()
        .all(|(k, _)| k != auth::SESSION_COOKIE));
}

#[tokio::test]
async fn sign_in_rejects_a_wrong_password_and_sign_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let first = app.set_up_owner().await;
    let page = app.http.get(app.url("/signin")).send().await.unwrap();
    let pre = cookies_of(&page);
    let pre_cookie = format!("{}={}", pre[0].0, pre[0].1);
    let token = hidden_csrf(&page.text().await.unwrap());
    let attempt = |password: &'static str| {
        app.http
            .post(app.url("/signin"))
            .header(COOKIE, &pre_cookie)
            .form(&[
                ("_csrf", token.as_str()),
                ("email", "Owner@Example.com"),
                ("password", password),
            ])
            .send()
    };
    let resp = attempt("wrong password!").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("not right"));
    let resp = attempt(PASSWORD).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let second = app.session_from(&resp).await;

    let resp = app
        .http
        .post(app.url("/signout"))
        .header(COOKIE, &first.cookie)
        .form(&[("_csrf", first.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let status = |cookie: String| {
        let req = app
            .http
            .get(app.url("/api/v1/credentials"))
            .header(COOKIE, cookie);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status(first.cookie.clone()).await, 401);
    assert_eq!(status(second.cookie.clone()).await, 200);
}

#[tokio::test]
async fn credentials_api_round_trip_never_returns_secrets() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let secret = "SECRET-b41c-never-shown";
    let resp = app
        .http
        .post(app.url("/api/v1/credentials"))
        .headers(auth.clone())
        .json(&json!({"name": "Payroll API", "type": "httpHeaderAuth", "data": {"name": "X-Api-Key", "value": secret}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(secret));
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["type"], "httpHeaderAuth");
    assert_eq!(created["data"], json!({"name": "X-Api-Key"}));
    assert_eq!(created["secretFieldsSet"], json!(["value"]));
    let id = created["id"].as_str().unwrap().to_string();

    let get = |path: String| app.http.get(app.url(&path)).headers(auth.clone()).send();
    for path in [
        format!("/api/v1/credentials/{id}"),
        "/api/v1/credentials".into(),
    ] {
        let text = get(path).await.unwrap().text().await.unwrap();
        assert!(
            text.contains("Payroll API") && !text.contains(secret),
            "{text}"
        );
    }
    let html = app
        .http
        .get(app.url("/credentials"))
        .headers(auth.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Payroll API") && !html.contains(secret));

    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/credentials/{id}")))
        .headers(auth.clone())
        .json(&json!({"name": "Payroll", "data": {"value": "rotated-value"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("\"Payroll\"") && !text.contains("rotated-value"));
    use secrecy::ExposeSecret;
    assert_eq!(
        app.store.credential_secrets(&id).await.unwrap()["value"].expose_secret(),
        "rotated-value"
    );

    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/credentials/{id}")))
        .headers(auth.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, code, _) = error_of(get(format!("/api/v1/credentials/{id}")).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn bad_input_gets_a_stable_json_error_that_names_the_problem() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let post = |body: &'static str| {
        app.http
            .post(app.url("/api/v1/credentials"))
            .headers(auth.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: &[(&str, u16, &str, &str)] = &[
        ("{\"name\": ", 400, "invalid_json", "not valid JSON"),
        ("{\"name\":\"a\",\"type\":\"nope\",\"data\":{}}", 422, "invalid_credential_data", "unknown credential type 'nope'"),
        ("{\"name\":\"a\",\"type\":\"httpBasicAuth\",\"data\":{\"user\":\"u\"}}", 422, "invalid_credential_data", "'password' is required"),
        ("{\"name\":\"a\",\"type\":\"httpBasicAuth\",\"data\":{\"user\":\"u\",\"password\":\"p\",\"token\":\"t\"}}", 422, "invalid_credential_data", "no field 'token'"),
        ("{\"name\":\"\",\"type\":\"httpBasicAuth\",\"data\":{\"user\":\"u\",\"password\":\"p\"}}", 422, "invalid_body", "`name`"),
        ("{\"type\":\"httpBasicAuth\"}", 422, "invalid_body", "name"),
    ];
    for (body, status, code, needle) in cases {
        let (s, c, m) = error_of(post(body).await.unwrap()).await;
        assert_eq!((s.as_u16(), c.as_str()), (*status, *code), "{body}: {m}");
        assert!(m.contains(needle), "{body}: {m}");
    }
    let resp = app
        .http
        .post(app.url("/api/v1/credentials"))
        .headers(auth.clone())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = app
        .http
        .get(app.url("/api/v1/nothing-here"))
        .headers(auth)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.store.count_credentials().await.unwrap(), 0);
}

#[tokio::test]
async fn credential_types_and_openapi_describe_the_api() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let types: Value = app
        .http
        .get(app.url("/api/v1/credential-types"))
        .headers(auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let basic = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "httpBasicAuth")
        .unwrap();
    assert_eq!(basic["fields"][0]["name"], "user");
    assert_eq!(basic["fields"][1]["name"], "password");
    assert_eq!(basic["fields"][1]["secret"], true);

    let doc: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .headers(auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for (path, methods) in [
        ("/credential-types", &["get"][..]),
        ("/credential-types/{name}", &["get"]),
        ("/credentials", &["get", "post"]),
        ("/credentials/{id}", &["get", "patch", "delete"]),
        ("/credentials/{id}/connect", &["post"]),
        ("/credentials/{id}/test", &["post"]),
        ("/credentials/{id}/organisations/{tenantId}", &["delete"]),
        ("/workflows", &["get", "post"]),
        ("/workflows/{id}", &["get", "put", "delete"]),
        ("/workflows/{id}/activate", &["post"]),
        ("/workflows/{id}/deactivate", &["post"]),
        ("/workflows/{id}/run", &["post"]),
        ("/executions", &["get"]),
        ("/executions/{id}", &["get"]),
        ("/executions/{id}/retry", &["post"]),
        ("/executions/{id}/cancel", &["post"]),
    ] {
        for m in methods {
            assert!(doc["paths"][path][m].is_object(), "{m} {path} undocumented");
        }
    }
    assert!(doc["servers"][0]["url"]
        .as_str()
        .unwrap()
        .ends_with("/api/v1"));
}

#[tokio::test]
async fn metrics_count_requests_for_signed_in_scrapers() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    app.http.get(app.url("/healthz")).send().await.unwrap();
    let text = app
        .http
        .get(app.url("/metrics"))
        .headers(auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"ledgerflow_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("ledgerflow_credentials 0"));
    assert!(text.contains("ledgerflow_executions_queued 0"));
    assert!(text.contains("process_resident_memory_bytes"));
}

// ---------------------------------------------------------------------------------------------
// Xero OAuth2 API credentials against the sandbox.

use ledgerflow_sandbox::{RunningSandbox, SandboxConfig};
use secrecy::ExposeSecret;

async fn start_sandbox(tune: impl FnOnce(&mut SandboxConfig)) -> RunningSandbox {
    let mut config = SandboxConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        seed_invoices: 5,
        seed_contacts: 3,
        rate_limits: None,
        ..Default::default()
    };
    tune(&mut config);
    ledgerflow_sandbox::start(config).await.unwrap()
}

/// Everything a Xero connection test needs: the server, the sandbox, a session and an API key.
struct XeroFixture {
    app: TestApp,
    sandbox: RunningSandbox,
    session: Session,
    auth: HeaderMap,
}

impl XeroFixture {
    async fn new(tune: impl FnOnce(&mut SandboxConfig)) -> XeroFixture {
        Self::new_on(None, tune).await
    }

    async fn new_on(
        database_url: Option<&str>,
        tune: impl FnOnce(&mut SandboxConfig),
    ) -> XeroFixture {
        let sandbox = start_sandbox(tune).await;
        let app = TestApp::spawn_on(Some(sandbox.base_url()), database_url).await;
        let session = app.set_up_owner().await;
        let auth = app.bearer(&app.api_key().await);
        XeroFixture {
            app,
            sandbox,
            session,
            auth,
        }
    }

    fn sandbox_url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    fn callback(&self) -> String {
        self.app.url("/rest/oauth2-credential/callback")
    }

    /// Registers a web app in the sandbox; returns (client id, client secret).
    async fn register_app(&self, redirect: &str) -> (String, String) {
        let app: Value = self
            .app
            .http
            .post(self.sandbox_url("/_sandbox/apps"))
            .json(&json!({"name": "Ledgerflow test", "integration_type": "web", "redirect_uris": [redirect]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            app["client_id"].as_str().unwrap().to_string(),
            app["client_secret"].as_str().unwrap().to_string(),
        )
    }

    async fn create_credential(&self, client_id: &str, client_secret: &str) -> String {
        let resp = self
            .app
            .http
            .post(self.app.url("/api/v1/credentials"))
            .headers(self.auth.clone())
            .json(&json!({"name": "Xero", "type": "xeroOAuth2Api", "data": {
                "clientId": client_id, "clientSecret": client_secret, "environment": "sandbox"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A registered app and a credential for it.
    async fn credential(&self) -> String {
        let (id, secret) = self.register_app(&self.callback()).await;
        self.create_credential(&id, &secret).await
    }

    async fn authorize_url(&self, credential: &str) -> String {
        let v: Value = self
            .app
            .http
            .post(
                self.app
                    .url(&format!("/api/v1/credentials/{credential}/connect")),
            )
            .headers(self.auth.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["authorizeUrl"]
            .as_str()
            .expect("authorizeUrl")
            .to_string()
    }

    /// Follows a redirect to our callback with the signed-in browser session.
    async fn deliver(&self, callback_url: &str) -> Response {
        assert!(callback_url.starts_with(&self.callback()), "{callback_url}");
        self.app
            .http
            .get(callback_url)
            .header(COOKIE, &self.session.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn view(&self, credential: &str) -> Value {
        self.app
            .http
            .get(self.app.url(&format!("/api/v1/credentials/{credential}")))
            .headers(self.auth.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Walks the sandbox's sign-in and consent pages, ticking only `orgs` (indexes), and
    /// returns where Xero redirects the browser.
    async fn consent(&self, authorize_url: &str, orgs: &[usize], action: &str) -> String {
        let http = &self.app.http;
        let login = http
            .get(authorize_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut form = hidden_inputs(&login);
        form.push(("email".into(), "demo@sandbox.ledgerflow.dev".into()));
        form.push(("password".into(), sandbox_password(&login)));
        let consent = http
            .post(self.sandbox_url("/identity/connect/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let tenants = checkbox_values(&consent, "tenant");
        assert!(
            tenants.len() >= 2,
            "the demo user has two organisations: {consent}"
        );
        let mut form = hidden_inputs(&consent);
        for i in orgs {
            form.push(("tenant".into(), tenants[*i].clone()));
        }
        form.push(("action".into(), action.into()));
        let resp = http
            .post(self.sandbox_url("/identity/connect/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_redirection(),
            "consent did not redirect: {}",
            resp.status()
        );
        resp.headers()["location"].to_str().unwrap().to_string()
    }

    async fn refresh_calls(&self) -> u64 {
        let c: Value = self
            .app
            .http
            .get(self.sandbox_url("/_sandbox/counters"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ledgerflow_sandbox::admin::token_calls(&c, "refresh_token")
    }
}

/// What Xero sends as `x-xero-signature`: base64 HMAC-SHA256 of the body under the webhook key.
fn xero_signature(key: &str, body: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&tag[start..start + tag[start..].find('"')?])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|t| t.contains("type=\"hidden\""))
        .filter_map(|t| Some((attr(t, "name")?.to_string(), unescape(attr(t, "value")?))))
        .collect()
}

fn checkbox_values(html: &str, name: &str) -> Vec<String> {
    html.split("<input")
        .skip(1)
        .filter(|t| t.contains("type=\"checkbox\"") && attr(t, "name") == Some(name))
        .filter_map(|t| attr(t, "value").map(unescape))
        .collect()
}

fn sandbox_password(login_page: &str) -> String {
    // The sandbox prints its demo login under the form: `<code>email</code> / <code>password</code>`.
    let codes: Vec<&str> = login_page
        .split("<code>")
        .skip(1)
        .filter_map(|c| c.split("</code>").next())
        .collect();
    codes
        .get(1)
        .expect("demo password on the login page")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_stores_organisations_and_reconnecting_adds_without_losing_any() {
    let fx = XeroFixture::new(|_| {}).await;
    let cred = fx.credential().await;
    assert_eq!(
        fx.view(&cred).await["connection"]["status"],
        "never_connected"
    );

    // First consent: only the first organisation.
    let authorize = fx.authorize_url(&cred).await;
    let q: std::collections::HashMap<_, _> = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["redirect_uri"], fx.callback());
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "offline_access"));
    assert!(q["scope"].split(' ').any(|s| s == "accounting.invoices"));
    assert!(q["state"].len() >= 43, "256-bit state");
    let back = fx.consent(&authorize, &[0], "allow").await;
    let resp = fx.deliver(&back).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .contains("connected=1"));
    let v = fx.view(&cred).await;
    assert_eq!(v["connection"]["status"], "connected");
    let orgs = v["connection"]["organisations"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    let first = orgs[0]["tenantName"].as_str().unwrap().to_string();
    let first_event = orgs[0]["authEventId"].clone();
    assert!(v["connection"]["grantedScopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "offline_access"));
    assert!(v["connection"]["accessExpiresAt"].as_i64().unwrap() > ledgerflow_store::now_ms());

    // Reconnect choosing the second organisation: both are kept, each with its own consent.
    let back = fx
        .consent(&fx.authorize_url(&cred).await, &[1], "allow")
        .await;
    assert_eq!(fx.deliver(&back).await.status(), StatusCode::SEE_OTHER);
    let v = fx.view(&cred).await;
    let orgs = v["connection"]["organisations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2, "{v}");
    assert!(orgs
        .iter()
        .any(|o| o["tenantName"] == first.as_str() && o["authEventId"] == first_event));
    assert!(orgs
        .iter()
        .any(|o| o["tenantName"] != first.as_str() && o["authEventId"] != first_event));

    // Test calls Xero for each organisation.
    let report: Value = fx
        .app
        .http
        .post(fx.app.url(&format!("/api/v1/credentials/{cred}/test")))
        .headers(fx.auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["organisations"].as_array().unwrap().len(), 2);

    // Disconnect one organisation: gone here and at Xero.
    let tenant = orgs[0]["tenantId"].as_str().unwrap();
    let resp = fx
        .app
        .http
        .delete(fx.app.url(&format!(
            "/api/v1/credentials/{cred}/organisations/{tenant}"
        )))
        .headers(fx.auth.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        fx.view(&cred).await["connection"]["organisations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let token = fx
        .app
        .store
        .oauth_tokens(&cred)
        .await
        .unwrap()
        .unwrap()
        .access_token;
    let at_xero: Value = fx
        .app
        .http
        .get(fx.sandbox_url("/connections"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(at_xero
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["tenantId"] != tenant));

    // Delete revokes at Xero first: the refresh token stops working.
    let refresh = fx
        .app
        .store
        .oauth_tokens(&cred)
        .await
        .unwrap()
        .unwrap()
        .refresh_token
        .unwrap();
    let resp = fx
        .app
        .http
        .delete(fx.app.url(&format!("/api/v1/credentials/{cred}")))
        .headers(fx.auth.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (client_id, client_secret) = {
        let apps: Value = fx
            .app
            .http
            .get(fx.sandbox_url("/_sandbox/apps"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let a = apps.as_array().unwrap().last().unwrap().clone();
        (
            a["client_id"].as_str().unwrap().to_string(),
            a["client_secret"].as_str().unwrap().to_string(),
        )
    };
    let resp = fx
        .app
        .http
        .post(fx.sandbox_url("/connect/token"))
        .basic_auth(client_id, Some(client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

/// Asserts a callback was refused with a page containing `needle`, and the credential is unchanged.
async fn assert_refused(fx: &XeroFixture, cred: &str, resp: Response, needle: &str) {
    assert!(
        resp.status().is_client_error() || resp.status().is_server_error(),
        "{}",
        resp.status()
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Could not connect"), "{page}");
    assert!(page.contains(needle), "expected {needle:?} in {page}");
    assert!(page.contains("Nothing was changed"), "{page}");
    let v = fx.view(cred).await;
    assert_eq!(v["connection"]["status"], "never_connected", "{v}");
    assert!(v["connection"]["organisations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_expired_cancelled_and_misconfigured_callbacks_change_nothing() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = fx.credential().await;

    // Forged: a state this server never issued.
    let resp = fx
        .deliver(&format!(
            "{}?code=abc&state=forged-state-value",
            fx.callback()
        ))
        .await;
    assert_refused(&fx, &cred, resp, "unknown state").await;
    // No state at all.
    let resp = fx.deliver(&format!("{}?code=abc", fx.callback())).await;
    assert_refused(&fx, &cred, resp, "no state").await;

    // Expired: issued more than 10 minutes ago.
    let verifier = secrecy::SecretString::from("v".repeat(43));
    let owner = fx.app.store.owner().await.unwrap().unwrap();
    fx.app
        .store
        .create_oauth_state(
            &ledgerflow_oauth::flow::state_hash("old-state"),
            &cred,
            &owner.id,
            &fx.callback(),
            &verifier,
            -1,
        )
        .await
        .unwrap();
    let resp = fx
        .deliver(&format!("{}?code=abc&state=old-state", fx.callback()))
        .await;
    assert_refused(&fx, &cred, resp, "expired").await;

    // Cancelled at Xero: access_denied comes back with the state.
    let authorize = fx.authorize_url(&cred).await;
    let state = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let resp = fx
        .deliver(&format!(
            "{}?error=access_denied&state={state}",
            fx.callback()
        ))
        .await;
    assert_refused(&fx, &cred, resp, "consent was cancelled").await;

    // A real consent, delivered by a browser without the signed-in session.
    let authorize = fx.authorize_url(&cred).await;
    let back = fx.app.http.get(&authorize).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = fx.app.http.get(&back).send().await.unwrap();
    assert_refused(&fx, &cred, resp, "different signed-in person").await;

    // Replayed: the same callback URL a second time, after it succeeded.
    let authorize = fx.authorize_url(&cred).await;
    let back = fx.app.http.get(&authorize).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(fx.deliver(&back).await.status(), StatusCode::SEE_OTHER);
    let before = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    let resp = fx.deliver(&back).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("already used"));
    let after = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert_eq!(
        before.access_token.expose_secret(),
        after.access_token.expose_secret()
    );
    assert_eq!(before.generation, after.generation);

    // Wrong client secret: Xero refuses the code exchange.
    let (id, _) = fx.register_app(&fx.callback()).await;
    let wrong = fx.create_credential(&id, "not-the-secret").await;
    let back = fx
        .app
        .http
        .get(&fx.authorize_url(&wrong).await)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = fx.deliver(&back).await;
    assert_refused(&fx, &wrong, resp, "invalid_client").await;

    // Redirect URI not registered: Xero shows an error page and never comes back.
    let (id, secret) = fx.register_app("http://localhost:9/elsewhere").await;
    let unregistered = fx.create_credential(&id, &secret).await;
    let resp = fx
        .app
        .http
        .get(&fx.authorize_url(&unregistered).await)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(resp.headers().get("location").is_none());
    assert!(resp
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("redirect"));
    assert_eq!(
        fx.view(&unregistered).await["connection"]["status"],
        "never_connected"
    );
}

/// Connects a credential through the auto-approving sandbox.
async fn connected(fx: &XeroFixture) -> String {
    let cred = fx.credential().await;
    let back = fx
        .app
        .http
        .get(&fx.authorize_url(&cred).await)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(fx.deliver(&back).await.status(), StatusCode::SEE_OTHER);
    cred
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_callers_on_an_expired_token_cause_one_refresh() {
    let fx = XeroFixture::new(|c| {
        c.auto_approve = true;
        c.access_token_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let cred = connected(&fx).await;
    let first = fx.app.state.tokens.access_token(&cred).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(fx.refresh_calls().await, 0);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let tokens = fx.app.state.tokens.clone();
        let cred = cred.clone();
        tasks.push(tokio::spawn(
            async move { tokens.access_token(&cred).await },
        ));
    }
    let mut distinct = std::collections::HashSet::new();
    for t in tasks {
        distinct.insert(t.await.unwrap().unwrap().token.expose_secret().to_string());
    }
    assert_eq!(distinct.len(), 1, "everyone got the one new token");
    assert!(!distinct.contains(first.token.expose_secret()));
    assert_eq!(fx.refresh_calls().await, 1);
    // The new token works at Xero.
    let token = distinct.into_iter().next().unwrap();
    let resp = fx
        .app
        .http
        .get(fx.sandbox_url("/connections"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_token_managers_on_one_database_refresh_once() {
    // Two independent servers (own pools, own token managers, own in-process locks) on one
    // database: only the database lease coordinates them.
    for postgres in [false, true] {
        let fx = XeroFixture::new(|c| {
            c.auto_approve = true;
            c.access_token_ttl = std::time::Duration::from_secs(2);
        })
        .await;
        let Some(db) = EngineDb::new(postgres).await else {
            continue;
        };
        let url = db.url.clone();
        let key = ledgerflow_store::vault::generate_key();
        let open = || async {
            let store = Store::connect(&url, Keyring::from_env_value(&key).unwrap())
                .await
                .unwrap();
            AppState::new(
                store,
                ServerConfig {
                    public_url: fx.app.base.parse().unwrap(),
                    sandbox_url: Some(fx.sandbox.base_url()),
                },
            )
        };
        let (a, b) = (open().await, open().await);
        // Copy a connected credential into the shared database via the real flow's results.
        let source = connected(&fx).await;
        let c = fx.app.store.get_credential(&source).await.unwrap();
        let secrets = fx.app.store.credential_secrets(&source).await.unwrap();
        let cred = a
            .store
            .create_credential(ledgerflow_store::NewCredential {
                name: c.name,
                type_name: c.type_name,
                public: c.data,
                secret: secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v.expose_secret())))
                    .collect(),
            })
            .await
            .unwrap()
            .id;
        let t = fx.app.store.oauth_tokens(&source).await.unwrap().unwrap();
        a.store
            .save_connected_tokens(
                &cred,
                &t.access_token,
                t.refresh_token.as_ref(),
                t.access_expires_at,
                &t.granted_scope,
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let before = fx.refresh_calls().await;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let cred = cred.clone();
            tasks.push(tokio::spawn(
                async move { s.tokens.access_token(&cred).await },
            ));
        }
        let mut distinct = std::collections::HashSet::new();
        for t in tasks {
            distinct.insert(t.await.unwrap().unwrap().token.expose_secret().to_string());
        }
        assert_eq!(fx.refresh_calls().await - before, 1, "postgres={postgres}");
        assert_eq!(distinct.len(), 1);
        assert_eq!(a.tokens.refresh_count() + b.tokens.refresh_count(), 1);
        a.store.close().await;
        b.store.close().await;
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_lost_before_storing_are_recovered_through_the_grace_period() {
    let fx = XeroFixture::new(|c| {
        c.auto_approve = true;
        c.access_token_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let cred = connected(&fx).await;
    // The token manager refreshes and the answer is lost on the way back (as when the process
    // dies before storing it): Xero has rotated the refresh token, the database holds the old.
    let stored = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    let resp = fx
        .app
        .http
        .post(fx.sandbox_url("/_sandbox/faults"))
        .json(
            &json!({"method": "POST", "path": "/connect/token", "lose_response": true, "count": 1}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let err = fx.app.state.tokens.access_token(&cred).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("refreshing the access token failed"),
        "{err}"
    );
    assert_eq!(fx.refresh_calls().await, 1, "Xero processed the refresh");
    let still = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert_eq!(
        still.refresh_token.unwrap().expose_secret(),
        stored.refresh_token.unwrap().expose_secret(),
        "nothing was stored"
    );

    // After a restart (a fresh token manager), the expired token is refreshed with the stored,
    // already-rotated refresh token: Xero accepts it inside the 30-minute grace period.
    let restarted = AppState::new(fx.app.store.clone(), (*fx.app.state.config).clone());
    let token = restarted.tokens.access_token(&cred).await.unwrap();
    assert_eq!(
        fx.app
            .http
            .get(fx.sandbox_url("/connections"))
            .bearer_auth(token.token.expose_secret())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        fx.app.store.oauth_status(&cred).await.unwrap().status,
        "connected"
    );

    // What was stored is the newest refresh token: it still works once the grace period of the
    // old one has passed.
    fx.app
        .http
        .post(fx.sandbox_url("/_sandbox/clock/advance"))
        .json(&json!({"seconds": 31 * 60}))
        .send()
        .await
        .unwrap();
    let again = restarted
        .tokens
        .force_refresh(&cred, &token.token)
        .await
        .unwrap();
    assert_ne!(again.token.expose_secret(), token.token.expose_secret());
    assert_eq!(
        fx.app.store.oauth_status(&cred).await.unwrap().status,
        "connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_refresh_token_marks_needs_reconnect_after_one_attempt() {
    let fx = XeroFixture::new(|c| {
        c.auto_approve = true;
        c.access_token_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let cred = connected(&fx).await;
    // 61 days without use: Xero's idle expiry kills the refresh token.
    fx.app
        .http
        .post(fx.sandbox_url("/_sandbox/clock/advance"))
        .json(&json!({"seconds": 61 * 86_400}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let tokens = fx.app.state.tokens.clone();
        let cred = cred.clone();
        tasks.push(tokio::spawn(
            async move { tokens.access_token(&cred).await },
        ));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("needs reconnecting"), "{err}");
    }
    // Later callers fail at once, without calling Xero.
    for _ in 0..10 {
        assert!(fx.app.state.tokens.access_token(&cred).await.is_err());
    }
    assert_eq!(fx.refresh_calls().await, 1);
    let v = fx.view(&cred).await;
    assert_eq!(v["connection"]["status"], "needs_reconnect");
    assert!(v["connection"]["statusReason"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    let html = fx
        .app
        .http
        .get(fx.app.url(&format!("/credentials/{cred}")))
        .header(COOKIE, &fx.session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Needs reconnect") && html.contains("invalid_grant"));

    // Reconnecting brings it back.
    let back = fx
        .app
        .http
        .get(&fx.authorize_url(&cred).await)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(fx.deliver(&back).await.status(), StatusCode::SEE_OTHER);
    assert!(fx.app.state.tokens.access_token(&cred).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_and_tokens_never_appear_in_responses_pages_or_the_database_file() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let secret = fx.app.store.credential_secrets(&cred).await.unwrap()["clientSecret"]
        .expose_secret()
        .to_string();
    let t = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    let needles = [
        secret,
        t.access_token.expose_secret().to_string(),
        t.refresh_token.unwrap().expose_secret().to_string(),
    ];
    let mut seen = String::new();
    for path in [
        format!("/api/v1/credentials/{cred}"),
        "/api/v1/credentials".into(),
    ] {
        seen += &fx
            .app
            .http
            .get(fx.app.url(&path))
            .headers(fx.auth.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    for path in [format!("/credentials/{cred}"), "/credentials".into()] {
        seen += &fx
            .app
            .http
            .get(fx.app.url(&path))
            .header(COOKIE, &fx.session.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    seen += &fx
        .app
        .http
        .post(fx.app.url(&format!("/credentials/{cred}/test")))
        .header(COOKIE, &fx.session.cookie)
        .form(&[("_csrf", fx.session.csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(seen.contains("Connected"));
    let home = fx.app._home.path().to_path_buf();
    fx.app.store.close().await;
    let mut files = String::new();
    for entry in std::fs::read_dir(&home).unwrap() {
        files += &String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap());
    }
    for n in &needles {
        assert!(
            !seen.contains(n.as_str()),
            "a secret appeared in a response or page"
        );
        assert!(
            !files.contains(n.as_str()),
            "a secret appeared in the database files"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_refreshes_idle_credentials_and_the_redirect_url_ignores_the_host_header() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let before = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    // Nothing is idle for a week yet.
    assert_eq!(
        fx.app
            .state
            .tokens
            .sweep(std::time::Duration::from_secs(7 * 86_400))
            .await,
        (0, 0)
    );
    // Everything is idle for "no time at all": refreshed although its access token is fresh.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(
        fx.app.state.tokens.sweep(std::time::Duration::ZERO).await,
        (1, 0)
    );
    let after = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert_ne!(
        before.refresh_token.unwrap().expose_secret(),
        after.refresh_token.unwrap().expose_secret()
    );
    assert!(fx
        .app
        .store
        .oauth_status(&cred)
        .await
        .unwrap()
        .refreshed_at
        .is_some());

    // A forged Host header changes nothing: redirect URLs come from the configured public URL.
    let v: Value = fx
        .app
        .http
        .post(fx.app.url(&format!("/api/v1/credentials/{cred}/connect")))
        .headers(fx.auth.clone())
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["redirectUrl"], fx.callback());
    assert!(!v["authorizeUrl"].as_str().unwrap().contains("evil"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_xero_webhooks_are_stored_once_and_bad_signatures_refused() {
    let fx = XeroFixture::new(|c| {
        c.auto_approve = true;
        c.webhook_batch_delay = std::time::Duration::from_millis(50);
    })
    .await;
    let cred = connected(&fx).await;
    let client_id = fx.app.store.get_credential(&cred).await.unwrap().data["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let delivery = fx.view(&cred).await["webhooks"]["deliveryUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(delivery, fx.app.url(&format!("/webhooks/xero/{cred}")));
    let hook: Value = fx
        .app
        .http
        .put(fx.sandbox_url(&format!("/_sandbox/apps/{client_id}/webhook")))
        .json(&json!({"url": delivery}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = hook["key"].as_str().unwrap().to_string();

    // Without the key stored, deliveries are refused.
    let resp = fx.app.http.post(&delivery).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = fx
        .app
        .http
        .patch(fx.app.url(&format!("/api/v1/credentials/{cred}")))
        .headers(fx.auth.clone())
        .json(&json!({"data": {"webhookKey": key}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Xero's intent-to-receive check passes, with no workflow listening.
    let report: Value = fx
        .app
        .http
        .post(fx.sandbox_url(&format!("/_sandbox/apps/{client_id}/webhook/intent")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["passed"], true, "{report}");
    let v = fx.view(&cred).await;
    assert_eq!(v["webhooks"]["intentToReceivePassed"], true, "{v}");

    // An invoice created in Xero arrives as a signed event, stored once.
    let token = fx.app.state.tokens.access_token(&cred).await.unwrap();
    let tenant = fx.app.store.tenants(&cred).await.unwrap()[0]
        .tenant_id
        .clone();
    let contacts: Value = fx
        .app
        .http
        .get(fx.sandbox_url("/api.xro/2.0/Contacts"))
        .bearer_auth(token.token.expose_secret())
        .header("xero-tenant-id", &tenant)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contact = contacts["Contacts"][0]["ContactID"].as_str().unwrap();
    let resp = fx
        .app
        .http
        .put(fx.sandbox_url("/api.xro/2.0/Invoices"))
        .bearer_auth(token.token.expose_secret())
        .header("xero-tenant-id", &tenant)
        .header("accept", "application/json")
        .json(&json!({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "LineItems": [{"Description": "Consulting", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let pending = fx.app.store.webhook_events(&cred, 100).await.unwrap();
        if pending.iter().any(|e| e.event_category == "INVOICE") {
            break pending;
        }
        assert!(std::time::Instant::now() < deadline, "no webhook arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let invoice_events: Vec<_> = events
        .iter()
        .filter(|e| e.event_category == "INVOICE")
        .collect();
    assert_eq!(invoice_events.len(), 1);
    assert_eq!(invoice_events[0].event_type, "CREATE");
    assert_eq!(invoice_events[0].tenant_id, tenant);

    // The same delivery again (Xero duplicates happen): nothing new.
    let event: Value = serde_json::from_str(&invoice_events[0].payload).unwrap();
    let body = json!({"events": [event], "firstEventSequence": 7, "lastEventSequence": 7, "entropy": "AGAIN"}).to_string();
    let sig = xero_signature(&key, &body);
    let resp = fx
        .app
        .http
        .post(&delivery)
        .header("x-xero-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().is_empty());
    let again = fx.app.store.webhook_events(&cred, 100).await.unwrap();
    assert_eq!(again.len(), events.len());
    assert!(
        fx.view(&cred).await["webhooks"]["duplicates"]
            .as_i64()
            .unwrap()
            >= 1
    );

    // A wrong signature: 401, nothing stored.
    let before = fx
        .app
        .store
        .pending_webhook_events(100)
        .await
        .unwrap()
        .len();
    let forged = r#"{"events":[{"resourceUrl":"x","resourceId":"y","eventDateUtc":"2026-01-01T00:00:00","eventType":"CREATE","eventCategory":"INVOICE","tenantId":"t","tenantType":"ORGANISATION"}],"firstEventSequence":1,"lastEventSequence":1,"entropy":"e"}"#;
    let resp = fx
        .app
        .http
        .post(&delivery)
        .header("x-xero-signature", "AAAA")
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        fx.app
            .store
            .pending_webhook_events(100)
            .await
            .unwrap()
            .len(),
        before
    );
    let html = fx
        .app
        .http
        .get(fx.app.url(&format!("/credentials/{cred}")))
        .header(COOKIE, &fx.session.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Webhook delivery URL") && html.contains("Passed"),
        "health is shown"
    );
}

// ---------------------------------------------------------------------------------------------
// Workflows and executions.

/// A database for a test that runs on both engines: a SQLite file in a temporary folder, or a
/// throwaway PostgreSQL database (`None` when there is no server, outside CI).
struct EngineDb {
    url: String,
    pg: Option<ledgerflow_store::testing::TestDb>,
    _home: tempfile::TempDir,
}

impl EngineDb {
    async fn new(postgres: bool) -> Option<EngineDb> {
        let home = tempfile::tempdir().unwrap();
        let pg = if postgres {
            Some(ledgerflow_store::testing::TestDb::postgres().await?)
        } else {
            None
        };
        let url = pg
            .as_ref()
            .map(|d| d.url.clone())
            .unwrap_or_else(|| ledgerflow_store::sqlite_url(home.path()));
        Some(EngineDb {
            url,
            pg,
            _home: home,
        })
    }

    async fn drop_db(self) {
        if let Some(db) = self.pg {
            db.drop_db().await;
        }
    }
}

/// A node as n8n exports it (the current version of each node type).
fn n8n_node(name: &str, ty: &str, params: Value, x: i64) -> Value {
    let version = match ty {
        "n8n-nodes-base.set" => json!(3.4),
        "n8n-nodes-base.code" => json!(2),
        "n8n-nodes-base.webhook" => json!(2),
        "n8n-nodes-base.respondToWebhook" => json!(1.1),
        "n8n-nodes-base.scheduleTrigger" => json!(1.2),
        "n8n-nodes-base.httpRequest" => json!(4.2),
        _ => json!(1),
    };
    json!({"id": format!("id-{name}"), "name": name, "type": ty, "typeVersion": version, "position": [x, 300], "parameters": params})
}

fn chain(names: &[&str]) -> Value {
    let mut c = serde_json::Map::new();
    for pair in names.windows(2) {
        c.insert(
            pair[0].to_string(),
            json!({"main": [[{"node": pair[1], "type": "main", "index": 0}]]}),
        );
    }
    Value::Object(c)
}

impl TestApp {
    async fn import(&self, auth: &HeaderMap, workflow: Value) -> Value {
        let resp = self
            .http
            .post(self.url("/api/v1/workflows"))
            .headers(auth.clone())
            .json(&workflow)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    async fn post_json(&self, auth: &HeaderMap, path: &str) -> Value {
        self.http
            .post(self.url(path))
            .headers(auth.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn executions_of(&self, auth: &HeaderMap, workflow: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(self.url(&format!("/api/v1/executions?workflowId={workflow}")))
            .headers(auth.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_n8n_workflow_runs_and_its_execution_shows_each_node() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let wf = app
        .import(&auth, json!({"name": "Totals", "nodes": [
            n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0),
            n8n_node("Lines", "n8n-nodes-base.code", json!({"jsCode": "return [{json: {amount: 40}}, {json: {amount: 60}}];"}), 200),
            n8n_node("Tax", "n8n-nodes-base.set", json!({"mode": "manual", "assignments": {"assignments": [
                {"id": "a", "name": "withTax", "value": "={{ $json.amount * 1.15 }}", "type": "number"}]}, "options": {}}), 400),
        ], "connections": chain(&["Start", "Lines", "Tax"])}))
        .await;
    let id = wf["id"].as_str().unwrap();
    assert_eq!(wf["definition"]["nodes"][2]["type"], "ledgerflow.set");
    let e = app
        .post_json(&auth, &format!("/api/v1/workflows/{id}/run?wait=30"))
        .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let out = &e["runData"]["Tax"][0]["output"][0];
    assert_eq!(out[0]["json"]["withTax"].as_f64(), Some(46.0));
    assert!((out[1]["json"]["withTax"].as_f64().unwrap() - 69.0).abs() < 1e-9);
    assert_eq!(
        e["runData"]["Lines"][0]["output"][0]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Unsupported n8n nodes are named, and nothing is stored.
    let resp = app
        .http
        .post(app.url("/api/v1/workflows"))
        .headers(auth.clone())
        .json(&json!({"name": "Bad", "nodes": [n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0),
            n8n_node("Ask GPT", "n8n-nodes-base.openAi", json!({}), 200)], "connections": chain(&["Start", "Ask GPT"])}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(resp).await;
    assert_eq!((status.as_u16(), code.as_str()), (422, "invalid_workflow"));
    assert!(
        message.contains("'Ask GPT' (n8n-nodes-base.openAi)"),
        "{message}"
    );
    assert_eq!(app.store.workflows().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_call_starts_the_workflow_and_gets_the_respond_to_webhook_body() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let wf = app
        .import(&auth, json!({"name": "Hook", "nodes": [
            n8n_node("Hook", "n8n-nodes-base.webhook", json!({"httpMethod": "POST", "path": "orders/new", "responseMode": "responseNode"}), 0),
            n8n_node("Double", "n8n-nodes-base.set", json!({"mode": "manual", "assignments": {"assignments": [
                {"id": "a", "name": "doubled", "value": "={{ $json.body.n * 2 }}", "type": "number"}]}, "options": {}}), 200),
            n8n_node("Reply", "n8n-nodes-base.respondToWebhook", json!({"respondWith": "json",
                "responseBody": "={{ JSON.stringify({ok: true, doubled: $json.doubled}) }}", "options": {"responseCode": 201}}), 400),
        ], "connections": chain(&["Hook", "Double", "Reply"])}))
        .await;
    let id = wf["id"].as_str().unwrap();
    // Inactive: nobody listens.
    let resp = app
        .http
        .post(app.url("/webhook/orders/new"))
        .json(&json!({"n": 21}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    app.post_json(&auth, &format!("/api/v1/workflows/{id}/activate"))
        .await;
    let resp = app
        .http
        .post(app.url("/webhook/orders/new"))
        .json(&json!({"n": 21}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"ok": true, "doubled": 42})
    );
    let resp = app
        .http
        .get(app.url("/webhook/orders/new"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405, "wrong method is named");
    let resp = app
        .http
        .post(app.url("/webhook/orders/new"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "malformed JSON gets a clear error");
    let execs = app.executions_of(&auth, id).await;
    assert_eq!(execs.len(), 1);
    assert_eq!(
        (execs[0]["mode"].as_str(), execs[0]["status"].as_str()),
        (Some("webhook"), Some("succeeded"))
    );
}

/// A local endpoint failing its first `fails` calls with 500.
async fn flaky_endpoint(fails: u32) -> String {
    use std::sync::atomic::AtomicU32;
    let count = std::sync::Arc::new(AtomicU32::new(0));
    let app = axum::Router::new().route(
        "/flaky",
        axum::routing::get(move || {
            let count = count.clone();
            async move {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < fails {
                    (StatusCode::INTERNAL_SERVER_ERROR, "not yet").into_response()
                } else {
                    axum::Json(json!({"ok": true, "attempt": n + 1})).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/flaky", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

use axum::response::IntoResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_fail_continue_on_fail_and_the_error_workflow() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let http_node = |url: &str, extra: Value| {
        let mut n = n8n_node(
            "Call",
            "n8n-nodes-base.httpRequest",
            json!({"url": url, "options": {}}),
            200,
        );
        n["typeVersion"] = json!(4.2);
        for (k, v) in extra.as_object().unwrap() {
            n[k] = v.clone();
        }
        n
    };
    // Fails twice, then succeeds with retryOnFail.
    let url = flaky_endpoint(2).await;
    let wf = app
        .import(&auth, json!({"name": "Retry", "nodes": [n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0),
            http_node(&url, json!({"retryOnFail": true, "maxTries": 3, "waitBetweenTries": 10}))], "connections": chain(&["Start", "Call"])}))
        .await;
    let e = app
        .post_json(
            &auth,
            &format!(
                "/api/v1/workflows/{}/run?wait=30",
                wf["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["runData"]["Call"][0]["attempts"], 3);
    assert_eq!(
        e["runData"]["Call"][0]["output"][0][0]["json"]["attempt"],
        3
    );

    // continueOnFail: the error becomes an item.
    let url = flaky_endpoint(100).await;
    let wf = app
        .import(&auth, json!({"name": "Continue", "nodes": [n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0),
            http_node(&url, json!({"continueOnFail": true}))], "connections": chain(&["Start", "Call"])}))
        .await;
    let e = app
        .post_json(
            &auth,
            &format!(
                "/api/v1/workflows/{}/run?wait=30",
                wf["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert!(
        e["runData"]["Call"][0]["output"][0][0]["json"]["error"].is_string(),
        "{e}"
    );

    // Otherwise the workflow fails and its error workflow runs with the failure as input.
    let handler = app
        .import(&auth, json!({"name": "On failure", "nodes": [n8n_node("Error Trigger", "n8n-nodes-base.errorTrigger", json!({}), 0),
            n8n_node("Note", "n8n-nodes-base.noOp", json!({}), 200)], "connections": chain(&["Error Trigger", "Note"])}))
        .await;
    let handler_id = handler["id"].as_str().unwrap();
    let wf = app
        .import(&auth, json!({"name": "Fails", "settings": {"errorWorkflow": handler_id}, "nodes": [
            n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0), http_node(&url, json!({}))], "connections": chain(&["Start", "Call"])}))
        .await;
    let e = app
        .post_json(
            &auth,
            &format!(
                "/api/v1/workflows/{}/run?wait=30",
                wf["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e["status"], "failed");
    assert!(e["error"].as_str().unwrap().starts_with("Call:"), "{e}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let handled = loop {
        let list = app.executions_of(&auth, handler_id).await;
        if let Some(done) = list.iter().find(|x| x["status"] == "succeeded") {
            break done.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the error workflow did not run"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(handled["mode"], "error");
    let full: Value = app
        .http
        .get(app.url(&format!(
            "/api/v1/executions/{}",
            handled["id"].as_str().unwrap()
        )))
        .headers(auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let input = &full["runData"]["Error Trigger"][0]["output"][0][0]["json"];
    assert_eq!(input["execution"]["id"], e["id"]);
    assert_eq!(input["workflow"]["name"], "Fails");
    assert!(
        input["execution"]["error"]["message"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_fires_on_time_and_once_per_tick_across_two_processes() {
    for postgres in [false, true] {
        let Some(db) = EngineDb::new(postgres).await else {
            continue;
        };
        let url = db.url.clone();
        let key = ledgerflow_store::vault::generate_key();
        let mut states = Vec::new();
        for _ in 0..2 {
            let store = Store::connect(&url, Keyring::from_env_value(&key).unwrap())
                .await
                .unwrap();
            let state = AppState::new(
                store,
                ServerConfig {
                    public_url: "http://127.0.0.1:1".parse().unwrap(),
                    sandbox_url: None,
                },
            );
            ledgerflow_server::runtime::spawn(&state);
            states.push(state);
        }
        let wf = ledgerflow_server::runtime::create_workflow(
            &states[0],
            &json!({"name": "Every second", "nodes": [
                n8n_node("Tick", "n8n-nodes-base.scheduleTrigger", json!({"rule": {"interval": [{"field": "seconds", "secondsInterval": 1}]}}), 0),
                n8n_node("Note", "n8n-nodes-base.noOp", json!({}), 200)], "connections": chain(&["Tick", "Note"])})
            .to_string(),
        )
        .await
        .unwrap();
        ledgerflow_server::runtime::set_active(&states[0], &wf.id, true)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(4300)).await;
        ledgerflow_server::runtime::set_active(&states[0], &wf.id, false)
            .await
            .unwrap();
        let list = states[0]
            .store
            .executions(&ledgerflow_store::ExecutionFilter {
                workflow_id: Some(wf.id.clone()),
                status: None,
                limit: Some(100),
            })
            .await
            .unwrap();
        let ticks: Vec<String> = list
            .iter()
            .map(|e| {
                let t: Value = serde_json::from_str(&e.trigger_data).unwrap();
                t["items"][0]["json"]["timestamp"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut unique = ticks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ticks.len(),
            "each tick fired once (postgres={postgres}): {ticks:?}"
        );
        assert!(
            (3..=5).contains(&ticks.len()),
            "about one per second (postgres={postgres}): {ticks:?}"
        );
        assert!(list.iter().all(|e| e.mode == "trigger"));
        for s in &states {
            s.store.close().await;
        }
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_n8n_workflow_with_its_xero_node_imports_and_runs_unchanged() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let tenant = fx.app.store.tenants(&cred).await.unwrap()[0]
        .tenant_id
        .clone();
    // As n8n exports it: its Xero node, parameter names and credential reference (n8n's id).
    let xero = |name: &str, params: Value| {
        json!({"id": name, "name": name, "type": "n8n-nodes-base.xero", "typeVersion": 1, "position": [0, 0],
               "parameters": params, "credentials": {"xeroOAuth2Api": {"id": "4", "name": "Xero"}}})
    };
    let wf = json!({"name": "New customer invoice", "nodes": [
        n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0),
        xero("Create contact", json!({"resource": "contact", "operation": "create", "organizationId": tenant,
            "name": "n8n Imported Ltd", "additionalFields": {"emailAddress": "billing@imported.example"}})),
        xero("Create invoice", json!({"resource": "invoice", "operation": "create", "organizationId": tenant, "type": "ACCREC",
            "contactId": "={{ $json.ContactID }}",
            "lineItemsUi": {"lineItemsValues": [{"description": "Onboarding", "quantity": "1", "unitAmount": "250", "accountCode": "200"}]},
            "additionalFields": {"reference": "={{ 'WELCOME-' + $json.Name.split(' ')[0] }}"}})),
    ], "connections": chain(&["Start", "Create contact", "Create invoice"])});
    let created = fx.app.import(&fx.auth, wf).await;
    assert_eq!(created["definition"]["nodes"][1]["type"], "ledgerflow.xero");
    let e = fx
        .app
        .post_json(
            &fx.auth,
            &format!(
                "/api/v1/workflows/{}/run?wait=60",
                created["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let invoice = &e["runData"]["Create invoice"][0]["output"][0][0]["json"];
    assert_eq!(invoice["Reference"], "WELCOME-n8n");
    assert_eq!(invoice["Contact"]["Name"], "n8n Imported Ltd");
    assert_eq!(invoice["Total"].as_f64().map(|t| t >= 250.0), Some(true));
    // The token never reaches run data.
    let token = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert!(!e.to_string().contains(token.access_token.expose_secret()));
}

// ---------------------------------------------------------------------------------------------
// Xero triggers.

impl XeroFixture {
    /// Points the credential's Xero app webhooks at `url` and stores the webhook key.
    async fn webhooks_to(&self, cred: &str, url: &str) -> String {
        let client_id = self.app.store.get_credential(cred).await.unwrap().data["clientId"]
            .as_str()
            .unwrap()
            .to_string();
        let hook: Value = self
            .app
            .http
            .put(self.sandbox_url(&format!("/_sandbox/apps/{client_id}/webhook")))
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = hook["key"].as_str().unwrap().to_string();
        let resp = self
            .app
            .http
            .patch(self.app.url(&format!("/api/v1/credentials/{cred}")))
            .headers(self.auth.clone())
            .json(&json!({"data": {"webhookKey": key}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        key
    }

    /// Creates an invoice in Xero (the first organisation) and returns it.
    async fn xero_invoice(&self, cred: &str, reference: &str) -> Value {
        let token = self.app.state.tokens.access_token(cred).await.unwrap();
        let tenant = self.app.store.tenants(cred).await.unwrap()[0]
            .tenant_id
            .clone();
        let api = |method: reqwest::Method, path: &str| {
            self.app
                .http
                .request(method, self.sandbox_url(&format!("/api.xro/2.0/{path}")))
                .bearer_auth(token.token.expose_secret())
                .header("xero-tenant-id", &tenant)
                .header("accept", "application/json")
        };
        let contacts: Value = api(reqwest::Method::GET, "Contacts")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let contact = contacts["Contacts"][0]["ContactID"].clone();
        let created: Value = api(reqwest::Method::PUT, "Invoices")
            .json(&json!({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact}, "Reference": reference,
                "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}]}))
            .send().await.unwrap().json().await.unwrap();
        created["Invoices"][0].clone()
    }

    async fn xero_update_invoice(&self, cred: &str, id: &str, reference: &str) {
        let token = self.app.state.tokens.access_token(cred).await.unwrap();
        let tenant = self.app.store.tenants(cred).await.unwrap()[0]
            .tenant_id
            .clone();
        let resp = self
            .app
            .http
            .post(self.sandbox_url(&format!("/api.xro/2.0/Invoices/{id}")))
            .bearer_auth(token.token.expose_secret())
            .header("xero-tenant-id", &tenant)
            .header("accept", "application/json")
            .json(&json!({"Invoices": [{"InvoiceID": id, "Reference": reference}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn wait_executions(&self, workflow: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let list = self.app.executions_of(&self.auth, workflow).await;
            let done: Vec<Value> = list
                .into_iter()
                .filter(|e| e["status"] == "succeeded")
                .collect();
            if done.len() >= n || std::time::Instant::now() > deadline {
                return done;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn xero_trigger_workflow(kind: &str, params: Value) -> Value {
    json!({"name": format!("On Xero {kind}"), "nodes": [
        {"id": "t", "name": "Xero", "type": kind, "typeVersion": 1, "position": [0, 0], "parameters": params,
         "credentials": {"xeroOAuth2Api": {"id": "", "name": "Xero"}}},
        n8n_node("Note", "n8n-nodes-base.noOp", json!({}), 200)], "connections": chain(&["Xero", "Note"])})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xero_invoice_webhook_runs_the_workflow_once_with_the_full_invoice() {
    let fx = XeroFixture::new(|c| {
        c.auto_approve = true;
        c.webhook_batch_delay = std::time::Duration::from_millis(50);
        c.webhook_retry_base = std::time::Duration::from_millis(300);
    })
    .await;
    let cred = connected(&fx).await;
    // Xero delivers to a port where, at first, nothing answers (the server is "down").
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = fx
        .webhooks_to(
            &cred,
            &format!("http://127.0.0.1:{port}/webhooks/xero/{cred}"),
        )
        .await;
    let wf = fx
        .app
        .import(
            &fx.auth,
            xero_trigger_workflow(
                "ledgerflow.xeroTrigger",
                json!({"categories": ["INVOICE"], "eventTypes": ["CREATE"], "fetchRecord": true}),
            ),
        )
        .await;
    let wf_id = wf["id"].as_str().unwrap().to_string();
    fx.app
        .post_json(&fx.auth, &format!("/api/v1/workflows/{wf_id}/activate"))
        .await;
    let invoice = fx.xero_invoice(&cred, "HOOK-1").await;
    // Wait for the failed first attempt, then bring the endpoint up: the retry gets through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let d: Value = fx
            .app
            .http
            .get(fx.sandbox_url("/_sandbox/webhooks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d.as_array()
            .unwrap()
            .iter()
            .any(|x| x["delivered"] == false)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed delivery attempt: {d}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let upstream = fx.app.url("");
    let forward = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let upstream = upstream.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut r = reqwest::Client::new()
                .post(format!("{upstream}{}", parts.uri.path()))
                .body(bytes);
            if let Some(sig) = parts.headers.get("x-xero-signature") {
                r = r.header("x-xero-signature", sig.to_str().unwrap());
            }
            let resp = r.send().await.unwrap();
            StatusCode::from_u16(resp.status().as_u16())
                .unwrap()
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, forward).await.unwrap() });

    let runs = fx.wait_executions(&wf_id, 1).await;
    assert_eq!(runs.len(), 1, "the workflow ran once");
    let full: Value = fx
        .app
        .http
        .get(fx.app.url(&format!(
            "/api/v1/executions/{}",
            runs[0]["id"].as_str().unwrap()
        )))
        .headers(fx.auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = &full["runData"]["Xero"][0]["output"][0][0]["json"];
    assert_eq!(item["eventCategory"], "INVOICE");
    assert_eq!(item["resourceId"], invoice["InvoiceID"]);
    assert_eq!(
        item["record"]["Reference"], "HOOK-1",
        "the full invoice was fetched: {item}"
    );

    // The same delivery again, and a forged one: no new execution.
    let event = item.clone();
    let mut clean = event.clone();
    clean.as_object_mut().unwrap().remove("record");
    let body = json!({"events": [clean], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "DUP"}).to_string();
    let sig = xero_signature(&key, &body);
    let delivery = fx.app.url(&format!("/webhooks/xero/{cred}"));
    assert_eq!(
        fx.app
            .http
            .post(&delivery)
            .header("x-xero-signature", &sig)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        fx.app
            .http
            .post(&delivery)
            .header("x-xero-signature", "forged")
            .body(body)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        fx.app.executions_of(&fx.auth, &wf_id).await.len(),
        1,
        "duplicates and forgeries start nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn polling_fires_once_per_change_across_restarts_and_processes() {
    for postgres in [false, true] {
        let Some(db) = EngineDb::new(postgres).await else {
            continue;
        };
        polling_scenario(db.pg.as_ref().map(|d| d.url.as_str())).await;
        db.drop_db().await;
    }
}

async fn polling_scenario(database_url: Option<&str>) {
    let fx = XeroFixture::new_on(database_url, |c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let wf = fx.app.import(&fx.auth, xero_trigger_workflow("ledgerflow.xeroPollTrigger",
        json!({"resource": "invoice", "event": "newOrUpdated", "intervalSeconds": 1, "where": "Reference.StartsWith(\"POLL-\")"}))).await;
    let wf_id = wf["id"].as_str().unwrap().to_string();
    let act = fx
        .app
        .post_json(&fx.auth, &format!("/api/v1/workflows/{wf_id}/activate"))
        .await;
    assert_eq!(act["active"], true, "{act}");
    // The first poll only sets the cursor ("from now"): the seeded ledger does not fire.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert!(fx.app.executions_of(&fx.auth, &wf_id).await.is_empty());

    let inv = fx.xero_invoice(&cred, "POLL-1").await;
    let runs = fx.wait_executions(&wf_id, 1).await;
    assert_eq!(runs.len(), 1);
    // A second process on the same database (its own connections, workers and leases), as after
    // a restart or with two servers: the update fires once more, the creation is not replayed.
    let url = database_url
        .map(str::to_string)
        .unwrap_or_else(|| ledgerflow_store::sqlite_url(fx.app._home.path()));
    let store = Store::connect(&url, Keyring::load(fx.app._home.path(), None).unwrap())
        .await
        .unwrap();
    let second = AppState::new(store, (*fx.app.state.config).clone());
    ledgerflow_server::runtime::spawn(&second);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    fx.xero_update_invoice(&cred, inv["InvoiceID"].as_str().unwrap(), "POLL-1b")
        .await;
    let runs = fx.wait_executions(&wf_id, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let all = fx.app.executions_of(&fx.auth, &wf_id).await;
    assert_eq!(
        all.len(),
        2,
        "one for the new invoice, one for its update (database {database_url:?}): {all:?}"
    );
    let mut events = Vec::new();
    for r in runs {
        let full: Value = fx
            .app
            .http
            .get(
                fx.app
                    .url(&format!("/api/v1/executions/{}", r["id"].as_str().unwrap())),
            )
            .headers(fx.auth.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let item = full["runData"]["Xero"][0]["output"][0][0]["json"].clone();
        events.push((
            item["xeroEvent"].as_str().unwrap().to_string(),
            item["Reference"].as_str().unwrap().to_string(),
        ));
    }
    events.sort();
    assert_eq!(
        events,
        vec![
            ("new".to_string(), "POLL-1".to_string()),
            ("updated".to_string(), "POLL-1b".to_string())
        ]
    );
    second.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_nothing_new_makes_one_call() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    connected(&fx).await;
    let wf = fx
        .app
        .import(
            &fx.auth,
            xero_trigger_workflow(
                "ledgerflow.xeroPollTrigger",
                json!({"resource": "invoice", "intervalSeconds": 3600}),
            ),
        )
        .await;
    let id = wf["id"].as_str().unwrap();
    let record = fx.app.store.workflow(id).await.unwrap();
    let w = ledgerflow_server::runtime::load(&record).unwrap();
    let node = w.node("Xero").unwrap();
    let params =
        ledgerflow_nodes_xero::triggers::PollTriggerParams::parse(&node.parameters).unwrap();
    assert_eq!(
        ledgerflow_server::xero_triggers::poll_once(&fx.app.state, id, node, &params)
            .await
            .unwrap(),
        0,
        "first poll sets the cursor"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        ledgerflow_server::xero_triggers::poll_once(&fx.app.state, id, node, &params)
            .await
            .unwrap(),
        1
    );
    assert!(fx.app.executions_of(&fx.auth, id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_node_signs_with_a_xero_credential_as_predefined_type() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let tenant = fx.app.store.tenants(&cred).await.unwrap()[0]
        .tenant_id
        .clone();
    let mut http = n8n_node(
        "Organisation",
        "n8n-nodes-base.httpRequest",
        json!({
        "url": fx.sandbox_url("/api.xro/2.0/Organisation"),
        "authentication": "predefinedCredentialType", "nodeCredentialType": "xeroOAuth2Api",
        "sendHeaders": true, "headerParameters": {"parameters": [
            {"name": "xero-tenant-id", "value": tenant}, {"name": "Accept", "value": "application/json"}]},
        "options": {}}),
        200,
    );
    http["credentials"] = json!({"xeroOAuth2Api": {"id": cred, "name": "Xero"}});
    let wf = fx.app.import(&fx.auth, json!({"name": "Raw Xero call", "nodes": [
        n8n_node("Start", "n8n-nodes-base.manualTrigger", json!({}), 0), http], "connections": chain(&["Start", "Organisation"])})).await;
    let e = fx
        .app
        .post_json(
            &fx.auth,
            &format!(
                "/api/v1/workflows/{}/run?wait=30",
                wf["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let org = &e["runData"]["Organisation"][0]["output"][0][0]["json"];
    assert!(org["Organisations"][0]["Name"].is_string(), "{org}");
    let token = fx.app.store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert!(
        !e.to_string().contains(token.access_token.expose_secret()),
        "the token stays out of run data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xero_trigger_runs_per_event_or_per_delivery_and_filters_by_category() {
    let fx = XeroFixture::new(|c| c.auto_approve = true).await;
    let cred = connected(&fx).await;
    let key = "per-delivery-key";
    fx.app
        .http
        .patch(fx.app.url(&format!("/api/v1/credentials/{cred}")))
        .headers(fx.auth.clone())
        .json(&json!({"data": {"webhookKey": key}}))
        .send()
        .await
        .unwrap();
    let tenant = fx.app.store.tenants(&cred).await.unwrap()[0]
        .tenant_id
        .clone();
    let per_event = fx
        .app
        .import(
            &fx.auth,
            xero_trigger_workflow("ledgerflow.xeroTrigger", json!({"categories": "INVOICE"})),
        )
        .await;
    let per_delivery = fx
        .app
        .import(
            &fx.auth,
            xero_trigger_workflow(
                "ledgerflow.xeroTrigger",
                json!({"executionPer": "delivery"}),
            ),
        )
        .await;
    for w in [&per_event, &per_delivery] {
        fx.app
            .post_json(
                &fx.auth,
                &format!("/api/v1/workflows/{}/activate", w["id"].as_str().unwrap()),
            )
            .await;
    }
    let event = |category: &str, id: &str| {
        json!({"resourceUrl": format!("https://api.xero.com/api.xro/2.0/Things/{id}"), "resourceId": id,
        "eventDateUtc": "2026-12-03T10:00:00.000", "eventType": "UPDATE", "eventCategory": category, "tenantId": tenant, "tenantType": "ORGANISATION"})
    };
    let body = json!({"events": [event("INVOICE", "i1"), event("INVOICE", "i2"), event("SUBSCRIPTION", "s1")],
        "firstEventSequence": 1, "lastEventSequence": 3, "entropy": "X"}).to_string();
    let sig = xero_signature(key, &body);
    let resp = fx
        .app
        .http
        .post(fx.app.url(&format!("/webhooks/xero/{cred}")))
        .header("x-xero-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = fx
        .wait_executions(per_event["id"].as_str().unwrap(), 2)
        .await;
    assert_eq!(
        events.len(),
        2,
        "one per INVOICE event; the unknown category is not an invoice"
    );
    let batches = fx
        .wait_executions(per_delivery["id"].as_str().unwrap(), 1)
        .await;
    assert_eq!(batches.len(), 1);
    let full: Value = fx
        .app
        .http
        .get(fx.app.url(&format!(
            "/api/v1/executions/{}",
            batches[0]["id"].as_str().unwrap()
        )))
        .headers(fx.auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        full["runData"]["Xero"][0]["output"][0]
            .as_array()
            .unwrap()
            .len(),
        3,
        "all three, unknown category passed through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_answer_at_once_or_with_the_last_node() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let make = |path: &str, mode: &str| {
        json!({"name": format!("Hook {mode}"), "nodes": [
            n8n_node("Hook", "n8n-nodes-base.webhook", json!({"httpMethod": "POST", "path": path, "responseMode": mode}), 0),
            n8n_node("Sum", "n8n-nodes-base.set", json!({"mode": "manual", "assignments": {"assignments": [
                {"id": "a", "name": "sum", "value": "={{ $json.body.a + $json.body.b }}", "type": "number"}]}, "options": {}}), 200),
        ], "connections": chain(&["Hook", "Sum"])})
    };
    for (path, mode) in [("now", "onReceived"), ("last", "lastNode")] {
        let wf = app.import(&auth, make(path, mode)).await;
        app.post_json(
            &auth,
            &format!("/api/v1/workflows/{}/activate", wf["id"].as_str().unwrap()),
        )
        .await;
    }
    let resp = app
        .http
        .post(app.url("/webhook/now"))
        .json(&json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"message": "Workflow was started"})
    );
    let resp = app
        .http
        .post(app.url("/webhook/last"))
        .json(&json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["sum"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_authentication_is_checked_and_kept_out_of_run_data() {
    let app = TestApp::spawn().await;
    app.set_up_owner().await;
    let auth = app.bearer(&app.api_key().await);
    let resp = app.http.post(app.url("/api/v1/credentials")).headers(auth.clone())
        .json(&json!({"name": "Hook key", "type": "httpHeaderAuth", "data": {"name": "X-Hook-Key", "value": "hook-secret-123"}}))
        .send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let mut hook = n8n_node(
        "Hook",
        "n8n-nodes-base.webhook",
        json!({"httpMethod": "POST", "path": "guarded", "responseMode": "lastNode", "authentication": "headerAuth"}),
        0,
    );
    hook["credentials"] = json!({"httpHeaderAuth": {"id": "", "name": "Hook key"}});
    let wf = app.import(&auth, json!({"name": "Guarded", "nodes": [hook, n8n_node("Note", "n8n-nodes-base.noOp", json!({}), 200)],
        "connections": chain(&["Hook", "Note"])})).await;
    let id = wf["id"].as_str().unwrap();
    app.post_json(&auth, &format!("/api/v1/workflows/{id}/activate"))
        .await;
    let resp = app
        .http
        .post(app.url("/webhook/guarded"))
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .http
        .post(app.url("/webhook/guarded"))
        .header("x-hook-key", "wrong")
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .http
        .post(app.url("/webhook/guarded"))
        .header("x-hook-key", "hook-secret-123")
        .header("cookie", "lf_session=abc")
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let execs = app.executions_of(&auth, id).await;
    assert_eq!(execs.len(), 1, "refused calls start nothing");
    let full: Value = app
        .http
        .get(app.url(&format!(
            "/api/v1/executions/{}",
            execs[0]["id"].as_str().unwrap()
        )))
        .headers(auth.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = full.to_string();
    assert!(
        !text.contains("hook-secret-123") && !text.contains("lf_session=abc"),
        "{text}"
    );
    assert_eq!(
        full["runData"]["Hook"][0]["output"][0][0]["json"]["body"]["x"],
        1
    );
}

#[path = "pages/workflows.rs"]
mod workflow_pages;
