//! Commands sent to a device (`MEASURE`, `REBOOT`...). A command is
//! `queued` until published to the device, `sent` once the broker has it,
//! and ends `acked` or `failed` when the device answers, or `expired` when
//! its time to live runs out first. Final states never change again, so a
//! late or repeated answer cannot rewrite history.

use serde::{Deserialize, Serialize};

/// Time to live when the request names none: long enough for a device that
/// wakes every few minutes, short enough that a stale `MEASURE` is not run.
pub const DEFAULT_TTL_SECS: u64 = 300;
/// A day: a command older than that is no longer what anyone meant.
pub const MAX_TTL_SECS: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Stored, not yet handed to the broker (MQTT off or not connected).
    Queued,
    /// Published to the device's command topic.
    Sent,
    /// The device ran it.
    Acked,
    /// The device tried and reported an error.
    Failed,
    /// No answer before its expiry.
    Expired,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 5] = [Self::Queued, Self::Sent, Self::Acked, Self::Failed, Self::Expired];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Acked => "acked",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether nothing may happen to the command any more.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Acked | Self::Failed | Self::Expired)
    }

    /// Whether a command in `self` may move to `to`. A device may answer
    /// before vitalfarm recorded the publish, so a result is accepted from
    /// `queued` as well as from `sent`. Unlike a device's status, staying
    /// put is not a transition: a second result for a command is refused.
    pub const fn may_become(self, to: CommandStatus) -> bool {
        use CommandStatus::*;
        matches!((self, to), (Queued, Sent) | (Queued | Sent, Acked | Failed | Expired))
    }

    /// The status as a reader should see it: a command past its expiry is
    /// `expired` even before the periodic sweep has written so.
    pub const fn effective(self, past_expiry: bool) -> Self {
        if past_expiry && !self.is_final() {
            Self::Expired
        } else {
            self
        }
    }
}

/// Longest command name, in characters.
const MAX_NAME: usize = 32;

/// A command's name: an upper-case identifier (`^[A-Z][A-Z0-9_]{0,31}$`),
/// so it reads the same in every device firmware and log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CommandName(String);

impl CommandName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let bytes = raw.as_bytes();
        let shape_ok = bytes.first().is_some_and(u8::is_ascii_uppercase)
            && bytes
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
        if !shape_ok || bytes.len() > MAX_NAME {
            return Err("must be 1 to 32 characters: an upper-case letter, then upper-case letters, digits or _");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::CommandStatus::*;
    use super::*;

    #[test]
    fn transitions() {
        // Rows: from; columns: to, in the order of `ALL`.
        let table = [
            (Queued, [false, true, true, true, true]),
            (Sent, [false, false, true, true, true]),
            (Acked, [false, false, false, false, false]),
            (Failed, [false, false, false, false, false]),
            (Expired, [false, false, false, false, false]),
        ];
        for (from, row) in table {
            for (to, expected) in CommandStatus::ALL.iter().zip(row) {
                assert_eq!(from.may_become(*to), expected, "{from:?} -> {to:?}");
            }
        }
        for s in CommandStatus::ALL {
            assert_eq!(CommandStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.is_final(), !matches!(s, Queued | Sent));
        }
        assert_eq!(CommandStatus::parse("done"), None);
    }

    #[test]
    fn expiry_shows_only_on_open_commands() {
        assert_eq!(Queued.effective(true), Expired);
        assert_eq!(Sent.effective(true), Expired);
        assert_eq!(Sent.effective(false), Sent);
        for done in [Acked, Failed, Expired] {
            assert_eq!(done.effective(true), done);
        }
    }

    #[test]
    fn names() {
        for ok in ["MEASURE", "A", "SET_INTERVAL_2", "X0123456789012345678901234567890"] {
            assert_eq!(CommandName::parse(ok).map(|n| n.as_str().to_owned()), Ok(ok.to_owned()));
        }
        for bad in [
            "",
            "measure",
            "1MEASURE",
            "_MEASURE",
            "MEA SURE",
            "MEASURE-NOW",
            "MÉASURE",
            "X01234567890123456789012345678901",
        ] {
            assert!(CommandName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_names() {
        assert_eq!(serde_json::to_string(&Acked).unwrap(), "\"acked\"");
        assert_eq!(serde_json::from_str::<CommandStatus>("\"expired\"").unwrap(), Expired);
    }
}
