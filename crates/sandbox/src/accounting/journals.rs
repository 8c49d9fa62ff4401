//! The general ledger: how each document posts (debits and credits per account), and the
//! append-only journal log Xero exposes at `GET /Journals` (paged by `offset` = the last
//! `JournalNumber` seen, 100 per call).
//!
//! Postings are derived from documents the way Xero's journals record them: an approved sales
//! invoice debits Accounts Receivable and credits each line's account and the sales tax account;
//! a bill does the reverse against Accounts Payable; credit notes reverse their invoices; a
//! payment moves money between the bank account and receivables or payables; bank transactions
//! move money between the bank account and their lines, bank transfers between two bank
//! accounts; posted manual journals post their lines as they are. A journal is appended when a
//! document starts posting, and a reversing journal when it stops (voided, deleted) or before it
//! posts again with new amounts.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::ledger::Ledger;
use super::model::{get, get_str, money, ms_date, ms_day, number, parse_day};

/// System account codes the postings use.
pub const RECEIVABLE: &str = "610";
pub const PAYABLE: &str = "800";
pub const SALES_TAX: &str = "820";

/// Collections whose records post to the ledger.
pub const POSTING_COLLECTIONS: &[&str] = &[
    "Invoices",
    "CreditNotes",
    "Payments",
    "BankTransactions",
    "BankTransfers",
    "ManualJournals",
];

/// What one record posts: its date, Xero's `SourceType`, and (account code, amount) lines with
/// debits positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub day: NaiveDate,
    pub source_type: String,
    pub lines: Vec<(String, f64)>,
}

fn document_lines(doc: &Value, sign: f64, lines: &mut Vec<(String, f64)>) {
    let inclusive =
        get_str(doc, "LineAmountTypes").is_some_and(|t| t.eq_ignore_ascii_case("Inclusive"));
    for line in get(doc, "LineItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let amount = get(line, "LineAmount").and_then(number).unwrap_or(0.0);
        let tax = get(line, "TaxAmount").and_then(number).unwrap_or(0.0);
        let net = if inclusive { amount - tax } else { amount };
        if let Some(code) = get_str(line, "AccountCode") {
            lines.push((code.to_owned(), sign * net));
        }
        lines.push((SALES_TAX.to_owned(), sign * tax));
    }
}

/// What a record posts now, or `None` when it does not post (drafts, voided, deleted…).
pub fn entry(collection: &str, record: &Value) -> Option<Entry> {
    let status = get_str(record, "Status").unwrap_or_default();
    let day = get(record, "Date").and_then(parse_day)?;
    let mut lines = Vec::new();
    let source_type = match collection {
        "Invoices" | "CreditNotes" => {
            if !matches!(status, "AUTHORISED" | "PAID") {
                return None;
            }
            let kind = get_str(record, "Type").unwrap_or_default();
            let sale = kind.starts_with("ACCREC");
            // Sales credit their lines, purchases debit them; credit notes flip the sign.
            let sign = if sale != (collection == "CreditNotes") {
                -1.0
            } else {
                1.0
            };
            document_lines(record, sign, &mut lines);
            let total = get(record, "Total").and_then(number).unwrap_or(0.0);
            let control = if sale { RECEIVABLE } else { PAYABLE };
            lines.push((control.to_owned(), -sign * total));
            kind.to_owned()
        }
        "Payments" => {
            if status != "AUTHORISED" {
                return None;
            }
            let amount = get(record, "Amount").and_then(number)?;
            let bank = get(record, "Account").and_then(|a| get_str(a, "Code"))?;
            let kind = get_str(record, "PaymentType").unwrap_or("ACCRECPAYMENT");
            if kind == "ACCPAYPAYMENT" {
                lines.push((PAYABLE.to_owned(), amount));
                lines.push((bank.to_owned(), -amount));
            } else {
                lines.push((bank.to_owned(), amount));
                lines.push((RECEIVABLE.to_owned(), -amount));
            }
            kind.to_owned()
        }
        "BankTransactions" => {
            if status != "AUTHORISED" {
                return None;
            }
            let bank = get(record, "BankAccount").and_then(|a| get_str(a, "Code"))?;
            let receive = get_str(record, "Type") == Some("RECEIVE");
            // Money in credits the lines (income); money out debits them.
            let sign = if receive { -1.0 } else { 1.0 };
            document_lines(record, sign, &mut lines);
            let total = get(record, "Total").and_then(number).unwrap_or(0.0);
            lines.push((bank.to_owned(), -sign * total));
            if receive { "CASHREC" } else { "CASHPAID" }.to_owned()
        }
        "BankTransfers" => {
            let amount = get(record, "Amount").and_then(number)?;
            let from = get(record, "FromBankAccount").and_then(|a| get_str(a, "Code"))?;
            let to = get(record, "ToBankAccount").and_then(|a| get_str(a, "Code"))?;
            lines.push((to.to_owned(), amount));
            lines.push((from.to_owned(), -amount));
            "TRANSFER".to_owned()
        }
        "ManualJournals" => {
            if status != "POSTED" {
                return None;
            }
            for line in get(record, "JournalLines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(code), Some(amount)) = (
                    get_str(line, "AccountCode"),
                    get(line, "LineAmount").and_then(number),
                ) {
                    lines.push((code.to_owned(), amount));
                }
            }
            "MANJOURNAL".to_owned()
        }
        _ => return None,
    };
    lines.retain(|(_, amount)| money(*amount) != 0.0);
    Some(Entry {
        day,
        source_type,
        lines,
    })
}

fn source_id(collection: &str, record: &Value) -> Value {
    let field = match collection {
        "Invoices" => "InvoiceID",
        "CreditNotes" => "CreditNoteID",
        "Payments" => "PaymentID",
        "BankTransactions" => "BankTransactionID",
        "BankTransfers" => "BankTransferID",
        _ => "ManualJournalID",
    };
    get(record, field).cloned().unwrap_or(Value::Null)
}

/// Account details a journal line names, by code.
type AccountIndex = std::collections::HashMap<String, (Value, Value, Value)>;

fn account_index(ledger: &Ledger) -> AccountIndex {
    ledger
        .records("Accounts")
        .filter_map(|a| {
            let code = get_str(a, "Code")?.to_owned();
            let field = |k: &str| get(a, k).cloned().unwrap_or(Value::Null);
            Some((code, (field("AccountID"), field("Type"), field("Name"))))
        })
        .collect()
}

fn append(
    ledger: &mut Ledger,
    accounts: &AccountIndex,
    entry: &Entry,
    sign: f64,
    source: Value,
    reference: &str,
    at: DateTime<Utc>,
) {
    let number = ledger.next_number("JOURNAL");
    let unknown = (Value::Null, Value::Null, Value::Null);
    let lines: Vec<Value> = entry
        .lines
        .iter()
        .map(|(code, amount)| {
            let (id, kind, name) = accounts.get(code).unwrap_or(&unknown);
            let amount = money(sign * amount);
            json!({
                "JournalLineID": crate::state::new_uuid(),
                "AccountID": id,
                "AccountCode": code,
                "AccountType": kind,
                "AccountName": name,
                "Description": "",
                "NetAmount": amount,
                "GrossAmount": amount,
                "TaxAmount": 0.0,
                "TrackingCategories": [],
            })
        })
        .collect();
    ledger.journals.push(json!({
        "JournalID": crate::state::new_uuid(),
        "JournalDate": ms_day(entry.day),
        "JournalNumber": number,
        "CreatedDateUTC": ms_date(at),
        "Reference": reference,
        "SourceID": source,
        "SourceType": entry.source_type,
        "JournalLines": lines,
    }));
}

fn reference(record: &Value) -> String {
    [
        "InvoiceNumber",
        "CreditNoteNumber",
        "Reference",
        "Narration",
    ]
    .iter()
    .find_map(|k| get_str(record, k).filter(|v| !v.is_empty()))
    .unwrap_or_default()
    .to_owned()
}

/// Records a change of one record in the journal log: reverses what it posted before (if that
/// differs) and posts what it posts now.
pub fn record_change(
    ledger: &mut Ledger,
    collection: &str,
    before: Option<&Value>,
    after: &Value,
    at: DateTime<Utc>,
) {
    if !POSTING_COLLECTIONS.contains(&collection) {
        return;
    }
    let old = before.and_then(|b| entry(collection, b));
    let new = entry(collection, after);
    if old == new {
        return;
    }
    let source = source_id(collection, after);
    let reference = reference(after);
    let accounts = account_index(ledger);
    if let Some(old) = old {
        append(
            ledger,
            &accounts,
            &old,
            -1.0,
            source.clone(),
            &reference,
            at,
        );
    }
    if let Some(new) = new {
        append(ledger, &accounts, &new, 1.0, source, &reference, at);
    }
}

/// Builds the journal log of seeded books, in date order, as if each record had been
/// entered on its date (voided seeded documents are left out).
pub fn rebuild(ledger: &mut Ledger) {
    let mut posting: Vec<(Entry, Value, String)> = Vec::new();
    for collection in POSTING_COLLECTIONS {
        for record in ledger.records(collection) {
            if let Some(e) = entry(collection, record) {
                posting.push((e, source_id(collection, record), reference(record)));
            }
        }
    }
    posting.sort_by_key(|(e, _, _)| e.day);
    ledger.journals.clear();
    let accounts = account_index(ledger);
    for (entry, source, reference) in posting {
        let at = entry.day.and_hms_opt(9, 0, 0).unwrap_or_default().and_utc();
        append(ledger, &accounts, &entry, 1.0, source, &reference, at);
    }
}

/// Every posting of the books (for reports): (account code, date, amount).
pub fn postings(ledger: &Ledger) -> Vec<(String, NaiveDate, f64)> {
    let mut out = Vec::new();
    for collection in POSTING_COLLECTIONS {
        for record in ledger.records(collection) {
            if let Some(e) = entry(collection, record) {
                out.extend(
                    e.lines
                        .into_iter()
                        .map(|(code, amount)| (code, e.day, amount)),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approved_sale_posts_balanced_lines_and_a_void_reverses_them() {
        let mut ledger = Ledger::new(crate::state::new_uuid(), json!({}));
        let invoice = json!({"InvoiceID": "i1", "InvoiceNumber": "INV-1", "Type": "ACCREC", "Status": "AUTHORISED",
            "Date": "/Date(1767225600000+0000)/", "LineAmountTypes": "Exclusive", "Total": 115.0,
            "LineItems": [{"AccountCode": "200", "LineAmount": 100.0, "TaxAmount": 15.0}]});
        let posted = entry("Invoices", &invoice).expect("posts");
        assert_eq!(posted.lines.iter().map(|(_, a)| a).sum::<f64>(), 0.0);
        assert!(posted.lines.contains(&("610".to_owned(), 115.0)));
        record_change(&mut ledger, "Invoices", None, &invoice, Utc::now());
        let mut voided = invoice.clone();
        voided["Status"] = json!("VOIDED");
        record_change(&mut ledger, "Invoices", Some(&invoice), &voided, Utc::now());
        assert_eq!(ledger.journals.len(), 2);
        assert_eq!(ledger.journals[1]["JournalNumber"], 2);
        assert_eq!(
            ledger.journals[1]["JournalLines"][0]["NetAmount"],
            json!(100.0),
            "the reversal debits the sales account the invoice credited"
        );
        let mut draft = invoice.clone();
        draft["Status"] = json!("DRAFT");
        assert!(entry("Invoices", &draft).is_none());
    }
}
