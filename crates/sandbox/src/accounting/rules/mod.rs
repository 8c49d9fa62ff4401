//! Write rules: how one request element becomes a stored record, with Xero's semantics and
//! validation messages. This module holds what the rules share (line pricing, contact
//! resolution, lookups); `settings`, `documents`, `orders` and `banking` hold the rules per kind.
//! Rules read and stage through [`Tx`], so a failing element changes nothing.

pub mod banking;
pub mod documents;
pub mod orders;
pub mod settings;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::ledger::Tx;
use super::model::{get, get_str, money, number};

/// Context of one write.
pub struct WriteCtx {
    pub now: DateTime<Utc>,
    pub base_currency: String,
}

pub type Errors = Vec<String>;

pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, Errors> {
    Err(vec![message.into()])
}

pub(crate) fn new_id() -> String {
    crate::state::new_uuid().to_string()
}

pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Finds an active account by code.
pub fn account_by_code<'t>(tx: &'t Tx<'_>, code: &str) -> Option<&'t Value> {
    tx.find("Accounts", |a| {
        get_str(a, "Code").is_some_and(|c| c.eq_ignore_ascii_case(code))
    })
}

pub(crate) fn tax_rate_percent(tx: &Tx<'_>, tax_type: &str) -> Option<f64> {
    tx.get("TaxRates", tax_type)
        .and_then(|t| get(t, "EffectiveRate"))
        .and_then(number)
}

/// Resolves `Contact` by `ContactID`, `ContactNumber` or `Name` (creating a contact for a new
/// name, as Xero does).
pub(crate) fn resolve_contact(
    tx: &mut Tx<'_>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if let Some(id) = get_str(input, "ContactID").filter(|s| !s.is_empty()) {
        return tx.get("Contacts", id).cloned().ok_or_else(|| {
            vec![format!(
                "The contact with the ContactID {id} could not be found."
            )]
        });
    }
    if let Some(number) = get_str(input, "ContactNumber").filter(|s| !s.is_empty()) {
        if let Some(found) = tx.find("Contacts", |c| get_str(c, "ContactNumber") == Some(number)) {
            return Ok(found.clone());
        }
    }
    let Some(name) = get_str(input, "Name")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return fail("A Contact must be specified for this type of transaction");
    };
    if let Some(found) = tx.find("Contacts", |c| {
        get_str(c, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name))
            && get_str(c, "ContactStatus") == Some("ACTIVE")
    }) {
        return Ok(found.clone());
    }
    let created = settings::contact(tx, None, input, ctx)?;
    let id = get_str(&created, "ContactID")
        .unwrap_or_default()
        .to_owned();
    tx.stage("Contacts", &id, created.clone());
    Ok(created)
}

pub(crate) fn contact_summary(contact: &Value) -> Value {
    let mut summary = Map::new();
    for key in [
        "ContactID",
        "ContactNumber",
        "Name",
        "ContactStatus",
        "EmailAddress",
        "FirstName",
        "LastName",
        "HasValidationErrors",
    ] {
        if let Some(v) = get(contact, key) {
            summary.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(summary)
}

/// Computes line amounts and tax for one line; returns (line, net, tax, discount).
pub(crate) fn price_line(
    tx: &Tx<'_>,
    raw: &Value,
    amount_types: &str,
    is_sale: bool,
    errors: &mut Errors,
) -> (Value, f64, f64, f64) {
    let mut line = object(raw.clone());
    let mut fill = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            if !line.keys().any(|k| k.eq_ignore_ascii_case(key)) {
                line.insert(key.to_owned(), v);
            }
        }
    };
    if let Some(code) = get_str(raw, "ItemCode") {
        match tx.find("Items", |i| {
            get_str(i, "Code").is_some_and(|c| c.eq_ignore_ascii_case(code))
        }) {
            Some(item) => {
                let details = get(
                    item,
                    if is_sale {
                        "SalesDetails"
                    } else {
                        "PurchaseDetails"
                    },
                )
                .cloned()
                .unwrap_or(Value::Null);
                let description = get(
                    item,
                    if is_sale {
                        "Description"
                    } else {
                        "PurchaseDescription"
                    },
                )
                .cloned();
                fill("Description", description);
                fill("UnitAmount", get(&details, "UnitPrice").cloned());
                fill("AccountCode", get(&details, "AccountCode").cloned());
                fill("TaxType", get(&details, "TaxType").cloned());
            }
            None => errors.push(format!("Item code '{code}' is not valid.")),
        }
    }
    let line_value = Value::Object(line.clone());
    let quantity = get(&line_value, "Quantity").and_then(number).unwrap_or(1.0);
    let discount = get(&line_value, "DiscountRate")
        .and_then(number)
        .unwrap_or(0.0);
    let unit = match get(&line_value, "UnitAmount").and_then(number) {
        Some(u) => u,
        None => get(&line_value, "LineAmount")
            .and_then(number)
            .map(|l| if quantity != 0.0 { l / quantity } else { 0.0 })
            .unwrap_or(0.0),
    };
    let gross = quantity * unit;
    let line_amount = money(gross * (1.0 - discount / 100.0));
    let account_code = get_str(&line_value, "AccountCode").map(str::to_owned);
    let account = account_code
        .as_deref()
        .and_then(|c| account_by_code(tx, c))
        .cloned();
    if let Some(code) = &account_code {
        match &account {
            None => errors.push(format!(
                "Account code '{code}' is not a valid code for this document."
            )),
            Some(a) if get_str(a, "Status") == Some("ARCHIVED") => errors.push(format!(
                "Account code '{code}' has been archived, or has been deleted. Each line item must reference a valid account."
            )),
            Some(_) => {}
        }
    }
    let tax_type = get_str(&line_value, "TaxType")
        .map(str::to_owned)
        .or_else(|| {
            account
                .as_ref()
                .and_then(|a| get_str(a, "TaxType"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "NONE".to_owned());
    let rate = match tax_rate_percent(tx, &tax_type) {
        Some(r) => r,
        None => {
            errors.push(format!("The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction."));
            0.0
        }
    };
    let tax = match amount_types {
        "Exclusive" => money(line_amount * rate / 100.0),
        "Inclusive" => money(line_amount - line_amount / (1.0 + rate / 100.0)),
        _ => 0.0,
    };
    let net = if amount_types == "Inclusive" {
        line_amount - tax
    } else {
        line_amount
    };
    let mut out = Map::new();
    out.insert(
        "LineItemID".into(),
        get(&line_value, "LineItemID")
            .cloned()
            .unwrap_or_else(|| json!(new_id())),
    );
    for key in ["Description", "ItemCode", "AccountCode", "DiscountRate"] {
        if let Some(v) = get(&line_value, key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    out.insert("Quantity".into(), json!(quantity));
    out.insert("UnitAmount".into(), json!(unit));
    out.insert("TaxType".into(), json!(tax_type));
    out.insert("TaxAmount".into(), json!(tax));
    out.insert("LineAmount".into(), json!(line_amount));
    let tracking = match get(&line_value, "Tracking") {
        Some(Value::Array(entries)) => entries
            .iter()
            .filter_map(|entry| resolve_tracking(tx, entry, errors))
            .collect(),
        _ => Vec::new(),
    };
    out.insert("Tracking".into(), Value::Array(tracking));
    if let Some(a) = &account {
        out.insert(
            "AccountID".into(),
            get(a, "AccountID").cloned().unwrap_or(Value::Null),
        );
    }
    (Value::Object(out), net, tax, money(gross - line_amount))
}

/// Resolves a line's tracking entry (`{Name, Option}` or ids) against the active tracking
/// categories, adding the ids as Xero does; unknown categories or options are errors.
fn resolve_tracking(tx: &Tx<'_>, entry: &Value, errors: &mut Errors) -> Option<Value> {
    let by_id =
        get_str(entry, "TrackingCategoryID").and_then(|id| tx.get("TrackingCategories", id));
    let by_name = || {
        get_str(entry, "Name").and_then(|name| {
            tx.find("TrackingCategories", |c| {
                get_str(c, "Status") == Some("ACTIVE")
                    && get_str(c, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
    };
    let Some(category) = by_id.or_else(by_name) else {
        errors.push(format!(
            "The tracking category '{}' does not exist or is not active.",
            get_str(entry, "Name")
                .or_else(|| get_str(entry, "TrackingCategoryID"))
                .unwrap_or_default()
        ));
        return None;
    };
    let wanted = get_str(entry, "Option").unwrap_or_default();
    let wanted_id = get_str(entry, "TrackingOptionID");
    let option = get(category, "Options")
        .and_then(Value::as_array)
        .and_then(|options| {
            options.iter().find(|o| {
                wanted_id.is_some_and(|id| {
                    get_str(o, "TrackingOptionID").is_some_and(|x| x.eq_ignore_ascii_case(id))
                }) || get_str(o, "Name").is_some_and(|n| n.eq_ignore_ascii_case(wanted))
            })
        });
    let category_name = get_str(category, "Name").unwrap_or_default();
    let Some(option) = option else {
        errors.push(format!(
            "The tracking option '{wanted}' does not exist in the category '{category_name}'."
        ));
        return None;
    };
    Some(json!({
        "TrackingCategoryID": get(category, "TrackingCategoryID"),
        "TrackingOptionID": get(option, "TrackingOptionID"),
        "Name": category_name,
        "Option": get(option, "Name"),
    }))
}
