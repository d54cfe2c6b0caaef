//! Memberships, roles and what each role may do. The role table lives here,
//! in one place, so that every handler asks the same question the same way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MembershipKind {
    /// A person managing themself and their dependents.
    Individual,
    /// A device maker or care service with staff.
    Company,
}

impl MembershipKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Company => "company",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "individual" => Some(Self::Individual),
            "company" => Some(Self::Company),
            _ => None,
        }
    }
}

/// A member's role in a membership, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Analyst,
    Viewer,
}

/// Something a principal may want to do inside a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the membership itself and its member list.
    ReadMembership,
    /// Invite members, change roles, remove members.
    ManageMembers,
    /// Create and revoke API keys.
    ManageApiKeys,
    /// Read the membership's health data and files.
    ReadData,
    /// Write files, subjects and other data.
    WriteData,
    /// Register and change devices and device models.
    ManageDevices,
    /// Irreversible actions on the membership as a whole (erasure).
    Administer,
    /// Read the membership's audit log (who touched its data).
    ReadAudit,
    /// Ask for, grant and revoke consents on the membership's behalf.
    ManageConsents,
    /// Register and change OAuth2 apps.
    ManageApps,
    /// Export everything the membership holds.
    Export,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::Developer, Role::Analyst, Role::Viewer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Analyst => "analyst",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role table. Every role reads; writing data is for those who run
    /// the service (owner, admin) and those who integrate it (developer);
    /// analysts only read; people and keys are managed by owners and admins.
    pub const fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            ReadMembership | ReadData => true,
            ManageMembers => matches!(self, Role::Owner | Role::Admin),
            ManageApiKeys | WriteData | ManageDevices => {
                matches!(self, Role::Owner | Role::Admin | Role::Developer)
            }
            Administer => matches!(self, Role::Owner),
            ReadAudit | ManageConsents | Export => matches!(self, Role::Owner | Role::Admin),
            ManageApps => matches!(self, Role::Owner | Role::Admin | Role::Developer),
        }
    }

    /// Whether someone holding `self` may give `target` to another member or
    /// take it away. Only owners touch the owner role, so an admin can never
    /// lock the owners out or make themself an owner.
    pub const fn may_assign(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(target, Role::Owner),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn role_table() {
        let perms = [
            ReadMembership,
            ManageMembers,
            ManageApiKeys,
            ReadData,
            WriteData,
            ManageDevices,
            Administer,
            ReadAudit,
            ManageConsents,
            ManageApps,
            Export,
        ];
        // One row a role, one column a permission, in the order above.
        let table = [
            (
                Role::Owner,
                [true, true, true, true, true, true, true, true, true, true, true],
            ),
            (
                Role::Admin,
                [true, true, true, true, true, true, false, true, true, true, true],
            ),
            (
                Role::Developer,
                [true, false, true, true, true, true, false, false, false, true, false],
            ),
            (
                Role::Analyst,
                [
                    true, false, false, true, false, false, false, false, false, false, false,
                ],
            ),
            (
                Role::Viewer,
                [
                    true, false, false, true, false, false, false, false, false, false, false,
                ],
            ),
        ];
        for (role, row) in table {
            for (p, expected) in perms.iter().zip(row) {
                assert_eq!(role.allows(*p), expected, "{role:?} {p:?}");
            }
        }
    }

    #[test]
    fn only_owners_touch_the_owner_role() {
        for role in Role::ALL {
            assert_eq!(role.may_assign(Role::Owner), role == Role::Owner);
        }
        assert!(Role::Admin.may_assign(Role::Viewer));
        assert!(!Role::Developer.may_assign(Role::Viewer));
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(MembershipKind::parse("company"), Some(MembershipKind::Company));
    }
}
