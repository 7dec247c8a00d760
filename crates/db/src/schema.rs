//! Diesel table definitions, written by hand (diesel_cli would need libpq). Generated columns
//! such as tsvectors are left out and queried with `sql_query`.

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::WorkspaceStatusSql;

    workspaces (id) {
        id -> Uuid,
        name -> Text,
        role -> Nullable<Text>,
        tier -> Int4,
        status -> WorkspaceStatusSql,
        runtime -> Text,
        model -> Nullable<Text>,
        url -> Nullable<Text>,
        delivery_mode -> Nullable<Text>,
        agent_card -> Nullable<Jsonb>,
        parent_id -> Nullable<Uuid>,
        instance_id -> Nullable<Text>,
        last_sample_error -> Nullable<Text>,
        last_heartbeat_at -> Nullable<Timestamptz>,
        active_tasks -> Int4,
        max_concurrent_tasks -> Int4,
        current_task -> Nullable<Text>,
        last_error_rate -> Float8,
        uptime_seconds -> Int8,
        collapsed -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        runtime_image_digest -> Nullable<Text>,
        backend -> Nullable<Text>,
        budget_limit -> Nullable<Int8>,
        monthly_spend -> Int8,
        idle_timeout_seconds -> Nullable<Int4>,
        native_scheduler -> Bool,
        last_outbound_at -> Nullable<Timestamptz>,
        last_inbound_at -> Nullable<Timestamptz>,
        hibernation_idle_minutes -> Nullable<Int4>,
    }
}

diesel::table! {
    canvas_layouts (workspace_id) {
        workspace_id -> Uuid,
        x -> Float8,
        y -> Float8,
    }
}

diesel::table! {
    a2a_queue (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        caller_id -> Nullable<Uuid>,
        priority -> Int2,
        body -> Jsonb,
        method -> Nullable<Text>,
        headers -> Jsonb,
        idempotency_key -> Nullable<Text>,
        delegation_id -> Nullable<Text>,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        enqueued_at -> Timestamptz,
        lease_until -> Nullable<Timestamptz>,
        dispatched_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        expires_at -> Timestamptz,
        via -> Nullable<Text>,
    }
}

diesel::table! {
    workspace_auth_tokens (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        token_hash -> Bytea,
        prefix -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    activity_logs (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        activity_type -> Text,
        source_id -> Nullable<Uuid>,
        target_id -> Nullable<Uuid>,
        method -> Nullable<Text>,
        summary -> Nullable<Text>,
        request_body -> Nullable<Jsonb>,
        response_body -> Nullable<Jsonb>,
        duration_ms -> Nullable<Int4>,
        status -> Text,
        error_detail -> Nullable<Text>,
        tool_trace -> Nullable<Jsonb>,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    events (id) {
        id -> Int8,
        event_type -> Text,
        workspace_id -> Nullable<Uuid>,
        payload -> Jsonb,
        created_at -> Timestamptz,
        actor -> Nullable<Text>,
    }
}

diesel::table! {
    workspace_secrets (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        key -> Text,
        encrypted_value -> Bytea,
        encryption_version -> Int2,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        key_id -> Nullable<Text>,
    }
}

diesel::table! {
    workspace_bootstraps (code_hash) {
        code_hash -> Bytea,
        workspace_id -> Uuid,
        sealed_env -> Bytea,
        encryption_version -> Int2,
        key_id -> Nullable<Text>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    global_secrets (id) {
        id -> Uuid,
        key -> Text,
        encrypted_value -> Bytea,
        encryption_version -> Int2,
        key_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    runtime_image_pins (template_name) {
        template_name -> Text,
        digest -> Text,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Text>,
        notes -> Nullable<Text>,
    }
}

diesel::joinable!(workspace_auth_tokens -> workspaces (workspace_id));
diesel::joinable!(activity_logs -> workspaces (workspace_id));
diesel::joinable!(workspace_secrets -> workspaces (workspace_id));
diesel::table! {
    workspace_token_usage (workspace_id, day, shard) {
        workspace_id -> Uuid,
        day -> Date,
        shard -> Int2,
        input_tokens -> Int8,
        output_tokens -> Int8,
        calls -> Int8,
    }
}

diesel::table! {
    memory_backfill_progress (source) {
        source -> Text,
        last_id -> Uuid,
        copied -> Int8,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(workspace_token_usage -> workspaces (workspace_id));
diesel::joinable!(a2a_queue -> workspaces (workspace_id));
diesel::allow_tables_to_appear_in_same_query!(
    workspaces,
    a2a_queue,
    workspace_token_usage,
    workspace_auth_tokens,
    activity_logs,
    events,
    workspace_secrets,
    global_secrets,
    workspace_bootstraps,
    runtime_image_pins,
    workspace_seeds,
    workspace_schedules,
    approval_requests,
    platform_instructions,
    workspace_config,
    agents,
    workspace_memory,
);

diesel::table! {
    workspace_seeds (workspace_id) {
        workspace_id -> Uuid,
        template -> Text,
        files_dir -> Nullable<Text>,
        system_prompt -> Nullable<Text>,
        seeded_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(workspace_seeds -> workspaces (workspace_id));

diesel::table! {
    workspace_schedules (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        name -> Text,
        cron_expr -> Text,
        timezone -> Text,
        prompt -> Text,
        enabled -> Bool,
        last_run_at -> Nullable<Timestamptz>,
        next_run_at -> Nullable<Timestamptz>,
        run_count -> Int4,
        last_status -> Nullable<Text>,
        last_error -> Nullable<Text>,
        source -> Text,
        consecutive_empty_runs -> Int4,
        firing_slot -> Nullable<Timestamptz>,
        firing_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        firing_sent_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(workspace_schedules -> workspaces (workspace_id));

diesel::table! {
    approval_requests (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        task_id -> Text,
        action -> Text,
        reason -> Text,
        context -> Jsonb,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(approval_requests -> workspaces (workspace_id));

diesel::table! {
    platform_instructions (id) {
        id -> Uuid,
        scope -> Text,
        scope_target -> Nullable<Uuid>,
        title -> Text,
        content -> Text,
        priority -> Int4,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(platform_instructions -> workspaces (scope_target));

diesel::table! {
    workspace_config (workspace_id) {
        workspace_id -> Uuid,
        data -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(workspace_config -> workspaces (workspace_id));

diesel::table! {
    agents (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        model -> Text,
        status -> Text,
        removed_at -> Nullable<Timestamptz>,
        removal_reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(agents -> workspaces (workspace_id));

diesel::table! {
    workspace_memory (id) {
        id -> Uuid,
        workspace_id -> Uuid,
        key -> Text,
        value -> Jsonb,
        expires_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::joinable!(workspace_memory -> workspaces (workspace_id));
