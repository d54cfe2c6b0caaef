//! The audit log: per membership, an append-only chain of events, each
//! carrying the hash of the one before it (see `vitalfarm_domain::audit`).
//! There is no foreign key to `memberships`: erasing a membership keeps a
//! minimal record of what happened to it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    MembershipId,
    Seq,
    AtMs,
    ActorKind,
    ActorId,
    ActorMembershipId,
    Action,
    Resource,
    ConsentId,
    Outcome,
    Detail,
    PrevHash,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(pk_uuid(AuditEvents::Id))
                .col(uuid(AuditEvents::MembershipId))
                // 1, 2, 3... within the membership.
                .col(big_integer(AuditEvents::Seq))
                .col(big_integer(AuditEvents::AtMs))
                .col(string_len(AuditEvents::ActorKind, 16))
                .col(uuid_null(AuditEvents::ActorId))
                // The membership the actor acted from, when it is not this one
                // (a company reading shared data).
                .col(uuid_null(AuditEvents::ActorMembershipId))
                .col(string_len(AuditEvents::Action, 64))
                .col(text(AuditEvents::Resource))
                .col(uuid_null(AuditEvents::ConsentId))
                .col(string_len(AuditEvents::Outcome, 16))
                .col(text(AuditEvents::Detail))
                .col(string_len(AuditEvents::PrevHash, 64))
                .col(string_len(AuditEvents::Hash, 64))
                .to_owned(),
        )
        .await?;
        // The chain's order, and what keeps two concurrent appends from both
        // taking the same place: the second fails and tries again.
        m.create_index(
            Index::create()
                .name("idx_audit_events_membership_seq")
                .table(AuditEvents::Table)
                .col(AuditEvents::MembershipId)
                .col(AuditEvents::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditEvents::Table).to_owned()).await
    }
}
