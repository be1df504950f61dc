//! EVE into Redis as Suricata's redis output puts it: pushed on a list
//! (`LPUSH`, or `RPUSH`), published on a channel, or added to a stream
//! (`XADD key * eve JSON`, which consumer groups can share). Each batch is
//! one pipeline.

use std::{io, time::Duration};

use anyhow::Context as _;

use super::{Line, Output};
use crate::config::RedisMode;

/// How long connecting, or a pipeline's answer, may take before the sink
/// counts the batch lost and reconnects.
const TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct RedisOutput {
    client: redis::Client,
    mode: RedisMode,
    key: String,
    connection: Option<redis::Connection>,
}

impl RedisOutput {
    pub(super) fn new(url: &str, mode: RedisMode, key: String) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).with_context(|| format!("invalid Redis address {url}"))?;
        Ok(Self {
            client,
            mode,
            key,
            connection: None,
        })
    }
}

fn io_error(e: redis::RedisError) -> io::Error {
    io::Error::other(e)
}

impl Output for RedisOutput {
    fn connect(&mut self) -> io::Result<()> {
        let connection = self
            .client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(io_error)?;
        connection
            .set_write_timeout(Some(TIMEOUT))
            .map_err(io_error)?;
        connection
            .set_read_timeout(Some(TIMEOUT))
            .map_err(io_error)?;
        self.connection = Some(connection);
        Ok(())
    }

    fn write(&mut self, lines: &[Line]) -> io::Result<()> {
        let Some(connection) = &mut self.connection else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        let mut pipe = redis::pipe();
        for line in lines {
            let line: &[u8] = line;
            let cmd = match self.mode {
                RedisMode::List => pipe.cmd("LPUSH").arg(&self.key).arg(line),
                RedisMode::Rpush => pipe.cmd("RPUSH").arg(&self.key).arg(line),
                RedisMode::Publish => pipe.cmd("PUBLISH").arg(&self.key).arg(line),
                RedisMode::Stream => pipe
                    .cmd("XADD")
                    .arg(&self.key)
                    .arg("*")
                    .arg("eve")
                    .arg(line),
            };
            cmd.ignore();
        }
        pipe.query::<()>(connection).map_err(io_error)
    }

    fn disconnect(&mut self) {
        self.connection = None;
    }
}
