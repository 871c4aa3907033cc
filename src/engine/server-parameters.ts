// Server parameters a server's owner may set (SPEC.md §2 configurations), like the reference
// service's `configuration set`: an allow-list with a type, bounds or values, a default and the
// context PostgreSQL applies it in. Everything else is the platform's; the parameters that would
// weaken the perimeter are refused with the reason. Values are checked here, strictly, before
// they reach the platform-written configuration file (engine/cluster.ts writeConfig).
import { PARAMETER_REFUSALS } from './parameter-refusals.js';
import { SUPERUSER_EXTENSIONS, TRUSTED_EXTENSIONS } from './extension-allowlist.js';

export type ParameterType = 'boolean' | 'integer' | 'real' | 'enumeration' | 'string';

/** `user`/`sighup`: applied with a reload; `postmaster`: needs a restart. */
export type ParameterContext = 'user' | 'sighup' | 'postmaster';

export interface ParameterSpec {
  readonly name: string;
  readonly dataType: ParameterType;
  readonly context: ParameterContext;
  readonly defaultValue: string;
  readonly description: string;
  /** Unit of a plain number (PostgreSQL's base unit for the parameter). */
  readonly unit?: 'kB' | '8kB' | 'ms';
  /** Inclusive bounds, in `unit`. */
  readonly min?: number;
  readonly max?: number;
  /** enumeration: its values; string lists (shared_preload_libraries, pgwarden.extensions): the names allowed in it. */
  readonly values?: readonly string[];
  /** A comma-separated list of names from `values`. */
  readonly list?: boolean;
  /** Only with this library in shared_preload_libraries. */
  readonly needsLibrary?: string;
}

const INT_MAX = 2147483647;

/** Libraries an owner may add to shared_preload_libraries (the platform's own are always kept). */
export const OWNER_LIBRARIES = ['pg_stat_statements', 'auto_explain', 'pg_prewarm'] as const;

export const EXTENSIONS_PARAMETER = 'pgwarden.extensions';

export const PARAMETERS: readonly ParameterSpec[] = [
  {
    name: 'max_connections',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '250',
    min: 25,
    max: 1000,
    description: 'Maximum number of concurrent connections to the server (bounded by the platform).',
  },
  {
    name: 'max_prepared_transactions',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '0',
    min: 0,
    max: 1000,
    description: 'Maximum number of simultaneously prepared transactions (PREPARE TRANSACTION); 0 disables two-phase commit.',
  },
  {
    name: 'wal_level',
    dataType: 'enumeration',
    context: 'postmaster',
    defaultValue: 'replica',
    values: ['replica', 'logical'],
    description:
      'How much information is written to the WAL: logical allows publications and logical replication slots (the administrator gets the REPLICATION attribute).',
  },
  {
    name: 'max_wal_senders',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '10',
    min: 2,
    max: 100,
    description: "Maximum number of simultaneously running WAL sender processes (2 are kept for the platform's backups).",
  },
  {
    name: 'max_replication_slots',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '10',
    min: 0,
    max: 100,
    description: 'Maximum number of replication slots.',
  },
  {
    name: 'shared_buffers',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '32MB',
    unit: '8kB',
    min: 2048,
    max: 1048576,
    description: 'Memory used for shared buffers (16MB to 8GB).',
  },
  {
    name: 'work_mem',
    dataType: 'integer',
    context: 'user',
    defaultValue: '4MB',
    unit: 'kB',
    min: 64,
    max: 2097151,
    description: 'Memory used by internal sort operations and hash tables before writing to temporary files.',
  },
  {
    name: 'maintenance_work_mem',
    dataType: 'integer',
    context: 'user',
    defaultValue: '64MB',
    unit: 'kB',
    min: 1024,
    max: 2097151,
    description: 'Memory used by maintenance operations such as VACUUM and CREATE INDEX.',
  },
  {
    name: 'effective_cache_size',
    dataType: 'integer',
    context: 'user',
    defaultValue: '4GB',
    unit: '8kB',
    min: 1,
    max: INT_MAX,
    description: "The planner's assumption about the size of the data cache.",
  },
  {
    name: 'random_page_cost',
    dataType: 'real',
    context: 'user',
    defaultValue: '4',
    min: 0,
    max: 1000,
    description: "The planner's estimate of the cost of a nonsequentially fetched disk page.",
  },
  {
    name: 'statement_timeout',
    dataType: 'integer',
    context: 'user',
    defaultValue: '0',
    unit: 'ms',
    min: 0,
    max: INT_MAX,
    description: 'Aborts any statement that takes more than this (0 turns it off).',
  },
  {
    name: 'idle_in_transaction_session_timeout',
    dataType: 'integer',
    context: 'user',
    defaultValue: '0',
    unit: 'ms',
    min: 0,
    max: INT_MAX,
    description: 'Ends any session idle in a transaction for longer than this (0 turns it off).',
  },
  {
    name: 'lock_timeout',
    dataType: 'integer',
    context: 'user',
    defaultValue: '0',
    unit: 'ms',
    min: 0,
    max: INT_MAX,
    description: 'Aborts any statement that waits longer than this for a lock (0 turns it off).',
  },
  {
    name: 'log_min_duration_statement',
    dataType: 'integer',
    context: 'user',
    defaultValue: '-1',
    unit: 'ms',
    min: -1,
    max: INT_MAX,
    description: 'Writes statements running at least this long to the server log (-1 turns it off).',
  },
  {
    name: 'default_transaction_isolation',
    dataType: 'enumeration',
    context: 'user',
    defaultValue: 'read committed',
    values: ['serializable', 'repeatable read', 'read committed', 'read uncommitted'],
    description: 'The isolation level of each new transaction.',
  },
  {
    name: 'timezone',
    dataType: 'string',
    context: 'user',
    defaultValue: 'UTC',
    description: 'The time zone for displaying and interpreting time stamps (an IANA name such as Europe/Paris).',
  },
  {
    name: 'shared_preload_libraries',
    dataType: 'string',
    context: 'postmaster',
    defaultValue: '',
    list: true,
    values: OWNER_LIBRARIES,
    description: `Libraries preloaded at server start, besides the platform's own (which are always kept): any of ${OWNER_LIBRARIES.join(', ')}.`,
  },
  {
    name: EXTENSIONS_PARAMETER,
    dataType: 'string',
    context: 'sighup',
    defaultValue: TRUSTED_EXTENSIONS.join(','),
    list: true,
    values: [...TRUSTED_EXTENSIONS, ...SUPERUSER_EXTENSIONS].sort(),
    description:
      'Extensions that may be created on the server: trusted ones by the administrator with CREATE EXTENSION, the others by the platform on his behalf (pgwarden server extension create).',
  },
  {
    name: 'pg_stat_statements.max',
    dataType: 'integer',
    context: 'postmaster',
    defaultValue: '5000',
    min: 100,
    max: 100000,
    needsLibrary: 'pg_stat_statements',
    description: 'Maximum number of statements tracked by pg_stat_statements.',
  },
  {
    name: 'pg_stat_statements.track',
    dataType: 'enumeration',
    context: 'sighup',
    defaultValue: 'top',
    values: ['none', 'top', 'all'],
    needsLibrary: 'pg_stat_statements',
    description: 'Which statements pg_stat_statements tracks.',
  },
  {
    name: 'pg_stat_statements.track_utility',
    dataType: 'boolean',
    context: 'sighup',
    defaultValue: 'on',
    needsLibrary: 'pg_stat_statements',
    description: 'Whether pg_stat_statements tracks utility commands.',
  },
  {
    name: 'pg_stat_statements.save',
    dataType: 'boolean',
    context: 'sighup',
    defaultValue: 'on',
    needsLibrary: 'pg_stat_statements',
    description: 'Whether pg_stat_statements keeps its statistics across server shutdowns.',
  },
];

const BY_NAME = new Map(PARAMETERS.map((p) => [p.name, p]));

/** Stored values by parameter name (only the ones the owner set). */
export type ParameterValues = Readonly<Record<string, string>>;

export class ParameterError extends Error {
  constructor(
    message: string,
    readonly kind: 'unknown' | 'refused' | 'invalid',
  ) {
    super(message);
    this.name = 'ParameterError';
  }
}

/** The allow-listed parameter `name` (case-insensitive), or a ParameterError saying why not. */
export function parameterSpec(name: string): ParameterSpec {
  const lower = name.toLowerCase();
  const spec = BY_NAME.get(lower);
  if (spec) return spec;
  const refusal = PARAMETER_REFUSALS.find((r) => r.match(lower));
  if (refusal) throw new ParameterError(`Parameter '${name}' cannot be set: ${refusal.reason}`, 'refused');
  throw new ParameterError(
    `Parameter '${name}' is not a server parameter that can be set. 'pgwarden server configuration list' shows the ones that can.`,
    'unknown',
  );
}

const MEMORY_UNITS: Record<string, number> = { kB: 1, MB: 1024, GB: 1024 * 1024, TB: 1024 * 1024 * 1024 };
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A numeric value in the parameter's base unit, or null when it is not one. */
function numberIn(spec: ParameterSpec, value: string): number | null {
  const m = /^(-?\d{1,15})(kB|MB|GB|TB|ms|s|min|h|d)?$/.exec(value);
  if (!m) return null;
  const n = Number(m[1]);
  const suffix = m[2];
  if (!suffix) return n;
  if (spec.unit === 'ms') return suffix in TIME_UNITS ? n * TIME_UNITS[suffix]! : null;
  if (spec.unit === 'kB' || spec.unit === '8kB') {
    if (!(suffix in MEMORY_UNITS)) return null;
    const kb = n * MEMORY_UNITS[suffix]!;
    return spec.unit === 'kB' ? kb : kb % 8 === 0 ? kb / 8 : null;
  }
  return null;
}

function unitHint(spec: ParameterSpec): string {
  if (spec.unit === 'ms') return ' (a number of milliseconds, or with a unit: ms, s, min, h, d)';
  if (spec.unit === 'kB') return ' (a number of kB, or with a unit: kB, MB, GB)';
  if (spec.unit === '8kB') return ' (a number of 8kB pages, or with a unit: kB, MB, GB)';
  return '';
}

/** The base-unit bounds shown to users. */
export function allowedValues(spec: ParameterSpec): string {
  if (spec.dataType === 'boolean') return 'on,off';
  if (spec.dataType === 'enumeration' || spec.list) return (spec.values ?? []).join(',');
  if (spec.dataType === 'integer' || spec.dataType === 'real') return `${spec.min}-${spec.max}`;
  return spec.name === 'timezone' ? 'an IANA time zone name' : '';
}

/**
 * Checks `raw` for `spec` and returns the value to store (canonical spelling). Anything with a
 * newline, a quote, a backslash or another control character is refused before any other check:
 * the value is written into a configuration file.
 */
export function normalizeValue(spec: ParameterSpec, raw: string): string {
  const bad = (why: string) => new ParameterError(`Invalid value '${raw.slice(0, 100)}' for parameter '${spec.name}': ${why}`, 'invalid');
  if (raw.length > 1024) throw bad('it is longer than 1024 characters.');
  if (/[\u0000-\u001f\u007f'"\\#]/.test(raw)) throw bad('quotes, backslashes, # and control characters (such as newlines) are not allowed.');
  const v = raw.trim();
  switch (spec.dataType) {
    case 'boolean': {
      const b = v.toLowerCase();
      if (['on', 'true', 'yes', '1'].includes(b)) return 'on';
      if (['off', 'false', 'no', '0'].includes(b)) return 'off';
      throw bad('it must be on or off.');
    }
    case 'integer': {
      const n = numberIn(spec, v);
      if (n === null || !Number.isSafeInteger(n)) throw bad(`it must be an integer${unitHint(spec)}.`);
      if (n < spec.min! || n > spec.max!)
        throw bad(`it must be between ${spec.min} and ${spec.max}${spec.unit ? ` ${spec.unit === '8kB' ? '8kB pages' : spec.unit}` : ''}.`);
      return v;
    }
    case 'real': {
      if (!/^\d{1,10}(\.\d{1,10})?$/.test(v)) throw bad('it must be a decimal number.');
      const n = Number(v);
      if (n < spec.min! || n > spec.max!) throw bad(`it must be between ${spec.min} and ${spec.max}.`);
      return v;
    }
    case 'enumeration': {
      const e = v.toLowerCase().replace(/\s+/g, ' ');
      if (!spec.values!.includes(e)) throw bad(`it must be one of: ${spec.values!.join(', ')}.`);
      return e;
    }
    case 'string': {
      if (spec.list) return normalizeList(spec, v, bad);
      if (spec.name === 'timezone') {
        if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(v) || v.includes('..')) throw bad('it must be a time zone name such as UTC or Europe/Paris.');
        return v;
      }
      throw bad('it cannot be set.');
    }
  }
}

function normalizeList(spec: ParameterSpec, v: string, bad: (why: string) => ParameterError): string {
  const names = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const out: string[] = [];
  for (const n of names) {
    if (spec.name === 'shared_preload_libraries' && PLATFORM_LIBRARY_NAMES.includes(n)) continue; // always there
    if (!spec.values!.includes(n)) {
      throw bad(
        spec.name === 'shared_preload_libraries'
          ? `'${n}' is not a library the owner may preload (allowed: ${spec.values!.join(', ')}; the platform's own libraries are always loaded).`
          : `'${n}' is not an extension that can be allowed on this platform (allowed: ${spec.values!.join(', ')}).`,
      );
    }
    if (!out.includes(n)) out.push(n);
  }
  return out.join(',');
}

/** The platform's own preload libraries: accepted in a value but never the owner's to add or drop. */
export const PLATFORM_LIBRARY_NAMES: readonly string[] = ['pgwarden_guard', 'pgaudit', 'pgwarden_audit'];

/** A value in the parameter's base unit, for comparing a stored value with what the server runs with. */
export function baseValue(spec: ParameterSpec, value: string): string {
  if (spec.dataType === 'integer') return String(numberIn(spec, value) ?? value);
  if (spec.dataType === 'real') return String(Number(value));
  if (spec.dataType === 'boolean' || spec.dataType === 'enumeration') return value.toLowerCase();
  return value;
}

/** Checks the whole set: parameters that need a library need it in shared_preload_libraries. */
export function checkCombination(values: ParameterValues): void {
  const libraries = (values['shared_preload_libraries'] ?? '').split(',');
  for (const name of Object.keys(values)) {
    const spec = BY_NAME.get(name);
    if (spec?.needsLibrary && !libraries.includes(spec.needsLibrary)) {
      throw new ParameterError(
        `Parameter '${name}' can only be set when ${spec.needsLibrary} is in shared_preload_libraries: set shared_preload_libraries to ${spec.needsLibrary} first.`,
        'invalid',
      );
    }
  }
}

/** The configuration-file settings for the owner's values (shared_preload_libraries is merged by the caller). */
export function parameterSettings(values: ParameterValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (name === 'shared_preload_libraries') continue;
    out[name] = value;
  }
  if (!(EXTENSIONS_PARAMETER in out)) out[EXTENSIONS_PARAMETER] = BY_NAME.get(EXTENSIONS_PARAMETER)!.defaultValue;
  return out;
}

/** The owner's libraries (before the platform's, whose hooks then run first). */
export function ownerLibraries(values: ParameterValues): string[] {
  return (values['shared_preload_libraries'] ?? '').split(',').filter(Boolean);
}
