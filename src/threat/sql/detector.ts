// The SQL-injection detector (SPEC.md §6) for one server: each query string's injection shapes,
// cached by its literal-free shape (so an application's repeated statements cost a lexer pass
// and a map look-up), and bursts of syntax errors (42601) per (role, application).
import { createHash } from 'node:crypto';
import { lexShape } from '../../audit/classify/lexer.js';
import { LruCache } from '../../audit/classify/lru.js';
import { BoundedMap, SlidingWindow } from '../bounded-map.js';
import { shapesOf, type ShapeVerdict } from './shapes.js';
import type { SqlInspector } from '../engine.js';

export interface SqlDetectorOptions {
  /** Syntax errors from one (role, application) in the window: SqlInjectionVulnerability. */
  readonly syntaxErrorBurst?: number;
  readonly syntaxErrorWindowMs?: number;
  readonly cacheEntries?: number;
}

type Verdict = (ShapeVerdict & { evidence: string; fingerprint: string }) | null;

const MAX_TEXT = 16 * 1024;

export class SqlInjectionDetector implements SqlInspector {
  private readonly cache: LruCache<Verdict>;
  private readonly errors = new BoundedMap<string, { window: SlidingWindow; reported: number }>(10_000);
  private readonly burst: number;
  private readonly windowMs: number;

  constructor(o: SqlDetectorOptions = {}) {
    this.cache = new LruCache<Verdict>(o.cacheEntries ?? 10_000, 16 * 1024 * 1024);
    this.burst = o.syntaxErrorBurst ?? 10;
    this.windowMs = o.syntaxErrorWindowMs ?? 60_000;
  }

  inspect(input: { role: string; application: string; text: string; sqlstate?: string; timeMs: number }): ReturnType<SqlInspector['inspect']> {
    if (input.sqlstate === '42601') return this.syntaxError(input);
    if (input.sqlstate !== undefined || input.text.length > MAX_TEXT) return null;
    const lexed = lexShape(input.text);
    const key = lexed ? lexed.key : input.text;
    let verdict = this.cache.get(key);
    if (verdict === undefined) {
      verdict = this.judge(input.text, lexed ? lexed.key : null);
      this.cache.set(key, verdict, key.length * 2 + 64);
    }
    if (!verdict) return null;
    return { type: 'SqlInjection', shapes: verdict.shapes, evidence: verdict.evidence, fingerprint: verdict.fingerprint, detail: verdict.detail };
  }

  private judge(text: string, shapeKey: string | null): Verdict {
    const v = shapesOf(text);
    if (!v || v.shapes.length === 0) return null;
    // Evidence without values: every plain literal replaced by '?'.
    const evidence = (shapeKey ?? text.replace(/'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b/g, '?')).replace(/[\u0000\u0001\u0003]/g, '?').slice(0, 2000);
    const fingerprint = createHash('sha256').update(shapeKey ?? evidence).digest('hex').slice(0, 16);
    return { ...v, evidence, fingerprint };
  }

  private syntaxError(input: { role: string; application: string; timeMs: number }): ReturnType<SqlInspector['inspect']> {
    const key = `${input.role}\u0000${input.application}`;
    const s = this.errors.upsert(key, () => ({ window: new SlidingWindow(), reported: -Infinity }));
    const n = s.window.add(input.timeMs, this.windowMs);
    if (n < this.burst || input.timeMs - s.reported < this.windowMs) return null;
    s.reported = input.timeMs;
    return {
      type: 'SqlInjectionVulnerability',
      shapes: [],
      evidence: `${n} syntax errors (42601) in ${Math.round(this.windowMs / 1000)} s`,
      fingerprint: createHash('sha256').update(key).digest('hex').slice(0, 16),
      detail: `${n} syntax errors within ${Math.round(this.windowMs / 1000)} s`,
    };
  }
}
