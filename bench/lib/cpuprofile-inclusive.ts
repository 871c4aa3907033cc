// Inclusive ("total") time from a V8 .cpuprofile, for the functions of some source files: the
// time of every sample with the function anywhere on its stack (counted once per sample, so
// recursion does not double it), and the time of samples with any of those files on the stack.
// lib/cpuprofile.ts ranks self time; this says how much of the busy time a subsystem holds,
// including the node internals and builtins it calls (hashing, JSON, socket writes).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Window } from './cpuprofile.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface InclusiveTime {
  readonly name: string;
  /** `dist/...js:LINE` (relative to the repository), as lib/cpuprofile.ts writes it. */
  readonly location: string;
  readonly totalMs: number;
}

export interface InclusiveSummary {
  readonly busyMs: number;
  /** Samples with a frame of a matching file anywhere on the stack. */
  readonly matchedMs: number;
  readonly functions: InclusiveTime[];
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const rel = (url: string) => {
  const p = url.startsWith('file://') ? fileURLToPath(url) : url;
  return p.startsWith(`${repoRoot}/`) ? p.slice(repoRoot.length + 1) : p;
};

/** `match` picks files by their repository-relative path (e.g. `p => p.startsWith('dist/src/audit/')`). */
export function inclusiveTimes(file: string, windows: readonly Window[], match: (relPath: string) => boolean, top = 15): InclusiveSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = new Map<number, string | null>();
  for (const n of prof.nodes) {
    const cf = n.callFrame;
    const p = cf.url ? rel(cf.url) : '';
    keyOf.set(n.id, p && match(p) ? `${cf.functionName || '(anonymous)'}\0${p}:${cf.lineNumber + 1}` : null);
  }
  const total = new Map<string, number>();
  let busy = 0;
  let matched = 0;
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (!windows.some((w) => t >= w.startUs && t < w.endUs)) continue;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const leaf = prof.samples[i]!;
    if (byId.get(leaf)?.callFrame.functionName === '(idle)') continue;
    busy += dt;
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const k = keyOf.get(id);
      if (k) seen.add(k);
    }
    if (seen.size) matched += dt;
    for (const k of seen) total.set(k, (total.get(k) ?? 0) + dt);
  }
  const functions = [...total]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => {
      const [name, location] = k.split('\0') as [string, string];
      return { name, location, totalMs: us / 1000 };
    });
  return { busyMs: busy / 1000, matchedMs: matched / 1000, functions };
}
