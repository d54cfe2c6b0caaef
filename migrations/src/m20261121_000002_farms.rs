//! Farms: file metadata, the blobs behind it (with their life-cycle state so
//! interrupted uploads and replaced bytes can be swept), share links and
//! every use of them, and each farm's wrapped data key.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Farms {
    Table,
    Id,
    WrappedKey,
    MasterKeyId,
    MaxFileBytes,
}

#[derive(DeriveIden)]
enum FarmFiles {
    Table,
    Id,
    FarmId,
    Path,
    BlobId,
    Size,
    Sha256,
    ContentType,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FarmBlobs {
    Table,
    Id,
    FarmId,
    State,
    Size,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ShareLinks {
    Table,
    Id,
    FarmId,
    FileId,
    TokenHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ShareLinkUses {
    Table,
    Id,
    LinkId,
    At,
    ClientIp,
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER per column: SQLite adds a single column per statement.
        m.alter_table(
            Table::alter()
                .table(Farms::Table)
                .add_column(text_null(Farms::WrappedKey))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Farms::Table)
                .add_column(string_len_null(Farms::MasterKeyId, 32))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Farms::Table)
                .add_column(big_integer_null(Farms::MaxFileBytes))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(FarmBlobs::Table)
                .col(pk_uuid(FarmBlobs::Id))
                .col(uuid(FarmBlobs::FarmId))
                .col(string_len(FarmBlobs::State, 16))
                .col(big_integer(FarmBlobs::Size))
                .col(timestamp_with_time_zone(FarmBlobs::CreatedAt))
                .col(timestamp_with_time_zone(FarmBlobs::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(FarmBlobs::Table, FarmBlobs::FarmId)
                        .to(Farms::Table, Farms::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_farm_blobs_state")
                .table(FarmBlobs::Table)
                .col(FarmBlobs::State)
                .col(FarmBlobs::UpdatedAt)
                .to_owned(),
        )
        .await?;

        // Paths compare byte by byte on both databases (SQLite's default
        // BINARY collation; "C" on PostgreSQL), so a prefix is a key range
        // and listings page in the same order everywhere.
        let mut path = string_len(FarmFiles::Path, 1024);
        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            path.extra("COLLATE \"C\"");
        }
        m.create_table(
            Table::create()
                .table(FarmFiles::Table)
                .col(pk_uuid(FarmFiles::Id))
                .col(uuid(FarmFiles::FarmId))
                .col(path)
                .col(uuid_uniq(FarmFiles::BlobId))
                .col(big_integer(FarmFiles::Size))
                .col(string_len(FarmFiles::Sha256, 64))
                .col(string_len(FarmFiles::ContentType, 255))
                .col(big_integer(FarmFiles::Version))
                .col(timestamp_with_time_zone(FarmFiles::CreatedAt))
                .col(timestamp_with_time_zone(FarmFiles::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(FarmFiles::Table, FarmFiles::FarmId)
                        .to(Farms::Table, Farms::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(FarmFiles::Table, FarmFiles::BlobId)
                        .to(FarmBlobs::Table, FarmBlobs::Id),
                )
                .to_owned(),
        )
        .await?;
        // Unique per farm, and the index that serves prefix listings in path
        // order.
        m.create_index(
            Index::create()
                .name("idx_farm_files_path")
                .table(FarmFiles::Table)
                .col(FarmFiles::FarmId)
                .col(FarmFiles::Path)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ShareLinks::Table)
                .col(pk_uuid(ShareLinks::Id))
                .col(uuid(ShareLinks::FarmId))
                .col(uuid(ShareLinks::FileId))
                .col(string_len_uniq(ShareLinks::TokenHash, 64))
                .col(uuid(ShareLinks::CreatedBy))
                .col(timestamp_with_time_zone(ShareLinks::CreatedAt))
                .col(timestamp_with_time_zone(ShareLinks::ExpiresAt))
                .col(timestamp_with_time_zone_null(ShareLinks::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ShareLinks::Table, ShareLinks::FarmId)
                        .to(Farms::Table, Farms::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ShareLinks::Table, ShareLinks::FileId)
                        .to(FarmFiles::Table, FarmFiles::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_share_links_farm")
                .table(ShareLinks::Table)
                .col(ShareLinks::FarmId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ShareLinkUses::Table)
                .col(pk_uuid(ShareLinkUses::Id))
                .col(uuid(ShareLinkUses::LinkId))
                .col(timestamp_with_time_zone(ShareLinkUses::At))
                .col(string_len(ShareLinkUses::ClientIp, 64))
                .col(string_len(ShareLinkUses::Outcome, 32))
                .foreign_key(
                    ForeignKey::create()
                        .from(ShareLinkUses::Table, ShareLinkUses::LinkId)
                        .to(ShareLinks::Table, ShareLinks::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_share_link_uses_link")
                .table(ShareLinkUses::Table)
                .col(ShareLinkUses::LinkId)
                .col(ShareLinkUses::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ShareLinkUses::Table.into_iden(),
            ShareLinks::Table.into_iden(),
            FarmFiles::Table.into_iden(),
            FarmBlobs::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for col in [
            Farms::WrappedKey.into_iden(),
            Farms::MasterKeyId.into_iden(),
            Farms::MaxFileBytes.into_iden(),
        ] {
            m.alter_table(Table::alter().table(Farms::Table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
