//! PostgreSQL plumbing for the services that own tables (gateway: the
//! catalog schema; search: the faces schema): a diesel-async connection pool
//! and migrations that run at start-up under an advisory lock, so several
//! services or replicas starting at once never race.

use std::time::Duration;

use anyhow::Context;
use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

pub use diesel_async::pooled_connection::deadpool::Object as PooledConnection;

pub type PgPool = Pool<AsyncPgConnection>;

/// Advisory lock key held while migrations run ("fpmigr").
const MIGRATION_LOCK: i64 = 0x6670_6d69_6772;

/// A pool of at most `size` connections; connects lazily.
pub fn pool(url: &str, size: usize) -> anyhow::Result<PgPool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Pool::builder(manager)
        .max_size(size)
        .build()
        .context("building the database pool")
}

/// Runs the pending migrations of one set (`migrations/<set>`), holding a
/// session-level advisory lock for the duration. Returns the versions applied.
pub async fn migrate(url: &str, migrations: EmbeddedMigrations) -> anyhow::Result<Vec<String>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
        )?;
        let applied = conn
            .run_pending_migrations(migrations)
            .map(|versions| versions.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
        )?;
        applied
    })
    .await
    .context("migration task panicked")?
}

/// Checks that the database answers a trivial query within `timeout`.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), String> {
    let check = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        conn.batch_execute("SELECT 1")
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(result) => result.map_err(|e| format!("database: {e}")),
        Err(_) => Err("database: no answer in time".into()),
    }
}

/// The URL without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Runs `sql` once; for tests and tools.
pub async fn execute(pool: &PgPool, sql: &str) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(sql).execute(&mut conn).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}
