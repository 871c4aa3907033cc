// `pgwarden up --demo`: a ready-to-use server for the quick start, and how to reach it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Platform } from './platform.js';
import { writeSecretFile } from '../host/secrets.js';

export const DEMO_SERVER = 'demo';
export const DEMO_ADMIN = 'demoadmin';

export async function ensureDemoServer(platform: Platform): Promise<void> {
  const file = path.join(platform.paths.secretsDir, 'demo-admin.password');
  let password: string;
  const existing = (await platform.serverService.list()).find((s) => s.name === DEMO_SERVER);
  if (existing && existsSync(file)) {
    password = readFileSync(file, 'utf8').trim();
  } else if (existing) {
    process.stdout.write(`A server named '${DEMO_SERVER}' exists already; its password is not known to the demo.\n`);
    return;
  } else {
    // Three character classes for the password rules, plus 18 random bytes.
    password = `Demo-${randomBytes(18).toString('base64url')}7a`;
    writeSecretFile(file, `${password}\n`);
    await platform.serverService.create({ name: DEMO_SERVER, administratorLogin: DEMO_ADMIN, administratorLoginPassword: password });
    // Deny by default: the demo lets this machine in, and nothing else.
    await platform.networkService.putFirewallRule(DEMO_SERVER, 'this-host-v4', { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
    await platform.networkService.putFirewallRule(DEMO_SERVER, 'this-host-v6', { startIpAddress: '::1', endIpAddress: '::1' });
    // Threat protection on, as a security-minded operator would have it.
    await platform.enableThreatProtection(DEMO_SERVER);
  }
  const o = platform.options;
  const port = platform.gateway.port;
  const host = `${DEMO_SERVER}.${o.domain}`;
  process.stdout.write(
    [
      '',
      `Demo server '${DEMO_SERVER}' is ready. Connect with psql (TLS verified against the platform CA):`,
      '',
      `  PGPASSWORD='${password}' psql "host=${host} hostaddr=127.0.0.1 port=${port} user=${DEMO_ADMIN} dbname=postgres sslmode=verify-full sslrootcert=${platform.paths.caCert}"`,
      '',
      `or, without the host name: psql "host=127.0.0.1 port=${port} user=${DEMO_ADMIN}@${DEMO_SERVER} dbname=postgres sslmode=require"`,
      `(the password is also in ${file}, readable only by this user).`,
      '',
    ].join('\n'),
  );
}
