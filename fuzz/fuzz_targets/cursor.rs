//! `trunkline_core::page::Cursor::decode` on any `cursor` query parameter: never panics, and a
//! cursor it accepts encodes to a cursor that decodes to the same seek.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_core::page::Cursor;

fuzz_target!(|text: &str| {
    if let Some(cursor) = Cursor::decode(text) {
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded), Some(cursor), "{text:?}");
    }
});
