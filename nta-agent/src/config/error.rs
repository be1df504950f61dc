//! What can be wrong with a config file, worded so the user can find and fix it.

use std::{fmt, io, path::PathBuf};

/// A place in a config file, both 1-based as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters (not bytes), from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub(crate) fn of(text: &str, offset: usize) -> Location {
        // A span can end past the text (an error at end of input) or, in
        // principle, inside a multi-byte character: clamp to something we can
        // slice rather than panic while reporting someone else's mistake.
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Formats `path` with `:line:col` when the location is known.
struct At<'a>(&'a PathBuf, &'a Option<Location>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(location) => write!(f, "{}:{location}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// Why a config file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Not TOML, or TOML that does not fit the config's shape: an unknown or
    /// misspelled key, a wrong type, a duration or network that does not parse.
    #[error("{}: {message}", At(path, location))]
    Parse {
        path: PathBuf,
        location: Option<Location>,
        message: String,
    },

    /// Well-formed, but a value is out of its accepted range or contradicts
    /// another one.
    #[error("{}: {key}: {message}", At(path, location))]
    Invalid {
        path: PathBuf,
        /// Where the value is, when it was written in the file.
        location: Option<Location>,
        /// The key's path, as in `port_scan.fast_window` or
        /// `override[1].network` (0-based, like TOML tooling counts).
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// Where in the file the problem is, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { location, .. } | ConfigError::Invalid { location, .. } => {
                *location
            }
        }
    }
}
