//! The Xero node's operations against the sandbox: round trips per resource, batched writes
//! with per-item errors, the scope check before calling, organisation choice, binary outputs,
//! and retried writes that never duplicate.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ledgerflow_nodes_xero::{run, BinaryIn, Input, Outcome, XeroConnection, XeroParams};
use ledgerflow_sandbox::{RunningSandbox, SandboxConfig};
use ledgerflow_xero::testing::ConsentTokens;
use ledgerflow_xero::{Endpoints, LimitConfig, XeroClient};
use serde_json::{json, Value};

struct Fx {
    sandbox: RunningSandbox,
    client: Arc<XeroClient<ConsentTokens>>,
    conn: XeroConnection,
    http: reqwest::Client,
    runs: AtomicU32,
}

async fn fx(scopes: Option<&str>, tune: impl FnOnce(&mut SandboxConfig)) -> Fx {
    let mut config = SandboxConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        auto_approve: true,
        seed_invoices: 20,
        seed_contacts: 10,
        rate_limits: None,
        ..Default::default()
    };
    tune(&mut config);
    let sandbox = ledgerflow_sandbox::start(config).await.unwrap();
    let endpoints = Endpoints::sandbox(&sandbox.base_url()).unwrap();
    let demo = sandbox.demo_app();
    let all = ledgerflow_xero::default_scopes(ledgerflow_xero::ScopeMode::Granular);
    let scopes = scopes.map(str::to_string).unwrap_or(all);
    let (tokens, conns) = ledgerflow_xero::testing::consent(
        &endpoints,
        &demo.client_id,
        &demo.client_secret,
        &demo.redirect_uris[0],
        &scopes,
    )
    .await
    .unwrap();
    Fx {
        client: Arc::new(XeroClient::new(
            reqwest::Client::new(),
            tokens,
            LimitConfig::default(),
        )),
        conn: XeroConnection {
            credential_id: "cred".into(),
            endpoints,
            tenants: conns
                .into_iter()
                .map(|c| (c.tenant_id, c.tenant_name.unwrap_or_default()))
                .collect(),
            granted_scopes: scopes.split_whitespace().map(str::to_string).collect(),
        },
        sandbox,
        http: reqwest::Client::new(),
        runs: AtomicU32::new(0),
    }
}

impl Fx {
    fn org(&self) -> String {
        self.conn.tenants[0].0.clone()
    }

    /// Runs the node on items given as parameter objects; a fresh run key each time.
    async fn run(&self, items: Vec<Value>) -> Vec<Outcome> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        self.run_as(&format!("run-{n}"), items).await
    }

    async fn run_as(&self, run_key: &str, items: Vec<Value>) -> Vec<Outcome> {
        let inputs: Vec<Input> = items
            .into_iter()
            .map(|mut v| {
                if v.get("organisation").is_none() {
                    v["organisation"] = json!(self.org());
                }
                Input {
                    params: serde_json::from_value::<XeroParams>(v).unwrap(),
                    attachment: None,
                }
            })
            .collect();
        run(&self.client, &self.conn, run_key, &inputs).await
    }

    /// One item, one output record.
    async fn one(&self, params: Value) -> Value {
        let mut out = self.run(vec![params.clone()]).await;
        let produced = out.remove(0).unwrap_or_else(|e| panic!("{params}: {e}"));
        produced
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{params}: no output"))
            .json
    }

    async fn many(&self, params: Value) -> Vec<Value> {
        let mut out = self.run(vec![params.clone()]).await;
        out.remove(0)
            .unwrap_or_else(|e| panic!("{params}: {e}"))
            .into_iter()
            .map(|p| p.json)
            .collect()
    }

    async fn counters(&self) -> Value {
        self.http
            .get(format!("{}/_sandbox/counters", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn contact_id(&self) -> String {
        let c = self.one(json!({"resource": "contact", "operation": "create", "fields": {"Name": format!("Customer {}", self.runs.load(Ordering::SeqCst))}})).await;
        c["ContactID"].as_str().unwrap().to_string()
    }
}

fn calls(counters: &Value, needle: &str) -> u64 {
    counters["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.to_lowercase() == needle.to_lowercase())
        .filter_map(|(_, v)| v.as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_round_trip_and_archive() {
    let fx = fx(None, |_| {}).await;
    let c = fx.one(json!({"resource": "contact", "operation": "create", "fields": {"Name": "Round Trip Ltd", "EmailAddress": "a@rt.example"}})).await;
    let id = c["ContactID"].as_str().unwrap();
    let got = fx
        .one(json!({"resource": "contact", "operation": "get", "id": id}))
        .await;
    assert_eq!(got["Name"], "Round Trip Ltd");
    let up = fx.one(json!({"resource": "contact", "operation": "update", "id": id, "fields": {"Name": "Round Trip Limited"}})).await;
    assert_eq!(up["Name"], "Round Trip Limited");
    let found = fx.many(json!({"resource": "contact", "operation": "getMany", "filters": {"where": "Name.StartsWith(\"Round Trip\")"}})).await;
    assert_eq!(found.len(), 1);
    assert!(
        chrono::DateTime::parse_from_rfc3339(found[0]["UpdatedDateUTC"].as_str().unwrap()).is_ok(),
        "dates are RFC 3339"
    );
    let archived = fx
        .one(json!({"resource": "contact", "operation": "archive", "id": id}))
        .await;
    assert_eq!(archived["ContactStatus"], "ARCHIVED");
    let active = fx.many(json!({"resource": "contact", "operation": "getMany", "returnAll": true, "filters": {"searchTerm": "Round Trip"}})).await;
    assert!(
        active.is_empty(),
        "archived contacts are hidden unless asked for"
    );
    let with = fx.many(json!({"resource": "contact", "operation": "getMany", "returnAll": true, "filters": {"searchTerm": "Round Trip", "includeArchived": true}})).await;
    assert_eq!(with.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_round_trip_with_extras_and_void() {
    let fx = fx(None, |_| {}).await;
    let contact = fx.contact_id().await;
    let inv = fx
        .one(json!({"resource": "invoice", "operation": "create", "fields": {
            "Type": "ACCREC", "Contact": {"ContactID": contact}, "Date": "2026-11-30", "DueDate": "2026-12-31T00:00:00Z",
            "LineItems": [{"Description": "Audit", "Quantity": 2, "UnitAmount": 150, "AccountCode": "200"}]}}))
        .await;
    let id = inv["InvoiceID"].as_str().unwrap().to_string();
    assert_eq!(inv["Status"], "DRAFT");
    assert_eq!(inv["SubTotal"].as_f64().unwrap(), 300.0);
    let got = fx
        .one(json!({"resource": "invoice", "operation": "get", "id": id}))
        .await;
    assert!(got["Date"].as_str().unwrap().starts_with("2026-11-30"));
    let up = fx.one(json!({"resource": "invoice", "operation": "update", "id": id, "fields": {"Reference": "PO-77", "Status": "AUTHORISED"}})).await;
    assert_eq!(
        (up["Reference"].as_str(), up["Status"].as_str()),
        (Some("PO-77"), Some("AUTHORISED"))
    );
    let listed = fx.many(json!({"resource": "invoice", "operation": "getMany", "filters": {"statuses": "AUTHORISED", "where": "Reference==\"PO-77\""}})).await;
    assert_eq!(listed.len(), 1);

    // Extras.
    let sent = fx
        .one(json!({"resource": "invoice", "operation": "email", "id": id}))
        .await;
    assert_eq!(sent["emailed"], true);
    let online = fx
        .one(json!({"resource": "invoice", "operation": "onlineInvoice", "id": id}))
        .await;
    assert!(online["OnlineInvoiceUrl"]
        .as_str()
        .unwrap()
        .starts_with("http"));
    let pdf = fx
        .run(vec![
            json!({"resource": "invoice", "operation": "pdf", "id": id}),
        ])
        .await
        .remove(0)
        .unwrap()
        .remove(0);
    let bin = pdf.binary.unwrap();
    assert!(bin.data.starts_with(b"%PDF"), "a real PDF");
    assert_eq!(bin.mime, "application/pdf");
    fx.one(
        json!({"resource": "invoice", "operation": "addNote", "id": id, "note": "Chased by phone"}),
    )
    .await;
    let history = fx
        .many(json!({"resource": "invoice", "operation": "history", "id": id}))
        .await;
    assert!(history.iter().any(|h| h["Details"]
        .as_str()
        .unwrap_or_default()
        .contains("Chased by phone")));

    // Attachments: upload from a binary, list, download.
    let inputs = vec![Input {
        params: serde_json::from_value(json!({"resource": "invoice", "operation": "uploadAttachment", "id": id, "organisation": fx.org(), "fileName": "receipt.txt"})).unwrap(),
        attachment: Some(BinaryIn { data: bytes::Bytes::from_static(b"paid in cash"), mime: "text/plain".into(), file_name: None }),
    }];
    let up = run(&fx.client, &fx.conn, "attach-run", &inputs)
        .await
        .remove(0)
        .unwrap();
    assert_eq!(up[0].json["FileName"], "receipt.txt");
    let list = fx
        .many(json!({"resource": "invoice", "operation": "listAttachments", "id": id}))
        .await;
    assert_eq!(list.len(), 1);
    let down = fx.run(vec![json!({"resource": "invoice", "operation": "downloadAttachment", "id": id, "fileName": "receipt.txt"})]).await.remove(0).unwrap().remove(0);
    assert_eq!(&down.binary.unwrap().data[..], b"paid in cash");

    // Void (authorised) and delete (draft).
    let voided = fx
        .one(json!({"resource": "invoice", "operation": "void", "id": id}))
        .await;
    assert_eq!(voided["Status"], "VOIDED");
    let draft = fx.one(json!({"resource": "invoice", "operation": "create", "fields": {"Type": "ACCREC", "Contact": {"ContactID": contact},
        "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}})).await;
    let deleted = fx
        .one(json!({"resource": "invoice", "operation": "delete", "id": draft["InvoiceID"]}))
        .await;
    assert_eq!(deleted["Status"], "DELETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_payments_and_credit_notes() {
    let fx = fx(None, |_| {}).await;
    let supplier = fx.contact_id().await;
    let bill = fx.one(json!({"resource": "bill", "operation": "create", "fields": {"Contact": {"ContactID": supplier}, "Status": "AUTHORISED",
        "Date": "2026-11-01", "DueDate": "2026-11-30", "LineItems": [{"Description": "Stock", "Quantity": 1, "UnitAmount": 80, "AccountCode": "300"}]}})).await;
    assert_eq!(bill["Type"], "ACCPAY");
    let bills = fx
        .many(json!({"resource": "bill", "operation": "getMany", "returnAll": true}))
        .await;
    assert!(!bills.is_empty() && bills.iter().all(|b| b["Type"] == "ACCPAY"));
    let total = bill["Total"].as_f64().unwrap();
    let accounts = fx.many(json!({"resource": "account", "operation": "getMany", "returnAll": true, "filters": {"where": "Type==\"BANK\""}})).await;
    let bank = accounts[0]["AccountID"].as_str().unwrap();
    let pay = fx.one(json!({"resource": "payment", "operation": "create", "fields": {"Invoice": {"InvoiceID": bill["InvoiceID"]},
        "Account": {"AccountID": bank}, "Amount": total, "Date": "2026-11-15"}})).await;
    let paid = fx
        .one(json!({"resource": "bill", "operation": "get", "id": bill["InvoiceID"]}))
        .await;
    assert_eq!(paid["Status"], "PAID");
    let removed = fx
        .one(json!({"resource": "payment", "operation": "delete", "id": pay["PaymentID"]}))
        .await;
    assert_eq!(removed["Status"], "DELETED");

    // A credit note allocated to an invoice.
    let customer = fx.contact_id().await;
    let inv = fx.one(json!({"resource": "invoice", "operation": "create", "fields": {"Type": "ACCREC", "Status": "AUTHORISED", "Contact": {"ContactID": customer},
        "Date": "2026-11-01", "DueDate": "2026-11-30", "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}]}})).await;
    let cn = fx.one(json!({"resource": "creditNote", "operation": "create", "fields": {"Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Contact": {"ContactID": customer},
        "Date": "2026-11-02", "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}})).await;
    let alloc = fx
        .one(
            json!({"resource": "creditNote", "operation": "allocate", "id": cn["CreditNoteID"],
        "fields": {"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 5, "Date": "2026-11-03"}}),
        )
        .await;
    assert_eq!(alloc["Amount"].as_f64(), Some(5.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_contacts_take_ten_calls_and_three_bad_ones_fail_alone() {
    let fx = fx(None, |_| {}).await;
    let items: Vec<Value> = (0..500)
        .map(|i| {
            // Three invalid items: no name.
            let name = if [7, 250, 499].contains(&i) {
                String::new()
            } else {
                format!("Bulk contact {i:03}")
            };
            json!({"resource": "contact", "operation": "create", "fields": {"Name": name}})
        })
        .collect();
    let before = calls(&fx.counters().await, "PUT /api.xro/2.0/Contacts");
    let out = fx.run(items).await;
    let after = calls(&fx.counters().await, "PUT /api.xro/2.0/Contacts");
    assert_eq!(after - before, 10, "500 items in batches of 50");
    let failed: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, vec![7, 250, 499]);
    let msg = out[7].as_ref().unwrap_err();
    assert!(
        msg.contains("Xero rejected this contact") && msg.to_lowercase().contains("name"),
        "{msg}"
    );
    assert_eq!(out[8].as_ref().unwrap()[0].json["Name"], "Bulk contact 008");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_without_the_payments_scope_fails_before_calling_xero() {
    let scopes =
        "offline_access openid accounting.contacts accounting.settings accounting.invoices";
    let fx = fx(Some(scopes), |_| {}).await;
    let before = fx.counters().await;
    let out = fx
        .run(vec![json!({"resource": "payment", "operation": "getMany"})])
        .await;
    let msg = out[0].as_ref().unwrap_err();
    assert!(
        msg.contains("accounting.payments") && msg.contains("reconnect"),
        "{msg}"
    );
    let after = fx.counters().await;
    assert_eq!(
        calls(&before, "GET /api.xro/2.0/Payments"),
        calls(&after, "GET /api.xro/2.0/Payments")
    );
    assert_eq!(
        after["endpoints"], before["endpoints"],
        "no call reached Xero"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_are_chosen_by_id_name_or_all() {
    let fx = fx(None, |_| {}).await;
    let (id, name) = fx.conn.tenants[1].clone();
    let by_name = fx.many(json!({"resource": "organisation", "operation": "getMany", "organisation": format!("name:{name}")})).await;
    assert_eq!(by_name[0]["Name"], name.as_str());
    let by_id = fx
        .many(json!({"resource": "organisation", "operation": "getMany", "organisation": id}))
        .await;
    assert_eq!(by_id[0]["Name"], name.as_str());
    let all = fx
        .many(json!({"resource": "organisation", "operation": "getMany", "organisation": "all"}))
        .await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|o| o["xeroTenantId"].is_string()));
    let out = fx
        .run(vec![
            json!({"resource": "organisation", "operation": "getMany", "organisation": "nope"}),
        ])
        .await;
    assert!(out[0].as_ref().unwrap_err().contains("not connected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_and_repeated_writes_never_duplicate_invoices() {
    let fx = fx(None, |_| {}).await;
    let contact = fx.contact_id().await;
    for fault in [
        json!({"method": "PUT", "path": "/api.xro/2.0/Invoices", "status": 503, "count": 2}),
        json!({"method": "PUT", "path": "/api.xro/2.0/Invoices", "drop_connection": true, "count": 1}),
        // Processed by Xero, answer lost: the retry must not create the invoices again.
        json!({"method": "PUT", "path": "/api.xro/2.0/Invoices", "lose_response": true, "count": 1}),
    ] {
        let resp = fx
            .http
            .post(format!("{}/_sandbox/faults", fx.sandbox.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "fault {fault} not accepted");
    }
    let items: Vec<Value> = (0..60)
        .map(|i| json!({"resource": "invoice", "operation": "create", "fields": {"Type": "ACCREC", "Contact": {"ContactID": contact},
            "Reference": format!("ONCE-{i}"), "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}]}}))
        .collect();
    let out = fx.run_as("exec-42:Create invoices:0", items.clone()).await;
    assert!(
        out.iter().all(|o| o.is_ok()),
        "{:?}",
        out.iter().find(|o| o.is_err())
    );
    // The same run again (a resumed execution): same idempotency keys, nothing new.
    let again = fx.run_as("exec-42:Create invoices:0", items).await;
    assert!(again.iter().all(|o| o.is_ok()));
    let all = fx.many(json!({"resource": "invoice", "operation": "getMany", "returnAll": true, "filters": {"where": "Reference.StartsWith(\"ONCE-\")"}})).await;
    assert_eq!(all.len(), 60, "every invoice exists exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_banking_journals_and_reports_resources_work() {
    let fx = fx(None, |_| {}).await;
    let contact = fx.contact_id().await;
    // Read-only and settings resources.
    for resource in [
        "account",
        "taxRate",
        "trackingCategory",
        "currency",
        "organisation",
        "user",
        "item",
        "bankTransaction",
        "bankTransfer",
        "manualJournal",
        "purchaseOrder",
        "quote",
    ] {
        let out = fx
            .run(vec![
                json!({"resource": resource, "operation": "getMany", "limit": 5}),
            ])
            .await;
        let got = out[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{resource}: {e}"));
        assert!(!got.is_empty(), "{resource}: the demo ledger has some");
    }
    // Items: create, update, delete.
    let item = fx.one(json!({"resource": "item", "operation": "create", "fields": {"Code": "WIDGET-9", "Name": "Widget"}})).await;
    let up = fx.one(json!({"resource": "item", "operation": "update", "id": item["ItemID"], "fields": {"Name": "Widget Pro"}})).await;
    assert_eq!(up["Name"], "Widget Pro");
    let del = fx
        .one(json!({"resource": "item", "operation": "delete", "id": item["ItemID"]}))
        .await;
    assert_eq!(del["deleted"], true);
    // Contact groups and members.
    let group = fx
        .one(json!({"resource": "contactGroup", "operation": "create", "fields": {"Name": "VIP"}}))
        .await;
    fx.one(json!({"resource": "contactGroup", "operation": "addMember", "id": group["ContactGroupID"], "relatedId": contact})).await;
    let g = fx
        .one(json!({"resource": "contactGroup", "operation": "get", "id": group["ContactGroupID"]}))
        .await;
    assert_eq!(g["Contacts"].as_array().map(Vec::len), Some(1), "{g}");
    // Tracking options.
    let cat = fx.one(json!({"resource": "trackingCategory", "operation": "create", "fields": {"Name": "Project"}})).await;
    let opt = fx.one(json!({"resource": "trackingCategory", "operation": "addOption", "id": cat["TrackingCategoryID"], "fields": {"Name": "North"}})).await;
    assert_eq!(opt["Name"], "North");
    // Reports.
    for report in ["ProfitAndLoss", "BalanceSheet", "TrialBalance"] {
        let r = fx.one(json!({"resource": "report", "operation": "report", "report": report, "reportParameters": {"date": "2026-11-30"}})).await;
        assert!(r["Rows"].is_array(), "{report}: {r}");
    }
    // API Call: anything else, with credential and tenant handled.
    let raw = fx.one(json!({"resource": "any", "operation": "apiCall", "method": "GET", "path": "/Currencies"})).await;
    assert!(raw["Currencies"].is_array());
}

impl Fx {
    /// create → get → update → get many with a filter → remove; returns the removed record.
    async fn round_trip(
        &self,
        resource: &str,
        create: Value,
        update: Value,
        filter: &str,
        remove: &str,
    ) -> Value {
        let created = self
            .one(json!({"resource": resource, "operation": "create", "fields": create}))
            .await;
        let id_field = ledgerflow_nodes_xero::params::resolve_resource(resource)
            .unwrap()
            .0
            .id_field;
        let id = created[id_field]
            .as_str()
            .unwrap_or_else(|| panic!("{resource}: no {id_field} in {created}"))
            .to_string();
        let got = self
            .one(json!({"resource": resource, "operation": "get", "id": id}))
            .await;
        assert_eq!(got[id_field], id.as_str(), "{resource}: get");
        let updated = self.one(json!({"resource": resource, "operation": "update", "id": id, "fields": update.clone()})).await;
        for (k, v) in update.as_object().unwrap() {
            assert_eq!(&updated[k], v, "{resource}: update of {k}");
        }
        let found = self
            .many(json!({"resource": resource, "operation": "getMany", "returnAll": true, "filters": {"where": filter}}))
            .await;
        assert!(
            found.iter().any(|r| r[id_field] == id.as_str()),
            "{resource}: getMany with {filter}"
        );
        self.one(json!({"resource": resource, "operation": remove, "id": id}))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_remaining_writable_resource_round_trips() {
    let fx = fx(None, |_| {}).await;
    let contact = fx.contact_id().await;
    let banks = fx.many(json!({"resource": "account", "operation": "getMany", "returnAll": true, "filters": {"where": "Type==\"BANK\""}})).await;
    assert!(banks.len() >= 2, "the demo ledger has two bank accounts");
    let (bank, bank2) = (banks[0]["AccountID"].clone(), banks[1]["AccountID"].clone());
    let line =
        json!([{"Description": "Line", "Quantity": 1, "UnitAmount": 20, "AccountCode": "400"}]);

    let r = fx
        .round_trip("bankTransaction",
            json!({"Type": "SPEND", "Contact": {"ContactID": contact}, "BankAccount": {"AccountID": bank}, "LineItems": line, "Reference": "BT-1"}),
            json!({"Reference": "BT-2"}), "Reference==\"BT-2\"", "delete")
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip("manualJournal",
            json!({"Narration": "Accrual", "JournalLines": [{"LineAmount": 50, "AccountCode": "400"}, {"LineAmount": -50, "AccountCode": "800"}]}),
            json!({"Narration": "Accrual (revised)"}), "Narration==\"Accrual (revised)\"", "delete")
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip(
            "purchaseOrder",
            json!({"Contact": {"ContactID": contact}, "Date": "2026-11-01", "LineItems": line}),
            json!({"Reference": "PO-9"}),
            "Reference==\"PO-9\"",
            "delete",
        )
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip(
            "quote",
            json!({"Contact": {"ContactID": contact}, "Date": "2026-11-01", "LineItems": line}),
            json!({"Title": "Website rebuild"}),
            "Title==\"Website rebuild\"",
            "delete",
        )
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip(
            "account",
            json!({"Code": "499", "Name": "Round trip expenses", "Type": "EXPENSE"}),
            json!({"Name": "Round trip costs"}),
            "Code==\"499\"",
            "delete",
        )
        .await;
    assert_eq!(r["deleted"], true);
    let r = fx
        .round_trip("creditNote",
            json!({"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact}, "Date": "2026-11-02", "LineItems": line}),
            json!({"Reference": "CN-7"}), "Reference==\"CN-7\"", "delete")
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip(
            "contactGroup",
            json!({"Name": "Wholesale"}),
            json!({"Name": "Wholesale clients"}),
            "Name==\"Wholesale clients\"",
            "delete",
        )
        .await;
    assert_eq!(r["Status"], "DELETED");
    let r = fx
        .round_trip(
            "trackingCategory",
            json!({"Name": "Channel"}),
            json!({"Name": "Sales channel"}),
            "Name==\"Sales channel\"",
            "delete",
        )
        .await;
    assert_eq!(r["deleted"], true);
    // Create or update: one call creates, the same call with the id updates.
    let up = fx.one(json!({"resource": "contact", "operation": "createOrUpdate", "fields": {"Name": "Upsert Ltd"}})).await;
    let up2 = fx.one(json!({"resource": "contact", "operation": "createOrUpdate", "fields": {"ContactID": up["ContactID"], "Name": "Upsert Limited"}})).await;
    assert_eq!(
        (up2["ContactID"].clone(), up2["Name"].clone()),
        (up["ContactID"].clone(), json!("Upsert Limited"))
    );
    // Bank transfers: create, get, list.
    let t = fx.one(json!({"resource": "bankTransfer", "operation": "create", "fields": {"FromBankAccount": {"AccountID": bank}, "ToBankAccount": {"AccountID": bank2}, "Amount": 10}})).await;
    let got = fx
        .one(json!({"resource": "bankTransfer", "operation": "get", "id": t["BankTransferID"]}))
        .await;
    assert_eq!(got["Amount"].as_f64(), Some(10.0));
    // Tax rates and currencies.
    let rate = fx.one(json!({"resource": "taxRate", "operation": "create", "fields": {"Name": "Round trip rate", "TaxComponents": [{"Name": "RT", "Rate": 5}]}})).await;
    assert_eq!(rate["Name"], "Round trip rate");
    let cur = fx
        .one(json!({"resource": "currency", "operation": "create", "fields": {"Code": "EUR"}}))
        .await;
    assert_eq!(cur["Code"], "EUR");
    // Journals (paged by offset), users.
    let journals = fx
        .many(json!({"resource": "journal", "operation": "getMany", "returnAll": true}))
        .await;
    let mut numbers: Vec<i64> = journals
        .iter()
        .filter_map(|j| j["JournalNumber"].as_i64())
        .collect();
    assert!(!numbers.is_empty());
    let n = numbers.len();
    numbers.dedup();
    assert_eq!(numbers.len(), n, "offset paging repeats no journal");
    let users = fx
        .many(json!({"resource": "user", "operation": "getMany"}))
        .await;
    let user = fx
        .one(json!({"resource": "user", "operation": "get", "id": users[0]["UserID"]}))
        .await;
    assert_eq!(user["UserID"], users[0]["UserID"]);
    // Contacts: history and attachments too.
    fx.one(json!({"resource": "contact", "operation": "addNote", "id": contact, "note": "Prefers email"})).await;
    assert!(!fx
        .many(json!({"resource": "contact", "operation": "history", "id": contact}))
        .await
        .is_empty());
    // The other reports.
    for report in [
        "AgedReceivablesByContact",
        "BankSummary",
        "ExecutiveSummary",
    ] {
        let mut params = json!({});
        if report.starts_with("Aged") {
            params = json!({"contactID": contact});
        }
        let r = fx.one(json!({"resource": "report", "operation": "report", "report": report, "reportParameters": params})).await;
        assert!(r["Rows"].is_array(), "{report}: {r}");
    }
}
