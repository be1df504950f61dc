#![no_std]
// The library target exists so that host tools (`cargo check --workspace`,
// clippy) can build this crate; the XDP program is the `nta` binary.
