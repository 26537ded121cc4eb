//! Parsing of the SIP server addresses clients give us (`proxy`, `outboundProxy`, `server`):
//! `host`, `host:port`, `[v6]:port`, or a `sip:`/`sips:` URI with an optional `;transport=`.
//!
//! Hand-written because the accepted language is deliberately narrower than a full SIP URI
//! (no user part, no headers, only the `transport` parameter, hostnames checked label by label,
//! `_` allowed in them)
//! and the error has to say precisely what is wrong; the SIP engine reuses [`SipTarget`].

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::Transport;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

/// Where to send SIP: a host, an optional port, and what the address said about transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// `sips:` was given (TLS required).
    pub secure: bool,
    pub host: Host,
    pub port: Option<u16>,
    pub transport: Option<Transport>,
}

impl SipTarget {
    /// Parses any accepted form. The error is a sentence for the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() != text || text.is_empty() {
            return Err("must be a host, host:port or sip: URI without surrounding spaces".into());
        }
        let lower = text.to_ascii_lowercase();
        let (secure, rest) = if lower.starts_with("sips:") {
            (true, &text[5..])
        } else if lower.starts_with("sip:") {
            (false, &text[4..])
        } else {
            let target = Self::parse_hostport(text)?;
            return Ok(Self {
                secure: false,
                host: target.0,
                port: target.1,
                transport: None,
            });
        };
        if rest.contains('@') {
            return Err("must not carry a user part".into());
        }
        if rest.contains('?') {
            return Err("must not carry URI headers".into());
        }
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let (host, port) = Self::parse_hostport(hostport)?;
        let mut transport = None;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if !name.eq_ignore_ascii_case("transport") {
                return Err(format!("unsupported URI parameter `{name}`"));
            }
            if transport.is_some() {
                return Err("repeats the transport parameter".into());
            }
            transport = Some(Transport::parse(value).ok_or("transport must be udp, tcp or tls")?);
        }
        if secure && matches!(transport, Some(Transport::Udp)) {
            return Err("a sips: URI cannot use transport=udp".into());
        }
        Ok(Self {
            secure,
            host,
            port,
            transport,
        })
    }

    /// Plain `host[:port]` only (Dasha `server`).
    pub fn parse_host_port(text: &str) -> Result<(Host, Option<u16>), String> {
        if text.trim() != text || text.is_empty() {
            return Err("must be host or host:port".into());
        }
        Self::parse_hostport(text)
    }

    fn parse_hostport(text: &str) -> Result<(Host, Option<u16>), String> {
        let (host_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or("has an unclosed `[`")?;
            let host = inside
                .parse::<Ipv6Addr>()
                .map_err(|_| "has an invalid IPv6 address")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("has text after the IPv6 address")?,
                ),
            };
            return Ok((Host::V6(host), port.map(parse_port).transpose()?));
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host_text.contains(':') {
            return Err("IPv6 addresses must be written in brackets".into());
        }
        let port = port_text.map(parse_port).transpose()?;
        let host = if let Ok(ip) = host_text.parse::<Ipv4Addr>() {
            Host::V4(ip)
        } else if is_domain_name(host_text) {
            Host::Domain(host_text.to_ascii_lowercase())
        } else {
            return Err(format!("`{host_text}` is not a valid host name or address"));
        };
        Ok((host, port))
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("`{text}` is not a port between 1 and 65535")),
    }
}

/// A host name: dot-separated labels of letters, digits, `_` and inner hyphens (RFC 1123,
/// plus `_`).
///
/// RFC 3261's `hostname` grammar has no `_`, but real stacks accept it and DNS names carry it:
/// every SRV name does (`_sip._udp.example.com`, RFC 2782), and providers hand out realms such
/// as `MA_XXXXXXXX.sip.vobiz.ai` that clients must be able to register to.
fn is_domain_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // An all-numeric dotted name is a mistyped IPv4 address, not a host name.
        && !name.split('.').all(|label| label.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        let t = SipTarget::parse("sip.example.com").unwrap();
        assert_eq!(t.host, Host::Domain("sip.example.com".into()));
        assert_eq!(t.port, None);
        let t = SipTarget::parse("sip.example.com:5080").unwrap();
        assert_eq!(t.port, Some(5080));
        let t = SipTarget::parse("[2001:db8::1]:5061").unwrap();
        assert_eq!(t.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(t.port, Some(5061));
        let t = SipTarget::parse("sips:pbx.example.com;transport=tls").unwrap();
        assert!(t.secure);
        assert_eq!(t.transport, Some(Transport::Tls));
        let t = SipTarget::parse("sip:10.0.0.1:5060;transport=TCP").unwrap();
        assert_eq!(t.host, Host::V4("10.0.0.1".parse().unwrap()));
        assert_eq!(t.transport, Some(Transport::Tcp));
        assert!(SipTarget::parse("[::1]").is_ok());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            " host",
            "host name",
            "host:0",
            "host:99999",
            "host:abc",
            "host:",
            "::1",
            "[::1",
            "[zz]:5060",
            "sip:alice@example.com",
            "sip:example.com;transport=sctp",
            "sip:example.com;lr",
            "sips:example.com;transport=udp",
            "http://example.com",
            "-bad.example.com",
            "a..b",
            "999.1.1.1",
            "sip:example.com?x=y",
        ] {
            assert!(SipTarget::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn accepts_underscores_in_host_labels() {
        let realm = Host::Domain("ma_abcdefgh.sip.vobiz.ai".into());
        for (text, port) in [
            ("MA_ABCDEFGH.sip.vobiz.ai", None),
            ("sip:MA_ABCDEFGH.sip.vobiz.ai", None),
            (
                "sips:MA_ABCDEFGH.sip.vobiz.ai:5061;transport=tls",
                Some(5061),
            ),
        ] {
            let t = SipTarget::parse(text).unwrap();
            assert_eq!((t.host, t.port), (realm.clone(), port), "{text}");
        }
        assert_eq!(
            SipTarget::parse_host_port("MA_ABCDEFGH.sip.vobiz.ai:5080"),
            Ok((realm, Some(5080)))
        );
        for text in ["_sip._udp.example.com", "exa_mple.com", "_", "a_.b_"] {
            assert!(SipTarget::parse(text).is_ok(), "{text:?} was refused");
            assert!(
                SipTarget::parse_host_port(text).is_ok(),
                "{text:?} was refused"
            );
        }
    }

    #[test]
    fn underscores_do_not_let_anything_else_through() {
        for bad in [
            "MA_X.sip.vobiz.ai:0",
            "MA_X..vobiz.ai",
            "-MA_X.vobiz.ai",
            "MA_X-.vobiz.ai",
            "MA X.vobiz.ai",
            "MA_X.vobiz.ai;transport=udp",
            "sip:user@MA_X.vobiz.ai",
            "MA_X:5060:5060",
            "sip:MA_X.vobiz.ai?x=y",
            "a*b.example.com",
            "ma_x.example.com/path",
        ] {
            assert!(SipTarget::parse(bad).is_err(), "{bad:?} was accepted");
            assert!(
                SipTarget::parse_host_port(bad).is_err(),
                "{bad:?} was accepted as host:port"
            );
        }
        let long_label = format!("{}.com", "_".repeat(64));
        assert!(SipTarget::parse(&long_label).is_err());
        let long_name = format!("{}a", "a_.".repeat(85));
        assert!(long_name.len() > 253);
        assert!(SipTarget::parse(&long_name).is_err());
    }
}
