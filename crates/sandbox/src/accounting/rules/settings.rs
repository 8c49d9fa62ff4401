//! Rules for contacts, items, accounts, tax rates, currencies and tracking categories: unique
//! names and codes, valid types and statuses.

use serde_json::{json, Value};

use super::{account_by_code, fail, new_id, object, Errors, WriteCtx};
use crate::accounting::ledger::Tx;
use crate::accounting::model::{get, get_str, merge_fields, ms_date, number};

const CONTACT_FIELDS: &[&str] = &[
    "ContactNumber",
    "AccountNumber",
    "ContactStatus",
    "Name",
    "FirstName",
    "LastName",
    "CompanyNumber",
    "EmailAddress",
    "BankAccountDetails",
    "TaxNumber",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Addresses",
    "Phones",
    "DefaultCurrency",
    "ContactPersons",
    "Website",
    "PaymentTerms",
    "Discount",
    "XeroNetworkKey",
    "IsSupplier",
    "IsCustomer",
];

pub(crate) fn contact(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            "ContactID": new_id(), "ContactStatus": "ACTIVE", "Addresses": [], "Phones": [],
            "ContactGroups": [], "ContactPersons": [], "IsSupplier": false, "IsCustomer": false,
            "HasAttachments": false, "HasValidationErrors": false,
        })),
    };
    merge_fields(&mut record, input, CONTACT_FIELDS);
    let mut errors = Vec::new();
    let name = record
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() {
        errors.push("The contact name must be specified.".to_owned());
    } else if name.chars().count() > 255 {
        errors.push("The contact name must be 255 characters or less.".to_owned());
    }
    let status = record
        .get("ContactStatus")
        .and_then(Value::as_str)
        .unwrap_or("ACTIVE")
        .to_owned();
    if !["ACTIVE", "ARCHIVED", "GDPRREQUEST"].contains(&status.as_str()) {
        errors.push(format!("'{status}' is not a valid contact status."));
    }
    let id = record
        .get("ContactID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if status == "ACTIVE" && !name.is_empty() {
        let clash = tx.find("Contacts", |c| {
            get_str(c, "ContactStatus") == Some("ACTIVE")
                && get_str(c, "Name").is_some_and(|n| n.eq_ignore_ascii_case(&name))
                && get_str(c, "ContactID") != Some(id.as_str())
        });
        if clash.is_some() {
            errors.push(format!(
                "The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."
            ));
        }
    }
    if let Some(email) = record.get("EmailAddress").and_then(Value::as_str) {
        if !email.is_empty() && !email.contains('@') {
            errors.push("Email address must be valid.".to_owned());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    record.insert("Name".into(), json!(name));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

const ITEM_FIELDS: &[&str] = &[
    "Code",
    "Name",
    "Description",
    "PurchaseDescription",
    "IsSold",
    "IsPurchased",
    "SalesDetails",
    "PurchaseDetails",
    "InventoryAssetAccountCode",
];

pub(crate) fn item(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(
            json!({"ItemID": new_id(), "IsSold": true, "IsPurchased": true, "IsTrackedAsInventory": false}),
        ),
    };
    merge_fields(&mut record, input, ITEM_FIELDS);
    let mut errors = Vec::new();
    let code = record
        .get("Code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = record
        .get("ItemID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if code.trim().is_empty() {
        errors.push("Item code is required.".to_owned());
    } else if code.chars().count() > 30 {
        errors.push("Item code must be 30 characters or less.".to_owned());
    } else if tx
        .find("Items", |i| {
            get_str(i, "Code").is_some_and(|c| c.eq_ignore_ascii_case(&code))
                && get_str(i, "ItemID") != Some(id.as_str())
        })
        .is_some()
    {
        errors.push(format!("Item code '{code}' already exists."));
    }
    if record
        .get("Name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.chars().count() > 50)
    {
        errors.push("Item name must be 50 characters or less.".to_owned());
    }
    for details in ["SalesDetails", "PurchaseDetails"] {
        if let Some(code) = record.get(details).and_then(|d| get_str(d, "AccountCode")) {
            if account_by_code(tx, code).is_none() {
                errors.push(format!(
                    "Account code '{code}' is not a valid code for this document."
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !record.contains_key("Name") {
        record.insert("Name".into(), json!(code));
    }
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

/// Account types and their class.
pub const ACCOUNT_TYPES: &[(&str, &str)] = &[
    ("BANK", "ASSET"),
    ("CURRENT", "ASSET"),
    ("FIXED", "ASSET"),
    ("INVENTORY", "ASSET"),
    ("NONCURRENT", "ASSET"),
    ("PREPAYMENT", "ASSET"),
    ("CURRLIAB", "LIABILITY"),
    ("LIABILITY", "LIABILITY"),
    ("TERMLIAB", "LIABILITY"),
    ("EQUITY", "EQUITY"),
    ("DEPRECIATN", "EXPENSE"),
    ("DIRECTCOSTS", "EXPENSE"),
    ("EXPENSE", "EXPENSE"),
    ("OVERHEADS", "EXPENSE"),
    ("OTHERINCOME", "REVENUE"),
    ("REVENUE", "REVENUE"),
    ("SALES", "REVENUE"),
];

const ACCOUNT_FIELDS: &[&str] = &[
    "Code",
    "Name",
    "Type",
    "TaxType",
    "Description",
    "EnablePaymentsToAccount",
    "ShowInExpenseClaims",
    "BankAccountNumber",
    "BankAccountType",
    "CurrencyCode",
    "Status",
    "ReportingCode",
    "AddToWatchlist",
];

pub(crate) fn account(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({
            "AccountID": new_id(), "Status": "ACTIVE", "TaxType": "NONE", "EnablePaymentsToAccount": false,
            "ShowInExpenseClaims": false, "HasAttachments": false, "AddToWatchlist": false,
        })),
    };
    merge_fields(&mut record, input, ACCOUNT_FIELDS);
    let id = record
        .get("AccountID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let text = |k: &str| {
        record
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (code, name, kind, status) = (text("Code"), text("Name"), text("Type"), text("Status"));
    let mut errors = Vec::new();
    if code.trim().is_empty() && kind != "BANK" {
        errors.push("Please enter a Code.".to_owned());
    } else if !code.is_empty()
        && tx
            .find("Accounts", |a| {
                get_str(a, "Code").is_some_and(|c| c.eq_ignore_ascii_case(&code))
                    && get_str(a, "AccountID") != Some(id.as_str())
            })
            .is_some()
    {
        errors.push("Please enter a unique Code.".to_owned());
    }
    if name.trim().is_empty() {
        errors.push("Please enter a Name.".to_owned());
    } else if tx
        .find("Accounts", |a| {
            get_str(a, "Name").is_some_and(|n| n.eq_ignore_ascii_case(&name))
                && get_str(a, "AccountID") != Some(id.as_str())
        })
        .is_some()
    {
        errors.push("Please enter a unique Name.".to_owned());
    }
    let class = ACCOUNT_TYPES
        .iter()
        .find(|(t, _)| *t == kind)
        .map(|(_, c)| *c);
    if class.is_none() {
        errors.push(format!("Account type '{kind}' is not valid."));
    }
    if kind == "BANK" && text("BankAccountNumber").is_empty() {
        errors.push("Bank account number is required for bank accounts.".to_owned());
    }
    if !["ACTIVE", "ARCHIVED"].contains(&status.as_str()) {
        errors.push(format!("'{status}' is not a valid account status."));
    }
    if existing.is_some_and(|e| get(e, "SystemAccount").is_some_and(|s| !s.is_null()))
        && status == "ARCHIVED"
    {
        errors.push("System accounts cannot be archived.".to_owned());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if kind == "BANK" {
        record.insert("EnablePaymentsToAccount".into(), json!(true));
        record.entry("BankAccountType").or_insert(json!("BANK"));
        record
            .entry("CurrencyCode")
            .or_insert(json!(ctx.base_currency));
    }
    record.insert("Class".into(), json!(class));
    record.insert("UpdatedDateUTC".into(), json!(ms_date(ctx.now)));
    Ok(Value::Object(record))
}

pub(crate) fn tax_rate(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => {
            let n = tx.ledger.next_number("TAX");
            object(
                json!({"TaxType": format!("TAX{n:03}"), "Status": "ACTIVE", "CanApplyToAssets": true,
                "CanApplyToEquity": true, "CanApplyToExpenses": true, "CanApplyToLiabilities": true, "CanApplyToRevenue": true}),
            )
        }
    };
    merge_fields(
        &mut record,
        input,
        &["Name", "TaxComponents", "Status", "ReportTaxType"],
    );
    let name = record
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.trim().is_empty() {
        return fail("Please enter a tax rate name.");
    }
    let components = record
        .get("TaxComponents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if components.is_empty() {
        return fail("A tax rate needs at least one tax component.");
    }
    let mut rate = 0.0;
    for component in &components {
        match get(component, "Rate").and_then(number) {
            Some(r) if (0.0..=100.0).contains(&r) => rate += r,
            _ => return fail("Each tax component needs a Rate between 0 and 100."),
        }
    }
    record.insert("EffectiveRate".into(), json!(rate));
    record.insert("DisplayTaxRate".into(), json!(rate));
    Ok(Value::Object(record))
}

const CURRENCY_NAMES: &[(&str, &str)] = &[
    ("NZD", "New Zealand Dollar"),
    ("AUD", "Australian Dollar"),
    ("USD", "United States Dollar"),
    ("GBP", "Great British Pound"),
    ("EUR", "Euro"),
    ("CAD", "Canadian Dollar"),
    ("JPY", "Japanese Yen"),
    ("SGD", "Singapore Dollar"),
    ("ZAR", "South African Rand"),
    ("CHF", "Swiss Franc"),
];

pub(crate) fn currency(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
) -> Result<Value, Errors> {
    if existing.is_some() {
        return fail("Currencies cannot be changed once added.");
    }
    let code = get_str(input, "Code")
        .unwrap_or_default()
        .to_ascii_uppercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return fail("Please enter a valid three-letter ISO 4217 currency code.");
    }
    if tx.get("Currencies", &code).is_some() {
        return fail(format!("The currency {code} has already been added."));
    }
    let description = CURRENCY_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .unwrap_or("");
    Ok(json!({"Code": code, "Description": description}))
}

pub(crate) fn tracking_category(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    _ctx: &WriteCtx,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({"TrackingCategoryID": new_id(), "Status": "ACTIVE", "Options": []})),
    };
    merge_fields(&mut record, input, &["Name", "Status"]);
    let name = record
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = record
        .get("TrackingCategoryID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if name.trim().is_empty() {
        return fail("Tracking category name is required.");
    }
    if tx
        .find("TrackingCategories", |t| {
            get_str(t, "Name").is_some_and(|n| n.eq_ignore_ascii_case(&name))
                && get_str(t, "TrackingCategoryID") != Some(id.as_str())
        })
        .is_some()
    {
        return fail(format!(
            "The tracking category name {name} is already in use."
        ));
    }
    Ok(Value::Object(record))
}

/// Contact groups: a unique name; members are managed through `…/{id}/Contacts`.
pub(crate) fn contact_group(
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
) -> Result<Value, Errors> {
    let mut record = match existing {
        Some(e) => object(e.clone()),
        None => object(json!({"ContactGroupID": new_id(), "Status": "ACTIVE", "Contacts": []})),
    };
    merge_fields(&mut record, input, &["Name", "Status"]);
    let name = record
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let id = record
        .get("ContactGroupID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        return fail("A contact group name is required.");
    }
    let status = record
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or("ACTIVE");
    if !["ACTIVE", "DELETED"].contains(&status) {
        return fail(format!(
            "'{status}' is not a valid contact group status (ACTIVE or DELETED)."
        ));
    }
    let clash = tx.find("ContactGroups", |g| {
        get_str(g, "Status") == Some("ACTIVE")
            && get_str(g, "Name").is_some_and(|n| n.eq_ignore_ascii_case(&name))
            && get_str(g, "ContactGroupID") != Some(id.as_str())
    });
    if clash.is_some() && status == "ACTIVE" {
        return fail(format!("The contact group name {name} is already in use."));
    }
    record.insert("Name".into(), json!(name));
    Ok(Value::Object(record))
}
