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
        let home = tempfile::tempdir().unwrap();
        let keyring = Keyring::load(home.path(), None).unwrap();
        let store = Store::connect(&ledgerflow_store::sqlite_url(home.path()), keyring)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(
            store.clone(),
            ServerConfig {
                public_url: base.parse().unwrap(),
            },
        );
        tokio::spawn(ledgerflow_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        TestApp {
            base,
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            store,
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
    assert!(text.contains("process_resident_memory_bytes"));
}
