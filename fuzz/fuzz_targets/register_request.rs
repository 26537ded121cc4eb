//! What a device sends to the inbound registrar: any bytes as rsipstack parses them, then
//! `registrar::request::RegisterRequest::read` and the digest answer parser on every
//! Authorization, never panicking and keeping what they keep within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkline_sip::digest::server::DigestResponse;
use trunkline_sip::registrar::request::{
    Contacts, RegisterRequest, MAX_CALL_ID_LEN, MAX_CONTACTS_PER_REQUEST, MAX_CONTACT_LEN,
    MAX_USER_AGENT_CHARS,
};

fuzz_target!(|bytes: &[u8]| {
    let Ok(request) = rsipstack::sip::Request::try_from(bytes) else {
        return;
    };
    let Ok(read) = RegisterRequest::read(&request) else {
        return;
    };
    assert!(read.call_id.len() <= MAX_CALL_ID_LEN);
    assert!(read
        .user_agent
        .as_ref()
        .is_none_or(|agent| agent.chars().count() <= MAX_USER_AGENT_CHARS));
    if let Contacts::List(list) = &read.contacts {
        assert!(list.len() <= MAX_CONTACTS_PER_REQUEST);
        assert!(list.iter().all(|contact| contact.uri.len() <= MAX_CONTACT_LEN));
    }
    for value in &read.authorizations {
        let _ = DigestResponse::parse(value);
    }
});
