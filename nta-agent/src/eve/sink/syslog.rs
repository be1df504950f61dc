//! EVE to the local syslog (`/dev/log`, where journald or rsyslog listen),
//! one event a message, as Suricata's syslog output: facility `local5`,
//! severity `info`, tag `nta`, the event's JSON as the message.

use std::{io, os::unix::net::UnixDatagram, path::PathBuf, time::Duration};

use super::{Line, Output};

/// `local5` (21) × 8 + `info` (6), Suricata's default facility and level.
const PRIORITY: u8 = 174;

/// How long a send may wait for a syslog daemon that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct SyslogOutput {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    /// `nta[PID]: `, RFC 3164's tag.
    tag: String,
}

impl SyslogOutput {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            socket: None,
            tag: format!("nta[{}]: ", std::process::id()),
        }
    }
}

impl Output for SyslogOutput {
    fn connect(&mut self) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&self.path)?;
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        self.socket = Some(socket);
        Ok(())
    }

    fn write(&mut self, lines: &[Line]) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        let mut message = Vec::new();
        for line in lines {
            message.clear();
            // The local daemon stamps the time and host itself.
            message.extend_from_slice(format!("<{PRIORITY}>{}", self.tag).as_bytes());
            message.extend_from_slice(line);
            socket.send(&message)?;
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        self.socket = None;
    }
}
