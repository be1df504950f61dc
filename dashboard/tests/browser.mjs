// Drives headless Chromium through nta's dashboard for the end-to-end test
// in nta-agent/tests/dashboard.rs, which starts the agent, runs this script
// in the victim's network namespace, and attacks once it prints `ready`.
//
//   node browser.mjs --url http://127.0.0.1:3000/ --out DIR [--token T]
//                    [--scenario attack|unblock] [--cidr CIDR]
//                    [--attacker IP --victim IP]
//                    [--chromium /usr/bin/chromium] [--timeout-ms 60000]
//
// Prints `ready` once the page is live on the stream, then one line per
// check passed, and `result {json}` at the end; exits 1 with `error: ...`
// on the first check that fails. Screenshots go to DIR.
//
// Scenarios: `attack` (default) follows a scan and a hostile request and,
// given the attacker's and the victim's addresses, opens the attacker's
// host view from an alert row and looks for the request's flow there and
// in the flows view (filtered, sorted, paged); `unblock` waits for CIDR in
// the blocks panel, checks its drop counter climbs, and presses its
// Unblock button.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    out: { type: 'string' },
    token: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    scenario: { type: 'string', default: 'attack' },
    cidr: { type: 'string' },
    attacker: { type: 'string' },
    victim: { type: 'string' },
    'timeout-ms': { type: 'string', default: '60000' },
  },
});
if (!args.url || !args.out) {
  console.error('usage: node browser.mjs --url URL --out DIR [--token T]');
  process.exit(2);
}
const timeout = Number(args['timeout-ms']);
mkdirSync(args.out, { recursive: true });

// The flags this machine's closed network needs: without the
// background-networking ones Chromium keeps trying to reach Google.
const browser = await chromium.launch({
  executablePath: args.chromium,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout,
});

const problems = [];   // console errors, page errors, CSP violations

// Chromium cancels the requests in flight whenever the namespace's links
// or addresses change (it watches netlink), which the test namespaces'
// veths and their XDP programs do while it runs: a request failed that
// way is the lab's, not the dashboard's, which polls again anyway.
const LAB_NETWORK_CHANGE = 'Failed to load resource: net::ERR_NETWORK_CHANGED';
const dialogs = [];    // alert()/confirm(): an injected script ran
const result = {};
const pages = [];      // described when a check fails
const failedRequests = [];

/** A page on the dashboard, with the token, live on the stream. */
async function openDashboard(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text() !== LAB_NETWORK_CHANGE) {
      problems.push(`console: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => failedRequests.push(
    `${new Date().toISOString()} ${new URL(req.url()).pathname}: ${req.failure()?.errorText}`));
  pages.push(page);
  page.on('dialog', async (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  await page.goto(dashboardUrl());
  await page.locator('#conn[data-state="live"]').waitFor();
  return page;
}

/** The dashboard's address, with the token in its fragment. */
function dashboardUrl() {
  return args.token ? `${args.url}#token=${encodeURIComponent(args.token)}` : args.url;
}

/** The blocks panel: the entry's counter climbs; Unblock removes it. */
async function unblock() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await openDashboard(context);
  console.log('ready');
  const row = page.locator(`#blocks-table tr[data-cidr="${args.cidr}"]`);
  await row.waitFor();
  const count = async () => Number((await row.locator('.packets .count').textContent()).replace(/[^0-9]/g, ''));
  const first = await count();
  await page.waitForFunction(
    ([cidr, before]) => {
      const cell = document.querySelector(`#blocks-table tr[data-cidr="${cidr}"] .packets .count`);
      return cell && Number(cell.textContent.replace(/[^0-9]/g, '')) > before;
    },
    [args.cidr, first],
  );
  result.dropped_first = first;
  result.dropped_then = await count();
  console.log(`drop counter climbs: ${result.dropped_first} then ${result.dropped_then}`);
  await page.locator('#blocks').screenshot({ path: join(args.out, 'blocks-panel.png') });
  await page.locator(`button[data-unblock="${args.cidr}"]`).click();
  await row.waitFor({ state: 'detached' });
  result.unblocked_at = Date.now();
  console.log(`unblocked ${args.cidr} from the dashboard`);
  if (problems.length) fail(`browser errors:\n${problems.join('\n')}`);
  console.log(`result ${JSON.stringify(result)}`);
}

async function main() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await openDashboard(context);
  const url = dashboardUrl();
  const loadedAt = Date.now();
  console.log('ready');

  // The attack runs now. Rows must arrive through the stream: no reload.
  await page.locator('#alerts tr[data-kind="port_scan"]').first().waitFor();
  result.port_scan_row_ms = Date.now() - loadedAt;
  console.log(`port_scan row after ${result.port_scan_row_ms} ms`);

  const signature = page.locator('#alerts tr[data-kind="signature"]').first();
  await signature.waitFor();
  result.signature_row_ms = Date.now() - loadedAt;
  console.log(`signature row after ${result.signature_row_ms} ms`);

  // Live charts: points appended per tick, and traffic seen.
  await page.waitForFunction(
    () => ['#chart-packets', '#chart-bits', '#chart-syn'].every(
      (id) => Number(document.querySelector(id)?.dataset.points ?? 0) >= 3),
  );
  result.chart_points = await page.evaluate(() => Object.fromEntries(
    ['chart-packets', 'chart-bits', 'chart-syn'].map(
      (id) => [id, Number(document.getElementById(id).dataset.points)])));
  console.log(`charts have data: ${JSON.stringify(result.chart_points)}`);

  // The hostile User-Agent, shown as text in the detail view.
  await signature.click();
  const excerpt = page.locator('#alert-detail #detail-excerpt');
  await excerpt.waitFor({ state: 'visible' });
  const shown = await excerpt.textContent();
  for (const needle of ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>']) {
    if (!shown.includes(needle)) fail(`the excerpt does not show ${needle} as text: ${shown}`);
  }
  result.excerpt = shown;
  await page.screenshot({ path: join(args.out, 'dashboard-detail.png') });
  await page.keyboard.press('Escape');
  await excerpt.waitFor({ state: 'hidden' });
  console.log('excerpt shown as text; Escape closes the detail');

  // Nothing the attacker sent became markup or ran.
  const injected = await page.evaluate(() => ({
    images: document.querySelectorAll('img[src="x"]').length,
    scripts: [...document.scripts].filter((s) => !s.src).length,
  }));
  if (injected.images || injected.scripts) fail(`attacker markup in the page: ${JSON.stringify(injected)}`);
  if (dialogs.length) fail(`injected script ran: ${dialogs.join('; ')}`);

  // A filter narrows the list to one kind, and back.
  await page.selectOption('#filter-kind', 'port_scan');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#alerts tr[data-alert-id]')];
    return rows.length > 0 && rows.every((r) => r.dataset.kind === 'port_scan');
  });
  result.filtered_rows = await page.locator('#alerts tr[data-alert-id]').count();
  await page.selectOption('#filter-kind', '');
  await page.locator('#alerts tr[data-kind="signature"]').first().waitFor();
  console.log(`kind filter: ${result.filtered_rows} port_scan rows, then all again`);

  // A notification's link (#alert=ID) opens that alert.
  const linked = await signature.getAttribute('data-alert-id');
  await page.evaluate((id) => { location.hash = `alert=${id}`; }, linked);
  await page.locator('#alert-detail #detail-title').filter({ hasText: `#${linked}` }).waitFor();
  await page.keyboard.press('Escape');
  await page.locator('#alert-detail').waitFor({ state: 'hidden' });
  console.log(`#alert=${linked} opens its detail`);

  if (args.attacker && args.victim) {
    await hostView(page);
    await flowsView(page);
    await page.evaluate(() => { location.hash = ''; });
    await page.locator('#view-overview').waitFor({ state: 'visible' });
  }

  // Screenshots in both themes, and on a phone.
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(args.out, `dashboard-${scheme}.png`), fullPage: true });
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    result[`${scheme}_background`] = background;
  }
  if (result.light_background === result.dark_background) {
    fail(`light and dark mode share the background ${result.light_background}`);
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(args.out, 'dashboard-phone-dark.png'), fullPage: true });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 1) fail(`the phone layout scrolls sideways by ${overflow}px`);
  console.log('screenshots saved');

  // Without the stream, the page polls (the uptime keeps moving), and
  // goes back to live by itself once the stream is reachable again.
  const polling = await context.newPage();
  polling.setDefaultTimeout(timeout);
  polling.on('pageerror', (err) => problems.push(`page error (polling): ${err.message}`));
  const blocked = (route) => route.abort();
  await polling.route('**/api/stream*', blocked);
  const started = Date.now();
  await polling.goto(url);
  await polling.locator('#conn[data-state="polling"]').waitFor();
  result.polling_after_ms = Date.now() - started;
  const uptime = await polling.locator('#stat-uptime').textContent();
  await polling.waitForFunction(
    (before) => document.getElementById('stat-uptime').textContent !== before, uptime);
  await polling.locator('#alerts tr[data-kind="port_scan"]').first().waitFor();
  await polling.unroute('**/api/stream*', blocked);
  const unblocked = Date.now();
  await polling.locator('#conn[data-state="live"]').waitFor();
  result.live_again_ms = Date.now() - unblocked;
  console.log(`stream blocked: polling after ${result.polling_after_ms} ms; `
    + `live again ${result.live_again_ms} ms after unblocking`);
  await polling.close();

  if (problems.length) fail(`browser errors:\n${problems.join('\n')}`);
  console.log(`result ${JSON.stringify(result)}`);
}

// Flow records are written once a flow is idle (the test sets 2 s) and
// the hosts view refreshes every 10 s: this bounds the wait for the
// request's flow.
const FLOW_WAIT_MS = 30_000;

/** Rows of `table` from the attacker to the victim's port 80 (the web requests are among them). */
const webFlow = (table) => `${table} tbody tr[data-src-ip="${args.attacker}"][data-dest-ip="${args.victim}"][data-dst-port="80"]`;
// A flow that carried a request, not just a handshake or a scan's probe
// (74 bytes a SYN, 60 a RST). The sensor sees what the victim receives
// only (XDP runs on receive), so bytes to the client stay 0.
const REQUEST_BYTES = 300;

/** Waits for a web request's flow in `table`, pressing `refresh` every second meanwhile. */
async function waitForWebFlow(page, table, refresh) {
  const deadline = Date.now() + FLOW_WAIT_MS;
  for (;;) {
    const found = await page.locator(webFlow(table)).evaluateAll((rows, least) => rows.some(
      (row) => Number(row.dataset.bytesToserver) >= least), REQUEST_BYTES);
    if (found) return;
    if (Date.now() > deadline) {
      await page.screenshot({ path: join(args.out, 'no-web-flow.png'), fullPage: true });
      const rows = await page.locator(`${table} tbody tr`).evaluateAll((all) => all.map((r) => JSON.stringify(r.dataset)));
      fail(`no flow from ${args.attacker} to ${args.victim}:80 with ${REQUEST_BYTES} bytes or more in ${table}:\n${rows.join('\n')}`);
    }
    await page.click(refresh);
    await page.waitForTimeout(1000);
  }
}

/** The attacker's address in an alert row opens its host view: figures, peers, ports, flows, alerts. */
async function hostView(page) {
  const started = Date.now();
  await page.locator(`#alerts tr[data-kind="port_scan"] a.host-link[data-host="${args.attacker}"]`).first().click();
  await page.locator('#view-hosts').waitFor({ state: 'visible' });
  await page.locator('#host-title').filter({ hasText: args.attacker }).waitFor();
  if (await page.locator('#alert-detail').isVisible()) fail('the address link opened the alert as well');
  if (!page.url().includes(`#host=${args.attacker}`)) fail(`the host view is not in the URL: ${page.url()}`);
  console.log(`an alert row's address opens the host view of ${args.attacker}`);

  // Flows are stored once idle; the view refreshes itself every 10 s.
  const attackers = `#host-flows tbody tr[data-src-ip="${args.attacker}"], #host-flows tbody tr[data-dest-ip="${args.attacker}"]`;
  await page.locator(attackers).first().waitFor({ timeout: FLOW_WAIT_MS });
  result.host_flow_ms = Date.now() - started;
  await page.locator(`#host-peers a.host-link[data-host="${args.victim}"]`).waitFor();
  await page.locator('#host-ports a', { hasText: '80/tcp' }).waitFor();
  await page.locator('#host-alerts tr[data-kind="port_scan"]').first().waitFor();
  await page.waitForFunction(() => Number(document.getElementById('chart-host').dataset.points) > 0);
  result.host_totals = await page.locator('#host-totals').innerText();
  await page.screenshot({ path: join(args.out, 'hosts-light.png'), fullPage: true });
  console.log(`host view: the attacker's flows after ${result.host_flow_ms} ms, the victim as a peer, `
    + 'port 80/tcp, the port scan among its alerts');
}

/** The flow table's rows, top to bottom: id and bytes to the server. */
async function flowRows(page) {
  return page.locator('#flows tbody tr').evaluateAll((rows) => rows.map((row) => ({
    id: Number(row.dataset.flowId),
    src: row.dataset.srcIp,
    dest: row.dataset.destIp,
    port: Number(row.dataset.dstPort),
    proto: row.dataset.proto,
    bytes: Number(row.dataset.bytesToserver),
  })));
}

async function filterFlows(page, filters) {
  for (const [id, value] of Object.entries(filters)) {
    if (id === '#flow-proto') await page.selectOption(id, value);
    else await page.fill(id, value);
  }
  await page.click('#flow-filters button[type="submit"]');
}

/**
 * The flows view, from the host's port 80/tcp: filtered by host, port and
 * protocol, sorted by a column both ways, paged with the cursor.
 */
async function flowsView(page) {
  await page.locator('#host-ports a', { hasText: '80/tcp' }).click();
  await page.locator('#view-flows').waitFor({ state: 'visible' });
  const form = await page.evaluate(() => ['flow-host', 'flow-port', 'flow-proto'].map((id) => document.getElementById(id).value));
  if (JSON.stringify(form) !== JSON.stringify([args.attacker, '80', 'tcp'])) fail(`the port link set the filters to ${form}`);
  await waitForWebFlow(page, '#flows', '#flow-filters button[type="submit"]');
  const filtered = await flowRows(page);
  const stray = filtered.filter((f) => f.port !== 80 || f.proto !== 'tcp' || (f.src !== args.attacker && f.dest !== args.attacker));
  if (stray.length) fail(`the host and port filters let through ${JSON.stringify(stray)}`);
  result.flows_port_80 = filtered.length;
  console.log(`flows view: ${filtered.length} flows of ${args.attacker} on port 80, the web request's among them`);

  // The scan's flows: more than a page, once the agent has written them
  // (each when idle, so they may still be coming in): asked again every
  // 2 s, for up to a minute.
  for (let tries = 1; ; tries++) {
    await filterFlows(page, { '#flow-port': '' });
    const more = await page
      .waitForFunction(() => !document.getElementById('flows-older').disabled, null, { timeout: 2000 })
      .then(() => true, () => false);
    if (more) break;
    if (tries >= 30) fail('the scan\'s flows never filled more than a page');
  }
  const first = await flowRows(page);
  if (first.some((f) => f.proto !== 'tcp')) fail(`the protocol filter let through ${JSON.stringify(first)}`);
  for (const [dir, ok] of [['descending', (a, b) => a >= b], ['ascending', (a, b) => a <= b]]) {
    await page.locator('#flows th button[data-sort="bytes_toserver"]').click();
    await page.locator(`#flows th[aria-sort="${dir}"] button[data-sort="bytes_toserver"]`).waitFor();
    const bytes = (await flowRows(page)).map((f) => f.bytes);
    if (!bytes.every((b, i) => i === 0 || ok(bytes[i - 1], b))) fail(`not sorted ${dir}: ${bytes}`);
  }
  console.log(`sorted by bytes to the server, both ways (${first.length} rows)`);
  await page.screenshot({ path: join(args.out, 'flows-light.png'), fullPage: true });

  // Flows keep being written while one pages: from here on every listing
  // that reaches past the first page's newest flow also gets a newer one.
  // "Newer" must still bring back the page that was shown.
  const newest = Math.max(...first.map((f) => f.id));
  await page.route('**/api/flows?*', async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    const cursor = new URL(route.request().url()).searchParams.get('cursor');
    if (body.flows?.length && (cursor == null || Number(cursor) > newest + 1)) {
      body.flows = [{ ...body.flows[0], id: newest + 1000 }, ...body.flows.slice(0, -1)];
    }
    await route.fulfill({ response, json: body });
  });
  await page.click('#flows-older');
  await page.waitForFunction(() => !document.getElementById('flows-newer').disabled);
  const older = await flowRows(page);
  const oldest = Math.min(...first.map((f) => f.id));
  if (older.length === 0 || older.some((f) => f.id >= oldest)) {
    fail(`the next page is not older than ${oldest}: ${older.map((f) => f.id)}`);
  }
  await page.click('#flows-newer');
  await page.waitForFunction(() => document.getElementById('flows-newer').disabled);
  const again = (await flowRows(page)).map((f) => f.id).sort();
  await page.unroute('**/api/flows?*');
  if (JSON.stringify(again) !== JSON.stringify(first.map((f) => f.id).sort())) {
    fail(`"Newer" did not bring the first page back: ${again} after ${first.map((f) => f.id).sort()}`);
  }
  result.flows_pages = { first: first.length, older: older.length };
  console.log(`paged: ${older.length} older flows, then the first page again`);
}

/** What each page showed when a check failed: its connection state and a screenshot. */
async function describePages() {
  if (failedRequests.length) console.log(`failed requests:\n${failedRequests.slice(-20).join('\n')}`);
  for (const [i, page] of pages.entries()) {
    if (page.isClosed()) continue;
    const conn = await page.locator('#conn').evaluate((el) => `${el.dataset.state} (${el.textContent})`, null, { timeout: 5000 })
      .catch((e) => `unknown: ${e.message}`);
    console.log(`page ${i}: ${page.url().replace(/token=[^&]*/, 'token=…')}, connection ${conn}`);
    await page.screenshot({ path: join(args.out, `failed-page-${i}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
  }
}

function fail(message) {
  throw new Error(message);
}

try {
  if (args.scenario === 'unblock') await unblock();
  else await main();
  await browser.close();
} catch (err) {
  console.log(`error: ${err.message}`);
  if (problems.length) console.log(`browser errors:\n${problems.join('\n')}`);
  await describePages();
  await browser.close().catch(() => {});
  process.exit(1);
}
