//! Workspace bearer tokens: 32 random bytes, base64url without padding, shown once. Only
//! `sha256(plaintext)` and the first 8 characters are stored; lookups compare hashes in
//! constant time; revoked tokens and tokens of removed workspaces never authenticate.
//!
//! [`TokenCache`] keeps what a lookup answered for a few seconds, so an agent's busy path (MCP
//! calls, heartbeats) does not read the table on every request; it forgets at once whatever a
//! revocation or a removal may have touched (see the type).

use base64::Engine;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use molecule_api::tokens::{MintedToken, TokenSummary};
use molecule_db::schema::{workspace_auth_tokens as t, workspaces as w};
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::WorkspaceStatus;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::events;

/// Live tokens a workspace may hold at once (the original's limit).
pub const MAX_LIVE_TOKENS: i64 = 50;

/// `last_used_at` is bumped at most this often per token (seconds).
pub const LAST_USED_GRANULARITY_S: u32 = 60;

/// Who a valid token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A presented secret as the platform compares it: its SHA-256, taken once per request and
/// used for every check of that request (the admin token, the token cache, the table). Its
/// `Debug` shows nothing of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(secret: &str) -> Self {
        Self(hash(secret))
    }

    /// Constant-time equality (comparing digests, so lengths do not leak either).
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// 32 random bytes, base64url without padding: every credential the platform makes (tokens,
/// inbound secrets, bootstrap codes).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How a token is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// One more live token (the limit applies).
    Another,
    /// Every live token is revoked first (rotation, and each provision).
    Replacing,
}

/// The one way a token comes to exist, inside the caller's transaction: locks the live
/// workspace row (as a delete does, so the two never deadlock), revokes the live tokens when
/// replacing, mints, and records `TOKEN_MINTED`.
pub async fn issue(conn: &mut AsyncPgConnection, workspace_id: Uuid, how: Issue) -> Result<MintedToken> {
    crate::row::lock_live(conn, workspace_id).await?;
    let revoked = match how {
        Issue::Another => None,
        Issue::Replacing => Some(revoke_all(conn, workspace_id).await?),
    };
    let t = mint(conn, workspace_id).await?;
    let payload = match revoked {
        None => serde_json::json!({ "token_id": t.id, "prefix": t.prefix }),
        Some(n) => serde_json::json!({ "token_id": t.id, "prefix": t.prefix, "rotated": true, "revoked": n }),
    };
    events::record(
        conn,
        molecule_domain::EventType::TokenMinted,
        Some(workspace_id),
        payload,
    )
    .await?;
    Ok(t)
}

/// Inserts a token row; only [`issue`] calls it.
async fn mint(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> Result<MintedToken> {
    let live: i64 = t::table
        .filter(t::workspace_id.eq(workspace_id))
        .filter(t::revoked_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    if live >= MAX_LIVE_TOKENS {
        return Err(ServiceError::TooMany(format!(
            "workspace already has {live} live tokens (limit {MAX_LIVE_TOKENS}); revoke some first"
        )));
    }
    let plaintext = generate();
    let prefix: String = plaintext.chars().take(8).collect();
    let id: Uuid = diesel::insert_into(t::table)
        .values((
            t::workspace_id.eq(workspace_id),
            t::token_hash.eq(hash(&plaintext).to_vec()),
            t::prefix.eq(&prefix),
        ))
        .returning(t::id)
        .get_result(conn)
        .await?;
    Ok(MintedToken {
        id,
        auth_token: plaintext,
        prefix,
    })
}

/// Revokes every live token of `workspace_id`; returns how many.
pub async fn revoke_all(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> Result<usize> {
    events::note_revocation();
    Ok(diesel::update(
        t::table
            .filter(t::workspace_id.eq(workspace_id))
            .filter(t::revoked_at.is_null()),
    )
    .set(t::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?)
}

/// Revokes every live token of all `ids`.
pub async fn revoke_all_of(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<usize> {
    events::note_revocation();
    Ok(diesel::update(
        t::table
            .filter(t::workspace_id.eq_any(ids))
            .filter(t::revoked_at.is_null()),
    )
    .set(t::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?)
}

/// Revokes one token of `workspace_id`; `NotFound` when it is not a live token of it.
pub async fn revoke(conn: &mut AsyncPgConnection, workspace_id: Uuid, token_id: Uuid) -> Result<()> {
    events::note_revocation();
    let n = diesel::update(
        t::table
            .filter(t::id.eq(token_id))
            .filter(t::workspace_id.eq(workspace_id))
            .filter(t::revoked_at.is_null()),
    )
    .set(t::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    if n == 0 {
        return Err(ServiceError::NotFound(format!(
            "no live token {token_id} on workspace {workspace_id}"
        )));
    }
    Ok(())
}

pub async fn list(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> Result<Vec<TokenSummary>> {
    let rows: Vec<(Uuid, String, OffsetDateTime, Option<OffsetDateTime>)> = t::table
        .filter(t::workspace_id.eq(workspace_id))
        .filter(t::revoked_at.is_null())
        .order(t::created_at.asc())
        .select((t::id, t::prefix, t::created_at, t::last_used_at))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, prefix, created_at, last_used_at)| TokenSummary {
            id,
            prefix,
            created_at,
            last_used_at,
        })
        .collect())
}

/// How long a validated token is trusted without reading the table again.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Tokens remembered at most; a full cache drops its stale entries, then everything.
const TOKEN_CACHE_MAX: usize = 10_000;

/// Validated tokens, by the sha256 of the token (never the token itself), for up to
/// [`TOKEN_CACHE_TTL`]. An entry is trusted only while all of these hold:
/// - this process has noted no revocation since it was read ([`events::revocations`]: the bus
///   counts them, noted where tokens are revoked before the change commits, and whenever a
///   revocation or removal event is recorded);
/// - the event bus has been listening since before it was read, and has had no change of its
///   workspace since (every revocation, rotation and removal records an event on the
///   workspace, which reaches every replica by NOTIFY);
/// - it is younger than the TTL, which bounds what a missed notification can cost.
///
/// Without a live bus nothing is cached: every request reads the table, as before.
#[derive(Debug, Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<[u8; 32], Cached>>>);

#[derive(Debug, Clone, Copy)]
struct Cached {
    owner: TokenOwner,
    read_at: tokio::time::Instant,
    revocations: u64,
}

/// Where a validation starts: the clock and the revocation count before the table is read.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    digest: [u8; 32],
    read_at: tokio::time::Instant,
    revocations: u64,
}

impl TokenCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        // A poisoned lock only means a thread panicked between two map operations, each of
        // which leaves the map valid.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached owner of `token` if the entry is still trusted, else where a lookup starts.
    pub fn get(&self, token: &TokenDigest, bus: &events::EventBus) -> std::result::Result<TokenOwner, Lookup> {
        let digest = token.0;
        let lookup = Lookup {
            digest,
            read_at: tokio::time::Instant::now(),
            revocations: events::revocations(),
        };
        let Some(c) = self.map().get(&digest).copied() else {
            return Err(lookup);
        };
        let trusted = c.revocations == lookup.revocations
            && c.read_at.elapsed() < TOKEN_CACHE_TTL
            && bus.listening_since().is_some_and(|since| since <= c.read_at)
            && bus
                .last_change_at(c.owner.workspace_id)
                .is_none_or(|changed| changed < c.read_at);
        if trusted { Ok(c.owner) } else { Err(lookup) }
    }

    /// Remembers what the table said for `lookup`, when the bus can tell us about changes.
    pub fn put(&self, lookup: Lookup, owner: TokenOwner, bus: &events::EventBus) {
        if bus.listening_since().is_none_or(|since| since > lookup.read_at) {
            return;
        }
        let mut map = self.map();
        if map.len() >= TOKEN_CACHE_MAX {
            map.retain(|_, c| c.read_at.elapsed() < TOKEN_CACHE_TTL);
            if map.len() >= TOKEN_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(
            lookup.digest,
            Cached {
                owner,
                read_at: lookup.read_at,
                revocations: lookup.revocations,
            },
        );
    }
}

/// The owner of `token` when it is live and its workspace is not removed; bumps
/// `last_used_at` (at most once a minute). Every refusal is the same opaque `Unauthorized`.
pub async fn validate(conn: &mut AsyncPgConnection, token: &TokenDigest) -> Result<TokenOwner> {
    let digest = token.0;
    // DSL statements, so their prepared statements are cached: on the hot path (every
    // heartbeat authenticates) this is one round trip, plus a `last_used_at` bump at most once
    // per LAST_USED_GRANULARITY_S per token.
    let found: Option<(Uuid, Uuid, Vec<u8>, Option<OffsetDateTime>)> = t::table
        .inner_join(w::table)
        .filter(t::token_hash.eq(digest.to_vec()))
        .filter(t::revoked_at.is_null())
        .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
        .select((t::id, t::workspace_id, t::token_hash, t::last_used_at))
        .first(conn)
        .await
        .optional()?;
    let Some((token_id, workspace_id, stored, last_used)) = found else {
        return Err(ServiceError::Unauthorized("invalid workspace auth token".into()));
    };
    if !bool::from(stored.as_slice().ct_eq(&digest)) {
        return Err(ServiceError::Unauthorized("invalid workspace auth token".into()));
    }
    let stale = last_used
        .is_none_or(|at| OffsetDateTime::now_utc() - at > time::Duration::seconds(i64::from(LAST_USED_GRANULARITY_S)));
    if stale {
        diesel::update(t::table.find(token_id))
            .set(t::last_used_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
    }
    Ok(TokenOwner { token_id, workspace_id })
}

/// Tokens unused this long are revoked by the orphan sweep when their workload is gone.
pub const ORPHAN_IDLE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// What one orphan-token sweep revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrphanSweep {
    /// Live tokens of removed workspaces.
    pub removed: usize,
    /// Idle tokens of workspaces whose workload the backend says is not running.
    pub idle: usize,
}

impl crate::Tree {
    /// The orphan-token sweep (the later original's, every minute): revokes the live tokens of
    /// removed workspaces, and the tokens unused for [`ORPHAN_IDLE`] of workspaces that are
    /// neither removed nor provisioning and whose workload the backend reports not running.
    /// External workspaces are never touched: their agent runs elsewhere, so "no workload"
    /// says nothing about it. A backend that cannot tell leaves the tokens alone.
    pub async fn sweep_orphan_tokens(&self) -> Result<OrphanSweep> {
        use molecule_domain::{EventType, Runtime, Vocabulary};
        let cutoff = OffsetDateTime::now_utc() - ORPHAN_IDLE;
        let not_external = w::runtime.ne(Runtime::External.as_str());
        let idle = t::last_used_at
            .lt(cutoff)
            .or(t::last_used_at.is_null().and(t::created_at.lt(cutoff)));
        let mut conn = self.pool.get().await?;
        events::note_revocation();
        let removed = diesel::update(
            t::table.filter(t::revoked_at.is_null()).filter(
                t::workspace_id.eq_any(
                    w::table
                        .filter(w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Removed)))
                        .filter(not_external)
                        .select(w::id),
                ),
            ),
        )
        .set(t::revoked_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
        let candidates: Vec<Uuid> =
            t::table
                .filter(t::revoked_at.is_null())
                .filter(idle)
                .filter(
                    t::workspace_id.eq_any(
                        w::table
                            .filter(w::status.ne_all(
                                [WorkspaceStatus::Removed, WorkspaceStatus::Provisioning].map(DbWorkspaceStatus),
                            ))
                            .filter(not_external)
                            .select(w::id),
                    ),
                )
                .select(t::workspace_id)
                .distinct()
                .load(&mut conn)
                .await?;
        drop(conn);
        let mut out = OrphanSweep { removed, idle: 0 };
        for id in candidates {
            if self.hooks.is_running(id).await != Some(false) {
                continue;
            }
            let mut conn = self.pool.get().await?;
            events::note_revocation();
            // Re-checked in the statement: a provision that started meanwhile keeps its token.
            let n = diesel::update(
                t::table
                    .filter(t::workspace_id.eq(id))
                    .filter(t::revoked_at.is_null())
                    .filter(idle)
                    .filter(
                        t::workspace_id.eq_any(
                            w::table
                                .filter(w::id.eq(id))
                                .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Provisioning)))
                                .select(w::id),
                        ),
                    ),
            )
            .set(t::revoked_at.eq(diesel::dsl::now))
            .execute(&mut conn)
            .await?;
            if n > 0 {
                tracing::info!(workspace_id = %id, revoked = n, "orphan sweep: revoked idle tokens of a workspace with no running workload");
                events::record(
                    &mut conn,
                    EventType::TokenRevoked,
                    Some(id),
                    serde_json::json!({ "count": n, "reason": "orphan_sweep" }),
                )
                .await?;
                out.idle += n;
            }
        }
        Ok(out)
    }
}
