// herald's JSON API: the portal's only source of data. Every call carries the visitor's
// token as a Bearer header; the token lives in sessionStorage (this tab only).

const TOKEN_KEY = "herald.portal.token";
const VIA_KEY = "herald.portal.via";

// The API sits beside the portal: /portal/ → /api/v1/ (also under a path prefix).
const API_BASE = new URL("../api/v1/", new URL(".", location.href));

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  // `via` is "link" for a customer link, "sign-in" for a token typed in.
  start(token, via) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(VIA_KEY, via);
  },
  via: () => sessionStorage.getItem(VIA_KEY),
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(VIA_KEY);
  },
};

let unauthorizedHandler = null;
// `fn(error)` runs when a call answers 401 (expired or revoked token).
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export const enc = encodeURIComponent;

// Calls the API. `path` is relative to /api/v1 ("app/x/msg"); `query` values that are
// undefined, null or "" are left out. Resolves with the parsed JSON (null for 204); rejects
// with an ApiError (status 0 when herald could not be reached).
export async function api(method, path, { body, query, token } = {}) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${token ?? session.token() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, { code: "network", detail: `herald could not be reached (${e.message})` });
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && unauthorizedHandler && token === undefined) unauthorizedHandler(err);
    throw err;
  }
  return data;
}
