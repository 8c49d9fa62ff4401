//! Rules for invoices, credit notes, payments, batch payments and credit note allocations: line totals by
//! `LineAmountTypes`, status transitions (drafts are deleted, approved documents voided), payments
//! and allocations that reduce `AmountDue` and move a document to `PAID`.

use chrono::Duration;
use serde_json::{json, Value};

use super::{
    account_by_code, contact_summary, fail, new_id, object, price_line, resolve_contact, Errors,
    WriteCtx,
};
use crate::accounting::ledger::Tx;
use crate::accounting::model::{
    date_string, get, get_str, merge_fields, money, ms_date, ms_day, number, parse_day,
};

const INVOICE_FIELDS: &[&str] = &[
    "Type",
    "Date",
    "DueDate",
    "LineAmountTypes",
    "Reference",
    "BrandingThemeID",
    "Url",
    "CurrencyCode",
    "CurrencyRate",
    "SentToContact",
    "ExpectedPaymentDate",
    "PlannedPaymentDate",
];

pub(crate) fn invoice(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
    credit: bool,
) -> Result<Value, Errors> {
    let (id_field, number_field, types, sequence, prefix) = if credit {
        (
            "CreditNoteID",
            "CreditNoteNumber",
            ["ACCRECCREDIT", "ACCPAYCREDIT"],
            "CN",
            "CN-",
        )
    } else {
        (
            "InvoiceID",
            "InvoiceNumber",
            ["ACCREC", "ACCPAY"],
            "INV",
            "INV-",
        )
    };
    let old_status = existing
        .and_then(|e| get_str(e, "Status"))
        .unwrap_or("")
        .to_owned();
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            id_field: new_id(), "Status": "DRAFT", "LineAmountTypes": "Exclusive",
            "CurrencyCode": ctx.base_currency, "CurrencyRate": 1.0, "Payments": [], "Prepayments": [],
            "Overpayments": [], "AmountPaid": 0.0, "AmountCredited": 0.0, "HasAttachments": false,
            "IsDiscounted": false, "HasErrors": false, "SentToContact": false, "LineItems": [],
        })),
    };
    let requested_status = get_str(input, "Status").map(str::to_ascii_uppercase);
    if let Some(existing) = existing {
        let paid = get(existing, "AmountPaid").and_then(number).unwrap_or(0.0) > 0.0
            || get(existing, "AmountCredited")
                .and_then(number)
                .unwrap_or(0.0)
                > 0.0;
        let only_status = input.as_object().is_some_and(|m| {
            m.keys().all(|k| {
                [
                    "status",
                    id_field.to_ascii_lowercase().as_str(),
                    number_field.to_ascii_lowercase().as_str(),
                ]
                .contains(&k.to_ascii_lowercase().as_str())
            })
        });
        if ["VOIDED", "DELETED"].contains(&old_status.as_str()) {
            return fail(format!(
                "This document cannot be edited as it has been {}.",
                old_status.to_lowercase()
            ));
        }
        if old_status == "PAID" || (paid && !only_status) {
            return fail("This document cannot be edited as it has a payment or credit note allocated to it.");
        }
    }
    merge_fields(&mut record, input, INVOICE_FIELDS);
    if let Some(number) = get_str(input, number_field) {
        record.insert(number_field.to_owned(), json!(number));
    }
    let mut errors = Vec::new();
    let kind = record
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !types.contains(&kind.as_str()) {
        errors.push(if kind.is_empty() {
            format!(
                "The document Type must be specified ({} or {}).",
                types[0], types[1]
            )
        } else {
            format!(
                "'{kind}' is not a valid document Type ({} or {}).",
                types[0], types[1]
            )
        });
    }
    let is_sale = kind.starts_with("ACCREC");
    match get(input, "Contact") {
        Some(c) if c.is_object() => match resolve_contact(tx, c, ctx) {
            Ok(contact) => {
                record.insert("Contact".into(), contact_summary(&contact));
            }
            Err(mut e) => errors.append(&mut e),
        },
        Some(_) => errors.push("A Contact must be specified for this type of transaction".into()),
        None if existing.is_none() => {
            errors.push("A Contact must be specified for this type of transaction".into())
        }
        None => {}
    }
    let amount_types = record
        .get("LineAmountTypes")
        .and_then(Value::as_str)
        .unwrap_or("Exclusive")
        .to_owned();
    let amount_types = match amount_types.to_ascii_lowercase().as_str() {
        "exclusive" => "Exclusive",
        "inclusive" => "Inclusive",
        "notax" => "NoTax",
        _ => {
            errors.push(format!("'{amount_types}' is not a valid LineAmountTypes value (Exclusive, Inclusive or NoTax)."));
            "Exclusive"
        }
    };
    record.insert("LineAmountTypes".into(), json!(amount_types));
    let raw_lines = match get(input, "LineItems") {
        Some(Value::Array(lines)) => lines.clone(),
        Some(_) => {
            errors.push("LineItems must be an array.".into());
            Vec::new()
        }
        None => record
            .get("LineItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    let (mut sub_total, mut total_tax, mut total_discount) = (0.0, 0.0, 0.0);
    let mut lines = Vec::new();
    for raw in &raw_lines {
        let (line, net, tax, discount) = price_line(tx, raw, amount_types, is_sale, &mut errors);
        sub_total += net;
        total_tax += tax;
        total_discount += discount;
        lines.push(line);
    }
    let (sub_total, total_tax) = (money(sub_total), money(total_tax));
    let total = money(sub_total + total_tax);
    let date = match get(input, "Date") {
        Some(v) => parse_day(v).or_else(|| {
            errors.push("Date is not a valid date (use YYYY-MM-DD).".into());
            None
        }),
        None => record.get("Date").and_then(parse_day),
    }
    .unwrap_or_else(|| ctx.now.date_naive());
    let due = match get(input, "DueDate") {
        Some(v) if !v.is_null() => parse_day(v).or_else(|| {
            errors.push("DueDate is not a valid date (use YYYY-MM-DD).".into());
            None
        }),
        _ => record.get("DueDate").and_then(parse_day),
    };

    let status = requested_status.clone().unwrap_or_else(|| {
        if old_status.is_empty() {
            "DRAFT".into()
        } else {
            old_status.clone()
        }
    });
    let allowed: &[&str] = match old_status.as_str() {
        "" => &["DRAFT", "SUBMITTED", "AUTHORISED"],
        "DRAFT" | "SUBMITTED" => &["DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"],
        "AUTHORISED" => &["AUTHORISED", "VOIDED"],
        _ => &[],
    };
    if ![
        "DRAFT",
        "SUBMITTED",
        "AUTHORISED",
        "DELETED",
        "VOIDED",
        "PAID",
    ]
    .contains(&status.as_str())
    {
        errors.push(format!("'{status}' is not a valid status."));
    } else if !allowed.contains(&status.as_str()) {
        errors.push(match (old_status.as_str(), status.as_str()) {
            ("AUTHORISED", "DELETED") => {
                "This document cannot be deleted as it has been approved. Void it instead."
                    .to_owned()
            }
            (_, "VOIDED") => "Only approved (AUTHORISED) documents can be voided.".to_owned(),
            (_, "PAID") => {
                "The PAID status is set by Xero when a document is fully paid.".to_owned()
            }
            ("", _) => format!("A document cannot be created with the status {status}."),
            _ => "Document not of valid status for modification".to_owned(),
        });
    }
    if status == "VOIDED"
        && existing.is_some_and(|e| get(e, "AmountPaid").and_then(number).unwrap_or(0.0) > 0.0)
    {
        errors.push(
            "This document cannot be voided as it has payments. Remove the payments first.".into(),
        );
    }
    if status == "AUTHORISED" {
        if lines.is_empty() {
            errors.push("At least one line item is required to approve a document.".into());
        }
        for line in &lines {
            if get_str(line, "AccountCode").is_none() {
                errors.push(
                    "Account code must be specified for every line item of an approved document."
                        .into(),
                );
                break;
            }
        }
        if total < 0.0 {
            errors.push("The total of an approved document cannot be negative.".into());
        }
    }
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }

    let number_missing = record
        .get(number_field)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if number_missing && (credit || is_sale) {
        let n = tx.ledger.next_number(sequence);
        record.insert(number_field.into(), json!(format!("{prefix}{n:04}")));
    }
    let paid = record
        .get("AmountPaid")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let credited = record
        .get("AmountCredited")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let due_date = due.unwrap_or(date + Duration::days(30));
    record.insert("LineItems".into(), Value::Array(lines));
    record.insert("SubTotal".into(), json!(sub_total));
    record.insert("TotalTax".into(), json!(total_tax));
    record.insert("Total".into(), json!(total));
    record.insert("TotalDiscount".into(), json!(money(total_discount)));
    record.insert("Status".into(), json!(status));
    record.insert("Date".into(), json!(ms_day(date)));
    record.insert("DateString".into(), json!(date_string(date)));
    record.insert("DueDate".into(), json!(ms_day(due_date)));
    record.insert("DueDateString".into(), json!(date_string(due_date)));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    if credit {
        // Credit notes carry RemainingCredit instead of the invoice's paid/credited amounts.
        let allocated: f64 = ["Allocations", "Payments"]
            .iter()
            .filter_map(|k| record.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|a| get(a, "Amount").and_then(number))
            .sum();
        for key in [
            "AmountPaid",
            "AmountCredited",
            "IsDiscounted",
            "Overpayments",
            "Prepayments",
            "TotalDiscount",
        ] {
            record.remove(key);
        }
        record.insert("RemainingCredit".into(), json!(money(total - allocated)));
        record.entry("Allocations").or_insert(json!([]));
    } else {
        record.insert("AmountDue".into(), json!(money(total - paid - credited)));
        record.entry("CreditNotes").or_insert(json!([]));
    }
    Ok(Value::Object(record))
}

pub(crate) fn payment(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if let Some(existing) = existing {
        return delete_payment(tx, existing, input, ctx);
    }
    let mut errors = Vec::new();
    let invoice = match get(input, "Invoice") {
        Some(reference) => {
            let by_id =
                get_str(reference, "InvoiceID").and_then(|id| tx.get("Invoices", id).cloned());
            let by_number = || {
                get_str(reference, "InvoiceNumber").and_then(|n| {
                    tx.find("Invoices", |i| {
                        get_str(i, "InvoiceNumber").is_some_and(|x| x.eq_ignore_ascii_case(n))
                    })
                    .cloned()
                })
            };
            by_id.or_else(by_number)
        }
        None => None,
    };
    let Some(mut invoice) = invoice else {
        return fail("Payment must reference an existing invoice (Invoice.InvoiceID or Invoice.InvoiceNumber).");
    };
    let account = get(input, "Account").and_then(|reference| {
        get_str(reference, "AccountID")
            .and_then(|id| tx.get("Accounts", id).cloned())
            .or_else(|| {
                get_str(reference, "Code")
                    .and_then(|c| account_by_code(tx, c))
                    .cloned()
            })
    });
    match &account {
        None => errors
            .push("Payment must specify an Account (Account.AccountID or Account.Code).".into()),
        Some(a)
            if get_str(a, "Type") != Some("BANK")
                && get(a, "EnablePaymentsToAccount") != Some(&Value::Bool(true)) =>
        {
            errors.push("The account must be a bank account or have payments enabled.".into())
        }
        _ => {}
    }
    let status = get_str(&invoice, "Status").unwrap_or_default().to_owned();
    if status != "AUTHORISED" {
        errors.push(format!("Payments can only be made against approved (AUTHORISED) invoices; this invoice is {status}."));
    }
    let amount = get(input, "Amount").and_then(number).map(money);
    let due = get(&invoice, "AmountDue").and_then(number).unwrap_or(0.0);
    match amount {
        None => errors.push("Payment Amount is required.".into()),
        Some(a) if a <= 0.0 => errors.push("Payment Amount must be greater than zero.".into()),
        Some(a) if a > due + 0.005 => {
            errors.push("Payment amount exceeds the amount outstanding on this document".into())
        }
        _ => {}
    }
    let date = match get(input, "Date") {
        Some(v) => parse_day(v).unwrap_or_else(|| {
            errors.push("Date is not a valid date (use YYYY-MM-DD).".into());
            ctx.now.date_naive()
        }),
        None => ctx.now.date_naive(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(account), Some(amount)) = (account, amount) else {
        return fail("Payment is incomplete.");
    };
    let payment_id = new_id();
    let reference = get_str(input, "Reference").unwrap_or_default();
    let new_due = money(due - amount);
    let invoice_map = invoice
        .as_object_mut()
        .ok_or_else(|| vec!["Invoice record is malformed".to_owned()])?;
    let paid = invoice_map
        .get("AmountPaid")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    invoice_map.insert("AmountPaid".into(), json!(money(paid + amount)));
    invoice_map.insert("AmountDue".into(), json!(new_due));
    if new_due <= 0.0 {
        invoice_map.insert("Status".into(), json!("PAID"));
        invoice_map.insert("FullyPaidOnDate".into(), json!(ms_day(date)));
    }
    invoice_map.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    if let Some(Value::Array(payments)) = invoice_map.get_mut("Payments") {
        payments.push(json!({"PaymentID": payment_id, "Date": ms_day(date), "Amount": amount,
            "Reference": reference, "CurrencyRate": 1.0, "HasAccount": false, "HasValidationErrors": false}));
    }
    let invoice_id = invoice_map
        .get("InvoiceID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let payment_type = if get_str(&invoice, "Type") == Some("ACCPAY") {
        "ACCPAYPAYMENT"
    } else {
        "ACCRECPAYMENT"
    };
    let summary = json!({
        "InvoiceID": invoice_id, "InvoiceNumber": get(&invoice, "InvoiceNumber"), "Type": get(&invoice, "Type"),
        "Contact": get(&invoice, "Contact"), "CurrencyCode": get(&invoice, "CurrencyCode"),
        "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": [], "HasErrors": false,
        "IsDiscounted": false, "InvoiceAddresses": [],
    });
    tx.stage("Invoices", &invoice_id, invoice);
    Ok(json!({
        "PaymentID": payment_id,
        "Date": ms_day(date),
        "BankAmount": amount,
        "Amount": amount,
        "Reference": reference,
        "CurrencyRate": 1.0,
        "PaymentType": payment_type,
        "Status": "AUTHORISED",
        "UpdatedDateUTC": ms_date(ctx.now),
        "HasAccount": true,
        "IsReconciled": false,
        "HasValidationErrors": false,
        "Account": {"AccountID": get(&account, "AccountID"), "Code": get(&account, "Code"), "Name": get(&account, "Name")},
        "Invoice": summary,
    }))
}

pub(crate) fn delete_payment(
    tx: &mut Tx<'_>,
    existing: &Value,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if get_str(existing, "Status") == Some("DELETED") {
        return fail("This payment has already been deleted.");
    }
    if get_str(input, "Status")
        .map(str::to_ascii_uppercase)
        .as_deref()
        != Some("DELETED")
    {
        return fail("A payment can only be changed by setting its Status to DELETED.");
    }
    let amount = get(existing, "Amount").and_then(number).unwrap_or(0.0);
    let payment_id = get_str(existing, "PaymentID")
        .unwrap_or_default()
        .to_owned();
    let invoice_id = get(existing, "Invoice")
        .and_then(|i| get_str(i, "InvoiceID"))
        .unwrap_or_default()
        .to_owned();
    if let Some(mut invoice) = tx.get("Invoices", &invoice_id).cloned() {
        if let Some(map) = invoice.as_object_mut() {
            let paid = map.get("AmountPaid").and_then(Value::as_f64).unwrap_or(0.0);
            let due = map.get("AmountDue").and_then(Value::as_f64).unwrap_or(0.0);
            map.insert("AmountPaid".into(), json!(money(paid - amount)));
            map.insert("AmountDue".into(), json!(money(due + amount)));
            map.insert("Status".into(), json!("AUTHORISED"));
            map.remove("FullyPaidOnDate");
            map.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
            if let Some(Value::Array(payments)) = map.get_mut("Payments") {
                payments.retain(|p| get_str(p, "PaymentID") != Some(payment_id.as_str()));
            }
        }
        tx.stage("Invoices", &invoice_id, invoice);
    }
    let mut record = object(existing.clone());
    record.insert("Status".into(), json!("DELETED"));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

/// Applies one allocation of a credit note to an invoice; stages both and returns the
/// allocation as Xero reports it.
pub fn allocate_credit(
    tx: &mut Tx<'_>,
    credit_note_id: &str,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let Some(mut credit) = tx.get("CreditNotes", credit_note_id).cloned() else {
        return fail("The credit note could not be found.");
    };
    let invoice = get(input, "Invoice").and_then(|i| {
        get_str(i, "InvoiceID")
            .and_then(|id| tx.get("Invoices", id))
            .or_else(|| {
                get_str(i, "InvoiceNumber").and_then(|n| {
                    tx.find("Invoices", |x| {
                        get_str(x, "InvoiceNumber").is_some_and(|v| v.eq_ignore_ascii_case(n))
                    })
                })
            })
            .cloned()
    });
    let Some(mut invoice) = invoice else {
        return fail("An allocation must name an existing invoice (Invoice.InvoiceID).");
    };
    let mut errors = Vec::new();
    if get_str(&credit, "Status") != Some("AUTHORISED") {
        errors.push(
            "Only approved (AUTHORISED) credit notes with remaining credit can be allocated."
                .to_owned(),
        );
    }
    if get_str(&invoice, "Status") != Some("AUTHORISED") {
        errors.push("Credit can only be allocated to approved (AUTHORISED) invoices.".to_owned());
    }
    let matching = match get_str(&credit, "Type") {
        Some("ACCRECCREDIT") => get_str(&invoice, "Type") == Some("ACCREC"),
        Some("ACCPAYCREDIT") => get_str(&invoice, "Type") == Some("ACCPAY"),
        _ => false,
    };
    if !matching {
        errors.push(
            "Sales credit notes apply to sales invoices, purchase credit notes to bills."
                .to_owned(),
        );
    }
    let remaining = get(&credit, "RemainingCredit")
        .and_then(number)
        .unwrap_or(0.0);
    let due = get(&invoice, "AmountDue").and_then(number).unwrap_or(0.0);
    let amount = get(input, "Amount").and_then(number).map(money);
    match amount {
        None => errors.push("Allocation Amount is required.".to_owned()),
        Some(a) if a <= 0.0 => {
            errors.push("Allocation Amount must be greater than zero.".to_owned())
        }
        Some(a) if a > remaining + 0.005 => errors.push(
            "The amount allocated exceeds the remaining credit on the credit note.".to_owned(),
        ),
        Some(a) if a > due + 0.005 => {
            errors.push("The amount allocated exceeds the amount due on the invoice.".to_owned())
        }
        _ => {}
    }
    let date = get(input, "Date")
        .and_then(parse_day)
        .unwrap_or_else(|| ctx.now.date_naive());
    if !errors.is_empty() {
        return Err(errors);
    }
    let amount = amount.unwrap_or(0.0);
    let allocation_id = new_id();
    let invoice_id = get_str(&invoice, "InvoiceID")
        .unwrap_or_default()
        .to_owned();
    let invoice_ref =
        json!({"InvoiceID": invoice_id, "InvoiceNumber": get(&invoice, "InvoiceNumber")});
    let credit_ref = json!({"CreditNoteID": credit_note_id, "CreditNoteNumber": get(&credit, "CreditNoteNumber")});
    if let Some(map) = invoice.as_object_mut() {
        let credited = map
            .get("AmountCredited")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let new_due = money(due - amount);
        map.insert("AmountCredited".into(), json!(money(credited + amount)));
        map.insert("AmountDue".into(), json!(new_due));
        if new_due <= 0.0 {
            map.insert("Status".into(), json!("PAID"));
            map.insert("FullyPaidOnDate".into(), json!(ms_day(date)));
        }
        map.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
        if let Some(Value::Array(notes)) = map.get_mut("CreditNotes") {
            let mut note = credit_ref.clone();
            note["AppliedAmount"] = json!(amount);
            note["Total"] = get(&credit, "Total").cloned().unwrap_or(Value::Null);
            notes.push(note);
        }
    }
    if let Some(map) = credit.as_object_mut() {
        let left = money(remaining - amount);
        map.insert("RemainingCredit".into(), json!(left));
        if left <= 0.0 {
            map.insert("Status".into(), json!("PAID"));
            map.insert("FullyPaidOnDate".into(), json!(ms_day(date)));
        }
        map.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
        if let Some(Value::Array(allocations)) = map.get_mut("Allocations") {
            allocations.push(json!({"AllocationID": allocation_id, "Amount": amount, "Date": ms_day(date), "Invoice": invoice_ref}));
        }
    }
    tx.stage("Invoices", &invoice_id, invoice);
    tx.stage("CreditNotes", credit_note_id, credit);
    Ok(
        json!({"AllocationID": allocation_id, "Amount": amount, "Date": ms_day(date),
        "Invoice": invoice_ref, "CreditNote": credit_ref, "StatusAttributeString": "OK"}),
    )
}

/// A batch payment pays several invoices from one bank account in one go: each line becomes a
/// payment (with the usual checks), and the batch records them.
pub(crate) fn batch_payment(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if existing.is_some() {
        return fail("Batch payments cannot be edited; delete the payments in Xero instead.");
    }
    let lines = get(input, "Payments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if lines.is_empty() {
        return fail("A batch payment needs at least one payment.");
    }
    let Some(account) = get(input, "Account") else {
        return fail("A batch payment must specify an Account (AccountID or Code).");
    };
    let date = get(input, "Date")
        .cloned()
        .unwrap_or_else(|| json!(date_string(ctx.now.date_naive())));
    let reference = get_str(input, "Reference").unwrap_or_default().to_owned();
    let mut errors = Vec::new();
    let mut payments = Vec::new();
    let mut kinds = Vec::new();
    for line in &lines {
        let single = json!({"Invoice": get(line, "Invoice"), "Account": account, "Date": date,
            "Amount": get(line, "Amount"), "Reference": get_str(line, "Reference").unwrap_or(&reference)});
        match payment(tx, None, &single, ctx) {
            Ok(made) => {
                let id = get_str(&made, "PaymentID").unwrap_or_default().to_owned();
                kinds.push(get_str(&made, "PaymentType").unwrap_or_default().to_owned());
                payments.push(json!({"PaymentID": id, "Invoice": get(&made, "Invoice"), "Amount": get(&made, "Amount")}));
                tx.stage("Payments", &id, made);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    kinds.dedup();
    if kinds.len() > 1 {
        errors.push("A batch payment pays either sales invoices or bills, not both.".to_owned());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let total: f64 = payments
        .iter()
        .filter_map(|p| get(p, "Amount").and_then(number))
        .sum();
    let day = parse_day(&date).unwrap_or_else(|| ctx.now.date_naive());
    let first_payment = payments
        .first()
        .and_then(|p| get_str(p, "PaymentID"))
        .unwrap_or_default()
        .to_owned();
    let account_summary = tx
        .find("Payments", |p| {
            get_str(p, "PaymentID") == Some(first_payment.as_str())
        })
        .and_then(|p| get(p, "Account"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(json!({
        "BatchPaymentID": new_id(),
        "Account": account_summary,
        "Reference": reference,
        "Date": ms_day(day),
        "DateString": date_string(day),
        "Type": if kinds.first().map(String::as_str) == Some("ACCPAYPAYMENT") { "PAYBATCH" } else { "RECBATCH" },
        "Status": "AUTHORISED",
        "TotalAmount": money(total),
        "IsReconciled": false,
        "UpdatedDateUTC": ms_date(ctx.now),
        "Payments": payments,
    }))
}
