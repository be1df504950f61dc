// The alert detail dialog: every field of one alert, its evidence, the
// payload excerpt as plain text, and the alert's JSON to copy or download.

import { byId, h, replaceChildren } from './dom.js';
import { alertDuration, formatCount, formatFullTime, formatRate, kindLabel } from './format.js';
import { hostLink } from './views.js';

/** Evidence fields shown with a label of their own; any other field is listed as it comes. */
const EVIDENCE_LABELS = [
  ['threshold', 'Threshold'],
  ['window_secs', 'Window'],
  ['detected_by', 'Detected by'],
  ['class', 'Traffic class'],
  ['scan', 'Probes'],
  ['distinct_ports', 'Distinct ports'],
  ['distinct_hosts', 'Distinct hosts'],
  ['estimated', 'Counts estimated'],
  ['distinct_sources', 'Distinct sources'],
  ['pps', 'Peak packet rate'],
  ['bps', 'Peak bit rate'],
  ['service', 'Reflecting service'],
  ['service_port', 'Service UDP port'],
  ['rules', 'Rules that held'],
  ['top_ports', 'Top ports'],
  ['top_sources', 'Top sources'],
  ['sid', 'Signature id (sid)'],
  ['rev', 'Revision'],
  ['signature', 'Signature'],
  ['classtype', 'Class type'],
  ['priority', 'Priority'],
  ['domain', 'Domain'],
  ['unique_subdomains', 'Unique subdomains'],
  ['longest_label', 'Longest label'],
  ['max_entropy', 'Highest label entropy'],
  ['txt_null', 'TXT/NULL queries'],
  ['query', 'Example query'],
];
// Shown elsewhere: the unit with the threshold, buffer and excerpt below,
// `estimated` as the "~" of the distinct counts.
const SHOWN_ELSEWHERE = new Set(['unit', 'buffer', 'excerpt', 'estimated']);

const dialog = () => byId('alert-detail');
let current = null; // { id, returnFocus }
let downloadUrl = null;

/** Wires the close and copy buttons. */
export function initDetail() {
  byId('detail-close').addEventListener('click', () => dialog().close());
  // A click on the backdrop (outside the dialog box) closes it too.
  dialog().addEventListener('click', (event) => {
    if (event.target === dialog()) dialog().close();
  });
  dialog().addEventListener('close', () => {
    const row = current?.returnFocus;
    current = null;
    if (row?.isConnected) row.focus();
  });
  byId('detail-copy').addEventListener('click', copyJson);
}

/** Opens the dialog on `alert`; focus returns to `returnFocus` on close. */
export function showDetail(alert, returnFocus) {
  current = { id: alert.id, returnFocus };
  fill(alert);
  byId('detail-copy-status').textContent = '';
  if (!dialog().open) dialog().showModal();
}

/** Redraws the dialog if it shows this alert (a live update arrived). */
export function refreshDetail(alert) {
  if (current?.id === alert.id && dialog().open) fill(alert);
}

function fill(alert) {
  const evidence = alert.evidence ?? {};
  byId('detail-title').textContent = `Alert #${alert.id}: ${kindLabel(alert.kind)}`;
  byId('detail-message').textContent = alert.message;
  fillList(byId('detail-fields'), [
    ['Severity', h('span', { class: `badge sev-${alert.severity}` }, alert.severity)],
    ['State', h('span', { class: `state state-${alert.state}` }, alert.state)],
    ['Kind', alert.kind],
    ['Source', alert.src ? hostLink(alert.src) : '—'],
    ['Destination', alert.dst ? hostLink(alert.dst) : '—'],
    ['Destination port', alert.dst_port ?? '—'],
    ['First seen', timeValue(alert.first_seen)],
    ['Last seen', timeValue(alert.last_seen)],
    ['Closed at', alert.closed_at ? timeValue(alert.closed_at) : null],
    ['Duration', alertDuration(alert)],
    ['Packets', formatCount(alert.packets)],
    ['Peak rate', withUnit(alert.peak_rate, evidence.unit)],
  ]);
  fillList(byId('detail-evidence'), evidenceEntries(evidence));
  byId('detail-excerpt-block').hidden = evidence.excerpt == null;
  // textContent: the excerpt is attacker bytes (escaped to ASCII, markup intact).
  byId('detail-excerpt').textContent = evidence.excerpt ?? '';
  byId('detail-buffer').textContent = evidence.buffer ? `in ${evidence.buffer}` : '';
  const json = JSON.stringify(alert, null, 2);
  byId('detail-json').textContent = json;
  setDownload(json, alert.id);
}

function evidenceEntries(evidence) {
  const entries = EVIDENCE_LABELS
    .filter(([key]) => evidence[key] != null && !(Array.isArray(evidence[key]) && evidence[key].length === 0))
    .map(([key, label]) => [label, evidenceValue(key, evidence)]);
  const unknown = Object.keys(evidence)
    .filter((key) => !SHOWN_ELSEWHERE.has(key) && !EVIDENCE_LABELS.some(([known]) => known === key));
  return [...entries, ...unknown.map((key) => [key, JSON.stringify(evidence[key])])];
}

function evidenceValue(key, evidence) {
  const value = evidence[key];
  switch (key) {
    case 'threshold': return withUnit(value, evidence.unit);
    case 'window_secs': return `${value} s`;
    case 'rules': return value.join(', ');
    // Present only when true: the distinct counts are sketch estimates.
    case 'estimated': return value ? 'yes (sketch estimates)' : 'no';
    case 'top_ports':
    case 'top_sources':
      return h('ol', { class: 'counts' }, value.map((c) =>
        h('li', {}, h('span', { class: 'mono' }, String(c.value)), ` ${formatCount(c.packets)} packets`)));
    case 'max_entropy': return `${Number(value).toFixed(2)} bits/char`;
    // HyperLogLog estimates for floods: within about 9 %.
    case 'distinct_sources': return `${evidence.estimated ? '~' : ''}${formatCount(value)}`;
    case 'pps': return withUnit(value, 'pkt/s');
    case 'bps': return withUnit(value, 'bit/s');
    case 'service_port': return String(value);
    case 'sid':
    case 'rev':
    case 'priority':
      return String(value);
    case 'query':
    case 'domain':
    case 'signature':
      return h('span', { class: 'mono wrap' }, value);
    default: return typeof value === 'number' ? formatCount(value) : String(value);
  }
}

/** A <dl> from [label, value] pairs; null values are left out. */
function fillList(dl, entries) {
  replaceChildren(dl, entries
    .filter(([, value]) => value != null)
    .map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, value))));
}

/** "2.47k SYN/s (2469.5)": rounded, with the exact value when rounding changed it. */
function withUnit(value, unit = '') {
  const rounded = `${formatRate(value)} ${unit}`.trim();
  return String(formatRate(value)) === String(value) ? rounded : `${rounded} (${value})`;
}

function timeValue(ts) {
  return h('time', { datetime: ts, title: ts }, formatFullTime(ts));
}

function setDownload(json, id) {
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
  const link = byId('detail-download');
  link.href = downloadUrl;
  link.download = `nta-alert-${id}.json`;
}

async function copyJson() {
  const status = byId('detail-copy-status');
  const json = byId('detail-json').textContent;
  try {
    await navigator.clipboard.writeText(json);
    status.textContent = 'Copied.';
  } catch {
    // No clipboard API (plain http on another host): select the JSON instead.
    const raw = byId('detail-json');
    raw.closest('details').open = true;
    getSelection().selectAllChildren(raw);
    status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
  }
}
