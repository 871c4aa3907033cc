// Statement names of the gateway's own, the messages built from them, and the cheap first-keyword
// test that refuses LISTEN in transaction mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeStatement, firstKeywordIs, namedMessage, registeredStatements, release, retain, statementOf } from '../../../../src/gateway/pool/prepared.js';

function parseBody(name: string, text: string, types: number[] = []): { body: Buffer; nameEnd: number } {
  const t = Buffer.alloc(2 + 4 * types.length);
  t.writeInt16BE(types.length, 0);
  for (const [i, oid] of types.entries()) t.writeInt32BE(oid, 2 + 4 * i);
  const body = Buffer.concat([Buffer.from(`${name}\0${text}\0`), t]);
  return { body, nameEnd: Buffer.byteLength(name) };
}

test('the server name depends on the text and parameter types, not on the client name', () => {
  const before = registeredStatements();
  const a = parseBody('a', 'SELECT $1', [23]);
  const b = parseBody('other', 'SELECT $1', [23]);
  const c = parseBody('a', 'SELECT $1', [25]);
  const sa = statementOf(a.body, 0, a.nameEnd, a.body.length);
  const sb = statementOf(b.body, 0, b.nameEnd, b.body.length);
  const sc = statementOf(c.body, 0, c.nameEnd, c.body.length);
  assert.equal(sa, sb, 'one shared record');
  assert.equal(sa.refs, 2);
  assert.notEqual(sa.server, sc.server);
  assert.match(sa.server, /^pgw_[0-9a-f]{32}$/);
  // The Parse the server gets: the gateway's name, the same text and types.
  const p = sa.parse;
  assert.equal(p[0], 0x50);
  assert.equal(p.readInt32BE(1), p.length - 1);
  assert.deepEqual(p.subarray(5), Buffer.concat([Buffer.from(`${sa.server}\0SELECT $1\0`), Buffer.from([0, 1, 0, 0, 0, 23])]));
  assert.equal(registeredStatements(), before + 2);
  release(sa);
  release(sb);
  release(sc);
  assert.equal(registeredStatements(), before);
  retain(sa);
  assert.equal(registeredStatements(), before + 1, 'a record kept by a client comes back');
  release(sa);
});

test('a Bind renamed keeps the portal and everything after the name', () => {
  const body = Buffer.concat([Buffer.from('portal\0s1\0'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x37, 0, 0])]);
  const out = namedMessage(0x42, body, 0, 7, 9, body.length, 'pgw_x');
  assert.equal(out[0], 0x42);
  assert.equal(out.readInt32BE(1), out.length - 1);
  assert.deepEqual(out.subarray(5), Buffer.concat([Buffer.from('portal\0pgw_x\0'), body.subarray(10)]));
  assert.deepEqual(closeStatement('pgw_x'), Buffer.concat([Buffer.from([0x43, 0, 0, 0, 11]), Buffer.from('Spgw_x\0')]));
});

test('first keyword: white space, comments and parentheses skipped, whole words only, any case', () => {
  const is = (sql: string) => {
    const b = Buffer.from(`xx${sql}yy`);
    return firstKeywordIs(b, 2, b.length - 2, 'LISTEN');
  };
  assert.ok(is('LISTEN chan'));
  assert.ok(is('listen chan'));
  assert.ok(is('  \n\tListen "chan"'));
  assert.ok(is('-- a comment\nLISTEN chan'));
  assert.ok(is('/* one /* nested */ comment */ LISTEN chan'));
  assert.ok(is('LISTEN'));
  assert.ok(is('LISTEN;'));
  assert.ok(!is('LISTENER'));
  assert.ok(!is('LISTEN_x'));
  assert.ok(!is('SELECT 1; LISTEN chan'));
  assert.ok(!is('UNLISTEN chan'));
  assert.ok(!is('-- LISTEN chan'));
  assert.ok(!is('LIST'));
  assert.ok(!is(''));
});
