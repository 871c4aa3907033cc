// Principal and location anomalies: learning first, then new principals, principals back after
// N days, new countries and networks; attack tools and listed addresses at any time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Baselines } from '../../../src/threat/baselines.js';
import { connectionFindings, loginFindings, type AnomalySources, type Location } from '../../../src/threat/detectors/login-anomaly.js';
import { DEFAULT_POLICY } from '../../../src/threat/policy.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const policy = {
  ...DEFAULT_POLICY,
  state: 'Enabled' as const,
  enabledAt: new Date(T0).toISOString(),
  detectors: { ...DEFAULT_POLICY.detectors, learningPeriodSeconds: 86_400 },
};
const places: Record<string, Location> = {
  '127.0.0.1': { kind: 'loopback' },
  '8.8.8.8': { kind: 'public', country: 'US', asn: 15169, organization: 'GOOGLE' },
  '8.8.4.4': { kind: 'public', country: 'US', asn: 15169, organization: 'GOOGLE' },
  '1.1.1.1': { kind: 'public', country: 'AU', asn: 13335, organization: 'CLOUDFLARENET' },
};
const sources: AnomalySources = {
  locations: { lookup: (a) => places[a] ?? { kind: 'reserved' } },
  ipLists: { match: (a) => (a === '6.6.6.6' ? { list: 'tor-exits', entry: '6.6.6.0/24' } : null) },
  harmfulApp: (n) => (n && /sqlmap/i.test(n) ? { tool: 'sqlmap', description: 'SQL injection tool' } : null),
};
const login = (b: Baselines, user: string, address: string, timeMs: number) =>
  loginFindings({ server: 'db', user, address, applicationName: 'app', method: 'scram-sha-256', timeMs }, policy, b, sources).map((f) => f.kind);

test('during learning nothing is raised; after it, a new principal is a PrincipalAnomaly', () => {
  const b = new Baselines();
  assert.deepEqual(login(b, 'alice', '127.0.0.1', T0 + 1000), []);
  assert.deepEqual(login(b, 'alice', '8.8.8.8', T0 + 2000), [], 'learning: no location alerts either');
  assert.deepEqual(login(b, 'bob', '127.0.0.1', T0 + DAY + 1), ['principalAnomaly']);
  assert.deepEqual(login(b, 'bob', '127.0.0.1', T0 + DAY + 2), [], 'learned now');
  assert.deepEqual(login(b, 'alice', '127.0.0.1', T0 + DAY + 3), []);
  assert.deepEqual(login(b, 'alice', '127.0.0.1', T0 + 70 * DAY), ['principalAnomaly'], 'not seen for 60+ days');
});

test('a new country and a new network for a known principal; the same network elsewhere in the country is not', () => {
  const b = new Baselines();
  login(b, 'carol', '8.8.8.8', T0 + 10);
  assert.deepEqual(login(b, 'carol', '8.8.4.4', T0 + DAY + 10), []);
  assert.deepEqual(login(b, 'carol', '1.1.1.1', T0 + DAY + 20), ['geoAnomaly', 'networkAnomaly']);
  assert.deepEqual(login(b, 'carol', '127.0.0.1', T0 + DAY + 30), ['geoAnomaly'], 'loopback is its own location class');
  const rows = b.dirty();
  assert.ok(rows.some((r) => r.kind === 'country' && r.key === 'carol\u0000AU'));
});

test('harmful applications and listed addresses are reported on any connection', () => {
  const f = connectionFindings({ server: 'db', user: 'x', address: '6.6.6.6', applicationName: 'sqlmap/1.8', timeMs: 1 }, sources);
  assert.deepEqual(
    f.map((x) => x.kind),
    ['harmfulApplication', 'suspiciousIp'],
  );
  assert.match(f[1]!.description, /tor-exits/);
  assert.deepEqual(connectionFindings({ server: 'db', user: 'x', address: '8.8.8.8', applicationName: 'psql', timeMs: 1 }, sources), []);
});
