//! Types that cross the kernel/user boundary, defined once for both sides.
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of implicit padding, so the
//! XDP program and the agent agree byte for byte on map keys and values.
#![no_std]

pub mod classify;
pub mod counters;
pub mod maps;
pub mod sketch;

#[cfg(feature = "user")]
mod user;

pub use counters::{Counter, GlobalCounters};
pub use maps::{BlockKey, BlockStats, DstHostStats, IpKey, PortSynCounts, SourceStats};
