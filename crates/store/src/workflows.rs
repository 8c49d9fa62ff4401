//! Workflows (their n8n-shaped JSON, stored as text) and executions: a durable queue with
//! claims and heartbeats, so a process that dies leaves work that is resumed or marked crashed,
//! never lost.
//!
//! This module does not interpret workflow JSON or run data; the engine does.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_ms, Backend, Result, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRecord {
    pub id: String,
    pub name: String,
    pub active: bool,
    /// The workflow as JSON text (n8n's shape).
    #[serde(skip)]
    pub definition: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The states of an execution.
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const CRASHED: &str = "crashed";
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub id: String,
    pub workflow_id: String,
    pub status: String,
    /// What started it: `manual`, `webhook`, `schedule`, `retry`, `error`, `trigger`, …
    pub mode: String,
    /// The trigger's input (JSON text).
    #[serde(skip)]
    pub trigger_data: String,
    /// Per-node input and output (JSON text, size-capped by the engine).
    #[serde(skip)]
    pub run_data: Option<String>,
    pub error: Option<String>,
    pub retry_of: Option<String>,
    pub claimed_by: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const WF_COLUMNS: &str = "id, name, active, definition, version, created_at, updated_at";
const EX_COLUMNS: &str = "id, workflow_id, status, mode, trigger_data, run_data, error, retry_of, claimed_by, created_at, started_at, finished_at";

fn workflow(r: &AnyRow) -> Result<WorkflowRecord> {
    Ok(WorkflowRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        active: r.try_get::<i64, _>("active")? != 0,
        definition: r.try_get("definition")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn execution(r: &AnyRow) -> Result<ExecutionRecord> {
    Ok(ExecutionRecord {
        id: r.try_get("id")?,
        workflow_id: r.try_get("workflow_id")?,
        status: r.try_get("status")?,
        mode: r.try_get("mode")?,
        trigger_data: r.try_get("trigger_data")?,
        run_data: r.try_get("run_data")?,
        error: r.try_get("error")?,
        retry_of: r.try_get("retry_of")?,
        claimed_by: r.try_get("claimed_by")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Filters for listing executions.
#[derive(Debug, Default, Clone)]
pub struct ExecutionFilter {
    pub workflow_id: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
}

impl Store {
    pub async fn create_workflow(&self, name: &str, definition: &str) -> Result<WorkflowRecord> {
        let now = now_ms();
        let w = WorkflowRecord {
            id: uuid::Uuid::new_v4().simple().to_string()[..16].to_string(),
            name: name.to_string(),
            active: false,
            definition: definition.to_string(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO workflows ({WF_COLUMNS}) VALUES ($1, $2, 0, $3, 1, $4, $4)"
        ))
        .bind(&w.id)
        .bind(&w.name)
        .bind(&w.definition)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(w)
    }

    pub async fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {WF_COLUMNS} FROM workflows ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(workflow).collect()
    }

    pub async fn active_workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {WF_COLUMNS} FROM workflows WHERE active = 1 ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(workflow).collect()
    }

    pub async fn workflow(&self, id: &str) -> Result<WorkflowRecord> {
        let row = sqlx::query(&format!("SELECT {WF_COLUMNS} FROM workflows WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("workflow {id}")))?;
        workflow(&row)
    }

    /// Replaces a workflow's name and definition; its version goes up by one.
    pub async fn update_workflow(
        &self,
        id: &str,
        name: &str,
        definition: &str,
    ) -> Result<WorkflowRecord> {
        let done = sqlx::query(
            "UPDATE workflows SET name = $1, definition = $2, version = version + 1, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(definition)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("workflow {id}")));
        }
        self.workflow(id).await
    }

    pub async fn set_workflow_active(&self, id: &str, active: bool) -> Result<WorkflowRecord> {
        let done = sqlx::query("UPDATE workflows SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(active))
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("workflow {id}")));
        }
        self.workflow(id).await
    }

    pub async fn delete_workflow(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM workflows WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("workflow {id}")));
        }
        Ok(())
    }

    /// Queues an execution; a worker claims it with [`Store::claim_execution`].
    pub async fn enqueue_execution(
        &self,
        workflow_id: &str,
        mode: &str,
        trigger_data: &str,
        retry_of: Option<&str>,
    ) -> Result<ExecutionRecord> {
        self.insert_execution(workflow_id, mode, trigger_data, retry_of, None)
            .await
    }

    /// Inserts an execution: queued, or already running under `claimed_by`.
    async fn insert_execution(
        &self,
        workflow_id: &str,
        mode: &str,
        trigger_data: &str,
        retry_of: Option<&str>,
        claimed_by: Option<&str>,
    ) -> Result<ExecutionRecord> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = now_ms();
        let (status, started) = match claimed_by {
            Some(_) => (status::RUNNING, Some(now)),
            None => (status::QUEUED, None),
        };
        sqlx::query(
            "INSERT INTO executions (id, workflow_id, status, mode, trigger_data, retry_of, claimed_by, heartbeat_at, created_at, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
        )
        .bind(&id)
        .bind(workflow_id)
        .bind(status)
        .bind(mode)
        .bind(trigger_data)
        .bind(retry_of)
        .bind(claimed_by)
        .bind(started)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.execution(&id).await
    }

    /// Claims the oldest queued execution for `worker`; `None` when the queue is empty. Two
    /// workers never claim the same execution (a conditional update decides; on PostgreSQL the
    /// candidate row is locked with `SKIP LOCKED`).
    pub async fn claim_execution(&self, worker: &str) -> Result<Option<ExecutionRecord>> {
        let now = now_ms();
        let pick = match self.backend {
            Backend::Postgres => "SELECT id FROM executions WHERE status = 'queued' ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "SELECT id FROM executions WHERE status = 'queued' ORDER BY created_at, id LIMIT 1",
        };
        let row = sqlx::query(&format!(
            "UPDATE executions SET status = 'running', claimed_by = $1, heartbeat_at = $2, started_at = COALESCE(started_at, $2) \
             WHERE id = ({pick}) AND status = 'queued' RETURNING id"
        ))
        .bind(worker)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => {
                let id: String = r.try_get("id")?;
                Ok(Some(self.execution(&id).await?))
            }
            None => Ok(None),
        }
    }

    /// Saves progress after a node: display run data and the resumable state, and renews the
    /// claim. False if the execution is no longer this worker's (cancelled or recovered).
    pub async fn checkpoint_execution(
        &self,
        id: &str,
        worker: &str,
        run_data: &str,
        checkpoint: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE executions SET heartbeat_at = $1, run_data = $2, checkpoint = $3 WHERE id = $4 AND claimed_by = $5 AND status = 'running'",
        )
        .bind(now_ms())
        .bind(run_data)
        .bind(checkpoint)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The resumable state saved after the last completed node, if any.
    pub async fn execution_checkpoint(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT checkpoint FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("execution {id}")))?;
        Ok(row.try_get("checkpoint")?)
    }

    /// Creates an execution already claimed by `worker` (run in this process, e.g. a webhook
    /// whose caller waits for the answer).
    pub async fn start_claimed_execution(
        &self,
        workflow_id: &str,
        mode: &str,
        trigger_data: &str,
        worker: &str,
    ) -> Result<ExecutionRecord> {
        self.insert_execution(workflow_id, mode, trigger_data, None, Some(worker))
            .await
    }

    /// A running execution's worker is alive; also saves progress (run data so far).
    pub async fn heartbeat_execution(
        &self,
        id: &str,
        worker: &str,
        run_data: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE executions SET heartbeat_at = $1, run_data = COALESCE($2, run_data) WHERE id = $3 AND claimed_by = $4 AND status = 'running'",
        )
        .bind(now_ms())
        .bind(run_data)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how an execution ended, if `worker` still owns it (not cancelled, not recovered
    /// and handed to another worker meanwhile). Returns whether it was recorded.
    pub async fn finish_execution(
        &self,
        id: &str,
        worker: &str,
        status: &str,
        run_data: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE executions SET status = $1, run_data = COALESCE($2, run_data), error = $3, finished_at = $4 \
             WHERE id = $5 AND status IN ('running', 'queued') AND (claimed_by = $6 OR claimed_by IS NULL)",
        )
        .bind(status)
        .bind(run_data)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a queued or running execution; false if it had already ended.
    pub async fn cancel_execution(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE executions SET status = 'cancelled', finished_at = $1, error = COALESCE(error, 'cancelled by a person') WHERE id = $2 AND status IN ('queued', 'running')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Executions whose worker stopped heart-beating before `stale_before_ms` (a killed or
    /// crashed process): those with a checkpoint go back to the queue to be resumed after their
    /// last completed node; those that never completed a node are marked crashed. Returns
    /// (requeued, crashed) ids.
    pub async fn recover_stale_executions(
        &self,
        stale_before_ms: i64,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let rows = sqlx::query(
            "SELECT id, checkpoint FROM executions WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $1)",
        )
        .bind(stale_before_ms)
        .fetch_all(&self.pool)
        .await?;
        let (mut requeued, mut crashed) = (Vec::new(), Vec::new());
        for r in rows {
            let id: String = r.try_get("id")?;
            let checkpoint: Option<String> = r.try_get("checkpoint")?;
            let resumable = checkpoint.is_some();
            let sql = if resumable {
                "UPDATE executions SET status = 'queued', claimed_by = NULL WHERE id = $1 AND status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $2)"
            } else {
                "UPDATE executions SET status = 'crashed', finished_at = $2, error = 'the process running it stopped (crash or kill) before any node finished; retry it to run it again' WHERE id = $1 AND status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $2)"
            };
            let done = sqlx::query(sql)
                .bind(&id)
                .bind(stale_before_ms)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                if resumable {
                    requeued.push(id);
                } else {
                    crashed.push(id);
                }
            }
        }
        Ok((requeued, crashed))
    }

    pub async fn execution(&self, id: &str) -> Result<ExecutionRecord> {
        let row = sqlx::query(&format!(
            "SELECT {EX_COLUMNS} FROM executions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("execution {id}")))?;
        execution(&row)
    }

    pub async fn executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {EX_COLUMNS} FROM executions WHERE (CAST($1 AS TEXT) IS NULL OR workflow_id = CAST($1 AS TEXT)) AND (CAST($2 AS TEXT) IS NULL OR status = CAST($2 AS TEXT)) ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(filter.workflow_id.as_deref())
        .bind(filter.status.as_deref())
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(execution).collect()
    }

    /// How many executions are in a status (for metrics).
    pub async fn count_executions(&self, status: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM executions WHERE status = $1")
                .bind(status)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Deletes finished executions older than `before_ms` (the retention setting).
    pub async fn prune_executions(&self, before_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM executions WHERE finished_at IS NOT NULL AND finished_at < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// A polling trigger's cursor (opaque JSON text), if it has polled before.
    pub async fn poll_cursor(&self, workflow_id: &str, node: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT cursor FROM poll_cursors WHERE workflow_id = $1 AND node = $2")
                .bind(workflow_id)
                .bind(node)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("cursor")).transpose()?)
    }

    pub async fn save_poll_cursor(
        &self,
        workflow_id: &str,
        node: &str,
        cursor: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO poll_cursors (workflow_id, node, cursor, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (workflow_id, node) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(workflow_id)
        .bind(node)
        .bind(cursor)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Which of `ids` a polling trigger has not seen yet (nothing is recorded).
    pub async fn poll_unseen(
        &self,
        workflow_id: &str,
        node: &str,
        ids: &[String],
    ) -> Result<Vec<String>> {
        let mut unseen = Vec::new();
        for id in ids {
            let n: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM poll_seen WHERE workflow_id = $1 AND node = $2 AND record_id = $3",
            )
            .bind(workflow_id)
            .bind(node)
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            if n == 0 {
                unseen.push(id.clone());
            }
        }
        Ok(unseen)
    }

    /// Records ids a polling trigger has seen; returns those that were new.
    pub async fn poll_mark_seen(
        &self,
        workflow_id: &str,
        node: &str,
        ids: &[String],
    ) -> Result<Vec<String>> {
        let mut new = Vec::new();
        for id in ids {
            let done = sqlx::query(
                "INSERT INTO poll_seen (workflow_id, node, record_id) VALUES ($1, $2, $3) ON CONFLICT (workflow_id, node, record_id) DO NOTHING",
            )
            .bind(workflow_id)
            .bind(node)
            .bind(id)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                new.push(id.clone());
            }
        }
        Ok(new)
    }
}
