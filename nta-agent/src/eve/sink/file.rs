//! EVE lines appended to a file, or written to stdout. The file is opened
//! again when asked (SIGHUP, after logrotate has moved it), so that the
//! lines before the signal are in the moved file and those after in a new
//! one, none lost; and, when it rotates, at each turn of its interval, under
//! its name's date modifiers expanded anew.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write as _},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use jiff::{Timestamp, ZonedDateTime};

use super::{Line, Output};
use crate::config::eve::expand_date;

/// Asks file sinks to open their file again; clones share the request.
#[derive(Debug, Clone, Default)]
pub struct Reopen(Arc<AtomicU64>);

impl Reopen {
    /// Every file sink opens its file again before its next write.
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn generation(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(super) struct FileOutput {
    /// `None` for stdout; else the name as configured, date modifiers and
    /// all.
    path: Option<PathBuf>,
    /// A new file at each turn of this interval.
    rotate: Option<Duration>,
    /// When the open file's interval ends.
    rotate_at: Option<Timestamp>,
    reopen: Reopen,
    /// The request generation the open file answers.
    opened_at: u64,
    out: Option<BufWriter<Box<dyn io::Write + Send>>>,
}

impl FileOutput {
    pub(super) fn stdout() -> Self {
        Self {
            path: None,
            rotate: None,
            rotate_at: None,
            reopen: Reopen::default(),
            opened_at: 0,
            out: None,
        }
    }

    pub(super) fn file(path: PathBuf, rotate: Option<Duration>, reopen: Reopen) -> Self {
        Self {
            path: Some(path),
            rotate,
            rotate_at: None,
            reopen,
            opened_at: 0,
            out: None,
        }
    }

    fn open(&mut self) -> io::Result<()> {
        self.opened_at = self.reopen.generation();
        let out: Box<dyn io::Write + Send> = match &self.path {
            None => Box::new(io::stdout()),
            Some(pattern) => {
                let now = ZonedDateTime::now();
                let path = expand_date(pattern, &now).map_err(io::Error::other)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                self.rotate_at = self.rotate.map(|every| next_turn(&now, every));
                Box::new(open_append(&path)?)
            }
        };
        self.out = Some(BufWriter::new(out));
        Ok(())
    }

    /// Whether the file is due to be opened again: asked to, or at the turn
    /// of its interval.
    fn due(&self) -> bool {
        self.path.is_some()
            && (self.reopen.generation() != self.opened_at
                || self.rotate_at.is_some_and(|at| Timestamp::now() >= at))
    }
}

/// The end of the interval that holds `now`, counted in whole intervals
/// from midnight 1970-01-01 local time: an `hour` turns on the hour and a
/// `day` at local midnight, as the file names' dates read.
fn next_turn(now: &ZonedDateTime, every: Duration) -> Timestamp {
    let offset = i128::from(now.offset().seconds()) * 1_000_000_000;
    let local = now.timestamp().as_nanosecond() + offset;
    let every = i128::try_from(every.as_nanos()).unwrap_or(i128::MAX).max(1);
    let next = (local.div_euclid(every) + 1) * every - offset;
    Timestamp::from_nanosecond(next).unwrap_or(Timestamp::MAX)
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Output for FileOutput {
    fn connect(&mut self) -> io::Result<()> {
        if self.out.is_none() {
            self.open()?;
        }
        Ok(())
    }

    fn write(&mut self, lines: &[Line]) -> io::Result<()> {
        if self.due() {
            if let Some(mut old) = self.out.take() {
                old.flush()?;
            }
            self.open()?;
        }
        let out = match &mut self.out {
            Some(out) => out,
            None => return Err(io::Error::other("the EVE file is not open")),
        };
        for line in lines {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        // Flushed at the end of each batch, so that a reader (tail -f, a
        // log shipper) sees each burst of events at its end.
        out.flush()
    }

    fn disconnect(&mut self) {
        if let Some(mut out) = self.out.take() {
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(now: &str, every: u64) -> String {
        let now: ZonedDateTime = now.parse().unwrap();
        let at = next_turn(&now, Duration::from_secs(every));
        at.to_zoned_datetime(now.time_zone().clone()).to_string()
    }

    #[test]
    fn intervals_turn_on_local_boundaries() {
        let now = "2026-12-06T13:47:12.5+05:30[Asia/Kolkata]";
        assert_eq!(turn(now, 3_600), "2026-12-06T14:00:00+05:30[Asia/Kolkata]");
        assert_eq!(turn(now, 86_400), "2026-12-07T00:00:00+05:30[Asia/Kolkata]");
        assert_eq!(turn(now, 60), "2026-12-06T13:48:00+05:30[Asia/Kolkata]");
        assert_eq!(turn(now, 900), "2026-12-06T14:00:00+05:30[Asia/Kolkata]");
        assert_eq!(turn(now, 30), "2026-12-06T13:47:30+05:30[Asia/Kolkata]");
        // On a boundary: the next one, not itself.
        let on = "2026-12-06T14:00:00+05:30[Asia/Kolkata]";
        assert_eq!(turn(on, 3_600), "2026-12-06T15:00:00+05:30[Asia/Kolkata]");
    }
}
