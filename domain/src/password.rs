//! The password policy. Length is what makes a password strong (NIST SP
//! 800-63B), so we ask for length, cap it to keep hashing bounded, and refuse
//! the one guess every attacker tries first: the account's own email.

use crate::Email;

pub const MIN_CHARS: usize = 10;
/// Argon2 takes any length, but an unbounded input is a cheap way to make the
/// server hash megabytes; 1024 characters is far beyond any passphrase.
pub const MAX_CHARS: usize = 1024;

pub fn check(password: &str, email: &Email) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err("must be at least 10 characters long");
    }
    if chars > MAX_CHARS {
        return Err("must be at most 1024 characters long");
    }
    let lowered = password.trim().to_lowercase();
    if lowered == email.as_str() || lowered == email.local_part() {
        return Err("must not be your email address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("grace.hopper@example.org").unwrap()
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert!(check("ééééééééé", &email()).is_err());
        assert!(check("éééééééééé", &email()).is_ok());
    }

    #[test]
    fn refuses_short_long_and_the_email() {
        assert!(check("short", &email()).is_err());
        assert!(check(&"x".repeat(1025), &email()).is_err());
        assert!(check("Grace.Hopper@Example.org", &email()).is_err());
        assert!(check("grace.hopper", &email()).is_err());
        assert!(check("correct horse battery staple", &email()).is_ok());
    }
}
