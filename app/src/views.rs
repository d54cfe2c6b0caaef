//! Stored rows as the public types of `vitalfarm-openapi`: the one place
//! an entity is mapped for a client, whichever door it leaves by (an HTTP
//! answer, an export archive, an MQTT message).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vitalfarm_domain::consent::{self, Consent as DomainConsent};
use vitalfarm_domain::{DeviceStatus, MembershipId, Sex, SubjectKind, fhir};
use vitalfarm_openapi::consents::{Consent, ConsentRequestStatus, ConsentRequestView, ConsentStatus, RequestDirection};
use vitalfarm_openapi::devices::Device;

use vitalfarm_openapi::subjects::Subject;
use vitalfarm_storage::entity::{consent as consent_row, consent_request, device, subject};
use vitalfarm_storage::repo::{accounts, consents};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn subject_dto(s: &subject::Model) -> AppResult<Subject> {
    Ok(Subject {
        id: s.id,
        membership_id: s.membership_id,
        kind: SubjectKind::parse(&s.kind)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("subject {} has unknown kind", s.id)))?,
        display_name: s.display_name.clone(),
        birth_date: s.birth_date,
        sex: s.sex.as_deref().and_then(Sex::parse),
        external_ref: s.external_ref.clone(),
        created_at: s.created_at,
        updated_at: s.updated_at,
    })
}

/// The device as `viewer` may see it: a fleet owner does not learn which
/// subject (of another membership) its device records.
pub fn device_dto(d: &device::Model, viewer: MembershipId) -> Device {
    let sees_subject = d.bound_membership_id == Some(viewer.as_uuid());
    Device {
        id: d.id,
        owner_membership_id: d.owner_membership_id,
        model_id: d.model_id,
        serial: d.serial.clone(),
        status: DeviceStatus::parse(&d.status).unwrap_or(DeviceStatus::Suspended),
        claimed: d.subject_id.is_some(),
        subject_id: if sees_subject { d.subject_id } else { None },
        last_seen_at: d.last_seen_at,
        last_error: d.last_error.clone(),
        last_error_at: d.last_error_at,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

pub fn patient_of(subject: &subject::Model) -> fhir::Patient {
    fhir::Patient {
        id: subject.id,
        display_name: subject.display_name.clone(),
        birth_date: subject.birth_date.map(|d| d.format("%Y-%m-%d").to_string()),
        sex: subject.sex.as_deref().and_then(Sex::parse),
    }
}

/// A stored millisecond timestamp as a time. Every stored one is in range;
/// one that is not is damaged data, reported (a 500) rather than shown as
/// 1970.
pub fn ms_to_time(ms: i64) -> AppResult<DateTime<Utc>> {
    Ok(vitalfarm_storage::stored_time(ms)?)
}

pub fn status_of(c: &DomainConsent, now: i64) -> ConsentStatus {
    match c.state(now) {
        consent::State::Pending => ConsentStatus::Pending,
        consent::State::Active => ConsentStatus::Active,
        consent::State::Expired => ConsentStatus::Expired,
        consent::State::Revoked => ConsentStatus::Revoked,
    }
}

/// Names and farms of the memberships on either side of some consents.
pub struct Names(HashMap<Uuid, (String, Option<Uuid>)>);

impl Names {
    pub async fn load(state: &AppState, ids: impl IntoIterator<Item = Uuid>) -> AppResult<Self> {
        let mut map = HashMap::new();
        for id in ids {
            if map.contains_key(&id) {
                continue;
            }
            if let Some((m, farm)) = accounts::find_membership(&state.db, MembershipId::from_uuid(id)).await? {
                map.insert(id, (m.name, farm.map(|f| f.id)));
            }
        }
        Ok(Names(map))
    }

    pub fn name(&self, id: Uuid) -> String {
        self.0.get(&id).map(|(n, _)| n.clone()).unwrap_or_default()
    }

    pub fn farm(&self, id: Uuid) -> Option<Uuid> {
        self.0.get(&id).and_then(|(_, f)| *f)
    }
}

pub fn consent_dto(row: &consent_row::Model, names: &Names, now: i64) -> AppResult<Consent> {
    let c = consents::to_domain(row)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("consent {} does not parse", row.id)))?;
    Ok(Consent {
        id: row.id,
        grantor_membership_id: row.grantor_membership_id,
        grantor_name: names.name(row.grantor_membership_id),
        grantor_farm_id: names.farm(row.grantor_membership_id),
        grantee_membership_id: row.grantee_membership_id,
        grantee_name: names.name(row.grantee_membership_id),
        subject_ids: c.subjects.iter().map(|s| s.as_uuid()).collect(),
        metrics: c.metrics.iter().cloned().collect(),
        farm_paths: c.farm_paths.iter().cloned().collect(),
        purpose: c.purpose.into(),
        access: c.access.into(),
        valid_from: c.valid.from.map(ms_to_time).transpose()?,
        valid_until: c.valid.until.map(ms_to_time).transpose()?,
        data_from: c.data.from.map(ms_to_time).transpose()?,
        data_until: c.data.until.map(ms_to_time).transpose()?,
        status: status_of(&c, now),
        request_id: row.request_id,
        created_at: ms_to_time(row.created_at_ms)?,
        revoked_at: row.revoked_at_ms.map(ms_to_time).transpose()?,
    })
}

/// A consent as the API shows it, names and farm looked up.
pub async fn consent_view(state: &AppState, row: &consent_row::Model, now: i64) -> AppResult<Consent> {
    let names = Names::load(state, [row.grantor_membership_id, row.grantee_membership_id]).await?;
    consent_dto(row, &names, now)
}

pub fn request_dto(
    r: &consent_request::Model,
    direction: RequestDirection,
    names: &Names,
    now: i64,
) -> AppResult<ConsentRequestView> {
    let bad = || AppError::Internal(anyhow::anyhow!("consent request {} does not parse", r.id));
    let status = match r.status.as_str() {
        "pending" if r.expires_at_ms <= now => ConsentRequestStatus::Expired,
        "pending" => ConsentRequestStatus::Pending,
        "approved" => ConsentRequestStatus::Approved,
        "denied" => ConsentRequestStatus::Denied,
        _ => return Err(bad()),
    };
    Ok(ConsentRequestView {
        id: r.id,
        direction,
        requester_membership_id: r.requester_membership_id,
        requester_name: names.name(r.requester_membership_id),
        individual_email: r.individual_email.clone(),
        metrics: consents::strings_of(&r.metrics),
        farm_paths: consents::strings_of(&r.farm_paths),
        purpose: consent::Purpose::parse(&r.purpose).ok_or_else(bad)?.into(),
        access: consent::Access::parse(&r.access).ok_or_else(bad)?.into(),
        duration: consent::format_duration(r.duration_secs),
        data_from: r.data_from_ms.map(ms_to_time).transpose()?,
        data_until: r.data_until_ms.map(ms_to_time).transpose()?,
        note: r.note.clone(),
        status,
        consent_id: r.consent_id,
        created_at: ms_to_time(r.created_at_ms)?,
        expires_at: ms_to_time(r.expires_at_ms)?,
        decided_at: r.decided_at_ms.map(ms_to_time).transpose()?,
    })
}
