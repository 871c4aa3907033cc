// CPU time of a process's threads grouped by thread name (/proc/PID/task/TID/comm, Linux): which
// thread pays for a change (the event loop is the thread named after the process; the audit
// writer is "pgwarden audit w", V8's GC helpers "V8 DefaultWorke", libuv's pool "libuv-worker",
// the native relay's runtime "tokio-runtime-w"). Threads that ended are not counted. All in ms.
import { readFileSync, readdirSync } from 'node:fs';
import { threadCpuMs } from './proc-cpu.js';

/** utime + stime of every living thread of `pid`, summed by thread name (the main thread: 'main'), ms. */
export function cpuByThreadName(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let name: string;
    try {
      name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const ms = threadCpuMs(pid, Number(tid));
    if (Number.isFinite(ms)) out.set(name, (out.get(name) ?? 0) + ms);
  }
  return out;
}

/** What each thread name used between two readings, ms (names in either reading). */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, ms] of after) out.set(name, ms - (before.get(name) ?? 0));
  for (const name of before.keys()) if (!after.has(name)) out.set(name, 0);
  return out;
}
