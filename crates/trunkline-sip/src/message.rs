//! The REGISTER request trunkline sends and what it reads back from a response.
//!
//! The request is built header by header as rsipstack's `Request`: every header is one we chose
//! (explicit Contact with `;transport=`, Expires, Authorization), nothing is added behind our
//! back. Response fields are read from rsipstack's parsed headers.

use rsipstack::sip::{Header, Request, Response};
use trunkline_core::model::Transport;

use crate::digest::Challenge;

/// The header that answers a proxy's (407) challenge; anything else is `Authorization`.
pub const PROXY_AUTHORIZATION: &str = "Proxy-Authorization";

/// The parts of one REGISTER.
#[derive(Debug)]
pub struct Register<'a> {
    pub request_uri: &'a str,
    pub aor: &'a str,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    pub cseq: u32,
    /// `sip:user@host:port;transport=…`.
    pub contact: &'a str,
    pub expires: u32,
    /// Another node's Contact for the same account, removed in the same request
    /// (`;expires=0`): this node took the registration over from one that died.
    pub drop_contact: Option<&'a str>,
    /// `(header name, value)`: `Authorization` or `Proxy-Authorization`.
    pub authorization: Option<(&'static str, String)>,
    /// Transport and `host:port` for the Via header.
    pub via_transport: Transport,
    pub via_sent_by: &'a str,
    pub branch: &'a str,
    pub user_agent: &'a str,
}

impl Register<'_> {
    /// The request as rsipstack's `Request`, built header by header (only the Request-URI is
    /// parsed): rendering text and parsing it back cost a few percent of a refresh.
    pub fn to_request(&self) -> Result<Request, rsipstack::sip::Error> {
        use rsipstack::sip::headers::{
            Authorization, CSeq, CallId, Contact, ContentLength, Expires, From, MaxForwards,
            ProxyAuthorization, To, UserAgent, Via,
        };
        let uri = rsipstack::sip::Uri::try_from(self.request_uri)?;
        let via_transport = match self.via_transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        };
        let mut headers: Vec<Header> = Vec::with_capacity(12);
        headers.push(
            Via::new(format!(
                "SIP/2.0/{via_transport} {};branch={};rport",
                self.via_sent_by, self.branch
            ))
            .into(),
        );
        headers.push(MaxForwards::new("70").into());
        headers.push(From::new(format!("<{}>;tag={}", self.aor, self.from_tag)).into());
        headers.push(To::new(format!("<{}>", self.aor)).into());
        headers.push(CallId::new(self.call_id).into());
        headers.push(CSeq::new(format!("{} REGISTER", self.cseq)).into());
        headers.push(Contact::new(format!("<{}>;expires={}", self.contact, self.expires)).into());
        if let Some(stale) = self.drop_contact {
            headers.push(Contact::new(format!("<{stale}>;expires=0")).into());
        }
        headers.push(Expires::new(self.expires.to_string()).into());
        headers.push(UserAgent::new(self.user_agent).into());
        match &self.authorization {
            Some((PROXY_AUTHORIZATION, value)) => {
                headers.push(ProxyAuthorization::new(value.as_str()).into())
            }
            Some((_, value)) => headers.push(Authorization::new(value.as_str()).into()),
            None => {}
        }
        headers.push(ContentLength::new("0").into());
        Ok(Request {
            method: rsipstack::sip::Method::Register,
            uri,
            version: rsipstack::sip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        })
    }
}

/// A REGISTER's request line, for the attempt history (never the Authorization).
pub fn request_line(request_uri: &str) -> String {
    format!("REGISTER {request_uri} SIP/2.0")
}

/// What the engine needs from a final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub phrase: String,
    /// Digest challenges, in header order, with whether they came from a proxy (407).
    pub challenges: Vec<Challenge>,
    pub proxy_challenge: bool,
    /// Granted expiry for our contact: its `expires` parameter, else the `Expires` header.
    pub granted_expires: Option<u32>,
    pub min_expires: Option<u32>,
    pub retry_after: Option<u32>,
}

impl Reply {
    /// Reads a response to a REGISTER whose Contact URI was `our_contact`.
    pub fn read(response: &Response, our_contact: &str) -> Self {
        let code = response.status_code.code();
        let phrase = reason_phrase(response);
        let mut reply = Reply {
            code,
            phrase,
            challenges: Vec::new(),
            proxy_challenge: code == 407,
            granted_expires: None,
            min_expires: None,
            retry_after: None,
        };
        let mut expires_header = None;
        let mut contact_expires = None;
        for header in response.headers.iter() {
            match header {
                Header::WwwAuthenticate(h) if code == 401 => {
                    if let Ok(challenge) = Challenge::parse(h.value()) {
                        reply.challenges.push(challenge);
                    }
                }
                Header::ProxyAuthenticate(h) if code == 407 => {
                    if let Ok(challenge) = Challenge::parse(h.value()) {
                        reply.challenges.push(challenge);
                    }
                }
                Header::Expires(h) => expires_header = leading_number(h.value()),
                Header::MinExpires(h) => reply.min_expires = leading_number(h.value()),
                Header::RetryAfter(h) => reply.retry_after = leading_number(h.value()),
                Header::Contact(h) if contact_expires.is_none() => {
                    contact_expires = contact_expires_for(h.value(), our_contact);
                }
                _ => {}
            }
        }
        reply.granted_expires = contact_expires.or(expires_header);
        reply
    }
}

/// Longest reason phrase kept from a response, in characters: a registrar's phrase is
/// attacker input that reaches the status, the history and the API.
pub const MAX_PHRASE_CHARS: usize = 128;

/// A response's reason phrase as sent (else the standard one for its code), cut to
/// [`MAX_PHRASE_CHARS`] on a character boundary.
pub fn reason_phrase(response: &Response) -> String {
    match &response.wire_reason {
        Some(phrase) => truncate_chars(phrase, MAX_PHRASE_CHARS).to_owned(),
        None => response.status_code.text().to_owned(),
    }
}

/// The first `max` characters of `text`.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// `60`, `60;duration=…`, `120 (comment)` → the leading integer.
/// A number too large for `u32` saturates (a registrar's `Expires: 99999999999` is "very
/// long", bounded later by policy), so no header value is lost to an overflow.
pub(crate) fn leading_number(value: &str) -> Option<u32> {
    let digits = value.trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    Some(digits[..end].bytes().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// The `expires` parameter of the contact in `header` (possibly several, comma-separated) whose
/// URI is `our_contact`. The registrar may return other devices' bindings for the same AOR.
fn contact_expires_for(header: &str, our_contact: &str) -> Option<u32> {
    let ours = our_contact.trim();
    split_contacts(header).find_map(|contact| {
        let (uri, params) = contact_parts(contact);
        // Case-insensitive scheme/host/params comparison is enough to recognise our own.
        if !uri.trim().eq_ignore_ascii_case(ours) {
            return None;
        }
        contact_param(params, "expires").and_then(|value| leading_number(value.trim_matches('"')))
    })
}

/// One contact of a Contact header → its URI (inside `<…>`, else up to the first `;`) and
/// what follows (the header parameters, `;`-separated).
pub(crate) fn contact_parts(contact: &str) -> (&str, &str) {
    match (contact.find('<'), contact.find('>')) {
        (Some(open), Some(close)) if open < close => {
            (&contact[open + 1..close], &contact[close + 1..])
        }
        _ => contact.split_once(';').unwrap_or((contact, "")),
    }
}

/// The value of parameter `name` (case-insensitive) in `;a=1;b=2`.
pub(crate) fn contact_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Splits a Contact header value on commas outside `<…>` and quotes. When the quotes or
/// brackets do not balance (another binding's malformed parameters), on every comma instead,
/// so that our own binding is still found.
fn split_contacts(header: &str) -> impl Iterator<Item = &str> {
    split_contacts_strict(header)
        .unwrap_or_else(|| header.split(',').map(str::trim).collect())
        .into_iter()
}

/// Splits a Contact header value on commas outside `<…>` and quotes; `None` when the quotes
/// or brackets do not balance.
pub(crate) fn split_contacts_strict(header: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, c) in header.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(header[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(header[start..].trim());
    (!quoted && depth == 0).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> Response {
        Response::try_from(text.replace('\n', "\r\n").as_str()).expect("parse")
    }

    #[test]
    fn builds_a_register_that_survives_the_wire() {
        let register = Register {
            request_uri: "sip:example.com",
            aor: "sip:alice@example.com",
            call_id: "abc@trunkline",
            from_tag: "t1",
            cseq: 7,
            contact: "sip:alice@127.0.0.1:5060;transport=udp",
            expires: 3600,
            drop_contact: None,
            authorization: Some(("Authorization", "Digest username=\"alice\"".into())),
            via_transport: Transport::Udp,
            via_sent_by: "127.0.0.1:5060",
            branch: "z9hG4bKabc",
            user_agent: "trunkline",
        };
        let wire = register.to_request().expect("builds").to_string();
        assert!(
            wire.starts_with("REGISTER sip:example.com SIP/2.0\r\n"),
            "{wire}"
        );
        assert!(wire.ends_with("Content-Length: 0\r\n\r\n"), "{wire}");
        let parsed = rsipstack::sip::Request::try_from(wire.as_str()).expect("parses");
        assert_eq!(parsed.uri.to_string(), "sip:example.com");
        let text = parsed.to_string();
        assert!(text.contains("CSeq: 7 REGISTER"));
        assert!(text.contains("transport=udp"));
        assert!(text.contains("Authorization: Digest username=\"alice\""));
        assert_eq!(
            request_line(register.request_uri),
            "REGISTER sip:example.com SIP/2.0"
        );
        let to_proxy = Register {
            authorization: Some((PROXY_AUTHORIZATION, "Digest username=\"alice\"".into())),
            ..register
        };
        let wire = to_proxy.to_request().expect("builds").to_string();
        assert!(wire.contains("\r\nProxy-Authorization: Digest username=\"alice\"\r\n"));
        assert!(!wire.contains("\r\nAuthorization:"), "{wire}");
        // Taking over from a dead node: its contact goes in the same request.
        let takeover = Register {
            drop_contact: Some("sip:alice@10.0.0.9:5060;transport=udp"),
            ..to_proxy
        };
        let wire = takeover.to_request().expect("builds").to_string();
        assert!(
            wire.contains("Contact: <sip:alice@127.0.0.1:5060;transport=udp>;expires=3600\r\n"),
            "{wire}"
        );
        assert!(
            wire.contains("Contact: <sip:alice@10.0.0.9:5060;transport=udp>;expires=0\r\n"),
            "{wire}"
        );
    }

    #[test]
    fn reads_our_contacts_expiry_over_the_header() {
        let r = response(
            "SIP/2.0 200 OK\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\n\
             From: <sip:a@x>;tag=1\nTo: <sip:a@x>;tag=2\nCall-ID: c\nCSeq: 1 REGISTER\n\
             Contact: <sip:other@10.0.0.9>;expires=999, <sip:alice@127.0.0.1:5060;transport=udp>;expires=120\n\
             Expires: 3600\nContent-Length: 0\n\n",
        );
        let reply = Reply::read(&r, "sip:alice@127.0.0.1:5060;transport=udp");
        assert_eq!(reply.code, 200);
        assert_eq!(reply.granted_expires, Some(120));
    }

    #[test]
    fn reads_challenges_min_expires_and_retry_after() {
        let r = response(
            "SIP/2.0 401 Unauthorized\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\n\
             From: <sip:a@x>;tag=1\nTo: <sip:a@x>;tag=2\nCall-ID: c\nCSeq: 1 REGISTER\n\
             WWW-Authenticate: Digest realm=\"x\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\n\
             WWW-Authenticate: Digest realm=\"x\", nonce=\"n2\", algorithm=MD5, qop=\"auth\"\n\
             Content-Length: 0\n\n",
        );
        let reply = Reply::read(&r, "sip:alice@h");
        assert_eq!((reply.code, reply.phrase.as_str()), (401, "Unauthorized"));
        assert_eq!(reply.challenges.len(), 2);
        let r = response(
            "SIP/2.0 423 Interval Too Brief\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\n\
             From: <sip:a@x>;tag=1\nTo: <sip:a@x>;tag=2\nCall-ID: c\nCSeq: 1 REGISTER\n\
             Min-Expires: 600\nRetry-After: 30 (busy)\nContent-Length: 0\n\n",
        );
        let reply = Reply::read(&r, "sip:alice@h");
        assert_eq!(
            (reply.min_expires, reply.retry_after),
            (Some(600), Some(30))
        );
        assert_eq!(reply.granted_expires, None);
    }

    #[test]
    fn hostile_numbers_saturate_and_long_phrases_are_cut_on_a_character_boundary() {
        let phrase = "é".repeat(300);
        let r = response(&format!(
            "SIP/2.0 503 {phrase}\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\n\
             From: <sip:a@x>;tag=1\nTo: <sip:a@x>;tag=2\nCall-ID: c\nCSeq: 1 REGISTER\n\
             Retry-After: 99999999999999999999\nExpires: 4294967296\nMin-Expires: 4294967295\n\
             Content-Length: 0\n\n"
        ));
        let reply = Reply::read(&r, "sip:alice@h");
        assert_eq!(reply.phrase.chars().count(), MAX_PHRASE_CHARS);
        assert!(reply.phrase.chars().all(|c| c == 'é'));
        assert_eq!(reply.retry_after, Some(u32::MAX));
        assert_eq!(reply.granted_expires, Some(u32::MAX));
        assert_eq!(reply.min_expires, Some(u32::MAX));
        assert_eq!(leading_number("  42;x"), Some(42));
        assert_eq!(leading_number("x42"), None);
        assert_eq!(leading_number(""), None);
        assert_eq!(truncate_chars("abc", 5), "abc");
    }

    #[test]
    fn our_expiry_survives_another_bindings_unbalanced_quote() {
        let header = r#"<sip:other@10.0.0.9>;expires=999;x="open, <sip:alice@h>;expires=120"#;
        assert_eq!(contact_expires_for(header, "sip:alice@h"), Some(120));
        let balanced = r#""Bob, the other" <sip:bob@h2>;expires=5, <sip:alice@h>;expires=60"#;
        assert_eq!(contact_expires_for(balanced, "sip:alice@h"), Some(60));
    }
}
