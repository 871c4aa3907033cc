// Token login's control plane: the identity administrator of a server and its principals.
// Every principal is a database role whose password only the platform can answer (see
// auth/principal-keys.ts), so the only way to log in as it is with a token, at the gateway.
import type { ManagedServers } from '../engine/managed-servers.js';
import { isAttached, type ServersRepo, type ServerRecord } from '../catalog/servers-repo.js';
import type { IdentityAdmin, IdentityPrincipal, IdentityRepo, PrincipalType } from '../catalog/identity-repo.js';
import type { PrincipalKeys } from '../auth/principal-keys.js';
import { administratorLoginProblem } from '../engine/roles.js';
import { conflict, invalid, notFound } from './errors.js';

export interface IdentityAdminInput {
  readonly issuer: string;
  readonly audience: string;
  readonly login: string;
  readonly objectId: string;
  readonly type?: PrincipalType;
  readonly objectIdClaim?: string;
  readonly caBundle?: string;
}

export interface PrincipalInput {
  readonly role: string;
  readonly objectId: string;
  readonly type: PrincipalType;
}

/** Role names of principals may hold '@' and '.', as identity names often do. */
export function principalRoleProblem(role: string): string | null {
  if (role.length < 1 || role.length > 63) return 'role must be 1 to 63 characters long.';
  if (/[\0"\\]/.test(role) || /\s/.test(role)) return 'role must not contain spaces, quotes, backslashes or NUL.';
  const lower = role.toLowerCase();
  if (lower.startsWith('pg_') || lower.startsWith('pgwarden')) return `role '${role}' is reserved.`;
  if (['public', 'postgres', 'superuser'].includes(lower)) return `role '${role}' is reserved.`;
  return null;
}

function issuerProblem(issuer: string): string | null {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return `issuer '${issuer}' is not a URL.`;
  }
  if (url.protocol !== 'https:') return 'issuer must be an https:// URL (its discovery document and keys are fetched over TLS).';
  if (url.search || url.hash) return 'issuer must not have a query or a fragment.';
  return null;
}

export class IdentityService {
  constructor(
    private readonly servers: ServersRepo,
    private readonly repo: IdentityRepo,
    private readonly engine: ManagedServers,
    private readonly keys: PrincipalKeys,
  ) {}

  private async server(name: string): Promise<ServerRecord> {
    const s = await this.servers.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s;
  }

  private running(s: ServerRecord): void {
    if (!this.reachable(s)) throw conflict(`Server '${s.name}' is ${s.state}: start it first.`);
  }

  /** Roles can be made on it now: a managed server that runs, or an attached one (through its
   * relay to the current primary, as its maintenance user). */
  private reachable(s: ServerRecord): boolean {
    return isAttached(s) || this.engine.isRunning(s.id);
  }

  /** True when the role does not exist, or is a token role this platform made (its verifier is
   * the one only the platform can derive): such a role may be bound again. */
  private async madeByPlatform(serverId: number, role: string): Promise<boolean> {
    const current = await this.engine.roleVerifier(serverId, role);
    return current === null || current.rolpassword === this.keys.verifier(serverId, role);
  }

  async getAdmin(serverName: string): Promise<IdentityAdmin> {
    const s = await this.server(serverName);
    const a = await this.repo.admin(s.id);
    if (!a) throw notFound(`Server '${serverName}' has no identity administrator.`);
    return a;
  }

  async setAdmin(serverName: string, input: IdentityAdminInput): Promise<IdentityAdmin> {
    const s = await this.server(serverName);
    const problem =
      issuerProblem(input.issuer) ??
      (input.audience.trim() ? null : 'audience must not be empty.') ??
      (input.objectId.trim() ? null : 'objectId must not be empty.') ??
      administratorLoginProblem(input.login) ??
      (input.login === s.administratorLogin ? `login '${input.login}' is the server's password administrator; choose another role name.` : null);
    if (problem) throw invalid(problem);
    this.running(s);
    const previous = await this.repo.admin(s.id);
    const boundAsPrincipal = (await this.repo.principals(s.id)).some((p) => p.role === input.login);
    if (boundAsPrincipal) throw conflict(`Role '${input.login}' is already a principal of server '${serverName}'.`);
    if (previous?.login !== input.login && !(await this.madeByPlatform(s.id, input.login))) {
      throw conflict(`Role '${input.login}' already exists on server '${serverName}'; the identity administrator needs a new role.`);
    }
    await this.engine.ensureTokenRole(s.id, input.login, this.keys.verifier(s.id, input.login), true);
    const saved = await this.repo.setAdmin({
      serverId: s.id,
      issuer: input.issuer.replace(/\/$/, ''),
      audience: input.audience,
      login: input.login,
      objectId: input.objectId,
      type: input.type ?? 'user',
      objectIdClaim: input.objectIdClaim ?? 'oid',
      caBundle: input.caBundle ?? null,
    });
    if (previous && previous.login !== input.login) await this.engine.disableLogin(s.id, previous.login);
    return saved;
  }

  /** Removing the administrator turns every token login on the server off until one is set. */
  async deleteAdmin(serverName: string): Promise<void> {
    const s = await this.server(serverName);
    const a = await this.repo.admin(s.id);
    if (!a) throw notFound(`Server '${serverName}' has no identity administrator.`);
    await this.repo.deleteAdmin(s.id);
    if (this.reachable(s)) await this.engine.disableLogin(s.id, a.login);
  }

  async listPrincipals(serverName: string): Promise<IdentityPrincipal[]> {
    return this.repo.principals((await this.server(serverName)).id);
  }

  async addPrincipal(serverName: string, input: PrincipalInput): Promise<IdentityPrincipal> {
    const s = await this.server(serverName);
    const problem = principalRoleProblem(input.role) ?? (input.objectId.trim() ? null : 'objectId must not be empty.');
    if (problem) throw invalid(problem);
    const admin = await this.repo.admin(s.id);
    if (!admin) throw conflict(`Server '${serverName}' has no identity administrator: set one before adding principals.`);
    if (input.role === admin.login || input.role === s.administratorLogin)
      throw conflict(`Role '${input.role}' is an administrator of server '${serverName}'.`);
    this.running(s);
    if (!(await this.madeByPlatform(s.id, input.role))) {
      throw conflict(`Role '${input.role}' already exists on server '${serverName}'; a principal needs a new role.`);
    }
    const added = await this.repo.addPrincipal({ serverId: s.id, role: input.role, objectId: input.objectId, type: input.type });
    if (!added) throw conflict(`Role '${input.role}' or ${input.type} '${input.objectId}' is already bound on server '${serverName}'.`);
    try {
      await this.engine.ensureTokenRole(s.id, input.role, this.keys.verifier(s.id, input.role), false);
    } catch (err) {
      await this.repo.deletePrincipal(s.id, input.role);
      throw err;
    }
    return added;
  }

  /** Tokens of a removed principal stop working at once (the gateway follows the catalog); its
   * role can no longer log in, and keeps what it owns. */
  async deletePrincipal(serverName: string, role: string): Promise<void> {
    const s = await this.server(serverName);
    if (!(await this.repo.deletePrincipal(s.id, role))) throw notFound(`Principal '${role}' was not found on server '${serverName}'.`);
    if (this.reachable(s)) await this.engine.disableLogin(s.id, role);
  }
}
