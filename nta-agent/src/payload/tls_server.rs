//! What a TLS server sends first: its ServerHello and, before TLS 1.3, its
//! certificates in the clear — the buffers of Suricata's `tls.certs`,
//! `tls.cert_subject`, `tls.cert_issuer` and `tls.cert_serial`.
//!
//! Read as tolerantly as the ClientHello (see [`super::tls`]): a sample
//! stops at 512 bytes, and a certificate chain runs to kilobytes, but the
//! leaf certificate's issuer and subject come early in it. The DER is
//! walked element by element, and each field is taken only when its bytes
//! are whole; the names are then formatted by `x509-parser`, the crate
//! Suricata itself formats them with, so that rules see the same text.

use x509_parser::{prelude::FromDer, x509::X509Name};

const HANDSHAKE: u8 = 0x16;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;

/// DER tags walked through.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version` at the head of a TBSCertificate.
const VERSION: u8 = 0xa0;

/// The server's first handshake messages, as far as the bytes go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHandshake {
    /// The ServerHello's (legacy) version, if it was there.
    pub version: Option<u16>,
    /// Each certificate's DER, leaf first; see [`ServerHandshake::cut`].
    pub certs: Vec<Vec<u8>>,
    /// Whether the last of `certs` is cut short (the bytes ended in it).
    pub cut: bool,
    /// The leaf's subject, e.g. `C=US, O=Example, CN=www.example.com`.
    pub subject: Option<String>,
    /// The leaf's issuer, in the same form.
    pub issuer: Option<String>,
    /// The leaf's serial number as upper-case hex bytes joined by `:`.
    pub serial: Option<String>,
}

/// The server handshake `data` starts with: a TLS handshake record whose
/// first message is a ServerHello or a Certificate. `None` otherwise.
pub fn parse_server_handshake(data: &[u8]) -> Option<ServerHandshake> {
    let (messages, _) = handshake_bytes(data)?;
    if !matches!(messages.first(), Some(&SERVER_HELLO | &CERTIFICATE)) {
        return None;
    }
    let mut out = ServerHandshake::default();
    let mut rest = &messages[..];
    while let [kind, l0, l1, l2, body @ ..] = rest {
        let len = usize::from(*l0) << 16 | usize::from(*l1) << 8 | usize::from(*l2);
        let whole = body.len() >= len;
        let body = &body[..len.min(body.len())];
        match *kind {
            SERVER_HELLO => {
                out.version = body.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]]));
            }
            CERTIFICATE => {
                certificates(body, &mut out);
                break;
            }
            _ => {}
        }
        if !whole {
            break;
        }
        rest = &rest[4 + len..];
    }
    if let Some(leaf) = out.certs.first() {
        let fields = leaf_fields(leaf);
        (out.serial, out.issuer, out.subject) = (fields.serial, fields.issuer, fields.subject);
    }
    Some(out)
}

/// The handshake messages of the records `data` starts with, put back
/// together (a message may span records), and whether the last record was
/// cut short. `None` unless `data` starts with a handshake record.
fn handshake_bytes(data: &[u8]) -> Option<(Vec<u8>, bool)> {
    if !matches!(data, [HANDSHAKE, 3, ..]) {
        return None;
    }
    let mut messages = Vec::new();
    let mut rest = data;
    while let [HANDSHAKE, 3, _, l0, l1, body @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if body.len() < len {
            messages.extend_from_slice(body);
            return Some((messages, true));
        }
        messages.extend_from_slice(&body[..len]);
        rest = &body[len..];
    }
    Some((messages, false))
}

/// The certificates of a Certificate message's `body` (TLS 1.2: a 3-byte
/// list length, then each certificate with a 3-byte length).
fn certificates(body: &[u8], out: &mut ServerHandshake) {
    let mut rest = body.get(3..).unwrap_or_default();
    while let [l0, l1, l2, der @ ..] = rest {
        let len = usize::from(*l0) << 16 | usize::from(*l1) << 8 | usize::from(*l2);
        if len == 0 {
            break;
        }
        if der.len() < len {
            if !der.is_empty() {
                out.certs.push(der.to_vec());
                out.cut = true;
            }
            return;
        }
        out.certs.push(der[..len].to_vec());
        rest = &der[len..];
    }
}

/// A DER element's tag, header length and content length, if its header
/// is whole (the content may not be).
fn header(der: &[u8]) -> Option<(u8, usize, usize)> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = rest
        .get(..n)?
        .iter()
        .fold(0usize, |len, &b| len << 8 | usize::from(b));
    Some((tag, 2 + n, len))
}

/// A cursor over DER elements that may end anywhere.
struct Elements<'a>(&'a [u8]);

impl<'a> Elements<'a> {
    /// The next element, header and content, if its tag is `tag` and it is
    /// whole.
    fn next(&mut self, tag: u8) -> Option<(&'a [u8], &'a [u8])> {
        let (t, head, len) = header(self.0)?;
        let end = head.checked_add(len)?;
        if t != tag || self.0.len() < end {
            return None;
        }
        let (element, rest) = self.0.split_at(end);
        self.0 = rest;
        Some((element, &element[head..]))
    }

    /// Enters a constructed element of `tag` whose content may be cut.
    fn enter(&mut self, tag: u8) -> Option<Elements<'a>> {
        let (t, head, _) = header(self.0)?;
        (t == tag).then(|| Elements(self.0.get(head..).unwrap_or_default()))
    }
}

/// A leaf certificate's fields that rules look at.
#[derive(Default)]
struct Leaf {
    serial: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
}

/// The leaf's serial, issuer and subject, each if its bytes are whole.
fn leaf_fields(der: &[u8]) -> Leaf {
    let mut leaf = Leaf::default();
    let Some(mut tbs) = Elements(der)
        .enter(SEQUENCE)
        .and_then(|mut cert| cert.enter(SEQUENCE))
    else {
        return leaf;
    };
    if header(tbs.0).is_some_and(|(tag, _, _)| tag == VERSION) && tbs.next(VERSION).is_none() {
        return leaf;
    }
    let Some((_, serial)) = tbs.next(INTEGER) else {
        return leaf;
    };
    leaf.serial = Some(hex_bytes(serial));
    // The signature algorithm, then the issuer.
    let Some((issuer, _)) = tbs.next(SEQUENCE).and_then(|_| tbs.next(SEQUENCE)) else {
        return leaf;
    };
    leaf.issuer = name(issuer);
    // The validity, then the subject.
    leaf.subject = tbs
        .next(SEQUENCE)
        .and_then(|_| tbs.next(SEQUENCE))
        .and_then(|(subject, _)| name(subject));
    leaf
}

/// A Name as Suricata writes it (`x509-parser`'s form).
fn name(der: &[u8]) -> Option<String> {
    X509Name::from_der(der).ok().map(|(_, n)| n.to_string())
}

/// `0A:1B:...`, as Suricata writes a serial number.
fn hex_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};

    use super::*;

    /// A self-signed certificate's DER, for `cn` in `org`, with `serial`.
    pub(crate) fn certificate(cn: &str, org: &str, serial: &[u8]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec![cn.to_owned()]).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, org);
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from_slice(serial));
        let key = KeyPair::generate().expect("a key");
        params
            .self_signed(&key)
            .expect("a certificate")
            .der()
            .to_vec()
    }

    /// A TLS 1.2 server's ServerHello and Certificate messages in one
    /// record, as servers send them.
    pub(crate) fn server_flight(certs: &[&[u8]]) -> Vec<u8> {
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[5; 32]);
        hello.extend_from_slice(&[0, 0xc0, 0x2f, 0, 0, 0]);
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        let mut messages = Vec::new();
        for (kind, b) in [(SERVER_HELLO, &hello), (CERTIFICATE, &body)] {
            messages.push(kind);
            messages.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
            messages.extend_from_slice(b);
        }
        let mut record = vec![HANDSHAKE, 3, 3];
        record.extend_from_slice(&(messages.len() as u16).to_be_bytes());
        record.extend_from_slice(&messages);
        record
    }

    #[test]
    fn the_leafs_subject_issuer_and_serial_are_read_as_suricata_writes_them() {
        let leaf = certificate("www.evil.test", "Evil Corp", &[0x0a, 0x1b, 0xfe]);
        let other = certificate("ca.test", "Some CA", &[1]);
        let flight = server_flight(&[&leaf, &other]);
        let got = parse_server_handshake(&flight).expect("a server handshake");
        assert_eq!(got.version, Some(0x0303));
        assert_eq!(got.certs, vec![leaf, other]);
        assert!(!got.cut);
        let subject = "C=US, O=Evil Corp, CN=www.evil.test";
        assert_eq!(got.subject.as_deref(), Some(subject));
        assert_eq!(got.issuer.as_deref(), Some(subject));
        assert_eq!(got.serial.as_deref(), Some("0A:1B:FE"));
    }

    #[test]
    fn a_flight_cut_short_gives_the_fields_whose_bytes_are_whole() {
        let leaf = certificate("cut.evil.test", "Evil Corp", &[2]);
        let flight = server_flight(&[&leaf]);
        let subject_end = {
            let at = flight
                .windows(13)
                .position(|w| w == b"cut.evil.test")
                .expect("the name is in the certificate");
            // The subject is the second name: its CN is the last.
            flight[at + 13..]
                .windows(13)
                .position(|w| w == b"cut.evil.test")
                .map_or(at + 13, |p| at + 13 + p + 13)
        };
        let got = parse_server_handshake(&flight[..subject_end]).expect("a server handshake");
        assert!(got.cut);
        assert_eq!(got.certs.len(), 1);
        assert!(got.issuer.is_some() && got.subject.is_some(), "{got:?}");
        let short = parse_server_handshake(&flight[..subject_end - 1]).expect("a handshake");
        assert!(
            short.issuer.is_some() && short.subject.is_none(),
            "{short:?}"
        );
        for n in 0..flight.len() {
            let _ = parse_server_handshake(&flight[..n]);
        }
    }

    #[test]
    fn other_bytes_are_not_a_server_handshake() {
        assert_eq!(parse_server_handshake(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        let hello = crate::payload::tls::tests::client_hello("a.test", &[]);
        assert_eq!(parse_server_handshake(&hello), None);
        let mut next = crate::payload::xorshift(11);
        for _ in 0..10_000 {
            let mut noise: Vec<u8> = (0..256).map(|_| next() as u8).collect();
            noise[..3].copy_from_slice(&[HANDSHAKE, 3, 3]);
            noise[5] = CERTIFICATE;
            let _ = parse_server_handshake(&noise);
        }
    }
}
