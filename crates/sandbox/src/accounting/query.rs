//! List queries as Xero understands them: the `where` filter language (`==`, `!=`, `<`, `>`,
//! `<=`, `>=`, `AND`/`OR`/`&&`/`||`, `NOT`/`!`, parentheses, `.Contains()`, `.StartsWith()`,
//! `.EndsWith()`, `GUID("…")`, `DateTime(y,m,d[,h,m,s])`, `null`, `true`/`false`), `order`
//! (`Field [ASC|DESC], …`), and comparisons between JSON values that treat `/Date(…)/` strings
//! as instants. String comparisons ignore case, as Xero's database collation does.

use std::cmp::Ordering;

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;

use super::model::{get_path, parse_instant};

/// A parsed `where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, CompareOp, Operand),
    Method(Vec<String>, StringMethod, String),
    Truthy(Operand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(Vec<String>),
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
    /// Milliseconds since the epoch.
    Instant(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMethod {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(f64),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Text(text));
            }
            '=' | '!' | '<' | '>' | '&' | '|' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let (op, len) = match two.as_str() {
                    "==" => ("==", 2),
                    "!=" => ("!=", 2),
                    "<=" => ("<=", 2),
                    ">=" => (">=", 2),
                    "&&" => ("AND", 2),
                    "||" => ("OR", 2),
                    "<>" => ("!=", 2),
                    _ => match c {
                        '=' => ("==", 1),
                        '<' => ("<", 1),
                        '>' => (">", 1),
                        '!' => ("NOT", 1),
                        _ => return Err(format!("unexpected '{c}'")),
                    },
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text
                    .parse()
                    .map_err(|_| format!("'{text}' is not a number"))?;
                tokens.push(Token::Number(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.to_ascii_uppercase().as_str() {
                    "AND" => tokens.push(Token::Op("AND")),
                    "OR" => tokens.push(Token::Op("OR")),
                    "NOT" => tokens.push(Token::Op("NOT")),
                    _ => tokens.push(Token::Ident(word)),
                }
            }
            _ => return Err(format!("unexpected '{c}'")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(format!("expected {token:?}, found {other:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Op("OR")) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::Op("AND")) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Op("NOT")) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        if let Some(Token::Ident(word)) = self.peek().cloned() {
            for (suffix, method) in [
                (".contains", StringMethod::Contains),
                (".startswith", StringMethod::StartsWith),
                (".endswith", StringMethod::EndsWith),
            ] {
                let lower = word.to_ascii_lowercase();
                if let Some(field) = lower.strip_suffix(suffix) {
                    let field = word[..field.len()].to_owned();
                    self.at += 1;
                    self.expect(Token::Open)?;
                    let Some(Token::Text(arg)) = self.next() else {
                        return Err(format!("{word} needs a string argument"));
                    };
                    self.expect(Token::Close)?;
                    return Ok(Expr::Method(path(&field), method, arg));
                }
            }
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op("==")) => CompareOp::Eq,
            Some(Token::Op("!=")) => CompareOp::Ne,
            Some(Token::Op("<")) => CompareOp::Lt,
            Some(Token::Op(">")) => CompareOp::Gt,
            Some(Token::Op("<=")) => CompareOp::Le,
            Some(Token::Op(">=")) => CompareOp::Ge,
            _ => return Ok(Expr::Truthy(left)),
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Expr::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Token::Text(t)) => Ok(Operand::Text(t)),
            Some(Token::Number(n)) => Ok(Operand::Number(n)),
            Some(Token::Ident(word)) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => Ok(Operand::Bool(true)),
                    "false" => Ok(Operand::Bool(false)),
                    "null" => Ok(Operand::Null),
                    "guid" => {
                        self.expect(Token::Open)?;
                        let Some(Token::Text(id)) = self.next() else {
                            return Err("GUID() needs a string argument".into());
                        };
                        self.expect(Token::Close)?;
                        Ok(Operand::Text(id))
                    }
                    "datetime" | "datetime.parse" => {
                        self.expect(Token::Open)?;
                        if let Some(Token::Text(text)) = self.peek().cloned() {
                            self.at += 1;
                            self.expect(Token::Close)?;
                            let at = parse_instant(&text)
                                .ok_or_else(|| format!("'{text}' is not a date"))?;
                            return Ok(Operand::Instant(at.timestamp_millis()));
                        }
                        let mut parts = Vec::new();
                        loop {
                            match self.next() {
                                Some(Token::Number(n)) => parts.push(n as u32),
                                other => {
                                    return Err(format!(
                                        "DateTime() expects numbers, found {other:?}"
                                    ))
                                }
                            }
                            match self.next() {
                                Some(Token::Comma) => continue,
                                Some(Token::Close) => break,
                                other => {
                                    return Err(format!(
                                        "DateTime() expects ',' or ')', found {other:?}"
                                    ))
                                }
                            }
                        }
                        let part = |i: usize| parts.get(i).copied().unwrap_or(0);
                        let day = NaiveDate::from_ymd_opt(part(0) as i32, part(1), part(2))
                            .and_then(|d| d.and_hms_opt(part(3), part(4), part(5)))
                            .ok_or("DateTime() is not a valid date")?;
                        Ok(Operand::Instant(
                            Utc.from_utc_datetime(&day).timestamp_millis(),
                        ))
                    }
                    _ => Ok(Operand::Field(path(&word))),
                }
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

fn path(word: &str) -> Vec<String> {
    word.split('.').map(str::to_owned).collect()
}

/// Parses a `where` parameter.
pub fn parse_where(input: &str) -> Result<Expr, String> {
    let tokens = tokenize(input)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    Ok(expr)
}

fn resolve<'a>(operand: &'a Operand, record: &'a Value) -> Option<Value> {
    match operand {
        Operand::Field(path) => get_path(record, path).cloned(),
        Operand::Text(t) => Some(Value::String(t.clone())),
        Operand::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number),
        Operand::Bool(b) => Some(Value::Bool(*b)),
        Operand::Null => None,
        Operand::Instant(ms) => Some(Value::String(format!("/Date({ms}+0000)/"))),
    }
}

/// Orders two JSON values: instants by time, numbers numerically, text ignoring case; missing
/// and null sort first.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => {
            if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
                return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            }
            if let (Value::Bool(x), Value::Bool(y)) = (a, b) {
                return x.cmp(y);
            }
            let (sa, sb) = (text(a), text(b));
            if let (Some(x), Some(y)) = (parse_instant(&sa), parse_instant(&sb)) {
                return x.cmp(&y);
            }
            sa.to_lowercase().cmp(&sb.to_lowercase())
        }
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Expr {
    /// Whether a record matches.
    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(record) || b.matches(record),
            Expr::And(a, b) => a.matches(record) && b.matches(record),
            Expr::Not(e) => !e.matches(record),
            Expr::Truthy(operand) => {
                matches!(resolve(operand, record), Some(Value::Bool(true)))
            }
            Expr::Method(path, method, arg) => {
                let Some(Value::String(value)) = get_path(record, path) else {
                    return false;
                };
                let (value, arg) = (value.to_lowercase(), arg.to_lowercase());
                match method {
                    StringMethod::Contains => value.contains(&arg),
                    StringMethod::StartsWith => value.starts_with(&arg),
                    StringMethod::EndsWith => value.ends_with(&arg),
                }
            }
            Expr::Compare(left, op, right) => {
                let (l, r) = (resolve(left, record), resolve(right, record));
                // A number literal against a numeric string field compares numerically.
                let (l, r) = match (&l, &r) {
                    (Some(Value::String(s)), Some(Value::Number(_))) => (
                        s.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                            .or(l),
                        r,
                    ),
                    _ => (l, r),
                };
                let ordering = compare_values(l.as_ref(), r.as_ref());
                let both_null =
                    l.as_ref().is_none_or(Value::is_null) && r.as_ref().is_none_or(Value::is_null);
                match op {
                    CompareOp::Eq => ordering == Ordering::Equal || both_null,
                    CompareOp::Ne => ordering != Ordering::Equal && !both_null,
                    CompareOp::Lt => ordering == Ordering::Less,
                    CompareOp::Gt => ordering == Ordering::Greater,
                    CompareOp::Le => ordering != Ordering::Greater,
                    CompareOp::Ge => ordering != Ordering::Less,
                }
            }
        }
    }
}

/// One `order` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub path: Vec<String>,
    pub descending: bool,
}

/// Parses `order`: `Field [ASC|DESC], Field2 …`.
pub fn parse_order(input: &str) -> Result<Vec<OrderKey>, String> {
    input
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let mut words = part.split_whitespace();
            let field = words.next().ok_or("empty order key")?;
            let descending = match words.next().map(|w| w.to_ascii_uppercase()) {
                None => false,
                Some(w) if w == "ASC" => false,
                Some(w) if w == "DESC" => true,
                Some(w) => return Err(format!("'{w}' is not ASC or DESC")),
            };
            Ok(OrderKey {
                path: path(field),
                descending,
            })
        })
        .collect()
}

/// Sorts records by order keys (stable).
pub fn sort(records: &mut [&Value], keys: &[OrderKey]) {
    records.sort_by(|a, b| {
        for key in keys {
            let ordering = compare_values(get_path(a, &key.path), get_path(b, &key.path));
            let ordering = if key.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(filter: &str, record: &Value, expected: bool) {
        let expr = parse_where(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(expr.matches(record), expected, "{filter} on {record}");
    }

    #[test]
    fn where_filters_follow_xero_syntax() {
        let invoice = json!({
            "Type": "ACCREC", "Status": "AUTHORISED", "Total": 250.0, "InvoiceNumber": "INV-0042",
            "Contact": {"ContactID": "9B3C1A6E-0000-4000-8000-000000000001", "Name": "Ridgeway University"},
            "Date": "/Date(1767225600000+0000)/", "Reference": null,
        });
        let cases = [
            (r#"Status=="AUTHORISED""#, true),
            (r#"Status == "DRAFT""#, false),
            (r#"Status=="AUTHORISED" AND Total>100"#, true),
            (r#"Status=="AUTHORISED" && Total>300"#, false),
            (r#"Status=="DRAFT" OR Total>=250"#, true),
            (r#"Status=="DRAFT" || Total<250"#, false),
            (r#"Total<=250 AND Total!=100"#, true),
            (r#"Contact.Name.Contains("ridge")"#, true),
            (r#"Contact.Name.StartsWith("Ridge")"#, true),
            (r#"InvoiceNumber.EndsWith("42")"#, true),
            (
                r#"Contact.ContactID=GUID("9b3c1a6e-0000-4000-8000-000000000001")"#,
                true,
            ),
            (
                r#"Contact.ContactID==Guid("9b3c1a6e-0000-4000-8000-000000000002")"#,
                false,
            ),
            ("Date>=DateTime(2026,01,01)", true),
            ("Date<DateTime(2026, 1, 1)", false),
            ("Date==DateTime(2026,01,01,00,00,00)", true),
            ("Reference==null", true),
            ("Reference!=null", false),
            (r#"NOT (Status=="DRAFT")"#, true),
            (r#"(Status=="DRAFT" OR Type=="ACCREC") AND Total>200"#, true),
        ];
        for (filter, expected) in cases {
            check(filter, &invoice, expected);
        }
    }

    #[test]
    fn malformed_filters_are_errors() {
        for bad in [
            r#"Status=="open"#,
            "Total >",
            "(Status==1",
            "Name.Contains(1)",
            "Total > 1 )",
        ] {
            assert!(parse_where(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_sorts_by_dates_numbers_and_text() {
        let a = json!({"Date": "/Date(2000+0000)/", "Total": 5, "Name": "b"});
        let b = json!({"Date": "/Date(1000+0000)/", "Total": 10, "Name": "A"});
        let mut records = vec![&a, &b];
        sort(&mut records, &parse_order("Date").expect("order"));
        assert_eq!(records[0], &b);
        sort(&mut records, &parse_order("Total DESC").expect("order"));
        assert_eq!(records[0], &b);
        sort(&mut records, &parse_order("Name ASC").expect("order"));
        assert_eq!(records[0], &b);
        assert!(parse_order("Name SIDEWAYS").is_err());
    }
}
