// The attached servers this process reaches: one PrimaryRelay each, following the catalog
// (sync), and what maintenance connections need of them (their socket dir and login).
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { PrimaryRelay, type AttachedSpec } from './primary-relay.js';
import type { Endpoint } from './endpoints.js';
import type { NodeProbe } from './probe.js';

export type { AttachedSpec } from './primary-relay.js';

export interface AttachedServersEvents {
  /** The primary of server `id` moved from one endpoint to another. */
  failover: [id: number, from: Endpoint, to: Endpoint];
  /** A connection to server `id` found no primary. */
  unreachable: [id: number, error: Error];
}

export class AttachedServers extends EventEmitter<AttachedServersEvents> {
  private readonly relays = new Map<number, { relay: PrimaryRelay; spec: AttachedSpec }>();

  constructor(
    /** Where the relays' socket dirs go (the platform's run dir). */
    private readonly runDir: string,
    private readonly probe?: NodeProbe,
  ) {
    super();
  }

  has(id: number): boolean {
    return this.relays.has(id);
  }

  /** The server's local socket dir (its relay), or null when it is not attached. */
  socketDir(id: number): string | null {
    return this.relays.get(id)?.relay.socketDir ?? null;
  }

  /** The maintenance login of an attached server, or null. */
  credentials(id: number): { user: string; password: string } | null {
    const r = this.relays.get(id);
    return r ? { user: r.spec.user, password: r.spec.password } : null;
  }

  primary(id: number): Endpoint | null {
    return this.relays.get(id)?.relay.primaryEndpoint ?? null;
  }

  /** Relays for exactly these servers: new ones listen, gone ones close, changed ones update. */
  async sync(specs: readonly AttachedSpec[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.id, s]));
    for (const [id, r] of this.relays) {
      if (!wanted.has(id)) {
        this.relays.delete(id);
        await r.relay.close();
      }
    }
    for (const spec of specs) {
      const known = this.relays.get(spec.id);
      if (known) {
        if (JSON.stringify(known.spec) !== JSON.stringify(spec)) {
          known.relay.update(spec);
          known.spec = spec;
        }
        continue;
      }
      const relay = new PrimaryRelay(spec, path.join(this.runDir, `a${spec.id}`), this.probe);
      relay.on('primary', (from, to) => {
        if (from) this.emit('failover', spec.id, from, to);
      });
      relay.on('unreachable', (err) => this.emit('unreachable', spec.id, err));
      this.relays.set(spec.id, { relay, spec });
      await relay.listen();
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.relays.values()];
    this.relays.clear();
    await Promise.all(all.map((r) => r.relay.close()));
  }
}
