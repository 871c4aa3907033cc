// pgwarden up: runs the platform in the foreground until SIGINT/SIGTERM.
// pgwarden gateway: a second gateway on this host (or another sharing --catalog-url).
// Only the flags are declared here, from light modules; what runs is given by the caller
// (app/main.ts, which loads the platform only when one of the two commands runs), so no other
// command pays for it and the CLI never imports the app.
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { platformDefaults as defaultOptions } from '../host/defaults.js';
import { defaultLimits } from '../gateway/context.js';

/** `--pkcs11-module`'s parser, loaded by loadPlatformFlags before `up` or `gateway` parses its flags. */
let moduleFlagParser: ((value: string, into: Record<string, string>) => Record<string, string>) | null = null;

/** Runs `up` or `gateway` with its parsed flags. */
export type PlatformRunner = (options: Record<string, unknown>, cmd: Command) => Promise<void>;

export interface PlatformRunners {
  readonly up: PlatformRunner;
  readonly gateway: PlatformRunner;
}

/** The commands that run the platform. */
export const PLATFORM_COMMANDS: readonly string[] = ['up', 'gateway'];

/** Loads what the flags of `up` and `gateway` are parsed with (program.ts runs it before either parses). */
export async function loadPlatformFlags(): Promise<void> {
  moduleFlagParser ??= (await import('../crypto/pkcs11-config.js')).parseModuleFlag;
}

function parseModuleFlag(value: string, into: Record<string, string>): Record<string, string> {
  if (!moduleFlagParser) throw new Error('internal error: --pkcs11-module parsed before its parser was loaded');
  return moduleFlagParser(value, into);
}

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
    .addOption(
      new Option('--audit-durability <mode>', 'strict: a login is on disk before the session goes on').choices(['strict', 'batched']).default('batched'),
    )
    .addOption(
      new Option(
        '--relay <relay>',
        'session relay: native (the Rust addon: TLS and relaying on its own threads) or js; default native when the addon is built, else js',
      ).choices(['js', 'native']),
    )
    .option('--relay-threads <n>', 'native relay threads per gateway process (default: the cores shared out among the gateway processes)', (v) =>
      whole(v, '--relay-threads'),
    )
    .addOption(
      new Option(
        '--quiet-statements <mode>',
        'native relay: statements no audit class records and the SQL watch judged for good are relayed without being inspected again (on), or every statement is inspected (off)',
      )
        .choices(['on', 'off'])
        .default('on'),
    )
    .addOption(new Option('--audit-failure-policy <policy>', 'when the audit log cannot be written').choices(['failClosed', 'failOpen']).default('failClosed'))
    .option('--smtp-host <host>', 'SMTP server that threat alerts are e-mailed through')
    .option('--smtp-port <port>', 'SMTP port', port, 587)
    .addOption(
      new Option('--smtp-security <mode>', 'starttls (required), tls (implicit, port 465) or none').choices(['starttls', 'tls', 'none']).default('starttls'),
    )
    .option('--smtp-user <user>', 'SMTP login (password from PGWARDEN_SMTP_PASSWORD)')
    .option('--smtp-from <address>', 'sender address of alert e-mails', 'pgwarden@localhost')
    .option('--smtp-ca <file>', "CA certificate (PEM) of the SMTP server's certificate")
    .option('--threat-ip-list <file...>', 'suspicious-address lists (one address or CIDR per line, e.g. Tor exits); reloaded when they change')
    .option('--no-geoip', 'turn off the country and network (ASN) lookups of the location detectors')
    .option('--backup-dir <dir>', 'the backup repository (default <data dir>/backups)')
    .option('--volume-backend <name>', 'storage encryption for new volumes: auto, fscrypt or gocryptfs (it cannot be turned off)', 'auto')
    .option('--volume-size-gb <n>', 'size of each new server volume in GiB (sparse)', (v) => positive(v, '--volume-size-gb'), 16)
    .option('--key-check-interval <seconds>', 'how often customer-managed keys are checked', (v) => positive(v, '--key-check-interval'), 30)
    .option(
      '--backup-interval-hours <n>',
      'full backup of every running server this often (0: no schedule)',
      (v) => nonNegative(v, '--backup-interval-hours'),
      24,
    )
    .option('--backup-retention-days <n>', 'delete backups and WAL older than this', (v) => positive(v, '--backup-retention-days'), 7)
    .option(
      '--pkcs11-module <name=path>',
      'a PKCS#11 module customer keys may use, by NAME (repeatable; the file and its directories must be root-owned and not group/other-writable)',
      (v: string, prev: Record<string, string>) => parseModuleFlag(v, prev),
      {},
    )
    .option(
      '--max-preauth-connections <n>',
      'connections not yet authenticated, in all',
      (v) => whole(v, '--max-preauth-connections'),
      defaultLimits.maxPreauthConnections,
    )
    .option(
      '--max-preauth-per-address <n>',
      'connections not yet authenticated from one IPv4 address or IPv6 /64',
      (v) => whole(v, '--max-preauth-per-address'),
      defaultLimits.maxPreauthPerAddress,
    )
    .option(
      '--first-byte-timeout-ms <ms>',
      'close a connection that sends nothing for this long',
      (v) => whole(v, '--first-byte-timeout-ms'),
      defaultLimits.firstByteTimeoutMs,
    )
    .option(
      '--descriptor-reserve <n>',
      'refuse new unauthenticated connections while fewer file descriptors than this are left',
      (v) => whole(v, '--descriptor-reserve'),
      defaultLimits.descriptorReserve,
    )
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

export function upCommand(run: PlatformRunner): Command {
  return gatewayOptions(new Command('up').description('run the platform in the foreground (catalog, servers, API, gateway)'))
    .option('--demo', 'create a demo server and print how to connect to it')
    .option(
      '--gateway-workers <n>',
      'gateway processes sharing the listeners (this one and N-1 more; per-server session caps and pool sizes are split between them)',
      (v) => whole(v, '--gateway-workers'),
      availableParallelism(),
    )
    .action((o: Record<string, unknown>, cmd: Command) => run(o, cmd));
}

export function gatewayCommand(run: PlatformRunner): Command {
  return gatewayOptions(
    new Command('gateway').description("run one more gateway on a platform's catalog (same host: same --data-dir; or --catalog-url)"),
  ).action((o: Record<string, unknown>, cmd: Command) => run(o, cmd));
}
