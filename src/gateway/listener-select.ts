// Which listener a connection belongs to, from the connection's own local address: a public
// listener bound to a wildcard (0.0.0.0, ::) receives every address of the host, the listen
// addresses of virtual networks included, so the socket it was accepted on does not say
// whether it is public or virtual-network traffic; the address the client connected to does.
// Pure functions: the gateway keeps the sockets, these only decide.
import net from 'node:net';
import { formatIp, parseIp } from '../network/address.js';
import type { ListenerSpec } from './context.js';

/** An address and port a public listener is bound to (as server.address() reports it). */
export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

/** Canonical text of an address (IPv4-mapped IPv6 as IPv4), or the text as given. */
export function canonicalAddress(address: string): string {
  const ip = parseIp(address);
  return ip === null ? address : formatIp(ip);
}

/**
 * How connections to `address`:`port` reach the public listeners: `exact` when one is bound to
 * that very address, `wildcard` when one is bound to the unspecified address of its family
 * (IPv6 wildcards are bound IPv6-only), null when none receives them.
 */
export function publicCoverage(address: string, port: number, bound: readonly BoundAddress[]): 'exact' | 'wildcard' | null {
  const wanted = canonicalAddress(address);
  const wildcard = net.isIPv6(wanted) ? '::' : '0.0.0.0';
  let found: 'exact' | 'wildcard' | null = null;
  for (const b of bound) {
    if (b.port !== port) continue;
    const at = canonicalAddress(b.address);
    if (at === wanted) return 'exact';
    if (at === wildcard) found = 'wildcard';
  }
  return found;
}

/**
 * The listener a connection accepted on `listener` belongs to: a public listener's connection
 * to the listen address of a virtual network is that network's (private) traffic. Listeners
 * behind load balancers (PROXY protocol) are left as they are: their local address is the one
 * the balancer connects to.
 */
export function listenerFor(listener: ListenerSpec, localAddress: string | undefined, vnetsByAddress: ReadonlyMap<string, string>): ListenerSpec {
  if (listener.kind !== 'public' || listener.proxy || !localAddress) return listener;
  const local = canonicalAddress(localAddress);
  const vnet = vnetsByAddress.get(local);
  return vnet === undefined ? listener : { kind: 'private', vnet, host: local, port: listener.port };
}
