//! Payload sampling: copies up to `SAMPLE_BYTES` of a TCP or UDP payload,
//! with its addresses and ports, onto the `SAMPLES` ring for the agent's
//! HTTP, DNS and rule inspection.

use aya_ebpf::{
    helpers::generated::{bpf_get_prandom_u32, bpf_probe_read_kernel},
    programs::XdpContext,
};
use nta_common::{
    Counter,
    maps::{SAMPLE_BYTES, Sample, SampleHeader, ip_proto, sample_port},
    packet::{Packet, TransportKind},
};

use crate::{
    count::Global,
    maps::{SAMPLE_PORTS, SAMPLE_RATE, SAMPLES, SAMPLING},
};

/// The per-CPU rate cap counts samples over this window.
const RATE_WINDOW_NS: u64 = 1_000_000_000;

/// Samples `packet` if its port is watched, it is among the first payloads
/// of its flow's direction (`payload_ordinal`), or it is the 1-in-N,
/// within the rate cap; `flow` is where it stands in its flow
/// (`sample_flow` bits). Never waits: a full ring is counted as lost.
#[inline(always)]
pub fn payload(
    ctx: &XdpContext,
    global: &Global,
    packet: &Packet,
    now: u64,
    (payload_ordinal, flow): (u64, u8),
) {
    let t = &packet.transport;
    let (proto, flag) = match t.kind {
        TransportKind::Tcp => (ip_proto::TCP, sample_port::TCP),
        TransportKind::Udp => (ip_proto::UDP, sample_port::UDP),
        _ => return,
    };
    if t.payload_len == 0 {
        return;
    }
    let Some(config) = SAMPLING.get(0) else {
        return;
    };
    if config.enabled == 0 {
        return;
    }
    let watched = |port: u16| {
        SAMPLE_PORTS
            .get(u32::from(port))
            .is_some_and(|f| f & flag != 0)
    };
    let early = payload_ordinal != 0 && payload_ordinal <= u64::from(config.flow_payloads);
    if !early && !watched(t.dst_port) && !watched(t.src_port) {
        let one_in = config.one_in;
        if one_in == 0 || unsafe { bpf_get_prandom_u32() } % one_in != 0 {
            return;
        }
    }
    let Some(rate) = SAMPLE_RATE.get_ptr_mut(0) else {
        return;
    };
    // Per-CPU value: plain updates cannot race.
    unsafe {
        if now.wrapping_sub((*rate)[0]) >= RATE_WINDOW_NS {
            (*rate)[0] = now;
            (*rate)[1] = 0;
        }
        if (*rate)[1] >= u64::from(config.max_per_sec) {
            global.add(Counter::SamplesCapped, 1);
            return;
        }
        (*rate)[1] += 1;
    }

    // What is in this frame of the payload, capped at the sample size.
    let start = ctx.data() + t.payload_offset as usize;
    let end = ctx.data_end();
    if start >= end {
        return;
    }
    let available = (end - start).min(t.payload_len as usize);
    let len = available.min(SAMPLE_BYTES);

    let Some(mut entry) = SAMPLES.reserve::<Sample>(0) else {
        global.add(Counter::SamplesLost, 1);
        return;
    };
    let sample = entry.as_mut_ptr();
    unsafe {
        (*sample).header = SampleHeader {
            src: packet.src,
            dst: packet.dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
            proto,
            tcp_flags: t.flags,
            flow,
            _pad: 0,
            payload_len: t.payload_len,
            captured: len as u32,
            seq: t.seq,
            _pad2: [0; 4],
            at_ns: now,
        };
        // A bounded, non-zero length for the verifier; probe_read (not
        // xdp_load_bytes) keeps Linux 5.15 supported, and the bytes read
        // are inside the frame by construction.
        let n = (len as u32) & (SAMPLE_BYTES as u32 * 2 - 1);
        if n == 0 || n as usize > SAMPLE_BYTES {
            entry.discard(0);
            return;
        }
        let dst = (&raw mut (*sample).data).cast();
        if bpf_probe_read_kernel(dst, n, start as *const _) != 0 {
            entry.discard(0);
            return;
        }
    }
    entry.submit(0);
    global.add(Counter::SamplesTaken, 1);
}
