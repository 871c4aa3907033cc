// A TLS certificate for the benchmark's own listeners (PostgreSQL direct, PgBouncer), issued
// by the platform CA like the gateway's (ECDSA P-256, SHA-256), so every leg does the same
// handshake work. Written where the service account can read it (PostgreSQL wants the key
// owned by the server's user, mode 0600).
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { issueServerCertificate, type PlatformCa } from '../../src/host/ca.js';
import type { OsAccount } from '../../src/host/os-user.js';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export async function benchCertificate(ca: PlatformCa, dir: string, account: OsAccount): Promise<TlsFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, account.uid, account.gid);
  const leaf = await issueServerCertificate(ca, { commonName: 'pgwarden bench', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const certFile = path.join(dir, 'bench.crt');
  const keyFile = path.join(dir, 'bench.key');
  writeFileSync(certFile, leaf.certPem, { mode: 0o644 });
  writeFileSync(keyFile, leaf.keyPem, { mode: 0o600 });
  chownSync(certFile, account.uid, account.gid);
  chownSync(keyFile, account.uid, account.gid);
  return { certFile, keyFile };
}

/** Writes a file owned by the service account, mode 0600. */
export function writeOwned(file: string, text: string, account: OsAccount): void {
  writeFileSync(file, text, { mode: 0o600 });
  chownSync(file, account.uid, account.gid);
}
