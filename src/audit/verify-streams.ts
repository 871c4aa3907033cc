// `audit verify` over every gateway's stream: the platform's chained log, each `pgwarden gateway`
// process's on this host, and each registered gateway's on another host. Every stream is checked
// here under its own public key; a remote one is copied from its gateway's API and checked under
// the key registered in the catalog, so the platform never takes a gateway's word for its own
// stream. A gateway that does not answer is reported `unreachable` and makes the answer not ok.
// A witness checkpoint or a starting checkpoint belongs to one stream (the first, or the one named).
import { verifyStore, type ExportedCheckpoint, type VerifyReport } from './store/index.js';
import type { AuditStreamDir, RemoteStream } from './search.js';

export interface AuditStream extends AuditStreamDir {
  /** The key its checkpoints are signed with (SPKI PEM). */
  publicKeyPem(): Promise<string> | string;
}

/** A stream `audit verify` checks: on this host's disk, or copied from another gateway. */
export type VerifiableStream = AuditStream | RemoteStream;

/** Who asked: remote gateways are called with the caller's own token, never the platform's. */
export interface StreamCaller {
  /** The caller's Authorization header, forwarded as it came. */
  readonly authorization?: string;
}

export type StreamReport = VerifyReport & {
  readonly stream: string;
  /** A remote stream: its gateway's API. */
  readonly remote?: string;
  /** A remote stream that could not be read, and why (the report is not ok). */
  readonly unreachable?: string;
};

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

export async function verifyStreams(streams: readonly VerifiableStream[], o: VerifyStreamsOptions = {}): Promise<StreamsReport | { unknown: string }> {
  const chosen = o.stream === undefined ? streams : streams.filter((s) => s.name === o.stream);
  if (!chosen.length) return { unknown: o.stream ?? '' };
  const reports: StreamReport[] = [];
  for (const [i, s] of chosen.entries()) {
    // The caller's checkpoints are about the first stream verified (the one named, or this process's own).
    const mine = i === 0;
    const options = {
      ...(mine && o.fromCheckpoint !== undefined ? { fromCheckpoint: o.fromCheckpoint } : {}),
      ...(mine && o.lastKnownCheckpoint ? { lastKnownCheckpoint: o.lastKnownCheckpoint } : {}),
    };
    if ('remote' in s) {
      reports.push(await verifyRemote(s, options));
      continue;
    }
    const report = await verifyStore(s.dir, { publicKey: await s.publicKeyPem(), ...options });
    reports.push({ stream: s.name, ...report });
  }
  return { ok: reports.every((r) => r.ok), streams: reports };
}

async function verifyRemote(s: RemoteStream, options: Omit<Parameters<typeof verifyStore>[1], 'publicKey'>): Promise<StreamReport> {
  let copied = false;
  try {
    const report = await s.remote.withStoreCopy(async (dir) => {
      copied = true;
      return verifyStore(dir, { publicKey: s.remote.publicKeyPem, ...options });
    });
    return { stream: s.name, remote: s.remote.url, ...report };
  } catch (err) {
    if (copied) throw err; // a failure of verifying here, not of the gateway
    return unreachable(s, (err as Error).message);
  }
}

/** A stream that could not be read: not verified, so not ok. */
export function unreachable(s: RemoteStream, reason: string): StreamReport {
  return { stream: s.name, remote: s.remote.url, unreachable: reason, ok: false, firstSeq: undefined, lastSeq: 0, records: 0, checkpoints: 0, warnings: [] };
}
