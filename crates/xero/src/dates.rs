//! Xero's dates: .NET JSON dates (`/Date(1439434356790)/`, `/Date(1419937200000+0000)/`) in
//! responses become RFC 3339; dates given to Ledgerflow as `YYYY-MM-DD` or RFC 3339 become what
//! Xero accepts.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// Parses `/Date(ms)/` or `/Date(ms+hhmm)/` into a date-time (UTC unless an offset is given).
pub fn parse_dotnet(s: &str) -> Option<DateTime<FixedOffset>> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let (ms, offset) = match inner.rfind(['+', '-']).filter(|&i| i > 0) {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let ms: i64 = ms.parse().ok()?;
    let offset = match offset {
        Some(o) if o.len() == 5 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let h: i32 = o[1..3].parse().ok()?;
            let m: i32 = o[3..5].parse().ok()?;
            FixedOffset::east_opt(sign * (h * 3600 + m * 60))?
        }
        Some(_) => return None,
        None => FixedOffset::east_opt(0)?,
    };
    let utc = Utc.timestamp_millis_opt(ms).single()?;
    Some(utc.with_timezone(&offset))
}

/// Rewrites every .NET date string in a JSON value to RFC 3339, in place.
pub fn normalise(v: &mut Value) {
    match v {
        Value::String(s) if s.starts_with("/Date(") => {
            if let Some(d) = parse_dotnet(s) {
                *s = d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        Value::Object(map) => map.values_mut().for_each(normalise),
        _ => {}
    }
}

/// A date a person gave (`2026-03-31`, `2026-03-31T10:00:00Z`, `2026-03-31T10:00:00+13:00`) in the
/// form Xero takes in bodies: `YYYY-MM-DD` for dates, `YYYY-MM-DDTHH:MM:SS` for date-times (in
/// the offset given; Xero has no zone in these fields).
pub fn to_xero(input: &str) -> Result<String, String> {
    let s = input.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if let Some(d) = parse_dotnet(s) {
        return Ok(d.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    Err(format!(
        "'{input}' is not a date: use YYYY-MM-DD (2026-03-31) or RFC 3339 (2026-03-31T10:00:00Z)"
    ))
}

/// The `DateTime(y,m,d)` form Xero's `where` filters use.
pub fn to_where_literal(input: &str) -> Result<String, String> {
    let s = to_xero(input)?;
    let d = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").map_err(|e| e.to_string())?;
    Ok(format!("DateTime({})", d.format("%Y,%m,%d")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotnet_dates_become_rfc3339_everywhere_in_a_document() {
        let mut v = json!({"Invoices": [{"Date": "/Date(1439434356790)/", "Due": "/Date(1419937200000+0000)/",
            "Local": "/Date(1419937200000+1300)/", "Name": "Date(not)", "Lines": [{"X": "/Date(0)/"}]}]});
        normalise(&mut v);
        let inv = &v["Invoices"][0];
        assert_eq!(inv["Date"], "2015-08-13T02:52:36Z");
        assert_eq!(inv["Due"], "2014-12-30T11:00:00Z");
        assert_eq!(inv["Local"], "2014-12-31T00:00:00+13:00");
        assert_eq!(inv["Name"], "Date(not)");
        assert_eq!(inv["Lines"][0]["X"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn inputs_accept_dates_and_rfc3339() {
        assert_eq!(to_xero("2026-03-31").unwrap(), "2026-03-31");
        assert_eq!(
            to_xero("2026-03-31T10:00:00Z").unwrap(),
            "2026-03-31T10:00:00"
        );
        assert_eq!(
            to_xero("2026-03-31T10:00:00+13:00").unwrap(),
            "2026-03-31T10:00:00"
        );
        assert!(to_xero("31/03/2026").unwrap_err().contains("YYYY-MM-DD"));
        assert_eq!(
            to_where_literal("2026-01-05").unwrap(),
            "DateTime(2026,01,05)"
        );
    }
}
