// Choosing a catalog host without PostgreSQL: hosts that do not answer are skipped in order and
// named in the error, and the pool's client class never settles on a host that failed.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { CatalogHosts, NoCatalogHostError, specFromUrl } from '../../../src/catalog/catalog-hosts.js';
import { parseCatalogUrl } from '../../../src/catalog/catalog-url.js';

/** A loopback port nothing listens on (bound once, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

it('names every host it tried, in order, when none takes the session', async () => {
  const [p1, p2] = [await closedPort(), await closedPort()];
  const hosts = new CatalogHosts(specFromUrl(parseCatalogUrl(`postgresql://u:p@127.0.0.1:${p1},127.0.0.1:${p2}/db?target_session_attrs=read-write`)));
  await assert.rejects(
    () => hosts.connect(),
    (err: Error) => {
      assert.ok(err instanceof NoCatalogHostError);
      assert.match(
        err.message,
        new RegExp(`^no catalog host accepted a read-write session: 127\\.0\\.0\\.1:${p1}: .*ECONNREFUSED.*; 127\\.0\\.0\\.1:${p2}: .*ECONNREFUSED`),
      );
      return true;
    },
  );
  assert.equal(hosts.current, null);
});

it('a pool on hosts that do not answer fails the query and remembers no host', async () => {
  const p1 = await closedPort();
  const hosts = new CatalogHosts(specFromUrl(parseCatalogUrl(`postgresql://u:p@127.0.0.1:${p1}/db`)));
  const db = new pg.Pool({ ...hosts.configFor(hosts.spec.hosts[0]!), Client: hosts.clientClass() });
  try {
    await assert.rejects(() => db.query('select 1'), /no catalog host accepted a session: 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    assert.equal(hosts.current, null);
  } finally {
    await db.end();
  }
});

it('sslmode=verify-ca without a root certificate is refused', () => {
  assert.throws(() => specFromUrl(parseCatalogUrl('postgresql://h/db?sslmode=verify-ca')), /sslmode=verify-ca needs sslrootcert/);
});

it('sslmode maps to TLS settings as libpq means them', () => {
  const ssl = (q: string) => specFromUrl(parseCatalogUrl(`postgresql://h/db${q}`)).base.ssl;
  assert.equal(ssl(''), false);
  assert.equal(ssl('?sslmode=disable'), false);
  assert.deepEqual(ssl('?sslmode=require'), { rejectUnauthorized: false });
  assert.deepEqual(ssl('?sslmode=verify-full'), { rejectUnauthorized: true });
});
