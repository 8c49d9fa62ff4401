//! The customer-facing online invoice page that `GET /Invoices/{id}/OnlineInvoice` links to
//! (`/online-invoice/{id}`): what a customer sees when they open the link Xero emails them.
//! Read-only; it finds the invoice in whichever organisation holds it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::accounting::model::{get as field, get_str, number, parse_day};
use crate::html::{error_page, escape, page};
use crate::state::{lock, Sandbox};

pub fn router() -> Router<Arc<Sandbox>> {
    Router::new().route("/online-invoice/{id}", get(online_invoice))
}

async fn online_invoice(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>) -> Response {
    let orgs: Vec<_> = lock(&sandbox.world)
        .orgs
        .iter()
        .map(|o| (o.name.clone(), o.ledger.clone()))
        .collect();
    for (org, ledger) in orgs {
        let invoice = lock(&ledger).get("Invoices", &id).cloned();
        if let Some(invoice) = invoice.filter(|i| get_str(i, "Type") == Some("ACCREC")) {
            return Html(render(&org, &invoice)).into_response();
        }
    }
    error_page(
        StatusCode::NOT_FOUND,
        "Invoice not found",
        "This invoice link is not valid. Ask the sender for a new one.",
    )
}

fn render(org: &str, invoice: &Value) -> String {
    let money = |k: &str| format!("{:.2}", field(invoice, k).and_then(number).unwrap_or(0.0));
    let day = |k: &str| {
        field(invoice, k)
            .and_then(parse_day)
            .map(|d| d.format("%-d %B %Y").to_string())
            .unwrap_or_default()
    };
    let lines: String = field(invoice, "LineItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|line| {
            let amount = |k: &str| field(line, k).and_then(number).unwrap_or(0.0);
            format!(
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                escape(get_str(line, "Description").unwrap_or("Item")),
                amount("Quantity"),
                amount("UnitAmount"),
                amount("LineAmount")
            )
        })
        .collect();
    let contact = field(invoice, "Contact")
        .and_then(|c| get_str(c, "Name"))
        .unwrap_or_default();
    let number = get_str(invoice, "InvoiceNumber").unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><p class=\"muted\">{org}</p><h1 id=\"invoice-number\">Invoice {number}</h1>\
         <p>To <strong>{contact}</strong> · issued {issued} · due {due} · <span id=\"invoice-status\">{status}</span></p>\
         <table><thead><tr><th>Description</th><th>Quantity</th><th>Unit price</th><th>Amount</th></tr></thead><tbody>{lines}</tbody></table>\
         <p style=\"text-align:right\">Subtotal {sub}<br>Tax {tax}<br><strong>Total {currency} {total}</strong><br>\
         <strong id=\"amount-due\">Amount due {currency} {due_amount}</strong></p></div>",
        org = escape(org),
        number = escape(number),
        contact = escape(contact),
        issued = day("Date"),
        due = day("DueDate"),
        status = escape(get_str(invoice, "Status").unwrap_or_default()),
        sub = money("SubTotal"),
        tax = money("TotalTax"),
        total = money("Total"),
        due_amount = money("AmountDue"),
        currency = escape(get_str(invoice, "CurrencyCode").unwrap_or_default()),
    );
    page(&format!("Invoice {number}"), false, &body)
}
