//! The demo ledger every organisation starts with: a New Zealand chart of accounts (090 bank,
//! 200 Sales, 400 Advertising…), GST tax rates, currencies, tracking categories, contacts,
//! items, an opening balance, and invoices and bills in every status with their payments.
//!
//! Everything is data in the tables below and generated with a seeded random generator, so a
//! given seed always gives the same books. Documents are created through the same write rules
//! as the API, so seeded totals obey the same arithmetic as created ones.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::accounting::ledger::{Ledger, Tx};
use crate::accounting::model::{get_str, ms_date, ms_day};
use crate::accounting::resources::{self, WriteCtx};

/// What to generate for one organisation.
pub struct SeedSpec<'a> {
    pub name: &'a str,
    pub short_code: &'a str,
    pub tenant_id: Uuid,
    pub contacts: usize,
    pub invoices: usize,
    pub seed: u64,
}

/// Chart of accounts: code, name, type, tax type, system account.
const ACCOUNTS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    ("090", "Business Bank Account", "BANK", "NONE", None),
    ("091", "Business Savings Account", "BANK", "NONE", None),
    ("200", "Sales", "REVENUE", "OUTPUT2", None),
    ("260", "Other Revenue", "REVENUE", "OUTPUT2", None),
    ("270", "Interest Income", "OTHERINCOME", "NONE", None),
    ("300", "Purchases", "DIRECTCOSTS", "INPUT2", None),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", None),
    ("400", "Advertising", "OVERHEADS", "INPUT2", None),
    ("404", "Bank Fees", "OVERHEADS", "NONE", None),
    ("408", "Cleaning", "OVERHEADS", "INPUT2", None),
    ("412", "Consulting & Accounting", "EXPENSE", "INPUT2", None),
    ("416", "Depreciation", "DEPRECIATN", "NONE", None),
    ("420", "Entertainment", "OVERHEADS", "NONE", None),
    ("425", "Freight & Courier", "EXPENSE", "INPUT2", None),
    ("429", "General Expenses", "OVERHEADS", "INPUT2", None),
    ("433", "Insurance", "EXPENSE", "INPUT2", None),
    ("437", "Interest Expense", "OVERHEADS", "NONE", None),
    ("441", "Legal expenses", "OVERHEADS", "INPUT2", None),
    ("445", "Light, Power, Heating", "OVERHEADS", "INPUT2", None),
    ("449", "Motor Vehicle Expenses", "OVERHEADS", "INPUT2", None),
    ("453", "Office Expenses", "OVERHEADS", "INPUT2", None),
    ("461", "Printing & Stationery", "OVERHEADS", "INPUT2", None),
    ("469", "Rent", "OVERHEADS", "INPUT2", None),
    (
        "473",
        "Repairs and Maintenance",
        "OVERHEADS",
        "INPUT2",
        None,
    ),
    ("477", "Wages and Salaries", "EXPENSE", "NONE", None),
    ("485", "Subscriptions", "OVERHEADS", "INPUT2", None),
    ("489", "Telephone & Internet", "OVERHEADS", "INPUT2", None),
    ("493", "Travel - National", "OVERHEADS", "INPUT2", None),
    ("494", "Travel - International", "OVERHEADS", "NONE", None),
    (
        "610",
        "Accounts Receivable",
        "CURRENT",
        "NONE",
        Some("DEBTORS"),
    ),
    ("620", "Prepayments", "CURRENT", "NONE", None),
    ("630", "Inventory", "INVENTORY", "NONE", None),
    ("710", "Office Equipment", "FIXED", "INPUT2", None),
    ("720", "Computer Equipment", "FIXED", "INPUT2", None),
    (
        "800",
        "Accounts Payable",
        "CURRLIAB",
        "NONE",
        Some("CREDITORS"),
    ),
    ("820", "GST", "CURRLIAB", "NONE", Some("GST")),
    (
        "840",
        "Historical Adjustment",
        "CURRLIAB",
        "NONE",
        Some("HISTORICAL"),
    ),
    ("877", "Tracking Transfers", "CURRLIAB", "NONE", None),
    ("900", "Loan", "TERMLIAB", "NONE", None),
    (
        "960",
        "Retained Earnings",
        "EQUITY",
        "NONE",
        Some("RETAINEDEARNINGS"),
    ),
    ("970", "Owner A Funds Introduced", "EQUITY", "NONE", None),
];

/// Tax rates: tax type, name, percentage, report tax type.
const TAX_RATES: &[(&str, &str, f64, &str)] = &[
    ("OUTPUT2", "15% GST on Income", 15.0, "OUTPUT"),
    ("INPUT2", "15% GST on Expenses", 15.0, "INPUT"),
    ("NONE", "No GST", 0.0, "NONE"),
    ("ZERORATED", "Zero Rated", 0.0, "OUTPUT"),
    ("GSTONIMPORTS", "GST on Imports", 0.0, "GSTONIMPORTS"),
];

const CURRENCIES: &[(&str, &str)] = &[
    ("NZD", "New Zealand Dollar"),
    ("AUD", "Australian Dollar"),
    ("USD", "United States Dollar"),
];

const TRACKING: &[(&str, &[&str])] = &[
    ("Region", &["North", "South", "Central"]),
    ("Department", &["Sales", "Operations", "Support"]),
];

const CUSTOMERS: &[&str] = &[
    "Ridgeway University",
    "City Limousines",
    "Marine Systems",
    "Bayside Club",
    "Boom FM",
    "Hamilton Smith Ltd",
    "Port & Philip Freight",
    "Basket Case",
    "Young Bros Transport",
    "DIISR - Small Business Services",
    "Rex Media Group",
    "Petrie McLoud Watson & Associates",
    "Kakapo Creative",
    "Tui Tech Ltd",
    "Harbour View Cafe",
    "Southern Alps Tours",
    "Kowhai Florists",
    "Pohutukawa Partners",
    "Wellington Wharf Co",
    "Otago Outfitters",
];

const SUPPLIERS: &[&str] = &[
    "ABC Furniture",
    "Capital Cab Co",
    "Central Copiers",
    "Gateway Motors",
    "Hoyt Productions",
    "MCO Cleaning Services",
    "Net Connect",
    "PowerDirect",
    "SMART Agency",
    "Swanston Security",
    "Truxton Property Management",
    "Xero",
    "Woolworths Market",
    "24 Locks",
    "Bank West",
];

/// Items: code, name, sale price, purchase price.
const ITEMS: &[(&str, &str, f64, f64)] = &[
    (
        "DevD",
        "Development work - developer onsite per day",
        650.0,
        0.0,
    ),
    (
        "DevN",
        "Development work - developer offsite per hour",
        90.0,
        0.0,
    ),
    ("Support-M", "Monthly support retainer", 500.0, 0.0),
    ("Train", "Training session (half day)", 1200.0, 0.0),
    ("BOOK", "Fish out of Water: Finding Your Brand", 19.95, 12.5),
    ("GB1-White", "Golf balls - white single", 5.0, 2.5),
    (
        "PRJ-Lic",
        "Project management licence (annual)",
        480.0,
        300.0,
    ),
    ("Cable-5m", "Network cable 5m", 12.0, 4.5),
];

const EXPENSE_CODES: &[&str] = &[
    "300", "310", "400", "408", "412", "425", "429", "433", "441", "445", "449", "453", "461",
    "469", "473", "485", "489", "493",
];

fn organisation(spec: &SeedSpec<'_>, now: DateTime<Utc>) -> Value {
    json!({
        "OrganisationID": spec.tenant_id,
        "APIKey": "",
        "Name": spec.name,
        "LegalName": spec.name,
        "PaysTax": true,
        "Version": "NZ",
        "OrganisationType": "COMPANY",
        "BaseCurrency": "NZD",
        "CountryCode": "NZ",
        "IsDemoCompany": false,
        "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": "9429046719287",
        "TaxNumber": "101-234-567",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "INVOICE",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(now - Duration::days(400)),
        "OrganisationEntityType": "COMPANY",
        "Timezone": "NEWZEALANDSTANDARDTIME",
        "ShortCode": spec.short_code,
        "OrganisationID_Short": spec.short_code,
        "Edition": "BUSINESS",
        "Class": "PREMIUM",
        "LineOfBusiness": "Software consulting",
        "Addresses": [{"AddressType": "STREET", "AddressLine1": "23 Main Street", "City": "Wellington", "PostalCode": "6011", "Country": "New Zealand"}],
        "Phones": [{"PhoneType": "OFFICE", "PhoneNumber": "4 123 4567", "PhoneAreaCode": "04", "PhoneCountryCode": "64"}],
        "ExternalLinks": [],
        "PaymentTerms": {"Bills": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}, "Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
    })
}

fn settings(ledger: &mut Ledger, spec: &SeedSpec<'_>, now: DateTime<Utc>) {
    let updated = ms_date(now - Duration::days(400));
    for (code, name, kind, tax, system) in ACCOUNTS {
        let class = resources::ACCOUNT_TYPES
            .iter()
            .find(|(t, _)| t == kind)
            .map(|(_, c)| *c);
        let id = crate::state::new_uuid().to_string();
        let mut account = json!({
            "AccountID": id, "Code": code, "Name": name, "Type": kind, "TaxType": tax, "Status": "ACTIVE",
            "Class": class, "EnablePaymentsToAccount": *kind == "BANK", "ShowInExpenseClaims": *kind == "OVERHEADS",
            "HasAttachments": false, "AddToWatchlist": false, "UpdatedDateUTC": updated, "Description": "",
            "ReportingCode": "", "ReportingCodeName": "",
        });
        if let Some(system) = system {
            account["SystemAccount"] = json!(system);
        }
        if *kind == "BANK" {
            account["BankAccountNumber"] = json!(format!("0102030{}", &code[2..]));
            account["BankAccountType"] = json!("BANK");
            account["CurrencyCode"] = json!("NZD");
        }
        ledger.upsert("Accounts", &id, account);
    }
    for (tax_type, name, rate, report) in TAX_RATES {
        ledger.upsert("TaxRates", tax_type, json!({
            "Name": name, "TaxType": tax_type, "ReportTaxType": report, "Status": "ACTIVE",
            "TaxComponents": [{"Name": "GST", "Rate": rate, "IsCompound": false, "IsNonRecoverable": false}],
            "CanApplyToAssets": true, "CanApplyToEquity": true, "CanApplyToExpenses": true,
            "CanApplyToLiabilities": true, "CanApplyToRevenue": true, "DisplayTaxRate": rate, "EffectiveRate": rate,
        }));
    }
    for (code, description) in CURRENCIES {
        ledger.upsert(
            "Currencies",
            code,
            json!({"Code": code, "Description": description}),
        );
    }
    for (name, options) in TRACKING {
        let id = crate::state::new_uuid().to_string();
        let options: Vec<Value> = options
            .iter()
            .map(|o| json!({"TrackingOptionID": crate::state::new_uuid(), "Name": o, "Status": "ACTIVE"}))
            .collect();
        ledger.upsert(
            "TrackingCategories",
            &id,
            json!({"TrackingCategoryID": id, "Name": name, "Status": "ACTIVE", "Options": options}),
        );
    }
    let theme = crate::state::new_uuid().to_string();
    ledger.upsert("BrandingThemes", &theme, json!({"BrandingThemeID": theme, "Name": "Standard", "Type": "INVOICE", "SortOrder": 0, "CreatedDateUTC": updated}));
    let user = crate::state::new_uuid().to_string();
    ledger.upsert("Users", &user, json!({"UserID": user, "EmailAddress": crate::state::DEMO_EMAIL, "FirstName": "Demo", "LastName": "User",
        "UpdatedDateUTC": updated, "IsSubscriber": true, "OrganisationRole": "FINANCIALADVISER"}));
    for (code, name, sale, purchase) in ITEMS {
        let id = crate::state::new_uuid().to_string();
        let mut item = json!({
            "ItemID": id, "Code": code, "Name": name, "Description": name, "IsSold": true,
            "IsPurchased": *purchase > 0.0, "IsTrackedAsInventory": false, "UpdatedDateUTC": updated,
            "SalesDetails": {"UnitPrice": sale, "AccountCode": "200", "TaxType": "OUTPUT2"},
        });
        if *purchase > 0.0 {
            item["PurchaseDescription"] = json!(name);
            item["PurchaseDetails"] =
                json!({"UnitPrice": purchase, "AccountCode": "300", "TaxType": "INPUT2"});
        }
        ledger.upsert("Items", &id, item);
    }
    // Opening balance: the owner's capital in the bank on the day the books start.
    let opening = (now - Duration::days(400)).date_naive();
    let journal = crate::state::new_uuid().to_string();
    ledger.upsert("ManualJournals", &journal, json!({
        "ManualJournalID": journal, "Narration": "Opening balance", "Status": "POSTED",
        "Date": ms_day(opening), "LineAmountTypes": "NoTax", "UpdatedDateUTC": updated,
        "ShowOnCashBasisReports": true, "HasAttachments": false,
        "JournalLines": [
            {"AccountCode": "090", "LineAmount": 25000.0, "Description": "Opening bank balance", "TaxType": "NONE", "TaxAmount": 0.0, "IsBlank": false, "Tracking": []},
            {"AccountCode": "970", "LineAmount": -25000.0, "Description": "Owner funds introduced", "TaxType": "NONE", "TaxAmount": 0.0, "IsBlank": false, "Tracking": []},
        ],
    }));
    let _ = spec;
}

fn contacts(
    ledger: &mut Ledger,
    rng: &mut SmallRng,
    count: usize,
    now: DateTime<Utc>,
) -> (Vec<String>, Vec<String>) {
    let (mut customers, mut suppliers) = (Vec::new(), Vec::new());
    for i in 0..count {
        let supplier = i % 3 == 2;
        let pool = if supplier { SUPPLIERS } else { CUSTOMERS };
        let base = pool[(i / 3 * 2 + i % 3) % pool.len()];
        let round = i / (CUSTOMERS.len() + SUPPLIERS.len());
        let name = if round == 0
            && !ledger
                .records("Contacts")
                .any(|c| get_str(c, "Name") == Some(base))
        {
            base.to_owned()
        } else {
            format!("{base} {}", i + 1)
        };
        let id = crate::state::new_uuid().to_string();
        let first = [
            "Ana", "Ben", "Chloe", "Dev", "Emma", "Finn", "Grace", "Hemi",
        ][rng.gen_range(0..8)];
        let slug: String = name
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let updated = now - Duration::days(rng.gen_range(30..400));
        let status = if i % 17 == 16 { "ARCHIVED" } else { "ACTIVE" };
        ledger.upsert("Contacts", &id, json!({
            "ContactID": id, "ContactNumber": format!("C{:05}", i + 1), "ContactStatus": status, "Name": name,
            "FirstName": first, "LastName": "Smith", "EmailAddress": format!("{}@{slug}.example.com", first.to_lowercase()),
            "Addresses": [{"AddressType": "POBOX", "AddressLine1": format!("PO Box {}", 1000 + i), "City": "Auckland", "PostalCode": "1010", "Country": "New Zealand"}],
            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": format!("{:07}", rng.gen_range(1_000_000..9_999_999)), "PhoneAreaCode": "09", "PhoneCountryCode": "64"}],
            "ContactGroups": [], "ContactPersons": [], "IsSupplier": supplier, "IsCustomer": !supplier,
            "DefaultCurrency": "NZD", "HasAttachments": false, "HasValidationErrors": false,
            "UpdatedDateUTC": ms_date(updated),
        }));
        if status == "ACTIVE" {
            if supplier {
                suppliers.push(id)
            } else {
                customers.push(id)
            }
        }
    }
    if customers.is_empty() {
        customers = suppliers.clone();
    }
    if suppliers.is_empty() {
        suppliers = customers.clone();
    }
    (customers, suppliers)
}

/// Creates one document through the API's rules and commits it.
fn create(
    ledger: &mut Ledger,
    collection: &str,
    existing: Option<&Value>,
    input: &Value,
    at: DateTime<Utc>,
) -> Option<Value> {
    let resource = resources::find(collection)?;
    let ctx = WriteCtx {
        now: at,
        base_currency: "NZD".into(),
    };
    let mut tx = Tx::new(ledger);
    let record = resources::apply(resource, &mut tx, existing, input, &ctx).ok()?;
    let id = get_str(&record, resource.id_field)?.to_owned();
    tx.stage(resource.name, &id, record.clone());
    tx.commit();
    Some(record)
}

fn documents(
    ledger: &mut Ledger,
    rng: &mut SmallRng,
    count: usize,
    parties: &(Vec<String>, Vec<String>),
    now: DateTime<Utc>,
) {
    if parties.0.is_empty() {
        return;
    }
    let today = now.date_naive();
    for _ in 0..count {
        let sale = rng.gen_bool(0.7);
        let contact = if sale { &parties.0 } else { &parties.1 };
        let contact = &contact[rng.gen_range(0..contact.len())];
        let day: NaiveDate = today - Duration::days(rng.gen_range(0..365));
        let lines: Vec<Value> = (0..rng.gen_range(1..=3))
            .map(|_| {
                if sale && rng.gen_bool(0.4) {
                    let (code, _, _, _) = ITEMS[rng.gen_range(0..ITEMS.len())];
                    json!({"ItemCode": code, "Quantity": rng.gen_range(1..=5)})
                } else if sale {
                    json!({"Description": "Consulting services", "Quantity": rng.gen_range(1..=10),
                        "UnitAmount": (rng.gen_range(5_000..200_000) as f64) / 100.0, "AccountCode": "200", "TaxType": "OUTPUT2"})
                } else {
                    let code = EXPENSE_CODES[rng.gen_range(0..EXPENSE_CODES.len())];
                    json!({"Description": "Supplies and services", "Quantity": 1,
                        "UnitAmount": (rng.gen_range(2_000..150_000) as f64) / 100.0, "AccountCode": code, "TaxType": "INPUT2"})
                }
            })
            .collect();
        let roll: f64 = rng.gen();
        let status = match roll {
            r if r < 0.10 => "DRAFT",
            r if r < 0.15 => "SUBMITTED",
            r if r < 0.20 => "DELETED",
            r if r < 0.25 => "VOIDED",
            r if r < 0.60 => "AUTHORISED",
            _ => "PAID",
        };
        let created_status = match status {
            "DELETED" => "DRAFT",
            "VOIDED" | "PAID" => "AUTHORISED",
            other => other,
        };
        let mut input = json!({
            "Type": if sale { "ACCREC" } else { "ACCPAY" },
            "Contact": {"ContactID": contact},
            "Date": day.format("%Y-%m-%d").to_string(),
            "DueDate": (day + Duration::days(20)).format("%Y-%m-%d").to_string(),
            "LineAmountTypes": if rng.gen_bool(0.85) { "Exclusive" } else { "Inclusive" },
            "Status": created_status,
            "LineItems": lines,
        });
        if !sale {
            input["InvoiceNumber"] = json!(format!("BILL-{}", rng.gen_range(10_000..99_999)));
        }
        let at = Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).unwrap_or_default());
        let Some(invoice) = create(ledger, "Invoices", None, &input, at) else {
            continue;
        };
        let id = get_str(&invoice, "InvoiceID")
            .unwrap_or_default()
            .to_owned();
        let total = invoice["Total"].as_f64().unwrap_or(0.0);
        match status {
            "DELETED" | "VOIDED" => {
                create(
                    ledger,
                    "Invoices",
                    Some(&invoice),
                    &json!({"Status": status}),
                    at + Duration::days(1),
                );
            }
            "PAID" | "AUTHORISED" if total > 0.0 => {
                let partial = status == "AUTHORISED" && rng.gen_bool(0.3);
                if status == "PAID" || partial {
                    let amount = if partial {
                        (total * 0.4 * 100.0).round() / 100.0
                    } else {
                        total
                    };
                    let paid_on = (day + Duration::days(rng.gen_range(0..30))).min(today);
                    let payment = json!({"Invoice": {"InvoiceID": id}, "Account": {"Code": "090"},
                        "Date": paid_on.format("%Y-%m-%d").to_string(), "Amount": amount, "Reference": "Seeded payment"});
                    let at =
                        Utc.from_utc_datetime(&paid_on.and_hms_opt(15, 0, 0).unwrap_or_default());
                    create(ledger, "Payments", None, &payment, at);
                }
            }
            _ => {}
        }
    }
}

/// Monthly bank fees and interest as bank transactions, and a savings sweep every few months.
fn bank_lines(
    ledger: &mut Ledger,
    rng: &mut SmallRng,
    parties: &(Vec<String>, Vec<String>),
    now: DateTime<Utc>,
) {
    let Some(bank) = parties.1.first().or(parties.0.first()).cloned() else {
        return;
    };
    let today = now.date_naive();
    for month in 0..12 {
        let day = today - Duration::days(30 * month + 3);
        let at = Utc.from_utc_datetime(&day.and_hms_opt(8, 0, 0).unwrap_or_default());
        let fees = json!({"Type": "SPEND", "Contact": {"ContactID": bank}, "BankAccount": {"Code": "090"},
            "Date": day.format("%Y-%m-%d").to_string(), "LineAmountTypes": "NoTax", "Reference": "Monthly account fee",
            "LineItems": [{"Description": "Account keeping fee", "UnitAmount": 15.0, "AccountCode": "404", "TaxType": "NONE"}]});
        create(ledger, "BankTransactions", None, &fees, at);
        let interest = (rng.gen_range(500..5_000) as f64) / 100.0;
        let credit = json!({"Type": "RECEIVE", "Contact": {"ContactID": bank}, "BankAccount": {"Code": "091"},
            "Date": day.format("%Y-%m-%d").to_string(), "LineAmountTypes": "NoTax", "Reference": "Interest",
            "LineItems": [{"Description": "Interest earned", "UnitAmount": interest, "AccountCode": "270", "TaxType": "NONE"}]});
        create(ledger, "BankTransactions", None, &credit, at);
        if month % 4 == 0 {
            let sweep = json!({"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "091"},
                "Amount": 1000.0, "Date": day.format("%Y-%m-%d").to_string(), "Reference": "Savings sweep"});
            create(ledger, "BankTransfers", None, &sweep, at);
        }
    }
}

/// Quotes to customers and purchase orders to suppliers, in every status.
fn orders(
    ledger: &mut Ledger,
    rng: &mut SmallRng,
    parties: &(Vec<String>, Vec<String>),
    now: DateTime<Utc>,
) {
    if parties.0.is_empty() || parties.1.is_empty() {
        return;
    }
    let today = now.date_naive();
    let quote_steps: &[&[&str]] = &[
        &["DRAFT"],
        &["SENT"],
        &["SENT", "ACCEPTED"],
        &["SENT", "DECLINED"],
        &["SENT", "ACCEPTED", "INVOICED"],
    ];
    let order_steps: &[&[&str]] = &[
        &["DRAFT"],
        &["SUBMITTED"],
        &["AUTHORISED"],
        &["AUTHORISED", "BILLED"],
    ];
    for (collection, steps, parties, count) in [
        ("Quotes", quote_steps, &parties.0, 15),
        ("PurchaseOrders", order_steps, &parties.1, 10),
    ] {
        for i in 0..count {
            let day = today - Duration::days(rng.gen_range(0..120));
            let at = Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap_or_default());
            let contact = &parties[rng.gen_range(0..parties.len())];
            let path = steps[i % steps.len()];
            let (code, _, sale, purchase) = ITEMS[rng.gen_range(0..ITEMS.len())];
            let line = if collection == "Quotes" {
                json!({"ItemCode": code, "Quantity": rng.gen_range(1..=10)})
            } else {
                json!({"Description": "Stock order", "Quantity": rng.gen_range(5..=50), "UnitAmount": if purchase > 0.0 { purchase } else { sale / 2.0 }, "AccountCode": "300", "TaxType": "INPUT2"})
            };
            let mut input = json!({"Contact": {"ContactID": contact}, "Date": day.format("%Y-%m-%d").to_string(),
                "Status": path[0], "LineItems": [line]});
            if collection == "Quotes" {
                input["ExpiryDate"] =
                    json!((day + Duration::days(30)).format("%Y-%m-%d").to_string());
                input["Title"] = json!("Services proposal");
            } else {
                input["DeliveryDate"] =
                    json!((day + Duration::days(14)).format("%Y-%m-%d").to_string());
            }
            let Some(mut record) = create(ledger, collection, None, &input, at) else {
                continue;
            };
            for status in &path[1..] {
                match create(
                    ledger,
                    collection,
                    Some(&record),
                    &json!({"Status": status}),
                    at,
                ) {
                    Some(next) => record = next,
                    None => break,
                }
            }
        }
    }
}

/// Builds one organisation's demo books.
pub fn demo_ledger(spec: &SeedSpec<'_>, now: DateTime<Utc>) -> Ledger {
    let mut ledger = Ledger::new(spec.tenant_id, organisation(spec, now));
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    settings(&mut ledger, spec, now);
    let parties = contacts(&mut ledger, &mut rng, spec.contacts, now);
    documents(&mut ledger, &mut rng, spec.invoices, &parties, now);
    bank_lines(&mut ledger, &mut rng, &parties, now);
    orders(&mut ledger, &mut rng, &parties, now);
    crate::accounting::journals::rebuild(&mut ledger);
    ledger
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(invoices: usize) -> SeedSpec<'static> {
        SeedSpec {
            name: "Test Ltd",
            short_code: "!T",
            tenant_id: crate::state::new_uuid(),
            contacts: 30,
            invoices,
            seed: 7,
        }
    }

    #[test]
    fn seeded_books_have_every_invoice_status_and_paid_invoices_owe_nothing() {
        let ledger = demo_ledger(&spec(400), Utc::now());
        for status in [
            "DRAFT",
            "SUBMITTED",
            "AUTHORISED",
            "PAID",
            "VOIDED",
            "DELETED",
        ] {
            assert!(
                ledger
                    .records("Invoices")
                    .any(|i| get_str(i, "Status") == Some(status)),
                "{status}"
            );
        }
        for invoice in ledger
            .records("Invoices")
            .filter(|i| get_str(i, "Status") == Some("PAID"))
        {
            assert_eq!(invoice["AmountDue"].as_f64(), Some(0.0));
        }
        assert!(ledger.records("Payments").count() > 100);
        assert!(ledger
            .records("Accounts")
            .any(|a| get_str(a, "Code") == Some("200")));
    }

    #[test]
    fn the_same_seed_gives_the_same_books() {
        let now = Utc::now();
        let totals = |l: &Ledger| {
            l.records("Invoices")
                .map(|i| i["Total"].as_f64().unwrap_or(0.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            totals(&demo_ledger(&spec(50), now)),
            totals(&demo_ledger(&spec(50), now))
        );
    }
}
