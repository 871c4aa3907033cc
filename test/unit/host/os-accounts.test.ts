// OS account names and the orphan rule, without touching the host's users (those are in
// test/integration/os-isolation.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { PlatformAccounts, accountTag, orphanAccounts } from '../../../src/host/os-accounts.js';

test('names: per installation, at most 32 characters, catalog apart from every server', () => {
  const a = new PlatformAccounts({ root: '/var/lib/pgwarden', hostId: '0123456789abcdef', privileged: true });
  assert.match(a.catalogName(), /^pgw_[0-9a-f]{8}_c$/);
  assert.equal(a.serverName(1), `pgw_${a.tag}_s1`);
  assert.ok(a.serverName(9_999_999_999).length <= 32);
  assert.throws(() => a.serverName(-1), /invalid server id/);
  // Two platforms on one host (another host id, or another data dir) never share a name.
  const b = new PlatformAccounts({ root: '/var/lib/pgwarden', hostId: 'fedcba9876543210', privileged: true });
  const c = new PlatformAccounts({ root: '/srv/pgwarden', hostId: '0123456789abcdef', privileged: true });
  assert.equal(new Set([a.serverName(1), b.serverName(1), c.serverName(1)]).size, 3);
  assert.equal(accountTag('0123456789abcdef', '/var/lib/pgwarden/'), a.tag);
});

test('a platform that is not root runs everything as itself', async () => {
  const a = new PlatformAccounts({ root: '/tmp/x', hostId: 'h', privileged: false });
  const me = userInfo();
  for (const acct of [await a.catalog(), await a.server(1), await a.server(2)]) {
    assert.deepEqual(acct, { name: me.username, uid: me.uid, gid: me.gid, dropsPrivileges: false });
  }
  await a.removeServer(1); // nothing to remove
  assert.deepEqual(await a.removeAll(), []);
});

test("orphans: only pgwarden users whose data dir is gone or now another installation's", () => {
  const dir = mkdtempSync('/tmp/pgw-orphan-');
  try {
    const live = path.join(dir, 'live');
    const gone = path.join(dir, 'gone');
    writeFileSync(path.join(dir, 'host-id'), 'x\n'); // not a platform root: nothing named after it
    mkdirSync(live);
    writeFileSync(path.join(live, 'host-id'), 'aaaa\n');
    const liveTag = accountTag('aaaa', live);
    const oldTag = accountTag('bbbb', live); // the data dir was made anew since
    const goneTag = accountTag('cccc', gone);
    const u = (name: string, comment: string) => ({ name, uid: 900, gid: 900, comment });
    const users = [
      u(`pgw_${liveTag}_c`, `pgwarden catalog ${liveTag} ${live}`),
      u(`pgw_${liveTag}_s3`, `pgwarden server 3 ${liveTag} ${live}`),
      u(`pgw_${oldTag}_s3`, `pgwarden server 3 ${oldTag} ${live}`),
      u(`pgw_${goneTag}_c`, `pgwarden catalog ${goneTag} ${gone}`),
      u(`pgw_${goneTag}_s1`, `pgwarden server 1 ${goneTag} ${gone}`),
      // Never swept: not pgwarden's, a name and comment that disagree, no data dir in the comment.
      u('postgres', 'PostgreSQL administrator'),
      u(`pgw_${goneTag}_s2`, `pgwarden server 1 ${goneTag} ${gone}`),
      u(`pgw_${goneTag}_s1`, `pgwarden catalog ${goneTag} ${gone}`),
      u(`pgw_${goneTag}_s4`, `pgwarden server 4 ${goneTag} -`),
      u(`pgw_${goneTag}_s5`, `someone else ${goneTag} ${gone}`),
    ];
    assert.deepEqual(
      orphanAccounts(users).map((x) => x.name),
      [`pgw_${oldTag}_s3`, `pgw_${goneTag}_c`, `pgw_${goneTag}_s1`],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
