//! Reports computed from the ledger in Xero's report shape (`Reports[0].Rows` of `Header`,
//! `Section`, `Row` and `SummaryRow`): Profit and Loss, Balance Sheet, Trial Balance, Bank
//! Summary, Executive Summary and Aged Receivables/Payables by contact, on the accrual basis. The postings behind
//! them come from `journals`.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use super::journals;
use super::ledger::Ledger;
use super::model::{get, get_str, money, ms_date, number, parse_day};
use super::Params;
use crate::problem::Problem;

const RETAINED_EARNINGS: &str = "960";

/// One journal line: account code, date, amount (debit positive).
struct Posting {
    code: String,
    day: NaiveDate,
    amount: f64,
}

fn postings(ledger: &Ledger) -> Vec<Posting> {
    journals::postings(ledger)
        .into_iter()
        .map(|(code, day, amount)| Posting { code, day, amount })
        .collect()
}

/// Net movement per account code over `[from, to]` (debit positive).
fn balances(postings: &[Posting], from: Option<NaiveDate>, to: NaiveDate) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for p in postings {
        if p.day <= to && from.is_none_or(|f| p.day >= f) {
            *out.entry(p.code.clone()).or_default() += p.amount;
        }
    }
    out
}

fn day_param(params: &Params, name: &str) -> Result<Option<NaiveDate>, Problem> {
    params
        .get(name)
        .map(|v| {
            NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
                Problem::BadRequest(format!("{name} must be a date (YYYY-MM-DD), not '{v}'"))
            })
        })
        .transpose()
}

fn amount(value: f64) -> String {
    format!("{:.2}", money(value) + 0.0)
}

fn cell(value: &str) -> Value {
    json!({"Value": value})
}

fn account_cell(value: &str, account_id: &Value) -> Value {
    json!({"Value": value, "Attributes": [{"Value": account_id, "Id": "account"}]})
}

fn header(cells: &[&str]) -> Value {
    json!({"RowType": "Header", "Cells": cells.iter().map(|c| cell(c)).collect::<Vec<_>>()})
}

fn summary(cells: Vec<String>) -> Value {
    json!({"RowType": "SummaryRow", "Cells": cells.iter().map(|c| cell(c)).collect::<Vec<_>>()})
}

fn section(title: &str, rows: Vec<Value>) -> Value {
    json!({"RowType": "Section", "Title": title, "Rows": rows})
}

fn single_row(label: &str, value: f64) -> Value {
    section(
        "",
        vec![json!({"RowType": "Row", "Cells": [cell(label), cell(&amount(value))]})],
    )
}

/// Accounts of the given types with a non-zero value (`sign` turns debits into the report's
/// natural sign), as rows plus their total.
fn account_rows(
    ledger: &Ledger,
    types: &[&str],
    values: &HashMap<String, f64>,
    sign: f64,
) -> (Vec<Value>, f64) {
    let mut accounts: Vec<&Value> = ledger
        .records("Accounts")
        .filter(|a| get_str(a, "Type").is_some_and(|t| types.contains(&t)))
        .collect();
    accounts.sort_by_key(|a| get_str(a, "Code").unwrap_or_default().to_owned());
    let mut rows = Vec::new();
    let mut total = 0.0;
    for account in accounts {
        let code = get_str(account, "Code").unwrap_or_default();
        let value = sign * values.get(code).copied().unwrap_or(0.0);
        if money(value) == 0.0 {
            continue;
        }
        total += value;
        let id = get(account, "AccountID").cloned().unwrap_or(Value::Null);
        let name = get_str(account, "Name").unwrap_or_default();
        rows.push(json!({"RowType": "Row", "Cells": [account_cell(name, &id), account_cell(&amount(value), &id)]}));
    }
    (rows, total)
}

fn titled_section(
    ledger: &Ledger,
    title: &str,
    types: &[&str],
    values: &HashMap<String, f64>,
    sign: f64,
    total_label: &str,
) -> (Option<Value>, f64) {
    let (mut rows, total) = account_rows(ledger, types, values, sign);
    if rows.is_empty() {
        return (None, 0.0);
    }
    rows.push(summary(vec![total_label.to_owned(), amount(total)]));
    (Some(section(title, rows)), total)
}

const INCOME: &[&str] = &["REVENUE", "SALES"];
const OTHER_INCOME: &[&str] = &["OTHERINCOME"];
const COST_OF_SALES: &[&str] = &["DIRECTCOSTS"];
const EXPENSES: &[&str] = &["EXPENSE", "OVERHEADS", "DEPRECIATN"];
const PROFIT_AND_LOSS_TYPES: &[&[&str]] = &[INCOME, OTHER_INCOME, COST_OF_SALES, EXPENSES];

/// Net profit over a period.
fn net_profit(ledger: &Ledger, values: &HashMap<String, f64>) -> f64 {
    let sum = |types: &[&str], sign: f64| account_rows(ledger, types, values, sign).1;
    sum(INCOME, -1.0) + sum(OTHER_INCOME, -1.0) - sum(COST_OF_SALES, 1.0) - sum(EXPENSES, 1.0)
}

fn report(
    id: &str,
    name: &str,
    titles: Vec<String>,
    date: NaiveDate,
    rows: Vec<Value>,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "ReportID": id,
        "ReportName": name,
        "ReportType": id,
        "ReportTitles": titles,
        "ReportDate": date.format("%-d %B %Y").to_string(),
        "UpdatedDateUTC": ms_date(now),
        "Fields": [],
        "Rows": rows,
    })
}

fn org_name(ledger: &Ledger) -> String {
    get_str(&ledger.organisation, "Name")
        .unwrap_or_default()
        .to_owned()
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn month_end(day: NaiveDate) -> NaiveDate {
    let next = if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    };
    next.map(|n| n - Duration::days(1)).unwrap_or(day)
}

/// Start of the financial year containing `day` (year end from the organisation settings).
fn financial_year_start(ledger: &Ledger, day: NaiveDate) -> NaiveDate {
    let end_month = get(&ledger.organisation, "FinancialYearEndMonth")
        .and_then(number)
        .unwrap_or(3.0) as u32;
    let start_month = end_month % 12 + 1;
    let year = if day.month() >= start_month {
        day.year()
    } else {
        day.year() - 1
    };
    NaiveDate::from_ymd_opt(year, start_month, 1).unwrap_or(day)
}

fn profit_and_loss(ledger: &Ledger, params: &Params, now: DateTime<Utc>) -> Result<Value, Problem> {
    let today = now.date_naive();
    let from = day_param(params, "fromDate")?.unwrap_or_else(|| month_start(today));
    let to = day_param(params, "toDate")?.unwrap_or_else(|| month_end(from));
    if to < from {
        return Err(Problem::BadRequest(
            "toDate must not be before fromDate".into(),
        ));
    }
    let values = balances(&postings(ledger), Some(from), to);
    let mut rows = vec![header(&["", &to.format("%-d %b %Y").to_string()])];
    let (income, total_income) =
        titled_section(ledger, "Income", INCOME, &values, -1.0, "Total Income");
    rows.extend(income);
    let (cost, total_cost) = titled_section(
        ledger,
        "Less Cost of Sales",
        COST_OF_SALES,
        &values,
        1.0,
        "Total Cost of Sales",
    );
    rows.extend(cost);
    rows.push(single_row("Gross Profit", total_income - total_cost));
    let (other, _) = titled_section(
        ledger,
        "Plus Other Income",
        OTHER_INCOME,
        &values,
        -1.0,
        "Total Other Income",
    );
    rows.extend(other);
    let (expenses, _) = titled_section(
        ledger,
        "Less Operating Expenses",
        EXPENSES,
        &values,
        1.0,
        "Total Operating Expenses",
    );
    rows.extend(expenses);
    rows.push(single_row("Net Profit", net_profit(ledger, &values)));
    let titles = vec![
        "Profit and Loss".to_owned(),
        org_name(ledger),
        format!(
            "For the period {} to {}",
            from.format("%-d %B %Y"),
            to.format("%-d %B %Y")
        ),
    ];
    Ok(report(
        "ProfitAndLoss",
        "Profit and Loss",
        titles,
        today,
        rows,
        now,
    ))
}

fn balance_sheet(ledger: &Ledger, params: &Params, now: DateTime<Utc>) -> Result<Value, Problem> {
    let today = now.date_naive();
    let date = day_param(params, "date")?.unwrap_or(today);
    let all = postings(ledger);
    let values = balances(&all, None, date);
    let year_start = financial_year_start(ledger, date);
    let current_year = net_profit(ledger, &balances(&all, Some(year_start), date));
    let earlier = net_profit(
        ledger,
        &balances(&all, None, year_start - Duration::days(1)),
    );

    let mut rows = vec![header(&["", &date.format("%-d %b %Y").to_string()])];
    rows.push(section("Assets", vec![]));
    let mut total_assets = 0.0;
    for (title, types, label) in [
        ("Bank", &["BANK"][..], "Total Bank"),
        (
            "Current Assets",
            &["CURRENT", "PREPAYMENT", "INVENTORY"][..],
            "Total Current Assets",
        ),
        ("Fixed Assets", &["FIXED"][..], "Total Fixed Assets"),
        (
            "Non-current Assets",
            &["NONCURRENT"][..],
            "Total Non-current Assets",
        ),
    ] {
        let (s, total) = titled_section(ledger, title, types, &values, 1.0, label);
        rows.extend(s);
        total_assets += total;
    }
    rows.push(single_row("Total Assets", total_assets));
    rows.push(section("Liabilities", vec![]));
    let mut total_liabilities = 0.0;
    for (title, types, label) in [
        (
            "Current Liabilities",
            &["CURRLIAB"][..],
            "Total Current Liabilities",
        ),
        (
            "Non-current Liabilities",
            &["TERMLIAB", "LIABILITY"][..],
            "Total Non-current Liabilities",
        ),
    ] {
        let (s, total) = titled_section(ledger, title, types, &values, -1.0, label);
        rows.extend(s);
        total_liabilities += total;
    }
    rows.push(single_row("Total Liabilities", total_liabilities));
    rows.push(single_row("Net Assets", total_assets - total_liabilities));

    let (mut equity_rows, mut total_equity) = account_rows(ledger, &["EQUITY"], &values, -1.0);
    equity_rows.retain(|r| r["Cells"][0]["Value"] != "Retained Earnings");
    let retained = -values.get(RETAINED_EARNINGS).copied().unwrap_or(0.0);
    total_equity -= retained;
    let retained_total = retained + earlier;
    equity_rows.push(json!({"RowType": "Row", "Cells": [cell("Current Year Earnings"), cell(&amount(current_year))]}));
    equity_rows.push(json!({"RowType": "Row", "Cells": [cell("Retained Earnings"), cell(&amount(retained_total))]}));
    total_equity += current_year + retained_total;
    equity_rows.push(summary(vec![
        "Total Equity".to_owned(),
        amount(total_equity),
    ]));
    rows.push(section("Equity", equity_rows));
    let titles = vec![
        "Balance Sheet".to_owned(),
        org_name(ledger),
        format!("As at {}", date.format("%-d %B %Y")),
    ];
    Ok(report(
        "BalanceSheet",
        "Balance Sheet",
        titles,
        today,
        rows,
        now,
    ))
}

fn trial_balance(ledger: &Ledger, params: &Params, now: DateTime<Utc>) -> Result<Value, Problem> {
    let today = now.date_naive();
    let date = day_param(params, "date")?.unwrap_or(today);
    let all = postings(ledger);
    let year_start = financial_year_start(ledger, date);
    let mut cumulative = balances(&all, None, date);
    let year = balances(&all, Some(year_start), date);
    // Profit of earlier years sits in Retained Earnings, as Xero's year-end roll-over does.
    let profit_and_loss_codes: Vec<&str> = ledger
        .records("Accounts")
        .filter(|a| {
            get_str(a, "Type")
                .is_some_and(|t| PROFIT_AND_LOSS_TYPES.iter().any(|types| types.contains(&t)))
        })
        .filter_map(|a| get_str(a, "Code"))
        .collect();
    let earlier = balances(&all, None, year_start - Duration::days(1));
    let earlier_profit: f64 = profit_and_loss_codes
        .iter()
        .filter_map(|c| earlier.get(*c))
        .sum();
    *cumulative.entry(RETAINED_EARNINGS.to_owned()).or_default() += earlier_profit;
    let mut rows = vec![header(&[
        "Account",
        "Debit",
        "Credit",
        "YTD Debit",
        "YTD Credit",
    ])];
    let (mut debit_total, mut credit_total) = (0.0, 0.0);
    let classes: [(&str, &[&str]); 5] = [
        ("Revenue", &["REVENUE", "SALES", "OTHERINCOME"]),
        (
            "Expenses",
            &["DIRECTCOSTS", "EXPENSE", "OVERHEADS", "DEPRECIATN"],
        ),
        (
            "Assets",
            &[
                "BANK",
                "CURRENT",
                "PREPAYMENT",
                "INVENTORY",
                "FIXED",
                "NONCURRENT",
            ],
        ),
        ("Liabilities", &["CURRLIAB", "TERMLIAB", "LIABILITY"]),
        ("Equity", &["EQUITY"]),
    ];
    for (title, types) in classes {
        let profit_and_loss = PROFIT_AND_LOSS_TYPES.iter().any(|t| t.contains(&types[0]));
        let source = if profit_and_loss { &year } else { &cumulative };
        let mut accounts: Vec<&Value> = ledger
            .records("Accounts")
            .filter(|a| get_str(a, "Type").is_some_and(|t| types.contains(&t)))
            .collect();
        accounts.sort_by_key(|a| get_str(a, "Code").unwrap_or_default().to_owned());
        let mut section_rows = Vec::new();
        for account in accounts {
            let code = get_str(account, "Code").unwrap_or_default();
            let value = source.get(code).copied().unwrap_or(0.0);
            if money(value) == 0.0 {
                continue;
            }
            let (debit, credit) = if value > 0.0 {
                (value, 0.0)
            } else {
                (0.0, -value)
            };
            debit_total += debit;
            credit_total += credit;
            let id = get(account, "AccountID").cloned().unwrap_or(Value::Null);
            let label = format!("{} ({code})", get_str(account, "Name").unwrap_or_default());
            let show = |v: f64| if v == 0.0 { String::new() } else { amount(v) };
            section_rows.push(json!({"RowType": "Row", "Cells": [
                account_cell(&label, &id), account_cell(&show(debit), &id), account_cell(&show(credit), &id),
                account_cell(&show(debit), &id), account_cell(&show(credit), &id)]}));
        }
        rows.push(section(title, section_rows));
    }
    rows.push(section(
        "",
        vec![summary(vec![
            "Total".to_owned(),
            amount(debit_total),
            amount(credit_total),
            amount(debit_total),
            amount(credit_total),
        ])],
    ));
    let titles = vec![
        "Trial Balance".to_owned(),
        org_name(ledger),
        format!("As at {}", date.format("%-d %B %Y")),
    ];
    Ok(report(
        "TrialBalance",
        "Trial Balance",
        titles,
        today,
        rows,
        now,
    ))
}

fn bank_summary(ledger: &Ledger, params: &Params, now: DateTime<Utc>) -> Result<Value, Problem> {
    let today = now.date_naive();
    let from = day_param(params, "fromDate")?.unwrap_or_else(|| month_start(today));
    let to = day_param(params, "toDate")?.unwrap_or_else(|| month_end(from));
    let all = postings(ledger);
    let mut rows = vec![header(&[
        "Bank Accounts",
        "Opening Balance",
        "Cash Received",
        "Cash Spent",
        "Closing Balance",
    ])];
    let mut accounts: Vec<&Value> = ledger
        .records("Accounts")
        .filter(|a| get_str(a, "Type") == Some("BANK"))
        .collect();
    accounts.sort_by_key(|a| get_str(a, "Code").unwrap_or_default().to_owned());
    let mut totals = [0.0; 4];
    let mut section_rows = Vec::new();
    for account in accounts {
        let code = get_str(account, "Code").unwrap_or_default();
        let mine = all.iter().filter(|p| p.code == code);
        let opening: f64 = mine
            .clone()
            .filter(|p| p.day < from)
            .map(|p| p.amount)
            .sum();
        let within = mine.filter(|p| p.day >= from && p.day <= to);
        let received: f64 = within
            .clone()
            .filter(|p| p.amount > 0.0)
            .map(|p| p.amount)
            .sum();
        let spent: f64 = -within
            .filter(|p| p.amount < 0.0)
            .map(|p| p.amount)
            .sum::<f64>();
        let closing = opening + received - spent;
        for (total, value) in totals.iter_mut().zip([opening, received, spent, closing]) {
            *total += value;
        }
        let id = get(account, "AccountID").cloned().unwrap_or(Value::Null);
        section_rows.push(json!({"RowType": "Row", "Cells": [
            account_cell(get_str(account, "Name").unwrap_or_default(), &id), account_cell(&amount(opening), &id),
            account_cell(&amount(received), &id), account_cell(&amount(spent), &id), account_cell(&amount(closing), &id)]}));
    }
    section_rows.push(summary(
        std::iter::once("Total".to_owned())
            .chain(totals.iter().map(|t| amount(*t)))
            .collect(),
    ));
    rows.push(section("", section_rows));
    let titles = vec![
        "Bank Summary".to_owned(),
        org_name(ledger),
        format!(
            "From {} to {}",
            from.format("%-d %B %Y"),
            to.format("%-d %B %Y")
        ),
    ];
    Ok(report(
        "BankSummary",
        "Bank Summary",
        titles,
        today,
        rows,
        now,
    ))
}

/// Outstanding invoices (or bills) of one contact, aged by due date.
fn aged_by_contact(
    ledger: &Ledger,
    params: &Params,
    now: DateTime<Utc>,
    sales: bool,
) -> Result<Value, Problem> {
    let today = now.date_naive();
    let contact_id = params
        .get("contactId")
        .ok_or_else(|| Problem::BadRequest("contactId is required for aged reports".into()))?;
    let date = day_param(params, "date")?.unwrap_or(today);
    let contact = ledger
        .get("Contacts", contact_id)
        .ok_or(Problem::NotFound)?;
    let kind = if sales { "ACCREC" } else { "ACCPAY" };
    let mut rows = vec![header(&[
        "Date",
        "Reference",
        "Due Date",
        "",
        "Total",
        "Paid",
        "Credited",
        "Due",
    ])];
    let mut section_rows = Vec::new();
    let mut totals = [0.0; 4];
    let mut invoices: Vec<&Value> = ledger
        .records("Invoices")
        .filter(|i| get_str(i, "Type") == Some(kind) && get_str(i, "Status") == Some("AUTHORISED"))
        .filter(|i| {
            get(i, "Contact")
                .and_then(|c| get_str(c, "ContactID"))
                .is_some_and(|c| c.eq_ignore_ascii_case(contact_id))
        })
        .filter(|i| {
            get(i, "Date")
                .and_then(parse_day)
                .is_some_and(|d| d <= date)
        })
        .collect();
    invoices.sort_by_key(|i| get(i, "DueDate").and_then(parse_day));
    for invoice in invoices {
        let value = |k: &str| get(invoice, k).and_then(number).unwrap_or(0.0);
        let day = |k: &str| {
            get(invoice, k)
                .and_then(parse_day)
                .map(|d| d.format("%-d %b %Y").to_string())
                .unwrap_or_default()
        };
        let values = [
            value("Total"),
            value("AmountPaid"),
            value("AmountCredited"),
            value("AmountDue"),
        ];
        for (total, v) in totals.iter_mut().zip(values) {
            *total += v;
        }
        let id = get(invoice, "InvoiceID").cloned().unwrap_or(Value::Null);
        let attrs =
            |text: &str| json!({"Value": text, "Attributes": [{"Value": id, "Id": "invoiceID"}]});
        let overdue = get(invoice, "DueDate")
            .and_then(parse_day)
            .map(|d| (date - d).num_days())
            .filter(|d| *d > 0);
        section_rows.push(json!({"RowType": "Row", "Cells": [
            attrs(&day("Date")), attrs(get_str(invoice, "InvoiceNumber").unwrap_or_default()), attrs(&day("DueDate")),
            attrs(&overdue.map(|d| format!("{d} days overdue")).unwrap_or_default()),
            attrs(&amount(values[0])), attrs(&amount(values[1])), attrs(&amount(values[2])), attrs(&amount(values[3]))]}));
    }
    let mut summary_cells = vec![
        "Total".to_owned(),
        String::new(),
        String::new(),
        String::new(),
    ];
    summary_cells.extend(totals.iter().map(|t| amount(*t)));
    section_rows.push(summary(summary_cells));
    rows.push(section("", section_rows));
    let (id, name) = if sales {
        ("AgedReceivablesByContact", "Aged Receivables By Contact")
    } else {
        ("AgedPayablesByContact", "Aged Payables By Contact")
    };
    let titles = vec![
        if sales { "Invoices" } else { "Bills" }.to_owned(),
        get_str(contact, "Name").unwrap_or_default().to_owned(),
        format!("As at {}", date.format("%-d %B %Y")),
        org_name(ledger),
    ];
    Ok(report(id, name, titles, today, rows, now))
}

/// The figures of one month for the executive summary.
struct MonthFigures {
    received: f64,
    spent: f64,
    closing_bank: f64,
    income: f64,
    direct_costs: f64,
    other_income: f64,
    expenses: f64,
    debtors: f64,
    creditors: f64,
    net_assets: f64,
    invoices: usize,
    invoiced: f64,
}

fn month_figures(ledger: &Ledger, all: &[Posting], month: NaiveDate) -> MonthFigures {
    let (from, to) = (month_start(month), month_end(month));
    let movement = balances(all, Some(from), to);
    let cumulative = balances(all, None, to);
    let bank_codes: Vec<&str> = ledger
        .records("Accounts")
        .filter(|a| get_str(a, "Type") == Some("BANK"))
        .filter_map(|a| get_str(a, "Code"))
        .collect();
    let bank = all
        .iter()
        .filter(|p| bank_codes.contains(&p.code.as_str()) && p.day >= from && p.day <= to);
    let sum = |types: &[&str], values: &HashMap<String, f64>, sign: f64| {
        account_rows(ledger, types, values, sign).1
    };
    let assets = sum(
        &[
            "BANK",
            "CURRENT",
            "PREPAYMENT",
            "INVENTORY",
            "FIXED",
            "NONCURRENT",
        ],
        &cumulative,
        1.0,
    );
    let liabilities = sum(&["CURRLIAB", "TERMLIAB", "LIABILITY"], &cumulative, -1.0);
    let sales: Vec<&Value> = ledger
        .records("Invoices")
        .filter(|i| {
            get_str(i, "Type") == Some("ACCREC")
                && matches!(get_str(i, "Status"), Some("AUTHORISED" | "PAID"))
        })
        .filter(|i| {
            get(i, "Date")
                .and_then(parse_day)
                .is_some_and(|d| d >= from && d <= to)
        })
        .collect();
    MonthFigures {
        received: bank
            .clone()
            .filter(|p| p.amount > 0.0)
            .map(|p| p.amount)
            .sum(),
        spent: -bank
            .filter(|p| p.amount < 0.0)
            .map(|p| p.amount)
            .sum::<f64>(),
        closing_bank: bank_codes.iter().filter_map(|c| cumulative.get(*c)).sum(),
        income: sum(INCOME, &movement, -1.0),
        direct_costs: sum(COST_OF_SALES, &movement, 1.0),
        other_income: sum(OTHER_INCOME, &movement, -1.0),
        expenses: sum(EXPENSES, &movement, 1.0),
        debtors: cumulative.get(journals::RECEIVABLE).copied().unwrap_or(0.0),
        creditors: -cumulative.get(journals::PAYABLE).copied().unwrap_or(0.0),
        net_assets: assets - liabilities,
        invoices: sales.len(),
        invoiced: sales
            .iter()
            .filter_map(|i| get(i, "Total").and_then(number))
            .sum(),
    }
}

fn executive_summary(
    ledger: &Ledger,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Value, Problem> {
    let today = now.date_naive();
    let date = day_param(params, "date")?.unwrap_or(today);
    let previous = month_start(date) - Duration::days(1);
    let all = postings(ledger);
    let (this, last) = (
        month_figures(ledger, &all, date),
        month_figures(ledger, &all, previous),
    );
    let variance = |a: f64, b: f64| {
        if b == 0.0 {
            String::new()
        } else {
            format!("{:.0}%", (a - b) / b.abs() * 100.0)
        }
    };
    let row = |label: &str, a: f64, b: f64| json!({"RowType": "Row", "Cells": [cell(label), cell(&amount(a)), cell(&amount(b)), cell(&variance(a, b))]});
    let count_row = |label: &str, a: usize, b: usize| json!({"RowType": "Row", "Cells": [cell(label), cell(&a.to_string()), cell(&b.to_string()), cell(&variance(a as f64, b as f64))]});
    let average = |f: &MonthFigures| {
        if f.invoices == 0 {
            0.0
        } else {
            f.invoiced / f.invoices as f64
        }
    };
    let gross = |f: &MonthFigures| f.income - f.direct_costs;
    let profit = |f: &MonthFigures| gross(f) + f.other_income - f.expenses;
    let rows = vec![
        header(&[
            "",
            &date.format("%b %Y").to_string(),
            &previous.format("%b %Y").to_string(),
            "Variance",
        ]),
        section(
            "Cash",
            vec![
                row("Cash received", this.received, last.received),
                row("Cash spent", this.spent, last.spent),
                row(
                    "Cash surplus (deficit)",
                    this.received - this.spent,
                    last.received - last.spent,
                ),
                row("Closing bank balance", this.closing_bank, last.closing_bank),
            ],
        ),
        section(
            "Profitability",
            vec![
                row("Income", this.income, last.income),
                row("Direct costs", this.direct_costs, last.direct_costs),
                row("Gross profit (loss)", gross(&this), gross(&last)),
                row("Other Income", this.other_income, last.other_income),
                row("Expenses", this.expenses, last.expenses),
                row("Profit (loss)", profit(&this), profit(&last)),
            ],
        ),
        section(
            "Balance Sheet",
            vec![
                row("Debtors", this.debtors, last.debtors),
                row("Creditors", this.creditors, last.creditors),
                row("Net assets", this.net_assets, last.net_assets),
            ],
        ),
        section(
            "Income",
            vec![
                count_row("Number of invoices issued", this.invoices, last.invoices),
                row("Average value of invoices", average(&this), average(&last)),
            ],
        ),
    ];
    let titles = vec![
        "Executive Summary".to_owned(),
        org_name(ledger),
        format!("For the month of {}", date.format("%B %Y")),
    ];
    Ok(report(
        "ExecutiveSummary",
        "Executive Summary",
        titles,
        today,
        rows,
        now,
    ))
}

/// Runs a report by name; `None` for reports the sandbox does not compute.
pub fn run(
    name: &str,
    ledger: &Ledger,
    params: &Params,
    now: DateTime<Utc>,
) -> Option<Result<Value, Problem>> {
    let result = match name {
        "ProfitAndLoss" => profit_and_loss(ledger, params, now),
        "BalanceSheet" => balance_sheet(ledger, params, now),
        "TrialBalance" => trial_balance(ledger, params, now),
        "BankSummary" => bank_summary(ledger, params, now),
        "ExecutiveSummary" => executive_summary(ledger, params, now),
        "AgedReceivablesByContact" => aged_by_contact(ledger, params, now, true),
        "AgedPayablesByContact" => aged_by_contact(ledger, params, now, false),
        _ => return None,
    };
    Some(result)
}
