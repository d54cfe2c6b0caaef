//! Tying what an OAuth app creates to the authorization it acted under, so
//! that ending the authorization (the person revokes it, the app revokes
//! its token, the developer deletes the app) also ends what the app left
//! behind: its webhooks stop delivering, its alert rules stop evaluating,
//! its share links stop working. Rows made by people and API keys carry
//! neither column.
//!
//! A grant also remembers when it was last used, for the person's list of
//! authorized apps.
//!
//! No index on the new columns: they are read only when an authorization
//! ends, over tables that hold a membership's handful of endpoints, rules
//! and links.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
}

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    DisabledAtMs,
}

#[derive(DeriveIden)]
enum ShareLinks {
    Table,
}

#[derive(DeriveIden)]
enum Tied {
    AppId,
    GrantId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        m.alter_table(
            Table::alter()
                .table(OauthGrants::Table)
                .add_column(timestamp_with_time_zone_null(OauthGrants::LastUsedAt))
                .to_owned(),
        )
        .await?;
        for table in [
            Webhooks::Table.into_iden(),
            AlertRules::Table.into_iden(),
            ShareLinks::Table.into_iden(),
        ] {
            for col in [Tied::AppId, Tied::GrantId] {
                m.alter_table(
                    Table::alter()
                        .table(table.clone())
                        .add_column(uuid_null(col))
                        .to_owned(),
                )
                .await?;
            }
        }
        m.alter_table(
            Table::alter()
                .table(AlertRules::Table)
                .add_column(big_integer_null(AlertRules::DisabledAtMs))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(AlertRules::Table)
                .drop_column(AlertRules::DisabledAtMs)
                .to_owned(),
        )
        .await?;
        for table in [
            Webhooks::Table.into_iden(),
            AlertRules::Table.into_iden(),
            ShareLinks::Table.into_iden(),
        ] {
            for col in [Tied::AppId, Tied::GrantId] {
                m.alter_table(Table::alter().table(table.clone()).drop_column(col).to_owned())
                    .await?;
            }
        }
        m.alter_table(
            Table::alter()
                .table(OauthGrants::Table)
                .drop_column(OauthGrants::LastUsedAt)
                .to_owned(),
        )
        .await
    }
}
