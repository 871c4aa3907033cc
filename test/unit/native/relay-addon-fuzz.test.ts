// The addon's framing against the JavaScript codec's, through the addon's API: random
// well-framed message streams (random types and bodies, DataRow and CopyData among them), sent in
// random splits through a relayed session with observe on. The peer gets exactly the bytes sent,
// and the session observer fed the addon's 'observe' batches (skip records and all) gives the same
// events as one fed the bytes themselves. One direction at a time: copy mode, which crosses
// directions, has its own tests.
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SessionObserver, type SessionConsumer } from '../../../src/pgwire/index.js';
import { addon, adoptPlain, expectEvent, handleOf, next, options, setUpAddon, skip, tearDownAddon } from './harness.js';

const TYPES = 'QPBEFCSDHdcfXZ12sIGHVTnt3NA'.split('');

const message = fc.tuple(fc.constantFrom(...TYPES), fc.uint8Array({ maxLength: 300 })).map(([type, body]) => {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, Buffer.from(body)]);
});

/** Everything a session observer hands its consumers, in order. */
function observe(feed: (o: SessionObserver) => void, skipRecords: boolean): unknown[] {
  const events: unknown[] = [];
  const consumer: SessionConsumer = {
    decode: { logParameters: true, maxStatementBytes: 1 << 20 },
    frontend: (e) => events.push(['F', e]),
    backend: (e) => events.push(['B', e]),
    failed: (reason) => events.push(['failed', reason]),
  };
  const o = new SessionObserver([consumer], { skipRecords });
  feed(o);
  o.end();
  return mergeCopyData(events);
}

/** The observer reports COPY data per chunk it was fed (a sum of the run's bytes), so how the
 * bytes were cut changes how many copyData events there are, not their total: compared merged. */
function mergeCopyData(events: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const e of events) {
    const [side, ev] = e as [string, { type?: string; bytes?: number }];
    const last = out.at(-1) as [string, { type?: string; bytes?: number }] | undefined;
    if (ev?.type === 'copyData' && last?.[1]?.type === 'copyData' && last[0] === side) {
      out[out.length - 1] = [side, { ...last[1], bytes: (last[1].bytes ?? 0) + (ev.bytes ?? 0) }];
    } else out.push(e);
  }
  return out;
}

function splits(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, buf.length]) {
    if (c > from) out.push(buf.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

let dir: string;
let sink: net.Server;
const peers: net.Socket[] = [];

/** A session relayed to a raw peer of the test's own (not the fake server). */
async function rawSession(): Promise<{ id: number; client: net.Socket; server: net.Socket }> {
  const c = await adoptPlain();
  addon.freeze(c.id);
  await expectEvent(c.id, 'frozen');
  const file = path.join(dir, 'sink');
  const accepted = new Promise<net.Socket>((r) => sink.once('connection', r));
  const socket = net.connect(file);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  handleOf(socket).readStop();
  addon.relay(c.id, handleOf(socket).fd, options({ observe: true }));
  socket.destroy();
  const server = await accepted;
  peers.push(server, c.client);
  c.client.removeAllListeners('data');
  return { id: c.id, client: c.client, server };
}

/** Sends the chunks from `from`, reads all of it at `to`, and collects the observe batches. */
async function through(id: number, from: net.Socket, to: net.Socket, chunks: Buffer[], side: 'client' | 'server'): Promise<{ got: Buffer; batches: Buffer[] }> {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const parts: Buffer[] = [];
  let got = 0;
  const all = new Promise<void>((resolve) => {
    if (total === 0) resolve();
    to.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= total) resolve();
    });
  });
  for (const c of chunks) from.write(c);
  await all;
  to.removeAllListeners('data');
  // The observe events of those bytes, until they account for every byte (copied messages whole,
  // skip records by their byte count).
  const batches: Buffer[] = [];
  let covered = 0;
  while (covered < total) {
    const e = await next(id, 5000);
    if (e.type !== 'observe') assert.fail(`unexpected event ${e.type}`);
    const b = side === 'client' ? e.client : e.server;
    if (!b) continue;
    batches.push(Buffer.from(b));
    for (let at = 0; at < b.length; ) {
      const len = b.readInt32BE(at + 1);
      covered += b[at] === 0 ? b.readInt32BE(at + 13) : 1 + len;
      at += 1 + len;
    }
  }
  return { got: Buffer.concat(parts), batches };
}

describe('native relay addon framing against the JavaScript codec', { skip }, () => {
  before(async () => {
    await setUpAddon();
    dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-relay-fuzz-'));
    sink = net.createServer();
    await new Promise<void>((r) => sink.listen(path.join(dir, 'sink'), r));
  });
  after(() => {
    for (const p of peers) p.destroy();
    sink?.close();
    tearDownAddon();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const side of ['client', 'server'] as const) {
    it(`${side} streams: relayed unchanged, and the observer sees the same events either way`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 25 }), fc.array(fc.nat(), { maxLength: 6 }), async (messages, cuts) => {
          const stream = Buffer.concat(messages);
          const s = await rawSession();
          try {
            const [from, to] = side === 'client' ? [s.client, s.server] : [s.server, s.client];
            const { got, batches } = await through(s.id, from, to, splits(stream, cuts), side);
            assert.deepEqual(got, stream, 'relayed byte for byte');
            const direct = observe((o) => (side === 'client' ? o.fromClient(stream) : o.fromServer(stream)), false);
            const viaAddon = observe((o) => {
              for (const b of batches) side === 'client' ? o.fromClient(b) : o.fromServer(b);
            }, true);
            assert.deepEqual(viaAddon, direct);
          } finally {
            addon.destroy(s.id);
            await untilGone(s.id);
          }
        }),
        { numRuns: 60 },
      );
    });
  }
});

async function untilGone(id: number): Promise<void> {
  for (;;) {
    const e = await next(id, 2000);
    if (e.type === 'closed') return;
  }
}
