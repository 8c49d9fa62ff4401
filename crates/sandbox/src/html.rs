//! The look of every sandbox page (consent, errors, developer portal): one layout with inline
//! CSS and an HTML escaper. Pages build their bodies as strings; nothing here knows about OAuth.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --ink:#1f2a37; --muted:#5b6b7c; --line:#dde3ea; --brand:#13b5ea; --brand-dark:#0c8fb9; --bg:#f4f7f9; --danger:#c4314b; }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color:var(--ink); background:var(--bg); }
a { color:var(--brand-dark); }
header.top { background:#0b2a3c; color:#fff; padding:12px 24px; display:flex; align-items:center; gap:16px; }
header.top .logo { width:30px; height:30px; border-radius:50%; background:var(--brand); display:inline-flex; align-items:center; justify-content:center; font-weight:700; }
header.top a { color:#cfe9f5; text-decoration:none; margin-left:auto; }
header.top .badge { font-size:12px; background:#f5a623; color:#222; border-radius:10px; padding:1px 8px; }
main { max-width:860px; margin:32px auto; padding:0 16px; }
main.narrow { max-width:460px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:24px 28px; margin-bottom:20px; }
h1 { font-size:24px; margin:0 0 16px; } h2 { font-size:18px; margin:0 0 12px; }
p.muted, .muted { color:var(--muted); }
label { display:block; font-weight:600; margin:14px 0 4px; }
input[type=text], input[type=email], input[type=password], input[type=url], select, textarea { width:100%; padding:9px 10px; border:1px solid #b9c4cf; border-radius:4px; font:inherit; }
textarea { min-height:80px; }
.hint { font-size:13px; color:var(--muted); margin-top:4px; }
p.hint { margin-top:16px; }
button, .button { display:inline-block; border:0; border-radius:4px; padding:9px 18px; font:inherit; font-weight:600; cursor:pointer; text-decoration:none; }
.primary { background:var(--brand); color:#fff; } .primary:hover { background:var(--brand-dark); }
.secondary { background:#fff; color:var(--ink); border:1px solid #b9c4cf; }
.actions { margin-top:20px; display:flex; gap:10px; }
table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:10px 8px; border-bottom:1px solid var(--line); }
th { font-size:13px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
code, .secret { font-family:ui-monospace, Menlo, Consolas, monospace; background:#eef3f7; padding:2px 6px; border-radius:3px; word-break:break-all; }
.field { margin:10px 0; } .field .name { font-size:13px; color:var(--muted); }
.notice { background:#fff8e1; border:1px solid #f1d38a; padding:10px 14px; border-radius:4px; margin:12px 0; }
.error { background:#fdecef; border:1px solid #f3b6c1; color:var(--danger); padding:10px 14px; border-radius:4px; margin:12px 0; }
.org { display:flex; align-items:center; gap:10px; padding:10px; border:1px solid var(--line); border-radius:4px; margin:8px 0; }
.org input { width:18px; height:18px; }
ul.scopes { padding-left:20px; }
"#;

/// A complete page in the sandbox's layout.
pub fn page(title: &str, narrow: bool, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Xero sandbox</title><style>{STYLE}</style></head><body>\
         <header class=\"top\"><span class=\"logo\">x</span><strong>Xero</strong>\
         <span class=\"badge\">sandbox</span><a href=\"/portal\">My Apps</a></header>\
         <main class=\"{class}\">{body}</main></body></html>",
        title = escape(title),
        class = if narrow { "narrow" } else { "" },
    )
}

/// An error page: shown instead of redirecting when an authorize request cannot be trusted.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<div class=\"card\"><h1 id=\"error-title\">{}</h1><p class=\"error\" id=\"error-detail\">{}</p>\
         <p class=\"muted\">The app that sent you here is misconfigured. No data was shared with it.</p></div>",
        escape(title),
        escape(detail)
    );
    (status, Html(page(title, true, &body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
