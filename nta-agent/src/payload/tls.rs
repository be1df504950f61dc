//! The TLS ClientHello: the server name and version a client asks for.
//!
//! Read tolerantly, field by field, rather than with a parser that wants
//! the whole record: a sample is cut at 512 bytes, and a ClientHello is
//! often longer, yet its server name usually comes early. Whatever the
//! bytes hold up to the cut is used; nothing past it is guessed.

/// What a ClientHello says, as far as the bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The highest version offered: from `supported_versions` when present
    /// (TLS 1.3 hides behind 1.2 in the legacy field), else the legacy one.
    pub version: u16,
    /// The `server_name` extension's host name, if it was within the bytes.
    pub sni: Option<String>,
}

impl ClientHello {
    /// The version as EVE writes it: `TLS 1.2`, `TLS 1.3`, `SSLv3`.
    pub fn version_name(&self) -> String {
        version_name(self.version)
    }
}

/// EVE's name of a TLS version number.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    }
}

const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 1;
const SERVER_NAME: u16 = 0;
const SUPPORTED_VERSIONS: u16 = 43;
/// GREASE values (RFC 8701) look like versions but are not.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a
}

/// A cursor over bytes that may end anywhere.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a `len`-byte length prefix, if whole.
    fn vector(&mut self, len: usize) -> Option<&'a [u8]> {
        let n = self.length(len)?;
        self.take(n)
    }
    /// A vector with a `len`-byte length prefix, as much of it as there is.
    fn vector_cut(&mut self, len: usize) -> Option<&'a [u8]> {
        let n = self.length(len)?.min(self.0.len());
        self.take(n)
    }
    fn length(&mut self, len: usize) -> Option<usize> {
        let prefix = self.take(len)?;
        Some(prefix.iter().fold(0, |n, &b| n << 8 | usize::from(b)))
    }
}

/// Whether `data` starts like a TLS handshake record (any message).
pub fn is_handshake(data: &[u8]) -> bool {
    matches!(data, [HANDSHAKE, 3, minor, _, _, kind, ..] if *minor <= 4 && (1..=2).contains(kind))
}

/// The ClientHello `data` starts with (a TLS record), if it is one.
pub fn parse_client_hello(data: &[u8]) -> Option<ClientHello> {
    let mut b = Bytes(data);
    if b.u8()? != HANDSHAKE || b.u8()? != 3 {
        return None;
    }
    b.take(3)?; // record minor version, length
    if b.u8()? != CLIENT_HELLO {
        return None;
    }
    b.take(3)?; // handshake length
    let mut hello = ClientHello {
        version: b.u16()?,
        sni: None,
    };
    if hello.version >> 8 != 3 {
        return None;
    }
    let extensions = (|| {
        b.take(32)?; // random
        b.vector(1)?; // session id
        b.vector(2)?; // cipher suites
        b.vector(1)?; // compression methods
        b.vector_cut(2)
    })();
    let mut ext = Bytes(extensions.unwrap_or_default());
    while let (Some(kind), Some(body)) = (ext.u16(), ext.vector_cut(2)) {
        match kind {
            SERVER_NAME => hello.sni = server_name(body),
            SUPPORTED_VERSIONS => {
                let mut v = Bytes(Bytes(body).vector_cut(1).unwrap_or_default());
                while let Some(version) = v.u16() {
                    if !is_grease(version) && version > hello.version {
                        hello.version = version;
                    }
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

/// The host name of a `server_name` extension's body, if whole.
fn server_name(body: &[u8]) -> Option<String> {
    let mut list = Bytes(Bytes(body).vector(2)?);
    while let Some(kind) = list.u8() {
        let name = list.vector(2)?;
        if kind == 0 {
            return std::str::from_utf8(name).ok().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello for `sni` offering `versions` (none: no extension).
    pub(crate) fn client_hello(sni: &str, versions: &[u16]) -> Vec<u8> {
        let mut ext = Vec::new();
        let name = sni.as_bytes();
        ext.extend_from_slice(&SERVER_NAME.to_be_bytes());
        ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
        if !versions.is_empty() {
            ext.extend_from_slice(&SUPPORTED_VERSIONS.to_be_bytes());
            ext.extend_from_slice(&((versions.len() * 2 + 1) as u16).to_be_bytes());
            ext.push((versions.len() * 2) as u8);
            for v in versions {
                ext.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[32]);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![CLIENT_HELLO, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut record = vec![HANDSHAKE, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn the_server_name_and_highest_version_are_read() {
        let hello = client_hello("www.example.org", &[0x1a1a, 0x0304, 0x0303]);
        assert!(is_handshake(&hello));
        let parsed = parse_client_hello(&hello).expect("a ClientHello");
        assert_eq!(parsed.sni.as_deref(), Some("www.example.org"));
        assert_eq!(parsed.version_name(), "TLS 1.3");
        let old = parse_client_hello(&client_hello("a.test", &[])).expect("a ClientHello");
        assert_eq!(
            (old.version_name().as_str(), old.sni.as_deref()),
            ("TLS 1.2", Some("a.test"))
        );
    }

    #[test]
    fn a_hello_cut_short_gives_what_it_holds() {
        let hello = client_hello("cut.example", &[0x0304]);
        // Cut inside the supported_versions extension: the name is whole.
        let cut = parse_client_hello(&hello[..hello.len() - 2]).expect("a ClientHello");
        assert_eq!(cut.sni.as_deref(), Some("cut.example"));
        assert_eq!(cut.version, 0x0303);
        // Cut inside the name: no name, no guess.
        let name_at = hello
            .windows(11)
            .position(|w| w == b"cut.example")
            .expect("the name is in the hello");
        let cut = parse_client_hello(&hello[..name_at + 3]).expect("a ClientHello");
        assert_eq!(cut.sni, None);
        for n in 0..hello.len() {
            let _ = parse_client_hello(&hello[..n]);
        }
    }

    #[test]
    fn other_bytes_are_not_a_client_hello() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_client_hello(&[0x16, 3, 3, 0, 4, 2, 0, 0, 0]), None);
        assert!(!is_handshake(b"\x17\x03\x03\x00\x10data"));
        let mut next = crate::payload::xorshift(7);
        for _ in 0..10_000 {
            let noise: Vec<u8> = (0..64).map(|_| next() as u8).collect();
            let _ = parse_client_hello(&noise);
        }
    }
}
