//! Identifiers and time: tenant account ids and the microsecond UTC timestamps every row carries.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;

/// A tenant's account id: `MA_` followed by 10 upper-case letters or digits (Vobiz's shape).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    const PREFIX: &'static str = "MA_";
    const SUFFIX_LEN: usize = 10;

    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut rng = rand::thread_rng();
        let suffix: String = (0..Self::SUFFIX_LEN)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        Self(format!("{}{suffix}", Self::PREFIX))
    }

    /// Accepts only well-formed account ids.
    pub fn parse(text: &str) -> Option<Self> {
        let suffix = text.strip_prefix(Self::PREFIX)?;
        let well_formed = suffix.len() == Self::SUFFIX_LEN
            && suffix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        well_formed.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UTC instant with microsecond precision, stored as microseconds since the Unix epoch so the
/// same integer column works on SQLite and PostgreSQL and orders correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// `by` later (saturating).
    pub fn plus(self, by: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(by.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// `by` earlier (saturating).
    pub fn minus(self, by: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(by.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// RFC 3339, UTC with `Z`, microseconds: `2026-03-25T10:00:00.000000Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_round_trip_and_reject_garbage() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 13);
        for bad in [
            "",
            "MA_",
            "MA_abcdefghij",
            "XX_ABCDEFGHIJ",
            "MA_ABCDEFGHIJK",
            "MA_ABCDE FGHI",
        ] {
            assert_eq!(AccountId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamps_render_rfc3339_with_z_and_micros() {
        let t = Timestamp::from_micros(1_774_432_800_123_456);
        assert_eq!(t.to_rfc3339(), "2026-03-25T10:00:00.123456Z");
    }
}
