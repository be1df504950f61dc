//! Inline mitigation: sources dropped in XDP, by hand or automatically.
//!
//! - [`blocklist`]: the entries, kept in the kernel map and the store.
//! - [`protect`]: addresses never blocked (loopback, the agent's own, the
//!   API's clients, the allowlist).
//! - [`auto`]: which incidents block their source, for how long.
//! - [`client`]: `nta-agent block`, talking to the running agent.
//! - [`memory`]: a blocklist in memory only, where no XDP program drops.
//! - [`token`]: the token that mutating API calls always need.

pub mod auto;
pub mod blocklist;
pub mod client;
mod kernel;
pub mod memory;
pub mod protect;
pub mod token;
