//! What this machine is called, where it can be reached on the LAN, and which of its ports are free.

use std::net::Ipv4Addr;

/// Interface name prefixes of container and VM bridges; their addresses come and go.
const VIRTUAL_PREFIXES: &[&str] = &[
    "docker", "br-", "veth", "virbr", "cni", "flannel", "cali", "vxlan", "weave", "kube", "lxc",
    "lxd", "podman",
];

/// The machine's hostname, when it is usable as a DNS name in a certificate.
pub fn hostname() -> Option<String> {
    let name = gethostname::gethostname().into_string().ok()?;
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    is_dns_name(&name).then_some(name)
}

/// The machine's current non-loopback, non-link-local IPv4 addresses on real
/// interfaces (container bridges excluded), sorted and without repeats.
pub fn lan_ipv4() -> Vec<Ipv4Addr> {
    let mut addrs: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|iface| !VIRTUAL_PREFIXES.iter().any(|p| iface.name.starts_with(p)))
        .filter_map(|iface| match iface.ip() {
            std::net::IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => Some(v4),
            _ => None,
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Whether `name` is a DNS name a certificate may carry (a leading `*.` is allowed).
pub fn is_dns_name(name: &str) -> bool {
    let body = name.strip_prefix("*.").unwrap_or(name);
    !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !body.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Why this machine's `port` (on every IPv4 address) cannot be bound now, or `None` when
/// it is free. Ports below 1024 need root here; an engine binds them, so only it can tell,
/// and they count as free.
pub fn host_port_busy(port: u16) -> Option<String> {
    match std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port)) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => None,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Some("another program on this machine is listening on it".into())
        }
        Err(e) => Some(format!("it cannot be bound ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        for ok in [
            "localhost",
            "cht.example.org",
            "*.example.org",
            "a-b.c",
            "x1",
        ] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a..b", "a_b.c", "1.2.3.4", "*.", "a b", "é.org",
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn lan_addresses_exclude_loopback() {
        assert!(lan_ipv4().iter().all(|a| !a.is_loopback()));
    }
}
