// Structure-aware generators of pre-auth inputs: startup-phase packets, typed message streams,
// PROXY v1/v2 headers with TLVs (and a correct CRC32C when asked), SCRAM messages. They produce
// mostly-valid inputs so the mutations in mutate.ts reach past the first length check.
import { buildProxyV1, buildProxyV2, type ProxyTlv } from '../../src/gateway/proxy-protocol/index.js';
import { cancelRequest, saslInitialResponse, saslResponse, passwordMessage, sslRequest, startupMessage, terminate } from '../../src/pgwire/frontend.js';
import { GSSENC_REQUEST_CODE } from '../../src/pgwire/codes.js';
import type { Rng } from './rng.js';

const NAMES = [
  'user',
  'database',
  'options',
  'application_name',
  'replication',
  'server',
  'client_encoding',
  'DateStyle',
  '_pq_.protocol_managed_params',
  '_pq_.x',
  'search_path',
  'pgwarden_audit.gateway_session',
  '',
];
const USERS = ['alice', 'alice@pah1', 'a@b@c', '@', 'nobody@unknown', 'x'.repeat(70), 'ünïcødé@srv', 'pgwarden_maintenance', ''];
const OPTIONS = ['-c application_name=pgwarden', '--server=pah1', 'server=x -c search_path=a\\ b', '-c', '\\', '-ec application_name=x', '   '];

function text(rng: Rng, max: number): string {
  const pool = 'abcdefghijklmnopqrstuvwxyz0123456789-_=,@ .\\é';
  let s = '';
  const n = rng.size(max);
  for (let i = 0; i < n; i++) s += pool[rng.int(pool.length)];
  return s;
}

function value(rng: Rng, name: string): string {
  if (name === 'user') return rng.chance(0.7) ? rng.pick(USERS) : text(rng, 80);
  if (name === 'options') return rng.chance(0.6) ? rng.pick(OPTIONS) : text(rng, 200);
  if (name === 'replication') return rng.pick(['true', 'false', 'database', 'off', 'of', '1', 'x']);
  if (name === 'application_name') return rng.pick(['psql', 'pgwarden-maintenance', ' PGWARDEN', text(rng, 64)]);
  return text(rng, 64);
}

/** A startup-phase packet: StartupMessage (3.0 or another version), SSLRequest, GSSENCRequest,
 * CancelRequest with a 4..256-byte key. */
export function startupPacket(rng: Rng): Buffer {
  switch (rng.int(6)) {
    case 0:
      return sslRequest();
    case 1: {
      const b = Buffer.alloc(8);
      b.writeInt32BE(8, 0);
      b.writeInt32BE(GSSENC_REQUEST_CODE, 4);
      return b;
    }
    case 2:
      return cancelRequest(rng.u32() | 0, rng.bytes(rng.chance(0.7) ? 4 : 4 + rng.int(253)));
    default: {
      const params = new Map<string, string>();
      params.set('user', value(rng, 'user'));
      const n = rng.int(rng.chance(0.05) ? 80 : 6);
      for (let i = 0; i < n; i++) {
        const name = rng.chance(0.8) ? rng.pick(NAMES) : text(rng, 40);
        if (name === '') continue;
        params.set(name, value(rng, name));
      }
      const p = startupMessage(params);
      if (rng.chance(0.2)) p.writeInt32BE(rng.pick([(3 << 16) | 2, (3 << 16) | 0xffff, 2 << 16, 4 << 16]), 4);
      return p;
    }
  }
}

const GS2 = ['n,,', 'y,,', 'p=tls-server-end-point,,', 'p=tls-unique,,', 'n,a=alice,', 'x,,', ''];
/** The tls-server-end-point data the fuzz targets' sessions are given. */
export const FUZZ_BINDING_DATA = Buffer.alloc(32, 9);

function clientFirstWith(rng: Rng, gs2: string): string {
  const user = rng.chance(0.8) ? 'n=' : rng.pick(['n=alice', 'n=,', '']);
  const nonce = rng.chance(0.8) ? `r=${rng.bytes(18).toString('base64')}` : `r=${text(rng, 40)}`;
  const ext = rng.chance(0.1) ? `,${rng.pick(['m=ext', 'x=1', 'foo', '='])}` : '';
  return `${gs2}${user},${nonce}${ext}`;
}

/** A client-first-message of SCRAM. */
export function clientFirst(rng: Rng): string {
  return clientFirstWith(rng, rng.chance(0.6) ? 'n,,' : rng.pick(GS2));
}

export const NONCE_PLACEHOLDER = '@@NONCE@@';
export const SCRAM_SPLIT = 0xff;

/** A client-final-message template: the server's nonce goes where NONCE_PLACEHOLDER is. The
 * channel-binding attribute repeats the GS2 header (and the binding data for p=) mostly. */
export function clientFinalTemplate(rng: Rng, gs2 = 'n,,'): string {
  const right = Buffer.concat([Buffer.from(gs2), gs2.startsWith('p=') ? FUZZ_BINDING_DATA : Buffer.alloc(0)]).toString('base64');
  const cb = rng.chance(0.8) ? `c=${right}` : rng.pick(['c=biws', 'c=eSws', 'c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws', 'c=', 'c=!!']);
  const proof = rng.chance(0.9) ? rng.bytes(32).toString('base64') : rng.bytes(rng.int(64)).toString('base64');
  const ext = rng.chance(0.1) ? `,${rng.pick(['x=1', 'p=AAAA', 'r=x'])}` : '';
  return `${cb},r=${NONCE_PLACEHOLDER}${ext},p=${proof}`;
}

/** Input of the scram target: client-first, 0xFF, client-final template. */
export function scramExchange(rng: Rng): Buffer {
  const gs2 = rng.chance(0.5) ? 'n,,' : rng.pick(GS2);
  return Buffer.concat([Buffer.from(clientFirstWith(rng, gs2)), Buffer.from([SCRAM_SPLIT]), Buffer.from(clientFinalTemplate(rng, gs2))]);
}

/** A SASLInitialResponse body (after type and length): mechanism, int32 length, data. */
export function saslInitialBody(rng: Rng): Buffer {
  const mech = rng.pick(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN', '']);
  const msg = saslInitialResponse(mech || 'X', rng.chance(0.1) ? null : Buffer.from(clientFirst(rng)));
  return msg.subarray(5);
}

/** A stream of typed messages as a client sends them after the StartupMessage. */
export function messageStream(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    switch (rng.int(6)) {
      case 0:
        parts.push(saslInitialResponse('SCRAM-SHA-256', Buffer.from(clientFirst(rng))));
        break;
      case 1:
        parts.push(saslResponse(Buffer.from(clientFinalTemplate(rng))));
        break;
      case 2:
        parts.push(passwordMessage(text(rng, 300)));
        break;
      case 3:
        parts.push(terminate());
        break;
      default: {
        const body = rng.bytes(rng.size(2000));
        const m = Buffer.alloc(5 + body.length);
        m[0] = rng.pick([0x70, 0x51, 0x58, 0x00, 0x45, rng.u32() & 0xff]);
        m.writeInt32BE(4 + body.length, 1);
        body.copy(m, 5);
        parts.push(m);
      }
    }
  }
  return Buffer.concat(parts);
}

const V4 = ['192.0.2.7', '10.0.0.1', '0.0.0.0', '255.255.255.255', '127.0.0.1'];
const V6 = ['2001:db8::1', '::1', '::', '::ffff:192.0.2.1', 'fe80::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'];

function tlv(rng: Rng): ProxyTlv {
  switch (rng.int(10)) {
    case 0:
      return { type: 0x01, value: Buffer.from(rng.pick(['postgresql', 'h2', ''])) };
    case 1:
      return { type: 0x02, value: Buffer.from(rng.pick(['pah1.pgwarden.localhost', '', 'é'.repeat(200)])) };
    case 2:
      return { type: 0x05, value: rng.bytes(rng.int(140)) };
    case 3: {
      const subs = Buffer.concat(
        Array.from({ length: rng.int(4) }, () => {
          const v = Buffer.from(text(rng, 30));
          const h = Buffer.alloc(3);
          h[0] = 0x21 + rng.int(5);
          h.writeUInt16BE(v.length, 1);
          return Buffer.concat([h, v]);
        }),
      );
      return { type: 0x20, value: Buffer.concat([Buffer.from([rng.int(8)]), rng.bytes(4), subs]) };
    }
    case 4:
      return { type: 0xee, value: Buffer.concat([Buffer.from([rng.chance(0.8) ? 1 : rng.int(256)]), rng.bytes(rng.chance(0.8) ? 4 : rng.int(9))]) };
    case 5:
      return {
        type: 0xea,
        value: Buffer.concat([Buffer.from([rng.chance(0.8) ? 1 : 2]), Buffer.from(rng.chance(0.8) ? 'vpce-0123456789abcdef0' : text(rng, 150))]),
      };
    case 6:
      return { type: 0x04, value: rng.bytes(rng.int(32)) };
    case 7:
      return { type: 0x30, value: Buffer.from(text(rng, 20)) };
    default:
      return { type: rng.u32() & 0xff, value: rng.bytes(rng.size(300)) };
  }
}

/** A PROXY header (v1 or v2, every family and command, TLVs, CRC32C), then what follows it. */
export function proxyHeader(rng: Rng): Buffer {
  let header: Buffer;
  const r = rng.int(10);
  if (r < 3) {
    const v4 = rng.chance(0.5);
    header = rng.chance(0.15)
      ? buildProxyV1(null)
      : buildProxyV1({
          source: { address: rng.pick(v4 ? V4 : V6), port: rng.int(65536) },
          destination: { address: rng.pick(v4 ? V4 : V6), port: rng.int(65536) },
        });
  } else {
    const family = rng.pick(['inet', 'inet6', 'unix', 'unspec'] as const);
    const ends =
      family === 'unspec'
        ? {}
        : family === 'unix'
          ? { source: { address: '/run/lb.sock', port: 0 }, destination: { address: '/run/gw.sock', port: 0 } }
          : {
              source: { address: rng.pick(family === 'inet' ? V4 : V6), port: rng.int(65536) },
              destination: { address: rng.pick(family === 'inet' ? V4 : V6), port: rng.int(65536) },
            };
    header = buildProxyV2({
      command: rng.chance(0.85) ? 'PROXY' : 'LOCAL',
      family,
      ...ends,
      tlvs: Array.from({ length: rng.int(rng.chance(0.1) ? 12 : 4) }, () => tlv(rng)),
      withCrc32c: rng.chance(0.5),
    });
  }
  const after = rng.int(4);
  const rest = after === 0 ? Buffer.alloc(0) : after === 1 ? startupPacket(rng) : after === 2 ? proxyHeaderOnly(rng) : rng.bytes(rng.int(16));
  return Buffer.concat([header, rest]);
}

function proxyHeaderOnly(rng: Rng): Buffer {
  return rng.chance(0.5)
    ? Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')
    : buildProxyV2({ command: 'PROXY', source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } });
}
