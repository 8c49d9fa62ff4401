//! Credentials: a name, a type, public fields in plain JSON and secret fields sealed by the vault.
//!
//! Which fields are secret is decided by the caller (the credential type registry); this module
//! only guarantees that what it is given as secret is never stored or returned in plaintext.
//! Writes that read-modify-write a sealed blob are conditional on the blob being unchanged, so a
//! concurrent key rotation or update is never silently overwritten.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_ms, Result, Store, StoreError};

/// Secret fields, decrypted; each value is exposed only where it is used.
pub type SecretFields = BTreeMap<String, SecretString>;

/// A credential as it may be shown: no secret values, only which secret fields are set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub data: Map<String, Value>,
    pub secret_fields_set: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewCredential {
    pub name: String,
    pub type_name: String,
    pub public: Map<String, Value>,
    pub secret: Map<String, Value>,
}

/// A change: absent parts stay as they are; in the maps, `null` removes a field.
#[derive(Default)]
pub struct CredentialPatch {
    pub name: Option<String>,
    pub public: Map<String, Value>,
    pub secret: Map<String, Value>,
}

fn label(id: &str) -> String {
    crate::CREDENTIAL_SECRETS.label(id)
}

struct Row_ {
    cred: Credential,
    sealed: Vec<u8>,
    key_version: u32,
}

const COLUMNS: &str =
    "id, name, type, public_data, secret_fields, secret_data, key_version, created_at, updated_at";

fn field_names(secret: &Map<String, Value>) -> String {
    secret.keys().cloned().collect::<Vec<_>>().join(",")
}

impl Store {
    fn seal_secret(&self, id: &str, secret: &Map<String, Value>) -> Result<(Vec<u8>, u32)> {
        let plain = serde_json::to_vec(secret).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.keyring.seal(&label(id), &plain)?)
    }

    fn open_secret(&self, id: &str, version: u32, sealed: &[u8]) -> Result<Map<String, Value>> {
        let plain = self.keyring.open(&label(id), version, sealed)?;
        serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Corrupt(format!("secret of credential {id} is not JSON")))
    }

    fn credential_row(&self, r: &AnyRow) -> Result<Row_> {
        let id: String = r.try_get("id")?;
        let public: String = r.try_get("public_data")?;
        let data: Map<String, Value> = serde_json::from_str(&public)
            .map_err(|_| StoreError::Corrupt(format!("public data of credential {id}")))?;
        let key_version = u32::try_from(r.try_get::<i64, _>("key_version")?)
            .map_err(|_| StoreError::Corrupt("key version out of range".into()))?;
        let sealed: Vec<u8> = r.try_get("secret_data")?;
        let names: String = r.try_get("secret_fields")?;
        Ok(Row_ {
            cred: Credential {
                name: r.try_get("name")?,
                type_name: r.try_get("type")?,
                data,
                secret_fields_set: names
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                id,
            },
            sealed,
            key_version,
        })
    }

    pub async fn create_credential(&self, new: NewCredential) -> Result<Credential> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (sealed, version) = self.seal_secret(&id, &new.secret)?;
        let now = now_ms();
        let public = Value::Object(new.public.clone()).to_string();
        sqlx::query(&format!(
            "INSERT INTO credentials ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&id)
        .bind(&new.name)
        .bind(&new.type_name)
        .bind(public)
        .bind(field_names(&new.secret))
        .bind(sealed)
        .bind(i64::from(version))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Credential {
            id,
            name: new.name,
            type_name: new.type_name,
            data: new.public,
            secret_fields_set: new.secret.keys().cloned().collect(),
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn list_credentials(&self) -> Result<Vec<Credential>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM credentials ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| self.credential_row(r).map(|r| r.cred))
            .collect()
    }

    async fn credential_full(&self, id: &str) -> Result<Row_> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM credentials WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("credential {id}")))?;
        self.credential_row(&row)
    }

    pub async fn get_credential(&self, id: &str) -> Result<Credential> {
        Ok(self.credential_full(id).await?.cred)
    }

    /// The decrypted secret fields, for the one place that uses them (signing a request).
    pub async fn credential_secrets(&self, id: &str) -> Result<SecretFields> {
        let row = self.credential_full(id).await?;
        let secret = self.open_secret(id, row.key_version, &row.sealed)?;
        Ok(secret
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, SecretString::from(s))
            })
            .collect())
    }

    pub async fn update_credential(&self, id: &str, patch: CredentialPatch) -> Result<Credential> {
        // Retry if a concurrent writer (another update, a key rotation) changed the row.
        for _ in 0..5 {
            let row = self.credential_full(id).await?;
            let mut public = row.cred.data.clone();
            merge(&mut public, &patch.public);
            let mut secret = self.open_secret(id, row.key_version, &row.sealed)?;
            merge(&mut secret, &patch.secret);
            let (sealed, version) = self.seal_secret(id, &secret)?;
            let name = patch.name.clone().unwrap_or(row.cred.name.clone());
            let now = now_ms();
            let done = sqlx::query(
                "UPDATE credentials SET name = $1, public_data = $2, secret_data = $3, key_version = $4, updated_at = $5, secret_fields = $8 WHERE id = $6 AND secret_data = $7",
            )
            .bind(&name)
            .bind(Value::Object(public.clone()).to_string())
            .bind(sealed)
            .bind(i64::from(version))
            .bind(now)
            .bind(id)
            .bind(&row.sealed)
            .bind(field_names(&secret))
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Credential {
                    name,
                    data: public,
                    secret_fields_set: secret.keys().cloned().collect(),
                    updated_at: now,
                    ..row.cred
                });
            }
        }
        Err(StoreError::Conflict(format!(
            "credential {id} is being changed by someone else; try again"
        )))
    }

    pub async fn delete_credential(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM credentials WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("credential {id}")));
        }
        Ok(())
    }

    pub async fn count_credentials(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM credentials")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}
