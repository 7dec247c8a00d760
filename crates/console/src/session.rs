//! `session`: the `console_sessions` table, its one owner, and the cookie that names a row.
//!
//! Owns: sign-in (a row with a 256-bit secret's SHA-256, a CSRF token, the actor, an expiry),
//! the cookie value (`<id>.<secret>.<mac>`, base64url, the HMAC-SHA256 over id and secret with
//! a key the caller derives from `ADMIN_TOKEN`), checking one (MAC, then the row: secret,
//! expiry, revocation; every comparison constant-time), sign-out (revoked, never reusable),
//! one-time sign-in links (the `console_sign_in_links` table: a code's SHA-256, ten minutes,
//! used once), and the sweep of ended rows.
//!
//! Must not know: HTTP, what the console shows.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use diesel::OptionalExtension;
use diesel::sql_types::{Bytea, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_db::Pool;
use molecule_tree::Result;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

/// The cookie's name.
pub const COOKIE: &str = "molecule_console";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a one-time sign-in link works.
pub const LINK_TTL: Duration = Duration::from_secs(10 * 60);

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    /// Who signed in (`admin`).
    pub actor: String,
    /// What every state-changing form must carry.
    pub csrf: String,
    pub expires_at: OffsetDateTime,
}

/// A new session and the cookie value that names it.
#[derive(Debug)]
pub struct Issued {
    pub cookie: String,
    pub session: Session,
}

/// The console's sessions over the pool.
#[derive(Clone)]
pub struct Sessions {
    pool: Pool,
    key: ring::hmac::Key,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| molecule_tree::ServiceError::internal("drawing a session secret", "no system randomness"))?;
    Ok(bytes)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Bytea)]
    secret_sha256: Vec<u8>,
    #[diesel(sql_type = Text)]
    csrf: String,
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: OffsetDateTime,
}

impl Sessions {
    /// `key` signs the cookies (the HTTP layer derives it from `ADMIN_TOKEN`).
    pub fn new(pool: Pool, key: &[u8], ttl: Duration) -> Self {
        Self {
            pool,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            ttl,
        }
    }

    fn mac(&self, id: Uuid, secret: &[u8]) -> Vec<u8> {
        let mut signed = id.as_bytes().to_vec();
        signed.extend_from_slice(secret);
        ring::hmac::sign(&self.key, &signed).as_ref().to_vec()
    }

    /// A new session for `actor`.
    pub async fn sign_in(&self, actor: &str) -> Result<Issued> {
        let id = Uuid::new_v4();
        let secret = random::<32>()?;
        let csrf = B64.encode(random::<24>()?);
        let expires_at = OffsetDateTime::now_utc() + self.ttl;
        let mut conn = self.pool.get().await?;
        diesel::sql_query(
            "INSERT INTO console_sessions (id, secret_sha256, csrf, actor, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Bytea, _>(sha256(&secret))
        .bind::<Text, _>(&csrf)
        .bind::<Text, _>(actor)
        .bind::<Timestamptz, _>(expires_at)
        .execute(&mut conn)
        .await?;
        Ok(Issued {
            cookie: format!("{id}.{}.{}", B64.encode(secret), B64.encode(self.mac(id, &secret))),
            session: Session {
                id,
                actor: actor.to_owned(),
                csrf,
                expires_at,
            },
        })
    }

    /// The live session a cookie value names; `None` for anything else (malformed, forged,
    /// unknown, expired, signed out).
    pub async fn check(&self, cookie: &str) -> Result<Option<Session>> {
        let mut parts = cookie.split('.');
        let (Some(id), Some(secret), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let (Ok(id), Ok(secret), Ok(mac)) = (id.parse::<Uuid>(), B64.decode(secret), B64.decode(mac)) else {
            return Ok(None);
        };
        let mut signed = id.as_bytes().to_vec();
        signed.extend_from_slice(&secret);
        if ring::hmac::verify(&self.key, &signed, &mac).is_err() {
            return Ok(None);
        }
        let mut conn = self.pool.get().await?;
        let row: Option<Row> = diesel::sql_query(
            "SELECT secret_sha256, csrf, actor, expires_at FROM console_sessions \
             WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()",
        )
        .bind::<SqlUuid, _>(id)
        .get_result(&mut conn)
        .await
        .optional()?;
        Ok(row
            .filter(|r| bool::from(r.secret_sha256.ct_eq(&sha256(&secret))))
            .map(|r| Session {
                id,
                actor: r.actor,
                csrf: r.csrf,
                expires_at: r.expires_at,
            }))
    }

    /// Whether `given` is the session's CSRF token (constant-time).
    pub fn csrf_matches(session: &Session, given: &str) -> bool {
        bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
    }

    /// Ends a session for good.
    pub async fn sign_out(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        diesel::sql_query("UPDATE console_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind::<SqlUuid, _>(id)
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// A one-time sign-in link's code for `actor` (valid [`LINK_TTL`], once), and its expiry.
    pub async fn mint_link(&self, actor: &str) -> Result<(String, OffsetDateTime)> {
        let code = random::<32>()?;
        let expires_at = OffsetDateTime::now_utc() + LINK_TTL;
        let mut conn = self.pool.get().await?;
        diesel::sql_query("INSERT INTO console_sign_in_links (code_sha256, actor, expires_at) VALUES ($1, $2, $3)")
            .bind::<Bytea, _>(sha256(&code))
            .bind::<Text, _>(actor)
            .bind::<Timestamptz, _>(expires_at)
            .execute(&mut conn)
            .await?;
        Ok((B64.encode(code), expires_at))
    }

    /// Uses a sign-in link's code: a new session for its actor, or `None` when the code is
    /// unknown, expired or used.
    pub async fn redeem_link(&self, code: &str) -> Result<Option<Issued>> {
        let Ok(code) = B64.decode(code.trim()) else {
            return Ok(None);
        };
        #[derive(diesel::QueryableByName)]
        struct Actor {
            #[diesel(sql_type = Text)]
            actor: String,
        }
        let used: Option<Actor> = {
            let mut conn = self.pool.get().await?;
            diesel::sql_query(
                "UPDATE console_sign_in_links SET used_at = now() \
                 WHERE code_sha256 = $1 AND used_at IS NULL AND expires_at > now() RETURNING actor",
            )
            .bind::<Bytea, _>(sha256(&code))
            .get_result(&mut conn)
            .await
            .optional()?
        };
        match used {
            Some(a) => Ok(Some(self.sign_in(&a.actor).await?)),
            None => Ok(None),
        }
    }

    /// Deletes sessions that ended more than a day ago.
    pub async fn sweep(pool: &Pool) -> Result<usize> {
        let mut conn = pool.get().await?;
        Ok(diesel::sql_query(
            "DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day' \
             OR revoked_at < now() - interval '1 day'",
        )
        .execute(&mut conn)
        .await?
            + diesel::sql_query("DELETE FROM console_sign_in_links WHERE expires_at < now() - interval '1 day'")
                .execute(&mut conn)
                .await?)
    }
}
