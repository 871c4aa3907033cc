// pgwarden up: runs the platform in the foreground until SIGINT/SIGTERM.
import { Command } from 'commander';
import { Platform, defaultOptions, type PlatformOptions } from '../platform/platform.js';
import { ensureDemoServer } from './demo.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port: ${value}`);
  return n;
}

export interface UpHooks {
  /** Called once the platform is up (the demo uses it). */
  afterStart?: (platform: Platform) => Promise<void>;
}

export function upCommand(hooks: UpHooks = {}): Command {
  return new Command('up')
    .description('run the platform in the foreground (catalog, servers, API, gateway)')
    .option('--data-dir <dir>', `where the platform keeps its state (default ${defaultOptions.dataDir})`)
    .option('--domain <domain>', 'DNS domain of server host names', defaultOptions.domain)
    .option('--gateway-port <port>', 'gateway port', port, defaultOptions.gatewayPort)
    .option('--gateway-host <addr...>', 'gateway listen addresses', [...defaultOptions.gatewayHosts])
    .option('--api-port <port>', 'REST API port (HTTPS)', port, defaultOptions.apiPort)
    .option('--api-host <addr>', 'REST API listen address', defaultOptions.apiHost)
    .option('--catalog-url <url>', 'use this PostgreSQL as the catalog instead of the embedded one')
    .option('--log-level <level>', 'log level', 'warn')
    .option('--tls-cert <file>', "the gateway's certificate (PEM) instead of one issued by the platform CA")
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--demo', 'create a demo server and print how to connect to it')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const globals = cmd.optsWithGlobals<{ dataDir?: string }>();
      const options: PlatformOptions = {
        dataDir: (o.dataDir as string | undefined) ?? globals.dataDir ?? process.env.PGWARDEN_DATA_DIR ?? defaultOptions.dataDir,
        domain: o.domain as string,
        gatewayPort: o.gatewayPort as number,
        gatewayHosts: o.gatewayHost as string[],
        apiPort: o.apiPort as number,
        apiHost: o.apiHost as string,
        catalogUrl: (o.catalogUrl as string | undefined) ?? process.env.PGWARDEN_CATALOG_URL,
        logLevel: o.logLevel as string,
        tlsCertFile: o.tlsCert as string | undefined,
        tlsKeyFile: o.tlsKey as string | undefined,
      };
      if (Boolean(options.tlsCertFile) !== Boolean(options.tlsKeyFile)) throw new Error('--tls-cert and --tls-key go together.');
      const platform = new Platform(options);
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
      await platform.start();
      process.stdout.write(
        `pgwarden is up.\n  data dir: ${platform.paths.root}\n  API:      ${platform.apiUrl} (token in ${platform.paths.clientConfig})\n`,
      );
      process.on('SIGHUP', () => {
        platform.reloadCertificate().then(
          () => process.stderr.write('pgwarden: gateway certificate reloaded\n'),
          (err: Error) => process.stderr.write(`pgwarden: certificate reload failed: ${err.message}\n`),
        );
      });
      process.stdout.write(`  gateway:  port ${platform.gateway.port} on ${options.gatewayHosts.join(', ')}\n`);
      if (o.demo) await ensureDemoServer(platform);
      if (hooks.afterStart) await hooks.afterStart(platform);
      process.stdout.write('Press Ctrl-C to stop.\n');
    });
}
