// Property-based fuzzing of the SCRAM state machines with random and mutated messages: they must
// return a result or throw ScramError, never another exception.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ScramServerSession } from '../../../../src/auth/scram/server.js';
import { ScramClientSession } from '../../../../src/auth/scram/client.js';
import { ScramError } from '../../../../src/auth/scram/scram-error.js';
import { buildScramVerifier, parseScramVerifier } from '../../../../src/auth/scram/verifier.js';
import { channelBindingHash } from '../../../../src/auth/scram/channel-binding.js';
import { parseSASLInitialResponse, parseSASLResponse } from '../../../../src/pgwire/parse-frontend.js';
import { ProtocolError } from '../../../../src/pgwire/protocol-error.js';
import { makeCertificate } from './certificates.js';

const RUNS = { numRuns: 2000 };
const verifier = parseScramVerifier(buildScramVerifier('pw', { iterations: 16 }))!;
const binding = { type: 'tls-server-end-point' as const, data: Buffer.alloc(32, 3) };

function onlyScramErrors(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ScramError)) throw err;
    assert.match(err.sqlstate, /^(08P01|0A000|28000)$/);
  }
  return true;
}

const mutation = fc.record({ op: fc.constantFrom('set', 'insert', 'delete', 'truncate'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) });
function mutate(input: Buffer, mutations: ReadonlyArray<{ op: string; at: number; byte: number }>): Buffer {
  let out = Buffer.from(input);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    if (m.op === 'set' && at < out.length) out[at] = m.byte;
    else if (m.op === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    else if (m.op === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else out = out.subarray(0, at);
  }
  return out;
}
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
/** Mostly SCRAM-looking text: attribute letters, separators, base64 characters. */
const scramish = fc
  .string({ unit: fc.constantFrom('n', 'y', 'p', 'r', 'c', 's', 'i', 'v', 'e', 'm', 'a', '=', ',', ',', 'A', '+', '/', '9', '\x7f', 'é', '\0'), maxLength: 80 })
  .map((s) => Buffer.from(s));

const sessions = [
  () => new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256', channelBinding: null }),
  () => new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256', channelBinding: binding }),
  () => new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: binding }),
  () => new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256', channelBinding: null, mock: true }),
];
const sessionIndex = fc.integer({ min: 0, max: sessions.length - 1 });

describe('fuzz: ScramServerSession', () => {
  it('clientFirst: random, SCRAM-looking and mutated messages', () => {
    const valid = [Buffer.from('n,,n=,r=fyko+d2lbbFgONRv9qkxdawL'), Buffer.from('y,,n=*,r=abc'), Buffer.from('p=tls-server-end-point,,n=,r=abc,x=ext')];
    const input = fc.oneof(
      bytes(200),
      scramish,
      fc.tuple(fc.constantFrom(...valid), fc.array(mutation, { maxLength: 4 })).map(([b, m]) => mutate(b, m)),
    );
    fc.assert(
      fc.property(sessionIndex, input, (i, data) => onlyScramErrors(() => sessions[i]!().clientFirst(data))),
      RUNS,
    );
  });

  it('clientFinal after a valid client-first: random and mutated messages', () => {
    const input = fc.oneof(bytes(200), scramish, fc.array(mutation, { minLength: 1, maxLength: 4 }));
    fc.assert(
      fc.property(sessionIndex, input, (i, fuzz) => {
        const session = sessions[i]!();
        const plus = i === 2;
        const client = new ScramClientSession({ password: 'pw', ...(plus ? { channelBinding: binding } : {}) });
        const serverFirst = session.clientFirst(client.clientFirst());
        const validFinal = client.serverFirst(serverFirst);
        const data = Array.isArray(fuzz) ? mutate(validFinal, fuzz) : fuzz;
        return onlyScramErrors(() => {
          const result = session.clientFinal(data);
          if (result.ok) assert.deepEqual(data, validFinal); // only the untouched message may succeed
        });
      }),
      RUNS,
    );
  });

  it('the SASL wire parsers feeding the session: ProtocolError or ScramError only', () => {
    fc.assert(
      fc.property(bytes(120), bytes(120), (initial, response) => {
        try {
          const { data } = parseSASLInitialResponse(initial);
          const session = sessions[0]!();
          session.clientFirst(data);
          session.clientFinal(parseSASLResponse(response));
        } catch (err) {
          if (!(err instanceof ProtocolError) && !(err instanceof ScramError)) throw err;
        }
        return true;
      }),
      RUNS,
    );
  });
});

describe('fuzz: ScramClientSession', () => {
  it('serverFirst and serverFinal: random and mutated messages', () => {
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 4 }), scramish, fc.boolean(), (m, junk, useJunk) => {
        const client = new ScramClientSession({ clientKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) });
        const nonce = client.clientFirst().toString().split('r=')[1]!;
        const valid = Buffer.from(`r=${nonce}SRV,s=c2FsdA==,i=4096`);
        return onlyScramErrors(() => {
          client.serverFirst(useJunk ? junk : mutate(valid, m));
          client.serverFinal(mutate(Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`), m));
        });
      }),
      RUNS,
    );
  });
});

describe('fuzz: channelBindingHash', () => {
  it('mutated certificates: a hash name, null or ScramError', async () => {
    const cert = await makeCertificate('ecdsa-p256-sha256');
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (m) => onlyScramErrors(() => channelBindingHash(mutate(cert.der, m)))),
      RUNS,
    );
    fc.assert(
      fc.property(bytes(300), (b) => onlyScramErrors(() => channelBindingHash(b))),
      RUNS,
    );
  });
});
