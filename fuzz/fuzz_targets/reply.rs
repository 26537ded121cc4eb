//! `message::Reply::read` over responses whose numbers, phrase, Contact and challenges are
//! fuzzer-chosen: the input is split on `\n` into the reason phrase, Expires, Min-Expires,
//! Retry-After, Contact and WWW-/Proxy-Authenticate values of a well-framed response, so the
//! fuzzer spends its time on header values rather than on SIP framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsipstack::sip::Response;
use trunkline_sip::message::Reply;

const OUR_CONTACT: &str = "sip:alice@192.0.2.1:5060;transport=udp";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\n').map(|f| f.trim_end_matches('\r'));
    let code = match fields.next().and_then(|f| f.bytes().next()) {
        Some(b) => [200u16, 401, 407, 423, 503, 403, 100, 699][usize::from(b) % 8],
        None => 200,
    };
    let mut field = || fields.next().unwrap_or("");
    let phrase = field().to_owned();
    let (expires, min_expires, retry_after) = (field(), field(), field());
    let (contact, challenge) = (field(), field());
    let auth_name = if code == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let wire = format!(
        "SIP/2.0 {code} {phrase}\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>;tag=2\r\n\
         Call-ID: c@192.0.2.1\r\nCSeq: 1 REGISTER\r\n\
         Expires: {expires}\r\nMin-Expires: {min_expires}\r\nRetry-After: {retry_after}\r\n\
         Contact: {contact}\r\n{auth_name}: {challenge}\r\nContent-Length: 0\r\n\r\n"
    );
    let Ok(response) = Response::try_from(wire.as_str()) else {
        return;
    };
    let reply = Reply::read(&response, OUR_CONTACT);
    assert_eq!(reply.code, response.status_code.code());
    // A number comes back as parsed: when the value is plain digits that fit, exactly them.
    for (value, read) in [
        (min_expires, reply.min_expires),
        (retry_after, reply.retry_after),
    ] {
        if let Ok(n) = value.trim().parse::<u32>() {
            if value.trim().bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(read, Some(n), "{value:?}");
            }
        }
    }
    let _ = trunkline_sip::digest::pick(&reply.challenges);
});
