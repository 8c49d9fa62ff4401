//! The demo ledger.
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::accounting::ledger::Ledger;

pub struct SeedSpec<'a> {
    pub name: &'a str,
    pub short_code: &'a str,
    pub tenant_id: Uuid,
    pub contacts: usize,
    pub invoices: usize,
    pub seed: u64,
}

pub fn demo_ledger(spec: &SeedSpec<'_>, _now: DateTime<Utc>) -> Ledger {
    Ledger::new(spec.tenant_id, json!({"Name": spec.name}))
}
