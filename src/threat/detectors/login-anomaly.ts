// Who logs in, from where, with what (SPEC.md §6): principal not seen in N days
// (PrincipalAnomaly), unusual country (GeoAnomaly) and network (NetworkAnomaly) for the
// principal, attack tools by application_name (HarmfulApplication), addresses on the
// operator's lists (SuspiciousIp). Pure over a successful login and the baselines; during the
// learning period the principal and location detectors only learn.
import type { Baselines } from '../baselines.js';
import type { Finding, LocationView } from '../finding.js';
import { learned, type SecurityAlertPolicy } from '../policy.js';

export type Location =
  | { readonly kind: 'loopback' | 'private' | 'link-local' | 'unique-local' | 'reserved' }
  | { readonly kind: 'public'; readonly country: string | null; readonly asn: number | null; readonly organization: string | null };

export interface LocationSource {
  lookup(address: string): Location;
}
export interface IpListSource {
  match(address: string): { readonly list: string; readonly entry: string } | null;
}
export type HarmfulAppMatcher = (applicationName: string | undefined) => { readonly tool: string; readonly description: string } | null;

export interface LoginFacts {
  readonly server: string;
  readonly address: string;
  readonly user: string;
  readonly applicationName: string | undefined;
  readonly method: string;
  readonly timeMs: number;
}

export interface AnomalySources {
  readonly locations: LocationSource | null;
  readonly ipLists: IpListSource | null;
  readonly harmfulApp: HarmfulAppMatcher | null;
}

const DAY_MS = 86_400_000;

export function locationView(l: Location): LocationView {
  return l.kind === 'public'
    ? { kind: 'public', country: l.country, asn: l.asn, organization: l.organization }
    : { kind: l.kind, country: null, asn: null, organization: null };
}

/** Findings about who connects from where, for a connection attempt (successful or not). */
export function connectionFindings(c: Omit<LoginFacts, 'method'>, src: AnomalySources): Finding[] {
  const out: Finding[] = [];
  const base = { server: c.server, principal: c.user, sourceAddress: c.address, timeMs: c.timeMs, count: 1 };
  const app = src.harmfulApp?.(c.applicationName);
  if (app) {
    out.push({
      ...base,
      kind: 'harmfulApplication',
      incidentKey: `app:${app.tool}:${c.address}`,
      description: `A connection from ${c.address} as user "${c.user}" identified itself as ${app.tool} (application_name "${c.applicationName}"): ${app.description}`,
      evidence: { applicationName: c.applicationName, tool: app.tool },
    });
  }
  const listed = src.ipLists?.match(c.address);
  if (listed) {
    out.push({
      ...base,
      kind: 'suspiciousIp',
      incidentKey: `ip:${c.address}`,
      description: `A connection as user "${c.user}" came from ${c.address}, which is on the list "${listed.list}" (entry ${listed.entry}).`,
      evidence: { list: listed.list, entry: listed.entry },
    });
  }
  return out;
}

/** Findings for a successful login from the principal and location baselines; learns them. */
export function loginFindings(l: LoginFacts, policy: SecurityAlertPolicy, baselines: Baselines, src: AnomalySources): Finding[] {
  const out: Finding[] = [];
  const judging = learned(policy, l.timeMs);
  const base = { server: l.server, principal: l.user, sourceAddress: l.address, timeMs: l.timeMs, count: 1 };

  const last = baselines.lastSeen(l.server, 'principal', l.user);
  const days = policy.detectors.principalAnomalyDays;
  if (judging && (last === undefined || l.timeMs - last > days * DAY_MS)) {
    out.push({
      ...base,
      kind: 'principalAnomaly',
      incidentKey: `principal:${l.user}`,
      description:
        last === undefined
          ? `User "${l.user}" logged in from ${l.address} (${l.method}) for the first time on this server.`
          : `User "${l.user}" logged in from ${l.address} (${l.method}); it was last seen on this server ${Math.floor((l.timeMs - last) / DAY_MS)} days ago.`,
      evidence: { method: l.method, lastSeen: last === undefined ? null : new Date(last).toISOString(), thresholdDays: days },
    });
  }
  baselines.touch(l.server, 'principal', l.user, l.timeMs);

  if (src.locations) {
    const loc = src.locations.lookup(l.address);
    const view = locationView(loc);
    const place = loc.kind === 'public' ? (loc.country ?? 'unknown') : loc.kind;
    const placeKey = `${l.user}\u0000${place}`;
    if (judging && last !== undefined && baselines.lastSeen(l.server, 'country', placeKey) === undefined) {
      out.push({
        ...base,
        kind: 'geoAnomaly',
        location: view,
        incidentKey: `geo:${l.user}:${place}`,
        description: `User "${l.user}" logged in from ${l.address} in ${describePlace(loc)}, a location not seen for this user before.`,
        evidence: { location: view, method: l.method },
      });
    }
    baselines.touch(l.server, 'country', placeKey, l.timeMs);
    if (loc.kind === 'public' && loc.asn !== null) {
      const asnKey = `${l.user}\u0000${loc.asn}`;
      if (judging && last !== undefined && baselines.lastSeen(l.server, 'asn', asnKey) === undefined) {
        out.push({
          ...base,
          kind: 'networkAnomaly',
          location: view,
          incidentKey: `asn:${l.user}:${loc.asn}`,
          description: `User "${l.user}" logged in from ${l.address} in network AS${loc.asn}${loc.organization ? ` (${loc.organization})` : ''}, a network not seen for this user before.`,
          evidence: { location: view, method: l.method },
        });
      }
      baselines.touch(l.server, 'asn', asnKey, l.timeMs);
    }
  }
  return out;
}

function describePlace(l: Location): string {
  if (l.kind !== 'public') return `a ${l.kind} network`;
  return l.country ? `country ${l.country}` : 'an unknown country';
}
