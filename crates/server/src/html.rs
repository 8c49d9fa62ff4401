//! Server-rendered pages: one layout, a few components, and escaping.
//!
//! Every value that did not come from this file goes through [`esc`]. Pages are plain HTML with a
//! little inline CSS; there is no build step and no client framework.

use axum::response::Html;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root{--ink:#1f2430;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--brand:#0b6bcb;--brand-ink:#fff;--ok:#067647;--warn:#b54708;--bad:#b42318}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line)}
.bar{max-width:1080px;margin:0 auto;padding:0 24px;display:flex;align-items:center;gap:28px;height:56px}
.logo{font-weight:700;font-size:17px;color:var(--ink);text-decoration:none}.logo span{color:var(--brand)}
nav a{color:var(--muted);text-decoration:none;margin-right:18px;font-weight:500}nav a.on,nav a:hover{color:var(--ink)}
.who{margin-left:auto;color:var(--muted);font-size:14px;display:flex;gap:12px;align-items:center}
main{max-width:1080px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:24px;margin:0 0 4px}.sub{color:var(--muted);margin:0 0 24px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:24px}
.narrow{max-width:420px;margin:48px auto}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{text-align:left;padding:12px 16px;border-bottom:1px solid var(--line)}th{font-size:13px;color:var(--muted);font-weight:600;background:#fafbfc}
tr:last-child td{border-bottom:0}
label{display:block;font-weight:600;font-size:14px;margin:14px 0 6px}
input[type=text],input[type=email],input[type=password],input[type=url],select{width:100%;padding:9px 11px;border:1px solid #cfd4dc;border-radius:7px;font:inherit;background:#fff}
input:focus{outline:2px solid #b2d4f5;border-color:var(--brand)}
.btn{display:inline-block;padding:9px 16px;border-radius:7px;border:1px solid var(--brand);background:var(--brand);color:var(--brand-ink);font:inherit;font-weight:600;cursor:pointer;text-decoration:none}
.btn.secondary{background:#fff;color:var(--ink);border-color:#cfd4dc}.btn.link{background:none;border:0;color:var(--muted);padding:0;font-weight:500}
.row{display:flex;align-items:center;justify-content:space-between;gap:16px;margin-bottom:20px}
.alert{padding:12px 14px;border-radius:8px;margin:0 0 16px;border:1px solid}.alert.error{background:#fef3f2;border-color:#fecdca;color:var(--bad)}.alert.ok{background:#ecfdf3;border-color:#abefc6;color:var(--ok)}
.empty{text-align:center;padding:48px 24px;color:var(--muted)}
.tag{display:inline-block;font-size:12px;padding:2px 8px;border-radius:99px;background:#eef4ff;color:#3538cd;font-weight:600}
.hint{color:var(--muted);font-size:13px;margin-top:4px}
code{background:#f2f4f7;padding:1px 5px;border-radius:4px;font-size:13px}
textarea{width:100%;padding:9px 11px;border:1px solid #cfd4dc;border-radius:7px;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;min-height:84px}
.badge{display:inline-flex;align-items:center;gap:6px;font-size:13px;font-weight:600;padding:3px 10px;border-radius:99px}
.badge:before{content:"";width:7px;height:7px;border-radius:50%;background:currentColor}
.badge.connected{background:#ecfdf3;color:var(--ok)}.badge.needs_reconnect{background:#fef3f2;color:var(--bad)}.badge.never_connected{background:#f2f4f7;color:var(--muted)}
.copy{display:flex;gap:8px}.copy input{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;background:#f9fafb}
.steps{margin:0 0 8px;padding-left:20px;color:#344054}.steps li{margin:4px 0}
.grid{display:grid;grid-template-columns:minmax(0,1.4fr) minmax(0,1fr);gap:24px;align-items:start}
.kv{display:grid;grid-template-columns:150px 1fr;gap:8px 12px;font-size:14px}.kv dt{color:var(--muted)}.kv dd{margin:0;word-break:break-word}
.banner{background:#fffaeb;border:1px solid #fedf89;color:#93370d;padding:10px 14px;border-radius:8px;margin-bottom:16px;font-size:14px}
.search{margin-bottom:14px}.actions{display:flex;gap:10px;flex-wrap:wrap;margin-top:18px}
.scopes{display:flex;flex-wrap:wrap;gap:4px}.scopes code{font-size:12px}
h2{font-size:17px;margin:0 0 12px}section.card+section.card{margin-top:20px}
"#;

/// Whole page with header and navigation. `user` is the signed-in email, if any.
pub fn page(title: &str, nav: &str, user: Option<(&str, &str)>, body: &str) -> Html<String> {
    let header = match user {
        Some((email, csrf)) => format!(
            r#"<nav>{links}</nav>
<div class="who"><span>{email}</span><form method="post" action="/signout"><input type="hidden" name="_csrf" value="{csrf}"><button class="btn link" type="submit">Sign out</button></form></div>"#,
            links = [
                ("workflows", "/workflows", "Workflows"),
                ("executions", "/executions", "Executions"),
                ("credentials", "/credentials", "Credentials"),
                ("nodes", "/nodes/xero", "Nodes"),
            ]
            .iter()
            .map(|(key, href, label)| format!(
                r#"<a href="{href}" class="{}">{label}</a>"#,
                if nav == *key { "on" } else { "" }
            ))
            .collect::<String>(),
            email = esc(email),
            csrf = esc(csrf),
        ),
        None => String::new(),
    };
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} · Ledgerflow</title><style>{CSS}</style></head>
<body><header><div class="bar"><a class="logo" href="/">Ledger<span>flow</span></a>{header}</div></header>
<main>{body}</main></body></html>"#,
        title = esc(title),
    ))
}

pub fn alert(kind: &str, message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    format!(
        r#"<div class="alert {kind}" role="alert">{}</div>"#,
        esc(message)
    )
}

/// A read-only value with a button that copies it to the clipboard.
pub fn copy_field(id: &str, label: &str, value: &str, button: &str) -> String {
    format!(
        r#"<label for="{id}">{label}</label><div class="copy"><input id="{id}" type="text" readonly value="{value}"><button type="button" class="btn secondary" id="copy-{id}" data-copy="{id}">{button}</button></div>"#,
        id = esc(id),
        label = esc(label),
        value = esc(value),
        button = esc(button),
    )
}

/// Script for copy buttons: the Clipboard API, or a selection copy where it is unavailable.
pub const COPY_SCRIPT: &str = r#"<script>
document.querySelectorAll('[data-copy]').forEach(function (b) {
  b.addEventListener('click', function () {
    var input = document.getElementById(b.dataset.copy), label = b.textContent;
    function done() { b.textContent = 'Copied'; setTimeout(function () { b.textContent = label; }, 1500); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); document.execCommand('copy'); done(); });
    } else { input.select(); document.execCommand('copy'); done(); }
  });
});
</script>"#;

/// A date-time in UTC for tables.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}
