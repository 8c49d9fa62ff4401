//! The store: every byte Ledgerflow keeps, in SQLite (embedded, the default) or PostgreSQL.
//!
//! This is the only crate that speaks SQL. Queries are written once with `$n` placeholders in
//! the common dialect of both engines and run through sqlx's `Any` driver; migrations live in
//! [`migrations`]. Secrets are sealed by the [`vault`] before they are written and leave this crate
//! only as [`secrecy::SecretString`]s. This crate knows nothing of HTTP or of any remote API.

pub mod credentials;
pub mod leases;
pub mod migrations;
pub mod oauth;
pub mod testing;
pub mod users;
pub mod vault;
pub mod webhooks;
pub mod workflows;

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

pub use credentials::{Credential, CredentialPatch, NewCredential, SecretFields};
pub use oauth::{OAuthStatus, PendingAuthorization, StateCheck, Tenant, TokenRecord};
pub use users::{ApiKey, User};
pub use vault::{KeySource, Keyring, VaultError};
pub use webhooks::{WebhookEvent, WebhookHealth};
pub use workflows::{ExecutionFilter, ExecutionRecord, WorkflowRecord};

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported database URL '{0}': use sqlite://<path> or postgres://user@host:port/db")]
    UnsupportedUrl(String),
    #[error("the database was written by a newer Ledgerflow (schema version {found}, this binary knows up to {known}); upgrade Ledgerflow")]
    SchemaTooNew { found: i64, known: i64 },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the encryption key version {version} from {source_name} does not match the key this database's secrets were encrypted with; start with the original key (LEDGERFLOW_ENCRYPTION_KEY or the key file in LEDGERFLOW_HOME)")]
    WrongKey { version: u32, source_name: String },
    #[error("this database's secrets use encryption key version {version}, which {source_name} does not hold; add that key version")]
    KeyMissing { version: u32, source_name: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A handle on the database and the keyring. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    keyring: Keyring,
}

/// The default SQLite URL for a home folder.
pub fn sqlite_url(home: &Path) -> String {
    format!("sqlite://{}?mode=rwc", home.join("ledgerflow.db").display())
}

/// Plaintext the vault seals once per key version, to tell a wrong key from a right one at start.
const KEY_CHECK: &[u8] = b"ledgerflow key check";
const KEY_CHECK_LABEL: &str = "vault_keys";

impl Store {
    /// Connects, migrates, and checks that the keyring opens this database's secrets.
    pub async fn connect(url: &str, keyring: Keyring) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer; busy_timeout makes
                            // writers from other processes wait instead of failing.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        let store = Store {
            pool,
            backend,
            keyring,
        };
        store.migrate().await?;
        store.check_keys().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // Serialise migrations of processes starting together on one database.
            conn.execute("SELECT pg_advisory_lock(7406150001)").await?;
            let result = migrations::migrate(&mut conn, self.backend).await;
            conn.execute("SELECT pg_advisory_unlock(7406150001)")
                .await?;
            result
        } else {
            migrations::migrate(&mut conn, self.backend).await
        }
    }

    /// Every key version the database has seen must be loaded and must be the right key;
    /// key versions new to the database are registered.
    async fn check_keys(&self) -> Result<()> {
        let rows = sqlx::query("SELECT version, check_value FROM vault_keys")
            .fetch_all(&self.pool)
            .await?;
        let loaded = self.keyring.versions();
        let mut known = Vec::new();
        for row in rows {
            let version = u32::try_from(row.try_get::<i64, _>("version")?)
                .map_err(|_| StoreError::Corrupt("key version out of range".into()))?;
            let check: Vec<u8> = row.try_get("check_value")?;
            known.push(version);
            if !loaded.contains(&version) {
                // Tolerate retired versions only if nothing still uses them.
                if self.version_in_use(version).await? {
                    return Err(StoreError::KeyMissing {
                        version,
                        source_name: self.keyring.source().to_string(),
                    });
                }
                continue;
            }
            match self.keyring.open(KEY_CHECK_LABEL, version, &check) {
                Ok(plain) if plain == KEY_CHECK => {}
                _ => {
                    return Err(StoreError::WrongKey {
                        version,
                        source_name: self.keyring.source().to_string(),
                    })
                }
            }
        }
        for version in loaded.into_iter().filter(|v| !known.contains(v)) {
            self.register_key_version(version).await?;
        }
        Ok(())
    }

    async fn register_key_version(&self, version: u32) -> Result<()> {
        let check = self
            .keyring
            .seal_with(version, KEY_CHECK_LABEL, KEY_CHECK)?;
        sqlx::query(
            "INSERT INTO vault_keys (version, check_value, created_at) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
        )
        .bind(i64::from(version))
        .bind(check)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn version_in_use(&self, version: u32) -> Result<bool> {
        for t in SEALED {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM {} WHERE key_version = $1",
                t.table
            ))
            .bind(i64::from(version))
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            if n > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Re-encrypts every secret with the newest key version, adding one first when the keys come
    /// from the key file. Each row is rewritten on its own, only if unchanged since it was read, so
    /// an interruption at any point leaves every secret readable with one of the kept versions.
    /// Returns (new version, rows re-encrypted).
    pub async fn rotate_keys(&self, add_version: bool) -> Result<(u32, u64)> {
        let target = if add_version {
            self.keyring.add_version()?
        } else {
            self.keyring.current_version()
        };
        self.register_key_version(target).await?;
        let mut rewritten = 0;
        for t in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT {id} AS id, key_version FROM {table} WHERE key_version <> $1 ORDER BY {id}",
                id = t.id,
                table = t.table
            ))
            .bind(i64::from(target))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let id: String = r.try_get("id")?;
                let from = r.try_get::<i64, _>("key_version")? as u32;
                if self.reseal(t, &id, from, target).await? {
                    rewritten += 1;
                }
            }
        }
        Ok((target, rewritten))
    }

    /// Re-seals one row under `target`; false if it changed meanwhile or is gone.
    async fn reseal(&self, t: &SealedTable, id: &str, from: u32, target: u32) -> Result<bool> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {blob} AS blob FROM {table} WHERE {id_col} = $1 AND key_version = $2",
            blob = t.blob,
            table = t.table,
            id_col = t.id
        ))
        .bind(id)
        .bind(i64::from(from))
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(false);
        };
        let old: Vec<u8> = row.try_get("blob")?;
        let label = t.label(id);
        let plain = self.keyring.open(&label, from, &old)?;
        let new = self.keyring.seal_with(target, &label, &plain)?;
        let done = sqlx::query(&format!(
            "UPDATE {table} SET {blob} = $1, key_version = $2 WHERE {id_col} = $3 AND key_version = $4 AND {blob} = $5",
            blob = t.blob,
            table = t.table,
            id_col = t.id
        ))
        .bind(new)
        .bind(i64::from(target))
        .bind(id)
        .bind(i64::from(from))
        .bind(old)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many secrets are sealed under each key version.
    pub async fn key_usage(&self) -> Result<Vec<(u32, i64)>> {
        let mut usage = std::collections::BTreeMap::new();
        for t in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT key_version, COUNT(*) AS n FROM {} GROUP BY key_version",
                t.table
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let v = r.try_get::<i64, _>("key_version")? as u32;
                *usage.entry(v).or_insert(0) += r.try_get::<i64, _>("n")?;
            }
        }
        Ok(usage.into_iter().collect())
    }

    /// Opens every stored secret; returns (readable, labels of those that are not).
    pub async fn verify_secrets(&self) -> Result<(u64, Vec<String>)> {
        let (mut ok, mut bad) = (0, Vec::new());
        for t in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT {id} AS id, key_version, {blob} AS blob FROM {table}",
                id = t.id,
                blob = t.blob,
                table = t.table
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let id: String = r.try_get("id")?;
                let version = r.try_get::<i64, _>("key_version")? as u32;
                let blob: Vec<u8> = r.try_get("blob")?;
                match self.keyring.open(&t.label(&id), version, &blob) {
                    Ok(_) => ok += 1,
                    Err(_) => bad.push(t.label(&id)),
                }
            }
        }
        Ok((ok, bad))
    }
}

/// A table holding sealed values: every one has a `key_version` column, and its associated data
/// is `{label}:{id}`.
pub(crate) struct SealedTable {
    table: &'static str,
    id: &'static str,
    blob: &'static str,
    label: &'static str,
}

impl SealedTable {
    pub(crate) fn label(&self, id: &str) -> String {
        format!("{}:{id}", self.label)
    }
}

pub(crate) const CREDENTIAL_SECRETS: SealedTable = SealedTable {
    table: "credentials",
    id: "id",
    blob: "secret_data",
    label: "credential",
};
pub(crate) const OAUTH_TOKENS: SealedTable = SealedTable {
    table: "credential_oauth",
    id: "credential_id",
    blob: "sealed_tokens",
    label: "oauth",
};
pub(crate) const OAUTH_STATES: SealedTable = SealedTable {
    table: "oauth_states",
    id: "state_hash",
    blob: "sealed_verifier",
    label: "oauth_state",
};
const SEALED: &[SealedTable] = &[CREDENTIAL_SECRETS, OAUTH_TOKENS, OAUTH_STATES];

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
