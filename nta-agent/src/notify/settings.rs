//! Where each channel delivers, as read from the config file's `[notify]`
//! section and the environment (see [`super::env`]).

use std::{fmt, path::PathBuf, time::Duration};

use super::message::Origin;
use crate::alert::{AlertKind, Severity};

/// A password or token: kept out of `Debug` output, so that it can never
/// reach a log line or an API response by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on localhost).
    None,
    /// Plain connect, then STARTTLS, which must succeed (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Email over SMTP.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Login, if the server wants one; both or neither.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// `nta <nta@example.com>` or `nta@example.com`.
    pub from: String,
    /// At least one address.
    pub to: Vec<String>,
    /// A PEM file of CA certificates to trust besides the system's (a
    /// private mail server's own CA).
    pub ca_file: Option<PathBuf>,
    /// Longest one attempt may take: connect, TLS, login, send.
    pub timeout: Duration,
}

/// SMS through Twilio's Messages API.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsSettings {
    /// Account SID (`AC...`).
    pub sid: String,
    pub token: Secret,
    /// The Twilio number messages come from, E.164 (`+1234567890`).
    pub from: String,
    /// Where they go, E.164; at least one.
    pub to: Vec<String>,
    /// `https://api.twilio.com` unless pointed elsewhere (tests, proxies).
    pub api_base: String,
    pub timeout: Duration,
}

/// A generic JSON webhook (Slack-compatible `text` field).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    pub url: String,
    pub timeout: Duration,
}

/// Which alerts a channel carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Alerts below this severity are not sent.
    pub min_severity: Severity,
    /// Only these kinds; empty means every kind.
    pub kinds: Vec<AlertKind>,
}

impl Route {
    /// Whether this channel carries an alert of `kind` and `severity`.
    pub fn accepts(&self, kind: AlertKind, severity: Severity) -> bool {
        severity >= self.min_severity && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }
}

/// Everything the notifier needs: the shared settings and each configured
/// channel with its route.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    /// The sensor messages name, and the base of links to alerts (without
    /// a trailing slash).
    pub origin: Origin,
    pub max_per_minute: u32,
    pub attempts: u32,
    pub retry_backoff: Duration,
    pub email: Option<(EmailSettings, Route)>,
    pub sms: Option<(SmsSettings, Route)>,
    pub webhook: Option<(WebhookSettings, Route)>,
}

impl NotifySettings {
    /// Whether any channel is configured.
    pub fn any(&self) -> bool {
        self.email.is_some() || self.sms.is_some() || self.webhook.is_some()
    }
}

/// A setting that cannot be used, named as the user wrote it: the variable
/// (`NTA_SMTP_PORT`, `... (in .env)`) or the config key
/// (`notify.email.port`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct SettingsError {
    pub name: String,
    pub message: String,
}

impl SettingsError {
    fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// Longest a delivery attempt may take unless configured: long enough for a
/// slow mail server's greeting, short enough that a dead one is noticed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Twilio's API, unless `TWILIO_API_BASE` points elsewhere.
pub const TWILIO_API: &str = "https://api.twilio.com";

/// Merges the config file's `[notify]` with the environment (which wins, key
/// by key) into the channels to use. A channel is configured when its key
/// setting is present anywhere (email: the SMTP host; SMS: the Twilio SID;
/// webhook: the URL); then its other required settings must be too.
/// `api_url` is the API's own (`http://` or `https://` and its address),
/// the default base of dashboard links; `sensor` the name messages give.
pub fn resolve(
    file: &crate::config::Notify,
    env: &super::env::Environment,
    api_url: &str,
    sensor: String,
) -> Result<NotifySettings, SettingsError> {
    let dashboard_url = file
        .dashboard_url
        .clone()
        .unwrap_or_else(|| api_url.to_owned())
        .trim_end_matches('/')
        .to_owned();
    if !(dashboard_url.starts_with("http://") || dashboard_url.starts_with("https://")) {
        return Err(SettingsError::new(
            "notify.dashboard_url",
            format!("`{dashboard_url}` must start with http:// or https://"),
        ));
    }
    Ok(NotifySettings {
        origin: Origin {
            sensor,
            dashboard: dashboard_url,
        },
        max_per_minute: file.max_per_minute,
        attempts: file.attempts,
        retry_backoff: file.retry_backoff,
        email: email(&file.email, env)?,
        sms: sms(&file.sms, env)?,
        webhook: webhook(&file.webhook, env)?,
    })
}

/// One setting from the environment variable `var`, else the file's `key`,
/// with the name to report it under.
fn pick(
    env: &super::env::Environment,
    var: &str,
    file: Option<String>,
    key: &str,
) -> Option<(String, String)> {
    env.get(var)
        .or_else(|| file.map(|value| (value, format!("notify.{key}"))))
}

/// A comma-separated list from the environment, else the file's list.
fn pick_list(
    env: &super::env::Environment,
    var: &str,
    file: Option<&Vec<String>>,
    key: &str,
) -> Option<(Vec<String>, String)> {
    let split = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match env.get(var) {
        Some((value, name)) => Some((split(&value), name)),
        None => file.map(|list| (list.clone(), format!("notify.{key}"))),
    }
}

fn route(
    min_severity: Option<Severity>,
    kinds: Option<&Vec<AlertKind>>,
    default: Severity,
) -> Route {
    Route {
        min_severity: min_severity.unwrap_or(default),
        kinds: kinds.cloned().unwrap_or_default(),
    }
}

/// What a switched-on channel then requires: each missing setting is an
/// error saying it `is required when {when} ({what to give})`.
struct Required<'a> {
    env: &'a super::env::Environment,
    /// What switched the channel on, e.g. `TWILIO_SID is set`.
    when: &'static str,
}

impl Required<'_> {
    /// [`pick`], which must find a value.
    fn value(
        &self,
        var: &'static str,
        file: Option<String>,
        key: &str,
        what: &str,
    ) -> Result<String, SettingsError> {
        pick(self.env, var, file, key)
            .map(|(value, _)| value)
            .ok_or_else(|| self.missing(var, what))
    }

    /// [`pick_list`], which must find a list naming at least one `item`.
    fn list(
        &self,
        var: &'static str,
        file: Option<&Vec<String>>,
        key: &str,
        item: &str,
        what: &str,
    ) -> Result<Vec<String>, SettingsError> {
        match pick_list(self.env, var, file, key) {
            Some((list, _)) if !list.is_empty() => Ok(list),
            Some((_, name)) => Err(SettingsError::new(name, format!("lists no {item}"))),
            None => Err(self.missing(var, what)),
        }
    }

    fn missing(&self, var: &str, what: &str) -> SettingsError {
        SettingsError::new(var, format!("is required when {} ({what})", self.when))
    }
}

fn email(
    file: &crate::config::EmailFile,
    env: &super::env::Environment,
) -> Result<Option<(EmailSettings, Route)>, SettingsError> {
    let Some((host, _)) = pick(env, "NTA_SMTP_HOST", file.host.clone(), "email.host") else {
        return Ok(None);
    };
    let tls = smtp_tls(file, env)?;
    let port = smtp_port(file, env, tls)?;
    let user = pick(env, "NTA_SMTP_USER", file.user.clone(), "email.user");
    let password = pick(
        env,
        "NTA_SMTP_PASSWORD",
        file.password.clone(),
        "email.password",
    );
    match (&user, &password) {
        (Some(_), None) => {
            return Err(SettingsError::new(
                "NTA_SMTP_PASSWORD",
                "is required when NTA_SMTP_USER is set",
            ));
        }
        (None, Some(_)) => {
            return Err(SettingsError::new(
                "NTA_SMTP_USER",
                "is required when NTA_SMTP_PASSWORD is set",
            ));
        }
        _ => {}
    }
    if tls == SmtpTls::None && password.is_some() && !is_local(&host) {
        return Err(SettingsError::new(
            "NTA_SMTP_TLS",
            format!(
                "is none, which would send the SMTP password to {host} in clear text; use starttls or tls"
            ),
        ));
    }
    let required = Required {
        env,
        when: "an SMTP host is set",
    };
    let from = required.value(
        "NTA_MAIL_FROM",
        file.from.clone(),
        "email.from",
        "the sender address, e.g. nta@example.org",
    )?;
    let to = required.list(
        "NTA_MAIL_TO",
        file.to.as_ref(),
        "email.to",
        "address",
        "comma-separated addresses",
    )?;
    let settings = EmailSettings {
        host,
        port,
        tls,
        user: user.map(|(u, _)| u),
        password: password.map(|(p, _)| Secret::new(p)),
        from,
        to,
        ca_file: env
            .get("NTA_SMTP_CA_FILE")
            .map(|(path, _)| PathBuf::from(path))
            .or_else(|| file.ca_file.clone()),
        timeout: file.timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    Ok(Some((
        settings,
        route(file.min_severity, file.kinds.as_ref(), Severity::Low),
    )))
}

/// `NTA_SMTP_TLS` or `email.tls`; STARTTLS unless told otherwise.
fn smtp_tls(
    file: &crate::config::EmailFile,
    env: &super::env::Environment,
) -> Result<SmtpTls, SettingsError> {
    Ok(
        match pick(env, "NTA_SMTP_TLS", file.tls.clone(), "email.tls") {
            None => SmtpTls::StartTls,
            Some((value, name)) => match value.to_ascii_lowercase().as_str() {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                _ => {
                    return Err(SettingsError::new(
                        name,
                        format!("`{value}` is not one of none, starttls, tls"),
                    ));
                }
            },
        },
    )
}

/// `NTA_SMTP_PORT` or `email.port`; else the port `tls` is registered for.
fn smtp_port(
    file: &crate::config::EmailFile,
    env: &super::env::Environment,
    tls: SmtpTls,
) -> Result<u16, SettingsError> {
    match env.get("NTA_SMTP_PORT") {
        Some((value, name)) => value.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            SettingsError::new(name, format!("`{value}` is not a port number (1-65535)"))
        }),
        None => Ok(file.port.unwrap_or(match tls {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        })),
    }
}

fn sms(
    file: &crate::config::SmsFile,
    env: &super::env::Environment,
) -> Result<Option<(SmsSettings, Route)>, SettingsError> {
    let Some((sid, _)) = pick(env, "TWILIO_SID", file.sid.clone(), "sms.sid") else {
        return Ok(None);
    };
    let required = Required {
        env,
        when: "TWILIO_SID is set",
    };
    let token = required.value(
        "TWILIO_TOKEN",
        file.token.clone(),
        "sms.token",
        "the account's auth token",
    )?;
    let from = required.value(
        "TWILIO_PHONE",
        file.from.clone(),
        "sms.from",
        "the Twilio number to send from, like +1234567890",
    )?;
    let to = required.list(
        "ALERT_PHONE",
        file.to.as_ref(),
        "sms.to",
        "number",
        "the numbers to alert, comma-separated",
    )?;
    let api_base = pick(
        env,
        "TWILIO_API_BASE",
        file.api_base.clone(),
        "sms.api_base",
    )
    .map_or_else(|| TWILIO_API.to_owned(), |(v, _)| v);
    let settings = SmsSettings {
        sid,
        token: Secret::new(token),
        from,
        to,
        api_base: api_base.trim_end_matches('/').to_owned(),
        timeout: file.timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    // Texts wake people up: by default only what is worth it.
    Ok(Some((
        settings,
        route(file.min_severity, file.kinds.as_ref(), Severity::High),
    )))
}

fn webhook(
    file: &crate::config::WebhookFile,
    env: &super::env::Environment,
) -> Result<Option<(WebhookSettings, Route)>, SettingsError> {
    let Some((url, _)) = pick(env, "NTA_WEBHOOK_URL", file.url.clone(), "webhook.url") else {
        return Ok(None);
    };
    let settings = WebhookSettings {
        url,
        timeout: file.timeout.unwrap_or(DEFAULT_TIMEOUT),
    };
    Ok(Some((
        settings,
        route(file.min_severity, file.kinds.as_ref(), Severity::Low),
    )))
}

/// Whether `host` is this machine, where a plain-text login cannot be
/// overheard.
fn is_local(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Notify, notify::env::Environment};

    const API: &str = "http://127.0.0.1:3000";

    /// Variables of a test case.
    type Vars<'a> = &'a [(&'a str, &'a str)];

    fn resolve_env(process: &[(&str, &str)]) -> Result<NotifySettings, SettingsError> {
        resolve(
            &Notify::default(),
            &Environment::from_maps(process, &[]),
            API,
            "edge-7".into(),
        )
    }

    #[test]
    fn nothing_configured_means_no_channel() {
        let settings = resolve_env(&[]).unwrap();
        assert!(!settings.any());
        assert_eq!(settings.origin.dashboard, "http://127.0.0.1:3000");
        assert_eq!(settings.origin.sensor, "edge-7");
        assert_eq!(settings.max_per_minute, 6);
    }

    #[test]
    fn email_from_the_environment_with_defaults() {
        let settings = resolve_env(&[
            ("NTA_SMTP_HOST", "mail.example.org"),
            ("NTA_SMTP_USER", "nta"),
            ("NTA_SMTP_PASSWORD", "pw"),
            ("NTA_MAIL_FROM", "nta@example.org"),
            ("NTA_MAIL_TO", "a@example.org, b@example.org,"),
        ])
        .unwrap();
        let (email, route) = settings.email.unwrap();
        assert_eq!(email.tls, SmtpTls::StartTls);
        assert_eq!(email.port, 587);
        assert_eq!(email.to, ["a@example.org", "b@example.org"]);
        assert_eq!(email.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(route.min_severity, Severity::Low);
        // The password never shows in debug output.
        let shown = format!("{email:?}");
        assert!(!shown.contains("\"pw\""), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn tls_mode_picks_the_port_unless_one_is_given() {
        let base = [
            ("NTA_SMTP_HOST", "localhost"),
            ("NTA_MAIL_FROM", "nta@localhost"),
            ("NTA_MAIL_TO", "root@localhost"),
        ];
        for (tls, port) in [("none", 25), ("tls", 465), ("STARTTLS", 587)] {
            let mut vars = base.to_vec();
            vars.push(("NTA_SMTP_TLS", tls));
            let (email, _) = resolve_env(&vars).unwrap().email.unwrap();
            assert_eq!(email.port, port, "{tls}");
        }
        let mut vars = base.to_vec();
        vars.push(("NTA_SMTP_PORT", "2525"));
        assert_eq!(resolve_env(&vars).unwrap().email.unwrap().0.port, 2525);
    }

    #[test]
    fn bad_or_missing_email_settings_are_named() {
        let host = ("NTA_SMTP_HOST", "mail.example.org");
        let from = ("NTA_MAIL_FROM", "nta@example.org");
        let to = ("NTA_MAIL_TO", "a@example.org");
        let cases: [(Vars, &str, &str); 6] = [
            (&[host, to], "NTA_MAIL_FROM", "is required"),
            (&[host, from], "NTA_MAIL_TO", "is required"),
            (
                &[host, from, ("NTA_MAIL_TO", " , ")],
                "NTA_MAIL_TO",
                "lists no address",
            ),
            (
                &[host, from, to, ("NTA_SMTP_PORT", "70000")],
                "NTA_SMTP_PORT",
                "`70000`",
            ),
            (
                &[host, from, to, ("NTA_SMTP_TLS", "ssl")],
                "NTA_SMTP_TLS",
                "`ssl`",
            ),
            (
                &[host, from, to, ("NTA_SMTP_USER", "u")],
                "NTA_SMTP_PASSWORD",
                "required when NTA_SMTP_USER",
            ),
        ];
        for (vars, name, message) in cases {
            let err = resolve_env(vars).unwrap_err();
            assert_eq!(err.name, name, "{vars:?}: {err}");
            assert!(err.message.contains(message), "{vars:?}: {err}");
        }
    }

    #[test]
    fn a_password_in_clear_text_to_another_host_is_refused() {
        let err = resolve_env(&[
            ("NTA_SMTP_HOST", "mail.example.org"),
            ("NTA_SMTP_TLS", "none"),
            ("NTA_SMTP_USER", "u"),
            ("NTA_SMTP_PASSWORD", "secret-pw"),
            ("NTA_MAIL_FROM", "nta@example.org"),
            ("NTA_MAIL_TO", "a@example.org"),
        ])
        .unwrap_err();
        assert_eq!(err.name, "NTA_SMTP_TLS");
        assert!(!err.to_string().contains("secret-pw"), "{err}");
    }

    #[test]
    fn twilio_keeps_the_original_variables() {
        let settings = resolve_env(&[
            ("TWILIO_SID", "AC123"),
            ("TWILIO_TOKEN", "tok"),
            ("TWILIO_PHONE", "+1234567890"),
            ("ALERT_PHONE", "+0987654321"),
        ])
        .unwrap();
        let (sms, route) = settings.sms.unwrap();
        assert_eq!(sms.api_base, TWILIO_API);
        assert_eq!(sms.to, ["+0987654321"]);
        assert_eq!(route.min_severity, Severity::High);
        let err = resolve_env(&[("TWILIO_SID", "AC123"), ("TWILIO_TOKEN", "tok")]).unwrap_err();
        assert_eq!(err.name, "TWILIO_PHONE");
    }

    #[test]
    fn the_environment_wins_over_the_file_key_by_key() {
        let mut file = Notify::default();
        file.webhook.url = Some("http://file.example/hook".into());
        file.webhook.min_severity = Some(Severity::High);
        file.email.host = Some("file.example".into());
        file.email.from = Some("nta@file.example".into());
        file.email.to = Some(vec!["ops@file.example".into()]);
        let env = Environment::from_maps(&[("NTA_WEBHOOK_URL", "http://env.example/hook")], &[]);
        let settings = resolve(&file, &env, API, "edge-7".into()).unwrap();
        let (webhook, route) = settings.webhook.unwrap();
        assert_eq!(webhook.url, "http://env.example/hook");
        assert_eq!(route.min_severity, Severity::High);
        assert_eq!(settings.email.unwrap().0.host, "file.example");
    }

    #[test]
    fn routes_filter_by_severity_and_kind() {
        let route = Route {
            min_severity: Severity::Medium,
            kinds: vec![AlertKind::SynFlood],
        };
        assert!(route.accepts(AlertKind::SynFlood, Severity::Critical));
        assert!(!route.accepts(AlertKind::SynFlood, Severity::Low));
        assert!(!route.accepts(AlertKind::PortScan, Severity::Critical));
        let all = Route {
            min_severity: Severity::Low,
            kinds: vec![],
        };
        assert!(all.accepts(AlertKind::DnsTunnel, Severity::Low));
    }
}
