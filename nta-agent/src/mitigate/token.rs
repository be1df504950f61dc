//! The token that changing the blocklist always needs, even on loopback:
//! any local user or web page can reach a loopback port. Without
//! `--token`, the agent makes one at start and keeps it in a file only
//! root can read, beside the store, where `nta-agent block` finds it.

use std::{
    fs,
    io::{self, Read as _, Write as _},
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

/// Name of the token file, beside the store.
pub const TOKEN_FILE: &str = "api-token";

/// Why the token file cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot write the API token to {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "cannot read the API token from {}: {source}; is the agent running (it writes the file at start), and are you root? Or pass --token",
        path.display()
    )]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot make a random token: {0}")]
    Random(io::Error),
}

/// The token file for the store at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join(TOKEN_FILE)
}

/// A new random token (256 bits, hex), written to `path` with mode 0600
/// (replacing any earlier one: a token lives as long as its agent).
pub fn create(path: &Path) -> Result<String, TokenFileError> {
    let token = random_token()?;
    let write_err = |source| TokenFileError::Write {
        path: path.to_owned(),
        source,
    };
    // Removed first so that the new file is created with 0600 whatever the
    // old one's mode was.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    file.write_all(format!("{token}\n").as_bytes())
        .map_err(write_err)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(write_err)?;
    Ok(token)
}

/// The token in `path`.
pub fn read(path: &Path) -> Result<String, TokenFileError> {
    fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })
}

fn random_token() -> Result<String, TokenFileError> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(TokenFileError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_random_root_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("nta.redb"));
        assert_eq!(path, dir.path().join(TOKEN_FILE));
        let first = create(&path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(read(&path).unwrap(), first);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = create(&path).unwrap();
        assert_ne!(first, second);
        assert_eq!(read(&path).unwrap(), second);
    }

    #[test]
    fn a_missing_file_says_what_to_do() {
        let err = read(Path::new("/nonexistent/api-token"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/api-token") && err.contains("--token"),
            "{err}"
        );
    }
}
