// The gateway's listeners for virtual networks, and what it can say about each: served (by a
// socket of its own, or by a public listener that receives the address anyway, told apart by
// the connection's local address), or not, and why. Nothing here reports a network as in
// force that no socket of this gateway receives.
import net from 'node:net';
import type { Logger } from 'pino';
import type { ListenerSpec } from './context.js';
import type { NetworkView } from './network-stage.js';
import { canonicalAddress, publicCoverage, type BoundAddress } from './listener-select.js';

export type VnetListenerStatus =
  | { readonly state: 'Ready'; readonly address: string; readonly via: 'own-socket' | 'public-listener' }
  | { readonly state: 'Failed'; readonly address: string; readonly reason: string }
  | { readonly state: 'Pending'; readonly address: string };

/** What the control plane may ask the gateway about virtual-network listeners. */
export interface VnetListenerView {
  /** The listener of `vnet` as this gateway has it, or null when its view has no listen
   * address for it (none set, or the change has not reached the gateway yet). */
  status(vnet: string): VnetListenerStatus | null;
  /** Why this gateway could not serve `address` for `vnet`, or null when it can. */
  check(vnet: string, address: string): Promise<string | null>;
  /** The status once it is for `address` and no longer Pending; what it is after `ms` otherwise. */
  settled(vnet: string, address: string, ms: number): Promise<VnetListenerStatus | null>;
}

interface Hooks {
  /** Opens a listener and hands its connections to the pipeline. */
  open(spec: ListenerSpec): Promise<net.Server>;
  /** Where the public listeners are bound, and the port virtual networks share with them. */
  publicBound(): readonly BoundAddress[];
  publicPort(): number;
  /** A network's listener came into force (Ready) or stopped being served (Failed). */
  changed(vnet: string, status: Extract<VnetListenerStatus, { state: 'Ready' | 'Failed' }>): void;
  readonly log: Logger;
}

/** Tries to bind `address`:`port` and lets it go: null when it could, else why not. */
export async function probeBind(address: string, port: number): Promise<string | null> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, ipv6Only: address.includes(':'), exclusive: true }, () => resolve());
    });
    return null;
  } catch (err) {
    return bindProblem(address, port, err);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

export function bindProblem(address: string, port: number, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRNOTAVAIL') return `${address} is not an address of this host`;
  if (code === 'EADDRINUSE') return `another socket already listens on ${address} port ${port}`;
  if (code === 'EACCES') return `not permitted to listen on ${address} port ${port}`;
  return `cannot listen on ${address} port ${port}: ${(err as Error).message}`;
}

export class VnetListeners implements VnetListenerView {
  /** Listen address → network, for telling a public listener's connections apart. */
  private byAddress = new Map<string, string>();
  private readonly states = new Map<string, VnetListenerStatus>();
  /** The last Ready or Failed told to `changed`, so only transitions are told. */
  private readonly reported = new Map<string, Extract<VnetListenerStatus, { state: 'Ready' | 'Failed' }>>();
  private readonly own = new Map<string, { address: string; server: net.Server }>();
  private chain: Promise<void> = Promise.resolve();
  private last: NetworkView | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly hooks: Hooks,
    /** Addresses can come and go on the host: the listeners are checked again this often. */
    private readonly recheckMs = 15_000,
  ) {}

  get addresses(): ReadonlyMap<string, string> {
    return this.byAddress;
  }

  status(vnet: string): VnetListenerStatus | null {
    return this.states.get(vnet) ?? null;
  }

  /** The port a network's traffic is received on, when it is served. */
  portOf(vnet: string): number | null {
    const s = this.states.get(vnet);
    if (s?.state !== 'Ready') return null;
    const own = this.own.get(vnet);
    const a = own?.server.address();
    return a && typeof a === 'object' ? a.port : this.hooks.publicPort();
  }

  async check(vnet: string, address: string): Promise<string | null> {
    const wanted = canonicalAddress(address);
    const s = this.states.get(vnet);
    if (s?.state === 'Ready' && s.address === wanted) return null;
    // A socket of ours already holds it (another network is giving it up): the next sync moves it.
    for (const o of this.own.values()) if (o.address === wanted) return null;
    const port = this.hooks.publicPort();
    const coverage = publicCoverage(wanted, port, this.hooks.publicBound());
    if (coverage === 'exact') return null;
    // Under a wildcard only whether the address is this host's matters: bind it on any port.
    return probeBind(wanted, coverage === 'wildcard' ? 0 : port);
  }

  async settled(vnet: string, address: string, ms: number): Promise<VnetListenerStatus | null> {
    const wanted = canonicalAddress(address);
    const end = Date.now() + ms;
    for (;;) {
      const s = this.states.get(vnet) ?? null;
      if ((s && s.address === wanted && s.state !== 'Pending') || Date.now() >= end) return s;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Brings the listeners in line with the view; runs one at a time, in order. */
  sync(view: NetworkView): Promise<void> {
    this.last = view;
    this.chain = this.chain.then(() => this.apply(view)).catch((err: unknown) => this.hooks.log.error({ err }, 'virtual network listeners'));
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => {
        if (this.last) void this.sync(this.last);
      }, this.recheckMs);
      this.timer.unref();
    }
    return this.chain;
  }

  /** Only which address is which network's, for a process that opens no socket of its own. */
  followAddresses(view: NetworkView): void {
    this.byAddress = new Map([...wantedAddresses(view)].map(([vnet, address]) => [address, vnet]));
  }

  private async apply(view: NetworkView): Promise<void> {
    if (this.closed) return;
    const wanted = wantedAddresses(view);
    this.byAddress = new Map([...wanted].map(([vnet, address]) => [address, vnet]));
    for (const vnet of [...this.states.keys()]) {
      if (wanted.has(vnet)) continue;
      this.states.delete(vnet);
      this.reported.delete(vnet);
    }
    for (const [vnet, address] of wanted) {
      if (this.states.get(vnet)?.address !== address) this.states.set(vnet, { state: 'Pending', address });
    }
    const port = this.hooks.publicPort();
    const bound = this.hooks.publicBound();
    // Sockets no longer wanted, or no longer needed, go first: their address may be wanted elsewhere.
    for (const [vnet, o] of [...this.own]) {
      if (wanted.get(vnet) !== o.address || publicCoverage(o.address, port, bound) !== null) {
        this.own.delete(vnet);
        o.server.close();
      }
    }
    for (const [vnet, address] of wanted) {
      const state = await this.serve(vnet, address, port, bound);
      if (this.closed) return;
      const before = this.reported.get(vnet);
      this.states.set(vnet, state);
      if (state.state === 'Failed' && (before?.state !== 'Failed' || before.reason !== state.reason || before.address !== address)) {
        this.hooks.log.error({ vnet, address, reason: state.reason }, 'cannot serve virtual network');
        this.reported.set(vnet, state);
        this.hooks.changed(vnet, state);
      } else if (state.state === 'Ready' && (before?.state !== 'Ready' || before.address !== address)) {
        this.reported.set(vnet, state);
        this.hooks.changed(vnet, state);
      }
    }
  }

  private async serve(vnet: string, address: string, port: number, bound: readonly BoundAddress[]): Promise<VnetListenerStatus> {
    const coverage = publicCoverage(address, port, bound);
    if (coverage === 'exact') return { state: 'Ready', address, via: 'public-listener' };
    if (coverage === 'wildcard') {
      const problem = await probeBind(address, 0);
      return problem ? { state: 'Failed', address, reason: problem } : { state: 'Ready', address, via: 'public-listener' };
    }
    if (this.own.has(vnet)) return { state: 'Ready', address, via: 'own-socket' };
    try {
      const server = await this.hooks.open({ kind: 'private', vnet, host: address, port });
      if (this.closed) {
        server.close();
        return { state: 'Failed', address, reason: 'the gateway is stopping' };
      }
      this.own.set(vnet, { address, server });
      return { state: 'Ready', address, via: 'own-socket' };
    } catch (err) {
      return { state: 'Failed', address, reason: bindProblem(address, port, err) };
    }
  }

  /** Closes the networks' own sockets; resolves once they are closed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const closing = [...this.own.values()].map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    this.own.clear();
    await Promise.all(closing);
  }
}

/** Each network's listen address, canonical, by network name. */
function wantedAddresses(view: NetworkView): Map<string, string> {
  const wanted = new Map<string, string>();
  for (const v of view.vnets.values()) if (v.listenAddress) wanted.set(v.name, canonicalAddress(v.listenAddress));
  return wanted;
}
