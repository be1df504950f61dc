//! The notifier: alert events in, messages out, never in the way.
//!
//! ```text
//! notify(&events) ──try_send──► dispatcher ──route + storm control──► queue ──► sender (retries) ──► channel
//!   (never waits)               (renders once)   (held → digest)      (bounded)   (one per channel)
//! ```
//!
//! The agent's loop only ever `try_send`s into a bounded queue, so a dead
//! mail server cannot slow detection or storage. Each channel has its own
//! sender, so a hanging SMTP server delays email only. Whatever storm
//! control or a full queue holds back is counted and goes out in a digest:
//! nothing is dropped silently.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::Serialize;
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior, interval, sleep, timeout},
};
use tracing::{debug, info, warn};

use super::{
    channel::{Deliver, Delivered, SendError},
    message::{Held, Message, Origin, Purpose},
    settings::Route,
    storm::Storm,
};
use crate::alert::AlertEvent;

/// Alert events waiting for the dispatcher. It only renders and routes, so
/// this fills only if the agent produces events faster than it can format
/// text: then the newest are counted as dropped.
pub const EVENT_QUEUE: usize = 4096;
/// Messages waiting for one channel's sender. Storm control admits a few a
/// minute, so this fills only while a server hangs; then messages are held
/// for the digest instead.
pub const MESSAGE_QUEUE: usize = 64;
/// How often held messages are checked for a digest.
const DIGEST_CHECK: Duration = Duration::from_secs(1);
/// Storm control's window.
pub const STORM_WINDOW: Duration = Duration::from_secs(60);

/// How messages are paced and retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Messages per channel per `window`.
    pub max_per_window: u32,
    pub window: Duration,
    /// Attempts per message, for transient failures.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub backoff: Duration,
    /// The sensor messages name and the base of their dashboard links.
    pub origin: Origin,
}

/// One channel's counts since start.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    /// Messages held back (storm control or a full queue), then digested.
    pub held: AtomicU64,
    pub digests: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A channel's counts as `/api/stats` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelReport {
    pub channel: &'static str,
    /// Where it delivers (never a secret).
    pub target: String,
    pub sent: u64,
    pub failed: u64,
    pub retries: u64,
    pub held: u64,
    pub digests: u64,
    /// Why the last failed message failed.
    pub last_error: Option<String>,
}

/// Every channel's counts, shared with the API.
#[derive(Debug, Default)]
pub struct NotifyStats {
    channels: Vec<(&'static str, String, Arc<ChannelCounters>)>,
    /// Alert events the dispatcher's queue had no room for.
    pub dropped_events: AtomicU64,
}

impl NotifyStats {
    pub fn report(&self) -> Vec<ChannelReport> {
        self.channels
            .iter()
            .map(|(channel, target, c)| ChannelReport {
                channel,
                target: target.clone(),
                sent: c.sent.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                held: c.held.load(Ordering::Relaxed),
                digests: c.digests.load(Ordering::Relaxed),
                last_error: c
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            })
            .collect()
    }

    /// Messages that failed after every attempt, all channels.
    pub fn failed(&self) -> u64 {
        self.channels
            .iter()
            .map(|(_, _, c)| c.failed.load(Ordering::Relaxed))
            .sum()
    }
}

/// Channels being set up; [`Builder::start`] starts the dispatcher.
pub struct Builder {
    policy: Policy,
    gates: Vec<Gate>,
    senders: Vec<JoinHandle<()>>,
    stats: NotifyStats,
    /// Passwords and tokens, blanked out of any error text before it is
    /// logged or served.
    secrets: Arc<Vec<String>>,
}

impl Builder {
    pub fn new(policy: Policy, secrets: Vec<String>) -> Self {
        Builder {
            policy,
            gates: Vec::new(),
            senders: Vec::new(),
            stats: NotifyStats::default(),
            secrets: Arc::new(secrets.into_iter().filter(|s| !s.is_empty()).collect()),
        }
    }

    /// Adds a channel and starts its sender.
    pub fn channel<C: Deliver>(&mut self, channel: C, route: Route) -> &mut Self {
        let counters = Arc::new(ChannelCounters::default());
        let (queue, rx) = mpsc::channel(MESSAGE_QUEUE);
        let name = channel.name();
        info!(
            message = "Notification channel ready",
            channel = name,
            to = %channel.describe(),
            min_severity = %route.min_severity,
        );
        self.stats
            .channels
            .push((name, channel.describe(), counters.clone()));
        self.senders.push(tokio::spawn(send_loop(
            channel,
            rx,
            self.policy.clone(),
            counters.clone(),
            self.secrets.clone(),
        )));
        self.gates.push(Gate {
            name,
            route,
            storm: Storm::new(self.policy.max_per_window, self.policy.window),
            held: Held::default(),
            told: BTreeSet::new(),
            queue,
            counters,
        });
        self
    }

    /// Starts the dispatcher.
    pub fn start(self) -> Notifier {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let stats = Arc::new(self.stats);
        let dispatcher = tokio::spawn(dispatch(rx, self.gates, self.policy.origin));
        Notifier {
            tx: Some(tx),
            stats,
            dispatcher,
            senders: self.senders,
        }
    }
}

/// The handle the agent holds.
pub struct Notifier {
    tx: Option<mpsc::Sender<AlertEvent>>,
    stats: Arc<NotifyStats>,
    dispatcher: JoinHandle<()>,
    senders: Vec<JoinHandle<()>>,
}

impl Notifier {
    /// Queues alert events without ever waiting. Updates matter too: an
    /// incident that opens at `low` and grows to `critical` is told to the
    /// channels that only take `critical` when it gets there.
    pub fn notify(&self, events: &[AlertEvent]) {
        let Some(tx) = &self.tx else { return };
        for event in events {
            if tx.try_send(event.clone()).is_err() {
                let dropped = self.stats.dropped_events.fetch_add(1, Ordering::Relaxed);
                if dropped.is_power_of_two() {
                    warn!(
                        message = "Notification queue full: alert events not notified",
                        dropped = dropped + 1
                    );
                }
            }
        }
    }

    pub fn stats(&self) -> Arc<NotifyStats> {
        self.stats.clone()
    }

    /// Sends what is queued and what storm control held (as digests), for
    /// up to `grace`; then gives up on the rest.
    pub async fn shutdown(mut self, grace: Duration) {
        drop(self.tx.take());
        let all = async {
            let _ = (&mut self.dispatcher).await;
            for sender in &mut self.senders {
                let _ = sender.await;
            }
        };
        if timeout(grace, all).await.is_err() {
            warn!(
                message = "Notifications still pending at shutdown were abandoned",
                grace = %humantime::format_duration(grace)
            );
            self.dispatcher.abort();
            for sender in &self.senders {
                sender.abort();
            }
        }
    }
}

/// Incidents a channel remembers having told about, until they close; the
/// oldest are forgotten past this (their closing message is then not sent),
/// which bounds memory should closing events ever go missing.
const REMEMBERED: usize = 65_536;

/// One channel as the dispatcher sees it.
struct Gate {
    name: &'static str,
    route: Route,
    storm: Storm,
    held: Held,
    /// Open incidents this channel was told about (sent or held), by id.
    told: BTreeSet<u64>,
    queue: mpsc::Sender<Message>,
    counters: Arc<ChannelCounters>,
}

impl Gate {
    /// What this channel should hear of `event`: an incident once, as soon
    /// as its route takes it (when it opens, or when an update raises its
    /// severity enough), and its end if it heard of it.
    fn wants(&mut self, event: &AlertEvent) -> Option<Purpose> {
        let alert = event.alert();
        match event {
            AlertEvent::Opened(_) | AlertEvent::Updated(_) => {
                if self.told.contains(&alert.id) || !self.route.accepts(alert.kind, alert.severity)
                {
                    return None;
                }
                self.told.insert(alert.id);
                if self.told.len() > REMEMBERED {
                    self.told.pop_first();
                }
                Some(Purpose::Opened)
            }
            AlertEvent::Closed(_) => self.told.remove(&alert.id).then_some(Purpose::Closed),
        }
    }

    /// Sends `message` now if storm control and the queue allow, else
    /// holds it for the digest. Once something is held, later messages
    /// wait behind it, so that a digest never reports older news after
    /// newer messages.
    fn offer(&mut self, message: &Message, now: Instant) {
        if self.held.is_empty() && self.storm.try_admit(now) {
            if let Err(error) = self.queue.try_send(message.clone()) {
                self.hold(&into_message(error));
            }
        } else {
            self.hold(message);
        }
    }

    fn hold(&mut self, message: &Message) {
        if self.held.is_empty() {
            debug!(
                message = "Storm control: holding notifications",
                channel = self.name
            );
        }
        self.held.add(message);
        self.counters.held.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends the digest of what is held, if the window and the queue have
    /// room (or regardless of the window when `last`, at shutdown).
    fn flush(&mut self, now: Instant, origin: &Origin, last: bool) {
        if self.held.is_empty() || self.queue.capacity() == 0 {
            return;
        }
        if !last && !self.storm.try_admit(now) {
            return;
        }
        let digest = Message::digest(&self.held, origin);
        if self.queue.try_send(digest).is_ok() {
            self.held = Held::default();
            self.counters.digests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn into_message(error: mpsc::error::TrySendError<Message>) -> Message {
    match error {
        mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m,
    }
}

/// Renders each event once and offers it to every channel whose route
/// takes it; checks for digests every second.
async fn dispatch(mut rx: mpsc::Receiver<AlertEvent>, mut gates: Vec<Gate>, origin: Origin) {
    let mut check = interval(DIGEST_CHECK);
    check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                let now = Instant::now();
                // Rendered at most once per purpose, and only if wanted:
                // most updates interest no channel.
                let (mut opened, mut closed) = (None, None);
                for gate in &mut gates {
                    let message = match gate.wants(&event) {
                        Some(Purpose::Opened) => opened
                            .get_or_insert_with(|| Message::opened(event.alert(), &origin)),
                        Some(_) => closed
                            .get_or_insert_with(|| Message::closed(event.alert(), &origin)),
                        None => continue,
                    };
                    gate.offer(message, now);
                }
            }
            _ = check.tick() => {
                let now = Instant::now();
                for gate in &mut gates {
                    gate.flush(now, &origin, false);
                }
            }
        }
    }
    // Shutting down: what was held goes out now, or would never be told.
    for gate in &mut gates {
        gate.flush(Instant::now(), &origin, true);
    }
}

/// Delivers one channel's messages in order, retrying transient failures
/// with exponential backoff.
async fn send_loop<C: Deliver>(
    channel: C,
    mut rx: mpsc::Receiver<Message>,
    policy: Policy,
    counters: Arc<ChannelCounters>,
    secrets: Arc<Vec<String>>,
) {
    while let Some(message) = rx.recv().await {
        let mut attempt = 1;
        let mut delivered = Delivered::default();
        loop {
            match channel.send(&message, &mut delivered).await {
                Ok(()) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    debug!(message = "Notification sent", channel = channel.name(), subject = %message.subject);
                    break;
                }
                Err(SendError::Transient(error)) if attempt < policy.attempts => {
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = policy.backoff.saturating_mul(1 << (attempt - 1).min(16));
                    debug!(
                        message = "Notification failed, retrying",
                        channel = channel.name(),
                        attempt,
                        wait = %humantime::format_duration(wait),
                        error = %redact(&error, &secrets),
                    );
                    sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    let reason = redact(&error.to_string(), &secrets);
                    warn!(
                        message = "Notification failed",
                        channel = channel.name(),
                        attempts = attempt,
                        subject = %message.subject,
                        error = %reason,
                    );
                    *counters
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(reason);
                    break;
                }
            }
        }
    }
}

/// `text` with every secret blanked out.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, "<redacted>")
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::{
        alert::{AlertKind, AlertState, Severity},
        notify::message::tests::alert,
    };

    /// A channel that records what it is given and fails as told.
    #[derive(Clone, Default)]
    struct Fake {
        got: Arc<Mutex<Vec<Message>>>,
        /// Transient failures to return before succeeding.
        fail_first: Arc<AtomicU32>,
        permanent: bool,
        /// How long each attempt takes.
        delay: Duration,
    }

    impl Deliver for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }

        fn describe(&self) -> String {
            "a test double".into()
        }

        async fn send(&self, message: &Message, _: &mut Delivered) -> Result<(), SendError> {
            sleep(self.delay).await;
            if self.permanent {
                return Err(SendError::Permanent("535 bad login for pw-123".into()));
            }
            if self
                .fail_first
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SendError::Transient("connection refused".into()));
            }
            self.got.lock().unwrap().push(message.clone());
            Ok(())
        }
    }

    fn policy() -> Policy {
        Policy {
            max_per_window: 6,
            window: STORM_WINDOW,
            attempts: 4,
            backoff: Duration::from_secs(2),
            origin: crate::notify::message::tests::origin(),
        }
    }

    fn all() -> Route {
        Route {
            min_severity: Severity::Low,
            kinds: vec![],
        }
    }

    fn opened(id: u64) -> AlertEvent {
        AlertEvent::Opened(alert(id, AlertKind::PortScan, Severity::High))
    }

    /// A notifier under [`policy`] whose one channel, `fake`, takes every
    /// alert.
    fn notifying(fake: &Fake) -> Notifier {
        let mut builder = Builder::new(policy(), vec![]);
        builder.channel(fake.clone(), all());
        builder.start()
    }

    /// Lets the runtime run spawned tasks until they are all idle.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_alerts_make_six_messages_and_one_digest() {
        let fake = Fake::default();
        let notifier = notifying(&fake);
        let stats = notifier.stats();
        for chunk in (0..10_000).collect::<Vec<u64>>().chunks(1000) {
            let events: Vec<_> = chunk.iter().map(|id| opened(*id)).collect();
            notifier.notify(&events);
            // The agent produces them over time, not all in one instant.
            settle().await;
        }
        settle().await;
        assert_eq!(fake.got.lock().unwrap().len(), 6);
        let report = &stats.report()[0];
        assert_eq!(report.held, 9_994);
        assert_eq!(report.digests, 0);

        // A minute later the window has room: one digest for the rest.
        sleep(STORM_WINDOW + Duration::from_secs(1)).await;
        settle().await;
        let got = fake.got.lock().unwrap().clone();
        assert_eq!(
            got.len(),
            7,
            "{:?}",
            got.iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
        assert_eq!(got[6].purpose, Purpose::Digest);
        assert!(got[6].subject.contains("9994 more"), "{}", got[6].subject);
        assert_eq!(stats.report()[0].digests, 1);
        assert_eq!(stats.dropped_events.load(Ordering::Relaxed), 0);
        notifier.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff() {
        let fake = Fake::default();
        fake.fail_first.store(2, Ordering::Relaxed);
        let notifier = notifying(&fake);
        let start = Instant::now();
        notifier.notify(&[opened(1)]);
        while fake.got.lock().unwrap().is_empty() {
            sleep(Duration::from_millis(100)).await;
            assert!(start.elapsed() < Duration::from_secs(60), "never delivered");
        }
        // Two failures: waits of 2 s and 4 s before the third attempt.
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(6) && waited < Duration::from_secs(7),
            "{waited:?}"
        );
        let report = &notifier.stats().report()[0];
        assert_eq!((report.sent, report.retries, report.failed), (1, 2, 0));
        notifier.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_with_the_reason_and_no_secret() {
        let fake = Fake {
            permanent: true,
            ..Fake::default()
        };
        let mut builder = Builder::new(policy(), vec!["pw-123".into()]);
        builder.channel(fake.clone(), all());
        let notifier = builder.start();
        let stats = notifier.stats();
        notifier.notify(&[opened(1)]);
        sleep(Duration::from_secs(1)).await;
        let report = &stats.report()[0];
        // Permanent: no retry.
        assert_eq!((report.sent, report.retries, report.failed), (0, 0, 1));
        assert_eq!(stats.failed(), 1);
        let reason = report.last_error.clone().unwrap();
        assert_eq!(reason, "535 bad login for <redacted>");
        notifier.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_channel_never_blocks_notify_and_spares_the_others() {
        let slow = Fake {
            delay: Duration::from_secs(3600),
            ..Fake::default()
        };
        let fast = Fake::default();
        let mut builder = Builder::new(
            Policy {
                max_per_window: 1_000_000,
                ..policy()
            },
            vec![],
        );
        builder.channel(slow.clone(), all());
        builder.channel(fast.clone(), all());
        let notifier = builder.start();
        let stats = notifier.stats();
        let start = std::time::Instant::now();
        for id in 0..5_000 {
            notifier.notify(&[opened(id)]);
            if id % 500 == 0 {
                settle().await;
            }
        }
        // notify() only queues: 5000 calls take no real time to speak of.
        assert!(start.elapsed() < Duration::from_secs(2));
        settle().await;
        sleep(Duration::from_secs(1)).await;
        settle().await;
        assert!(slow.got.lock().unwrap().is_empty());
        let fast_got = fast
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.purpose == Purpose::Opened)
            .count();
        let report = stats.report();
        // The slow channel's queue filled; the rest is held, not lost.
        assert_eq!(
            report[0].held + MESSAGE_QUEUE as u64 + 1,
            5_000,
            "{report:?}"
        );
        assert_eq!(fast_got as u64 + report[1].held, 5_000, "{report:?}");
        notifier.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn routes_pick_what_each_channel_carries() {
        let pager = Fake::default();
        let mut builder = Builder::new(policy(), vec![]);
        builder.channel(
            pager.clone(),
            Route {
                min_severity: Severity::Critical,
                kinds: vec![AlertKind::SynFlood],
            },
        );
        let notifier = builder.start();
        let closed = |id, severity| {
            AlertEvent::Closed(crate::alert::Alert {
                state: AlertState::Closed,
                ..alert(id, AlertKind::SynFlood, severity)
            })
        };
        notifier.notify(&[
            AlertEvent::Opened(alert(1, AlertKind::SynFlood, Severity::High)),
            AlertEvent::Opened(alert(2, AlertKind::PortScan, Severity::Critical)),
            AlertEvent::Opened(alert(3, AlertKind::SynFlood, Severity::Critical)),
            AlertEvent::Updated(alert(3, AlertKind::SynFlood, Severity::Critical)),
            closed(3, Severity::Critical),
            // Grows into the route: told once, when it gets there.
            AlertEvent::Updated(alert(1, AlertKind::SynFlood, Severity::High)),
            AlertEvent::Updated(alert(1, AlertKind::SynFlood, Severity::Critical)),
            AlertEvent::Updated(alert(1, AlertKind::SynFlood, Severity::Critical)),
            closed(1, Severity::Critical),
            // Never in the route: its end is not news either.
            AlertEvent::Opened(alert(4, AlertKind::SynFlood, Severity::Low)),
            closed(4, Severity::Low),
        ]);
        settle().await;
        sleep(Duration::from_millis(10)).await;
        let got = pager.got.lock().unwrap().clone();
        let seen: Vec<_> = got
            .iter()
            .map(|m| (m.purpose, m.alert.as_ref().map(|a| a.id)))
            .collect();
        assert_eq!(
            seen,
            [
                (Purpose::Opened, Some(3)),
                (Purpose::Closed, Some(3)),
                (Purpose::Opened, Some(1)),
                (Purpose::Closed, Some(1)),
            ]
        );
        assert_eq!(got[2].severity, Severity::Critical);
        notifier.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_sends_what_storm_control_held() {
        let fake = Fake::default();
        let notifier = notifying(&fake);
        notifier.notify(&(0..20).map(opened).collect::<Vec<_>>());
        settle().await;
        notifier.shutdown(Duration::from_secs(5)).await;
        let got = fake.got.lock().unwrap().clone();
        assert_eq!(got.len(), 7);
        assert!(got[6].subject.contains("14 more"), "{}", got[6].subject);
    }
}
