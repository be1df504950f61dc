//! Capture files (pcap with micro- or nanosecond timestamps, pcapng) read
//! into timestamped frames, with the link types people have: Ethernet,
//! Linux cooked v1 and v2 (`tcpdump -i any`), BSD null/loopback, raw IP.
//!
//! The file formats are pcap-parser's; what is here is the walk over the
//! blocks, the time of each frame, and errors that name the file and where
//! in it things went wrong.

mod counts;
mod link;

use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use pcap_parser::{
    Linktype, PcapBlockOwned, PcapError, create_reader, pcapng::Block, traits::PcapReaderIterator,
};

pub use counts::Counts;
pub use link::{Link, decode, payload};

/// Buffer the reader starts with; it grows (to [`MAX_BUFFER`]) for frames
/// larger than half of it.
const BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 64 << 20;

/// Why a capture could not be read (whole).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a capture file (neither pcap nor pcapng)")]
    NotCapture { path: PathBuf },
    #[error("{path} is cut short: the block at byte {offset} is incomplete")]
    CutShort { path: PathBuf, offset: u64 },
    #[error("{path}: unreadable block at byte {offset} ({reason})")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl CaptureError {
    /// Whether the frames read before it are all there was to read up to
    /// the damage (a cut or a corrupt block), as opposed to nothing read.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::CutShort { .. } | Self::Corrupt { .. })
    }
}

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: Link,
    /// The bytes captured (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
}

/// A pcapng interface: its link type and how its timestamps count.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Link,
    /// Units per second, and seconds added.
    resolution: u64,
    offset: i64,
}

/// A capture file being read.
pub struct CaptureReader {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Legacy pcap: the link type and whether timestamps are nanoseconds.
    legacy: Option<(Link, bool)>,
    interfaces: Vec<Interface>,
    size: u64,
}

impl CaptureReader {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let open_error = |source| CaptureError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let size = file.metadata().map_err(open_error)?.len();
        Self::from_reader(path, BufReader::new(file), size)
    }

    /// Reads a capture from `input` (`size` bytes), named `path` in errors.
    pub fn from_reader(
        path: &Path,
        input: impl Read + Send + 'static,
        size: u64,
    ) -> Result<Self, CaptureError> {
        let reader = create_reader(BUFFER, input).map_err(|_| CaptureError::NotCapture {
            path: path.to_owned(),
        })?;
        Ok(Self {
            path: path.to_owned(),
            reader,
            legacy: None,
            interfaces: Vec::new(),
            size,
        })
    }

    /// The file's size in bytes, and how many were read so far.
    pub fn progress(&self) -> (u64, u64) {
        (self.reader.consumed() as u64, self.size)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `on_frame` with the next frame; false at the end of the file.
    pub fn next_frame(&mut self, on_frame: impl FnOnce(Frame<'_>)) -> Result<bool, CaptureError> {
        let mut on_frame = Some(on_frame);
        loop {
            let offset = self.reader.consumed() as u64;
            match self.reader.next() {
                Ok((size, block)) => {
                    let frame = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy =
                                Some((Link::from(h.network), h.is_nanosecond_precision()));
                            None
                        }
                        PcapBlockOwned::Legacy(b) => self.legacy.map(|(link, nanos)| Frame {
                            ts: legacy_time(b.ts_sec, b.ts_usec, nanos),
                            link,
                            data: b.data,
                            wire_len: b.origlen,
                        }),
                        PcapBlockOwned::NG(block) => ng_frame(&mut self.interfaces, block),
                    };
                    let found = frame.is_some();
                    if let (Some(frame), Some(f)) = (frame, on_frame.take_if(|_| found)) {
                        f(frame);
                    }
                    self.reader.consume(size);
                    if found {
                        return Ok(true);
                    }
                }
                Err(PcapError::Eof) => return Ok(false),
                Err(PcapError::Incomplete(_)) => {
                    self.reader
                        .refill()
                        .map_err(|e| corrupt(&self.path, offset, &e))?;
                }
                Err(PcapError::BufferTooSmall) => {
                    let bigger = (self.reader.data().len() * 2).clamp(BUFFER * 2, MAX_BUFFER);
                    if !self.reader.grow(bigger) {
                        return Err(corrupt(
                            &self.path,
                            offset,
                            &PcapError::<&[u8]>::BufferTooSmall,
                        ));
                    }
                    self.reader
                        .refill()
                        .map_err(|e| corrupt(&self.path, offset, &e))?;
                }
                Err(PcapError::UnexpectedEof) => {
                    return Err(CaptureError::CutShort {
                        path: self.path.clone(),
                        offset,
                    });
                }
                Err(e) => return Err(corrupt(&self.path, offset, &e)),
            }
        }
    }
}

fn corrupt<I: Sized>(path: &Path, offset: u64, e: &PcapError<I>) -> CaptureError {
    let reason = match e {
        PcapError::ReadError => "read error".to_owned(),
        PcapError::BufferTooSmall => format!("a block larger than {MAX_BUFFER} bytes"),
        PcapError::NomError(_, kind) => format!("{kind:?}"),
        PcapError::OwnedNomError(_, kind) => format!("{kind:?}"),
        _ => "unexpected".to_owned(),
    };
    CaptureError::Corrupt {
        path: path.to_owned(),
        offset,
        reason,
    }
}

fn legacy_time(secs: u32, fraction: u32, nanos: bool) -> Timestamp {
    let nanos = if nanos {
        i64::from(fraction)
    } else {
        i64::from(fraction) * 1000
    };
    Timestamp::new(i64::from(secs), 0)
        .ok()
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_nanos(nanos)).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The frame of a pcapng packet block, if it is one (an interface block
/// is remembered for the packets that refer to it).
fn ng_frame<'a>(interfaces: &mut Vec<Interface>, block: Block<'a>) -> Option<Frame<'a>> {
    match block {
        Block::SectionHeader(_) => {
            // Interface ids start again in each section.
            interfaces.clear();
            None
        }
        Block::InterfaceDescription(idb) => {
            interfaces.push(Interface {
                link: Link::from(idb.linktype),
                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                offset: idb.ts_offset(),
            });
            None
        }
        Block::EnhancedPacket(epb) => {
            let i = interfaces.get(epb.if_id as usize)?;
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            Some(Frame {
                ts: ng_time(units, i.resolution, i.offset),
                link: i.link,
                data: epb.data,
                wire_len: epb.origlen,
            })
        }
        Block::SimplePacket(spb) => {
            // No timestamp of its own: the capture's start.
            let i = interfaces.first()?;
            Some(Frame {
                ts: Timestamp::UNIX_EPOCH,
                link: i.link,
                data: spb.data,
                wire_len: spb.origlen,
            })
        }
        _ => None,
    }
}

fn ng_time(units: u64, resolution: u64, offset: i64) -> Timestamp {
    let resolution = resolution.max(1);
    let secs = (units / resolution) as i64 + offset;
    let nanos = ((units % resolution) as u128 * 1_000_000_000 / resolution as u128) as i32;
    Timestamp::new(secs, nanos).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The link types, by pcap's numbers.
impl From<Linktype> for Link {
    fn from(t: Linktype) -> Self {
        match t {
            Linktype::ETHERNET => Link::Ethernet,
            Linktype::NULL | Linktype::LOOP => Link::Null,
            Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => Link::Raw,
            Linktype::LINUX_SLL => Link::LinuxSll,
            Linktype::LINUX_SLL2 => Link::LinuxSll2,
            Linktype(other) => Link::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use etherparse::PacketBuilder;
    use nta_common::packet::Proto;

    use super::*;

    /// An Ethernet frame: IPv4 UDP 198.18.0.2:5353 → 198.18.0.1:53.
    fn ethernet_udp(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
            .udp(5353, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// The same datagram without a link header.
    fn raw_udp(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
            .udp(5353, 53)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// A legacy pcap file of `frames` (seconds, fraction, bytes).
    fn pcap(magic: u32, link: u32, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(magic.to_le_bytes());
        out.extend(2u16.to_le_bytes());
        out.extend(4u16.to_le_bytes());
        out.extend([0; 8]);
        out.extend(65_535u32.to_le_bytes());
        out.extend(link.to_le_bytes());
        for (secs, fraction, data) in frames {
            out.extend(secs.to_le_bytes());
            out.extend(fraction.to_le_bytes());
            let len = data.len() as u32;
            out.extend(len.to_le_bytes());
            out.extend(len.to_le_bytes());
            out.extend(data);
        }
        out
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()) as u32;
        let mut out = kind.to_le_bytes().to_vec();
        out.extend(len.to_le_bytes());
        out.extend(body);
        out.extend(len.to_le_bytes());
        out
    }

    /// A pcapng file: one Ethernet interface with nanosecond timestamps.
    fn pcapng(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend((-1i64).to_le_bytes());
        let mut out = block(0x0A0D_0D0A, &shb);
        let mut idb = 1u16.to_le_bytes().to_vec();
        idb.extend([0, 0]);
        idb.extend(65_535u32.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), then the end of options.
        idb.extend([9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(block(1, &idb));
        for (ns, data) in frames {
            let mut epb = 0u32.to_le_bytes().to_vec();
            epb.extend(((ns >> 32) as u32).to_le_bytes());
            epb.extend((*ns as u32).to_le_bytes());
            let len = data.len() as u32;
            epb.extend(len.to_le_bytes());
            epb.extend(len.to_le_bytes());
            epb.extend(data);
            epb.resize(epb.len().next_multiple_of(4), 0);
            out.extend(block(6, &epb));
        }
        out
    }

    /// The frames read (time, link, bytes), and the error that ended it.
    type ReadAll = (Vec<(Timestamp, Link, Vec<u8>)>, Option<CaptureError>);

    fn read_all(bytes: Vec<u8>) -> ReadAll {
        let size = bytes.len() as u64;
        let mut reader = CaptureReader::from_reader(Path::new("t.pcap"), Cursor::new(bytes), size)
            .expect("a capture");
        let mut frames = Vec::new();
        loop {
            match reader.next_frame(|f| frames.push((f.ts, f.link, f.data.to_vec()))) {
                Ok(true) => {}
                Ok(false) => return (frames, None),
                Err(e) => return (frames, Some(e)),
            }
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn microsecond_pcap_frames_keep_their_time_and_decode() {
        let frame = ethernet_udp(b"query");
        let (frames, error) = read_all(pcap(
            0xa1b2_c3d4,
            1,
            &[
                (1_765_000_000, 250_000, frame.clone()),
                (1_765_000_001, 7, frame),
            ],
        ));
        assert!(error.is_none(), "{error:?}");
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, ts("2025-12-06T05:46:40.25Z"));
        assert_eq!(frames[1].0, ts("2025-12-06T05:46:41.000007Z"));
        let packet = decode(frames[0].1, &frames[0].2).expect("IPv4 UDP");
        assert_eq!(IpAddr::from(packet.src), IpAddr::from([198, 18, 0, 2]));
        assert_eq!(packet.proto, Proto::Udp);
        let t = packet.transport;
        assert_eq!(
            (t.src_port, t.dst_port, payload(&packet, &frames[0].2)),
            (5353, 53, &b"query"[..])
        );
    }

    use std::net::IpAddr;

    #[test]
    fn nanosecond_pcap_and_pcapng_keep_nanoseconds() {
        let (frames, _) = read_all(pcap(
            0xa1b2_3c4d,
            1,
            &[(10, 123_456_789, ethernet_udp(b"x"))],
        ));
        assert_eq!(frames[0].0, Timestamp::new(10, 123_456_789).unwrap());
        let (frames, error) = read_all(pcapng(&[(10_123_456_789, ethernet_udp(b"y"))]));
        assert!(error.is_none(), "{error:?}");
        assert_eq!(frames[0].0, Timestamp::new(10, 123_456_789).unwrap());
        assert_eq!(frames[0].1, Link::Ethernet);
        let packet = decode(frames[0].1, &frames[0].2).expect("decodes");
        assert_eq!(payload(&packet, &frames[0].2), b"y");
    }

    #[test]
    fn cooked_null_and_raw_links_reach_the_ip_packet() {
        let ip = raw_udp(b"z");
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend([0; 18]);
        sll2.extend(&ip);
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0];
        sll.extend(0x0800u16.to_be_bytes());
        sll.extend(&ip);
        let mut null_le = 2u32.to_le_bytes().to_vec();
        null_le.extend(&ip);
        let mut null_be = 2u32.to_be_bytes().to_vec();
        null_be.extend(&ip);
        for (link, frame) in [
            (Link::LinuxSll2, sll2),
            (Link::LinuxSll, sll),
            (Link::Null, null_le),
            (Link::Null, null_be),
            (Link::Raw, ip.clone()),
        ] {
            let packet = decode(link, &frame).unwrap_or_else(|| panic!("{link:?}"));
            assert_eq!(
                IpAddr::from(packet.dst),
                IpAddr::from([198, 18, 0, 1]),
                "{link:?}"
            );
            assert_eq!(payload(&packet, &frame), b"z", "{link:?}");
        }
        assert_eq!(Link::from(Linktype::LINUX_SLL2), Link::LinuxSll2);
        assert!(decode(Link::Other(147), &ip).is_none());
    }

    #[test]
    fn a_capture_cut_short_gives_what_came_before_and_where_it_broke() {
        let frame = ethernet_udp(b"query");
        let whole = pcap(
            0xa1b2_c3d4,
            1,
            &[(1, 0, frame.clone()), (2, 0, frame.clone())],
        );
        let cut = whole[..whole.len() - 5].to_vec();
        let (frames, error) = read_all(cut);
        assert_eq!(frames.len(), 1);
        match error {
            Some(CaptureError::CutShort { offset, .. }) => {
                assert_eq!(offset, 24 + 16 + frame.len() as u64)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_capture_is_said_to_be_so() {
        let text = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let size = text.len() as u64;
        let e = CaptureReader::from_reader(Path::new("notes.txt"), Cursor::new(text), size)
            .err()
            .expect("not a capture");
        assert_eq!(
            e.to_string(),
            "notes.txt is not a capture file (neither pcap nor pcapng)"
        );
    }
}
