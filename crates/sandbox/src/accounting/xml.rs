//! Xero's default representation: without `Accept: application/json` the Accounting API answers
//! in XML. This renders the sandbox's JSON bodies the way Xero's XML looks: a `<Response>` root
//! (or `<ApiException>` for validation errors), arrays as a plural element holding singular
//! children (`<Invoices><Invoice>…`), and `/Date(…)/` values as ISO 8601 timestamps.

use serde_json::Value;

use super::model::parse_instant;
use crate::html::escape;

/// The element name of one member of an array element.
fn singular(plural: &str) -> String {
    match plural {
        "Tracking" => "TrackingCategory".to_owned(),
        "Elements" => "DataContractBase".to_owned(),
        p if p.ends_with("sses") => p[..p.len() - 2].to_owned(),
        p if p.ends_with("ies") => format!("{}y", &p[..p.len() - 3]),
        p if p.ends_with('s') => p[..p.len() - 1].to_owned(),
        p => format!("{p}Item"),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if s.starts_with("/Date(") => parse_instant(s)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_else(|| escape(s)),
        Value::String(s) => escape(s),
        other => other.to_string(),
    }
}

/// An element name made safe: echoed request elements may carry arbitrary property names.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
        .collect();
    match cleaned.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => cleaned,
        _ => format!("_{cleaned}"),
    }
}

fn element(out: &mut String, name: &str, value: &Value) {
    let name = &safe_name(name);
    match value {
        Value::Null => {}
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (key, child) in map {
                element(out, key, child);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Array(items) => {
            out.push_str(&format!("<{name}>"));
            let child = singular(name);
            for item in items {
                element(out, &child, item);
            }
            out.push_str(&format!("</{name}>"));
        }
        other => out.push_str(&format!("<{name}>{}</{name}>", scalar(other))),
    }
}

/// Renders a response body as Xero's XML.
pub fn render(body: &Value) -> String {
    let root = if body.get("ErrorNumber").is_some() {
        "ApiException"
    } else {
        "Response"
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    out.push_str(&format!(
        "<{root} xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
    ));
    if let Value::Object(map) = body {
        for (key, value) in map {
            element(&mut out, key, value);
        }
    }
    out.push_str(&format!("</{root}>"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_become_plural_elements_of_singular_children_and_dates_become_iso() {
        let body = json!({"Status": "OK", "Invoices": [{"InvoiceNumber": "INV-1 & co",
            "Date": "/Date(1419937200000+0000)/", "LineItems": [{"Quantity": 2.0}], "Reference": null}],
            "Currencies": [{"Code": "NZD"}]});
        let xml = render(&body);
        assert!(xml.contains("<Response "));
        assert!(xml.contains("<Invoices><Invoice><Date>2014-12-30T11:00:00</Date>"));
        assert!(xml.contains("<InvoiceNumber>INV-1 &amp; co</InvoiceNumber>"));
        assert!(
            xml.contains("<LineItems><LineItem><Quantity>2.0</Quantity></LineItem></LineItems>")
        );
        assert!(xml.contains("<Currencies><Currency><Code>NZD</Code></Currency></Currencies>"));
        assert!(!xml.contains("Reference"));
        assert!(render(&json!({"ErrorNumber": 10, "Elements": [{}]})).contains("<ApiException "));
        assert!(render(&json!({"<script>": 1, "9 lives": 2})).contains("<_9lives>2</_9lives>"));
        assert!(!render(&json!({"<script>": 1})).contains("<<"));
    }
}
