//! The password policy. Length is what makes a password strong (NIST SP
//! 800-63B), so we ask for length, cap it to keep hashing bounded, and refuse
//! what attackers try first: the account's own email, and passwords that are
//! common or easy to guess (zxcvbn, which knows the most common passwords,
//! words, names, keyboard walks and dates, scores them below 3 of 4), also
//! from what the account itself says (email, names).

use crate::Email;

pub const MIN_CHARS: usize = 10;
/// Argon2 takes any length, but an unbounded input is a cheap way to make the
/// server hash megabytes; 1024 characters is far beyond any passphrase.
pub const MAX_CHARS: usize = 1024;

/// The lowest zxcvbn score accepted: 3 means "safely unguessable" (about
/// 10^10 guesses), which an offline attack on a leaked hash still needs.
pub const MIN_SCORE: u8 = 3;

/// zxcvbn's matching grows faster than linearly with length; the first
/// characters decide whether a password is guessable, so only they are
/// scored.
const SCORED_CHARS: usize = 100;

/// Checks a new password for the account of `email`.
pub fn check(password: &str, email: &Email) -> Result<(), &'static str> {
    check_with_inputs(password, email, &[])
}

/// Checks a new password, also refusing one built from `inputs` (the
/// person's display name, the membership's name).
pub fn check_with_inputs(password: &str, email: &Email, inputs: &[&str]) -> Result<(), &'static str> {
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
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let mut user_inputs = vec![email.as_str(), email.local_part()];
    user_inputs.extend(inputs.iter().flat_map(|i| i.split_whitespace()));
    if u8::from(zxcvbn::zxcvbn(&scored, &user_inputs).score()) < MIN_SCORE {
        return Err(
            "is too easy to guess (a common password, or built from words, names or details of the account); use a longer passphrase of unrelated words",
        );
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
        assert!(check("ž→ñ€ß♥ø¿ü∑", &email()).is_ok());
    }

    #[test]
    fn refuses_short_long_and_the_email() {
        assert!(check("short", &email()).is_err());
        assert!(check(&"x".repeat(1025), &email()).is_err());
        assert!(check("Grace.Hopper@Example.org", &email()).is_err());
        assert!(check("grace.hopper", &email()).is_err());
        assert!(check("correct horse battery staple", &email()).is_ok());
    }

    #[test]
    fn refuses_common_and_account_derived_passwords() {
        for common in ["password123", "qwertyuiop", "1234567890", "iloveyou12", "Password1!"] {
            assert!(check(common, &email()).is_err(), "{common}");
        }
        assert!(check_with_inputs("acmeacme2026", &email(), &["Acme Care"]).is_err());
        // The passphrases of the README and the test kit stay good.
        for good in [
            "correct horse battery staple",
            "another long passphrase",
            "zebra-quartz-9271-unique-passphrase",
        ] {
            assert!(check(good, &email()).is_ok(), "{good}");
        }
    }
}
