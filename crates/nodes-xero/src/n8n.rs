//! Importing n8n's Xero node (`n8n-nodes-base.xero`): its resources (contact, invoice), its
//! operations and parameter names, and its `xeroOAuth2Api` credential reference, rewritten into
//! a `ledgerflow.xero` node before the engine's importer runs. Expressions are carried over
//! as they are: they are evaluated per item like any other parameter.

use serde_json::{json, Map, Value};

fn pascal(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// n8n's camelCase field names → Xero's PascalCase, with the few renames n8n does.
fn xero_fields(fields: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in fields {
        match k.as_str() {
            "contactId" => {
                out.insert("Contact".into(), json!({"ContactID": v}));
            }
            "lineAmountType" => {
                out.insert("LineAmountTypes".into(), v.clone());
            }
            "brandingThemeId" => {
                out.insert("BrandingThemeID".into(), v.clone());
            }
            "accountNumber"
            | "bankAccountDetails"
            | "emailAddress"
            | "firstName"
            | "lastName"
            | "name"
            | "contactNumber"
            | "contactStatus"
            | "companyNumber"
            | "currency"
            | "currencyRate"
            | "date"
            | "dueDate"
            | "expectedPaymentDate"
            | "invoiceNumber"
            | "plannedPaymentDate"
            | "reference"
            | "sendToContact"
            | "status"
            | "type"
            | "url"
            | "purchasesDefaultAccountCode"
            | "salesDefaultAccountCode"
            | "taxNumber"
            | "skypeUserName"
            | "defaultCurrency" => {
                let name = match k.as_str() {
                    "skypeUserName" => "SkypeUserName".to_string(),
                    "url" => "Url".to_string(),
                    other => pascal(other),
                };
                out.insert(name, v.clone());
            }
            "addressesUi" => {
                if let Some(list) = v.pointer("/addressesValues").and_then(Value::as_array) {
                    out.insert(
                        "Addresses".into(),
                        Value::Array(list.iter().map(pascal_object).collect()),
                    );
                }
            }
            "phonesUi" => {
                if let Some(list) = v.pointer("/phonesValues").and_then(Value::as_array) {
                    out.insert(
                        "Phones".into(),
                        Value::Array(list.iter().map(pascal_object).collect()),
                    );
                }
            }
            "lineItemsUi" => {
                if let Some(list) = v.pointer("/lineItemsValues").and_then(Value::as_array) {
                    out.insert(
                        "LineItems".into(),
                        Value::Array(list.iter().map(line_item).collect()),
                    );
                }
            }
            other => {
                out.insert(pascal(other), v.clone());
            }
        }
    }
    out
}

fn pascal_object(v: &Value) -> Value {
    match v.as_object() {
        Some(m) => Value::Object(m.iter().map(|(k, v)| (pascal(k), v.clone())).collect()),
        None => v.clone(),
    }
}

fn line_item(v: &Value) -> Value {
    let mut out = Map::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            match k.as_str() {
                "itemCode" => {
                    out.insert("ItemCode".into(), val.clone());
                }
                "trackingUi" => {
                    if let Some(list) = val.pointer("/trackingValues").and_then(Value::as_array) {
                        out.insert(
                            "Tracking".into(),
                            Value::Array(list.iter().map(pascal_object).collect()),
                        );
                    }
                }
                other => {
                    out.insert(pascal(other), val.clone());
                }
            }
        }
    }
    Value::Object(out)
}

/// Our parameters for one n8n Xero node's parameters.
pub fn convert(params: &Value) -> Value {
    let p = params.as_object().cloned().unwrap_or_default();
    let get = |k: &str| p.get(k).cloned();
    let resource = p
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or("contact")
        .to_string();
    let operation = p
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("create")
        .to_string();
    let mut out = Map::new();
    out.insert("resource".into(), json!(resource));
    out.insert("operation".into(), json!(operation));
    if let Some(org) = get("organizationId") {
        out.insert("organisation".into(), org);
    }
    let id_key = if resource == "invoice" {
        "invoiceId"
    } else {
        "contactId"
    };
    if let Some(id) = get(id_key) {
        if operation != "create" {
            out.insert("id".into(), id);
        }
    }
    let additional = p
        .get("additionalFields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let update = p
        .get("updateFields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match operation.as_str() {
        "create" => {
            let mut fields = Map::new();
            for k in ["name", "type", "contactId", "lineItemsUi"] {
                if let Some(v) = get(k) {
                    fields.insert(k.into(), v);
                }
            }
            fields.extend(additional);
            out.insert("fields".into(), Value::Object(xero_fields(&fields)));
        }
        "update" => {
            out.insert("fields".into(), Value::Object(xero_fields(&update)));
        }
        "getAll" => {
            out.insert("returnAll".into(), get("returnAll").unwrap_or(json!(false)));
            if let Some(l) = get("limit") {
                out.insert("limit".into(), l);
            }
            let options = p
                .get("options")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut filters = Map::new();
            if let Some(w) = options.get("where") {
                filters.insert("where".into(), w.clone());
            }
            if let Some(s) = options.get("statuses") {
                filters.insert("statuses".into(), s.clone());
            }
            if let Some(a) = options.get("includeArchived") {
                filters.insert("includeArchived".into(), a.clone());
            }
            if let Some(o) = options.get("orderBy").and_then(Value::as_str) {
                let dir = options
                    .get("sortOrder")
                    .and_then(Value::as_str)
                    .unwrap_or("ASC");
                filters.insert("order".into(), json!(format!("{o} {dir}")));
            }
            out.insert("filters".into(), Value::Object(filters));
        }
        _ => {}
    }
    Value::Object(out)
}

/// Rewrites every `n8n-nodes-base.xero` node of an n8n export in place.
pub fn rewrite_xero_nodes(export: &mut Value) {
    let nodes = match export {
        Value::Array(list) if list.len() == 1 => list[0].get_mut("nodes"),
        other => other.get_mut("nodes"),
    };
    let Some(Value::Array(nodes)) = nodes else {
        return;
    };
    for node in nodes.iter_mut() {
        if node.get("type").and_then(Value::as_str) != Some("n8n-nodes-base.xero") {
            continue;
        }
        let params = node.get("parameters").cloned().unwrap_or(json!({}));
        node["type"] = json!(crate::node::TYPE_NAME);
        node["typeVersion"] = json!(1);
        node["parameters"] = convert(&params);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n8n_contact_and_invoice_parameters_map_to_xero_fields() {
        let contact = convert(
            &json!({"resource": "contact", "operation": "create", "organizationId": "t1",
            "name": "={{ $json.company }}", "additionalFields": {"emailAddress": "a@b.c", "firstName": "Ann"}}),
        );
        assert_eq!(contact["organisation"], "t1");
        assert_eq!(contact["fields"]["Name"], "={{ $json.company }}");
        assert_eq!(contact["fields"]["EmailAddress"], "a@b.c");
        let invoice = convert(
            &json!({"resource": "invoice", "operation": "create", "organizationId": "t1", "type": "ACCREC",
            "contactId": "c1", "lineItemsUi": {"lineItemsValues": [{"description": "Work", "quantity": "2", "unitAmount": "10", "accountCode": "200", "itemCode": "W"}]},
            "additionalFields": {"reference": "R1", "dueDate": "2026-12-31"}}),
        );
        assert_eq!(invoice["fields"]["Contact"]["ContactID"], "c1");
        assert_eq!(invoice["fields"]["Type"], "ACCREC");
        assert_eq!(invoice["fields"]["LineItems"][0]["UnitAmount"], "10");
        assert_eq!(invoice["fields"]["LineItems"][0]["ItemCode"], "W");
        assert_eq!(invoice["fields"]["DueDate"], "2026-12-31");
        let list = convert(
            &json!({"resource": "invoice", "operation": "getAll", "returnAll": true, "options": {"statuses": ["DRAFT"], "orderBy": "Date", "sortOrder": "DESC"}}),
        );
        assert_eq!(list["filters"]["order"], "Date DESC");
        let get = convert(&json!({"resource": "invoice", "operation": "get", "invoiceId": "i1"}));
        assert_eq!(get["id"], "i1");
    }
}
