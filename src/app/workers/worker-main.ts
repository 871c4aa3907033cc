// The entry of a gateway process forked by the platform process (`up --gateway-workers N`).
// It runs only as a child with an IPC channel: the platform process sends `init` first. When the
// channel closes (the platform process ended), this process stops too.
import { GatewayWorker } from './gateway-worker.js';
import type { FromWorker, ToWorker } from './messages.js';

function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

if (!process.send) {
  process.stderr.write('pgwarden: this is a gateway process of `pgwarden up --gateway-workers N`; it is not started by hand.\n');
  process.exit(2);
}

let worker: GatewayWorker | null = null;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker?.stop().catch(() => undefined);
  send({ type: 'stopped' });
  // Let the last messages leave before the channel closes.
  setTimeout(() => process.exit(code), 50).unref();
  process.disconnect?.();
}

process.on('message', (m: ToWorker, handle: unknown) => {
  if (m.type === 'init') {
    worker = new GatewayWorker(m.options, m.index, m.count, send);
    worker.start().then(
      (port) => send({ type: 'ready', port }),
      (err: Error) => {
        send({ type: 'failed', message: err.message });
        void stop(1);
      },
    );
    return;
  }
  if (m.type === 'stop') {
    void stop(0);
    return;
  }
  if (worker) void worker.handle(m, handle);
});
process.on('disconnect', () => void stop(0));
// The platform process's terminal sends SIGINT to the whole group: the platform process stops
// this one in its own order.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => void stop(0));
