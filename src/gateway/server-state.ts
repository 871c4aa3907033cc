// Server state check (SPEC.md §3 step 4): only a Ready server takes connections. Pure.
import { clientErrors, type ClientError } from '../pgwire/client-errors.js';
import type { ServerState } from '../catalog/servers-repo.js';

export type StateVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly error: ClientError };

export function decideState(state: ServerState): StateVerdict {
  switch (state) {
    case 'Ready':
      return { ok: true };
    case 'Inaccessible':
      return { ok: false, reason: 'server-inaccessible', error: clientErrors.inaccessible };
    case 'Stopped':
      return { ok: false, reason: 'server-stopped', error: clientErrors.serverStopped };
    case 'Disabled':
      return { ok: false, reason: 'server-disabled', error: clientErrors.serverDisabled };
    case 'Dropping':
      return { ok: false, reason: 'server-dropping', error: clientErrors.serverDropping };
    case 'Creating':
      return { ok: false, reason: 'server-creating', error: { sqlstate: '57P03', message: 'The server is being created. Retry in a moment.' } };
  }
}
