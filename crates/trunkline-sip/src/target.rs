//! Addressing of one registration: the Request-URI and address of record from the registrar,
//! and where (and over which transport) the request physically goes — the registrar itself,
//! an outbound proxy, or a Dasha trunk's server — resolved per RFC 3263 (SRV `_sip._udp`,
//! `_sip._tcp`, `_sips._tcp`, then A/AAAA) into an ordered list of targets to try, minus the
//! addresses the [`DestinationPolicy`] refuses.

use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use ipnet::IpNet;
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
        // The first transport named: on the next hop's URI, the registrar's, the trunk.
        let next_hop_field = if registration.send_to.is_some() {
            "next hop"
        } else {
            "registrar"
        };
        let named = [
            (next_hop.transport, next_hop_field, next_hop.secure),
            (registrar.transport, "registrar", registrar.secure),
            (registration.transport, "transport", false),
        ]
        .into_iter()
        .find_map(|(transport, field, sips_uri)| Some((transport?, field, sips_uri)));
        let named = match named {
            None => secure.then_some(Transport::Tls),
            // `sips:` goes over TLS only (RFC 3261 §26.2.2), whatever a proxy or trunk says;
            // on a `sips:` URI itself `transport=tcp` means TLS over TCP (RFC 5630 §3.1.3).
            Some((Transport::Tcp, _, true)) => Some(Transport::Tls),
            Some((transport, field, _)) if secure && transport != Transport::Tls => {
                return Err(AddressingError {
                    field,
                    problem: format!(
                        "transport={} for a sips: address (sips: goes over TLS only)",
                        transport.as_str()
                    ),
                });
            }
            Some((transport, _, _)) => Some(transport),
        };
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

    /// The targets to try, in order (RFC 3263: an IP or an explicit port skips SRV), minus
    /// those `policy` refuses.
    pub async fn resolve(
        &self,
        resolver: &SipResolver,
        policy: &DestinationPolicy,
    ) -> Result<Vec<Target>, ResolveError> {
        let targets = self.lookup(resolver).await.map_err(ResolveError::Lookup)?;
        let mut refused = Vec::new();
        let allowed: Vec<Target> = targets
            .into_iter()
            .filter(|target| match policy.check(target.addr) {
                Ok(()) => true,
                Err(refusal) => {
                    tracing::debug!(%refusal, "skipping a refused target");
                    refused.push(refusal);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            let mut refused = refused.into_iter();
            let Some(first) = refused.next() else {
                return Err(ResolveError::Lookup("no address to try".to_owned()));
            };
            return Err(ResolveError::Refused {
                first,
                more: refused.len(),
            });
        }
        Ok(allowed)
    }

    async fn lookup(&self, resolver: &SipResolver) -> Result<Vec<Target>, String> {
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
                let transport = from_rsip(t.transport)?;
                // A `sips:` next hop is never reached over anything but TLS, whatever DNS says.
                (!self.secure || transport == Transport::Tls).then_some(Target {
                    addr: t.addr,
                    transport,
                })
            })
            .collect();
        if targets.is_empty() {
            return Err(format!("{name} has no usable address"));
        }
        Ok(targets)
    }

    /// The name a TLS connection to the next hop verifies the certificate against (RFC 5922
    /// §7.2: the host of the URI being reached, not what it resolved to).
    pub fn tls_name(&self) -> String {
        match &self.next_hop_host {
            Host::Domain(name) => name.clone(),
            Host::V4(ip) => ip.to_string(),
            Host::V6(ip) => ip.to_string(),
        }
    }
}

/// Why there is nothing to send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve next hop: {0}")]
    Lookup(String),
    /// Every resolved address was refused; `first` names the rule.
    #[error("{first}{}", if *more > 0 { format!(" (and {more} more refused)") } else { String::new() })]
    Refused { first: Refusal, more: usize },
}

/// A destination the policy refuses, and the rule that refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {addr} refused by {rule}")]
pub struct Refusal {
    pub addr: SocketAddr,
    pub rule: String,
}

/// Where REGISTERs must not go, checked on every resolved address: `outbound.deny_networks`,
/// and trunkline's own HTTP listener (its own SIP address stays allowed: registering to its
/// own registrar is a legitimate setup). Addresses are compared in canonical form (an
/// IPv4-mapped IPv6 address is the IPv4 address).
#[derive(Debug, Default)]
pub struct DestinationPolicy {
    deny: Vec<IpNet>,
    /// trunkline's HTTP listen address; port 0 until the listener is bound.
    http: RwLock<Option<SocketAddr>>,
    /// This host's addresses, for an HTTP listener on `0.0.0.0`/`::`.
    local_ips: Vec<IpAddr>,
}

impl DestinationPolicy {
    pub fn new(deny: Vec<IpNet>, http_listen: Option<SocketAddr>) -> Self {
        let local_ips = match if_addrs::get_if_addrs() {
            Ok(interfaces) => interfaces
                .into_iter()
                .map(|interface| canonical(interface.ip()))
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot list this host's addresses");
                Vec::new()
            }
        };
        Self {
            deny: deny.into_iter().map(canonical_net).collect(),
            http: RwLock::new(http_listen),
            local_ips,
        }
    }

    /// The HTTP listener's bound address (known only after it is bound when `listen` has
    /// port 0).
    pub fn set_http_listen(&self, addr: SocketAddr) {
        *self.http.write().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }

    pub fn check(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if let Some(net) = self.deny.iter().find(|net| net.contains(&ip)) {
            return Err(Refusal {
                addr,
                rule: format!("outbound.deny_networks ({net})"),
            });
        }
        let http = *self.http.read().unwrap_or_else(|e| e.into_inner());
        if let Some(http) = http {
            if http.port() != 0 && addr.port() == http.port() && self.same_host(ip, http.ip()) {
                return Err(Refusal {
                    addr,
                    rule: format!("listen (trunkline's own HTTP address {http})"),
                });
            }
        }
        Ok(())
    }

    /// Whether a connection to `ip` reaches a socket bound to `listen` on this host.
    fn same_host(&self, ip: IpAddr, listen: IpAddr) -> bool {
        let listen = canonical(listen);
        // Connecting to 0.0.0.0 or :: reaches this host.
        if ip.is_unspecified() {
            return true;
        }
        if listen.is_unspecified() {
            return ip.is_loopback() || self.local_ips.contains(&ip);
        }
        ip == listen
    }
}

/// Parses `outbound.deny_networks`: CIDR networks (or single addresses) separated by commas;
/// empty denies nothing.
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(canonical_net)
                .map_err(|_| {
                    format!("`{item}` is not a network (expected CIDR such as 10.0.0.0/8)")
                })
        })
        .collect()
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `::ffff:a.b.c.d/(96+n)` as `a.b.c.d/n`, so it matches the canonical addresses.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
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
        let targets = a
            .resolve(&resolver, &DestinationPolicy::default())
            .await
            .unwrap();
        assert_eq!(
            targets,
            vec![Target {
                addr: "10.0.0.1:5061".parse().unwrap(),
                transport: Transport::Tls
            }]
        );
    }

    #[test]
    fn sips_goes_over_tls_whatever_the_proxy_or_trunk_says() {
        // An outbound proxy without a transport for a sips: registrar: TLS.
        let a = Addressing::of(&registration("sips:trunk.com", Some("10.0.0.1"), None)).unwrap();
        assert_eq!((a.transport, a.secure), (Transport::Tls, true));
        // sips: AOR and Request-URI stay sips: behind a proxy.
        assert_eq!(a.aor, "sips:alice@trunk.com");
        for proxy in [
            "sip:10.0.0.1;transport=udp",
            "sip:10.0.0.1:5070;transport=tcp",
        ] {
            let err =
                Addressing::of(&registration("sips:trunk.com", Some(proxy), None)).unwrap_err();
            assert_eq!(err.field, "next hop", "{proxy}");
            assert!(err.problem.contains("sips: goes over TLS only"), "{err}");
            assert!(
                err.to_string().starts_with("invalid next hop: transport="),
                "{err}"
            );
        }
        // The trunk's transport cannot downgrade it either.
        for transport in [Transport::Udp, Transport::Tcp] {
            let err =
                Addressing::of(&registration("sips:trunk.com", None, Some(transport))).unwrap_err();
            assert_eq!(err.field, "transport");
        }
        // A sips: proxy for a sip: registrar: the hop to the proxy is TLS.
        let a =
            Addressing::of(&registration("trunk.com", Some("sips:proxy.example"), None)).unwrap();
        assert_eq!(a.transport, Transport::Tls);
        let err = Addressing::of(&registration(
            "sip:trunk.com;transport=udp",
            Some("sips:proxy.example"),
            None,
        ))
        .unwrap_err();
        assert_eq!(err.field, "registrar");
        // On a sips: URI itself, transport=tcp is TLS over TCP (RFC 5630).
        let a = Addressing::of(&registration("sips:trunk.com;transport=tcp", None, None)).unwrap();
        assert_eq!(a.transport, Transport::Tls);
        let a = Addressing::of(&registration(
            "sips:trunk.com",
            Some("sips:10.0.0.1;transport=tcp"),
            None,
        ))
        .unwrap();
        assert_eq!(a.transport, Transport::Tls);
        // Explicit TLS is fine.
        let a = Addressing::of(&registration(
            "sips:trunk.com",
            Some("sip:10.0.0.1;transport=tls"),
            Some(Transport::Tls),
        ))
        .unwrap();
        assert_eq!(a.transport, Transport::Tls);
    }

    fn policy(deny: &str, http: Option<&str>) -> DestinationPolicy {
        DestinationPolicy::new(
            parse_networks(deny).unwrap(),
            http.map(|h| h.parse().unwrap()),
        )
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn deny_networks_match_after_canonicalising() {
        let p = policy("169.254.0.0/16,fe80::/10", None);
        let refusal = p.check(addr("169.254.1.1:5060")).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "destination 169.254.1.1:5060 refused by outbound.deny_networks (169.254.0.0/16)"
        );
        // IPv4-mapped IPv6 is the IPv4 address.
        let refusal = p.check(addr("[::ffff:169.254.9.9]:5060")).unwrap_err();
        assert_eq!(refusal.rule, "outbound.deny_networks (169.254.0.0/16)");
        assert!(p.check(addr("[fe80::1]:5060")).is_err());
        assert!(p.check(addr("169.253.255.255:5060")).is_ok());
        assert!(p.check(addr("[::ffff:10.0.0.1]:5060")).is_ok());
        assert!(p.check(addr("[2001:db8::1]:5060")).is_ok());
        // A mapped network in the list matches plain IPv4 too; a bare address is a /32.
        let p = policy(" ::ffff:10.0.0.0/104 , 192.0.2.7 ", None);
        assert!(p.check(addr("10.1.2.3:5060")).is_err());
        assert!(p.check(addr("192.0.2.7:5061")).is_err());
        assert!(p.check(addr("192.0.2.8:5061")).is_ok());
        // Empty: nothing refused.
        assert!(policy("", None).check(addr("169.254.1.1:5060")).is_ok());
    }

    #[test]
    fn deny_networks_parse_errors_name_the_item() {
        let err = parse_networks("10.0.0.0/8, nonsense").unwrap_err();
        assert!(err.contains("`nonsense`"), "{err}");
        assert!(parse_networks("10.0.0.0/33").is_err());
    }

    #[test]
    fn own_http_listener_is_refused_its_sip_port_is_not() {
        let p = policy("", Some("127.0.0.1:8080"));
        let refusal = p.check(addr("127.0.0.1:8080")).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "destination 127.0.0.1:8080 refused by listen (trunkline's own HTTP address 127.0.0.1:8080)"
        );
        assert!(p.check(addr("[::ffff:127.0.0.1]:8080")).is_err());
        assert!(p.check(addr("0.0.0.0:8080")).is_err());
        assert!(p.check(addr("127.0.0.1:5060")).is_ok());
        assert!(p.check(addr("10.9.9.9:8080")).is_ok());
        // Bound to every address: any loopback address on that port.
        let p = policy("", Some("0.0.0.0:8080"));
        assert!(p.check(addr("127.0.0.2:8080")).is_err());
        assert!(p.check(addr("[::1]:8080")).is_err());
        // Port 0 until the listener is bound, then the bound port.
        let p = policy("", Some("127.0.0.1:0"));
        assert!(p.check(addr("127.0.0.1:0")).is_ok());
        p.set_http_listen(addr("127.0.0.1:41234"));
        assert!(p.check(addr("127.0.0.1:41234")).is_err());
    }

    #[tokio::test]
    async fn resolve_drops_refused_targets_and_names_the_rule_when_none_is_left() {
        let resolver = SipResolver::with_nameservers(vec![]);
        let p = policy("169.254.0.0/16", None);
        let a = Addressing::of(&registration("169.254.1.1", None, None)).unwrap();
        let err = a.resolve(&resolver, &p).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination 169.254.1.1:5060 refused by outbound.deny_networks (169.254.0.0/16)"
        );
        let a = Addressing::of(&registration("10.0.0.1", None, None)).unwrap();
        assert_eq!(a.resolve(&resolver, &p).await.unwrap().len(), 1);
    }
}
