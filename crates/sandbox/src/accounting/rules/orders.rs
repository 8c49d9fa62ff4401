//! Rules for quotes and purchase orders: priced like invoices (line totals by
//! `LineAmountTypes`) but never posted to the ledger. One rule serves both, driven by an
//! [`OrderSpec`] table entry: id and number fields, number prefix, extra fields, statuses and
//! the transitions between them.

use serde_json::{json, Value};

use super::{contact_summary, fail, new_id, object, price_line, resolve_contact, Errors, WriteCtx};
use crate::accounting::ledger::Tx;
use crate::accounting::model::{
    date_string, get, get_str, merge_fields, money, ms_date, ms_day, parse_day,
};

/// How one order-like document behaves.
pub struct OrderSpec {
    pub id_field: &'static str,
    pub number_field: &'static str,
    pub sequence: &'static str,
    pub prefix: &'static str,
    /// A second date besides `Date` (`ExpiryDate`, `DeliveryDate`).
    pub second_date: &'static str,
    pub is_sale: bool,
    /// Quotes spell `LineAmountTypes` in capitals (`EXCLUSIVE`), unlike every other document.
    pub upper_case_amount_types: bool,
    /// Whether the record carries `HasAttachments` (purchase orders do, quotes do not).
    pub has_attachments_flag: bool,
    pub fields: &'static [&'static str],
    pub initial: &'static [&'static str],
    /// (from, allowed next statuses).
    pub transitions: &'static [(&'static str, &'static [&'static str])],
}

pub const QUOTE: OrderSpec = OrderSpec {
    id_field: "QuoteID",
    number_field: "QuoteNumber",
    sequence: "QU",
    prefix: "QU-",
    second_date: "ExpiryDate",
    is_sale: true,
    upper_case_amount_types: true,
    has_attachments_flag: false,
    fields: &[
        "Reference",
        "Title",
        "Summary",
        "Terms",
        "BrandingThemeID",
        "CurrencyCode",
    ],
    initial: &["DRAFT", "SENT"],
    transitions: &[
        ("DRAFT", &["DRAFT", "SENT", "DELETED"]),
        (
            "SENT",
            &["SENT", "DRAFT", "ACCEPTED", "DECLINED", "DELETED"],
        ),
        ("DECLINED", &["DECLINED", "SENT", "DELETED"]),
        ("ACCEPTED", &["ACCEPTED", "SENT", "INVOICED"]),
        ("INVOICED", &["INVOICED"]),
    ],
};

pub const PURCHASE_ORDER: OrderSpec = OrderSpec {
    id_field: "PurchaseOrderID",
    number_field: "PurchaseOrderNumber",
    sequence: "PO",
    prefix: "PO-",
    second_date: "DeliveryDate",
    is_sale: false,
    upper_case_amount_types: false,
    has_attachments_flag: true,
    fields: &[
        "Reference",
        "BrandingThemeID",
        "CurrencyCode",
        "DeliveryAddress",
        "AttentionTo",
        "Telephone",
        "DeliveryInstructions",
        "SentToContact",
    ],
    initial: &["DRAFT", "SUBMITTED", "AUTHORISED"],
    transitions: &[
        ("DRAFT", &["DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"]),
        (
            "SUBMITTED",
            &["SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"],
        ),
        ("AUTHORISED", &["AUTHORISED", "BILLED", "DELETED"]),
        ("BILLED", &["BILLED", "AUTHORISED"]),
    ],
};

/// Applies one quote or purchase order element.
pub fn order(
    spec: &OrderSpec,
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let old_status = existing
        .and_then(|e| get_str(e, "Status"))
        .unwrap_or("")
        .to_owned();
    if old_status == "DELETED" {
        return fail("This document has been deleted and cannot be edited.");
    }
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            spec.id_field: new_id(), "Status": spec.initial[0], "LineAmountTypes": "Exclusive",
            "CurrencyCode": ctx.base_currency, "CurrencyRate": 1.0, "LineItems": [],
        })),
    };
    if spec.has_attachments_flag {
        record.entry("HasAttachments").or_insert(json!(false));
    }
    merge_fields(&mut record, input, spec.fields);
    if let Some(number) = get_str(input, spec.number_field) {
        record.insert(spec.number_field.into(), json!(number));
    }
    let mut errors = Vec::new();
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
    let amount_types = match get_str(input, "LineAmountTypes")
        .or_else(|| record.get("LineAmountTypes").and_then(Value::as_str))
        .unwrap_or("Exclusive")
        .to_ascii_lowercase()
        .as_str()
    {
        "inclusive" => "Inclusive",
        "notax" => "NoTax",
        _ => "Exclusive",
    };
    let stored_amount_types = if spec.upper_case_amount_types {
        amount_types.to_ascii_uppercase()
    } else {
        amount_types.to_owned()
    };
    record.insert("LineAmountTypes".into(), json!(stored_amount_types));
    let raw_lines = match get(input, "LineItems") {
        Some(Value::Array(lines)) => lines.clone(),
        _ => record
            .get("LineItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    let (mut sub_total, mut total_tax, mut discount) = (0.0, 0.0, 0.0);
    let mut lines = Vec::new();
    for raw in &raw_lines {
        let (line, net, tax, off) = price_line(tx, raw, amount_types, spec.is_sale, &mut errors);
        sub_total += net;
        total_tax += tax;
        discount += off;
        lines.push(line);
    }
    let status = get_str(input, "Status")
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| {
            if old_status.is_empty() {
                spec.initial[0].to_owned()
            } else {
                old_status.clone()
            }
        });
    let allowed: &[&str] = if old_status.is_empty() {
        spec.initial
    } else {
        spec.transitions
            .iter()
            .find(|(from, _)| *from == old_status)
            .map(|(_, to)| *to)
            .unwrap_or(&[])
    };
    if !allowed.contains(&status.as_str()) {
        errors.push(if old_status.is_empty() {
            format!("A document cannot be created with the status {status}.")
        } else {
            format!("The status cannot change from {old_status} to {status}.")
        });
    }
    let date = get(input, "Date")
        .and_then(parse_day)
        .or_else(|| record.get("Date").and_then(parse_day))
        .unwrap_or_else(|| ctx.now.date_naive());
    let second = get(input, spec.second_date)
        .and_then(parse_day)
        .or_else(|| record.get(spec.second_date).and_then(parse_day));
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    let number_missing = record
        .get(spec.number_field)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if number_missing {
        let n = tx.ledger.next_number(spec.sequence);
        record.insert(
            spec.number_field.into(),
            json!(format!("{}{n:04}", spec.prefix)),
        );
    }
    let (sub_total, total_tax) = (money(sub_total), money(total_tax));
    record.insert("LineItems".into(), Value::Array(lines));
    record.insert("SubTotal".into(), json!(sub_total));
    record.insert("TotalTax".into(), json!(total_tax));
    record.insert("Total".into(), json!(money(sub_total + total_tax)));
    record.insert("TotalDiscount".into(), json!(money(discount)));
    record.insert("Status".into(), json!(status));
    record.insert("Date".into(), json!(ms_day(date)));
    record.insert("DateString".into(), json!(date_string(date)));
    if let Some(second) = second {
        record.insert(spec.second_date.into(), json!(ms_day(second)));
        record.insert(
            format!("{}String", spec.second_date),
            json!(date_string(second)),
        );
    }
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}
