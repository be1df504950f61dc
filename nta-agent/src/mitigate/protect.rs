//! Addresses nta never blocks: cutting them off would hurt the host or lock
//! out the people running it.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{Mutex, PoisonError},
};

use ipnet::IpNet;

/// API clients remembered: the last few distinct addresses.
const CLIENTS: usize = 64;

/// The addresses of recent API clients (who may be the operator, or the
/// dashboard they watch from).
#[derive(Debug, Default)]
pub struct ApiClients {
    recent: Mutex<VecDeque<IpAddr>>,
}

impl ApiClients {
    pub fn saw(&self, addr: IpAddr) {
        let addr = canonical(addr);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = recent.iter().position(|a| *a == addr) {
            recent.remove(i);
        }
        recent.push_front(addr);
        recent.truncate(CLIENTS);
    }

    pub fn all(&self) -> Vec<IpAddr> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

/// Why a network may not be blocked, if it may not.
pub fn refusal(
    net: &IpNet,
    allowlist: &[IpNet],
    own: &[IpAddr],
    clients: &[IpAddr],
) -> Option<String> {
    if contains_loopback(net) {
        return Some(format!("{net} includes loopback addresses"));
    }
    if let Some(addr) = own.iter().find(|a| net.contains(&canonical(**a))) {
        return Some(format!("{net} includes {addr}, an address of this host"));
    }
    if let Some(addr) = clients.iter().find(|a| net.contains(*a)) {
        return Some(format!(
            "{net} includes {addr}, a client of this API (blocking it would lock it out)"
        ));
    }
    if let Some(allowed) = allowlist.iter().find(|a| overlaps(net, a)) {
        return Some(format!("{net} overlaps the allowlist entry {allowed}"));
    }
    None
}

fn contains_loopback(net: &IpNet) -> bool {
    match net {
        // Inside 127.0.0.0/8, or wide enough to hold it.
        IpNet::V4(net) => net.network().octets()[0] == 127 || net.contains(&Ipv4Addr::LOCALHOST),
        IpNet::V6(net) => net.contains(&Ipv6Addr::LOCALHOST),
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// IPv4-mapped IPv6 addresses as IPv4, so that one check serves both.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// This host's addresses, on every interface.
pub fn own_addresses() -> Vec<IpAddr> {
    let mut addrs = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return addrs;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet
        // freed; `ifa_addr` is null or points at a sockaddr of its family.
        unsafe {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        addrs.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        addrs.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cursor = (*cursor).ifa_next;
        }
    }
    // SAFETY: frees the list getifaddrs allocated, once.
    unsafe { libc::freeifaddrs(list) };
    addrs.sort();
    addrs.dedup();
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_own_clients_and_allowlist_are_refused_with_the_reason() {
        let own: Vec<IpAddr> = vec!["198.18.0.1".parse().unwrap()];
        let clients: Vec<IpAddr> = vec!["203.0.113.9".parse().unwrap()];
        let allow = vec![net("192.0.2.0/24")];
        let why = |n: &str| refusal(&net(n), &allow, &own, &clients);
        assert!(why("127.0.0.1/32").unwrap().contains("loopback"));
        assert!(why("0.0.0.0/0").unwrap().contains("loopback"));
        assert!(why("::1/128").unwrap().contains("loopback"));
        assert!(
            why("198.18.0.0/24")
                .unwrap()
                .contains("198.18.0.1, an address of this host")
        );
        assert!(
            why("203.0.113.9/32")
                .unwrap()
                .contains("client of this API")
        );
        assert!(
            why("192.0.2.128/25")
                .unwrap()
                .contains("allowlist entry 192.0.2.0/24")
        );
        assert!(why("192.0.0.0/8").unwrap().contains("allowlist"));
        assert_eq!(why("198.18.0.2/32"), None);
        assert_eq!(why("2001:db8::/48"), None);
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        let own = vec![IpAddr::V6("::ffff:198.18.0.1".parse().unwrap())];
        assert!(refusal(&net("198.18.0.1/32"), &[], &own, &[]).is_some());
    }

    #[test]
    fn clients_are_remembered_most_recent_first_and_bounded() {
        let clients = ApiClients::default();
        for i in 0..100u8 {
            clients.saw(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)));
        }
        clients.saw(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50)));
        let all = clients.all();
        assert_eq!(all.len(), CLIENTS);
        assert_eq!(all[0], IpAddr::V4(Ipv4Addr::new(10, 0, 0, 50)));
    }

    #[test]
    fn own_addresses_include_loopback() {
        assert!(own_addresses().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
