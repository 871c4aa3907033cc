// Role names the platform owns on every managed server, and the naming rules for the
// administrator login (SPEC.md §2).

/** The platform's hidden maintenance superuser; its secret is readable only by the platform. */
export const MAINTENANCE_ROLE = 'pgwarden_maintenance';
/** The group role every server administrator is a member of. */
export const ADMIN_GROUP_ROLE = 'pgwarden_admin';

const RESERVED_LOGINS = new Set(['admin', 'administrator', 'root', 'guest', 'public', 'superuser', 'postgres']);

/** Returns why `login` cannot be an administrator login, or null when it can. */
export function administratorLoginProblem(login: string): string | null {
  if (login.length < 1 || login.length > 63) return 'administratorLogin must be 1 to 63 characters long.';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(login)) {
    return 'administratorLogin must start with a letter or underscore and contain only letters, digits and underscores.';
  }
  const lower = login.toLowerCase();
  if (lower.startsWith('pg_')) return `administratorLogin '${login}' is not allowed: names starting with pg_ are reserved.`;
  if (lower.startsWith('pgwarden')) {
    return `administratorLogin '${login}' is not allowed: names starting with pgwarden are reserved by the platform.`;
  }
  if (RESERVED_LOGINS.has(lower)) return `administratorLogin '${login}' is a reserved name and cannot be used.`;
  return null;
}

/** Returns why `password` is too weak, or null. 8–128 chars with three of four classes. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8 || password.length > 128) {
    return 'administratorLoginPassword must be 8 to 128 characters long.';
  }
  const classes = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  if (classes < 3) {
    return 'administratorLoginPassword must contain characters from three of these categories: upper-case letters, lower-case letters, digits and non-alphanumeric characters.';
  }
  return null;
}

/** Quotes an identifier for SQL. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a string literal for SQL (standard_conforming_strings is on). */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The group every administrator of a server is in (its own and an identity administrator):
 * monitoring, signalling backends, and all on the postgres database and its public schema. */
export function adminGroupStatements(): string[] {
  return [
    `create role ${ident(ADMIN_GROUP_ROLE)} nologin`,
    `grant pg_monitor, pg_signal_backend to ${ident(ADMIN_GROUP_ROLE)}`,
    `grant all on database postgres to ${ident(ADMIN_GROUP_ROLE)}`,
    `grant all on schema public to ${ident(ADMIN_GROUP_ROLE)}`,
  ];
}
