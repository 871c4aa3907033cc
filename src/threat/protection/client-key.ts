// Which client a failed login counts against. IPv4: the address. IPv6: its /64, the smallest
// network a host is usually given (one SLAAC subnet, the usual residential or cloud delegation),
// so rotating through the 2^64 addresses of one's own /64 is still one client. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) is the IPv4 address.
import { formatIp, parseIp } from '../../network/address.js';
import { formatIpv6 } from '../../network/ip-text.js';

export const IPV6_THROTTLE_PREFIX = 64;

export function throttleClient(address: string): string {
  const ip = parseIp(address);
  if (ip === null) return address; // not an IP address (a Unix socket peer): itself
  if (ip.family === 4) return formatIp(ip);
  return `${formatIpv6({ w0: ip.w0, w1: ip.w1, w2: 0, w3: 0 })}/${IPV6_THROTTLE_PREFIX}`;
}
