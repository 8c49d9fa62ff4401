//! Who is asking: password hashing, browser sessions, API keys and CSRF protection.
//!
//! A request is authenticated by `Authorization: Bearer <api key>` (scripts) or by the session
//! cookie (browsers). Cookie-authenticated requests that change something must carry the CSRF
//! token: as the `_csrf` form field or the `X-CSRF-Token` header. The token is derived from the
//! session token, so it needs no storage and dies with the session. Forms shown before sign-in
//! (owner set-up, sign-in) use a double-submit cookie instead.
//!
//! Only hashes of tokens and keys are stored; raw values exist in the client and in memory.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ledgerflow_store::User;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "lf_session";
pub const PRE_CSRF_COOKIE: &str = "lf_csrf";
pub const API_KEY_PREFIX: &str = "lf_";
const SESSION_DAYS: i64 = 14;
/// Largest form body the CSRF check buffers; real forms are far smaller.
const FORM_LIMIT: usize = 1 << 20;

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks an owner email and password before an account is made; the message says what to fix.
pub fn validate_new_account(email: &str, password: &str) -> Result<(), String> {
    let email = email.trim();
    let valid_email = email
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.'));
    if !valid_email {
        return Err("Enter a valid email address, like you@example.com.".into());
    }
    if password.chars().count() < 10 {
        return Err("Choose a password of at least 10 characters.".into());
    }
    Ok(())
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The CSRF token belonging to a session token.
pub fn csrf_for(session_token: &str) -> String {
    sha256_hex(&format!("csrf|{session_token}"))
}

/// A new API key: (the key to show once, its display prefix, its hash to store).
pub fn new_api_key() -> (String, String, String) {
    let key = format!("{API_KEY_PREFIX}{}", random_token());
    let prefix = key.chars().take(10).collect();
    let hash = sha256_hex(&key);
    (key, prefix, hash)
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Set-Cookie` value; `Secure` when the public URL is https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// Starts a session for `user`; returns the Set-Cookie header value.
pub async fn start_session(state: &AppState, user: &User) -> Result<String, ApiError> {
    let token = random_token();
    let expires = ledgerflow_store::now_ms() + SESSION_DAYS * 86_400_000;
    state
        .store
        .create_session(&user.id, &sha256_hex(&token), expires)
        .await?;
    Ok(set_cookie(
        state,
        SESSION_COOKIE,
        &token,
        SESSION_DAYS * 86_400,
    ))
}

/// The signed-in person, put into request extensions by [`require_user`].
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: User,
    /// The CSRF token for forms (cookie sessions only).
    pub csrf: Option<String>,
    pub session_token_hash: Option<String>,
}

fn wants_html(req: &Request) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// Middleware for every protected route: resolves the principal or answers 401 (a browser asking
/// for a page is sent to sign in, or to owner set-up when there is no owner yet).
pub async fn require_user(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate(&state, req).await {
        Ok(req) => next.run(req).await,
        Err((err, html)) => {
            if html {
                let to = match state.store.user_count().await {
                    Ok(0) => "/setup",
                    _ => "/signin",
                };
                Redirect::to(to).into_response()
            } else {
                err.into_response()
            }
        }
    }
}

async fn authenticate(state: &AppState, req: Request) -> Result<Request, (ApiError, bool)> {
    let html = wants_html(&req);
    let fail = |e: ApiError| (e, html);
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let key = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                fail(ApiError::unauthorized(
                    "the Authorization header must be `Bearer <API key>`; create a key with `ledgerflow apikey create`",
                ))
            })?;
        let user = state
            .store
            .api_key_user(&sha256_hex(key))
            .await
            .map_err(|e| fail(e.into()))?
            .ok_or_else(|| {
                fail(ApiError::unauthorized(
                    "the API key is not valid; create a new one with `ledgerflow apikey create`",
                ))
            })?;
        let mut req = req;
        req.extensions_mut().insert(Principal {
            user,
            csrf: None,
            session_token_hash: None,
        });
        return Ok(req);
    }
    let token = cookie(req.headers(), SESSION_COOKIE).ok_or_else(|| {
        fail(ApiError::unauthorized(
            "sign in first, or send an API key as `Authorization: Bearer <key>`",
        ))
    })?;
    let token_hash = sha256_hex(&token);
    let user = state
        .store
        .session_user(&token_hash)
        .await
        .map_err(|e| fail(e.into()))?
        .ok_or_else(|| {
            fail(ApiError::unauthorized(
                "your session has ended; sign in again",
            ))
        })?;
    let csrf = csrf_for(&token);
    let req = check_csrf(req, &csrf).await.map_err(fail)?;
    let mut req = req;
    req.extensions_mut().insert(Principal {
        user,
        csrf: Some(csrf),
        session_token_hash: Some(token_hash),
    });
    Ok(req)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The `_csrf` field of a urlencoded body.
fn form_csrf(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.into_owned())
}

fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses a state-changing request without the expected token; buffers form bodies to read it.
pub async fn check_csrf(req: Request, expected: &str) -> Result<Request, ApiError> {
    if is_safe(req.method()) {
        return Ok(req);
    }
    let refused = || {
        ApiError::forbidden(
            "csrf",
            "this form has expired or did not come from Ledgerflow; reload the page and try again",
        )
    };
    if let Some(h) = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return if tokens_match(h, expected) {
            Ok(req)
        } else {
            Err(refused())
        };
    }
    if !is_form(req.headers()) {
        return Err(refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| ApiError::bad_request("body_too_large", "the form is too large"))?;
    match form_csrf(&bytes) {
        Some(t) if tokens_match(&t, expected) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(refused()),
    }
}
