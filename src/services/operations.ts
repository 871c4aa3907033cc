// Long-running operations (backups, restores): started by the API, followed by their id until
// they end. Kept in memory for an hour after they end; a platform restart forgets them.
import { randomUUID } from 'node:crypto';
import type { BackupProgress } from '../storage/backup/index.js';

export interface Operation {
  readonly id: string;
  readonly kind: string;
  readonly target: string;
  status: 'Running' | 'Succeeded' | 'Failed';
  progress: BackupProgress | null;
  readonly startedAt: string;
  endedAt: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
}

const KEEP_MS = 3600_000;

export class Operations {
  private readonly ops = new Map<string, Operation>();

  start(kind: string, target: string, run: (progress: (p: BackupProgress) => void) => Promise<Record<string, unknown>>): Operation {
    const op: Operation = {
      id: randomUUID(),
      kind,
      target,
      status: 'Running',
      progress: null,
      startedAt: new Date().toISOString(),
      endedAt: null,
      result: null,
      error: null,
    };
    this.ops.set(op.id, op);
    run((p) => (op.progress = p))
      .then(
        (result) => {
          op.status = 'Succeeded';
          op.result = result;
        },
        (err: Error) => {
          op.status = 'Failed';
          op.error = err.message;
        },
      )
      .finally(() => {
        op.endedAt = new Date().toISOString();
        setTimeout(() => this.ops.delete(op.id), KEEP_MS).unref();
      });
    return op;
  }

  get(id: string): Operation | null {
    return this.ops.get(id) ?? null;
  }
}
