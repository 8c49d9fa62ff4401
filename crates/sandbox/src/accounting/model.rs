//! Wire-format helpers shared by the Accounting API: .NET JSON dates (`/Date(ms+0000)/`),
//! money rounding, and case-insensitive access to request fields (Xero accepts any casing of
//! property names; responses always use Xero's canonical casing).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// `/Date(1439434356790+0000)/`, the form Xero returns for timestamps.
pub fn ms_date(at: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", at.timestamp_millis())
}

/// A calendar date as Xero returns it (`/Date(ms+0000)/` at midnight UTC).
pub fn ms_day(day: NaiveDate) -> String {
    ms_date(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default()))
}

/// `2026-12-03T00:00:00`, Xero's `DateString`.
pub fn date_string(day: NaiveDate) -> String {
    day.format("%Y-%m-%dT00:00:00").to_string()
}

/// Parses any date form Xero accepts or returns: `/Date(ms[+zone])/`, `YYYY-MM-DD`,
/// `YYYY-MM-DDTHH:MM:SS[.fff][Z|±hh:mm]`.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|t| t.strip_suffix(")/"))
    {
        let digits_end = inner
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '+' || *c == '-')
            .map(|(i, _)| i)
            .unwrap_or(inner.len());
        let ms: i64 = inner[..digits_end].parse().ok()?;
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&at));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
}

/// The calendar date of a date value.
pub fn parse_day(value: &Value) -> Option<NaiveDate> {
    value
        .as_str()
        .and_then(parse_instant)
        .map(|d| d.date_naive())
}

/// Rounds to cents, as Xero stores amounts.
pub fn money(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

/// Reads a number that may arrive as a JSON number or a numeric string.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Case-insensitive property lookup.
pub fn get<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Case-insensitive string property, `None` when absent, null or not a string.
pub fn get_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    get(object, key).and_then(Value::as_str)
}

/// Follows a dotted path (`Contact.ContactID`) case-insensitively.
pub fn get_path<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |current, key| get(current, key))
}

/// Copies the listed properties from a request element onto a record, with canonical casing.
pub fn merge_fields(record: &mut Map<String, Value>, input: &Value, fields: &[&str]) {
    for field in fields {
        if let Some(value) = get(input, field) {
            record.insert((*field).to_owned(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_and_iso_dates_parse_to_the_same_instant() {
        let ms = parse_instant("/Date(1419937200000+0000)/").expect("ms date");
        assert_eq!(ms.timestamp_millis(), 1_419_937_200_000);
        assert_eq!(
            parse_instant("/Date(1419937200000)/").map(|d| d.timestamp_millis()),
            Some(1_419_937_200_000)
        );
        assert_eq!(
            parse_instant("2014-12-30T11:00:00"),
            Some(ms),
            "ISO without zone is UTC"
        );
        assert_eq!(
            parse_instant("2014-12-30").map(|d| d.date_naive()),
            Some(ms.date_naive())
        );
        assert_eq!(ms_date(ms), "/Date(1419937200000+0000)/");
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn property_access_ignores_case() {
        let v = serde_json::json!({"contact": {"contactid": "x"}});
        assert_eq!(
            get_path(&v, &["Contact".into(), "ContactID".into()]),
            Some(&Value::from("x"))
        );
    }
}
