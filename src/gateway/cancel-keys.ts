// Cancel keys: each session's BackendKeyData carries the server's real process id (so
// pg_backend_pid(), pg_terminate_backend and NOTIFY's sender pid mean what they say) with a
// secret of the gateway's own. A CancelRequest is forwarded only when its pid and secret match a
// live session; the server's real secret never leaves the gateway. An unknown key is answered
// exactly like a known one: the connection is closed without a word.
// With pooling, a key may name a target found at cancel time: in transaction mode the backend
// running the client's transaction changes with each transaction (none between them), so the
// client is given a process id of the gateway's own (see VIRTUAL_PID_BASE) and the CancelRequest
// goes to whichever backend the session holds when it arrives.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface CancelTarget {
  readonly socketDir: string;
  readonly processId: number;
  readonly secretKey: Buffer;
}

export interface IssuedKey {
  /** The server's real backend pid, or a gateway-chosen one (VIRTUAL_PID_BASE and up) for a
   * target resolved at cancel time. */
  readonly processId: number;
  /** The gateway's secret for this session (4 bytes for protocol 3.0/3.1, 32 from 3.2). */
  readonly secretKey: Buffer;
  release(): void;
}

/** PostgreSQL 18's length for protocol 3.2 (the protocol allows up to 256 bytes). */
export const LONG_CANCEL_KEY_LENGTH = 32;

/** The target now, or null when the session holds no backend (a cancel then does nothing). */
export type TargetResolver = () => CancelTarget | null;

/** Process ids the gateway chooses start here: above Linux's largest pid_max (2^22), so they
 * never name a real backend of any server. */
export const VIRTUAL_PID_BASE = 0x40000000;

interface Entry {
  readonly secret: Buffer;
  readonly target: CancelTarget | TargetResolver;
}

export class CancelKeys {
  /** By pid: more than one entry only when two servers (attached clusters on other hosts)
   * happen to share a pid. */
  private readonly byPid = new Map<number, Entry[]>();
  private count = 0;
  private nextVirtual = 0;

  /** A key for a new session: the real pid, a fresh secret of `secretLength` bytes. A resolver
   * target gets a process id of the gateway's own. */
  issue(target: CancelTarget | TargetResolver, secretLength = 4): IssuedKey {
    const entry: Entry = { secret: randomBytes(secretLength), target };
    const processId = typeof target === 'function' ? this.virtualPid() : target.processId;
    const list = this.byPid.get(processId);
    if (list) list.push(entry);
    else this.byPid.set(processId, [entry]);
    this.count++;
    let released = false;
    return {
      processId,
      secretKey: Buffer.from(entry.secret),
      release: () => {
        if (released) return;
        released = true;
        const entries = this.byPid.get(processId);
        const i = entries?.indexOf(entry) ?? -1;
        if (!entries || i < 0) return;
        entries.splice(i, 1);
        if (!entries.length) this.byPid.delete(processId);
        this.count--;
      },
    };
  }

  /** The session a CancelRequest names, or null. Every candidate's secret is compared in
   * constant time. */
  lookup(processId: number, secretKey: Buffer): CancelTarget | null {
    let found: Entry | null = null;
    for (const entry of this.byPid.get(processId) ?? []) {
      if (entry.secret.length === secretKey.length && timingSafeEqual(entry.secret, secretKey)) found = entry;
    }
    if (!found) return null;
    return typeof found.target === 'function' ? found.target() : found.target;
  }

  /** A gateway-chosen pid not in use, in [VIRTUAL_PID_BASE, 2^31). */
  private virtualPid(): number {
    for (;;) {
      const pid = VIRTUAL_PID_BASE + (this.nextVirtual++ % VIRTUAL_PID_BASE);
      if (!this.byPid.has(pid)) return pid;
    }
  }

  get size(): number {
    return this.count;
  }
}
