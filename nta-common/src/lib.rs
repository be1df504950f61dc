//! Types and logic shared by the XDP program and the agent, defined once for
//! both sides: map layouts, classification, and the counting itself.
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of implicit padding, so the
//! XDP program and the agent agree byte for byte on map keys and values.
#![no_std]

pub mod classify;
pub mod count;
pub mod counters;
pub mod flow;
pub mod maps;
pub mod packet;
pub mod parse;
pub mod sketch;
pub mod table;

#[cfg(feature = "user")]
mod user;

pub use counters::{Counter, GlobalCounters};
pub use maps::{BlockKey, BlockStats, DstHostStats, IpKey, PortSynCounts, SourceStats};
