// The session index's changes from another gateway process to the platform process (which joins
// the servers' pgAudit lines to sessions): with transaction pooling one per lend and one per
// return, so they travel compact. A session is described once (its `ref`), the first time one of
// its changes is sent (again after its end, should it change after that); each change is then four
// numbers in a Float64Array, `[kind (0 lent, 1 returned), ref, backend pid, time ms]`, which the
// IPC channel copies as bytes instead of serializing an object with its strings per change.
import type { IndexedSession, SessionIndex } from '../../gateway/session-index.js';

/** A session of the sending process, named by `ref` in the changes. */
export interface IndexedRef extends IndexedSession {
  readonly ref: number;
}

export interface IndexChanges {
  readonly sessions: readonly IndexedRef[];
  readonly ops: Float64Array;
}

const LENT = 0;
const RETURNED = 1;

/** The sending side: changes collected until `take()`. */
export class IndexOutbox {
  private readonly refs = new Map<string, number>();
  private nextRef = 1;
  private sessions: IndexedRef[] = [];
  private ops: number[] = [];

  get empty(): boolean {
    return this.ops.length === 0;
  }

  lent(s: IndexedSession, pid: number, at: number): void {
    this.add(LENT, s, pid, at);
  }

  returned(s: IndexedSession, pid: number, at: number): void {
    this.add(RETURNED, s, pid, at);
  }

  /** The session ended (its session.ended event goes with the changes): its ref is not used again. */
  ended(connId: string): void {
    this.refs.delete(connId);
  }

  /** What was collected, for one message; null when nothing. */
  take(): IndexChanges | null {
    if (this.ops.length === 0) return null;
    const out = { sessions: this.sessions, ops: Float64Array.from(this.ops) };
    this.sessions = [];
    this.ops = [];
    return out;
  }

  private add(kind: number, s: IndexedSession, pid: number, at: number): void {
    let ref = this.refs.get(s.connId);
    if (ref === undefined) {
      ref = this.nextRef++;
      this.refs.set(s.connId, ref);
      this.sessions.push({ ref, connId: s.connId, server: s.server, backendPid: s.backendPid, applicationName: s.applicationName });
    }
    this.ops.push(kind, ref, pid, at);
  }
}

/** The receiving side, one per sending process: applies changes to the platform's index. */
export class IndexInbox {
  private readonly byRef = new Map<number, IndexedRef>();
  private readonly refOf = new Map<string, number>();

  apply(changes: IndexChanges, index: SessionIndex): void {
    for (const r of changes.sessions) {
      this.byRef.set(r.ref, r);
      this.refOf.set(r.connId, r.ref);
    }
    const ops = changes.ops;
    for (let i = 0; i + 3 < ops.length; i += 4) {
      const s = this.byRef.get(ops[i + 1]!);
      if (s === undefined) continue; // its session already ended
      if (ops[i] === LENT) index.lent(s, ops[i + 2]!, ops[i + 3]!);
      else index.returned(s, ops[i + 2]!, ops[i + 3]!);
    }
  }

  /** The session ended: forgotten here (the index keeps its holds for a while). */
  ended(connId: string): void {
    const ref = this.refOf.get(connId);
    if (ref === undefined) return;
    this.refOf.delete(connId);
    this.byRef.delete(ref);
  }

  /** The sending process was started again: its refs start over. */
  clear(): void {
    this.byRef.clear();
    this.refOf.clear();
  }
}
