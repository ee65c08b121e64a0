//! Where a URL fetch may connect: the defence against server-side request forgery.
//!
//! An uploader chooses the URL, so without this a screening request could make
//! coverguard read the cloud metadata service, an admin port on loopback or a host
//! on the private network. A destination is allowed only when its scheme is
//! http(s), its port is on the port list and every address it resolves to is
//! public (or inside a network the operator allow-listed).
//!
//! The check sits where the address is chosen, not before: the HTTP client's
//! resolver ([`GuardedResolver`]) hands the connector only the addresses it
//! checked, so a name cannot resolve to a public address for the check and a
//! private one for the connection (DNS rebinding). IP literals never reach a
//! resolver, so [`DestinationPolicy::check_url`] checks them, for the first
//! request and for every redirect hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

/// The ports fetched by default: the schemes' own.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// What URL screening may connect to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "DestinationFile")]
pub struct DestinationPolicy {
    /// Networks fetched even though they are not public, e.g. an internal image store
    /// (`["10.20.0.0/16"]`). Empty by default: only public addresses.
    pub allow_networks: Vec<IpNet>,
    /// Ports a URL may name. Default: 80 and 443.
    pub allow_ports: Vec<u16>,
}

/// `[url_fetch]` as written: its lists widen the default, as `scan --allow-port` does, so
/// allowing one internal port never takes 80 and 443 away from public URLs.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
struct DestinationFile {
    allow_networks: Vec<IpNet>,
    allow_ports: Vec<u16>,
}

impl From<DestinationFile> for DestinationPolicy {
    fn from(file: DestinationFile) -> Self {
        DestinationPolicy::widened(file.allow_networks, &file.allow_ports)
    }
}

impl Default for DestinationPolicy {
    fn default() -> Self {
        DestinationPolicy {
            allow_networks: Vec::new(),
            allow_ports: DEFAULT_PORTS.to_vec(),
        }
    }
}

/// Why a destination was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("scheme {0} is not http or https")]
    Scheme(String),
    #[error("port {0} is not an allowed port (allow_ports)")]
    Port(u16),
    #[error("{host} is {class}, which is not fetched unless allow-listed (allow_networks)")]
    Address { host: String, class: &'static str },
    #[error("{0} resolves to no address")]
    NoAddress(String),
}

impl DestinationPolicy {
    /// The default policy widened by `networks` and `ports` (the web ports stay allowed).
    pub fn widened(networks: Vec<IpNet>, ports: &[u16]) -> Self {
        let mut allow_ports = [&DEFAULT_PORTS[..], ports].concat();
        allow_ports.sort_unstable();
        allow_ports.dedup();
        DestinationPolicy {
            allow_networks: networks,
            allow_ports,
        }
    }

    /// The default policy plus one allow-listed server (address and port): what a test
    /// or a local development setup needs for its own image server.
    pub fn allowing(server: SocketAddr) -> Self {
        DestinationPolicy::widened(vec![IpNet::from(server.ip())], &[server.port()])
    }

    /// Check an address; `host` names it in the refusal.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_networks.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match non_public_class(ip) {
            None => Ok(()),
            Some(class) => Err(Refusal::Address {
                host: host.to_string(),
                class,
            }),
        }
    }

    /// Check what can be checked from the URL itself: scheme, port and an IP-literal host.
    /// A host name is checked when it is resolved (see [`GuardedResolver`]).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_string()));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.allow_ports.contains(&port) {
            return Err(Refusal::Port(port));
        }
        // The URL parser has already normalised `0x7f.1`, `2130706433` and the like to an address.
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refusal::NoAddress(url.to_string())),
        }
    }

    /// Check every address a name resolved to: one non-public address refuses the name,
    /// since a name mixing public and private answers is itself suspect.
    pub fn check_resolved(&self, name: &str, addrs: &[SocketAddr]) -> Result<(), Refusal> {
        if addrs.is_empty() {
            return Err(Refusal::NoAddress(name.to_string()));
        }
        addrs
            .iter()
            .try_for_each(|addr| self.check_ip(name, addr.ip()))
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
///
/// IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged
/// by the address they carry; Teredo hides its address and is refused outright.
pub fn non_public_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        (0, _, _) => "an unspecified (\"this network\") address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        // Carrier-grade NAT; also where some clouds put their metadata service.
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        // Link-local, including the cloud metadata service 169.254.169.254.
        (169, 254, _) => "a link-local (cloud metadata) address",
        (192, 0, 0) => "an IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 88, 99) => "a 6to4 relay address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        _ => return None,
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        // IPv4-compatible (deprecated) ::a.b.c.d
        [0, 0, 0, 0, 0, 0, hi, lo] => {
            Some(v4_class(embedded(hi, lo)).unwrap_or("an IPv4-compatible address"))
        }
        // NAT64 well-known prefix 64:ff9b::/96: judged by the IPv4 address it translates to.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4_class(embedded(hi, lo)),
        // Local-use NAT64 64:ff9b:1::/48 reaches a site's own translator.
        [0x64, 0xff9b, 1, ..] => Some("a local NAT64 address"),
        // 6to4 2002::/16 embeds an IPv4 address in its next 32 bits.
        [0x2002, hi, lo, ..] => v4_class(embedded(hi, lo)),
        // Teredo 2001::/32 obscures the address it tunnels to.
        [0x2001, 0, ..] => Some("a Teredo address"),
        [0x2001, 0xdb8, ..] => Some("a documentation address"),
        [0x0100, 0, 0, 0, ..] => Some("a discard-only address"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("a unique local (private) address"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("a link-local address"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("a site-local address"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("a multicast address"),
        // Only global unicast (2000::/3) is routed on the internet.
        [first, ..] if first & 0xe000 != 0x2000 => Some("a reserved address"),
        _ => None,
    }
}

/// Looks names up with the system resolver.
#[derive(Debug, Default)]
pub struct SystemLookup;

/// How names become addresses; a trait so tests can answer like a hostile DNS server.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(
        &self,
        name: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;
}

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        name: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
    {
        Box::pin(async move { Ok(tokio::net::lookup_host((name.as_str(), 0)).await?.collect()) })
    }
}

/// The HTTP client's resolver: resolves, checks every address, and gives the connector
/// exactly the addresses it checked.
pub struct GuardedResolver {
    pub policy: Arc<DestinationPolicy>,
    pub lookup: Arc<dyn Lookup>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let lookup = Arc::clone(&self.lookup);
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = lookup.lookup(name.clone()).await?;
            policy.check_resolved(&name, &addrs)?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<&'static str> {
        non_public_class(ip.parse().unwrap())
    }

    #[test]
    fn non_public_addresses_are_named_and_public_ones_pass() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.100.100.200",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(class(ip).is_some(), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.253.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(class(ip), None, "{ip} is public");
        }
        assert_eq!(
            class("169.254.169.254"),
            Some("a link-local (cloud metadata) address")
        );
    }

    #[test]
    fn urls_are_checked_for_scheme_port_and_literal_address() {
        let policy = DestinationPolicy::default();
        let check = |u: &str| policy.check_url(&reqwest::Url::parse(u).unwrap());
        assert_eq!(check("https://images.example/a.png"), Ok(()));
        assert_eq!(check("http://8.8.8.8/a.png"), Ok(()));
        assert_eq!(
            check("ftp://images.example/a"),
            Err(Refusal::Scheme("ftp".into()))
        );
        assert_eq!(
            check("file:///etc/passwd"),
            Err(Refusal::Scheme("file".into()))
        );
        assert_eq!(check("http://images.example:22/"), Err(Refusal::Port(22)));
        assert_eq!(
            check("https://images.example:8443/"),
            Err(Refusal::Port(8443))
        );
        // Every spelling of loopback the URL parser knows ends up as the same address.
        for u in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
        ] {
            assert!(
                matches!(check(u), Err(Refusal::Address { .. })),
                "{u} must be refused, got {:?}",
                check(u)
            );
        }
    }

    #[test]
    fn configured_ports_and_networks_widen_the_default() {
        let policy: DestinationPolicy =
            toml::from_str("allow_ports = [8080]\nallow_networks = [\"10.20.0.0/16\"]").unwrap();
        let check = |u: &str| policy.check_url(&reqwest::Url::parse(u).unwrap());
        // Allowing one internal port keeps every public URL working.
        assert_eq!(check("https://images.example/a.png"), Ok(()));
        assert_eq!(check("http://images.example/a.png"), Ok(()));
        assert_eq!(check("http://10.20.3.4:8080/a.png"), Ok(()));
        assert_eq!(check("http://images.example:22/"), Err(Refusal::Port(22)));
        let empty: DestinationPolicy = toml::from_str("").unwrap();
        assert_eq!(empty, DestinationPolicy::default());
        assert!(toml::from_str::<DestinationPolicy>("allow_port = [1]").is_err());
    }

    #[test]
    fn allow_listed_networks_and_ports_are_fetched() {
        let policy = DestinationPolicy {
            allow_networks: vec!["10.20.0.0/16".parse().unwrap()],
            allow_ports: vec![80, 8080],
        };
        let check = |u: &str| policy.check_url(&reqwest::Url::parse(u).unwrap());
        assert_eq!(check("http://10.20.3.4:8080/a.png"), Ok(()));
        assert!(matches!(
            check("http://10.21.0.1/"),
            Err(Refusal::Address { .. })
        ));
        assert_eq!(check("https://images.example/"), Err(Refusal::Port(443)));
        let test_server = DestinationPolicy::allowing("127.0.0.1:39001".parse().unwrap());
        let check = |u: &str| test_server.check_url(&reqwest::Url::parse(u).unwrap());
        assert_eq!(check("http://127.0.0.1:39001/a.png"), Ok(()));
        assert!(matches!(
            check("http://127.0.0.2:39001/"),
            Err(Refusal::Address { .. })
        ));
        assert_eq!(check("http://127.0.0.1:39002/"), Err(Refusal::Port(39002)));
    }

    #[test]
    fn a_name_with_any_non_public_answer_is_refused() {
        let policy = DestinationPolicy::default();
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        assert_eq!(
            policy.check_resolved("ok.example", &[addr("8.8.8.8")]),
            Ok(())
        );
        assert!(policy
            .check_resolved("mixed.example", &[addr("8.8.8.8"), addr("10.0.0.1")])
            .is_err());
        assert_eq!(
            policy.check_resolved("none.example", &[]),
            Err(Refusal::NoAddress("none.example".into()))
        );
    }
}
