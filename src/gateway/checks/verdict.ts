// The one answer every step after the handshake gives: go on, or a refusal the runner reports
// (event, metric, the client's error) in one place. A check that takes a resource hands back a
// guard; the runner holds every guard until the session takes them over or the connection ends.
import type { ClientError } from '../../pgwire/client-errors.js';
import type { AuthMethod } from '../../events/types.js';

/** Something a check took (a connection slot): given back once, by whoever asks first. */
export class Guard {
  private give: (() => void) | null;

  constructor(give: () => void) {
    this.give = give;
  }

  release(): void {
    const give = this.give;
    this.give = null;
    give?.();
  }
}

export interface Refusal {
  readonly ok: false;
  /** What the client is told (SPEC.md §4). */
  readonly error: ClientError;
  /** The reason code of the audit event (and of the metric, for connection.denied). */
  readonly reason: string;
  /** Default: connection.denied. */
  readonly event?: 'connection.denied' | 'auth.failed';
  /** For auth.failed: default scram-sha-256. */
  readonly method?: AuthMethod;
  /** Closed without a message (as PostgreSQL does for an impossible startup length). */
  readonly silent?: boolean;
  /** The server's own ErrorResponse, passed on as it is instead of `error`; the server refused,
   * not the gateway, so the denied metric does not count it. */
  readonly frame?: Buffer;
  /** The unexpected error behind an internal-error refusal, for the log. */
  readonly cause?: unknown;
}

/** `T`: what a passing check found out (step 3: the routed connection). */
export type Verdict<T extends object = Record<never, never>> = ({ readonly ok: true; readonly guard?: Guard } & T) | Refusal;

export const PASS: Verdict = { ok: true };

export function refusal(error: ClientError, reason: string, more: Omit<Refusal, 'ok' | 'error' | 'reason'> = {}): Refusal {
  return { ok: false, error, reason, ...more };
}

/** The guards a connection holds: released together when it ends, unless a session took them. */
export class HeldGuards {
  private guards: Guard[] = [];

  add(guard: Guard | undefined): void {
    if (guard) this.guards.push(guard);
  }

  /** The session owns them from now on: the returned function gives them all back. */
  handOver(): () => void {
    const taken = this.guards;
    this.guards = [];
    return () => {
      for (const g of taken) g.release();
    };
  }

  releaseAll(): void {
    this.handOver()();
  }
}
