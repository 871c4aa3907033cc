// The SQL-injection detector (SPEC.md §6) for one server: each query string's injection shapes,
// cached by its literal-free shape in the one shape cache it shares with the statement audit (so
// an application's repeated statements cost a map look-up, and the lexer pass the audit made), learned application shapes (learned.ts) per (role, application), and
// bursts of syntax errors (42601) per (role, application).
import { createHash } from 'node:crypto';
import { LruCache } from '../../sql/lru.js';
import { ShapeCache, ShapeSlot, sharedShapes } from '../../sql/shape-cache.js';
import { BoundedMap, SlidingWindow } from '../bounded-map.js';
import { shapesOf, SHAPE_DETAILS, type ShapeVerdict } from './shapes.js';
import { LearnedShapes, tokensOf, type Tokens } from './learned.js';
import type { SqlCheckResult, SqlFinding, SqlInspector, SqlInput } from '../sql-inspector.js';

export type { SqlCheckResult } from '../sql-inspector.js';

export interface SqlDetectorOptions {
  /** Syntax errors from one (role, application) in the window: SqlInjectionVulnerability. */
  readonly syntaxErrorBurst?: number;
  readonly syntaxErrorWindowMs?: number;
  readonly cacheEntries?: number;
  /** The server's learned application shapes (shared with the engine, which stores them). */
  readonly learned?: LearnedShapes;
}

/** What the cache holds per literal-free shape. */
interface Entry {
  readonly fingerprint: string;
  readonly evidence: string;
  /** null: does not parse. */
  readonly rules: ShapeVerdict | null;
  /** The text had no literal: its key is the text itself. */
  readonly plain: boolean;
  tokens?: Tokens | null;
}

const MAX_TEXT = 16 * 1024;
/** Prefix of the key of a text the lexer cannot follow (never the first character of a shape key). */
const UNLEXED = '\u0002';

export class SqlInjectionDetector implements SqlInspector {
  private readonly cache: ShapeCache;
  private readonly slot = new ShapeSlot<Entry>('sql-injection detector');
  /** Verdicts of "extends a learned shape" per (role, application, fingerprint). */
  private readonly derived = new LruCache<string | null>(10_000, 4 * 1024 * 1024);
  private readonly errors = new BoundedMap<string, { window: SlidingWindow; reported: number }>(10_000);
  private readonly burst: number;
  private readonly windowMs: number;
  readonly learned: LearnedShapes;

  constructor(o: SqlDetectorOptions = {}) {
    this.cache = o.cacheEntries !== undefined ? new ShapeCache(o.cacheEntries, 16 * 1024 * 1024) : sharedShapes;
    this.burst = o.syntaxErrorBurst ?? 10;
    this.windowMs = o.syntaxErrorWindowMs ?? 60_000;
    this.learned = o.learned ?? new LearnedShapes();
  }

  inspect(input: SqlInput): SqlFinding | null {
    if (input.sqlstate === '42601') return this.syntaxError(input);
    if (input.sqlstate !== undefined || input.text.length > MAX_TEXT) return null;
    const entry = this.entry(input.text);
    if (entry.rules === null) return null;
    if (entry.rules.shapes.length) return this.finding(entry, entry.rules);
    if (this.learned.has(input.role, input.application, entry.fingerprint)) return null;
    if (input.learn) {
      const tokens = this.tokens(entry, input.text);
      if (tokens && this.learned.learn(input.role, input.application, entry.fingerprint, tokens.tokens, input.timeMs)) this.derived.clear();
      return null;
    }
    const from = this.extension(input.role, input.application, entry, input.text);
    return from ? this.finding(entry, learnedVerdict(from)) : null;
  }

  settled(input: { readonly role: string; readonly application: string; readonly text: string; readonly learning?: boolean }): boolean {
    if (input.text.length > MAX_TEXT) return false;
    const entry = this.entry(input.text);
    if (entry.rules === null || entry.rules.shapes.length) return false;
    // A learned shape is judged alike in the learning period and after it (inspect: no finding,
    // nothing more to learn); an unlearned one only once learning is over and nothing is learned.
    if (this.learned.has(input.role, input.application, entry.fingerprint)) return true;
    return input.learning !== true && !this.learned.knows(input.role, input.application);
  }

  /** The verdict on a statement without side effects: no learning, no alert. With `application`
   * (and `role`), against the learned shapes of that application (any role when role is null);
   * with neither, the rules alone. */
  check(text: string, scope: { application: string | null; role: string | null; learned: boolean }): SqlCheckResult {
    if (text.length > MAX_TEXT)
      return { verdict: 'none', shapes: [], detail: `the statement is longer than ${MAX_TEXT} bytes: the detector does not judge it`, fingerprint: '' };
    const entry = this.entry(text);
    if (entry.rules === null) {
      return {
        verdict: 'none',
        shapes: [],
        detail: 'the statement does not parse: the server answers it with a syntax error (42601), which the SqlInjectionVulnerability detector counts',
        fingerprint: entry.fingerprint,
      };
    }
    if (entry.rules.shapes.length) return { verdict: 'SqlInjection', shapes: entry.rules.shapes, detail: entry.rules.detail, fingerprint: entry.fingerprint };
    if (scope.learned) {
      const tokens = this.tokens(entry, text);
      const from = tokens ? this.learned.extended(scope.role, scope.application, tokens) : null;
      if (from) {
        const v = learnedVerdict(from);
        return { verdict: 'SqlInjection', shapes: v.shapes, detail: v.detail, fingerprint: entry.fingerprint };
      }
      const known = scope.application !== null && scope.role !== null && this.learned.has(scope.role, scope.application, entry.fingerprint);
      return { verdict: 'none', shapes: [], detail: known ? 'a learned shape of this application' : 'no injection shape', fingerprint: entry.fingerprint };
    }
    return { verdict: 'none', shapes: [], detail: 'no injection shape', fingerprint: entry.fingerprint };
  }

  private entry(text: string): Entry {
    // A text without literals is its own key: one look-up, no lexing.
    const plain = this.cache.get(text, this.slot);
    if (plain?.plain) return plain;
    const lexed = this.cache.shape(text);
    const key = lexed ? lexed.key : UNLEXED + text;
    let entry = this.cache.get(key, this.slot);
    if (entry === undefined) {
      const shapeKey = lexed ? lexed.key : null;
      // Evidence without values: every plain literal replaced by '?'.
      const evidence = (shapeKey ?? text.replace(/'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b/g, '?')).replace(/[\u0000\u0001\u0003]/g, '?').slice(0, 2000);
      const fingerprint = createHash('sha256')
        .update(shapeKey ?? evidence)
        .digest('hex')
        .slice(0, 16);
      entry = { fingerprint, evidence, rules: shapesOf(text), plain: lexed !== null && lexed.starts.length === 0 };
      this.cache.set(key, this.slot, entry, key.length * 2 + evidence.length * 2 + 128);
    }
    return entry;
  }

  private tokens(entry: Entry, text: string): Tokens | null {
    if (entry.tokens === undefined) entry.tokens = tokensOf(text);
    return entry.tokens;
  }

  private extension(role: string, application: string, entry: Entry, text: string): string | null {
    if (!this.learned.knows(role, application)) return null;
    const key = `${role}\u0000${application}\u0000${entry.fingerprint}`;
    let from = this.derived.get(key);
    if (from === undefined) {
      const tokens = this.tokens(entry, text);
      from = tokens ? this.learned.extended(role, application, tokens) : null;
      this.derived.set(key, from, key.length * 2 + 64);
    }
    return from;
  }

  private finding(entry: Entry, v: ShapeVerdict): SqlFinding {
    return { type: 'SqlInjection', shapes: v.shapes, evidence: entry.evidence, fingerprint: entry.fingerprint, detail: v.detail };
  }

  private syntaxError(input: { role: string; application: string; timeMs: number }): SqlFinding | null {
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

function learnedVerdict(from: string): ShapeVerdict {
  return { shapes: ['learned-shape'], detail: `${SHAPE_DETAILS['learned-shape']} (learned shape ${from})` };
}
