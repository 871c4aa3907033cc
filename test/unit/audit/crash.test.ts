import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadSigningKey } from '../../../src/audit/store/signing-key.js';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { openStore, segmentFiles, tempRoot } from './helpers.js';
import { holdStoreKey } from '../../../src/audit/store/seal-keys.js';

const child = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/** Runs the writer in a child, SIGKILLs it once it acknowledged `acks` records; returns the highest acknowledged seq. */
function writeThenKill(dir: string, keyFile: string, durability: 'strict' | 'batched', acks: number, sealKey?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child], {
      env: {
        ...process.env,
        PGWARDEN_CRASH_DIR: dir,
        PGWARDEN_CRASH_KEY: keyFile,
        PGWARDEN_CRASH_DURABILITY: durability,
        ...(sealKey ? { PGWARDEN_CRASH_SEAL_KEY: sealKey.toString('hex') } : {}),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    let highest = 0;
    let count = 0;
    p.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('ready')) continue;
        highest = Math.max(highest, Number(l));
        if (++count === acks) p.kill('SIGKILL');
      }
    });
    p.on('error', reject);
    p.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve(highest) : reject(new Error(`writer exited without being killed (${signal})`))));
  });
}

describe('audit store: kill -9 of the writer', () => {
  for (const [durability, sealed] of [
    ['strict', false],
    ['batched', false],
    ['batched', true],
  ] as const) {
    const what = `${durability}${sealed ? ', sealed segments' : ''}`;
    it(`${what}: reopens after SIGKILL, keeps every ${durability === 'strict' ? 'acknowledged' : 'written'} record, verifies, continues`, async () => {
      const { dir, keyFile } = tempRoot();
      await loadSigningKey(keyFile); // create it here, so both processes use the same key
      const sealKey = sealed ? randomBytes(32) : undefined;
      const release = sealKey ? holdStoreKey(dir, sealKey) : () => undefined;
      try {
        for (const round of [1, 2, 3]) {
          const acked = await writeThenKill(dir, keyFile, durability, 400 + round * 100, sealKey);
          const store = await openStore(dir, keyFile, sealKey ? { sealKey } : {});
          // The process died, the OS did not: written bytes are in the page cache under both modes.
          assert.ok(store.recovery.lastSeq >= acked, `round ${round}: acknowledged ${acked}, recovered ${store.recovery.lastSeq}`);
          await store.close();
          const report = await verifyStore(dir, { publicKey: store.publicKey });
          assert.equal(report.ok, true, `round ${round}: ${report.failure?.reason} ${report.failure?.message}`);
          let n = 0;
          for await (const r of readRecords(dir)) assert.equal(r.seq, ++n, 'seqs are 1, 2, 3, ... without gaps');
          assert.equal(n, report.lastSeq);
        }
        if (sealKey) for (const name of segmentFiles(dir)) assert.equal(readFileSync(path.join(dir, name)).subarray(0, 8).toString(), 'PGWSEAL1');
      } finally {
        release();
      }
    });
  }
});
