//! The first bytes of each direction of a flow, put back in order.
//!
//! The kernel samples each segment on its own; a request whose headers span
//! two segments would be matched half at a time. Here the segments of a
//! TCP direction are laid out by sequence number, up to [`STREAM_BYTES`],
//! and the contiguous run from the first byte seen is handed back whenever
//! a segment extends it, for the parsers and rules to see whole. Past that
//! (or past a gap: a sample cut short, a segment not sampled) segments are
//! inspected alone, as they come.
//!
//! Memory is bounded per direction ([`STREAM_BYTES`], [`MAX_SEGMENTS`]) and
//! overall ([`MAX_STREAMS`], [`MAX_BUFFERED`]); a direction is forgotten
//! at its FIN or RST, or idle for [`IDLE_NS`].

use std::collections::HashMap;

use foldhash::fast::RandomState;
use nta_common::{IpKey, classify::tcp_flags, maps::SampleHeader};

/// Bytes of each direction reassembled: enough for an HTTP request's
/// headers or a TLS ClientHello.
pub const STREAM_BYTES: usize = 4096;
/// Segments kept per direction: out-of-order ones wait among them.
pub const MAX_SEGMENTS: usize = 8;
/// Directions tracked at once; past it the idle ones, then an eighth of
/// the others, are forgotten.
pub const MAX_STREAMS: usize = 32_768;
/// Segment bytes held across all directions.
pub const MAX_BUFFERED: usize = 16 << 20;
/// A direction with no segment for this long is forgotten.
pub const IDLE_NS: u64 = 30_000_000_000;

/// One direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Direction {
    pub src: IpKey,
    pub dst: IpKey,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
}

impl Direction {
    pub fn of(h: &SampleHeader) -> Self {
        Self {
            src: h.src,
            dst: h.dst,
            src_port: h.src_port,
            dst_port: h.dst_port,
            proto: h.proto,
        }
    }
}

/// What is known of one direction.
#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of the first byte seen: segments are placed
    /// relative to it.
    origin: u32,
    /// Held segments: offset from `origin` (negative when one came before
    /// the first seen), bytes.
    segments: Vec<(i64, Box<[u8]>)>,
    /// Length of the contiguous run last handed back.
    run_len: usize,
    /// Offsets where the contiguous run starts and ends: a segment that
    /// touches neither end cannot change it.
    run_start: i64,
    run_end: i64,
    /// No more reassembly: the run is full, or the segments are.
    done: bool,
    /// Whether the application protocol was looked for already.
    pub app_checked: bool,
    /// Rule ids already raised on this direction, so that the whole run
    /// does not raise again what one of its segments did.
    pub sids: Vec<u32>,
    last_ns: u64,
}

impl Stream {
    /// Whether reassembly has ended for this direction.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether one segment is all it holds: the run is that segment.
    pub fn is_one_segment(&self) -> bool {
        !self.done && self.segments.len() == 1
    }

    fn buffered(&self) -> usize {
        self.segments.iter().map(|(_, b)| b.len()).sum()
    }

    /// The contiguous run from the lowest offset held, at most
    /// [`STREAM_BYTES`]; the earliest copy of a byte wins.
    fn run(&mut self) -> Vec<u8> {
        self.segments.sort_by_key(|(at, _)| *at);
        let mut run = Vec::new();
        let Some(&(start, _)) = self.segments.first() else {
            return run;
        };
        let mut end = start;
        for (at, bytes) in &self.segments {
            if *at > end {
                break;
            }
            let skip = usize::try_from(end - at).unwrap_or(usize::MAX);
            if let Some(new) = bytes.get(skip..) {
                run.extend_from_slice(new);
                end += new.len() as i64;
            }
            if run.len() >= STREAM_BYTES {
                run.truncate(STREAM_BYTES);
                break;
            }
        }
        run
    }
}

/// Every direction being reassembled.
#[derive(Debug, Default)]
pub struct Streams {
    streams: HashMap<Direction, Stream, RandomState>,
    buffered: usize,
}

impl Streams {
    pub fn new() -> Self {
        Self::default()
    }

    /// Directions tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Segment bytes held.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Adds the TCP segment `h` describes; returns its direction's state
    /// and, when the segment extended a run of more than itself, the run.
    pub fn add(&mut self, h: &SampleHeader, data: &[u8]) -> (&mut Stream, Option<Vec<u8>>) {
        let key = Direction::of(h);
        let full = self.streams.len() >= MAX_STREAMS || self.buffered >= MAX_BUFFERED;
        if full && !self.streams.contains_key(&key) {
            self.make_room(h.at_ns);
        }
        let stream = self.streams.entry(key).or_insert_with(|| Stream {
            origin: h.seq,
            ..Stream::default()
        });
        stream.last_ns = h.at_ns;
        let mut grown = None;
        if !stream.done && !data.is_empty() {
            let before = stream.buffered();
            let at = i64::from(h.seq.wrapping_sub(stream.origin) as i32);
            let end = at + data.len() as i64;
            stream.segments.push((at, data.into()));
            if stream.segments.len() == 1 {
                // One segment is its own run: nothing to assemble.
                (stream.run_start, stream.run_end) = (at, end);
            } else if (at <= stream.run_end && end > stream.run_end)
                || (at < stream.run_start && end >= stream.run_start)
            {
                let run = stream.run();
                stream.run_start = stream.segments.first().map_or(at, |(s, _)| *s);
                stream.run_end = stream.run_start + run.len() as i64;
                if run.len() > stream.run_len && run.len() > data.len() {
                    grown = Some(run);
                }
            }
            stream.run_len = stream
                .run_len
                .max(grown.as_ref().map_or(data.len(), Vec::len));
            if stream.run_len >= STREAM_BYTES || stream.segments.len() >= MAX_SEGMENTS {
                stream.done = true;
                stream.segments = Vec::new();
            }
            self.buffered = self.buffered + stream.buffered() - before.min(self.buffered);
        }
        (stream, grown)
    }

    /// Forgets the direction of `h` if `h` ends it (FIN or RST); true if
    /// it did.
    pub fn end(&mut self, h: &SampleHeader) -> bool {
        if h.tcp_flags & (tcp_flags::FIN | tcp_flags::RST) == 0 {
            return false;
        }
        if let Some(stream) = self.streams.remove(&Direction::of(h)) {
            self.buffered -= stream.buffered().min(self.buffered);
        }
        true
    }

    /// Forgets idle directions when full; then, if still full, an eighth
    /// of the others (the map's order, not their age: cheap, and a flood
    /// of new directions cannot pin the old ones).
    fn make_room(&mut self, now: u64) {
        if self.streams.len() < MAX_STREAMS && self.buffered < MAX_BUFFERED {
            return;
        }
        self.streams
            .retain(|_, s| now.saturating_sub(s.last_ns) < IDLE_NS);
        if self.streams.len() >= MAX_STREAMS || self.buffered_now() >= MAX_BUFFERED {
            let drop: Vec<Direction> = self
                .streams
                .keys()
                .take(self.streams.len() / 8 + 1)
                .copied()
                .collect();
            for key in drop {
                self.streams.remove(&key);
            }
        }
        self.buffered = self.buffered_now();
    }

    fn buffered_now(&self) -> usize {
        self.streams.values().map(Stream::buffered).sum()
    }
}

#[cfg(test)]
mod tests {
    use nta_common::maps::ip_proto;

    use super::*;

    fn segment(seq: u32, len: usize, flags: u8, at_ns: u64) -> SampleHeader {
        SampleHeader {
            src: IpKey::from_v4([198, 18, 0, 2]),
            dst: IpKey::from_v4([198, 18, 0, 1]),
            src_port: 40_000,
            dst_port: 8888,
            proto: ip_proto::TCP,
            tcp_flags: flags,
            flow: 0,
            _pad: 0,
            payload_len: len as u32,
            captured: len as u32,
            seq,
            _pad2: [0; 4],
            at_ns,
        }
    }

    fn add(streams: &mut Streams, seq: u32, data: &[u8]) -> Option<Vec<u8>> {
        streams.add(&segment(seq, data.len(), 0x18, 1), data).1
    }

    #[test]
    fn segments_in_order_give_the_run_each_time_it_grows() {
        let mut s = Streams::new();
        // Sequence numbers that wrap between the segments.
        let seq = u32::MAX - 3;
        assert_eq!(
            add(&mut s, seq, b"GET / HT"),
            None,
            "one segment is inspected alone"
        );
        assert_eq!(
            add(&mut s, seq.wrapping_add(8), b"TP/1.1\r\n").as_deref(),
            Some(&b"GET / HTTP/1.1\r\n"[..])
        );
        assert_eq!(
            add(&mut s, seq.wrapping_add(8), b"TP/1.1\r\n"),
            None,
            "a retransmission adds nothing"
        );
        assert_eq!(s.buffered(), 24);
    }

    #[test]
    fn a_segment_out_of_order_waits_for_the_gap() {
        let mut s = Streams::new();
        assert_eq!(add(&mut s, 1000, b"abc"), None);
        assert_eq!(add(&mut s, 1006, b"ghi"), None, "after a gap");
        assert_eq!(
            add(&mut s, 1003, b"def").as_deref(),
            Some(&b"abcdefghi"[..])
        );
        // One that came before the first seen is put in front.
        let mut s = Streams::new();
        assert_eq!(add(&mut s, 2003, b"def"), None);
        assert_eq!(add(&mut s, 2000, b"abc").as_deref(), Some(&b"abcdef"[..]));
    }

    #[test]
    fn the_run_stops_at_its_bound_and_the_direction_at_fin() {
        let mut s = Streams::new();
        let chunk = vec![b'x'; 1000];
        let mut last = None;
        for i in 0..5u32 {
            last = add(&mut s, i * 1000, &chunk).or(last);
        }
        assert_eq!(last.map(|r| r.len()), Some(STREAM_BYTES));
        assert_eq!(s.buffered(), 0, "a full run lets its segments go");
        assert_eq!(add(&mut s, 5000, &chunk), None, "past the bound, alone");

        let mut s = Streams::new();
        add(&mut s, 0, b"abc");
        let fin = segment(3, 3, 0x19, 2);
        let (_, run) = s.add(&fin, b"def");
        assert_eq!(run.as_deref(), Some(&b"abcdef"[..]));
        assert!(s.end(&fin), "a FIN ends the direction");
        assert_eq!((s.buffered(), s.len()), (0, 0));
    }

    #[test]
    fn directions_are_bounded_in_number() {
        let mut s = Streams::new();
        for i in 0..(MAX_STREAMS as u32 + 1000) {
            let mut h = segment(0, 3, 0x18, 1);
            h.src = IpKey::from_v4(i.to_be_bytes());
            s.add(&h, b"abc");
        }
        assert!(s.len() <= MAX_STREAMS, "{}", s.len());
        assert!(s.buffered() <= MAX_STREAMS * 3);
        assert_eq!(s.buffered(), s.buffered_now());
    }
}
