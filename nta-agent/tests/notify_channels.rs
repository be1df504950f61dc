//! The notification channels against real servers on loopback, started by
//! the tests: an SMTP server (Python's aiosmtpd, `tests/notify/
//! smtp_server.py`) for email, with STARTTLS under a CA made here and a
//! login; an HTTP server (warp) standing in for Twilio and for a webhook;
//! and bare sockets for servers that refuse service or never answer.
//! Nothing here needs root.

mod support;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    thread,
    time::{Duration, Instant},
};

use base64::Engine as _;
use nta_agent::{
    alert::{Alert, AlertKind, Severity, fixtures},
    notify::{
        channel::{Deliver, Delivered, SendError},
        email::Email,
        message::{Message, Purpose},
        settings::{EmailSettings, Secret, SmsSettings, SmtpTls, WebhookSettings},
        sms::Sms,
        webhook::Webhook,
    },
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;
use support::smtp::{RECORD_LIMIT, SmtpServer, have_aiosmtpd};
use tokio::{io::AsyncWriteExt as _, sync::oneshot};
use warp::{
    Filter as _,
    http::{HeaderMap, Method},
    hyper::body::Bytes,
    path::FullPath,
};

/// The timeout the channels get where the server is expected to answer:
/// generous, so that a loaded machine does not fail a test.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The login the STARTTLS server accepts.
const USER: &str = "nta";
const PASSWORD: &str = "pw-123";

// ---------------------------------------------------------------- email --

#[tokio::test]
async fn email_reaches_every_recipient_with_subject_body_and_headers() {
    if !have_aiosmtpd() {
        return;
    }
    let server = SmtpServer::start(&[]);
    let email = plain_email(server.port);
    assert_eq!(
        email.describe(),
        format!(
            "ops@example.com, oncall@example.org via 127.0.0.1:{} (plain)",
            server.port
        )
    );

    let message = message();
    email
        .send(&message, &mut Delivered::default())
        .await
        .expect("delivered");

    let received = server.next_message();
    assert_eq!(received.mail_from, "nta@example.com");
    assert_eq!(
        received.rcpt_tos,
        ["ops@example.com", "oncall@example.org"],
        "one message to every recipient"
    );
    assert!(!received.tls);
    let parsed = mail_parser::MessageParser::default()
        .parse(&received.data)
        .expect("the server got a parsable message");
    assert_eq!(parsed.subject(), Some(message.subject.as_str()));
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .expect("a From header");
    assert_eq!(from.address(), Some("nta@example.com"));
    assert_eq!(from.name(), Some("nta"));
    let to: Vec<_> = parsed
        .to()
        .expect("a To header")
        .clone()
        .into_list()
        .into_iter()
        .filter_map(|addr| addr.address().map(str::to_owned))
        .collect();
    assert_eq!(to, ["ops@example.com", "oncall@example.org"]);
    let body = parsed.body_text(0).expect("a text body");
    // Line endings travel as CRLF; the text is the message's, UTF-8 intact.
    assert_eq!(body.replace("\r\n", "\n").trim_end(), message.body);
    assert_eq!(header(&parsed, "X-Nta-Severity"), Some("critical"));
    assert_eq!(header(&parsed, "X-Nta-Alert-Id"), Some("42"));
    let content_type = header(&parsed, "Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("utf-8"),
        "{content_type}"
    );
}

#[tokio::test]
async fn email_without_an_alert_has_no_alert_id_header() {
    if !have_aiosmtpd() {
        return;
    }
    let server = SmtpServer::start(&[]);
    let email = plain_email(server.port);
    let digest = Message {
        purpose: Purpose::Digest,
        alert: None,
        ..message()
    };
    email
        .send(&digest, &mut Delivered::default())
        .await
        .expect("delivered");
    let received = server.next_message();
    let parsed = mail_parser::MessageParser::default()
        .parse(&received.data)
        .unwrap();
    assert_eq!(header(&parsed, "X-Nta-Alert-Id"), None);
    assert_eq!(header(&parsed, "X-Nta-Severity"), Some("critical"));
}

#[tokio::test]
async fn email_over_starttls_with_a_private_ca_logs_in_and_delivers() {
    if !have_aiosmtpd() {
        return;
    }
    let pki = Pki::new();
    let server = smtp_tls(&pki);
    let email = Email::new(&email_settings_tls(server.port, &pki, PASSWORD)).unwrap();
    assert_eq!(
        email.describe(),
        format!(
            "ops@example.com, oncall@example.org via 127.0.0.1:{} (starttls)",
            server.port
        )
    );
    assert!(!email.describe().contains(PASSWORD));

    email
        .send(&message(), &mut Delivered::default())
        .await
        .expect("delivered over TLS");

    let received = server.next_message();
    assert!(received.tls, "STARTTLS was on when the message came");
    assert_eq!(received.login.as_deref(), Some(USER));
    assert_eq!(received.rcpt_tos, ["ops@example.com", "oncall@example.org"]);
}

#[tokio::test]
async fn email_with_a_wrong_password_fails_permanently() {
    if !have_aiosmtpd() {
        return;
    }
    let pki = Pki::new();
    let server = smtp_tls(&pki);
    let wrong = "not-the-password";
    let email = Email::new(&email_settings_tls(server.port, &pki, wrong)).unwrap();

    let text = failure_text(
        &email,
        SendError::Permanent,
        "a refused login is not worth retrying",
    )
    .await;
    assert!(text.contains("535"), "{text}");
    assert!(
        text.starts_with(&format!("127.0.0.1:{}: ", server.port)),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");
    server.assert_nothing_received();
}

#[tokio::test]
async fn email_to_a_server_with_an_untrusted_certificate_fails_permanently() {
    if !have_aiosmtpd() {
        return;
    }
    let pki = Pki::new();
    let server = smtp_tls(&pki);
    // The system's roots only: the server's private CA is unknown.
    let email = Email::new(&EmailSettings {
        ca_file: None,
        ..email_settings_tls(server.port, &pki, PASSWORD)
    })
    .unwrap();

    let text = failure_text(
        &email,
        SendError::Permanent,
        "an untrusted certificate will not change by itself",
    )
    .await;
    assert!(text.contains("NTA_SMTP_CA_FILE"), "{text}");
    server.assert_nothing_received();
}

#[tokio::test]
async fn email_to_a_server_that_refuses_service_fails_permanently() {
    // A server that answers `554 no service` on connect and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let refuser = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"554 no service\r\n").await;
            let _ = stream.shutdown().await;
        }
    });
    let email = plain_email(port);

    let text = failure_text(&email, SendError::Permanent, "554 is a permanent refusal").await;
    refuser.abort();
    assert!(
        text.contains("554") && text.contains("no service"),
        "{text}"
    );
}

#[tokio::test]
async fn email_to_a_server_that_never_answers_times_out_as_transient() {
    // The kernel completes the connection (backlog) and nobody ever speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let email = Email::new(&EmailSettings {
        timeout: Duration::from_secs(1),
        ..email_settings(port)
    })
    .unwrap();

    let started = Instant::now();
    failure_text(
        &email,
        SendError::Transient,
        "a silent server may answer later",
    )
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "a 1 s timeout took {took:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn email_to_a_closed_port_is_transient() {
    let port = closed_port();
    let email = plain_email(port);
    let text = failure_text(
        &email,
        SendError::Transient,
        "a refused connection may work later",
    )
    .await;
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

// ------------------------------------------------------------------ SMS --

#[tokio::test]
async fn sms_posts_one_twilio_form_per_recipient_with_basic_auth() {
    let receiver = Receiver::start(201, r#"{"sid": "SM123", "status": "queued"}"#).await;
    let sms = Sms::new(&sms_settings(receiver.addr)).unwrap();
    assert_eq!(
        sms.describe(),
        format!(
            "+15550000002, +447700900003 from +15550000001 via Twilio at http://{}",
            receiver.addr
        )
    );

    let message = message();
    sms.send(&message, &mut Delivered::default())
        .await
        .expect("sent");

    let mut requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one request per number: {requests:?}");
    requests.sort_by(|a, b| form(a)["To"].cmp(&form(b)["To"]));
    for (request, to) in requests.iter().zip(["+15550000002", "+447700900003"]) {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(
            request.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        let credentials = request.headers["authorization"]
            .strip_prefix("Basic ")
            .expect("basic auth");
        let credentials = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .unwrap();
        assert_eq!(
            String::from_utf8(credentials).unwrap(),
            "AC0123456789abcdef0123456789abcdef:tok-secret"
        );
        let fields = form(request);
        assert_eq!(fields["To"], to);
        assert_eq!(fields["From"], "+15550000001");
        assert_eq!(fields["Body"], message.short);
    }
    receiver.stop().await;
}

#[tokio::test]
async fn sms_failures_are_transient_for_5xx_and_429_permanent_for_401() {
    let cases: [(u16, &str, FailureKind, &str); 3] = [
        (
            500,
            "oops",
            SendError::Transient,
            "Twilio answered 500: oops",
        ),
        (
            429,
            r#"{"message": "Too Many Requests"}"#,
            SendError::Transient,
            "Twilio answered 429: Too Many Requests",
        ),
        (
            401,
            r#"{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#,
            SendError::Permanent,
            "Twilio answered 401: Authenticate",
        ),
    ];
    for (status, body, kind, expected) in cases {
        let receiver = Receiver::start(status, body).await;
        let sms = Sms::new(&SmsSettings {
            to: vec!["+15550000002".into()],
            ..sms_settings(receiver.addr)
        })
        .unwrap();
        let text = failure_text(&sms, kind, &format!("status {status}")).await;
        assert_eq!(text, format!("+15550000002: {expected}"), "{status}");
        assert!(!text.contains("tok-secret"));
        receiver.stop().await;
    }
}

/// One number fails for a while (Twilio answers 503), the other gets the
/// message: the retry goes to the failed number only, and nobody gets it
/// twice.
#[tokio::test]
async fn an_sms_retry_goes_to_the_numbers_that_failed_only() {
    let failures = Arc::new(std::sync::atomic::AtomicU32::new(2));
    let left = Arc::clone(&failures);
    let receiver = Receiver::answering(move |request| {
        let to_uk = form(request)["To"] == "+447700900003";
        let failing = to_uk
            && left
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_sub(1),
                )
                .is_ok();
        if failing {
            (503, "busy")
        } else {
            (201, r#"{"sid": "SM123", "status": "queued"}"#)
        }
    })
    .await;
    let sms = Sms::new(&sms_settings(receiver.addr)).unwrap();
    let message = message();
    let mut delivered = Delivered::default();
    for attempt in 1..=2 {
        let error = sms
            .send(&message, &mut delivered)
            .await
            .expect_err("the UK number is busy");
        assert_eq!(
            error,
            SendError::Transient("+447700900003: Twilio answered 503: busy".into()),
            "attempt {attempt}"
        );
    }
    sms.send(&message, &mut delivered)
        .await
        .expect("the third attempt reaches it");
    let to: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| form(r)["To"].clone())
        .collect();
    let count = |n: &str| to.iter().filter(|t| *t == n).count();
    assert_eq!(count("+15550000002"), 1, "{to:?}");
    assert_eq!(count("+447700900003"), 3, "{to:?}");
    // Everyone reached: another attempt sends nothing.
    sms.send(&message, &mut delivered)
        .await
        .expect("nothing left");
    assert_eq!(receiver.requests().len(), 4);
    receiver.stop().await;
}

#[tokio::test]
async fn sms_to_a_closed_port_is_transient() {
    let addr: SocketAddr = ([127, 0, 0, 1], closed_port()).into();
    let sms = Sms::new(&sms_settings(addr)).unwrap();
    let text = failure_text(
        &sms,
        SendError::Transient,
        "a refused connection may work later",
    )
    .await;
    assert!(text.contains("+15550000002: Twilio: "), "{text}");
    assert!(text.contains("+447700900003: Twilio: "), "{text}");
}

// -------------------------------------------------------------- webhook --

#[tokio::test]
async fn webhook_posts_slack_compatible_json_with_the_alert() {
    let receiver = Receiver::start(200, "ok").await;
    let url = format!("http://{}/hooks/s3cr3t-token", receiver.addr);
    let webhook = Webhook::new(&WebhookSettings {
        url: url.clone(),
        timeout: TIMEOUT,
    })
    .unwrap();
    assert_eq!(
        webhook.describe(),
        format!("POST JSON to http://{}/…", receiver.addr)
    );

    let message = message();
    webhook
        .send(&message, &mut Delivered::default())
        .await
        .expect("posted");

    let requests = receiver.requests();
    let [request] = requests.as_slice() else {
        panic!("one request: {requests:?}");
    };
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/s3cr3t-token");
    assert_eq!(request.headers["content-type"], "application/json");
    let json: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    let text = json["text"].as_str().expect("a Slack `text` field");
    assert_eq!(text, format!("{}\n{}", message.subject, message.body));
    assert_eq!(json["subject"], message.subject.as_str());
    assert_eq!(json["purpose"], "opened");
    assert_eq!(json["sensor"], "edge-7");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["url"], "http://127.0.0.1:3000/#alert=42");
    assert_eq!(json["alert"]["id"], 42);
    assert_eq!(json["alert"]["kind"], "syn_flood");
    receiver.stop().await;
}

#[tokio::test]
async fn webhook_failures_are_transient_for_5xx_and_429_permanent_for_4xx() {
    let cases: [(u16, &str, FailureKind); 5] = [
        (500, "", SendError::Transient),
        (503, "maintenance", SendError::Transient),
        (429, "slow down", SendError::Transient),
        (404, "no_service", SendError::Permanent),
        (401, r#"{"message": "Authenticate"}"#, SendError::Permanent),
    ];
    for (status, body, kind) in cases {
        let receiver = Receiver::start(status, body).await;
        let webhook = Webhook::new(&WebhookSettings {
            url: format!("http://{}/hooks/s3cr3t-token", receiver.addr),
            timeout: TIMEOUT,
        })
        .unwrap();
        let text = failure_text(&webhook, kind, &format!("status {status}")).await;
        assert!(
            text.starts_with(&format!("webhook answered {status}")),
            "{text}"
        );
        if status == 401 {
            assert_eq!(text, "webhook answered 401: Authenticate");
        }
        receiver.stop().await;
    }
}

#[tokio::test]
async fn webhook_to_a_closed_port_is_transient_and_keeps_the_url_secret() {
    let url = format!("http://127.0.0.1:{}/hooks/s3cr3t-token", closed_port());
    let webhook = Webhook::new(&WebhookSettings {
        url,
        timeout: TIMEOUT,
    })
    .unwrap();
    let text = failure_text(
        &webhook,
        SendError::Transient,
        "a refused connection may work later",
    )
    .await;
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[tokio::test]
async fn webhook_to_a_server_with_an_untrusted_certificate_fails_permanently() {
    let pki = Pki::new();
    let server = TlsRefusal::start(&pki);
    let webhook = Webhook::new(&WebhookSettings {
        url: format!("https://127.0.0.1:{}/hooks/s3cr3t-token", server.port),
        timeout: TIMEOUT,
    })
    .unwrap();
    let text = failure_text(
        &webhook,
        SendError::Permanent,
        "an untrusted certificate will not change by itself",
    )
    .await;
    assert!(text.contains("certificate"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    server.join();
}

/// An HTTPS server that never gets past the handshake: it presents the
/// certificate of a CA nobody trusts, once.
struct TlsRefusal {
    port: u16,
    thread: thread::JoinHandle<()>,
}

impl TlsRefusal {
    fn start(pki: &Pki) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_file(&pki.cert).unwrap()],
                PrivateKeyDer::from_pem_file(&pki.key).unwrap(),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + RECORD_LIMIT;
            let tcp = loop {
                match listener.accept() {
                    Ok((tcp, _)) => break tcp,
                    Err(_) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("no client within {RECORD_LIMIT:?}: {e}"),
                }
            };
            tcp.set_nonblocking(false).unwrap();
            tcp.set_read_timeout(Some(RECORD_LIMIT)).unwrap();
            let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            // The client gives up in the handshake: an error, never data.
            let mut buffer = [0; 64];
            assert!(std::io::Read::read(&mut stream, &mut buffer).is_err());
        });
        TlsRefusal { port, thread }
    }

    fn join(self) {
        self.thread
            .join()
            .expect("the TLS server saw the handshake fail");
    }
}

// ------------------------------------------------------------- fixtures --

/// A kind of delivery failure: `SendError::Transient` or
/// `SendError::Permanent`.
type FailureKind = fn(String) -> SendError;

/// Sends [`message`] on `channel`, which must fail with an error of `kind`;
/// `why` says why, for a wrong outcome. Returns the error's text.
async fn failure_text(channel: &impl Deliver, kind: FailureKind, why: &str) -> String {
    let error = channel
        .send(&message(), &mut Delivered::default())
        .await
        .expect_err(why);
    let text = error.to_string();
    assert_eq!(
        error,
        kind(text.clone()),
        "{why}: the wrong kind of failure"
    );
    text
}

/// A notification about a SYN flood, every field filled, with text beyond
/// ASCII to show that it travels as UTF-8.
fn message() -> Message {
    let alert = Alert {
        severity: Severity::Critical,
        packets: 120_000,
        peak_rate: 12_000.0,
        message: "SYN flood: 12000 SYN/s".into(),
        ..fixtures::alert(42, AlertKind::SynFlood)
    };
    Message {
        purpose: Purpose::Opened,
        severity: Severity::Critical,
        sensor: "edge-7".into(),
        subject: "[nta edge-7] CRITICAL syn_flood from 198.18.0.2 to 198.18.0.1:80".into(),
        body: "SYN flood: 12000 SYN/s — 24× the threshold\n\
               First seen 1970-01-01T00:00:00Z.\n\
               http://127.0.0.1:3000/#alert=42"
            .into(),
        short:
            "nta edge-7 CRITICAL syn_flood 198.18.0.2→198.18.0.1:80 http://127.0.0.1:3000/#alert=42"
                .into(),
        alert: Some(alert),
        url: Some("http://127.0.0.1:3000/#alert=42".into()),
    }
}

fn email_settings(port: u16) -> EmailSettings {
    EmailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        user: None,
        password: None,
        from: "nta <nta@example.com>".into(),
        to: vec![
            "ops@example.com".into(),
            "On call <oncall@example.org>".into(),
        ],
        ca_file: None,
        timeout: TIMEOUT,
    }
}

/// Email over plain SMTP to `port` on loopback, without a login.
fn plain_email(port: u16) -> Email {
    Email::new(&email_settings(port)).expect("plain settings are valid")
}

/// STARTTLS with a login, trusting the test's CA.
fn email_settings_tls(port: u16, pki: &Pki, password: &str) -> EmailSettings {
    EmailSettings {
        tls: SmtpTls::StartTls,
        user: Some(USER.into()),
        password: Some(Secret::new(password)),
        ca_file: Some(pki.ca.clone()),
        ..email_settings(port)
    }
}

fn sms_settings(addr: SocketAddr) -> SmsSettings {
    SmsSettings {
        sid: "AC0123456789abcdef0123456789abcdef".into(),
        token: Secret::new("tok-secret"),
        from: "+15550000001".into(),
        to: vec!["+15550000002".into(), "+447700900003".into()],
        api_base: format!("http://{addr}"),
        timeout: TIMEOUT,
    }
}

/// A header's value as sent, trimmed.
fn header<'a>(message: &'a mail_parser::Message<'a>, name: &'static str) -> Option<&'a str> {
    message.header_raw(name).map(str::trim)
}

/// A loopback port nobody listens on (bound, then let go).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A CA made for the test and a server certificate it signed, for
/// 127.0.0.1 and localhost, as PEM files in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "nta test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "nta test SMTP server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();

        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            _dir: dir,
        }
    }
}

// ------------------------------------------------------ the SMTP server --

/// The SMTP server with STARTTLS required, with the certificate of `pki`,
/// and a login.
fn smtp_tls(pki: &Pki) -> SmtpServer {
    let path = |p: &Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    let (cert, key) = (path(&pki.cert), path(&pki.key));
    SmtpServer::start(&[
        "--cert",
        &cert,
        "--key",
        &key,
        "--user",
        USER,
        "--password",
        PASSWORD,
    ])
}

// ------------------------------------------------------ the HTTP server --

/// One request as the HTTP server received it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Lower-case names; the last value of each.
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// The fields of a form-encoded request body, decoded as a URL query is.
fn form(request: &Request) -> HashMap<String, String> {
    let body = std::str::from_utf8(&request.body).expect("a text form");
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .expect("a form body")
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// A real HTTP server on 127.0.0.1 that records every request and answers
/// each with one status and body.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16, body: &'static str) -> Self {
        Self::answering(move |_| (status, body)).await
    }

    /// A server answering each request as `answer` says.
    async fn answering(
        answer: impl Fn(&Request) -> (u16, &'static str) + Clone + Send + Sync + 'static,
    ) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let route = warp::any()
            .and(warp::method())
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: Method, path: FullPath, headers: HeaderMap, bytes: Bytes| {
                    let headers = headers
                        .iter()
                        .map(|(name, value)| {
                            (
                                name.as_str().to_owned(),
                                value.to_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    let request = Request {
                        method: method.to_string(),
                        path: path.as_str().to_owned(),
                        headers,
                        body: bytes.to_vec(),
                    };
                    let (status, body) = answer(&request);
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(request);
                    warp::http::Response::builder()
                        .status(status)
                        .body(body)
                        .unwrap()
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async {
                    let _ = stopped.await;
                })
                .run(),
        );
        Receiver {
            addr,
            requests,
            stop,
            task,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the server and waits (bounded) until it has.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the HTTP server stops within 5 s")
            .expect("the HTTP server task did not panic");
    }
}

// ---------------------------------------------------------------- storm --

/// The notifier as the agent starts it (settings from the environment),
/// flooded with 10 000 new incidents against a real webhook receiver: six
/// posts go out at once, the rest are held, and the digest follows (here at
/// shutdown, which sends whatever is held rather than wait a minute).
#[tokio::test]
async fn a_storm_of_ten_thousand_alerts_makes_six_posts_and_a_digest() {
    use nta_agent::{
        alert::AlertEvent,
        config::Notify,
        notify::{env::Environment, settings::resolve},
    };

    let receiver = Receiver::start(200, "ok").await;
    let url = format!("http://{}/hook", receiver.addr);
    let env = Environment::from_maps(&[("NTA_WEBHOOK_URL", &url)], &[]);
    let settings = resolve(
        &Notify::default(),
        &env,
        "http://127.0.0.1:3000",
        "edge-7".into(),
    )
    .unwrap();
    let notifier = nta_agent::notify::start(&settings).unwrap();
    let stats = notifier.stats();
    let template = message().alert.unwrap();
    let start = Instant::now();
    for id in 0..10_000u64 {
        notifier.notify(&[AlertEvent::Opened(Alert {
            id,
            ..template.clone()
        })]);
        if id % 100 == 0 {
            // The agent raises them over time; let the dispatcher keep up.
            tokio::task::yield_now().await;
        }
    }
    let queued_in = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the dispatcher has seen them all and the six posts are out.
    while {
        let r = &stats.report()[0];
        r.sent + r.held < 10_000 || r.sent < 6
    } && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = &stats.report()[0];
    assert_eq!(
        (report.sent, report.held, report.failed),
        (6, 9_994, 0),
        "{report:?}"
    );
    assert_eq!(receiver.requests().len(), 6);

    notifier.shutdown(Duration::from_secs(10)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 7);
    let digest: Value = serde_json::from_slice(&requests[6].body).unwrap();
    assert_eq!(digest["purpose"], "digest", "{digest}");
    let text = digest["text"].as_str().unwrap();
    assert!(text.contains("9994 more notifications held back"), "{text}");
    assert!(text.contains("9994 × syn_flood (critical)"), "{text}");
    println!(
        "10 000 alerts queued in {} ms: 6 posts, then 1 digest of 9994",
        queued_in.as_millis()
    );
}
