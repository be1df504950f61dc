//! What a notification says, whatever the channel carries it.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::alert::{Alert, AlertKind, AlertState, Count, Severity};

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A new incident.
    Opened,
    /// An incident closed, with its totals.
    Closed,
    /// Messages held back by storm control, summed up in one.
    Digest,
    /// `nta-agent notify test`.
    Test,
}

/// Where messages come from: the sensor that saw the traffic, named in every
/// subject, SMS and webhook body so that alerts from many sensors can be
/// told apart, and the base of its dashboard links.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// `sensor_name`, else the host name.
    pub sensor: String,
    /// Base of links to alerts, without a trailing slash.
    pub dashboard: String,
}

impl Origin {
    /// `[nta edge-7]`, the start of every subject.
    fn tag(&self) -> String {
        format!("[nta {}]", self.sensor)
    }
}

/// One notification, rendered once for every channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub purpose: Purpose,
    /// The highest severity it reports (the alert's, or a digest's worst).
    pub severity: Severity,
    /// The sensor that sent it ([`Origin::sensor`]).
    pub sensor: String,
    /// One line: sensor, severity, kind, source, e.g.
    /// `[nta edge-7] CRITICAL syn_flood from 198.18.0.2 to 198.18.0.1:80`.
    pub subject: String,
    /// Plain text, several lines: what happened, the evidence, and a link
    /// to the alert in the dashboard.
    pub body: String,
    /// The same in at most [`SHORT_MAX`] characters, for SMS.
    pub short: String,
    /// The alert it is about (none for digests and tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    /// Link to the alert (or to the alert list, for a digest) in the
    /// dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Longest [`Message::short`]: one SMS segment of GSM-7 text.
pub const SHORT_MAX: usize = 160;

impl Message {
    /// A new incident: what, how bad, the evidence and where to look.
    pub fn opened(alert: &Alert, origin: &Origin) -> Self {
        let subject = format!(
            "{} {} {} {}",
            origin.tag(),
            alert.severity.as_str().to_uppercase(),
            alert.kind,
            route_of(alert)
        );
        let short = format!(
            "nta {} {} {} {}: {}",
            origin.sensor,
            alert.severity.as_str().to_uppercase(),
            alert.kind,
            route_of(alert),
            alert.message
        );
        let intro = format!("{}\n\n", alert.message);
        Self::about(alert, origin, Purpose::Opened, subject, intro, &short)
    }

    /// An incident closed: how long it lasted and its totals.
    pub fn closed(alert: &Alert, origin: &Origin) -> Self {
        let lasted = duration_text(alert);
        let subject = format!(
            "{} closed: {} {} after {lasted}",
            origin.tag(),
            alert.kind,
            route_of(alert)
        );
        let short = format!(
            "nta {} closed #{} {} {} after {lasted}, {} packets, peak {}",
            origin.sensor,
            alert.id,
            alert.kind,
            route_of(alert),
            alert.packets,
            rate(alert.peak_rate, &alert.evidence.unit)
        );
        let intro = format!(
            "Incident #{} is over: no sign of it for the quiet period.\n\n{}\n\n",
            alert.id, alert.message
        );
        Self::about(alert, origin, Purpose::Closed, subject, intro, &short)
    }

    /// A message about `alert`: a body of `intro`, the alert's facts and
    /// the link to it in the dashboard; `short` cut to fit an SMS.
    fn about(
        alert: &Alert,
        origin: &Origin,
        purpose: Purpose,
        subject: String,
        intro: String,
        short: &str,
    ) -> Self {
        let url = alert_url(&origin.dashboard, alert.id);
        let mut body = intro;
        let _ = writeln!(body, "{:<13}{}", "Sensor:", origin.sensor);
        facts(&mut body, alert);
        let _ = write!(body, "\nDashboard: {url}\n");
        Message {
            purpose,
            severity: alert.severity,
            sensor: origin.sensor.clone(),
            subject,
            body,
            short: shorten(short),
            alert: Some(alert.clone()),
            url: Some(url),
        }
    }

    /// Messages storm control held back, summed up: how many, of which
    /// kinds and severities, and the first few.
    pub fn digest(held: &Held, origin: &Origin) -> Self {
        let worst = held.worst.unwrap_or(Severity::Low);
        let subject = format!(
            "{} {} more notification{} held back: {}",
            origin.tag(),
            held.count,
            if held.count == 1 { "" } else { "s" },
            held.kinds_text()
        );
        let mut body = format!(
            "To keep this channel readable, {} message{} from sensor {} past the rate limit {} \
             not sent one by one.\n\n",
            held.count,
            if held.count == 1 { "" } else { "s" },
            origin.sensor,
            if held.count == 1 { "was" } else { "were" },
        );
        for ((kind, severity), n) in &held.by_kind {
            let _ = writeln!(body, "  {n:>7} × {kind} ({severity})");
        }
        if !held.first.is_empty() {
            body.push_str("\nThe first of them:\n");
            for line in &held.first {
                let _ = writeln!(body, "  - {line}");
            }
            if held.count > held.first.len() as u64 {
                let _ = writeln!(
                    body,
                    "  ... and {} more",
                    held.count - held.first.len() as u64
                );
            }
        }
        let url = format!("{}/", origin.dashboard);
        let _ = write!(body, "\nAll alerts: {url}\n");
        let short = shorten(&format!(
            "nta {}: {} more alerts held back ({}); see the dashboard",
            origin.sensor,
            held.count,
            held.kinds_text()
        ));
        Message {
            purpose: Purpose::Digest,
            severity: worst,
            sensor: origin.sensor.clone(),
            subject,
            body,
            short,
            alert: None,
            url: Some(url),
        }
    }

    /// `nta-agent notify test`.
    pub fn test(origin: &Origin) -> Self {
        let Origin { sensor, dashboard } = origin;
        Message {
            purpose: Purpose::Test,
            severity: Severity::Low,
            sensor: sensor.clone(),
            subject: format!("{} test notification from {sensor}", origin.tag()),
            body: format!(
                "This is a test message from nta on sensor {sensor} (`nta-agent notify test`).\n\
                 If you can read it, this channel works.\n\nDashboard: {dashboard}/\n"
            ),
            short: shorten(&format!("nta {sensor} test message: this channel works")),
            alert: None,
            url: Some(format!("{dashboard}/")),
        }
    }

    /// One line for a digest's list: the subject without its tag, which
    /// the digest's own subject carries.
    pub fn line(&self) -> String {
        let tag = format!("[nta {}] ", self.sensor);
        self.subject
            .strip_prefix(&tag)
            .unwrap_or(&self.subject)
            .to_owned()
    }
}

/// What storm control held back, for the digest: counts and the first few
/// subjects, bounded however many there were.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    pub count: u64,
    pub by_kind: BTreeMap<(String, Severity), u64>,
    pub first: Vec<String>,
    pub worst: Option<Severity>,
}

/// Subjects a digest lists one by one.
pub const DIGEST_LINES: usize = 20;

impl Held {
    pub fn add(&mut self, message: &Message) {
        self.count += 1;
        let kind = message
            .alert
            .as_ref()
            .map_or_else(|| "digest".to_owned(), |a| a.kind.to_string());
        let kind = match message.purpose {
            Purpose::Closed => format!("{kind} closed"),
            _ => kind,
        };
        *self.by_kind.entry((kind, message.severity)).or_default() += 1;
        if self.first.len() < DIGEST_LINES {
            self.first.push(message.line());
        }
        self.worst = self.worst.max(Some(message.severity));
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `9994 port_scan, 6 syn_flood`, most first.
    fn kinds_text(&self) -> String {
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for ((kind, _), n) in &self.by_kind {
            *kinds.entry(kind).or_default() += n;
        }
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `from A to B:port`, with what the alert has.
fn route_of(alert: &Alert) -> String {
    let mut text = String::new();
    if let Some(src) = alert.src {
        let _ = write!(text, "from {src}");
    }
    if let Some(dst) = alert.dst {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "to {dst}");
        if let Some(port) = alert.dst_port
            && alert.kind != AlertKind::PortScan
        {
            let _ = write!(text, ":{port}");
        }
    }
    text
}

/// `80 (1200), 443 (3)`: each value with its packets.
fn counts<T: std::fmt::Display>(counts: &[Count<T>]) -> String {
    let counts: Vec<_> = counts
        .iter()
        .map(|c| format!("{} ({})", c.value, c.packets))
        .collect();
    counts.join(", ")
}

/// The alert's facts and evidence, one per line.
fn facts(body: &mut String, alert: &Alert) {
    let e = &alert.evidence;
    let state = match alert.state {
        AlertState::Open => "open",
        AlertState::Closed => "closed",
    };
    let mut line = |name: &str, value: String| {
        let _ = writeln!(body, "{name:<13}{value}");
    };
    line(
        "Alert:",
        format!(
            "#{} {}, severity {}, {state}",
            alert.id, alert.kind, alert.severity
        ),
    );
    if let Some(src) = alert.src {
        line("Source:", src.to_string());
    }
    if let Some(dst) = alert.dst {
        line(
            "Target:",
            match alert.dst_port {
                Some(port) => format!("{dst} port {port}"),
                None => dst.to_string(),
            },
        );
    }
    line("First seen:", alert.first_seen.to_string());
    line("Last seen:", alert.last_seen.to_string());
    if alert.state == AlertState::Closed {
        line("Lasted:", duration_text(alert));
    }
    line(
        "Peak:",
        format!(
            "{} (threshold {} in {}s)",
            rate(alert.peak_rate, &e.unit),
            rate(e.threshold, &e.unit),
            e.window_secs
        ),
    );
    line("Packets:", alert.packets.to_string());
    line("Detected by:", e.detected_by.to_string());
    if let Some(class) = &e.class {
        line("Class:", class.clone());
    }
    if !e.rules.is_empty() {
        let rules: Vec<_> = e.rules.iter().map(|r| r.as_str()).collect();
        line("Rules:", rules.join(", "));
    }
    if let Some(scan) = &e.scan {
        line("Probes:", scan.clone());
    }
    // Scans' and sweeps' distinct counts come from sketches: say so.
    let about = if e.estimated { " (estimated)" } else { "" };
    if let Some(n) = e.distinct_ports {
        line("Ports:", format!("{n} distinct{about}"));
    }
    if let Some(n) = e.distinct_hosts {
        line("Hosts:", format!("{n} distinct{about}"));
    }
    if let Some(n) = e.distinct_sources {
        // A HyperLogLog estimate for floods: within about 9 %.
        let about = if e.estimated { "~" } else { "" };
        line("Sources:", format!("{about}{n} distinct"));
    }
    if let (Some(pps), Some(bps)) = (e.pps, e.bps) {
        line(
            "Peak rates:",
            format!("{pps:.0} pkt/s, {:.1} Mbit/s", bps / 1e6),
        );
    }
    if let (Some(service), Some(port)) = (&e.service, e.service_port) {
        line("Reflector:", format!("{service} (UDP source port {port})"));
    }
    if !e.top_ports.is_empty() {
        line("Top ports:", counts(&e.top_ports));
    }
    if !e.top_sources.is_empty() {
        line("Top sources:", counts(&e.top_sources));
    }
    if let (Some(sid), Some(signature)) = (e.sid, &e.signature) {
        line("Rule:", format!("sid {sid}: {signature}"));
    }
    if let Some(buffer) = &e.buffer {
        line("Matched in:", buffer.clone());
    }
    // Attacker bytes, already escaped to printable ASCII and bounded.
    if let Some(excerpt) = &e.excerpt {
        line("Excerpt:", excerpt.clone());
    }
    if let Some(domain) = &e.domain {
        line("Domain:", domain.clone());
    }
    if let Some(query) = &e.query {
        line("Example:", query.clone());
    }
}

/// How long the incident lasted, e.g. `42s`, `3m 5s`.
fn duration_text(alert: &Alert) -> String {
    let secs = alert
        .last_seen
        .duration_since(alert.first_seen)
        .as_secs_f64()
        .max(0.0)
        .round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

/// `82641 SYN/s`: a rate without the decimals nobody reads.
fn rate(value: f64, unit: &str) -> String {
    format!("{value:.0} {unit}")
}

fn alert_url(dashboard: &str, id: u64) -> String {
    format!("{dashboard}/#alert={id}")
}

/// At most [`SHORT_MAX`] characters, cut with an ellipsis.
fn shorten(text: &str) -> String {
    if text.chars().count() <= SHORT_MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(SHORT_MAX - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::{Count, DetectedBy, Evidence, fixtures};

    pub(crate) fn origin() -> Origin {
        Origin {
            sensor: "edge-7".into(),
            dashboard: "http://127.0.0.1:3000".into(),
        }
    }

    pub(crate) fn alert(id: u64, kind: AlertKind, severity: Severity) -> Alert {
        Alert {
            severity,
            first_seen: fixtures::at("2026-11-25T10:00:00Z"),
            last_seen: fixtures::at("2026-11-25T10:01:05Z"),
            packets: 123_456,
            peak_rate: 82_641.4,
            message: "SYN flood on 198.18.0.1 (mostly port 80): 82641 SYN/s".into(),
            evidence: Evidence {
                threshold: 1000.0,
                unit: "SYN/s".into(),
                window_secs: 1.0,
                detected_by: DetectedBy::Kernel,
                top_sources: vec![Count {
                    value: "198.18.0.2".parse().unwrap(),
                    packets: 100_000,
                }],
                excerpt: Some("GET / HTTP/1.1\\r\\nUser-Agent: cmd.exe".into()),
                ..Evidence::default()
            },
            ..fixtures::alert(id, kind)
        }
    }

    #[test]
    fn an_opened_incident_says_severity_kind_source_and_links_to_it() {
        let m = Message::opened(
            &alert(7, AlertKind::SynFlood, Severity::Critical),
            &origin(),
        );
        assert_eq!(m.purpose, Purpose::Opened);
        assert_eq!(
            m.subject,
            "[nta edge-7] CRITICAL syn_flood from 198.18.0.2 to 198.18.0.1:80"
        );
        assert!(m.body.starts_with("SYN flood on 198.18.0.1"), "{}", m.body);
        for needle in [
            "Peak:        82641 SYN/s (threshold 1000 SYN/s in 1s)",
            "Top sources: 198.18.0.2 (100000)",
            "Detected by: kernel",
            "Excerpt:",
            "Dashboard: http://127.0.0.1:3000/#alert=7",
        ] {
            assert!(m.body.contains(needle), "no `{needle}` in\n{}", m.body);
        }
        assert_eq!(m.url.as_deref(), Some("http://127.0.0.1:3000/#alert=7"));
        assert!(m.short.chars().count() <= SHORT_MAX, "{}", m.short);
    }

    #[test]
    fn every_message_names_its_sensor() {
        let a = alert(7, AlertKind::SynFlood, Severity::Critical);
        let opened = Message::opened(&a, &origin());
        assert!(
            opened.body.contains("Sensor:      edge-7\n"),
            "{}",
            opened.body
        );
        assert!(
            opened.short.starts_with("nta edge-7 CRITICAL"),
            "{}",
            opened.short
        );
        assert_eq!(
            serde_json::to_value(&opened).unwrap()["sensor"],
            "edge-7",
            "the webhook's JSON"
        );
        let closed = Message::closed(&a, &origin());
        assert!(closed.subject.starts_with("[nta edge-7] closed:"));
        assert!(
            closed.short.starts_with("nta edge-7 closed"),
            "{}",
            closed.short
        );
        let mut held = Held::default();
        held.add(&opened);
        assert_eq!(
            held.first,
            ["CRITICAL syn_flood from 198.18.0.2 to 198.18.0.1:80"]
        );
        let digest = Message::digest(&held, &origin());
        assert!(
            digest.body.contains("from sensor edge-7"),
            "{}",
            digest.body
        );
        assert!(digest.short.starts_with("nta edge-7:"), "{}", digest.short);
        let test = Message::test(&origin());
        assert_eq!(test.subject, "[nta edge-7] test notification from edge-7");
        assert_eq!(test.sensor, "edge-7");
    }

    #[test]
    fn a_reflection_names_the_service_the_rates_and_the_estimated_sources() {
        let mut a = alert(8, AlertKind::Reflection, Severity::High);
        a.src = None;
        a.message = "NTP reflection on 198.18.0.1: 85 000 pkt/s, 400 Mbit/s from UDP port 123 \
                     of ~200 distinct sources (threshold 20 000 pkt/s)"
            .into();
        a.evidence = Evidence {
            threshold: 20_000.0,
            unit: "pkt/s".into(),
            window_secs: 1.0,
            class: Some("udp".into()),
            distinct_sources: Some(200),
            estimated: true,
            pps: Some(85_000.0),
            bps: Some(400e6),
            service: Some("NTP".into()),
            service_port: Some(123),
            ..Evidence::default()
        };
        let m = Message::opened(&a, &origin());
        assert_eq!(m.subject, "[nta edge-7] HIGH reflection to 198.18.0.1:80");
        for needle in [
            "Sources:     ~200 distinct",
            "Peak rates:  85000 pkt/s, 400.0 Mbit/s",
            "Reflector:   NTP (UDP source port 123)",
            "Class:       udp",
        ] {
            assert!(m.body.contains(needle), "no `{needle}` in\n{}", m.body);
        }
    }

    #[test]
    fn a_sweep_says_what_it_probes_with_and_that_its_counts_are_estimates() {
        let a = Alert {
            dst: None,
            dst_port: Some(22),
            message: "SYN sweep from 198.18.0.2 of port 22: ~254 hosts (estimated; more than 25 \
                      within 5m)"
                .into(),
            evidence: Evidence {
                threshold: 25.0,
                unit: "hosts".into(),
                window_secs: 300.0,
                scan: Some("syn".into()),
                distinct_hosts: Some(254),
                distinct_ports: Some(1),
                estimated: true,
                ..Evidence::default()
            },
            ..alert(8, AlertKind::Sweep, Severity::High)
        };
        let m = Message::opened(&a, &origin());
        assert_eq!(m.subject, "[nta edge-7] HIGH sweep from 198.18.0.2");
        for needle in [
            "Probes:      syn",
            "Ports:       1 distinct (estimated)",
            "Hosts:       254 distinct (estimated)",
        ] {
            assert!(m.body.contains(needle), "no `{needle}` in\n{}", m.body);
        }
    }

    #[test]
    fn a_closed_incident_gives_its_duration_and_totals() {
        let mut a = alert(7, AlertKind::SynFlood, Severity::High);
        a.state = AlertState::Closed;
        let m = Message::closed(&a, &origin());
        assert_eq!(
            m.subject,
            "[nta edge-7] closed: syn_flood from 198.18.0.2 to 198.18.0.1:80 after 1m 5s"
        );
        assert!(m.body.contains("Lasted:      1m 5s"), "{}", m.body);
        assert!(m.body.contains("Packets:     123456"), "{}", m.body);
        assert!(m.short.contains("123456 packets"), "{}", m.short);
    }

    #[test]
    fn a_digest_counts_everything_but_lists_a_bounded_few() {
        let mut held = Held::default();
        for id in 0..9_994 {
            held.add(&Message::opened(
                &alert(id, AlertKind::PortScan, Severity::High),
                &origin(),
            ));
        }
        held.add(&Message::opened(
            &alert(1, AlertKind::SynFlood, Severity::Critical),
            &origin(),
        ));
        let m = Message::digest(&held, &origin());
        assert_eq!(m.purpose, Purpose::Digest);
        assert_eq!(m.severity, Severity::Critical);
        assert_eq!(
            m.subject,
            "[nta edge-7] 9995 more notifications held back: 9994 port_scan, 1 syn_flood"
        );
        assert!(m.body.contains("   9994 × port_scan (high)"), "{}", m.body);
        assert!(m.body.contains("... and 9975 more"), "{}", m.body);
        assert_eq!(m.body.matches("\n  - ").count(), DIGEST_LINES);
    }

    #[test]
    fn long_texts_are_cut_for_sms() {
        let mut a = alert(7, AlertKind::Signature, Severity::High);
        a.message = "x".repeat(500);
        let m = Message::opened(&a, &origin());
        assert_eq!(m.short.chars().count(), SHORT_MAX);
        assert!(m.short.ends_with('…'));
    }
}
