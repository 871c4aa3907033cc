// Backups of the managed servers: the WAL archive agent of each server (it encrypts every segment
// before it reaches the repository), base backups, and the data of a point-in-time restore.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { ServerAccounts } from '../host/os-accounts.js';
import type { PlatformPaths } from '../host/paths.js';
import type { KekProvider } from '../crypto/index.js';
import {
  createBaseBackup,
  listBackups,
  replicationHbaLine,
  restoreToPointInTime,
  startArchiveAgent,
  walArchiveSettings,
  type ArchiveAgent,
  type BackupManifest,
  type BackupRepository,
  type ProgressFn,
} from '../storage/backup/index.js';
import type { MaintenanceConnections } from './maintenance.js';
import { MAINTENANCE_ROLE } from './roles.js';

/** Where backups go and which key-encryption key protects each server's backup keys. */
export interface BackupWiring {
  readonly repo: BackupRepository;
  kek(serverId: number): KekProvider;
}

export class ServerBackups {
  /** WAL archive agents by server: encrypt each segment before it reaches the repository. */
  private readonly agents = new Map<number, ArchiveAgent>();

  constructor(
    private readonly paths: Pick<PlatformPaths, 'runDir' | 'serverData'>,
    private readonly accounts: ServerAccounts,
    private readonly maintenance: MaintenanceConnections,
    private readonly wiring: BackupWiring,
  ) {}

  /** What a server's configuration needs for WAL archiving and base backups. */
  clusterSettings(id: number, archiveLibrary: boolean): { settings: Record<string, string | number | boolean>; hbaLines: string[] } {
    return {
      settings: walArchiveSettings({ socketPath: this.agentSocket(id), archiveLibrary }),
      hbaLines: [replicationHbaLine(MAINTENANCE_ROLE)],
    };
  }

  /** The archive agent's socket: in a root-owned directory of its own, not the server's. */
  private agentSocket(id: number): string {
    return path.join(this.paths.runDir, `a${id}`, 's.sock');
  }

  async ensureAgent(id: number): Promise<void> {
    if (this.agents.has(id)) return;
    const agent = await startArchiveAgent({
      socketPath: this.agentSocket(id),
      owner: await this.accounts.server(id),
      repo: this.wiring.repo,
      serverId: String(id),
      kek: this.wiring.kek(id),
    });
    this.agents.set(id, agent);
  }

  async stopAgent(id: number): Promise<void> {
    const agent = this.agents.get(id);
    this.agents.delete(id);
    await agent?.close().catch(() => undefined);
  }

  /** The agent's directory, when the server is removed. */
  removeAgentDir(id: number): void {
    rmSync(path.dirname(this.agentSocket(id)), { recursive: true, force: true });
  }

  /** A full base backup, encrypted on its way to the repository. */
  backup(id: number, onProgress?: ProgressFn): Promise<BackupManifest> {
    return createBaseBackup({
      socketDir: this.maintenance.socketDir(id),
      user: MAINTENANCE_ROLE,
      password: this.maintenance.password(id),
      repo: this.wiring.repo,
      serverId: String(id),
      kek: this.wiring.kek(id),
      ...(onProgress ? { onProgress } : {}),
    });
  }

  /** Switches to a new WAL segment and waits (up to 60 s) until the old one is archived. */
  async archiveCurrentWal(id: number): Promise<void> {
    const client = await this.maintenance.connect(id);
    try {
      const { rows } = await client.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
      const want = rows[0]!.name;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows: st } = await client.query<{ last: string | null; failed: string | null }>(
          'select last_archived_wal as last, last_failed_wal as failed from pg_stat_archiver',
        );
        if (st[0]?.last && st[0].last >= want) return;
        if (Date.now() > deadline) throw new Error(`WAL segment ${want} was not archived within 60 s (last failure: ${st[0]?.failed ?? 'none'})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await client.end();
    }
  }

  list(id: number): Promise<BackupManifest[]> {
    return listBackups(this.wiring.repo, String(id));
  }

  /** Server `id`'s data directory from the source's latest backup before `targetTime` plus its
   * archived WAL up to that time (its volume is open; the caller starts it). */
  async restoreData(id: number, sourceId: number, targetTime: Date | undefined, onProgress?: ProgressFn): Promise<void> {
    // The recovering postmaster's socket and its private agent: a root-owned dir of this restore's own.
    const runDir = path.join(this.paths.runDir, `r${id}`);
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { mode: 0o711 });
    try {
      await restoreToPointInTime({
        repo: this.wiring.repo,
        sourceServerId: String(sourceId),
        targetDataDir: this.paths.serverData(id),
        owner: await this.accounts.server(id),
        ...(targetTime ? { targetTime } : {}),
        kek: this.wiring.kek(sourceId),
        runDir,
        ...(onProgress ? { onProgress } : {}),
      });
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  }
}
