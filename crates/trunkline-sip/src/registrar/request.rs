//! What the registrar reads from a device's REGISTER, every value bounded: a device is
//! attacker input, and what it sends reaches a table, the API and the log. Anything out of
//! bounds or malformed is a 400 naming the header ([`Malformed`]).

use rsipstack::sip::{Header, HeadersExt, Request};

use crate::message::{contact_param, contact_parts, leading_number, split_contacts_strict};

/// Longest Contact URI kept, in bytes.
pub const MAX_CONTACT_LEN: usize = 512;
/// Most contacts one REGISTER may carry.
pub const MAX_CONTACTS_PER_REQUEST: usize = 20;
/// Longest Call-ID accepted, in bytes.
pub const MAX_CALL_ID_LEN: usize = 256;
/// Longest User-Agent kept, in characters (cut, not refused).
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// Most Authorization headers looked at.
pub const MAX_AUTHORIZATIONS: usize = 4;
/// Longest AOR user accepted (usernames are at most 64 characters).
pub const MAX_USER_LEN: usize = 128;

/// A 400: the reason phrase says which header is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// What the REGISTER asks for its contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact header: a query for the current bindings.
    Query,
    /// `Contact: *` (valid only with `Expires: 0`, checked by the caller).
    All,
    List(Vec<ContactEntry>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEntry {
    pub uri: String,
    /// The contact's own `expires` parameter.
    pub expires: Option<u32>,
}

/// A REGISTER as the registrar needs it.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    /// The To user (the address of record's user part).
    pub user: String,
    /// The To host, lower case (the realm it registers in).
    pub domain: String,
    pub call_id: String,
    pub cseq: u32,
    pub contacts: Contacts,
    /// The `Expires` header.
    pub expires: Option<u32>,
    /// `Authorization` header values, in order.
    pub authorizations: Vec<String>,
    pub user_agent: Option<String>,
}

impl RegisterRequest {
    pub fn read(request: &Request) -> Result<Self, Malformed> {
        let to = request
            .to_header()
            .map_err(|_| Malformed("Missing To"))?
            .uri()
            .map_err(|_| Malformed("Bad To"))?;
        let user = to.user().unwrap_or_default().to_owned();
        if user.is_empty() || user.len() > MAX_USER_LEN {
            return Err(Malformed("Bad To user"));
        }
        let domain = to.host().to_string().to_ascii_lowercase();
        let call_id = request
            .call_id_header()
            .map_err(|_| Malformed("Missing Call-ID"))?
            .value()
            .trim()
            .to_owned();
        if call_id.is_empty() || call_id.len() > MAX_CALL_ID_LEN {
            return Err(Malformed("Bad Call-ID"));
        }
        let cseq = request
            .cseq_header()
            .ok()
            .and_then(|cseq| cseq.seq().ok())
            .ok_or(Malformed("Bad CSeq"))?;

        let mut expires = None;
        let mut contact_values = Vec::new();
        let mut authorizations = Vec::new();
        let mut user_agent = None;
        for header in request.headers.iter() {
            match header {
                Header::Expires(h) => {
                    expires = Some(leading_number(h.value()).ok_or(Malformed("Bad Expires"))?)
                }
                Header::Contact(h) => contact_values.push(h.value()),
                Header::Authorization(h) if authorizations.len() < MAX_AUTHORIZATIONS => {
                    authorizations.push(h.value().to_owned())
                }
                Header::UserAgent(h) => {
                    let text =
                        crate::message::truncate_chars(h.value().trim(), MAX_USER_AGENT_CHARS);
                    user_agent = (!text.is_empty()).then(|| text.to_owned());
                }
                _ => {}
            }
        }
        Ok(Self {
            user,
            domain,
            call_id,
            cseq,
            contacts: read_contacts(&contact_values)?,
            expires,
            authorizations,
            user_agent,
        })
    }
}

fn read_contacts(values: &[&str]) -> Result<Contacts, Malformed> {
    if values.is_empty() {
        return Ok(Contacts::Query);
    }
    let mut entries = Vec::new();
    let mut star = false;
    for value in values {
        let parts = split_contacts_strict(value).ok_or(Malformed("Bad Contact"))?;
        for part in parts {
            if part == "*" {
                star = true;
                continue;
            }
            let (uri, params) = contact_parts(part);
            let uri = uri.trim();
            let scheme_ok = ["sip:", "sips:"].iter().any(|scheme| {
                uri.get(..scheme.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            });
            if !scheme_ok
                || uri.len() > MAX_CONTACT_LEN
                || uri.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(Malformed("Bad Contact"));
            }
            let expires = match contact_param(params, "expires") {
                None => None,
                Some(value) => {
                    Some(leading_number(value.trim_matches('"')).ok_or(Malformed("Bad Contact"))?)
                }
            };
            if entries.len() == MAX_CONTACTS_PER_REQUEST {
                return Err(Malformed("Too Many Contacts"));
            }
            entries.push(ContactEntry {
                uri: uri.to_owned(),
                expires,
            });
        }
    }
    match (star, entries.is_empty()) {
        (true, true) => Ok(Contacts::All),
        // `*` mixed with contacts (RFC 3261 §10.3 step 6).
        (true, false) => Err(Malformed("Bad Contact")),
        (false, _) => Ok(Contacts::List(entries)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &str) -> Request {
        let text = format!(
            "REGISTER sip:MA_ABCDEFGHIJ.sip.localhost SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:alice@MA_ABCDEFGHIJ.sip.localhost>;tag=1\r\n\
             To: <sip:alice@MA_ABCDEFGHIJ.sip.localhost>\r\n\
             Call-ID: c1\r\n\
             CSeq: 7 REGISTER\r\n\
             {headers}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("parse")
    }

    #[test]
    fn reads_user_domain_contacts_and_expiry() {
        let read = RegisterRequest::read(&request(
            "Contact: <sip:alice@192.0.2.1:5060>;expires=120, \"Al, B\" <sip:alice@192.0.2.2>\r\n\
             Contact: sip:alice@192.0.2.3;expires=0\r\nExpires: 300\r\nUser-Agent: phone 1.0\r\n",
        ))
        .unwrap();
        assert_eq!(read.user, "alice");
        assert_eq!(read.domain, "ma_abcdefghij.sip.localhost");
        assert_eq!(read.call_id, "c1");
        assert_eq!(read.cseq, 7);
        assert_eq!(read.expires, Some(300));
        assert_eq!(read.user_agent.as_deref(), Some("phone 1.0"));
        let Contacts::List(list) = read.contacts else {
            panic!("contacts")
        };
        let seen: Vec<_> = list.iter().map(|c| (c.uri.as_str(), c.expires)).collect();
        assert_eq!(
            seen,
            [
                ("sip:alice@192.0.2.1:5060", Some(120)),
                ("sip:alice@192.0.2.2", None),
                ("sip:alice@192.0.2.3", Some(0)),
            ]
        );
    }

    #[test]
    fn star_query_and_malformed_contacts() {
        let all = RegisterRequest::read(&request("Contact: *\r\nExpires: 0\r\n")).unwrap();
        assert_eq!(all.contacts, Contacts::All);
        let query = RegisterRequest::read(&request("")).unwrap();
        assert_eq!(query.contacts, Contacts::Query);
        for bad in [
            "Contact: *, <sip:a@192.0.2.1>\r\n",
            "Contact: <http://example.com>\r\n",
            "Contact: <sip:a@192.0.2.1>;expires=soon\r\n",
            "Contact: \"unbalanced <sip:a@192.0.2.1>\r\n",
        ] {
            assert_eq!(
                RegisterRequest::read(&request(bad)).unwrap_err(),
                Malformed("Bad Contact"),
                "{bad}"
            );
        }
        let long = format!("Contact: <sip:{}@192.0.2.1>\r\n", "a".repeat(600));
        assert!(RegisterRequest::read(&request(&long)).is_err());
        let many: String = (0..21)
            .map(|i| format!("Contact: <sip:a{i}@192.0.2.1>\r\n"))
            .collect();
        assert_eq!(
            RegisterRequest::read(&request(&many)).unwrap_err(),
            Malformed("Too Many Contacts")
        );
    }

    #[test]
    fn absurd_expiry_saturates_rather_than_overflowing() {
        let read = RegisterRequest::read(&request("Expires: 99999999999999\r\n")).unwrap();
        assert_eq!(read.expires, Some(u32::MAX));
    }
}
