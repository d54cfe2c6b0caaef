//! Consents and consent requests. A consent's scope lists (subjects,
//! metrics, farm path prefixes) are small JSON arrays: a reader loads the
//! few consents between one grantor and its own memberships and evaluates
//! them in `domain::consent`, so no query ever needs to look inside them.
//! Times are epoch milliseconds, the unit the evaluation works in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    GrantorMembershipId,
    GranteeMembershipId,
    SubjectIds,
    Metrics,
    FarmPaths,
    Purpose,
    Access,
    ValidFromMs,
    ValidUntilMs,
    DataFromMs,
    DataUntilMs,
    RevokedAtMs,
    RevokedBy,
    GrantedBy,
    RequestId,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum ConsentRequests {
    Table,
    Id,
    RequesterMembershipId,
    RequestedBy,
    IndividualEmail,
    Metrics,
    FarmPaths,
    Purpose,
    Access,
    DurationSecs,
    DataFromMs,
    DataUntilMs,
    Note,
    Status,
    DecidedAtMs,
    DecidedBy,
    ConsentId,
    CreatedAtMs,
    ExpiresAtMs,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
}

fn membership_fk(from: (Consents, Consents)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Memberships::Table, Memberships::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Consents::Table)
                .col(pk_uuid(Consents::Id))
                .col(uuid(Consents::GrantorMembershipId))
                .col(uuid(Consents::GranteeMembershipId))
                .col(text(Consents::SubjectIds))
                .col(text(Consents::Metrics))
                .col(text(Consents::FarmPaths))
                .col(string_len(Consents::Purpose, 16))
                .col(string_len(Consents::Access, 16))
                .col(big_integer_null(Consents::ValidFromMs))
                .col(big_integer_null(Consents::ValidUntilMs))
                .col(big_integer_null(Consents::DataFromMs))
                .col(big_integer_null(Consents::DataUntilMs))
                .col(big_integer_null(Consents::RevokedAtMs))
                .col(uuid_null(Consents::RevokedBy))
                .col(uuid_null(Consents::GrantedBy))
                .col(uuid_null(Consents::RequestId))
                .col(big_integer(Consents::CreatedAtMs))
                .foreign_key(&mut membership_fk((Consents::Table, Consents::GrantorMembershipId)))
                .foreign_key(&mut membership_fk((Consents::Table, Consents::GranteeMembershipId)))
                .to_owned(),
        )
        .await?;
        // The read path: "which consents has this grantor given my membership?"
        m.create_index(
            Index::create()
                .name("consents_grantee_grantor")
                .table(Consents::Table)
                .col(Consents::GranteeMembershipId)
                .col(Consents::GrantorMembershipId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consents_grantor")
                .table(Consents::Table)
                .col(Consents::GrantorMembershipId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ConsentRequests::Table)
                .col(pk_uuid(ConsentRequests::Id))
                .col(uuid(ConsentRequests::RequesterMembershipId))
                .col(uuid_null(ConsentRequests::RequestedBy))
                // Normalised (lower-case) so the individual's sign-in email
                // finds it; the address need not belong to anyone yet.
                .col(string_len(ConsentRequests::IndividualEmail, 254))
                .col(text(ConsentRequests::Metrics))
                .col(text(ConsentRequests::FarmPaths))
                .col(string_len(ConsentRequests::Purpose, 16))
                .col(string_len(ConsentRequests::Access, 16))
                .col(big_integer(ConsentRequests::DurationSecs))
                .col(big_integer_null(ConsentRequests::DataFromMs))
                .col(big_integer_null(ConsentRequests::DataUntilMs))
                .col(string_len_null(ConsentRequests::Note, 500))
                .col(string_len(ConsentRequests::Status, 16))
                .col(big_integer_null(ConsentRequests::DecidedAtMs))
                .col(uuid_null(ConsentRequests::DecidedBy))
                .col(uuid_null(ConsentRequests::ConsentId))
                .col(big_integer(ConsentRequests::CreatedAtMs))
                .col(big_integer(ConsentRequests::ExpiresAtMs))
                .foreign_key(
                    ForeignKey::create()
                        .from(ConsentRequests::Table, ConsentRequests::RequesterMembershipId)
                        .to(Memberships::Table, Memberships::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consent_requests_email")
                .table(ConsentRequests::Table)
                .col(ConsentRequests::IndividualEmail)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consent_requests_requester")
                .table(ConsentRequests::Table)
                .col(ConsentRequests::RequesterMembershipId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ConsentRequests::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Consents::Table).to_owned()).await
    }
}
