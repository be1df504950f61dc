//! Flow records out of nta in a standard format, for the collectors and
//! flow tools a network already runs: IPFIX (RFC 7011) over UDP.
//!
//! - [`ipfix`]: the encoding: templates, records, messages and their
//!   sequence numbers; pure, no I/O.
//! - [`udp`]: the exporter: a UDP socket towards one collector that never
//!   waits on the network, and what it sent or failed to send.
//!
//! The `run` loop and the `read` command hand it the same records they
//! write to EVE; it uses nothing of nta's but [`crate::flows`].

pub mod ipfix;
pub mod udp;

pub use ipfix::Encoder;
pub use udp::{ExportTotals, IpfixExporter};

/// What can go wrong exporting flow records.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("opening a UDP socket towards the IPFIX collector {collector}")]
    Socket {
        collector: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The wire encoder refused a message (it says why in its own words:
    /// its errors are not `Send`, so only their text is kept).
    #[error("encoding an IPFIX message: {0}")]
    Encode(String),
}
