// CPU time from /proc (Linux): of one process (the gateway's platform child), of a PostgreSQL
// server (its postmaster and every child, including the children it has reaped: their time is in
// the postmaster's cutime/cstime once waited for, so backends of a finished pgbench run count),
// and of the whole machine (busy = not idle, not iowait). All in ms.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

let tickMs = 0;
function msPerTick(): number {
  if (!tickMs) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      /* the usual Linux value */
    }
    tickMs = 1000 / hz;
  }
  return tickMs;
}

interface Stat {
  readonly ppid: number;
  /** utime + stime */
  readonly own: number;
  /** cutime + cstime: waited-for children */
  readonly children: number;
}

function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // gone
  }
  // Fields after the parenthesized command name (which may hold spaces): state is field 3.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return { ppid: n(4), own: n(14) + n(15), children: n(16) + n(17) };
}

/** utime + stime of one process, ms. */
export function processCpuMs(pid: number): number {
  const s = stat(pid);
  return s ? s.own * msPerTick() : NaN;
}

/** utime + stime of a process and of its living children whose command line has `marker` (the
 * gateway processes of `up --gateway-workers N`), ms. */
export function processWithChildrenCpuMs(pid: number, marker: string): number {
  let ms = processCpuMs(pid);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const child = Number(name);
    if (stat(child)?.ppid !== pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes(marker)) ms += processCpuMs(child);
  }
  return ms;
}

/** CPU of this process's children that it has waited for (cutime + cstime), ms: around one
 * pgbench run, the CPU of that pgbench (the client's TLS and SCRAM work included). */
export function reapedChildrenCpuMs(): number {
  const s = stat(process.pid);
  return s ? s.children * msPerTick() : NaN;
}

/** CPU of a process tree one level deep (a postmaster and its children), reaped children included, ms. */
export function serverCpuMs(postmasterPid: number): number {
  const root = stat(postmasterPid);
  if (!root) return NaN;
  let ticks = root.own + root.children;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s?.ppid === postmasterPid) ticks += s.own + s.children;
  }
  return ticks * msPerTick();
}

/** The postmaster's pid from a data dir's postmaster.pid. */
export function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Busy and total CPU time of the machine (all cores), ms. */
export function machineCpuMs(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: (total - idle) * msPerTick(), total: total * msPerTick() };
}

/** utime + stime of one thread of a process, ms (the main thread's id is the pid). */
export function threadCpuMs(pid: number, tid: number = pid): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return NaN;
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * msPerTick();
}
