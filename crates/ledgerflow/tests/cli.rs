//! The real `ledgerflow` binary, started as a user would: fresh homes, restarts, wrong keys,
//! interrupted key rotation, SIGTERM, and the same flow on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ledgerflow_store::testing::TestDb;
use serde_json::{json, Value};

#[path = "support/webdriver.rs"]
mod webdriver;

const BIN: &str = env!("CARGO_BIN_EXE_ledgerflow");

fn cmd(home: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LEDGERFLOW_HOME", home)
        .env("RUST_LOG", "debug");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn cli(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    cmd(home, env).args(args).output().expect("run ledgerflow")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `ledgerflow serve --port 0` and waits until `/healthz` answers.
    fn start(home: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_with(home, env, &[])
    }

    fn start_with(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let log = home.join(format!("serve-{}.log", uuid_like()));
        let child = cmd(home, env)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn serve");
        // Owned before waiting, so a failed start still kills and reaps the process.
        let mut server = Server {
            child,
            base: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = std::fs::File::open(&server.log).ok().and_then(|f| {
                BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .find_map(|l| {
                        l.split("listening on ")
                            .nth(1)
                            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
                    })
            });
            if let Some(base) = found {
                server.base = base;
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, and the exit status once it has stopped.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other server of this test process has used.
fn uuid_like() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Fills a pre-sign-in form (set-up or sign-in) and returns the session cookie.
async fn submit_pre_form(server: &Server, path: &str, email: &str, password: &str) -> String {
    let http = http();
    let page = http.get(server.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200, "{path}");
    let pre = set_cookie(&page, "lf_csrf").unwrap();
    let token = csrf_field(&page.text().await.unwrap());
    let resp = http
        .post(server.url(path))
        .header("cookie", pre)
        .form(&[
            ("_csrf", token.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{path} did not sign in");
    set_cookie(&resp, "lf_session").expect("session cookie")
}

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_home_to_credential_that_survives_restart_with_its_secret_nowhere() {
    let home = tempfile::tempdir().unwrap();
    let secret = "S3CRET-c0ffee-5a1t";
    let server = Server::start(home.path(), &[]);
    let http = http();

    // First visit: owner set-up, then a fresh sign-in.
    let resp = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/setup");
    submit_pre_form(&server, "/setup", "owner@example.com", "a long passphrase").await;
    let session =
        submit_pre_form(&server, "/signin", "owner@example.com", "a long passphrase").await;
    let page = http
        .get(server.url("/credentials"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_field(&page.text().await.unwrap());

    // A credential with a secret, through the API with the browser session.
    let resp = http
        .post(server.url("/api/v1/credentials"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Bank feed", "type": "httpBasicAuth", "data": {"user": "feeds", "password": secret}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mut responses = resp.text().await.unwrap();
    assert!(server.stop().success(), "graceful shutdown exits 0");

    // Restart on the same home: the credential is still there, and readable by API key.
    let server = Server::start(home.path(), &[]);
    let key_out = cli(home.path(), &[], &["apikey", "create", "--name", "test"]);
    assert!(key_out.status.success(), "{}", text(&key_out));
    let key = String::from_utf8(key_out.stdout)
        .unwrap()
        .trim()
        .to_string();
    let resp = http
        .get(server.url("/api/v1/credentials"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["data"][0]["name"], "Bank feed");
    assert_eq!(list["data"][0]["secretFieldsSet"], json!(["password"]));
    responses.push_str(&body);
    let html = http
        .get(server.url("/credentials"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Bank feed"));
    responses.push_str(&html);
    let listed = cli(home.path(), &[], &["credentials", "list", "--json"]);
    responses.push_str(&text(&listed));
    let logs = server.log_text();
    assert!(server.stop().success());

    assert!(!responses.contains(secret), "secret in a response");
    for entry in std::fs::read_dir(home.path()).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            !file_contains(&path, secret),
            "secret found in {}",
            path.display()
        );
    }
    assert!(logs.contains("request"), "the log records requests");
    assert!(!logs.contains(secret));
    let verified = cli(home.path(), &[], &["keys", "verify"]);
    assert!(
        text(&verified).contains("All 1 secret(s) decrypt"),
        "{}",
        text(&verified)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_with_the_wrong_key_is_refused_with_a_message_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let k2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let out = cli(
        home.path(),
        &[("LEDGERFLOW_ENCRYPTION_KEY", k1)],
        &["keys", "status"],
    );
    assert!(out.status.success(), "{}", text(&out));

    let started = Instant::now();
    let out = cmd(home.path(), &[("LEDGERFLOW_ENCRYPTION_KEY", k2)])
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(20));
    let msg = text(&out);
    assert!(
        msg.contains("encryption key version 1 from LEDGERFLOW_ENCRYPTION_KEY does not match"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");

    let out = cmd(home.path(), &[("LEDGERFLOW_ENCRYPTION_KEY", "too-short")])
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("LEDGERFLOW_ENCRYPTION_KEY is not valid"),
        "{}",
        text(&out)
    );

    // A key file home whose key file went missing is not silently given a new key.
    let home2 = tempfile::tempdir().unwrap();
    assert!(cli(home2.path(), &[], &["keys", "status"]).status.success());
    std::fs::remove_file(home2.path().join("encryption.keys")).unwrap();
    let out = cli(home2.path(), &[], &["serve", "--port", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("key file"), "{}", text(&out));
    assert!(!home2.path().join("encryption.keys").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_killed_halfway_leaves_every_secret_readable() {
    let home = tempfile::tempdir().unwrap();
    let out = cmd(home.path(), &[])
        .args(["user", "create-owner", "--email", "o@example.com"])
        .env("LEDGERFLOW_OWNER_PASSWORD", "a long passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8(cli(home.path(), &[], &["apikey", "create"]).stdout).unwrap();
    let server = Server::start(home.path(), &[]);
    let http = http();
    let total = 1500;
    let mut tasks = Vec::new();
    for i in 0..total {
        let (http, url, key) = (
            http.clone(),
            server.url("/api/v1/credentials"),
            key.trim().to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"name": format!("C{i}"), "type": "httpHeaderAuth", "data": {"name": "X-Key", "value": format!("value-{i}")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }));
        if tasks.len() >= 8 {
            for t in tasks.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Rotate while the server runs; kill -9 the rotation as soon as the new key exists.
    let key_file = home.path().join("encryption.keys");
    let mut rotation = cmd(home.path(), &[("RUST_LOG", "warn")])
        .args(["keys", "rotate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&key_file).unwrap().contains("\n2 ") {
        assert!(Instant::now() < deadline, "rotation never added a key");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(30));
    rotation.kill().unwrap();
    rotation.wait().unwrap();

    let status = text(&cli(home.path(), &[], &["keys", "status"]));
    assert!(
        status.contains("version 1:") && status.contains("version 2:"),
        "the kill should land mid-rotation: {status}"
    );
    let verify = cli(home.path(), &[], &["keys", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains(&format!("All {total} secret(s)")));

    // The running server read through the rotation (it picks up the new key version itself).
    let resp = http
        .post(server.url("/api/v1/credentials"))
        .bearer_auth(key.trim())
        .json(&json!({"name": "after", "type": "httpBasicAuth", "data": {"user": "u", "password": "p"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let listed: Value = http
        .get(server.url("/api/v1/credentials"))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), total + 1);

    // Running it again finishes the job.
    let again = cli(home.path(), &[], &["keys", "rotate"]);
    assert!(again.status.success(), "{}", text(&again));
    let status = text(&cli(home.path(), &[], &["keys", "status"]));
    assert!(
        status.contains(&format!("version 3: {} secret(s)", total + 1)),
        "{status}"
    );
    assert!(cli(home.path(), &[], &["keys", "verify"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_owner_is_headless_and_only_once() {
    let home = tempfile::tempdir().unwrap();
    let run = |email: &str, password: &str| {
        cmd(home.path(), &[("LEDGERFLOW_OWNER_PASSWORD", password)])
            .args(["user", "create-owner", "--email", email])
            .output()
            .unwrap()
    };
    let out = run("not-an-email", "a long passphrase");
    assert!(!out.status.success());
    assert!(text(&out).contains("valid email"));
    let out = run("o@example.com", "short");
    assert!(text(&out).contains("at least 10 characters"));
    let out = run("o@example.com", "a long passphrase");
    assert!(out.status.success(), "{}", text(&out));
    let out = run("p@example.com", "a long passphrase");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("an owner account already exists"),
        "{}",
        text(&out)
    );

    let server = Server::start(home.path(), &[]);
    submit_pre_form(&server, "/signin", "o@example.com", "a long passphrase").await;
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgresql_keeps_credentials_across_restarts() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", db.url.as_str())];
    let out = cmd(home.path(), &env)
        .args(["user", "create-owner", "--email", "o@example.com"])
        .env("LEDGERFLOW_OWNER_PASSWORD", "a long passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8(cli(home.path(), &env, &["apikey", "create"]).stdout).unwrap();
    let server = Server::start(home.path(), &env);
    assert!(
        server.log_text().contains("Postgres"),
        "{}",
        server.log_text()
    );
    let http = http();
    let resp = http
        .post(server.url("/api/v1/credentials"))
        .bearer_auth(key.trim())
        .json(&json!({"name": "PG cred", "type": "httpHeaderAuth", "data": {"name": "X", "value": "pg-secret-value"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(server.stop().success());
    assert!(
        !home.path().join("ledgerflow.db").exists(),
        "no SQLite file when PostgreSQL is used"
    );

    let server = Server::start(home.path(), &env);
    let listed: Value = http
        .get(server.url("/api/v1/credentials"))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["name"], "PG cred");
    drop(server);
    db.drop_db().await;
}

async fn field_value(browser: &webdriver::Browser, css: &str) -> String {
    browser
        .property(css, "value")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The ten steps users know, literally, in headless Chromium against `serve --sandbox`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_xero_in_a_real_browser_through_the_sandbox_portal() {
    let Some(browser) = webdriver::Browser::start().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let sandbox_port = free_port().to_string();
    let server = Server::start_with(
        home.path(),
        &[],
        &["--sandbox", "--sandbox-port", &sandbox_port],
    );
    let sandbox = format!("http://127.0.0.1:{sandbox_port}");

    // Owner set-up on first visit.
    browser.goto(&server.url("/")).await;
    // Reading the clipboard back needs the page's permission (granted per origin).
    browser.grant("clipboard-read").await;
    browser.grant("clipboard-write").await;
    browser.type_into("#email", "owner@example.com").await;
    browser.type_into("#password", "a long passphrase").await;
    browser.click("#create-owner").await;
    browser
        .wait_url("the credentials page", |u| u.ends_with("/credentials"))
        .await;

    // 1. Credentials → ADD NEW.
    browser.click("#add-new").await;
    // 2. Pick Xero OAuth2 API in the searchable integrations list.
    browser.type_into("#integration-search", "xero").await;
    assert_eq!(
        browser
            .property("#pick-httpBasicAuth", "offsetParent")
            .await,
        Value::Null,
        "search hides the others"
    );
    browser.click("#pick-xeroOAuth2Api").await;
    assert!(browser.source().await.contains("Sandbox mode"));
    // Choosing broad scopes (apps from before March 2026) swaps the default scope list; back to
    // granular for this new app.
    assert!(field_value(&browser, "#f-scope")
        .await
        .contains("accounting.invoices"));
    browser.click("#f-scopeMode option[value=broad]").await;
    assert!(field_value(&browser, "#f-scope")
        .await
        .contains("accounting.transactions"));
    browser.click("#f-scopeMode option[value=granular]").await;
    assert!(!field_value(&browser, "#f-scope")
        .await
        .contains("accounting.transactions"));
    // 3. Copy URL really copies the OAuth Redirect URL to the clipboard.
    browser.click("#copy-redirect-url").await;
    let clipboard = browser
        .execute_async("const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, e => done('ERROR ' + e));")
        .await;
    let redirect = clipboard.as_str().unwrap().to_string();
    assert_eq!(redirect, server.url("/rest/oauth2-credential/callback"));
    let form_url = browser.url().await;
    if let Some(dir) = std::env::var_os("LEDGERFLOW_SCREENSHOTS") {
        browser
            .screenshot(&Path::new(&dir).join("xero-form.png"))
            .await;
    }

    // 4–9. In the (sandbox) developer portal: new Web app with that redirect URI, then a secret.
    let portal = browser.property("#developer-portal", "href").await;
    assert_eq!(portal.as_str().unwrap(), format!("{sandbox}/portal"));
    browser.goto(portal.as_str().unwrap()).await;
    browser.click("#new-app").await;
    browser.type_into("#app-name", "My Ledgerflow").await;
    browser
        .type_into("#company-url", "https://example.com")
        .await;
    browser.type_into("#redirect-uri", &redirect).await;
    browser.click("#create-app").await;
    browser.click("#generate-secret").await;
    let client_id = browser.text("#client-id").await;
    let client_secret = browser.text("#client-secret").await;
    assert!(!client_id.is_empty() && !client_secret.is_empty());

    // 10. Back in Ledgerflow: paste, Connect, approve two organisations, see Connected.
    browser.goto(&form_url).await;
    browser.type_into("#f-clientId", &client_id).await;
    browser.type_into("#f-clientSecret", &client_secret).await;
    browser.click("#connect").await;
    browser
        .wait_url("Xero's sign-in page", |u| u.starts_with(&sandbox))
        .await;
    let login = browser.source().await;
    let password = login
        .split("<code>")
        .nth(2)
        .and_then(|c| c.split("</code>").next())
        .expect("the sandbox shows its demo login")
        .to_string();
    browser
        .type_into("#email", "demo@sandbox.ledgerflow.dev")
        .await;
    browser.type_into("#password", &password).await;
    browser.click("#login").await;
    let org_names: Vec<String> = {
        browser.find("#allow").await;
        let page = browser.source().await;
        page.split("class=\"org\"")
            .skip(1)
            .filter_map(|l| {
                l.split("checked>")
                    .nth(1)
                    .or_else(|| l.split("checked=\"\">").nth(1))
            })
            .filter_map(|rest| rest.split("</label>").next())
            .map(|n| n.trim().replace("&amp;", "&"))
            .collect()
    };
    assert_eq!(org_names.len(), 2, "two organisations offered, both ticked");
    browser.click("#allow").await;
    browser
        .wait_url("the credential page", |u| {
            u.starts_with(&server.url("/credentials/")) && u.contains("connected=")
        })
        .await;
    assert_eq!(browser.text("#status").await, "Connected");
    let page = browser.text("#organisations").await;
    for name in &org_names {
        assert!(page.contains(name.as_str()), "{name} missing from {page}");
    }
    if let Some(dir) = std::env::var_os("LEDGERFLOW_SCREENSHOTS") {
        browser
            .screenshot(&Path::new(&dir).join("xero-connected.png"))
            .await;
    }

    // Test works from the page too.
    browser.click("#test").await;
    assert!(browser
        .text("#test-result")
        .await
        .contains("Xero answered for all 2"));
    let credential_page = browser.source().await;
    browser.quit().await;

    // Nothing secret leaked: not the client secret, not the tokens (read back through the vault).
    let logs = server.log_text();
    assert!(server.stop().success());
    let store = ledgerflow_store::Store::connect(
        &ledgerflow_store::sqlite_url(home.path()),
        ledgerflow_store::Keyring::load(home.path(), None).unwrap(),
    )
    .await
    .unwrap();
    let cred = store.list_credentials().await.unwrap()[0].id.clone();
    let tokens = store.oauth_tokens(&cred).await.unwrap().unwrap();
    store.close().await;
    use secrecy::ExposeSecret;
    let needles = [
        client_secret.clone(),
        tokens.access_token.expose_secret().to_string(),
        tokens.refresh_token.unwrap().expose_secret().to_string(),
    ];
    for n in &needles {
        assert!(!logs.contains(n.as_str()), "a secret is in the server log");
        assert!(
            !credential_page.contains(n.as_str()),
            "a secret is on the credential page"
        );
        for entry in std::fs::read_dir(home.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                continue;
            }
            assert!(
                !file_contains(&path, n),
                "a secret is in {}",
                path.display()
            );
        }
    }
}

/// `ledgerflow sandbox` as a separate process, killed when dropped.
struct SandboxProcess {
    child: Child,
    url: String,
}

impl SandboxProcess {
    async fn start(extra: &[&str]) -> SandboxProcess {
        let port = free_port().to_string();
        let child = Command::new(BIN)
            .args([
                "sandbox",
                "--port",
                &port,
                "--auto-approve",
                "--no-rate-limits",
                "--seed-invoices",
                "5",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http().get(format!("{url}/_sandbox")).send().await.is_err() {
            assert!(Instant::now() < deadline, "sandbox did not start");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        SandboxProcess { child, url }
    }

    async fn register_app(&self, redirect: &str) -> (String, String) {
        let app: Value = http()
            .post(format!("{}/_sandbox/apps", self.url))
            .json(&json!({"name": "CLI test", "redirect_uris": [redirect]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            app["client_id"].as_str().unwrap().into(),
            app["client_secret"].as_str().unwrap().into(),
        )
    }

    async fn refresh_calls(&self) -> u64 {
        let c: Value = http()
            .get(format!("{}/_sandbox/counters", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ledgerflow_sandbox::admin::token_calls(&c, "refresh_token")
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the owner (CLI), an API key (CLI) and a Xero credential for a fresh sandbox app
/// (API), then connects it through `ledgerflow credentials connect-url` and a signed-in browser
/// session. Returns (api key, credential id, session cookie).
async fn connect_with_cli(
    home: &Path,
    env: &[(&str, &str)],
    server: &Server,
    sandbox: &SandboxProcess,
) -> (String, String, String) {
    let key = String::from_utf8(cli(home, env, &["apikey", "create"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let (client_id, secret) = sandbox
        .register_app(&server.url("/rest/oauth2-credential/callback"))
        .await;
    let resp = http()
        .post(server.url("/api/v1/credentials"))
        .bearer_auth(&key)
        .json(&json!({"name": "Xero", "type": "xeroOAuth2Api", "data": {"clientId": client_id, "clientSecret": secret, "environment": "sandbox"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let cred = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cli_env = env.to_vec();
    cli_env.push(("LEDGERFLOW_PUBLIC_URL", server.base.as_str()));
    cli_env.push(("LEDGERFLOW_SANDBOX_URL", sandbox.url.as_str()));
    let out = cli(home, &cli_env, &["credentials", "connect-url", &cred]);
    assert!(out.status.success(), "{}", text(&out));
    let authorize = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        authorize.starts_with(&format!("{}/identity/connect/authorize?", sandbox.url)),
        "{authorize}"
    );
    let session = submit_pre_form(server, "/signin", "o@example.com", "a long passphrase").await;
    let back = http().get(&authorize).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = http()
        .get(&back)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    (key, cred, session)
}

fn create_owner(home: &Path, env: &[(&str, &str)]) {
    let out = cmd(home, env)
        .args(["user", "create-owner", "--email", "o@example.com"])
        .env("LEDGERFLOW_OWNER_PASSWORD", "a long passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_cli_lists_shows_tests_disconnects_and_deletes() {
    let sandbox = SandboxProcess::start(&[]).await;
    let home = tempfile::tempdir().unwrap();
    create_owner(home.path(), &[]);
    let server = Server::start_with(home.path(), &[], &["--sandbox-url", &sandbox.url]);
    let (_, cred, _) = connect_with_cli(home.path(), &[], &server, &sandbox).await;
    let env = [
        ("LEDGERFLOW_PUBLIC_URL", server.base.as_str()),
        ("LEDGERFLOW_SANDBOX_URL", sandbox.url.as_str()),
    ];

    let out = cli(home.path(), &env, &["credentials", "list"]);
    assert!(
        text(&out).contains("xeroOAuth2Api") && text(&out).contains("connected"),
        "{}",
        text(&out)
    );
    let out = cli(home.path(), &env, &["credentials", "show", &cred]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["connection"]["status"], "connected");
    let orgs = shown["connection"]["organisations"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(orgs.len(), 2);
    assert!(shown["connection"]["accessExpiresAt"].is_i64());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("clientSecret\": \""));

    let out = cli(home.path(), &env, &["credentials", "test", &cred]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Xero answered for all 2 organisation(s)"),
        "{}",
        text(&out)
    );

    let tenant = orgs[0]["tenantId"].as_str().unwrap();
    let out = cli(
        home.path(),
        &env,
        &["credentials", "disconnect", &cred, tenant],
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown: Value =
        serde_json::from_slice(&cli(home.path(), &env, &["credentials", "show", &cred]).stdout)
            .unwrap();
    assert_eq!(
        shown["connection"]["organisations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let out = cli(home.path(), &env, &["credentials", "delete", &cred]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&cli(home.path(), &env, &["credentials", "list"])).contains("No credentials"));
    let out = cli(home.path(), &env, &["credentials", "show", &cred]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not found"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_postgresql_database_refresh_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let sandbox = SandboxProcess::start(&["--access-token-ttl", "2"]).await;
    let home = tempfile::tempdir().unwrap();
    let key = ledgerflow_store::vault::generate_key();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("LEDGERFLOW_ENCRYPTION_KEY", key.as_str()),
    ];
    create_owner(home.path(), &env);
    let a = Server::start_with(home.path(), &env, &["--sandbox-url", &sandbox.url]);
    let b = Server::start_with(home.path(), &env, &["--sandbox-url", &sandbox.url]);
    let (api_key, cred, _) = connect_with_cli(home.path(), &env, &a, &sandbox).await;
    // Let the access token expire, then 200 requests that need it, spread over both processes.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = sandbox.refresh_calls().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = if i % 2 == 0 { a.url("") } else { b.url("") };
        let (api_key, cred) = (api_key.clone(), cred.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http()
                .post(format!("{url}/api/v1/credentials/{cred}/test"))
                .bearer_auth(api_key)
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        }));
    }
    for t in tasks {
        let report = t.await.unwrap();
        assert_eq!(report["ok"], true, "{report}");
    }
    assert_eq!(sandbox.refresh_calls().await - before, 1);
    drop(a);
    drop(b);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_killed_with_sigkill_is_resumed_after_restart() {
    let home = tempfile::tempdir().unwrap();
    create_owner(home.path(), &[]);
    let key = String::from_utf8(cli(home.path(), &[], &["apikey", "create"]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let env = [("LEDGERFLOW_EXECUTION_STALE_SECS", "1")];
    let mut server = Server::start(home.path(), &env);
    let node = |name: &str, ty: &str, version: f64, params: Value| json!({"id": name, "name": name, "type": ty, "typeVersion": version, "position": [0, 0], "parameters": params});
    let wf = json!({"name": "Slow", "nodes": [
        node("Start", "n8n-nodes-base.manualTrigger", 1.0, json!({})),
        node("Pause", "n8n-nodes-base.wait", 1.1, json!({"resume": "timeInterval", "amount": 3, "unit": "seconds"})),
        node("Done", "n8n-nodes-base.set", 3.4, json!({"mode": "manual", "assignments": {"assignments": [{"id": "a", "name": "finished", "value": true, "type": "boolean"}]}, "options": {}})),
    ], "connections": {"Start": {"main": [[{"node": "Pause", "type": "main", "index": 0}]]}, "Pause": {"main": [[{"node": "Done", "type": "main", "index": 0}]]}}});
    let http = http();
    let created: Value = http
        .post(server.url("/api/v1/workflows"))
        .bearer_auth(&key)
        .json(&wf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let started: Value = http
        .post(server.url(&format!("/api/v1/workflows/{id}/run")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exec = started["id"].as_str().unwrap().to_string();
    // Wait until the first node is recorded (a checkpoint exists), then kill -9 during the Wait.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e: Value = http
            .get(server.url(&format!("/api/v1/executions/{exec}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if e["status"] == "running" && e["runData"]["Start"].is_array() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the execution never started: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let out = cli(home.path(), &[], &["executions", "show", &exec]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "running", "killed mid-run: {shown}");

    // After a restart the execution is recovered and resumed after its last completed node.
    let server = Server::start(home.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let e: Value = http
            .get(server.url(&format!("/api/v1/executions/{exec}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if e["status"] != "running" && e["status"] != "queued" {
            break e;
        }
        assert!(Instant::now() < deadline, "not recovered: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["runData"]["Done"][0]["output"][0][0]["json"]["finished"],
        true
    );
    assert_eq!(
        done["runData"]["Start"].as_array().unwrap().len(),
        1,
        "the trigger did not run twice"
    );
    let all: Value = http
        .get(server.url(&format!("/api/v1/executions?workflowId={id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["data"].as_array().unwrap().len(),
        1,
        "no duplicate execution"
    );
    assert!(
        server.log_text().contains("recovered executions"),
        "{}",
        server.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_and_execution_commands_import_run_list_show_and_retry() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("wf.json");
    std::fs::write(
        &file,
        json!({"name": "CLI workflow", "nodes": [
            {"id": "a", "name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0], "parameters": {}},
            {"id": "b", "name": "Greet", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [200, 0], "parameters": {"mode": "manual",
                "assignments": {"assignments": [{"id": "g", "name": "greeting", "value": "={{ 'hello ' + 'world' }}", "type": "string"}]}, "options": {}}}],
            "connections": {"Start": {"main": [[{"node": "Greet", "type": "main", "index": 0}]]}}})
        .to_string(),
    )
    .unwrap();
    let out = cli(
        home.path(),
        &[],
        &["workflow", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(text(&cli(home.path(), &[], &["workflow", "list"])).contains("CLI workflow"));
    let exported: Value =
        serde_json::from_slice(&cli(home.path(), &[], &["workflow", "export", &id]).stdout)
            .unwrap();
    assert_eq!(exported["nodes"][1]["type"], "ledgerflow.set");

    let out = cli(home.path(), &[], &["workflow", "run", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        run["runData"]["Greet"][0]["output"][0][0]["json"]["greeting"],
        "hello world"
    );
    let exec = run["id"].as_str().unwrap().to_string();

    let listed = text(&cli(home.path(), &[], &["executions", "list"]));
    assert!(
        listed.contains(&exec) && listed.contains("succeeded"),
        "{listed}"
    );
    let shown: Value =
        serde_json::from_slice(&cli(home.path(), &[], &["executions", "show", &exec]).stdout)
            .unwrap();
    assert_eq!(shown["id"], exec.as_str());
    let out = cli(home.path(), &[], &["executions", "retry", &exec]);
    assert!(
        out.status.success() && text(&out).contains("Queued execution"),
        "{}",
        text(&out)
    );
    let out = cli(home.path(), &[], &["executions", "cancel", &exec]);
    assert!(
        !out.status.success() && text(&out).contains("already ended"),
        "{}",
        text(&out)
    );

    // Activation needs a trigger that can start the workflow on its own.
    let out = cli(home.path(), &[], &["workflow", "activate", &id]);
    assert!(
        !out.status.success() && text(&out).contains("no trigger"),
        "{}",
        text(&out)
    );
    let out = cli(
        home.path(),
        &[],
        &["workflow", "import", "/nonexistent.json"],
    );
    assert!(
        !out.status.success() && text(&out).contains("cannot read"),
        "{}",
        text(&out)
    );
    let described = text(&cli(home.path(), &[], &["nodes", "describe", "xero"]));
    assert!(described.contains("Invoices") && described.contains("accounting.invoices"));
}
