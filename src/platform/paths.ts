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
  /** The tamper-evident audit store (segments and signed checkpoints). */
  readonly auditDir: string;
  readonly auditKey: string;
  /** The newest signed checkpoint, exported for copying off the host. */
  readonly auditWitness: string;
  catalogSocketDir(): string;
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
    catalogData: path.join(root, 'catalog'),
    runDir,
    serversDir,
    auditDir: path.join(root, 'audit'),
    auditKey: path.join(secretsDir, 'audit-signing.pem'),
    auditWitness: path.join(root, 'audit-witness', 'checkpoint-latest.json'),
    // Socket paths are short on purpose: a Unix socket path has at most 107 bytes.
    catalogSocketDir: () => path.join(runDir, 'c'),
    serverData: (id) => path.join(serversDir, String(id), 'data'),
    serverSocketDir: (id) => path.join(runDir, `s${id}`),
    maintenanceSecret: (id) => path.join(secretsDir, `server-${id}.maint`),
  };
}
