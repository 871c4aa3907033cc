// The native relay's backpressure towards JavaScript (native/relay/src/batch.rs): once the events
// JavaScript has not taken reach the bound given to start(), the relay stops reading its sockets
// until they are taken. The attack it answers: sessions that send statements faster than the
// audit (on JavaScript's one thread) can follow would otherwise grow the gateway's memory without
// bound and let the audit trail fall ever further behind the wire. Here the client and the server
// are child processes, so they keep writing and reading while this process's event loop is held
// busy (an overloaded audit): the relay must wait at the bound, and every statement must still be
// observed once the loop is free. Skipped when the addon is not built (scripts/build-native.sh).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { accept, addon, expectEvent, handleOf, listener, options, readObserve, setUpAddon, skip, tearDownAddon, untilClosed } from './harness.js';

const BOUND = 16 * 1024;
const STATEMENTS = 100_000;

/** A server that reads and discards everything, on a Unix socket; prints "up" when listening. */
const SERVER = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end()); c.on('error', () => {}); });
s.listen(process.argv[1], () => process.stdout.write('up\\n'));
`;

/** A client that connects, waits for a line on stdin, then writes N simple Queries and ends. */
const CLIENT = `
const net = require('node:net');
const [port, n] = process.argv.slice(1).map(Number);
const c = net.connect(port, '127.0.0.1', () => process.stdout.write('connected\\n'));
c.on('error', () => {});
process.stdin.once('data', () => {
  const msgs = [];
  for (let i = 0; i < n; i++) {
    const body = Buffer.from('SELECT ' + i + '\\0');
    const h = Buffer.alloc(5); h.write('Q', 0, 'latin1'); h.writeInt32BE(body.length + 4, 1);
    msgs.push(h, body);
  }
  c.end(Buffer.concat(msgs));
});
`;

function line(child: ChildProcess, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`${want}\n`)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before '${want}'`)));
  });
}

describe('native relay addon: backpressure towards JavaScript', { skip }, () => {
  let dir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    await setUpAddon(BOUND);
    dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-backlog-'));
  });
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill();
    rmSync(dir, { recursive: true, force: true });
    tearDownAddon();
  });

  it('JavaScript busy while a client floods statements: the relay waits at the bound, and every statement is observed after', async () => {
    const file = path.join(dir, 'server.sock');
    const server = spawn(process.execPath, ['-e', SERVER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await line(server, 'up');
    const port = (listener.address() as net.AddressInfo).port;
    const client = spawn(process.execPath, ['-e', CLIENT, String(port), String(STATEMENTS)], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(client);
    const side = await accept();
    await line(client, 'connected');
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'none');
    side.destroy();
    addon.freeze(id);
    await expectEvent(id, 'frozen');
    const s = net.connect(file);
    await new Promise<void>((r) => s.once('connect', () => r()));
    handleOf(s).readStop();
    addon.relay(id, handleOf(s).fd, options({ observe: true }));
    s.destroy();
    const before = addon.backlogStats();

    // The flood starts; this thread stays busy for 1.5 s (the relay threads do not).
    client.stdin!.write('go\n');
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      // busy: no event callback can run
    }

    const { closed, observed } = await untilClosed(id, 60_000);
    assert.equal(closed.error, null);
    const types = observed.filter((o) => o.client).flatMap((o) => readObserve(o.client as Buffer).types);
    assert.equal(types.length, STATEMENTS, 'every statement observed');
    assert.ok(
      types.every((t) => t === 'Q'),
      'only the Queries',
    );
    const stats = addon.backlogStats();
    assert.ok(stats.waits > before.waits, `the relay waited for JavaScript (${JSON.stringify(stats)})`);
    // The bound, plus the events of the one 64 KiB read that crossed it: not the whole flood
    // (about 1.5 MB of Queries), which the relay read while this thread was busy before.
    assert.ok(stats.largest < BOUND + 96 * 1024, `at most about the bound was queued (${JSON.stringify(stats)})`);
    assert.equal(closed.bytesFromClient, STATEMENTS * 5 + [...Array(STATEMENTS).keys()].reduce((n, i) => n + `SELECT ${i}`.length + 1, 0));
  });
});
