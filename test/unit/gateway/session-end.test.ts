// Step 9's bookkeeping at a session's end (session.ts): the session leaves the active set, its
// hold in the session index ends, and the record the index keeps (for minutes, for pgAudit
// lines) no longer holds the relay's handle, so an ended session does not keep its relay (sockets,
// observer, audit tap) in the heap.
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startSession } from '../../../src/gateway/session.js';
import { SessionIndex } from '../../../src/gateway/session-index.js';
import type { ActiveSession, GatewayContext } from '../../../src/gateway/context.js';
import type { AnyEvent } from '../../../src/events/types.js';
import { readyForQuery } from '../../../src/pgwire/backend.js';

/** Two connected sockets over a Unix socket in a temp dir. */
async function socketPair(dir: string, name: string): Promise<{ near: net.Socket; far: net.Socket; close: () => void }> {
  const file = path.join(dir, name);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(file, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const near = net.connect(file);
  await new Promise<void>((resolve) => near.once('connect', () => resolve()));
  const far = await accepted;
  return { near, far, close: () => server.close() };
}

function fakeContext() {
  const events: AnyEvent[] = [];
  const sessionIndex = new SessionIndex<ActiveSession>();
  const activeSessions = new Set<ActiveSession>();
  let sessions = 0;
  const g = {
    activeSessions,
    sessionIndex,
    statementAudit: () => null,
    threat: { sqlTap: () => null },
    audit: { strict: false, pendingDurable: async () => undefined },
    bus: { publish: (e: AnyEvent) => events.push(e) },
    metrics: { sessions: { inc: () => sessions++, dec: () => sessions-- } },
    log: { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
  };
  return { g: g as unknown as GatewayContext, events, sessionIndex, activeSessions };
}

test('a session ended: out of the active set, its index record kept without the relay handle', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgw-session-end-'));
  const { g, events, sessionIndex, activeSessions } = fakeContext();
  const client = await socketPair(dir, 'client');
  const server = await socketPair(dir, 'server');
  try {
    let released = 0;
    let keyReleased = 0;
    startSession(g, {
      conn: { connId: 'c-1', clientAddress: '127.0.0.1', clientPort: 5000, listener: 'public' },
      fields: { server: 'srv', user: 'alice', database: 'db' },
      serverName: 'srv',
      user: 'alice',
      endpointId: null,
      database: 'db',
      applicationName: 'app',
      client: client.near,
      clientRest: Buffer.alloc(0),
      server: {
        kind: 'direct',
        backend: { socket: server.near, greeting: [], readyForQuery: readyForQuery('I'), processId: 4242, secretKey: Buffer.alloc(4), rest: Buffer.alloc(0) },
      },
      releaseSession: () => released++,
      releaseKey: () => keyReleased++,
    });
    const [active] = [...activeSessions];
    assert.ok(active, 'the session is active');
    assert.ok(active.handle, 'an active session has its relay handle (to be terminated)');
    assert.equal(sessionIndex.find('srv', 4242), active);

    // The relay works: bytes pass both ways.
    const got = new Promise<Buffer>((resolve) => server.far.once('data', resolve));
    client.far.write(Buffer.from('Q\0\0\0\x0dselect 1\0'));
    assert.equal((await got).subarray(5).toString('latin1'), 'select 1\0');

    // The client goes: the session ends.
    const ended = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (events.some((e) => e.type === 'session.ended')) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    client.far.destroy();
    await ended;
    assert.equal(activeSessions.size, 0);
    assert.equal(released, 1);
    assert.equal(keyReleased, 1);
    const kept = sessionIndex.find('srv', 4242);
    assert.equal(kept, active, 'the index still answers for the backend (pgAudit lines come later)');
    assert.equal(kept?.connId, 'c-1');
    assert.equal(kept?.applicationName, 'app');
    assert.equal(kept?.handle, null, 'the ended session holds no relay handle');
  } finally {
    client.near.destroy();
    client.far.destroy();
    server.near.destroy();
    server.far.destroy();
    client.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
