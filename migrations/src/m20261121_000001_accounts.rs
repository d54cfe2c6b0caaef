//! Accounts, memberships and the credentials that reach them: users, member
//! roles, farms, subjects, API keys, refresh token families and the login
//! rate-limit counters (kept in the database so every API node sees them).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    InviteTokenHash,
    InviteExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    Kind,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MemberRoles {
    Table,
    MembershipId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Farms {
    Table,
    Id,
    MembershipId,
    QuotaBytes,
    UsedBytes,
    FileCount,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Subjects {
    Table,
    Id,
    MembershipId,
    Kind,
    DisplayName,
    BirthDate,
    Sex,
    ExternalRef,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    MembershipId,
    Name,
    Role,
    Prefix,
    SecretHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    FamilyId,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    WindowStart,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_uuid(Users::Id))
                .col(string_len_uniq(Users::Email, 254))
                .col(text_null(Users::PasswordHash))
                .col(string_len(Users::DisplayName, 200))
                .col(string_len_null(Users::InviteTokenHash, 64))
                .col(timestamp_with_time_zone_null(Users::InviteExpiresAt))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_index(
            Index::create()
                .name("idx_users_invite_token")
                .table(Users::Table)
                .col(Users::InviteTokenHash)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(pk_uuid(Memberships::Id))
                .col(string_len(Memberships::Kind, 16))
                .col(string_len(Memberships::Name, 200))
                .col(timestamp_with_time_zone(Memberships::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MemberRoles::Table)
                .col(uuid(MemberRoles::MembershipId))
                .col(uuid(MemberRoles::UserId))
                .col(string_len(MemberRoles::Role, 16))
                .col(timestamp_with_time_zone(MemberRoles::CreatedAt))
                .primary_key(Index::create().col(MemberRoles::MembershipId).col(MemberRoles::UserId))
                .foreign_key(
                    ForeignKey::create()
                        .from(MemberRoles::Table, MemberRoles::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(MemberRoles::Table, MemberRoles::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_member_roles_user")
                .table(MemberRoles::Table)
                .col(MemberRoles::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Farms::Table)
                .col(pk_uuid(Farms::Id))
                .col(uuid_uniq(Farms::MembershipId))
                .col(big_integer(Farms::QuotaBytes))
                .col(big_integer(Farms::UsedBytes).default(0))
                .col(big_integer(Farms::FileCount).default(0))
                .col(timestamp_with_time_zone(Farms::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Farms::Table, Farms::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Subjects::Table)
                .col(pk_uuid(Subjects::Id))
                .col(uuid(Subjects::MembershipId))
                .col(string_len(Subjects::Kind, 16))
                .col(string_len(Subjects::DisplayName, 200))
                .col(date_null(Subjects::BirthDate))
                .col(string_len_null(Subjects::Sex, 16))
                .col(string_len_null(Subjects::ExternalRef, 200))
                .col(timestamp_with_time_zone(Subjects::CreatedAt))
                .col(timestamp_with_time_zone(Subjects::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Subjects::Table, Subjects::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_subjects_membership")
                .table(Subjects::Table)
                .col(Subjects::MembershipId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(pk_uuid(ApiKeys::Id))
                .col(uuid(ApiKeys::MembershipId))
                .col(string_len(ApiKeys::Name, 200))
                .col(string_len(ApiKeys::Role, 16))
                .col(string_len(ApiKeys::Prefix, 32))
                .col(string_len_uniq(ApiKeys::SecretHash, 64))
                .col(uuid(ApiKeys::CreatedBy))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiKeys::Table, ApiKeys::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_api_keys_membership")
                .table(ApiKeys::Table)
                .col(ApiKeys::MembershipId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(pk_uuid(RefreshTokens::Id))
                .col(uuid(RefreshTokens::FamilyId))
                .col(uuid(RefreshTokens::UserId))
                .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(RefreshTokens::Table, RefreshTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_refresh_tokens_family")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::FamilyId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RateLimits::Table)
                .col(string_len(RateLimits::Key, 300).primary_key())
                .col(timestamp_with_time_zone(RateLimits::WindowStart))
                .col(integer(RateLimits::Count))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RateLimits::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Subjects::Table.into_iden(),
            Farms::Table.into_iden(),
            MemberRoles::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
