//! The running agent: the loop that turns a packet source's counters,
//! events and findings into incidents, and its shutdown.

use std::{
    sync::PoisonError,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use jiff::Timestamp;
use nta_common::{GlobalCounters, maps::ThresholdEvent};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    time::{MissedTickBehavior, interval, sleep},
};
use tracing::{debug, info, warn};

use super::{
    flow_export::{self, FlowExport, Walked},
    start::{Blocking, RunningApi, Settings},
};
use crate::{
    alert::AlertEvent,
    api::{Report, stream::Feed},
    detect::{self, Detector, EventContext, Tick},
    eve::{self, EveWriter},
    export::IpfixExporter,
    flows::{FlowRecord, Labels},
    mitigate::{auto, blocklist::SharedBlocklist},
    notify::Notifier,
    source::PacketSource,
    stats::TickCounts,
    store::{Retention, StoreWriter},
    throttle::Throttle,
    timings::{self, Timings},
    traffic::{self, Snapshot},
};

/// How long pending notifications may take to go out at shutdown.
const NOTIFY_GRACE: Duration = Duration::from_secs(10);

/// How long the store may take to write what is left at shutdown.
const STORE_GRACE: Duration = Duration::from_secs(10);

/// Flow records (or other events) waiting in an output past which the
/// loop holds further batches of records back: a walk that ends a full
/// table's flows at once then waits in bounded memory, a batch at a time,
/// instead of filling (and overflowing) every queue.
const FLOWS_AHEAD: usize = 16_384;

/// How often the loop looks again whether the outputs take flow records,
/// while they do not.
const FLOW_ROOM_POLL: Duration = Duration::from_millis(20);

/// Ticks between two prunes of old history.
const PRUNE_EVERY_TICKS: u64 = 60;

/// SIGINT and SIGTERM, caught from the start of `run`: one that comes
/// while the sensor attaches or the API starts stops the agent cleanly
/// once it runs, detaching, instead of killing it half-started.
pub struct Stops {
    sigint: tokio::signal::unix::Signal,
    sigterm: tokio::signal::unix::Signal,
}

impl Stops {
    pub fn install() -> anyhow::Result<Self> {
        Ok(Self {
            sigint: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            sigterm: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }
}

/// Where events and flow records go besides the store.
pub(super) struct Outputs {
    pub eve: Option<EveWriter>,
    pub ipfix: Option<IpfixExporter>,
}

/// The loop's state: the source, the detectors, and where alerts go.
pub(super) struct Agent<S> {
    source: S,
    detector: Detector,
    /// Commits alerts and history without holding up detection.
    writer: StoreWriter,
    notifier: Option<Notifier>,
    /// The store (which allocates alert ids) and the live view, as the
    /// API reports them.
    report: Report,
    feed: Feed,
    timings: Timings,
    blocks: SharedBlocklist,
    policy: auto::AutoPolicy,
    interval: Duration,
    retention: Retention,
    /// The counters at the end of the last tick.
    previous: Option<Snapshot>,
    ticks: u64,
    /// Failed reads of the source, logged once in a while.
    read_failures: Throttle,
    /// The EVE output, if any, and when it last had a stats event.
    eve: Option<EveWriter>,
    eve_stats_interval: Duration,
    eve_stats_at: Instant,
    /// Flow records to an IPFIX collector, if any.
    ipfix: Option<IpfixExporter>,
    started: Instant,
    /// What is known of flows beyond their counts, for their records.
    labels: Labels,
}

impl<S: PacketSource> Agent<S> {
    /// The agent over `source`, its store writer started on the API's
    /// store.
    pub fn new(
        source: S,
        settings: Settings,
        notifier: Option<Notifier>,
        outputs: Outputs,
        blocking: Blocking,
        api: &RunningApi,
        labels: Labels,
    ) -> Self {
        let timings = api.state.timings.clone();
        let health = api.state.live.clone();
        let writer = StoreWriter::start(
            api.state.store.clone(),
            Box::new(move |report| health.store_health(report)),
            timings.clone(),
        );
        Self {
            source,
            detector: Detector::new(settings.config),
            writer,
            notifier,
            report: api.state.report(),
            feed: api.state.feed.clone(),
            timings,
            blocks: blocking.list,
            policy: blocking.policy,
            interval: settings.interval,
            retention: settings.retention,
            previous: None,
            ticks: 0,
            read_failures: Throttle::default(),
            eve: outputs.eve,
            eve_stats_interval: settings.eve_stats_interval,
            eve_stats_at: Instant::now(),
            ipfix: outputs.ipfix,
            started: Instant::now(),
            labels,
        }
    }

    /// Detects on every event, finding and tick until SIGINT or SIGTERM
    /// (one that came during start-up included); returns the signal's name.
    pub async fn run_until_signal(
        &mut self,
        stops: Stops,
        mut events: mpsc::Receiver<ThresholdEvent>,
        mut findings: mpsc::Receiver<detect::Finding>,
        flows: &mut mpsc::Receiver<Walked>,
    ) -> anyhow::Result<&'static str> {
        let Stops {
            mut sigint,
            mut sigterm,
        } = stops;
        let mut ticker = interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        self.previous = Some(
            self.source
                .snapshot()
                .context("reading the sensor's counters")?,
        );
        Ok(loop {
            let room = self.takes_flows();
            tokio::select! {
                Some(event) = events.recv() => self.on_event(event).await,
                Some(finding) = findings.recv() => self.on_finding(finding).await,
                // Flow records only while the outputs take them: the walk
                // waits meanwhile, and the kernel table holds the flows.
                Some(walked) = flows.recv(), if room => self.on_walked(walked).await,
                _ = sleep(FLOW_ROOM_POLL), if !room => {}
                _ = ticker.tick() => {
                    self.on_tick().await;
                    self.expire_blocks().await;
                    self.ticks += 1;
                    if self.ticks.is_multiple_of(PRUNE_EVERY_TICKS) {
                        self.writer.prune(&self.retention);
                    }
                }
                _ = sigint.recv() => break "SIGINT",
                _ = sigterm.recv() => break "SIGTERM",
            }
        })
    }

    /// Reports the last partial interval, stops `export` and writes the
    /// records it had read (from `flows`) and those of the flows left in
    /// the table, closes every incident, and waits (a bounded time) for the
    /// store and the notifications; returns the source, to be stopped.
    pub async fn shutdown(mut self, export: FlowExport, flows: &mut mpsc::Receiver<Walked>) -> S {
        self.on_tick().await;
        // Records are taken as the outputs take them, for as long as the
        // store would be given to finish anyway: a full table's are never
        // in memory at once, and none is dropped while the outputs keep up.
        let deadline = tokio::time::Instant::now() + STORE_GRACE;
        // The exporter may be waiting to hand over a batch: take it.
        let stopping = export.stop();
        tokio::pin!(stopping);
        let walker = loop {
            tokio::select! {
                walker = &mut stopping => break walker,
                Some(walked) = flows.recv() => self.take_flows(walked, deadline).await,
            }
        };
        while let Some(walked) = flows.recv().await {
            self.take_flows(walked, deadline).await;
        }
        if let Some(mut walker) = walker {
            let (to_loop, mut batches) = mpsc::channel(flow_export::QUEUE);
            let reading = tokio::task::spawn_blocking(move || {
                walker.records(true, |batch| to_loop.blocking_send(batch).is_ok())
            });
            while let Some(walked) = batches.recv().await {
                self.take_flows(walked, deadline).await;
            }
            match reading.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn!(message = "Could not read the flow table", %error),
                Err(error) => warn!(message = "Reading the flow table panicked", %error),
            }
        }
        if let Some(ipfix) = self.ipfix.take() {
            let t = ipfix.totals();
            let collector = ipfix.collector();
            info!(message = "IPFIX export closed", %collector, messages = t.messages, records = t.records, failed = t.failed);
        }
        let closing = self.detector.close_all(self.source.now().wall);
        self.persist(closing).await;
        self.eve_stats();
        if let Some(eve) = self.eve.take() {
            let behind = eve.dropped();
            match eve.close() {
                Ok(sinks) => {
                    for s in sinks {
                        info!(message = "EVE output closed", sink = %s.name, written = s.written, dropped = s.dropped + behind);
                    }
                }
                Err(error) => {
                    warn!(message = "EVE output failed", error = %error, dropped = behind)
                }
            }
        }
        self.writer.close(STORE_GRACE).await;
        if let Some(notifier) = self.notifier {
            // The closing messages, and digests of anything held back.
            notifier.shutdown(NOTIFY_GRACE).await;
        }
        if let Some(last) = &self.previous {
            info!(target: "nta::totals", "totals since start: {}", traffic::totals(&last.global));
        }
        self.source
    }

    /// A threshold crossing: detect now rather than at the next tick.
    async fn on_event(&mut self, event: ThresholdEvent) {
        let failures = &mut self.read_failures;
        let ctx = EventContext::gather(
            event,
            &self.source,
            self.previous.as_ref(),
            |error, what| log_read_failure(failures, error, what),
        );
        let events = self.detect(&timings::DETECT_EVENT, |detector, next_id| {
            detector.on_event(&ctx, next_id)
        });
        self.persist(events).await;
    }

    /// Part of a walk of the flow table at shutdown, once the outputs take
    /// flow records (or `deadline` passed).
    async fn take_flows(&mut self, walked: Walked, deadline: tokio::time::Instant) {
        while !self.takes_flows() && tokio::time::Instant::now() < deadline {
            sleep(FLOW_ROOM_POLL).await;
        }
        self.on_walked(walked).await;
    }

    /// Whether the store and the EVE output take another batch of flow
    /// records: fewer than [`FLOWS_AHEAD`] wait in each.
    fn takes_flows(&self) -> bool {
        self.writer.takes_flows(FLOWS_AHEAD)
            && self
                .eve
                .as_ref()
                .is_none_or(|eve| eve.backlog() < FLOWS_AHEAD)
    }

    /// Part of a walk of the flow table: the alerts of the rules on
    /// addresses alone first, so that the records of their flows carry
    /// them.
    async fn on_walked(&mut self, walked: Walked) {
        for finding in walked.findings {
            self.on_finding(finding).await;
        }
        self.on_flows(walked.records);
    }

    /// Records of flows that ended, with their labels: to the EVE output,
    /// the IPFIX collector and the store.
    fn on_flows(&mut self, records: Vec<FlowRecord>) {
        let records = self.labels.apply(records);
        if let Some(eve) = &mut self.eve {
            for r in &records {
                eve.flow(r);
            }
        }
        if let Some(ipfix) = &mut self.ipfix {
            ipfix.export(&records);
            self.report.live.ipfix(ipfix.collector(), ipfix.totals());
        }
        self.writer.flows(&records);
    }

    /// A payload finding (rule match, DNS tunnel).
    async fn on_finding(&mut self, finding: detect::Finding) {
        if finding
            .src
            .is_some_and(|src| self.detector.config().allowlisted(src))
        {
            return;
        }
        let now = self.source.now().wall;
        if let Some(eve) = &mut self.eve {
            eve.finding(&finding, now);
        }
        let flow = finding.flow();
        let event = self.detect(&timings::DETECT_FINDING, |detector, next_id| {
            detector.observe(finding, now, next_id)
        });
        if let Some(flow) = flow {
            self.labels.add_alert(flow, event.alert().id);
        }
        self.persist(vec![event]).await;
    }

    /// One interval: read everything, detect, record, report.
    async fn on_tick(&mut self) {
        let read = self.source.snapshot();
        let Some(current) = self.read_or_log(read, "the counters") else {
            return;
        };
        let Some(previous) = self.previous.take() else {
            self.previous = Some(current);
            return;
        };
        let time = self.source.now();
        info!(target: "nta::summary", "{}", traffic::summarize(&previous, &current));
        let tick = Tick {
            before: &previous,
            after: &current,
            now: time.wall,
            now_ns: time.mono_ns,
        };
        let events = self.detect(&timings::DETECT_TICK, |detector, next_id| {
            detector.on_tick(&tick, next_id)
        });
        self.persist(events).await;
        self.writer
            .history(time.wall, deltas(&previous.global, &current.global));
        let counts = TickCounts {
            open_incidents: self.detector.incidents().len(),
            dropped: self.source.dropped(),
        };
        self.report
            .live
            .tick(&previous, &current, time.wall, counts);
        if let Some(eve) = &self.eve {
            self.report.live.eve(crate::stats::EveStats {
                host: eve.host().map(str::to_owned),
                queue_dropped: eve.dropped(),
                outputs: eve.sink_stats(),
            });
        }
        self.feed.stats(&self.report);
        self.previous = Some(current);
        if self.eve_stats_at.elapsed() >= self.eve_stats_interval {
            self.eve_stats();
        }
    }

    /// A stats event with the latest totals, if there is an EVE output.
    fn eve_stats(&mut self) {
        let (Some(eve), Some(last)) = (&mut self.eve, &self.previous) else {
            return;
        };
        self.eve_stats_at = Instant::now();
        let uptime = self.started.elapsed().as_secs();
        let event = eve::stats(&last.global, uptime, eve.alerts(), Timestamp::now());
        eve.send(event);
    }

    /// Runs a detector step, timed as `stage`, with alert ids from the store.
    fn detect<T>(
        &mut self,
        stage: &timings::Stage,
        step: impl FnOnce(&mut Detector, &mut dyn FnMut() -> u64) -> T,
    ) -> T {
        let store = &self.report.store;
        let start = Instant::now();
        let found = step(&mut self.detector, &mut || store.allocate_alert_id());
        timings::observe(&self.timings.detect, stage, start);
        found
    }

    /// The value of a read of the source, or `None` with a log line.
    fn read_or_log<T>(&mut self, read: Result<T, S::Error>, what: &'static str) -> Option<T> {
        read.map_err(|error| log_read_failure(&mut self.read_failures, error, what))
            .ok()
    }

    /// Logs alert events, sends them to the live feed and notifiers, and
    /// hands them to the store writer.
    async fn persist(&mut self, events: Vec<AlertEvent>) {
        if events.is_empty() {
            return;
        }
        for event in &events {
            log_event(event);
        }
        // The feed first: a browser learns of an alert as soon as it is
        // known, and re-reads the store should it miss any.
        self.feed.alerts(&events);
        if let Some(notifier) = &self.notifier {
            notifier.notify(&events);
        }
        self.report.live.alerts_opened(&events);
        if let Some(eve) = &mut self.eve {
            for event in &events {
                eve.incident(event);
            }
        }
        if self.policy.active() {
            self.mitigate(&events).await;
        }
        let alerts: Vec<_> = events.into_iter().map(|e| e.alert().clone()).collect();
        self.writer.alerts(alerts);
    }

    /// Blocks the sources of new incidents, if the policy says so. On the
    /// blocking pool: it writes the kernel map and commits to the store.
    async fn mitigate(&self, events: &[AlertEvent]) {
        let opened: Vec<AlertEvent> = events
            .iter()
            .filter(|e| matches!(e, AlertEvent::Opened(a) if self.policy.kinds.contains(&a.kind)))
            .cloned()
            .collect();
        if opened.is_empty() {
            return;
        }
        let (blocks, policy) = (self.blocks.clone(), self.policy.clone());
        let done = tokio::task::spawn_blocking(move || {
            let mut list = blocks.lock().unwrap_or_else(PoisonError::into_inner);
            auto::on_events(&policy, &opened, &mut list, Timestamp::now());
        })
        .await;
        if let Err(error) = done {
            warn!(message = "Automatic mitigation panicked", %error);
        }
    }

    /// Lifts the blocks whose time is up.
    async fn expire_blocks(&self) {
        let blocks = self.blocks.clone();
        let expired = tokio::task::spawn_blocking(move || {
            blocks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expire(Timestamp::now())
        })
        .await;
        for result in expired.into_iter().flatten() {
            match result {
                Ok(block) => {
                    info!(
                        target: "nta::mitigate",
                        message = "Unblocked: its time is up",
                        cidr = %block.cidr,
                        reason = %block.reason,
                    )
                }
                Err(error) => {
                    warn!(target: "nta::mitigate", message = "Could not lift an expired block", %error)
                }
            }
        }
    }
}

/// Logs a failed read of the source, at most once a minute: a map that
/// cannot be read fails every tick.
fn log_read_failure<E>(throttle: &mut Throttle, error: E, what: &'static str)
where
    E: std::error::Error + Send + Sync + 'static,
{
    if let Some(suppressed) = throttle.allow(Instant::now()) {
        warn!(
            message = "Failed to read the sensor",
            reading = what,
            error = %anyhow::Error::from(error),
            suppressed,
        );
    }
}

fn log_event(event: &AlertEvent) {
    match event {
        AlertEvent::Opened(a) => warn!(
            target: "nta::alert",
            message = "Alert opened",
            id = a.id,
            kind = %a.kind,
            severity = %a.severity,
            summary = %a.message,
        ),
        AlertEvent::Closed(a) => info!(
            target: "nta::alert",
            message = "Alert closed",
            id = a.id,
            kind = %a.kind,
            lasted = %format_args!("{:.1}s", a.last_seen.duration_since(a.first_seen).as_secs_f64()),
            packets = a.packets,
            peak = %format_args!("{:.0} {}", a.peak_rate, a.evidence.unit),
        ),
        AlertEvent::Updated(a) => debug!(
            target: "nta::alert",
            message = "Alert updated",
            id = a.id,
            summary = %a.message,
        ),
    }
}

/// Counter growth between two readings of the global counters.
fn deltas(before: &GlobalCounters, after: &GlobalCounters) -> GlobalCounters {
    let mut d = GlobalCounters::ZERO;
    for (i, (b, a)) in before.values.iter().zip(after.values.iter()).enumerate() {
        d.values[i] = a.saturating_sub(*b);
    }
    d
}
