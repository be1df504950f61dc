// Live updates: the SSE stream when it works, polling when it does not.
//
// The stream is reconnected here rather than by EventSource itself, so the
// back-off is ours and a token entered later is used. After ~5 s without a
// stream the dashboard polls /api/stats and /api/alerts, and keeps trying
// the stream. Whenever the stream (re)opens, alerts are re-fetched: events
// sent while it was down are gone.

import { getJson, onTokenChange, streamUrl } from './api.js';
import { byId } from './dom.js';

const FALLBACK_AFTER_MS = 5000;
const STATS_POLL_MS = 1000;
const ALERTS_POLL_MS = 2000;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;
// This long without a message (or four tick intervals, for agents with a
// long --interval) means a stalled connection, e.g. after the laptop slept.
const SILENCE_LIMIT_MS = 15_000;
const SILENT_TICKS = 4;

const CONN_TEXT = {
  live: 'Live',
  polling: 'Polling (stream down)',
  connecting: 'Connecting…',
  offline: 'Offline',
};

/**
 * Starts the stream. Handlers: `onStats(stats)`, `onAlertEvent({event, alert})`,
 * `refreshAlerts()` (after a reconnect, a resync, and while polling).
 */
export function startLive(handlers) {
  const live = {
    handlers,
    source: null,
    retryMs: RETRY_FIRST_MS,
    retryTimer: null,
    fallbackTimer: null,
    watchdog: null,
    lastStatsAt: null, // to learn the agent's tick interval
    tickMs: 1000,
    polling: null, // token of the running poll loops; null when not polling
  };
  onTokenChange(() => reconnect(live));
  connect(live);
  waitThenPoll(live);
}

function connect(live) {
  const source = new EventSource(streamUrl());
  live.source = source;
  source.addEventListener('open', () => opened(live));
  source.addEventListener('error', () => failed(live));
  source.addEventListener('stats', (event) => {
    const now = Date.now();
    if (live.lastStatsAt != null) live.tickMs = now - live.lastStatsAt;
    live.lastStatsAt = now;
    heard(live);
    withJson(event, live.handlers.onStats);
  });
  source.addEventListener('alert', (event) => {
    heard(live);
    withJson(event, live.handlers.onAlertEvent);
  });
  source.addEventListener('resync', () => {
    heard(live);
    live.handlers.refreshAlerts().catch(() => {});
  });
}

function opened(live) {
  live.retryMs = RETRY_FIRST_MS;
  clearTimeout(live.fallbackTimer);
  live.polling = null;
  setConn('live');
  heard(live);
  live.handlers.refreshAlerts().catch(() => {});
}

function failed(live) {
  const wasLive = byId('conn').dataset.state === 'live';
  closeStream(live);
  if (wasLive) {
    setConn('connecting');
    waitThenPoll(live);
  }
  clearTimeout(live.retryTimer);
  live.retryTimer = setTimeout(() => connect(live), live.retryMs);
  live.retryMs = Math.min(live.retryMs * 2, RETRY_MAX_MS);
}

/** Closes the stream and opens it again now (a new token was entered). */
function reconnect(live) {
  clearTimeout(live.retryTimer);
  closeStream(live);
  live.retryMs = RETRY_FIRST_MS;
  connect(live);
}

function closeStream(live) {
  clearTimeout(live.watchdog);
  live.lastStatsAt = null;
  live.source?.close();
  live.source = null;
}

/** Falls back to polling if the stream is not open within a few seconds. */
function waitThenPoll(live) {
  clearTimeout(live.fallbackTimer);
  live.fallbackTimer = setTimeout(() => {
    if (live.source?.readyState !== EventSource.OPEN) startPolling(live);
  }, FALLBACK_AFTER_MS);
}

/** Any message proves the stream alive; a long silence counts as a failure. */
function heard(live) {
  clearTimeout(live.watchdog);
  live.watchdog = setTimeout(() => failed(live), Math.max(SILENCE_LIMIT_MS, SILENT_TICKS * live.tickMs));
}

function startPolling(live) {
  if (live.polling) return;
  const token = {};
  live.polling = token;
  const running = () => live.polling === token;
  pollEvery(STATS_POLL_MS, running, async () => live.handlers.onStats(await getJson('/api/stats')));
  pollEvery(ALERTS_POLL_MS, running, () => live.handlers.refreshAlerts());
}

/** Runs `task` every `ms` while `running()`, one at a time; its success sets the state. */
async function pollEvery(ms, running, task) {
  while (running()) {
    let ok = true;
    try {
      await task();
    } catch {
      ok = false;
    }
    if (!running()) return;
    setConn(ok ? 'polling' : 'offline');
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

function withJson(event, handler) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    console.warn('nta: ignoring a stream message that is not JSON', event.type);
    return;
  }
  handler(data);
}

function setConn(state) {
  const conn = byId('conn');
  conn.dataset.state = state;
  conn.textContent = CONN_TEXT[state];
}
