// The header's status strip and the top sources / top SYN ports tables,
// redrawn from each stats tick.

import { byId, h, replaceChildren } from './dom.js';
import { formatBytes, formatCount, formatDuration, formatRate } from './format.js';
import { hostLink } from './views.js';

const XDP_MODES = { native: 'native', skb: 'generic (skb)' };

/** Fills the status strip from a stats object. */
export function renderStatus(stats) {
  byId('stat-iface').textContent = stats.iface ?? '—';
  byId('stat-xdp').textContent = XDP_MODES[stats.xdp_mode] ?? stats.xdp_mode ?? '—';
  byId('stat-uptime').textContent = formatDuration(stats.uptime_secs);
  byId('stat-open').textContent = formatCount(stats.open_incidents);
  byId('stat-samples-lost').textContent = formatCount(stats.samples_lost);
  byId('stat-events-lost').textContent = formatCount(stats.events_lost);
  byId('stat-store').textContent = formatBytes(stats.store_bytes);
  markNonZero('stat-open', stats.open_incidents);
  markNonZero('stat-samples-lost', stats.samples_lost);
  markNonZero('stat-events-lost', stats.events_lost);

  // Only agents with notifiers report failures; others show nothing.
  const failed = stats.notifications_failed;
  byId('stat-notify-item').hidden = failed == null;
  if (failed != null) {
    byId('stat-notify-failed').textContent = formatCount(failed);
    markNonZero('stat-notify-failed', failed);
  }
}

/** Non-zero losses and incidents stand out; zero stays calm. */
function markNonZero(id, value) {
  byId(id).parentElement.classList.toggle('attention', Number(value) > 0);
}

/**
 * Fills the top sources and top SYN ports tables. An address links to its
 * host view; `onPick(param, value)` runs when an address or a port is
 * chosen as an alert filter.
 */
export function renderTops(stats, onPick) {
  renderTopTable(
    byId('top-sources'),
    stats.top_sources ?? [],
    (row) => [
      hostLink(row.addr),
      ' ',
      pickButton('alerts', `Show alerts from ${row.addr}`, () => onPick('src', row.addr), `src ${row.addr}`),
    ],
    (row) => row.packets_per_sec,
    'No traffic',
  );
  renderTopTable(
    byId('top-ports'),
    stats.top_syn_ports ?? [],
    (row) => pickButton(String(row.port), `Show alerts for destination port ${row.port}`, () => onPick('dst_port', String(row.port)), `port ${row.port}`),
    (row) => row.syns_per_sec,
    'No SYNs',
  );
}

function renderTopTable(table, rows, keyCell, rateOf, emptyText) {
  const body = table.tBodies[0];
  // The table is rebuilt every tick: keep keyboard focus on the same entry.
  const active = document.activeElement;
  const focused = body.contains(active) ? (active.dataset.focusKey ?? active.dataset.host ?? null) : null;
  if (rows.length === 0) {
    replaceChildren(body, h('tr', {}, h('td', { colspan: 3, class: 'muted empty-cell' }, emptyText)));
  } else {
    replaceChildren(body, rows.map((row) => h('tr', {},
      h('td', { class: 'key' }, keyCell(row)),
      h('td', { class: 'num' }, formatRate(rateOf(row))),
      h('td', { class: 'share-col' }, shareCell(row.share)),
    )));
  }
  if (focused != null) {
    [...body.querySelectorAll('a, button')]
      .find((node) => (node.dataset.focusKey ?? node.dataset.host) === focused)?.focus();
  }
}

function pickButton(label, description, onClick, focusKey) {
  const button = h('button', {
    type: 'button', class: 'linklike', title: description, 'aria-label': description, 'data-focus-key': focusKey,
  }, label);
  button.addEventListener('click', onClick);
  return button;
}

/** "42%" with a bar whose width is the share (set through CSSOM, allowed by the CSP). */
function shareCell(share) {
  const pct = Math.max(0, Math.min(1, Number(share) || 0)) * 100;
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = `${pct}%`;
  return h('span', { class: 'share' },
    h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'pct' }, `${pct < 10 && pct > 0 ? pct.toFixed(1) : Math.round(pct)}%`));
}
