// The flows view: stored flow records, filtered by host, port, protocol
// and application protocol, a page at a time (the API's cursor), the page
// sortable by any column. Also the flow rows the hosts view shows.

import { ApiError, getJson } from './api.js';
import { byId, h, replaceChildren } from './dom.js';
import { formatBytes, formatCount, formatFullTime, formatTime } from './format.js';
import { flowsHash, hostLink } from './views.js';

const PAGE_SIZE = 50;
/** Filter parameter → its form control. */
const FIELDS = { host: 'flow-host', port: 'flow-port', proto: 'flow-proto', app_proto: 'flow-app-proto' };
const PROTOCOLS = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

export const protoName = (number) => PROTOCOLS[number] ?? String(number);

const millis = (f) => Date.parse(f.end) - Date.parse(f.start);
const withPort = (port) => h('span', { class: 'muted' }, `:${port}`);

/** Each column: its header, how a flow sorts by it, and its cell. */
export const FLOW_COLUMNS = [
  { key: 'start', label: 'Start', sort: (f) => Date.parse(f.start),
    cell: (f) => h('time', { datetime: f.start, title: formatFullTime(f.start) }, formatTime(f.start)) },
  { key: 'duration', label: 'Duration', num: true, sort: millis, cell: (f) => formatMillis(millis(f)) },
  { key: 'proto', label: 'Proto', sort: (f) => protoName(f.proto), cell: (f) => protoName(f.proto) },
  // app_proto comes from what the flow carried: text only, like every field here.
  { key: 'app_proto', label: 'App', sort: (f) => f.app_proto ?? '', cell: (f) => f.app_proto ?? '—' },
  { key: 'client', label: 'Client', sort: (f) => f.src_ip, cell: (f) => [hostLink(f.src_ip), withPort(f.src_port)] },
  { key: 'server', label: 'Server', sort: (f) => f.dest_ip, cell: (f) => hostLink(f.dest_ip) },
  { key: 'dst_port', label: 'Port', num: true, sort: (f) => f.dst_port, cell: (f) => String(f.dst_port) },
  { key: 'pkts', label: 'Packets', num: true, sort: (f) => f.pkts_toserver + f.pkts_toclient,
    cell: (f) => formatCount(f.pkts_toserver + f.pkts_toclient) },
  { key: 'bytes_toserver', label: 'Bytes →', num: true, sort: (f) => f.bytes_toserver,
    cell: (f) => formatBytes(f.bytes_toserver), title: 'Bytes the client sent' },
  { key: 'bytes_toclient', label: 'Bytes ←', num: true, sort: (f) => f.bytes_toclient,
    cell: (f) => formatBytes(f.bytes_toclient), title: 'Bytes the server sent' },
  { key: 'state', label: 'State', sort: (f) => f.state, cell: (f) => f.state },
];

function formatMillis(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** One flow as a table row, with its figures in data attributes for scripts and tests. */
export function flowRow(flow) {
  return h('tr', {
    'data-flow-id': flow.id,
    'data-src-ip': flow.src_ip,
    'data-dest-ip': flow.dest_ip,
    'data-dst-port': flow.dst_port,
    'data-proto': protoName(flow.proto),
    'data-bytes-toserver': flow.bytes_toserver,
    'data-bytes-toclient': flow.bytes_toclient,
  }, FLOW_COLUMNS.map((c) => h('td', { class: `${c.num ? 'num ' : ''}col-${c.key}`, 'data-label': c.label }, c.cell(flow))));
}

/** The header row of a flows table; with `onSort`, each header is a button sorting by it. */
export function flowHead(table, onSort = null, sorted = null) {
  const row = table.tHead.rows[0];
  replaceChildren(row, FLOW_COLUMNS.map((c) => {
    const ariaSort = sorted?.key === c.key ? (sorted.dir > 0 ? 'ascending' : 'descending') : null;
    const th = h('th', { scope: 'col', class: c.num ? 'num' : null, 'aria-sort': ariaSort, title: c.title });
    if (!onSort) {
      th.append(c.label);
      return th;
    }
    const arrow = ariaSort === 'ascending' ? ' ▲' : ariaSort === 'descending' ? ' ▼' : '';
    const button = h('button', { type: 'button', class: 'sort', 'data-sort': c.key }, c.label, arrow);
    button.addEventListener('click', () => onSort(c.key));
    th.append(button);
    return th;
  }));
}

const state = {
  filters: {}, // the query of the page shown
  cursor: null, // this page's cursor (null: the newest, none listed yet)
  previous: [], // the cursors of the newer pages, for "Newer"
  next: null,
  flows: [], // this page, as the API listed it
  sort: null, // {key, dir: 1 ascending | -1 descending}; null: as listed (newest first)
  generation: 0,
};

/** Wires the filters, the sort buttons and the pager. */
export function initFlows() {
  const form = byId('flow-filters');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const hash = flowsHash(readFilters());
    // The same filters again set no new hash, so no hashchange: asking
    // again is a refresh, as flows keep being written.
    if (location.hash === hash) showFlows(readFilters());
    else location.hash = hash;
  });
  form.addEventListener('reset', () => setTimeout(() => { location.hash = flowsHash({}); }));
  byId('flows-older').addEventListener('click', () => {
    if (state.next == null) return;
    state.previous.push(state.cursor);
    load(state.next);
  });
  byId('flows-newer').addEventListener('click', () => {
    if (state.previous.length === 0) return;
    load(state.previous.pop());
  });
  flowHead(byId('flows'), sortBy, state.sort);
}

/** Shows the newest page for `params` (the fragment's filters). */
export function showFlows(params) {
  const filters = {};
  for (const [name, id] of Object.entries(FIELDS)) {
    byId(id).value = params[name] ?? '';
    if (params[name]) filters[name] = params[name];
  }
  state.filters = filters;
  state.previous = [];
  return load(null);
}

async function load(cursor) {
  const generation = ++state.generation;
  showErrors(null);
  try {
    const page = await getJson('/api/flows', { ...state.filters, limit: PAGE_SIZE, cursor });
    if (generation !== state.generation) return;
    // The newest page is pinned to the flows it showed (the cursor is an
    // exclusive id bound): flows keep being written, and "Newer" must bring
    // back this page, not a newer one. Submitting the filters again is the
    // refresh.
    state.cursor = cursor ?? (page.flows.length ? Math.max(...page.flows.map((f) => f.id)) + 1 : null);
    state.next = page.next ?? null;
    state.flows = page.flows;
  } catch (error) {
    if (generation !== state.generation) return;
    state.flows = [];
    state.next = null;
    showErrors(error);
  }
  render();
}

function sortBy(key) {
  const same = state.sort?.key === key;
  // Numbers and times sort largest first on the first click: what one looks for.
  const column = FLOW_COLUMNS.find((c) => c.key === key);
  const first = column.num || key === 'start' ? -1 : 1;
  state.sort = { key, dir: same ? -state.sort.dir : first };
  render();
}

function sorted() {
  if (!state.sort) return state.flows;
  const { key, dir } = state.sort;
  const value = FLOW_COLUMNS.find((c) => c.key === key).sort;
  return [...state.flows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const order = typeof x === 'number' && typeof y === 'number'
      ? x - y
      : String(x).localeCompare(String(y), undefined, { numeric: true });
    return dir * order || b.id - a.id;
  });
}

function render() {
  flowHead(byId('flows'), sortBy, state.sort);
  replaceChildren(byId('flows').tBodies[0], sorted().map(flowRow));
  byId('flows-empty').hidden = state.flows.length > 0 || !byId('flow-filters-error').hidden;
  byId('flows-older').disabled = state.next == null;
  byId('flows-newer').disabled = state.previous.length === 0;
  const page = state.previous.length + 1;
  byId('flows-summary').textContent = state.flows.length === 0 ? ''
    : `page ${page} · ${state.flows.length} flows${state.next == null ? '' : ', older ones on the next pages'}`;
}

/** The form's filters, non-empty ones only. */
function readFilters() {
  const filters = {};
  for (const [name, id] of Object.entries(FIELDS)) {
    const value = byId(id).value.trim();
    if (value) filters[name] = value;
  }
  return filters;
}

/** A 400 goes next to the filter it names; anything else above the table. */
function showErrors(error) {
  for (const [name, id] of Object.entries(FIELDS)) {
    const message = error instanceof ApiError && error.parameter === name ? error.message : '';
    byId(`flow-error-${name}`).textContent = message;
    if (message) byId(id).setAttribute('aria-invalid', 'true');
    else byId(id).removeAttribute('aria-invalid');
  }
  const general = byId('flow-filters-error');
  const named = error instanceof ApiError && error.parameter in FIELDS;
  general.hidden = error == null || named;
  general.textContent = error == null || named ? ''
    : error instanceof ApiError ? `The agent refused the query: ${error.message}` : 'Cannot reach the agent to list flows.';
}
