// What the platform answers about itself (not about one resource): its health, the gateway's
// certificate (reloaded on SIGHUP, rotated through the API), and threat protection switched on
// for the demo server. Both compositions (`up` and a gateway-only process) serve it.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type pg from 'pg';
import type { SnapshotStore } from '../catalog/snapshot.js';
import { ServersRepo } from '../catalog/servers-repo.js';
import { ThreatRepo } from '../catalog/threat-repo.js';
import type { GatewayCertificates } from '../gateway/tls-certificates.js';

export interface HealthReport {
  status: 'ok' | 'degraded';
  catalog: { connected: boolean; snapshotAgeSeconds: number; failStatic: boolean };
  servers: { total: number; running: number };
}

export interface PlatformServiceDeps {
  readonly db: pg.Pool;
  readonly snapshots: SnapshotStore;
  readonly feed: { readonly connected: boolean };
  /** Whether this process runs the server (a gateway-only process runs none). */
  isRunning(serverId: number): boolean;
  readonly certificates: GatewayCertificates;
  /** The operator's own gateway certificate and key files, when given. */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
}

export class PlatformService {
  constructor(private readonly d: PlatformServiceDeps) {}

  health(): HealthReport {
    const { snapshots } = this.d;
    const failStatic = snapshots.stale;
    const list = [...snapshots.snapshot.servers.values()];
    return {
      status: failStatic ? 'degraded' : 'ok',
      catalog: {
        connected: this.d.feed.connected,
        snapshotAgeSeconds: Math.round((Date.now() - snapshots.snapshot.loadedAt.getTime()) / 100) / 10,
        failStatic,
      },
      servers: { total: list.length, running: list.filter((s) => this.d.isRunning(s.id)).length },
    };
  }

  /** Turns a server's threat protection on with the default detectors (the demo server's). */
  async enableThreatProtection(server: string): Promise<void> {
    const s = this.d.snapshots.snapshot.servers.get(server) ?? (await new ServersRepo(this.d.db).get(server));
    if (!s) throw new Error(`server ${server} not found`);
    const repo = new ThreatRepo(this.d.db);
    const p = await repo.policy(s.id);
    await repo.putPolicy(s.id, { ...p, state: 'Enabled', enabledAt: p.enabledAt ?? new Date().toISOString() });
  }

  /** Loads the operator's certificate files again, or issues a fresh one from the platform CA.
   * New handshakes use it; open sessions keep theirs. */
  async reloadCertificate(): Promise<void> {
    const { certificates, tlsCertFile, tlsKeyFile } = this.d;
    if (tlsCertFile && tlsKeyFile) {
      certificates.replace(readFileSync(tlsCertFile, 'utf8'), readFileSync(tlsKeyFile, 'utf8'));
      return;
    }
    // A new key and certificate; written by the platform's own process only (one writer).
    await certificates.rotate(this.d.snapshots.snapshot.servers.keys());
  }

  /** `POST /gateway/certificate/rotate`: reload, then say which certificate is served now. */
  async rotateCertificate(): Promise<{ fingerprint256: string; validTo: string }> {
    await this.reloadCertificate();
    const cert = new X509Certificate(this.d.certificates.current.pem);
    return { fingerprint256: cert.fingerprint256, validTo: new Date(cert.validTo).toISOString() };
  }
}
