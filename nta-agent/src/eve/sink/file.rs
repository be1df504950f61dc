//! EVE lines appended to a file, or written to stdout. The file is opened
//! again when asked (SIGHUP, after logrotate has moved it), so that the
//! lines before the signal are in the moved file and those after in a new
//! one, none lost.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufWriter, Write as _},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{Line, Output};

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
    /// `None` for stdout.
    path: Option<PathBuf>,
    reopen: Reopen,
    /// The request generation the open file answers.
    opened_at: u64,
    out: Option<BufWriter<Box<dyn io::Write + Send>>>,
}

impl FileOutput {
    pub(super) fn stdout() -> Self {
        Self {
            path: None,
            reopen: Reopen::default(),
            opened_at: 0,
            out: None,
        }
    }

    pub(super) fn file(path: PathBuf, reopen: Reopen) -> Self {
        Self {
            path: Some(path),
            reopen,
            opened_at: 0,
            out: None,
        }
    }

    fn open(&mut self) -> io::Result<()> {
        self.opened_at = self.reopen.generation();
        let out: Box<dyn io::Write + Send> = match &self.path {
            None => Box::new(io::stdout()),
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Box::new(open_append(path)?)
            }
        };
        self.out = Some(BufWriter::new(out));
        Ok(())
    }
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
        if self.path.is_some() && self.reopen.generation() != self.opened_at {
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
