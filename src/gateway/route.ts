// Which server a connection is for (SPEC.md §3 step 3), first match wins:
//   1. the SNI host name `{server}.{domain}`;
//   2. `user@server` (split at the LAST @; the suffix is stripped before the server sees the role,
//      also when SNI or the option chose the same server);
//   3. the startup option `server={name}`: a `server` startup parameter, or a `server=NAME` /
//      `--server=NAME` token in `options` (removed before the options reach the server).
// Pure: plain data in, a verdict out.
import { clientErrors, type ClientError } from '../pgwire/client-errors.js';

export interface RouteInput {
  readonly sni: string | undefined;
  readonly params: ReadonlyMap<string, string>;
  readonly domain: string;
  readonly serverExists: (name: string) => boolean;
}

export type RouteVerdict =
  | {
      readonly ok: true;
      readonly server: string;
      readonly via: 'sni' | 'user' | 'option';
      /** The role name the server sees. */
      readonly user: string;
      /** Startup parameters to forward (routing hints removed). */
      readonly forward: Map<string, string>;
    }
  | { readonly ok: false; readonly reason: 'unknown-server'; readonly error: ClientError };

const OPTION_TOKEN = /^(?:--)?server=(.+)$/;

/** The server a SNI host name `{server}.{domain}` names, if it names one. */
export function serverFromSni(sni: string | undefined, domain: string): string | null {
  if (!sni) return null;
  const host = sni.toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  return label && !label.includes('.') ? label : null;
}

/** Splits libpq-style options on unescaped whitespace (backslash escapes the next char; the
 * backslashes are kept in the tokens). */
export function splitOptions(options: string): string[] {
  const out: string[] = [];
  let cur = '';
  let escaped = false;
  let has = false;
  for (const ch of options) {
    if (escaped) {
      cur += ch;
      escaped = false;
      has = true;
    } else if (ch === '\\') {
      escaped = true;
      cur += ch;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

export function routeConnection(input: RouteInput): RouteVerdict {
  const forward = new Map(input.params);
  const rawUser = input.params.get('user') ?? '';
  const at = rawUser.lastIndexOf('@');
  const userSuffix = at > 0 ? rawUser.slice(at + 1) : null;

  let optionServer: string | null = forward.get('server') ?? null;
  forward.delete('server');
  const options = forward.get('options');
  if (options !== undefined) {
    const kept: string[] = [];
    for (const token of splitOptions(options)) {
      const m = OPTION_TOKEN.exec(token);
      if (m) optionServer ??= m[1]!;
      else kept.push(token);
    }
    if (kept.length) forward.set('options', kept.join(' '));
    else forward.delete('options');
  }

  const candidates: [string | null, 'sni' | 'user' | 'option'][] = [
    [serverFromSni(input.sni, input.domain), 'sni'],
    [userSuffix, 'user'],
    [optionServer, 'option'],
  ];
  for (const [name, via] of candidates) {
    if (name === null) continue;
    if (!input.serverExists(name)) break; // first match wins: a named but unknown server is an error
    // `@server` is stripped when it names the chosen server; otherwise '@' belongs to the role.
    const user = userSuffix === name ? rawUser.slice(0, at) : rawUser;
    forward.set('user', user);
    if (!forward.has('database')) forward.set('database', user);
    return { ok: true, server: name, via, user, forward };
  }
  return { ok: false, reason: 'unknown-server', error: clientErrors.unknownServer };
}
