//! A device's life cycle. A device is `provisioned` when registered,
//! `active` once bound to a subject (or first heard from), can be
//! `suspended` and resumed, and `retired` for good. Suspended and retired
//! devices are refused at ingest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Provisioned,
    Active,
    Suspended,
    Retired,
}

impl DeviceStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "provisioned",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Provisioned, Self::Active, Self::Suspended, Self::Retired]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// Whether a device in `self` may be moved to `to`. Staying is always
    /// allowed (a repeated request is harmless); retirement is final;
    /// nothing goes back to `provisioned`.
    pub const fn may_become(self, to: DeviceStatus) -> bool {
        use DeviceStatus::*;
        match (self, to) {
            (a, b) if a as u8 == b as u8 => true,
            (Retired, _) => false,
            (_, Provisioned) => false,
            (Provisioned | Suspended, Active) => true,
            (Provisioned | Active, Suspended) => true,
            (_, Retired) => true,
            _ => false,
        }
    }

    /// Whether readings from a device in this state are accepted.
    pub const fn may_ingest(self) -> bool {
        matches!(self, DeviceStatus::Provisioned | DeviceStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceStatus::*;
    use super::*;

    #[test]
    fn transitions() {
        let all = [Provisioned, Active, Suspended, Retired];
        // Rows: from; columns: to, in the order of `all`.
        let table = [
            (Provisioned, [true, true, true, true]),
            (Active, [false, true, true, true]),
            (Suspended, [false, true, true, true]),
            (Retired, [false, false, false, true]),
        ];
        for (from, row) in table {
            for (to, expected) in all.iter().zip(row) {
                assert_eq!(from.may_become(*to), expected, "{from:?} -> {to:?}");
            }
        }
        assert!(Provisioned.may_ingest() && Active.may_ingest());
        assert!(!Suspended.may_ingest() && !Retired.may_ingest());
        for s in all {
            assert_eq!(DeviceStatus::parse(s.as_str()), Some(s));
        }
    }
}
