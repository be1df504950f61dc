//! Suricata's EVE JSON output: one JSON object a line, the format the IDS
//! ecosystem reads (Elastic, Splunk, Wazuh, jq, Suricata's own tools).
//!
//! Rule matches are `alert` events as Suricata writes them, one per
//! matching sample; nta's own detections (scans, floods, DNS tunnels) are
//! `alert` events too, one when each incident opens, with a signature id
//! per kind ([`sid`]) and the kind and evidence in `alert.metadata`;
//! `stats` events carry the kernel's totals. Every event stays within
//! Suricata's published schema, which forbids fields it does not know, and
//! names the sensor in `host`. The events go to a file or stdout, a unix
//! socket and Redis at once ([`sink`]).

mod event;
pub mod sid;
mod sink;
mod writer;

pub use event::{Event, Flow, detection, signature, stats, timestamp};
pub use sink::{Reopen, SinkSpec, SinkStats};
pub use writer::{EVE_QUEUE, EveOutputs, EveTarget, EveWriter, outputs};
