// Real clients over real sockets against the codec + ScramServerSession (see mini-server.ts):
// node-postgres (pg.Client) and, when installed, psql (libpq), with and without TLS channel
// binding, plus the passthrough of the recovered ClientKey.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import pg from 'pg';
import { buildScramVerifier, parseScramVerifier } from '../../../../src/auth/scram/verifier.js';
import { sha256 } from '../../../../src/auth/scram/keys.js';
import { makeCertificate, type CertificateKind, type TestCertificate } from './certificates.js';
import { startMiniServer, type MiniServer, type MiniServerOptions } from './mini-server.js';

const PASSWORD = 'S3cret pässword';
const roles = new Map([['alice', parseScramVerifier(buildScramVerifier(PASSWORD))!]]);

const PSQL = ['/usr/lib/postgresql/15/bin/psql', '/usr/bin/psql'].find((p) => existsSync(p));

async function withServer<T>(options: Omit<MiniServerOptions, 'roles'>, fn: (s: MiniServer) => Promise<T>): Promise<T> {
  const server = await startMiniServer({ roles, ...options });
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

async function pgConnect(port: number, config: Partial<pg.ClientConfig> = {}): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'db', password: PASSWORD, ...config });
  await client.connect();
  await client.end();
}

function psql(conninfo: string, password: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      PSQL!,
      ['-X', '-w', '-c', '\\conninfo', conninfo],
      { env: { PATH: process.env.PATH ?? '', PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('node-postgres against ScramServerSession over a socket', () => {
  const certs = new Map<CertificateKind, TestCertificate>();
  before(async () => {
    certs.set('ecdsa-p384-sha384', await makeCertificate('ecdsa-p384-sha384'));
    certs.set('ed25519', await makeCertificate('ed25519'));
  });

  it('plaintext SCRAM-SHA-256 login', async () => {
    await withServer({}, async (s) => {
      await pgConnect(s.port);
      assert.equal(s.outcomes.length, 1);
      const o = s.outcomes[0]!;
      assert.deepEqual([o.ok, o.tls, o.mechanism, o.offered], [true, false, 'SCRAM-SHA-256', ['SCRAM-SHA-256']]);
      assert.deepEqual(sha256(o.clientKey!), roles.get('alice')!.storedKey);
    });
  });

  it('wrong password and unknown role: 28P01', async () => {
    await withServer({}, async (s) => {
      await assert.rejects(pgConnect(s.port, { password: 'nope' }), { code: '28P01', message: 'password authentication failed for user "alice"' });
      await assert.rejects(pgConnect(s.port, { user: 'mallory' }), { code: '28P01', message: 'password authentication failed for user "mallory"' });
      assert.deepEqual(
        s.outcomes.map((o) => o.reason),
        ['invalid client proof', 'mock authentication for an unknown role'],
      );
    });
  });

  it('TLS with channel binding: SCRAM-SHA-256-PLUS (SHA-384 certificate)', async () => {
    await withServer({ cert: certs.get('ecdsa-p384-sha384')! }, async (s) => {
      await pgConnect(s.port, { ssl: { rejectUnauthorized: false }, enableChannelBinding: true } as Partial<pg.ClientConfig>);
      assert.deepEqual([s.outcomes[0]!.ok, s.outcomes[0]!.tls, s.outcomes[0]!.mechanism], [true, true, 'SCRAM-SHA-256-PLUS']);
    });
  });

  it('TLS, binding stripped by a man in the middle: pg sends "y", the session refuses', async () => {
    await withServer({ cert: certs.get('ecdsa-p384-sha384')!, stripPlus: true }, async (s) => {
      await assert.rejects(pgConnect(s.port, { ssl: { rejectUnauthorized: false }, enableChannelBinding: true } as Partial<pg.ClientConfig>), {
        code: '08P01',
        message: /channel binding negotiation error/,
      });
    });
  });

  it('Ed25519 certificate: PLUS is not offered, plain SCRAM over TLS works', async () => {
    await withServer({ cert: certs.get('ed25519')! }, async (s) => {
      await pgConnect(s.port, { ssl: { rejectUnauthorized: false } });
      assert.deepEqual([s.outcomes[0]!.ok, s.outcomes[0]!.offered], [true, ['SCRAM-SHA-256']]);
    });
  });
});

describe('psql (libpq) against ScramServerSession over a socket', { skip: PSQL ? false : 'psql not installed' }, () => {
  const certs = new Map<CertificateKind, TestCertificate>();
  before(async () => {
    for (const kind of ['ecdsa-p256-sha256', 'rsa-pss-sha384', 'rsa-sha512', 'ed25519'] as const) certs.set(kind, await makeCertificate(kind));
  });

  it('plaintext login', async () => {
    await withServer({}, async (s) => {
      const r = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=disable`, PASSWORD);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /connected to database "db" as user "alice"/);
      assert.equal(s.outcomes[0]!.mechanism, 'SCRAM-SHA-256');
    });
  });

  for (const kind of ['ecdsa-p256-sha256', 'rsa-pss-sha384', 'rsa-sha512'] as const) {
    it(`TLS with channel_binding=require (${kind} certificate)`, async () => {
      await withServer({ cert: certs.get(kind)! }, async (s) => {
        const r = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=require channel_binding=require`, PASSWORD);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /SSL connection/);
        assert.deepEqual([s.outcomes[0]!.ok, s.outcomes[0]!.mechanism], [true, 'SCRAM-SHA-256-PLUS']);
      });
    });
  }

  it('wrong password', async () => {
    await withServer({}, async (s) => {
      const r = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=disable`, 'wrong');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /FATAL: {2}password authentication failed for user "alice"/);
    });
  });

  it('binding stripped by a man in the middle: libpq sends "y", the session refuses', async () => {
    await withServer({ cert: certs.get('ecdsa-p256-sha256')!, stripPlus: true }, async (s) => {
      const r = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=require`, PASSWORD);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /SCRAM channel binding negotiation error/);
    });
  });

  it('Ed25519 certificate: no PLUS offered; channel_binding=prefer logs in, =require refuses', async () => {
    await withServer({ cert: certs.get('ed25519')! }, async (s) => {
      const ok = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=require`, PASSWORD);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(s.outcomes[0]!.mechanism, 'SCRAM-SHA-256');
      const refused = await psql(`host=127.0.0.1 port=${s.port} user=alice dbname=db sslmode=require channel_binding=require`, PASSWORD);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /channel binding/);
    });
  });
});
