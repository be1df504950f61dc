// The three traffic charts (uPlot): packets/s and bits/s by protocol, SYN/s
// with the detectors' thresholds.
//
// "5m" is live: backfilled from /api/history once, then one point per stats
// tick. "1h" and "24h" come from /api/history only, refreshed on a timer.
// Every series lives in one table of rows ({t, key: value}) shared by the
// charts, so a range change or a theme change just redraws from it.

import { getJson } from './api.js';
import { byId } from './dom.js';
import { formatRate } from './format.js';

const RANGES = {
  '5m': { secs: 300, step: 1, refreshMs: null },
  '1h': { secs: 3600, step: 10, refreshMs: 10_000 },
  '24h': { secs: 86400, step: 60, refreshMs: 60_000 },
};
const LIVE_SECS = RANGES['5m'].secs;

/** Each plotted key: its history metric (times `scale`) and its value in a stats tick. */
const METRICS = {
  packets: { metric: 'packets', live: (r) => r.packets_per_sec },
  tcp_packets: { metric: 'tcp_packets', live: (r) => r.protocols?.tcp },
  udp_packets: { metric: 'udp_packets', live: (r) => r.protocols?.udp },
  icmp_packets: { metric: 'icmp_packets', live: (r) => r.protocols?.icmp },
  other_packets: { metric: 'other_l4_packets', live: (r) => r.protocols?.other },
  bits: { metric: 'bits', live: (r) => r.bits_per_sec },
  // Byte metrics are bytes/s; the charts show bits/s.
  tcp_bits: { metric: 'tcp_bytes', scale: 8, live: (r) => r.protocol_bits?.tcp },
  udp_bits: { metric: 'udp_bytes', scale: 8, live: (r) => r.protocol_bits?.udp },
  icmp_bits: { metric: 'icmp_bytes', scale: 8, live: (r) => r.protocol_bits?.icmp },
  other_bits: { metric: 'other_l4_bytes', scale: 8, live: (r) => r.protocol_bits?.other },
  syn: { metric: 'syn', live: (r) => r.syns_per_sec },
};

const protocolSeries = (suffix) => [
  { label: 'total', key: suffix, color: '--c-total', width: 2 },
  { label: 'tcp', key: `tcp_${suffix}`, color: '--c-tcp' },
  { label: 'udp', key: `udp_${suffix}`, color: '--c-udp' },
  { label: 'icmp', key: `icmp_${suffix}`, color: '--c-icmp' },
  { label: 'other', key: `other_${suffix}`, color: '--c-other' },
];

const CHARTS = [
  { id: 'chart-packets', title: 'Packets per second', series: protocolSeries('packets') },
  { id: 'chart-bits', title: 'Bits per second', series: protocolSeries('bits') },
  { id: 'chart-syn', title: 'SYN per second', series: [{ label: 'SYN/s', key: 'syn', color: '--c-syn', width: 2 }], withThresholds: true },
];

const state = {
  range: '5m',
  rows: [], // plotted, oldest first
  liveRows: [], // the last 5 minutes of stats ticks, whatever the range
  thresholds: [], // [{label, value, color}] drawn on the SYN chart
  generation: 0, // bumped on range change so late responses are dropped
  refreshTimer: null,
  plots: new Map(), // chart id → uPlot
};

/** Creates the charts, wires the range buttons and loads the 5-minute view. */
export function initCharts() {
  if (typeof uPlot === 'undefined') {
    showError('The chart library did not load.');
    return;
  }
  for (const button of document.querySelectorAll('[data-range]')) {
    button.addEventListener('click', () => selectRange(button.dataset.range));
  }
  const resize = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const plot = state.plots.get(entry.target.id);
      const width = Math.floor(entry.contentRect.width);
      if (plot && width > 0 && width !== plot.width) plot.setSize({ width, height: chartHeight() });
    }
  });
  CHARTS.forEach((chart) => resize.observe(byId(chart.id)));
  createPlots();
  loadHistory();
}

/** Takes one stats tick: records it, and plots it when the live range shows. */
export function pushStats(stats) {
  updateThresholds(stats.thresholds);
  const row = rowFromStats(stats);
  const last = state.liveRows.at(-1);
  if (last && row.t <= last.t) return;
  state.liveRows.push(row);
  dropOlderThan(state.liveRows, row.t - LIVE_SECS);
  if (state.range !== '5m') return;
  state.rows.push(row);
  dropOlderThan(state.rows, row.t - LIVE_SECS);
  redraw();
}

/** Rebuilds the charts with the current theme's colours. */
export function recolorCharts() {
  if (state.plots.size > 0) createPlots();
  others.forEach((chart) => chart.draw(chart.rows, true));
}

// Charts of other views (a host's traffic), drawn like the traffic charts.
const others = new Set();
const resizeOthers = new ResizeObserver((entries) => {
  for (const chart of others) {
    if (entries.some((entry) => entry.target === byId(chart.id))) chart.draw();
  }
});

/**
 * A chart of `series` ([{label, key, color, width}]) in the element `id`,
 * for views other than the traffic charts: `draw(rows)` plots rows
 * ({t: seconds, key: value}); it redraws itself on a resize and a theme
 * change.
 */
export function createChart(id, title, series) {
  const chart = { id, title, series, rows: [], plot: null, width: 0 };
  chart.draw = (rows = chart.rows, force = false) => {
    chart.rows = rows;
    const container = byId(id);
    const width = Math.floor(container.clientWidth);
    if (typeof uPlot === 'undefined') return;
    if (!force && width === chart.width && rows === chart.drawn) return;
    chart.plot?.destroy();
    container.setAttribute('role', 'img');
    const data = [rows.map((row) => row.t), ...series.map((s) => rows.map((row) => row[s.key] ?? null))];
    chart.plot = new uPlot(plotOptions(chart, width), data, container);
    chart.width = width;
    chart.drawn = rows;
    container.dataset.points = String(rows.length);
    container.setAttribute('aria-label', `${title}: ${rows.length} points`);
  };
  others.add(chart);
  resizeOthers.observe(byId(id));
  return chart;
}

function selectRange(range) {
  if (!(range in RANGES) || range === state.range) return;
  state.range = range;
  for (const button of document.querySelectorAll('[data-range]')) {
    button.setAttribute('aria-pressed', String(button.dataset.range === range));
  }
  loadHistory();
}

/** Fetches the selected range from /api/history (every metric in parallel). */
async function loadHistory() {
  clearTimeout(state.refreshTimer);
  const generation = ++state.generation;
  const { secs, step, refreshMs } = RANGES[state.range];
  const until = new Date();
  const since = new Date(until.getTime() - secs * 1000);
  try {
    const responses = await Promise.all(Object.values(METRICS).map((m) =>
      getJson('/api/history', { metric: m.metric, since: isoSeconds(since), until: isoSeconds(until), step })));
    if (generation !== state.generation) return;
    const history = rowsFromHistory(responses);
    state.rows = state.range === '5m' ? withLiveRows(history) : history;
    showError(null);
  } catch (error) {
    if (generation !== state.generation) return;
    state.rows = state.range === '5m' ? [...state.liveRows] : [];
    showError(`History is unavailable: ${error.message}`);
  }
  redraw();
  if (refreshMs) state.refreshTimer = setTimeout(loadHistory, refreshMs);
}

/** History up to the first live tick, then the live ticks (they are fresher). */
function withLiveRows(history) {
  const firstLive = state.liveRows[0]?.t ?? Infinity;
  return [...history.filter((row) => row.t < firstLive), ...state.liveRows];
}

/** Joins one response per metric (in METRICS order) into rows by time. */
function rowsFromHistory(responses) {
  const byTime = new Map();
  Object.entries(METRICS).forEach(([key, { scale = 1 }], i) => {
    for (const point of responses[i].points ?? []) {
      const t = Date.parse(point.t) / 1000;
      if (!byTime.has(t)) byTime.set(t, { t });
      byTime.get(t)[key] = point.value * scale;
    }
  });
  return [...byTime.values()].sort((a, b) => a.t - b.t);
}

function rowFromStats(stats) {
  const rates = stats.rates ?? {};
  const at = Date.parse(stats.updated_at);
  const row = { t: (Number.isNaN(at) ? Date.now() : at) / 1000 };
  for (const [key, { live }] of Object.entries(METRICS)) row[key] = live(rates) ?? null;
  return row;
}

function dropOlderThan(rows, t) {
  const keepFrom = rows.findIndex((row) => row.t >= t);
  rows.splice(0, keepFrom === -1 ? rows.length : keepFrom);
}

/** The SYN chart's threshold lines; a disabled detector draws none. */
function updateThresholds(thresholds) {
  const lines = [];
  const synFlood = thresholds?.syn_flood;
  if (synFlood && synFlood.enabled !== false && synFlood.dst_host_syn_rate != null) {
    lines.push({ label: 'syn_flood per host threshold', value: synFlood.dst_host_syn_rate, color: '--c-threshold-1' });
  }
  const volumetric = thresholds?.volumetric;
  if (volumetric && volumetric.enabled !== false && volumetric.syn_rate != null) {
    lines.push({ label: 'volumetric SYN per source threshold', value: volumetric.syn_rate, color: '--c-threshold-2' });
  }
  if (JSON.stringify(lines) === JSON.stringify(state.thresholds)) return;
  state.thresholds = lines;
  // A line appearing or going changes the series, which uPlot sets at creation.
  if (state.plots.size > 0) createPlots();
}

function createPlots() {
  for (const chart of CHARTS) {
    state.plots.get(chart.id)?.destroy();
    const container = byId(chart.id);
    container.setAttribute('role', 'img');
    const plot = new uPlot(plotOptions(chart, container.clientWidth), chartData(chart), container);
    state.plots.set(chart.id, plot);
  }
  redraw();
}

function plotOptions(chart, width) {
  const text = cssColor('--c-text-muted');
  const grid = cssColor('--c-grid');
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const series = [
    {},
    ...chart.series.map((s) => ({
      label: s.label,
      stroke: cssColor(s.color),
      width: s.width ?? 1.25,
      points: { show: false },
      value: legendValue,
    })),
    ...(chart.withThresholds ? state.thresholds : []).map((line) => ({
      label: line.label,
      stroke: cssColor(line.color),
      width: 1.5,
      dash: [6, 4],
      points: { show: false },
      value: () => formatRate(line.value),
    })),
  ];
  return {
    width: Math.max(width, 200),
    height: chartHeight(),
    series,
    cursor: { sync: { key: 'nta-traffic' }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      // chartData() starts every chart at the start of the selected range.
      x: { time: true },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { ...axis, values: axisTimes },
      { ...axis, size: 56, values: (u, splits) => splits.map(formatRate) },
    ],
  };
}

/** The value under the cursor; the latest one when the cursor is elsewhere. */
function legendValue(u, value, seriesIdx, idx) {
  return formatRate(idx == null ? u.data[seriesIdx].findLast((v) => v != null) : value);
}

/**
 * uPlot's columns for a chart: times, its series, then the constant
 * threshold lines. An empty row at the start of the range lets the lines
 * span the whole chart even when the data starts later.
 */
function chartData(chart) {
  const end = state.rows.at(-1)?.t ?? Date.now() / 1000;
  const start = end - RANGES[state.range].secs;
  const rows = state.rows[0]?.t <= start ? state.rows : [{ t: start }, ...state.rows];
  const columns = [rows.map((row) => row.t), ...chart.series.map((s) => rows.map((row) => row[s.key] ?? null))];
  if (chart.withThresholds) {
    for (const line of state.thresholds) columns.push(rows.map(() => line.value));
  }
  return columns;
}

function redraw() {
  for (const chart of CHARTS) {
    const plot = state.plots.get(chart.id);
    if (!plot) continue;
    const data = chartData(chart);
    plot.setData(data);
    const container = byId(chart.id);
    const plotted = data[1].filter((v) => v != null);
    container.dataset.points = String(plotted.length);
    const latest = plotted.at(-1);
    container.setAttribute('aria-label', `${chart.title}, last ${state.range}` +
      (latest == null ? ': no data' : `; latest ${chart.series[0].label} ${formatRate(latest)}`));
  }
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const clockSeconds = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });

/** 24-hour clock times for the x axis; seconds only when ticks are less than a minute apart. */
function axisTimes(u, splits) {
  const format = splits.length > 1 && splits[1] - splits[0] < 60 ? clockSeconds : clock;
  return splits.map((t) => format.format(new Date(t * 1000)));
}

function chartHeight() {
  return matchMedia('(max-width: 640px)').matches ? 150 : 190;
}

// Canvas needs concrete colours; the theme's are CSS variables (possibly
// light-dark() values), so let the browser resolve them on a probe element.
let probe = null;
function cssColor(variable) {
  if (!probe) {
    probe = document.createElement('span');
    probe.hidden = true;
    document.body.append(probe);
  }
  probe.style.color = `var(${variable})`;
  return getComputedStyle(probe).color;
}

function showError(message) {
  const node = byId('charts-error');
  node.hidden = message == null;
  node.textContent = message ?? '';
}

const isoSeconds = (date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
