// The read API client: credentials (kept in sessionStorage) and JSON fetches.

const TOKEN = 'agentops.dashboard.token';
const TOKEN_EXPIRES = 'agentops.dashboard.token_expires_at';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function store() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

function get(key) {
  return store()?.getItem(key) ?? null;
}

function put(key, value) {
  const s = store();
  if (!s) return;
  if (value == null) s.removeItem(key);
  else s.setItem(key, value);
}

/** The headers that authenticate a request, if the user signed in. */
export function authHeaders() {
  const token = get(TOKEN);
  const expires = Date.parse(get(TOKEN_EXPIRES) || '');
  if (token && !(expires && expires < Date.now())) return { Authorization: `Bearer ${token}` };
  return {};
}

export function hasCredentials() {
  return Object.keys(authHeaders()).length > 0;
}

export function signOut() {
  put(TOKEN, null);
  put(TOKEN_EXPIRES, null);
}

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 300) };
  }
}

/** GET (or `method`) a JSON endpoint. A 401 raises an `agentops:unauthorized` event. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The server cannot be reached. Is `agentops serve` running?');
  }
  const data = await readBody(res);
  if (!res.ok) {
    const message = (data && typeof data.error === 'string' && data.error) || res.statusText || `HTTP ${res.status}`;
    const err = new ApiError(res.status, message, data);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('agentops:unauthorized', { detail: err }));
    throw err;
  }
  return data;
}

/**
 * Signs in with an API key: exchanges it for a short-lived read-only dashboard token
 * (`/api/v1/auth/dashboard-token`); the key itself is not kept.
 */
export async function signIn(apiKey) {
  const key = apiKey.trim();
  if (!key) throw new ApiError(400, 'Enter the API key.');
  signOut();
  let res;
  try {
    res = await fetch('/api/v1/auth/dashboard-token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ api_key: key }),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  const data = await readBody(res);
  if (res.ok && data && typeof data.token === 'string') {
    put(TOKEN, data.token);
    put(TOKEN_EXPIRES, typeof data.expires_at === 'string' ? data.expires_at : null);
    return { method: 'token' };
  }
  if (res.status === 401 || res.status === 403) throw new ApiError(401, 'This API key was not accepted.');
  throw new ApiError(res.status, (data && data.error) || `Sign-in failed (HTTP ${res.status}).`);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v == null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}
