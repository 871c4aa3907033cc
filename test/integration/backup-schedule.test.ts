// Scheduled full backups: a new server gets its first backup at the next tick of the schedule and
// another once the interval has passed; a stopped server is skipped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';

let t: TestPlatform;
const backups = async (server: string) => (await t.api<{ value: { id: string; stopTime: string }[] }>('GET', `/servers/${server}/backups`)).value;

before(async () => {
  t = await startTestPlatform({ backupIntervalMs: 4000, backupScheduleTickMs: 500, backupRetentionDays: 7 });
});
after(async () => t?.stop());

test('a new server is backed up at the next tick and again after the interval; a stopped one is not', async () => {
  for (const name of ['sched-a', 'sched-b']) {
    const r = await t.cli(['server', 'create', name, '--admin-user', 'owner', '--admin-password', 'Sched-Passw0rd!']);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal((await t.cli(['server', 'stop', 'sched-b'])).code, 0);
  const first = await until('the first scheduled backup', async () => (await backups('sched-a')).length >= 1 && backups('sched-a'), 60_000, 250);
  const second = await until('the next scheduled backup', async () => (await backups('sched-a')).length >= 2 && backups('sched-a'), 60_000, 250);
  assert.ok(new Date(second.at(-1)!.stopTime).getTime() - new Date(first[0]!.stopTime).getTime() >= 4000, 'not before the interval');
  assert.equal((await backups('sched-b')).length, 0, 'a stopped server is skipped');
});
