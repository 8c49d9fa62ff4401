//! Credential types: what fields a credential of each type has, which of them are secret,
//! and how a request is authenticated with it.
//!
//! This crate is pure data and validation. It knows nothing of storage (the store encrypts
//! whatever this crate calls secret), HTTP servers or any particular API's wire format.
//! Type and field names follow n8n's, so credentials referenced by imported n8n workflows map
//! one to one (`httpBasicAuth.user`, `httpHeaderAuth.name`, `xeroOAuth2Api`, …).

use serde::Serialize;
use serde_json::{Map, Value};

/// How a credential of a type authenticates outgoing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthKind {
    /// `Authorization: Basic base64(user:password)`.
    HttpBasic,
    /// One header whose name and value are stored in the credential.
    HttpHeader,
    /// OAuth2 authorization-code flow; requests carry `Authorization: Bearer <access token>`.
    OAuth2,
}

/// The kind of value a field holds, so forms and validation know what to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldKind {
    String,
    /// Several space-separated values (OAuth scopes).
    Scopes,
    Url,
}

/// One field of a credential type.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    pub name: &'static str,
    pub display_name: &'static str,
    pub kind: FieldKind,
    /// Secret fields are write-only: stored encrypted, never returned, never logged.
    pub secret: bool,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'static str,
    /// The allowed values, when the field is a choice.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub options: &'static [&'static str],
}

/// A credential type: its name (n8n's), what a person sees, its fields, and how it authenticates.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialType {
    pub name: &'static str,
    pub display_name: &'static str,
    pub auth: AuthKind,
    pub fields: &'static [FieldSpec],
    /// Shown in the integrations picker; generic types are hidden behind "HTTP Request".
    pub integration: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub documentation_url: &'static str,
}

const fn field(
    name: &'static str,
    display_name: &'static str,
    secret: bool,
    required: bool,
) -> FieldSpec {
    FieldSpec {
        name,
        display_name,
        kind: FieldKind::String,
        secret,
        required,
        default: None,
        description: "",
        options: &[],
    }
}

static HTTP_BASIC_AUTH: CredentialType = CredentialType {
    name: "httpBasicAuth",
    display_name: "Basic Auth",
    auth: AuthKind::HttpBasic,
    fields: &[
        field("user", "User", false, true),
        field("password", "Password", true, true),
    ],
    integration: false,
    documentation_url: "",
};

static HTTP_HEADER_AUTH: CredentialType = CredentialType {
    name: "httpHeaderAuth",
    display_name: "Header Auth",
    auth: AuthKind::HttpHeader,
    fields: &[
        field("name", "Name", false, true),
        field("value", "Value", true, true),
    ],
    integration: false,
    documentation_url: "",
};

/// Xero's OAuth2 app credential (n8n's `xeroOAuth2Api`): the app's client id and secret, the
/// scopes to ask for, and whether it talks to real Xero or the built-in sandbox. Tokens and
/// organisations are not fields: the connect flow stores them.
static XERO_OAUTH2_API: CredentialType = CredentialType {
    name: "xeroOAuth2Api",
    display_name: "Xero OAuth2 API",
    auth: AuthKind::OAuth2,
    fields: &[
        FieldSpec {
            description: "From your app's Configuration page in Xero's developer portal.",
            ..field("clientId", "Client ID", false, true)
        },
        FieldSpec {
            description: "Generated on your app's Configuration page; shown by Xero once.",
            ..field("clientSecret", "Client Secret", true, true)
        },
        FieldSpec {
            default: Some("granular"),
            description: "Apps created from 2 March 2026 may only use granular scopes.",
            options: &["granular", "broad"],
            ..field("scopeMode", "Scope type", false, false)
        },
        FieldSpec {
            kind: FieldKind::Scopes,
            description: "Space-separated. offline_access is always added.",
            ..field("scope", "Scopes", false, false)
        },
        FieldSpec {
            description:
                "Optional: from your app's Webhooks page; needed to receive Xero webhooks.",
            ..field("webhookKey", "Webhook key", true, false)
        },
        FieldSpec {
            default: Some("production"),
            description: "Real Xero, or the Xero sandbox built into Ledgerflow (serve --sandbox).",
            options: &["production", "sandbox"],
            ..field("environment", "Xero environment", false, false)
        },
    ],
    integration: true,
    documentation_url: "https://developer.xero.com/documentation/guides/oauth2/auth-flow",
};

/// Every credential type this build knows, in the order the picker lists them.
static TYPES: &[&CredentialType] = &[&XERO_OAUTH2_API, &HTTP_BASIC_AUTH, &HTTP_HEADER_AUTH];

/// All registered credential types.
pub fn all() -> impl Iterator<Item = &'static CredentialType> {
    TYPES.iter().copied()
}

/// Looks a type up by its name (`httpBasicAuth`).
pub fn get(name: &str) -> Option<&'static CredentialType> {
    all().find(|t| t.name == name)
}

/// What is wrong with the data given for a credential. Messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("unknown credential type '{0}'; GET /api/v1/credential-types lists the known ones")]
    UnknownType(String),
    #[error("credential data must be a JSON object of fields")]
    NotAnObject,
    #[error("field '{field}' is required for credential type '{ty}'")]
    Missing {
        ty: &'static str,
        field: &'static str,
    },
    #[error("field '{field}' must be a string")]
    NotAString { field: String },
    #[error("field '{field}' must be one of: {options}")]
    NotAnOption {
        field: &'static str,
        options: String,
    },
    #[error("credential type '{ty}' has no field '{field}'; its fields are: {known}")]
    UnknownField {
        ty: &'static str,
        field: String,
        known: String,
    },
}

/// Credential data split into the part that may be shown and the part that must be encrypted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SplitData {
    pub public: Map<String, Value>,
    pub secret: Map<String, Value>,
}

impl CredentialType {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Validates data for a new credential (every required field present) and splits it.
    pub fn split_new(&'static self, data: &Value) -> Result<SplitData, DataError> {
        let split = self.split(data)?;
        for f in self.fields.iter().filter(|f| f.required) {
            let present = if f.secret {
                split.secret.contains_key(f.name)
            } else {
                split.public.contains_key(f.name)
            };
            if !present && f.default.is_none() {
                return Err(DataError::Missing {
                    ty: self.name,
                    field: f.name,
                });
            }
        }
        Ok(split)
    }

    /// Validates a partial update and splits it; absent fields are left as they were.
    pub fn split(&'static self, data: &Value) -> Result<SplitData, DataError> {
        let obj = data.as_object().ok_or(DataError::NotAnObject)?;
        let mut out = SplitData::default();
        for (key, value) in obj {
            let spec = self.field(key).ok_or_else(|| DataError::UnknownField {
                ty: self.name,
                field: key.clone(),
                known: self
                    .fields
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                _ => {
                    return Err(DataError::NotAString { field: key.clone() });
                }
            };
            if !spec.options.is_empty() && !spec.options.contains(&s.as_str()) {
                return Err(DataError::NotAnOption {
                    field: spec.name,
                    options: spec.options.join(", "),
                });
            }
            if spec.required && s.trim().is_empty() {
                return Err(DataError::Missing {
                    ty: self.name,
                    field: spec.name,
                });
            }
            let target = if spec.secret {
                &mut out.secret
            } else {
                &mut out.public
            };
            target.insert(key.clone(), Value::String(s));
        }
        Ok(out)
    }

    /// Names of the secret fields, for "is set" indicators in responses.
    pub fn secret_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().filter(|f| f.secret).map(|f| f.name)
    }
}

/// Validates data against a type by name.
pub fn split_new(type_name: &str, data: &Value) -> Result<SplitData, DataError> {
    get(type_name)
        .ok_or_else(|| DataError::UnknownType(type_name.to_string()))?
        .split_new(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn basic_auth_password_is_secret_and_user_is_not() {
        let split = split_new("httpBasicAuth", &json!({"user": "ann", "password": "pw"})).unwrap();
        assert_eq!(split.public.get("user"), Some(&json!("ann")));
        assert_eq!(split.secret.get("password"), Some(&json!("pw")));
        assert!(!split.public.contains_key("password"));
    }

    #[test]
    fn missing_required_field_is_named_without_values() {
        let err = split_new("httpHeaderAuth", &json!({"value": "s3cret"})).unwrap_err();
        assert_eq!(
            err,
            DataError::Missing {
                ty: "httpHeaderAuth",
                field: "name"
            }
        );
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn unknown_fields_and_types_are_rejected() {
        assert!(matches!(
            split_new(
                "httpBasicAuth",
                &json!({"user": "a", "password": "b", "pw": "c"})
            ),
            Err(DataError::UnknownField { .. })
        ));
        assert!(matches!(
            split_new("nope", &json!({})),
            Err(DataError::UnknownType(_))
        ));
        assert!(matches!(
            split_new("httpBasicAuth", &json!([1])),
            Err(DataError::NotAnObject)
        ));
    }
}
