//! The pure rules of vitalfarm's OAuth2 authorization server: the scopes an
//! app may ask for, PKCE S256 verification (RFC 7636) and which redirect
//! URIs an app may register (RFC 8252 / OAuth 2.0 Security BCP: https, or
//! plain http only to the loopback interface, never a fragment).

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What an app may do on behalf of a user (or of its own membership).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Profile,
    ReadingsRead,
    ReadingsWrite,
    FilesRead,
    FilesWrite,
    DevicesRead,
    DevicesWrite,
    ConsentsRead,
    AnalyticsRead,
    AlertsRead,
    AlertsWrite,
    WebhooksManage,
    OfflineAccess,
}

impl Scope {
    pub const ALL: [Scope; 13] = [
        Scope::Profile,
        Scope::ReadingsRead,
        Scope::ReadingsWrite,
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::DevicesRead,
        Scope::DevicesWrite,
        Scope::ConsentsRead,
        Scope::AnalyticsRead,
        Scope::AlertsRead,
        Scope::AlertsWrite,
        Scope::WebhooksManage,
        Scope::OfflineAccess,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Profile => "profile",
            Scope::ReadingsRead => "readings.read",
            Scope::ReadingsWrite => "readings.write",
            Scope::FilesRead => "files.read",
            Scope::FilesWrite => "files.write",
            Scope::DevicesRead => "devices.read",
            Scope::DevicesWrite => "devices.write",
            Scope::ConsentsRead => "consents.read",
            Scope::AnalyticsRead => "analytics.read",
            Scope::AlertsRead => "alerts.read",
            Scope::AlertsWrite => "alerts.write",
            Scope::WebhooksManage => "webhooks.manage",
            Scope::OfflineAccess => "offline_access",
        }
    }

    /// What the scope lets an app do, in words a person approving it reads.
    pub const fn describe(self) -> &'static str {
        match self {
            Scope::Profile => "See your name, email address and memberships",
            Scope::ReadingsRead => "Read health readings (heart rate, blood pressure, ...) and subjects",
            Scope::ReadingsWrite => "Add and change subjects and health readings",
            Scope::FilesRead => "Read and download files in your farm",
            Scope::FilesWrite => "Upload, move and delete files in your farm",
            Scope::DevicesRead => "See your devices and their commands",
            Scope::DevicesWrite => "Register, change and command your devices",
            Scope::ConsentsRead => "See the consents you have given or received",
            Scope::AnalyticsRead => "Run analytics over the data you may read",
            Scope::AlertsRead => "See alert rules, alerts and the live stream of readings and alerts",
            Scope::AlertsWrite => "Create and delete alert rules and acknowledge alerts",
            Scope::WebhooksManage => "Register webhooks and see their deliveries",
            Scope::OfflineAccess => "Keep access while you are not using it (refresh tokens)",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, written as the space-separated `scope` of RFC 6749.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a space-separated list; an unknown scope is an error naming it.
    /// Repeats are merged; an empty string is the empty set.
    pub fn parse(s: &str) -> Result<Scopes, String> {
        let mut set = BTreeSet::new();
        for word in s.split(' ').filter(|w| !w.is_empty()) {
            let scope = Scope::parse(word).ok_or_else(|| {
                let shown: String = word.chars().take(40).filter(|c| !c.is_control()).collect();
                format!("unknown scope `{shown}`")
            })?;
            set.insert(scope);
        }
        Ok(Scopes(set))
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, of: &Scopes) -> bool {
        self.0.is_subset(&of.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn without(&self, scope: Scope) -> Scopes {
        Scopes(self.0.iter().copied().filter(|s| *s != scope).collect())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Scopes {
        Scopes(scopes.into_iter().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

/// The only PKCE method vitalfarm accepts; `plain` would hand the verifier
/// to anyone who sees the authorization request.
pub const PKCE_METHOD: &str = "S256";

/// Checks a `code_challenge` as sent on the authorization request: the
/// base64url (no padding) of a SHA-256, so exactly 43 characters.
pub fn check_code_challenge(challenge: &str) -> Result<(), &'static str> {
    if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
        return Err("must be the base64url SHA-256 of the code verifier (43 characters)");
    }
    Ok(())
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 4.1)
/// hashes to `challenge` under S256.
pub fn verify_pkce_s256(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    // Both are public-length strings; a difference in timing reveals
    // nothing an attacker holding the challenge does not already know.
    computed == challenge
}

/// Checks a redirect URI an app registers. Matching at authorization time
/// is byte-exact against the registered list, so this is the only place a
/// URI is interpreted.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.is_empty() || uri.len() > 2000 {
        return Err("must be 1 to 2000 characters");
    }
    if uri.bytes().any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii()) {
        return Err("must not contain spaces, control or non-ASCII characters");
    }
    if uri.contains('#') {
        return Err("must not contain a fragment");
    }
    let (scheme, rest) = uri.split_once("://").ok_or("must be an absolute https URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err("must name a host and carry no user information");
    }
    let host = host_of(authority);
    match scheme {
        "https" if !host.is_empty() => Ok(()),
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => Ok(()),
        "http" => Err("plain http is allowed only for loopback (127.0.0.1, [::1], localhost)"),
        _ => Err("must be an https URL (or http to a loopback address)"),
    }
}

/// The host of an authority, without the port.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => "",
        };
    }
    authority.split(':').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse("readings.read  profile readings.read").unwrap();
        assert_eq!(s.to_string(), "profile readings.read");
        assert!(s.contains(Scope::Profile) && !s.contains(Scope::FilesRead));
        assert!(Scopes::parse("").unwrap().is_empty());
        assert_eq!(Scopes::parse("profile admin").unwrap_err(), "unknown scope `admin`");
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert!(!scope.describe().is_empty());
        }
        let all: Scopes = Scope::ALL.into_iter().collect();
        assert!(s.is_subset(&all) && !all.is_subset(&s));
        assert!(!all.without(Scope::OfflineAccess).contains(Scope::OfflineAccess));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_code_challenge(challenge).is_ok());
        assert!(verify_pkce_s256(verifier, challenge));
        assert!(!verify_pkce_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!verify_pkce_s256(challenge, challenge), "plain is not S256");
        assert!(!verify_pkce_s256("short", challenge));
        assert!(check_code_challenge("short").is_err());
        assert!(check_code_challenge(&format!("{}=", &challenge[..42])).is_err());
    }

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:8080/callback",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "ftp://app.example/cb",
            "javascript:alert(1)",
            "https:///cb",
            "https://user@app.example/cb",
            "https://app.example/c b",
            "http://127.0.0.1.evil.example/cb",
            "com.example.app:/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
