// Startup parameters no client may send through the gateway, judged before authentication and
// before any byte reaches a server. Pure: the parameters in, a verdict out.
//   - replication (physical `true`/`on`/... or logical `database`): managed servers take no
//     replication connection from clients (their admin role is NOREPLICATION); forwarded, the
//     server's own pg_hba.conf refusal would reach the client.
//   - application_name starting with "pgwarden" (as a parameter or as `-c`/`--` in options):
//     the platform's own sessions use those names (pgwarden, pgwarden-maintenance,
//     pgwarden-backup, pgwarden-change-feed); a client must not pose as one in
//     pg_stat_activity, in the server's log or in the audit records joined to it.
import type { ClientError } from '../pgwire/client-errors.js';
import { splitOptions } from './route.js';

export type StartupPolicyVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'replication-refused' | 'reserved-application-name'; readonly error: ClientError };

export const RESERVED_APPLICATION_PREFIX = 'pgwarden';

export const replicationRefused: ClientError = {
  sqlstate: '28000',
  message: 'replication connections are not supported through the gateway',
};

export function reservedApplicationName(name: string): ClientError {
  return { sqlstate: '42939', message: `application_name "${name}" is reserved for the platform's own sessions` };
}

/** PostgreSQL's parse_bool spellings of false (case-insensitive): a replication parameter with
 * any of them is an ordinary session. Everything else asks for replication or is invalid. */
const REPLICATION_OFF = new Set(['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0']);

export function isReservedApplicationName(name: string): boolean {
  return name.trim().toLowerCase().startsWith(RESERVED_APPLICATION_PREFIX);
}

export function judgeStartupParams(params: ReadonlyMap<string, string>): StartupPolicyVerdict {
  const replication = params.get('replication');
  if (replication !== undefined && !REPLICATION_OFF.has(replication.toLowerCase())) {
    return { ok: false, reason: 'replication-refused', error: replicationRefused };
  }
  for (const name of applicationNames(params)) {
    if (isReservedApplicationName(name)) return { ok: false, reason: 'reserved-application-name', error: reservedApplicationName(name) };
  }
  return { ok: true };
}

/** Every application_name the server could apply: the parameter, and each
 * `application_name=value` in `options` whatever the switch before it (`-c name=value`,
 * `-cname=value`, `--name=value`, or a `c` inside a group of one-letter switches such as
 * `-ec name=value`); names case-insensitive, '-' as '_'. Erring on the side of finding one. */
export function applicationNames(params: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  const direct = params.get('application_name');
  if (direct !== undefined) out.push(direct);
  const options = params.get('options');
  if (options === undefined) return out;
  for (const token of splitOptions(options)) {
    const m = APPLICATION_NAME_SETTING.exec(unescapeOption(token));
    if (m) out.push(m[1]!);
  }
  return out;
}

const APPLICATION_NAME_SETTING = /application[_-]name=(.*)$/is;

/** Removes the backslash escapes of an options token, as PostgreSQL's pg_split_opts does. */
function unescapeOption(token: string): string {
  return token.replace(/\\(.)/gs, '$1');
}
