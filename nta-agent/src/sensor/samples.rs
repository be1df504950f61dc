//! The ring of payload samples, read as the kernel fills it.

use nta_common::maps::{SAMPLE_BYTES, SampleHeader};

pub use crate::source::PayloadSample;

/// Samples waiting for the payload pipeline: a second of a busy web
/// server's requests at the default rate cap. Past it, samples are counted
/// as dropped rather than held: the kernel ring already buffers more.
pub const SAMPLE_QUEUE: usize = 4096;

/// A sample from its ring record; `None` if the record is too short or
/// claims more bytes than it can hold.
pub fn parse(bytes: &[u8]) -> Option<PayloadSample> {
    let header_len = size_of::<SampleHeader>();
    if bytes.len() < header_len {
        return None;
    }
    // SAFETY: the length is checked; SampleHeader is plain integers, valid
    // for any bytes; ring records need not be aligned for it.
    let header = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SampleHeader>()) };
    let captured = header.captured as usize;
    if captured > SAMPLE_BYTES {
        return None;
    }
    let data = bytes.get(header_len..header_len + captured)?.to_vec();
    Some(PayloadSample { header, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nta_common::{IpKey, maps::ip_proto};

    fn record(captured: u32, payload: &[u8]) -> Vec<u8> {
        let header = SampleHeader {
            src: IpKey::from_v4([198, 18, 0, 2]),
            dst: IpKey::from_v4([198, 18, 0, 1]),
            src_port: 40_000,
            dst_port: 80,
            proto: ip_proto::TCP,
            tcp_flags: 0x18,
            flow: 0,
            _pad: 0,
            payload_len: payload.len() as u32,
            captured,
            seq: 0,
            _pad2: [0; 4],
            at_ns: 1,
        };
        // SAFETY: reading the bytes of a plain-integer struct.
        let mut bytes = unsafe {
            std::slice::from_raw_parts((&raw const header).cast::<u8>(), size_of::<SampleHeader>())
        }
        .to_vec();
        bytes.extend_from_slice(payload);
        bytes.resize(size_of::<SampleHeader>() + SAMPLE_BYTES, 0);
        bytes
    }

    #[test]
    fn a_record_gives_its_captured_bytes() {
        let s = parse(&record(14, b"GET / HTTP/1.1")).expect("sample");
        assert_eq!(s.data, b"GET / HTTP/1.1");
        assert_eq!(s.header.dst_port, 80);
    }

    #[test]
    fn short_or_lying_records_are_refused() {
        assert!(parse(&[0; 10]).is_none());
        assert!(parse(&record(SAMPLE_BYTES as u32 + 1, b"x")).is_none());
        let mut short = record(100, b"x");
        short.truncate(size_of::<SampleHeader>() + 50);
        assert!(parse(&short).is_none());
    }
}
