//! nta's agent: loads the XDP sensor, reads its kernel counters and reports
//! what they show.
//!
//! - [`cli`]: command-line interface.
//! - [`sensor`]: load and attach the XDP program, read its maps.
//! - [`traffic`]: rates and top talkers from two counter snapshots.
//! - [`run`]: the `run` command's loop and shutdown.

pub mod cli;
pub mod run;
pub mod sensor;
pub mod traffic;
