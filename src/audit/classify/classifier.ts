// classifyStatements: one StatementInfo per statement of a query string, from PostgreSQL's own
// parser, cached. The cache key is the text's shape (lexer.ts: plain literals replaced by a
// marker), so "... WHERE aid = 1" and "... WHERE aid = 2" are parsed once; a shape is trusted only
// after the real scanner agrees with the lexer on its literals. Texts the lexer cannot follow are
// cached by exact text. Statements that may hold a password are never cached.

import { analyzeText, type Span, type StatementAnalysis, type TextAnalysis } from './analyze.js';
import { UNKNOWN_TAG } from './command-tag.js';
import { LITERAL_STRING, lexShape, type Lexed } from '../../sql/lexer.js';
import { ShapeCache, ShapeSlot, sharedShapes } from '../../sql/shape-cache.js';
import { literalValue, matchesAny, redactSlice, truncateAfterPassword } from './redact.js';
import type { AuditObject, ClassifyOptions, StatementClass, StatementInfo } from './types.js';

const DEFAULT_MAX_PARSE_LENGTH = 1024 * 1024;
/** Prefix of exact-text keys; never the first character of a shape key (the lexer refuses it). */
const EXACT = '\u0002';

interface StatementTemplate {
  /** Untrimmed extent in shape-key coordinates. */
  readonly keyStart: number;
  readonly keyEnd: number;
  readonly class: StatementClass;
  readonly classes: readonly StatementClass[];
  readonly commandTag: string;
  readonly objects: readonly AuditObject[];
  readonly redactParams: readonly number[];
  /** Indices of the text's literals that are always redacted. */
  readonly redactLiterals: ReadonlySet<number>;
}

type Entry =
  | { readonly kind: 'shape'; readonly statements: readonly StatementTemplate[]; readonly fixed: readonly StatementInfo[] | null }
  | { readonly kind: 'exact'; readonly infos: readonly StatementInfo[] }
  | { readonly kind: 'noShape' };

const NO_SHAPE: Entry = { kind: 'noShape' };
const NO_LITERALS: ReadonlySet<number> = new Set();

export interface ClassifierStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly bytes: number;
}

export class Classifier {
  readonly redactPatterns: readonly RegExp[];
  private readonly columns: ReadonlySet<string>;
  private readonly cache: ShapeCache;
  private readonly slot = new ShapeSlot<Entry>('audit classifier');
  private readonly maxParseLength: number;
  private readonly shapes: boolean;
  private hits = 0;
  private misses = 0;
  /** signature() of the texts without literals cached as their own key (a filter: it may hold
   * others, and loses them all when full; a text it lacks is lexed first, with the same result). */
  private readonly literalFree = new Set<number>();

  constructor(options: ClassifyOptions = {}) {
    this.columns = new Set((options.redactColumns ?? []).map((c) => c.toLowerCase()));
    this.redactPatterns = [...(options.redactPatterns ?? [])];
    // Bounds of its own: a cache of its own; else the process's one shape cache.
    this.cache =
      options.maxCacheEntries !== undefined || options.maxCacheBytes !== undefined
        ? new ShapeCache(options.maxCacheEntries ?? 5000, options.maxCacheBytes ?? 8 * 1024 * 1024)
        : sharedShapes;
    this.maxParseLength = options.maxParseLength ?? DEFAULT_MAX_PARSE_LENGTH;
    this.shapes = options.shapes ?? true;
  }

  get stats(): ClassifierStats {
    return { hits: this.hits, misses: this.misses, ...this.cache.held(this.slot) };
  }

  /** True when a bound parameter value must be redacted by pattern. */
  redactsValue(value: string): boolean {
    return matchesAny(value, this.redactPatterns);
  }

  /** Never throws: text the parser refuses gives one 'UNKNOWN' entry carrying the parser's error. */
  classify(sql: string): readonly StatementInfo[] {
    if (sql.length > this.maxParseLength) return [this.unknown(sql, 'statement too long to classify')];
    // The parser reads a C string: it would see only the text before a NUL.
    if (sql.includes('\0')) return [this.unknown(sql, 'statement contains a NUL character')];
    // A text without literals is its own shape key: one lookup, before lexing (only for a text
    // that may be one: hashing a text with literals for a lookup that misses costs a lex's worth).
    const known = this.shapes && this.literalFree.has(signature(sql)) ? this.cache.get(sql, this.slot) : undefined;
    if (known !== undefined && known.kind === 'shape' && known.fixed !== null) {
      this.hits++;
      return known.fixed;
    }
    const lexed = this.shapes ? this.cache.shape(sql) : null;
    if (lexed === null) return this.exact(sql, undefined);
    // A literal can carry a password (a connection string, a DO body): such texts are analysed
    // themselves, never served from a shape learnt from other literals.
    const entry = literalMentionsPassword(sql, lexed) ? undefined : this.cache.get(lexed.key, this.slot);
    if (entry !== undefined && entry.kind === 'shape') {
      this.hits++;
      if (entry.fixed !== null) this.noteLiteralFree(sql); // its key is the text itself
      return entry.fixed ?? this.instantiate(entry.statements, sql, lexed);
    }
    if (entry !== undefined) return this.exact(sql, undefined);
    this.misses++;
    const analysis = analyzeText(sql, this.columns, lexed.starts.length > 0 || this.redactPatterns.length > 0);
    if (mayHoldSecret(sql, analysis)) return Object.freeze(this.finish(sql, analysis));
    const statements = analysis.ok ? this.template(analysis.statements, analysis.literals, sql, lexed) : null;
    if (statements === null) {
      this.cache.set(lexed.key, this.slot, NO_SHAPE, lexed.key.length * 2 + 64);
      return this.exact(sql, analysis);
    }
    const fixed = lexed.starts.length === 0 ? Object.freeze(this.instantiate(statements, sql, lexed)) : null;
    if (fixed !== null) this.noteLiteralFree(sql);
    this.cache.set(lexed.key, this.slot, { kind: 'shape', statements, fixed }, lexed.key.length * 2 + templateBytes(statements));
    return fixed ?? this.instantiate(statements, sql, lexed);
  }

  private noteLiteralFree(sql: string): void {
    if (this.literalFree.size >= MAX_LITERAL_FREE) this.literalFree.clear();
    this.literalFree.add(signature(sql));
  }

  private exact(sql: string, analysis: TextAnalysis | undefined): readonly StatementInfo[] {
    const key = EXACT + sql;
    const entry = this.cache.get(key, this.slot);
    if (entry !== undefined && entry.kind === 'exact') {
      this.hits++;
      return entry.infos;
    }
    if (analysis === undefined) {
      this.misses++;
      analysis = analyzeText(sql, this.columns, this.redactPatterns.length > 0);
    }
    const infos = Object.freeze(this.finish(sql, analysis));
    if (!mayHoldSecret(sql, analysis)) this.cache.set(key, this.slot, { kind: 'exact', infos }, key.length * 2 + infosBytes(infos));
    return infos;
  }

  /** Final infos straight from an analysis of this very text. */
  private finish(sql: string, analysis: TextAnalysis): StatementInfo[] {
    if (!analysis.ok) return [this.unknown(sql, analysis.error)];
    const literals = analysis.literals ?? [];
    return analysis.statements.map((s) => {
      const spans = this.redactions(sql, s, literals);
      return info(
        s,
        sql.slice(s.start, s.end).trim(),
        redactSlice(sql, s.start, s.end, spanList(spans), 0, spans.length, () => true),
      );
    });
  }

  /** The spans to redact in one statement: its fixed ones plus literals matching a pattern. */
  private redactions(sql: string, s: StatementAnalysis, literals: readonly Span[]): Span[] {
    const spans = [...s.redactSpans];
    if (this.redactPatterns.length > 0) {
      for (const l of literals) {
        if (l.start < s.start || l.end > s.end) continue;
        if (matchesAny(literalValue(sql.slice(l.start, l.end)), this.redactPatterns)) spans.push(l);
      }
    }
    spans.sort((a, b) => a.start - b.start || b.end - a.end);
    let end = -1;
    return spans.filter((span) => {
      if (span.start < end) return false; // inside one already kept
      end = span.end;
      return true;
    });
  }

  /** Shape templates, or null when the lexer's literals are not exactly the scanner's. */
  private template(statements: readonly StatementAnalysis[], literals: readonly Span[] | null, sql: string, lexed: Lexed): StatementTemplate[] | null {
    if (literals === null || !sameLiterals(lexed, literals)) return null;
    const byStart = new Map<number, number>();
    for (let k = 0; k < lexed.starts.length; k++) byStart.set(lexed.starts[k]!, k);
    const indexOf = (span: Span): number => {
      const k = byStart.get(span.start);
      return k !== undefined && lexed.ends[k] === span.end ? k : -1;
    };
    // Literals kept verbatim in the key (E'', $$, ...) are the same in every text of the shape:
    // one matching a pattern would need redacting by position, which only the exact path does.
    if (this.redactPatterns.length > 0) {
      for (const l of literals) {
        if (indexOf(l) < 0 && matchesAny(literalValue(sql.slice(l.start, l.end)), this.redactPatterns)) return null;
      }
    }
    const out: StatementTemplate[] = [];
    for (const s of statements) {
      const redactLiterals = new Set<number>();
      for (const span of s.redactSpans) {
        const k = indexOf(span);
        if (k < 0) return null; // a redaction outside the plain literals: exact text only
        redactLiterals.add(k);
      }
      out.push({
        keyStart: toKey(lexed, s.start),
        keyEnd: toKey(lexed, s.end),
        class: s.class,
        classes: s.classes,
        commandTag: s.commandTag,
        objects: s.objects,
        redactParams: s.redactParams,
        redactLiterals: redactLiterals.size > 0 ? redactLiterals : NO_LITERALS,
      });
    }
    return out;
  }

  private instantiate(statements: readonly StatementTemplate[], sql: string, lexed: Lexed): StatementInfo[] {
    const out: StatementInfo[] = [];
    const { starts, ends, keyPos } = lexed;
    let lit = 0;
    let shift = 0;
    const toText = (at: number): number => {
      while (lit < keyPos.length && keyPos[lit]! < at) {
        shift += ends[lit]! - starts[lit]! - 1;
        lit++;
      }
      return at + shift;
    };
    const patterns = this.redactPatterns;
    for (const t of statements) {
      const start = toText(t.keyStart);
      const from = lit;
      const end = toText(t.keyEnd);
      const text = sql.slice(start, end).trim();
      let redacted = text;
      if (t.redactLiterals.size > 0 || (patterns.length > 0 && lit > from)) {
        redacted = redactSlice(sql, start, end, lexed, from, lit, (k) => {
          if (t.redactLiterals.has(k)) return true;
          return patterns.length > 0 && matchesAny(literalValue(sql.slice(starts[k], ends[k])), patterns);
        });
      }
      out.push(info(t, text, redacted));
    }
    return out;
  }

  private unknown(sql: string, error: string): StatementInfo {
    const text = sql.trim();
    let redacted = truncateAfterPassword(text);
    if (this.redactPatterns.length > 0) {
      const lexed = lexShape(redacted);
      if (lexed !== null) {
        redacted = redactSlice(redacted, 0, redacted.length, lexed, 0, lexed.starts.length, (k) =>
          matchesAny(literalValue(redacted.slice(lexed.starts[k], lexed.ends[k])), this.redactPatterns),
        );
      }
    }
    return Object.freeze({
      class: 'UNKNOWN',
      classes: UNKNOWN_CLASSES,
      commandTag: UNKNOWN_TAG,
      objects: [],
      text,
      redactedText: redacted,
      redactParams: [],
      error,
    });
  }
}

const MAX_LITERAL_FREE = 16_384;

/** A small number from a text's length and two of its characters (a Set key without hashing the text). */
function signature(sql: string): number {
  const n = sql.length;
  return n === 0 ? 0 : ((n << 12) ^ (sql.charCodeAt(n - 1) << 6) ^ sql.charCodeAt(n >> 1)) & 0x3fffffff;
}

function literalMentionsPassword(sql: string, lexed: Lexed): boolean {
  // Numbers only (the common case): no string to look in, and no search of the whole text.
  if (!lexed.kinds.includes(LITERAL_STRING) || !PASSWORD.test(sql)) return false;
  for (let k = 0; k < lexed.starts.length; k++) {
    if (lexed.kinds[k] === LITERAL_STRING && PASSWORD.test(sql.slice(lexed.starts[k], lexed.ends[k]))) return true;
  }
  return false;
}

const PASSWORD = /password/i;

/** Texts (or their shapes) that may hold a password are never kept in the cache. */
function mayHoldSecret(sql: string, analysis: TextAnalysis): boolean {
  return analysis.ok ? analysis.statements.some((s) => s.secret) : PASSWORD.test(sql);
}

const UNKNOWN_CLASSES: readonly StatementClass[] = Object.freeze(['UNKNOWN']);

function info(t: Pick<StatementInfo, 'class' | 'classes' | 'commandTag' | 'objects' | 'redactParams'>, text: string, redactedText: string): StatementInfo {
  return {
    class: t.class,
    classes: t.classes,
    commandTag: t.commandTag,
    objects: t.objects,
    text,
    redactedText,
    redactParams: t.redactParams,
  };
}

function spanList(spans: readonly Span[]): { starts: number[]; ends: number[] } {
  return { starts: spans.map((s) => s.start), ends: spans.map((s) => s.end) };
}

/** True when every lexer literal is exactly one scanner literal token. */
function sameLiterals(lexed: Lexed, literals: readonly Span[]): boolean {
  let j = 0;
  for (let k = 0; k < lexed.starts.length; k++) {
    while (j < literals.length && literals[j]!.start < lexed.starts[k]!) j++;
    if (j >= literals.length || literals[j]!.start !== lexed.starts[k] || literals[j]!.end !== lexed.ends[k]) return false;
  }
  return true;
}

/** A text offset outside any literal, in shape-key coordinates. */
function toKey(lexed: Lexed, at: number): number {
  let shift = 0;
  for (let k = 0; k < lexed.starts.length && lexed.ends[k]! <= at; k++) shift += lexed.ends[k]! - lexed.starts[k]! - 1;
  return at - shift;
}

function templateBytes(statements: readonly StatementTemplate[]): number {
  let bytes = 64;
  for (const s of statements) bytes += 160 + objectsBytes(s.objects) + s.redactLiterals.size * 16;
  return bytes;
}

function infosBytes(infos: readonly StatementInfo[]): number {
  let bytes = 64;
  for (const i of infos) bytes += 160 + objectsBytes(i.objects) + (i.text.length + i.redactedText.length) * 2;
  return bytes;
}

function objectsBytes(objects: readonly AuditObject[]): number {
  let bytes = 0;
  for (const o of objects) bytes += 48 + o.name.length * 2;
  return bytes;
}

let plain: Classifier | undefined;
const byOptions = new WeakMap<ClassifyOptions, Classifier>();

/**
 * Classifies with a classifier (and cache) shared per options object: pass the same options
 * object each time (for example a server's audit settings) to share its cache.
 */
export function classifyStatements(sql: string, options?: ClassifyOptions): readonly StatementInfo[] {
  if (options === undefined) return (plain ??= new Classifier()).classify(sql);
  let classifier = byOptions.get(options);
  if (classifier === undefined) {
    classifier = new Classifier(options);
    byOptions.set(options, classifier);
  }
  return classifier.classify(sql);
}
