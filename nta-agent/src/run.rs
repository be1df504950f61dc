//! `nta-agent run`: attach, report every interval, detach on a signal.

use anyhow::Context as _;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    time::{MissedTickBehavior, interval},
};
use tracing::{info, warn};

use crate::{
    cli::RunArgs,
    sensor::{LoadOptions, Sensor},
    traffic::{self, Snapshot},
};

/// Runs the sensor on `args.iface` until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let options = LoadOptions {
        log_level: tracing_log_level(),
        ..LoadOptions::default()
    };
    let mut sensor = Sensor::load(&options).context("loading the XDP sensor")?;
    let logger = sensor.take_logger().map(spawn_logger).transpose()?;
    let mode = sensor
        .attach(&args.iface, args.xdp_mode)
        .with_context(|| format!("attaching to {}", args.iface))?;
    info!(
        message = "Sensor attached",
        iface = %args.iface,
        mode = %mode,
        interval = %humantime::format_duration(args.interval),
    );

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut ticker = interval(args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;

    let mut previous = sensor.snapshot().context("reading the sensor's counters")?;
    let signal_name = loop {
        tokio::select! {
            _ = ticker.tick() => report(&sensor, &mut previous),
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
        }
    };

    info!(message = "Stopping", signal = signal_name);
    // The last partial interval, so that nothing counted goes unreported.
    report(&sensor, &mut previous);
    info!(target: "nta::totals", "totals since start: {}", traffic::totals(&previous.global));
    sensor.detach().context("detaching the XDP program")?;
    if let Some(logger) = logger {
        logger.abort();
    }
    info!(message = "Detached", iface = %args.iface);
    Ok(())
}

/// Logs one summary line for the traffic since `previous`, then moves it on.
fn report(sensor: &Sensor, previous: &mut Snapshot) {
    match sensor.snapshot() {
        Ok(current) => {
            let summary = traffic::summarize(previous, &current);
            info!(target: "nta::summary", "{summary}");
            *previous = current;
        }
        Err(error) => {
            warn!(message = "Failed to read the sensor's counters", error = %anyhow::Error::from(error))
        }
    }
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
