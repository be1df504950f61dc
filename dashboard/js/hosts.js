// The hosts view: one host's traffic over the chosen period — totals, a
// chart of bits/s in and out, peers, service ports, latest flows and
// alerts — or, with no host chosen, the period's top talkers. Built from
// /api/hosts/{ip}, /api/flows and /api/top, refreshed while shown.

import { ApiError, getJson } from './api.js';
import { byId, h, replaceChildren } from './dom.js';
import { formatBytes, formatCount, formatTime, kindLabel } from './format.js';
import { createChart } from './charts.js';
import { flowHead, flowRow, protoName } from './flows.js';
import { alertEndpoints, flowsHash, hostHash, hostLink } from './views.js';

const RANGES = { '1h': 3600, '24h': 86_400, '7d': 7 * 86_400 };
const REFRESH_MS = 10_000;
const HOST_FLOWS = 20;
const TOP_TALKERS = 20;

const state = {
  host: null, // the address shown, or null for top talkers
  range: '1h',
  shown: false,
  timer: null,
  generation: 0,
  chart: null,
};

/** Wires the address form and the range buttons. */
export function initHosts() {
  byId('host-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const host = byId('host-input').value.trim();
    location.hash = host ? hostHash(host) : '#hosts';
  });
  for (const button of document.querySelectorAll('[data-host-range]')) {
    button.addEventListener('click', () => {
      state.range = button.dataset.hostRange;
      for (const other of document.querySelectorAll('[data-host-range]')) {
        other.setAttribute('aria-pressed', String(other === button));
      }
      load();
    });
  }
  flowHead(byId('host-flows'));
  state.chart = createChart('chart-host', 'Bits per second in and out', [
    { label: 'in', key: 'in', color: '--c-tcp', width: 2 },
    { label: 'out', key: 'out', color: '--c-udp', width: 2 },
  ]);
}

/** Shows host `params.host`, or the top talkers without one. */
export function showHosts(params) {
  state.host = params.host || null;
  state.shown = true;
  byId('host-input').value = state.host ?? '';
  return load();
}

/** Stops refreshing once another view shows. */
export function hideHosts() {
  state.shown = false;
  clearTimeout(state.timer);
}

async function load() {
  clearTimeout(state.timer);
  const generation = ++state.generation;
  const until = new Date();
  const since = new Date(until.getTime() - RANGES[state.range] * 1000);
  const period = { since: since.toISOString(), until: until.toISOString() };
  byId('host-detail').hidden = state.host == null;
  byId('top-talkers-block').hidden = state.host != null;
  byId('host-title').textContent = state.host == null ? 'Hosts' : `Host ${state.host}`;
  try {
    if (state.host == null) await loadTop(period, generation);
    else await loadHost(state.host, period, generation);
    if (generation !== state.generation) return;
    showFailure(null);
  } catch (error) {
    if (generation !== state.generation) return;
    showFailure(error);
  }
  if (state.shown) state.timer = setTimeout(load, REFRESH_MS);
}

async function loadHost(host, period, generation) {
  const [traffic, flows] = await Promise.all([
    getJson(`/api/hosts/${encodeURIComponent(host)}`, period),
    getJson('/api/flows', { host, ...period, limit: HOST_FLOWS }),
  ]);
  if (generation !== state.generation) return;
  byId('host-summary').textContent = `last ${state.range} · ${formatCount(traffic.flows)} flows`;
  note(traffic.truncated
    ? `Only the newest ${formatCount(traffic.scanned)} flows of this host were read: older ones are left out of these figures.`
    : null);
  fillTotals(traffic);
  state.chart.draw(traffic.series.map((bucket) => ({
    t: Date.parse(bucket.t) / 1000,
    in: (bucket.bytes_in * 8) / traffic.step,
    out: (bucket.bytes_out * 8) / traffic.step,
  })));
  fillTable('host-peers', traffic.peers, 'No peers', (peer) => [
    hostLink(peer.ip), formatBytes(peer.bytes), formatCount(peer.flows)]);
  fillTable('host-ports', traffic.ports, 'No ports', (port) => [
    h('a', { href: flowsHash({ host, port: port.port, proto: protoName(port.proto) }), class: 'alert-link mono' },
      `${port.port}/${protoName(port.proto)}`),
    formatBytes(port.bytes), formatCount(port.flows)]);
  replaceChildren(byId('host-flows').tBodies[0], flows.flows.map(flowRow));
  byId('host-flows-empty').hidden = flows.flows.length > 0;
  byId('host-all-flows').href = flowsHash({ host });
  fillAlerts(traffic.alerts);
}

function fillTotals(traffic) {
  const entries = [
    ['Bytes in', formatBytes(traffic.bytes_in)],
    ['Bytes out', formatBytes(traffic.bytes_out)],
    ['Packets in', formatCount(traffic.pkts_in)],
    ['Packets out', formatCount(traffic.pkts_out)],
    ['Flows', formatCount(traffic.flows)],
    ['Alerts', formatCount(traffic.alerts.length)],
  ];
  replaceChildren(byId('host-totals'), entries.map(([label, value]) =>
    h('div', {}, h('dt', {}, label), h('dd', {}, value))));
}

function fillAlerts(alerts) {
  replaceChildren(byId('host-alerts').tBodies[0], alerts.map((alert) => h('tr', { 'data-alert-id': alert.id, 'data-kind': alert.kind },
    h('td', {}, h('a', { href: `#alert=${alert.id}`, class: 'alert-link' }, formatTime(alert.first_seen))),
    h('td', {}, h('span', { class: `badge sev-${alert.severity}` }, alert.severity)),
    h('td', {}, kindLabel(alert.kind)),
    h('td', { class: 'mono' }, alertEndpoints(alert)),
    h('td', { class: 'message' }, alert.message))));
  byId('host-alerts-empty').hidden = alerts.length > 0;
}

async function loadTop(period, generation) {
  const top = await getJson('/api/top', { ...period, by: 'bytes', limit: TOP_TALKERS });
  if (generation !== state.generation) return;
  byId('host-summary').textContent = `last ${state.range} · ${formatCount(top.flows)} flows`;
  note(top.truncated
    ? `Only the latest ${formatCount(top.scanned)} flows of the period were read: the ranking leaves older ones out.`
    : null);
  fillTable('top-talkers', top.hosts, 'No flows stored in this period yet (a flow is stored once idle).', (host) => [
    hostLink(host.ip), formatBytes(host.bytes_in), formatBytes(host.bytes_out), formatCount(host.pkts), formatCount(host.flows)]);
}

/** Rows of `cells(item)` in table `id`, the first cell a key, the others numbers. */
function fillTable(id, items, emptyText, cells) {
  const table = byId(id);
  const columns = table.tHead.rows[0].cells.length;
  replaceChildren(table.tBodies[0], items.length === 0
    ? h('tr', {}, h('td', { colspan: columns, class: 'muted empty-cell' }, emptyText))
    : items.map((item) => h('tr', {}, cells(item).map((cell, i) =>
      h('td', { class: i === 0 ? 'key' : 'num' }, cell)))));
}

function note(text) {
  byId('host-note').hidden = text == null;
  byId('host-note').textContent = text ?? '';
}

/** A 400 about the address goes beside the field; anything else under the form. */
function showFailure(error) {
  const aboutHost = error instanceof ApiError && error.status === 400 && error.parameter === 'host';
  byId('host-error').textContent = aboutHost ? error.message : '';
  if (aboutHost) byId('host-input').setAttribute('aria-invalid', 'true');
  else byId('host-input').removeAttribute('aria-invalid');
  const failure = byId('host-failure');
  failure.hidden = error == null || aboutHost;
  failure.textContent = error == null || aboutHost ? ''
    : error instanceof ApiError ? `The agent refused the query: ${error.message}` : 'Cannot reach the agent.';
  if (aboutHost) byId('host-detail').hidden = true;
}
