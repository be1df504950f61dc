//! The capture reader on arbitrary bytes as a file (pcap, pcapng, or
//! neither), then every frame it yields decoded as each link type by the
//! parser the XDP program shares.
//!
//! Every frame is also counted, as each link type, as the reader counts it
//! (the XDP program's counting in memory, thresholds at their lowest).
//!
//! Asserts: no panic, and no endless loop (each call makes progress or
//! ends the file); a frame never holds more bytes than the input; every
//! frame counted once per link type; the offset an error names is within
//! the input.

#![no_main]

use std::{io::Cursor, path::Path};

use libfuzzer_sys::fuzz_target;
use nta_agent::capture::{CaptureError, CaptureReader, Counts, Link, decode, payload};
use nta_common::{Counter, maps::Thresholds};

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
    let thresholds = Thresholds {
        dst_packets: [0; 6],
        source: [0; 5],
        sweep_bits: 0,
        fast_ports: 0,
        slow_bits: 0,
        ..Thresholds::DISABLED
    };
    let counts = Counts::new(thresholds, nta_common::flow::FLOWS_MAX_ENTRIES);
    let mut counted = 0;
    // A frame takes at least a 16-byte record: more calls than that means
    // the reader is not getting anywhere.
    for _ in 0..=data.len() / 16 + 2 {
        let mut frame_len = None;
        match reader.next_frame(|f| {
            frame_len = Some(f.data.len());
            counts.set_time(f.ts);
            for link in LINKS.into_iter().chain([f.link]) {
                if let Some(packet) = decode(link, f.data) {
                    assert!(payload(&packet, f.data).len() <= f.data.len());
                }
                counts.frame(link, f.data, f.wire_len);
                counted += 1;
            }
            let _ = counts.take_events();
            assert_eq!(counts.global().get(Counter::Packets), counted);
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
    panic!(
        "no end after {} calls on {} bytes",
        data.len() / 16 + 3,
        data.len()
    );
});
