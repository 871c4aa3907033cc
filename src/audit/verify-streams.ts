// `audit verify` over every gateway's stream: the platform's chained log and each `pgwarden
// gateway` process's, each checked under its own public key; every result says which stream it
// is about. A witness checkpoint or a starting checkpoint belongs to one stream (the first, or
// the one named).
import { verifyStore, type ExportedCheckpoint, type VerifyReport } from './store/index.js';
import type { AuditStreamDir } from './search.js';

export interface AuditStream extends AuditStreamDir {
  /** The key its checkpoints are signed with (SPKI PEM). */
  publicKeyPem(): Promise<string> | string;
}

export type StreamReport = VerifyReport & { readonly stream: string };

export interface StreamsReport {
  /** Every stream verified. */
  readonly ok: boolean;
  readonly streams: readonly StreamReport[];
}

export interface VerifyStreamsOptions {
  /** Only this stream (by name). */
  readonly stream?: string;
  readonly fromCheckpoint?: number;
  readonly lastKnownCheckpoint?: ExportedCheckpoint;
}

export async function verifyStreams(streams: readonly AuditStream[], o: VerifyStreamsOptions = {}): Promise<StreamsReport | { unknown: string }> {
  const chosen = o.stream === undefined ? streams : streams.filter((s) => s.name === o.stream);
  if (!chosen.length) return { unknown: o.stream ?? '' };
  const reports: StreamReport[] = [];
  for (const [i, s] of chosen.entries()) {
    // The caller's checkpoints are about the first stream verified (the one named, or this process's own).
    const mine = i === 0;
    const report = await verifyStore(s.dir, {
      publicKey: await s.publicKeyPem(),
      ...(mine && o.fromCheckpoint !== undefined ? { fromCheckpoint: o.fromCheckpoint } : {}),
      ...(mine && o.lastKnownCheckpoint ? { lastKnownCheckpoint: o.lastKnownCheckpoint } : {}),
    });
    reports.push({ stream: s.name, ...report });
  }
  return { ok: reports.every((r) => r.ok), streams: reports };
}
