//! The OpenAPI 3.0 description of `/api/v1`, served at `/api/v1/openapi.json`.
//!
//! Written as data next to the routes it describes; the API tests check that every route the
//! router serves is described here.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

pub fn document(public_url: &str) -> Value {
    let errors = json!({
        "400": error_response("Malformed request (e.g. invalid JSON)"),
        "401": error_response("Missing or invalid API key or session"),
        "404": error_response("Not found"),
        "422": error_response("Invalid data; the message names the field"),
    });
    let with_errors = |ok: Value| {
        let mut responses = errors.clone();
        if let (Some(r), Some(ok)) = (responses.as_object_mut(), ok.as_object()) {
            r.extend(ok.clone());
        }
        responses
    };
    let cred_ref = json!({"$ref": "#/components/schemas/Credential"});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Ledgerflow API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Credentials and their OAuth2 connections, workflows and executions. Authenticate with `Authorization: Bearer <API key>` (create one with `ledgerflow apikey create`). Errors have the shape `{\"error\":{\"code\",\"message\"}}`."
        },
        "servers": [{"url": format!("{}/api/v1", public_url.trim_end_matches('/'))}],
        "security": [{"apiKey": []}],
        "paths": {
            "/credential-types": {"get": {
                "summary": "List credential types", "operationId": "listCredentialTypes",
                "responses": with_errors(json!({"200": {"description": "Credential types", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/CredentialType"}}}}}}}}))
            }},
            "/credential-types/{name}": {"get": {
                "summary": "Get a credential type", "operationId": "getCredentialType",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_errors(json!({"200": {"description": "The type", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CredentialType"}}}}}))
            }},
            "/credentials": {
                "get": {
                    "summary": "List credentials (secret values are never returned)", "operationId": "listCredentials",
                    "responses": with_errors(json!({"200": {"description": "Credentials", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": cred_ref}}}}}}}))
                },
                "post": {
                    "summary": "Create a credential", "operationId": "createCredential",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CredentialCreate"}}}},
                    "responses": with_errors(json!({"201": {"description": "Created", "content": {"application/json": {"schema": cred_ref}}}}))
                }
            },
            "/credentials/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "Get a credential", "operationId": "getCredential",
                    "responses": with_errors(json!({"200": {"description": "The credential", "content": {"application/json": {"schema": cred_ref}}}}))},
                "patch": {"summary": "Change a credential's name or fields (absent fields stay; null removes)", "operationId": "updateCredential",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CredentialUpdate"}}}},
                    "responses": with_errors(json!({"200": {"description": "Updated", "content": {"application/json": {"schema": cred_ref}}}}))},
                "delete": {"summary": "Delete a credential; an OAuth2 connection is revoked at the provider first", "operationId": "deleteCredential",
                    "parameters": [{"name": "force", "in": "query", "required": false, "schema": {"type": "boolean"}, "description": "Delete even if revocation fails"}],
                    "responses": with_errors(json!({"204": {"description": "Deleted"}, "502": error_response("Revocation failed; the credential was kept")}))}
            },
            "/credentials/{id}/connect": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Start OAuth2 consent: returns the provider URL to open (single use, 10 minutes)", "operationId": "connectCredential",
                    "responses": with_errors(json!({"200": {"description": "Where to send the person", "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "authorizeUrl": {"type": "string"}, "redirectUrl": {"type": "string"}, "expiresInSeconds": {"type": "integer"}}}}}}}))}
            },
            "/credentials/{id}/test": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Call Xero with the credential (/connections and GET /Organisation per organisation)", "operationId": "testCredential",
                    "responses": with_errors(json!({"200": {"description": "Report", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TestReport"}}}}}))}
            },
            "/credentials/{id}/organisations/{tenantId}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "tenantId", "in": "path", "required": true, "schema": {"type": "string"}}],
                "delete": {"summary": "Disconnect one organisation (DELETE /connections/{id} at Xero)", "operationId": "disconnectOrganisation",
                    "responses": with_errors(json!({"204": {"description": "Disconnected"}}))}
            },
            "/workflows": {
                "get": {"summary": "List workflows", "operationId": "listWorkflows",
                    "responses": with_errors(json!({"200": {"description": "Workflows", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Workflow"}}}}}}}}))},
                "post": {"summary": "Import a workflow: an n8n export (types and parameters mapped; unsupported nodes are named) or Ledgerflow's own JSON", "operationId": "importWorkflow",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "n8n workflow JSON: name, nodes[], connections, settings"}}}},
                    "responses": with_errors(json!({"201": {"description": "Imported", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Workflow"}}}}}))}
            },
            "/workflows/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "Get a workflow with its definition", "operationId": "getWorkflow",
                    "responses": with_errors(json!({"200": {"description": "The workflow", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Workflow"}}}}}))},
                "put": {"summary": "Replace a workflow's definition (validated like an import)", "operationId": "updateWorkflow",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": with_errors(json!({"200": {"description": "Updated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Workflow"}}}}}))},
                "delete": {"summary": "Delete a workflow and its executions", "operationId": "deleteWorkflow",
                    "responses": with_errors(json!({"204": {"description": "Deleted"}}))}
            },
            "/workflows/{id}/activate": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Activate its triggers (webhooks, schedules, Xero triggers)", "operationId": "activateWorkflow",
                    "responses": with_errors(json!({"200": {"description": "Active"}}))}},
            "/workflows/{id}/deactivate": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Deactivate its triggers", "operationId": "deactivateWorkflow",
                    "responses": with_errors(json!({"200": {"description": "Inactive"}}))}},
            "/workflows/{id}/run": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "wait", "in": "query", "required": false, "schema": {"type": "integer"}, "description": "Wait up to this many seconds for the end"}],
                "post": {"summary": "Run it now (queued; with wait, the finished execution is returned)", "operationId": "runWorkflow",
                    "responses": with_errors(json!({"202": {"description": "The execution", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Execution"}}}}}))}},
            "/executions": {"get": {"summary": "List executions", "operationId": "listExecutions",
                "parameters": [{"name": "workflowId", "in": "query", "schema": {"type": "string"}}, {"name": "status", "in": "query", "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": with_errors(json!({"200": {"description": "Executions", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Execution"}}}}}}}}))}},
            "/executions/{id}": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "An execution with each node's input and output (runData) and its trigger input", "operationId": "getExecution",
                    "responses": with_errors(json!({"200": {"description": "The execution", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Execution"}}}}}))}},
            "/executions/{id}/retry": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Queue a new execution with the same input", "operationId": "retryExecution",
                    "responses": with_errors(json!({"202": {"description": "The new execution"}}))}},
            "/executions/{id}/cancel": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": {"summary": "Cancel a queued or running execution", "operationId": "cancelExecution",
                    "responses": with_errors(json!({"200": {"description": "{cancelled: bool}"}}))}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI document"}}}}
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "CredentialType": {"type": "object", "properties": {
                    "name": {"type": "string", "example": "httpBasicAuth"}, "displayName": {"type": "string"},
                    "auth": {"type": "string", "enum": ["httpBasic", "httpHeader", "oAuth2"]},
                    "integration": {"type": "boolean"},
                    "fields": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "displayName": {"type": "string"}, "kind": {"type": "string"},
                        "secret": {"type": "boolean", "description": "Write-only: never returned"}, "required": {"type": "boolean"}, "default": {"type": "string"}}}}}},
                "Credential": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "type": {"type": "string"},
                    "data": {"type": "object", "description": "Non-secret fields only", "additionalProperties": true},
                    "secretFieldsSet": {"type": "array", "items": {"type": "string"}},
                    "createdAt": {"type": "integer", "description": "Milliseconds since the Unix epoch"},
                    "updatedAt": {"type": "integer"},
                    "connection": {"$ref": "#/components/schemas/Connection"}}},
                "Connection": {"type": "object", "description": "OAuth2 credentials only", "properties": {
                    "status": {"type": "string", "enum": ["connected", "needs_reconnect", "never_connected"]},
                    "statusReason": {"type": "string", "nullable": true},
                    "grantedScopes": {"type": "array", "items": {"type": "string"}},
                    "accessExpiresAt": {"type": "integer", "nullable": true},
                    "connectedAt": {"type": "integer", "nullable": true},
                    "refreshedAt": {"type": "integer", "nullable": true},
                    "lastError": {"type": "string", "nullable": true},
                    "lastErrorAt": {"type": "integer", "nullable": true},
                    "redirectUrl": {"type": "string"},
                    "organisations": {"type": "array", "items": {"type": "object", "properties": {
                        "tenantId": {"type": "string"}, "connectionId": {"type": "string"}, "tenantName": {"type": "string"},
                        "tenantType": {"type": "string"}, "authEventId": {"type": "string", "nullable": true}}}}}},
                "Workflow": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "active": {"type": "boolean"}, "version": {"type": "integer"},
                    "createdAt": {"type": "integer"}, "updatedAt": {"type": "integer"},
                    "definition": {"type": "object", "description": "n8n-shaped workflow JSON (single-workflow responses)"}}},
                "Execution": {"type": "object", "properties": {
                    "id": {"type": "string"}, "workflowId": {"type": "string"},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled", "crashed"]},
                    "mode": {"type": "string"}, "error": {"type": "string", "nullable": true}, "retryOf": {"type": "string", "nullable": true},
                    "createdAt": {"type": "integer"}, "startedAt": {"type": "integer", "nullable": true}, "finishedAt": {"type": "integer", "nullable": true},
                    "durationMs": {"type": "integer"},
                    "runData": {"type": "object", "description": "node name → runs: {startTime, executionTimeMs, attempts, input, output, error} (size-capped)"},
                    "triggerData": {"type": "object"}}},
                "TestReport": {"type": "object", "properties": {
                    "ok": {"type": "boolean"}, "message": {"type": "string"},
                    "organisations": {"type": "array", "items": {"type": "object", "properties": {
                        "tenantId": {"type": "string"}, "tenantName": {"type": "string"}, "ok": {"type": "boolean"}, "message": {"type": "string"}}}}}},
                "CredentialCreate": {"type": "object", "required": ["name", "type", "data"], "properties": {
                    "name": {"type": "string"}, "type": {"type": "string", "example": "httpHeaderAuth"},
                    "data": {"type": "object", "additionalProperties": {"type": "string"}, "example": {"name": "X-Api-Key", "value": "…"}}}},
                "CredentialUpdate": {"type": "object", "properties": {
                    "name": {"type": "string"}, "data": {"type": "object", "additionalProperties": {"type": "string", "nullable": true}}}}
            }
        }
    })
}
