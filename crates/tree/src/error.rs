//! The use-cases' error type: one variant per public outcome, the cause kept as `#[source]`.
//!
//! Must not know: HTTP status codes or bodies (the HTTP crate maps each variant to one).

use serde_json::Value;

/// Any cause kept behind a public outcome.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a use-case refused or failed. The HTTP layer maps each variant to one status code;
/// every message says what to fix. `Unavailable` and `Internal` keep their cause for the log:
/// their `Display` never includes it, so a client never sees database text.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: a field is wrong.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// 401: no, unknown or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: valid credentials that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409, with details (e.g. the children that block a delete).
    #[error("{message}")]
    Conflict { message: String, details: Value },
    /// 412: a precondition the caller can meet (e.g. a required variable), with details.
    #[error("{message}")]
    PreconditionFailed { message: String, details: Value },
    /// 413: a body or file over a limit the message names.
    #[error("{0}")]
    TooLarge(String),
    /// 422: a well-formed request the platform cannot act on, with a machine-readable `code`
    /// (e.g. `MISSING_REQUIRED_ENV`) and details.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// 429.
    #[error("{0}")]
    TooMany(String),
    /// 502: a third party this request went through refused or failed (a chat vendor); the
    /// message is that party's own error, with details.
    #[error("{message}")]
    Upstream { message: String, details: Value },
    /// 501: this backend cannot do this; the message says why.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the target exists but cannot take this now (not online, no URL); retry later.
    #[error("{0}")]
    NotReady(String),
    /// 503: the database could not be reached (no free connection in time, connection refused
    /// or lost, a serialization conflict); the request may be retried as it is.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// 500: a failure nobody planned for (a bug, a broken schema, a refused privilege). The
    /// cause goes to the log; the client gets a request id.
    #[error("internal error while {doing}")]
    Internal {
        doing: &'static str,
        #[source]
        source: BoxError,
    },
}

impl ServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(message: impl Into<String>, details: Value) -> Self {
        Self::Conflict {
            message: message.into(),
            details,
        }
    }

    /// An unexpected failure while `doing` something.
    pub fn internal(doing: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            doing,
            source: source.into(),
        }
    }

    /// The whole cause chain on one line, for the log (never for clients).
    pub fn chain(&self) -> String {
        chain(self)
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::NotFound => Self::NotFound("not found".into()),
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => Self::Invalid {
                field: "body",
                message: format!(
                    "a value is outside what is allowed (constraint {})",
                    info.constraint_name().unwrap_or("?"),
                ),
            },
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some("workspaces_sibling_name_uniq") =>
            {
                Self::Conflict {
                    message: "name: a live workspace with this name already exists under the same parent".into(),
                    details: serde_json::json!({ "field": "name" }),
                }
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => Self::Invalid {
                field: "body",
                message: format!(
                    "refers to a row that does not exist (constraint {})",
                    info.constraint_name().unwrap_or("?")
                ),
            },
            // Postgres refuses NUL in text and `\u0000` in jsonb: the input is at fault.
            Error::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence")
                    || info.message().contains("unsupported Unicode escape") =>
            {
                Self::Invalid {
                    field: "body",
                    message: "text must not contain NUL (\\u0000) characters".into(),
                }
            }
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure,
                _,
            ) => Self::Unavailable(Box::new(e)),
            _ => Self::internal("querying the database", e),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ServiceError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        // Every pool failure is "no connection now": a wait timeout, a refused or failed
        // connect, or a closed pool during shutdown.
        Self::Unavailable(Box::new(e))
    }
}

/// `e` and its causes on one line, for logs and operator-facing reasons.
pub use molecule_periodic::error_chain as chain;

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
