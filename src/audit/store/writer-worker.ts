// The audit store's writer thread: canonical JSON, hashing, the Merkle frontier, checkpoints and
// every file write of a store happen here, off the event loop of the process that records events.
// It speaks the protocol of writer-host.ts over its parent port and exits once the store is closed.
import { parentPort } from 'node:worker_threads';
import { nodeSyncIo } from './io.js';
import { WriterHost, type ToWriter } from './writer-host.js';

const port = parentPort;
if (port) {
  const host = new WriterHost(
    (m) => port.postMessage(m),
    { io: nodeSyncIo, now: Date.now },
    () => port.close(),
  );
  port.on('message', (m: ToWriter) => host.handle(m));
}
