// nta dashboard: wires the modules under js/ together.
//
// Startup: take the token from the URL, show the theme, load stats, charts,
// blocks and alerts, then follow the live stream (falling back to polling),
// and show the view the URL fragment names.

import { getJson, takeTokenFromUrl } from './js/api.js';
import { handleAlertEvent, initAlerts, refresh, reload, setFilter } from './js/alerts.js';
import { initBlocks, renderBlockedTotals } from './js/blocks.js';
import { initCharts, pushStats, recolorCharts } from './js/charts.js';
import { initDetail, showDetail } from './js/detail.js';
import { initFlows, showFlows } from './js/flows.js';
import { hideHosts, initHosts, showHosts } from './js/hosts.js';
import { startLive } from './js/live.js';
import { renderStatus, renderTops } from './js/overview.js';
import { initTheme } from './js/theme.js';
import { routeOf, showView } from './js/views.js';

/** One stats object, from the stream or a poll, updates every live view. */
function onStats(stats) {
  renderStatus(stats);
  renderTops(stats, setFilter);
  renderBlockedTotals(stats);
  pushStats(stats);
}

// The link in the page that opened an alert, to focus again on closing it.
let linkOrigin = null;

/**
 * `#alert=ID` (the link in notifications) opens that alert's detail. The
 * fragment stays in the address bar, so the link can be shared as is.
 */
async function openLinkedAlert() {
  const returnFocus = linkOrigin;
  linkOrigin = null;
  const id = new URLSearchParams(location.hash.slice(1)).get('alert');
  if (!id || !/^[0-9]+$/.test(id)) return;
  try {
    showDetail(await getJson(`/api/alerts/${id}`), returnFocus);
  } catch {
    // A link to an alert since pruned or never stored: the list still shows.
  }
}

/** Opens alert `id`, also when the fragment names it already (no hashchange then). */
function openAlert(id) {
  linkOrigin = document.activeElement;
  const hash = `alert=${id}`;
  if (location.hash.slice(1) === hash) openLinkedAlert();
  else location.hash = hash;
}

/**
 * Shows the view the fragment names (`#host=IP`, `#flows&port=80`, ...);
 * `#alert=ID` opens the alert over the view already shown.
 */
function route() {
  const target = routeOf(location.hash);
  if (target == null) return;
  const detail = document.getElementById('alert-detail');
  if (detail.open) detail.close();
  showView(target.view);
  if (target.view === 'hosts') showHosts(target.params);
  else hideHosts();
  if (target.view === 'flows') showFlows(target.params);
}

takeTokenFromUrl();
initTheme(recolorCharts);
initDetail();
initAlerts();
initCharts();
initBlocks({ openAlert });
initHosts();
initFlows();
getJson('/api/stats').then(onStats, () => {});
reload();
startLive({ onStats, onAlertEvent: handleAlertEvent, refreshAlerts: refresh });
route();
openLinkedAlert();
window.addEventListener('hashchange', () => {
  route();
  openLinkedAlert();
});
