//! A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432 (user postgres, trust
//! auth) that the README's test command makes sure of with `scripts/ensure-postgres.sh`.
//! Unreachable PostgreSQL fails the test: a skipped PostgreSQL run would look green while
//! proving nothing.

use sqlx::Connection as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The maintenance database the harness connects to for `CREATE DATABASE`.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database this test process created; dropped again when this value is, unless `keep`.
pub struct FreshDatabase {
    pub name: String,
    pub url: String,
    /// Set when a test failed, so the database stays for a look.
    pub keep: bool,
}

async fn admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(ADMIN_URL)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {ADMIN_URL} ({e}). The PostgreSQL variants of the \
             end-to-end tests need a server on 127.0.0.1:5432 with user postgres and trust \
             auth; the README's test command (scripts/ensure-postgres.sh) sets one up."
            )
        })
}

impl FreshDatabase {
    pub async fn create() -> FreshDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "ferrocopr_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = admin().await;
        // The name is ours and made of [a-z0-9_]: safe to splice into the statement.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        FreshDatabase {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
            keep: false,
        }
    }
}

impl Drop for FreshDatabase {
    /// Drops the database from a thread of its own, so it works inside any runtime; `FORCE` ends
    /// the connections ferrocopr's pool may still hold.
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept the test's database: {}", self.url);
            return;
        }
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(ADMIN_URL)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}
