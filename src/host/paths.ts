// Where everything lives inside a platform's data directory.
import path from 'node:path';

export interface PlatformPaths {
  readonly root: string;
  readonly lockFile: string;
  readonly secretsDir: string;
  readonly caDir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly apiCert: string;
  readonly apiKey: string;
  /** What the CLI reads to find the API: URL and the Owner token (0600). */
  readonly clientConfig: string;
  readonly catalogData: string;
  readonly runDir: string;
  readonly serversDir: string;
  /** The tamper-evident audit store (segments and signed checkpoints) on the encrypted audit
   * volume: the platform's before sealed segments, and next to it each gateway process's. */
  readonly auditDir: string;
  /** The platform's audit store with sealed segments (seal.ts): on the audit volume's file system
   * (bounded in size like it), outside its encrypted directory (fscrypt's `data`). */
  readonly sealedAuditDir: string;
  /** Its store key, wrapped by the root key's KEK. */
  readonly auditStoreKey: string;
  readonly auditKey: string;
  /** The newest signed checkpoint, exported for copying off the host. */
  readonly auditWitness: string;
  /** Where the platform's encrypted volume images / ciphertext dirs are kept (root-only). */
  readonly volumesDir: string;
  /** Mount points of the platform's own encrypted volumes. */
  readonly catalogVolume: string;
  readonly auditVolume: string;
  catalogSocketDir(): string;
  /** The mount point of a server's encrypted volume; its data directory is inside. */
  serverVolume(id: number): string;
  serverData(id: number): string;
  serverSocketDir(id: number): string;
  maintenanceSecret(id: number): string;
}

export function platformPaths(dataDir: string): PlatformPaths {
  const root = path.resolve(dataDir);
  const secretsDir = path.join(root, 'secrets');
  const runDir = path.join(root, 'run');
  const serversDir = path.join(root, 'servers');
  return {
    root,
    lockFile: path.join(root, 'platform.lock'),
    secretsDir,
    caDir: path.join(root, 'ca'),
    caCert: path.join(root, 'ca', 'ca.crt'),
    caKey: path.join(secretsDir, 'ca.key'),
    apiCert: path.join(root, 'ca', 'api.crt'),
    apiKey: path.join(secretsDir, 'api.key'),
    clientConfig: path.join(root, 'client.json'),
    // The catalog and the audit store sit on encrypted volumes mounted at catalog/ and audit/;
    // `data` is the encrypted directory of each (see storage/volumes).
    catalogData: path.join(root, 'catalog', 'data', 'pg'),
    volumesDir: path.join(root, 'volumes'),
    catalogVolume: path.join(root, 'catalog'),
    auditVolume: path.join(root, 'audit'),
    runDir,
    serversDir,
    auditDir: path.join(root, 'audit', 'data', 'store'),
    sealedAuditDir: path.join(root, 'audit', 'sealed-store'),
    auditStoreKey: path.join(secretsDir, 'audit-store-key.json'),
    auditKey: path.join(secretsDir, 'audit-signing.pem'),
    auditWitness: path.join(root, 'audit-witness', 'checkpoint-latest.json'),
    // Socket paths are short on purpose: a Unix socket path has at most 107 bytes.
    catalogSocketDir: () => path.join(runDir, 'c'),
    serverVolume: (id) => path.join(serversDir, String(id)),
    serverData: (id) => path.join(serversDir, String(id), 'data', 'pg'),
    serverSocketDir: (id) => path.join(runDir, `s${id}`),
    maintenanceSecret: (id) => path.join(secretsDir, `server-${id}.maint`),
  };
}
