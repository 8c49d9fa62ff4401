//! Rules for bank transactions (money in and out of a bank account), bank transfers (between
//! two bank accounts) and manual journals (lines that must balance).

use serde_json::{json, Value};

use super::{
    account_by_code, contact_summary, fail, new_id, object, price_line, resolve_contact, Errors,
    WriteCtx,
};
use crate::accounting::ledger::Tx;
use crate::accounting::model::{
    date_string, get, get_str, merge_fields, money, ms_date, ms_day, number, parse_day,
};

pub(crate) fn bank_account(tx: &Tx<'_>, reference: Option<&Value>) -> Option<Value> {
    let reference = reference?;
    get_str(reference, "AccountID")
        .and_then(|id| tx.get("Accounts", id))
        .or_else(|| get_str(reference, "Code").and_then(|c| account_by_code(tx, c)))
        .filter(|a| get_str(a, "Type") == Some("BANK"))
        .cloned()
}

pub(crate) fn bank_transaction(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if let Some(existing) = existing {
        let status = get_str(existing, "Status").unwrap_or_default();
        if status == "DELETED" {
            return fail("This bank transaction has been deleted and cannot be edited.");
        }
        if get(existing, "IsReconciled") == Some(&Value::Bool(true)) {
            return fail("This bank transaction has been reconciled and cannot be edited.");
        }
    }
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            "BankTransactionID": new_id(), "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
            "CurrencyCode": ctx.base_currency, "CurrencyRate": 1.0, "IsReconciled": false,
            "HasAttachments": false, "LineItems": [],
        })),
    };
    merge_fields(
        &mut record,
        input,
        &[
            "Type",
            "Reference",
            "IsReconciled",
            "Url",
            "CurrencyCode",
            "LineAmountTypes",
        ],
    );
    let mut errors = Vec::new();
    let kind = record
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !["RECEIVE", "SPEND"].contains(&kind.as_str()) {
        errors.push("The bank transaction Type must be RECEIVE or SPEND.".to_owned());
    }
    match get(input, "Contact") {
        Some(c) if c.is_object() => match resolve_contact(tx, c, ctx) {
            Ok(contact) => {
                record.insert("Contact".into(), contact_summary(&contact));
            }
            Err(mut e) => errors.append(&mut e),
        },
        _ if existing.is_none() => {
            errors.push("A Contact must be specified for this type of transaction".into())
        }
        _ => {}
    }
    match (get(input, "BankAccount"), existing) {
        (Some(reference), _) => match bank_account(tx, Some(reference)) {
            Some(account) => {
                record.insert(
                    "BankAccount".into(),
                    json!({"AccountID": get(&account, "AccountID"), "Code": get(&account, "Code"), "Name": get(&account, "Name")}),
                );
            }
            None => errors.push(
                "The BankAccount must be an existing bank account (AccountID or Code).".into(),
            ),
        },
        (None, None) => errors.push("A BankAccount must be specified.".into()),
        (None, Some(_)) => {}
    }
    let amount_types = match record
        .get("LineAmountTypes")
        .and_then(Value::as_str)
        .unwrap_or("Exclusive")
        .to_ascii_lowercase()
        .as_str()
    {
        "inclusive" => "Inclusive",
        "notax" => "NoTax",
        _ => "Exclusive",
    };
    record.insert("LineAmountTypes".into(), json!(amount_types));
    let raw_lines = match get(input, "LineItems") {
        Some(Value::Array(lines)) => lines.clone(),
        _ => record
            .get("LineItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    if raw_lines.is_empty() {
        errors.push("At least one line item is required.".into());
    }
    let (mut sub_total, mut total_tax) = (0.0, 0.0);
    let mut lines = Vec::new();
    for raw in &raw_lines {
        let (line, net, tax, _) = price_line(tx, raw, amount_types, kind == "RECEIVE", &mut errors);
        if get_str(&line, "AccountCode").is_none() {
            errors.push("Account code must be specified for every line item.".into());
        }
        sub_total += net;
        total_tax += tax;
        lines.push(line);
    }
    let status = get_str(input, "Status")
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| {
            record
                .get("Status")
                .and_then(Value::as_str)
                .unwrap_or("AUTHORISED")
                .to_owned()
        });
    if !["AUTHORISED", "DELETED"].contains(&status.as_str())
        || (existing.is_none() && status == "DELETED")
    {
        errors.push(format!(
            "A bank transaction cannot have the status {status}."
        ));
    }
    let date = get(input, "Date")
        .and_then(parse_day)
        .or_else(|| record.get("Date").and_then(parse_day))
        .unwrap_or_else(|| ctx.now.date_naive());
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    let (sub_total, total_tax) = (money(sub_total), money(total_tax));
    record.insert("LineItems".into(), Value::Array(lines));
    record.insert("SubTotal".into(), json!(sub_total));
    record.insert("TotalTax".into(), json!(total_tax));
    record.insert("Total".into(), json!(money(sub_total + total_tax)));
    record.insert("Status".into(), json!(status));
    record.insert("Date".into(), json!(ms_day(date)));
    record.insert("DateString".into(), json!(date_string(date)));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

pub(crate) fn manual_journal(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let old_status = existing
        .and_then(|e| get_str(e, "Status"))
        .unwrap_or("")
        .to_owned();
    if ["DELETED", "VOIDED"].contains(&old_status.as_str()) {
        return fail(format!(
            "This manual journal has been {} and cannot be edited.",
            old_status.to_lowercase()
        ));
    }
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            "ManualJournalID": new_id(), "Status": "DRAFT", "LineAmountTypes": "NoTax",
            "ShowOnCashBasisReports": true, "HasAttachments": false, "JournalLines": [],
        })),
    };
    merge_fields(
        &mut record,
        input,
        &[
            "Narration",
            "Url",
            "ShowOnCashBasisReports",
            "LineAmountTypes",
        ],
    );
    let mut errors = Vec::new();
    if record
        .get("Narration")
        .and_then(Value::as_str)
        .is_none_or(|n| n.trim().is_empty())
    {
        errors.push("Narration is required.".to_owned());
    }
    let raw_lines = match get(input, "JournalLines") {
        Some(Value::Array(lines)) => lines.clone(),
        _ => record
            .get("JournalLines")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    if raw_lines.len() < 2 {
        errors.push("A manual journal needs at least two journal lines.".to_owned());
    }
    let (mut debits, mut credits) = (0.0, 0.0);
    let mut lines = Vec::new();
    for raw in &raw_lines {
        let amount = get(raw, "LineAmount")
            .and_then(number)
            .map(money)
            .unwrap_or(0.0);
        let code = get_str(raw, "AccountCode").unwrap_or_default();
        match account_by_code(tx, code) {
            Some(account) => {
                let mut line = json!({"LineAmount": amount, "AccountCode": code, "AccountID": get(account, "AccountID"),
                    "TaxType": get_str(raw, "TaxType").unwrap_or("NONE"), "TaxAmount": 0.0, "IsBlank": false,
                    "Tracking": get(raw, "Tracking").cloned().unwrap_or(json!([]))});
                if let Some(d) = get(raw, "Description") {
                    line["Description"] = d.clone();
                }
                lines.push(line);
            }
            None => errors.push(format!("Account code '{code}' is not a valid code.")),
        }
        if amount > 0.0 {
            debits += amount;
        } else {
            credits -= amount;
        }
    }
    if money(debits - credits) != 0.0 {
        errors.push(format!(
            "The total debits ({debits:.2}) must equal total credits ({credits:.2})"
        ));
    }
    let status = get_str(input, "Status")
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| {
            if old_status.is_empty() {
                "DRAFT".to_owned()
            } else {
                old_status.clone()
            }
        });
    let allowed: &[&str] = match old_status.as_str() {
        "" => &["DRAFT", "POSTED"],
        "DRAFT" => &["DRAFT", "POSTED", "DELETED"],
        "POSTED" => &["POSTED", "VOIDED"],
        _ => &[],
    };
    if !allowed.contains(&status.as_str()) {
        errors.push(format!(
            "A manual journal cannot move from {} to {status}.",
            if old_status.is_empty() {
                "new"
            } else {
                &old_status
            }
        ));
    }
    let date = get(input, "Date")
        .and_then(parse_day)
        .or_else(|| record.get("Date").and_then(parse_day))
        .unwrap_or_else(|| ctx.now.date_naive());
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    record.insert("JournalLines".into(), Value::Array(lines));
    record.insert("Status".into(), json!(status));
    record.insert("Date".into(), json!(ms_day(date)));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

/// A bank transfer moves money between two bank accounts; Xero does not let it be edited.
pub(crate) fn bank_transfer(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if existing.is_some() {
        return fail(
            "Bank transfers cannot be edited. Delete the transfer in Xero and create a new one.",
        );
    }
    let mut errors = Vec::new();
    let from = bank_account(tx, get(input, "FromBankAccount"));
    let to = bank_account(tx, get(input, "ToBankAccount"));
    if from.is_none() {
        errors.push(
            "FromBankAccount must be an existing bank account (AccountID or Code).".to_owned(),
        );
    }
    if to.is_none() {
        errors
            .push("ToBankAccount must be an existing bank account (AccountID or Code).".to_owned());
    }
    if let (Some(f), Some(t)) = (&from, &to) {
        if get(f, "AccountID") == get(t, "AccountID") {
            errors.push("The from and to bank accounts must be different.".to_owned());
        }
    }
    let amount = get(input, "Amount").and_then(number).map(money);
    if !amount.is_some_and(|a| a > 0.0) {
        errors.push("Amount must be greater than zero.".to_owned());
    }
    let date = get(input, "Date")
        .and_then(parse_day)
        .unwrap_or_else(|| ctx.now.date_naive());
    let (Some(from), Some(to), Some(amount), true) = (from, to, amount, errors.is_empty()) else {
        return Err(errors);
    };
    let summary = |a: &Value| json!({"AccountID": get(a, "AccountID"), "Code": get(a, "Code"), "Name": get(a, "Name")});
    Ok(json!({
        "BankTransferID": new_id(),
        "FromBankAccount": summary(&from),
        "ToBankAccount": summary(&to),
        "Amount": amount,
        "Date": ms_day(date),
        "CurrencyRate": 1.0,
        "FromBankTransactionID": new_id(),
        "ToBankTransactionID": new_id(),
        "FromIsReconciled": false,
        "ToIsReconciled": false,
        "Reference": get_str(input, "Reference").unwrap_or_default(),
        "HasAttachments": false,
        "CreatedDateUTC": ms_date(ctx.now),
    }))
}
