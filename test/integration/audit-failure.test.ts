// The audit store on a full disk, with the real volume filled up: failOpen keeps serving and raises
// an AuditLogFailure alert; failClosed refuses new connections with SQLSTATE 58030 and the exact
// text. Once space is freed, recording resumes by itself, an audit.interrupted event records the
// gap, and `audit verify` still passes.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';
import { clientErrors } from '../../src/pgwire/client-errors.js';
import type { AuditFailurePolicy } from '../../src/audit/audit-log.js';

const PASSWORD = 'Audit-Full-Passw0rd!';

/** The file system type mounted at `dir` (the audit volume), from /proc/mounts. */
function mountType(dir: string): string | null {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, at, type] = line.split(' ');
    if (at === dir) return type ?? null;
  }
  return null;
}

/**
 * Fills the audit volume's own file system (an ext4 loop image: never the host's disk) until a
 * write fails with ENOSPC; the file sits at the volume's root, outside the store's directory.
 */
async function fillVolume(volume: string): Promise<string> {
  const file = path.join(volume, 'fill');
  const s = statfsSync(volume);
  const free = s.bfree * s.bsize;
  const bulk = Math.max(0, free - 64 * 1024 * 1024);
  if (bulk > 0) await promisify(execFile)('fallocate', ['-l', String(bulk), file]);
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let written = 0; written < 256 * 1024 * 1024; written += chunk.length) writeSync(fd, chunk);
    throw new Error('the audit volume did not fill up');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

interface Alert {
  type: string;
  severity: string;
  description: string;
  evidence: { policy?: string };
}

const isRoot = process.getuid?.() === 0;

for (const policy of ['failOpen', 'failClosed'] as AuditFailurePolicy[]) {
  describe(`audit log on a full disk (${policy})`, { skip: isRoot ? false : 'needs root (encrypted volumes)' }, () => {
    let t: TestPlatform;
    const server = policy === 'failOpen' ? 'full-open' : 'full-closed';
    const connect = (app: string) => psql(conninfo(t, { user: `owner@${server}`, sslmode: 'require', application_name: app }), PASSWORD, ['-c', 'select 1']);
    const alerts = async () => (await t.api<{ value: Alert[] }>('GET', `/servers/${server}/alerts`)).value.filter((a) => a.type === 'AuditLogFailure');

    before(async () => {
      t = await startTestPlatform({ auditFailurePolicy: policy });
      const r = await t.cli(['server', 'create', server, '--admin-user', 'owner', '--admin-password', PASSWORD]);
      assert.equal(r.code, 0, r.stderr);
      await allowLoopback(t, server);
    });
    after(async () => t?.stop());

    test('the policy decides; the alert is raised; recording resumes once space is freed', async (ctx) => {
      const volume = t.platform.paths.auditVolume;
      const type = mountType(volume);
      if (type !== 'ext4') {
        ctx.skip(`the audit volume is ${type ?? 'not mounted'} (filling it would fill the host's disk); fscrypt volumes are ext4 images`);
        return;
      }
      const ok = await connect('before-full');
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(t.platform.audit.healthy, true);

      const fill = await fillVolume(volume);
      try {
        // Each session is a few events; the store fails once a write needs a block it cannot get.
        let n = 0;
        const refused = await until(
          'the audit store to fail',
          async () => {
            const r = await connect(`while-full-${n++}`);
            if (policy === 'failClosed' && r.code !== 0) return r;
            assert.equal(r.code, 0, `failOpen keeps serving: ${r.stderr}`);
            return !t.platform.audit.healthy && policy === 'failOpen' ? r : null;
          },
          60_000,
          50,
        );
        // (Not asserted here that the store is still unhealthy: it recovers by itself once a write
        // succeeds, and a small batch can still fit in the last block of its segment file on the
        // full volume, so its health may flap until the space is freed. The refusal above shows it
        // failed, and the refusals go on while the volume is full.)
        if (policy === 'failClosed') {
          const fatal = new RegExp(`FATAL: {2}${clientErrors.auditUnavailable.message.replace(/[.:]/g, '\\$&')}`);
          assert.match(refused.stderr, fatal);
          assert.equal(clientErrors.auditUnavailable.sqlstate, '58030');
          const again = await until(
            'another refusal while the volume is full',
            async () => {
              const r = await connect(`still-full-${n++}`);
              return r.code !== 0 ? r : null;
            },
            30_000,
            50,
          );
          assert.match(again.stderr, fatal, 'new connections are refused again while the store cannot write');
        } else {
          const served = await connect('served-while-full');
          assert.equal(served.code, 0, served.stderr);
          assert.equal(served.stdout, '1');
        }
        const [alert] = await until('the AuditLogFailure alert', async () => (await alerts()).length > 0 && alerts(), 10_000, 100);
        assert.equal(alert!.severity, 'High');
        assert.equal(alert!.evidence.policy, policy);
        assert.match(alert!.description, /audit log cannot be written: .*ENOSPC/);
        assert.match(alert!.description, policy === 'failOpen' ? /keeps serving \(failOpen\)/ : /refused \(failClosed\)/);
      } finally {
        rmSync(fill, { force: true });
      }

      // Space again: the next events are written and the platform serves (failClosed) again.
      await until(
        'a connection with the store writable again',
        async () => {
          const r = await connect('after-free');
          return r.code === 0 && t.platform.audit.healthy;
        },
        30_000,
        100,
      );
      const gap = await until(
        'the audit.interrupted event',
        async () => auditEvents<{ type: string; details?: Record<string, unknown> }>(t).find((e) => e.type === 'audit.interrupted'),
        10_000,
        100,
      );
      assert.equal(gap.details!.policy, policy);
      assert.match(String(gap.details!.reason), /ENOSPC/);
      assert.ok(Number(gap.details!.eventsLost) > 0, 'events that could not be written are counted');
      assert.ok(Date.parse(String(gap.details!.from)) <= Date.parse(String(gap.details!.to)));
      assert.equal((await alerts()).length, 1, 'one alert per incident, not one per failed write');

      const verify = await t.cli(['audit', 'verify']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    });
  });
}
