//! nta's XDP program: parses every frame and counts what the detectors need.
//!
//! - Counts, in bounded maps: global totals (`GLOBAL`), per source
//!   (`SOURCES`), per destination host (`DST_HOSTS`) and SYNs per destination
//!   port (`SYN_PORTS`), with the rate and port-scan windows of each.
//! - Compares those windows with the thresholds the agent configured
//!   (`THRESHOLDS`) and signals each crossing at once on the `EVENTS` ring,
//!   once per key and window, so that detection does not wait for the
//!   agent's next poll. The agent decides what a crossing means.
//! - Samples the first bytes of payloads on the configured ports, under a
//!   rate cap, into the `SAMPLES` ring for rule matching.
//! - Passes every packet, except IP packets from a source the agent put in
//!   the `BLOCKLIST`.
#![no_std]
#![no_main]
#![expect(internal_features, reason = "atomic intrinsics are unstable")]
#![feature(core_intrinsics)]

mod block;
mod count;
mod features;
mod maps;
mod parse;
mod sample;
mod table;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use nta_common::{Counter, count::Verdict, maps::feature};

#[xdp]
pub fn nta(ctx: XdpContext) -> u32 {
    verdict(&ctx)
}

/// Returns the action in a register: a `Result` went back through the
/// stack, leaving whatever the last call put in R0 there at the exit, and
/// the verifier rejects a subprogram that exits with a pointer to its own
/// stack in R0.
fn verdict(ctx: &XdpContext) -> u32 {
    if !features::on(feature::PARSE) {
        return xdp_action::XDP_PASS;
    }
    let len = (ctx.data_end() - ctx.data()) as u64;
    let Ok(global) = count::Global::get() else {
        return xdp_action::XDP_PASS;
    };
    let frame = parse::Xdp(ctx);
    let blocked = |network: &parse::Network| {
        features::on(feature::BLOCKLIST) && block::drops(&global, network, len)
    };
    match nta_common::count::frame(&count::Maps(&global), &frame, len, blocked) {
        Verdict::Counted {
            packet,
            now,
            payload_ordinal,
            flow,
        } => {
            if features::on(feature::SAMPLING) {
                sample::payload(ctx, &global, &packet, now, (payload_ordinal, flow));
            }
        }
        Verdict::Blocked => return xdp_action::XDP_DROP,
        Verdict::Unparsed(Counter::ErrVlanTooDeep) => {
            // Rare and worth a look; compiled out below the agent's log level.
            aya_log_ebpf::debug!(ctx, "frame with more than two VLAN tags passed unparsed");
        }
        Verdict::Unparsed(_) | Verdict::Passed => {}
    }
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // A reachable panic becomes an infinite loop, which the verifier rejects:
    // the program then fails to load instead of shipping a crash path.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
