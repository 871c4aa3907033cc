// pgwarden up: runs the platform in the foreground until SIGINT/SIGTERM.
// pgwarden gateway: a second gateway on this host (or another sharing --catalog-url).
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { Platform, defaultOptions, type PlatformOptions } from '../platform/platform.js';
import { ensureDemoServer } from './demo.js';
import { defaultLimits } from '../gateway/context.js';
import { parseModuleFlag } from '../platform/pkcs11-config.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port: ${value}`);
  return n;
}

/** Options `up` and `gateway` share. */
function gatewayOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', `where the platform keeps its state (default ${defaultOptions.dataDir})`)
    .option('--domain <domain>', 'DNS domain of server host names', defaultOptions.domain)
    .option('--gateway-port <port>', 'gateway port', port, defaultOptions.gatewayPort)
    .option('--gateway-host <addr...>', 'gateway listen addresses', [...defaultOptions.gatewayHosts])
    .option('--api-port <port>', 'REST API port (HTTPS)', port, defaultOptions.apiPort)
    .option('--api-host <addr>', 'REST API listen address', defaultOptions.apiHost)
    .option('--catalog-url <url>', 'use this PostgreSQL as the catalog instead of the embedded one')
    .option('--tls-cert <file>', "the gateway's certificate (PEM) instead of one issued by the platform CA")
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--private-link-port <port>', 'listener for load balancers speaking PROXY protocol (private endpoints)', port)
    .option('--private-link-host <addr...>', 'addresses of the private-link listener', ['0.0.0.0'])
    .option('--private-link-lb <cidr...>', 'load-balancer networks allowed to send PROXY headers')
    .addOption(new Option('--audit-durability <mode>', 'strict: a login is on disk before the session goes on').choices(['strict', 'batched']).default('batched'))
    .addOption(new Option('--audit-failure-policy <policy>', 'when the audit log cannot be written').choices(['failClosed', 'failOpen']).default('failClosed'))
    .option('--smtp-host <host>', 'SMTP server that threat alerts are e-mailed through')
    .option('--smtp-port <port>', 'SMTP port', port, 587)
    .addOption(new Option('--smtp-security <mode>', 'starttls (required), tls (implicit, port 465) or none').choices(['starttls', 'tls', 'none']).default('starttls'))
    .option('--smtp-user <user>', 'SMTP login (password from PGWARDEN_SMTP_PASSWORD)')
    .option('--smtp-from <address>', 'sender address of alert e-mails', 'pgwarden@localhost')
    .option('--smtp-ca <file>', "CA certificate (PEM) of the SMTP server's certificate")
    .option('--threat-ip-list <file...>', 'suspicious-address lists (one address or CIDR per line, e.g. Tor exits); reloaded when they change')
    .option('--no-geoip', 'turn off the country and network (ASN) lookups of the location detectors')
    .option('--backup-dir <dir>', 'the backup repository (default <data dir>/backups)')
    .option('--volume-backend <name>', 'storage encryption for new volumes: auto, fscrypt or gocryptfs (it cannot be turned off)', 'auto')
    .option('--volume-size-gb <n>', 'size of each new server volume in GiB (sparse)', (v) => positive(v, '--volume-size-gb'), 16)
    .option('--key-check-interval <seconds>', 'how often customer-managed keys are checked', (v) => positive(v, '--key-check-interval'), 30)
    .option('--backup-interval-hours <n>', 'full backup of every running server this often (0: no schedule)', (v) => nonNegative(v, '--backup-interval-hours'), 24)
    .option('--backup-retention-days <n>', 'delete backups and WAL older than this', (v) => positive(v, '--backup-retention-days'), 7)
    .option('--pkcs11-module <name=path>', 'a PKCS#11 module customer keys may use, by NAME (repeatable; the file and its directories must be root-owned and not group/other-writable)', (v: string, prev: Record<string, string>) => parseModuleFlag(v, prev), {})
    .option('--max-preauth-connections <n>', 'connections not yet authenticated, in all', (v) => whole(v, '--max-preauth-connections'), defaultLimits.maxPreauthConnections)
    .option('--max-preauth-per-address <n>', 'connections not yet authenticated from one IPv4 address or IPv6 /64', (v) => whole(v, '--max-preauth-per-address'), defaultLimits.maxPreauthPerAddress)
    .option('--first-byte-timeout-ms <ms>', 'close a connection that sends nothing for this long', (v) => whole(v, '--first-byte-timeout-ms'), defaultLimits.firstByteTimeoutMs)
    .option('--descriptor-reserve <n>', 'refuse new unauthenticated connections while fewer file descriptors than this are left', (v) => whole(v, '--descriptor-reserve'), defaultLimits.descriptorReserve)
    .option('--fips', "run in FIPS mode (OpenSSL's FIPS provider must be configured; see src/crypto/FIPS.md)")
    .option('--log-level <level>', 'log level', 'warn');
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, got '${v}'.`);
  return n;
}

/** A whole number ≥ 1 (caps, timeouts, counts). */
function whole(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1, got '${v}'.`);
  return n;
}

function nonNegative(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0, got '${v}'.`);
  return n;
}

function volumeBackendOption(v: string): 'auto' | 'fscrypt' | 'gocryptfs' {
  if (v === 'auto' || v === 'fscrypt' || v === 'gocryptfs') return v;
  throw new Error(`--volume-backend must be auto, fscrypt or gocryptfs, got '${v}'.`);
}

function optionsFrom(o: Record<string, unknown>, cmd: Command, mode: PlatformOptions['mode']): PlatformOptions {
  const globals = cmd.optsWithGlobals<{ dataDir?: string }>();
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together.');
  if (o.privateLinkPort !== undefined && !o.privateLinkLb) throw new Error('--private-link-port needs --private-link-lb (the load balancers allowed to send PROXY headers).');
  return {
    mode,
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

/** Starts the platform and keeps it in the foreground; stops it cleanly on SIGINT/SIGTERM. */
async function runInForeground(platform: Platform, afterStart: () => Promise<void>): Promise<void> {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`pgwarden: ${signal}, stopping...\n`);
    platform.stop().then(
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

export function upCommand(): Command {
  return gatewayOptions(new Command('up').description('run the platform in the foreground (catalog, servers, API, gateway)'))
    .option('--demo', 'create a demo server and print how to connect to it')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const platform = new Platform(optionsFrom(o, cmd, 'platform'));
      await runInForeground(platform, async () => {
        process.stdout.write(
          `pgwarden is up.\n  data dir: ${platform.paths.root}\n  API:      ${platform.apiUrl} (token in ${platform.paths.clientConfig})\n` +
            `  gateway:  port ${platform.gateway.port} on ${platform.options.gatewayHosts.join(', ')}\n`,
        );
        if (o.demo) await ensureDemoServer(platform);
      });
    });
}

export function gatewayCommand(): Command {
  return gatewayOptions(
    new Command('gateway').description("run one more gateway on a platform's catalog (same host: same --data-dir; or --catalog-url)"),
  ).action(async (o: Record<string, unknown>, cmd: Command) => {
    const platform = new Platform(optionsFrom(o, cmd, 'gateway'));
    await runInForeground(platform, async () => {
      process.stdout.write(`pgwarden gateway is up on port ${platform.gateway.port}; health and metrics at ${platform.apiUrl}\n`);
    });
  });
}
