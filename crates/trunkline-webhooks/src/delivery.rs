//! One delivery attempt: the signed POST of an event body and what came of it. Any 2xx is
//! delivered; anything else (another status, a timeout of 10 s, a connection error, a refused
//! destination) is a failure with a bounded, printable reason. Redirects are not followed, no
//! proxy is used, and at most a few KiB of the response body are read (then dropped).

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode, Url};

use crate::destination::{check_literal, DenyList, DenyingResolver, Refused};
use crate::signing::Signer;

/// Whole attempt: connecting, sending, and the response's headers and bounded body.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Response body read at most (to keep the connection reusable), then dropped.
const BODY_READ: usize = 16 * 1024;
/// Characters of a failure reason kept (in the table and in logs).
pub const ERROR_MAX: usize = 256;

/// The HTTP client every delivery of this process uses.
pub fn client(deny: DenyList) -> Result<Client, reqwest::Error> {
    Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .timeout(TIMEOUT)
        .dns_resolver(std::sync::Arc::new(DenyingResolver { deny }))
        .user_agent(concat!("trunkline-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
    /// The destination is in `outbound.deny_networks`: nothing was sent.
    Refused,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }
}

/// What an attempt found.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub duration: Duration,
    /// Why it failed (bounded, printable); `None` when delivered.
    pub error: Option<String>,
}

/// What is sent: the event's id, its body, and when (Unix seconds).
pub struct Message<'a> {
    pub id: &'a str,
    pub body: &'a str,
    pub timestamp: i64,
}

/// POSTs `message` to `url`, signed.
pub async fn attempt(
    client: &Client,
    deny: &DenyList,
    url: &str,
    signer: &Signer,
    message: &Message<'_>,
) -> Attempted {
    let started = Instant::now();
    let failed = |outcome, status, error: String| Attempted {
        outcome,
        status,
        duration: started.elapsed(),
        error: Some(bounded(&error)),
    };
    // Checked when the webhook was written; a row that no longer parses fails here.
    let url = match Url::parse(url) {
        Ok(url) => url,
        Err(err) => return failed(Outcome::Failed, None, format!("invalid URL: {err}")),
    };
    if let Err(refused) = check_literal(&url, deny) {
        return failed(Outcome::Refused, None, refused.to_string());
    }
    let sent = client
        .post(url)
        .header("webhook-id", message.id)
        .header("webhook-timestamp", message.timestamp.to_string())
        .header(
            "webhook-signature",
            signer.sign(message.id, message.timestamp, message.body),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(message.body.to_owned())
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => {
            let outcome = if refusal(&err).is_some() {
                Outcome::Refused
            } else {
                Outcome::Failed
            };
            return failed(outcome, None, describe(&err));
        }
    };
    let status = response.status();
    let mut read = 0;
    while read < BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    if status.is_success() {
        return Attempted {
            outcome: Outcome::Delivered,
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            error: None,
        };
    }
    failed(Outcome::Failed, Some(status.as_u16()), status_text(status))
}

/// `HTTP 503 Service Unavailable` (the reason phrase is the standard one, not the server's).
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// The deny-list refusal behind a client error, if that is what it was.
fn refusal(err: &reqwest::Error) -> Option<&Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

/// A client error in words: a timeout, the refusal, or the chain of causes. The URL is left
/// out (its query may hold the receiver's token).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("timed out after {}s", TIMEOUT.as_secs());
    }
    if let Some(refused) = refusal(err) {
        return refused.to_string();
    }
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper's wrappers repeat their inner error in their own text.
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        return "the request failed".to_owned();
    }
    parts.join(": ")
}

/// At most [`ERROR_MAX`] characters, control characters as spaces: what reaches the table and
/// the logs.
pub fn bounded(text: &str) -> String {
    text.chars()
        .take(ERROR_MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_printable() {
        let long = format!("a\r\nb{}", "x".repeat(1000));
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), ERROR_MAX);
        assert!(cut.starts_with("a  b"));
        assert_eq!(
            status_text(StatusCode::SERVICE_UNAVAILABLE),
            "HTTP 503 Service Unavailable"
        );
        assert_eq!(status_text(StatusCode::from_u16(599).unwrap()), "HTTP 599");
    }
}
