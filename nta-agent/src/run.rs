//! `nta-agent run`: attach, detect, store, serve; detach on a signal.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use nta_common::{
    Counter, GlobalCounters,
    maps::{EventKind, Sampling, ThresholdEvent, sample_port},
};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    time::{MissedTickBehavior, interval},
};
use tracing::{info, warn};

use crate::{
    alert::AlertEvent,
    api::{self, ApiState, AutoView, auth::Auth},
    cli::RunArgs,
    config::Config,
    detect::{self, Detector, EventContext, Tick},
    inspect,
    mitigate::{
        auto::{self, AutoPolicy},
        blocklist::{Blocklist, Protected, SharedBlocklist},
        protect::ApiClients,
        token,
    },
    notify::{self, Notifier, env::Environment},
    sensor::{LoadOptions, Sensor, events, samples},
    stats::{LiveStats, ThresholdView},
    store::{Retention, Store},
    timings,
    traffic::{self, Snapshot, SourceView},
    writer::StoreWriter,
};

/// How long pending notifications may take to go out at shutdown.
const NOTIFY_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the store may take to write what is left at shutdown.
const STORE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ticks between two prunes of old history.
const PRUNE_EVERY_TICKS: u64 = 60;

/// Runs the sensor on `args.iface` until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Before anything is attached: a refused token or notification setting
    // is a usage error.
    let auth = Auth::for_listen(args.listen, args.token.as_deref())?;
    let env = Environment::load(&args.env_file)?;
    let notify_settings = notify::settings::resolve(&config.notify, &env, args.listen)
        .context("reading the notification settings")?;
    let db = match &args.db {
        Some(path) => path.clone(),
        None => Store::default_path()
            .context("no --db given and no home directory for the default store; pass --db PATH")?,
    };
    let store = Arc::new(Store::open(&db)?);
    let left_open = store.close_open_alerts(Timestamp::now())?;
    if !left_open.is_empty() {
        info!(
            message = "Closed incidents left open by the previous run",
            count = left_open.len()
        );
    }

    let notifier = if notify_settings.any() {
        Some(notify::start(&notify_settings).context("setting up notifications")?)
    } else {
        info!(
            message = "No notification channel configured",
            hint = "set NTA_SMTP_HOST, TWILIO_SID or NTA_WEBHOOK_URL (see .env.example)"
        );
        None
    };
    if let Some(path) = env.dotenv_path() {
        info!(message = "Notification variables read", file = %path.display());
    }

    let options = LoadOptions {
        log_level: tracing_log_level(),
        ..LoadOptions::default()
    };
    let mut sensor = Sensor::load(&options).context("loading the XDP sensor")?;
    sensor
        .set_thresholds(&detect::thresholds::for_kernel(&config))
        .context("configuring the XDP sensor's thresholds")?;
    let logger = sensor.take_logger().map(spawn_logger).transpose()?;

    // The blocklist before the program is attached, so that what was
    // blocked stays blocked from the first packet.
    let auth = admin_token(auth, &db)?;
    let clients = Arc::new(ApiClients::default());
    let (blocklist, restored) = Blocklist::restore(
        Box::new(sensor.blocklist().context("opening the XDP blocklist")?),
        store.clone(),
        Protected {
            allowlist: config.allowlist.clone(),
            clients: clients.clone(),
        },
        Timestamp::now(),
    )
    .context("restoring the blocklist")?;
    let blocks = Arc::new(Mutex::new(blocklist));
    let policy = AutoPolicy {
        enabled: args.mitigate || config.mitigate.enabled,
        dry_run: args.dry_run || config.mitigate.dry_run,
        ttl: SignedDuration::try_from(config.mitigate.ttl)
            .context("the mitigation ttl is out of range")?,
        max_entries: usize::try_from(config.mitigate.max_entries).unwrap_or(usize::MAX),
        kinds: config.mitigate.kinds.clone(),
    };
    info!(
        message = "Blocklist ready",
        restored,
        automatic = if policy.dry_run {
            "dry run"
        } else if policy.enabled {
            "on"
        } else {
            "off"
        },
    );

    let rules = inspect::load_rules(&args.rules)?;
    for error in &rules.errors {
        warn!(message = "Rule rejected", %error);
    }
    info!(
        message = "Rules loaded",
        rules = rules.rules.len(),
        rejected = rules.errors.len()
    );
    let (ports, sampling) = sampling_of(&config);
    sensor
        .set_sampling(&sampling, &ports)
        .context("configuring the XDP sensor's payload sampling")?;
    let (sample_tx, sample_rx) = mpsc::channel(samples::SAMPLE_QUEUE);
    let dropped_samples = Arc::new(AtomicU64::new(0));
    let sample_reader = samples::spawn_reader(
        sensor
            .take_samples()
            .context("opening the payload sample ring")?,
        sample_tx,
        dropped_samples.clone(),
    )?;
    let (finding_tx, mut finding_rx) = mpsc::channel(inspect::FINDING_QUEUE);
    let pipeline = inspect::spawn(&rules, config.dns_tunnel.detector(), sample_rx, finding_tx)
        .context("building the rule matcher")?;
    let (event_tx, mut event_rx) = mpsc::channel(events::EVENT_QUEUE);
    let dropped_events = Arc::new(AtomicU64::new(0));
    let event_reader = events::spawn_reader(
        sensor
            .take_events()
            .context("opening the threshold event ring")?,
        event_tx,
        dropped_events.clone(),
    )?;
    let mode = sensor
        .attach(&args.iface, args.xdp_mode.into())
        .with_context(|| format!("attaching to {}", args.iface))?;
    info!(
        message = "Sensor attached",
        iface = %args.iface,
        mode = %mode,
        interval = %humantime::format_duration(args.interval),
    );

    let live = Arc::new(RwLock::new(LiveStats {
        iface: args.iface.clone(),
        xdp_mode: mode.to_string(),
        started_at: Some(Timestamp::now()),
        thresholds: ThresholdView::from(&config),
        ..LiveStats::default()
    }));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", args.listen))?;
    let api_addr = listener.local_addr().context("reading the API's address")?;
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut api_state = ApiState::new(store.clone(), live, auth);
    if let Some(notifier) = &notifier {
        api_state.notify = notifier.stats();
    }
    api_state.blocks = Some(blocks.clone());
    api_state.clients = clients;
    api_state.auto = AutoView {
        enabled: policy.enabled,
        dry_run: policy.dry_run,
        ttl: policy.ttl.unsigned_abs(),
        max_entries: policy.max_entries,
    };
    let api = tokio::spawn(api::serve(listener, api_state.clone(), async {
        let _ = api_stopped.await;
    }));
    info!(
        message = "API listening",
        addr = %api_addr,
        dashboard = %format!("http://{api_addr}/"),
        token = if api_state.auth.required() { "required" } else { "none" },
    );

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut ticker = interval(args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;

    let retention = Retention {
        seconds: config.store.retention_seconds,
        minutes: config.store.retention_minutes,
    };
    let mut detector = Detector::new(config);
    let writer = StoreWriter::start(&api_state);
    let mut agent = Agent {
        sensor: &sensor,
        api: &api_state,
        notifier: notifier.as_ref(),
        blocks: &blocks,
        policy: &policy,
        detector: &mut detector,
        dropped_events: &dropped_events,
        dropped_samples: &dropped_samples,
        writer: &writer,
    };
    let mut previous = agent
        .sensor
        .snapshot()
        .context("reading the sensor's counters")?;
    let mut ticks = 0u64;
    let signal_name = loop {
        tokio::select! {
            Some(event) = event_rx.recv() => agent.on_event(event, &previous).await,
            Some(finding) = finding_rx.recv() => agent.on_finding(finding).await,
            _ = ticker.tick() => {
                agent.on_tick(&mut previous).await;
                agent.expire_blocks().await;
                ticks += 1;
                if ticks.is_multiple_of(PRUNE_EVERY_TICKS) {
                    agent.writer.prune(&retention);
                }
            }
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
        }
    };

    info!(message = "Stopping", signal = signal_name);
    // The last partial interval, so that nothing counted goes unreported.
    agent.on_tick(&mut previous).await;
    let closing = agent.detector.close_all(Timestamp::now());
    agent.persist(closing).await;
    writer.close(STORE_GRACE).await;
    if let Some(notifier) = notifier {
        // The closing messages, and digests of anything held back.
        notifier.shutdown(NOTIFY_GRACE).await;
    }
    info!(target: "nta::totals", "totals since start: {}", traffic::totals(&previous.global));
    api_state.feed.close();
    let _ = stop_api.send(());
    if let Err(error) = api.await {
        warn!(message = "API server task failed", error = %error);
    }
    event_reader.abort();
    sample_reader.abort();
    pipeline.abort();
    sensor.detach().context("detaching the XDP program")?;
    if let Some(logger) = logger {
        logger.abort();
    }
    info!(message = "Detached", iface = %args.iface);
    Ok(())
}

/// What the loop works with.
struct Agent<'a> {
    sensor: &'a Sensor,
    /// The store, live view, feed and timings, shared with the API.
    api: &'a ApiState,
    notifier: Option<&'a Notifier>,
    blocks: &'a SharedBlocklist,
    policy: &'a AutoPolicy,
    detector: &'a mut Detector,
    dropped_events: &'a AtomicU64,
    dropped_samples: &'a AtomicU64,
    /// Commits alerts and history without holding up detection.
    writer: &'a StoreWriter,
}

impl Agent<'_> {
    /// A threshold crossing: detect now rather than at the next tick.
    async fn on_event(&mut self, event: ThresholdEvent, previous: &Snapshot) {
        let source_event = matches!(
            EventKind::from_u32(event.kind),
            Some(
                EventKind::ScanFast
                    | EventKind::ScanWeighted
                    | EventKind::ScanSlow
                    | EventKind::SourceRate
            )
        );
        let source = if source_event {
            self.sensor
                .source(IpAddr::from(event.key))
                .ok()
                .flatten()
                .map(|s| SourceView::from(&s))
        } else {
            None
        };
        let port_syns = if EventKind::from_u32(event.kind) == Some(EventKind::DstSyns) {
            match self.sensor.syn_ports() {
                Ok(now) => traffic::port_growth(&previous.syn_ports, &now),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let ctx = EventContext {
            event,
            source,
            port_syns,
            now: Timestamp::now(),
            now_ns: monotonic_ns(),
        };
        let store = self.api.store.clone();
        let start = Instant::now();
        let events = self
            .detector
            .on_event(&ctx, &mut || store.allocate_alert_id());
        timings::observe(&self.api.timings.detect, &timings::DETECT_EVENT, start);
        self.persist(events).await;
    }

    /// A payload finding (rule match, DNS tunnel).
    async fn on_finding(&mut self, finding: detect::Finding) {
        if finding
            .src
            .is_some_and(|src| self.detector.config().allowlisted(src))
        {
            return;
        }
        let store = self.api.store.clone();
        let start = Instant::now();
        let event = self
            .detector
            .observe(finding, Timestamp::now(), &mut || store.allocate_alert_id());
        timings::observe(&self.api.timings.detect, &timings::DETECT_FINDING, start);
        self.persist(vec![event]).await;
    }

    /// One interval: read everything, detect, record, report.
    async fn on_tick(&mut self, previous: &mut Snapshot) {
        let current = match self.sensor.snapshot() {
            Ok(current) => current,
            Err(error) => {
                warn!(message = "Failed to read the sensor's counters", error = %anyhow::Error::from(error));
                return;
            }
        };
        let now = Timestamp::now();
        info!(target: "nta::summary", "{}", traffic::summarize(previous, &current));
        let tick = Tick {
            before: previous,
            after: &current,
            now,
            now_ns: monotonic_ns(),
        };
        let store = self.api.store.clone();
        let start = Instant::now();
        let events = self
            .detector
            .on_tick(&tick, &mut || store.allocate_alert_id());
        timings::observe(&self.api.timings.detect, &timings::DETECT_TICK, start);
        self.persist(events).await;
        self.writer
            .history(now, deltas(&previous.global, &current.global));
        if let Ok(mut live) = self.api.live.write() {
            live.refresh(previous, &current, now);
            live.open_incidents = self.detector.incidents().len();
            live.events_lost = current.global.get(Counter::EventsLost)
                + self.dropped_events.load(Ordering::Relaxed);
            live.samples_lost = current.global.get(Counter::SamplesLost)
                + self.dropped_samples.load(Ordering::Relaxed);
        }
        self.api.feed.stats(self.api);
        *previous = current;
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
        self.api.feed.alerts(&events);
        if let Some(notifier) = self.notifier {
            notifier.notify(&events);
        }
        if let Ok(mut live) = self.api.live.write() {
            for event in &events {
                if let AlertEvent::Opened(a) = event {
                    *live.alerts_opened.entry((a.kind, a.severity)).or_default() += 1;
                }
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
            warn!(message = "Automatic mitigation panicked", error = %error);
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
                    info!(target: "nta::mitigate", "unblocked {}: its time is up ({})", block.cidr, block.reason)
                }
                Err(error) => {
                    warn!(target: "nta::mitigate", "could not lift an expired block: {error}")
                }
            }
        }
    }
}

fn log_event(event: &AlertEvent) {
    match event {
        AlertEvent::Opened(a) => warn!(
            target: "nta::alert",
            "opened #{} {} [{}] {}", a.id, a.kind, a.severity, a.message
        ),
        AlertEvent::Closed(a) => info!(
            target: "nta::alert",
            "closed #{} {} after {:.1}s, {} packets, peak {:.0} {}",
            a.id,
            a.kind,
            a.last_seen.duration_since(a.first_seen).as_secs_f64(),
            a.packets,
            a.peak_rate,
            a.evidence.unit
        ),
        AlertEvent::Updated(a) => {
            tracing::debug!(target: "nta::alert", "updated #{} {}", a.id, a.message)
        }
    }
}

/// The kernel's sampling switches and port flags from the configuration.
fn sampling_of(config: &Config) -> (Vec<(u16, u8)>, Sampling) {
    let s = &config.sampling;
    let mut flags: std::collections::BTreeMap<u16, u8> = std::collections::BTreeMap::new();
    for port in &s.tcp_ports {
        *flags.entry(*port).or_default() |= sample_port::TCP;
    }
    for port in &s.udp_ports {
        *flags.entry(*port).or_default() |= sample_port::UDP;
    }
    let sampling = Sampling {
        enabled: u32::from(s.enabled),
        max_per_sec: s.max_per_sec,
        one_in: s.one_in,
        _pad: 0,
    };
    (flags.into_iter().collect(), sampling)
}

/// Counter growth between two readings of the global counters.
fn deltas(before: &GlobalCounters, after: &GlobalCounters) -> GlobalCounters {
    let mut d = GlobalCounters::ZERO;
    for (i, (b, a)) in before.values.iter().zip(after.values.iter()).enumerate() {
        d.values[i] = a.saturating_sub(*b);
    }
    d
}

/// CLOCK_MONOTONIC in ns: the clock the XDP program's timestamps use.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The token changes to the blocklist need: `--token` if given, else a new
/// one in a root-only file beside the store, for `nta-agent block`.
fn admin_token(auth: Auth, db: &std::path::Path) -> anyhow::Result<Auth> {
    if let Some(token) = auth.token().map(str::to_owned) {
        return Ok(auth.with_admin(token, None));
    }
    let path = token::path_for(db);
    let admin = token::create(&path)?;
    info!(message = "API token for changes written", file = %path.display());
    Ok(auth.with_admin(admin, Some(path.display().to_string())))
}

/// Forwards the XDP program's log records (aya-log) to our logger as they come.
fn spawn_logger(
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // SAFETY: the fd is the ring buffer map's, owned by `logger`, which the
    // AsyncFd owns until the task ends: it stays open and the same file.
    let mut fd = unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
        .context("watching the kernel log ring")?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    }))
}

/// The most verbose level our subscriber records, so the kernel does not
/// emit records that would be discarded.
fn tracing_log_level() -> log::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => log::LevelFilter::Off,
        LevelFilter::ERROR => log::LevelFilter::Error,
        LevelFilter::WARN => log::LevelFilter::Warn,
        LevelFilter::INFO => log::LevelFilter::Info,
        LevelFilter::DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}
