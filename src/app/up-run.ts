// What `pgwarden up` and `pgwarden gateway` run: the platform, or a gateway-only process; loaded
// only by these two commands (main.ts hands them to the CLI, which declares their flags).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Platform } from './platform.js';
import { GatewayProcess } from './gateway-process.js';
import { defaultOptions, type PlatformOptions } from './options.js';
import { ensureDemoServer } from './demo.js';
import { chooseRelay, relayThreads } from '../gateway/native/host.js';

/** `--relay native` (or PGWARDEN_RELAY=native) without a loadable addon fails before anything
 * starts; the fallback's warning is logged by the gateway part (gateway-part.ts). */
function relayFirst(o: PlatformOptions): PlatformOptions {
  chooseRelay(o.relay, relayThreads(o.gatewayWorkers ?? 1, o.relayThreads), { warn: () => undefined });
  return o;
}

function volumeBackendOption(v: string): 'auto' | 'fscrypt' | 'gocryptfs' {
  if (v === 'auto' || v === 'fscrypt' || v === 'gocryptfs') return v;
  throw new Error(`--volume-backend must be auto, fscrypt or gocryptfs, got '${v}'.`);
}

function optionsFrom(o: Record<string, unknown>, cmd: Command): PlatformOptions {
  const globals = cmd.optsWithGlobals<{ dataDir?: string }>();
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together.');
  if (o.privateLinkPort !== undefined && !o.privateLinkLb)
    throw new Error('--private-link-port needs --private-link-lb (the load balancers allowed to send PROXY headers).');
  return {
    dataDir: (o.dataDir as string | undefined) ?? globals.dataDir ?? process.env.PGWARDEN_DATA_DIR ?? defaultOptions.dataDir,
    domain: o.domain as string,
    gatewayPort: o.gatewayPort as number,
    gatewayHosts: o.gatewayHost as string[],
    apiPort: o.apiPort as number,
    apiHost: o.apiHost as string,
    catalogUrl: (o.catalogUrl as string | undefined) ?? process.env.PGWARDEN_CATALOG_URL,
    logLevel: o.logLevel as string,
    auditDurability: o.auditDurability as 'strict' | 'batched',
    auditFailurePolicy: o.auditFailurePolicy as 'failClosed' | 'failOpen',
    tlsCertFile: o.tlsCert as string | undefined,
    tlsKeyFile: o.tlsKey as string | undefined,
    ...(o.backupDir ? { backupDir: o.backupDir as string } : {}),
    volumeBackend: volumeBackendOption(o.volumeBackend as string),
    volumeSizeBytes: (o.volumeSizeGb as number) * 1024 ** 3,
    keyCheckIntervalMs: (o.keyCheckInterval as number) * 1000,
    fips: o.fips === true,
    pkcs11Modules: o.pkcs11Module as Record<string, string>,
    backupIntervalMs: (o.backupIntervalHours as number) * 3600_000,
    backupRetentionDays: o.backupRetentionDays as number,
    ...(o.gatewayWorkers !== undefined ? { gatewayWorkers: o.gatewayWorkers as number } : {}),
    ...(o.relay !== undefined ? { relay: o.relay as 'js' | 'native' } : {}),
    ...(o.relayThreads !== undefined ? { relayThreads: o.relayThreads as number } : {}),
    ...(o.quietStatements !== undefined ? { quietStatements: o.quietStatements as 'on' | 'off' } : {}),
    gatewayLimits: {
      maxPreauthConnections: o.maxPreauthConnections as number,
      maxPreauthPerAddress: o.maxPreauthPerAddress as number,
      firstByteTimeoutMs: o.firstByteTimeoutMs as number,
      descriptorReserve: o.descriptorReserve as number,
    },
    threat: {
      ...(o.smtpHost
        ? {
            smtp: {
              host: o.smtpHost as string,
              port: o.smtpPort as number,
              secure: o.smtpSecurity === 'tls',
              requireTls: o.smtpSecurity === 'starttls',
              ...(o.smtpUser ? { user: o.smtpUser as string, password: process.env.PGWARDEN_SMTP_PASSWORD ?? '' } : {}),
              from: o.smtpFrom as string,
              ...(o.smtpCa ? { ca: readFileSync(o.smtpCa as string, 'utf8') } : {}),
            },
          }
        : {}),
      ipLists: (o.threatIpList as string[] | undefined) ?? [],
      geoIp: o.geoip !== false,
    },
    privateLink:
      o.privateLinkPort === undefined
        ? undefined
        : { port: o.privateLinkPort as number, hosts: o.privateLinkHost as string[], loadBalancers: o.privateLinkLb as string[] },
  };
}

/** What runs in the foreground: the platform or a gateway-only process. */
interface ForegroundProcess {
  start(): Promise<void>;
  stop(): Promise<void>;
  reloadCertificate(): Promise<void>;
}

/** Starts the process and keeps it in the foreground; stops it cleanly on SIGINT/SIGTERM. */
async function runInForeground(platform: ForegroundProcess, afterStart: () => Promise<void>): Promise<void> {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`pgwarden: ${signal}, stopping...\n`);
    // Stopping awaits worker threads and timers that do not keep the process alive by
    // themselves: without this, Node may end the process half-way (exit code 0, the audit
    // volume still mounted and its key in the kernel).
    const keepAlive = setInterval(() => undefined, 60_000);
    platform
      .stop()
      .finally(() => clearInterval(keepAlive))
      .then(
        () => process.exit(0),
        (err: Error) => {
          process.stderr.write(`pgwarden: stop failed: ${err.message}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    platform.reloadCertificate().then(
      () => process.stderr.write('pgwarden: gateway certificate reloaded\n'),
      (err: Error) => process.stderr.write(`pgwarden: certificate reload failed: ${err.message}\n`),
    );
  });
  await platform.start();
  await afterStart();
  process.stdout.write('Press Ctrl-C to stop.\n');
}

export async function runUp(o: Record<string, unknown>, cmd: Command): Promise<void> {
  const platform = new Platform(relayFirst(optionsFrom(o, cmd)));
  await runInForeground(platform, async () => {
    process.stdout.write(
      `pgwarden is up.\n  data dir: ${platform.paths.root}\n  API:      ${platform.apiUrl} (token in ${platform.paths.clientConfig})\n` +
        `  gateway:  port ${platform.gateway.port} on ${platform.options.gatewayHosts.join(', ')}\n`,
    );
    if (o.demo) await ensureDemoServer(platform);
  });
}

export async function runGateway(o: Record<string, unknown>, cmd: Command): Promise<void> {
  const gateway = new GatewayProcess(relayFirst(optionsFrom(o, cmd)));
  await runInForeground(gateway, async () => {
    process.stdout.write(`pgwarden gateway is up on port ${gateway.gateway.port}; health and metrics at ${gateway.apiUrl}\n`);
  });
}
