//! Per-subject sums for cohort aggregates: one grouped statement per batch
//! of subjects that share a time window, served by the
//! `(subject, metric, ts)` index, so no reading value leaves the database.

use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

use crate::{Database, StorageError};

/// What one subject's readings of a component add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectSums {
    pub subject_id: Uuid,
    pub count: i64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
}

/// Subjects per statement: well under SQLite's parameter limit.
const BATCH: usize = 500;

/// Count, sum, sum of squares, min and max of `metric`/`component` in
/// `[from, to)` per subject of `subjects` (subjects without readings there
/// are absent from the result).
pub async fn sums(
    db: &Database,
    subjects: &[Uuid],
    metric: &str,
    component: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<SubjectSums>, StorageError> {
    let mut out = Vec::new();
    if from_ms >= to_ms {
        return Ok(out);
    }
    for chunk in subjects.chunks(BATCH) {
        let n = chunk.len() + 4;
        let p: Vec<String> = (1..=n)
            .map(|i| match db.kind() {
                crate::DatabaseKind::Postgres => format!("${i}"),
                crate::DatabaseKind::Sqlite => "?".to_owned(),
            })
            .collect();
        let sql = format!(
            "SELECT subject_id, COUNT(*) AS n, SUM(value) AS s, SUM(value * value) AS s2, MIN(value) AS lo, MAX(value) AS hi \
             FROM readings WHERE metric = {} AND component = {} AND ts_ms >= {} AND ts_ms < {} AND subject_id IN ({}) \
             GROUP BY subject_id",
            p[0],
            p[1],
            p[2],
            p[3],
            p[4..].join(", ")
        );
        let mut values: Vec<sea_orm::Value> = vec![
            metric.to_owned().into(),
            component.to_owned().into(),
            from_ms.into(),
            to_ms.into(),
        ];
        values.extend(chunk.iter().map(|s| sea_orm::Value::from(*s)));
        let rows = db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(db.backend(), sql, values))
            .await?;
        for r in rows {
            out.push(SubjectSums {
                subject_id: r.try_get("", "subject_id")?,
                count: r.try_get("", "n")?,
                sum: r.try_get("", "s")?,
                sum_sq: r.try_get("", "s2")?,
                min: r.try_get("", "lo")?,
                max: r.try_get("", "hi")?,
            });
        }
    }
    Ok(out)
}

/// The subjects among `ids` that belong to `membership`.
pub async fn subjects_of(
    db: &Database,
    membership: vitalfarm_domain::MembershipId,
    ids: &[Uuid],
) -> Result<Vec<crate::entity::subject::Model>, StorageError> {
    use crate::entity::subject;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut out = Vec::new();
    for chunk in ids.chunks(BATCH) {
        out.extend(
            subject::Entity::find()
                .filter(subject::Column::MembershipId.eq(membership.as_uuid()))
                .filter(subject::Column::Id.is_in(chunk.iter().copied()))
                .all(db.conn())
                .await?,
        );
    }
    Ok(out)
}
