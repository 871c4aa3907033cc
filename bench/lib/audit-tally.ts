// What the audit store recorded during each measured run: the store's segment files (sealed ones
// with the store key) read line by line (records are `{seq,time,prev,hash,event}`, see src/audit/store/FORMAT.md), each event put
// in the run whose wall-clock window holds its own `time` (the statement's time, for gateway and
// pgAudit statement events alike, so pgAudit lines the platform ingests late still count for the
// run that executed them), and counted by type.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isSealHeader, sealedPlaintext } from '../../src/audit/store/seal.js';

export interface TallyWindow {
  readonly key: string;
  /** Date.now() at the start and end of the run. */
  readonly startMs: number;
  readonly endMs: number;
}

export interface Tally {
  /** Gateway statement events (`statement`) of the bench's sessions. */
  statements: number;
  /** Of those, the ones whose text starts with the prefix asked for (pgbench's own statement). */
  matching: number;
  /** pgAudit statement events (`statement.pgaudit`) of the bench's sessions. */
  pgaudit: number;
  /** Everything else in the window (connections, TLS, logins, session ends, admin actions). */
  other: number;
  /** Bytes of record lines (with the newline). */
  bytes: number;
  /** Of the statements, the ones timed after their run ended. */
  late: number;
}

/** Total size of the store's segment files: grows while anything is being recorded. */
export function storeBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) if (/^segment-\d+\.log$/.test(f)) n += statSync(path.join(dir, f)).size;
  return n;
}

/** Returns once the store has not grown for `quietMs` (pgAudit lines are ingested every 500 ms). */
export async function waitForQuietStore(dir: string, quietMs = 1500, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let size = storeBytes(dir);
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`the audit store in ${dir} still grows after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
    const now = storeBytes(dir);
    if (now !== size) {
      size = now;
      since = Date.now();
    }
  }
}

/** Counts the store's records per window; `application` picks the bench's statement events. */
export async function tallyStore(
  dir: string,
  windows: readonly TallyWindow[],
  application: string,
  textPrefix: string,
  /** The store key, for sealed segments. */
  storeKey?: Uint8Array,
): Promise<Map<string, Tally>> {
  const out = new Map<string, Tally>(windows.map((w) => [w.key, { statements: 0, matching: 0, pgaudit: 0, other: 0, bytes: 0, late: 0 }]));
  const sorted = [...windows].sort((a, b) => a.startMs - b.startMs);
  // An event belongs to the last run started before it: one timed after its run's end (handed to
  // the audit late, under load) still counts for it, as no other run was going on then.
  const find = (t: number) => {
    let w: TallyWindow | undefined;
    for (const x of sorted) if (x.startMs <= t) w = x;
    return w;
  };
  const segments = readdirSync(dir)
    .filter((f) => /^segment-\d+\.log$/.test(f))
    .sort();
  for (const seg of segments) {
    const file = path.join(dir, seg);
    const bytes = readFileSync(file);
    if (isSealHeader(bytes) && !storeKey) throw new Error(`${file} is sealed: tallyStore needs the store key`);
    const text = (isSealHeader(bytes) ? sealedPlaintext(bytes, storeKey!, file) : bytes).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let rec: { time?: string; event?: { type?: string; time?: string; applicationName?: string; text?: string } };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        continue; // a torn last line
      }
      const e = rec.event ?? {};
      const t = Date.parse(e.time ?? rec.time ?? '');
      const w = Number.isNaN(t) ? undefined : find(t);
      if (!w) continue;
      const tally = out.get(w.key)!;
      tally.bytes += Buffer.byteLength(line) + 1;
      const ours = e.applicationName === application;
      if (e.type === 'statement' && ours) {
        tally.statements++;
        if (t > w.endMs) tally.late++;
        if (e.text?.startsWith(textPrefix)) tally.matching++;
      } else if (e.type === 'statement.pgaudit' && ours) tally.pgaudit++;
      else tally.other++;
    }
  }
  return out;
}
