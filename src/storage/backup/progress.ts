// Progress of a backup or restore, reported to a callback at most every `intervalMs`.
export interface BackupProgress {
  readonly phase: 'backup' | 'wait-archive' | 'extract' | 'replay' | 'done';
  /** Bytes (backup, extract) or WAL files (replay) done, and the estimate of the total (0: unknown). */
  readonly done: number;
  readonly total: number;
  readonly unit: 'bytes' | 'wal-files';
}

export type ProgressFn = (p: BackupProgress) => void;

export function throttled(fn: ProgressFn | undefined, intervalMs = 200): ProgressFn {
  let last = 0;
  return (p) => {
    if (!fn) return;
    const now = Date.now();
    if (p.phase === 'done' || now - last >= intervalMs || p.done === p.total) {
      last = now;
      fn(p);
    }
  };
}

/** A one-line text rendering for a CLI progress display (`\r`-updated on a terminal). */
export function formatProgress(p: BackupProgress): string {
  if (p.unit === 'wal-files') return `${p.phase}: ${p.done} WAL files${p.total ? ` of ~${p.total}` : ''}`;
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const pct = p.total ? ` (${Math.min(100, (100 * p.done) / p.total).toFixed(0)}%)` : '';
  return `${p.phase}: ${mib(p.done)} MiB${p.total ? ` of ~${mib(p.total)} MiB` : ''}${pct}`;
}
