//! The encoding checked two ways: the bytes walked by hand against RFC
//! 7011's layout, and the messages read back by `netflow_parser`'s own
//! stateful parser (templates learnt from earlier messages).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jiff::Timestamp;
use netflow_parser::{NetflowPacket, NetflowParser, variable_versions::ipfix::FlowSetBody};

use super::*;

const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

fn flow(client: (IpAddr, u16), server: (IpAddr, u16)) -> FlowRecord {
    FlowRecord {
        client,
        server,
        proto: 6,
        pkts_toserver: 5,
        pkts_toclient: 4,
        bytes_toserver: 420,
        bytes_toclient: 3_000,
        start: at(1_765_000_000_123),
        end: at(1_765_000_002_456),
        tcp_flags_toserver: 0x1b,
        tcp_flags_toclient: 0x12,
        reason: Reason::Timeout,
        app_proto: None,
        alerts: Vec::new(),
    }
}

fn v4_flow(port: u16) -> FlowRecord {
    flow(
        (IpAddr::from([198, 18, 0, 2]), port),
        (IpAddr::from([198, 18, 0, 1]), 80),
    )
}

fn v6_flow(port: u16) -> FlowRecord {
    let mut f = flow((CLIENT_V6.into(), port), (SERVER_V6.into(), 53));
    f.proto = 17;
    f.tcp_flags_toserver = 0;
    f.tcp_flags_toclient = 0;
    f
}

/// Every message of `flows`, with its number of records, at `now`.
fn encode_at(encoder: &mut Encoder, flows: &[FlowRecord], now: Instant) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::new();
    encoder
        .encode(flows, now, 1_765_000_100, |m, n| out.push((m.to_vec(), n)))
        .unwrap();
    out
}

fn encode(encoder: &mut Encoder, flows: &[FlowRecord]) -> Vec<(Vec<u8>, u32)> {
    encode_at(encoder, flows, Instant::now())
}

/// A message as RFC 7011 §3.1 lays it out, walked by hand.
#[derive(Debug)]
struct Walked {
    version: u16,
    export_time: u32,
    sequence: u32,
    domain: u32,
    /// Set ids and bodies (without their headers).
    sets: Vec<(u16, Vec<u8>)>,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[track_caller]
fn walk(m: &[u8]) -> Walked {
    assert_eq!(usize::from(be16(m, 2)), m.len(), "message length field");
    let mut sets = Vec::new();
    let mut at = 16;
    while at < m.len() {
        let (id, len) = (be16(m, at), usize::from(be16(m, at + 2)));
        assert!(
            len >= 4 && at + len <= m.len(),
            "set at {at} of {len} bytes"
        );
        sets.push((id, m[at + 4..at + len].to_vec()));
        at += len;
    }
    assert_eq!(at, m.len(), "sets fill the message exactly");
    Walked {
        version: be16(m, 0),
        export_time: be32(m, 4),
        sequence: be32(m, 8),
        domain: be32(m, 12),
        sets,
    }
}

/// (template id, [(element, length)]) of a template set's body.
fn templates_of(body: &[u8]) -> Vec<(u16, Vec<(u16, u16)>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= body.len() {
        let (id, count) = (be16(body, at), usize::from(be16(body, at + 2)));
        if id == 0 {
            break; // padding
        }
        let fields = (0..count)
            .map(|i| (be16(body, at + 4 + 4 * i), be16(body, at + 6 + 4 * i)))
            .collect();
        out.push((id, fields));
        at += 4 + 4 * count;
    }
    out
}

/// A decoded data record: its values in template order, numbers as u64.
#[derive(Debug, PartialEq)]
struct Decoded {
    src: IpAddr,
    dst: IpAddr,
    numbers: Vec<u64>,
}

fn number(v: &FieldValue) -> u64 {
    let mut bytes = Vec::new();
    v.write_be_bytes(&mut bytes).unwrap();
    bytes.iter().fold(0, |n, b| n << 8 | u64::from(*b))
}

/// Every data record of `messages`, in order, by `netflow_parser`.
fn decoded(messages: &[(Vec<u8>, u32)]) -> Vec<(u16, Decoded)> {
    let mut parser = NetflowParser::default();
    let mut out = Vec::new();
    for (m, _) in messages {
        let parsed = parser.parse_bytes(m);
        assert!(parsed.error.is_none(), "{:?}", parsed.error);
        for packet in parsed.packets {
            let NetflowPacket::IPFix(ipfix) = packet else {
                panic!("not IPFIX: {packet:?}");
            };
            for set in ipfix.flowsets {
                let FlowSetBody::Data(data) = set.body else {
                    continue;
                };
                for record in data.fields {
                    let values: Vec<&FieldValue> = record.iter().map(|(_, v)| v).collect();
                    out.push((
                        set.header.header_id,
                        Decoded {
                            src: IpAddr::try_from(values[0]).unwrap(),
                            dst: IpAddr::try_from(values[1]).unwrap(),
                            numbers: values[2..].iter().map(|v| number(v)).collect(),
                        },
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn the_first_message_carries_both_templates_then_the_records() {
    let mut encoder = Encoder::new(7);
    let messages = encode(&mut encoder, &[v4_flow(40_000)]);
    assert_eq!(messages.len(), 1);
    let (m, records) = &messages[0];
    assert_eq!(*records, 2, "one record each way");
    let w = walk(m);
    assert_eq!(
        (w.version, w.export_time, w.sequence, w.domain),
        (10, 1_765_000_100, 0, 7)
    );
    let ids: Vec<u16> = w.sets.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 256], "a template set, then IPv4 data");
    let common = [
        (7, 2),
        (11, 2),
        (4, 1),
        (1, 8),
        (2, 8),
        (152, 8),
        (153, 8),
        (6, 1),
        (136, 1),
    ];
    let with =
        |addrs: [(u16, u16); 2]| -> Vec<(u16, u16)> { addrs.into_iter().chain(common).collect() };
    assert_eq!(
        templates_of(&w.sets[0].1),
        [
            (256, with([(8, 4), (12, 4)])),
            (257, with([(27, 16), (28, 16)])),
        ]
    );
    // Two 47-byte records, padded to a multiple of 4.
    assert_eq!(w.sets[1].1.len(), 96);
    assert_eq!(encoder.sequence(), 2);
}

#[test]
fn records_say_each_direction_of_the_flow() {
    let mut encoder = Encoder::new(1);
    let messages = encode(&mut encoder, &[v4_flow(40_000)]);
    let client = IpAddr::from([198, 18, 0, 2]);
    let server = IpAddr::from([198, 18, 0, 1]);
    let (start, end) = (1_765_000_000_123, 1_765_000_002_456);
    assert_eq!(
        decoded(&messages),
        [
            (
                256,
                Decoded {
                    src: client,
                    dst: server,
                    // ports, protocol, octets, packets, start, end, flags, reason
                    numbers: vec![40_000, 80, 6, 420, 5, start, end, 0x1b, 1],
                }
            ),
            (
                256,
                Decoded {
                    src: server,
                    dst: client,
                    numbers: vec![80, 40_000, 6, 3_000, 4, start, end, 0x12, 1],
                }
            ),
        ]
    );
}

#[test]
fn ipv6_flows_use_their_own_template_and_full_addresses() {
    let mut encoder = Encoder::new(1);
    let mut f = v6_flow(50_000);
    f.reason = Reason::Shutdown;
    let messages = encode(&mut encoder, &[v4_flow(40_000), f]);
    let w = walk(&messages[0].0);
    let ids: Vec<u16> = w.sets.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 256, 257]);
    // Two 71-byte records, padded.
    assert_eq!(w.sets[2].1.len(), 144);
    let records = decoded(&messages);
    let (id, forward) = &records[2];
    assert_eq!(*id, 257);
    assert_eq!(
        (forward.src, forward.dst),
        (CLIENT_V6.into(), SERVER_V6.into())
    );
    assert_eq!(&forward.numbers[..5], [50_000, 53, 17, 420, 5]);
    assert_eq!(forward.numbers[8], 4, "forced end: the agent stopped");
}

#[test]
fn a_direction_without_packets_is_left_out() {
    let mut encoder = Encoder::new(1);
    let mut f = v4_flow(40_000);
    (f.pkts_toclient, f.bytes_toclient) = (0, 0);
    let messages = encode(&mut encoder, &[f]);
    assert_eq!(messages[0].1, 1);
    assert_eq!(decoded(&messages).len(), 1);
}

#[test]
fn many_records_are_split_into_messages_numbered_by_the_records_before_them() {
    let mut encoder = Encoder::new(1);
    let flows: Vec<FlowRecord> = (0..150)
        .map(|i| {
            if i % 3 == 0 {
                v6_flow(10_000 + i)
            } else {
                v4_flow(10_000 + i)
            }
        })
        .collect();
    let messages = encode(&mut encoder, &flows);
    assert!(messages.len() > 5, "{} messages", messages.len());
    let mut before = 0u32;
    for (m, records) in &messages {
        assert!(m.len() <= MAX_MESSAGE, "{} bytes", m.len());
        assert_eq!(walk(m).sequence, before);
        before += records;
    }
    assert_eq!(before, 300);
    assert_eq!(encoder.sequence(), 300);
    // Full messages: none had room for another record and its set.
    let room = Family::V6.record_len() + SET_HEADER + 3;
    for (m, _) in &messages[..messages.len() - 1] {
        assert!(m.len() + room > MAX_MESSAGE, "{} bytes", m.len());
    }
    let records = decoded(&messages);
    assert_eq!(records.len(), 300);
    // In the order of the flows, each flow's two directions together.
    let ports: Vec<u64> = records
        .iter()
        .step_by(2)
        .map(|(_, r)| r.numbers[0])
        .collect();
    assert_eq!(ports, (10_000..10_150).collect::<Vec<u64>>());
}

#[test]
fn the_sequence_goes_on_across_calls_and_wraps() {
    let mut encoder = Encoder::new(1);
    encoder.sequence = u32::MAX - 1;
    let first = encode(&mut encoder, &[v4_flow(1)]);
    assert_eq!(walk(&first[0].0).sequence, u32::MAX - 1);
    let second = encode(&mut encoder, &[v4_flow(2)]);
    assert_eq!(walk(&second[0].0).sequence, 0, "modulo 2^32");
    assert_eq!(encoder.sequence(), 2);
}

fn has_templates(m: &[u8]) -> bool {
    walk(m).sets.iter().any(|(id, _)| *id == TEMPLATE_SET_ID)
}

#[test]
fn templates_are_resent_every_so_many_messages() {
    let mut encoder = Encoder::new(1);
    let now = Instant::now();
    let with: Vec<usize> = (0..50)
        .filter(|i| {
            let messages = encode_at(&mut encoder, &[v4_flow(*i as u16)], now);
            has_templates(&messages[0].0)
        })
        .collect();
    let every = TEMPLATE_EVERY_MESSAGES as usize + 1;
    assert_eq!(with, [0, every, 2 * every]);
}

#[test]
fn templates_are_resent_once_the_refresh_time_has_passed() {
    let mut encoder = Encoder::new(1);
    let start = Instant::now();
    let send = |encoder: &mut Encoder, after: Duration| {
        let messages = encode_at(encoder, &[v4_flow(1)], start + after);
        has_templates(&messages[0].0)
    };
    assert!(send(&mut encoder, Duration::ZERO));
    assert!(!send(&mut encoder, Duration::from_secs(1)));
    assert!(!send(
        &mut encoder,
        TEMPLATE_REFRESH - Duration::from_millis(1)
    ));
    assert!(send(&mut encoder, TEMPLATE_REFRESH));
    assert!(!send(
        &mut encoder,
        TEMPLATE_REFRESH + Duration::from_secs(1)
    ));
}

#[test]
fn nothing_to_send_makes_no_message() {
    let mut encoder = Encoder::new(1);
    assert!(encode(&mut encoder, &[]).is_empty());
    let mut f = v4_flow(1);
    (f.pkts_toserver, f.pkts_toclient) = (0, 0);
    assert!(encode(&mut encoder, &[f]).is_empty());
    // The templates are still due with the first record.
    assert!(has_templates(&encode(&mut encoder, &[v4_flow(2)])[0].0));
}

#[test]
fn an_ipv4_address_paired_with_an_ipv6_one_goes_as_ipv4_mapped() {
    let mut encoder = Encoder::new(1);
    let f = flow(
        (Ipv4Addr::new(192, 0, 2, 1).into(), 1),
        (SERVER_V6.into(), 2),
    );
    let records = decoded(&encode(&mut encoder, &[f]));
    assert_eq!(records[0].0, TEMPLATE_V6);
    let mapped: IpAddr = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().into();
    assert_eq!(records[0].1.src, mapped);
}
