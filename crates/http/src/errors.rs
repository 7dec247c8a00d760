//! The JSON error shape of workspace-server and the mapping from use-case errors to status
//! codes. Unexpected failures answer 500 with a request id; their causes go to the log only.
//!
//! Must not know: SQL or which use-case failed.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};
use uuid::Uuid;

/// An error answered as JSON: `{"error": message, ...details}`. A 500 carries only a
/// generic message and the request id; the cause is logged under the same id.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (503s).
    pub retry_after: Option<u32>,
}

tokio::task_local! {
    /// The id of the request being served (set by [`request_id_middleware`]).
    static REQUEST_ID: Uuid;
}

/// The current request's id, if called while serving one.
pub fn current_request_id() -> Option<Uuid> {
    REQUEST_ID.try_with(|id| *id).ok()
}

/// Gives every request an id (tracing-actix-web's, so it matches the request span), makes it
/// available to error conversion, and returns it as `X-Request-Id`.
pub async fn request_id_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|r| **r)
        .unwrap_or_else(Uuid::new_v4);
    let mut res = REQUEST_ID.scope(id, next.call(req)).await?;
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}

/// How long a client should wait before retrying a 503 caused by the database.
const DB_RETRY_AFTER_SECONDS: u32 = 2;
/// `Retry-After` of a target that is not ready yet (not online, no URL).
const NOT_READY_RETRY_AFTER_SECONDS: u32 = 15;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A 500 for a failure nobody planned for: the full chain is logged with the request id,
    /// the client gets the id and nothing of the cause.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let request_id = current_request_id().unwrap_or_else(Uuid::new_v4);
        tracing::error!(%request_id, error = %molecule_tree::error::chain(cause), "unexpected failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error; the server log has the details under request id {request_id}"),
        )
        .with_details(json!({ "request_id": request_id }))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({ "error": self.message });
        if let (Some(Value::Object(extra)), Some(obj)) = (&self.details, body.as_object_mut()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let mut resp = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        resp.json(body)
    }
}

/// Maps a use-case error to its status code; the message is kept, details are merged in.
impl From<molecule_service::ServiceError> for ApiError {
    fn from(e: molecule_service::ServiceError) -> Self {
        use molecule_service::ServiceError as E;
        match e {
            E::Invalid { field, message } => ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
                .with_details(json!({ "field": field })),
            E::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            E::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            E::Conflict { message, details } => ApiError::new(StatusCode::CONFLICT, message).with_details(details),
            E::PreconditionFailed { message, details } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, message).with_details(details)
            }
            E::TooMany(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
            E::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
            E::NotImplemented(m) => ApiError::new(StatusCode::NOT_IMPLEMENTED, m),
            E::Upstream { message, details } => ApiError::new(StatusCode::BAD_GATEWAY, message).with_details(details),
            E::Unprocessable { code, message, details } => {
                let mut details = details;
                if let Some(obj) = details.as_object_mut() {
                    obj.insert("code".into(), json!(code));
                } else {
                    details = json!({ "code": code });
                }
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_details(details)
            }
            E::NotReady(m) => {
                let mut err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m);
                err.retry_after = Some(NOT_READY_RETRY_AFTER_SECONDS);
                err
            }
            E::Unavailable(_) => {
                let request_id = current_request_id();
                tracing::warn!(request_id = ?request_id, error = %e.chain(), "database unavailable");
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry shortly",
                );
                err.retry_after = Some(DB_RETRY_AFTER_SECONDS);
                err
            }
            E::Internal { .. } => ApiError::internal(&e),
        }
    }
}

/// The JSON error body, for the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to change.
    pub error: String,
}

/// JSON 404 for unknown routes.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// JSON 400 for bodies that are not the JSON a route expects.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(1 << 20)
        // Agents are not always careful with Content-Type; the body must still be JSON.
        .content_type_required(false)
        .content_type(|_| true)
        .error_handler(|err, _req| {
            let status = match &err {
                actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                | actix_web::error::JsonPayloadError::Overflow { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                actix_web::error::JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, format!("invalid JSON body: {err}")).into()
        })
}

/// JSON 400 for malformed query strings and path parameters.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("invalid query string: {err}")).into()
    })
}

pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|err, _req| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("invalid path parameter: {err}")).into()
    })
}
