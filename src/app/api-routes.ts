// Which routes each composition's API serves: `up` the whole control plane; a gateway-only
// process its own audit log, health, metrics and certificate rotation.
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { PlatformCa } from '../host/ca.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { StreamCaller, VerifiableStream } from '../audit/verify-streams.js';
import type { ThreatEngine } from '../threat/engine.js';
import { webhookSecretAad } from '../threat/notify/index.js';
import type { PrincipalKeys } from '../auth/principal-keys.js';
import type { TokensRepo } from '../catalog/tokens-repo.js';
import type { ThreatRepo } from '../catalog/threat-repo.js';
import { AuditSettingsRepo } from '../catalog/audit-settings-repo.js';
import { IdentityRepo } from '../catalog/identity-repo.js';
import type { NetworkService } from '../services/network-service.js';
import type { Operations } from '../services/operations.js';
import type { PlatformService } from '../services/platform-service.js';
import { IdentityService } from '../services/identity-service.js';
import { serverRoutes } from '../control/routes/servers.js';
import { networkRoutes } from '../control/routes/network.js';
import { identityRoutes } from '../control/routes/identity.js';
import { auditLogRoutes, auditSettingsRoutes } from '../control/routes/audit.js';
import { threatRoutes } from '../control/routes/threat.js';
import { backupRoutes } from '../control/routes/backups.js';
import { keyRoutes } from '../control/routes/keys.js';
import { configurationRoutes } from '../control/routes/configurations.js';
import { platformRoutes } from '../control/routes/platform.js';
import { consoleRoot, registerConsole } from '../control/console.js';
import type { SecretSealer } from '../host/secrets.js';
import type { ServersPart } from './servers-part.js';

/** What every platform process serves about itself. */
export interface ProcessRoutesDeps {
  readonly audit: AuditLog;
  readonly tokens: TokensRepo;
  readonly ca: PlatformCa;
  readonly metrics: Registry;
  readonly service: PlatformService;
  /** The audit streams this process searches and verifies (tier/: every gateway's, for `up`). */
  readonly auditStreams?: (caller: StreamCaller) => Promise<readonly VerifiableStream[]>;
}

export function processRoutes(api: FastifyInstance, d: ProcessRoutesDeps): void {
  auditLogRoutes(api, { dir: d.audit.dir, publicKeyPem: () => d.audit.publicKeyPem, ...(d.auditStreams ? { streams: d.auditStreams } : {}) });
  platformRoutes(api, {
    tokens: d.tokens,
    caPem: () => d.ca.certPem,
    metrics: d.metrics,
    health: () => d.service.health(),
    rotateCertificate: () => d.service.rotateCertificate(),
  });
}

/** `up`: servers, network, identity, audit settings, threat protection, backups, keys,
 * configurations, the console, and what every process serves. */
export function controlPlaneRoutes(
  api: FastifyInstance,
  d: ProcessRoutesDeps & {
    readonly domain: string;
    readonly pgMajorVersion: number;
    readonly db: pg.Pool;
    readonly servers: ServersPart;
    readonly networkService: NetworkService;
    readonly principalKeys: PrincipalKeys;
    readonly threat: ThreatEngine;
    readonly threatRepo: ThreatRepo;
    readonly webhookSecrets: SecretSealer;
    readonly operations: Operations;
  },
): void {
  const { serverService, repo } = d.servers;
  serverRoutes(api, serverService, d.domain, String(d.pgMajorVersion));
  networkRoutes(api, d.networkService);
  auditSettingsRoutes(api, repo, new AuditSettingsRepo(d.db));
  identityRoutes(api, new IdentityService(repo, new IdentityRepo(d.db), d.servers.servers, d.principalKeys));
  threatRoutes(api, repo, d.threatRepo, d.threat, (secret, server, url) => d.webhookSecrets.seal(secret, webhookSecretAad(server, url)));
  backupRoutes(api, serverService, d.operations);
  keyRoutes(api, serverService, d.servers.keys);
  configurationRoutes(api, d.servers.configurations);
  registerConsole(api, { root: consoleRoot() });
  processRoutes(api, d);
}
