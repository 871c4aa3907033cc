// Child process for the kill -9 test: appends events as fast as it can and prints the seq of
// every append that resolved ("acknowledged"). Does nothing unless run by that test.
import { openStore, event } from './helpers.js';

const dir = process.env.PGWARDEN_CRASH_DIR;
const keyFile = process.env.PGWARDEN_CRASH_KEY;
const durability = process.env.PGWARDEN_CRASH_DURABILITY === 'batched' ? 'batched' : 'strict';
/** A store key (hex): the store's segments are sealed. */
const sealKey = process.env.PGWARDEN_CRASH_SEAL_KEY;
if (dir && keyFile) {
  const store = await openStore(dir, keyFile, {
    durability,
    checkpointEvery: 50,
    maxSegmentBytes: 32 * 1024,
    ...(sealKey ? { sealKey: Buffer.from(sealKey, 'hex') } : {}),
  });
  process.stdout.write(`ready ${store.recovery.lastSeq}\n`);
  let i = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const { seq } = await store.append(event(i++));
      process.stdout.write(`${seq}\n`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}
