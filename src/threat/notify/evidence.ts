// Making alert fields safe to show: evidence keys that name secrets are masked (evidence is
// redacted upstream; this is the second belt), text loses control and bidi-override characters
// (attacker-chosen role and application names end up here) and every value is bounded.

const SECRET_KEY = /passw(or)?d|passwd|pwd|secret|token|credential|authorization|cookie|api[_-]?key|private[_-]?key/i;
export const REDACTED = '[redacted]';

const MAX_DEPTH = 6;
const MAX_ITEMS = 100;
const MAX_STRING = 2_000;

/** A copy of `value` with secret-named keys masked, nesting, lengths and item counts bounded. */
export function maskSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return null;
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(value)) {
    const out = value.slice(0, MAX_ITEMS).map((v) => maskSecrets(v, depth + 1));
    if (value.length > MAX_ITEMS) out.push(`… ${value.length - MAX_ITEMS} more`);
    return out;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (n++ >= MAX_ITEMS) break;
    out[k] = SECRET_KEY.test(k) ? REDACTED : maskSecrets(v, depth + 1);
  }
  return out;
}

// C0 and C1 controls, DEL, and the bidi embedding/override/isolate marks that can make text
// read differently from what it is.
const UNSAFE_LINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
const UNSAFE_BLOCK = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/** One line of display text: controls become spaces, at most `max` characters. */
export function cleanLine(s: string, max = 500): string {
  const t = s.replace(UNSAFE_LINE, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** Display text that may keep line breaks and tabs. */
export function cleanBlock(s: string, max = 4_000): string {
  const t = s.replace(/\r\n?/g, '\n').replace(UNSAFE_BLOCK, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** An evidence value as one line of text. */
export function evidenceText(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'string') return cleanLine(value, 1_000);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))) {
    return value.length === 0 ? 'none' : cleanLine(value.map((v) => String(v)).join(', '), 1_000);
  }
  return cleanLine(JSON.stringify(value) ?? '', 1_000);
}

/** "failedLogins" → "Failed logins", "existing_roles" → "Existing roles". */
export function evidenceLabel(key: string): string {
  const words = cleanLine(key, 80)
    .replace(/[_-]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : '(unnamed)';
}

/** An http(s) URL without user name or password, or null when `url` is not one. */
export function safeLink(url: string | undefined): string | null {
  if (!url) return null;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
  u.username = '';
  u.password = '';
  return u.toString();
}
