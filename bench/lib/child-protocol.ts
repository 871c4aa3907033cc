// Messages between the gateway benchmark and its platform child (platform-child.ts).
export type ChildRequest = { seq: number } & (
  | { cmd: 'createServer'; name: string; login: string; password: string }
  /** A firewall rule for 127.0.0.1 (the network is deny-by-default), once the gateway has it. */
  | { cmd: 'allowLoopback'; name: string }
  /** Stops / starts the server's postmaster only: the catalog still says Ready. */
  | { cmd: 'stopServerProcess'; id: number }
  | { cmd: 'startServerProcess'; id: number }
  | { cmd: 'roleVerifier'; id: number; role: string }
  /** A query as the maintenance superuser over the Unix socket. */
  | { cmd: 'query'; id: number; sql: string }
  /** process.memoryUsage() of the platform process, after a full GC when --expose-gc is on. */
  | { cmd: 'memory' }
);
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type ChildCommand = DistributiveOmit<ChildRequest, 'seq'>;

export type ChildReply = { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };
export type ChildStatus = { ready: { gatewayPort: number } } | { failed: string };
