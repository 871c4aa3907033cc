// A process whose last work is closing the audit store must not end before the close is done:
// the writer thread is referenced while a close waits for it, even when a batch settles
// meanwhile (that used to unref it, and Node ended the process with the store still open —
// in a stopping gateway, its audit volume was then left mounted).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { tempRoot } from './helpers.js';

const child = fileURLToPath(new URL('./close-child.js', import.meta.url));

test('close() keeps the process alive until the writer has closed, with a batch settling meanwhile', () => {
  for (let run = 0; run < 5; run++) {
    const { dir, keyFile } = tempRoot();
    const out = execFileSync(process.execPath, [child], {
      env: { ...process.env, PGWARDEN_CLOSE_DIR: dir, PGWARDEN_CLOSE_KEY: keyFile },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(out, 'closed\n', `run ${run}: the process ended before close() returned`);
  }
});
