//! Items: the unit of data flowing between nodes, `{json, binary?, pairedItem?}` as in n8n.
//!
//! This module owns the item shape and its JSON form. It does not know where items come from
//! or go: nodes produce them, the executor routes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One item. `json` is always an object, as in n8n.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default)]
    pub json: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<BTreeMap<String, BinaryData>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_item: Option<PairedItem>,
}

/// Binary content attached to an item (base64 in `data`, like n8n's default binary mode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BinaryData {
    pub data: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<String>,
}

/// Which input item(s) an output item came from. n8n writes a bare index, an object, or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PairedItem {
    Index(usize),
    One(PairedItemRef),
    Many(Vec<PairedItemRef>),
}

/// Input item `item` of input `input` of the node that produced the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedItemRef {
    pub item: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl PairedItem {
    pub fn item(item: usize) -> Self {
        PairedItem::One(PairedItemRef { item, input: 0 })
    }

    /// The first source this item came from, if any.
    pub fn first(&self) -> Option<PairedItemRef> {
        match self {
            PairedItem::Index(i) => Some(PairedItemRef { item: *i, input: 0 }),
            PairedItem::One(r) => Some(*r),
            PairedItem::Many(v) => v.first().copied(),
        }
    }
}

impl Item {
    /// An item with the given JSON object (non-objects are wrapped as `{ "value": … }`).
    pub fn new(json: Value) -> Self {
        let json = match json {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other);
                map
            }
        };
        Item {
            json,
            binary: None,
            paired_item: None,
        }
    }

    pub fn empty() -> Self {
        Item::default()
    }

    pub fn paired(mut self, index: usize) -> Self {
        self.paired_item = Some(PairedItem::item(index));
        self
    }

    /// The item's json as a `Value` (clones).
    pub fn json_value(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// Reads a field by dot path (`a.b.0.c`), as n8n's "dot notation" does.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        get_path(&self.json, path)
    }
}

/// Reads `path` (dot separated; array indexes as numbers) from an object.
pub fn get_path<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = obj.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Writes `value` at `path` (dot separated), creating objects on the way.
pub fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut current = obj;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = match entry {
            Value::Object(m) => m,
            _ => return,
        };
    }
    current.insert(last.to_string(), value);
}

/// Removes the field at `path` (dot separated).
pub fn remove_path(obj: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if obj.contains_key(path) {
        return obj.remove(path);
    }
    match path.split_once('.') {
        Some((head, rest)) => match obj.get_mut(head) {
            Some(Value::Object(m)) => remove_path(m, rest),
            _ => None,
        },
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_and_write_nested_fields() {
        let mut obj = Map::new();
        set_path(&mut obj, "a.b", json!(1));
        assert_eq!(Value::Object(obj.clone()), json!({"a": {"b": 1}}));
        assert_eq!(get_path(&obj, "a.b"), Some(&json!(1)));
        assert_eq!(remove_path(&mut obj, "a.b"), Some(json!(1)));
        assert_eq!(Value::Object(obj), json!({"a": {}}));
    }

    #[test]
    fn paired_item_accepts_n8n_shapes() {
        let item: Item =
            serde_json::from_value(json!({"json": {}, "pairedItem": 2})).expect("index");
        assert_eq!(
            item.paired_item.and_then(|p| p.first()).map(|r| r.item),
            Some(2)
        );
        let item: Item =
            serde_json::from_value(json!({"json": {}, "pairedItem": [{"item": 1, "input": 1}]}))
                .expect("list");
        assert_eq!(
            item.paired_item.and_then(|p| p.first()).map(|r| r.input),
            Some(1)
        );
    }
}
