//! `/health` (liveness) and `/readyz` (database reachable, migrations current).
//!
//! Must not know: use-cases.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::ApiError;
use crate::errors::ErrorBody;
use crate::state::AppState;

/// Liveness: the process serves HTTP. Never touches the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and every embedded migration is applied.
#[utoipa::path(tag = "health", responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let unavailable = |msg: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg);
    molecule_db::ping(&state.pool)
        .await
        .map_err(|e| unavailable(format!("database unreachable: {e}")))?;
    let pending = state
        .migrations
        .pending(&state.pool)
        .await
        .map_err(|e| unavailable(format!("cannot read migration state: {e}")))?;
    if !pending.is_empty() {
        return Err(
            unavailable("migrations pending; run `workspace-server migrate` or restart the server".into())
                .with_details(json!({ "pending_migrations": pending })),
        );
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "migrations": state.migrations.versions().len() })))
}

#[cfg(test)]
mod tests {
    use actix_web::test;
    use molecule_testkit::TestDb;

    use crate::{AppState, app};

    #[actix_web::test]
    async fn readyz_reports_ready_then_pending() {
        let db = TestDb::new().await;
        let state = AppState::for_tests(db.pool().clone(), None).unwrap();
        let app = test::init_service(app(state)).await;
        let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status(), 200);
        let resp = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
        assert_eq!(resp.status(), 200);

        // Forget the newest migration: readiness must now refuse.
        db.execute_sql(
            "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
        )
        .await;
        let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status(), 503);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["pending_migrations"].as_array().map(Vec::len), Some(1), "{body}");
    }
}
