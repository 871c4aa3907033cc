import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { DirectoryRepository } from '../../../../src/storage/backup/repository.js';
import { readAll } from '../../../../src/storage/backup/stream-util.js';

describe('backup repository: directory', () => {
  const root = mkdtempSync('/tmp/pgw-repo-');
  after(() => rmSync(root, { recursive: true, force: true }));
  const repo = new DirectoryRepository(path.join(root, 'r'));

  it('stores, reads, lists, stats and deletes objects; files 0600, directories 0700', async () => {
    assert.deepEqual(await repo.put('s1/base/b1/base.tar.pgwenc', Readable.from([Buffer.from('abc'), Buffer.from('def')])), { bytes: 6 });
    await repo.put('s1/wal/000000010000000000000001.pgwenc', Buffer.from('x'));
    assert.equal((await readAll(await repo.get('s1/base/b1/base.tar.pgwenc'))).toString(), 'abcdef');
    assert.equal((await repo.stat('s1/base/b1/base.tar.pgwenc'))?.size, 6);
    assert.equal(await repo.stat('s1/base/none'), null);
    assert.deepEqual(
      (await repo.list('s1')).map((o) => o.key),
      ['s1/base/b1/base.tar.pgwenc', 's1/wal/000000010000000000000001.pgwenc'],
    );
    assert.equal(statSync(path.join(repo.root, 's1/base/b1/base.tar.pgwenc')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(repo.root, 's1/base/b1')).mode & 0o777, 0o700);
    await repo.delete('s1/base/b1/base.tar.pgwenc');
    assert.deepEqual(
      (await repo.list('s1')).map((o) => o.key),
      ['s1/wal/000000010000000000000001.pgwenc'],
    );
    assert.deepEqual(readdirSync(path.join(repo.root, 's1')), ['wal'], 'empty directories are removed');
    await assert.rejects(repo.get('s1/base/b1/base.tar.pgwenc'), { name: 'RepositoryObjectMissingError' });
  });

  it('stores nothing when the source stream fails, and leaves no temp file', async () => {
    // A source that fails at once, many times over: the temp file must not appear after the
    // clean-up (a write stream that opens its file on its own could create it late).
    for (let i = 0; i < 200; i++) {
      const failing = new Readable({
        read() {
          if (i % 2) this.push(Buffer.alloc(1000));
          this.destroy(new Error('source broke'));
        },
      });
      await assert.rejects(repo.put('s2/base/b/base.tar.pgwenc', failing), /source broke/);
    }
    assert.equal(await repo.stat('s2/base/b/base.tar.pgwenc'), null);
    assert.deepEqual(readdirSync(path.join(repo.root, 's2/base/b')), []);
  });

  it('refuses keys that could leave the repository', async () => {
    for (const key of ['../x', 's/../../x', '/abs', 's//x', 's/./x', '']) {
      await assert.rejects(repo.put(key, Buffer.from('x')), { name: 'InvalidRepositoryKeyError' }, key);
    }
  });
});
