// Server parameters (configurations) and extensions on the owner's behalf: checked against the
// allow-list (engine/server-parameters.ts), kept in the catalog, written into the server's
// platform-owned configuration file and applied with a reload, or with a restart when asked.
// A value PostgreSQL refuses (on reload or at start) is rolled back and the error says so.
import type { ManagedServers } from '../engine/managed-servers.js';
import { isAttached, type ServerRecord, type ServersRepo } from '../catalog/servers-repo.js';
import type { ServerParametersRepo } from '../catalog/server-parameters-repo.js';
import {
  EXTENSIONS_PARAMETER,
  PARAMETERS,
  ParameterError,
  allowedValues,
  baseValue,
  checkCombination,
  normalizeValue,
  parameterSpec,
  type ParameterSpec,
  type ParameterType,
  type ParameterValues,
} from '../engine/server-parameters.js';
import { preloadLibraries } from '../engine/server-libraries.js';
import { findPgBinaries } from '../host/pg-binaries.js';
import { conflict, invalid, notFound, PlatformError } from './errors.js';

export interface ConfigurationView {
  readonly name: string;
  readonly value: string;
  readonly defaultValue: string;
  readonly source: 'user-override' | 'system-default';
  readonly dataType: ParameterType;
  readonly allowedValues: string;
  readonly unit: string | null;
  readonly isDynamic: boolean;
  readonly pendingRestart: boolean;
  readonly description: string;
}

export interface ExtensionResult {
  readonly name: string;
  readonly database: string;
  readonly version: string;
  readonly created: boolean;
}

const DATABASE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$/;

export class ConfigurationService {
  private readonly queues = new Map<number, Promise<unknown>>();

  constructor(
    private readonly servers: ServersRepo,
    private readonly repo: ServerParametersRepo,
    private readonly engine: ManagedServers,
    private readonly hostId: string,
  ) {}

  /** On `up`, before servers start: every server's parameters into the engine. */
  async loadAll(): Promise<void> {
    const all = await this.repo.all();
    for (const s of await this.servers.list()) {
      if (s.hostId === this.hostId) this.engine.setParameters(s.id, all.get(s.id) ?? {});
    }
  }

  /** A restored server gets its source's parameters (in the catalog and for its first start). */
  async copyForRestore(fromId: number, toId: number): Promise<void> {
    await this.repo.copy(fromId, toId);
    this.engine.setParameters(toId, await this.repo.get(toId));
  }

  private async server(name: string): Promise<ServerRecord> {
    const s = await this.servers.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s;
  }

  private spec(name: string): ParameterSpec {
    try {
      return parameterSpec(name);
    } catch (err) {
      if (err instanceof ParameterError) throw invalid(err.message);
      throw err;
    }
  }

  async list(serverName: string): Promise<ConfigurationView[]> {
    const s = await this.server(serverName);
    const values = this.engine.parametersOf(s.id);
    const libraries = (values['shared_preload_libraries'] ?? '').split(',');
    const specs = PARAMETERS.filter((p) => !p.needsLibrary || libraries.includes(p.needsLibrary));
    const live = await this.live(s, specs);
    return specs.map((p) => this.view(p, values, live));
  }

  async show(serverName: string, name: string): Promise<ConfigurationView> {
    const s = await this.server(serverName);
    let spec: ParameterSpec;
    try {
      spec = parameterSpec(name);
    } catch (err) {
      if (err instanceof ParameterError && err.kind === 'unknown') throw notFound(err.message);
      if (err instanceof ParameterError) throw invalid(err.message);
      throw err;
    }
    const values = this.engine.parametersOf(s.id);
    return this.view(spec, values, await this.live(s, [spec]));
  }

  async set(serverName: string, name: string, rawValue: string, restart: boolean): Promise<ConfigurationView> {
    const s = await this.server(serverName);
    const spec = this.spec(name);
    let value: string;
    try {
      value = normalizeValue(spec, rawValue);
    } catch (err) {
      if (err instanceof ParameterError) throw invalid(err.message);
      throw err;
    }
    notAttached(s);
    return this.serialized(s.id, async () => {
      if (s.state !== 'Ready' || !this.engine.isRunning(s.id)) {
        throw conflict(`Server '${s.name}' is ${s.state}: start it before changing its parameters.`);
      }
      const old = this.engine.parametersOf(s.id);
      const next: Record<string, string> = { ...old };
      if (baseValue(spec, value) === baseValue(spec, spec.defaultValue)) delete next[spec.name];
      else next[spec.name] = value;
      try {
        checkCombination(next);
      } catch (err) {
        if (err instanceof ParameterError) throw invalid(err.message);
        throw err;
      }
      this.engine.setParameters(s.id, next);
      try {
        if (spec.context === 'postmaster' && restart) await this.engine.restart(s.id);
        else await this.engine.reloadConfig(s.id);
      } catch (err) {
        this.engine.setParameters(s.id, old);
        const back = this.engine.isRunning(s.id) ? this.engine.reloadConfig(s.id) : this.engine.restart(s.id);
        await back.catch(() => undefined);
        throw new PlatformError(
          'InvalidArgument',
          `The server did not accept ${spec.name} = '${value}': ${(err as Error).message.slice(0, 500)} The previous configuration was restored.`,
        );
      }
      await this.repo.put(s.id, next);
      return this.view(spec, next, await this.live(s, [spec]));
    });
  }

  /** Creates an allowed extension as the platform's superuser, for the administrators. */
  async createExtension(serverName: string, name: string, database: string): Promise<ExtensionResult> {
    const s = await this.server(serverName);
    const values = this.engine.parametersOf(s.id);
    const allowed = (values[EXTENSIONS_PARAMETER] ?? parameterSpec(EXTENSIONS_PARAMETER).defaultValue).split(',');
    if (!allowed.includes(name)) {
      throw invalid(
        `Extension '${name}' is not in the server's ${EXTENSIONS_PARAMETER} (${allowed.join(', ')}): add it with 'pgwarden server configuration set --name ${EXTENSIONS_PARAMETER}' first.`,
      );
    }
    if (!DATABASE_NAME.test(database)) throw invalid(`Invalid database name '${database}'.`);
    notAttached(s);
    if (s.state !== 'Ready' || !this.engine.isRunning(s.id)) throw conflict(`Server '${s.name}' is ${s.state}: start it first.`);
    try {
      const r = await this.engine.createExtension(s.id, name, database);
      return { name, database, version: r.version, created: r.created };
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (e.code === '3D000') throw notFound(`Database '${database}' does not exist on server '${s.name}'.`);
      throw invalid(`Extension '${name}' could not be created in database '${database}': ${e.message}`);
    }
  }

  private serialized<T>(id: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.queues.set(
      id,
      run.catch(() => undefined),
    );
    return run;
  }

  private async live(s: ServerRecord, specs: readonly ParameterSpec[]): Promise<Map<string, string> | null> {
    if (!this.engine.isRunning(s.id)) return null;
    const names = specs.filter((p) => p.context === 'postmaster').map((p) => p.name);
    if (!names.length) return new Map();
    return this.engine.liveSettings(s.id, names).catch(() => null);
  }

  private view(spec: ParameterSpec, values: ParameterValues, live: Map<string, string> | null): ConfigurationView {
    const set = values[spec.name];
    const value = set ?? spec.defaultValue;
    let pendingRestart = false;
    if (spec.context === 'postmaster' && live) {
      const running = live.get(spec.name);
      if (spec.name === 'shared_preload_libraries') {
        pendingRestart = running !== undefined && running !== preloadLibraries(findPgBinaries(), value.split(',').filter(Boolean));
      } else if (running !== undefined) {
        pendingRestart = baseValue(spec, value) !== baseValue(spec, running);
      }
    }
    return {
      name: spec.name,
      value,
      defaultValue: spec.defaultValue,
      source: set === undefined ? 'system-default' : 'user-override',
      dataType: spec.dataType,
      allowedValues: allowedValues(spec),
      unit: spec.unit ?? null,
      isDynamic: spec.context !== 'postmaster',
      pendingRestart,
      description: spec.description,
    };
  }
}

/** An attached server's parameters and extensions belong to the engine that runs it (Patroni's
 * configuration, the cluster's own DBA): pgwarden refuses, and says where to do it. */
function notAttached(s: ServerRecord): void {
  if (isAttached(s)) {
    throw conflict(
      `Server '${s.name}' is attached: its parameters and extensions are set in the engine that runs it (for Patroni, 'patronictl edit-config'), not through pgwarden.`,
    );
  }
}
