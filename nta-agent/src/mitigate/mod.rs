//! Inline mitigation: sources dropped in XDP, by hand or automatically.
//!
//! - [`blocklist`]: the entries, kept in the kernel map and the store.
//! - [`protect`]: addresses never blocked (loopback, the agent's own, the
//!   API's clients, the allowlist).
//! - [`auto`]: which incidents block their source, for how long.
//! - [`client`]: `nta-agent block`, talking to the running agent.
//! - [`token`]: the token that mutating API calls always need.

pub mod auto;
pub mod blocklist;
pub mod client;
mod kernel;
pub mod protect;
pub mod token;
