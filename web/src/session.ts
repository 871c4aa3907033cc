// Who is signed in and what that role may change: the console renders edit controls only for
// what the API would accept (src/control/rbac.ts), and says so when it renders none.
import { get } from './api.js';

export type Role = 'Owner' | 'Contributor' | 'Reader' | 'SecurityAdmin';

export interface Me {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
}

export interface Session {
  readonly me: Me;
  /** Create, change, stop, start, delete servers. */
  readonly canManage: boolean;
  /** Network rules, TLS, threat protection, audit settings, alerts. */
  readonly canSecure: boolean;
  /** The identity administrator and principals. */
  readonly canIdentity: boolean;
  /** Search, export and verify the audit log. */
  readonly canReadAudit: boolean;
  /** Nothing at all can be changed. */
  readonly readOnly: boolean;
}

export function sessionFor(me: Me): Session {
  const r = me.role;
  const canManage = r === 'Owner' || r === 'Contributor';
  const canSecure = canManage || r === 'SecurityAdmin';
  const canIdentity = r === 'Owner' || r === 'SecurityAdmin';
  return { me, canManage, canSecure, canIdentity, canReadAudit: r !== 'Contributor', readOnly: !canManage && !canSecure && !canIdentity };
}

export async function loadSession(): Promise<Session> {
  return sessionFor(await get<Me>('/me'));
}

/** The banner text for the role, or null when it may change everything the console offers. */
export function roleNotice(s: Session): string | null {
  if (s.readOnly) return `Read-only: your role (${s.me.role}) cannot change settings.`;
  if (s.me.role === 'SecurityAdmin') return 'Your role (SecurityAdmin) can change security settings but cannot create, stop or delete servers.';
  if (s.me.role === 'Contributor') return 'Your role (Contributor) cannot change identity settings or read the audit log.';
  return null;
}
