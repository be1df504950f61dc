// Requests to the agent's API, with its optional bearer token.
//
// The token arrives in the URL fragment (#token=...), which browsers never
// send to servers; it is kept in sessionStorage for this tab only and taken
// out of the address bar so it does not end up in screenshots or history.

import { byId } from './dom.js';

const TOKEN_KEY = 'nta-token';

/** An error response of the API: `{"error": ..., "parameter": ...}`. */
export class ApiError extends Error {
  constructor(status, message, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter ?? null;
  }
}

/** Moves a `#token=...` fragment into sessionStorage. */
export function takeTokenFromUrl() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (token == null) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

const currentToken = () => sessionStorage.getItem(TOKEN_KEY);

/** `/api/stream`, with the token in the query as EventSource sends no headers. */
export function streamUrl() {
  const token = currentToken();
  return token ? `/api/stream?token=${encodeURIComponent(token)}` : '/api/stream';
}

/** `path` with the non-empty `params` as its query string. */
function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value != null && value !== '') query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * GET `path` as JSON. A 401 shows the token form and retries once a token
 * is entered; other errors throw an ApiError (or the network's TypeError).
 */
export async function getJson(path, params) {
  const url = withQuery(path, params);
  for (;;) {
    const token = currentToken();
    const response = await fetch(url, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      cache: 'no-store',
    });
    if (response.status === 401) {
      await askForToken(token != null);
      continue;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, body?.error ?? `${response.status} ${response.statusText}`, body?.parameter);
    }
    return body;
  }
}

// Every request that got a 401 waits on the same prompt.
let pendingPrompt = null;
const tokenListeners = [];

/** Calls `listener` whenever a new token is entered (the stream reconnects). */
export function onTokenChange(listener) {
  tokenListeners.push(listener);
}

/** Shows the token form; resolves when the user submits a token. */
function askForToken(refused) {
  if (pendingPrompt) return pendingPrompt;
  const form = byId('token-form');
  const input = byId('token-input');
  byId('token-message').textContent = refused
    ? 'The agent refused this token. Enter the access token again.'
    : 'This agent requires an access token.';
  form.hidden = false;
  input.value = '';
  input.focus();
  pendingPrompt = new Promise((resolve) => {
    const submit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      form.removeEventListener('submit', submit);
      form.hidden = true;
      pendingPrompt = null;
      resolve();
      tokenListeners.forEach((listener) => listener());
    };
    form.addEventListener('submit', submit);
  });
  return pendingPrompt;
}
