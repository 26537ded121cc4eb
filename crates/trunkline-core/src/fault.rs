//! Fault injection for the integration tests, compiled into debug builds only (a release
//! build has none of these hooks): each is off unless its `TRUNKLINE_FAULT_*` environment
//! variable is set when the process starts.
//!
//! - `TRUNKLINE_FAULT_PUBLISH_DELAY_MS`: the services pause this long between a committed
//!   write and publishing its change event (the window in which a client that hangs up used
//!   to cancel the publish).
//! - `TRUNKLINE_FAULT_PANIC_PHRASE`: the registration engine panics when a registrar's reason
//!   phrase is exactly this (a stand-in for any bug on the engine's path).

#[cfg(debug_assertions)]
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Pauses between a commit and its publish (debug builds, when configured).
pub async fn before_publish() {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static DELAY: OnceLock<Option<u64>> = OnceLock::new();
        let delay = DELAY
            .get_or_init(|| var("TRUNKLINE_FAULT_PUBLISH_DELAY_MS").and_then(|v| v.parse().ok()));
        if let Some(ms) = *delay {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}

/// Panics if `phrase` is the configured trigger (debug builds, when configured).
pub fn panic_on_phrase(phrase: &str) {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        static TRIGGER: OnceLock<Option<String>> = OnceLock::new();
        if TRIGGER
            .get_or_init(|| var("TRUNKLINE_FAULT_PANIC_PHRASE"))
            .as_deref()
            == Some(phrase)
        {
            panic!("fault injection: the registrar said {phrase:?}");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = phrase;
}
