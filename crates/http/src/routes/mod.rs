//! Every route of workspace-server. Each handler carries `#[utoipa::path]`, and [`api`]
//! registers them through utoipa-actix-web, so `/openapi.json` is generated from the router
//! itself and cannot miss a route.

pub mod a2a;
pub mod activity;
pub mod admin;
pub mod approvals;
pub mod canvas;
pub mod channels;
pub mod chat;
pub mod console;
pub mod delegations;
pub mod discovery;
pub mod events;
pub mod files;
pub mod instructions;
pub mod kv_memory;
pub mod lifecycle;
pub mod mcp;
pub mod memories;
pub mod org;
pub mod pins;
pub mod registry;
pub mod schedules;
pub mod secrets;
pub mod templates;
pub mod terminal;
pub mod tokens;
pub mod workspace_config;
pub mod workspaces;

use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::errors::ApiError;

/// A path segment that must be a workspace id: 400 naming `id` otherwise.
pub(crate) fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("id: must be a UUID, got {raw:?}")))
}

/// A body of at most `max` bytes: 413 past the limit (`what` says what may be that large).
pub(crate) async fn limited_body(mut payload: web::Payload, max: usize, what: &str) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: could not be read: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body: {what} may be at most {} MiB", max >> 20),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A body of at most `max` bytes parsed as JSON `T`: 413 past the limit (`what` says what may
/// be that large), 400 naming `expected` when it does not parse.
pub(crate) async fn limited_json<T: serde::de::DeserializeOwned>(
    payload: web::Payload,
    max: usize,
    what: &str,
    expected: &str,
) -> Result<T, ApiError> {
    let buf = limited_body(payload, max, what).await?;
    serde_json::from_slice(&buf)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: must be {expected}: {e}")))
}

/// Registers all documented routes. Actix tries routes in order, and each route with a path
/// parameter costs a regex match, so agents' busiest calls (heartbeats, messages, activity,
/// memories) come first; no two patterns match the same path, so order changes nothing else.
pub fn api(cfg: &mut ServiceConfig) {
    cfg.service(registry::heartbeat)
        .service(a2a::proxy)
        .service(activity::append_activity)
        .service(memories::commit)
        .service(memories::list)
        .service(crate::health::health)
        .service(crate::health::readyz)
        .service(workspaces::create_workspace)
        .service(workspaces::list_workspaces)
        .service(workspaces::get_workspace)
        .service(workspaces::patch_workspace)
        .service(workspaces::delete_workspace)
        .service(workspaces::workspace_state)
        .service(workspace_config::get_config)
        .service(workspace_config::patch_config)
        .service(workspace_config::get_agent)
        .service(workspace_config::assign_agent)
        .service(workspace_config::replace_agent)
        .service(workspace_config::remove_agent)
        .service(workspace_config::move_agent)
        .service(instructions::list_instructions)
        .service(instructions::create_instruction)
        .service(instructions::update_instruction)
        .service(instructions::delete_instruction)
        .service(instructions::resolve_instructions)
        .service(approvals::pending_approvals)
        .service(approvals::list_approvals)
        .service(approvals::create_approval)
        .service(approvals::decide_approval)
        .service(approvals::withdraw_approval)
        .service(schedules::admin_schedules_health)
        .service(schedules::schedules_health)
        .service(schedules::list_schedules)
        .service(schedules::create_schedule)
        .service(schedules::update_schedule)
        .service(schedules::delete_schedule)
        .service(schedules::run_schedule)
        .service(schedules::schedule_history)
        .service(canvas::get_viewport)
        .service(canvas::put_viewport)
        .service(canvas::mint_sign_in_link)
        .service(channels::list_adapters)
        .service(channels::discover_channels)
        .service(channels::list_channels)
        .service(channels::create_channel)
        .service(channels::update_channel)
        .service(channels::delete_channel)
        .service(channels::send_channel)
        .service(channels::test_channel)
        .service(channels::type_webhook)
        .service(channels::channel_webhook)
        .service(tokens::list_tokens)
        .service(tokens::mint_token)
        .service(tokens::rotate_tokens)
        .service(tokens::revoke_token)
        .service(tokens::rotate_external)
        .service(tokens::external_connection)
        .service(tokens::test_token)
        .service(secrets::list_secrets)
        .service(secrets::secret_values)
        .service(secrets::post_secret)
        .service(secrets::put_secret)
        .service(secrets::delete_secret)
        .service(secrets::list_global)
        .service(secrets::list_global_alias)
        .service(secrets::post_global)
        .service(secrets::put_global)
        .service(secrets::post_global_alias)
        .service(secrets::delete_global)
        .service(secrets::delete_global_alias)
        .service(secrets::get_model)
        .service(secrets::put_model)
        .service(registry::register)
        .service(registry::bootstrap)
        .service(discovery::update_card)
        .service(discovery::discover)
        .service(discovery::peers)
        .service(discovery::check_access)
        .service(activity::list_activity)
        .service(events::list_events)
        .service(events::list_workspace_events)
        .service(events::event_stream)
        .service(events::websocket)
        .service(delegations::delegate)
        .service(delegations::record_delegation)
        .service(delegations::update_delegation)
        .service(delegations::heartbeat_delegation)
        .service(delegations::list_delegations)
        .service(delegations::admin_delegations)
        .service(delegations::admin_delegation_stats)
        .service(delegations::admin_delegation_timeline)
        .service(lifecycle::restart_workspace)
        .service(lifecycle::pause_workspace)
        .service(lifecycle::resume_workspace)
        .service(lifecycle::collapse_workspace)
        .service(lifecycle::bootstrap_failed)
        .service(a2a::hibernate)
        .service(a2a::queue)
        .service(a2a::drop_stale)
        .service(a2a::get_budget)
        .service(a2a::set_budget)
        .service(memories::forget)
        .service(memories::v2_namespaces)
        .service(memories::v2_memories)
        .service(memories::v2_forget)
        .service(kv_memory::list_kv)
        .service(kv_memory::get_kv)
        .service(kv_memory::put_kv)
        .service(kv_memory::delete_kv)
        .service(memories::edit)
        .service(memories::export)
        .service(memories::import)
        .service(pins::list_pins)
        .service(pins::put_pin)
        .service(pins::delete_pin)
        .service(chat::upload)
        .service(chat::download)
        .service(chat::notify)
        .service(files::list_files)
        .service(files::write_files)
        .service(files::read_file)
        .service(files::write_file)
        .service(files::delete_file)
        .service(terminal::terminal)
        .service(templates::list_templates)
        .service(templates::template_errors)
        .service(templates::import_template)
        .service(org::import_org)
        .service(org::org_templates)
        .service(admin::liveness)
        .service(admin::metrics);
}
