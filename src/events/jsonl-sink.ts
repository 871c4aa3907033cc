// Provisional event store: one JSON object per line, appended in order. The audit issue
// replaces it with the chained, signed store.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { EventBus } from './bus.js';

export class JsonlSink {
  private readonly out: WriteStream;
  private readonly unsubscribe: () => void;

  constructor(file: string, bus: EventBus) {
    this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.unsubscribe = bus.subscribe((e) => this.out.write(`${JSON.stringify(e)}\n`));
  }

  close(): Promise<void> {
    this.unsubscribe();
    return new Promise((resolve) => this.out.end(resolve));
  }
}
