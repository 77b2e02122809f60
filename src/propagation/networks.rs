//! [`Networks`]: IP networks in CIDR notation, parsed strictly, for
//! [`Trust::peers_in`](super::Trust::peers_in).

use std::fmt;
use std::net::IpAddr;

use crate::error::Error;

/// The setting named in a parse error.
const SETTING: &str = "Trust::peers_in";

/// One network: its address and mask, IPv4 in the low 32 bits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Net {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
}

/// A set of IP networks (`10.0.0.0/8`, `fd00::/8`, or a single address): whether a peer
/// address is inside one. An IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`, what a dual-stack
/// listener reports) is matched as its IPv4 address.
///
/// ```
/// let nets = paytrace::propagation::Networks::parse(["10.0.0.0/8", "fd00::/8", "192.0.2.7"])?;
/// assert!(nets.contains("10.20.30.40".parse().unwrap()));
/// assert!(nets.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(nets.contains("192.0.2.7".parse().unwrap()));
/// assert!(!nets.contains("203.0.113.9".parse().unwrap()));
/// # Ok::<(), paytrace::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Networks {
    nets: Vec<Net>,
}

impl Networks {
    /// Parse networks in CIDR notation; an address without a prefix length is that address
    /// alone.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the value: not an address, a prefix length over 32
    /// (IPv4) or 128 (IPv6), or host bits set (`10.0.0.1/8`: a typo that would trust more, or
    /// less, than meant).
    ///
    /// ```
    /// let err = paytrace::propagation::Networks::parse(["10.0.0.0/33"]).unwrap_err();
    /// assert!(err.to_string().contains("10.0.0.0/33"));
    /// ```
    pub fn parse<I, S>(networks: I) -> Result<Networks, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = networks
            .into_iter()
            .map(|n| parse_one(n.as_ref().trim()))
            .collect::<Result<_, _>>()?;
        Ok(Networks { nets })
    }

    /// Whether `ip` is inside one of the networks.
    ///
    /// ```
    /// let nets = paytrace::propagation::Networks::parse(["127.0.0.0/8"])?;
    /// assert!(nets.contains(std::net::Ipv4Addr::LOCALHOST.into()));
    /// # Ok::<(), paytrace::Error>(())
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| match (*net, ip) {
            (Net::V4 { addr, mask }, IpAddr::V4(v4)) => u32::from(v4) & mask == addr,
            (Net::V6 { addr, mask }, IpAddr::V6(v6)) => u128::from(v6) & mask == addr,
            _ => false,
        })
    }
}

fn parse_one(value: &str) -> Result<Net, Error> {
    let invalid = |reason: String| Error::invalid(SETTING, value, reason);
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| invalid(format!("`{addr}` is not an IP address")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| invalid(format!("the prefix length must be 0 to {max}")))?,
    };
    let net = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Net::V4 {
                addr: u32::from(v4) & mask,
                mask,
            }
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Net::V6 {
                addr: u128::from(v6) & mask,
                mask,
            }
        }
    };
    let exact = match (net, ip) {
        (Net::V4 { addr, .. }, IpAddr::V4(v4)) => addr == u32::from(v4),
        (Net::V6 { addr, .. }, IpAddr::V6(v6)) => addr == u128::from(v6),
        _ => false,
    };
    if !exact {
        return Err(invalid("host bits are set after the prefix length".into()));
    }
    Ok(net)
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4 { addr, mask } => {
                write!(
                    f,
                    "{}/{}",
                    std::net::Ipv4Addr::from(addr),
                    mask.count_ones()
                )
            }
            Net::V6 { addr, mask } => {
                write!(
                    f,
                    "{}/{}",
                    std::net::Ipv6Addr::from(addr),
                    mask.count_ones()
                )
            }
        }
    }
}

impl fmt::Debug for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.nets).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_match_their_networks_only() {
        let nets =
            Networks::parse(["10.0.0.0/8", "192.168.1.0/24", "fd00::/8", "0.0.0.0/0"]).unwrap();
        assert!(nets.contains(ip("203.0.113.1")), "0.0.0.0/0 is every IPv4");
        let nets = Networks::parse(["10.0.0.0/8", "192.168.1.0/24", "fd00::/8"]).unwrap();
        assert!(nets.contains(ip("10.255.255.255")));
        assert!(nets.contains(ip("192.168.1.200")));
        assert!(!nets.contains(ip("192.168.2.1")));
        assert!(!nets.contains(ip("11.0.0.1")));
        assert!(nets.contains(ip("fd12:3456::1")));
        assert!(!nets.contains(ip("fe80::1")));
        assert!(nets.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(
            !nets.contains(ip("::a01:203")),
            "IPv4-compatible is not mapped"
        );
        assert_eq!(
            format!("{nets:?}"),
            "[10.0.0.0/8, 192.168.1.0/24, fd00::/8]"
        );
        let host = Networks::parse(["2001:db8::7", " 127.0.0.1 "]).unwrap();
        assert!(host.contains(ip("2001:db8::7")) && !host.contains(ip("2001:db8::8")));
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        assert!(!Networks::default().contains(ip("127.0.0.1")));
    }

    #[test]
    fn errors_name_the_bad_value() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.1/8",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "example.com",
            "",
        ] {
            match Networks::parse(["127.0.0.0/8", bad]) {
                Err(Error::InvalidConfig { name, value, .. }) => {
                    assert_eq!((name, value.as_str()), (SETTING, bad.trim()));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
