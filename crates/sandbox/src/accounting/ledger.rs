//! One organisation's books: every resource collection as Xero-shaped JSON records, the
//! organisation record, number sequences and idempotency replays. Writes go through [`Tx`], which
//! stages changes so a batch that fails validation leaves the ledger untouched.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// Records of one resource, in insertion order, indexed by lower-cased id.
#[derive(Debug, Default, Clone)]
pub struct Collection {
    items: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Collection {
    pub fn get(&self, id: &str) -> Option<&Value> {
        self.index
            .get(&id.to_ascii_lowercase())
            .map(|i| &self.items[*i])
    }

    pub fn upsert(&mut self, id: &str, record: Value) {
        let key = id.to_ascii_lowercase();
        match self.index.get(&key) {
            Some(i) => self.items[*i] = record,
            None => {
                self.index.insert(key, self.items.len());
                self.items.push(record);
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<Value> {
        let i = self.index.remove(&id.to_ascii_lowercase())?;
        let removed = self.items.remove(i);
        for position in self.index.values_mut() {
            if *position > i {
                *position -= 1;
            }
        }
        Some(removed)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Value> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A stored response replayed for a repeated `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    pub body: Value,
    pub at: DateTime<Utc>,
}

/// A file attached to a record.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    pub include_online: bool,
    pub content: Vec<u8>,
}

/// One organisation's books.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub tenant_id: Uuid,
    pub organisation: Value,
    collections: HashMap<&'static str, Collection>,
    pub sequences: HashMap<&'static str, u64>,
    pub idempotency: HashMap<String, Replay>,
    /// History records per lower-cased record id.
    pub history: HashMap<String, Vec<Value>>,
    /// Attachments per lower-cased record id.
    pub attachments: HashMap<String, Vec<Attachment>>,
    /// The journal log, in `JournalNumber` order (see `accounting::journals`).
    pub journals: Vec<Value>,
}

impl Ledger {
    pub fn new(tenant_id: Uuid, organisation: Value) -> Self {
        Self {
            tenant_id,
            organisation,
            collections: HashMap::new(),
            sequences: HashMap::new(),
            idempotency: HashMap::new(),
            history: HashMap::new(),
            attachments: HashMap::new(),
            journals: Vec::new(),
        }
    }

    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    pub fn records(&self, name: &str) -> impl Iterator<Item = &Value> {
        self.collections
            .get(name)
            .into_iter()
            .flat_map(|c| c.iter())
    }

    pub fn get(&self, name: &str, id: &str) -> Option<&Value> {
        self.collections.get(name)?.get(id)
    }

    pub fn upsert(&mut self, name: &'static str, id: &str, record: Value) {
        self.collections.entry(name).or_default().upsert(id, record);
    }

    pub fn remove(&mut self, name: &'static str, id: &str) -> Option<Value> {
        self.collections.get_mut(name)?.remove(id)
    }

    /// The next number of a sequence (`INV`, `CN`…), starting at 1.
    pub fn next_number(&mut self, sequence: &'static str) -> u64 {
        let n = self.sequences.entry(sequence).or_insert(0);
        *n += 1;
        *n
    }
}

/// A record written by a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub collection: &'static str,
    pub id: String,
    pub created: bool,
    /// `Status` (or `ContactStatus`) before the write.
    pub previous_status: Option<String>,
    /// The record before the transaction, for journals.
    pub before: Option<Value>,
}

/// A staged write: reads see staged records first, [`Tx::commit`] applies them.
pub struct Tx<'a> {
    pub ledger: &'a mut Ledger,
    staged: Vec<(&'static str, String, Value)>,
}

impl<'a> Tx<'a> {
    pub fn new(ledger: &'a mut Ledger) -> Self {
        Self {
            ledger,
            staged: Vec::new(),
        }
    }

    pub fn get(&self, name: &str, id: &str) -> Option<&Value> {
        self.staged
            .iter()
            .rev()
            .find(|(n, i, _)| *n == name && i.eq_ignore_ascii_case(id))
            .map(|(_, _, v)| v)
            .or_else(|| self.ledger.get(name, id))
    }

    /// Finds a record by a predicate, staged records first.
    pub fn find(&self, name: &str, predicate: impl Fn(&Value) -> bool) -> Option<&Value> {
        self.staged
            .iter()
            .rev()
            .filter(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v)
            .find(|v| predicate(v))
            .or_else(|| self.ledger.records(name).find(|v| predicate(v)))
    }

    pub fn stage(&mut self, name: &'static str, id: &str, record: Value) {
        self.staged.push((name, id.to_owned(), record));
    }

    /// Number of staged writes so far (a savepoint for [`Tx::rollback_to`]).
    pub fn savepoint(&self) -> usize {
        self.staged.len()
    }

    pub fn rollback_to(&mut self, savepoint: usize) {
        self.staged.truncate(savepoint);
    }

    /// Applies staged writes and reports each written record once, saying whether it is new
    /// (for webhook `CREATE`/`UPDATE` events).
    pub fn commit(self) -> Vec<Written> {
        let mut written: Vec<Written> = Vec::new();
        for (collection, id, record) in self.staged {
            let before = self.ledger.get(collection, &id).cloned();
            let created = before.is_none();
            let previous_status = before.as_ref().and_then(|b| {
                b.get("Status")
                    .or_else(|| b.get("ContactStatus"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            self.ledger.upsert(collection, &id, record);
            if !written
                .iter()
                .any(|w| w.collection == collection && w.id.eq_ignore_ascii_case(&id))
            {
                written.push(Written {
                    collection,
                    id,
                    created,
                    previous_status,
                    before,
                });
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn staged_writes_are_visible_in_the_transaction_and_only_applied_on_commit() {
        let mut ledger = Ledger::new(Uuid::new_v4(), json!({}));
        ledger.upsert("Contacts", "A", json!({"Name": "old"}));
        {
            let mut tx = Tx::new(&mut ledger);
            tx.stage("Contacts", "a", json!({"Name": "new"}));
            assert_eq!(tx.get("Contacts", "A"), Some(&json!({"Name": "new"})));
        }
        assert_eq!(ledger.get("Contacts", "a"), Some(&json!({"Name": "old"})));
        let mut tx = Tx::new(&mut ledger);
        tx.stage("Contacts", "a", json!({"Name": "new"}));
        tx.commit();
        assert_eq!(ledger.get("Contacts", "A"), Some(&json!({"Name": "new"})));
        assert_eq!(ledger.records("Contacts").count(), 1);
    }
}
