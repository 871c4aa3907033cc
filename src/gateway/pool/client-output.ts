// What the client of a transaction-mode session gets (transaction-relay.ts): the server's
// messages and the gateway's own answers, in order, collected as a server chunk is read and
// written in one batch. The observer saw each message as the relay framed or made it; with strict
// audit durability a batch waits until the audit has what it saw (the server connection is paused
// meanwhile), and the client's end waits for the batches before it.
import type { Duplex } from 'node:stream';
import { writeCorked } from './client-messages.js';

/** The lent server connection's socket, if any: paused while the client cannot take more. */
export interface ServerFlow {
  pause(): void;
  resume(): void;
}

export class ClientOutput {
  private list: Buffer[] = [];
  private waiting = false;
  private endAfterHold: Buffer | null | undefined = undefined;
  /** Bytes given to the client so far. */
  bytes = 0;

  constructor(
    private readonly client: Duplex,
    /** Strict audit durability: before server bytes go to the client, wait for this promise when non-null. */
    private readonly hold: (() => Promise<void> | null) | undefined,
    private readonly server: ServerFlow,
  ) {}

  /** A batch waits for the audit. */
  get holding(): boolean {
    return this.waiting;
  }

  /** Bytes for the client, after those pushed before. */
  push(bytes: Buffer): void {
    this.list.push(bytes);
  }

  /** Writes what was pushed (after the audit, when it holds). */
  flush(): void {
    if (this.waiting) return;
    const list = this.list;
    if (list.length === 0) return;
    this.list = [];
    for (let i = 0; i < list.length; i++) this.bytes += list[i]!.length;
    const wait = this.hold?.() ?? null;
    if (wait === null) {
      this.write(list);
      return;
    }
    this.waiting = true;
    this.server.pause();
    const go = () => {
      this.waiting = false;
      this.write(list);
      if (this.endAfterHold !== undefined) {
        const last = this.endAfterHold;
        this.endAfterHold = undefined;
        this.end(last);
        return;
      }
      if (!this.client.writableNeedDrain) this.server.resume();
      this.flush();
    };
    void wait.then(go, go);
  }

  /** Ends the client's stream after what it is owed (and `last`, when given). */
  end(last: Buffer | null): void {
    this.flush();
    if (this.waiting) {
      this.endAfterHold = last;
      return;
    }
    if (last !== null) this.client.end(last);
    else this.client.end();
  }

  private write(list: Buffer[]): void {
    if (this.client.destroyed) return;
    if (!writeCorked(this.client, list)) this.server.pause();
  }
}
