// What the console checks while the user types: the same rules as the API (SPEC.md §2), so a
// form says what is wrong before it is sent. The API stays the authority: its message is shown
// on submit whatever these say.
export const SERVER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;
const RESERVED_LOGINS = new Set(['admin', 'administrator', 'root', 'guest', 'public', 'superuser', 'postgres']);

export function serverNameProblem(name: string): string | null {
  if (SERVER_NAME.test(name)) return null;
  return '3 to 63 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen.';
}

export function loginProblem(login: string): string | null {
  if (login.length < 1 || login.length > 63) return 'Must be 1 to 63 characters long.';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(login)) return 'Must start with a letter or underscore and contain only letters, digits and underscores.';
  const lower = login.toLowerCase();
  if (lower.startsWith('pg_')) return 'Names starting with pg_ are reserved.';
  if (lower.startsWith('pgwarden')) return 'Names starting with pgwarden are reserved by the platform.';
  if (RESERVED_LOGINS.has(lower)) return `'${login}' is a reserved name.`;
  return null;
}

export interface PasswordRule {
  readonly label: string;
  readonly met: boolean;
}

/** Each rule of the password policy and whether it is met, for a live checklist. */
export function passwordRules(password: string): PasswordRule[] {
  const classes = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  return [
    { label: '8 to 128 characters', met: password.length >= 8 && password.length <= 128 },
    { label: 'three of: upper case, lower case, digit, other', met: classes >= 3 },
  ];
}

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length > 45) return false;
  let head = s;
  let groupsForV4 = 0;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    if (!isIPv4(s.slice(lastColon + 1))) return false;
    head = s.slice(0, lastColon + 1) + '0:0';
    groupsForV4 = 0;
  }
  const double = head.split('::');
  if (double.length > 2) return false;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(double[0]!);
  const right = double.length === 2 ? groups(double[1]!) : [];
  const all = [...left, ...right];
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  const count = all.length + groupsForV4;
  return double.length === 2 ? count <= 7 : count === 8;
}

export type IpFamily = 4 | 6;

export function ipFamily(s: string): IpFamily | null {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return null;
}

/** Why a firewall range is invalid, or null. */
export function rangeProblem(start: string, end: string): string | null {
  const a = ipFamily(start.trim());
  const b = ipFamily(end.trim());
  if (a === null) return `'${start}' is not an IPv4 or IPv6 address.`;
  if (b === null) return `'${end}' is not an IPv4 or IPv6 address.`;
  if (a !== b) return 'Start and end must be of the same family (both IPv4 or both IPv6).';
  if (a === 4 && v4(start.trim()) > v4(end.trim())) return 'The start address must not be greater than the end address.';
  return null;
}

function v4(s: string): number {
  return s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

export const RULE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/** A pool size as the API takes it: an integer from 1 to 10000. */
export function poolSizeProblem(text: string): string | null {
  if (/^\d+$/.test(text.trim()) && Number(text) >= 1 && Number(text) <= 10000) return null;
  return 'The pool size must be a whole number from 1 to 10000.';
}
