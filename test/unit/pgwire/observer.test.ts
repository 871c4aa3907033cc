// The session observer: message codes, boundaries for the relay, consumers kept apart.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendCode, BackendType, FrontendCode, FrontendType, SessionObserver, type BackendEvent, type FrontendEvent } from '../../../src/pgwire/index.js';
import { errorResponse, readyForQuery } from '../../../src/pgwire/backend.js';
import { MessageWriter } from '../../../src/pgwire/message-writer.js';

describe('session observer', () => {
  it('message codes are the type characters', () => {
    for (const [name, ch] of Object.entries(FrontendType)) assert.equal(FrontendCode[name as keyof typeof FrontendCode], ch.charCodeAt(0), name);
    for (const [name, ch] of Object.entries(BackendType)) assert.equal(BackendCode[name as keyof typeof BackendCode], ch.charCodeAt(0), name);
  });

  it('follows the server boundary, its last type and the client Terminate, with no consumer', () => {
    const o = new SessionObserver([]);
    assert.equal(o.serverAtBoundary, true);
    const ready = readyForQuery('I');
    o.fromServer(ready.subarray(0, 3));
    assert.equal(o.serverAtBoundary, false);
    o.fromServer(ready.subarray(3));
    assert.equal(o.serverAtBoundary, true);
    assert.equal(o.serverLastType, BackendCode.ReadyForQuery);
    o.fromServer(errorResponse({ severity: 'ERROR', sqlstate: '42601', message: 'x' }));
    assert.equal(o.serverLastType, BackendCode.ErrorResponse);
    assert.equal(o.clientTerminated, false);
    o.fromClient(new MessageWriter().message('X'));
    assert.equal(o.clientTerminated, true);
  });

  it('a consumer that throws is detached; the others go on', () => {
    const seen: FrontendEvent['type'][] = [];
    const backend: BackendEvent['type'][] = [];
    const failures: string[] = [];
    const o = new SessionObserver([
      {
        frontend: () => {
          throw new Error('boom');
        },
        failed: (r) => failures.push(r),
      },
      { frontend: (e) => seen.push(e.type), backend: (e) => backend.push(e.type) },
    ]);
    o.fromClient(new MessageWriter().cstring('SELECT 1').message('Q'));
    o.fromClient(new MessageWriter().message('S'));
    o.fromServer(readyForQuery('I'));
    assert.deepEqual(failures, ['audit tap failed: boom']);
    assert.deepEqual(seen, ['query', 'sync']);
    assert.deepEqual(backend, ['ready']);
  });

  it('a framing error stops every consumer, each told once', () => {
    const failures: string[] = [];
    const o = new SessionObserver([{ failed: (r) => failures.push(`a ${r}`) }, { failed: (r) => failures.push(`b ${r}`) }]);
    o.fromServer(Buffer.from([0x5a, 0, 0, 0, 1]));
    o.fromServer(readyForQuery('I'));
    assert.deepEqual(failures, ['a invalid message length 1 (type 0x5a)', 'b invalid message length 1 (type 0x5a)']);
    assert.equal(o.serverAtBoundary, false);
  });
});

describe('ReadyForQuery status with no consumer (a pooled session that only relays)', () => {
  it('follows the status byte and counts the messages, byte by byte, without decoding anything else', () => {
    const o = new SessionObserver([]);
    assert.equal(o.serverReadyStatus, 0x49, 'idle before any ReadyForQuery');
    assert.equal(o.serverReadyCount, 0);
    const stream = Buffer.concat([
      readyForQuery('T'),
      errorResponse({ severity: 'ERROR', sqlstate: '22012', message: 'division by zero' }),
      readyForQuery('E'),
    ]);
    for (let i = 0; i < stream.length; i++) {
      o.fromServer(stream.subarray(i, i + 1));
      if (i === 5) assert.equal(o.serverReadyStatus, 0x54, "'T' once its body byte came");
    }
    assert.equal(o.serverReadyStatus, 0x45);
    assert.equal(o.serverReadyCount, 2);
    assert.ok(o.serverAtBoundary);
    o.fromServer(readyForQuery('I'));
    assert.equal(o.serverReadyStatus, 0x49);
    assert.equal(o.serverReadyCount, 3);
  });
});

describe('malformed messages decode the same however the stream is cut', () => {
  it('a Close without its target byte does not read the next message (found by the native relay fuzz test)', () => {
    const close = Buffer.from([0x43, 0, 0, 0, 4]); // 'C', no body
    const parse = Buffer.from([0x50, 0, 0, 0, 4]); // 'P': the byte a Close read past its end took as "portal"
    const decode = (chunks: Buffer[]) => {
      const events: FrontendEvent[] = [];
      const o = new SessionObserver([{ frontend: (e) => events.push(e) }]);
      for (const c of chunks) o.fromClient(c);
      return events[0];
    };
    assert.deepEqual(decode([Buffer.concat([close, parse])]), { type: 'close', target: 'statement', name: '' });
    assert.deepEqual(decode([close, parse]), { type: 'close', target: 'statement', name: '' });
  });
});
