//! Paths of files in a membership's farm (its virtual file system), checked
//! and normalised once so that storage, listings and exports can trust them.

use std::fmt;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// Longest canonical path, leading `/` included. Generous for real folder
/// trees while keeping keys, log lines and archive names bounded.
pub const MAX_PATH_BYTES: usize = 1024;

/// Longest single name: the common file-system limit (ext4, APFS, NTFS in
/// practice), so that any file can be exported and unpacked anywhere.
pub const MAX_SEGMENT_BYTES: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} bytes long")]
    TooLong { max: usize },
    #[error("must have names of at most {max} bytes between the '/'")]
    SegmentTooLong { max: usize },
    #[error("must not contain an empty name ('//')")]
    EmptySegment,
    #[error("must not contain '.' or '..' as a name")]
    DotSegment,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must name a file, not end with '/'")]
    TrailingSlash,
    /// Windows clients mean a separator by `\`; taking it as part of a name
    /// would silently turn their folders into oddly named files.
    #[error("must separate folders with '/', not '\\'")]
    Backslash,
    /// `a\u{202E}txt.exe` displays as `aexe.txt`: a file that lies about
    /// its type.
    #[error("must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)")]
    BidiControl,
    #[error("must have names with at least one visible character")]
    InvisibleName,
}

/// The canonical form: NFC, one leading `/`, names separated by single `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FarmPath(String);

impl FarmPath {
    /// The leading `/` is optional because clients disagree on it; the
    /// canonical form always has it, so both spellings name the same file.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        // NFC first: macOS sends decomposed names, and the same name must
        // never map to two files nor pass a length check in one form only.
        let normalised: String = raw.nfc().collect();
        check_characters(&normalised)?;
        let body = normalised.strip_prefix('/').unwrap_or(&normalised);
        if body.is_empty() {
            return Err(PathError::Empty);
        }
        if body.ends_with('/') {
            return Err(PathError::TrailingSlash);
        }
        if body.len() + 1 > MAX_PATH_BYTES {
            return Err(PathError::TooLong { max: MAX_PATH_BYTES });
        }
        body.split('/').try_for_each(check_segment)?;
        Ok(Self(format!("/{body}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder names followed by the file name, without separators.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.body().split('/')
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The folder holding the file, with its trailing `/`, in the form
    /// [`parse_dir_prefix`] produces, so it can be used as a listing prefix.
    pub fn parent(&self) -> &str {
        let end = self.0.rfind('/').map_or(0, |i| i + 1);
        &self.0[..end]
    }

    fn body(&self) -> &str {
        self.0.strip_prefix('/').unwrap_or(&self.0)
    }
}

impl fmt::Display for FarmPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a folder prefix for listings and gives it in the form that file
/// paths start with (`/`, `/ecg/`, `/ecg/2026/`), so that a plain string
/// prefix match never takes `/ecg2/x` for a file under `/ecg`.
pub fn parse_dir_prefix(raw: &str) -> Result<String, PathError> {
    let normalised: String = raw.nfc().collect();
    check_characters(&normalised)?;
    let body = normalised.strip_prefix('/').unwrap_or(&normalised);
    if body.is_empty() {
        return Ok("/".to_owned());
    }
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.len() + 2 > MAX_PATH_BYTES {
        return Err(PathError::TooLong { max: MAX_PATH_BYTES });
    }
    body.split('/').try_for_each(check_segment)?;
    Ok(format!("/{body}/"))
}

fn check_characters(path: &str) -> Result<(), PathError> {
    // `char::is_control` is exactly general category Cc (C0, DEL and C1).
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.chars().any(crate::validation::is_bidi_control) {
        return Err(PathError::BidiControl);
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    match segment {
        "" => Err(PathError::EmptySegment),
        "." | ".." => Err(PathError::DotSegment),
        s if s.len() > MAX_SEGMENT_BYTES => Err(PathError::SegmentTooLong { max: MAX_SEGMENT_BYTES }),
        s if s.chars().all(crate::validation::is_invisible) => Err(PathError::InvisibleName),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(raw: &str) -> FarmPath {
        FarmPath::parse(raw).unwrap()
    }

    #[test]
    fn leading_slash_is_optional_and_canonical() {
        assert_eq!(path("ecg/2026/run.csv").as_str(), "/ecg/2026/run.csv");
        assert_eq!(path("/ecg/2026/run.csv"), path("ecg/2026/run.csv"));
        assert_eq!(path("a").as_str(), "/a");
    }

    #[test]
    fn parts_of_a_path() {
        let p = path("/ecg/2026/run.csv");
        assert_eq!(p.segments().collect::<Vec<_>>(), ["ecg", "2026", "run.csv"]);
        assert_eq!(p.file_name(), "run.csv");
        assert_eq!(p.parent(), "/ecg/2026/");
        assert_eq!(p.to_string(), "/ecg/2026/run.csv");

        let top = path("notes.txt");
        assert_eq!(top.segments().collect::<Vec<_>>(), ["notes.txt"]);
        assert_eq!(top.file_name(), "notes.txt");
        assert_eq!(top.parent(), "/");
    }

    #[test]
    fn serialises_as_the_canonical_string() {
        let json = serde_json::to_string(&path("ecg/run.csv")).unwrap();
        assert_eq!(json, r#""/ecg/run.csv""#);
    }

    #[test]
    fn refuses_empty_paths() {
        assert_eq!(FarmPath::parse(""), Err(PathError::Empty));
        assert_eq!(FarmPath::parse("/"), Err(PathError::Empty));
    }

    #[test]
    fn refuses_empty_segments() {
        for raw in ["a//b", "//a", "/a//b/c", "a///b"] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::EmptySegment), "{raw}");
        }
    }

    #[test]
    fn refuses_dot_segments() {
        for raw in [".", "..", "/a/./b", "/a/../b", "../etc/passwd", "a/.."] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::DotSegment), "{raw}");
        }
        // Dots inside a name are ordinary characters.
        for raw in ["/.profile", "/a/...", "/a/..b", "/run.csv."] {
            assert!(FarmPath::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn refuses_bidi_controls_and_invisible_names() {
        for raw in ["/a\u{202E}txt.exe", "/\u{202E}", "/dir\u{2067}/x", "/a\u{200F}b"] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::BidiControl), "{raw:?}");
        }
        for raw in ["/\u{200B}", "/a/\u{200B}\u{FEFF}/b", "/ ", "/x/\u{2060}"] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::InvisibleName), "{raw:?}");
        }
        assert_eq!(parse_dir_prefix("/\u{202E}/"), Err(PathError::BidiControl));
        assert!(FarmPath::parse("/notes/a b.txt").is_ok());
    }

    #[test]
    fn refuses_control_characters() {
        for raw in [
            "/a\0b", "/a\nb", "/a\tb", "/a\u{1f}", "/a\u{7f}", "/a\u{80}", "/\u{85}", "/a\u{9f}",
        ] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::ControlCharacter), "{raw:?}");
        }
        // U+00A0 is the first code point after C1: not a control character.
        assert!(FarmPath::parse("/a\u{a0}b").is_ok());
    }

    #[test]
    fn refuses_a_trailing_slash() {
        for raw in ["a/", "/ecg/2026/", "//"] {
            assert_eq!(FarmPath::parse(raw), Err(PathError::TrailingSlash), "{raw}");
        }
    }

    #[test]
    fn refuses_backslashes() {
        assert_eq!(FarmPath::parse(r"ecg\run.csv"), Err(PathError::Backslash));
        assert_eq!(FarmPath::parse(r"\ecg"), Err(PathError::Backslash));
    }

    #[test]
    fn segment_limit_counts_utf8_bytes() {
        let ascii = "a".repeat(MAX_SEGMENT_BYTES);
        assert!(FarmPath::parse(&format!("/x/{ascii}")).is_ok());
        assert_eq!(
            FarmPath::parse(&format!("/x/{ascii}a")),
            Err(PathError::SegmentTooLong { max: 255 })
        );
        // 128 two-byte characters are 256 bytes but only 128 chars.
        let wide = "é".repeat(128);
        assert_eq!(
            FarmPath::parse(&format!("/{wide}")),
            Err(PathError::SegmentTooLong { max: 255 })
        );
        assert!(FarmPath::parse(&format!("/{}", "é".repeat(127))).is_ok());
    }

    #[test]
    fn path_limit_counts_the_canonical_form() {
        // 4 segments of 255 bytes plus 4 slashes: exactly 1024 bytes.
        let seg = "a".repeat(255);
        let max = [seg.as_str(); 4].join("/");
        assert_eq!(path(&max).as_str().len(), MAX_PATH_BYTES);
        // Without its leading slash the raw input is 1023 bytes; the limit
        // still applies to the canonical form.
        let over = format!("{max}b");
        assert_eq!(FarmPath::parse(&over), Err(PathError::TooLong { max: 1024 }));
        assert_eq!(
            FarmPath::parse(&format!("/{over}")),
            Err(PathError::TooLong { max: 1024 })
        );
    }

    #[test]
    fn composed_and_decomposed_names_are_the_same_path() {
        let composed = path("/caf\u{e9}/r\u{e9}sum\u{e9}.txt");
        let decomposed = path("/cafe\u{301}/re\u{301}sume\u{301}.txt");
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.as_str(), "/caf\u{e9}/r\u{e9}sum\u{e9}.txt");
    }

    #[test]
    fn lengths_are_checked_after_normalisation() {
        // 128 decomposed é are 384 bytes, but 256 bytes once composed: the
        // composed length decides, and it is still one byte over.
        let decomposed = "e\u{301}".repeat(128);
        assert_eq!(
            FarmPath::parse(&decomposed),
            Err(PathError::SegmentTooLong { max: 255 })
        );
        // 127 of them are 381 bytes raw and 254 composed: accepted.
        assert!(FarmPath::parse(&"e\u{301}".repeat(127)).is_ok());
    }

    #[test]
    fn dir_prefixes() {
        assert_eq!(parse_dir_prefix("").unwrap(), "/");
        assert_eq!(parse_dir_prefix("/").unwrap(), "/");
        assert_eq!(parse_dir_prefix("ecg").unwrap(), "/ecg/");
        assert_eq!(parse_dir_prefix("/ecg").unwrap(), "/ecg/");
        assert_eq!(parse_dir_prefix("ecg/2026/").unwrap(), "/ecg/2026/");
        assert_eq!(parse_dir_prefix("/ecg/2026/").unwrap(), "/ecg/2026/");
        assert_eq!(parse_dir_prefix("cafe\u{301}").unwrap(), "/caf\u{e9}/");
    }

    #[test]
    fn dir_prefixes_follow_the_segment_rules() {
        assert_eq!(parse_dir_prefix("//"), Err(PathError::EmptySegment));
        assert_eq!(parse_dir_prefix("a//b"), Err(PathError::EmptySegment));
        assert_eq!(parse_dir_prefix("a//"), Err(PathError::EmptySegment));
        assert_eq!(parse_dir_prefix("/a/../"), Err(PathError::DotSegment));
        assert_eq!(parse_dir_prefix("."), Err(PathError::DotSegment));
        assert_eq!(parse_dir_prefix("a\nb"), Err(PathError::ControlCharacter));
        assert_eq!(parse_dir_prefix(r"a\b"), Err(PathError::Backslash));
        assert_eq!(
            parse_dir_prefix(&"a".repeat(256)),
            Err(PathError::SegmentTooLong { max: 255 })
        );
        let seg = "a".repeat(255);
        // 4 × 255 + 5 slashes = 1025 bytes once canonical.
        assert_eq!(
            parse_dir_prefix(&[seg.as_str(); 4].join("/")),
            Err(PathError::TooLong { max: 1024 })
        );
        assert!(parse_dir_prefix(&[seg.as_str(); 3].join("/")).is_ok());
    }

    /// Mostly path-like input, so that many cases pass and the properties
    /// about accepted paths are exercised, not only the refusals.
    fn path_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            8 => "[a-z0-9_-]{1,12}",
            4 => Just("/".to_owned()),
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
            1 => Just("\\".to_owned()),
            1 => Just("e\u{301}".to_owned()),
            1 => Just("\u{e9}".to_owned()),
            1 => Just("\u{212b}".to_owned()),
            1 => Just("\u{85}".to_owned()),
            1 => Just("\0".to_owned()),
            1 => Just("a".repeat(200)),
            1 => any::<String>(),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
    }

    fn check_invariants(p: &FarmPath) {
        let s = p.as_str();
        assert!(s.starts_with('/'));
        assert!(!s.ends_with('/'));
        assert!(!s.contains("//"));
        assert!(!s.chars().any(char::is_control));
        assert!(s.len() <= MAX_PATH_BYTES);
        for seg in p.segments() {
            assert!(seg != "." && seg != "..");
            assert!(!seg.is_empty() && seg.len() <= MAX_SEGMENT_BYTES);
        }
        assert_eq!(format!("{}{}", p.parent(), p.file_name()), s);
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = FarmPath::parse(&raw);
            let _ = parse_dir_prefix(&raw);
        }

        #[test]
        fn accepted_paths_keep_the_invariants(raw in path_like()) {
            if let Ok(p) = FarmPath::parse(&raw) {
                check_invariants(&p);
            }
        }

        #[test]
        fn parse_is_idempotent(raw in path_like()) {
            if let Ok(p) = FarmPath::parse(&raw) {
                prop_assert_eq!(FarmPath::parse(p.as_str()), Ok(p.clone()));
                prop_assert_eq!(parse_dir_prefix(p.parent()), Ok(p.parent().to_owned()));
            }
        }

        #[test]
        fn arbitrary_accepted_paths_keep_the_invariants(raw in any::<String>()) {
            if let Ok(p) = FarmPath::parse(&raw) {
                check_invariants(&p);
                prop_assert_eq!(FarmPath::parse(p.as_str()), Ok(p.clone()));
            }
        }

        #[test]
        fn dir_prefixes_are_idempotent_and_slash_bounded(raw in path_like()) {
            if let Ok(prefix) = parse_dir_prefix(&raw) {
                prop_assert!(prefix.starts_with('/') && prefix.ends_with('/'));
                prop_assert!(!prefix.contains("//"));
                prop_assert!(prefix.len() <= MAX_PATH_BYTES);
                prop_assert_eq!(parse_dir_prefix(&prefix), Ok(prefix.clone()));
            }
        }
    }
}
