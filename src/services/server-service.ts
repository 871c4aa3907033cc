// Server lifecycle: the catalog row and the managed cluster kept in step. The REST API calls
// this; nothing here knows about HTTP.
import { X509Certificate } from 'node:crypto';
import { administratorLoginProblem, passwordProblem } from '../engine/roles.js';
import type { BackupManifest, ProgressFn } from '../storage/backup/index.js';
import type { ManagedServers } from '../engine/managed-servers.js';
import {
  isAttached,
  type MinimalTlsVersion,
  type PoolMode,
  type ServerRecord,
  type ServerSettings,
  type ServersRepo,
  type Toggle,
} from '../catalog/servers-repo.js';
import type { PoolStats, PoolStatsSource } from '../gateway/pool/types.js';
import { parseEndpoints, endpointText } from '../engine/attached/endpoints.js';
import { checkAttachable } from '../engine/attached/attach-check.js';
import { conflict, invalid, notFound, PlatformError } from './errors.js';

export interface CreateServerInput {
  readonly name: string;
  readonly administratorLogin: string;
  readonly administratorLoginPassword: string;
  readonly sslEnforcement?: Toggle;
  readonly minimalTlsVersion?: MinimalTlsVersion;
  readonly publicNetworkAccess?: Toggle;
}

/** `POST /servers` with `"mode": "attached"`: PostgreSQL an HA engine runs elsewhere. */
export interface AttachServerInput {
  readonly name: string;
  readonly administratorLogin: string;
  /** When given, the administrator role is created (or its password set) on the cluster. */
  readonly administratorLoginPassword?: string;
  readonly endpoints: readonly string[];
  /** PEM: the CA the nodes' certificates are verified against. */
  readonly tlsCa: string;
  readonly maintenanceUser: string;
  readonly maintenancePassword: string;
  readonly sslEnforcement?: Toggle;
  readonly minimalTlsVersion?: MinimalTlsVersion;
  readonly publicNetworkAccess?: Toggle;
}

/** What attaching needs beyond the catalog: sealing the maintenance password, and a check of
 * the cluster (a writable node reached with the maintenance login, a superuser). */
export interface AttachSupport {
  sealMaintenancePassword(password: string, server: string): string;
  check?: typeof checkAttachable;
  /** Where this process last found the server's primary. */
  primary?(id: number): string | null;
}

const ATTACHED_ONLY = new Set(['endpoints', 'tlsCa', 'maintenanceUser', 'maintenancePassword']);

/** The aad a server's sealed maintenance password is bound to. */
export function maintenancePasswordAad(server: string): string {
  return `pgwarden/attached/${server}/maintenance-password`;
}

export interface UpdateServerInput extends Partial<ServerSettings> {
  readonly administratorLoginPassword?: string;
}

/** What `GET /servers/{name}/pool` reports: the server's pool settings and its pools now. */
export interface ServerPools {
  readonly server: string;
  readonly poolMode: ServerRecord['poolMode'];
  readonly poolSize: number;
  readonly pools: readonly PoolStats[];
}

/** A setting an update changed, for the audit record. */
export interface SettingChange {
  readonly old: unknown;
  readonly new: unknown;
}

/** A source with no pools: a process whose gateway does not pool (or runs no gateway). */
export const NO_POOLS: PoolStatsSource = { poolStats: () => [] };

const SETTINGS = ['sslEnforcement', 'minimalTlsVersion', 'publicNetworkAccess', 'passwordAuth', 'poolMode', 'poolSize'] as const;

/** The settings that differ between two versions of a server row (never the password: it is not
 * in the row). The audit record of an update carries these, old and new. */
export function settingChanges(before: ServerRecord, after: ServerRecord): Record<string, SettingChange> {
  const out: Record<string, SettingChange> = {};
  for (const k of SETTINGS) if (before[k] !== after[k]) out[k] = { old: before[k], new: after[k] };
  return out;
}

export const POOL_MODES: readonly PoolMode[] = ['none', 'session', 'transaction'];
export const POOL_SIZE_MIN = 1;
export const POOL_SIZE_MAX = 10000;

export function poolSizeProblem(size: number): string | null {
  if (Number.isInteger(size) && size >= POOL_SIZE_MIN && size <= POOL_SIZE_MAX) return null;
  return `Invalid poolSize ${size}: it must be an integer from ${POOL_SIZE_MIN} to ${POOL_SIZE_MAX}.`;
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/;

export function serverNameProblem(name: string): string | null {
  if (NAME.test(name)) return null;
  return `Invalid server name '${name}': it must be 3 to 63 characters of lowercase letters, digits and hyphens, and must not start or end with a hyphen.`;
}

/** Resolves sslEnforcement and minimalTlsVersion together (SPEC.md §2). */
export function resolveTls(
  current: Pick<ServerSettings, 'sslEnforcement' | 'minimalTlsVersion'>,
  patch: Partial<Pick<ServerSettings, 'sslEnforcement' | 'minimalTlsVersion'>>,
): Pick<ServerSettings, 'sslEnforcement' | 'minimalTlsVersion'> {
  const ssl = patch.sslEnforcement ?? current.sslEnforcement;
  let min = patch.minimalTlsVersion;
  if (ssl === 'Disabled') {
    if (min !== undefined && min !== 'TLSEnforcementDisabled') {
      throw invalid(`minimalTlsVersion ${min} cannot be set while sslEnforcement is Disabled; use TLSEnforcementDisabled or enable sslEnforcement.`);
    }
    min = 'TLSEnforcementDisabled';
  } else if (min === 'TLSEnforcementDisabled') {
    throw invalid('minimalTlsVersion TLSEnforcementDisabled requires sslEnforcement Disabled.');
  } else if (min === undefined) {
    min = current.minimalTlsVersion === 'TLSEnforcementDisabled' ? 'TLS1_2' : current.minimalTlsVersion;
  }
  return { sslEnforcement: ssl, minimalTlsVersion: min };
}

export class ServerService {
  /** Copies what a restored server inherits from its source (server parameters), before it starts. */
  copyOnRestore: ((sourceId: number, targetId: number) => Promise<void>) | null = null;

  constructor(
    private readonly repo: ServersRepo,
    private readonly engine: ManagedServers,
    private readonly hostId: string,
    /** The gateway's pools in this process; reports only, the gateway reads the settings from the snapshot. */
    private readonly pools: PoolStatsSource = NO_POOLS,
    private readonly attachSupport: AttachSupport | null = null,
  ) {}

  /** Records an attached server, Ready at once: pgwarden runs nothing for it. */
  async attach(input: AttachServerInput): Promise<ServerRecord> {
    if (!this.attachSupport) throw invalid('This process cannot attach servers.');
    const endpoints = parseEndpoints(input.endpoints);
    const problem =
      serverNameProblem(input.name) ??
      administratorLoginProblem(input.administratorLogin) ??
      (input.administratorLoginPassword !== undefined ? passwordProblem(input.administratorLoginPassword) : null) ??
      (typeof endpoints === 'string' ? endpoints : null) ??
      caProblem(input.tlsCa) ??
      (/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(input.maintenanceUser) ? null : `Invalid maintenanceUser '${input.maintenanceUser}'.`) ??
      (input.maintenancePassword ? null : 'maintenancePassword must not be empty.');
    if (problem) throw invalid(problem);
    const eps = endpoints as Exclude<typeof endpoints, string>;
    if (await this.repo.get(input.name)) throw conflict(`A server named '${input.name}' already exists.`);
    const tls = resolveTls(
      { sslEnforcement: 'Enabled', minimalTlsVersion: 'TLS1_2' },
      { sslEnforcement: input.sslEnforcement, minimalTlsVersion: input.minimalTlsVersion },
    );
    try {
      await (this.attachSupport.check ?? checkAttachable)(
        eps,
        { ca: input.tlsCa, user: input.maintenanceUser, password: input.maintenancePassword },
        { login: input.administratorLogin, ...(input.administratorLoginPassword !== undefined ? { password: input.administratorLoginPassword } : {}) },
      );
    } catch (err) {
      throw invalid(`Attaching server '${input.name}' failed: ${(err as Error).message}`);
    }
    const row = await this.repo.insertAttached({
      name: input.name,
      administratorLogin: input.administratorLogin,
      hostId: this.hostId,
      ...tls,
      publicNetworkAccess: input.publicNetworkAccess ?? 'Enabled',
      endpoints: eps.map(endpointText),
      tlsCa: input.tlsCa,
      maintenanceUser: input.maintenanceUser,
      maintenancePasswordSealed: this.attachSupport.sealMaintenancePassword(input.maintenancePassword, input.name),
    });
    if (!row) throw conflict(`A server named '${input.name}' already exists.`);
    return row;
  }

  list(): Promise<ServerRecord[]> {
    return this.repo.list();
  }

  async get(name: string): Promise<ServerRecord> {
    const s = await this.repo.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s;
  }

  /** The endpoint an attached server's primary was last found at (`HOST:PORT`), or null. */
  primaryEndpoint(id: number): string | null {
    return this.attachSupport?.primary?.(id) ?? null;
  }

  async create(input: CreateServerInput): Promise<ServerRecord> {
    const extra = Object.keys(input).filter((k) => ATTACHED_ONLY.has(k));
    if (extra.length) throw invalid(`${extra.join(', ')} apply only with "mode": "attached".`);
    if (typeof input.administratorLoginPassword !== 'string') throw invalid('administratorLoginPassword is required.');
    const problem = serverNameProblem(input.name) ?? administratorLoginProblem(input.administratorLogin) ?? passwordProblem(input.administratorLoginPassword);
    if (problem) throw invalid(problem);
    const tls = resolveTls(
      { sslEnforcement: 'Enabled', minimalTlsVersion: 'TLS1_2' },
      { sslEnforcement: input.sslEnforcement, minimalTlsVersion: input.minimalTlsVersion },
    );
    const row = await this.repo.insert({
      name: input.name,
      administratorLogin: input.administratorLogin,
      hostId: this.hostId,
      ...tls,
      publicNetworkAccess: input.publicNetworkAccess ?? 'Enabled',
    });
    if (!row) throw conflict(`A server named '${input.name}' already exists.`);
    try {
      await this.engine.create(row.id, { login: input.administratorLogin, password: input.administratorLoginPassword });
    } catch (err) {
      await this.engine.remove(row.id).catch(() => undefined);
      await this.repo.delete(row.id);
      throw new PlatformError('Internal', `Creating server '${input.name}' failed: ${(err as Error).message}`);
    }
    await this.repo.setState(row.id, 'Ready');
    return this.get(input.name);
  }

  async update(name: string, input: UpdateServerInput): Promise<ServerRecord> {
    return (await this.updateTracked(name, input)).after;
  }

  /** An update that also returns the row as it was, so the caller can record what changed. */
  async updateTracked(name: string, input: UpdateServerInput): Promise<{ before: ServerRecord; after: ServerRecord }> {
    const current = await this.get(name);
    // The API's schema refuses these first; a caller inside the process gets the same answer.
    if (input.poolSize !== undefined) {
      const problem = poolSizeProblem(input.poolSize);
      if (problem) throw invalid(problem);
    }
    if (input.poolMode !== undefined && !POOL_MODES.includes(input.poolMode)) {
      throw invalid(`Invalid poolMode '${input.poolMode}': it must be one of ${POOL_MODES.join(', ')}.`);
    }
    if (input.administratorLoginPassword !== undefined) {
      const problem = passwordProblem(input.administratorLoginPassword);
      if (problem) throw invalid(problem);
    }
    const tls = input.sslEnforcement !== undefined || input.minimalTlsVersion !== undefined ? resolveTls(current, input) : {};
    if (input.administratorLoginPassword !== undefined) {
      if (!isAttached(current) && !this.engine.isRunning(current.id)) {
        throw conflict(`Server '${name}' is ${current.state}: start it before changing the administrator password.`);
      }
      await this.engine.setPassword(current.id, current.administratorLogin, input.administratorLoginPassword);
    }
    const updated = await this.repo.update(name, {
      ...tls,
      publicNetworkAccess: input.publicNetworkAccess,
      passwordAuth: input.passwordAuth,
      poolMode: input.poolMode,
      poolSize: input.poolSize,
    });
    if (!updated) throw notFound(`Server '${name}' was not found.`);
    return { before: current, after: updated };
  }

  /** The server's pool settings and the gateway's pools of it now (none when it does not pool). */
  async pool(name: string): Promise<ServerPools> {
    const s = await this.get(name);
    return { server: s.name, poolMode: s.poolMode, poolSize: s.poolSize, pools: this.pools.poolStats(s.name) };
  }

  async stop(name: string): Promise<ServerRecord> {
    const s = await this.get(name);
    refuseAttached(s, 'stopped');
    if (s.state === 'Stopped') return s;
    if (s.state !== 'Ready') throw conflict(`Server '${name}' is ${s.state} and cannot be stopped.`);
    await this.engine.stop(s.id);
    await this.repo.setState(s.id, 'Stopped');
    return this.get(name);
  }

  async start(name: string): Promise<ServerRecord> {
    const s = await this.get(name);
    refuseAttached(s, 'started');
    if (s.state === 'Ready') return s;
    if (s.state !== 'Stopped') throw conflict(`Server '${name}' is ${s.state} and cannot be started.`);
    await this.engine.start(s.id);
    await this.repo.setState(s.id, 'Ready');
    return this.get(name);
  }

  /** A full encrypted base backup of a running server. */
  async backup(name: string, onProgress?: ProgressFn): Promise<BackupManifest> {
    const s = await this.get(name);
    refuseAttached(s, 'backed up');
    if (s.state !== 'Ready') throw conflict(`Server '${name}' is ${s.state}: only a running server can be backed up.`);
    return this.engine.backup(s.id, onProgress);
  }

  async backups(name: string): Promise<BackupManifest[]> {
    const s = await this.get(name);
    return isAttached(s) ? [] : this.engine.listBackups(s.id);
  }

  /** Checks a restore request and reserves the new server's name; `run` does the work. */
  async prepareRestore(
    newName: string,
    sourceName: string,
    pointInTime: Date | undefined,
  ): Promise<{ run: (onProgress: ProgressFn) => Promise<ServerRecord> }> {
    const problem = serverNameProblem(newName);
    if (problem) throw invalid(problem);
    if (pointInTime && pointInTime.getTime() > Date.now()) throw invalid('restorePointInTime is in the future.');
    const source = await this.get(sourceName);
    refuseAttached(source, 'restored');
    if ((await this.engine.listBackups(source.id)).length === 0)
      throw conflict(`Server '${sourceName}' has no backup yet: run 'pgwarden backup create --server ${sourceName}' first.`);
    // As in the reference service: the same settings, but no firewall rules, so nothing reaches
    // the copy until its owner allows it.
    const row = await this.repo.insert({
      name: newName,
      administratorLogin: source.administratorLogin,
      hostId: this.hostId,
      sslEnforcement: source.sslEnforcement,
      minimalTlsVersion: source.minimalTlsVersion,
      publicNetworkAccess: source.publicNetworkAccess,
    });
    if (!row) throw conflict(`A server named '${newName}' already exists.`);
    return {
      run: async (onProgress) => {
        try {
          await this.copyOnRestore?.(source.id, row.id);
          await this.engine.restore(row.id, source.id, pointInTime, onProgress);
        } catch (err) {
          await this.engine.remove(row.id).catch(() => undefined);
          await this.repo.delete(row.id);
          throw err;
        }
        await this.repo.setState(row.id, 'Ready');
        return this.get(newName);
      },
    };
  }

  async delete(name: string): Promise<void> {
    const s = await this.get(name);
    if (isAttached(s)) {
      // Detaching: the cluster and its data stay with the engine that runs them.
      await this.repo.delete(s.id);
      return;
    }
    await this.repo.setState(s.id, 'Dropping');
    await this.engine.remove(s.id);
    await this.repo.delete(s.id);
  }

  /** On `up`: bring every server of this host back to the state it was in. */
  async resume(onError: (server: ServerRecord, err: Error) => void, locked: ReadonlySet<number> = new Set()): Promise<void> {
    const servers = (await this.repo.list()).filter((s) => s.hostId === this.hostId && !locked.has(s.id) && !isAttached(s));
    await Promise.all(
      servers.map(async (s) => {
        try {
          if (s.state === 'Ready') await this.engine.start(s.id);
          else if (s.state === 'Creating' || s.state === 'Dropping') {
            // Interrupted half-way by a platform that died: finish removing it.
            await this.engine.remove(s.id);
            await this.repo.delete(s.id);
          }
        } catch (err) {
          onError(s, err as Error);
        }
      }),
    );
  }
}

/** The engine that runs an attached server owns its lifecycle and backups. */
function refuseAttached(s: ServerRecord, what: string): void {
  if (isAttached(s)) {
    throw conflict(`Server '${s.name}' is attached: it is ${what} by the engine that runs it (Patroni, CloudNativePG), not by pgwarden.`);
  }
}

function caProblem(pem: string): string | null {
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) return "tlsCa must be a PEM certificate (the CA the nodes' certificates are issued by).";
  try {
    new X509Certificate(pem);
    return null;
  } catch {
    return 'tlsCa is not a valid PEM certificate.';
  }
}
