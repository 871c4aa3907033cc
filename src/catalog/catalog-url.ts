// The catalog URL (`--catalog-url`), parsed as libpq reads a connection URI: several hosts
// (`postgresql://h1:p1,h2:p2/db`), `target_session_attrs`, `sslmode` and the other parameters.
// node-postgres takes one host only, so the gateway picks the host itself (catalog-hosts.ts).
// Pure: no I/O (certificate files are named here and read where the connection is made).

export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';
export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface CatalogHost {
  /** A name, an IP address (IPv6 without brackets) or a Unix socket directory (starts with /). */
  readonly host: string;
  readonly port: number;
}

export interface CatalogUrl {
  readonly hosts: readonly CatalogHost[];
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  readonly targetSessionAttrs: TargetSessionAttrs;
  /** Absent when the URL says nothing: no TLS, as node-postgres did with a one-host URL. */
  readonly sslMode?: SslMode;
  readonly sslRootCert?: string;
  readonly sslCert?: string;
  readonly sslKey?: string;
  readonly applicationName?: string;
  readonly options?: string;
  /** Per host, as libpq's connect_timeout (seconds; 0 or absent: the default of catalog-hosts.ts). */
  readonly connectTimeoutSeconds?: number;
}

export class CatalogUrlError extends Error {
  constructor(message: string) {
    super(`invalid catalog URL: ${message}`);
    this.name = 'CatalogUrlError';
  }
}

const ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'];
const SSL_MODES: readonly string[] = ['disable', 'require', 'verify-ca', 'verify-full'];
// Parameters libpq knows that change nothing for the catalog's connections: accepted, not used.
const IGNORED = new Set(['keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'client_encoding', 'fallback_application_name']);
const DEFAULT_PORT = 5432;

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new CatalogUrlError(`bad percent-encoding in the ${what}`);
  }
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new CatalogUrlError(`invalid port "${text}"`);
  return Number(text);
}

/** One `host[:port]` of the authority; IPv6 addresses in brackets. Port undefined when absent. */
function parseHostPort(item: string): { host: string; port?: number } {
  if (item.startsWith('[')) {
    const close = item.indexOf(']');
    if (close < 0) throw new CatalogUrlError(`unterminated IPv6 address "${item}"`);
    const host = item.slice(1, close);
    const rest = item.slice(close + 1);
    if (rest === '') return { host };
    if (!rest.startsWith(':')) throw new CatalogUrlError(`unexpected "${rest}" after the IPv6 address "${host}"`);
    return { host, port: rest === ':' ? undefined : parsePort(rest.slice(1)) };
  }
  const colon = item.lastIndexOf(':');
  if (colon < 0) return { host: decode(item, 'host') };
  const port = item.slice(colon + 1);
  return { host: decode(item.slice(0, colon), 'host'), port: port === '' ? undefined : parsePort(port) };
}

/** The parameters after `?`, each at most once. */
function parseQuery(query: string): Map<string, string> {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) throw new CatalogUrlError(`parameter "${decode(pair, 'parameters')}" has no value`);
    const key = decode(pair.slice(0, eq), 'parameters');
    if (params.has(key)) throw new CatalogUrlError(`parameter "${key}" is given twice`);
    params.set(key, decode(pair.slice(eq + 1).replace(/\+/g, ' '), 'parameters'));
  }
  return params;
}

/** Hosts and ports: from the authority or from `host=`/`port=`, one port for all or one each. */
function hostList(authorityHosts: string, hostParam: string | undefined, portParam: string | undefined): CatalogHost[] {
  const items: { host: string; port?: number }[] = [];
  if (hostParam !== undefined) {
    if (authorityHosts !== '') throw new CatalogUrlError('hosts are given both in the URL and in the host parameter');
    for (const h of hostParam.split(',')) items.push({ host: h.trim() });
  } else if (authorityHosts !== '') {
    for (const h of authorityHosts.split(',')) items.push(parseHostPort(h));
  }
  if (items.length === 0) throw new CatalogUrlError('no host (a catalog URL names at least one host or socket directory)');
  for (const [i, it] of items.entries()) if (it.host === '') throw new CatalogUrlError(`host ${i + 1} is empty`);
  if (portParam !== undefined) {
    if (items.some((it) => it.port !== undefined)) throw new CatalogUrlError('ports are given both in the URL and in the port parameter');
    const ports = portParam.split(',').map((p) => parsePort(p.trim()));
    if (ports.length !== 1 && ports.length !== items.length)
      throw new CatalogUrlError(`${ports.length} ports for ${items.length} hosts (give one port, or one per host)`);
    return items.map((it, i) => ({ host: it.host, port: ports[ports.length === 1 ? 0 : i]! }));
  }
  return items.map((it) => ({ host: it.host, port: it.port ?? DEFAULT_PORT }));
}

export function parseCatalogUrl(url: string): CatalogUrl {
  const scheme = /^(postgresql|postgres):\/\//i.exec(url);
  if (!scheme) throw new CatalogUrlError('it must start with postgresql:// (or postgres://)');
  let rest = url.slice(scheme[0].length);
  const hash = rest.indexOf('#');
  if (hash >= 0) throw new CatalogUrlError('a fragment (#...) is not allowed');
  const q = rest.indexOf('?');
  const query = q >= 0 ? rest.slice(q + 1) : '';
  rest = q >= 0 ? rest.slice(0, q) : rest;
  const slash = rest.indexOf('/');
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  if (path.includes('/')) throw new CatalogUrlError(`unexpected "/" in the database name "${path}"`);
  // The user information ends at the last @ (a password may hold an encoded @ only).
  const at = authority.lastIndexOf('@');
  const userInfo = at >= 0 ? authority.slice(0, at) : undefined;
  const hostPart = at >= 0 ? authority.slice(at + 1) : authority;
  let user: string | undefined;
  let password: string | undefined;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    user = decode(colon >= 0 ? userInfo.slice(0, colon) : userInfo, 'user name') || undefined;
    if (colon >= 0) password = decode(userInfo.slice(colon + 1), 'password');
  }
  const params = parseQuery(query);
  const take = (key: string): string | undefined => {
    const v = params.get(key);
    params.delete(key);
    return v;
  };
  const hosts = hostList(hostPart, take('host'), take('port'));
  const dbParam = take('dbname');
  if (dbParam !== undefined && path !== '') throw new CatalogUrlError('the database is given both in the URL and in the dbname parameter');
  const database = dbParam ?? (path !== '' ? decode(path, 'database name') : undefined);
  const userParam = take('user');
  if (userParam !== undefined && user !== undefined) throw new CatalogUrlError('the user is given both in the URL and in the user parameter');
  const passwordParam = take('password');
  if (passwordParam !== undefined && password !== undefined) throw new CatalogUrlError('the password is given both in the URL and in the password parameter');

  const attrs = take('target_session_attrs') ?? 'any';
  if (!(ATTRS as readonly string[]).includes(attrs)) throw new CatalogUrlError(`target_session_attrs "${attrs}" is not one of ${ATTRS.join(', ')}`);
  const sslMode = take('sslmode');
  if (sslMode !== undefined && !SSL_MODES.includes(sslMode)) {
    const why = sslMode === 'prefer' || sslMode === 'allow' ? ' (the catalog cannot fall back between TLS and plain text: choose one)' : '';
    throw new CatalogUrlError(`sslmode "${sslMode}" is not one of ${SSL_MODES.join(', ')}${why}`);
  }
  const timeout = take('connect_timeout');
  if (timeout !== undefined && !/^\d+$/.test(timeout)) throw new CatalogUrlError(`connect_timeout "${timeout}" is not a whole number of seconds`);
  const result: CatalogUrl = {
    hosts,
    database,
    user: userParam ?? user,
    password: passwordParam ?? password,
    targetSessionAttrs: attrs as TargetSessionAttrs,
    sslMode: sslMode as SslMode | undefined,
    sslRootCert: take('sslrootcert'),
    sslCert: take('sslcert'),
    sslKey: take('sslkey'),
    applicationName: take('application_name'),
    options: take('options'),
    connectTimeoutSeconds: timeout === undefined ? undefined : Number(timeout),
  };
  for (const key of params.keys()) if (!IGNORED.has(key)) throw new CatalogUrlError(`unknown parameter "${key}"`);
  return result;
}

/** What a host said about itself when asked after logging in. */
export interface SessionState {
  readonly inRecovery: boolean;
  readonly readOnly: boolean;
}

/** libpq's rule for target_session_attrs (prefer-standby's second pass takes any host). */
export function acceptsSession(attrs: TargetSessionAttrs, state: SessionState): boolean {
  switch (attrs) {
    case 'any':
    case 'prefer-standby':
      return true;
    case 'read-write':
      return !state.inRecovery && !state.readOnly;
    case 'read-only':
      return state.inRecovery || state.readOnly;
    case 'primary':
      return !state.inRecovery;
    case 'standby':
      return state.inRecovery;
  }
}

/** Whether a host must be asked its state at all (libpq skips the question for `any`). */
export function needsStateCheck(attrs: TargetSessionAttrs): boolean {
  return attrs !== 'any';
}

export function hostLabel(h: CatalogHost): string {
  if (h.host.startsWith('/')) return `${h.host}/.s.PGSQL.${h.port}`;
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

/**
 * The order to try hosts in: libpq's order, except that the host that last gave an acceptable
 * session goes first. Trying a dead first host again on every new pool connection would cost a
 * connect timeout each time on a real network; the order is libpq's again once that host fails.
 */
export function tryOrder(hosts: readonly CatalogHost[], last: CatalogHost | null): CatalogHost[] {
  if (!last) return [...hosts];
  const i = hosts.findIndex((h) => h.host === last.host && h.port === last.port);
  if (i < 0) return [...hosts];
  return [hosts[i]!, ...hosts.filter((_, j) => j !== i)];
}

/** Whether a host that answered is taken on the first pass (prefer-standby takes a standby
 * first, and any host that answered only when no standby did). */
export function firstPassAccepts(attrs: TargetSessionAttrs, state: SessionState): boolean {
  return attrs === 'prefer-standby' ? state.inRecovery : acceptsSession(attrs, state);
}
