//! The Xero node's documentation, generated from the catalogue: for each resource, each
//! operation with its parameters and the scope it needs (granular, or broad for older apps).
//! Shown by `ledgerflow nodes describe xero` and on the node's page in the web UI.

use ledgerflow_xero::catalogue::{self, Resource};
use serde_json::{json, Value};

use crate::params::{describe_operations, Op};

/// Parameters an operation reads, in words.
fn parameters(op: &str) -> &'static str {
    match op {
        "Create" => "fields (the record, Xero's field names), organisation",
        "Update" => "id, fields, organisation",
        "Create or Update" => "fields (with the id field to update), organisation",
        "Get" => "id, organisation",
        "Get Many" => "returnAll or limit (default 50), filters: where, order, modifiedSince, statuses, ids, searchTerm, includeArchived, summaryOnly; organisation",
        "Delete" | "Delete / Void" | "Archive" => "id, organisation",
        "Email" | "Online Invoice URL" => "id, organisation",
        "Download PDF" => "id, fileName?, binaryProperty (default data)",
        "History" => "id",
        "Add Note" => "id, note",
        "Upload Attachment" => "id, binaryProperty (default data), fileName",
        "List Attachments" => "id",
        "Download Attachment" => "id, fileName, binaryProperty (default data)",
        "Allocate" => "id, fields: {Invoice: {InvoiceID}, Amount, Date}",
        "Add Member" | "Remove Member" => "id (the group), relatedId (the contact)",
        "Add Option" => "id (the category), fields: {Name}",
        _ => "",
    }
}

fn scope_for(r: &Resource, label: &str) -> (String, String) {
    let op = Op::parse(&label.replace([' ', '/'], "")).unwrap_or(Op::Get);
    let (granular, broad) = match op {
        Op::UploadAttachment | Op::ListAttachments | Op::DownloadAttachment => {
            ("accounting.attachments", "accounting.attachments")
        }
        _ => (r.scopes.granular, r.scopes.broad),
    };
    let read = |s: &str| {
        if s.ends_with(".read") {
            s.to_string()
        } else {
            format!("{s}.read")
        }
    };
    if op.writes() {
        (granular.to_string(), broad.to_string())
    } else {
        (read(granular), read(broad))
    }
}

/// The documentation as data.
pub fn describe() -> Value {
    let resources: Vec<Value> = catalogue::RESOURCES
        .iter()
        .map(|r| {
            let ops: Vec<Value> = describe_operations(r)
                .into_iter()
                .map(|label| {
                    let (granular, broad) = scope_for(r, label);
                    json!({"operation": label, "parameters": parameters(label), "scope": granular, "broadScope": broad})
                })
                .collect();
            json!({"resource": r.name, "record": r.singular, "idField": r.id_field, "operations": ops})
        })
        .collect();
    let reports: Vec<Value> = catalogue::REPORTS
        .iter()
        .map(|(name, scope)| json!({"report": name, "scope": scope, "broadScope": "accounting.reports.read"}))
        .collect();
    json!({
        "node": crate::node::TYPE_NAME,
        "credential": crate::node::CREDENTIAL_TYPE,
        "organisation": "a tenant id, name:<organisation name>, or all (runs for each organisation; outputs carry xeroTenantId and xeroTenantName)",
        "resources": resources,
        "reports": {"operation": "report", "parameters": "report, reportParameters (e.g. date, fromDate, toDate, periods)", "list": reports},
        "apiCall": {"operation": "apiCall", "parameters": "method, path (e.g. /Invoices or a full https:// URL of another Xero API), query, body", "scope": "whatever the path needs"},
        "batching": "Create, Update and Create or Update send up to 50 items per call with summarizeErrors=false; each item gets its own record or Xero's validation messages",
    })
}

/// The documentation as text for the terminal.
pub fn describe_text() -> String {
    let d = describe();
    let mut out = format!(
        "Xero node ({})\nCredential: {}\nOrganisation: {}\n{}\n\n",
        d["node"].as_str().unwrap_or_default(),
        d["credential"].as_str().unwrap_or_default(),
        d["organisation"].as_str().unwrap_or_default(),
        d["batching"].as_str().unwrap_or_default(),
    );
    for r in d["resources"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{} (id: {})\n",
            r["resource"].as_str().unwrap_or_default(),
            r["idField"].as_str().unwrap_or_default()
        ));
        for o in r["operations"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {:<20} scope {} (broad: {})\n  {:<20} {}\n",
                o["operation"].as_str().unwrap_or_default(),
                o["scope"].as_str().unwrap_or_default(),
                o["broadScope"].as_str().unwrap_or_default(),
                "",
                o["parameters"].as_str().unwrap_or_default(),
            ));
        }
    }
    out.push_str("Reports (operation report): ");
    out.push_str(
        &d["reports"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{} [{}]",
                    r["report"].as_str().unwrap_or_default(),
                    r["scope"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str(&format!(
        "\nAPI Call (operation apiCall): {}\n",
        d["apiCall"]["parameters"].as_str().unwrap_or_default()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_and_operation_names_its_scope() {
        let d = describe();
        let resources = d["resources"].as_array().unwrap();
        assert_eq!(resources.len(), catalogue::RESOURCES.len());
        let payments = resources
            .iter()
            .find(|r| r["resource"] == "Payments")
            .unwrap();
        let create = payments["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["operation"] == "Create")
            .unwrap();
        assert_eq!(create["scope"], "accounting.payments");
        assert_eq!(create["broadScope"], "accounting.transactions");
        let list = payments["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["operation"] == "Get Many")
            .unwrap();
        assert_eq!(list["scope"], "accounting.payments.read");
        let text = describe_text();
        assert!(
            text.contains("Invoices")
                && text.contains("Download PDF")
                && text.contains("accounting.reports.profitandloss.read")
        );
    }
}
