// The control API of a platform process (HTTPS, certificate from the platform CA), and the
// client config `up` writes for the CLI. Which routes it serves is the composition's choice.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../events/bus.js';
import { issueServerCertificate, type PlatformCa } from '../host/ca.js';
import type { PlatformPaths } from '../host/paths.js';
import { writeSecretFile } from '../host/secrets.js';
import type { TokensRepo } from '../catalog/tokens-repo.js';
import { buildApi } from '../control/app.js';
import type { ClientConfig, PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface ApiPart extends Part {
  readonly api: FastifyInstance;
}

/** The API's URL for clients on this host: the bound address (loopback for a wildcard) and port. */
export function apiUrl(options: PlatformOptions, api: FastifyInstance | undefined): string {
  const bound = options.apiHost;
  const host = bound === '0.0.0.0' ? '127.0.0.1' : bound === '::' ? '::1' : bound;
  const address = api?.server.address();
  const port = address && typeof address === 'object' ? address.port : options.apiPort;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Builds the API, lets `routes` register what this process serves, and listens. */
export async function startApi(
  options: PlatformOptions,
  d: { paths: PlatformPaths; ca: PlatformCa; tokens: TokensRepo; bus: EventBus },
  routes: (api: FastifyInstance) => void,
): Promise<ApiPart> {
  const tls = await apiCertificate(options, d.paths, d.ca);
  const api = await buildApi({ tls, tokens: d.tokens, bus: d.bus, logLevel: options.logLevel });
  try {
    routes(api);
    await api.listen({ port: options.apiPort, host: options.apiHost });
  } catch (err) {
    await api.close().catch(() => undefined);
    throw err;
  }
  return { api, stop: () => api.close() };
}

async function apiCertificate(options: PlatformOptions, p: PlatformPaths, ca: PlatformCa): Promise<{ cert: string; key: string }> {
  if (existsSync(p.apiCert) && existsSync(p.apiKey)) {
    return { cert: readFileSync(p.apiCert, 'utf8'), key: readFileSync(p.apiKey, 'utf8') };
  }
  const leaf = await issueServerCertificate(ca, {
    commonName: 'pgwarden API',
    dnsNames: ['localhost', `api.${options.domain}`],
    ipAddresses: ['127.0.0.1', '::1'],
  });
  writeFileSync(p.apiCert, leaf.certPem, { mode: 0o644 });
  writeSecretFile(p.apiKey, leaf.keyPem);
  return { cert: leaf.certPem, key: leaf.keyPem };
}

/** The Owner token the CLI uses: kept while valid, created on first start. */
export async function ownerToken(p: PlatformPaths, tokens: TokensRepo): Promise<string> {
  if (existsSync(p.clientConfig)) {
    const cfg = JSON.parse(readFileSync(p.clientConfig, 'utf8')) as ClientConfig;
    if (await tokens.authenticate(cfg.token)) return cfg.token;
  }
  return (await tokens.create('Owner', 'owner (created by up)', null)).token;
}

/** The CLI's client config (0600): where the API is, the Owner token, the CA to trust. */
export function writeClientConfig(p: PlatformPaths, apiUrl: string, token: string): void {
  const cfg: ClientConfig = { apiUrl, token, caFile: p.caCert };
  writeSecretFile(p.clientConfig, `${JSON.stringify(cfg, null, 2)}\n`);
}
