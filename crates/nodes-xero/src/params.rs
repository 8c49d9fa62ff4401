//! The Xero node's parameters, as a person writes them (or as n8n's Xero node stored them after
//! import), resolved against the catalogue into something that can run.

use ledgerflow_xero::catalogue::{self, Operation, Resource};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One item's parameters (expressions already evaluated).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XeroParams {
    pub resource: String,
    pub operation: String,
    /// A tenant id, `name:<organisation name>`, or `all`. Optional when the credential reaches
    /// exactly one organisation.
    #[serde(default, alias = "organizationId", alias = "tenantId")]
    pub organisation: Option<String>,
    /// The record's id (or number/code where Xero accepts one).
    #[serde(default, alias = "invoiceId", alias = "contactId", alias = "recordId")]
    pub id: Option<String>,
    /// The record body for create, update and create-or-update.
    #[serde(default, alias = "data")]
    pub fields: Option<Value>,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub return_all: bool,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Reports: which one (`ProfitAndLoss`, …) and its query parameters.
    #[serde(default)]
    pub report: Option<String>,
    #[serde(default)]
    pub report_parameters: Map<String, Value>,
    /// History: the note to add.
    #[serde(default)]
    pub note: Option<String>,
    /// Attachments and PDFs: the binary property to read from or write to (default `data`).
    #[serde(default)]
    pub binary_property: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    /// Sub-record operations: a contact id (group members), allocation or options body.
    #[serde(default)]
    pub related_id: Option<String>,
    /// API Call.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub query: Map<String, Value>,
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    #[serde(default)]
    pub order: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339: sent as `If-Modified-Since`.
    #[serde(default)]
    pub modified_since: Option<String>,
    #[serde(default)]
    pub statuses: StringList,
    #[serde(default)]
    pub ids: StringList,
    #[serde(default)]
    pub search_term: Option<String>,
    #[serde(default)]
    pub include_archived: bool,
    #[serde(default)]
    pub summary_only: bool,
}

/// A list given as an array or a comma-separated string.
#[derive(Debug, Clone, Default)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let list = match v {
            Value::Array(a) => a
                .into_iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
            Value::String(s) => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            Value::Null => vec![],
            other => vec![other.to_string()],
        };
        Ok(StringList(list))
    }
}

/// What to do, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    CreateOrUpdate,
    Get,
    GetMany,
    Remove,
    Email,
    OnlineInvoice,
    Pdf,
    History,
    AddNote,
    UploadAttachment,
    ListAttachments,
    DownloadAttachment,
    Allocate,
    AddMember,
    RemoveMember,
    AddOption,
    Report,
    ApiCall,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        Some(match k.as_str() {
            "create" => Op::Create,
            "update" => Op::Update,
            "createorupdate" | "upsert" => Op::CreateOrUpdate,
            "get" => Op::Get,
            "getmany" | "getall" | "list" => Op::GetMany,
            "delete" | "void" | "archive" | "remove" => Op::Remove,
            "email" | "sendemail" => Op::Email,
            "onlineinvoice" | "onlineinvoiceurl" => Op::OnlineInvoice,
            "pdf" | "downloadpdf" => Op::Pdf,
            "history" | "gethistory" => Op::History,
            "addnote" | "addhistory" => Op::AddNote,
            "uploadattachment" => Op::UploadAttachment,
            "listattachments" | "getattachments" => Op::ListAttachments,
            "downloadattachment" => Op::DownloadAttachment,
            "allocate" => Op::Allocate,
            "addmember" | "addcontact" => Op::AddMember,
            "removemember" | "removecontact" => Op::RemoveMember,
            "addoption" => Op::AddOption,
            "report" | "getreport" => Op::Report,
            "apicall" | "call" => Op::ApiCall,
            _ => return None,
        })
    }

    /// Whether it changes data (needs write scope; retried only with an idempotency key).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Op::Get
                | Op::GetMany
                | Op::OnlineInvoice
                | Op::Pdf
                | Op::History
                | Op::ListAttachments
                | Op::DownloadAttachment
                | Op::Report
        )
    }
}

/// The resource a name means: `invoice`, `Invoices`, `bill`, `credit note`, `creditNote`…
/// Bills are invoices of type ACCPAY.
pub fn resolve_resource(name: &str) -> Option<(&'static Resource, Option<&'static str>)> {
    let k: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    match k.as_str() {
        "bill" | "bills" => return Some((catalogue::resource("Invoices")?, Some("ACCPAY"))),
        "organization" | "organizations" | "organisations" => {
            return Some((catalogue::resource("Organisation")?, None))
        }
        "currency" => return Some((catalogue::resource("Currencies")?, None)),
        _ => {}
    }
    catalogue::RESOURCES
        .iter()
        .find(|r| r.name.to_lowercase() == k || r.singular.replace(' ', "") == k)
        .map(|r| (r, None))
}

/// Checks that the resource allows the operation; the error lists what it does allow.
pub fn check_operation(r: &Resource, op: Op) -> Result<(), String> {
    let need = match op {
        Op::Create => Some(Operation::Create),
        Op::Update => Some(Operation::Update),
        Op::CreateOrUpdate => Some(Operation::CreateOrUpdate),
        Op::Get => Some(Operation::Get),
        Op::GetMany => Some(Operation::GetMany),
        Op::Remove => Some(Operation::Remove),
        _ => None,
    };
    let extra_ok = match op {
        Op::Email | Op::OnlineInvoice => r.email,
        Op::Pdf => r.pdf,
        Op::History | Op::AddNote => r.history,
        Op::UploadAttachment | Op::ListAttachments | Op::DownloadAttachment => r.attachments,
        Op::Allocate => r.name == "CreditNotes",
        Op::AddMember | Op::RemoveMember => r.name == "ContactGroups",
        Op::AddOption => r.name == "TrackingCategories",
        Op::Report | Op::ApiCall => true,
        _ => false,
    };
    match need {
        Some(n) if r.operations.contains(&n) => Ok(()),
        None if extra_ok => Ok(()),
        _ => Err(format!(
            "{} does not support this operation in Xero; it supports: {}",
            r.name,
            describe_operations(r).join(", ")
        )),
    }
}

/// The operations a resource supports, in words (node documentation and error messages).
pub fn describe_operations(r: &Resource) -> Vec<&'static str> {
    let mut out = Vec::new();
    for op in r.operations {
        out.push(match op {
            Operation::Get => "Get",
            Operation::GetMany => "Get Many",
            Operation::Create => "Create",
            Operation::Update => "Update",
            Operation::CreateOrUpdate => "Create or Update",
            Operation::Remove => match r.removal {
                catalogue::Removal::Delete => "Delete",
                catalogue::Removal::DeleteOrVoid => "Delete / Void",
                catalogue::Removal::Archive => "Archive",
                catalogue::Removal::StatusDeleted => "Delete",
                catalogue::Removal::None => continue,
            },
        });
    }
    if r.email {
        out.extend(["Email", "Online Invoice URL"]);
    }
    if r.pdf {
        out.push("Download PDF");
    }
    if r.history {
        out.extend(["History", "Add Note"]);
    }
    if r.attachments {
        out.extend([
            "Upload Attachment",
            "List Attachments",
            "Download Attachment",
        ]);
    }
    match r.name {
        "CreditNotes" => out.push("Allocate"),
        "ContactGroups" => out.extend(["Add Member", "Remove Member"]),
        "TrackingCategories" => out.push("Add Option"),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_resolve_in_every_spelling() {
        assert_eq!(resolve_resource("invoice").unwrap().0.name, "Invoices");
        assert_eq!(resolve_resource("Invoices").unwrap().0.name, "Invoices");
        assert_eq!(resolve_resource("bill").unwrap().1, Some("ACCPAY"));
        assert_eq!(
            resolve_resource("creditNote").unwrap().0.name,
            "CreditNotes"
        );
        assert_eq!(
            resolve_resource("credit note").unwrap().0.name,
            "CreditNotes"
        );
        assert_eq!(
            resolve_resource("organization").unwrap().0.name,
            "Organisation"
        );
        assert!(resolve_resource("spaceship").is_none());
    }

    #[test]
    fn unsupported_operations_say_what_is_supported() {
        let (payments, _) = resolve_resource("payment").unwrap();
        let err = check_operation(payments, Op::Update).unwrap_err();
        assert!(err.contains("Get Many") && err.contains("Create"), "{err}");
        assert!(check_operation(payments, Op::Remove).is_ok());
        let (inv, _) = resolve_resource("invoice").unwrap();
        assert!(check_operation(inv, Op::Email).is_ok());
        assert!(check_operation(payments, Op::Email).is_err());
    }
}
