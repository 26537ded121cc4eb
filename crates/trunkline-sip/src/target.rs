//! Addressing of one registration: the Request-URI and address of record from the registrar,
//! and where (and over which transport) the request physically goes — the registrar itself,
//! an outbound proxy, or a Dasha trunk's server — resolved per RFC 3263 (SRV `_sip._udp`,
//! `_sip._tcp`, `_sips._tcp`, then A/AAAA) into an ordered list of targets to try.

use std::net::{IpAddr, SocketAddr};

use rsipstack::resolver::SipResolver;

use trunkline_core::model::{OutboundRegistration, Transport};
use trunkline_core::sip_uri::{Host, SipTarget};

/// Everything needed to address REGISTERs for one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressing {
    /// `sip:registrar-host[:port]` (or `sips:`).
    pub request_uri: String,
    /// `sip:user@registrar-host` (or `sips:`), the To and From URI.
    pub aor: String,
    /// The transport when the addresses or the trunk name one; else what an IP next hop or
    /// a failed SRV lookup falls back to (UDP, or TLS for `sips:`).
    pub transport: Transport,
    /// Whether `transport` was named (else SRV may choose among UDP and TCP).
    pub transport_named: bool,
    /// `sips:` somewhere: TLS only.
    pub secure: bool,
    /// Host and port the request is sent to (resolved per attempt).
    pub next_hop_host: Host,
    /// `None`: not given, so SRV applies (RFC 3263 §4.2).
    pub next_hop_port: Option<u16>,
}

/// One place to send a REGISTER, in the order to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
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
        let secure = next_hop.secure || registrar.secure;
        let named = next_hop
            .transport
            .or(registrar.transport)
            .or(registration.transport)
            .or(secure.then_some(Transport::Tls));
        let transport = named.unwrap_or(Transport::Udp);
        let scheme = if registrar.secure { "sips" } else { "sip" };
        let registrar_hostport = match registrar.port {
            Some(port) => format!("{}:{port}", registrar.host),
            None => registrar.host.to_string(),
        };
        Ok(Self {
            request_uri: format!("{scheme}:{registrar_hostport}"),
            aor: format!("{scheme}:{}@{}", registration.aor_user, registrar.host),
            transport,
            transport_named: named.is_some(),
            secure,
            next_hop_port: next_hop.port,
            next_hop_host: next_hop.host,
        })
    }

    /// The targets to try, in order (RFC 3263: an IP or an explicit port skips SRV).
    pub async fn resolve(&self, resolver: &SipResolver) -> Result<Vec<Target>, String> {
        let default_port = if self.transport == Transport::Tls {
            5061
        } else {
            5060
        };
        let ip = match &self.next_hop_host {
            Host::V4(ip) => Some(IpAddr::V4(*ip)),
            Host::V6(ip) => Some(IpAddr::V6(*ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = ip {
            return Ok(vec![Target {
                addr: SocketAddr::new(ip, self.next_hop_port.unwrap_or(default_port)),
                transport: self.transport,
            }]);
        }
        let Host::Domain(name) = &self.next_hop_host else {
            unreachable!("IP hosts returned above")
        };
        let found = resolver
            .lookup(
                &rsipstack::sip::Domain(name.clone()),
                self.next_hop_port.map(rsipstack::sip::transport::Port),
                self.transport_named.then(|| to_rsip(self.transport)),
                self.secure,
            )
            .await?;
        let targets: Vec<Target> = found
            .into_iter()
            .filter_map(|t| {
                Some(Target {
                    addr: t.addr,
                    transport: from_rsip(t.transport)?,
                })
            })
            .collect();
        if targets.is_empty() {
            return Err(format!("{name} has no usable address"));
        }
        Ok(targets)
    }
}

pub fn to_rsip(transport: Transport) -> rsipstack::sip::Transport {
    match transport {
        Transport::Udp => rsipstack::sip::Transport::Udp,
        Transport::Tcp => rsipstack::sip::Transport::Tcp,
        Transport::Tls => rsipstack::sip::Transport::Tls,
    }
}

fn from_rsip(transport: rsipstack::sip::Transport) -> Option<Transport> {
    match transport {
        rsipstack::sip::Transport::Udp => Some(Transport::Udp),
        rsipstack::sip::Transport::Tcp => Some(Transport::Tcp),
        rsipstack::sip::Transport::Tls => Some(Transport::Tls),
        _ => None,
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
            unusable: None,
            version: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn plain_registrar() {
        let a = Addressing::of(&registration("sip.example.com:5080", None, None)).unwrap();
        assert_eq!(a.request_uri, "sip:sip.example.com:5080");
        assert_eq!(a.aor, "sip:alice@sip.example.com");
        assert_eq!(a.transport, Transport::Udp);
        assert!(!a.transport_named);
        assert_eq!(a.next_hop_port, Some(5080));
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
        assert_eq!(a.next_hop_port, Some(5070));
    }

    #[test]
    fn transport_from_the_uri_the_trunk_or_sips() {
        let a = Addressing::of(&registration("sip:pbx;transport=tcp", None, None)).unwrap();
        assert_eq!(a.transport, Transport::Tcp);
        let a = Addressing::of(&registration("pbx", Some("pbx"), Some(Transport::Tls))).unwrap();
        assert_eq!((a.transport, a.next_hop_port), (Transport::Tls, None));
        let a = Addressing::of(&registration("sips:pbx", None, None)).unwrap();
        assert_eq!(a.request_uri, "sips:pbx");
        assert_eq!(a.transport, Transport::Tls);
        assert!(a.secure && a.transport_named);
    }

    #[tokio::test]
    async fn ip_next_hops_need_no_lookup_and_get_the_default_port() {
        let resolver = SipResolver::with_nameservers(vec![]);
        let a = Addressing::of(&registration("sip:10.0.0.1;transport=tls", None, None)).unwrap();
        let targets = a.resolve(&resolver).await.unwrap();
        assert_eq!(
            targets,
            vec![Target {
                addr: "10.0.0.1:5061".parse().unwrap(),
                transport: Transport::Tls
            }]
        );
    }
}
