//! The phases of start-up, in the order [`super::run`] calls them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use nta_common::maps::{Sampling, sample_port};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    api::{self, ApiState, Mitigation, auth::Auth, rules::RulesControl, stream::Feed, tls::Tls},
    cli::RunArgs,
    config::Config,
    detect,
    eve::{EveOutputs, EveWriter},
    export::IpfixExporter,
    flows::Labels,
    inspect::{self, Payload, RuleSource},
    mitigate::{
        auto::AutoPolicy,
        blocklist::{Blocklist, Protected, SharedBlocklist},
        protect::ApiClients,
        token,
    },
    notify::{self, Notifier, env::Environment, settings::NotifySettings},
    payload::ip_only::IpOnlyRules,
    sensor::{LiveSensor, LoadedSensor, SensorSettings},
    source::Streams,
    stats::{LiveView, ThresholdView},
    store::{Retention, Store},
    timings::Timings,
};

/// What the command line, the config file and the environment say.
pub(super) struct Settings {
    pub config: Config,
    /// The API's token for reads, if any (the admin token comes with the
    /// blocklist).
    pub auth: Auth,
    pub notify: NotifySettings,
    /// The store's file.
    pub db: PathBuf,
    pub listen: SocketAddr,
    /// The API's certificate and key, when it serves HTTPS.
    pub tls: Option<Tls>,
    /// How often counters are read.
    pub interval: Duration,
    pub policy: AutoPolicy,
    pub retention: Retention,
    /// Where EVE events go, if anywhere, and how often stats do.
    pub eve: Option<EveOutputs>,
    pub eve_stats_interval: Duration,
    /// The IPFIX collector flow records go to, if any.
    pub ipfix: Option<SocketAddr>,
}

impl Settings {
    /// Reads and checks every setting; a refused one is a usage error.
    pub fn read(args: &RunArgs) -> anyhow::Result<Self> {
        let config = match &args.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let auth = Auth::for_listen(args.listen, args.token.as_deref())?;
        // clap lets through both or neither.
        let tls = args
            .tls_cert
            .as_deref()
            .zip(args.tls_key.as_deref())
            .map(|(cert, key)| Tls::load(cert, key))
            .transpose()
            .context("setting up HTTPS for the API (--tls-cert, --tls-key)")?;
        let env = Environment::load(&args.env_file)?;
        // Links in messages go to the dashboard as it is served.
        let api_url = api::url(args.listen, tls.is_some());
        let notify =
            notify::settings::resolve(&config.notify, &env, &api_url, config.sensor_name())
                .context("reading the notification settings")?;
        if let Some(path) = env.dotenv_path() {
            info!(message = "Notification variables read", file = %path.display());
        }
        let db = match &args.db {
            Some(path) => path.clone(),
            None => Store::default_path().context(
                "no --db given and no home directory for the default store; pass --db PATH",
            )?,
        };
        let policy = AutoPolicy {
            enabled: args.mitigate || config.mitigate.enabled,
            dry_run: args.dry_run || config.mitigate.dry_run,
            ttl: SignedDuration::try_from(config.mitigate.ttl)
                .context("the mitigation ttl is out of range")?,
            max_entries: usize::try_from(config.mitigate.max_entries).unwrap_or(usize::MAX),
            kinds: config.mitigate.kinds.clone(),
        };
        // The command line wins, as it does for every other setting.
        let ipfix = args.ipfix.or(config.export.ipfix);
        let eve = crate::eve::outputs(&config, args.eve.as_ref());
        let retention = Retention {
            seconds: config.store.retention_seconds,
            minutes: config.store.retention_minutes,
            flows: config.store.flow_retention,
        };
        Ok(Self {
            config,
            auth,
            notify,
            db,
            listen: args.listen,
            tls,
            interval: args.interval,
            policy,
            retention,
            eve,
            eve_stats_interval: args.eve_stats_interval,
            ipfix,
        })
    }
}

/// Opens the EVE output, if one is asked for.
pub(super) fn eve(settings: &Settings) -> anyhow::Result<Option<EveWriter>> {
    let Some(outputs) = &settings.eve else {
        return Ok(None);
    };
    let writer = EveWriter::start(outputs)?;
    for sink in &outputs.sinks {
        info!(message = "EVE output", to = %sink.name(), host = outputs.host.as_deref());
    }
    Ok(Some(writer))
}

/// Opens the socket towards the IPFIX collector, if one is asked for.
pub(super) fn ipfix(settings: &Settings) -> anyhow::Result<Option<IpfixExporter>> {
    let Some(collector) = settings.ipfix else {
        return Ok(None);
    };
    let exporter = IpfixExporter::start(collector)?;
    info!(message = "IPFIX export", to = %collector);
    Ok(Some(exporter))
}

/// Opens the store and closes the incidents a previous run left open.
pub(super) fn open_store(db: &Path) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(db)?;
    let left_open = store.close_open_alerts(Timestamp::now())?;
    if !left_open.is_empty() {
        info!(
            message = "Closed incidents left open by the previous run",
            count = left_open.len()
        );
    }
    Ok(Arc::new(store))
}

/// Starts the notification channels, if any is configured.
pub(super) fn notifier(settings: &Settings) -> anyhow::Result<Option<Notifier>> {
    if !settings.notify.any() {
        info!(
            message = "No notification channel configured",
            hint = "set NTA_SMTP_HOST, TWILIO_SID or NTA_WEBHOOK_URL (see .env.example)"
        );
        return Ok(None);
    }
    let notifier = notify::start(&settings.notify).context("setting up notifications")?;
    Ok(Some(notifier))
}

/// What the XDP program is told before it sees a packet.
pub(super) fn sensor_settings(config: &Config) -> SensorSettings {
    let s = &config.sampling;
    let mut flags = std::collections::BTreeMap::<u16, u8>::new();
    for port in &s.tcp_ports {
        *flags.entry(*port).or_default() |= sample_port::TCP;
    }
    for port in &s.udp_ports {
        *flags.entry(*port).or_default() |= sample_port::UDP;
    }
    SensorSettings {
        log_level: tracing_log_level(),
        thresholds: detect::thresholds::for_kernel(config),
        sampling: Sampling {
            enabled: u32::from(s.enabled),
            max_per_sec: s.max_per_sec,
            one_in: s.one_in,
            flow_payloads: s.flow_payloads,
        },
        sample_ports: flags.into_iter().collect(),
        flow_table_size: config.flows.table_size,
    }
}

/// The blocklist, automatic mitigation and the token that changes them.
pub(super) struct Blocking {
    pub list: SharedBlocklist,
    pub policy: AutoPolicy,
    /// Recent authenticated API clients, never blocked automatically.
    pub clients: Arc<ApiClients>,
    /// The API's token, with the admin token for changes.
    pub auth: Auth,
}

/// Restores the stored blocks into the kernel's blocklist.
pub(super) fn blocklist(
    sensor: &LoadedSensor,
    store: &Arc<Store>,
    settings: &Settings,
) -> anyhow::Result<Blocking> {
    let auth = admin_token(settings.auth.clone(), &settings.db)?;
    let clients = Arc::new(ApiClients::default());
    let (list, restored) = Blocklist::restore(
        Box::new(sensor.blocklist().context("opening the XDP blocklist")?),
        store.clone(),
        Protected {
            allowlist: settings.config.allowlist.clone(),
            clients: clients.clone(),
        },
        Timestamp::now(),
    )
    .context("restoring the blocklist")?;
    let policy = settings.policy.clone();
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
    Ok(Blocking {
        list: Arc::new(Mutex::new(list)),
        policy,
        clients,
        auth,
    })
}

/// The token changes to the blocklist need: `--token` if given, else a new
/// one in a root-only file beside the store, for `nta-agent block`.
fn admin_token(auth: Auth, db: &Path) -> anyhow::Result<Auth> {
    if let Some(token) = auth.token().map(str::to_owned) {
        return Ok(auth.with_admin(token, None));
    }
    let path = token::path_for(db);
    let admin = token::create(&path)?;
    info!(message = "API token for changes written", file = %path.display());
    Ok(auth.with_admin(admin, Some(path.display().to_string())))
}

/// The rules (the embedded defaults and `--rules` files) compiled, and
/// the DNS tunnel detector: the payload pipeline, ready to start.
pub(super) fn payload(
    source: &RuleSource,
    config: &Config,
    labels: Labels,
) -> anyhow::Result<(Payload, IpOnlyRules)> {
    let rules = inspect::load_rules(&source.paths, &source.vars)?;
    // A published ruleset may have thousands the engine refuses: the
    // first few are logged, the rest counted.
    for error in rules.errors.iter().take(REJECTIONS_LOGGED) {
        warn!(message = "Rule rejected", %error);
    }
    if rules.errors.len() > REJECTIONS_LOGGED {
        warn!(
            message = "More rules rejected",
            count = rules.errors.len() - REJECTIONS_LOGGED,
            hint = "`nta-agent rules check FILE...` lists every one, with the reasons counted"
        );
    }
    info!(
        message = "Rules loaded",
        rules = rules.rules.len(),
        rejected = rules.errors.len()
    );
    let payload = Payload::new(&rules, config.dns_tunnel.detector(), labels)
        .context("building the rule matcher")?;
    Ok((payload, IpOnlyRules::new(&rules.rules)))
}

/// Rejected rules logged one by one at start.
const REJECTIONS_LOGGED: usize = 20;

/// Attaches the sensor: from here on packets are counted.
pub(super) fn attach(
    sensor: LoadedSensor,
    args: &RunArgs,
) -> anyhow::Result<(LiveSensor, Streams)> {
    let (sensor, streams) = sensor
        .attach(&args.iface, args.xdp_mode.into())
        .with_context(|| format!("attaching to {}", args.iface))?;
    // Loading parsed the kernel's BTF (a few MB in some 100 000 small
    // allocations, all freed by now): hand those pages back rather than
    // keep them resident for the agent's lifetime.
    // SAFETY: malloc_trim only releases free memory; no pointer changes.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
    info!(
        message = "Sensor attached",
        iface = %sensor.iface(),
        mode = %sensor.mode(),
        interval = %humantime::format_duration(args.interval),
    );
    Ok((sensor, streams))
}

/// The API server, running.
pub(super) struct RunningApi {
    pub state: ApiState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningApi {
    /// Ends the live streams, then stops the server once the requests in
    /// flight are answered.
    pub async fn stop(self) {
        self.state.feed.close();
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            warn!(message = "API server task failed", %error);
        }
    }
}

/// Starts the API on `settings.listen`.
pub(super) async fn api(
    settings: &Settings,
    store: Arc<Store>,
    sensor: &LiveSensor,
    notifier: &Option<Notifier>,
    blocking: &Blocking,
    rules: RulesControl,
) -> anyhow::Result<RunningApi> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", settings.listen))?;
    let addr = listener.local_addr().context("reading the API's address")?;
    let state = ApiState {
        store,
        live: LiveView::attached(
            sensor.iface(),
            sensor.mode(),
            ThresholdView::from(&settings.config),
        ),
        feed: Feed::new(),
        auth: blocking.auth.clone(),
        timings: Timings::default(),
        notify: notifier.as_ref().map(Notifier::stats).unwrap_or_default(),
        mitigation: Mitigation {
            blocklist: Some(blocking.list.clone()),
            policy: blocking.policy.clone(),
            clients: blocking.clients.clone(),
        },
        rules,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let task = match settings.tls.clone() {
        Some(tls) => tokio::spawn(api::serve_tls(listener, state.clone(), tls, shutdown)),
        None => tokio::spawn(api::serve(listener, state.clone(), shutdown)),
    };
    let tls = settings.tls.is_some();
    // Before "API listening": whoever waits for that line has this one.
    if api::in_clear_beyond_loopback(addr, tls) {
        warn!(
            message = "The API is served without TLS on an address other hosts reach: \
                       its token and the dashboard travel in clear",
            %addr,
            hint = "serve HTTPS with --tls-cert and --tls-key (NTA_TLS_CERT, NTA_TLS_KEY)",
        );
    }
    info!(
        message = "API listening",
        %addr,
        dashboard = %format!("{}/", api::url(addr, tls)),
        token = if state.auth.required() { "required" } else { "none" },
    );
    Ok(RunningApi { state, stop, task })
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
