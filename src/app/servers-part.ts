// The managed servers of `up` (a gateway-only process runs none): their keys, the engine that
// runs them, the services the API calls about them, the backup schedule and the pgAudit ingest.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { now, type EventBus } from '../events/bus.js';
import { ServersRepo, isAttached } from '../catalog/servers-repo.js';
import { KeysRepo } from '../catalog/keys-repo.js';
import { ServerParametersRepo } from '../catalog/server-parameters-repo.js';
import type { SnapshotStore } from '../catalog/snapshot.js';
import { ManagedServers } from '../engine/managed-servers.js';
import type { AttachedServers } from '../engine/attached/attached-servers.js';
import { endpointText } from '../engine/attached/endpoints.js';
import { nestedAuditOnly } from '../engine/server-libraries.js';
import { findPgBinaries } from '../host/pg-binaries.js';
import { EncryptedVolume } from '../storage/encrypted-volume.js';
import { DEFAULT_BACKUP_INTERVAL_MS, DirectoryRepository, rewrapBackupKeys, type BackupScheduler } from '../storage/backup/index.js';
import { PgAuditIngest } from '../audit/pgaudit-ingest.js';
import type { AuditLog } from '../audit/audit-log.js';
import { DEFAULT_KEY_CHECK_INTERVAL_MS, KeyService } from '../services/key-service.js';
import { ServerService } from '../services/server-service.js';
import { ConfigurationService } from '../services/configuration-service.js';
import { DEFAULT_BACKUP_RETENTION_DAYS, scheduleBackups } from '../services/backup-schedule.js';
import { publishServerEvents, reportKeyLost, type ThreatAlerts } from '../services/platform-alerts.js';
import type { AuditSettingsSync } from '../services/audit-settings-sync.js';
import type { PoolStatsSource } from '../gateway/pool/types.js';
import { GiB, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';
import { followAttached } from './attached-part.js';

/** The gateway's index of open sessions, which pgAudit lines are matched to. */
type IngestSessions = ConstructorParameters<typeof PgAuditIngest>[0]['sessions'];

export interface ServersPart extends Part {
  readonly repo: ServersRepo;
  readonly backupRepo: DirectoryRepository;
  /** Each server's key-encryption key; checks customer keys once started (a part of its own). */
  readonly keys: KeyService;
  readonly servers: ManagedServers;
  /** Attached servers' relays to their primaries (the catalog's attached rows). */
  readonly attached: AttachedServers;
  /** Relays for the snapshot's attached servers, now (also on every snapshot update). */
  syncAttached(): Promise<void>;
  readonly serverService: ServerService;
  readonly configurations: ConfigurationService;
}

interface ServersDeps {
  readonly db: pg.Pool;
  readonly snapshots: SnapshotStore;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly threat: ThreatAlerts;
  /** The gateway's pools, which the API reports on (none when not given). */
  readonly pools?: PoolStatsSource;
}

/** The servers' keys, engine and services, wired; nothing started yet (see startServers). */
export function buildServers(options: PlatformOptions, host: Host, d: ServersDeps): ServersPart {
  const p = host.paths;
  // A state written here returns once this process's gateway decides from it.
  const repo = new ServersRepo(d.db, () => d.snapshots.requestReload());
  // Backups: encrypted with per-backup keys wrapped by each server's KEK (system-managed,
  // derived from the platform root key) into the backup repository.
  const backupDir = options.backupDir ?? path.join(p.root, 'backups');
  mkdirSync(backupDir, { recursive: true, mode: 0o700 });
  const backupRepo = new DirectoryRepository(backupDir);
  const keys: KeyService = new KeyService({
    root: host.kekRoot,
    keys: new KeysRepo(d.db),
    servers: repo,
    paths: p,
    hostId: host.hostId,
    checkIntervalMs: options.keyCheckIntervalMs ?? DEFAULT_KEY_CHECK_INTERVAL_MS,
    pkcs11Modules: host.pkcs11Modules,
    lock: async (id) => {
      // This process's gateway refuses the server (its new state) before it goes down, so no
      // client meets a server that is shutting down (57P03) instead of the Inaccessible error.
      await d.snapshots.requestReload();
      await servers.stop(id);
      await servers.closeVolume(id);
    },
    unlock: (id) => servers.start(id),
    volumeOpen: (id) => servers.volumeIsOpen(id),
    rewrapBackups: (id, from, to) => rewrapBackupKeys(backupRepo, String(id), from, to),
    onInaccessible: (server, reason) => reportKeyLost(d.bus, d.threat, server, reason),
    onError: (err, what) => d.log.error({ err }, what),
  });
  const volumeSize = options.volumeSizeBytes ?? 16 * GiB;
  const servers = new ManagedServers(
    p,
    host.accounts,
    (id, owner) =>
      new EncryptedVolume(
        { id: `server-${id}`, stateDir: p.volumesDir, mountPoint: p.serverVolume(id), sizeBytes: volumeSize, owner },
        keys.volumeKeying(id),
        host.volumeBackend,
      ),
    { repo: backupRepo, kek: (id) => keys.backupKek(id) },
  );
  const nameOf = (id: number) => [...d.snapshots.snapshot.servers.values()].find((s) => s.id === id)?.name ?? String(id);
  publishServerEvents(servers, d.bus, nameOf);
  // Attached servers: PostgreSQL an HA engine runs elsewhere, reached through a local relay to
  // the current primary (attached-part.ts).
  const attachedPart = followAttached(host, { snapshots: d.snapshots, maintenance: servers.maintenance, bus: d.bus, log: d.log });
  const { attached } = attachedPart;
  const serverService = new ServerService(repo, servers, host.hostId, d.pools, {
    sealMaintenancePassword: (password, name) => attachedPart.seal(password, name),
    primary: (id) => {
      const e = attached.primary(id);
      return e ? endpointText(e) : null;
    },
  });
  const configurations = new ConfigurationService(repo, new ServerParametersRepo(d.db), servers, host.hostId);
  // A restore copies its source's server parameters.
  serverService.copyOnRestore = (from, to) => configurations.copyForRestore(from, to);
  return {
    repo,
    backupRepo,
    keys,
    servers,
    attached,
    syncAttached: attachedPart.sync,
    serverService,
    configurations,
    stop: async () => {
      await attachedPart.stop();
      await servers.stopAll();
    },
  };
}

/** Managed servers back in the state they were in: parameters and audit settings in the engine
 * before any server starts; a customer key the HSM no longer gives leaves its server
 * Inaccessible, not started. Then the key checker runs. */
export async function startServers(part: ServersPart, auditSync: AuditSettingsSync, bus: EventBus): Promise<void> {
  await part.syncAttached();
  await part.configurations.loadAll();
  await auditSync.apply();
  const locked = await part.keys.checkBeforeStart();
  await part.serverService.resume(
    (s, err) => bus.publish({ type: 'server.restart_failed', time: now(), server: s.name, details: { error: err.message } }),
    locked,
  );
  part.keys.start();
}

/** Full backups of every Ready server on this host (none when the interval is 0). */
export function scheduleServerBackups(options: PlatformOptions, host: Host, part: ServersPart, log: Logger): BackupScheduler | undefined {
  const interval = options.backupIntervalMs ?? DEFAULT_BACKUP_INTERVAL_MS;
  if (!(interval > 0)) return undefined;
  return scheduleBackups(
    {
      intervalMs: interval,
      retentionDays: options.backupRetentionDays ?? DEFAULT_BACKUP_RETENTION_DAYS,
      ...(options.backupScheduleTickMs ? { tickMs: options.backupScheduleTickMs } : {}),
    },
    {
      servers: part.repo,
      service: part.serverService,
      repo: part.backupRepo,
      hostId: host.hostId,
      onError: (err, server) => log.error({ err, server }, 'scheduled backup'),
    },
  );
}

/** How long a pgAudit line waits before it is joined, with several gateway processes (far past
 * an IPC hop, so a busy event loop's lends arrive first too). */
const PGAUDIT_HOLD_MS = 1_000;

/** The servers' pgAudit lines into the audit store (with the gateway's sessions to match them
 * to), and the store's retention: as long as the longest any server asks for. */
export function startPgAudit(
  host: Host,
  d: { servers: ManagedServers; snapshots: SnapshotStore; sessions: IngestSessions; bus: EventBus; audit: AuditLog; gatewayProcesses: number },
): PgAuditIngest {
  const pgaudit = new PgAuditIngest({
    stateFile: path.join(host.paths.root, 'pgaudit-offsets.json'),
    // An attached cluster's own log is not on this host (README: attached servers).
    servers: () => [...d.snapshots.snapshot.servers.values()].filter((s) => s.hostId === host.hostId && !isAttached(s)),
    logDir: (id) => d.servers.logDir(id),
    sessions: d.sessions,
    bus: d.bus,
    nestedOnly: nestedAuditOnly(findPgBinaries()),
    // Other gateway processes send their lends over IPC: a line waits until they surely came.
    ...(d.gatewayProcesses > 1 ? { holdMs: PGAUDIT_HOLD_MS } : {}),
  });
  pgaudit.start();
  d.audit.scheduleRetention(() => {
    const days = [...d.snapshots.snapshot.audit.values()].map((a) => a.retentionDays);
    return days.length ? Math.max(...days) : 90;
  }, d.bus);
  return pgaudit;
}
