//! Runtime image pins: an operator pins a runtime template to an image digest; the dispatcher
//! then runs `<base>@<digest>` (never re-pulled) for that runtime until the pin is removed.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_api::pins::{Pin, PinRequest};
use molecule_db::schema::runtime_image_pins as p;
use time::OffsetDateTime;

use crate::error::{Result, ServiceError};
use crate::{Tree, validate};

/// Whether `s` is `sha256:<64 lower-case hex>` (the column's CHECK, checked before the write).
pub fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// A `runtime_image_pins` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = p)]
struct Stored {
    template_name: String,
    digest: String,
    updated_at: OffsetDateTime,
    updated_by: Option<String>,
    notes: Option<String>,
}

impl From<Stored> for Pin {
    fn from(r: Stored) -> Self {
        Self {
            template_name: r.template_name,
            digest: r.digest,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
            notes: r.notes,
        }
    }
}

impl Tree {
    pub async fn list_pins(&self) -> Result<Vec<Pin>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Stored> = p::table
            .order(p::template_name.asc())
            .select(Stored::as_select())
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().map(Pin::from).collect())
    }

    /// Creates or replaces the pin of `template`.
    pub async fn put_pin(&self, template: &str, req: PinRequest) -> Result<Pin> {
        let template = validate::text("template", template, 200, true)?;
        let digest = req.digest.trim().to_owned();
        if !valid_digest(&digest) {
            return Err(ServiceError::invalid(
                "digest",
                "must be sha256: followed by 64 lower-case hex digits",
            ));
        }
        let notes = validate::optional_text("notes", req.notes.as_deref(), 2000, false)?;
        let by = validate::optional_text("updated_by", req.updated_by.as_deref(), 200, false)?;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let row: Stored = diesel::insert_into(p::table)
                .values((
                    p::template_name.eq(&template),
                    p::digest.eq(&digest),
                    p::notes.eq(&notes),
                    p::updated_by.eq(&by),
                ))
                .on_conflict(p::template_name)
                .do_update()
                .set((
                    p::digest.eq(&digest),
                    p::notes.eq(&notes),
                    p::updated_by.eq(&by),
                    p::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Stored::as_returning())
                .get_result(conn)
                .await?;
            Ok(row.into())
        })
        .await
    }

    pub async fn delete_pin(&self, template: &str) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let n = diesel::delete(p::table.find(template)).execute(&mut conn).await?;
        if n == 0 {
            return Err(ServiceError::NotFound(format!("no pin for template {template:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_digest;

    #[test]
    fn digests_are_checked() {
        assert!(valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!valid_digest(&format!("sha256:{}", "a".repeat(63))));
        assert!(!valid_digest("latest"));
    }
}
