//! Typed identifiers. Every id is a UUID v7 (time-ordered, so ids sort by
//! creation and index well), wrapped in its own type so a `FarmId` can never be
//! passed where a `MembershipId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A person who signs in.
    UserId
);
typed_id!(
    /// A company or an individual: the unit of tenancy.
    MembershipId
);
typed_id!(
    /// A membership's virtual file system.
    FarmId
);
typed_id!(
    /// A person whose health data is recorded.
    SubjectId
);
typed_id!(
    /// A company's server-to-server API key.
    ApiKeyId
);
typed_id!(
    /// A health device of a fleet.
    DeviceId
);
typed_id!(
    /// A command sent to a device over MQTT.
    CommandId
);
typed_id!(
    /// A kind of device a company makes or uses.
    DeviceModelId
);
typed_id!(
    /// A link that lets anyone holding it download one file of a farm.
    ShareLinkId
);
typed_id!(
    /// A family of rotating refresh tokens born from one sign-in.
    TokenFamilyId
);
typed_id!(
    /// One refresh token of a family.
    RefreshTokenId
);
typed_id!(
    /// An individual's permission for another membership to read some of
    /// its data.
    ConsentId
);
typed_id!(
    /// A company's request for a consent, waiting for the individual.
    ConsentRequestId
);
typed_id!(
    /// One entry of a membership's hash-chained audit log.
    AuditEventId
);
typed_id!(
    /// A third-party application registered for OAuth2.
    AppId
);
typed_id!(
    /// A user's authorization of an app: the family of its tokens.
    GrantId
);
typed_id!(
    /// A background job (an export) claimed from the jobs table.
    JobId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_sort_by_creation() {
        let a = MembershipId::new();
        let b = MembershipId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = FarmId::new();
        let parsed: FarmId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!("not-a-uuid".parse::<FarmId>().is_err());
    }
}
