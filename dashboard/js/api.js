// The REST API with the dashboard's token: `Authorization: Bearer` on every request, the token
// kept in localStorage once the login accepted it. A 401 calls the handler set by onUnauthorized
// (the page shows the login again).

const TOKEN_KEY = 'holdslayer.token';

let unauthorizedHandler = () => {};

export class ApiError extends Error {
  constructor(status, detail) {
    super(describeDetail(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** {field: message} of a 422 whose detail names fields (FastAPI's shape), '' for the rest. */
  fieldErrors() {
    return fieldErrors(this.detail);
  }
}

export function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

function headers(token, extra) {
  const all = { Accept: 'application/json', ...extra };
  if (token) all.Authorization = `Bearer ${token}`;
  return all;
}

/** A raw fetch with the token (or `token` given): the Response, whatever its status. */
export function rawFetch(path, { token = storedToken(), method = 'GET', body, accept } = {}) {
  const extra = {};
  if (body !== undefined) extra['Content-Type'] = 'application/json';
  if (accept) extra.Accept = accept;
  return fetch(path, { method, headers: headers(token, extra), body: body === undefined ? undefined : JSON.stringify(body) });
}

/** JSON from the API; throws ApiError (after the unauthorized handler on 401). */
export async function api(path, options = {}) {
  const response = await rawFetch(path, options);
  if (response.status === 401) {
    unauthorizedHandler();
    throw new ApiError(401, 'a valid token is required');
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) throw new ApiError(response.status, body && typeof body === 'object' && 'detail' in body ? body.detail : body);
  return body;
}

/** The recording of a call as an object URL (an <audio src> cannot carry the bearer header). */
export async function recordingUrl(callId) {
  const response = await rawFetch(`/api/calls/${encodeURIComponent(callId)}/recording`, { accept: 'audio/wav' });
  if (response.status === 401) {
    unauthorizedHandler();
    throw new ApiError(401, 'a valid token is required');
  }
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).detail;
    } catch {}
    throw new ApiError(response.status, detail);
  }
  return URL.createObjectURL(await response.blob());
}

/** Whether `token` (or none) opens the API: 'ok', 'unauthorized' or an error message. */
export async function checkToken(token) {
  try {
    const response = await rawFetch('/api/calls?limit=1', { token });
    if (response.status === 401) return 'unauthorized';
    return response.ok ? 'ok' : `the server answered ${response.status}`;
  } catch (error) {
    return `the server cannot be reached (${error.message})`;
  }
}

export function eventsSocketUrl(token = storedToken()) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${scheme}://${location.host}/ws/events${query}`;
}

/** ["body", "steps", 2, "dtmf"] -> "steps[2].dtmf" (the body's own fields; "" for the body). */
export function formatLoc(loc) {
  const parts = (loc || []).filter((part, i) => !(i === 0 && ['body', 'query', 'path'].includes(part)));
  let text = '';
  for (const part of parts) text += typeof part === 'number' ? `[${part}]` : text ? `.${part}` : String(part);
  return text;
}

/** The messages of an error detail, one a line ("number: emergency numbers are never dialled"). */
export function describeDetail(detail) {
  if (detail == null) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        if (typeof item === 'string') return item;
        const where = formatLoc(item.loc);
        return where ? `${where}: ${item.msg}` : String(item.msg ?? JSON.stringify(item));
      })
      .join('\n');
  }
  return JSON.stringify(detail);
}

/** {field: "message; message"} by the first field of each error's loc ("" for the body). */
export function fieldErrors(detail) {
  const out = {};
  if (!Array.isArray(detail)) {
    out[''] = describeDetail(detail);
    return out;
  }
  for (const item of detail) {
    const loc = (item && item.loc) || [];
    const field = loc.length > 1 && ['body', 'query', 'path'].includes(loc[0]) ? String(loc[1]) : '';
    const message = item && typeof item === 'object' ? String(item.msg ?? '') : String(item);
    out[field] = out[field] ? `${out[field]}; ${message}` : message;
  }
  return out;
}
