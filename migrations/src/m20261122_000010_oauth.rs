//! OAuth2 for third-party apps: the apps memberships register, the short-lived
//! authorization codes, the grants (a user's or a membership's authorization
//! of an app, the family every token of that authorization belongs to) and
//! the grants' rotating refresh tokens. Client secrets, codes and refresh
//! tokens are stored only as SHA-256 digests.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthApps {
    Table,
    Id,
    MembershipId,
    Name,
    ClientType,
    SecretHash,
    RedirectUris,
    Scopes,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    Id,
    AppId,
    UserId,
    MembershipId,
    Scopes,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum OauthCodes {
    Table,
    Id,
    CodeHash,
    AppId,
    UserId,
    RedirectUri,
    CodeChallenge,
    Scopes,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    GrantId,
}

#[derive(DeriveIden)]
enum OauthRefreshTokens {
    Table,
    Id,
    GrantId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(OauthApps::Table)
                .col(pk_uuid(OauthApps::Id))
                .col(uuid(OauthApps::MembershipId))
                .col(string_len(OauthApps::Name, 200))
                .col(string_len(OauthApps::ClientType, 16))
                .col(string_len_null(OauthApps::SecretHash, 64))
                // JSON array of the byte-exact URIs.
                .col(text(OauthApps::RedirectUris))
                // Space-separated, as in RFC 6749.
                .col(string_len(OauthApps::Scopes, 512))
                .col(uuid(OauthApps::CreatedBy))
                .col(timestamp_with_time_zone(OauthApps::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthApps::Table, OauthApps::MembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_oauth_apps_membership")
                .table(OauthApps::Table)
                .col(OauthApps::MembershipId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OauthGrants::Table)
                .col(pk_uuid(OauthGrants::Id))
                .col(uuid(OauthGrants::AppId))
                // A user's authorization (authorization code) or, for
                // client_credentials, the app's own membership.
                .col(uuid_null(OauthGrants::UserId))
                .col(uuid_null(OauthGrants::MembershipId))
                .col(string_len(OauthGrants::Scopes, 512))
                .col(timestamp_with_time_zone(OauthGrants::CreatedAt))
                .col(timestamp_with_time_zone_null(OauthGrants::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthGrants::Table, OauthGrants::AppId)
                        .to(OauthApps::Table, OauthApps::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthGrants::Table, OauthGrants::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_oauth_grants_app")
                .table(OauthGrants::Table)
                .col(OauthGrants::AppId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OauthCodes::Table)
                .col(pk_uuid(OauthCodes::Id))
                .col(string_len_uniq(OauthCodes::CodeHash, 64))
                .col(uuid(OauthCodes::AppId))
                .col(uuid(OauthCodes::UserId))
                .col(text(OauthCodes::RedirectUri))
                .col(string_len(OauthCodes::CodeChallenge, 64))
                .col(string_len(OauthCodes::Scopes, 512))
                .col(timestamp_with_time_zone(OauthCodes::CreatedAt))
                .col(timestamp_with_time_zone(OauthCodes::ExpiresAt))
                .col(timestamp_with_time_zone_null(OauthCodes::UsedAt))
                // The grant the code was exchanged for: a second use of the
                // code revokes it.
                .col(uuid_null(OauthCodes::GrantId))
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthCodes::Table, OauthCodes::AppId)
                        .to(OauthApps::Table, OauthApps::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthCodes::Table, OauthCodes::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(OauthRefreshTokens::Table)
                .col(pk_uuid(OauthRefreshTokens::Id))
                .col(uuid(OauthRefreshTokens::GrantId))
                .col(string_len_uniq(OauthRefreshTokens::TokenHash, 64))
                .col(timestamp_with_time_zone(OauthRefreshTokens::CreatedAt))
                .col(timestamp_with_time_zone(OauthRefreshTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(OauthRefreshTokens::UsedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(OauthRefreshTokens::Table, OauthRefreshTokens::GrantId)
                        .to(OauthGrants::Table, OauthGrants::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_oauth_refresh_tokens_grant")
                .table(OauthRefreshTokens::Table)
                .col(OauthRefreshTokens::GrantId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OauthRefreshTokens::Table.into_iden(),
            OauthCodes::Table.into_iden(),
            OauthGrants::Table.into_iden(),
            OauthApps::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
