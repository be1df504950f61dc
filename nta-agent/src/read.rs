//! `nta-agent read`: capture files analysed in user space — no root, no
//! BPF, no network — with the capture's own clock. Every frame is counted
//! as the XDP program counts it (the same code, `nta_common::count`), its
//! threshold crossings and the counters at each interval go to the same
//! detectors as live, and every TCP and UDP payload goes through the
//! payload pipeline (rules, DNS tunnels). Out as EVE JSON, into a store,
//! or as a summary.

use std::{collections::BTreeMap, io::IsTerminal as _, path::PathBuf};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use nta_common::{
    Counter, GlobalCounters,
    count::Verdict,
    maps::{SampleHeader, ip_proto},
    packet::{Packet, TransportKind},
};

use crate::{
    alert::{AlertEvent, AlertKind},
    capture::{self, CaptureError, CaptureReader, Counts, Frame},
    cli::ReadArgs,
    config::Config,
    detect::{Detector, EventContext, Tick, thresholds},
    eve::{self, EveWriter},
    inspect,
    payload::{
        dns_tunnel::DnsTunnel,
        matcher::Matcher,
        rules::{self, RuleSet},
    },
    source::PacketSource,
    store::Store,
    traffic::Snapshot,
};

/// Exit status of a read cut short or damaged: what came before was read.
const EXIT_DAMAGED: u8 = 1;
/// Exit status of a file that is not a capture or cannot be opened.
const EXIT_UNREADABLE: u8 = 2;

/// What a read saw besides the counters.
#[derive(Debug, Default)]
struct Totals {
    frames: u64,
    payloads: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    alerts: BTreeMap<AlertKind, u64>,
}

/// Intervals without a frame that are run one by one; after a longer gap
/// the detectors see two empty intervals and then the one before the next
/// frame, as if the counters had been read all along.
const GAP_TICKS: u32 = 2;

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

/// The counters and pipeline a read feeds, and where its findings go.
struct Reader {
    counts: Counts,
    /// The counters at the last interval, and when the next one ends
    /// (capture clock, ns).
    previous: Option<Snapshot>,
    next_tick_ns: u64,
    interval_ns: u64,
    matcher: Matcher,
    tunnels: DnsTunnel,
    tunnel_threshold: u32,
    detector: Detector,
    eve: Option<EveWriter>,
    next_id: u64,
    totals: Totals,
    alerts: Vec<crate::alert::Alert>,
}

impl Reader {
    fn frame(&mut self, frame: Frame<'_>) {
        let t = &mut self.totals;
        t.frames += 1;
        t.first = Some(t.first.map_or(frame.ts, |f| f.min(frame.ts)));
        t.last = Some(t.last.map_or(frame.ts, |l| l.max(frame.ts)));
        self.ticks_before(frame.ts);
        self.counts.set_time(frame.ts);
        if let Verdict::Counted { packet, .. } =
            self.counts.frame(frame.link, frame.data, frame.wire_len)
        {
            self.payload(frame.ts, &packet, frame.data);
        }
        for event in self.counts.take_events() {
            let ctx =
                EventContext::gather(
                    event,
                    &self.counts,
                    self.previous.as_ref(),
                    |e, _| match e {},
                );
            let found = self
                .detector
                .on_event(&ctx, &mut next_id(&mut self.next_id));
            self.on_alerts(found);
        }
    }

    /// Runs the intervals that end before `ts`, each with the clock at its
    /// end; the first frame starts the first.
    fn ticks_before(&mut self, ts: Timestamp) {
        let ns = u64::try_from(ts.as_nanosecond()).unwrap_or(0);
        if self.previous.is_none() {
            self.counts.set_time(ts);
            self.previous = Some(snapshot(&self.counts));
            self.next_tick_ns = ns.saturating_add(self.interval_ns);
            return;
        }
        let mut run = 0;
        while self.next_tick_ns <= ns {
            if run == GAP_TICKS {
                let behind = (ns - self.next_tick_ns) / self.interval_ns;
                self.next_tick_ns += behind * self.interval_ns;
            }
            let end = Timestamp::from_nanosecond(i128::from(self.next_tick_ns))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            self.counts.set_time(end);
            self.tick();
            self.next_tick_ns = self.next_tick_ns.saturating_add(self.interval_ns);
            run += 1;
        }
    }

    /// One interval: the counters now against the last ones.
    fn tick(&mut self) {
        let current = snapshot(&self.counts);
        let Some(previous) = self.previous.take() else {
            self.previous = Some(current);
            return;
        };
        let time = self.counts.now();
        let tick = Tick {
            before: &previous,
            after: &current,
            now: time.wall,
            now_ns: time.mono_ns,
        };
        let found = self
            .detector
            .on_tick(&tick, &mut next_id(&mut self.next_id));
        self.on_alerts(found);
        self.previous = Some(current);
    }

    /// Every TCP and UDP payload goes through the rules and, for DNS, the
    /// tunnel detector, whole (there is no kernel sampling offline).
    fn payload(&mut self, ts: Timestamp, packet: &Packet, data: &[u8]) {
        let t = &packet.transport;
        let (proto, tcp_flags) = match t.kind {
            TransportKind::Tcp => (ip_proto::TCP, t.flags),
            TransportKind::Udp => (ip_proto::UDP, 0),
            _ => return,
        };
        let payload = capture::payload(packet, data);
        if payload.is_empty() {
            return;
        }
        self.totals.payloads += 1;
        let header = SampleHeader {
            src: packet.src,
            dst: packet.dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
            proto,
            tcp_flags,
            _pad: [0; 2],
            payload_len: t.payload_len,
            captured: payload.len() as u32,
            at_ns: self.counts.now().mono_ns,
        };
        let findings = inspect::inspect_payload(
            &header,
            payload,
            &self.matcher,
            &mut self.tunnels,
            self.tunnel_threshold,
            self.counts.instant(),
        );
        for finding in findings {
            if let Some(eve) = &mut self.eve {
                eve.finding(&finding, ts);
            }
            let event = self
                .detector
                .observe(finding, ts, &mut next_id(&mut self.next_id));
            self.on_alert(event);
        }
    }

    fn on_alerts(&mut self, events: Vec<AlertEvent>) {
        for event in events {
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

/// Alert ids for a read: 1, 2, ...
fn next_id(last: &mut u64) -> impl FnMut() -> u64 + '_ {
    move || {
        *last += 1;
        *last
    }
}

fn snapshot(counts: &Counts) -> Snapshot {
    match counts.snapshot() {
        Ok(snapshot) => snapshot,
        Err(never) => match never {},
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
        counts: Counts::new(thresholds::for_kernel(&config)),
        previous: None,
        next_tick_ns: 0,
        interval_ns: u64::try_from(args.interval.as_nanos()).unwrap_or(u64::MAX),
        matcher: Matcher::new(&rules.rules).context("compiling the rules")?,
        tunnel_threshold: tunnel.unique_subdomains,
        tunnels: DnsTunnel::new(tunnel),
        detector: Detector::new(config),
        eve,
        next_id: 0,
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
        if !totals.frames.is_multiple_of(4096) {
            return;
        }
        let read: u64 = captures.iter().map(|c| c.progress().0).sum();
        bar.set_position(read);
        let rate = totals.frames as f64 / bar.elapsed().as_secs_f64().max(1e-3);
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
    if reader.previous.is_some() {
        // The last, partial interval, as the live agent's at shutdown.
        reader.counts.set_time(end);
        reader.tick();
    }
    for event in reader.detector.close_all(end) {
        reader.on_alert(event);
    }
    let t = &reader.totals;
    let global = reader.counts.global();
    let span = match (t.first, t.last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => SignedDuration::ZERO,
    };
    if let Some(mut eve) = reader.eve.take() {
        let alerts = eve.alerts();
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
        println!("{}", summary(t, &global, span, &args.captures));
    }
    Ok(())
}

fn summary(t: &Totals, g: &GlobalCounters, span: SignedDuration, files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let ip = g.get(Counter::Ipv4Packets) + g.get(Counter::Ipv6Packets);
    let mut out = format!(
        "read {}: {} packets, {} bytes over {:.3} s ({} IPv4, {} IPv6, {} TCP, {} UDP, {} not IP; {} payloads inspected)\n",
        names.join(", "),
        g.get(Counter::Packets),
        g.get(Counter::Bytes),
        span.as_secs_f64(),
        g.get(Counter::Ipv4Packets),
        g.get(Counter::Ipv6Packets),
        g.get(Counter::TcpPackets),
        g.get(Counter::UdpPackets),
        g.get(Counter::Packets).saturating_sub(ip),
        t.payloads
    );
    let total: u64 = t.alerts.values().sum();
    out.push_str(&format!("alerts: {total}"));
    for (kind, n) in &t.alerts {
        out.push_str(&format!("\n  {kind}: {n}"));
    }
    out
}
