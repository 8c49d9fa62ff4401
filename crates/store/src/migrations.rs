//! Schema migrations for SQLite and PostgreSQL.
//!
//! One ordered list; each step is written once in the common subset of both dialects, with
//! `{blob}` standing for the binary column type (`BLOB` / `BYTEA`). Applied steps are recorded in
//! `schema_migrations`; a database newer than this binary is refused rather than guessed at.
//! Timestamps are integer milliseconds since the Unix epoch in every table.

use sqlx::{AnyConnection, Executor, Row};

use crate::{Backend, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: r#"
CREATE TABLE vault_keys (
    version BIGINT PRIMARY KEY,
    check_value {blob} NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_one_owner ON users (role) WHERE role = 'owner';
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    public_data TEXT NOT NULL,
    secret_fields TEXT NOT NULL,
    secret_data {blob} NOT NULL,
    key_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX credentials_type ON credentials (type);
"#,
    },
    Migration {
        version: 2,
        name: "oauth",
        sql: r#"
CREATE TABLE credential_oauth (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    status_reason TEXT,
    sealed_tokens {blob} NOT NULL,
    key_version BIGINT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    granted_scope TEXT NOT NULL,
    connected_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    generation BIGINT NOT NULL,
    last_error TEXT,
    last_error_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    sealed_verifier {blob} NOT NULL,
    key_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE credential_tenants (
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    tenant_name TEXT NOT NULL,
    tenant_type TEXT NOT NULL,
    auth_event_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (credential_id, tenant_id)
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        name: "workflows",
        sql: r#"
CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    active BIGINT NOT NULL,
    definition TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    trigger_data TEXT NOT NULL,
    run_data TEXT,
    error TEXT,
    retry_of TEXT,
    claimed_by TEXT,
    heartbeat_at BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX executions_queue ON executions (status, created_at);
CREATE INDEX executions_workflow ON executions (workflow_id, created_at);
"#,
    },
    Migration {
        version: 4,
        name: "xero webhooks",
        sql: r#"
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    event_category TEXT NOT NULL,
    event_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_url TEXT NOT NULL,
    event_date TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    processed_at BIGINT
);
CREATE INDEX webhook_events_pending ON webhook_events (status, received_at);
CREATE TABLE webhook_health (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
    deliveries BIGINT NOT NULL,
    events BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    bad_signatures BIGINT NOT NULL,
    last_delivery_at BIGINT,
    last_bad_signature_at BIGINT,
    intent_probe_at BIGINT
);
"#,
    },
    Migration {
        version: 5,
        name: "execution checkpoints",
        sql: r#"
ALTER TABLE executions ADD COLUMN checkpoint TEXT
"#,
    },
    Migration {
        version: 6,
        name: "xero polling",
        sql: r#"
CREATE TABLE poll_cursors (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    cursor TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, node)
);
CREATE TABLE poll_seen (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (workflow_id, node, record_id)
)
"#,
    },
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

pub(crate) async fn migrate(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    let applied: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await?
        .try_get("v")?;
    if applied > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: applied,
            known: latest_version(),
        });
    }
    // SQLite: take the write lock up front (BEGIN IMMEDIATE) so two processes migrating at once
    // queue on busy_timeout instead of failing to upgrade a read lock. PostgreSQL callers hold an
    // advisory lock around this function.
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    for m in MIGRATIONS.iter().filter(|m| m.version > applied) {
        conn.execute(begin).await?;
        let result = apply(conn, m, blob).await;
        match result {
            Ok(()) => {
                conn.execute("COMMIT").await?;
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn apply(conn: &mut AnyConnection, m: &Migration, blob: &str) -> Result<(), StoreError> {
    // Another process may have applied it while we waited for the lock.
    let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1")
        .bind(m.version)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    if done > 0 {
        return Ok(());
    }
    for stmt in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        conn.execute(stmt.replace("{blob}", blob).as_str()).await?;
    }
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
        .bind(m.version)
        .bind(m.name)
        .bind(crate::now_ms())
        .execute(&mut *conn)
        .await?;
    tracing::info!(version = m.version, name = m.name, "applied migration");
    Ok(())
}
