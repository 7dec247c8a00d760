//! Every failure as the contract's `Error` JSON (`{"code","message"}`) with its status.
//!
//! Must not know: which handler failed or the SQL behind a store error.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use molecule_memory_contract::{ErrorBody, ErrorCode, Invalid};

use crate::StoreError;

/// Any non-2xx answer: a status and the contract's `Error` body.
#[derive(Debug)]
pub struct PluginError {
    status: StatusCode,
    body: ErrorBody,
}

impl PluginError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(code, message),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body)
    }
}

impl ResponseError for PluginError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

impl From<StoreError> for PluginError {
    fn from(e: StoreError) -> Self {
        let (status, body) = e.to_wire();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %body.message, "memory plugin request failed");
        }
        Self { status, body }
    }
}

impl From<Invalid> for PluginError {
    fn from(e: Invalid) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: e.into(),
        }
    }
}
