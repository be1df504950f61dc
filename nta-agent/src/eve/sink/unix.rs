//! EVE to a unix socket a reader listens on, as Suricata's `unix_dgram`
//! (one event a datagram) and `unix_stream` (one event a line).

use std::{
    io::{self, Write as _},
    os::unix::net::{UnixDatagram, UnixStream},
    path::PathBuf,
    time::Duration,
};

use super::{Line, Output};
use crate::config::SocketType;

/// How long a write may wait for a reader that stopped reading before the
/// sink counts the batch lost and reconnects.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct UnixOutput {
    path: PathBuf,
    kind: SocketType,
    socket: Option<Socket>,
}

enum Socket {
    Dgram(UnixDatagram),
    Stream(UnixStream),
}

impl UnixOutput {
    pub(super) fn new(path: PathBuf, kind: SocketType) -> Self {
        Self {
            path,
            kind,
            socket: None,
        }
    }
}

impl Output for UnixOutput {
    fn connect(&mut self) -> io::Result<()> {
        let socket = match self.kind {
            SocketType::Dgram => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(&self.path)?;
                socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Socket::Dgram(socket)
            }
            SocketType::Stream => {
                let socket = UnixStream::connect(&self.path)?;
                socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Socket::Stream(socket)
            }
        };
        self.socket = Some(socket);
        Ok(())
    }

    fn write(&mut self, lines: &[Line]) -> io::Result<()> {
        match &mut self.socket {
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
            Some(Socket::Dgram(socket)) => {
                for line in lines {
                    socket.send(line)?;
                }
                Ok(())
            }
            Some(Socket::Stream(socket)) => {
                let mut buffer = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
                for line in lines {
                    buffer.extend_from_slice(line);
                    buffer.push(b'\n');
                }
                socket.write_all(&buffer)
            }
        }
    }

    fn disconnect(&mut self) {
        self.socket = None;
    }
}
