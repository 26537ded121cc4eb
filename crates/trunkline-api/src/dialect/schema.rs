//! JSON Schemas of request fields, stating the limits `trunkline-core`'s services enforce
//! (lengths, character sets, address grammars), so that a value the OpenAPI document calls
//! valid is one the service accepts. Fields use them with `#[schema(schema_with = …)]`; the
//! schemathesis run (`tests/schema/`) checks that document and code agree.
//!
//! Lengths count characters (Unicode scalar values), as JSON Schema and the services both do.
//! Where the accepted language has no exact regular expression (SIP addresses), the pattern
//! describes a subset that is always accepted: every documented form, spelled canonically.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::KnownFormat;

/// `Charset::Printable`: no control characters (Unicode `Cc`).
pub(crate) const PRINTABLE: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// `Charset::Quotable`: printable, and no `"` or `\`.
pub(crate) const QUOTABLE: &str = r#"^[^\x00-\x1F\x7F-\x9F"\\]*$"#;
/// `Charset::SipUser`: the characters of an RFC 3261 user part.
pub(crate) const SIP_USER: &str = r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]*$";
/// `Charset::Word`: letters, digits, `_`, `.` and `-`.
pub(crate) const WORD: &str = r"^[A-Za-z0-9_.\-]*$";

/// E.164: `+`, then 2–15 digits, the first not zero.
pub(crate) const E164: &str = r"^\+[1-9][0-9]{1,14}$";

/// A host name label: letters, digits, `_` and inner hyphens (`_` as in SRV names and realms
/// such as `MA_XXXXXXXX.sip.vobiz.ai`; see `sip_uri`).
macro_rules! label {
    () => {
        "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    };
}
/// A host name whose last label starts with a letter or `_` (an all-numeric name is refused).
macro_rules! domain {
    () => {
        concat!(
            "(?:",
            label!(),
            r"\.)*[A-Za-z_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
        )
    };
}
macro_rules! ipv4 {
    () => {
        concat!(
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
            r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}"
        )
    };
}
/// Bracketed IPv6: all eight groups, or `::` standing for zeros at the end, before the last
/// group, or at the start.
macro_rules! ipv6 {
    () => {
        concat!(
            r"\[(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:",
            r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}",
            r"|::(?:[0-9A-Fa-f]{1,4})?)\]"
        )
    };
}
macro_rules! host {
    () => {
        concat!("(?:", domain!(), "|", ipv4!(), "|", ipv6!(), ")")
    };
}
macro_rules! host_port {
    () => {
        concat!(
            host!(),
            "(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}",
            "|655[0-2][0-9]|6553[0-5]))?"
        )
    };
}

/// A host: name, IPv4 address or bracketed IPv6 address (Dasha `domain`).
pub(crate) const HOST: &str = concat!("^", host!(), "$");
/// `host[:port]` (Dasha `server`).
pub(crate) const HOST_PORT: &str = concat!("^", host_port!(), "$");
/// `host[:port]`, or a `sip:`/`sips:` URI of one with an optional `;transport=` (Ultravox
/// `proxy`, `outboundProxy`); `sips:` never with `udp`.
pub(crate) const SIP_TARGET: &str = concat!(
    "^(?:",
    host_port!(),
    "|sip:",
    host_port!(),
    "(?:;transport=(?:udp|tcp|tls))?",
    "|sips:",
    host_port!(),
    "(?:;transport=(?:tcp|tls))?)$"
);

/// A webhook URL: `http://` or `https://`, a host with an optional port, then an optional
/// path and query of URL characters (percent-escapes whole), no user information or fragment.
pub(crate) const WEBHOOK_URL: &str = concat!(
    "^https?://",
    host_port!(),
    r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*)?",
    r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$"
);

/// A host name is at most 253 characters, so host fields document that bound.
pub(crate) const HOST_MAX: usize = 253;

fn string(pattern: &str, min: usize, max: usize, nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
}

/// Text without control characters, `MIN`–`MAX` characters.
pub(crate) fn printable<const MIN: usize, const MAX: usize>() -> Object {
    string(PRINTABLE, MIN, MAX, false).build()
}

/// [`printable`] or `null`.
pub(crate) fn printable_or_null<const MIN: usize, const MAX: usize>() -> Object {
    string(PRINTABLE, MIN, MAX, true).build()
}

/// A write-only secret: text without control characters, `MIN`–`MAX` characters.
pub(crate) fn secret<const MIN: usize, const MAX: usize>() -> Object {
    string(PRINTABLE, MIN, MAX, false)
        .write_only(Some(true))
        .build()
}

/// [`secret`] or `null`.
pub(crate) fn secret_or_null<const MIN: usize, const MAX: usize>() -> Object {
    string(PRINTABLE, MIN, MAX, true)
        .write_only(Some(true))
        .build()
}

/// Text fit for a quoted SIP header value, `MIN`–`MAX` characters, or `null`.
pub(crate) fn quotable_or_null<const MIN: usize, const MAX: usize>() -> Object {
    string(QUOTABLE, MIN, MAX, true).build()
}

/// A SIP user part, `MIN`–`MAX` characters.
pub(crate) fn sip_user<const MIN: usize, const MAX: usize>() -> Object {
    string(SIP_USER, MIN, MAX, false).build()
}

/// Letters, digits, `_`, `.` and `-`, `MIN`–`MAX` characters.
pub(crate) fn word<const MIN: usize, const MAX: usize>() -> Object {
    string(WORD, MIN, MAX, false).build()
}

/// A SIP server address (see [`SIP_TARGET`]), at most `MAX` characters.
pub(crate) fn sip_target<const MAX: usize>() -> Object {
    string(SIP_TARGET, 1, MAX, false).build()
}

/// [`sip_target`] or `null`.
pub(crate) fn sip_target_or_null<const MAX: usize>() -> Object {
    string(SIP_TARGET, 1, MAX, true).build()
}

/// `host[:port]` (see [`HOST_PORT`]).
pub(crate) fn host_port() -> Object {
    string(HOST_PORT, 1, HOST_MAX, false).build()
}

/// A host without port (see [`HOST`]), or `null`.
pub(crate) fn host_or_null() -> Object {
    string(HOST, 1, HOST_MAX, true).build()
}

/// An E.164 phone number.
pub(crate) fn e164() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(E164))
        .examples(["+14155550123"])
        .build()
}

/// A uuid.
pub(crate) fn uuid() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .build()
}

/// One of `values`.
pub(crate) fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// The SIP transports, as every dialect names them.
pub(crate) const TRANSPORTS: &[&str] = &["udp", "tcp", "tls"];

/// One of [`TRANSPORTS`].
pub(crate) fn transport_name() -> Object {
    one_of(TRANSPORTS)
}

/// One of `values`, or `null`.
pub(crate) fn one_of_or_null(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// A webhook URL (see [`WEBHOOK_URL`]), at most `MAX` characters.
pub(crate) fn webhook_url<const MAX: usize>() -> Object {
    string(WEBHOOK_URL, 1, MAX, false).build()
}

/// A list of event type names (duplicates allowed, kept once); empty means every type.
pub(crate) fn event_types() -> utoipa::openapi::schema::Array {
    let names: Vec<&str> = trunkline_core::outbox::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(one_of(&names))
        .build()
}
