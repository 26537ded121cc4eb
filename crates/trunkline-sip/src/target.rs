//! Addressing of one registration: the Request-URI and address of record from the registrar,
//! and where (and over which transport) the request physically goes — the registrar itself,
//! an outbound proxy, or a Dasha trunk's server.

use std::net::SocketAddr;

use trunkline_core::model::{OutboundRegistration, Transport};
use trunkline_core::sip_uri::{Host, SipTarget};

/// Everything needed to address REGISTERs for one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// `sip:registrar-host[:port]` (or `sips:`).
    pub request_uri: String,
    /// `sip:user@registrar-host` (or `sips:`), the To and From URI.
    pub aor: String,
    pub transport: Transport,
    /// Host and port the request is sent to (resolved later).
    pub next_hop_host: Host,
    pub next_hop_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct AddressingError {
    pub field: &'static str,
    pub problem: String,
}

impl Addressing {
    pub fn of(registration: &OutboundRegistration) -> Result<Self, AddressingError> {
        let registrar =
            SipTarget::parse(&registration.registrar).map_err(|problem| AddressingError {
                field: "registrar",
                problem,
            })?;
        let next_hop = match &registration.send_to {
            Some(text) => SipTarget::parse(text).map_err(|problem| AddressingError {
                field: "next hop",
                problem,
            })?,
            None => registrar.clone(),
        };
        let transport = next_hop
            .transport
            .or(registrar.transport)
            .or(registration.transport)
            .unwrap_or(if next_hop.secure || registrar.secure {
                Transport::Tls
            } else {
                Transport::Udp
            });
        let scheme = if registrar.secure { "sips" } else { "sip" };
        let registrar_hostport = match registrar.port {
            Some(port) => format!("{}:{port}", registrar.host),
            None => registrar.host.to_string(),
        };
        let default_port = if transport == Transport::Tls {
            5061
        } else {
            5060
        };
        Ok(Self {
            request_uri: format!("{scheme}:{registrar_hostport}"),
            aor: format!("{scheme}:{}@{}", registration.aor_user, registrar.host),
            transport,
            next_hop_port: next_hop.port.unwrap_or(default_port),
            next_hop_host: next_hop.host,
        })
    }

    /// The next hop as a socket address, resolving a host name (A/AAAA).
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        match &self.next_hop_host {
            Host::V4(ip) => Ok(SocketAddr::from((*ip, self.next_hop_port))),
            Host::V6(ip) => Ok(SocketAddr::from((*ip, self.next_hop_port))),
            Host::Domain(name) => tokio::net::lookup_host((name.as_str(), self.next_hop_port))
                .await?
                .next()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{name} has no address"),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_core::model::RegistrationSource;
    use trunkline_core::{AccountId, Timestamp};

    fn registration(
        registrar: &str,
        send_to: Option<&str>,
        transport: Option<Transport>,
    ) -> OutboundRegistration {
        OutboundRegistration {
            id: uuid::Uuid::nil(),
            tenant: AccountId::generate(),
            source: RegistrationSource::Ultravox,
            aor_user: "alice".into(),
            registrar: registrar.into(),
            send_to: send_to.map(Into::into),
            transport,
            auth_user: None,
            password: None,
            version: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn plain_registrar() {
        let a = Addressing::of(&registration("sip.example.com:5080", None, None)).unwrap();
        assert_eq!(a.request_uri, "sip:sip.example.com:5080");
        assert_eq!(a.aor, "sip:alice@sip.example.com");
        assert_eq!(a.transport, Transport::Udp);
        assert_eq!(a.next_hop_port, 5080);
    }

    #[test]
    fn outbound_proxy_keeps_the_registrar_in_the_request_uri() {
        let a = Addressing::of(&registration(
            "trunk.com",
            Some("sip:10.0.0.1:5070;transport=tcp"),
            None,
        ))
        .unwrap();
        assert_eq!(a.request_uri, "sip:trunk.com");
        assert_eq!(a.transport, Transport::Tcp);
        assert_eq!(a.next_hop_host, Host::V4("10.0.0.1".parse().unwrap()));
        assert_eq!(a.next_hop_port, 5070);
    }

    #[test]
    fn transport_from_the_uri_the_trunk_or_sips() {
        let a = Addressing::of(&registration("sip:pbx;transport=tcp", None, None)).unwrap();
        assert_eq!(a.transport, Transport::Tcp);
        let a = Addressing::of(&registration("pbx", Some("pbx"), Some(Transport::Tls))).unwrap();
        assert_eq!((a.transport, a.next_hop_port), (Transport::Tls, 5061));
        let a = Addressing::of(&registration("sips:pbx", None, None)).unwrap();
        assert_eq!(a.request_uri, "sips:pbx");
        assert_eq!(a.transport, Transport::Tls);
    }
}
