// The console's only way to the data: fetch against the REST API on the same origin, with the
// API token from sessionStorage (never in a URL), and the API's own error message on failure.
const TOKEN_KEY = 'pgwarden.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the API says the token is not (or no longer) valid. */
let onUnauthenticated: () => void = () => undefined;
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

async function send(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { accept };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiError(0, 'NetworkError', 'The control plane cannot be reached.');
  }
  if (res.ok) return res;
  let code = 'Error';
  let message = `The API answered ${res.status} ${res.statusText}.`;
  try {
    const err = ((await res.json()) as { error?: { code?: string; message?: string } }).error;
    if (err?.code) code = err.code;
    if (err?.message) message = err.message;
  } catch {
    /* not JSON: keep the status line */
  }
  if (res.status === 401) onUnauthenticated();
  throw new ApiError(res.status, code, message);
}

/** Calls the API and returns its JSON (undefined for 204). */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** The body as text (JSON lines export). */
export async function text(path: string, accept: string): Promise<string> {
  return (await send('GET', path, undefined, accept)).text();
}

/** Query string from the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
