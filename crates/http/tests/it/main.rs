//! `molecule-http`'s integration tests, linked as one binary (one link instead of one per file;
//! nextest names them `it <module>::<test>`).

mod auth_matrix;
mod browser;
mod console;
mod delegations;
mod failures;
mod hierarchy;
mod limits;
mod metrics;
mod operator;
mod proxy;
mod schedules;

/// A response header as text ("" when absent).
#[allow(clippy::unwrap_used)] // test code: a non-text header is the failure report
pub(crate) fn header<B>(resp: &actix_web::dev::ServiceResponse<B>, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
