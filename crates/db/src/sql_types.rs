//! SQL types for the domain's vocabularies. The Postgres enum `workspace_status` maps to
//! [`WorkspaceStatus`]; the integration tests compare the two lists.

use std::io::Write;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use molecule_domain::{Vocabulary, WorkspaceStatus};

/// The Postgres enum type `workspace_status`.
#[derive(Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
#[diesel(postgres_type(name = "workspace_status"))]
pub struct WorkspaceStatusSql;

/// [`WorkspaceStatus`] as a diesel value. The domain crate knows nothing of diesel, so the
/// mapping lives here in a newtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = WorkspaceStatusSql)]
pub struct DbWorkspaceStatus(pub WorkspaceStatus);

impl ToSql<WorkspaceStatusSql, Pg> for DbWorkspaceStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_str().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<WorkspaceStatusSql, Pg> for DbWorkspaceStatus {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let s = std::str::from_utf8(bytes.as_bytes())?;
        Ok(Self(WorkspaceStatus::parse(s)?))
    }
}

impl From<WorkspaceStatus> for DbWorkspaceStatus {
    fn from(s: WorkspaceStatus) -> Self {
        Self(s)
    }
}
