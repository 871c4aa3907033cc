// One gateway process's place in the gateway tier: the platform's own gateway and each
// `pgwarden gateway` on the same catalog behave as one. Over the catalog's tier channel
// (catalog/tier-channel.ts) a process
// - publishes a CancelRequest no local session has (sealed, cancel-box.ts), and forwards the
//   ones it is the holder of to their backend (the client's connection was already closed
//   without a word by the gateway that received it);
// - tells the others about throttle blocks it started and lifted (block-sync.ts), and adopts
//   theirs, looking at its throttle five times a second and at once after a protection.blocked;
// - on (re)joining, says hello and its blocks: the others answer with theirs.
// What a process missed while it could not reach the catalog: blocks come back with the hello;
// an unblock sent meanwhile is lost, and the block lasts until its end (the safe side).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventBus } from '../../events/bus.js';
import type { TierChannel } from '../../catalog/tier-channel.js';
import { BlockSync, type BlockMessage, type ThrottleBlocks } from './block-sync.js';
import { CancelOpener, sealCancel, type SealedCancel } from './cancel-box.js';

const LOOK_MS = 200;

export interface GatewayTierDeps {
  /** This process in the tier: 'platform', or 'gw-<port>'. */
  readonly name: string;
  readonly channel: TierChannel;
  /** The key every gateway of the platform derives alike (sealing cancel secrets). */
  readonly key: Buffer;
  readonly throttle: ThrottleBlocks;
  readonly bus: EventBus;
  readonly log: Logger;
  /** Forwards a cancel to the backend of a session this process holds; false if none has the key. */
  readonly cancelHere: (processId: number, secretKey: Buffer) => Promise<boolean>;
}

type Envelope = { readonly v: 1; readonly from: string } & (BlockMessage | ({ readonly op: 'cancel' } & SealedCancel) | { readonly op: 'hello' });

export class GatewayTier {
  /** Unique per process run: two gateways of one name (one on each host) still tell each other apart. */
  readonly id: string;
  private readonly blocks: BlockSync;
  private readonly opener: CancelOpener;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly d: GatewayTierDeps) {
    this.id = `${d.name}/${randomBytes(6).toString('hex')}`;
    this.blocks = new BlockSync(d.throttle);
    this.opener = new CancelOpener(d.key);
  }

  async start(): Promise<void> {
    const { channel, bus } = this.d;
    channel.on('message', (m) => this.receive(m as Partial<Envelope>));
    channel.on('connected', () => this.join());
    channel.on('disconnected', (err) =>
      this.d.log.warn({ err: err?.message }, 'gateway tier: catalog channel lost; blocks and cancels of the other gateways wait for it'),
    );
    await channel.start();
    this.unsubscribe = bus.subscribe((e) => {
      if (e.type === 'protection.blocked') this.look();
    });
    this.timer = setInterval(() => this.look(), LOOK_MS);
    this.timer.unref();
  }

  /** A CancelRequest for no session of this process: the gateway that holds it forwards it. */
  async cancelElsewhere(processId: number, secretKey: Buffer): Promise<void> {
    await this.send({ op: 'cancel', ...sealCancel(this.d.key, processId, secretKey, Date.now()) });
  }

  private join(): void {
    void this.send({ op: 'hello' });
    for (const m of this.blocks.all(Date.now())) void this.send(m);
  }

  private look(): void {
    for (const m of this.blocks.changes(Date.now())) void this.send(m);
  }

  private receive(m: Partial<Envelope>): void {
    if (m.v !== 1 || typeof m.from !== 'string' || m.from === this.id) return;
    const nowMs = Date.now();
    switch (m.op) {
      case 'block':
      case 'unblock':
        this.blocks.receive(m as BlockMessage, nowMs);
        return;
      case 'hello':
        for (const b of this.blocks.all(nowMs)) void this.send(b);
        return;
      case 'cancel': {
        const secret = this.opener.open(m as SealedCancel, nowMs);
        if (!secret) return;
        this.d.cancelHere(m.pid as number, secret).catch((err: Error) => this.d.log.warn({ err }, 'gateway tier: a forwarded cancel failed'));
        return;
      }
      default:
        return;
    }
  }

  /** One at a time, in order: a block and its unblock must not overtake each other. */
  private send(body: BlockMessage | ({ op: 'cancel' } & SealedCancel) | { op: 'hello' }): Promise<void> {
    const message = { v: 1, from: this.id, ...body };
    this.sending = this.sending.then(() =>
      this.d.channel.publish(message).catch((err: Error) => this.d.log.warn({ err: err.message, op: body.op }, 'gateway tier: a message could not be sent')),
    );
    return this.sending;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.sending;
    await this.d.channel.stop();
  }
}
