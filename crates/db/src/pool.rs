//! The shared connection pool: building it (proving the URL at boot), ping, and a redacted URL
//! for messages.
//!
//! Must not know: the schema or who checks connections out.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};

use crate::DbError;

/// The shared connection pool.
pub type Pool = DeadPool<AsyncPgConnection>;
/// A connection checked out of the [`Pool`].
pub type Conn = Object<AsyncPgConnection>;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long to wait for a new connection (and for the first one at boot).
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The URL with any password replaced, safe for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Builds the pool and proves it works by checking out one connection within
/// `opts.connect_timeout`, so a wrong `DATABASE_URL` fails at boot, not on the first request.
pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Pool, DbError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(DbError::BadUrl(format!(
            "{:?} must start with postgres:// or postgresql://",
            redact_url(url)
        )));
    }
    let mut config = ManagerConfig::default();
    // Fast recycling: no `SELECT 1` on every checkout; broken connections surface as errors.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    let pool = DeadPool::builder(manager)
        .max_size(opts.max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(opts.connect_timeout))
        .create_timeout(Some(opts.connect_timeout))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))?;
    let unreachable = |reason: String| DbError::Unreachable {
        target: redact_url(url),
        timeout_s: opts.connect_timeout.as_secs(),
        reason,
    };
    match tokio::time::timeout(opts.connect_timeout, pool.get()).await {
        Ok(Ok(_conn)) => Ok(pool),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

/// `SELECT 1` through the pool.
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact_url("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
