// Byte-level mutations for the hand-rolled fuzz loop (AFL-style havoc): bit flips, interesting
// values, length words rewritten (to lie, or to tell the truth so the parser goes deeper),
// inserts, deletes, splices and protocol tokens. Output is bounded by maxBytes.
import type { Rng } from './rng.js';

const INTERESTING8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x20, 0x2c, 0x3d, 0x40];
const INTERESTING32 = [
  0, 1, -1, 4, 5, 7, 8, 9, 12, 16, 255, 256, 1024, 4096, 8192, 9999, 10_000, 10_001, 65535, 65536, 0x7fffffff, -0x80000000, 80877102, 80877103, 80877104,
  196608, 196610, 131072,
];
const INTERESTING16 = [0, 1, 3, 4, 5, 12, 36, 216, 255, 256, 4080, 4096, 0x7fff, 0x8000, 0xffff];
const TOKENS = [
  ',',
  '=',
  '\0',
  '\r\n',
  ' ',
  'n,,',
  'y,,',
  'p=tls-server-end-point,',
  'a=',
  'n=',
  'r=',
  's=',
  'i=',
  'c=',
  'p=',
  'm=',
  'biws',
  'PROXY ',
  'TCP4 ',
  'TCP6 ',
  'UNKNOWN',
  '::ffff:',
  '255.255.255.255',
  '65535',
  '0',
  '::',
  '@',
  'user\0',
  'database\0',
  'options\0',
  'replication\0',
  'application_name\0',
  '-c ',
  'server=',
  '_pq_.',
  'SCRAM-SHA-256\0',
  'SCRAM-SHA-256-PLUS\0',
  '\u00e9',
  '\ud83d\ude00',
  '\\',
].map((t) => Buffer.from(t, 'utf8'));

export function mutate(input: Buffer, rng: Rng, corpus: readonly Buffer[], maxBytes: number): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = rng.chance(0.5) ? 1 : 1 + rng.int(rng.chance(0.2) ? 16 : 4);
  for (let r = 0; r < rounds; r++) b = step(b, rng, corpus);
  return b.length > maxBytes ? b.subarray(0, maxBytes) : b;
}

function step(b: Buffer, rng: Rng, corpus: readonly Buffer[]): Buffer {
  const at = () => rng.int(b.length + 1);
  switch (rng.int(13)) {
    case 0: // flip a bit
      if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return b;
    case 1: // an interesting or random byte
      if (b.length) b[rng.int(b.length)] = rng.chance(0.5) ? rng.pick(INTERESTING8) : rng.u32() & 0xff;
      return b;
    case 2: {
      // an interesting int32 somewhere (length words, codes)
      if (b.length < 4) return b;
      const o = rng.chance(0.5) ? (rng.pick([0, 1, 4, 8].filter((x) => x + 4 <= b.length)) ?? 0) : rng.int(b.length - 3);
      b.writeInt32BE(rng.pick(INTERESTING32) | 0, o);
      return b;
    }
    case 3: {
      // an interesting int16 (PROXY v2 lengths, TLV lengths)
      if (b.length < 2) return b;
      b.writeUInt16BE(rng.pick(INTERESTING16), rng.int(b.length - 1));
      return b;
    }
    case 4: {
      // insert random bytes
      const o = at();
      return Buffer.concat([b.subarray(0, o), rng.bytes(1 + rng.int(16)), b.subarray(o)]);
    }
    case 5: {
      // delete a range
      if (!b.length) return b;
      const o = rng.int(b.length);
      return Buffer.concat([b.subarray(0, o), b.subarray(o + 1 + rng.int(Math.min(32, b.length - o)))]);
    }
    case 6: // truncate
      return b.subarray(0, rng.int(b.length + 1));
    case 7: {
      // duplicate a range
      if (!b.length) return b;
      const o = rng.int(b.length);
      const piece = b.subarray(o, o + 1 + rng.int(64));
      const times = rng.chance(0.1) ? 1 + rng.int(64) : 1;
      const d = at();
      return Buffer.concat([b.subarray(0, d), ...Array<Buffer>(times).fill(piece), b.subarray(d)]);
    }
    case 8: {
      // splice with another input
      const other = rng.pick(corpus);
      const o = at();
      const p = rng.int(other.length + 1);
      return Buffer.concat([b.subarray(0, o), other.subarray(p, p + rng.int(other.length - p + 1))]);
    }
    case 9: {
      // a protocol token, inserted or overwritten
      const t = rng.pick(TOKENS);
      const o = at();
      return rng.chance(0.5) ? Buffer.concat([b.subarray(0, o), t, b.subarray(o)]) : Buffer.concat([b.subarray(0, o), t, b.subarray(o + t.length)]);
    }
    case 10: // tell the truth in the leading length word (StartupMessage framing)
      if (b.length >= 4) b.writeInt32BE(b.length, 0);
      return b;
    case 11: // tell the truth in a typed message's length word
      if (b.length >= 5) b.writeInt32BE(b.length - 1, 1);
      return b;
    default: {
      // append random bytes
      return Buffer.concat([b, rng.bytes(1 + rng.int(rng.chance(0.05) ? 4096 : 32))]);
    }
  }
}
