//! The Accounting API's resources as data (path, id and number fields, scopes, paging, search
//! fields, webhook category) and the write rules that give each kind Xero's semantics: line
//! totals by `LineAmountTypes`, status transitions, payments that move invoices to `PAID`,
//! unique contact names and item codes, validation messages in Xero's words.
//!
//! Rules read and stage records through [`Tx`], so a failing element changes nothing.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::ledger::Tx;
use super::model::{
    date_string, get, get_str, merge_fields, money, ms_date, ms_day, number, parse_day,
};
use crate::scopes::Access;

/// How a resource's writes behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Contact,
    Item,
    Account,
    Invoice,
    CreditNote,
    Payment,
    TaxRate,
    Currency,
    TrackingCategory,
    BankTransaction,
    ManualJournal,
    /// Listed and fetched only.
    ReadOnly,
}

/// One emulated resource.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// Path segment and response key, e.g. `Invoices`.
    pub name: &'static str,
    pub id_field: &'static str,
    /// Alternative key for `GET /X/{number}` and updates (`InvoiceNumber`, `Code`…).
    pub number_field: Option<&'static str>,
    pub status_field: Option<&'static str>,
    pub access: Access,
    /// Lists page (`page`, `pageSize`, `pagination` in the response).
    pub paged: bool,
    pub kind: Kind,
    /// Has a real `DELETE /X/{id}`.
    pub deletable: bool,
    /// Fields `searchTerm` looks in.
    pub search: &'static [&'static str],
    /// Webhook `eventCategory` for changes.
    pub webhook: Option<&'static str>,
    /// Has `…/{id}/History`.
    pub history: bool,
    /// Has `…/{id}/Attachments`.
    pub attachments: bool,
}

const TRANSACTIONS: &str = "accounting.transactions";
const SETTINGS: Access = Access::new("accounting.settings", "accounting.settings");
const CONTACTS: Access = Access::new("accounting.contacts", "accounting.contacts");
const INVOICES: Access = Access::new(TRANSACTIONS, "accounting.invoices");
const PAYMENTS: Access = Access::new(TRANSACTIONS, "accounting.payments");
const BANKING: Access = Access::new(TRANSACTIONS, "accounting.banktransactions");
const JOURNALS: Access = Access::new(TRANSACTIONS, "accounting.manualjournals");

const fn resource(
    name: &'static str,
    id_field: &'static str,
    access: Access,
    kind: Kind,
) -> Resource {
    Resource {
        name,
        id_field,
        number_field: None,
        status_field: None,
        access,
        paged: false,
        kind,
        deletable: false,
        search: &[],
        webhook: None,
        history: false,
        attachments: false,
    }
}

/// Every resource the sandbox emulates.
pub const RESOURCES: &[Resource] = &[
    Resource {
        number_field: Some("InvoiceNumber"),
        status_field: Some("Status"),
        paged: true,
        search: &["InvoiceNumber", "Reference"],
        webhook: Some("INVOICE"),
        history: true,
        attachments: true,
        ..resource("Invoices", "InvoiceID", INVOICES, Kind::Invoice)
    },
    Resource {
        number_field: Some("CreditNoteNumber"),
        status_field: Some("Status"),
        paged: true,
        search: &["CreditNoteNumber", "Reference"],
        webhook: Some("CREDITNOTE"),
        history: true,
        attachments: true,
        ..resource("CreditNotes", "CreditNoteID", INVOICES, Kind::CreditNote)
    },
    Resource {
        number_field: Some("ContactNumber"),
        status_field: Some("ContactStatus"),
        paged: true,
        search: &[
            "Name",
            "FirstName",
            "LastName",
            "ContactNumber",
            "CompanyNumber",
            "EmailAddress",
        ],
        webhook: Some("CONTACT"),
        history: true,
        attachments: true,
        ..resource("Contacts", "ContactID", CONTACTS, Kind::Contact)
    },
    Resource {
        number_field: Some("Code"),
        deletable: true,
        search: &["Code", "Name", "Description"],
        history: true,
        ..resource("Items", "ItemID", INVOICES, Kind::Item)
    },
    Resource {
        status_field: Some("Status"),
        paged: true,
        history: true,
        ..resource("Payments", "PaymentID", PAYMENTS, Kind::Payment)
    },
    Resource {
        number_field: Some("Code"),
        status_field: Some("Status"),
        deletable: true,
        attachments: true,
        ..resource("Accounts", "AccountID", SETTINGS, Kind::Account)
    },
    Resource {
        status_field: Some("Status"),
        ..resource("TaxRates", "TaxType", SETTINGS, Kind::TaxRate)
    },
    resource("Currencies", "Code", SETTINGS, Kind::Currency),
    Resource {
        status_field: Some("Status"),
        deletable: true,
        ..resource(
            "TrackingCategories",
            "TrackingCategoryID",
            SETTINGS,
            Kind::TrackingCategory,
        )
    },
    resource(
        "BrandingThemes",
        "BrandingThemeID",
        SETTINGS,
        Kind::ReadOnly,
    ),
    resource("Users", "UserID", SETTINGS, Kind::ReadOnly),
    Resource {
        status_field: Some("Status"),
        paged: true,
        search: &["Reference"],
        history: true,
        attachments: true,
        ..resource(
            "BankTransactions",
            "BankTransactionID",
            BANKING,
            Kind::BankTransaction,
        )
    },
    Resource {
        status_field: Some("Status"),
        paged: true,
        search: &["Narration"],
        history: true,
        attachments: true,
        ..resource(
            "ManualJournals",
            "ManualJournalID",
            JOURNALS,
            Kind::ManualJournal,
        )
    },
];

/// Documented Xero resources the sandbox does not emulate: answered with 501 after the usual
/// authentication, tenant and scope checks.
pub const NOT_EMULATED: &[(&str, Access)] = &[
    ("BankTransfers", BANKING),
    ("BatchPayments", PAYMENTS),
    (
        "Budgets",
        Access::new("accounting.budgets.read", "accounting.budgets.read"),
    ),
    ("ContactGroups", CONTACTS),
    ("ExpenseClaims", INVOICES),
    ("InvoiceReminders", SETTINGS),
    (
        "Journals",
        Access::new("accounting.journals.read", "accounting.journals.read"),
    ),
    ("LinkedTransactions", INVOICES),
    ("Overpayments", PAYMENTS),
    ("PaymentServices", PAYMENTS),
    ("Prepayments", PAYMENTS),
    ("PurchaseOrders", INVOICES),
    ("Quotes", INVOICES),
    ("Receipts", INVOICES),
    ("RepeatingInvoices", INVOICES),
    ("Setup", SETTINGS),
];

pub fn find(segment: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(segment))
}

/// Context of one write.
pub struct WriteCtx {
    pub now: DateTime<Utc>,
    pub base_currency: String,
}

type Errors = Vec<String>;

fn fail<T>(message: impl Into<String>) -> Result<T, Errors> {
    Err(vec![message.into()])
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Applies one request element to a resource: returns the record to store.
pub fn apply(
    resource: &Resource,
    tx: &mut Tx<'_>,
    existing: Option<&Value>,
    input: &Value,
    ctx: &WriteCtx,
) -> Result<Value, Errors> {
    if !input.is_object() {
        return fail("Each element must be a JSON object");
    }
    match resource.kind {
        Kind::Contact => contact(tx, existing, input, ctx),
        Kind::Item => item(tx, existing, input, ctx),
        Kind::Account => account(tx, existing, input, ctx),
        Kind::Invoice => invoice(tx, existing, input, ctx, false),
        Kind::CreditNote => invoice(tx, existing, input, ctx, true),
        Kind::Payment => payment(tx, existing, input, ctx),
        Kind::TaxRate => tax_rate(tx, existing, input),
        Kind::Currency => currency(tx, existing, input),
        Kind::TrackingCategory => tracking_category(tx, existing, input, ctx),
        Kind::BankTransaction => bank_transaction(tx, existing, input, ctx),
        Kind::ManualJournal => manual_journal(tx, existing, input, ctx),
        Kind::ReadOnly => fail(format!(
            "{} cannot be changed through the API",
            resource.name
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Contacts, items, accounts, settings

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

fn contact(
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

fn item(
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

fn account(
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

fn tax_rate(tx: &mut Tx<'_>, existing: Option<&Value>, input: &Value) -> Result<Value, Errors> {
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

fn currency(tx: &mut Tx<'_>, existing: Option<&Value>, input: &Value) -> Result<Value, Errors> {
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

fn tracking_category(
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

// ---------------------------------------------------------------------------------------------
// Invoices and credit notes

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

/// Finds an active account by code.
pub fn account_by_code<'t>(tx: &'t Tx<'_>, code: &str) -> Option<&'t Value> {
    tx.find("Accounts", |a| {
        get_str(a, "Code").is_some_and(|c| c.eq_ignore_ascii_case(code))
    })
}

fn tax_rate_percent(tx: &Tx<'_>, tax_type: &str) -> Option<f64> {
    tx.get("TaxRates", tax_type)
        .and_then(|t| get(t, "EffectiveRate"))
        .and_then(number)
}

/// Resolves `Contact` by `ContactID`, `ContactNumber` or `Name` (creating a contact for a new
/// name, as Xero does).
fn resolve_contact(tx: &mut Tx<'_>, input: &Value, ctx: &WriteCtx) -> Result<Value, Errors> {
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
    let created = contact(tx, None, input, ctx)?;
    let id = get_str(&created, "ContactID")
        .unwrap_or_default()
        .to_owned();
    tx.stage("Contacts", &id, created.clone());
    Ok(created)
}

fn contact_summary(contact: &Value) -> Value {
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
fn price_line(
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
        if account.is_none() {
            errors.push(format!(
                "Account code '{code}' is not a valid code for this document."
            ));
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
    for key in [
        "Description",
        "ItemCode",
        "AccountCode",
        "Tracking",
        "DiscountRate",
    ] {
        if let Some(v) = get(&line_value, key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    out.insert("Quantity".into(), json!(quantity));
    out.insert("UnitAmount".into(), json!(unit));
    out.insert("TaxType".into(), json!(tax_type));
    out.insert("TaxAmount".into(), json!(tax));
    out.insert("LineAmount".into(), json!(line_amount));
    out.entry("Tracking").or_insert(json!([]));
    if let Some(a) = &account {
        out.insert(
            "AccountID".into(),
            get(a, "AccountID").cloned().unwrap_or(Value::Null),
        );
    }
    (Value::Object(out), net, tax, money(gross - line_amount))
}

fn invoice(
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

// ---------------------------------------------------------------------------------------------
// Payments

fn payment(
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

fn delete_payment(
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

/// The calendar date of a record's `Date`.
pub fn record_day(record: &Value) -> Option<NaiveDate> {
    get(record, "Date").and_then(parse_day)
}

// ---------------------------------------------------------------------------------------------
// Bank transactions and manual journals

fn bank_account(tx: &Tx<'_>, reference: Option<&Value>) -> Option<Value> {
    let reference = reference?;
    get_str(reference, "AccountID")
        .and_then(|id| tx.get("Accounts", id))
        .or_else(|| get_str(reference, "Code").and_then(|c| account_by_code(tx, c)))
        .filter(|a| get_str(a, "Type") == Some("BANK"))
        .cloned()
}

fn bank_transaction(
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

fn manual_journal(
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

// ---------------------------------------------------------------------------------------------
// Credit note allocations

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
