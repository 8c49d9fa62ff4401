//! The Accounting API as data: each resource's path, collection key, identifier, paging,
//! operations, how records are removed, extras (attachments, history, PDF, email, online link),
//! and the scopes (broad and granular) each kind of access needs.
//!
//! Nodes, the scope check and the credential form's default scopes read this table; nothing
//! else lists Xero's resources.

/// How a list endpoint pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Everything in one answer.
    None,
    /// `page` from 1; `page_size` is the largest `pageSize` accepted (100 = the fixed default).
    Page { page_size: u32 },
    /// Journals: `offset` = the last `JournalNumber` seen, 100 per call.
    Offset,
}

/// How a record is removed, where Xero allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Not removable through the API.
    None,
    /// A real `DELETE /Resource/{id}`.
    Delete,
    /// A status change: drafts to DELETED, authorised documents to VOIDED.
    DeleteOrVoid,
    /// `Status: ARCHIVED`.
    Archive,
    /// `Status: DELETED` (e.g. payments, bank transactions).
    StatusDeleted,
}

/// Operations a resource supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    GetMany,
    Create,
    Update,
    CreateOrUpdate,
    Remove,
}

/// Scopes that grant read or write access, in both scope families.
#[derive(Debug, Clone, Copy)]
pub struct Scopes {
    pub broad: &'static str,
    pub granular: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Resource {
    /// The resource's name in Xero's paths (`Invoices`).
    pub name: &'static str,
    /// One record, in words (`invoice`).
    pub singular: &'static str,
    /// The array key in request and response bodies (usually the same as `name`).
    pub key: &'static str,
    /// The identifier field (`InvoiceID`).
    pub id_field: &'static str,
    pub paging: Paging,
    pub operations: &'static [Operation],
    pub removal: Removal,
    /// Scopes without `.read`; reading also accepts the `.read` forms.
    pub scopes: Scopes,
    /// Filters the list endpoint takes besides `where`, `order` and `If-Modified-Since`.
    pub filters: &'static [&'static str],
    pub attachments: bool,
    pub history: bool,
    pub pdf: bool,
    pub email: bool,
    pub online_invoice: bool,
    /// True when only `.read` scopes exist (Journals, Reports): no writes at all.
    pub read_only: bool,
    /// The field a status change (archive, delete, void) is written to.
    pub status_field: &'static str,
}

use Operation::*;

const CRUD: &[Operation] = &[Get, GetMany, Create, Update, CreateOrUpdate, Remove];
const READ: &[Operation] = &[Get, GetMany];

const fn page(size: u32) -> Paging {
    Paging::Page { page_size: size }
}

const BASE: Resource = Resource {
    name: "",
    singular: "",
    key: "",
    id_field: "",
    paging: Paging::None,
    operations: CRUD,
    removal: Removal::None,
    scopes: Scopes {
        broad: "accounting.transactions",
        granular: "accounting.invoices",
    },
    filters: &[],
    attachments: false,
    history: false,
    pdf: false,
    email: false,
    online_invoice: false,
    read_only: false,
    status_field: "Status",
};

const SETTINGS: Scopes = Scopes {
    broad: "accounting.settings",
    granular: "accounting.settings",
};
const CONTACTS: Scopes = Scopes {
    broad: "accounting.contacts",
    granular: "accounting.contacts",
};

pub static RESOURCES: &[Resource] = &[
    Resource {
        name: "Contacts",
        singular: "contact",
        key: "Contacts",
        id_field: "ContactID",
        paging: page(1000),
        removal: Removal::Archive,
        status_field: "ContactStatus",
        scopes: CONTACTS,
        filters: &["IDs", "searchTerm", "includeArchived", "summaryOnly"],
        attachments: true,
        history: true,
        ..BASE
    },
    Resource {
        name: "ContactGroups",
        singular: "contact group",
        key: "ContactGroups",
        id_field: "ContactGroupID",
        removal: Removal::StatusDeleted,
        scopes: CONTACTS,
        ..BASE
    },
    Resource {
        name: "Invoices",
        singular: "invoice",
        key: "Invoices",
        id_field: "InvoiceID",
        paging: page(1000),
        removal: Removal::DeleteOrVoid,
        filters: &[
            "IDs",
            "InvoiceNumbers",
            "ContactIDs",
            "Statuses",
            "searchTerm",
            "summaryOnly",
            "createdByMyApp",
        ],
        attachments: true,
        history: true,
        pdf: true,
        email: true,
        online_invoice: true,
        ..BASE
    },
    Resource {
        name: "CreditNotes",
        singular: "credit note",
        key: "CreditNotes",
        id_field: "CreditNoteID",
        paging: page(1000),
        removal: Removal::DeleteOrVoid,
        attachments: true,
        history: true,
        pdf: true,
        ..BASE
    },
    Resource {
        name: "Payments",
        singular: "payment",
        key: "Payments",
        id_field: "PaymentID",
        paging: page(1000),
        operations: &[Get, GetMany, Create, Remove],
        removal: Removal::StatusDeleted,
        scopes: Scopes {
            broad: "accounting.transactions",
            granular: "accounting.payments",
        },
        history: true,
        ..BASE
    },
    Resource {
        name: "BankTransactions",
        singular: "bank transaction",
        key: "BankTransactions",
        id_field: "BankTransactionID",
        paging: page(1000),
        removal: Removal::StatusDeleted,
        scopes: Scopes {
            broad: "accounting.transactions",
            granular: "accounting.banktransactions",
        },
        attachments: true,
        history: true,
        ..BASE
    },
    Resource {
        name: "BankTransfers",
        singular: "bank transfer",
        key: "BankTransfers",
        id_field: "BankTransferID",
        operations: &[Get, GetMany, Create],
        scopes: Scopes {
            broad: "accounting.transactions",
            granular: "accounting.banktransactions",
        },
        attachments: true,
        history: true,
        ..BASE
    },
    Resource {
        name: "Items",
        singular: "item",
        key: "Items",
        id_field: "ItemID",
        removal: Removal::Delete,
        scopes: Scopes {
            broad: "accounting.settings",
            granular: "accounting.invoices",
        },
        history: true,
        ..BASE
    },
    Resource {
        name: "Accounts",
        singular: "account",
        key: "Accounts",
        id_field: "AccountID",
        removal: Removal::Delete,
        scopes: SETTINGS,
        attachments: true,
        ..BASE
    },
    Resource {
        name: "ManualJournals",
        singular: "manual journal",
        key: "ManualJournals",
        id_field: "ManualJournalID",
        paging: page(1000),
        removal: Removal::DeleteOrVoid,
        scopes: Scopes {
            broad: "accounting.transactions",
            granular: "accounting.manualjournals",
        },
        attachments: true,
        history: true,
        ..BASE
    },
    Resource {
        name: "PurchaseOrders",
        singular: "purchase order",
        key: "PurchaseOrders",
        id_field: "PurchaseOrderID",
        paging: page(1000),
        removal: Removal::StatusDeleted,
        attachments: true,
        history: true,
        pdf: true,
        ..BASE
    },
    Resource {
        name: "Quotes",
        singular: "quote",
        key: "Quotes",
        id_field: "QuoteID",
        paging: page(100),
        removal: Removal::StatusDeleted,
        attachments: true,
        history: true,
        pdf: true,
        ..BASE
    },
    Resource {
        name: "TaxRates",
        singular: "tax rate",
        key: "TaxRates",
        id_field: "TaxType",
        removal: Removal::StatusDeleted,
        scopes: SETTINGS,
        ..BASE
    },
    Resource {
        name: "TrackingCategories",
        singular: "tracking category",
        key: "TrackingCategories",
        id_field: "TrackingCategoryID",
        removal: Removal::Delete,
        scopes: SETTINGS,
        filters: &["includeArchived"],
        ..BASE
    },
    Resource {
        name: "Currencies",
        singular: "currency",
        key: "Currencies",
        id_field: "Code",
        operations: &[GetMany, Create],
        scopes: SETTINGS,
        ..BASE
    },
    Resource {
        name: "Organisation",
        singular: "organisation",
        key: "Organisations",
        id_field: "OrganisationID",
        operations: &[GetMany],
        scopes: SETTINGS,
        read_only: true,
        ..BASE
    },
    Resource {
        name: "Users",
        singular: "user",
        key: "Users",
        id_field: "UserID",
        operations: READ,
        scopes: SETTINGS,
        read_only: true,
        ..BASE
    },
    Resource {
        name: "Journals",
        singular: "journal",
        key: "Journals",
        id_field: "JournalID",
        paging: Paging::Offset,
        operations: READ,
        scopes: Scopes {
            broad: "accounting.journals.read",
            granular: "accounting.journals.read",
        },
        filters: &["paymentsOnly"],
        read_only: true,
        ..BASE
    },
];

/// The reports, each with the granular scope that reads it (broad: `accounting.reports.read`).
pub static REPORTS: &[(&str, &str)] = &[
    ("ProfitAndLoss", "accounting.reports.profitandloss.read"),
    ("BalanceSheet", "accounting.reports.balancesheet.read"),
    ("TrialBalance", "accounting.reports.trialbalance.read"),
    ("AgedReceivablesByContact", "accounting.reports.aged.read"),
    ("AgedPayablesByContact", "accounting.reports.aged.read"),
    ("BankSummary", "accounting.reports.banksummary.read"),
    ("BudgetSummary", "accounting.reports.budgetsummary.read"),
    (
        "ExecutiveSummary",
        "accounting.reports.executivesummary.read",
    ),
];

pub fn resource(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

/// Scopes that would grant an access, best first: granular, then broad; the `.read` form of
/// each is accepted for reads.
fn grants(scope: &str, write: bool) -> Vec<String> {
    let base = scope.trim_end_matches(".read");
    if write {
        if scope.ends_with(".read") {
            return vec![];
        }
        vec![base.to_string()]
    } else if scope.ends_with(".read") {
        vec![scope.to_string()]
    } else {
        vec![base.to_string(), format!("{base}.read")]
    }
}

/// What a granted scope set lacks for an access: `Ok` if covered, else the scopes (one of which
/// is needed) in the order a person should ask for them.
pub fn check_scopes(granted: &[String], scopes: Scopes, write: bool) -> Result<(), Vec<String>> {
    let mut options = grants(scopes.granular, write);
    for s in grants(scopes.broad, write) {
        if !options.contains(&s) {
            options.push(s);
        }
    }
    if options.is_empty() {
        return Err(vec![]);
    }
    if options.iter().any(|o| granted.iter().any(|g| g == o)) {
        Ok(())
    } else {
        Err(options)
    }
}

/// Scopes needed to read a report.
pub fn report_scopes(report: &str) -> Option<Scopes> {
    REPORTS
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(report))
        .map(|(_, granular)| Scopes {
            broad: "accounting.reports.read",
            granular,
        })
}

/// Every granular scope the catalogue uses (writes where allowed), for the credential form.
pub fn granular_scopes() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut add = |s: &'static str| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for r in RESOURCES {
        add(r.scopes.granular);
        if r.attachments {
            add("accounting.attachments");
        }
    }
    for (_, s) in REPORTS {
        add(s);
    }
    add("accounting.budgets.read");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn granular_or_broad_scopes_cover_an_operation() {
        let payments = resource("payments").unwrap().scopes;
        assert!(check_scopes(&s(&["accounting.payments"]), payments, true).is_ok());
        assert!(check_scopes(&s(&["accounting.transactions"]), payments, true).is_ok());
        assert!(check_scopes(&s(&["accounting.payments.read"]), payments, false).is_ok());
        let missing = check_scopes(
            &s(&["accounting.payments.read", "accounting.invoices"]),
            payments,
            true,
        )
        .unwrap_err();
        assert_eq!(
            missing,
            s(&["accounting.payments", "accounting.transactions"])
        );
        let journals = resource("Journals").unwrap().scopes;
        assert!(check_scopes(&s(&["accounting.journals.read"]), journals, false).is_ok());
        assert!(check_scopes(&s(&["accounting.journals.read"]), journals, true).is_err());
        let pl = report_scopes("ProfitAndLoss").unwrap();
        assert!(check_scopes(&s(&["accounting.reports.read"]), pl, false).is_ok());
        assert!(check_scopes(&s(&["accounting.reports.profitandloss.read"]), pl, false).is_ok());
        assert!(check_scopes(&s(&["accounting.reports.balancesheet.read"]), pl, false).is_err());
    }

    #[test]
    fn the_default_granular_scopes_cover_every_resource_and_report() {
        let granted: Vec<String> = granular_scopes().iter().map(|s| s.to_string()).collect();
        assert!(!granted.iter().any(|g| g == "accounting.transactions"));
        for r in RESOURCES {
            assert!(
                check_scopes(&granted, r.scopes, !r.read_only).is_ok(),
                "{}",
                r.name
            );
        }
        for (name, _) in REPORTS {
            assert!(
                check_scopes(&granted, report_scopes(name).unwrap(), false).is_ok(),
                "{name}"
            );
        }
    }
}
