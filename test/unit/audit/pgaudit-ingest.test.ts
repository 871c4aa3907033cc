// pgAudit ingest: lines read from jsonlog files (as PostgreSQL 15+ writes them), the pid and
// substatement id taken without a JSON parse agree with the full parse, only complete lines are
// consumed, the join to gateway sessions decides what is published, and the reader thread with
// the platform-owned offsets publishes each line once across a stop and a restart.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PgAuditIngest } from '../../../src/audit/pgaudit-ingest.js';
import { parsePgAuditLine } from '../../../src/audit/pgaudit-line.js';
import { collectLines, finishLines, sessionKey, type JoinedSession } from '../../../src/audit/pgaudit-scan.js';
import { EventBus } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';
import { SessionIndex } from '../../../src/gateway/session-index.js';
import type { ActiveSession } from '../../../src/gateway/context.js';
import { tempRoot } from './helpers.js';

/** One jsonlog line with a pgAudit message, the way PostgreSQL writes it. */
function jsonlog(pid: number, statementId: number, sub: number, statement: string, extra: Record<string, unknown> = {}): string {
  const csv = `"${statement.replaceAll('"', '""')}"`;
  return JSON.stringify({
    timestamp: '2026-01-02 03:04:05.678 UTC',
    user: 'alice',
    dbname: 'postgres',
    pid,
    remote_host: '[local]',
    session_id: '6770a1b2.3039',
    line_num: 7,
    ps: 'SELECT',
    error_severity: 'LOG',
    message: `AUDIT: SESSION,${statementId},${sub},READ,SELECT,TABLE,public.items,${csv},<not logged>`,
    application_name: 'psql',
    backend_type: 'client backend',
    ...extra,
  });
}

function logDir(): { root: string; dir: string; file: string } {
  const { root } = tempRoot();
  const dir = path.join(root, 'log');
  mkdirSync(dir);
  return { root, dir, file: path.join(dir, 'postgresql-2026-01-02.json') };
}

describe('pgAudit lines', () => {
  it('takes pid and substatement id without a parse, in agreement with the parse, whatever the statement holds', () => {
    const { dir, file } = logDir();
    const lines = [
      jsonlog(101, 1, 1, 'SELECT 1'),
      jsonlog(102, 4, 2, 'SELECT \'"pid":7, "message":"AUDIT: SESSION,9,9,\' FROM t', { application_name: '"pid":5' }),
      '{"timestamp":"2026-01-02 03:04:05.678 UTC","pid":103,"error_severity":"LOG","message":"connection received"}',
      '{"pid":104,"message":"AUDIT: not json',
      jsonlog(105, 12, 3, 'DO $$ BEGIN PERFORM 1; END $$'),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const got = collectLines([{ name: 's1', dir }], {});
    assert.deepEqual(
      got.lines.map((l) => [l.pid, l.substatementId]),
      [
        [101, 1],
        [102, 2],
        [105, 3],
      ],
    );
    for (const l of got.lines) {
      const full = parsePgAuditLine(l.bytes.toString());
      assert.ok(full, l.bytes.toString());
      assert.deepEqual([l.pid, l.substatementId], [full.pid, full.substatementId], l.bytes.toString());
    }
    assert.equal(got.offsets[file], Buffer.byteLength(`${lines.join('\n')}\n`));
  });

  it('consumes only complete lines: a line being written is read once it ends', () => {
    const { dir, file } = logDir();
    const a = jsonlog(201, 1, 2, 'SELECT 1');
    const b = jsonlog(201, 1, 3, 'SELECT 2');
    writeFileSync(file, `${a}\n${b.slice(0, 40)}`);
    const first = collectLines([{ name: 's1', dir }], {});
    assert.equal(first.lines.length, 1);
    assert.equal(first.offsets[file], Buffer.byteLength(a) + 1);
    appendFileSync(file, `${b.slice(40)}\n`);
    const second = collectLines([{ name: 's1', dir }], first.offsets);
    assert.deepEqual(
      second.lines.map((l) => l.bytes.toString()),
      [b],
    );
    assert.deepEqual(collectLines([{ name: 's1', dir }], second.offsets).lines, []);
  });

  it('leaves lines logged after `notAfter` (and all after them) for a later scan, whole files included', () => {
    const { dir, file } = logDir();
    const at = (time: string, pid: number, v: string) => jsonlog(pid, 1, 2, `SELECT ${v}`, { timestamp: `2026-01-02 ${time} UTC` });
    const older = [
      at('03:04:05.100', 401, "'a'"),
      '{"timestamp":"2026-01-02 03:04:05.150 UTC","pid":9,"message":"checkpoint starting"}',
      at('03:04:05.200', 402, "'b'"),
    ];
    const newer = [at('03:04:05.300', 401, "'c'"), at('03:04:05.250', 402, "'d'")];
    writeFileSync(file, `${[...older, ...newer].join('\n')}\n`);
    // A later file of the same server waits too; another server's is read.
    const later = path.join(dir, 'postgresql-2026-01-03.json');
    writeFileSync(later, `${at('03:04:05.050', 403, "'e'")}\n`);
    const { dir: otherDir } = logDir();
    writeFileSync(path.join(otherDir, 'postgresql-2026-01-02.json'), `${at('03:04:09.000', 501, "'f'")}\n`);
    const servers = [
      { name: 's1', dir },
      { name: 's2', dir: otherDir },
    ];
    const notAfter = Date.parse('2026-01-02T03:04:05.200Z');
    const first = collectLines(servers, {}, undefined, notAfter);
    assert.deepEqual(
      first.lines.map((l) => [l.server, l.pid]),
      [
        ['s1', 401],
        ['s1', 402],
      ],
    );
    assert.equal(first.offsets[file], Buffer.byteLength(`${older.join('\n')}\n`), 'the offset stops before the first newer line');
    assert.equal(first.offsets[later], undefined);
    // Later: the rest, once each.
    const second = collectLines(servers, first.offsets, undefined, Date.parse('2026-01-02T03:04:10Z'));
    assert.deepEqual(
      second.lines.map((l) => [l.server, l.pid]),
      [
        ['s1', 401],
        ['s1', 402],
        ['s1', 403],
        ['s2', 501],
      ],
    );
    assert.deepEqual(
      second.lines.map((l) => /SELECT '(.)'/.exec(l.bytes.toString())![1]),
      ['c', 'd', 'e', 'f'],
    );
    assert.deepEqual(collectLines(servers, second.offsets, undefined, Number.POSITIVE_INFINITY).lines, []);
  });

  it('says whether a scan read every file to its end: a read cut at maxRead is not complete', () => {
    const { dir, file } = logDir();
    const lines = [1, 2, 3].map((i) => jsonlog(300 + i, 1, 2, `SELECT ${i}`));
    writeFileSync(file, `${lines.join('\n')}\n`);
    const servers = [{ name: 's1', dir }];
    const maxRead = lines[0]!.length + 10; // about one line a read
    let offsets: Record<string, number> = {};
    const seen: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const got = collectLines(servers, offsets, maxRead);
      offsets = { ...offsets, ...got.offsets };
      seen.push(got.complete);
    }
    assert.deepEqual(seen, [false, false, true, true]);
    // Held by notAfter: complete up to it.
    appendFileSync(file, `${jsonlog(399, 1, 2, 'SELECT 9', { timestamp: '2026-01-02 03:04:09.000 UTC' })}\n`);
    const held = collectLines(servers, offsets, undefined, Date.parse('2026-01-02T03:04:06Z'));
    assert.equal(held.lines.length, 0);
    assert.equal(held.complete, true);
  });

  it('publishes what the gateway cannot see: sub-statements of its sessions, everything of other sessions', () => {
    const { dir, file } = logDir();
    writeFileSync(file, `${[jsonlog(301, 1, 1, 'SELECT 1'), jsonlog(301, 2, 2, 'SELECT 2'), jsonlog(302, 1, 1, 'SELECT 3')].join('\n')}\n`);
    const got = collectLines([{ name: 's1', dir }], {});
    assert.deepEqual(got.keys.sort(), [sessionKey('s1', 301), sessionKey('s1', 302)]);
    const sessions = new Map<string, JoinedSession>([[sessionKey('s1', 301), { connId: 'g1-9', applicationName: 'app' }]]);
    const events = finishLines(got.lines, sessions);
    assert.deepEqual(
      events.map((e) => [e.backendPid, e.statementId, e.sessionId, e.applicationName]),
      [
        [301, 2, 'g1-9', 'app'],
        [302, 1, null, 'psql'],
      ],
    );
  });
});

describe('PgAuditIngest', () => {
  it('reads in its thread, joins in the platform, and publishes each line once across stop and restart', { timeout: 30_000 }, async () => {
    const { root, dir, file } = logDir();
    const sessions = new SessionIndex<ActiveSession>();
    sessions.opened({ server: 's1', privateEndpoint: null, connId: 'g1-1', backendPid: 401, user: 'alice', applicationName: 'app', handle: null });
    const bus = new EventBus();
    const seen: AnyEvent[] = [];
    let waiting: { n: number; resolve: () => void } | null = null;
    bus.subscribe((e) => {
      seen.push(e);
      if (waiting && seen.length >= waiting.n) waiting.resolve();
    });
    const until = (n: number) => (seen.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiting = { n, resolve })));
    const stateFile = path.join(root, 'offsets.json');
    const options = { stateFile, servers: () => [{ id: 1, name: 's1' }], logDir: () => dir, sessions, bus, intervalMs: 20 };
    writeFileSync(file, `${[jsonlog(401, 1, 1, 'SELECT 1'), jsonlog(401, 2, 2, 'SELECT 2'), jsonlog(402, 1, 1, 'SELECT 3')].join('\n')}\n`);
    const ingest = new PgAuditIngest(options);
    ingest.start();
    const keepAlive = setInterval(() => undefined, 1000); // the ingest's timer does not hold the process
    await until(2);
    clearInterval(keepAlive);
    appendFileSync(file, `${jsonlog(402, 2, 1, 'SELECT 4')}\n`);
    ingest.stop(); // reads the last lines itself
    const pids = seen.map((e) => (e as { backendPid: number }).backendPid);
    assert.deepEqual(pids, [401, 402, 402]);
    assert.deepEqual(
      seen.map((e) => (e as { sessionId: string | null }).sessionId),
      ['g1-1', null, null],
    );
    assert.equal(JSON.parse(readFileSync(stateFile, 'utf8'))[file], readFileSync(file).length);

    const again = new PgAuditIngest(options);
    assert.equal(again.tick(), 0, 'nothing is read twice after a restart');
    appendFileSync(file, `${jsonlog(403, 1, 1, 'SELECT 5')}\n`);
    assert.equal(again.tick(), 1);
    again.stop();
  });

  it('pooling: a line is joined to the session that held its backend when it was written', () => {
    const { root, dir, file } = logDir();
    const sessions = new SessionIndex<ActiveSession>();
    const session = (connId: string, applicationName: string): ActiveSession => ({
      server: 's1',
      privateEndpoint: null,
      connId,
      backendPid: 0,
      user: 'alice',
      applicationName,
      handle: null,
    });
    const a = session('g1-a', 'app-a');
    const b = session('g1-b', 'app-b');
    const t0 = Date.parse('2026-01-02T03:04:05.000Z');
    sessions.lent(a, 501, t0);
    sessions.returned(a, 501, t0 + 500);
    sessions.lent(b, 501, t0 + 600);
    const bus = new EventBus();
    const seen: { sessionId: string | null; applicationName?: string }[] = [];
    bus.subscribe((e) => seen.push(e as never));
    const at = (ms: number) => new Date(t0 + ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
    writeFileSync(file, `${[jsonlog(501, 1, 2, 'SELECT 1', { timestamp: at(100) }), jsonlog(501, 2, 2, 'SELECT 2', { timestamp: at(700) })].join('\n')}\n`);
    const ingest = new PgAuditIngest({ stateFile: path.join(root, 'offsets.json'), servers: () => [{ id: 1, name: 's1' }], logDir: () => dir, sessions, bus });
    assert.equal(ingest.tick(), 2);
    assert.deepEqual(
      seen.map((e) => [e.sessionId, e.applicationName]),
      [
        ['g1-a', 'app-a'],
        ['g1-b', 'app-b'],
      ],
    );
  });

  it('tells the session index how far it has read, after a complete scan, in this thread and from the reader thread', { timeout: 30_000 }, async () => {
    const { root, dir, file } = logDir();
    writeFileSync(file, `${jsonlog(701, 1, 2, 'SELECT 1')}\n`);
    const marks: number[] = [];
    const sessions = { find: () => null, settled: (t: number) => marks.push(t) };
    const options = { stateFile: path.join(root, 'offsets.json'), servers: () => [{ id: 1, name: 's1' }], logDir: () => dir, sessions, bus: new EventBus() };
    const before = Date.now();
    new PgAuditIngest(options).tick();
    assert.equal(marks.length, 1);
    assert.ok(marks[0]! >= before && marks[0]! <= Date.now(), 'the time the scan started');
    marks.length = 0;
    const ingest = new PgAuditIngest({ ...options, intervalMs: 20, holdMs: 3_000 });
    const started = Date.now();
    ingest.start();
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      while (marks.length === 0) await new Promise((r) => setTimeout(r, 20));
    } finally {
      clearInterval(keepAlive);
      ingest.stop();
    }
    assert.ok(marks[0]! >= started - 3_000 && marks[0]! <= Date.now() - 3_000, 'with a hold: what the scan read to');
  });

  it('holdMs: a line waits until a lend that reaches the index late (another gateway process) is known', { timeout: 30_000 }, async () => {
    const { root, dir, file } = logDir();
    const sessions = new SessionIndex<ActiveSession>();
    const session = (connId: string): ActiveSession => ({
      server: 's1',
      privateEndpoint: null,
      connId,
      backendPid: 0,
      user: 'alice',
      applicationName: 'app',
      handle: null,
    });
    const now = Date.now();
    sessions.lent(session('g2-a'), 601, now - 2000);
    sessions.returned(session('g2-a'), 601, now - 1500);
    const bus = new EventBus();
    const seen: { sessionId: string | null }[] = [];
    const published = new Promise<void>((resolve) =>
      bus.subscribe((e) => {
        seen.push(e as never);
        resolve();
      }),
    );
    // b was lent backend 601 just before the line was logged; the platform hears of it 150 ms
    // later, after several scans (every 20 ms) could have read the line.
    const logged = new Date(now).toISOString().replace('T', ' ').replace('Z', ' UTC');
    writeFileSync(file, `${jsonlog(601, 1, 2, 'SELECT 1', { timestamp: logged })}\n`);
    const ingest = new PgAuditIngest({
      stateFile: path.join(root, 'offsets.json'),
      servers: () => [{ id: 1, name: 's1' }],
      logDir: () => dir,
      sessions,
      bus,
      intervalMs: 20,
      holdMs: 2000,
    });
    ingest.start();
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(seen.length, 0, 'not joined within the hold');
      sessions.lent(session('g2-b'), 601, now - 5);
      await published;
    } finally {
      clearInterval(keepAlive);
      ingest.stop();
    }
    assert.deepEqual(
      seen.map((e) => e.sessionId),
      ['g2-b'],
    );
    assert.ok(Date.now() - now >= 2000, 'published once the hold passed');
  });
});
