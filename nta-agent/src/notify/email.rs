//! Email over SMTP with lettre: plain, STARTTLS or implicit TLS (rustls),
//! an optional login, one plain-text UTF-8 message to every recipient.

use std::{fs, path::Path, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor,
    message::{
        Mailbox,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::{
        self,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};

use super::{
    channel::{Deliver, Delivered, SendError},
    error::{ChannelError, caused_by_tls, chain, recipients, required},
    message::Message,
    settings::{EmailSettings, Secret, SmtpTls},
};

/// Sends notifications by email.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `host:port`, the prefix of every error, so that a log line says
    /// which server failed.
    server: String,
    tls: SmtpTls,
    timeout: Duration,
    /// Kept only to scrub it from error texts, should a server ever echo it.
    password: Option<Secret>,
}

impl Email {
    /// Checks `settings` and prepares the transport; nothing is sent and no
    /// connection is made until [`Deliver::send`].
    pub fn new(settings: &EmailSettings) -> Result<Self, ChannelError> {
        let host = required("NTA_SMTP_HOST", settings.host.trim())?;
        let from = mailbox("NTA_MAIL_FROM", &settings.from)?;
        let to = recipients("NTA_MAIL_TO", "address", &settings.to, mailbox)?;

        let mut builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .tls(Tls::Required(tls_parameters(host, settings)?)),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .tls(Tls::Wrapper(tls_parameters(host, settings)?)),
        }
        .port(settings.port)
        // lettre applies this to the connect and to every read and write;
        // `send` also bounds the whole attempt by it.
        .timeout(Some(settings.timeout));
        match (&settings.user, &settings.password) {
            (Some(user), Some(password)) => {
                builder = builder
                    .credentials(Credentials::new(user.clone(), password.expose().to_owned()));
            }
            (None, None) => {}
            _ => return Err(ChannelError::HalfLogin),
        }

        Ok(Email {
            transport: builder.build(),
            from,
            to,
            server: format!("{host}:{}", settings.port),
            tls: settings.tls,
            timeout: settings.timeout,
            password: settings.password.clone(),
        })
    }

    /// The email for `message`, ready for the transport.
    fn email(&self, message: &Message) -> Result<lettre::Message, SendError> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(message.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            // Present on digests and tests too (their worst severity), so
            // that a mail filter can sort every message by it.
            .raw_header(nta_header(
                "X-Nta-Severity",
                message.severity.as_str().to_owned(),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        if let Some(alert) = &message.alert {
            // The alert's id in the API and the dashboard.
            builder = builder.raw_header(nta_header("X-Nta-Alert-Id", alert.id.to_string()));
        }
        builder
            .body(message.body.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
    }

    /// `error` as the notifier sees it: worth a retry or not, with a text
    /// that names the server and never the password.
    fn send_error(&self, error: &smtp::Error) -> SendError {
        let mut text = format!("{}: {}", self.server, chain(error));
        let permanent = if error.is_permanent() {
            true
        } else if error.is_transient() || error.is_timeout() {
            false
        } else if error.is_tls() || caused_by_tls(error) {
            text.push_str(" (is the server's certificate trusted? see NTA_SMTP_CA_FILE)");
            true
        } else {
            // A login mechanism the server lacks, an address lettre refuses:
            // nothing a retry changes. Everything else (refused or reset
            // connections, a cut-off answer) may be better in a moment.
            error.is_client()
        };
        let text = scrub(text, self.password.as_ref());
        if permanent {
            SendError::Permanent(text)
        } else {
            SendError::Transient(text)
        }
    }
}

impl Deliver for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    fn describe(&self) -> String {
        let to: Vec<String> = self.to.iter().map(|m| m.email.to_string()).collect();
        let tls = match self.tls {
            SmtpTls::None => "plain",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        };
        format!("{} via {} ({tls})", to.join(", "), self.server)
    }

    async fn send(&self, message: &Message, _: &mut Delivered) -> Result<(), SendError> {
        let email = self.email(message)?;
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(error)) => Err(self.send_error(&error)),
            Err(_elapsed) => Err(SendError::Transient(format!(
                "{}: no complete answer within {}",
                self.server,
                humantime::format_duration(self.timeout)
            ))),
        }
    }
}

/// `address` as a mailbox, or an error naming `var`.
fn mailbox(var: &'static str, address: &str) -> Result<Mailbox, ChannelError> {
    address.trim().parse().map_err(
        |e: lettre::address::AddressError| ChannelError::BadAddress {
            var,
            value: address.to_owned(),
            reason: e.to_string(),
        },
    )
}

/// TLS for `host`: the webpki roots (Mozilla's, built in), plus the
/// certificates of `ca_file` for a server with a private CA.
fn tls_parameters(host: &str, settings: &EmailSettings) -> Result<TlsParameters, ChannelError> {
    // lettre would only find out at connect time, as a connection error
    // that looks worth retrying.
    if ServerName::try_from(host).is_err() {
        return Err(ChannelError::BadValue {
            var: "NTA_SMTP_HOST",
            value: host.to_owned(),
            reason: "is not a host name or IP address, which TLS needs",
        });
    }
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &settings.ca_file {
        for certificate in ca_certificates(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build_rustls().map_err(|e| ChannelError::Tls {
        host: host.to_owned(),
        reason: e.to_string(),
    })
}

/// Every certificate in the PEM file at `path`; at least one.
fn ca_certificates(path: &Path) -> Result<Vec<Certificate>, ChannelError> {
    let pem = fs::read(path).map_err(|source| ChannelError::CaFileRead {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| ChannelError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let mut certificates = Vec::new();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        let certificate = Certificate::from_der(der.to_vec())
            .map_err(|e| bad(format!("bad certificate: {e}")))?;
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(bad(
            "no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)".to_owned(),
        ));
    }
    Ok(certificates)
}

/// `text` with the password, if any, replaced.
fn scrub(text: String, password: Option<&Secret>) -> String {
    match password.map(Secret::expose) {
        Some(password) if !password.is_empty() && text.contains(password) => {
            text.replace(password, "<redacted>")
        }
        _ => text,
    }
}

/// One of nta's own headers (`X-Nta-…`), for mail filters.
fn nta_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::notify::error::refusal;

    fn settings() -> EmailSettings {
        EmailSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            user: Some("nta".into()),
            password: Some(Secret::new("hunter2")),
            from: "nta <nta@example.com>".into(),
            to: vec!["ops@example.com".into(), "Bob <bob@example.org>".into()],
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn error(settings: &EmailSettings) -> String {
        refusal(Email::new(settings))
    }

    #[test]
    fn describes_recipients_server_and_tls_but_never_the_password() {
        let email = Email::new(&settings()).unwrap();
        let described = email.describe();
        assert_eq!(
            described,
            "ops@example.com, bob@example.org via smtp.example.com:587 (starttls)"
        );
        assert!(!described.contains("hunter2"));
        assert_eq!(email.name(), "email");

        let plain = Email::new(&EmailSettings {
            tls: SmtpTls::None,
            user: None,
            password: None,
            port: 25,
            ..settings()
        })
        .unwrap();
        assert!(
            plain
                .describe()
                .ends_with("via smtp.example.com:25 (plain)")
        );
    }

    #[test]
    fn rejects_a_bad_address_naming_the_setting_and_the_value() {
        let message = error(&EmailSettings {
            to: vec!["ops@example.com".into(), "bob".into()],
            ..settings()
        });
        assert!(
            message.starts_with("NTA_MAIL_TO: `bob` is not an email address"),
            "{message}"
        );
        let message = error(&EmailSettings {
            from: "nta at example".into(),
            ..settings()
        });
        assert!(
            message.starts_with("NTA_MAIL_FROM: `nta at example`"),
            "{message}"
        );
    }

    #[test]
    fn rejects_missing_recipients_host_and_half_logins() {
        assert_eq!(
            error(&EmailSettings {
                to: vec![],
                ..settings()
            }),
            "NTA_MAIL_TO: no address given (at least one is needed)"
        );
        assert_eq!(
            error(&EmailSettings {
                host: " ".into(),
                ..settings()
            }),
            "NTA_SMTP_HOST is empty"
        );
        let message = error(&EmailSettings {
            password: None,
            ..settings()
        });
        assert_eq!(
            message,
            "NTA_SMTP_USER and NTA_SMTP_PASSWORD: give both or neither"
        );
    }

    #[test]
    fn rejects_a_host_that_tls_cannot_verify() {
        let message = error(&EmailSettings {
            host: "smtp example".into(),
            ..settings()
        });
        assert!(
            message.starts_with("NTA_SMTP_HOST: `smtp example`"),
            "{message}"
        );
    }

    #[test]
    fn rejects_unreadable_or_empty_ca_files_naming_the_path() {
        let message = error(&EmailSettings {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..settings()
        });
        assert!(
            message.starts_with("NTA_SMTP_CA_FILE /nonexistent/ca.pem: cannot read: "),
            "{message}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        fs::write(&path, "not a certificate\n").unwrap();
        let message = error(&EmailSettings {
            ca_file: Some(path.clone()),
            ..settings()
        });
        assert!(
            message.starts_with(&format!(
                "NTA_SMTP_CA_FILE {}: no certificate",
                path.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn scrubs_the_password_from_error_texts() {
        let secret = Secret::new("pw-123");
        assert_eq!(
            scrub("535 bad login nta/pw-123".into(), Some(&secret)),
            "535 bad login nta/<redacted>"
        );
        assert_eq!(scrub("refused".into(), Some(&secret)), "refused");
        assert_eq!(scrub("refused".into(), None), "refused");
    }
}
