// The platform's default options, in a module of their own: `pgwarden up --help` shows them
// without loading the platform (platform.ts re-exports them as `defaultOptions`).
export interface PlatformDefaults {
  readonly dataDir: string;
  readonly domain: string;
  readonly gatewayPort: number;
  readonly gatewayHosts: readonly string[];
  readonly apiPort: number;
  readonly apiHost: string;
}

export const platformDefaults: PlatformDefaults = {
  dataDir: '.pgwarden',
  domain: 'pgwarden.localhost',
  gatewayPort: 5432,
  gatewayHosts: ['0.0.0.0', '::'],
  apiPort: 8443,
  apiHost: '127.0.0.1',
};
