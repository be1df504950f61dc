//! The XDP program run on crafted frames (`BPF_PROG_TEST_RUN`), for every
//! test that runs it so: loading it with options, running it, reading its
//! maps and rings, and checking the global counters.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use aya::{
    TestRunOptions,
    maps::{MapData, RingBuf},
    programs::{ProgramError, TestRun as _},
    sys::SyscallError,
};
use nta_agent::{
    config::Config,
    detect::thresholds::for_kernel,
    sensor::{
        Blocklist, LoadOptions, Sensor, SensorError,
        samples::{self, PayloadSample},
    },
    traffic::{Snapshot, totals},
};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, SourceStats,
    classify::DstClass,
    maps::{EventKind, RATE_CLASSES, Sampling, ThresholdEvent, Thresholds, feature, sample_port},
};

/// What the program returns for every frame but a blocked one: it counts.
pub const XDP_PASS: u32 = 2;
/// What it returns for an IP packet whose source is in the blocklist.
pub const XDP_DROP: u32 = 1;

/// One `BPF_PROG_TEST_RUN` of the program on a frame.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// What the program returned (the last run's, when repeated).
    pub action: u32,
    /// The kernel's mean time per run.
    pub mean: Duration,
}

/// A loaded XDP program, never attached: tests run it on frames they craft.
pub struct Xdp {
    pub sensor: Sensor,
    /// When it was loaded, by the program's clock: no event is older.
    pub loaded_ns: u64,
    /// The rings, taken when first read.
    events: Option<RingBuf<MapData>>,
    samples: Option<RingBuf<MapData>>,
}

impl Xdp {
    /// Every part, and [`quiet`] thresholds: it counts and never signals.
    pub fn load() -> Self {
        Self::load_with(feature::ALL, Some(&quiet()))
    }

    /// Only `parts` ([`feature`] bits) switched on, and `thresholds`
    /// written; `None` leaves `THRESHOLDS` as the kernel creates it (all
    /// zeros).
    pub fn load_with(parts: u32, thresholds: Option<&Thresholds>) -> Self {
        let options = LoadOptions {
            features: parts,
            ..LoadOptions::default()
        };
        Self::load_with_options(&options, thresholds)
    }

    /// Loaded with `options`, and `thresholds` written as for
    /// [`Xdp::load_with`].
    pub fn load_with_options(options: &LoadOptions, thresholds: Option<&Thresholds>) -> Self {
        let loaded_ns = coarse_now_ns();
        let parts = options.features;
        let mut sensor = Sensor::load(options).unwrap_or_else(|e| {
            panic!("loading the XDP program with parts {parts:#x} (built with bpf-linker?): {e:?}")
        });
        if let Some(thresholds) = thresholds {
            sensor
                .set_thresholds(thresholds)
                .expect("writing THRESHOLDS");
        }
        Self {
            sensor,
            loaded_ns,
            events: None,
            samples: None,
        }
    }

    /// Only `parts` switched on, configured as the agent configures the
    /// program by default: its thresholds (`detect::thresholds::for_kernel`)
    /// and its sampling (mapped as `run::sampling_of` maps it), with
    /// sampling on for port 80. The blocklist is empty.
    pub fn load_as_agent(parts: u32) -> Self {
        Self::load_as_agent_with(parts, &Config::default())
    }

    /// [`Xdp::load_as_agent`] with the agent's `config` instead of the
    /// default one.
    pub fn load_as_agent_with(parts: u32, config: &Config) -> Self {
        let mut xdp = Self::load_with(parts, Some(&for_kernel(config)));
        let s = &config.sampling;
        let mut ports = BTreeMap::<u16, u8>::new();
        for port in &s.tcp_ports {
            *ports.entry(*port).or_default() |= sample_port::TCP;
        }
        for port in &s.udp_ports {
            *ports.entry(*port).or_default() |= sample_port::UDP;
        }
        assert!(s.enabled && ports.contains_key(&80), "sampling on port 80");
        let sampling = Sampling {
            enabled: u32::from(s.enabled),
            max_per_sec: s.max_per_sec,
            one_in: s.one_in,
            flow_payloads: s.flow_payloads,
        };
        let ports: Vec<(u16, u8)> = ports.into_iter().collect();
        xdp.sensor
            .set_sampling(&sampling, &ports)
            .expect("writing SAMPLING");
        xdp
    }

    /// A new handle on the program's blocklist.
    pub fn blocklist(&self) -> Blocklist {
        self.sensor.blocklist().expect("the BLOCKLIST map")
    }

    /// Blocks `cidr`, which must not be blocked yet.
    #[track_caller]
    pub fn block(&self, cidr: &str) {
        let new = self
            .blocklist()
            .insert(cidr.parse().expect("a CIDR"))
            .unwrap_or_else(|e| panic!("blocking {cidr}: {e}"));
        assert!(new, "{cidr} was blocked already");
    }

    /// Runs the program `repeat` times on `frame` in one system call, and
    /// checks that it left the frame as it was; returns the kernel's
    /// refusal to run at all.
    #[track_caller]
    pub fn try_run(&mut self, frame: &[u8], repeat: u32) -> Result<Run, ProgramError> {
        let mut out = vec![0u8; frame.len() + 256];
        let result = self
            .sensor
            .xdp()
            .expect("the loaded XDP program")
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..TestRunOptions::default()
            })?;
        assert_eq!(
            &out[..result.data_size_out as usize],
            frame,
            "the program must not modify the frame"
        );
        Ok(Run {
            action: result.return_value,
            mean: result.duration,
        })
    }

    /// [`Xdp::try_run`], which must run.
    #[track_caller]
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Run {
        self.try_run(frame, repeat)
            .unwrap_or_else(|e| panic!("test run of a {}-byte frame failed: {e:?}", frame.len()))
    }

    /// Runs the program once on `frame`; returns its action.
    #[track_caller]
    pub fn run(&mut self, frame: &[u8]) -> u32 {
        self.test_run(frame, 1).action
    }

    /// Runs the program once on `frame`, which it must pass.
    #[track_caller]
    pub fn pass(&mut self, frame: &[u8]) {
        self.pass_repeat(frame, 1);
    }

    /// Runs the program `repeat` times on `frame`, which it must pass.
    #[track_caller]
    pub fn pass_repeat(&mut self, frame: &[u8], repeat: u32) {
        let action = self.test_run(frame, repeat).action;
        assert_eq!(action, XDP_PASS, "the program must pass {frame:02x?}");
    }

    /// The median over `rounds` of the mean time of `runs` runs, in ns;
    /// round `r` runs `frame(r)`, which must end in `action`. The median,
    /// as one round can land on a busy moment of the machine.
    #[track_caller]
    pub fn median_ns(
        &mut self,
        rounds: usize,
        runs: u32,
        action: u32,
        frame: impl Fn(usize) -> Vec<u8>,
    ) -> f64 {
        let mut means: Vec<Duration> = (0..rounds)
            .map(|r| {
                let run = self.test_run(&frame(r), runs);
                assert_eq!(run.action, action, "round {r}");
                run.mean
            })
            .collect();
        means.sort();
        means[rounds / 2].as_nanos() as f64
    }

    /// Every counter map.
    pub fn snapshot(&self) -> Snapshot {
        self.sensor.snapshot().expect("reading the maps")
    }

    /// One global counter.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.snapshot().global.get(counter)
    }

    /// The full kernel entry of a source the program has seen.
    #[track_caller]
    pub fn source(&self, addr: impl Into<IpAddr>) -> SourceStats {
        entry("SOURCES", addr.into(), |addr| self.sensor.source(addr))
    }

    /// The kernel entry of a destination the program has seen.
    #[track_caller]
    pub fn dst_host(&self, addr: impl Into<IpAddr>) -> DstHostStats {
        entry("DST_HOSTS", addr.into(), |addr| self.sensor.dst_host(addr))
    }

    /// Every threshold event sent since the last call (or the load), oldest
    /// first, with what holds for any event checked: the window started no
    /// later than the crossing, which happened since the load, and only
    /// source-rate events have a class.
    #[track_caller]
    pub fn events(&mut self) -> Vec<ThresholdEvent> {
        let ring = self
            .events
            .get_or_insert_with(|| self.sensor.take_events().expect("the EVENTS ring"));
        let events = drain_events(ring);
        let now = coarse_now_ns();
        for event in &events {
            assert!(
                event.window_start_ns <= event.at_ns
                    && self.loaded_ns <= event.at_ns
                    && event.at_ns <= now,
                "timestamps of {event:?}: loaded {}, now {now}",
                self.loaded_ns
            );
            // A class is a rate class, a destination class or nothing.
            match EventKind::from_u32(event.kind) {
                Some(EventKind::SourceRate) => {
                    assert!((event.class as usize) < RATE_CLASSES, "{event:?}")
                }
                Some(kind) if kind.of_destination() => {
                    assert!(DstClass::from_u32(event.class).is_some(), "{event:?}")
                }
                _ => assert_eq!(event.class, 0, "{event:?}"),
            }
        }
        events
    }

    /// Runs `frame` once, which the program must pass, and returns the
    /// events it sent.
    #[track_caller]
    pub fn send(&mut self, frame: &[u8]) -> Vec<ThresholdEvent> {
        self.pass(frame);
        self.events()
    }

    /// Every payload sample taken since the last call (or the load), oldest
    /// first, parsed as the agent parses them.
    pub fn samples(&mut self) -> Vec<PayloadSample> {
        let ring = self
            .samples
            .get_or_insert_with(|| self.sensor.take_samples().expect("the SAMPLES ring"));
        let mut out = Vec::new();
        while let Some(item) = ring.next() {
            out.push(samples::parse(&item).expect("a well-formed sample"));
        }
        out
    }
}

/// The entry of `addr` in `map`, which must have one.
#[track_caller]
fn entry<T>(
    map: &str,
    addr: IpAddr,
    read: impl FnOnce(IpAddr) -> Result<Option<T>, SensorError>,
) -> T {
    read(addr)
        .unwrap_or_else(|e| panic!("reading {map}: {e}"))
        .unwrap_or_else(|| panic!("{addr} is not in {map}"))
}

/// Every threshold event waiting in `ring`, oldest first.
fn drain_events(ring: &mut RingBuf<MapData>) -> Vec<ThresholdEvent> {
    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), size_of::<ThresholdEvent>(), "event size");
        // SAFETY: the program writes whole `ThresholdEvent`s (size checked);
        // the ring gives no alignment guarantee beyond 8, hence unaligned.
        events.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ThresholdEvent>()) });
    }
    events
}

/// Checks the whole global table: counters listed in `expected` (summed when
/// listed twice) must have exactly those values, every other one must be 0.
#[track_caller]
pub fn assert_counters(global: &GlobalCounters, expected: &[(Counter, u64)], what: &str) {
    let mut want = GlobalCounters::ZERO;
    for (counter, n) in expected {
        want.values[*counter as usize] += n;
    }
    let wrong: Vec<String> = Counter::ALL
        .iter()
        .filter(|c| global.get(**c) != want.get(**c))
        .map(|c| {
            format!(
                "{}: expected {}, got {}",
                c.name(),
                want.get(*c),
                global.get(*c)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: global counters differ:\n  {}\nall counters: {}",
        wrong.join("\n  "),
        totals(global)
    );
}

/// What every global counter grew by from `before` to `after`.
pub fn growth(before: &GlobalCounters, after: &GlobalCounters) -> GlobalCounters {
    let mut delta = GlobalCounters::ZERO;
    for c in Counter::ALL {
        delta.values[c as usize] = after.get(c) - before.get(c);
    }
    delta
}

/// Whether the kernel refused the run as invalid (EINVAL), as it refuses
/// XDP input shorter than an Ethernet header.
pub fn is_einval(error: &ProgramError) -> bool {
    matches!(
        error,
        ProgramError::SyscallError(SyscallError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EINVAL)
    )
}

/// `CLOCK_MONOTONIC_COARSE`, the clock behind `bpf_ktime_get_coarse_ns`.
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC_COARSE)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A window far longer than any test, yet not longer than the time since
/// boot: a new destination's window starts at 0 (boot), so a window longer
/// than the uptime would not restart at its first SYN but run on from boot.
pub fn long_window_ns() -> u64 {
    const HOUR_NS: u64 = 3_600_000_000_000;
    HOUR_NS.min(coarse_now_ns() / 2)
}

/// Long windows and thresholds that never fire: every window counter equals
/// its cumulative counter, and no event is sent. Tests lower the thresholds
/// they test.
pub fn quiet() -> Thresholds {
    let long = long_window_ns();
    Thresholds {
        rate_window_ns: long,
        fast_window_ns: long,
        weighted_window_ns: long,
        slow_window_ns: long,
        burst_window_ns: long,
        ..Thresholds::DISABLED
    }
}

/// Zero-length windows, which restart at every packet they count whatever
/// the clock says, and every threshold disabled.
pub fn zero_windows() -> Thresholds {
    Thresholds {
        rate_window_ns: 0,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        slow_window_ns: 0,
        burst_window_ns: 0,
        ..Thresholds::DISABLED
    }
}

/// Keeps this thread on one CPU: a test run runs on the CPU of the thread
/// that asks for it, and the program's rate limits and new-entry windows
/// are per CPU.
pub fn pin_to_one_cpu() {
    pin_to_cpu(0);
}

/// Keeps this thread on CPU `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_setaffinity reads
    // the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}
