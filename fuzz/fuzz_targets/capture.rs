//! The capture reader on arbitrary bytes as a file (pcap, pcapng, or
//! neither), then every frame it yields decoded as each link type by the
//! parser the XDP program shares.
//!
//! Asserts: no panic, and no endless loop (each call makes progress or
//! ends the file); a frame never holds more bytes than the input; the
//! offset an error names is within the input.

#![no_main]

use std::{io::Cursor, path::Path};

use libfuzzer_sys::fuzz_target;
use nta_agent::capture::{CaptureError, CaptureReader, Link, decode, payload};

const LINKS: [Link; 6] = [
    Link::Ethernet,
    Link::Null,
    Link::Raw,
    Link::LinuxSll,
    Link::LinuxSll2,
    Link::Other(147),
];

fuzz_target!(|data: &[u8]| {
    let size = data.len() as u64;
    let Ok(mut reader) =
        CaptureReader::from_reader(Path::new("fuzz.pcap"), Cursor::new(data.to_vec()), size)
    else {
        return;
    };
    // A frame takes at least a 16-byte record: more calls than that means
    // the reader is not getting anywhere.
    for _ in 0..=data.len() / 16 + 2 {
        let mut frame_len = None;
        match reader.next_frame(|f| {
            frame_len = Some(f.data.len());
            for link in LINKS.into_iter().chain([f.link]) {
                if let Some(packet) = decode(link, f.data) {
                    assert!(payload(&packet, f.data).len() <= f.data.len());
                }
            }
        }) {
            Ok(true) => assert!(frame_len.is_some_and(|n| n <= data.len())),
            Ok(false) => return,
            Err(CaptureError::CutShort { offset, .. } | CaptureError::Corrupt { offset, .. }) => {
                assert!(offset <= size, "offset {offset} past {size}");
                return;
            }
            Err(e) => panic!("unexpected after opening: {e}"),
        }
    }
    panic!("no end after {} calls on {} bytes", data.len() / 16 + 3, data.len());
});
