// The pure decisions of the backup subsystem: which backup a restore uses, what retention
// deletes, which servers are due for a scheduled backup, WAL names and backup_label parsing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseBackup, type BackupManifest } from '../../../../src/storage/backup/manifest.js';
import { planRetention, walFilesToDelete } from '../../../../src/storage/backup/retention.js';
import { dueBackups, startBackupScheduler } from '../../../../src/storage/backup/scheduler.js';
import { isArchivableWalName, walFileNameOf } from '../../../../src/storage/backup/wal-names.js';
import { lastWalFileBefore, parseBackupLabel } from '../../../../src/storage/backup/base-backup.js';

const DAY = 24 * 3600_000;
const T0 = Date.UTC(2025, 0, 10);

function backup(id: string, stopMs: number, startWalFile: string): BackupManifest {
  return {
    backupId: id,
    stopTime: new Date(stopMs).toISOString(),
    startTime: new Date(stopMs - 60_000).toISOString(),
    startWalFile,
  } as unknown as BackupManifest;
}

describe('backup decisions', () => {
  const b1 = backup('b1', T0 - 5 * DAY, '000000010000000000000010');
  const b2 = backup('b2', T0 - 3 * DAY, '000000010000000000000020');
  const b3 = backup('b3', T0 - 1 * DAY, '000000010000000000000030');

  it('restores from the newest backup completed before the target time', () => {
    assert.equal(chooseBackup([b1, b2, b3], new Date(T0 - 2 * DAY))?.backupId, 'b2');
    assert.equal(chooseBackup([b3, b1, b2], null)?.backupId, 'b3');
    assert.equal(chooseBackup([b1, b2, b3], new Date(T0 - 3 * DAY))?.backupId, 'b2', 'stop time equal to the target counts');
    assert.equal(chooseBackup([b1, b2, b3], new Date(T0 - 6 * DAY)), null);
  });

  it('retention keeps the window plus its base backup, at least the newest', () => {
    const p = planRetention([b1, b2, b3], new Date(T0), 2);
    assert.deepEqual(
      p.keep.map((b) => b.backupId),
      ['b2', 'b3'],
    );
    assert.deepEqual(
      p.drop.map((b) => b.backupId),
      ['b1'],
    );
    assert.equal(p.oldestNeededWalFile, '000000010000000000000020');
    assert.deepEqual(
      planRetention([b1, b2, b3], new Date(T0 + 30 * DAY), 7).keep.map((b) => b.backupId),
      ['b3'],
    );
    assert.deepEqual(planRetention([], new Date(T0), 7), { keep: [], drop: [], oldestNeededWalFile: null });
    assert.throws(() => planRetention([b1], new Date(T0), 0), RangeError);
  });

  it('retention deletes WAL before the oldest needed file on any timeline, never history files', () => {
    const names = [
      '000000010000000000000019',
      '00000001000000000000001F.00000028.backup',
      '000000020000000000000019.partial',
      '00000002.history',
      '000000010000000000000020',
      '000000020000000000000021',
    ];
    assert.deepEqual(walFilesToDelete(names, '000000010000000000000020'), [
      '000000010000000000000019',
      '00000001000000000000001F.00000028.backup',
      '000000020000000000000019.partial',
    ]);
    assert.deepEqual(walFilesToDelete(names, null), []);
  });

  it('schedules servers whose last backup is older than their interval (default daily), oldest first', () => {
    const now = new Date(T0);
    const last = new Map([
      ['a', new Date(T0 - 2 * DAY)],
      ['b', new Date(T0 - 3600_000)],
      ['c', new Date(T0 - 3 * 3600_000)],
    ]);
    assert.deepEqual(
      dueBackups(
        now,
        [{ serverId: 'a' }, { serverId: 'b' }, { serverId: 'c', intervalMs: 2 * 3600_000 }, { serverId: 'new' }, { serverId: 'off', enabled: false }],
        last,
      ),
      ['new', 'a', 'c'],
    );
  });

  it('the scheduler runs due backups and reports failures without stopping', async () => {
    const ran: string[] = [];
    const errors: string[] = [];
    const s = startBackupScheduler({
      tickMs: 3600_000,
      servers: () => [{ serverId: 'x' }, { serverId: 'y' }],
      lastBackups: () => new Map(),
      runBackup: async (id) => {
        if (id === 'x') throw new Error('boom');
        ran.push(id);
      },
      onError: (id, err) => errors.push(`${id}: ${err.message}`),
    });
    assert.deepEqual(await s.tick(), ['y']);
    assert.deepEqual(errors, ['x: boom']);
    await s.stop();
  });

  it('names WAL files and reads backup_label', () => {
    assert.equal(walFileNameOf(1, '0/3000028'), '000000010000000000000003');
    assert.equal(walFileNameOf(2, '1/FF000000'), '0000000200000001000000FF');
    assert.equal(lastWalFileBefore(1, '0/4000000', 16 * 1024 * 1024), '000000010000000000000003');
    assert.equal(lastWalFileBefore(1, '0/4000100', 16 * 1024 * 1024), '000000010000000000000004');
    assert.ok(isArchivableWalName('00000002.history') && isArchivableWalName('000000010000000000000003.00000028.backup'));
    assert.ok(!isArchivableWalName('../000000010000000000000003') && !isArchivableWalName('00000001000000000000000g'));
    const label =
      'START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\nCHECKPOINT LOCATION: 0/3000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2025-01-01 00:00:00 UTC\nLABEL: pgwarden s b\nSTART TIMELINE: 1\n';
    assert.deepEqual(parseBackupLabel(`\0\0junk${label}`), { startLsn: '0/3000028', timeline: 1 });
    assert.equal(parseBackupLabel('nothing'), null);
  });
});
