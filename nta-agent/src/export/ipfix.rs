//! Flow records as IPFIX messages (RFC 7011): two templates, one for IPv4
//! flows and one for IPv6, and data records in messages small enough for
//! any path's MTU.
//!
//! Each flow becomes two uniflow records, client to server and server to
//! client (a direction without packets is left out), rather than one RFC
//! 5103 biflow record: every collector reads uniflows, while reverse
//! elements (enterprise 29305) are ignored or misread by many, nfdump's
//! included, which would lose the answers' packets and bytes. Both records
//! carry the flow's first and last packet times: the flow table keeps no
//! times per direction.
//!
//! The wire format (message and set headers, their lengths, padding) is
//! written by the `netflow_parser` crate; what is sent, and when, is
//! decided here: templates in the first message and again every
//! [`TEMPLATE_REFRESH`] or [`TEMPLATE_EVERY_MESSAGES`] messages (over UDP a
//! collector that starts late or restarts learns them only so, RFC 7011
//! §8.4), the sequence number as the count of data records sent before the
//! message (§3.1), messages split at [`MAX_MESSAGE`] bytes.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use netflow_parser::variable_versions::{
    field_value::{DataNumber, FieldValue},
    ipfix::{
        Data, FlowSet, FlowSetBody, FlowSetHeader, Header, IPFix, IPFixFlowRecord, Template,
        TemplateField, lookup::IPFixField,
    },
};

use super::ExportError;
use crate::flows::{FlowRecord, Reason};

/// Largest message, in bytes: with IPv6's 48 bytes of IP and UDP headers
/// it fits a 1500-byte MTU with room for a tunnel's headers, so that no
/// message is fragmented (a lost fragment loses the whole message).
pub const MAX_MESSAGE: usize = 1400;

/// Templates are sent again at least this often: a collector that
/// restarts decodes nothing until it has them, so this is the most a
/// restart loses.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(60);

/// ... and after this many messages without them, whatever the time: a
/// `read` sends thousands of messages a second. (softflowd resends every
/// 16 messages; the templates are about 7 % of a full message.)
pub const TEMPLATE_EVERY_MESSAGES: u32 = 20;

/// The template of IPv4 flows; 256 is the first id a template may have
/// (0-255 are set ids, RFC 7011 §3.3.2).
pub const TEMPLATE_V4: u16 = 256;
/// The template of IPv6 flows.
pub const TEMPLATE_V6: u16 = 257;

/// The observation domain of every message: nta observes one interface
/// (or one capture) per process.
pub const OBSERVATION_DOMAIN: u32 = 1;

/// The set id of template sets (RFC 7011 §3.3.2).
const TEMPLATE_SET_ID: u16 = 2;
const VERSION: u16 = 10;
const MESSAGE_HEADER: usize = 16;
const SET_HEADER: usize = 4;

/// IANA's Information Elements that nta exports (RFC 7012 and the IANA
/// "IPFIX Information Elements" registry).
pub mod ie {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL_IDENTIFIER: u16 = 4;
    pub const TCP_CONTROL_BITS: u16 = 6;
    pub const SOURCE_TRANSPORT_PORT: u16 = 7;
    pub const SOURCE_IPV4_ADDRESS: u16 = 8;
    pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
    pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
    pub const SOURCE_IPV6_ADDRESS: u16 = 27;
    pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
    pub const FLOW_END_REASON: u16 = 136;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
}

/// The elements after the addresses, with the length each is sent in, in
/// record order. tcpControlBits is an unsigned16 since RFC 7125, sent in
/// one byte (reduced-size encoding, RFC 7011 §6.2): nta keeps the eight
/// classic flags, and older collectors expect one byte.
const COMMON_FIELDS: [(u16, u16); 9] = [
    (ie::SOURCE_TRANSPORT_PORT, 2),
    (ie::DESTINATION_TRANSPORT_PORT, 2),
    (ie::PROTOCOL_IDENTIFIER, 1),
    (ie::OCTET_DELTA_COUNT, 8),
    (ie::PACKET_DELTA_COUNT, 8),
    (ie::FLOW_START_MILLISECONDS, 8),
    (ie::FLOW_END_MILLISECONDS, 8),
    (ie::TCP_CONTROL_BITS, 1),
    (ie::FLOW_END_REASON, 1),
];

/// flowEndReason values (RFC 7012 §5.11.3).
const END_IDLE_TIMEOUT: u8 = 1;
/// The record of a flow going on; its counts are those since the last.
const END_ACTIVE_TIMEOUT: u8 = 2;
const END_FORCED: u8 = 4;

/// Which template a record uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn template_id(self) -> u16 {
        match self {
            Family::V4 => TEMPLATE_V4,
            Family::V6 => TEMPLATE_V6,
        }
    }

    /// Source and destination address elements, and their length.
    fn addresses(self) -> [(u16, u16); 2] {
        match self {
            Family::V4 => [
                (ie::SOURCE_IPV4_ADDRESS, 4),
                (ie::DESTINATION_IPV4_ADDRESS, 4),
            ],
            Family::V6 => [
                (ie::SOURCE_IPV6_ADDRESS, 16),
                (ie::DESTINATION_IPV6_ADDRESS, 16),
            ],
        }
    }

    /// Every element of a record, in order.
    fn fields(self) -> impl Iterator<Item = (u16, u16)> {
        self.addresses().into_iter().chain(COMMON_FIELDS)
    }

    fn record_len(self) -> usize {
        self.fields().map(|(_, len)| usize::from(len)).sum()
    }

    fn template(self) -> Template {
        let fields: Vec<TemplateField> = self
            .fields()
            .map(|(id, len)| TemplateField {
                field_type_number: id,
                field_length: len,
                enterprise_number: None,
                field_type: IPFixField::new(id, None),
            })
            .collect();
        Template {
            template_id: self.template_id(),
            field_count: fields.len() as u16,
            fields,
        }
    }
}

/// Bytes of a set of `records` records of `family`, padded to 4 bytes as
/// the wire encoder pads it.
fn set_len(family: Family, records: usize) -> usize {
    (SET_HEADER + records * family.record_len()).next_multiple_of(4)
}

/// Bytes of the template set that carries both templates.
fn template_set_len() -> usize {
    let template = |f: Family| 4 + 4 * f.fields().count();
    (SET_HEADER + template(Family::V4) + template(Family::V6)).next_multiple_of(4)
}

/// One direction of a flow, as one data record says it.
#[derive(Debug, Clone, PartialEq)]
struct Uniflow {
    family: Family,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    proto: u8,
    octets: u64,
    packets: u64,
    start_ms: u64,
    end_ms: u64,
    tcp_flags: u8,
    reason: u8,
}

/// The records of `r`: client to server, then server to client, each only
/// if that direction had packets.
fn uniflows(r: &FlowRecord) -> impl Iterator<Item = Uniflow> {
    let family = match (r.client.0, r.server.0) {
        (IpAddr::V4(_), IpAddr::V4(_)) => Family::V4,
        _ => Family::V6,
    };
    let ms = |t: jiff::Timestamp| u64::try_from(t.as_millisecond()).unwrap_or(0);
    let reason = match r.reason {
        Reason::Timeout => END_IDLE_TIMEOUT,
        Reason::Active => END_ACTIVE_TIMEOUT,
        Reason::Shutdown => END_FORCED,
    };
    let one = |src, dst, packets, octets, tcp_flags| Uniflow {
        family,
        src,
        dst,
        proto: r.proto,
        octets,
        packets,
        start_ms: ms(r.start),
        end_ms: ms(r.end),
        tcp_flags,
        reason,
    };
    let forward = one(
        r.client,
        r.server,
        r.pkts_toserver,
        r.bytes_toserver,
        r.tcp_flags_toserver,
    );
    let reverse = one(
        r.server,
        r.client,
        r.pkts_toclient,
        r.bytes_toclient,
        r.tcp_flags_toclient,
    );
    [forward, reverse].into_iter().filter(|u| u.packets > 0)
}

/// An address in `family`'s elements: an IPv4 address beside an IPv6 one
/// (which a flow key never pairs) goes as IPv4-mapped.
fn address(family: Family, addr: IpAddr) -> FieldValue {
    match (family, addr) {
        (Family::V4, IpAddr::V4(a)) => FieldValue::Ip4Addr(a),
        (_, IpAddr::V4(a)) => FieldValue::Ip6Addr(a.to_ipv6_mapped()),
        (_, IpAddr::V6(a)) => FieldValue::Ip6Addr(a),
    }
}

impl Uniflow {
    /// Its values in template order, each as long as the template says.
    fn record(&self) -> IPFixFlowRecord {
        let numbers = [
            DataNumber::U16(self.src.1),
            DataNumber::U16(self.dst.1),
            DataNumber::U8(self.proto),
            DataNumber::U64(self.octets),
            DataNumber::U64(self.packets),
            DataNumber::U64(self.start_ms),
            DataNumber::U64(self.end_ms),
            DataNumber::U8(self.tcp_flags),
            DataNumber::U8(self.reason),
        ];
        let values = [
            address(self.family, self.src.0),
            address(self.family, self.dst.0),
        ]
        .into_iter()
        .chain(numbers.into_iter().map(FieldValue::DataNumber));
        self.family
            .fields()
            .zip(values)
            .map(|((id, _), value)| (IPFixField::new(id, None), value))
            .collect()
    }
}

/// The records of one message, in sets of one family, and its exact size.
struct Batch {
    templates: bool,
    sets: Vec<(Family, Vec<IPFixFlowRecord>)>,
    /// Bytes of the header, the templates and every set but the last.
    closed: usize,
    records: u32,
}

impl Batch {
    fn new(templates: bool) -> Self {
        let templates_len = if templates { template_set_len() } else { 0 };
        Batch {
            templates,
            sets: Vec::new(),
            closed: MESSAGE_HEADER + templates_len,
            records: 0,
        }
    }

    /// Bytes of the message as it is, or with one more record of `family`.
    fn len_with(&self, more: Option<Family>) -> usize {
        let last = self.sets.last().map(|(f, r)| (*f, r.len()));
        match (last, more) {
            (None, None) => self.closed,
            (None, Some(f)) => self.closed + set_len(f, 1),
            (Some((f, n)), Some(m)) if f == m => self.closed + set_len(f, n + 1),
            (Some((f, n)), Some(m)) => self.closed + set_len(f, n) + set_len(m, 1),
            (Some((f, n)), None) => self.closed + set_len(f, n),
        }
    }

    /// Whether one more record of `family` keeps the message small enough;
    /// an empty message takes one whatever its size.
    fn fits(&self, family: Family) -> bool {
        self.records == 0 || self.len_with(Some(family)) <= MAX_MESSAGE
    }

    fn push(&mut self, u: &Uniflow) {
        match self.sets.last_mut() {
            Some((f, records)) if *f == u.family => records.push(u.record()),
            last => {
                if let Some((f, records)) = last {
                    self.closed += set_len(*f, records.len());
                }
                self.sets.push((u.family, vec![u.record()]));
            }
        }
        self.records += 1;
    }
}

/// Turns flow records into IPFIX messages, keeping the sequence number and
/// when the templates were last sent. One per collector.
#[derive(Debug)]
pub struct Encoder {
    domain: u32,
    /// Data records in the messages so far, modulo 2^32: the next
    /// message's sequence number.
    sequence: u32,
    templates_sent: Option<Instant>,
    /// Messages since the last one with templates.
    without_templates: u32,
}

impl Encoder {
    /// An encoder whose first message carries the templates.
    pub fn new(domain: u32) -> Self {
        Encoder {
            domain,
            sequence: 0,
            templates_sent: None,
            without_templates: 0,
        }
    }

    /// The next message's sequence number.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    fn templates_due(&self, now: Instant) -> bool {
        match self.templates_sent {
            None => true,
            Some(at) => {
                now.saturating_duration_since(at) >= TEMPLATE_REFRESH
                    || self.without_templates >= TEMPLATE_EVERY_MESSAGES
            }
        }
    }

    /// Encodes the records of `flows` into as many messages as they need,
    /// each handed to `send` with its number of data records as soon as it
    /// is made (one message in memory at a time). `now` decides whether
    /// templates are due; `export_time` is the headers' (Unix seconds).
    pub fn encode(
        &mut self,
        flows: &[FlowRecord],
        now: Instant,
        export_time: u32,
        mut send: impl FnMut(&[u8], u32),
    ) -> Result<(), ExportError> {
        let mut pending = flows.iter().flat_map(uniflows).peekable();
        while pending.peek().is_some() {
            let mut batch = Batch::new(self.templates_due(now));
            while let Some(u) = pending.next_if(|u| batch.fits(u.family)) {
                batch.push(&u);
            }
            let records = batch.records;
            let message = self.message(batch, now, export_time)?;
            send(&message, records);
        }
        Ok(())
    }

    /// The message of `batch`; counts its records, and its templates as
    /// sent at `now`.
    fn message(
        &mut self,
        batch: Batch,
        now: Instant,
        export_time: u32,
    ) -> Result<Vec<u8>, ExportError> {
        let expected = batch.len_with(None);
        let mut flowsets = Vec::with_capacity(batch.sets.len() + 1);
        if batch.templates {
            flowsets.push(FlowSet {
                header: FlowSetHeader {
                    header_id: TEMPLATE_SET_ID,
                    length: 0,
                },
                body: FlowSetBody::Templates(vec![Family::V4.template(), Family::V6.template()]),
            });
        }
        for (family, records) in batch.sets {
            flowsets.push(FlowSet {
                header: FlowSetHeader {
                    header_id: family.template_id(),
                    length: 0,
                },
                body: FlowSetBody::Data(Data::new(records)),
            });
        }
        let message = IPFix {
            header: Header {
                version: VERSION,
                // Both lengths are the encoder's to work out.
                length: 0,
                export_time,
                sequence_number: self.sequence,
                observation_domain_id: self.domain,
            },
            flowsets,
        };
        let bytes = message
            .to_be_bytes()
            .map_err(|e| ExportError::Encode(e.to_string()))?;
        // The split above relies on knowing each message's size.
        if bytes.len() != expected {
            return Err(ExportError::Encode(format!(
                "a message of {} bytes where {expected} were expected",
                bytes.len()
            )));
        }
        self.sequence = self.sequence.wrapping_add(batch.records);
        if batch.templates {
            self.templates_sent = Some(now);
            self.without_templates = 0;
        } else {
            self.without_templates += 1;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
