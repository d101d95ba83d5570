// The dashboard's calls to the API: the token from sessionStorage as a bearer
// header, the one error shape turned into ApiError, and what the server can
// do (its routes and their scopes) read from the OpenAPI document.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />

const TOKEN_KEY = 'gaffer.token';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Calls the API; resolves to the parsed JSON body or throws ApiError with the server's code and message. */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = authHeaders();
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch {
    throw new ApiError(0, 'UNREACHABLE', 'the coordinator does not answer');
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? (text.slice(0, 200) || res.statusText));
  }
  return parsed as T;
}

export const get = <T>(path: string): Promise<T> => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => api<T>('POST', path, body ?? {});

/** What the server offers, from its OpenAPI document: `METHOD /path/{param}` to the scope it needs. */
export interface Capabilities {
  routes: Map<string, string | null>;
  /** The token's scope as far as the dashboard can tell: admin, client, or none (auth off counts as admin). */
  role: 'admin' | 'client';
  authEnabled: boolean;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { 'x-gaffer-scope'?: string | null }>>;
}

async function probeRole(): Promise<'admin' | 'client'> {
  // An admin route on a worker that cannot exist: the scope is checked before anything else, so a client
  // token gets 403 and an admin token 404; nothing is written either way.
  try {
    await post('/v1/workers/dashboard-scope-probe/drain');
    return 'admin';
  } catch (err) {
    return err instanceof ApiError && err.status === 404 ? 'admin' : 'client';
  }
}

export async function loadCapabilities(): Promise<Capabilities> {
  const doc = await get<OpenApiDoc>('/v1/openapi.json');
  const routes = new Map<string, string | null>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) routes.set(`${method.toUpperCase()} ${path}`, op['x-gaffer-scope'] ?? null);
  }
  let authEnabled = true;
  try {
    const res = await fetch('/v1/queues', { cache: 'no-store' });
    authEnabled = res.status === 401;
  } catch {
    authEnabled = true;
  }
  return { routes, role: await probeRole(), authEnabled };
}

/** True when the server has this route (`GET /v1/history`, `POST /v1/queues/{name}/pause`). */
export function hasRoute(caps: Capabilities, route: string): boolean {
  return caps.routes.has(route);
}

/** True when the token may call the route: it exists, and needs no scope, the client scope, or the token is admin. */
export function mayCall(caps: Capabilities, route: string): boolean {
  if (!caps.routes.has(route)) return false;
  const scope = caps.routes.get(route);
  return caps.role === 'admin' || scope === null || scope === 'client';
}

export const enc = encodeURIComponent;
