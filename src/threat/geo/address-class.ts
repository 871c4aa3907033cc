// Which addresses have no place on the map: loopback, private (RFC 1918 and the RFC 6598 shared
// CGNAT space), link-local, IPv6 unique-local, and everything else that is not public unicast
// (unspecified, multicast, documentation, benchmarking, reserved, IPv6 outside 2000::/3).
// Pure and allocation-free: the GeoIP lookup asks this first and never looks these up.

import type { Ipv6Words } from '../../network/ip-text.js';

export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unique-local' | 'reserved';

/** Class of an IPv4 address (unsigned 32-bit integer), or null when it is public. */
export function classifyIpv4(v: number): AddressClass | null {
  const a = v >>> 24;
  const b = (v >>> 16) & 0xff;
  const c = (v >>> 8) & 0xff;
  if (a === 127) return 'loopback';
  if (a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168)) return 'private';
  if (a === 100 && b >= 64 && b < 128) return 'private'; // 100.64.0.0/10 shared address space
  if (a === 169 && b === 254) return 'link-local';
  if (a === 0 || a >= 224) return 'reserved'; // "this network", multicast, 240/4, broadcast
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved'; // IETF assignments, TEST-NET-1
  if (a === 198 && (b === 18 || b === 19)) return 'reserved'; // benchmarking 198.18.0.0/15
  if (a === 198 && b === 51 && c === 100) return 'reserved'; // TEST-NET-2
  if (a === 203 && b === 0 && c === 113) return 'reserved'; // TEST-NET-3
  return null;
}

/**
 * Class of an IPv6 address, or null when it is public. IPv4-mapped addresses (::ffff:0:0/96)
 * must be turned into IPv4 before: here they are outside 2000::/3, so 'reserved', as are NAT64
 * (64:ff9b::/96) and discard (100::/64) addresses. Teredo (2001::/32) and 6to4 (2002::/16) are
 * public: the data has ASNs for them.
 */
export function classifyIpv6(w: Ipv6Words): AddressClass | null {
  const { w0, w1, w2, w3 } = w;
  if (w0 === 0 && w1 === 0 && w2 === 0) return w3 === 1 ? 'loopback' : 'reserved'; // ::1, ::, ::/96
  const top = w0 >>> 16;
  if ((top & 0xfe00) === 0xfc00) return 'unique-local'; // fc00::/7
  if ((top & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((top & 0xe000) !== 0x2000) return 'reserved'; // not global unicast 2000::/3 (multicast ff00::/8 included)
  if (w0 === 0x20010db8) return 'reserved'; // documentation 2001:db8::/32
  if ((w0 >>> 12) === 0x3fff0) return 'reserved'; // documentation 3fff::/20 (RFC 9637)
  if (w0 === 0x20010002 && (w1 >>> 16) === 0) return 'reserved'; // benchmarking 2001:2::/48
  return null;
}
