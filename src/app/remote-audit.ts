// The audit streams of gateways on other hosts, as the platform reads them: through each
// gateway's own API (its URL from the catalog's gateway registry), over HTTPS that must chain to
// the platform CA, with the caller's own bearer token (tokens live in the shared catalog). A
// search pages through its /audit/events; a verify copies its store files (/audit/store) to a
// scratch dir on the platform's encrypted audit volume and checks them here under the public key
// the catalog has for it.
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { request } from 'node:https';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import type { AuditHit, AuditQuery, RemoteReader, RemoteStream } from '../audit/search.js';
import type { StreamCaller } from '../audit/verify-streams.js';
import type { GatewayEntry } from '../catalog/gateways-repo.js';

/** How long one call to a remote gateway may take before it counts as not answering. */
const CALL_TIMEOUT_MS = 10_000;
const STORE_FILE = /^(segment|checkpoints)-[0-9]{6,}\.log$/;
/** How much a listed file may grow before it is copied (the open segment keeps being written). */
const GROWTH_ALLOWED = 64 * 1024 * 1024;

export interface RemoteAuditDeps {
  /** The platform CA (PEM): a remote gateway's API certificate must chain to it. */
  readonly caPem: string;
  /** Where copies are verified: on the platform's encrypted audit volume, removed after. */
  readonly scratchDir: string;
}

export function remoteStreams(entries: readonly GatewayEntry[], caller: StreamCaller, d: RemoteAuditDeps): RemoteStream[] {
  return entries.map((e) => ({ name: e.name, remote: new RemoteGateway(e, caller, d) }));
}

class RemoteGateway implements RemoteReader {
  readonly url: string;
  readonly publicKeyPem: string;

  constructor(
    private readonly entry: GatewayEntry,
    private readonly caller: StreamCaller,
    private readonly d: RemoteAuditDeps,
  ) {
    this.url = entry.apiUrl;
    this.publicKeyPem = entry.auditPublicKey;
  }

  async *records(q: Omit<AuditQuery, 'afterSeq'>, afterSeq: number): AsyncGenerator<AuditHit> {
    const page = String(Math.min((q.limit ?? 100) + 1, 1000));
    let after: number | null = afterSeq;
    while (after !== null) {
      const params = queryParams(q);
      params.set('limit', page);
      if (after > 0) params.set('after', String(after));
      const answer = JSON.parse((await this.get(`/audit/events?${params}`)).toString('utf8')) as { value: AuditHit[]; next: number | string | null };
      for (const h of answer.value) yield { seq: h.seq, time: h.time, hash: h.hash, event: h.event };
      after = typeof answer.next === 'number' ? answer.next : null;
    }
  }

  async withStoreCopy<T>(use: (dir: string) => Promise<T>): Promise<T> {
    await mkdir(this.d.scratchDir, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(path.join(this.d.scratchDir, 'verify-'));
    try {
      const listing = JSON.parse((await this.get('/audit/store')).toString('utf8')) as { files: { name: string; bytes?: number }[] };
      const files = new Map(listing.files.filter((f) => STORE_FILE.test(f.name)).map((f) => [f.name, Number(f.bytes) || 0]));
      const names = [...files.keys()];
      // Checkpoint files before segments: a checkpoint only covers records already on disk, so
      // every checkpoint copied covers records the segments copied after it hold.
      const ordered = [...names.filter((n) => n.startsWith('checkpoints-')).sort(), ...names.filter((n) => n.startsWith('segment-')).sort()];
      // A file may grow while it is copied (the open segment), not without bound: a gateway that
      // sends far more than it listed is not allowed to fill the platform's audit volume.
      for (const name of ordered) await this.download(`/audit/store/${name}`, path.join(dir, name), files.get(name)! + GROWTH_ALLOWED);
      return await use(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private get(route: string): Promise<Buffer> {
    return this.call(route, async (res) => {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    });
  }

  private download(route: string, file: string, maxBytes: number): Promise<void> {
    return this.call(route, async (res) => {
      // Opened before a byte is read, not by the write stream on its own: a download that fails
      // at once leaves no open still pending when the caller removes the directory.
      const fh = await open(file, 'wx', 0o600).catch((err: unknown) => {
        res.destroy();
        throw err;
      });
      let bytes = 0;
      const bounded = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (bytes > maxBytes) done(new Error(`${path.basename(file)} is larger than the ${maxBytes} bytes it was listed with (and may grow by)`));
          else done(null, chunk);
        },
      });
      await pipeline(res, bounded, fh.createWriteStream());
    });
  }

  private call<T>(route: string, read: (res: IncomingMessage) => Promise<T>): Promise<T> {
    const url = new URL(route, this.entry.apiUrl);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        {
          ca: this.d.caPem,
          headers: this.caller.authorization ? { authorization: this.caller.authorization } : {},
          timeout: CALL_TIMEOUT_MS,
        },
        (res) => {
          if (res.statusCode !== 200) {
            void errorOf(res).then((m) => reject(new Error(`${this.entry.apiUrl} answered ${res.statusCode}${m ? `: ${m}` : ''}`)), reject);
            return;
          }
          read(res).then(resolve, (err: Error) => reject(new Error(`${this.entry.apiUrl}: ${err.message}`)));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${CALL_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err) => reject(new Error(`${this.entry.apiUrl} did not answer: ${err.message}`)));
      req.end();
    });
  }
}

/** The message of an API error answer, if it has one. */
async function errorOf(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const c of res) if (text.length < 4096) text += (c as Buffer).toString('utf8');
  try {
    return String((JSON.parse(text) as { error?: { message?: string } }).error?.message ?? '');
  } catch {
    return '';
  }
}

function queryParams(q: Omit<AuditQuery, 'afterSeq'>): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of ['server', 'user', 'class', 'outcome', 'type', 'text'] as const) if (q[k] !== undefined) p.set(k, String(q[k]));
  if (q.since) p.set('since', q.since.toISOString());
  if (q.until) p.set('until', q.until.toISOString());
  return p;
}
