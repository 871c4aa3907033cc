// Step 1 on listeners behind a load balancer: exactly one PROXY protocol header (v1 or v2), only
// from the load balancers' addresses, LOCAL refused, a header without a client address (AF_UNSPEC,
// AF_UNIX, v1 UNKNOWN) refused, CRC32C checked when present. The source it names is the client
// address for every later check and for the audit log.
import type { Duplex } from 'node:stream';
import { parseProxyHeader, startsWithProxySignature, ProxyProtocolError, type ProxyHeader } from './proxy-protocol/index.js';
import { cidrContains, parseCidr, parseIp, type Cidr } from '../network/address.js';
import { ConnectionClosed } from './wire.js';

export class ProxyRefused extends Error {
  constructor(readonly reason: string) {
    super(`PROXY protocol: ${reason}`);
  }
}

export function parseTrustedCidrs(list: readonly string[]): Cidr[] {
  return list.map((text) => {
    const c = parseCidr(text);
    if (typeof c === 'string') throw new Error(`load balancer CIDR: ${c}`);
    return c;
  });
}

export function isTrusted(address: string, trusted: readonly Cidr[]): boolean {
  const ip = parseIp(address);
  return ip !== null && trusted.some((c) => cidrContains(c, ip));
}

/** True when the header names the client's IP address (PROXY over TCP4 or TCP6). */
export function hasClientAddress(header: ProxyHeader): boolean {
  return header.command === 'PROXY' && (header.family === 'inet' || header.family === 'inet6') && header.source !== undefined;
}

/** Reads the header; resolves with it and the bytes that followed it; refuses LOCAL and
 * headers without a client address. */
export function readProxyHeader(socket: Duplex, maxHeaderBytes = 4096): Promise<{ header: ProxyHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    const onEnd = () => {
      cleanup();
      reject(new ConnectionClosed());
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let result;
      try {
        result = parseProxyHeader(buf, { maxHeaderBytes });
      } catch (err) {
        cleanup();
        socket.pause();
        reject(err instanceof ProxyProtocolError ? new ProxyRefused(err.reason) : err);
        return;
      }
      if (result.status === 'incomplete') {
        if (buf.length > maxHeaderBytes) {
          cleanup();
          reject(new ProxyRefused('too-long'));
        }
        return;
      }
      cleanup();
      socket.pause();
      const rest = buf.subarray(result.consumed);
      if (result.header.command === 'LOCAL') return reject(new ProxyRefused('local-refused'));
      // PROXY with AF_UNSPEC (v1 "UNKNOWN") or AF_UNIX names no client address: going on would
      // judge the load balancer's own address as the client's.
      if (!hasClientAddress(result.header)) return reject(new ProxyRefused('no-client-address'));
      const second = startsWithProxySignature(rest);
      if (second === 'v1' || second === 'v2' || (second === 'partial' && rest.length > 0)) {
        return reject(new ProxyRefused('second-header'));
      }
      resolve({ header: result.header, rest });
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}
