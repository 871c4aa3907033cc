// Brute force (SPEC.md §6), a pure detector over failed and successful logins: many failures
// from one address; many users from one address (spraying); many addresses against one user
// (distributed); and a successful login that follows any of them (High). Each incident gives
// one finding when it crosses its threshold (with the attempts so far as its count) and a
// count-1 finding per further attempt, which the alert store folds into the same alert.
import { BoundedMap, DistinctWindow, SlidingWindow } from '../bounded-map.js';
import type { Finding } from '../finding.js';
import type { DetectorSettings } from '../policy.js';

export interface LoginFailure {
  readonly server: string;
  readonly address: string;
  readonly user: string;
  readonly timeMs: number;
  /** The role exists (the password was wrong), as opposed to an unknown role. */
  readonly validUser: boolean;
  /** Refused by the throttle before authentication: still an attempt. */
  readonly throttled: boolean;
  readonly applicationName?: string;
}

export interface LoginSuccess {
  readonly server: string;
  readonly address: string;
  readonly user: string;
  readonly timeMs: number;
  readonly method: string;
}

interface AddressState {
  readonly failures: SlidingWindow;
  readonly users: DistinctWindow;
  attacking: boolean;
  spraying: boolean;
  lastFailure: number;
  validUsers: Set<string>;
}

interface UserState {
  readonly addresses: DistinctWindow;
  distributed: boolean;
  lastFailure: number;
}

export class BruteForceDetector {
  private readonly byAddress = new BoundedMap<string, AddressState>(100_000);
  private readonly byUser = new BoundedMap<string, UserState>(100_000);

  failure(f: LoginFailure, s: DetectorSettings): Finding[] {
    const out: Finding[] = [];
    const windowMs = s.bruteForceWindowSeconds * 1000;
    const a = this.byAddress.upsert(`${f.server}\u0000${f.address}`, () => ({
      failures: new SlidingWindow(),
      users: new DistinctWindow(1000),
      attacking: false,
      spraying: false,
      lastFailure: 0,
      validUsers: new Set<string>(),
    }));
    if (a.attacking && f.timeMs - a.lastFailure > windowMs) {
      a.attacking = false;
      a.spraying = false;
      a.validUsers.clear();
    }
    a.lastFailure = f.timeMs;
    const failures = a.failures.add(f.timeMs, windowMs);
    const users = a.users.add(f.user, f.timeMs, windowMs);
    if (f.validUser && a.validUsers.size < 100) a.validUsers.add(f.user);
    const base = { server: f.server, sourceAddress: f.address, timeMs: f.timeMs };
    if (a.attacking) {
      out.push({
        ...base,
        kind: a.validUsers.size ? 'bruteForceValidUser' : 'bruteForce',
        incidentKey: `address:${f.address}`,
        principal: f.user,
        description: '',
        evidence: {},
        count: 1,
      });
    } else if (failures >= s.bruteForceFailures) {
      a.attacking = true;
      const valid = [...a.validUsers];
      out.push({
        ...base,
        kind: valid.length ? 'bruteForceValidUser' : 'bruteForce',
        incidentKey: `address:${f.address}`,
        principal: a.users.values().length === 1 ? f.user : null,
        description:
          `${failures} failed logins from ${f.address} within ${s.bruteForceWindowSeconds} s` +
          (valid.length ? `, against existing role${valid.length > 1 ? 's' : ''} ${valid.map((u) => `"${u}"`).join(', ')}.` : '.'),
        evidence: {
          failedLogins: failures,
          windowSeconds: s.bruteForceWindowSeconds,
          users: a.users.values().slice(0, 20),
          existingRolesTargeted: valid,
          throttledAttempts: f.throttled ? 1 : 0,
        },
        count: failures,
      });
    }
    if (!a.spraying && users >= s.sprayUsers) {
      a.spraying = true;
      out.push({
        ...base,
        kind: 'passwordSpraying',
        incidentKey: `spray:${f.address}`,
        principal: null,
        description: `Failed logins for ${users} different users from ${f.address} within ${s.bruteForceWindowSeconds} s.`,
        evidence: { users: a.users.values().slice(0, 50), windowSeconds: s.bruteForceWindowSeconds },
        count: users,
      });
    } else if (a.spraying) {
      out.push({ ...base, kind: 'passwordSpraying', incidentKey: `spray:${f.address}`, principal: null, description: '', evidence: {}, count: 1 });
    }

    const u = this.byUser.upsert(`${f.server}\u0000${f.user}`, () => ({ addresses: new DistinctWindow(10_000), distributed: false, lastFailure: 0 }));
    if (u.distributed && f.timeMs - u.lastFailure > windowMs) u.distributed = false;
    u.lastFailure = f.timeMs;
    const addresses = u.addresses.add(f.address, f.timeMs, windowMs);
    if (!u.distributed && addresses >= s.distributedAddresses) {
      u.distributed = true;
      out.push({
        ...base,
        kind: 'distributedBruteForce',
        incidentKey: `user:${f.user}`,
        principal: f.user,
        sourceAddress: null,
        description: `Failed logins for user "${f.user}" from ${addresses} different addresses within ${s.bruteForceWindowSeconds} s.`,
        evidence: { addresses: u.addresses.values().slice(0, 50), windowSeconds: s.bruteForceWindowSeconds },
        count: addresses,
      });
    } else if (u.distributed) {
      out.push({
        ...base,
        kind: 'distributedBruteForce',
        incidentKey: `user:${f.user}`,
        principal: f.user,
        sourceAddress: null,
        description: '',
        evidence: {},
        count: 1,
      });
    }
    return out;
  }

  success(l: LoginSuccess, s: DetectorSettings): Finding[] {
    const windowMs = s.bruteForceWindowSeconds * 1000;
    const a = this.byAddress.get(`${l.server}\u0000${l.address}`);
    const u = this.byUser.get(`${l.server}\u0000${l.user}`);
    const fromAttacker = a?.attacking === true && l.timeMs - a.lastFailure <= windowMs;
    const onTarget = u?.distributed === true && l.timeMs - u.lastFailure <= windowMs;
    if (!fromAttacker && !onTarget) return [];
    const failures = a?.failures.count(l.timeMs, windowMs) ?? 0;
    return [
      {
        kind: 'bruteForceSuccess',
        server: l.server,
        incidentKey: `success:${l.address}:${l.user}`,
        principal: l.user,
        sourceAddress: l.address,
        description: fromAttacker
          ? `User "${l.user}" logged in from ${l.address} (${l.method}) after ${failures} failed logins from that address.`
          : `User "${l.user}" logged in from ${l.address} (${l.method}) during a brute force attack on that user from ${u!.addresses.count(l.timeMs, windowMs)} addresses.`,
        evidence: { method: l.method, failuresBefore: failures, distributedAttack: onTarget },
        count: 1,
        timeMs: l.timeMs,
      },
    ];
  }
}
