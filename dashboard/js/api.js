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
      // Reads cannot go on without the token: a cancelled prompt comes back.
      await askForToken({ refused: token != null });
      continue;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw errorOf(response, body);
    return body;
  }
}

/**
 * Sends `body` as JSON with `method` (POST, DELETE...) to `path` and
 * resolves to `{status, body}`. Changes need the admin token even when
 * reads are open: a 401 shows the token form with the agent's explanation
 * and retries with the token entered. Cancelling the form, and any other
 * error, throws an ApiError (`cancelled` set for the former).
 */
export async function sendJson(method, path, body) {
  for (;;) {
    const token = currentToken();
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    const answer = await response.json().catch(() => null);
    if (response.status === 401) {
      const entered = await askForToken({ refused: token != null, explanation: answer?.error, cancellable: true });
      if (entered) continue;
      const error = errorOf(response, answer);
      error.cancelled = true;
      throw error;
    }
    if (!response.ok) throw errorOf(response, answer);
    return { status: response.status, body: answer };
  }
}

/** The ApiError for an error response and its JSON body (if any). */
function errorOf(response, body) {
  return new ApiError(response.status, body?.error ?? `${response.status} ${response.statusText}`, body?.parameter);
}

// Every request that got a 401 waits on the same prompt.
let pendingPrompt = null;
const tokenListeners = [];

/** Calls `listener` whenever a new token is entered (the stream reconnects). */
export function onTokenChange(listener) {
  tokenListeners.push(listener);
}

/**
 * Shows the token form; resolves to true when the user submits a token,
 * false when they cancel (offered only to changes, which can be given up,
 * and to reads that joined such a prompt: they ask again). `explanation`
 * is the agent's word on why a token is needed.
 */
function askForToken({ refused = false, explanation = null, cancellable = false } = {}) {
  if (pendingPrompt) return pendingPrompt;
  const form = byId('token-form');
  const input = byId('token-input');
  const cancel = byId('token-cancel');
  const returnFocus = document.activeElement;
  // The agent's messages start in lower case, as errors do.
  const why = explanation ? explanation.charAt(0).toUpperCase() + explanation.slice(1) : 'This agent requires an access token.';
  byId('token-message').textContent = refused
    ? `The agent refused this token. ${explanation ? why : 'Enter the access token again.'}`
    : why;
  cancel.hidden = !cancellable;
  form.hidden = false;
  input.value = '';
  input.focus();
  pendingPrompt = new Promise((resolve) => {
    const finish = (entered) => {
      form.removeEventListener('submit', submit);
      cancel.removeEventListener('click', giveUp);
      form.removeEventListener('keydown', onKey);
      form.hidden = true;
      pendingPrompt = null;
      if (returnFocus?.isConnected && form.contains(document.activeElement)) returnFocus.focus();
      resolve(entered);
      if (entered) tokenListeners.forEach((listener) => listener());
    };
    const submit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      finish(true);
    };
    const giveUp = () => finish(false);
    const onKey = (event) => {
      if (event.key === 'Escape' && cancellable) {
        event.preventDefault();
        giveUp();
      }
    };
    form.addEventListener('submit', submit);
    cancel.addEventListener('click', giveUp);
    form.addEventListener('keydown', onKey);
  });
  return pendingPrompt;
}
