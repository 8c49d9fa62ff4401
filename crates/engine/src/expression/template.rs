//! Parsing parameter values into templates: which strings are expressions, and the JavaScript
//! each one compiles to. Pure string work; evaluating is [`super::Sandbox`]'s job.
//!
//! Rules (n8n's, plus plain `{{ }}` templates as our design allows):
//! - a string starting with `=` is an expression template (the `=` is dropped);
//! - a string containing `{{ … }}` is a template too;
//! - `={{ expr }}` alone (only whitespace around) yields the expression's value with its type;
//! - anything else with `{{ }}` yields a string, each `{{ expr }}` replaced by its value
//!   (objects as JSON, `null`/`undefined` as empty);
//! - other strings are literals and never touch JavaScript.

use serde_json::{Map, Value};

/// A parameter tree with its expressions found and compiled to JavaScript source.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamTree {
    /// No expression anywhere below: the value as written.
    Static(Value),
    Object(Vec<(String, ParamTree)>),
    Array(Vec<ParamTree>),
    Expression(Expression),
}

/// One expression string, with the body of the JavaScript function it compiles to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    /// The text as written in the workflow, shown in error messages.
    pub source: String,
    /// Function body (`return …;`).
    pub js_body: String,
}

impl ParamTree {
    /// Compiles a parameter value. Keys in `raw_keys` (at any depth) are kept literal, e.g. a
    /// Code node's `jsCode`, which is JavaScript itself rather than a template.
    pub fn compile(value: &Value, raw_keys: &[&str]) -> ParamTree {
        match value {
            Value::String(s) => match parse_template(s) {
                Some(expr) => ParamTree::Expression(expr),
                None => ParamTree::Static(Value::String(strip_equals(s).to_string())),
            },
            Value::Array(list) => {
                let children: Vec<ParamTree> = list
                    .iter()
                    .map(|v| ParamTree::compile(v, raw_keys))
                    .collect();
                if children.iter().all(ParamTree::is_static) {
                    ParamTree::Static(value.clone())
                } else {
                    ParamTree::Array(children)
                }
            }
            Value::Object(map) => {
                let children: Vec<(String, ParamTree)> = map
                    .iter()
                    .map(|(k, v)| {
                        let tree = if raw_keys.contains(&k.as_str()) {
                            ParamTree::Static(v.clone())
                        } else {
                            ParamTree::compile(v, raw_keys)
                        };
                        (k.clone(), tree)
                    })
                    .collect();
                if children.iter().all(|(_, t)| t.is_static()) {
                    ParamTree::Static(value.clone())
                } else {
                    ParamTree::Object(children)
                }
            }
            other => ParamTree::Static(other.clone()),
        }
    }

    pub fn is_static(&self) -> bool {
        matches!(self, ParamTree::Static(_))
    }

    /// The value with every expression left as written (what a static tree holds).
    pub fn raw(&self) -> Value {
        match self {
            ParamTree::Static(v) => v.clone(),
            ParamTree::Object(children) => Value::Object(
                children
                    .iter()
                    .map(|(k, t)| (k.clone(), t.raw()))
                    .collect::<Map<_, _>>(),
            ),
            ParamTree::Array(children) => Value::Array(children.iter().map(|t| t.raw()).collect()),
            ParamTree::Expression(e) => Value::String(e.source.clone()),
        }
    }
}

fn strip_equals(s: &str) -> &str {
    // A literal "=text" (an n8n expression without any {{ }}) is the text itself.
    s.strip_prefix('=').unwrap_or(s)
}

enum Segment<'a> {
    Text(&'a str),
    Code(&'a str),
}

/// Splits `{{ … }}` segments, honouring braces and string literals inside the code.
fn split_segments(s: &str) -> Vec<Segment<'_>> {
    let bytes = s.as_bytes();
    let mut segments = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'{' && bytes[i + 1] == b'{' {
            if let Some(end) = find_close(bytes, i + 2) {
                if i > text_start {
                    segments.push(Segment::Text(&s[text_start..i]));
                }
                segments.push(Segment::Code(&s[i + 2..end]));
                i = end + 2;
                text_start = i;
                continue;
            }
        }
        i += 1;
    }
    if text_start < s.len() {
        segments.push(Segment::Text(&s[text_start..]));
    }
    segments
}

/// Index of the `}}` closing an expression that starts at `start`.
fn find_close(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
        } else {
            match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'{' => depth += 1,
                b'}' if depth > 0 => depth -= 1,
                b'}' if i + 1 < bytes.len() && bytes[i + 1] == b'}' => return Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Returns the compiled expression if `s` is a template, `None` if it is a literal.
pub fn parse_template(s: &str) -> Option<Expression> {
    if !s.contains("{{") {
        return None;
    }
    let body = strip_equals(s);
    let segments = split_segments(body);
    let codes = segments
        .iter()
        .filter(|s| matches!(s, Segment::Code(_)))
        .count();
    if codes == 0 {
        return None;
    }
    let only_whitespace_text = segments.iter().all(|s| match s {
        Segment::Text(t) => t.trim().is_empty(),
        Segment::Code(_) => true,
    });
    let js_body = if codes == 1 && only_whitespace_text {
        let code = segments
            .iter()
            .find_map(|s| match s {
                Segment::Code(c) => Some(*c),
                Segment::Text(_) => None,
            })
            .unwrap_or("");
        if code.trim().is_empty() {
            "return undefined;".to_string()
        } else {
            format!("return (\n{code}\n);")
        }
    } else {
        let mut js = String::from("return \"\"");
        for seg in &segments {
            match seg {
                Segment::Text(t) => {
                    js.push_str(" + ");
                    js.push_str(&Value::String((*t).to_string()).to_string());
                }
                Segment::Code(c) if c.trim().is_empty() => {}
                Segment::Code(c) => {
                    js.push_str(" + __lf_str((\n");
                    js.push_str(c);
                    js.push_str("\n))");
                }
            }
        }
        js.push(';');
        js
    };
    Some(Expression {
        source: s.to_string(),
        js_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_never_become_expressions() {
        assert_eq!(parse_template("plain"), None);
        assert_eq!(
            ParamTree::compile(&json!("=just text"), &[]),
            ParamTree::Static(json!("just text"))
        );
        assert!(ParamTree::compile(&json!({"a": [1, "x"]}), &[]).is_static());
    }

    #[test]
    fn whole_expression_keeps_its_type_and_templates_concatenate() {
        let e = parse_template("={{ $json.a }}").expect("expr");
        assert_eq!(e.js_body, "return (\n $json.a \n);");
        let e = parse_template("Hi {{ $json.name }}!").expect("template");
        assert_eq!(
            e.js_body,
            "return \"\" + \"Hi \" + __lf_str((\n $json.name \n)) + \"!\";"
        );
    }

    #[test]
    fn braces_inside_expressions_do_not_end_them() {
        let e = parse_template("={{ ({a: {b: '}}'}}).a.b }}").expect("expr");
        assert!(e.js_body.contains("({a: {b: '}}'}}).a.b"), "{}", e.js_body);
    }

    #[test]
    fn raw_keys_stay_literal() {
        let tree = ParamTree::compile(
            &json!({"jsCode": "return {{x}}", "v": "={{1}}"}),
            &["jsCode"],
        );
        match tree {
            ParamTree::Object(children) => {
                assert!(children[0].1.is_static());
                assert!(!children[1].1.is_static());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
