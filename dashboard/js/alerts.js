// The alert feed: a filtered table, newest first, kept current by live
// events and by re-fetching /api/alerts whenever events may have been missed.

import { ApiError, getJson } from './api.js';
import { byId, flash, h, replaceChildren } from './dom.js';
import { alertDuration, formatFullTime, formatRate, formatTime, kindLabel } from './format.js';
import { refreshDetail, showDetail } from './detail.js';
import { alertEndpoints } from './views.js';

/** Filter parameter → its form control. */
const FIELDS = {
  kind: 'filter-kind',
  state: 'filter-state',
  src: 'filter-src',
  dst_port: 'filter-dst-port',
  since: 'filter-since',
  until: 'filter-until',
};

const state = {
  alerts: new Map(), // id → alert, for the rows shown
  rows: new Map(), // id → <tr>
  next: null, // cursor of the next page, null when all are shown
  params: {}, // the query of the rows shown
  invalid: false, // the filters were refused (by the form or a 400): nothing to refresh
  generation: 0, // bumped per new query so a late answer to an old one is dropped
  holds: 0, // requests in flight; live events wait for them
  pending: [], // live events received meanwhile
  newCount: 0, // alerts opened since the last announcement
  announceTimer: null,
  announceClear: null,
};

const tbody = () => byId('alerts').tBodies[0];

/** Wires the filters, the table and "Load more". */
export function initAlerts() {
  const form = byId('filters');
  let typing = null;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    reloadIfChanged();
  });
  form.addEventListener('change', reloadIfChanged);
  // Text fields re-query shortly after typing stops, not on every key.
  form.addEventListener('input', (event) => {
    if (event.target.tagName !== 'INPUT' || event.target.type === 'datetime-local') return;
    clearTimeout(typing);
    typing = setTimeout(reloadIfChanged, 500);
  });
  // "reset" fires before the fields are cleared.
  form.addEventListener('reset', () => setTimeout(reloadIfChanged));
  byId('load-more').addEventListener('click', loadMore);

  const body = tbody();
  body.addEventListener('click', (event) => {
    // An address link opens its host view, not the alert.
    if (event.target.closest('a')) return;
    const row = event.target.closest('tr[data-alert-id]');
    if (row) openRow(row);
  });
  body.addEventListener('keydown', onRowKey);
  setInterval(tickDurations, 1000);
}

/** Sets one filter from elsewhere (top sources, top ports) and re-queries. */
export function setFilter(param, value) {
  byId(FIELDS[param]).value = value;
  reloadIfChanged();
  byId('filters').scrollIntoView({ block: 'nearest' });
}

/** Queries the first page for the current filters, replacing the table. */
export function reload() {
  const { params, errors } = readFilters();
  const generation = ++state.generation;
  state.params = params;
  if (Object.keys(errors).length > 0) {
    state.invalid = true;
    clearTable();
    showFieldErrors(errors);
    updateFooter();
    return Promise.resolve();
  }
  return holdingEvents(async () => {
    try {
      const page = await getJson('/api/alerts', params);
      if (generation !== state.generation) return;
      clearTable();
      showQueryError(null);
      state.next = page.next ?? null;
      page.alerts.forEach((alert) => upsert(alert));
    } catch (error) {
      if (generation !== state.generation) return;
      clearTable();
      showQueryError(error);
    }
    updateFooter();
  });
}

/**
 * Merges the first page for the current filters into the table, after a
 * reconnect, a resync or while polling: rows already shown and older pages
 * stay, rows that no longer match go. Falls back to a full reload when more
 * than a page of alerts was missed.
 */
export function refresh() {
  if (state.invalid) return Promise.resolve();
  const generation = state.generation;
  return holdingEvents(async () => {
    const page = await getJson('/api/alerts', state.params);
    if (generation !== state.generation) return;
    const newestShown = Math.max(-1, ...state.alerts.keys());
    // The page covers every id down to its `next`: a filter that matches
    // rarely may stop the store's scan early, with a short or empty page.
    if (page.next != null && page.next > newestShown && state.alerts.size > 0) {
      await reload();
      return;
    }
    // Alerts in the page's id range that it does not list no longer match.
    const listed = new Set(page.alerts.map((alert) => alert.id));
    const lowest = page.next == null ? -Infinity : page.next;
    for (const id of [...state.alerts.keys()]) {
      if (id >= lowest && !listed.has(id)) removeRow(id);
    }
    if (state.alerts.size === 0) state.next = page.next ?? null;
    for (const alert of page.alerts) {
      const known = state.alerts.get(alert.id);
      if (!known || JSON.stringify(known) !== JSON.stringify(alert)) upsert(alert, { highlight: known != null });
    }
    showQueryError(null); // the agent answers again
    updateFooter();
  });
}

/** Takes one `alert` event of the stream: `{"event": ..., "alert": ...}`. */
export function handleAlertEvent(event) {
  if (state.holds > 0) state.pending.push(event);
  else applyEvent(event);
}

function applyEvent({ event, alert }) {
  const known = state.alerts.get(alert.id);
  if (known && isOlder(alert, known)) return;
  const shown = upsert(alert, { highlight: true });
  if (shown && event === 'opened' && !known) announceNew();
  updateFooter();
}

/** Whether `incoming` is an older version of `known` (an event overtaken by a fetch). */
function isOlder(incoming, known) {
  if (known.state === 'closed' && incoming.state === 'open') return true;
  return Date.parse(incoming.last_seen) < Date.parse(known.last_seen);
}

/** Runs `task` with live events held back, then applies them in order. */
async function holdingEvents(task) {
  state.holds += 1;
  try {
    return await task();
  } finally {
    state.holds -= 1;
    if (state.holds === 0) state.pending.splice(0).forEach(applyEvent);
  }
}

async function loadMore() {
  if (state.next == null) return;
  const generation = state.generation;
  const button = byId('load-more');
  button.disabled = true;
  await holdingEvents(async () => {
    try {
      const page = await getJson('/api/alerts', { ...state.params, cursor: state.next });
      if (generation !== state.generation) return;
      // The new boundary first: upsert() leaves out alerts older than it.
      state.next = page.next ?? null;
      page.alerts.forEach((alert) => upsert(alert));
      showQueryError(null);
    } catch (error) {
      showQueryError(error);
    }
  });
  button.disabled = false;
  updateFooter();
}

/**
 * Shows `alert` if it matches the filters and falls within the pages
 * loaded (older ones come with "Load more"); removes its row if it no
 * longer matches. Returns whether it is shown.
 */
function upsert(alert, { highlight = false } = {}) {
  const known = state.rows.get(alert.id);
  if (!matchesFilters(alert, state.params)) {
    if (known) removeRow(alert.id);
    return false;
  }
  if (!known && state.next != null && alert.id < state.next) return false;
  state.alerts.set(alert.id, alert);
  const row = known ?? h('tr', { 'data-alert-id': alert.id, tabindex: 0 });
  fillRow(row, alert);
  if (!known) {
    insertRow(row, alert.id);
    state.rows.set(alert.id, row);
  }
  if (highlight) flash(row);
  refreshDetail(alert);
  return true;
}

/** The server's filter semantics (store::AlertQuery::matches), for live events. */
function matchesFilters(alert, params) {
  if (params.kind && alert.kind !== params.kind) return false;
  if (params.state && alert.state !== params.state) return false;
  if (params.src && (alert.src ?? '').toLowerCase() !== params.src.toLowerCase()) return false;
  if (params.dst_port) {
    const port = Number(params.dst_port);
    const inEvidence = (alert.evidence?.top_ports ?? []).some((p) => p.value === port);
    if (alert.dst_port !== port && !inEvidence) return false;
  }
  // An alert matches a period when its active time overlaps it.
  if (params.since && Date.parse(alert.last_seen) < Date.parse(params.since)) return false;
  if (params.until && Date.parse(alert.first_seen) > Date.parse(params.until)) return false;
  return true;
}

function fillRow(row, alert) {
  row.dataset.kind = alert.kind;
  row.dataset.state = alert.state;
  row.dataset.severity = alert.severity;
  const unit = alert.evidence?.unit ?? '';
  replaceChildren(row,
    h('td', { 'data-label': 'Time', class: 'time' },
      h('time', { datetime: alert.first_seen, title: formatFullTime(alert.first_seen) }, formatTime(alert.first_seen))),
    h('td', { 'data-label': 'Severity' }, h('span', { class: `badge sev-${alert.severity}` }, alert.severity)),
    h('td', { 'data-label': 'Kind', class: 'kind' }, kindLabel(alert.kind)),
    h('td', { 'data-label': 'Source → destination', class: 'mono endpoints' }, alertEndpoints(alert)),
    h('td', { 'data-label': 'State' }, h('span', { class: `state state-${alert.state}` }, alert.state)),
    h('td', { 'data-label': 'Duration', class: 'num duration' }, alertDuration(alert)),
    h('td', { 'data-label': 'Peak', class: 'num peak' }, `${formatRate(alert.peak_rate)} ${unit}`.trim()),
    h('td', { 'data-label': 'Message', class: 'message', title: alert.message }, alert.message),
  );
}

/** Keeps rows in descending id order (ids increase with the opening time). */
function insertRow(row, id) {
  const before = [...tbody().rows].find((other) => Number(other.dataset.alertId) < id);
  tbody().insertBefore(row, before ?? null);
}

function removeRow(id) {
  state.rows.get(id)?.remove();
  state.rows.delete(id);
  state.alerts.delete(id);
}

function clearTable() {
  tbody().replaceChildren();
  state.rows.clear();
  state.alerts.clear();
  state.next = null;
}

/** Open alerts' durations grow with the clock. */
function tickDurations() {
  const now = Date.now();
  for (const [id, alert] of state.alerts) {
    if (alert.state === 'open') state.rows.get(id).querySelector('.duration').textContent = alertDuration(alert, now);
  }
}

function updateFooter() {
  byId('load-more').hidden = state.next == null;
  byId('alerts-empty').hidden = state.alerts.size > 0 || !byId('filters-error').hidden;
  const open = [...state.alerts.values()].filter((alert) => alert.state === 'open').length;
  byId('alerts-summary').textContent = state.alerts.size === 0 ? ''
    : `${state.alerts.size}${state.next == null ? '' : '+'} shown · ${open} open`;
}

/** Counts new alerts and tells screen readers once per burst, not per alert. */
function announceNew() {
  state.newCount += 1;
  if (state.announceTimer) return;
  state.announceTimer = setTimeout(() => {
    const n = state.newCount;
    const announce = byId('alerts-announce');
    announce.textContent = `${n} new alert${n === 1 ? '' : 's'}`;
    state.newCount = 0;
    state.announceTimer = null;
    // The note is about now; later it would mislead.
    clearTimeout(state.announceClear);
    state.announceClear = setTimeout(() => { announce.textContent = ''; }, 30_000);
  }, 1000);
}

function openRow(row) {
  const alert = state.alerts.get(Number(row.dataset.alertId));
  if (alert) showDetail(alert, row);
}

/** Enter (or Space) opens a row; arrows move between rows. */
function onRowKey(event) {
  const row = event.target.closest('tr[data-alert-id]');
  if (!row || event.target !== row) return;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    openRow(row);
  } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    (event.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling)?.focus();
  }
}

// --- Filters -----------------------------------------------------------

/** Re-queries unless the filters are those of the rows shown (and they were accepted). */
function reloadIfChanged() {
  const { params } = readFilters();
  const failed = state.invalid || !byId('filters-error').hidden;
  if (!failed && JSON.stringify(params) === JSON.stringify(state.params)) return;
  reload();
}

/** The query for the form: non-empty fields, times as RFC 3339; plus what is unreadable. */
function readFilters() {
  const params = {};
  const errors = {};
  for (const [param, id] of Object.entries(FIELDS)) {
    const input = byId(id);
    const value = input.value.trim();
    if (input.validity?.badInput) errors[param] = 'Not a valid value';
    if (!value) continue;
    if (param === 'since' || param === 'until') {
      // datetime-local is local time without a zone; the API wants UTC.
      const date = new Date(value);
      if (Number.isNaN(date.getTime())) errors[param] = 'Not a valid date and time';
      else params[param] = date.toISOString();
    } else {
      params[param] = value;
    }
  }
  return { params, errors };
}

/** Marks each field named in `errors` (parameter → message) and clears the others. */
function showFieldErrors(errors) {
  for (const [param, id] of Object.entries(FIELDS)) {
    const message = errors[param] ?? '';
    byId(`error-${param}`).textContent = message;
    if (message) byId(id).setAttribute('aria-invalid', 'true');
    else byId(id).removeAttribute('aria-invalid');
  }
  state.invalid = Object.keys(errors).length > 0;
  const general = byId('filters-error');
  general.hidden = true;
  general.textContent = '';
}

/** A 400 goes next to the filter it names; anything else above the table. */
function showQueryError(error) {
  if (error == null) {
    showFieldErrors({});
    return;
  }
  if (error instanceof ApiError && error.status === 400 && error.parameter in FIELDS) {
    showFieldErrors({ [error.parameter]: error.message });
    return;
  }
  showFieldErrors({});
  state.invalid = error instanceof ApiError && error.status === 400;
  const general = byId('filters-error');
  general.hidden = false;
  general.textContent = error instanceof ApiError
    ? `The agent refused the query: ${error.message}`
    : 'Cannot reach the agent to list alerts.';
}
