//! Leases: named locks with an expiry, shared by every process on the database.
//!
//! A lease is taken with one conditional upsert, atomic on SQLite and PostgreSQL alike: it
//! succeeds when the name is free, expired, or already held by the same holder (renewal). A holder
//! that dies simply lets its lease expire. Used for single-flight token refresh and, later, for
//! schedules and polls that must fire once across processes.

use crate::{now_ms, Result, Store};

impl Store {
    /// Takes or renews the lease `name` for `holder` for `ttl_ms`; false if someone else holds it.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease back early (only if `holder` still holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes leases that expired before `before_ms` (schedule ticks leave one each).
    pub async fn prune_leases(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM leases WHERE expires_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
