// A real platform started in-process for integration tests: its own data dir under /tmp,
// ephemeral ports on loopback, its own catalog and servers. Tests of one file share it.
import { chmodSync, mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform, defaultOptions, type PlatformOptions, type ClientConfig } from '../../src/app/platform.js';
import { callApi, ApiError, type ApiTarget } from '../../src/cli/api-client.js';
import { isSealHeader, sealedPlaintext } from '../../src/audit/store/seal.js';
import { storeKeyOf } from '../../src/audit/store/seal-keys.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cliPath = path.join(repoRoot, 'bin', 'pgwarden.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TestPlatform {
  readonly platform: Platform;
  readonly dataDir: string;
  readonly target: ApiTarget;
  api<T = unknown>(method: string, route: string, body?: unknown, token?: string): Promise<T>;
  /** Calls the API and returns the HTTP status with the body, for error cases. */
  apiStatus(method: string, route: string, body?: unknown, token?: string): Promise<{ status: number; body: unknown }>;
  cli(args: readonly string[], env?: Record<string, string>, timeoutMs?: number): Promise<CliResult>;
  stop(): Promise<void>;
}

/** A fresh directory under /tmp that the platform's service account can traverse. */
export function tempDir(prefix = 'pgw-test-'): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  chmodSync(dir, 0o711);
  return dir;
}

/** Firewall rules for 127.0.0.1 and ::1: the network is deny-by-default. */
export async function allowLoopback(t: TestPlatform, server: string): Promise<void> {
  await t.api('PUT', `/servers/${server}/firewallRules/loopback-v4`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
  await t.api('PUT', `/servers/${server}/firewallRules/loopback-v6`, { startIpAddress: '::1', endIpAddress: '::1' });
  // Rules reach the gateway through the change feed: wait until its snapshot has them.
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    if (t.platform.snapshots.snapshot.network.servers.get(server)?.firewall.match('::1')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('firewall rules did not reach the gateway snapshot');
}

export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      // A CLI the test stopped says so (it printed nothing of its own).
      if (err && (err as { killed?: boolean }).killed) stderr += `\n[test helper: the CLI was stopped after ${timeoutMs} ms]`;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startTestPlatform(overrides: Partial<PlatformOptions> = {}): Promise<TestPlatform> {
  const root = tempDir();
  const dataDir = path.join(root, 'data');
  const platform = new Platform({
    ...defaultOptions,
    dataDir,
    apiPort: 0,
    gatewayPort: 0,
    gatewayHosts: ['127.0.0.1', '::1'],
    logLevel: 'silent',
    // Scheduled backups only where a test asks for them (they would load every other test).
    backupIntervalMs: 0,
    ...overrides,
  });
  await platform.start();
  const cfg = JSON.parse(readFileSync(platform.paths.clientConfig, 'utf8')) as ClientConfig;
  const target: ApiTarget = { url: cfg.apiUrl, token: cfg.token, ca: readFileSync(cfg.caFile, 'utf8') };
  const withToken = (token?: string): ApiTarget => (token === undefined ? target : { ...target, token });
  return {
    platform,
    dataDir,
    target,
    api: (method, route, body, token) => callApi(withToken(token), method, route, body),
    async apiStatus(method, route, body, token) {
      try {
        return { status: 200, body: await callApi(withToken(token), method, route, body) };
      } catch (err) {
        if (err instanceof ApiError) return { status: err.status, body: { error: { code: err.code, message: err.message } } };
        throw err;
      }
    },
    cli: (args, env = {}, timeoutMs) => runCli(['--data-dir', dataDir, ...args], env, timeoutMs),
    async stop() {
      await platform.stop();
      await platform.accounts?.removeAll(); // its OS users (one per server, one for the catalog)
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Every event in a platform's audit store, oldest first (read straight from its segment files,
 * sealed ones with the key the platform holds). */
export function auditEvents<T = Record<string, unknown>>(t: TestPlatform): T[] {
  const dir = t.platform.audit.dir;
  const out: T[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => /^segment-\d+\.log$/.test(n))
    .sort()) {
    const file = path.join(dir, name);
    const bytes = readFileSync(file);
    const text = (isSealHeader(bytes) ? sealedPlaintext(bytes, storeKeyOf(file), file) : bytes).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push((JSON.parse(line) as { event: T }).event);
      } catch {
        /* a line being written right now */
      }
    }
  }
  return out;
}

/** Polls `check` until it gives a truthy value (returned), or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, ms = 20_000, everyMs = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Sets a server's statement-audit classes through the CLI and waits until its pgAudit runs with them. */
export async function setAuditClasses(t: TestPlatform, server: string, classes: readonly string[]): Promise<void> {
  const u = await t.cli(['server', 'audit', 'update', '--server', server, '--classes', classes.join(',')]);
  if (u.code !== 0) throw new Error(`server audit update failed: ${u.stderr}`);
  const id = t.platform.snapshots.snapshot.servers.get(server)!.id;
  const wanted = classes.join(',').toLowerCase();
  await until(
    'the audit settings at the server',
    async () => {
      const c = await t.platform.servers.connect(id);
      try {
        return (await c.query<{ v: string }>("select current_setting('pgaudit.log') v")).rows[0]!.v === wanted;
      } finally {
        await c.end();
      }
    },
    10_000,
    100,
  );
}

/** A second gateway process (`pgwarden gateway`) on the platform in `dataDir`, on a port of its
 * own on 127.0.0.1: the child at once (the caller stops it), and its port once it says it is up. */
export function startGatewayProcess(dataDir: string, extraArgs: readonly string[] = []): { child: ChildProcess; port: Promise<number> } {
  const child = spawn(
    process.execPath,
    [cliPath, 'gateway', '--data-dir', dataDir, ...extraArgs, '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--api-port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /gateway is up on port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`second gateway exited ${code}`)));
  });
  return { child, port };
}
