// Step 7 (SPEC.md §3): protection, before any password is asked for and before any server is
// contacted, in this order:
//   - startup parameters no client may send (startup-policy.ts: replication, the platform's
//     own application_name values);
//   - throttling: addresses and (user, address) pairs that keep failing (threat protection);
//   - connections per server (session-limiter.ts, PostgreSQL's own text): a slot held until the
//     session ends, as a guard (a pooled server's clients under their own, larger limit).
import { clientErrors } from '../../pgwire/client-errors.js';
import { judgeStartupParams } from '../startup-policy.js';
import { Guard, PASS, refusal, type Verdict } from './verdict.js';
import type { Admission, CheckEnv } from './admission.js';

export function startupParameters(a: Admission): Verdict {
  const verdict = judgeStartupParams(a.forward);
  return verdict.ok ? PASS : refusal(verdict.error, verdict.reason);
}

export function throttle(a: Admission, env: CheckEnv): Verdict {
  return env.threat.blocked(a.server.name, a.clientAddress, a.user) ? refusal(clientErrors.throttled, 'throttled') : PASS;
}

export function connectionLimit(a: Admission, env: CheckEnv): Verdict {
  const release = env.sessions.acquire(a.server.id, a.server.poolMode !== 'none');
  return release ? { ok: true, guard: new Guard(release) } : refusal(clientErrors.tooManyClients, 'too-many-connections');
}
