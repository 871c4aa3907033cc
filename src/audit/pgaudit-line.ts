// One pgAudit log line, as PostgreSQL's jsonlog writes it: the JSON envelope (timestamp, pid,
// user, database, application) and pgAudit's CSV message
//   AUDIT: <type>,<statement id>,<substatement id>,<class>,<command>,<object type>,<object name>,<statement>,<parameter>
// Passwords in role statements are redacted before anything is kept.
export interface PgAuditLine {
  readonly time: string;
  readonly pid: number;
  readonly user: string | undefined;
  readonly database: string | undefined;
  readonly applicationName: string | undefined;
  readonly auditType: string;
  readonly statementId: number;
  readonly substatementId: number;
  readonly class: string;
  readonly command: string;
  readonly objectType: string;
  readonly objectName: string;
  readonly statement: string;
  readonly parameter: string;
}

/** Splits one CSV record ("" escapes a quote inside a quoted field). */
export function splitCsv(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) {
          value += text.slice(i);
          i = text.length + 1;
          break;
        }
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(value);
      if (text[i] === ',') i++;
      else i = text.length + 1;
    } else {
      const c = text.indexOf(',', i);
      if (c < 0) {
        out.push(text.slice(i));
        break;
      }
      out.push(text.slice(i, c));
      i = c + 1;
    }
  }
  return out;
}

const PASSWORD_LITERAL = /(\bPASSWORD\s+)(?:E?'(?:[^']|'')*'|\$(\w*)\$[\s\S]*?\$\2\$)/gi;

export function redactPasswords(sql: string): string {
  return sql.replace(PASSWORD_LITERAL, "$1'<redacted>'");
}

const AUDIT_TYPES = new Set(['SESSION', 'OBJECT']);
const CLASS_NAME = /^[A-Z_]{1,32}$/;
const COUNTER = /^\d{1,19}$/;

/**
 * Whether a jsonlog record has the shape of pgAudit's own: it logs at LOG with errhidestmt and
 * errhidecontext, from log_audit_event() in pgaudit.c. Anything else whose message starts with
 * "AUDIT: " (RAISE LOG or RAISE EXCEPTION in a function or DO block: it carries a PL context and
 * the client's statement) is someone's text, not a record. On managed servers pgwarden_audit
 * also rewrites such messages before they are written (ext/pgwarden_audit); this is the reader's
 * own check, for servers without it.
 */
function hasPgAuditShape(j: Record<string, unknown>): boolean {
  if (j.error_severity !== 'LOG') return false;
  if ('context' in j || 'statement' in j || 'internal_query' in j) return false;
  if (j.file_name !== undefined && j.file_name !== 'pgaudit.c') return false;
  if (j.func_name !== undefined && j.func_name !== 'log_audit_event') return false;
  return true;
}

/** Null for a line that is not a pgAudit record (not JSON, not pgAudit's shape, or forged text). */
export function parsePgAuditLine(line: string): PgAuditLine | null {
  if (!line.includes('AUDIT: ')) return null;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  const message = typeof j.message === 'string' ? j.message : '';
  if (!message.startsWith('AUDIT: ')) return null;
  if (!hasPgAuditShape(j)) return null;
  const f = splitCsv(message.slice(7));
  if (f.length < 8) return null;
  if (!AUDIT_TYPES.has(f[0]!) || !COUNTER.test(f[1]!) || !COUNTER.test(f[2]!) || !CLASS_NAME.test(f[3]!)) return null;
  const ts = typeof j.timestamp === 'string' ? new Date(jsonlogTimeMs(j.timestamp)) : new Date();
  return {
    time: Number.isNaN(ts.getTime()) ? new Date().toISOString() : ts.toISOString(),
    pid: Number(j.pid),
    user: typeof j.user === 'string' ? j.user : undefined,
    database: typeof j.dbname === 'string' ? j.dbname : undefined,
    applicationName: typeof j.application_name === 'string' ? j.application_name : undefined,
    auditType: f[0]!,
    statementId: Number(f[1]),
    substatementId: Number(f[2]),
    class: f[3]!,
    command: f[4]!,
    objectType: f[5]!,
    objectName: f[6]!,
    statement: redactPasswords(f[7]!),
    parameter: f[8] ?? '',
  };
}

/** A jsonlog `timestamp` ("2026-01-02 03:04:05.678 UTC") in ms; the zone name is taken as UTC
 * (the platform's servers log in UTC). NaN when it does not parse. */
export function jsonlogTimeMs(timestamp: string): number {
  return Date.parse(timestamp.replace(/ ([A-Z]{3,4})$/, 'Z').replace(' ', 'T'));
}
