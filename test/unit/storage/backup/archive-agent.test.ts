// The archive agent and its key-less client, end to end over the real Unix socket, with the
// compiled client run by node as PostgreSQL would run archive_command / restore_command.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DirectoryRepository } from '../../../../src/storage/backup/repository.js';
import { archiveClientPath, restoreSettings, startArchiveAgent, walArchiveSettings, type ArchiveAgent } from '../../../../src/storage/backup/wal-archive.js';
import { WalKeyring } from '../../../../src/storage/backup/wal-keys.js';
import { TestKek } from '../../../../support/test-kek.js';

function client(args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [archiveClientPath(), ...args], { cwd }, (err, _out, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}

const SEG = (n: number) => `00000001000000000000000${n}`;

describe('WAL archive agent and client', () => {
  const root = mkdtempSync('/tmp/pgw-agent-');
  const repo = new DirectoryRepository(path.join(root, 'repo'));
  const kek = new TestKek();
  const socket = path.join(root, 'agent', 'a.sock');
  let agent: ArchiveAgent;
  const me = { uid: process.getuid!(), gid: process.getgid!() };

  before(async () => {
    agent = await startArchiveAgent({ socketPath: socket, owner: me, repo, serverId: 'srv', kek });
  });
  after(async () => {
    await agent.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('archives segments encrypted and restores them byte for byte; the socket is 0600', async () => {
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(socket)).mode & 0o777, 0o711);
    const wal = path.join(root, 'pg_wal');
    rmSync(wal, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(wal);
    for (let i = 1; i <= 3; i++) {
      writeFileSync(path.join(wal, SEG(i)), Buffer.alloc(256 * 1024, i));
      // archive_command gets %p relative to the data dir (its working directory).
      assert.equal((await client([socket, 'archive', `pg_wal/${SEG(i)}`, SEG(i)], root)).code, 0);
    }
    const stored = readFileSync(path.join(repo.root, 'srv', 'wal', `${SEG(2)}.pgwenc`));
    assert.equal(stored.subarray(0, 8).toString('latin1'), 'PGWWAL01');
    assert.equal(stored.includes(Buffer.alloc(64, 2)), false, 'no clear bytes stored');
    assert.equal(readdirSync(path.join(repo.root, 'srv', 'wal', 'keys')).length, 1, 'one epoch key for the agent');
    assert.equal(kek.wraps, 1);

    // A fresh agent (as during a restore) unwraps the epoch key once for all segments.
    const unwrapsBefore = kek.unwraps;
    const other = await startArchiveAgent({ socketPath: path.join(root, 'agent2', 'a.sock'), owner: me, repo, serverId: 'srv', kek });
    try {
      for (let i = 1; i <= 3; i++) {
        const r = await client([other.socketPath, 'restore', SEG(i), 'pg_wal/RECOVERYXLOG'], root);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(readFileSync(path.join(wal, 'RECOVERYXLOG')), Buffer.alloc(256 * 1024, i));
      }
      assert.equal(kek.unwraps - unwrapsBefore, 1);
    } finally {
      await other.close();
    }
  });

  it('answers a missing segment with exit 1 (recovery ends) and a tampered one with exit 126 (recovery stops)', async () => {
    const missing = await client([socket, 'restore', SEG(9), 'pg_wal/RECOVERYXLOG'], root);
    assert.equal(missing.code, 1);
    const file = path.join(repo.root, 'srv', 'wal', `${SEG(3)}.pgwenc`);
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 5000);
    writeSync(fd, Buffer.from([b[0]! ^ 0x80]), 0, 1, 5000);
    closeSync(fd);
    const r = await client([socket, 'restore', SEG(3), 'pg_wal/RECOVERYXLOG'], root);
    assert.equal(r.code, 126);
    assert.match(r.stderr, /failed authentication: its ciphertext was altered/);
    assert.equal(agent.failures.at(-1)?.error.name, 'BackupTamperedError');
  });

  it('refuses to replace an archived segment with other content, accepts the same content again', async () => {
    writeFileSync(path.join(root, 'pg_wal', SEG(1)), Buffer.alloc(256 * 1024, 1));
    assert.equal((await client([socket, 'archive', `pg_wal/${SEG(1)}`, SEG(1)], root)).code, 0);
    writeFileSync(path.join(root, 'pg_wal', SEG(1)), Buffer.alloc(256 * 1024, 9));
    const r = await client([socket, 'archive', `pg_wal/${SEG(1)}`, SEG(1)], root);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already archived with different content/);
  });

  it('refuses names that are not WAL file names, and an unreachable agent is fatal for restore', async () => {
    const r = await client([socket, 'archive', `pg_wal/${SEG(1)}`, '../../etc/passwd'], root);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid WAL file name/);
    const down = await client([path.join(root, 'nope.sock'), 'restore', SEG(1), 'pg_wal/RECOVERYXLOG'], root);
    assert.equal(down.code, 126);
  });

  it('builds archive and restore settings that quote paths for the shell', () => {
    const s = walArchiveSettings({ socketPath: "/run/it's/a.sock", clientPath: '/opt/c.js', nodePath: '/usr/bin/node' });
    assert.equal(s.archive_command, `'/usr/bin/node' '/opt/c.js' '/run/it'\\''s/a.sock' archive %p %f`);
    assert.deepEqual({ ...s, archive_command: undefined }, { wal_level: 'replica', archive_mode: 'on', archive_command: undefined, archive_timeout: 60 });
    const r = restoreSettings({ socketPath: '/a.sock', clientPath: '/c.js', nodePath: '/n', targetTime: new Date('2025-03-04T05:06:07.089Z') });
    assert.deepEqual(r, {
      restore_command: `'/n' '/c.js' '/a.sock' restore %f %p`,
      recovery_target_time: '2025-03-04 05:06:07.089+00',
      recovery_target_inclusive: false,
      recovery_target_action: 'promote',
      recovery_target_timeline: 'latest',
    });
  });

  it('opens a new WAL key epoch after the configured number of segments', async () => {
    const ring = new WalKeyring({ repo, serverId: 'epochs', kek, maxSegmentsPerEpoch: 2 });
    const epochs = [];
    for (let i = 0; i < 5; i++) epochs.push((await ring.forWriting()).epoch);
    assert.equal(new Set(epochs).size, 3);
    ring.close();
  });
});
