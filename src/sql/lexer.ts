// A small SQL lexer that finds the plain literals of a query string, so texts that differ only in
// literal values share one cache entry (their "shape"). Only literals whose token extent cannot
// depend on their content are taken: standard '...' strings (quote doubling, no continuation) and
// unsigned numbers (integers of at most 9 digits, or digits.digits). Everything else (E'', U&'',
// dollar quotes, B''/X'', exponents, long integers, parameters) stays verbatim in the key.
// It follows PostgreSQL's scanner (scan.l) for comments, quoted identifiers and dollar quotes; a
// text it cannot follow (unterminated quote or comment, string continuation) gets null, and the
// caller then parses and caches by exact text. The classifier checks the result against the real
// scanner the first time it sees a shape.

export const LITERAL_STRING = 0;
export const LITERAL_INTEGER = 1;
export const LITERAL_DECIMAL = 2;

/** Marker characters standing for a literal in a shape key, by literal kind. */
const MARKERS = ['\u0000', '\u0001', '\u0003'] as const;

export interface Lexed {
  /** The text with each literal replaced by one marker character. */
  readonly key: string;
  /** Literal i spans text[starts[i], ends[i]) and sits at key[keyPos[i]]. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly keyPos: readonly number[];
  readonly kinds: readonly number[];
}

const NONE: readonly number[] = [];
const NONE_MUTABLE: number[] = [];
/** The kind of the last number() result (-1: kept verbatim); avoids allocating a result. */
let numberKind = -1;

// Character classes of ASCII for the main loop (non-ASCII characters are identifier characters).
const OTHER = 0;
const QUOTE = 1;
const DIGIT = 2;
const IDENT = 3;
const MINUS = 4;
const SLASH = 5;
const DQUOTE = 6;
const DOLLAR = 7;
const DOT = 8;
const MARKER = 9;
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  CLASS[c] =
    c <= 3
      ? MARKER
      : c === 0x27
        ? QUOTE
        : c >= 0x30 && c <= 0x39
          ? DIGIT
          : (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f
            ? IDENT
            : c === 0x2d
              ? MINUS
              : c === 0x2f
                ? SLASH
                : c === 0x22
                  ? DQUOTE
                  : c === 0x24
                    ? DOLLAR
                    : c === 0x2e
                      ? DOT
                      : OTHER;
}
/** ident_cont for ASCII: letters, digits, underscore, dollar. */
const IDENT_CONT = new Uint8Array(128);
for (let c = 0; c < 128; c++) IDENT_CONT[c] = CLASS[c] === IDENT || CLASS[c] === DIGIT || c === 0x24 ? 1 : 0;

export function lexShape(text: string): Lexed | null {
  const n = text.length;
  // Allocated on the first literal.
  let starts: number[] | null = null;
  let ends: number[] = NONE_MUTABLE;
  let kinds: number[] = NONE_MUTABLE;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    switch (c < 128 ? CLASS[c]! : IDENT) {
      case OTHER:
        i++;
        break;
      case QUOTE: {
        const end = skipQuoted(text, i + 1, 0x27);
        if (end < 0 || continues(text, end)) return null;
        if (starts === null) {
          starts = [];
          ends = [];
          kinds = [];
        }
        starts.push(i);
        ends.push(end);
        kinds.push(LITERAL_STRING);
        i = end;
        break;
      }
      case DIGIT: {
        const end = number(text, i);
        if (numberKind >= 0) {
          if (starts === null) {
            starts = [];
            ends = [];
            kinds = [];
          }
          starts.push(i);
          ends.push(end);
          kinds.push(numberKind);
        }
        i = end;
        break;
      }
      case IDENT:
        i = identifier(text, i);
        if (i < 0) return null;
        break;
      case MINUS:
        i = text.charCodeAt(i + 1) === 0x2d ? lineEnd(text, i + 2) : i + 1;
        break;
      case SLASH:
        if (text.charCodeAt(i + 1) === 0x2a /* * */) {
          i = blockCommentEnd(text, i + 2);
          if (i < 0) return null;
        } else {
          i++;
        }
        break;
      case DQUOTE:
        i = skipQuoted(text, i + 1, 0x22);
        if (i < 0) return null;
        break;
      case DOLLAR:
        i = dollar(text, i);
        if (i < 0) return null;
        break;
      case DOT:
        // ".5" is one decimal token: keep it verbatim
        i = isDigit(text.charCodeAt(i + 1)) ? numberTail(text, i + 1) : i + 1;
        break;
      default:
        return null; // a raw marker character would make keys ambiguous
    }
  }
  if (starts === null) return { key: text, starts: NONE, ends: NONE, keyPos: NONE, kinds: NONE };
  const count = starts.length;
  const keyPos = new Array<number>(count);
  let key = '';
  let last = 0;
  for (let k = 0; k < count; k++) {
    key += text.slice(last, starts[k]);
    keyPos[k] = key.length;
    key += MARKERS[kinds[k]!];
    last = ends[k]!;
  }
  key += text.slice(last);
  return { key, starts, ends, keyPos, kinds };
}

/** The parts of a shape key between its markers (key[0, keyPos[0]), ..., after the last one). */
export function keySegments(lexed: Lexed): string[] {
  const out: string[] = [];
  let from = 0;
  for (const at of lexed.keyPos) {
    out.push(lexed.key.slice(from, at));
    from = at + 1;
  }
  out.push(lexed.key.slice(from));
  return out;
}

/**
 * lexShape(text) when `text` has the shape of `prev` (a result of lexShape with literals, whose
 * keySegments are `segments`), else null (then lexShape must be asked). Cheaper than a lex: the
 * text between literals is compared with the key's, and only the literals are read. Exact: the
 * lexer reads a text left to right, so it reaches each literal of `text` in the state it reached
 * the one of `prev` (the same text before it), and reads it with the same functions; the key,
 * its marker positions and the literal kinds are then those of `prev` (and shared with it).
 */
export function sameShape(text: string, prev: Lexed, segments: readonly string[]): Lexed | null {
  const count = prev.keyPos.length;
  if (count === 0 || segments.length !== count + 1) return null;
  const starts = new Array<number>(count);
  const ends = new Array<number>(count);
  let at = 0;
  for (let k = 0; k < count; k++) {
    const segment = segments[k]!;
    if (text.slice(at, at + segment.length) !== segment) return null; // (startsWith is slower, and uneven)
    at += segment.length;
    const c = text.charCodeAt(at);
    let end: number;
    if (prev.kinds[k] === LITERAL_STRING) {
      if (c !== 0x27) return null;
      end = skipQuoted(text, at + 1, 0x27);
      if (end < 0 || continues(text, end)) return null;
    } else {
      if (!isDigit(c)) return null;
      end = number(text, at);
      if (numberKind !== prev.kinds[k]) return null;
    }
    starts[k] = at;
    ends[k] = end;
    at = end;
  }
  const last = segments[count]!;
  if (text.length - at !== last.length || text.slice(at) !== last) return null;
  return { key: prev.key, starts, ends, keyPos: prev.keyPos, kinds: prev.kinds };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** scan.l ident_start: letters, underscore, any non-ASCII character. */
function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
}

/** scan.l ident_cont: ident_start, digits, dollar. */
function isIdentCont(c: number): boolean {
  return c >= 128 || IDENT_CONT[c] === 1;
}

/** End (exclusive) of a quoted token whose opening quote is just before `from`; -1 if unterminated. */
function skipQuoted(text: string, from: number, quote: number): number {
  const mark = quote === 0x27 ? "'" : '"';
  let i = from;
  for (;;) {
    const q = text.indexOf(mark, i);
    if (q < 0) return -1;
    if (text.charCodeAt(q + 1) === quote) {
      i = q + 2;
      continue;
    }
    return q + 1;
  }
}

/** E'...' strings: backslash escapes anything, including a quote. */
function skipEscapeString(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x27) {
      if (text.charCodeAt(i + 1) === 0x27) i++;
      else return i + 1;
    }
  }
  return -1;
}

/**
 * True when a string literal ending at `end` is continued by another one (scan.l quotecontinue:
 * horizontal space, a newline, then spaces, newlines or -- comments, then a quote).
 */
function continues(text: string, end: number): boolean {
  let i = end;
  while (i < text.length && isHorizontalSpace(text.charCodeAt(i))) i++;
  const c = text.charCodeAt(i);
  if (c !== 0x0a && c !== 0x0d) return false;
  for (;;) {
    const d = text.charCodeAt(i);
    if (isHorizontalSpace(d) || d === 0x0a || d === 0x0d) i++;
    else if (d === 0x2d && text.charCodeAt(i + 1) === 0x2d) i = lineEnd(text, i + 2);
    else return d === 0x27;
  }
}

function isHorizontalSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0c || c === 0x0b;
}

function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i;
  }
  return text.length;
}

/** Nested /* *\/ comments, as PostgreSQL allows. */
function blockCommentEnd(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    const d = text.charCodeAt(i + 1);
    if (c === 0x2f && d === 0x2a) {
      depth++;
      i++;
    } else if (c === 0x2a && d === 0x2f) {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** An identifier or keyword, or a prefixed string (E'', B'', X'', N'', U&'', U&""). */
function identifier(text: string, start: number): number {
  const n = text.length;
  let i = start + 1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 128 && IDENT_CONT[c] === 0) break;
    i++;
  }
  if (i - start !== 1) return i;
  const c = text.charCodeAt(start) | 0x20;
  const next = text.charCodeAt(i);
  if (next === 0x27) {
    if (c === 0x65 /* e */ || c === 0x62 /* b */ || c === 0x78 /* x */ || c === 0x6e /* n */) {
      // Continued by another quoted string (as the scanner does it): text this lexer cannot follow.
      const end = c === 0x65 ? skipEscapeString(text, i + 1) : skipQuoted(text, i + 1, 0x27);
      return end < 0 || continues(text, end) ? -1 : end;
    }
  }
  if (c === 0x75 /* u */ && next === 0x26 /* & */) {
    const q = text.charCodeAt(i + 1);
    if (q === 0x27 || q === 0x22) {
      const end = skipQuoted(text, i + 2, q);
      return end < 0 || (q === 0x27 && continues(text, end)) ? -1 : end;
    }
  }
  return i;
}

/** $n parameters, $tag$...$tag$ dollar quotes, or a lone $. */
function dollar(text: string, start: number): number {
  let i = start + 1;
  if (isDigit(text.charCodeAt(i))) {
    while (isDigit(text.charCodeAt(i))) i++;
    return i;
  }
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x24) break;
    if (!(isIdentStart(c) || (i > start + 1 && isDigit(c)))) return start + 1;
    i++;
  }
  if (i >= text.length) return start + 1;
  const tag = text.slice(start, i + 1);
  const close = text.indexOf(tag, i + 1);
  return close < 0 ? -1 : close + tag.length;
}

/** The end of a number starting at `start` (a digit); its literal kind, or -1, in numberKind. */
function number(text: string, start: number): number {
  let i = start;
  while (isDigit(text.charCodeAt(i))) i++;
  numberKind = i - start <= 9 ? LITERAL_INTEGER : -1;
  if (text.charCodeAt(i) === 0x2e /* . */) {
    if (!isDigit(text.charCodeAt(i + 1))) {
      numberKind = -1;
      return numberTail(text, i);
    }
    i++;
    while (isDigit(text.charCodeAt(i))) i++;
    numberKind = LITERAL_DECIMAL;
  }
  const c = text.charCodeAt(i);
  if (isIdentCont(c) || c === 0x2e) {
    numberKind = -1;
    return numberTail(text, i);
  }
  return i;
}

/** Consumes the rest of a number-like run (digits, letters, dots, exponent signs) verbatim. */
function numberTail(text: string, from: number): number {
  let i = from;
  for (;;) {
    const c = text.charCodeAt(i);
    if (isIdentCont(c) || c === 0x2e) {
      i++;
    } else if ((c === 0x2b || c === 0x2d) && (text.charCodeAt(i - 1) | 0x20) === 0x65 && isDigit(text.charCodeAt(i + 1))) {
      i++; // 1e-5
    } else {
      return i;
    }
  }
}
