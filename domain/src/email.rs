//! Email addresses, validated once at the edge and normalised so that the
//! same mailbox always maps to the same account.

use std::fmt;

use serde::Serialize;

/// Longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks the shape `local@domain.tld`. This is not
    /// a full RFC 5322 parser on purpose: the only proof an address works is
    /// a delivered message, so we refuse only what is plainly not an address.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("must not be empty");
        }
        if email.len() > MAX_LEN {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must contain '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return Err("must have 1 to 64 characters before '@'");
        }
        if domain.contains('@') {
            return Err("must contain exactly one '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err("must have a domain such as example.org");
        }
        if email.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | ':' | '\\' | '"' | '[' | ']')
        }) {
            return Err("must not contain spaces, control characters or <>(),;:\\\"[]");
        }
        if domain.chars().any(|c| !(c.is_alphanumeric() || c == '-' || c == '.')) {
            return Err("must have a domain of letters, digits, '-' and '.'");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.org");
        assert_eq!(e.local_part(), "ada.lovelace");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@b",
            "a@@b.org",
            "a b@c.org",
            "a@b..org",
            "<a>@b.org",
            "a@exa_mple.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                let again = Email::parse(e.as_str()).unwrap();
                proptest::prop_assert_eq!(again, e);
            }
        }
    }
}
