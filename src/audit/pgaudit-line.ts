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

/** Null for a line that is not a pgAudit record (or not JSON). */
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
  const f = splitCsv(message.slice(7));
  if (f.length < 8) return null;
  const ts = typeof j.timestamp === 'string' ? new Date(j.timestamp.replace(/ ([A-Z]{3,4})$/, 'Z').replace(' ', 'T')) : new Date();
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
