//! `nta-agent run`: attach, detect, store, serve; detach on a signal.
//!
//! [`run`] reads as the start-up order, each phase a function of
//! [`start`] returning what the next ones need; the loop and the shutdown
//! are the [`Agent`]'s.

mod agent;
mod flow_export;
mod reload;
mod start;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tracing::info;

use self::{agent::Agent, start::Settings};
use crate::{
    cli::RunArgs,
    flows::{Labels, Timeouts},
    inspect::RuleSource,
    sensor::LoadedSensor,
};

/// Runs the sensor on `args.iface` until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let stops = agent::Stops::install()?;
    // What can be refused (a token, a notification setting) is refused
    // before anything is attached.
    let settings = Settings::read(&args)?;
    let store = start::open_store(&settings.db)?;
    let notifier = start::notifier(&settings)?;
    let eve = start::eve(&settings)?;
    let ipfix = start::ipfix(&settings)?;
    let loaded = LoadedSensor::load(&start::sensor_settings(&settings.config))
        .context("loading the XDP sensor")?;
    // The blocklist before the program is attached, so that what was
    // blocked stays blocked from the first packet.
    let blocking = start::blocklist(&loaded, &store, &settings)?;
    // What the payload pipeline and the alerts learn of flows, for their
    // records.
    let labels = Labels::for_table(settings.config.flows.table_size);
    let rule_source = RuleSource {
        paths: args.rules.clone(),
        vars: settings.config.rule_vars(),
    };
    let (payload, ip_only) = start::payload(&rule_source, &settings.config, labels.clone())?;
    let (sensor, streams) = start::attach(loaded, &args)?;
    let rules = payload.rules();
    let (matchers, new_matchers) = mpsc::channel(1);
    let (ip_only_swaps, new_ip_only) = mpsc::channel(1);
    let (findings, inspecting) = payload.spawn(streams.samples, new_matchers);
    let (reloads, reload_requests) = reload::channel();
    let api = start::api(
        &settings,
        store.clone(),
        &sensor,
        &notifier,
        &blocking,
        reloads,
    )
    .await?;
    api.state.live.rules(rules);
    let swaps = reload::Swaps {
        matchers,
        ip_only: ip_only_swaps,
    };
    let reopen = eve.as_ref().map(crate::eve::EveWriter::reopen_handle);
    let reloading = reload::start(
        rule_source,
        swaps,
        api.state.live.clone(),
        reload_requests,
        reopen,
    )?;

    let flow_config = &settings.config.flows;
    let (export, mut flows) = flow_export::start(
        sensor.flow_table().context("opening the flow table")?,
        Timeouts::new(flow_config.idle_timeout, flow_config.active_timeout)
            .for_table(flow_config.table_size),
        flow_config.idle_timeout,
        ip_only,
        new_ip_only,
    );
    let outputs = agent::Outputs { eve, ipfix };
    let mut agent = Agent::new(sensor, settings, notifier, outputs, blocking, &api, labels);
    let signal = agent
        .run_until_signal(stops, streams.events, findings, &mut flows)
        .await?;
    info!(message = "Stopping", signal);
    let sensor = agent.shutdown(export, &mut flows).await;
    api.stop().await;
    reloading.abort();
    inspecting.abort();
    let iface = sensor.iface().to_owned();
    sensor.detach().context("detaching the XDP program")?;
    info!(message = "Detached", %iface);
    Ok(())
}
