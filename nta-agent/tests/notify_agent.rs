//! Notifications from the agent as users run it: `nta-agent notify test`
//! with a `.env` file, and the running agent mailing a real scan to a real
//! SMTP server (aiosmtpd) in the victim's namespace — and carrying on
//! detecting when that server hangs.

mod support;

use std::{
    fs,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    api::Api,
    lab::{Spawned, alert_log, nmap_fast_scan, start_agent},
    netns::{ATTACKER_ADDR, Agent, Topology, VICTIM_ADDR},
    smtp::{Received, SmtpServer, have_aiosmtpd},
};

/// A server that accepts connections and never says a word: the SMTP
/// client waits for a greeting that never comes.
const HANGING_SERVER: &str = "
import socket
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen(64)
print('ready', s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
";

/// Incidents close after 2 s of quiet, so the closing email comes soon;
/// a failing server is given up on quickly.
const CONFIG: &str = r#"
sensor_name = "edge-7"

[incidents]
quiet_period = "2s"

[notify]
attempts = 2
retry_backoff = "100ms"

[notify.email]
timeout = "1s"
"#;

fn env_file(dir: &Path, port: u16, extra: &str) -> String {
    let path = dir.join(".env");
    fs::write(
        &path,
        format!(
            "NTA_SMTP_HOST=127.0.0.1\nNTA_SMTP_PORT={port}\nNTA_SMTP_TLS=none\n\
             NTA_MAIL_FROM=nta@example.org\nNTA_MAIL_TO=oncall@example.org\n{extra}"
        ),
    )
    .expect("writing .env");
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// Subject and text body of a received email.
fn parse(message: &Received) -> (String, String) {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .expect("a parseable email");
    (
        parsed.subject().unwrap_or_default().to_owned(),
        parsed.body_text(0).unwrap_or_default().into_owned(),
    )
}

#[test]
fn notify_test_reports_each_channel_and_fails_on_any_failure() {
    if !have_aiosmtpd() {
        return;
    }
    let smtp = SmtpServer::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on port 9 (discard) here: the webhook must fail.
    let env = env_file(
        dir.path(),
        smtp.port,
        "NTA_WEBHOOK_URL=http://127.0.0.1:9/hook\n",
    );
    let run = |env: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_nta-agent"))
            .args(["notify", "test", "--env-file", env])
            .env_remove("NTA_CONFIG")
            .output()
            .expect("running nta-agent notify test");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (status, stdout, stderr) = run(&env);
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("email: ok — oncall@example.org via 127.0.0.1:"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("webhook: FAILED — POST JSON to http://127.0.0.1:9/")
            && stdout.contains("refused"),
        "{stdout}{stderr}"
    );
    let (subject, body) = parse(&smtp.next_message());
    // No sensor_name configured: the host name names the sensor.
    let host = fs::read_to_string("/proc/sys/kernel/hostname").expect("the host name");
    assert_eq!(
        subject,
        format!("[nta {0}] test notification from {0}", host.trim()),
    );
    assert!(body.contains("this channel works"), "{body}");

    // Email alone: every channel works, exit 0.
    let env = env_file(dir.path(), smtp.port, "");
    let (status, stdout, stderr) = run(&env);
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    smtp.next_message();

    // Nothing configured: said so, exit 1.
    let empty = dir.path().join("empty.env");
    fs::write(&empty, "NTA_SMTP_HOST=\n").unwrap();
    let (status, _, stderr) = run(empty.to_str().unwrap());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("no notification channel is configured"),
        "{stderr}"
    );

    // A broken setting is named.
    let bad = dir.path().join("bad.env");
    fs::write(
        &bad,
        "NTA_SMTP_HOST=127.0.0.1\nNTA_MAIL_FROM=nta@example.org\n",
    )
    .unwrap();
    let (status, _, stderr) = run(bad.to_str().unwrap());
    assert!(!status.success());
    assert!(stderr.contains("NTA_MAIL_TO"), "{stderr}");
}

/// The agent on the victim's veth with [`CONFIG`], mailing through the
/// SMTP server on `port`; its env file and configuration are written to
/// `dir`.
fn start_mailing_agent(net: &Topology, dir: &Path, port: u16) -> Agent {
    let env = env_file(dir, port, "");
    let config = dir.join("nta.toml");
    fs::write(&config, CONFIG).unwrap();
    start_agent(
        net,
        &["--env-file", &env, "--config", config.to_str().unwrap()],
    )
}

#[test]
fn a_scan_sends_one_email_when_it_opens_and_one_when_it_closes() {
    if !support::privileged_with(&["nmap"]) || !have_aiosmtpd() {
        return;
    }
    let net = Topology::new();
    let smtp = SmtpServer::start_in(&net.victim, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = start_mailing_agent(&net, dir.path(), smtp.port);
    let api = Api::new(&net.victim);

    let start = Instant::now();
    nmap_fast_scan(&net, "1-1000");
    let opened = smtp
        .next_message_within(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no email for the scan\n{}", alert_log(&agent)));
    let mailed_after = start.elapsed();
    let (subject, body) = parse(&opened);
    assert!(
        subject.contains(&format!("port_scan from {ATTACKER_ADDR} to {VICTIM_ADDR}")),
        "{subject}"
    );
    assert_eq!(opened.rcpt_tos, ["oncall@example.org"]);
    let alerts = api.alerts("kind=port_scan");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let id = &alerts[0]["id"];
    assert!(
        body.contains(&format!("Dashboard: http://127.0.0.1:3000/#alert={id}")),
        "{body}"
    );
    assert!(body.contains("Ports:"), "{body}");
    assert!(
        body.lines()
            .any(|line| line.trim_end() == "Sensor:      edge-7"),
        "{body}"
    );
    assert!(subject.starts_with("[nta edge-7] "), "{subject}");

    let closed = smtp
        .next_message_within(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no email when the scan closed\n{}", alert_log(&agent)));
    let (subject, _) = parse(&closed);
    assert!(
        subject.starts_with("[nta edge-7] closed: port_scan"),
        "{subject}"
    );
    // One incident, two messages: nothing more.
    assert!(
        smtp.next_message_within(Duration::from_secs(3)).is_none(),
        "a third email"
    );
    let stats = api.get("/api/stats");
    assert_eq!(stats["notifications"][0]["channel"], "email", "{stats}");
    assert_eq!(stats["notifications"][0]["sent"], 2, "{stats}");
    assert_eq!(stats["notifications_failed"], 0, "{stats}");
    println!(
        "nmap -sS -T4: email for the port scan {} ms after starting nmap; closing email followed",
        mailed_after.as_millis()
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(15));
}

#[test]
fn a_hanging_mail_server_delays_no_alert_and_its_failure_is_counted() {
    let Some(net) = Topology::privileged(&["nmap"]) else {
        return;
    };
    let mut hanging = Spawned::start(
        &net.victim,
        Duration::from_secs(120),
        &["python3", "-c", HANGING_SERVER],
    );
    // Its whole line, port and newline, not only the word.
    hanging.wait_for_output("ready", Duration::from_secs(10));
    hanging.wait_for_output("\n", Duration::from_secs(10));
    let port: u16 = hanging
        .output()
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the hanging server's port in {:?}", hanging.output()));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agent = start_mailing_agent(&net, dir.path(), port);
    let api = Api::new(&net.victim);

    let start = Instant::now();
    nmap_fast_scan(&net, "1-1000");
    // nmap has finished: the alert is there already, mail or no mail.
    let alerts = api.alerts("kind=port_scan");
    let in_api_after = start.elapsed();
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{}", alert_log(&agent));

    // Two attempts of 1 s, 100 ms apart: failed within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let stats: Value = loop {
        let stats = api.get("/api/stats");
        if stats["notifications_failed"].as_u64() >= Some(1) || Instant::now() > deadline {
            break stats;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let email = &stats["notifications"][0];
    assert!(email["failed"].as_u64() >= Some(1), "{stats}");
    assert_eq!(email["sent"], 0, "{stats}");
    assert!(email["retries"].as_u64() >= Some(1), "{stats}");
    let reason = email["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.is_empty(), "{stats}");
    let metrics = api.get_text("/metrics");
    assert!(
        metrics.lines().any(|l| l
            .starts_with(r#"nta_notifications_failed_total{channel="email"} "#)
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    agent.assert_logged("Notification failed");
    println!(
        "hanging SMTP server: port_scan in the API {} ms after starting nmap (nmap's own run \
         included); the email failed after {} attempts: {reason}",
        in_api_after.as_millis(),
        1 + email["retries"].as_u64().unwrap_or(0)
    );
    agent.stop_cleanly(libc::SIGTERM, Duration::from_secs(20));
}
