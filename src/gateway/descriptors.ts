// File descriptors of the gateway process: the RLIMIT_NOFILE soft limit raised to the hard one
// at start (libc getrlimit/setrlimit through koffi, the FFI the volumes already use: Node has
// no setrlimit), and a count of open descriptors that is cheap enough to ask on every accept.
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import type { DescriptorUsage } from './preauth-admission.js';

const RLIMIT_NOFILE = 7; // Linux, every architecture Node runs on

export interface NofileLimit {
  readonly soft: number;
  readonly hard: number;
  /** The soft limit before this call, when it was raised. */
  readonly raisedFrom?: number;
}

interface Rlimits {
  getrlimit(resource: number, out: Record<string, unknown>): number;
  setrlimit(resource: number, value: Record<string, unknown>): number;
  errno(): number;
}

let bound: Rlimits | null = null;

function rlimits(): Rlimits {
  if (bound) return bound;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  // rlim_t is an unsigned long: 64 bits on the 64-bit Linux targets the platform supports.
  koffi.struct('pgwarden_rlimit', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });
  bound = {
    getrlimit: lib.func('int getrlimit(int resource, _Out_ pgwarden_rlimit *rlim)') as Rlimits['getrlimit'],
    setrlimit: lib.func('int setrlimit(int resource, const pgwarden_rlimit *rlim)') as Rlimits['setrlimit'],
    errno: () => koffi.errno(),
  };
  return bound;
}

/** Raises the soft RLIMIT_NOFILE to the hard limit. Throws when libc cannot be reached. */
export function raiseNofileLimit(): NofileLimit {
  const libc = rlimits();
  const cur: Record<string, unknown> = {};
  if (libc.getrlimit(RLIMIT_NOFILE, cur) !== 0) throw new Error(`getrlimit(RLIMIT_NOFILE) failed: errno ${libc.errno()}`);
  const soft = Number(cur.rlim_cur);
  const hard = Number(cur.rlim_max);
  if (soft >= hard) return { soft, hard };
  if (libc.setrlimit(RLIMIT_NOFILE, { rlim_cur: cur.rlim_max, rlim_max: cur.rlim_max }) !== 0) {
    throw new Error(`setrlimit(RLIMIT_NOFILE, ${hard}) failed: errno ${libc.errno()}`);
  }
  return { soft: hard, hard, raisedFrom: soft };
}

/** The soft limit as the kernel reports it (/proc/self/limits), or null when unreadable. */
export function nofileSoftLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const n = Number(line?.split(/\s+/)[3]);
    return Number.isFinite(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Open descriptors, counted in /proc/self/fd at most every `sampleMs` and in between estimated
 * from the last count plus the sockets accepted since (`accepted`, told by the gateway). Near
 * the limit the count is taken afresh, so the estimate never lets the reserve be eaten.
 */
export class ProcDescriptors implements DescriptorUsage {
  private sampled = 0;
  private sampledAt = 0;
  private sinceSample = 0;

  constructor(
    readonly limit: number,
    private readonly reserve: number,
    private readonly sampleMs = 250,
  ) {}

  /** A socket was accepted since the last count. */
  accepted(): void {
    this.sinceSample++;
  }

  open(): number {
    const estimate = this.sampled + this.sinceSample;
    const near = this.limit - estimate < this.reserve * 2;
    if (Date.now() - this.sampledAt >= (near ? 20 : this.sampleMs)) this.sample();
    return this.sampled + this.sinceSample;
  }

  private sample(): void {
    try {
      this.sampled = readdirSync('/proc/self/fd').length;
    } catch {
      // No /proc: count on the estimate alone.
      this.sampled += this.sinceSample;
    }
    this.sinceSample = 0;
    this.sampledAt = Date.now();
  }
}
