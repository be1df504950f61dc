//! The sinks against real files and sockets: the same lines everywhere, a
//! stalled reader that costs only its own lines, a file moved and opened
//! again with nothing lost, a reader that comes back.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::net::{UnixDatagram, UnixListener},
    path::Path,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use nta_common::GlobalCounters;

use super::*;
use crate::eve::{EveOutputs, EveWriter, stats};

fn outputs(sinks: Vec<SinkSpec>) -> EveOutputs {
    EveOutputs {
        sinks,
        types: vec!["alert", "flow", "stats"],
        host: Some("edge-7".into()),
    }
}

/// A stats event whose `uptime` numbers it.
fn numbered(n: u64) -> crate::eve::Event {
    stats(&GlobalCounters::ZERO, n, 0, Timestamp::UNIX_EPOCH)
}

fn uptimes(text: &str) -> Vec<u64> {
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(v["host"], "edge-7", "{line}");
            v["stats"]["uptime"].as_u64().expect("uptime")
        })
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file, a datagram reader and a stream reader get the same events, each
/// naming the sensor, and only the types asked for.
#[test]
fn every_sink_gets_the_same_events_naming_the_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eve.json");
    let dgram_path = dir.path().join("dgram.sock");
    let stream_path = dir.path().join("stream.sock");
    let dgram = UnixDatagram::bind(&dgram_path).unwrap();
    let listener = UnixListener::bind(&stream_path).unwrap();
    let mut out = outputs(vec![
        SinkSpec::File(file.clone()),
        SinkSpec::Unix {
            path: dgram_path,
            kind: SocketType::Dgram,
        },
        SinkSpec::Unix {
            path: stream_path,
            kind: SocketType::Stream,
        },
    ]);
    out.types = vec!["stats"];
    let mut w = EveWriter::start(&out).unwrap();
    for n in 0..5 {
        w.send(numbered(n));
    }
    // A type not asked for is left out.
    let mut other = numbered(99);
    other.event_type = "flow";
    w.send(other);
    let (stream, _) = listener.accept().unwrap();
    let sinks = w.close().unwrap();
    assert!(
        sinks.iter().all(|s| s.written == 5 && s.dropped == 0),
        "{sinks:?}"
    );

    assert_eq!(
        uptimes(&std::fs::read_to_string(&file).unwrap()),
        vec![0, 1, 2, 3, 4]
    );
    let mut datagrams = String::new();
    let mut buffer = [0u8; 65_536];
    dgram.set_nonblocking(true).unwrap();
    while let Ok(n) = dgram.recv(&mut buffer) {
        // One event a datagram, without a line end.
        assert_ne!(buffer[n - 1], b'\n');
        datagrams.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
        datagrams.push('\n');
    }
    assert_eq!(uptimes(&datagrams), vec![0, 1, 2, 3, 4]);
    let lines: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert_eq!(uptimes(&lines.join("\n")), vec![0, 1, 2, 3, 4]);
}

/// Syslog gets one message an event: `local5.info`, tagged `nta[PID]`, the
/// event's JSON as the message.
#[test]
fn syslog_gets_each_event_as_a_local5_info_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let daemon = UnixDatagram::bind(&path).unwrap();
    let mut w = EveWriter::start(&outputs(vec![SinkSpec::Syslog(path)])).unwrap();
    for n in 0..3 {
        w.send(numbered(n));
    }
    let sinks = w.close().unwrap();
    assert_eq!((sinks[0].written, sinks[0].dropped), (3, 0));
    let prefix = format!("<174>nta[{}]: ", std::process::id());
    let mut buffer = [0u8; 65_536];
    let mut got = String::new();
    for _ in 0..3 {
        let n = daemon.recv(&mut buffer).unwrap();
        let text = std::str::from_utf8(&buffer[..n]).unwrap();
        let json = text
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{text}"));
        got.push_str(json);
        got.push('\n');
    }
    assert_eq!(uptimes(&got), vec![0, 1, 2]);
}

/// A reader that stops reading fills its socket and its queue: its lines
/// are dropped and counted, while the file gets every one and sending
/// never waits.
#[test]
fn a_stalled_sink_costs_only_its_own_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eve.json");
    let stalled = dir.path().join("stalled.sock");
    let listener = UnixListener::bind(&stalled).unwrap();
    let mut w = EveWriter::start(&outputs(vec![
        SinkSpec::Unix {
            path: stalled,
            kind: SocketType::Stream,
        },
        SinkSpec::File(file.clone()),
    ]))
    .unwrap();
    // Never accepted, never read: the connection waits in the listener's
    // backlog and its buffer fills.
    // More than the stalled sink's queue and socket hold.
    let total = SINK_QUEUE as u64 + 20_000;
    let started = Instant::now();
    for n in 0..total {
        w.send(numbered(n));
        // Paced so that the file's sink keeps up (in a debug build too):
        // it is the stalled sink's queue that overflows.
        if n.is_multiple_of(2048) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let sending = started.elapsed();
    let file_stats = || w.sink_stats()[1].clone();
    wait_for("the file to have every line", || {
        let s = file_stats();
        assert_eq!(s.dropped, 0, "{s:?}");
        s.written == total
    });
    let stuck = w.sink_stats()[0].clone();
    assert!(stuck.dropped > 0, "{stuck:?}");
    assert!(stuck.written + stuck.dropped <= total, "{stuck:?}");
    assert_eq!(w.dropped(), 0, "the writer's own queue kept up");
    assert!(
        sending < Duration::from_secs(30),
        "sending waited: {sending:?}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(uptimes(&text), (0..total).collect::<Vec<_>>());
    // Closing gives up on the stalled reader within its write timeout.
    let closing = Instant::now();
    drop(w);
    assert!(
        closing.elapsed() < Duration::from_secs(10),
        "{:?}",
        closing.elapsed()
    );
    drop(listener);
}

/// logrotate moves the file, then signals: lines before the request are
/// in the moved file, lines after it in a new one, none lost or doubled.
#[test]
fn the_file_is_opened_again_when_asked_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eve.json");
    let moved = dir.path().join("eve.json.1");
    let mut w = EveWriter::start(&outputs(vec![SinkSpec::File(file.clone())])).unwrap();
    let written = |w: &EveWriter| w.sink_stats()[0].written;
    for n in 0..100 {
        w.send(numbered(n));
    }
    wait_for("the first lines", || written(&w) == 100);
    std::fs::rename(&file, &moved).unwrap();
    // Between the move and the signal: still the moved file.
    for n in 100..150 {
        w.send(numbered(n));
    }
    wait_for("the lines before the signal", || written(&w) == 150);
    w.reopen_handle().request();
    for n in 150..200 {
        w.send(numbered(n));
    }
    w.close().unwrap();
    let read = |p: &Path| uptimes(&std::fs::read_to_string(p).unwrap());
    assert_eq!(read(&moved), (0..150).collect::<Vec<_>>());
    assert_eq!(read(&file), (150..200).collect::<Vec<_>>());
}

/// A rotated file: a new file at each turn of the interval, named by its
/// date modifiers, and every line in exactly one of them, in order.
#[test]
fn a_rotated_file_turns_over_each_interval_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("eve-%s.json");
    let mut w = EveWriter::start(&outputs(vec![SinkSpec::Rotated {
        pattern,
        every: Duration::from_secs(1),
    }]))
    .unwrap();
    // 2.5 s of events, in batches: at least two turns of the interval.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(2_500) {
        for _ in 0..10 {
            w.send(numbered(n));
            n += 1;
        }
        let sent = n;
        wait_for("the batch", || w.sink_stats()[0].written == sent);
        std::thread::sleep(Duration::from_millis(50));
    }
    w.close().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut seen = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let name = file.file_name().unwrap().to_str().unwrap();
        let second: i64 = name
            .strip_prefix("eve-")
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not eve-SECONDS.json"));
        let lines = uptimes(&std::fs::read_to_string(file).unwrap());
        // The first file is opened at start, to fail early on a bad path:
        // on a busy machine its second can end before the first batch
        // comes. Every later one is opened by a write.
        if i == 0 && lines.is_empty() {
            continue;
        }
        assert!(!lines.is_empty(), "{name} is empty");
        seen.extend(lines);
        // Opened within its second: the name tells when its lines came.
        let opened = std::fs::metadata(file).unwrap().created().ok();
        if let Some(opened) = opened {
            let at = opened
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            // Named a moment before it was created, which may be the next
            // second; and stamped by the kernel's coarse clock, which may
            // lag the clock that named it by a tick.
            let second = second as f64;
            assert!(
                (second - 0.05..second + 2.0).contains(&at),
                "{name} created at {at}"
            );
        }
    }
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}

/// A reader that is not there yet, or goes away, is retried with backoff:
/// what came meanwhile waits in the queue, and flows once it listens.
#[test]
fn a_sink_reconnects_when_its_reader_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let mut w = EveWriter::start(&outputs(vec![SinkSpec::Unix {
        path: path.clone(),
        kind: SocketType::Stream,
    }]))
    .unwrap();
    for n in 0..10 {
        w.send(numbered(n));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!w.sink_stats()[0].up);
    let listener = UnixListener::bind(&path).unwrap();
    let (stream, _) = listener.accept().unwrap();
    wait_for("the queued lines", || w.sink_stats()[0].written == 10);
    let sinks = w.close().unwrap();
    assert_eq!(sinks[0].dropped, 0);
    let lines: Vec<String> = BufReader::new(stream).lines().map(Result::unwrap).collect();
    assert_eq!(uptimes(&lines.join("\n")), (0..10).collect::<Vec<_>>());
}

/// A capture's read waits for its outputs, but not for one that writes
/// nothing: given up on after a while, its events counted as dropped, the
/// read goes on.
#[test]
fn a_waiting_sender_gives_up_on_a_sink_that_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EveWriter::start(&outputs(vec![SinkSpec::Unix {
        path: dir.path().join("nobody-listens.sock"),
        kind: SocketType::Stream,
    }]))
    .unwrap()
    .waiting();
    // More than its queue and the batch its thread holds while it waits
    // to connect (up to a whole batch, as the thread is scheduled).
    let total = (SINK_QUEUE + BATCH) as u64 + 100;
    let started = Instant::now();
    for n in 0..total {
        w.send(numbered(n));
    }
    let sinks = w.close().unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= WAIT_LIMIT && waited < WAIT_LIMIT * 3,
        "{waited:?}"
    );
    assert_eq!(
        (sinks[0].written, sinks[0].dropped),
        (0, total),
        "{sinks:?}"
    );
}

/// A reader of one socket sink, on its own thread: every event it gets,
/// by its `uptime`, until stopped; stopping removes its socket, as a
/// daemon that dies leaves nothing listening.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<u64>>>,
}

impl Reader {
    fn start(path: &Path, kind: SocketType, syslog: bool) -> Reader {
        let _ = std::fs::remove_file(path);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let path = path.to_owned();
        let json = move |text: &str| -> u64 {
            let text = if syslog {
                &text[text.find("]: ").expect("a syslog tag") + 3..]
            } else {
                text
            };
            uptimes(text)[0]
        };
        let thread = match kind {
            SocketType::Dgram => {
                let socket = UnixDatagram::bind(&path).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(20)))
                    .unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut buffer = vec![0u8; 65_536];
                    // Once stopped, what is already in its buffer is read
                    // before it goes.
                    loop {
                        let stopped = stopping.load(Ordering::Relaxed);
                        match socket.recv(&mut buffer) {
                            Ok(n) => got.push(json(std::str::from_utf8(&buffer[..n]).unwrap())),
                            Err(_) if stopped => break,
                            Err(_) => {}
                        }
                    }
                    drop(socket);
                    let _ = std::fs::remove_file(&path);
                    got
                })
            }
            SocketType::Stream => {
                let listener = UnixListener::bind(&path).unwrap();
                listener.set_nonblocking(true).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut streams = Vec::new();
                    loop {
                        let stopped = stopping.load(Ordering::Relaxed);
                        if let Ok((stream, _)) = listener.accept() {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_millis(20)))
                                .unwrap();
                            streams.push(BufReader::new(stream));
                        }
                        for stream in &mut streams {
                            let mut line = String::new();
                            while let Ok(n) = stream.read_line(&mut line) {
                                if n == 0 || !line.ends_with('\n') {
                                    break;
                                }
                                got.push(json(line.trim_end()));
                                line.clear();
                            }
                        }
                        // Stopped: this last pass read what was buffered.
                        if stopped {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    drop(listener);
                    let _ = std::fs::remove_file(&path);
                    got
                })
            }
        };
        Reader {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Each socket output's reader gone for a second in the middle of a storm,
/// then back: sending never waits, every event is written or counted as
/// dropped, the file beside it gets all, and events flow again to the
/// reader once it is back.
#[test]
fn a_socket_reader_gone_mid_storm_costs_counted_events_never_a_stall() {
    for (what, kind, syslog) in [
        ("unix_dgram", SocketType::Dgram, false),
        ("unix_stream", SocketType::Stream, false),
        ("syslog", SocketType::Dgram, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reader.sock");
        let spec = if syslog {
            SinkSpec::Syslog(path.clone())
        } else {
            SinkSpec::Unix {
                path: path.clone(),
                kind,
            }
        };
        let mut reader = Some(Reader::start(&path, kind, syslog));
        let mut w = EveWriter::start(&outputs(vec![
            spec,
            SinkSpec::File(dir.path().join("eve.json")),
        ]))
        .unwrap();
        let mut received = Vec::new();
        let started = Instant::now();
        let (mut sent, mut slowest) = (0u64, Duration::ZERO);
        let mut back = false;
        while started.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            w.send(numbered(sent));
            slowest = slowest.max(t.elapsed());
            sent += 1;
            if started.elapsed() > Duration::from_secs(1)
                && let Some(gone) = reader.take_if(|_| !back)
            {
                received.extend(gone.stop());
            }
            if !back && started.elapsed() > Duration::from_secs(2) {
                reader = Some(Reader::start(&path, kind, syslog));
                back = true;
            }
            // Some 20 000 events a second.
            if sent.is_multiple_of(200) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let last = sent - 1;
        wait_for("the reader to be back", || w.sink_stats()[0].up);
        let sinks = w.close().unwrap();
        received.extend(reader.take().unwrap().stop());
        let (s, file) = (&sinks[0], &sinks[1]);
        println!(
            "{what}: {sent} events in 3 s, reader gone from 1 s to 2 s: {} written, {} dropped, \
             {} received; the file {} written; slowest send {slowest:?}",
            s.written,
            s.dropped,
            received.len(),
            file.written
        );
        assert_eq!(s.written + s.dropped, sent, "{what}: {s:?}");
        assert_eq!((file.written, file.dropped), (sent, 0), "{what}: the file");
        assert!(
            slowest < Duration::from_millis(100),
            "{what}: a send waited {slowest:?}"
        );
        assert!(received.windows(2).all(|p| p[0] < p[1]), "{what}: in order");
        assert_eq!(
            received.last(),
            Some(&last),
            "{what}: the storm's end reached the reader"
        );
        assert!(received.len() as u64 <= s.written + BATCH as u64, "{what}");
    }
}
