// Provisional event store: one JSON object per line, appended in order. The audit issue
// replaces it with the chained, signed store. Events of one tick go out in one write.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { EventBus } from './bus.js';

export class JsonlSink {
  private readonly out: WriteStream;
  private readonly unsubscribe: () => void;
  private pending: string[] = [];

  constructor(file: string, bus: EventBus) {
    this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.unsubscribe = bus.subscribe((e) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push(`${JSON.stringify(e)}\n`);
    });
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    this.out.write(lines);
  }

  close(): Promise<void> {
    this.unsubscribe();
    this.flush();
    return new Promise((resolve) => this.out.end(resolve));
  }
}
