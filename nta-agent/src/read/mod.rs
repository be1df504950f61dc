//! `nta-agent read`: capture files analysed in user space — no root, no
//! BPF, no network — with the capture's own clock. Every frame is counted
//! as the XDP program counts it (the same code, `nta_common::count`), its
//! threshold crossings and the counters at each interval go to the same
//! detectors as live, and every TCP and UDP payload goes through the
//! payload pipeline (rules, DNS tunnels) on a second thread. Out as EVE
//! JSON, into a store, or as a summary.

mod inspection;

use std::{
    collections::{BTreeMap, VecDeque},
    io::IsTerminal as _,
    path::PathBuf,
    sync::Arc,
};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use nta_common::{
    Counter, GlobalCounters,
    classify::tcp_flags::{FIN, RST},
    count::Verdict,
    maps::{SampleHeader, ip_proto},
    packet::{Packet, TransportKind},
};

use crate::{
    alert::{AlertEvent, AlertKind},
    capture::{self, CaptureError, CaptureReader, Counts, Frame},
    cli::ReadArgs,
    config::Config,
    detect::{self, Detector, EventContext, Tick, thresholds},
    eve::{self, EveWriter},
    export::IpfixExporter,
    flows::{FlowRecord, Labels, Timeouts},
    inspect::Inspector,
    payload::{
        ip_only::{FlowLookups, IpOnlyRules},
        matcher::Matcher,
        rules::{self, RuleSet},
    },
    source::{PacketSource, SourceTime},
    store::Store,
    traffic::Snapshot,
};
use inspection::{Batch, Found, Inspection};

/// Exit status of a read cut short or damaged: what came before was read.
const EXIT_DAMAGED: u8 = 1;
/// Exit status of a file that is not a capture or cannot be opened.
const EXIT_UNREADABLE: u8 = 2;

/// What a read saw besides the counters.
#[derive(Debug, Default)]
struct Totals {
    frames: u64,
    payloads: u64,
    flows: u64,
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
fn load_rules(files: &[PathBuf], vars: &rules::Vars) -> anyhow::Result<RuleSet> {
    if files.is_empty() {
        return Ok(rules::default_rules());
    }
    let mut set = RuleSet::default();
    for path in files {
        let loaded = rules::load_file_with(path, vars)?;
        for error in &loaded.errors {
            eprintln!("{error}");
        }
        set.merge(loaded);
    }
    let before = set.errors.len();
    rules::reject_unset_flowbits(&mut set);
    for error in &set.errors[before..] {
        eprintln!("{error}");
    }
    Ok(set)
}

/// Frames a batch holds at most: what the inspection thread gets at once.
const BATCH_FRAMES: u64 = 4096;
/// Batches handed to the inspection thread and not yet applied: one it
/// works on, one waiting, so that it never waits for the counting side.
/// Detection runs this many batches behind counting.
const IN_FLIGHT: usize = 2;

/// What the detectors get from counting, in the order it happened.
enum Input {
    /// A threshold crossing and what was read right after it.
    Event(Box<EventContext>),
    /// The counters at the end of an interval, and the time then.
    Tick {
        after: Arc<Snapshot>,
        now: SourceTime,
    },
    /// Flows that ended (idle, or the capture did).
    Flows(Vec<FlowRecord>),
    /// What new flows matched of the rules on addresses alone.
    Found(Vec<Found>),
}

/// The counting side of a read: frames counted as the kernel counts them,
/// intervals run on the capture's clock, payloads batched for the
/// inspection thread; then both sides' results applied to the detectors in
/// frame order.
struct Reader {
    counts: Counts,
    /// The counters at the last interval, and when the next one ends
    /// (capture clock, ns).
    previous: Option<Arc<Snapshot>>,
    next_tick_ns: u64,
    interval_ns: u64,
    timeouts: Timeouts,
    /// The rules on addresses alone, each walk's new flows looked up.
    lookups: FlowLookups,
    /// Frames counted so far: the index of the next.
    frame: u64,
    /// The batch being filled and the inputs of its frames; the inputs of
    /// the batches the inspection thread has, oldest first; emptied
    /// batches, to be filled again.
    batch: Batch,
    batch_start: u64,
    inputs: Vec<(u64, Input)>,
    in_flight: VecDeque<Vec<(u64, Input)>>,
    spare: Vec<Batch>,
    inspection: Inspection,
    detection: Detection,
}

/// The detectors' side: the incidents, their alerts and the outputs.
struct Detection {
    detector: Detector,
    /// The counters at the detectors' last interval.
    before: Option<Arc<Snapshot>>,
    eve: Option<EveWriter>,
    /// Flow records to an IPFIX collector, if any.
    ipfix: Option<IpfixExporter>,
    ids: AlertIds,
    /// The first failure to store flow records: the read goes on, and
    /// fails at its end.
    store_error: Option<crate::store::StoreError>,
    totals: Totals,
    alerts: Vec<crate::alert::Alert>,
    /// What inspection and the alerts learnt of flows, for their records.
    labels: Labels,
}

impl Reader {
    fn frame(&mut self, frame: Frame<'_>) {
        let t = &mut self.detection.totals;
        t.frames += 1;
        t.first = Some(t.first.map_or(frame.ts, |f| f.min(frame.ts)));
        t.last = Some(t.last.map_or(frame.ts, |l| l.max(frame.ts)));
        self.ticks_before(frame.ts);
        self.counts.set_time(frame.ts);
        if let Verdict::Counted { packet, flow, .. } =
            self.counts.frame(frame.link, frame.data, frame.wire_len)
        {
            self.payload(frame.ts, &packet, flow, frame.data);
        }
        for event in self.counts.take_events() {
            let ctx = EventContext::gather(
                event,
                &self.counts,
                self.previous.as_deref(),
                |e, _| match e {},
            );
            self.inputs.push((self.frame, Input::Event(Box::new(ctx))));
        }
        self.frame += 1;
        if self.frame - self.batch_start >= BATCH_FRAMES {
            self.hand_over();
        }
    }

    /// Runs the intervals that end before `ts`, each with the clock at its
    /// end; the first frame starts the first.
    fn ticks_before(&mut self, ts: Timestamp) {
        let ns = u64::try_from(ts.as_nanosecond()).unwrap_or(0);
        if self.previous.is_none() {
            self.counts.set_time(ts);
            self.tick();
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

    /// The counters now, for the detectors' interval and the next events;
    /// the flows idle since the idle timeout, ended.
    fn tick(&mut self) {
        let now = Arc::new(snapshot(&self.counts));
        self.previous = Some(Arc::clone(&now));
        let time = self.counts.now();
        let input = Input::Tick {
            after: now,
            now: time,
        };
        self.inputs.push((self.frame, input));
        self.flow_records(false);
    }

    /// Records of the flows idle or past the active timeout (every flow
    /// at `end`), for the outputs; the flows that ended removed. Before
    /// them, what the flows new since the previous walk match of the rules
    /// on addresses alone, as live.
    fn flow_records(&mut self, end: bool) {
        let time = self.counts.now();
        let now = time.mono_ns;
        let at = self.counts.instant();
        let (timeouts, lookups) = (&mut self.timeouts, &mut self.lookups);
        lookups.start_walk(now);
        let mut found = Vec::new();
        let picked = self.counts.walk_flows(|k, f| {
            found.extend(lookups.flow(k, f, at).iter().map(|m| Found {
                frame: self.frame,
                ts: time.wall,
                finding: detect::payload::address_match(m),
            }));
            timeouts.pick_for(k, f, now, end)
        });
        if !found.is_empty() {
            self.inputs.push((self.frame, Input::Found(found)));
        }
        if picked.is_empty() {
            return;
        }
        let records = self.timeouts.records(picked, 0, now, end);
        self.inputs.push((self.frame, Input::Flows(records)));
    }

    /// Batches every TCP and UDP payload for inspection, whole (there is
    /// no kernel sampling offline); `flow` is where it stands in its flow.
    fn payload(&mut self, ts: Timestamp, packet: &Packet, flow: u8, data: &[u8]) {
        let t = &packet.transport;
        let (proto, tcp_flags) = match t.kind {
            TransportKind::Tcp => (ip_proto::TCP, t.flags),
            TransportKind::Udp => (ip_proto::UDP, 0),
            _ => return,
        };
        let payload = capture::payload(packet, data);
        // A FIN or RST with no data still ends its direction's stream: the
        // inspection thread is told, so that streams do not pile up.
        let ends = tcp_flags & (FIN | RST) != 0;
        if payload.is_empty() && !ends {
            return;
        }
        if !payload.is_empty() {
            self.detection.totals.payloads += 1;
        }
        let header = SampleHeader {
            src: packet.src,
            dst: packet.dst,
            src_port: t.src_port,
            dst_port: t.dst_port,
            proto,
            tcp_flags,
            flow,
            _pad: 0,
            payload_len: t.payload_len,
            captured: payload.len() as u32,
            seq: t.seq,
            _pad2: [0; 4],
            at_ns: self.counts.now().mono_ns,
        };
        let at = self.counts.instant();
        self.batch.push(self.frame, ts, at, header, payload);
    }

    /// Hands the batch being filled to the inspection thread, and applies
    /// the oldest it has once more than [`IN_FLIGHT`] are out.
    fn hand_over(&mut self) {
        let next = self.spare.pop().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        if !self.inspection.send(batch) {
            tracing::warn!("The payload inspection thread is gone: payloads are not inspected");
        }
        self.in_flight.push_back(std::mem::take(&mut self.inputs));
        self.batch_start = self.frame;
        while self.in_flight.len() > IN_FLIGHT {
            self.collect();
        }
    }

    /// Applies the oldest batch the inspection thread has, with its
    /// frames' inputs, once it is done.
    fn collect(&mut self) {
        let Some(inputs) = self.in_flight.pop_front() else {
            return;
        };
        let (found, batch) = self.inspection.receive().unwrap_or_default();
        self.detection.apply(inputs, found);
        self.spare.push(batch);
    }

    /// Everything counted and inspected, applied.
    fn drain(&mut self) {
        self.hand_over();
        while !self.in_flight.is_empty() {
            self.collect();
        }
    }
}

impl Detection {
    /// Counting's inputs and inspection's findings in frame order; at the
    /// same frame, the counters' first, as the kernel signals a packet
    /// before its sample is read.
    fn apply(&mut self, inputs: Vec<(u64, Input)>, found: Vec<Found>) {
        let mut found = found.into_iter().peekable();
        for (frame, input) in inputs {
            while let Some(f) = found.next_if(|f| f.frame < frame) {
                self.finding(f);
            }
            match input {
                Input::Event(ctx) => {
                    let events = self.detector.on_event(&ctx, &mut || self.ids.next());
                    self.on_alerts(events);
                }
                Input::Tick { after, now } => self.tick(after, now),
                Input::Flows(records) => self.flows(records),
                Input::Found(found) => {
                    for f in found {
                        self.finding(f);
                    }
                }
            }
        }
        for f in found {
            self.finding(f);
        }
    }

    /// Flows that ended, with their labels: to the EVE output, the IPFIX
    /// collector and the store. Their payloads were all inspected by now:
    /// the batches up to this frame are back.
    fn flows(&mut self, records: Vec<FlowRecord>) {
        let records = self.labels.apply(records);
        self.totals.flows += records.len() as u64;
        if let Some(eve) = &mut self.eve {
            for r in &records {
                eve.flow(r);
            }
        }
        if let Some(ipfix) = &mut self.ipfix {
            ipfix.export(&records);
        }
        if let AlertIds::Store(store) = &self.ids
            && self.store_error.is_none()
            && let Err(error) = store.put_flows(&records)
        {
            self.store_error = Some(error);
        }
    }

    fn tick(&mut self, after: Arc<Snapshot>, now: SourceTime) {
        if let Some(before) = self.before.take() {
            let tick = Tick {
                before: &before,
                after: &after,
                now: now.wall,
                now_ns: now.mono_ns,
            };
            let events = self.detector.on_tick(&tick, &mut || self.ids.next());
            self.on_alerts(events);
        }
        self.before = Some(after);
    }

    fn finding(&mut self, found: Found) {
        if let Some(eve) = &mut self.eve {
            eve.finding(&found.finding, found.ts);
        }
        let flow = found.finding.flow();
        let event = self
            .detector
            .observe(found.finding, found.ts, &mut || self.ids.next());
        if let Some(flow) = flow {
            self.labels.add_alert(flow, event.alert().id);
        }
        self.on_alert(event);
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

/// Where a read's alert ids come from: the store it writes to, beside the
/// alerts already there, or 1, 2, ... without one.
enum AlertIds {
    Store(Store),
    Count(u64),
}

impl AlertIds {
    fn next(&mut self) -> u64 {
        match self {
            AlertIds::Store(store) => store.allocate_alert_id(),
            AlertIds::Count(last) => {
                *last += 1;
                *last
            }
        }
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
    let rules = load_rules(&args.rules, &config.rule_vars())?;
    // A read waits for its EVE output rather than drop an event.
    let eve = eve::outputs(&config, args.eve.as_ref())
        .map(|outputs| EveWriter::start(&outputs).map(EveWriter::waiting))
        .transpose()?;
    // The command line wins over the config file, as for `run`; a read
    // waits for the socket rather than drop a message.
    let ipfix = args
        .ipfix
        .or(config.export.ipfix)
        .map(|collector| IpfixExporter::start(collector)?.paced())
        .transpose()?;
    // Opened first: a store that cannot be written stops the read before
    // it starts, not after.
    let ids = match &args.db {
        Some(db) => AlertIds::Store(Store::open(db)?),
        None => AlertIds::Count(0),
    };
    let labels = Labels::for_table(config.flows.table_size);
    let lookups = FlowLookups::new(IpOnlyRules::new(&rules.rules));
    let inspection = Inspection::start(Inspector::new(
        Matcher::new(&rules.rules).context("compiling the rules")?,
        config.dns_tunnel.detector(),
        labels.clone(),
    ))
    .context("starting the payload inspection thread")?;
    let mut reader = Reader {
        counts: Counts::new(thresholds::for_kernel(&config), config.flows.table_size),
        previous: None,
        next_tick_ns: 0,
        interval_ns: u64::try_from(args.interval.as_nanos()).unwrap_or(u64::MAX),
        timeouts: Timeouts::new(config.flows.idle_timeout, config.flows.active_timeout)
            .for_table(config.flows.table_size),
        lookups,
        frame: 0,
        batch: Batch::default(),
        batch_start: 0,
        inputs: Vec::new(),
        in_flight: VecDeque::new(),
        spare: Vec::new(),
        inspection,
        detection: Detection {
            detector: Detector::new(config),
            before: None,
            eve,
            ipfix,
            ids,
            store_error: None,
            totals: Totals::default(),
            alerts: Vec::new(),
            labels,
        },
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
                Ok(true) => progress.update(std::slice::from_ref(only), &reader.detection.totals),
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
        progress.update(captures, &reader.detection.totals);
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
    let end = reader
        .detection
        .totals
        .last
        .unwrap_or(Timestamp::UNIX_EPOCH);
    if reader.previous.is_some() {
        // The last interval, to its end: the capture stops, time does not,
        // and a rate over the few milliseconds after the last tick would
        // make a handful of packets a flood.
        let boundary = Timestamp::from_nanosecond(i128::from(reader.next_tick_ns)).unwrap_or(end);
        reader.counts.set_time(boundary);
        reader.tick();
    }
    reader.flow_records(true);
    reader.drain();
    let global = reader.counts.global();
    let detection = &mut reader.detection;
    for event in detection.detector.close_all(end) {
        detection.on_alert(event);
    }
    let t = &detection.totals;
    let span = match (t.first, t.last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => SignedDuration::ZERO,
    };
    if let Some(mut eve) = detection.eve.take() {
        let alerts = eve.alerts();
        let uptime = u64::try_from(span.as_secs()).unwrap_or(0);
        eve.send(eve::stats(&global, uptime, alerts, end));
        // A read waits for its sinks: an event lost is a failed write.
        for sink in eve.close()? {
            if sink.dropped > 0 {
                anyhow::bail!(
                    "{} EVE events could not be written to {}",
                    sink.dropped,
                    sink.name
                );
            }
        }
    }
    if let Some(ipfix) = detection.ipfix.take() {
        log_ipfix_totals(&ipfix);
    }
    if let (Some(db), Some(error)) = (&args.db, detection.store_error.take()) {
        return Err(error).with_context(|| format!("writing the flows to {}", db.display()));
    }
    if let (Some(db), AlertIds::Store(store)) = (&args.db, &detection.ids) {
        store
            .put_alerts(&detection.alerts)
            .with_context(|| format!("writing the alerts to {}", db.display()))?;
    }
    if args.eve.is_none() && args.db.is_none() {
        println!("{}", summary(t, &global, span, &args.captures));
    }
    Ok(())
}

/// What went to the IPFIX collector; a warning if some of it did not.
fn log_ipfix_totals(ipfix: &IpfixExporter) {
    let t = ipfix.totals();
    let collector = ipfix.collector();
    if t.failed > 0 {
        tracing::warn!(message = "IPFIX export incomplete", %collector, messages = t.messages, records = t.records, failed = t.failed);
    } else {
        tracing::info!(message = "IPFIX export done", %collector, messages = t.messages, records = t.records);
    }
}

fn summary(t: &Totals, g: &GlobalCounters, span: SignedDuration, files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let ip = g.get(Counter::Ipv4Packets) + g.get(Counter::Ipv6Packets);
    let mut out = format!(
        "read {}: {} packets, {} bytes over {:.3} s ({} IPv4, {} IPv6, {} TCP, {} UDP, {} not IP; {} flows; {} payloads inspected)\n",
        names.join(", "),
        g.get(Counter::Packets),
        g.get(Counter::Bytes),
        span.as_secs_f64(),
        g.get(Counter::Ipv4Packets),
        g.get(Counter::Ipv6Packets),
        g.get(Counter::TcpPackets),
        g.get(Counter::UdpPackets),
        g.get(Counter::Packets).saturating_sub(ip),
        t.flows,
        t.payloads
    );
    let total: u64 = t.alerts.values().sum();
    out.push_str(&format!("alerts: {total}"));
    for (kind, n) in &t.alerts {
        out.push_str(&format!("\n  {kind}: {n}"));
    }
    out
}
