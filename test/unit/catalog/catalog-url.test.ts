// The catalog URL is read as libpq reads a connection URI: several hosts, one port for all or
// one each, target_session_attrs and sslmode; a URL it cannot honour is refused with the reason.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import {
  acceptsSession,
  firstPassAccepts,
  hostLabel,
  parseCatalogUrl,
  tryOrder,
  type SessionState,
  type TargetSessionAttrs,
} from '../../../src/catalog/catalog-url.js';

it('reads several hosts with their ports, the database, the user and target_session_attrs', () => {
  const u = parseCatalogUrl('postgresql://cat:s%40cret@h1:5433,h2:5434,h3/pgw?target_session_attrs=read-write&application_name=gw');
  assert.deepEqual(u.hosts, [
    { host: 'h1', port: 5433 },
    { host: 'h2', port: 5434 },
    { host: 'h3', port: 5432 },
  ]);
  assert.equal(u.database, 'pgw');
  assert.equal(u.user, 'cat');
  assert.equal(u.password, 's@cret');
  assert.equal(u.targetSessionAttrs, 'read-write');
  assert.equal(u.applicationName, 'gw');
  assert.equal(u.sslMode, undefined);
});

it('reads IPv6 addresses in brackets, and postgres:// as well', () => {
  const u = parseCatalogUrl('postgres://[::1]:6001,[fe80::1],127.0.0.1:6002/db');
  assert.deepEqual(u.hosts, [
    { host: '::1', port: 6001 },
    { host: 'fe80::1', port: 5432 },
    { host: '127.0.0.1', port: 6002 },
  ]);
  assert.equal(u.targetSessionAttrs, 'any');
  assert.deepEqual(u.hosts.map(hostLabel), ['[::1]:6001', '[fe80::1]:5432', '127.0.0.1:6002']);
});

it('takes hosts and ports from parameters: socket directories, one port for all or one each', () => {
  const sock = parseCatalogUrl('postgresql://u:p@/postgres?host=%2Ftmp%2Fsock');
  assert.deepEqual(sock.hosts, [{ host: '/tmp/sock', port: 5432 }]);
  assert.equal(hostLabel(sock.hosts[0]!), '/tmp/sock/.s.PGSQL.5432');
  assert.deepEqual(parseCatalogUrl('postgresql:///db?host=a,b&port=7000').hosts, [
    { host: 'a', port: 7000 },
    { host: 'b', port: 7000 },
  ]);
  assert.deepEqual(parseCatalogUrl('postgresql:///db?host=a,b&port=7000,7001').hosts, [
    { host: 'a', port: 7000 },
    { host: 'b', port: 7001 },
  ]);
  assert.equal(parseCatalogUrl('postgresql:///?host=a&dbname=x&user=me').database, 'x');
});

it('reads sslmode, the certificate files and connect_timeout', () => {
  const u = parseCatalogUrl('postgresql://h1,h2/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c&sslkey=/k&connect_timeout=3');
  assert.deepEqual([u.sslMode, u.sslRootCert, u.sslCert, u.sslKey, u.connectTimeoutSeconds], ['verify-full', '/etc/ca.pem', '/c', '/k', 3]);
});

it('refuses URLs it cannot honour, saying why', () => {
  const bad: [string, RegExp][] = [
    ['host=a port=5432', /must start with postgresql:\/\//],
    ['http://h/db', /must start with postgresql:\/\//],
    ['postgresql:///db', /no host/],
    ['postgresql://h1,,h2/db', /host 2 is empty/],
    ['postgresql://h1:99999/db', /invalid port "99999"/],
    ['postgresql://h1:abc/db', /invalid port "abc"/],
    ['postgresql://[::1/db', /unterminated IPv6 address/],
    ['postgresql://h1/db?target_session_attrs=writable', /target_session_attrs "writable" is not one of any, read-write/],
    ['postgresql://h1/db?sslmode=prefer', /sslmode "prefer" is not one of .*cannot fall back/],
    ['postgresql://h1/db?sslmode=bogus', /sslmode "bogus"/],
    ['postgresql://h1/db?frobnicate=1', /unknown parameter "frobnicate"/],
    ['postgresql://h1:5/db?port=1', /ports are given both in the URL and in the port parameter/],
    ['postgresql:///db?host=a,b,c&port=1,2', /2 ports for 3 hosts/],
    ['postgresql://h1/db?host=h2', /hosts are given both/],
    ['postgresql://h1/db?dbname=x', /database is given both/],
    ['postgresql://u@h1/db?user=v', /user is given both/],
    ['postgresql://h1/db?sslmode=require&sslmode=disable', /"sslmode" is given twice/],
    ['postgresql://h1/db?connect_timeout=soon', /connect_timeout "soon"/],
    ['postgresql://h1/a/b', /unexpected "\/" in the database name/],
    ['postgresql://h1/%zz', /bad percent-encoding in the database name/],
    ['postgresql://h1/db#x', /fragment/],
  ];
  for (const [url, why] of bad) {
    assert.throws(
      () => parseCatalogUrl(url),
      (err: Error) => err.name === 'CatalogUrlError' && /^invalid catalog URL: /.test(err.message) && why.test(err.message),
      url,
    );
  }
  // The password stays out of the message.
  assert.throws(
    () => parseCatalogUrl('postgresql://u:Top-Secret@h1:0/db'),
    (err: Error) => !err.message.includes('Top-Secret'),
  );
});

it('decides as libpq which host takes the session', () => {
  const primary: SessionState = { inRecovery: false, readOnly: false };
  const standby: SessionState = { inRecovery: true, readOnly: true };
  const readOnlyPrimary: SessionState = { inRecovery: false, readOnly: true };
  const table: [TargetSessionAttrs, boolean, boolean, boolean][] = [
    // attrs, primary, standby, primary with default_transaction_read_only
    ['any', true, true, true],
    ['read-write', true, false, false],
    ['read-only', false, true, true],
    ['primary', true, false, true],
    ['standby', false, true, false],
  ];
  for (const [attrs, p, s, r] of table) {
    assert.deepEqual([acceptsSession(attrs, primary), acceptsSession(attrs, standby), acceptsSession(attrs, readOnlyPrimary)], [p, s, r], attrs);
  }
  // prefer-standby takes a standby on the first pass, any host only after that.
  assert.equal(firstPassAccepts('prefer-standby', standby), true);
  assert.equal(firstPassAccepts('prefer-standby', primary), false);
  assert.equal(firstPassAccepts('read-write', primary), true);
  assert.equal(firstPassAccepts('read-write', standby), false);
});

it('tries the hosts in order, the one that last took the session first', () => {
  const hosts = [
    { host: 'a', port: 1 },
    { host: 'b', port: 2 },
    { host: 'c', port: 3 },
  ];
  assert.deepEqual(tryOrder(hosts, null), hosts);
  assert.deepEqual(
    tryOrder(hosts, { host: 'b', port: 2 }).map((h) => h.host),
    ['b', 'a', 'c'],
  );
  // A remembered host no longer in the list changes nothing.
  assert.deepEqual(tryOrder(hosts, { host: 'b', port: 9 }), hosts);
});
