//! Throwaway databases for tests of this and other crates: a fresh SQLite file, or a fresh
//! PostgreSQL database created on the server named by `LEDGERFLOW_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped by [`TestDb::drop_db`].
//! Where no PostgreSQL server answers, PostgreSQL tests are skipped with a notice, except under
//! CI (`CI` set), where a missing server is a failure.

use sqlx::{Connection, Executor};

/// A database made for one test.
pub struct TestDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
}

pub const POSTGRES_ENV: &str = "LEDGERFLOW_TEST_POSTGRES_URL";

fn admin_url() -> String {
    std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    pub fn sqlite(dir: &std::path::Path) -> TestDb {
        TestDb {
            url: crate::sqlite_url(dir),
            admin_url: None,
            name: "sqlite".into(),
        }
    }

    /// A new, empty PostgreSQL database; `None` (with a notice) when there is no server outside CI.
    pub async fn postgres() -> Option<TestDb> {
        sqlx::any::install_default_drivers();
        let admin = admin_url();
        let mut conn = match sqlx::AnyConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping PostgreSQL tests: cannot connect to {admin}: {e}");
                return None;
            }
            Err(e) => panic!("PostgreSQL at {admin} is required under CI: {e}"),
        };
        let name = format!("lf_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin_url: Some(admin),
            name,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.admin_url.is_some()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops a PostgreSQL test database (connections to it are terminated first).
    pub async fn drop_db(self) {
        let Some(admin) = self.admin_url else { return };
        if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
        }
    }
}
