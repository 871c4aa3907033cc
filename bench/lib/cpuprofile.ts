// Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time. The format:
// nodes (id, callFrame, children), samples (node id per tick) and timeDeltas (µs between ticks;
// delta i+1 is the time spent in sample i, as Chrome DevTools counts it).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly location: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly wallMs: number;
  readonly idleMs: number;
  readonly busyMs: number;
  readonly functions: SelfTime[];
  /** Self time by source file (or package, for node_modules), busiest first. */
  readonly files: SelfTime[];
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function shortUrl(url: string): string {
  if (!url) return '';
  let p = url;
  if (p.startsWith('file://')) p = fileURLToPath(p);
  if (p.startsWith(`${repoRoot}/`)) p = p.slice(repoRoot.length + 1);
  return p;
}

function fileGroup(url: string): string {
  const p = shortUrl(url);
  if (!p) return '(native / VM)';
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = p.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return p;
}

/** A time window in µs of CLOCK_MONOTONIC, the clock V8 stamps samples with on Linux
 * (process.hrtime.bigint() / 1000n in any process of this host). */
export interface Window {
  readonly startUs: number;
  readonly endUs: number;
}

export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Self time per function; with `windows`, only of the samples taken inside them. */
export function summarizeProfile(file: string, top = 15, windows?: readonly Window[]): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = prof.startTime;
  let inside = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (windows && !windows.some((w) => t >= w.startUs && t < w.endUs)) continue;
    inside++;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  if (windows && inside === 0) {
    throw new Error(
      `no sample of ${file} falls in the measured windows (profile ${prof.startTime}–${prof.endTime} µs, ` +
        `windows from ${windows[0]?.startUs} µs): clocks differ?`,
    );
  }
  const fn = new Map<string, { name: string; location: string; us: number }>();
  const files = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    totalUs += us;
    if (cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = cf.functionName || '(anonymous)';
    const location = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${name}\0${location}`;
    const e = fn.get(key) ?? { name, location, us: 0 };
    e.us += us;
    fn.set(key, e);
    const g = cf.url ? fileGroup(cf.url) : name.startsWith('(') ? name : '(native / VM)';
    files.set(g, (files.get(g) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const rank = <T extends { us: number }>(xs: Iterable<T>) => [...xs].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    wallMs: windows ? windows.reduce((a, w) => a + (w.endUs - w.startUs), 0) / 1000 : (prof.endTime - prof.startTime) / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    functions: rank(fn.values()).map((e) => ({ name: e.name, location: e.location, selfMs: e.us / 1000, share: e.us / busyUs })),
    files: rank([...files].map(([name, us]) => ({ name, us }))).map((e) => ({ name: e.name, location: '', selfMs: e.us / 1000, share: e.us / busyUs })),
  };
}
