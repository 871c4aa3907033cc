// The pre-auth parsers under fuzz, each with the one error type it may throw for bad input and
// the invariants it must keep. Any other exception, or a broken invariant, is a finding.
import { parseStartupPacket } from '../../src/pgwire/startup.js';
import { MessageReader, StartupReader } from '../../src/pgwire/reader.js';
import { ProtocolError } from '../../src/pgwire/protocol-error.js';
import { parsePasswordMessage, parseSASLInitialResponse, parseSASLResponse } from '../../src/pgwire/parse-frontend.js';
import { parseProxyHeader, ProxyProtocolError, startsWithProxySignature, type ProxyHeader } from '../../src/gateway/proxy-protocol/index.js';
import { hasClientAddress } from '../../src/gateway/proxy-stage.js';
import { routeConnection } from '../../src/gateway/route.js';
import { judgeStartupParams } from '../../src/gateway/startup-policy.js';
import {
  ScramServerSession,
  ScramError,
  buildScramVerifier,
  mockVerifier,
  parseScramVerifier,
  type ScramMechanism,
  type ScramVerifier,
} from '../../src/auth/scram/index.js';
import {
  clientFirst,
  FUZZ_BINDING_DATA,
  messageStream,
  NONCE_PLACEHOLDER,
  proxyHeader,
  saslInitialBody,
  SCRAM_SPLIT,
  scramExchange,
  startupPacket,
} from './generate.js';
import type { Rng } from './rng.js';

/** A broken invariant: counted as a finding, like a crash. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

function invariant(ok: boolean, what: string): void {
  if (!ok) throw new InvariantViolation(what);
}

export interface FuzzTarget {
  readonly name: string;
  /** Share of the campaign's inputs. */
  readonly weight: number;
  /** Largest input generated or mutated. */
  readonly maxBytes: number;
  readonly seeds: readonly Buffer[];
  generate(rng: Rng): Buffer;
  /** Runs the parser on one input; `rng` drives choices that are not in the input (chunking). */
  run(input: Buffer, rng: Rng): void;
  /** The parser's own typed error: expected for bad input. */
  typed(err: unknown): boolean;
}

const seedsOf = (gen: (rng: Rng) => Buffer, rng: Rng, n: number) => Array.from({ length: n }, () => gen(rng));

const domain = 'pgwarden.localhost';
const servers = new Set(['pah1', 'pah2', 'srv']);

const startup: FuzzTarget = {
  name: 'startup packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) + routing + startup policy',
  weight: 0.22,
  maxBytes: 12_000,
  seeds: [],
  generate: startupPacket,
  run(input, rng) {
    const p = parseStartupPacket(input, { maxLength: 10_000 });
    if (p.kind !== 'startup') return;
    invariant(p.params.size <= 64 && (p.params.get('user') ?? '') !== '', 'startup parameters out of bounds');
    const route = routeConnection({ sni: rng.chance(0.3) ? `pah1.${domain}` : undefined, params: p.params, domain, serverExists: (n) => servers.has(n) });
    if (route.ok) {
      invariant(!route.forward.has('server'), 'server parameter forwarded');
      judgeStartupParams(route.forward);
    }
  },
  typed: (err) => err instanceof ProtocolError,
};

const framing: FuzzTarget = {
  name: 'framed reader (StartupReader, MessageReader) in random chunks + SASL/password body parsers',
  weight: 0.22,
  maxBytes: 70_000,
  seeds: [],
  generate(rng) {
    return rng.chance(0.5) ? Buffer.concat([startupPacket(rng), messageStream(rng)]) : messageStream(rng);
  },
  run(input, rng) {
    const startupKind = rng.chance(0.4);
    const maxLength = rng.pick([64, 1024, 10_000, 1024 * 1024]);
    const reader = startupKind ? new StartupReader({ maxLength }) : new MessageReader({ maxLength });
    const maxFrame = startupKind ? maxLength : maxLength + 1;
    let consumed = 0;
    let pushed = 0;
    let o = 0;
    while (o < input.length) {
      const n = 1 + (rng.chance(0.5) ? rng.int(8) : rng.int(input.length - o));
      const chunk = input.subarray(o, o + n);
      o += chunk.length;
      reader.push(chunk);
      pushed += chunk.length;
      for (let f = reader.next(); f !== null; f = reader.next()) {
        if (Buffer.isBuffer(f)) {
          consumed += f.length;
          parseStartupPacket(f, { maxLength });
        } else {
          consumed += 5 + f.body.length;
          if (f.type === 'p') {
            const which = rng.int(3);
            if (which === 0) parseSASLInitialResponse(f.body);
            else if (which === 1) parseSASLResponse(f.body);
            else parsePasswordMessage(f.body);
          }
        }
      }
      // Memory bound: after draining, at most one partial frame (and a header) is held.
      invariant(reader.buffered <= maxFrame + 5, `reader holds ${reader.buffered} bytes, bound ${maxFrame + 5}`);
      invariant(consumed + reader.buffered === pushed, 'reader lost or invented bytes');
    }
    const rest = reader.rest();
    invariant(consumed + rest.length === pushed, 'rest() does not account for every byte');
  },
  typed: (err) => err instanceof ProtocolError,
};

const proxy: FuzzTarget = {
  name: 'PROXY v1/v2 header (families, commands, TLVs, SSL sub-TLVs, CRC32C), incremental',
  weight: 0.22,
  maxBytes: 70_000,
  seeds: [],
  generate: proxyHeader,
  run(input, rng) {
    const maxHeaderBytes = rng.pick([16, 107, 232, 1024, 4096, 65551]);
    const whole = parse(input, maxHeaderBytes);
    // Fed a prefix first (as the socket delivers it): never 'ok' with another length, never an
    // error the whole input would not give.
    const part = parse(input.subarray(0, rng.int(input.length + 1)), maxHeaderBytes);
    if (part.kind === 'ok') invariant(whole.kind === 'ok' && whole.consumed === part.consumed, 'prefix accepted, whole input not');
    if (part.kind === 'error') invariant(whole.kind === 'error', 'prefix refused, whole input accepted');
    if (whole.kind === 'ok') {
      invariant(whole.consumed <= input.length && whole.consumed <= maxHeaderBytes, 'consumed past the input or the bound');
      const h = whole.header;
      if (hasClientAddress(h))
        invariant(h.source !== undefined && (h.family === 'inet' || h.family === 'inet6') && h.command === 'PROXY', 'client address without an IP source');
      startsWithProxySignature(input.subarray(whole.consumed));
    }
    if (whole.kind === 'error') throw whole.error; // counted as the parser's typed refusal
  },
  typed: (err) => err instanceof ProxyProtocolError,
};

type Parsed = { kind: 'incomplete' } | { kind: 'error'; error: ProxyProtocolError } | { kind: 'ok'; consumed: number; header: ProxyHeader };

function parse(buf: Buffer, maxHeaderBytes: number): Parsed {
  try {
    const r = parseProxyHeader(buf, { maxHeaderBytes });
    return r.status === 'incomplete' ? { kind: 'incomplete' } : { kind: 'ok', consumed: r.consumed, header: r.header };
  } catch (err) {
    if (err instanceof ProxyProtocolError) return { kind: 'error', error: err };
    throw err;
  }
}

// One real verifier (4096 iterations, computed once) and the mock the gateway would use.
const realVerifier: ScramVerifier = parseScramVerifier(buildScramVerifier('correct horse battery staple'))!;
const mock = mockVerifier('server-1', 'nobody', Buffer.alloc(32, 7));
const binding = { type: 'tls-server-end-point' as const, data: FUZZ_BINDING_DATA };

function session(rng: Rng, mechanism: ScramMechanism): ScramServerSession {
  const isMock = rng.chance(0.5);
  const plusOffered = mechanism === 'SCRAM-SHA-256-PLUS' || rng.chance(0.3);
  return new ScramServerSession({ verifier: isMock ? mock : realVerifier, mechanism, channelBinding: plusOffered ? binding : null, mock: isMock });
}

const saslInitial: FuzzTarget = {
  name: 'SASLInitialResponse framing + SCRAM client-first-message',
  weight: 0.14,
  maxBytes: 9_000,
  seeds: [],
  generate: saslInitialBody,
  run(input, rng) {
    const initial = parseSASLInitialResponse(input);
    if (initial.mechanism !== 'SCRAM-SHA-256' && initial.mechanism !== 'SCRAM-SHA-256-PLUS') return;
    try {
      const first = session(rng, initial.mechanism).clientFirst(initial.data);
      invariant(first.length > 0 && first.includes(Buffer.from(',s=')), 'server-first-message without a salt');
    } catch (err) {
      if (!(err instanceof ScramError)) throw err;
    }
  },
  typed: (err) => err instanceof ProtocolError,
};

const scram: FuzzTarget = {
  name: 'SCRAM exchange: client-first then client-final (real and mock verifiers, with and without channel binding)',
  weight: 0.2,
  maxBytes: 9_000,
  seeds: [],
  generate: scramExchange,
  run(input, rng) {
    const split = input.indexOf(SCRAM_SPLIT);
    const first = split < 0 ? input : input.subarray(0, split);
    const finalTemplate = split < 0 ? Buffer.alloc(0) : input.subarray(split + 1);
    const mechanism: ScramMechanism = first.toString('latin1').startsWith('p=') && rng.chance(0.8) ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
    const s = session(rng, mechanism);
    const serverFirst = s.clientFirst(first).toString('utf8');
    const nonce = /^r=([^,]*)/.exec(serverFirst)?.[1] ?? '';
    const final = Buffer.from(finalTemplate.toString('latin1').replace(NONCE_PLACEHOLDER, nonce), 'latin1');
    const result = s.clientFinal(final);
    invariant(!result.ok, 'a fuzzed proof was accepted');
  },
  typed: (err) => err instanceof ScramError,
};

export function targets(rng: Rng): FuzzTarget[] {
  const list = [startup, framing, proxy, saslInitial, scram];
  return list.map((t) => ({ ...t, seeds: seedsOf(t.generate, rng, 256) }));
}

export { clientFirst };
