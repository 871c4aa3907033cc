// The endpoints of an attached server: `host:port` text, parsed and checked once (a host name,
// an IPv4 address or a bracketed IPv6 address, and a port).
import net from 'node:net';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The endpoint in `text`, or why it is not one. */
export function parseEndpoint(text: string): Endpoint | string {
  const t = text.trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t) ?? /^([^:[\]]+):(\d{1,5})$/.exec(t);
  if (!m) return `Invalid endpoint '${text}': it must be HOST:PORT (an IPv6 address in brackets: [::1]:5432).`;
  const host = m[1]!;
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return `Invalid endpoint '${text}': the port must be from 1 to 65535.`;
  const bracketed = t.startsWith('[');
  if (bracketed ? net.isIPv6(host) !== true : !(net.isIPv4(host) || HOST_NAME.test(host))) {
    return `Invalid endpoint '${text}': '${host}' is not a host name or IP address.`;
  }
  return { host, port };
}

/** Every endpoint, or the first problem; duplicates and an empty list are refused. */
export function parseEndpoints(texts: readonly string[]): Endpoint[] | string {
  if (texts.length === 0) return 'endpoints must list at least one HOST:PORT.';
  if (texts.length > 16) return 'endpoints must list at most 16 HOST:PORT.';
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const t of texts) {
    const e = parseEndpoint(t);
    if (typeof e === 'string') return e;
    const key = endpointText(e);
    if (seen.has(key)) return `endpoint '${key}' is listed twice.`;
    seen.add(key);
    out.push(e);
  }
  return out;
}

export function endpointText(e: Endpoint): string {
  return net.isIPv6(e.host) ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
