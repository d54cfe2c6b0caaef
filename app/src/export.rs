//! A membership's export: one ZIP of everything it holds, built by a
//! background job and written to the object store as it is produced.
//!
//! The archive is a list of sections (`SECTIONS`); each writes its own
//! entries into the streaming archive and adds its counts to the manifest,
//! which is the last entry. Adding a section means one `Section` variant,
//! its name, and the function that writes it. Nothing is held whole in
//! memory: readings come from the database a page at a time (cursor by
//! time and id), farm files are decrypted chunk by chunk, ZIP entries of
//! generated text are sized when they end, and the object store receives
//! the archive in parts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use vitalfarm_domain::zip::{Timestamp, ZipEncoder};
use vitalfarm_domain::{FarmId, MembershipId, fhir, metrics};
use vitalfarm_storage::entity::{membership, reading};
use vitalfarm_storage::export_objects::{self, ExportWriter};
use vitalfarm_storage::farm_crypto::DataKey;
use vitalfarm_storage::repo::{accounts, audit, consents, devices, farms, jobs, subjects};

use crate::error::AppResult;
use crate::state::AppState;
use crate::views::ms_to_time;

/// The job kind of an export.
pub const KIND: &str = "export";
/// Bumped when the archive's layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;
/// Readings fetched per query.
const READINGS_PAGE: u64 = 2000;
/// Subjects, devices and files fetched per query.
const LIST_PAGE: u64 = 200;
/// Generated text is handed to the archive in pieces of about this size.
const FLUSH_AT: usize = 64 * 1024;

/// One part of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `subjects.json`
    Subjects,
    /// `devices.json`
    Devices,
    /// `readings/<subject_id>.ndjson` and `readings/<subject_id>.csv`
    Readings,
    /// `files/<farm path>`, decrypted
    Files,
    /// `fhir/<subject_id>.json`: each subject's readings as a FHIR R4
    /// `collection` Bundle
    Fhir,
    /// `consents.json`: every consent the membership gave or received
    Consents,
    /// `audit.ndjson`: the membership's audit chain, in order, with hashes
    Audit,
    /// `shared/<grantor>/<subject_id>.ndjson`: what individuals shared with
    /// this membership under consents whose access is `read_export`
    Shared,
}

/// The sections of every export, in archive order; `manifest.json` follows.
pub const SECTIONS: &[Section] = &[
    Section::Subjects,
    Section::Devices,
    Section::Readings,
    Section::Fhir,
    Section::Files,
    Section::Consents,
    Section::Audit,
    Section::Shared,
];

impl Section {
    pub const fn name(self) -> &'static str {
        match self {
            Section::Subjects => "subjects",
            Section::Devices => "devices",
            Section::Readings => "readings",
            Section::Files => "files",
            Section::Fhir => "fhir",
            Section::Consents => "consents",
            Section::Audit => "audit",
            Section::Shared => "shared",
        }
    }

    async fn write(self, ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
        match self {
            Section::Subjects => write_subjects(ctx, archive).await,
            Section::Devices => write_devices(ctx, archive).await,
            Section::Readings => write_readings(ctx, archive).await,
            Section::Files => write_files(ctx, archive).await,
            Section::Fhir => write_fhir(ctx, archive).await,
            Section::Consents => write_consents(ctx, archive).await,
            Section::Audit => write_audit(ctx, archive).await,
            Section::Shared => write_shared(ctx, archive).await,
        }
    }
}

/// What a section reads from.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub membership: &'a membership::Model,
    pub generated_at: DateTime<Utc>,
}

impl Ctx<'_> {
    fn membership_id(&self) -> MembershipId {
        MembershipId::from_uuid(self.membership.id)
    }
}

/// A JSON array entry being written, with its length so far.
pub struct JsonArray {
    len: u64,
}

/// The archive being written: the ZIP framing, the upload it goes to, the
/// manifest's counts, and the flag the lease keeper raises when the job
/// was lost to another worker.
pub struct Archive {
    zip: ZipEncoder,
    out: ExportWriter,
    counts: BTreeMap<&'static str, u64>,
    modified: Timestamp,
    lease_lost: Arc<AtomicBool>,
    pending: Vec<u8>,
}

impl Archive {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if self.lease_lost.load(Ordering::Relaxed) {
            anyhow::bail!("the job's lease was lost to another worker");
        }
        if !bytes.is_empty() {
            self.out.write(bytes).await?;
        }
        Ok(())
    }

    /// Adds `n` to the manifest count `key`.
    pub fn count(&mut self, key: &'static str, n: u64) {
        *self.counts.entry(key).or_default() += n;
    }

    /// Opens an entry whose size is known (a stored file).
    pub async fn begin_sized(&mut self, name: &str, size: u64, modified: Timestamp) -> anyhow::Result<()> {
        let header = self.zip.start_entry(name, size, modified)?;
        self.send(&header).await
    }

    /// Opens an entry of generated text; its size is what gets written.
    pub async fn begin(&mut self, name: &str) -> anyhow::Result<()> {
        let header = self.zip.start_unsized_entry(name, self.modified)?;
        self.send(&header).await
    }

    /// Writes into the open entry. Small writes are gathered, so a line per
    /// reading does not cost a store call per line.
    pub async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.zip.entry_data(&pending)?;
        self.send(&pending).await?;
        self.pending = pending;
        self.pending.clear();
        Ok(())
    }

    /// Closes the open entry.
    pub async fn end(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        let descriptor = self.zip.finish_entry()?;
        self.send(&descriptor).await
    }

    /// Opens an entry holding a JSON array that is written an element at
    /// a time (`array_item`, then `end_array`), so no list is held whole.
    pub async fn begin_array(&mut self, name: &str) -> anyhow::Result<JsonArray> {
        self.begin(name).await?;
        self.write(b"[").await?;
        Ok(JsonArray { len: 0 })
    }

    pub async fn array_item(&mut self, array: &mut JsonArray, value: &impl Serialize) -> anyhow::Result<()> {
        self.write(if array.len == 0 { b"\n" } else { b",\n" }).await?;
        self.write(&serde_json::to_vec(value)?).await?;
        array.len += 1;
        Ok(())
    }

    /// Closes the array and counts its elements in the manifest as `key`.
    pub async fn end_array(&mut self, array: JsonArray, key: &'static str) -> anyhow::Result<()> {
        self.write(b"\n]\n").await?;
        self.end().await?;
        self.count(key, array.len);
        Ok(())
    }

    /// A whole small entry of JSON.
    pub async fn json_entry(&mut self, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
        self.begin(name).await?;
        let bytes = serde_json::to_vec_pretty(value)?;
        self.write(&bytes).await?;
        self.end().await
    }
}

fn zip_time(t: DateTime<Utc>) -> Timestamp {
    (
        u16::try_from(t.year()).unwrap_or(1980),
        u8::try_from(t.month()).unwrap_or(1),
        u8::try_from(t.day()).unwrap_or(1),
        u8::try_from(t.hour()).unwrap_or(0),
        u8::try_from(t.minute()).unwrap_or(0),
        u8::try_from(t.second()).unwrap_or(0),
    )
}

/// The result recorded on a succeeded export job.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ExportResult {
    pub object_key: String,
    pub size: u64,
    pub sha256: String,
    pub counts: BTreeMap<String, u64>,
}

/// Builds the export of `job` and uploads it; returns what to record.
/// `lease_lost` is raised by the caller's lease keeper; the build stops at
/// its next write, and the partial upload is abandoned.
pub async fn build(
    state: &AppState,
    job: &vitalfarm_storage::entity::job::Model,
    lease_lost: Arc<AtomicBool>,
) -> anyhow::Result<ExportResult> {
    let mid = MembershipId::from_uuid(job.membership_id);
    let (membership, _) = accounts::find_membership(&state.db, mid)
        .await?
        .filter(|(m, _)| m.erased_at.is_none())
        .ok_or_else(|| anyhow::anyhow!("the membership is gone"))?;
    let ctx = Ctx {
        state,
        membership: &membership,
        generated_at: Utc::now(),
    };
    let key = export_objects::key(membership.id, job.id);
    let data_key = data_key(state, mid).await?;
    let mut archive = Archive {
        zip: ZipEncoder::new(),
        out: ExportWriter::new(&state.blobs, &key, data_key, job.id),
        counts: BTreeMap::new(),
        modified: zip_time(ctx.generated_at),
        lease_lost,
        pending: Vec::new(),
    };
    match write_all(&ctx, &mut archive).await {
        Ok(()) => {}
        Err(e) => {
            archive.out.abort().await;
            return Err(e);
        }
    }
    let Archive {
        zip, mut out, counts, ..
    } = archive;
    let tail = zip.finish()?;
    out.write(&tail).await?;
    let written = out.finish().await?;
    Ok(ExportResult {
        object_key: key,
        size: written.size,
        sha256: written.sha256,
        counts: counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    })
}

/// The key an export of `membership` is sealed with: its farm's data key,
/// so that erasing the membership (which destroys the key) makes every
/// export of it unreadable at once.
pub async fn data_key(state: &AppState, membership: MembershipId) -> anyhow::Result<DataKey> {
    let farm = farms::find_by_membership(&state.db, membership)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the membership has no farm"))?;
    crate::farm_keys::data_key(&state.db, &state.master_key, &farm).await
}

async fn write_all(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    for section in SECTIONS {
        section.write(ctx, archive).await?;
    }
    let manifest = json!({
        "format_version": FORMAT_VERSION,
        "membership": {
            "id": ctx.membership.id,
            "kind": ctx.membership.kind,
            "name": ctx.membership.name,
        },
        "generated_at": ctx.generated_at,
        "sections": SECTIONS.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "counts": archive.counts,
    });
    archive.json_entry("manifest.json", &manifest).await
}

/// `subjects.json`: a JSON array, written a page at a time.
async fn write_subjects(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let mut array = archive.begin_array("subjects.json").await?;
    let mut after = None;
    loop {
        let page = subjects::list(&ctx.state.db, ctx.membership_id(), None, after, LIST_PAGE).await?;
        for s in &page.items {
            let dto = crate::views::subject_dto(s).map_err(|e| anyhow::anyhow!("{e}"))?;
            archive.array_item(&mut array, &dto).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    archive.end_array(array, "subjects").await?;
    Ok(())
}

/// `devices.json`: the membership's fleet and the devices bound to it, as
/// the API shows them to it.
async fn write_devices(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let mut array = archive.begin_array("devices.json").await?;
    let mut after = None;
    loop {
        let page = devices::list(
            &ctx.state.db,
            ctx.membership_id(),
            devices::DeviceFilter::default(),
            after,
            LIST_PAGE,
        )
        .await?;
        for d in &page.items {
            let dto = crate::views::device_dto(d, ctx.membership_id());
            archive.array_item(&mut array, &dto).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    archive.end_array(array, "devices").await?;
    Ok(())
}

/// Component codes in catalog order: the CSV's value columns besides
/// `value`.
fn component_columns() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in metrics::catalog() {
        for c in m.components {
            if !out.contains(&c.code) {
                out.push(c.code);
            }
        }
    }
    out
}

/// `readings/<subject>.ndjson` and `.csv`, per subject: one line per
/// reading (a blood pressure's components together on one line), in
/// canonical units, by metric and then time.
async fn write_readings(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let columns = component_columns();
    let mut after = None;
    loop {
        let page = subjects::list(&ctx.state.db, ctx.membership_id(), None, after, LIST_PAGE).await?;
        for s in &page.items {
            archive.begin(&format!("readings/{}.ndjson", s.id)).await?;
            let mut cursor = ReadingCursor::new(ctx, s.id);
            let mut n = 0u64;
            while let Some(group) = cursor.next().await? {
                let mut line = serde_json::to_vec(&ndjson_line(&group)?)?;
                line.push(b'\n');
                archive.write(&line).await?;
                n += 1;
            }
            archive.end().await?;
            archive.count("readings", n);

            archive.begin(&format!("readings/{}.csv", s.id)).await?;
            let mut header = vec!["ts", "ts_ms", "metric", "value"];
            header.extend(columns.iter().copied());
            header.extend(["unit", "device_id", "source", "seq"]);
            archive
                .write(csv_line(header.iter().map(|h| (*h).to_owned())).as_bytes())
                .await?;
            let mut cursor = ReadingCursor::new(ctx, s.id);
            while let Some(group) = cursor.next().await? {
                archive.write(csv_row(&group, &columns)?.as_bytes()).await?;
            }
            archive.end().await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(())
}

fn ts_string(ts_ms: i64) -> AppResult<String> {
    Ok(ms_to_time(ts_ms)?.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// One reading as an NDJSON line: the ingest body's shape, plus where it
/// came from.
#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    ts_ms: i64,
    metric: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<BTreeMap<&'a str, f64>>,
    unit: &'a str,
    device_id: Option<Uuid>,
    source: &'a str,
    seq: Option<i64>,
}

fn ndjson_line(group: &[reading::Model]) -> AppResult<Option<Line<'_>>> {
    let Some(first) = group.first() else {
        return Ok(None);
    };
    let scalar = group.len() == 1 && first.component.is_empty();
    Ok(Some(Line {
        ts: ts_string(first.ts_ms)?,
        ts_ms: first.ts_ms,
        metric: &first.metric,
        value: scalar.then_some(first.value),
        components: (!scalar).then(|| group.iter().map(|r| (r.component.as_str(), r.value)).collect()),
        unit: &first.unit,
        device_id: first.device_id,
        source: &first.source,
        seq: first.seq,
    }))
}

fn csv_row(group: &[reading::Model], columns: &[&str]) -> AppResult<String> {
    let Some(first) = group.first() else {
        return Ok(String::new());
    };
    let scalar = group
        .iter()
        .find(|r| r.component.is_empty())
        .map(|r| r.value.to_string());
    let mut fields = vec![
        ts_string(first.ts_ms)?,
        first.ts_ms.to_string(),
        first.metric.clone(),
        scalar.unwrap_or_default(),
    ];
    for c in columns {
        fields.push(
            group
                .iter()
                .find(|r| r.component == *c)
                .map(|r| r.value.to_string())
                .unwrap_or_default(),
        );
    }
    fields.push(first.unit.clone());
    fields.push(first.device_id.map(|d| d.to_string()).unwrap_or_default());
    fields.push(first.source.clone());
    fields.push(first.seq.map(|s| s.to_string()).unwrap_or_default());
    Ok(csv_line(fields.into_iter()))
}

/// RFC 4180: a field with a comma, quote or line break is quoted.
fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let mut out = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&f);
        }
    }
    out.push_str("\r\n");
    out
}

/// Walks one subject's readings metric by metric, in time order, a page
/// at a time, and hands them out a reading at a time: the rows of one
/// device, metric and instant (a blood pressure's components) together.
/// Pages follow the `(subject, metric, ts)` index; the cursor is the last
/// row's `(ts_ms, id)`, so no row is skipped or repeated between pages.
struct ReadingCursor<'a> {
    ctx: &'a Ctx<'a>,
    /// The membership the subject belongs to: the exporter's own, or a
    /// grantor's for shared data.
    owner: Uuid,
    subject: Uuid,
    metrics: std::slice::Iter<'static, metrics::MetricDef>,
    metric: Option<&'static str>,
    after: Option<(i64, Uuid)>,
    exhausted: bool,
    rows: VecDeque<reading::Model>,
}

impl<'a> ReadingCursor<'a> {
    fn new(ctx: &'a Ctx<'a>, subject: Uuid) -> Self {
        Self::of(ctx, ctx.membership.id, subject)
    }

    fn of(ctx: &'a Ctx<'a>, owner: Uuid, subject: Uuid) -> Self {
        let mut metrics = metrics::catalog().iter();
        let metric = metrics.next().map(|m| m.code);
        Self {
            ctx,
            owner,
            subject,
            metrics,
            metric,
            after: None,
            exhausted: false,
            rows: VecDeque::new(),
        }
    }

    async fn fetch(&mut self, metric: &str) -> anyhow::Result<()> {
        let mut q = reading::Entity::find()
            .filter(reading::Column::MembershipId.eq(self.owner))
            .filter(reading::Column::SubjectId.eq(self.subject))
            .filter(reading::Column::Metric.eq(metric));
        if let Some((ts, id)) = self.after {
            // `ts >= t` on its own lets the index bound the scan; the OR
            // then only tells the rows of instant `t` apart.
            q = q.filter(reading::Column::TsMs.gte(ts)).filter(
                Condition::any()
                    .add(reading::Column::TsMs.gt(ts))
                    .add(reading::Column::Id.gt(id)),
            );
        }
        let page = q
            .order_by_asc(reading::Column::TsMs)
            .order_by_asc(reading::Column::Id)
            .limit(READINGS_PAGE)
            .all(self.ctx.state.db.conn())
            .await?;
        self.exhausted = (page.len() as u64) < READINGS_PAGE;
        if let Some(last) = page.last() {
            self.after = Some((last.ts_ms, last.id));
        }
        self.rows.extend(page);
        Ok(())
    }

    /// The next reading, or `None` after the last.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<reading::Model>>> {
        loop {
            let Some(metric) = self.metric else {
                return Ok(None);
            };
            // Make sure every row of the front instant is here: one more
            // page if the buffer ends on it and the metric has more.
            while !self.exhausted
                && self
                    .rows
                    .front()
                    .is_none_or(|f| self.rows.back().is_some_and(|b| b.ts_ms == f.ts_ms))
            {
                self.fetch(metric).await?;
            }
            let Some(front) = self.rows.front() else {
                self.metric = self.metrics.next().map(|m| m.code);
                self.after = None;
                self.exhausted = false;
                continue;
            };
            let (ts, device) = (front.ts_ms, front.device_id);
            let mut group = Vec::new();
            let mut rest = VecDeque::with_capacity(self.rows.len());
            // Rows of the same instant from other devices stay queued, in
            // their order, for the next calls.
            while let Some(row) = self.rows.pop_front() {
                if row.ts_ms != ts {
                    rest.push_back(row);
                    rest.extend(self.rows.drain(..));
                    break;
                }
                // A repeated component is another reading at the same
                // instant (manual readings have no device to tell apart).
                if row.device_id == device && !group.iter().any(|g: &reading::Model| g.component == row.component) {
                    group.push(row);
                } else {
                    rest.push_back(row);
                }
            }
            self.rows = rest;
            return Ok(Some(group));
        }
    }
}

/// The FHIR form of one reading's rows.
fn fhir_reading(group: &[reading::Model]) -> Option<fhir::Reading> {
    let first = group.first()?;
    Some(fhir::Reading {
        ts_ms: first.ts_ms,
        device_id: first.device_id,
        values: group.iter().map(|r| (r.component.clone(), r.value)).collect(),
        source: first.source.clone(),
    })
}

/// `fhir/<subject>.json`: a `collection` Bundle per subject, the Patient
/// first, then an Observation per reading, written entry by entry.
async fn write_fhir(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let page = subjects::list(&ctx.state.db, ctx.membership_id(), None, after, LIST_PAGE).await?;
        for s in &page.items {
            let patient = crate::views::patient_of(s);
            archive.begin(&format!("fhir/{}.json", s.id)).await?;
            let head = json!({
                "resourceType": "Bundle",
                "type": "collection",
                "timestamp": fhir::instant(ctx.generated_at.timestamp_millis()),
            });
            let mut text = serde_json::to_string(&head)?;
            // The entries are streamed into the object's last field.
            text.pop();
            text.push_str(",\"entry\":[\n");
            archive.write(text.as_bytes()).await?;
            let entry = |resource: serde_json::Value| {
                let id = resource["id"].as_str().unwrap_or_default().to_owned();
                json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
            };
            archive
                .write(&serde_json::to_vec(&entry(fhir::patient(&patient)))?)
                .await?;
            let mut cursor = ReadingCursor::new(ctx, s.id);
            let mut n = 0u64;
            while let Some(group) = cursor.next().await? {
                let Some(first) = group.first() else { continue };
                let (Some(metric), Some(reading)) = (metrics::find(&first.metric), fhir_reading(&group)) else {
                    continue;
                };
                if let Some(observation) = fhir::observation(&patient, metric, &reading) {
                    archive.write(b",\n").await?;
                    archive.write(&serde_json::to_vec(&entry(observation))?).await?;
                    n += 1;
                }
            }
            archive.write(b"\n]}\n").await?;
            archive.end().await?;
            archive.count("fhir_observations", n);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(())
}

/// `consents.json`: every consent the membership gave or received, as
/// `GET /v1/consents/{id}` shows it, revoked and expired ones included.
async fn write_consents(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let mut array = archive.begin_array("consents.json").await?;
    let now = Utc::now().timestamp_millis();
    let mut after = None;
    loop {
        let page = consents::list(
            &ctx.state.db,
            &[ctx.membership_id()],
            consents::Side::Either,
            after,
            LIST_PAGE,
        )
        .await?;
        for row in &page.items {
            let dto = crate::views::consent_view(ctx.state, row, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            archive.array_item(&mut array, &dto).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    archive.end_array(array, "consents").await?;
    Ok(())
}

/// `audit.ndjson`: the audit chain as stored, one event a line in order,
/// hashes included, so the export can be verified on its own.
async fn write_audit(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    archive.begin("audit.ndjson").await?;
    let mut after_seq = 0;
    let mut n = 0u64;
    loop {
        let page = audit::all_in_order(&ctx.state.db, ctx.membership_id(), after_seq, LIST_PAGE).await?;
        for e in &page {
            let line = json!({
                "id": e.id, "seq": e.seq, "at": ts_string(e.at_ms)?, "actor_kind": e.actor_kind,
                "actor_id": e.actor_id, "actor_membership_id": e.actor_membership_id, "action": e.action,
                "resource": e.resource, "consent_id": e.consent_id, "outcome": e.outcome,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
                "prev_hash": e.prev_hash, "hash": e.hash,
            });
            let mut bytes = serde_json::to_vec(&line)?;
            bytes.push(b'\n');
            archive.write(&bytes).await?;
            n += 1;
            after_seq = e.seq;
        }
        if (page.len() as u64) < LIST_PAGE {
            break;
        }
    }
    archive.end().await?;
    archive.count("audit_events", n);
    Ok(())
}

/// `shared/<grantor>/<subject>.ndjson`: readings individuals shared with
/// this membership, only under consents in force whose access is
/// `read_export`, and only what such a consent permits for export (its
/// metrics and data period; decided in `sharing::export_grants`), each
/// reading asked about at its own time. Each export of shared data is written to the
/// grantor's audit log with the consent used.
async fn write_shared(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let grants = crate::sharing::export_grants(&ctx.state.db, ctx.membership_id(), now).await?;
    let mut n = 0u64;
    for grant in &grants {
        for subject in grant.subjects() {
            archive
                .begin(&format!("shared/{}/{}.ndjson", grant.grantor, subject))
                .await?;
            let mut cursor = ReadingCursor::of(ctx, grant.grantor.as_uuid(), subject.as_uuid());
            while let Some(group) = cursor.next().await? {
                let Some(first) = group.first() else { continue };
                if !grant.permits(subject, &first.metric, first.ts_ms) {
                    continue;
                }
                let mut line = serde_json::to_vec(&ndjson_line(&group)?)?;
                line.push(b'\n');
                archive.write(&line).await?;
                n += 1;
            }
            archive.end().await?;
            let mut event = crate::audit::Event::new(
                grant.grantor,
                crate::audit::Actor::System,
                "data.exported",
                format!("subject/{subject}/readings"),
            );
            event.consent = Some(grant.id);
            event.actor_membership = Some(ctx.membership_id());
            crate::audit::record(ctx.state, event)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    archive.count("shared_readings", n);
    Ok(())
}

/// `files/<farm path>`: every farm file, decrypted, streamed.
async fn write_files(ctx: &Ctx<'_>, archive: &mut Archive) -> anyhow::Result<()> {
    let Some(farm) = farms::find_by_membership(&ctx.state.db, ctx.membership_id()).await? else {
        return Ok(());
    };
    let farm_id = FarmId::from_uuid(farm.id);
    let mut after: Option<String> = None;
    let mut key = None;
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let files = farms::files_after(&ctx.state.db, farm_id, after.as_deref(), LIST_PAGE).await?;
        let Some(last) = files.last() else { break };
        after = Some(last.path.clone());
        if key.is_none() {
            key = Some(crate::farm_keys::data_key(&ctx.state.db, &ctx.state.master_key, &farm).await?);
        }
        let Some(key) = &key else { break };
        for file in files {
            let size = u64::try_from(file.size)?;
            archive
                .begin_sized(&format!("files{}", file.path), size, zip_time(file.updated_at))
                .await?;
            let mut body = ctx.state.blobs.read(farm_id, file.blob_id, key, size, None).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                archive.zip.entry_data(&chunk)?;
                archive.send(&chunk).await?;
            }
            let descriptor = archive.zip.finish_entry()?;
            archive.send(&descriptor).await?;
            n += 1;
            bytes += size;
        }
    }
    archive.count("files", n);
    archive.count("file_bytes", bytes);
    Ok(())
}

/// Expires the membership's finished exports beyond the newest
/// `export_retain` (the newest being `job`'s): their archives are removed
/// and their downloads answer 410, so exporting again and again does not
/// pile archives up until `export_ttl_secs`.
pub async fn retire_superseded(state: &AppState, job: &vitalfarm_storage::entity::job::Model) -> anyhow::Result<usize> {
    let membership = MembershipId::from_uuid(job.membership_id);
    let keep = usize::try_from(state.config.export_retain).unwrap_or(usize::MAX);
    let mut retired = 0;
    for old in jobs::with_result(&state.db, membership, KIND)
        .await?
        .into_iter()
        .skip(keep)
    {
        export_objects::delete(&state.blobs, &export_objects::key(old.membership_id, old.id)).await?;
        jobs::clear_result(&state.db, vitalfarm_domain::JobId::from_uuid(old.id)).await?;
        retired += 1;
    }
    Ok(retired)
}

/// Removes the objects of exports past their time (`export_ttl_secs` after
/// they finished); the job stays, without a result, and its download
/// answers 410. Idempotent: every node may run it.
pub async fn sweep_expired(state: &AppState) -> anyhow::Result<usize> {
    let ttl = chrono::Duration::seconds(i64::try_from(state.config.export_ttl_secs).unwrap_or(i64::MAX / 1000));
    let cutoff = Utc::now() - ttl;
    let mut removed = 0;
    loop {
        let batch = jobs::expired(&state.db, KIND, cutoff, 100).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        for job in batch {
            export_objects::delete(&state.blobs, &export_objects::key(job.membership_id, job.id)).await?;
            jobs::clear_result(&state.db, vitalfarm_domain::JobId::from_uuid(job.id)).await?;
            removed += 1;
        }
    }
}
