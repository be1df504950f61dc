//! DNS messages from sampled UDP datagrams and TCP segments.
//!
//! Decoding uses `simple-dns` (no dependency beyond `bitflags`). The header
//! fields are read straight from the first 12 bytes, so reserved opcodes and
//! rcodes keep their values. When the whole message does not decode — the
//! sample was cut inside the answers, or an answer's record is malformed —
//! the questions are decoded on their own: they are what rules and the
//! tunnel detector look at.
//!
//! Known gap: `simple-dns` rejects a question whose QTYPE it does not know
//! (e.g. iodine's PRIVATE type 65399), so such a message is not decoded and
//! the tunnel detector does not see it.

use std::fmt::Write as _;

use simple_dns::Packet;

/// Length of the fixed DNS header.
const HEADER_LEN: usize = 12;
/// Smallest encoded question: root name (1) + type (2) + class (2).
const MIN_QUESTION_LEN: usize = 5;
/// Smallest encoded resource record: root name (1) + type, class (4) +
/// TTL (4) + rdata length (2).
const MIN_RECORD_LEN: usize = 11;

/// TXT query type.
pub const QTYPE_TXT: u16 = 16;
/// NULL query type: arbitrary binary data, a favourite of DNS tunnels.
pub const QTYPE_NULL: u16 = 10;

/// What a DNS message says, as far as the detectors care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    /// The QR bit.
    pub is_response: bool,
    /// 0 for a standard query.
    pub opcode: u8,
    /// Response code from the header (without EDNS extended bits).
    pub rcode: u8,
    pub questions: Vec<DnsQuestion>,
    /// ANCOUNT from the header, whether or not the answers were sampled.
    pub answer_count: u16,
    /// The answer, authority and additional sections were decoded too (false
    /// when only the questions could be).
    pub complete: bool,
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Labels joined by `.`, without a trailing dot (`.` for the root).
    /// Label bytes outside `!`..`~`, and `.` or `\` inside a label, are
    /// written `\DDD` (RFC 1035 presentation format), so splitting on `.`
    /// gives the labels back and the name is safe to log.
    pub name: String,
    /// QTYPE, e.g. 1 for A, 16 for TXT.
    pub qtype: u16,
}

impl DnsQuestion {
    /// The query type's usual name, e.g. `AAAA`, or `TYPE65399`.
    pub fn qtype_name(&self) -> String {
        let name = match self.qtype {
            1 => "A",
            2 => "NS",
            5 => "CNAME",
            6 => "SOA",
            10 => "NULL",
            12 => "PTR",
            15 => "MX",
            16 => "TXT",
            28 => "AAAA",
            33 => "SRV",
            35 => "NAPTR",
            64 => "SVCB",
            65 => "HTTPS",
            252 => "AXFR",
            255 => "ANY",
            other => return format!("TYPE{other}"),
        };
        name.to_owned()
    }
}

/// Why bytes are not a DNS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Too short for the header, or cut before the questions end.
    #[error("truncated DNS message ({0} bytes)")]
    Truncated(usize),
    /// The header promises more than the bytes can hold, or a name or
    /// question does not decode.
    #[error("malformed DNS message: {0}")]
    Malformed(String),
}

/// A DNS message carried in one UDP datagram.
pub fn parse_udp(payload: &[u8]) -> Result<DnsMessage, DnsError> {
    parse_message(payload)
}

/// The first DNS message of a TCP segment, after its 2-byte length prefix.
/// A segment cut short is decoded as far as its questions go; further
/// messages in the same segment are not looked at.
pub fn parse_tcp(payload: &[u8]) -> Result<DnsMessage, DnsError> {
    let Some((len, rest)) = payload.split_first_chunk::<2>() else {
        return Err(DnsError::Truncated(payload.len()));
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if len < HEADER_LEN {
        return Err(DnsError::Malformed(format!("length prefix {len}")));
    }
    parse_message(&rest[..len.min(rest.len())])
}

fn parse_message(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    let Some(header) = msg.first_chunk::<HEADER_LEN>() else {
        return Err(DnsError::Truncated(msg.len()));
    };
    let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let flags = word(2);
    let qd = usize::from(word(4));
    let records = usize::from(word(6)) + usize::from(word(8)) + usize::from(word(10));

    // simple-dns reserves room for every entry the header announces before
    // reading any: check the announced counts fit the bytes first, so that a
    // 12-byte datagram claiming 65535 records costs nothing.
    let questions_fit = HEADER_LEN + qd * MIN_QUESTION_LEN <= msg.len();
    let all_fit =
        questions_fit && HEADER_LEN + qd * MIN_QUESTION_LEN + records * MIN_RECORD_LEN <= msg.len();

    let full = if all_fit {
        Packet::parse(msg).ok()
    } else {
        None
    };
    let (questions, complete) = match full {
        Some(packet) => (questions_of(&packet), true),
        None if !questions_fit => return Err(DnsError::Truncated(msg.len())),
        None => {
            // Decode the questions alone: same bytes, other counts zeroed.
            let mut questions_only = msg.to_vec();
            questions_only[6..HEADER_LEN].fill(0);
            match Packet::parse(&questions_only) {
                Ok(packet) => (questions_of(&packet), false),
                Err(simple_dns::SimpleDnsError::InsufficientData) => {
                    return Err(DnsError::Truncated(msg.len()));
                }
                Err(e) => return Err(DnsError::Malformed(e.to_string())),
            }
        }
    };

    Ok(DnsMessage {
        id: word(0),
        is_response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: (flags & 0xf) as u8,
        questions,
        answer_count: word(6),
        complete,
    })
}

fn questions_of(packet: &Packet<'_>) -> Vec<DnsQuestion> {
    packet
        .questions
        .iter()
        .map(|q| DnsQuestion {
            name: presentation(q.qname.as_bytes()),
            qtype: q.qtype.into(),
        })
        .collect()
}

/// Labels joined by dots, unusual bytes as `\DDD`.
fn presentation<'a>(labels: impl Iterator<Item = &'a [u8]>) -> String {
    let mut name = String::new();
    for label in labels {
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            match b {
                b'.' | b'\\' => {
                    let _ = write!(name, "\\{b:03}");
                }
                b'!'..=b'~' => name.push(char::from(b)),
                _ => {
                    let _ = write!(name, "\\{b:03}");
                }
            }
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    name
}

#[cfg(test)]
mod tests {
    use simple_dns::{
        CLASS, Name, PacketFlag, Question, ResourceRecord, TYPE,
        rdata::{A, RData, TXT},
    };

    use super::*;

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut packet = Packet::new_query(0x1234);
        packet.set_flags(PacketFlag::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        packet.build_bytes_vec().unwrap()
    }

    fn response() -> Vec<u8> {
        let mut packet = Packet::new_reply(0xbeef);
        packet.questions.push(Question::new(
            Name::new_unchecked("www.example.com"),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        for i in 0..4 {
            packet.answers.push(ResourceRecord::new(
                Name::new_unchecked("www.example.com"),
                CLASS::IN,
                300,
                RData::A(A {
                    address: 0xc000_0200 + i,
                }),
            ));
        }
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked("www.example.com"),
            CLASS::IN,
            300,
            RData::TXT(TXT::new().with_string("v=spf1 -all").unwrap()),
        ));
        packet.build_bytes_vec_compressed().unwrap()
    }

    #[test]
    fn a_query_decodes() {
        let msg = parse_udp(&query("www.Example.com", TYPE::AAAA)).unwrap();
        assert_eq!(msg.id, 0x1234);
        assert!(!msg.is_response);
        assert_eq!((msg.opcode, msg.rcode, msg.answer_count), (0, 0, 0));
        assert_eq!(
            msg.questions,
            vec![DnsQuestion {
                name: "www.Example.com".into(),
                qtype: 28
            }]
        );
        assert_eq!(msg.questions[0].qtype_name(), "AAAA");
        assert!(msg.complete);
    }

    #[test]
    fn a_response_decodes_over_udp_and_tcp() {
        let bytes = response();
        let msg = parse_udp(&bytes).unwrap();
        assert!(msg.is_response);
        assert_eq!(msg.id, 0xbeef);
        assert_eq!(msg.answer_count, 5);
        assert_eq!(msg.questions[0].name, "www.example.com");
        assert!(msg.complete);

        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        assert_eq!(parse_tcp(&framed).unwrap(), msg);
    }

    #[test]
    fn a_response_cut_in_its_answers_still_gives_its_question() {
        let bytes = response();
        let question_end = HEADER_LEN + "www.example.com".len() + 2 + 4;
        for cut in question_end..bytes.len() {
            let msg = parse_udp(&bytes[..cut]).unwrap();
            assert_eq!(msg.questions[0].name, "www.example.com", "cut at {cut}");
            assert_eq!(msg.answer_count, 5);
            assert!(!msg.complete, "cut at {cut}");
        }
    }

    #[test]
    fn every_truncation_is_an_error_or_a_message_never_a_panic() {
        for bytes in [query("a.b.example.com", TYPE::TXT), response()] {
            for cut in 0..bytes.len() {
                let _ = parse_udp(&bytes[..cut]);
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                let _ = parse_tcp(&framed[..cut]);
            }
            assert!(matches!(
                parse_udp(&bytes[..5]),
                Err(DnsError::Truncated(5))
            ));
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_udp(b"").is_err());
        assert!(parse_tcp(b"\x00").is_err());
        assert!(parse_tcp(b"\x00\x03abc").is_err());
        // A header that announces 65535 questions in 12 bytes.
        assert!(parse_udp(b"\x00\x01\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        // A compression pointer to itself.
        let mut looping = query("x.example", TYPE::A);
        looping.truncate(HEADER_LEN);
        looping.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
        assert!(parse_udp(&looping).is_err());

        let mut next = crate::payload::xorshift(0x9e37_79b9_7f4a_7c15);
        for len in 0..3000 {
            let bytes: Vec<u8> = (0..len % 200).map(|_| next() as u8).collect();
            let _ = parse_udp(&bytes);
            let _ = parse_tcp(&bytes);
        }
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let mut bytes = query("x.example", TYPE::NULL);
        // Replace label `x` by the 3-byte label "a.\x00".
        bytes.splice(HEADER_LEN..HEADER_LEN + 2, *b"\x03a.\x00");
        let msg = parse_udp(&bytes).unwrap();
        assert_eq!(msg.questions[0].name, r"a\046\000.example");
        assert_eq!(msg.questions[0].qtype, QTYPE_NULL);
    }
}
