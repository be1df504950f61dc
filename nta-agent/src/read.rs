//! `nta-agent read`: capture files inspected in user space — no root, no
//! BPF, no network — through the payload pipeline (every TCP and UDP
//! payload: rules, DNS tunnels) into incidents, with the capture's own
//! clock, out as EVE JSON, into a store, or as a summary.
//!
//! The kernel's counters (scans, floods) are not computed offline yet: that
//! needs the XDP program's counting as code the reader can run too.

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use nta_common::{IpKey, maps::SampleHeader};

use crate::{
    alert::{AlertEvent, AlertKind},
    capture::{CaptureError, CaptureReader, Frame, Network, network},
    cli::ReadArgs,
    config::Config,
    detect::Detector,
    eve::{self, EveWriter},
    inspect,
    payload::{
        dns_tunnel::DnsTunnel,
        matcher::Matcher,
        rules::{self, RuleSet},
    },
    store::Store,
};

/// Exit status of a read cut short or damaged: what came before was read.
const EXIT_DAMAGED: u8 = 1;
/// Exit status of a file that is not a capture or cannot be opened.
const EXIT_UNREADABLE: u8 = 2;

/// What a read saw.
#[derive(Debug, Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    ipv4: u64,
    ipv6: u64,
    tcp: u64,
    udp: u64,
    /// Frames that are not IP, or whose headers are damaged.
    other: u64,
    payloads: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    alerts: BTreeMap<AlertKind, u64>,
}

/// The rules a read uses: only the given files, as Suricata loads only the
/// rule files it is given; the embedded defaults without any.
fn load_rules(files: &[PathBuf]) -> anyhow::Result<RuleSet> {
    if files.is_empty() {
        return Ok(rules::default_rules());
    }
    let mut set = RuleSet::default();
    for path in files {
        let loaded = rules::load_file(path)?;
        for error in &loaded.errors {
            eprintln!("{error}");
        }
        set.merge(loaded);
    }
    Ok(set)
}

/// The pipeline a read feeds, and where its findings go.
struct Reader {
    matcher: Matcher,
    tunnels: DnsTunnel,
    tunnel_threshold: u32,
    detector: Detector,
    eve: Option<EveWriter>,
    next_id: u64,
    /// The capture's clock as the tunnel detector's `Instant`s: the first
    /// frame's time is `origin`.
    origin: Option<(Timestamp, Instant)>,
    totals: Totals,
    alerts: Vec<crate::alert::Alert>,
}

impl Reader {
    fn frame(&mut self, frame: Frame<'_>) {
        let t = &mut self.totals;
        t.packets += 1;
        t.bytes += u64::from(frame.wire_len);
        t.first = Some(t.first.map_or(frame.ts, |f| f.min(frame.ts)));
        t.last = Some(t.last.map_or(frame.ts, |l| l.max(frame.ts)));
        let Some(net) = network(frame.link, frame.data) else {
            t.other += 1;
            return;
        };
        match net.src {
            std::net::IpAddr::V4(_) => t.ipv4 += 1,
            std::net::IpAddr::V6(_) => t.ipv6 += 1,
        }
        match net.proto {
            nta_common::maps::ip_proto::TCP => t.tcp += 1,
            nta_common::maps::ip_proto::UDP => t.udp += 1,
            _ => {}
        }
        self.payload(frame.ts, &net);
    }

    /// Every TCP and UDP payload goes through the rules and, for DNS, the
    /// tunnel detector, whole (there is no kernel sampling offline).
    fn payload(&mut self, ts: Timestamp, net: &Network<'_>) {
        let Some(t) = net.transport.as_ref().filter(|t| !t.payload.is_empty()) else {
            return;
        };
        self.totals.payloads += 1;
        let header = SampleHeader {
            src: IpKey::from(net.src),
            dst: IpKey::from(net.dst),
            src_port: t.src_port,
            dst_port: t.dst_port,
            proto: net.proto,
            tcp_flags: t.tcp_flags,
            _pad: [0; 2],
            payload_len: u32::try_from(t.payload.len()).unwrap_or(u32::MAX),
            captured: u32::try_from(t.payload.len()).unwrap_or(u32::MAX),
            at_ns: 0,
        };
        let (origin_ts, origin) = *self.origin.get_or_insert((ts, Instant::now()));
        let since = ts.duration_since(origin_ts).max(SignedDuration::ZERO);
        let now = origin + Duration::try_from(since).unwrap_or_default();
        let findings = inspect::inspect_payload(
            &header,
            t.payload,
            &self.matcher,
            &mut self.tunnels,
            self.tunnel_threshold,
            now,
        );
        for finding in findings {
            if let Some(eve) = &mut self.eve {
                eve.finding(&finding, ts);
            }
            let next_id = &mut self.next_id;
            let event = self.detector.observe(finding, ts, &mut || {
                *next_id += 1;
                *next_id
            });
            self.on_alert(event);
        }
    }

    fn on_alert(&mut self, event: AlertEvent) {
        if let Some(eve) = &mut self.eve {
            eve.incident(&event);
        }
        match &event {
            AlertEvent::Opened(a) => *self.totals.alerts.entry(a.kind).or_default() += 1,
            AlertEvent::Closed(a) => self.alerts.push(a.clone()),
            AlertEvent::Updated(_) => {}
        }
    }
}

/// Reads every capture in `args`; returns the exit status: 0 when every
/// file was read whole.
pub fn read(args: &ReadArgs) -> anyhow::Result<u8> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let rules = load_rules(&args.rules)?;
    let eve = args.eve.as_ref().map(EveWriter::start).transpose()?;
    let tunnel = config.dns_tunnel.detector();
    let mut reader = Reader {
        matcher: Matcher::new(&rules.rules).context("compiling the rules")?,
        tunnel_threshold: tunnel.unique_subdomains,
        tunnels: DnsTunnel::new(tunnel),
        detector: Detector::new(config),
        eve,
        next_id: 0,
        origin: None,
        totals: Totals::default(),
        alerts: Vec::new(),
    };
    let mut captures = Vec::new();
    for path in &args.captures {
        match CaptureReader::open(path) {
            Ok(c) => captures.push(c),
            Err(e) => {
                eprintln!("nta-agent read: {e}");
                return Ok(EXIT_UNREADABLE);
            }
        }
    }
    let damage = read_in_time_order(&mut captures, &mut reader);
    finish(&mut reader, args)?;
    match damage {
        None => Ok(0),
        Some(e) => {
            eprintln!("nta-agent read: {e}; the alerts before it are kept");
            Ok(if e.is_damage() {
                EXIT_DAMAGED
            } else {
                EXIT_UNREADABLE
            })
        }
    }
}

/// One capture's next frame, copied, for the merge over files (the
/// buffer is reused from frame to frame).
#[derive(Default)]
struct Pending {
    ts: Timestamp,
    link: Option<crate::capture::Link>,
    data: Vec<u8>,
    wire_len: u32,
}

/// Fills `p` with `c`'s next frame; false at the end of the file.
fn next_into(c: &mut CaptureReader, p: &mut Pending) -> Result<bool, CaptureError> {
    c.next_frame(|f| {
        p.ts = f.ts;
        p.link = Some(f.link);
        p.data.clear();
        p.data.extend_from_slice(f.data);
        p.wire_len = f.wire_len;
    })
}

/// Frames of every capture, oldest first across files; the first error
/// stops its file only.
fn read_in_time_order(captures: &mut [CaptureReader], reader: &mut Reader) -> Option<CaptureError> {
    let progress = Progress::new(captures);
    let mut first_error = None;
    if let [only] = captures {
        // One file: its frames as they are, no copies.
        loop {
            match only.next_frame(|f| reader.frame(f)) {
                Ok(true) => progress.update(std::slice::from_ref(only), &reader.totals),
                Ok(false) => break,
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        progress.finish();
        return first_error;
    }
    let mut pending: Vec<Pending> = captures.iter().map(|_| Pending::default()).collect();
    let mut live: Vec<bool> = Vec::with_capacity(captures.len());
    for (c, p) in captures.iter_mut().zip(&mut pending) {
        live.push(next_into(c, p).unwrap_or_else(|e| {
            first_error.get_or_insert(e);
            false
        }));
    }
    while let Some(i) = (0..pending.len())
        .filter(|i| live[*i])
        .min_by_key(|i| pending[*i].ts)
    {
        let p = &pending[i];
        if let Some(link) = p.link {
            reader.frame(Frame {
                ts: p.ts,
                link,
                data: &p.data,
                wire_len: p.wire_len,
            });
        }
        live[i] = next_into(&mut captures[i], &mut pending[i]).unwrap_or_else(|e| {
            first_error.get_or_insert(e);
            false
        });
        progress.update(captures, &reader.totals);
    }
    progress.finish();
    first_error
}

/// A progress bar on a terminal (bytes read of all, packets/s, alerts),
/// nothing when stderr is not one.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(captures: &[CaptureReader]) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let total: u64 = captures.iter().map(|c| c.progress().1).sum();
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self(Some(bar))
    }

    fn update(&self, captures: &[CaptureReader], totals: &Totals) {
        let Some(bar) = &self.0 else { return };
        if !totals.packets.is_multiple_of(4096) {
            return;
        }
        let read: u64 = captures.iter().map(|c| c.progress().0).sum();
        bar.set_position(read);
        let rate = totals.packets as f64 / bar.elapsed().as_secs_f64().max(1e-3);
        let alerts: u64 = totals.alerts.values().sum();
        bar.set_message(format!("{:.0} packets/s, {alerts} alerts", rate));
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Closes the incidents, writes the outputs, prints the summary.
fn finish(reader: &mut Reader, args: &ReadArgs) -> anyhow::Result<()> {
    let end = reader.totals.last.unwrap_or(Timestamp::UNIX_EPOCH);
    for event in reader.detector.close_all(end) {
        reader.on_alert(event);
    }
    let t = &reader.totals;
    let span = match (t.first, t.last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => SignedDuration::ZERO,
    };
    if let Some(mut eve) = reader.eve.take() {
        let alerts = eve.alerts();
        let mut global = nta_common::GlobalCounters::ZERO;
        for (counter, value) in [
            (nta_common::Counter::Packets, t.packets),
            (nta_common::Counter::Bytes, t.bytes),
            (nta_common::Counter::Ipv4Packets, t.ipv4),
            (nta_common::Counter::Ipv6Packets, t.ipv6),
            (nta_common::Counter::TcpPackets, t.tcp),
            (nta_common::Counter::UdpPackets, t.udp),
        ] {
            global.values[counter as usize] = value;
        }
        let uptime = u64::try_from(span.as_secs()).unwrap_or(0);
        eve.send(eve::stats(&global, uptime, alerts, end));
        eve.close()?;
    }
    if let Some(db) = &args.db {
        let store = Store::open(db)?;
        store
            .put_alerts(&reader.alerts)
            .with_context(|| format!("writing the alerts to {}", db.display()))?;
    }
    if args.eve.is_none() && args.db.is_none() {
        println!("{}", summary(t, span, &args.captures));
    }
    Ok(())
}

fn summary(t: &Totals, span: SignedDuration, files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut out = format!(
        "read {}: {} packets, {} bytes over {:.3} s ({} IPv4, {} IPv6, {} TCP, {} UDP, {} not IP; {} payloads inspected)\n",
        names.join(", "),
        t.packets,
        t.bytes,
        span.as_secs_f64(),
        t.ipv4,
        t.ipv6,
        t.tcp,
        t.udp,
        t.other,
        t.payloads
    );
    let total: u64 = t.alerts.values().sum();
    out.push_str(&format!("alerts: {total}"));
    for (kind, n) in &t.alerts {
        out.push_str(&format!("\n  {kind}: {n}"));
    }
    out
}
