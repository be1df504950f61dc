// The page's views — overview, hosts, flows — chosen by the URL fragment,
// so that each can be linked to and the back button goes back:
//
//   #              the overview (charts, tops, blocks, alerts)
//   #hosts         top talkers;  #host=IP  that host
//   #flows         flow records; #flows&host=IP&port=80&proto=tcp  filtered
//   #alert=ID      that alert's detail, over whichever view shows

import { h } from './dom.js';

const VIEWS = ['overview', 'hosts', 'flows'];

/** The view and its parameters that a fragment names; null for `#alert=ID` (no change). */
export function routeOf(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  if (params.has('alert')) return null;
  // Before `host`: the flows view may be filtered by one.
  if (params.has('flows')) {
    params.delete('flows');
    return { view: 'flows', params: Object.fromEntries(params) };
  }
  if (params.has('host')) return { view: 'hosts', params: { host: params.get('host') } };
  if (params.has('hosts')) return { view: 'hosts', params: {} };
  return { view: 'overview', params: {} };
}

/** Shows `view`'s container and marks its link in the navigation. */
export function showView(view) {
  for (const name of VIEWS) {
    document.getElementById(`view-${name}`).hidden = name !== view;
  }
  for (const link of document.querySelectorAll('.views-nav a[data-view]')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** The fragment of host `ip`'s view. */
export const hostHash = (ip) => `#host=${encodeURIComponent(ip)}`;

/** The fragment of the flows view with `filters` (empty ones left out). */
export function flowsHash(filters = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value != null && value !== '') params.set(name, value);
  }
  const rest = params.toString();
  return rest ? `#flows&${rest}` : '#flows';
}

/** A link to host `ip`'s view; the address is shown as text. */
export function hostLink(ip, label = ip) {
  return h('a', { href: hostHash(ip), class: 'host-link mono', 'data-host': ip, title: `Traffic of ${ip}` }, label);
}

/**
 * An alert's "198.18.0.2 → 10.0.0.1:80", each address a link to its host
 * view, "—" for a missing one.
 */
export function alertEndpoints(alert) {
  const nodes = [alert.src ? hostLink(alert.src) : '—'];
  if (alert.dst == null && alert.dst_port == null) return nodes;
  nodes.push(' → ');
  const v6 = alert.dst?.includes(':');
  if (alert.dst == null) nodes.push('—');
  else nodes.push(v6 && alert.dst_port != null ? ['[', hostLink(alert.dst), ']'] : hostLink(alert.dst));
  if (alert.dst_port != null) nodes.push(`:${alert.dst_port}`);
  return nodes;
}
