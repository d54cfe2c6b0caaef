//! Alert rules, the alerts they open, and the due times of silence rules.
//!
//! An alert is open or acknowledged until it resolves; a partial unique
//! index on `(rule_id, subject_id)` over the unresolved ones makes "at most
//! one live alert per rule and subject" hold across nodes, whichever
//! evaluates first. Times are epoch milliseconds (`big_integer`): compared
//! in SQL on both databases without timestamp arithmetic.
//!
//! `alert_due` holds, per silence (`no_data`) rule and subject, when the
//! silence becomes long enough to alert; the due loop reads only rows whose
//! time has come, through the index on `due_at_ms`, never the readings.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AlertRules {
    Table,
    Id,
    MembershipId,
    Name,
    Metric,
    Component,
    SubjectIds,
    Condition,
    Severity,
    CreatedBy,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    MembershipId,
    RuleId,
    RuleName,
    SubjectId,
    Metric,
    Component,
    Severity,
    Status,
    OpenedAtMs,
    AcknowledgedAtMs,
    AcknowledgedBy,
    ResolvedAtMs,
    LastValue,
    LastValueAtMs,
    Trigger,
    Occurrences,
}

#[derive(DeriveIden)]
enum AlertDue {
    Table,
    RuleId,
    SubjectId,
    MembershipId,
    DueAtMs,
    LastReadingMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AlertRules::Table)
                .col(pk_uuid(AlertRules::Id))
                // No foreign keys here: erasure deletes a membership's rules
                // and alerts itself.
                .col(uuid(AlertRules::MembershipId))
                .col(string_len(AlertRules::Name, 200))
                // Null: a silence rule over every metric.
                .col(string_len_null(AlertRules::Metric, 64))
                // "" for a single-valued metric or a whole metric.
                .col(string_len(AlertRules::Component, 64))
                // JSON array of subject ids; null for every visible subject.
                .col(text_null(AlertRules::SubjectIds))
                // The condition's canonical JSON.
                .col(text(AlertRules::Condition))
                .col(string_len(AlertRules::Severity, 16))
                .col(uuid_null(AlertRules::CreatedBy))
                .col(big_integer(AlertRules::CreatedAtMs))
                .to_owned(),
        )
        .await?;
        // Ingest loads the rules of the memberships a batch concerns.
        m.create_index(
            Index::create()
                .name("idx_alert_rules_membership")
                .table(AlertRules::Table)
                .col(AlertRules::MembershipId)
                .col(AlertRules::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alerts::Table)
                .col(pk_uuid(Alerts::Id))
                .col(uuid(Alerts::MembershipId))
                .col(uuid(Alerts::RuleId))
                // Kept so an alert still reads after its rule is deleted.
                .col(string_len(Alerts::RuleName, 200))
                .col(uuid(Alerts::SubjectId))
                .col(string_len_null(Alerts::Metric, 64))
                .col(string_len(Alerts::Component, 64))
                .col(string_len(Alerts::Severity, 16))
                // open, acknowledged, resolved.
                .col(string_len(Alerts::Status, 16))
                .col(big_integer(Alerts::OpenedAtMs))
                .col(big_integer_null(Alerts::AcknowledgedAtMs))
                .col(uuid_null(Alerts::AcknowledgedBy))
                .col(big_integer_null(Alerts::ResolvedAtMs))
                .col(double_null(Alerts::LastValue))
                .col(big_integer_null(Alerts::LastValueAtMs))
                // JSON: why it opened (kind, value, thresholds).
                .col(text(Alerts::Trigger))
                .col(integer(Alerts::Occurrences).default(1))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_alerts_membership")
                .table(Alerts::Table)
                .col(Alerts::MembershipId)
                .col(Alerts::Id)
                .to_owned(),
        )
        .await?;
        // The same statement on both databases; sea-query's builder has no
        // partial indexes.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_alerts_live ON alerts (rule_id, subject_id) WHERE status <> 'resolved'",
            )
            .await?;
        m.create_table(
            Table::create()
                .table(AlertDue::Table)
                .col(uuid(AlertDue::RuleId))
                .col(uuid(AlertDue::SubjectId))
                .col(uuid(AlertDue::MembershipId))
                // Null once its alert has opened: due again only after a
                // reading.
                .col(big_integer_null(AlertDue::DueAtMs))
                .col(big_integer_null(AlertDue::LastReadingMs))
                .primary_key(Index::create().col(AlertDue::RuleId).col(AlertDue::SubjectId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_alert_due_at")
                .table(AlertDue::Table)
                .col(AlertDue::DueAtMs)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AlertDue::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Alerts::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(AlertRules::Table).to_owned()).await?;
        Ok(())
    }
}
