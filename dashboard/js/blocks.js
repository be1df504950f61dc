// The blocklist: the sources the sensor drops, what each has dropped, a
// form to block one by hand, an Unblock button per entry, and the recent
// automatic decisions that did not block (dry run, skipped).
//
// /api/blocks is polled every 2 s while the page is visible (the counters
// are kernel counters, not in the stream), and right after every change.
// Changes always need the admin token: sendJson shows the token form on a
// 401 and retries. Reasons and CIDRs come from incidents, so from
// attackers: text only, as everywhere.

import { ApiError, getJson, sendJson } from './api.js';
import { byId, flash, h, replaceChildren } from './dom.js';
import { formatBytes, formatCount, formatDuration, formatFullTime, formatRate, formatTime } from './format.js';

const POLL_MS = 2000;
/** Polling an agent without a blocklist, in case that changes (a restart). */
const POLL_UNAVAILABLE_MS = 30_000;
/** Shortest interval a drop rate is measured over. */
const MIN_RATE_MS = 1000;
/** Decisions listed; the agent keeps the last 100. */
const DECISIONS_SHOWN = 8;
/** Form fields by the `parameter` of a 400. */
const FIELDS = { cidr: 'block-cidr', ttl: 'block-ttl', reason: 'block-reason' };

const state = {
  rows: new Map(), // cidr → { row, cells, block }
  counters: new Map(), // cidr → { packets, at, rate }: a reading and the drop rate up to it
  unblocking: new Set(), // cidrs whose DELETE is in flight
  decisionsJson: null, // the decisions shown, to redraw only on change
  generation: 0, // bumped per change so a poll answered before it is dropped
  inFlight: null, // the running refresh
  unavailable: false, // the agent has no blocklist (503) or no such API (404)
  timer: null,
  announceClear: null,
  openAlert: (id) => { location.hash = `alert=${id}`; },
};

const tbody = () => byId('blocks-table').tBodies[0];

/**
 * Wires the form and the Unblock buttons and starts polling.
 * `openAlert(id)` opens an alert's detail (an automatic entry's link).
 */
export function initBlocks({ openAlert } = {}) {
  if (openAlert) state.openAlert = openAlert;
  byId('block-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submitBlock();
  });
  // A field's error goes once it is edited.
  byId('block-form').addEventListener('input', (event) => {
    const param = Object.keys(FIELDS).find((name) => FIELDS[name] === event.target.id);
    if (param) setFieldError(param, '');
  });
  tbody().addEventListener('click', (event) => {
    const button = event.target.closest('button[data-unblock]');
    if (button) unblock(button.dataset.unblock);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshBlocks();
    else clearTimeout(state.timer);
  });
  setInterval(tickTimes, 1000);
  refreshBlocks();
}

/** The kernel's totals of blocked packets and bytes, from a stats object. */
export function renderBlockedTotals(stats) {
  const packets = stats.totals?.blocked_packets;
  const bytes = stats.totals?.blocked_bytes;
  const dropped = byId('blocks-dropped');
  dropped.hidden = packets == null;
  if (packets == null) return;
  const text = `${formatRate(packets)} packet${packets === 1 ? '' : 's'}`
    + `${bytes == null ? '' : ` (${formatBytes(bytes)})`} dropped in all`;
  if (dropped.textContent !== text) dropped.textContent = text;
  dropped.title = `${formatCount(packets)} packets${bytes == null ? '' : `, ${formatCount(bytes)} bytes`} dropped since the sensor started`;
}

/**
 * Fetches /api/blocks and redraws; then polls again in 2 s while the page
 * is visible. Calls while one runs share it, except after a change, whose
 * answer must not be one read before the change.
 */
export function refreshBlocks() {
  if (state.inFlight) return state.inFlight;
  clearTimeout(state.timer);
  const generation = state.generation;
  state.inFlight = (async () => {
    try {
      const answer = await getJson('/api/blocks');
      if (generation === state.generation) render(answer);
    } catch (error) {
      if (generation === state.generation) showListError(error);
    } finally {
      state.inFlight = null;
      if (generation !== state.generation) {
        refreshBlocks();
      } else if (document.visibilityState === 'visible') {
        clearTimeout(state.timer);
        state.timer = setTimeout(refreshBlocks, state.unavailable ? POLL_UNAVAILABLE_MS : POLL_MS);
      }
    }
  })();
  return state.inFlight;
}

/** Re-reads the list after a change, dropping any answer read before it. */
function refreshAfterChange() {
  state.generation += 1;
  return state.inFlight ? state.inFlight.then(() => state.inFlight) : refreshBlocks();
}

// --- Rendering ---------------------------------------------------------

function render({ blocks = [], decisions = [], auto = null }) {
  setUnavailable(false);
  byId('blocks-error').hidden = true;
  renderSummary(auto);
  renderRows(blocks);
  renderDecisions(decisions);
}

function renderSummary(auto) {
  const mode = byId('blocks-mode');
  const policy = byId('blocks-policy');
  if (!auto) {
    mode.dataset.mode = 'unknown';
    mode.textContent = 'Automatic mitigation: unknown';
    policy.textContent = '';
    return;
  }
  // --dry-run decides without blocking, with or without --mitigate.
  const key = auto.dry_run ? 'dry-run' : auto.enabled ? 'on' : 'off';
  mode.dataset.mode = key;
  mode.textContent = {
    off: 'Automatic mitigation: off',
    on: 'Automatic mitigation: on',
    'dry-run': 'Automatic mitigation: dry run (nothing blocked)',
  }[key];
  const parts = [];
  if (key !== 'off') {
    parts.push(auto.ttl_secs ? `ttl ${formatDuration(auto.ttl_secs)}` : 'until removed');
  }
  if (key !== 'off' || auto.entries > 0) {
    parts.push(`${formatCount(auto.entries ?? 0)} of ${formatCount(auto.max_entries)} automatic entries`);
  }
  policy.textContent = parts.join(' · ');
}

/** Updates the rows in place: focus and in-flight buttons survive each poll. */
function renderRows(blocks) {
  const now = Date.now();
  const seen = new Set();
  for (const block of blocks) {
    seen.add(block.cidr);
    let entry = state.rows.get(block.cidr);
    if (!entry) {
      entry = newRow(block.cidr);
      state.rows.set(block.cidr, entry);
    }
    fillRow(entry, block, now);
  }
  for (const cidr of [...state.rows.keys()]) {
    if (!seen.has(cidr)) removeRow(cidr);
  }
  // In the agent's order (by address); nodes move only when it changed,
  // since moving the focused row would drop the focus.
  const wanted = blocks.map((block) => state.rows.get(block.cidr).row);
  const body = tbody();
  if (wanted.some((row, i) => body.rows[i] !== row)) wanted.forEach((row) => body.append(row));
  byId('blocks-empty').hidden = blocks.length > 0;
}

function newRow(cidr) {
  const cells = {
    cidr: h('td', { 'data-label': 'CIDR', class: 'mono cidr' }, cidr),
    origin: h('td', { 'data-label': 'Origin', class: 'origin' }),
    reason: h('td', { 'data-label': 'Reason', class: 'reason' }),
    created: h('td', { 'data-label': 'Created', class: 'created' }),
    expires: h('td', { 'data-label': 'Expires', class: 'expires' }),
    packets: h('td', { 'data-label': 'Packets dropped', class: 'num packets' }),
    bytes: h('td', { 'data-label': 'Bytes dropped', class: 'num bytes' }),
    action: h('td', { class: 'action' }),
  };
  const button = h('button', {
    type: 'button',
    class: 'btn btn-small',
    'data-unblock': cidr,
    'aria-label': `Unblock ${cidr}`,
  }, 'Unblock');
  cells.action.append(button);
  const row = h('tr', { 'data-cidr': cidr }, Object.values(cells));
  return { row, cells, button, block: null, originKey: null };
}

function fillRow(entry, block, now) {
  const { row, cells, button } = entry;
  entry.block = block;
  row.dataset.origin = block.origin;

  // The origin cell holds a link: rebuilt only when it changes.
  const originKey = `${block.origin}:${block.alert_id ?? ''}`;
  if (entry.originKey !== originKey) {
    entry.originKey = originKey;
    replaceChildren(cells.origin, originContent(block));
  }
  setText(cells.reason, block.reason ?? '');
  cells.reason.title = block.reason ?? '';
  if (entry.created !== block.created) {
    entry.created = block.created;
    replaceChildren(cells.created,
      h('time', { datetime: block.created, title: formatFullTime(block.created) }, formatTime(block.created)),
      h('span', { class: 'ago muted' }));
  }
  setText(cells.expires, expiresText(block, now));
  cells.expires.title = block.expires ? formatFullTime(block.expires) : 'Until removed';
  cells.expires.classList.toggle('muted', block.expires == null);
  fillCounters(entry, block, now);
  button.disabled = state.unblocking.has(block.cidr);
  tickCreated(entry, now);
}

function originContent(block) {
  if (block.origin !== 'auto') return h('span', { class: 'origin-tag' }, block.origin ?? '—');
  if (block.alert_id == null) return h('span', { class: 'origin-tag origin-auto' }, 'auto');
  const id = block.alert_id;
  const link = h('a', { href: `#alert=${id}`, class: 'alert-link', title: `Open alert #${id}` },
    'auto', h('span', { class: 'muted' }, ` · alert #${id}`));
  link.addEventListener('click', (event) => {
    // A plain click opens the detail here, even when the fragment already
    // names this alert (no hashchange then); other clicks open a tab.
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    state.openAlert(id);
  });
  return link;
}

/** Packets (exact, climbing during a flood), their rate, and bytes. */
function fillCounters(entry, block, now) {
  const { cells, row } = entry;
  // The rate over at least a second: a reading right after a change comes
  // a few milliseconds after the poll's and would read 0.
  const previous = state.counters.get(block.cidr);
  let rate = previous?.rate ?? null;
  if (!previous || block.packets < previous.packets) {
    rate = null; // new, or re-added with fresh counters
    state.counters.set(block.cidr, { packets: block.packets, at: now, rate });
  } else if (now - previous.at >= MIN_RATE_MS) {
    rate = (block.packets - previous.packets) / ((now - previous.at) / 1000);
    state.counters.set(block.cidr, { packets: block.packets, at: now, rate });
  }
  const climbing = rate != null && rate > 0;
  row.classList.toggle('climbing', climbing);
  if (!cells.packets.firstChild) {
    cells.packets.append(h('span', { class: 'count' }), h('span', { class: 'rate muted' }));
  }
  const [count, rateText] = cells.packets.children;
  setText(count, formatCount(block.packets));
  setText(rateText, climbing ? `+${formatRate(rate)}/s` : '');
  setText(cells.bytes, formatBytes(block.bytes));
  cells.bytes.title = `${formatCount(block.bytes)} bytes`;
}

/** "in 9m 12s", "never", or "expiring" once due (the agent lifts it within a tick). */
function expiresText(block, now) {
  if (block.expires == null) return 'never';
  const left = (Date.parse(block.expires) - now) / 1000;
  if (Number.isNaN(left)) return '—';
  return left >= 1 ? `in ${formatDuration(left)}` : 'expiring';
}

function tickCreated(entry, now) {
  const ago = entry.cells.created.querySelector('.ago');
  if (!ago) return;
  const secs = (now - Date.parse(entry.block.created)) / 1000;
  setText(ago, Number.isNaN(secs) ? '' : `${formatDuration(Math.max(0, secs))} ago`);
}

/** Countdowns and ages move with the clock between polls. */
function tickTimes() {
  const now = Date.now();
  for (const entry of state.rows.values()) {
    setText(entry.cells.expires, expiresText(entry.block, now));
    tickCreated(entry, now);
  }
}

function removeRow(cidr) {
  state.rows.get(cidr)?.row.remove();
  state.rows.delete(cidr);
  state.counters.delete(cidr);
}

const OUTCOMES = { would_block: 'would block', skipped: 'skipped' };

function renderDecisions(decisions) {
  const json = JSON.stringify(decisions);
  if (json === state.decisionsJson) return;
  state.decisionsJson = json;
  byId('blocks-decisions-block').hidden = decisions.length === 0;
  const shown = decisions.slice(0, DECISIONS_SHOWN);
  replaceChildren(byId('blocks-decisions'), shown.map((decision) => h('li', { 'data-outcome': decision.outcome },
    h('time', { datetime: decision.at, title: formatFullTime(decision.at), class: 'muted' }, formatTime(decision.at)),
    h('span', { class: `outcome outcome-${decision.outcome}` }, OUTCOMES[decision.outcome] ?? decision.outcome),
    h('span', { class: 'mono' }, decision.cidr),
    decision.alert_id == null ? null : alertLink(decision.alert_id),
    h('span', { class: 'decision-reason' }, decision.reason ?? ''),
  )));
  const more = decisions.length - shown.length;
  const note = byId('blocks-decisions-more');
  note.hidden = more <= 0;
  note.textContent = more > 0 ? `and ${more} earlier` : '';
}

function alertLink(id) {
  const link = h('a', { href: `#alert=${id}`, class: 'alert-link' }, `alert #${id}`);
  link.addEventListener('click', (event) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    state.openAlert(id);
  });
  return link;
}

function showListError(error) {
  const text = byId('blocks-error');
  text.hidden = false;
  // No XDP program (503), or an agent from before the blocklist (404):
  // nothing to show or change. Other failures leave the last list shown.
  const unavailable = error instanceof ApiError && (error.status === 503 || error.status === 404);
  setUnavailable(unavailable);
  if (unavailable) {
    text.textContent = error.status === 503
      ? `Blocking is unavailable: ${error.message}`
      : 'This agent has no blocklist.';
  } else {
    text.textContent = error instanceof ApiError
      ? `The agent could not list the blocks: ${error.message}`
      : 'Cannot reach the agent to list the blocks.';
  }
}

/** Hides the form and the table of an agent that cannot block. */
function setUnavailable(unavailable) {
  if (state.unavailable === unavailable) return;
  state.unavailable = unavailable;
  byId('block-form').hidden = unavailable;
  byId('blocks-table').hidden = unavailable;
  if (unavailable) {
    [...state.rows.keys()].forEach(removeRow);
    byId('blocks-empty').hidden = true;
    byId('blocks-decisions-block').hidden = true;
    state.decisionsJson = null;
    const mode = byId('blocks-mode');
    mode.dataset.mode = 'unknown';
    mode.textContent = 'Automatic mitigation: unavailable';
    byId('blocks-policy').textContent = '';
  }
}

// --- Changes -----------------------------------------------------------

async function submitBlock() {
  const cidr = byId('block-cidr').value.trim();
  const ttl = byId('block-ttl').value.trim();
  const reason = byId('block-reason').value.trim();
  clearFormErrors();
  if (!cidr) {
    setFieldError('cidr', 'Enter an address or a CIDR, like 198.51.100.7 or 198.51.100.0/24');
    byId('block-cidr').focus();
    return;
  }
  const body = { cidr };
  if (ttl) body.ttl = ttl;
  if (reason) body.reason = reason;
  const submit = byId('block-submit');
  submit.disabled = true;
  announce(`Blocking ${cidr}…`);
  try {
    const { status, body: answer } = await sendJson('POST', '/api/blocks', body);
    const block = answer?.block ?? { cidr };
    const until = block.expires ? `until ${formatTime(block.expires)}` : 'until removed';
    announce(`${status === 201 ? 'Blocked' : 'Updated the block of'} ${block.cidr} ${until}.`);
    byId('block-form').reset();
    await refreshAfterChange();
    const row = state.rows.get(block.cidr)?.row;
    if (row) flash(row);
  } catch (error) {
    showFormError(error);
  } finally {
    submit.disabled = false;
    if (!document.activeElement || document.activeElement === document.body) byId('block-cidr').focus();
  }
}

async function unblock(cidr) {
  if (state.unblocking.has(cidr)) return;
  const entry = state.rows.get(cidr);
  const hadFocus = entry?.button === document.activeElement;
  state.unblocking.add(cidr);
  if (entry) entry.button.disabled = true;
  announce(`Unblocking ${cidr}…`);
  let removed = false;
  try {
    await sendJson('DELETE', `/api/blocks/${encodeURIComponent(cidr)}`);
    announce(`Unblocked ${cidr}.`);
    removed = true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      announce(`${cidr} was no longer blocked.`);
      removed = true;
    } else if (error instanceof ApiError && error.cancelled) {
      announce(`${cidr} is still blocked: unblocking needs the API token.`);
    } else {
      announce(`Could not unblock ${cidr}: ${error instanceof ApiError ? error.message : 'cannot reach the agent'}.`);
    }
  } finally {
    state.unblocking.delete(cidr);
  }
  const lostFocus = hadFocus || !document.activeElement || document.activeElement === document.body;
  // Focus moves to a neighbour's button before the row goes.
  const next = removed && lostFocus ? neighbourButton(cidr) : null;
  if (removed) removeRow(cidr);
  else if (state.rows.get(cidr)) state.rows.get(cidr).button.disabled = false;
  byId('blocks-empty').hidden = state.rows.size > 0;
  if (lostFocus) (next ?? (removed ? byId('block-cidr') : state.rows.get(cidr)?.button))?.focus();
  await refreshAfterChange();
}

function neighbourButton(cidr) {
  const row = state.rows.get(cidr)?.row;
  const other = row?.nextElementSibling ?? row?.previousElementSibling;
  return other?.querySelector('button[data-unblock]') ?? null;
}

/** A 400 goes next to the field it names; anything else under the form. */
function showFormError(error) {
  if (error instanceof ApiError && error.status === 400 && error.parameter in FIELDS) {
    setFieldError(error.parameter, error.message);
    byId(FIELDS[error.parameter]).focus();
    announce(`Not blocked: ${error.message}`);
    return;
  }
  const general = byId('block-form-error');
  general.hidden = false;
  if (error instanceof ApiError && error.cancelled) {
    general.textContent = 'Not blocked: blocking needs the API token.';
  } else if (error instanceof ApiError) {
    general.textContent = `The agent refused: ${error.message}`;
  } else {
    general.textContent = 'Cannot reach the agent.';
  }
  announce(general.textContent);
}

function setFieldError(param, message) {
  byId(`block-error-${param}`).textContent = message;
  if (message) byId(FIELDS[param]).setAttribute('aria-invalid', 'true');
  else byId(FIELDS[param]).removeAttribute('aria-invalid');
}

function clearFormErrors() {
  Object.keys(FIELDS).forEach((param) => setFieldError(param, ''));
  const general = byId('block-form-error');
  general.hidden = true;
  general.textContent = '';
}

/** Tells screen readers (and shows) what a change did; cleared after a while. */
function announce(text) {
  const region = byId('blocks-announce');
  region.textContent = text;
  clearTimeout(state.announceClear);
  state.announceClear = setTimeout(() => { region.textContent = ''; }, 15_000);
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
