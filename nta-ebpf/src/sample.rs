//! Payload sampling: copies up to `SAMPLE_BYTES` of a TCP or UDP payload,
//! with its addresses and ports, onto the `SAMPLES` ring for the agent's
//! HTTP, DNS and rule inspection.

use aya_ebpf::{
    bindings::xdp_md,
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
    maps::{PENDING_SAMPLE, SAMPLE_PORTS, SAMPLE_RATE, SAMPLES, SAMPLING},
};

/// The per-CPU rate cap counts samples over this window.
const RATE_WINDOW_NS: u64 = 1_000_000_000;

/// Samples `packet` if its port is watched, it is among the first payloads
/// of its flow's direction (`payload_ordinal`), or it is the 1-in-N,
/// within the rate cap; `flow` is where it stands in its flow
/// (`sample_flow` bits). Never waits: a full ring is counted as lost.
///
/// The packet's header goes through `PENDING_SAMPLE` to [`nta_sample`], a
/// global function, which the verifier checks once, on its own: inlined,
/// the sampling's branches were walked again for each way the counting
/// before it could end, and with the tables of sources and destinations
/// that took the program past the verifier's limit.
#[inline(always)]
pub fn payload(ctx: &XdpContext, packet: &Packet, now: u64, (payload_ordinal, flow): (u64, u8)) {
    let t = &packet.transport;
    let proto = match t.kind {
        TransportKind::Tcp => ip_proto::TCP,
        TransportKind::Udp => ip_proto::UDP,
        _ => return,
    };
    if t.payload_len == 0 {
        return;
    }
    let Some(pending) = PENDING_SAMPLE.get_ptr_mut(0) else {
        return;
    };
    // Per-CPU value: nothing else writes it before the call reads it.
    unsafe {
        *pending = SampleHeader {
            src: packet.src,
            dst: packet.dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
            proto,
            tcp_flags: t.flags,
            flow,
            _pad: 0,
            payload_len: t.payload_len,
            captured: 0,
            seq: t.seq,
            _pad2: [0; 4],
            at_ns: now,
        };
    }
    nta_sample(ctx.ctx, u64::from(t.payload_offset), payload_ordinal);
}

/// Samples the TCP or UDP payload at `payload_offset` of the frame whose
/// header is in `PENDING_SAMPLE` (see [`payload`]); returns 1 if it did.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn nta_sample(ctx: *mut xdp_md, payload_offset: u64, payload_ordinal: u64) -> u32 {
    let ctx = XdpContext::new(ctx);
    let Ok(global) = Global::get() else {
        return 0;
    };
    let Some(pending) = PENDING_SAMPLE.get_ptr(0) else {
        return 0;
    };
    let (src_port, dst_port, proto, payload_len, now) = unsafe {
        let h = &*pending;
        (h.src_port, h.dst_port, h.proto, h.payload_len, h.at_ns)
    };
    let flag = if proto == ip_proto::TCP {
        sample_port::TCP
    } else {
        sample_port::UDP
    };
    let Some(config) = SAMPLING.get(0) else {
        return 0;
    };
    if config.enabled == 0 {
        return 0;
    }
    let watched = |port: u16| {
        SAMPLE_PORTS
            .get(u32::from(port))
            .is_some_and(|f| f & flag != 0)
    };
    let early = payload_ordinal != 0 && payload_ordinal <= u64::from(config.flow_payloads);
    if !early && !watched(dst_port) && !watched(src_port) {
        let one_in = config.one_in;
        if one_in == 0 || unsafe { bpf_get_prandom_u32() } % one_in != 0 {
            return 0;
        }
    }
    let Some(rate) = SAMPLE_RATE.get_ptr_mut(0) else {
        return 0;
    };
    // Per-CPU value: plain updates cannot race.
    unsafe {
        if now.wrapping_sub((*rate)[0]) >= RATE_WINDOW_NS {
            (*rate)[0] = now;
            (*rate)[1] = 0;
        }
        if (*rate)[1] >= u64::from(config.max_per_sec) {
            global.add(Counter::SamplesCapped, 1);
            return 0;
        }
        (*rate)[1] += 1;
    }

    // What is in this frame of the payload, capped at the sample size.
    let start = ctx.data() + (payload_offset & 0xffff) as usize;
    let end = ctx.data_end();
    if start >= end {
        return 0;
    }
    let available = (end - start).min(payload_len as usize);
    let len = available.min(SAMPLE_BYTES);

    let Some(mut entry) = SAMPLES.reserve::<Sample>(0) else {
        global.add(Counter::SamplesLost, 1);
        return 0;
    };
    let sample = entry.as_mut_ptr();
    unsafe {
        (*sample).header = SampleHeader {
            captured: len as u32,
            ..*pending
        };
        // A bounded, non-zero length for the verifier; probe_read (not
        // xdp_load_bytes) keeps Linux 5.15 supported, and the bytes read
        // are inside the frame by construction.
        let n = (len as u32) & (SAMPLE_BYTES as u32 * 2 - 1);
        if n == 0 || n as usize > SAMPLE_BYTES {
            entry.discard(0);
            return 0;
        }
        let dst = (&raw mut (*sample).data).cast();
        if bpf_probe_read_kernel(dst, n, start as *const _) != 0 {
            entry.discard(0);
            return 0;
        }
    }
    entry.submit(0);
    global.add(Counter::SamplesTaken, 1);
    1
}
