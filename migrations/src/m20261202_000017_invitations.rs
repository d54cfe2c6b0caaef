//! Invitations waiting for an existing account's answer. Inviting an
//! address that already has an account no longer adds it to the membership:
//! the invitation waits here until the invitee (signed in, with a verified
//! address) accepts or declines it. Nothing in this table grants access;
//! acceptance moves it into `member_roles`.
//!
//! `token_hash` is set only when the invitee's account is itself an
//! unclaimed invitation (no password yet): the mailed token then completes
//! that account and accepts this invitation in one step.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    MembershipId,
    UserId,
    Role,
    InvitedBy,
    TokenHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(pk_uuid(Invitations::Id))
                .col(uuid(Invitations::MembershipId))
                .col(uuid(Invitations::UserId))
                .col(string_len(Invitations::Role, 16))
                .col(uuid_null(Invitations::InvitedBy))
                .col(string_len_null(Invitations::TokenHash, 64))
                .col(timestamp_with_time_zone(Invitations::CreatedAt))
                .col(timestamp_with_time_zone(Invitations::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Invitations::Table, Invitations::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_invitations_membership_user")
                .table(Invitations::Table)
                .col(Invitations::MembershipId)
                .col(Invitations::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_invitations_user")
                .table(Invitations::Table)
                .col(Invitations::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_invitations_token")
                .table(Invitations::Table)
                .col(Invitations::TokenHash)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Invitations::Table).to_owned()).await
    }
}
