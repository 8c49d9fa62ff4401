//! The Accounting API's resources as data: path, id and number fields, scopes, paging, search
//! fields, webhook category, history and attachments. [`apply`] hands a write to the rules of
//! the resource's kind in `accounting::rules`.

use serde_json::Value;

use super::ledger::Tx;
pub use super::rules::settings::ACCOUNT_TYPES;
use super::rules::{banking, documents, fail, orders, settings};
pub use super::rules::{Errors, WriteCtx};
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
    Quote,
    PurchaseOrder,
    BankTransfer,
    ContactGroup,
    BatchPayment,
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
    /// `page` returns 100 records per page, but only when asked and without `pagination`
    /// (Quotes).
    pub page_only: bool,
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
        page_only: false,
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
    Resource {
        number_field: Some("QuoteNumber"),
        status_field: Some("Status"),
        page_only: true,
        search: &["QuoteNumber", "Reference", "Title"],
        history: true,
        attachments: true,
        ..resource("Quotes", "QuoteID", INVOICES, Kind::Quote)
    },
    Resource {
        number_field: Some("PurchaseOrderNumber"),
        status_field: Some("Status"),
        paged: true,
        search: &["PurchaseOrderNumber", "Reference"],
        history: true,
        attachments: true,
        ..resource(
            "PurchaseOrders",
            "PurchaseOrderID",
            INVOICES,
            Kind::PurchaseOrder,
        )
    },
    Resource {
        history: true,
        attachments: true,
        ..resource(
            "BankTransfers",
            "BankTransferID",
            BANKING,
            Kind::BankTransfer,
        )
    },
    Resource {
        status_field: Some("Status"),
        ..resource(
            "ContactGroups",
            "ContactGroupID",
            CONTACTS,
            Kind::ContactGroup,
        )
    },
    Resource {
        status_field: Some("Status"),
        history: true,
        ..resource(
            "BatchPayments",
            "BatchPaymentID",
            PAYMENTS,
            Kind::BatchPayment,
        )
    },
];

/// Documented Xero resources the sandbox does not emulate: answered with 501 after the usual
/// authentication, tenant and scope checks.
pub const NOT_EMULATED: &[(&str, Access)] = &[
    (
        "Budgets",
        Access::new("accounting.budgets.read", "accounting.budgets.read"),
    ),
    ("ExpenseClaims", INVOICES),
    ("LinkedTransactions", INVOICES),
    ("Overpayments", PAYMENTS),
    ("PaymentServices", PAYMENTS),
    ("Prepayments", PAYMENTS),
    ("Receipts", INVOICES),
    ("RepeatingInvoices", INVOICES),
    ("Setup", SETTINGS),
];

pub fn find(segment: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(segment))
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
        Kind::Contact => settings::contact(tx, existing, input, ctx),
        Kind::Item => settings::item(tx, existing, input, ctx),
        Kind::Account => settings::account(tx, existing, input, ctx),
        Kind::Invoice => documents::invoice(tx, existing, input, ctx, false),
        Kind::CreditNote => documents::invoice(tx, existing, input, ctx, true),
        Kind::Payment => documents::payment(tx, existing, input, ctx),
        Kind::TaxRate => settings::tax_rate(tx, existing, input),
        Kind::Currency => settings::currency(tx, existing, input),
        Kind::TrackingCategory => settings::tracking_category(tx, existing, input, ctx),
        Kind::BankTransaction => banking::bank_transaction(tx, existing, input, ctx),
        Kind::ManualJournal => banking::manual_journal(tx, existing, input, ctx),
        Kind::BankTransfer => banking::bank_transfer(tx, existing, input, ctx),
        Kind::BatchPayment => documents::batch_payment(tx, existing, input, ctx),
        Kind::ContactGroup => settings::contact_group(tx, existing, input),
        Kind::Quote => orders::order(&orders::QUOTE, tx, existing, input, ctx),
        Kind::PurchaseOrder => orders::order(&orders::PURCHASE_ORDER, tx, existing, input, ctx),
        Kind::ReadOnly => fail(format!(
            "{} cannot be changed through the API",
            resource.name
        )),
    }
}
