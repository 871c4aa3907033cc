// CancelRequest: forwarded to the right server when the key is known; the client is told
// nothing either way.
import net from 'node:net';
import { cancelRequest } from '../../pgwire/index.js';
import { socketPath } from '../backend.js';
import type { CancelKeys } from '../cancel-keys.js';

/** False when no session of this process has the key (another gateway process may). */
export async function forwardCancel(keys: CancelKeys, processId: number, secretKey: Buffer): Promise<boolean> {
  const target = keys.lookup(processId, secretKey);
  if (!target) return false;
  await new Promise<void>((resolve) => {
    const s = net.connect(socketPath(target.socketDir));
    s.on('connect', () => s.end(cancelRequest(target.processId, target.secretKey)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
  return true;
}
