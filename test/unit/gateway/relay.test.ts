// The relay under strict audit durability: a server chunk waits for the audit log, and a server
// that closes meanwhile (a FATAL, then gone: pg_terminate_backend, a shutdown) must still have
// its last words reach the client before the client's end; plain and pooled relays alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { relay } from '../../../src/gateway/relay.js';
import { errorResponse, SessionObserver } from '../../../src/pgwire/index.js';
import type { ReturnState } from '../../../src/gateway/pool/types.js';

/** Two connected sockets over a Unix socket: [gateway's end, peer's end]. */
async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-'));
  const file = path.join(dir, 's');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(file, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const near = net.connect(file);
  await new Promise<void>((r) => near.once('connect', r));
  const far = await accepted;
  return [
    near,
    far,
    () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  ];
}

const FATAL = errorResponse({ severity: 'FATAL', sqlstate: '57P01', message: 'terminating connection due to administrator command' });

for (const kind of ['plain', 'pooled'] as const) {
  test(`${kind} relay: a FATAL held for the audit log still reaches the client when the server closes meanwhile`, async () => {
    const [serverSide, backend, done1] = await socketPair();
    const [clientPeer, clientSide, done2] = await socketPair();
    let release!: () => void;
    const pending = new Promise<void>((r) => (release = r));
    let first = true;
    const returned: ReturnState[] = [];
    relay({
      client: clientSide,
      server: serverSide,
      clientRest: Buffer.alloc(0),
      serverRest: Buffer.alloc(0),
      observer: new SessionObserver([]),
      hold: () => (first ? ((first = false), pending) : null),
      onEnd: () => undefined,
      ...(kind === 'pooled' ? { pooled: { release: (s: ReturnState) => returned.push(s) } } : {}),
    });
    const got: Buffer[] = [];
    clientPeer.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise<void>((r) => clientPeer.once('end', r));
    backend.end(FATAL); // the server's last words, then gone
    await new Promise<void>((r) => serverSide.once('close', r));
    release();
    await ended;
    assert.deepEqual(Buffer.concat(got), FATAL);
    if (kind === 'pooled') assert.deepEqual(returned, ['broken']);
    clientPeer.destroy();
    done1();
    done2();
  });
}

// Without a hold (batched durability, the default): the FATAL goes straight through, and the
// client's socket is ended after it, never destroyed (a destroyed socket can drop what it still
// had queued). What client-compat's pg_terminate_backend tests see through the gateway.
for (const kind of ['plain', 'pooled'] as const) {
  test(`${kind} relay: a server's FATAL and close reach the client as the FATAL, then an orderly end`, { timeout: 10_000 }, async () => {
    const [serverSide, backend, done1] = await socketPair();
    const [clientPeer, clientSide, done2] = await socketPair();
    const returned: ReturnState[] = [];
    const ended = new Promise<void>((r) =>
      relay({
        client: clientSide,
        server: serverSide,
        clientRest: Buffer.alloc(0),
        serverRest: Buffer.alloc(0),
        observer: new SessionObserver([]),
        onEnd: () => r(),
        ...(kind === 'pooled' ? { pooled: { release: (s: ReturnState) => returned.push(s) } } : {}),
      }),
    );
    const got: Buffer[] = [];
    const events: string[] = [];
    clientPeer.on('data', (c: Buffer) => got.push(c));
    clientPeer.on('error', (err: Error) => events.push(`error ${err.message}`));
    const peerEnded = new Promise<void>((r) => clientPeer.once('end', r));
    const clientClosed = new Promise<void>((r) => clientSide.once('close', r));
    backend.end(FATAL);
    await peerEnded;
    await Promise.all([ended, clientClosed]);
    assert.deepEqual(Buffer.concat(got), FATAL);
    assert.deepEqual(events, []);
    assert.equal(clientSide.writableFinished, true, 'the client was ended, not destroyed');
    if (kind === 'pooled') assert.deepEqual(returned, ['broken']);
    clientPeer.destroy();
    done1();
    done2();
  });
}
