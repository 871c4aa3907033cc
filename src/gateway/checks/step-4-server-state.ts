// Step 4 (SPEC.md §3): the server takes connections. First the audit log must be able to record
// the session (failClosed), then only a Ready server is let through.
import { clientErrors } from '../../pgwire/client-errors.js';
import type { ServerState } from '../../catalog/servers-repo.js';
import { PASS, refusal, type Verdict } from './verdict.js';
import type { Admission, CheckEnv } from './admission.js';

export function auditAccepting(_a: Admission, env: CheckEnv): Verdict {
  return env.audit.acceptsConnections ? PASS : refusal(clientErrors.auditUnavailable, 'audit-unavailable');
}

export function serverState(a: Admission): Verdict {
  return decideState(a.server.state);
}

export function decideState(state: ServerState): Verdict {
  switch (state) {
    case 'Ready':
      return PASS;
    case 'Inaccessible':
      return refusal(clientErrors.inaccessible, 'server-inaccessible');
    case 'Stopped':
      return refusal(clientErrors.serverStopped, 'server-stopped');
    case 'Disabled':
      return refusal(clientErrors.serverDisabled, 'server-disabled');
    case 'Dropping':
      return refusal(clientErrors.serverDropping, 'server-dropping');
    case 'Creating':
      return refusal({ sqlstate: '57P03', message: 'The server is being created. Retry in a moment.' }, 'server-creating');
  }
}
