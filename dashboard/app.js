// nta dashboard: wires the modules under js/ together.
//
// Startup: take the token from the URL, show the theme, load stats, charts
// and alerts, then follow the live stream (falling back to polling).

import { getJson, takeTokenFromUrl } from './js/api.js';
import { handleAlertEvent, initAlerts, refresh, reload, setFilter } from './js/alerts.js';
import { initCharts, pushStats, recolorCharts } from './js/charts.js';
import { initDetail, showDetail } from './js/detail.js';
import { startLive } from './js/live.js';
import { renderStatus, renderTops } from './js/overview.js';
import { initTheme } from './js/theme.js';

/** One stats object, from the stream or a poll, updates every live view. */
function onStats(stats) {
  renderStatus(stats);
  renderTops(stats, setFilter);
  pushStats(stats);
}

/**
 * `#alert=ID` (the link in notifications) opens that alert's detail. The
 * fragment stays in the address bar, so the link can be shared as is.
 */
async function openLinkedAlert() {
  const id = new URLSearchParams(location.hash.slice(1)).get('alert');
  if (!id || !/^[0-9]+$/.test(id)) return;
  try {
    showDetail(await getJson(`/api/alerts/${id}`), null);
  } catch {
    // A link to an alert since pruned or never stored: the list still shows.
  }
}

takeTokenFromUrl();
initTheme(recolorCharts);
initDetail();
initAlerts();
initCharts();
getJson('/api/stats').then(onStats, () => {});
reload();
startLive({ onStats, onAlertEvent: handleAlertEvent, refreshAlerts: refresh });
openLinkedAlert();
window.addEventListener('hashchange', openLinkedAlert);
