//! PDF renditions of invoices, credit notes, quotes and purchase orders (`Accept:
//! application/pdf` or `…/{id}/pdf`): a one-page A4 document with the number, contact, dates,
//! lines and totals, written by hand as PDF 1.4 with the built-in Helvetica font.

use serde_json::Value;

use super::model::{get, get_path, get_str, number, parse_day};

fn escape(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

/// The text lines of a document.
fn lines(title: &str, record: &Value, number_field: &str) -> Vec<(u32, String)> {
    let text = |k: &str| get_str(record, k).unwrap_or_default().to_owned();
    let day = |k: &str| {
        get(record, k)
            .and_then(parse_day)
            .map(|d| d.format("%-d %B %Y").to_string())
            .unwrap_or_default()
    };
    let amount = |k: &str| format!("{:.2}", get(record, k).and_then(number).unwrap_or(0.0));
    let mut out = vec![
        (20, format!("{title} {}", text(number_field))),
        (11, String::new()),
        (
            11,
            format!(
                "To: {}",
                get_path(record, &["Contact".into(), "Name".into()])
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
        ),
        (11, format!("Date: {}", day("Date"))),
    ];
    for (label, key) in [
        ("Due", "DueDate"),
        ("Expires", "ExpiryDate"),
        ("Delivery", "DeliveryDate"),
    ] {
        if get(record, key).is_some() {
            out.push((11, format!("{label}: {}", day(key))));
        }
    }
    if !text("Reference").is_empty() {
        out.push((11, format!("Reference: {}", text("Reference"))));
    }
    out.push((11, format!("Status: {}", text("Status"))));
    out.push((11, String::new()));
    for line in get(record, "LineItems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push((
            10,
            format!(
                "{}  x{}  @ {:.2}  = {:.2}",
                get_str(line, "Description").unwrap_or("Item"),
                get(line, "Quantity").and_then(number).unwrap_or(1.0),
                get(line, "UnitAmount").and_then(number).unwrap_or(0.0),
                get(line, "LineAmount").and_then(number).unwrap_or(0.0),
            ),
        ));
    }
    out.push((11, String::new()));
    out.push((11, format!("Subtotal: {}", amount("SubTotal"))));
    out.push((11, format!("Tax: {}", amount("TotalTax"))));
    out.push((
        13,
        format!("Total {}: {}", text("CurrencyCode"), amount("Total")),
    ));
    if get(record, "AmountDue").is_some() {
        out.push((13, format!("Amount due: {}", amount("AmountDue"))));
    }
    out
}

/// Renders a document record as a PDF file.
pub fn render(title: &str, record: &Value, number_field: &str) -> Vec<u8> {
    let mut content = String::from("BT\n50 790 Td\n");
    for (size, text) in lines(title, record, number_field) {
        content.push_str(&format!(
            "/F1 {size} Tf\n0 -{} Td\n({}) Tj\n",
            size + 6,
            escape(&text)
        ));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        pdf.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pdf_is_well_formed_and_names_the_document() {
        let pdf = render(
            "Tax Invoice",
            &json!({"InvoiceNumber": "INV-0007", "Contact": {"Name": "Ridge (NZ)"}, "Total": 230.0}),
            "InvoiceNumber",
        );
        let text = String::from_utf8(pdf).expect("ascii");
        assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
        assert!(text.contains("(Tax Invoice INV-0007) Tj"));
        assert!(text.contains("Ridge \\(NZ\\)"));
        let xref: usize = text
            .split("startxref\n")
            .nth(1)
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(
            text[xref..].starts_with("xref"),
            "startxref points at the xref table"
        );
    }
}
