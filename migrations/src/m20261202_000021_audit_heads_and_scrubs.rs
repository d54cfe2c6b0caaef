//! Two small tables for the data lifecycle.
//!
//! `audit_heads`: each membership's audit chain head (newest seq and hash),
//! written in the same transaction as every append, so a chain that was
//! emptied or cut short no longer matches its head. Filled here from the
//! events already stored.
//!
//! `erasure_scrubs`: erasures whose database files still have to be
//! scrubbed (SQLite: a truncating WAL checkpoint; PostgreSQL: a rewrite of
//! the tables the erasure deleted from). A row is written in the erasure's
//! own transaction and removed once the scrub is done, so a crash between
//! the two leaves the work for the next sweep rather than forgetting it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditHeads {
    Table,
    MembershipId,
    Seq,
    Hash,
}

#[derive(DeriveIden)]
enum ErasureScrubs {
    Table,
    MembershipId,
    ErasedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditHeads::Table)
                .col(pk_uuid(AuditHeads::MembershipId))
                .col(big_integer(AuditHeads::Seq))
                .col(string_len(AuditHeads::Hash, 64))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO audit_heads (membership_id, seq, hash) \
                 SELECT e.membership_id, e.seq, e.hash FROM audit_events e \
                 WHERE e.seq = (SELECT MAX(l.seq) FROM audit_events l WHERE l.membership_id = e.membership_id)",
            )
            .await?;
        m.create_table(
            Table::create()
                .table(ErasureScrubs::Table)
                .col(pk_uuid(ErasureScrubs::MembershipId))
                .col(timestamp_with_time_zone(ErasureScrubs::ErasedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ErasureScrubs::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(AuditHeads::Table).to_owned()).await
    }
}
