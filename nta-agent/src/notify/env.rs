//! The environment the notifier reads: process variables first, then a
//! `.env` file (where the documented `.env` variables live), never changing the process's
//! own environment.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

/// Every variable the notifier reads, for `.env.example` and the tests.
pub const VARIABLES: [&str; 14] = [
    "NTA_SMTP_HOST",
    "NTA_SMTP_PORT",
    "NTA_SMTP_TLS",
    "NTA_SMTP_USER",
    "NTA_SMTP_PASSWORD",
    "NTA_MAIL_FROM",
    "NTA_MAIL_TO",
    "NTA_SMTP_CA_FILE",
    "TWILIO_SID",
    "TWILIO_TOKEN",
    "TWILIO_PHONE",
    "ALERT_PHONE",
    "TWILIO_API_BASE",
    "NTA_WEBHOOK_URL",
];

/// Why a `.env` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Variables from the process and, below them, from a `.env` file.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    /// Variables of the process (only those the notifier reads).
    process: HashMap<String, String>,
    /// Variables of the `.env` file, if one was read.
    file: HashMap<String, String>,
    file_path: Option<PathBuf>,
}

impl Environment {
    /// The process's variables and, if `dotenv` exists, the file's. A
    /// missing file is fine (the variables may all be set already); one
    /// that does not parse is an error naming its line.
    pub fn load(dotenv: &Path) -> Result<Self, EnvError> {
        let process = VARIABLES
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        let mut env = Environment {
            process,
            ..Environment::default()
        };
        if dotenv.is_file() {
            env.file = read_dotenv(dotenv)?;
            env.file_path = Some(dotenv.to_owned());
        }
        Ok(env)
    }

    /// An environment from fixed maps, for tests.
    pub fn from_maps(process: &[(&str, &str)], file: &[(&str, &str)]) -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Environment {
            process: map(process),
            file: map(file),
            file_path: (!file.is_empty()).then(|| PathBuf::from(".env")),
        }
    }

    /// The value of `name` and where it came from (`NAME`, or `NAME (in
    /// .env)`), for error messages. Empty values count as unset, as in
    /// `.env.example`'s blanks.
    pub fn get(&self, name: &str) -> Option<(String, String)> {
        if let Some(value) = self.process.get(name).filter(|v| !v.trim().is_empty()) {
            return Some((value.trim().to_owned(), name.to_owned()));
        }
        let value = self.file.get(name).filter(|v| !v.trim().is_empty())?;
        let path = self
            .file_path
            .as_deref()
            .map_or_else(|| ".env".into(), |p| p.display().to_string());
        Some((value.trim().to_owned(), format!("{name} (in {path})")))
    }

    /// The `.env` file read, if any.
    pub fn dotenv_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }
}

/// The variables of a `.env` file, as dotenvy reads them (quotes,
/// `export`, comments), without touching the process's environment.
fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, EnvError> {
    let parse = |message: String| EnvError::Parse {
        path: path.to_owned(),
        message,
    };
    let iter = dotenvy::from_path_iter(path).map_err(|e| parse(e.to_string()))?;
    let mut vars = HashMap::new();
    for item in iter {
        let (name, value) = item.map_err(|e| parse(describe(&e)))?;
        vars.insert(name, value);
    }
    Ok(vars)
}

/// dotenvy's error in the file's terms.
fn describe(error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::LineParse(line, index) => {
            format!("cannot parse `{line}` (at character {index}); write NAME=value")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_variables_win_over_the_file_and_blanks_are_unset() {
        let env = Environment::from_maps(
            &[("NTA_SMTP_HOST", "mail.example"), ("NTA_MAIL_TO", " ")],
            &[
                ("NTA_SMTP_HOST", "other.example"),
                ("NTA_SMTP_PORT", "2525"),
                ("NTA_MAIL_TO", "a@example.org"),
            ],
        );
        assert_eq!(
            env.get("NTA_SMTP_HOST"),
            Some(("mail.example".into(), "NTA_SMTP_HOST".into()))
        );
        assert_eq!(
            env.get("NTA_SMTP_PORT"),
            Some(("2525".into(), "NTA_SMTP_PORT (in .env)".into()))
        );
        // A blank process variable does not hide the file's value.
        assert_eq!(env.get("NTA_MAIL_TO").unwrap().0, "a@example.org");
        assert_eq!(env.get("TWILIO_SID"), None);
    }

    #[test]
    fn a_dotenv_file_is_read_like_the_original_tool_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# Twilio\nTWILIO_SID=AC123\nTWILIO_PHONE=+1234567890  # Your Twilio phone number\n\
             export NTA_MAIL_TO=\"a@example.org, b@example.org\"\nNTA_SMTP_HOST=\n",
        )
        .unwrap();
        let env = Environment::load(&path).unwrap();
        assert_eq!(env.dotenv_path(), Some(path.as_path()));
        let file_value = |name: &str| env.file.get(name).cloned();
        assert_eq!(file_value("TWILIO_SID").as_deref(), Some("AC123"));
        assert_eq!(file_value("TWILIO_PHONE").as_deref(), Some("+1234567890"));
        assert_eq!(
            file_value("NTA_MAIL_TO").as_deref(),
            Some("a@example.org, b@example.org")
        );
    }

    #[test]
    fn a_broken_dotenv_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "TWILIO_SID=AC1\nthis is not a variable\n").unwrap();
        let err = Environment::load(&path).unwrap_err().to_string();
        assert!(err.contains(".env"), "{err}");
        assert!(err.contains("this is not a variable"), "{err}");
    }

    /// `.env.example`, and the Debian package's /etc/nta/nta.env, which
    /// systemd reads for the unit.
    #[test]
    fn the_shipped_examples_name_every_variable_and_turn_nothing_on() {
        for example in ["../.env.example", "../packaging/debian/nta.env"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
            let text = std::fs::read_to_string(&path).unwrap();
            for name in VARIABLES {
                assert!(
                    text.contains(&format!("\n{name}=\n")),
                    "{name} is not in {example}"
                );
            }
            let env = Environment {
                file: read_dotenv(&path).unwrap(),
                file_path: Some(path),
                ..Environment::default()
            };
            let settings = crate::notify::settings::resolve(
                &crate::config::Notify::default(),
                &env,
                "http://127.0.0.1:3000",
                "edge-7".into(),
            )
            .unwrap();
            assert!(!settings.any(), "{example} turns a channel on");
        }
    }

    #[test]
    fn no_dotenv_file_is_fine() {
        let env = Environment::load(Path::new("/nonexistent/.env")).unwrap();
        assert_eq!(env.dotenv_path(), None);
    }
}
