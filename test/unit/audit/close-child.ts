// Child process for the close test: appends events without waiting for them, then closes the
// store with nothing else keeping the process alive, and says "closed" when close() returned.
// Does nothing unless run by that test. (Not through helpers.ts: that would make it a test file.)
import { openAuditStore } from '../../../src/audit/store/open-store.js';

const dir = process.env.PGWARDEN_CLOSE_DIR;
const keyFile = process.env.PGWARDEN_CLOSE_KEY;
if (dir && keyFile) {
  const store = await openAuditStore({ dir, keyFile, durability: 'batched', fsyncIntervalMs: 20, checkpointIntervalMs: 60_000 });
  for (let i = 0; i < 50; i++) void store.append({ type: 'test', time: new Date().toISOString(), i });
  await store.close();
  process.stdout.write('closed\n');
}
