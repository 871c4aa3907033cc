// The audit store's line to its writer: a worker thread (writer-worker.ts), or a WriterHost in
// this thread when the store's options carry their own file operations or clock (tests), or when
// no thread can be had. The thread keeps the process alive only while the store waits for it.
import { Worker } from 'node:worker_threads';
import { WriterHost, type FromWriter, type LocalParts, type ToWriter } from './writer-host.js';

const WRITER_URL = new URL('./writer-worker.js', import.meta.url);

export interface WriterLinkEvents {
  message(m: FromWriter): void;
  /** The thread failed (an uncaught error in it). */
  failed(err: Error): void;
  /** The thread exited. */
  exited(code: number): void;
}

export class WriterLink {
  /** The thread keeps the process alive. */
  private held: boolean;

  private constructor(
    private readonly worker: Worker | null,
    readonly send: (message: ToWriter, transfer?: ArrayBuffer[]) => void,
  ) {
    this.held = worker !== null;
  }

  /** A writer thread, or, with `inThread` (or when a thread cannot start), a writer in this thread. */
  static open(inThread: boolean, local: LocalParts, on: WriterLinkEvents): WriterLink {
    let worker: Worker | null = null;
    if (!inThread) {
      try {
        worker = new Worker(WRITER_URL, { name: 'pgwarden audit writer' });
      } catch {
        // no thread to be had: the writer runs here, as for tests
      }
    }
    if (worker === null) {
      const host = new WriterHost((m) => on.message(m), local);
      return new WriterLink(null, (m) => host.handle(m));
    }
    worker.on('message', (m: FromWriter) => on.message(m));
    worker.on('error', (err) => on.failed(err));
    worker.on('exit', (code) => on.exited(code));
    return new WriterLink(worker, (m, transfer) => worker.postMessage(m, transfer));
  }

  /** The writer runs in this thread. */
  get inThread(): boolean {
    return this.worker === null;
  }

  /** Whether the thread keeps the process alive (no effect in this thread). */
  get holding(): boolean {
    return this.held;
  }

  hold(busy: boolean): void {
    if (this.worker === null || busy === this.held) return;
    if (busy) this.worker.ref();
    else this.worker.unref();
    this.held = busy;
  }

  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }
}
