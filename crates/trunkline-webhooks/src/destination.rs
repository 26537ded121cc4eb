//! Where a webhook may be sent: never to an address in `outbound.deny_networks`. A host name is
//! resolved here ([`DenyingResolver`], the HTTP client's resolver), and denied addresses are
//! dropped before any connection is tried; an IP literal in the URL is checked before the
//! request ([`check_literal`]), as the client does not resolve those. No address left is a
//! [`Refused`] error, which the delivery reports as a refused attempt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination the deny list refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {addr} refused by outbound.deny_networks ({network})")]
pub struct Refused {
    pub addr: IpAddr,
    pub network: IpNet,
}

/// The denied networks.
#[derive(Debug, Clone, Default)]
pub struct DenyList(Arc<Vec<IpNet>>);

impl DenyList {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(Arc::new(networks))
    }

    /// `Err` naming the rule when `addr` (an IPv4-mapped IPv6 address as the IPv4 address it
    /// maps) is in a denied network.
    pub fn check(&self, addr: IpAddr) -> Result<(), Refused> {
        let addr = canonical(addr);
        match self.0.iter().find(|network| network.contains(&addr)) {
            Some(network) => Err(Refused {
                addr,
                network: *network,
            }),
            None => Ok(()),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The URL's host when it is an IP literal, checked against the deny list.
pub fn check_literal(url: &reqwest::Url, deny: &DenyList) -> Result<(), Refused> {
    match url.host() {
        Some(url::Host::Ipv4(v4)) => deny.check(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => deny.check(IpAddr::V6(v6)),
        _ => Ok(()),
    }
}

/// Resolves with the system's resolver and drops the addresses the deny list refuses.
#[derive(Debug, Clone)]
pub struct DenyingResolver {
    pub deny: DenyList,
}

impl Resolve for DenyingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = self.deny.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let (allowed, refused) = allowed(found, &deny);
            if allowed.is_empty() {
                if let Some(refused) = refused {
                    return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
                }
                return Err("the name has no address".into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses the deny list allows, and the first refusal if any.
fn allowed(found: Vec<SocketAddr>, deny: &DenyList) -> (Vec<SocketAddr>, Option<Refused>) {
    let mut refused = None;
    let allowed = found
        .into_iter()
        .filter(|addr| match deny.check(addr.ip()) {
            Ok(()) => true,
            Err(refusal) => {
                refused.get_or_insert(refusal);
                false
            }
        })
        .collect();
    (allowed, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(list: &[&str]) -> DenyList {
        DenyList::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn denied_networks_are_refused_mapped_addresses_as_ipv4() {
        let deny = deny(&["127.0.0.0/8", "fe80::/10"]);
        let refused = deny.check("127.0.0.2".parse().unwrap()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "destination 127.0.0.2 refused by outbound.deny_networks (127.0.0.0/8)"
        );
        assert!(deny.check("::ffff:127.0.0.1".parse().unwrap()).is_err());
        assert!(deny.check("fe80::1".parse().unwrap()).is_err());
        assert!(deny.check("192.0.2.1".parse().unwrap()).is_ok());
        assert!(deny.check("::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn literals_in_urls_are_checked_names_are_left_to_the_resolver() {
        let deny = deny(&["127.0.0.0/8", "::1/128"]);
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(check_literal(&url("http://127.0.0.1:9/x"), &deny).is_err());
        assert!(check_literal(&url("http://[::1]/"), &deny).is_err());
        assert!(check_literal(&url("http://[::ffff:127.0.0.1]/"), &deny).is_err());
        assert!(check_literal(&url("http://localhost/"), &deny).is_ok());
        assert!(check_literal(&url("http://192.0.2.1/"), &deny).is_ok());
    }

    #[test]
    fn resolved_addresses_in_denied_networks_are_dropped() {
        let deny = deny(&["127.0.0.0/8"]);
        let found: Vec<SocketAddr> =
            vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let (allowed_addrs, refused) = allowed(found, &deny);
        assert_eq!(allowed_addrs, ["[::1]:0".parse().unwrap()]);
        assert_eq!(
            refused.unwrap().addr,
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn a_name_with_only_denied_addresses_is_refused() {
        let resolver = DenyingResolver {
            deny: deny(&["127.0.0.0/8", "::1/128"]),
        };
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(err) => err,
        };
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
    }
}
