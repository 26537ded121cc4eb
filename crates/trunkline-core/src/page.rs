//! Pagination: keyset cursors for Ultravox (stable under inserts and deletes, constant cost per
//! page) and offset windows for Dasha and Vobiz. Orders are always (created time, id).

use base64::Engine as _;
use uuid::Uuid;

use crate::ids::Timestamp;

/// A row's place in the (created, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub created: Timestamp,
    pub id: Uuid,
}

/// Which way a page extends from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Rows after the position, ascending.
    Forward,
    /// Rows before the position, read descending and shown ascending.
    Backward,
}

/// Where a store should start reading: strictly after/before `position`, or including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seek {
    pub direction: Direction,
    pub position: Position,
    pub inclusive: bool,
}

/// An opaque, URL-safe cursor: a [`Seek`] serialised as `f|b`, `i|x`, micros and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub Seek);

impl Cursor {
    pub fn encode(&self) -> String {
        let seek = self.0;
        let direction = match seek.direction {
            Direction::Forward => 'f',
            Direction::Backward => 'b',
        };
        let inclusive = if seek.inclusive { 'i' } else { 'x' };
        let text = format!(
            "{direction}{inclusive}{}.{}",
            seek.position.created.micros(),
            seek.position.id.simple()
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    /// `None` for anything this server did not produce.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > 128 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let mut chars = text.chars();
        let direction = match chars.next()? {
            'f' => Direction::Forward,
            'b' => Direction::Backward,
            _ => return None,
        };
        let inclusive = match chars.next()? {
            'i' => true,
            'x' => false,
            _ => return None,
        };
        let (micros, id) = chars.as_str().split_once('.')?;
        if !micros.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return None;
        }
        let id = Uuid::try_parse(id).ok()?;
        Some(Self(Seek {
            direction,
            position: Position {
                created: Timestamp::from_micros(micros.parse().ok()?),
                id,
            },
            inclusive,
        }))
    }
}

/// A keyset page, rows in ascending order.
#[derive(Debug, Clone)]
pub struct KeysetPage<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
    pub previous: Option<Cursor>,
    pub total: u64,
}

/// An offset window over a list.
#[derive(Debug, Clone)]
pub struct OffsetPage<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub offset: u64,
    pub limit: u32,
}

/// Offset window request, already range-checked by the dialect's service call.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub offset: u64,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor(Seek {
            direction: Direction::Backward,
            position: Position {
                created: Timestamp::from_micros(1_700_000_000_000_001),
                id: Uuid::new_v4(),
            },
            inclusive: true,
        });
        let text = cursor.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(cursor));
        for bad in ["", "!!!", "Zm9v", "eHgxLjI", &text[1..], &"A".repeat(200)] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }
}
