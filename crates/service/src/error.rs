use serde_json::Value;

/// Why a use-case refused or failed. The HTTP layer maps each variant to one status code;
/// every message says what to fix.
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
    /// 429.
    #[error("{0}")]
    TooMany(String),
    /// 503: the database is unreachable or refused; retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::NotFound => Self::NotFound("not found".into()),
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => Self::Invalid {
                field: "body",
                message: format!(
                    "rejected by constraint {}: {}",
                    info.constraint_name().unwrap_or("?"),
                    info.message()
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
                message: format!("refers to a row that does not exist: {}", info.message()),
            },
            // Postgres refuses NUL in text and `\u0000` in jsonb: the input is at fault.
            Error::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence")
                    || info.message().contains("unsupported Unicode escape") =>
            {
                Self::Invalid {
                    field: "body",
                    message: format!("text must not contain NUL (\\u0000) characters: {}", info.message()),
                }
            }
            _ => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ServiceError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
