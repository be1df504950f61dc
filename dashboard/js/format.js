// Numbers, sizes, durations and times as an engineer reads them.

const SI = ['', 'k', 'M', 'G', 'T', 'P'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 0.5 → "0.5", 1234 → "1.23k", 5e9 → "5G": three significant digits. */
export function formatRate(value) {
  if (value == null || !Number.isFinite(value)) return '—';
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1000 && i < SI.length - 1) {
    v /= 1000;
    i += 1;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  // Number() drops trailing zeros: 1.20 reads "1.2".
  return (value < 0 ? '-' : '') + Number(v.toFixed(digits)) + SI[i];
}

/** Bytes in binary units: 1536 → "1.5 KiB". */
export function formatBytes(bytes) {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < BINARY.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${BINARY[i]}`;
}

/** Whole counts with thousands separators. */
export function formatCount(n) {
  return n == null ? '—' : Number(n).toLocaleString();
}

/** Seconds as "12s", "3m 4s", "2h 5m", "3d 4h": the two largest units. */
export function formatDuration(totalSecs) {
  if (totalSecs == null || !Number.isFinite(totalSecs)) return '—';
  const s = Math.max(0, Math.floor(totalSecs));
  const parts = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor(s / 3600) % 24, 'h'],
    [Math.floor(s / 60) % 60, 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first === -1) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([n], i) => i === 0 || n > 0)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}

const timeOnly = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const dateAndTime = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const full = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
});

/** Local time; the date is added when it is not today. */
export function formatTime(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toDateString() === new Date().toDateString() ? timeOnly.format(d) : dateAndTime.format(d);
}

/** Local date, time and zone, for details. */
export function formatFullTime(ts) {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '—' : full.format(d);
}

/** Seconds from `from` to `to` (timestamps or Dates). */
function secondsBetween(from, to) {
  return (new Date(to).getTime() - new Date(from).getTime()) / 1000;
}

/** An alert's duration so far: to last_seen when closed, to now while open. */
export function alertDuration(alert, now = Date.now()) {
  const end = alert.state === 'open' ? now : alert.last_seen;
  return formatDuration(secondsBetween(alert.first_seen, end));
}

const KIND_LABELS = {
  port_scan: 'port scan',
  sweep: 'sweep',
  syn_flood: 'SYN flood',
  udp_flood: 'UDP flood',
  icmp_flood: 'ICMP flood',
  tcp_flood: 'TCP flood (ACK, RST, FIN)',
  fragment_flood: 'fragment flood',
  traffic_flood: 'traffic flood',
  reflection: 'reflection',
  volumetric: 'volumetric',
  signature: 'signature',
  dns_tunnel: 'DNS tunnel',
};

export const kindLabel = (kind) => KIND_LABELS[kind] ?? String(kind);
