//! Field-level validation errors, gathered so a client learns every problem
//! with its request at once rather than one per round trip.

use serde::Serialize;

/// Why a name shown to people is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    Control,
    /// Overrides and isolates reorder what is displayed after them, so
    /// `a\u{202E}txt.exe` shows as `aexe.txt`: a name that lies about itself.
    #[error("must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)")]
    Bidi,
    #[error("must contain at least one visible character")]
    Invisible,
}

/// The bidirectional formatting characters: embeddings, overrides,
/// isolates and the implicit marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that display as nothing at all (zero-width and default
/// ignorable code points, and the blank fillers), besides white space.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// The one check of every name people see (display names, membership,
/// subject, device, app and key names): 1 to `max` characters once trimmed,
/// no control or bidirectional control characters, and something visible
/// left once invisible characters are taken away. Farm paths apply the
/// same character rules to each of their names (`farm_path`).
pub fn check_name(value: &str, max: usize) -> Result<(), NameError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(NameError::TooLong { max });
    }
    check_name_characters(value)
}

/// The character rules of `check_name`, without the length.
pub fn check_name_characters(value: &str) -> Result<(), NameError> {
    if value.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if value.chars().any(is_bidi_control) {
        return Err(NameError::Bidi);
    }
    if value.chars().all(is_invisible) {
        return Err(NameError::Invisible);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A JSON pointer-ish path to the offending field, e.g. `membership.kind`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field` and hands back its value.
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

impl From<FieldError> for ValidationErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for ok in ["Ana", "Acme Cardio", "김민지", "Zoë O\u{2019}Brien", "👩‍⚕️ nurse", "a"] {
            assert_eq!(check_name(ok, 200), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn invisible_bidi_and_control_names_are_refused() {
        assert_eq!(check_name("", 200), Err(NameError::Empty));
        assert_eq!(check_name("   ", 200), Err(NameError::Empty));
        assert_eq!(check_name("\u{202E}", 200), Err(NameError::Bidi));
        assert_eq!(check_name("a\u{202E}txt.exe", 200), Err(NameError::Bidi));
        assert_eq!(check_name("a\u{2066}b", 200), Err(NameError::Bidi));
        assert_eq!(check_name("\u{200B}", 200), Err(NameError::Invisible));
        assert_eq!(check_name("\u{200B}\u{2060}\u{FEFF}", 200), Err(NameError::Invisible));
        assert_eq!(check_name(" \u{3164} ", 200), Err(NameError::Invisible));
        assert_eq!(check_name("a\nb", 200), Err(NameError::Control));
        assert_eq!(check_name("abc", 2), Err(NameError::TooLong { max: 2 }));
    }
}
