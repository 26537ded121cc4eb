//! Bytes from the network, as rsipstack's transports hand them on: a UDP datagram is parsed as
//! one message (`SipMessage::try_from(&[u8])`), a TCP/TLS stream is framed by `SipCodec`; every
//! message then gets its Via updated and a transaction key, as the endpoint does, and every
//! response is read by `message::Reply::read`, as an exchange does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsipstack::sip::SipMessage;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::stream::{SipCodec, SipCodecType};
use rsipstack::transport::SipConnection;
use tokio_util::codec::Decoder;
use trunkline_sip::message::Reply;

const OUR_CONTACT: &str = "sip:alice@192.0.2.1:5060;transport=udp";

fn received(message: SipMessage) {
    let _ = message.to_string();
    match &message {
        SipMessage::Request(request) => {
            let _ = TransactionKey::from_request(request, TransactionRole::Server);
        }
        SipMessage::Response(response) => {
            let _ = TransactionKey::from_response(response, TransactionRole::Client);
            let reply = Reply::read(response, OUR_CONTACT);
            assert_eq!(reply.code, response.status_code.code());
            for challenge in &reply.challenges {
                assert!(challenge.realm().len() <= trunkline_sip::digest::MAX_REALM_LEN);
                assert!(challenge.nonce().len() <= trunkline_sip::digest::MAX_PARAM_LEN);
            }
            let _ = trunkline_sip::digest::pick(&reply.challenges);
        }
    }
    if let Ok(updated) = SipConnection::update_msg_received(
        message,
        "192.0.2.9:5060".parse().unwrap(),
        rsipstack::sip::Transport::Udp,
    ) {
        let _ = updated.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    // UDP (udp.rs): keep-alives and all-whitespace datagrams are dropped before parsing.
    if !data.iter().all(u8::is_ascii_whitespace) {
        if let Ok(message) = SipMessage::try_from(data) {
            received(message);
        }
    }
    // TCP/TLS (stream.rs): the codec frames as many messages as the bytes hold.
    let mut codec = SipCodec::new();
    let mut buffer = bytes::BytesMut::from(data);
    for _ in 0..16 {
        match codec.decode(&mut buffer) {
            Ok(Some(SipCodecType::Message(message))) => received(message),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
