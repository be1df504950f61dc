//! The real XDP program run on crafted frames with `BPF_PROG_TEST_RUN`,
//! through one harness (`support::xdp`), in one test binary with a module a
//! suite, as aya's integration tests are (one link instead of seven):
//!
//! - `counters`: every counter of every map, layer by layer, every
//!   truncation of a frame, and the new-source rate limit;
//! - `events`: the threshold events on the `EVENTS` ring;
//! - `blocklist`: which sources the kernel blocklist drops, and what it
//!   counts;
//! - `samples`: the payload samples on the `SAMPLES` ring;
//! - `victims`: per-destination classes, services and sources, and the
//!   probes, host sketch and sweep events per source;
//! - `flows`: the flow table, both directions in one entry, and its
//!   new-flow rate limit;
//! - `tables`: the tables of sources and destinations, and the idle
//!   entries the agent frees;
//! - `parts`: the load-time part switches;
//! - `robustness`: random and mutated frames against a model of the parse;
//! - `differential`: the same frames through the program and through the
//!   capture reader's counting, with the same results;
//! - `cost`: benchmarks of the time per packet (ignored; `cargo xtask
//!   bench` runs them).
//!
//! Needs root (BPF): `cargo test -p nta-agent --test xdp --
//! --test-threads=1`, or one suite: `... --test xdp -- --test-threads=1
//! counters::`.

#[path = "../support/mod.rs"]
mod support;

mod blocklist;
mod cost;
mod counters;
mod differential;
mod events;
mod flows;
mod parts;
mod robustness;
mod samples;
mod tables;
mod victims;
