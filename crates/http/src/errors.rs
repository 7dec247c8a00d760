use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

/// An error answered as JSON: `{"error": message, ...details}`. Never a bare 500: internal
/// failures carry a reason an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
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
        HttpResponse::build(self.status).json(body)
    }
}

/// Maps a use-case error to its status code; the message is kept, details are merged in.
pub fn service_error(e: molecule_service::ServiceError) -> ApiError {
    use molecule_service::ServiceError as E;
    match e {
        E::Invalid { field, message } => ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
            .with_details(json!({ "field": field })),
        E::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
        E::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
        E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        E::Conflict { message, details } => ApiError::new(StatusCode::CONFLICT, message).with_details(details),
        E::TooMany(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, m),
        E::Unavailable(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable, retry shortly: {m}"),
        ),
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
