//! The application protocol of a flow, told by its first bytes rather
//! than its port, as Suricata's protocol detection does: HTTP on 8888 is
//! HTTP, and SSH on 443 is SSH.

use super::{Inspected, Transport, dns, http, tls};

/// An application protocol nta recognises, with EVE's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    Dns,
    Tls,
    Ssh,
}

impl AppProto {
    pub const ALL: [AppProto; 4] = [AppProto::Http, AppProto::Dns, AppProto::Tls, AppProto::Ssh];

    /// EVE's `app_proto` value.
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Dns => "dns",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// HTTP/1.x responses start with the version; requests are recognised by
/// the HTTP parser (a method, a target, a version).
const HTTP_RESPONSE: &[u8] = b"HTTP/1.";
/// RFC 4253 §4.2: "SSH-protoversion-softwareversion"; 1.99 is a 2.0 server
/// that speaks 1.x too.
const SSH_BANNERS: [&[u8]; 2] = [b"SSH-2.0-", b"SSH-1.99-"];

/// The protocol the first bytes of one direction of a flow speak, if
/// nta knows it. DNS is taken only when the whole message parses, so that
/// arbitrary UDP payloads are not called DNS.
pub fn detect(transport: Transport, data: &[u8]) -> Option<AppProto> {
    match transport {
        Transport::Udp => dns_message(dns::parse_udp(data)).then_some(AppProto::Dns),
        Transport::Tcp => {
            if data.starts_with(HTTP_RESPONSE) || http::parse_request(data).is_some() {
                Some(AppProto::Http)
            } else if tls::is_handshake(data) {
                Some(AppProto::Tls)
            } else if SSH_BANNERS.iter().any(|b| data.starts_with(b)) {
                Some(AppProto::Ssh)
            } else if dns_message(dns::parse_tcp(data)) {
                Some(AppProto::Dns)
            } else {
                None
            }
        }
    }
}

/// The protocol of a payload already parsed as `inspected`: what its
/// parsers found, then the cheap checks of [`detect`] for the rest, so
/// that nothing is parsed twice.
pub fn of(inspected: &Inspected<'_>) -> Option<AppProto> {
    if inspected.http.is_some() || inspected.http_response.is_some() {
        return Some(AppProto::Http);
    }
    if inspected.tls.is_some() {
        return Some(AppProto::Tls);
    }
    if let Some(dns) = &inspected.dns {
        return plausible_dns(dns).then_some(AppProto::Dns);
    }
    let data = inspected.payload;
    match inspected.transport {
        Transport::Udp
            if inspected.src.port() != super::inspected::DNS_PORT
                && inspected.dst.port() != super::inspected::DNS_PORT =>
        {
            detect(Transport::Udp, data)
        }
        Transport::Udp => None,
        Transport::Tcp => detect(Transport::Tcp, data),
    }
}

/// A DNS message that is plausibly one: a standard query or its answer
/// with at least one question, every question read.
fn dns_message(parsed: Result<dns::DnsMessage, dns::DnsError>) -> bool {
    parsed.is_ok_and(|m| plausible_dns(&m))
}

fn plausible_dns(m: &dns::DnsMessage) -> bool {
    m.opcode == 0 && m.complete && !m.questions.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn each_protocol_is_told_by_its_bytes() {
        let tcp = |d: &[u8]| detect(Transport::Tcp, d);
        assert_eq!(
            tcp(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(AppProto::Http)
        );
        assert_eq!(tcp(b"HTTP/1.1 200 OK\r\n"), Some(AppProto::Http));
        assert_eq!(
            tcp(&crate::payload::tls::tests::client_hello("a.test", &[])),
            Some(AppProto::Tls)
        );
        assert_eq!(tcp(b"SSH-2.0-OpenSSH_9.6\r\n"), Some(AppProto::Ssh));
        let q = query("example.org");
        let mut over_tcp = (q.len() as u16).to_be_bytes().to_vec();
        over_tcp.extend_from_slice(&q);
        assert_eq!(tcp(&over_tcp), Some(AppProto::Dns));
        assert_eq!(detect(Transport::Udp, &q), Some(AppProto::Dns));
        for p in AppProto::ALL {
            assert_eq!(AppProto::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn other_bytes_are_no_protocol() {
        assert_eq!(detect(Transport::Tcp, b"hello there\r\n"), None);
        assert_eq!(detect(Transport::Udp, b"\x00\x01random"), None);
        assert_eq!(detect(Transport::Tcp, b""), None);
        let mut next = crate::payload::xorshift(11);
        let mut dns = 0;
        for _ in 0..20_000 {
            let noise: Vec<u8> = (0..48).map(|_| next() as u8).collect();
            if detect(Transport::Udp, &noise).is_some() {
                dns += 1;
            }
        }
        assert!(dns < 20, "{dns} of 20 000 random datagrams taken for DNS");
    }
}
