// The addon's event batches written from JavaScript (what native/relay/src/events.rs encodes),
// for tests that play the addon's part. Times are written as given (the addon's clock).
import type { AddonEvent } from '../../../src/gateway/native/addon.js';

export function encodeEvents(events: readonly AddonEvent[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const bytes = (b: Buffer) => {
    u32(b.length);
    parts.push(b);
  };
  const str = (s: string | null) => (s === null ? u32(0xffffffff) : bytes(Buffer.from(s)));
  for (const e of events) {
    u32(e.id);
    switch (e.type) {
      case 'hello':
        parts.push(Buffer.from([1]));
        str(e.sni);
        parts.push(Buffer.from([e.alpn.length]));
        for (const p of e.alpn) str(p);
        break;
      case 'secure':
        parts.push(Buffer.from([2]));
        str(e.version);
        str(e.cipher);
        str(e.sni);
        str(e.alpn);
        break;
      case 'data':
        parts.push(Buffer.from([3]));
        bytes(e.data);
        break;
      case 'end':
        parts.push(Buffer.from([4]));
        break;
      case 'frozen':
        parts.push(Buffer.from([5]));
        break;
      case 'drain':
        parts.push(Buffer.from([6]));
        break;
      case 'observe':
        parts.push(Buffer.from([7, (e.hold ? 1 : 0) | (e.client ? 2 : 0) | (e.server ? 4 : 0)]));
        for (const [side, at] of [
          [e.client, e.clientAt],
          [e.server, e.serverAt],
        ] as const) {
          if (!side) continue;
          const time = Buffer.alloc(8);
          time.writeDoubleLE(at);
          parts.push(time);
          bytes(side);
        }
        break;
      case 'closed': {
        const b = Buffer.alloc(18);
        b[0] = 8;
        b.writeDoubleLE(e.bytesFromClient, 1);
        b.writeDoubleLE(e.bytesToClient, 9);
        b[17] = e.reusable ? 1 : 0;
        parts.push(b);
        str(e.error);
        break;
      }
    }
  }
  return Buffer.concat(parts);
}
