// Admission of connections that have not authenticated yet (W1): a global cap, a cap per
// client address (per /64 for IPv6, where one host gets a whole prefix), and a descriptor
// reserve so established sessions and the platform keep working while a flood goes on. A
// ticket is held from accept until the login succeeds or the socket closes.
import { formatIp, parseIp } from '../network/address.js';
import { formatIpv6 } from '../network/ip-text.js';

export interface PreauthLimits {
  /** Connections not yet authenticated, in all. */
  readonly maxPreauthConnections: number;
  /** Connections not yet authenticated from one IPv4 address or one IPv6 /64. */
  readonly maxPreauthPerAddress: number;
  /** New pre-auth connections are refused while fewer descriptors than this are left. */
  readonly descriptorReserve: number;
}

/** What the process has of file descriptors. */
export interface DescriptorUsage {
  /** Open descriptors now (an estimate that errs towards more). */
  open(): number;
  /** The soft RLIMIT_NOFILE. */
  readonly limit: number;
}

export type PreauthRefusal = 'global' | 'per-address' | 'descriptor-reserve';

export interface PreauthTicket {
  /** The bucket the connection is counted in: the address, or the /64 of an IPv6 address. */
  readonly bucket: string;
  /** Idempotent: the login succeeded or the connection ended. */
  release(): void;
}

/** The per-address bucket: IPv4 as is, IPv6 as its /64 ("2001:db8:1:2::/64"). */
export function addressBucket(address: string): string {
  const ip = parseIp(address);
  if (ip === null) return address;
  if (ip.family === 4) return formatIp(ip);
  return `${formatIpv6({ w0: ip.w0, w1: ip.w1, w2: 0, w3: 0 })}/64`;
}

export class PreauthAdmission {
  private total = 0;
  private readonly perBucket = new Map<string, number>();

  constructor(
    private readonly limits: PreauthLimits,
    private readonly descriptors: DescriptorUsage,
  ) {}

  /** Connections holding a ticket now. */
  get open(): number {
    return this.total;
  }

  /** A ticket, or why the connection is refused. `perAddress` false: counted in the total only
   * (a PROXY listener, whose peer is a load balancer speaking for many clients). */
  admit(address: string, perAddress = true): PreauthTicket | PreauthRefusal {
    if (this.descriptors.limit - this.descriptors.open() < this.limits.descriptorReserve) return 'descriptor-reserve';
    if (this.total >= this.limits.maxPreauthConnections) return 'global';
    const bucket = perAddress ? addressBucket(address) : '';
    const n = perAddress ? (this.perBucket.get(bucket) ?? 0) : 0;
    if (perAddress && n >= this.limits.maxPreauthPerAddress) return 'per-address';
    this.total++;
    if (perAddress) this.perBucket.set(bucket, n + 1);
    let released = false;
    return {
      bucket,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        if (!perAddress) return;
        const left = (this.perBucket.get(bucket) ?? 1) - 1;
        if (left <= 0) this.perBucket.delete(bucket);
        else this.perBucket.set(bucket, left);
      },
    };
  }
}
