// End to end against a real PostgreSQL 15 (skipped when its binaries are not installed): the
// server runs as an unprivileged user on a private Unix socket only (listen_addresses = ''), and
// is stopped by its postmaster PID afterwards.
//  - ClientKey passthrough: a user's SCRAM exchange with ScramServerSession (node-postgres as the
//    user's client) yields a ClientKey; ScramClientSession uses it, with the ServerKey from
//    pg_authid, to log in to PostgreSQL over a raw socket with the frontend serializers.
//  - buildScramVerifier matches verifiers PostgreSQL computes itself (SASLprep included).

import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { MessageReader, type WireMessage } from '../../src/pgwire/reader.js';
import { saslInitialResponse, saslResponse, startupMessage, terminate } from '../../src/pgwire/frontend.js';
import { parseAuthentication, parseBackendKeyData, parseErrorOrNotice, parseParameterStatus, parseReadyForQuery } from '../../src/pgwire/parse-backend.js';
import { ScramClientSession, type ScramClientOptions } from '../../src/auth/scram/client.js';
import { ScramServerSession } from '../../src/auth/scram/server.js';
import { buildScramVerifier, parseScramVerifier, type ScramVerifier } from '../../src/auth/scram/verifier.js';
import { Frames } from '../unit/auth/scram/frames.js';
import { pgSasl } from '../unit/auth/scram/pg-sasl.js';

const BIN = '/usr/lib/postgresql/15/bin';
const available = existsSync(`${BIN}/postgres`) && existsSync(`${BIN}/initdb`);
const asRoot = userInfo().uid === 0;
const PASSWORD = 'correct horse battery staple';

/** Runs a PostgreSQL binary as `nobody` when we are root (PostgreSQL refuses to run as root). */
function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'nobody', '--', `${BIN}/${bin}`, ...args]] : [`${BIN}/${bin}`, args];
}

interface LoginResult {
  readonly ok: boolean;
  readonly error?: ReturnType<typeof parseErrorOrNotice>;
  readonly params: Map<string, string>;
  readonly mechanisms: readonly string[];
}

/** Logs in over a raw Unix socket with the codec and ScramClientSession; sends Terminate at the end. */
async function rawLogin(socketPath: string, user: string, credentials: ScramClientOptions): Promise<LoginResult> {
  const socket = net.createConnection({ path: socketPath });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const frames = new Frames<WireMessage>(socket, new MessageReader());
  const params = new Map<string, string>();
  let mechanisms: readonly string[] = [];
  try {
    socket.write(startupMessage({ user, database: 'postgres' }));
    const session = new ScramClientSession(credentials);
    for (;;) {
      const m = await frames.next();
      if (m.type === 'E') return { ok: false, error: parseErrorOrNotice(m.body), params, mechanisms };
      if (m.type === 'S') {
        const p = parseParameterStatus(m.body);
        params.set(p.name, p.value);
      } else if (m.type === 'K') {
        assert.ok(parseBackendKeyData(m.body).secretKey.length >= 4);
      } else if (m.type === 'Z') {
        assert.equal(parseReadyForQuery(m.body), 'I');
        socket.write(terminate());
        return { ok: true, params, mechanisms };
      } else if (m.type === 'R') {
        const auth = parseAuthentication(m.body);
        if (auth.kind === 'sasl') {
          mechanisms = auth.mechanisms;
          socket.write(saslInitialResponse(session.mechanism, session.clientFirst()));
        } else if (auth.kind === 'saslContinue') {
          socket.write(saslResponse(session.serverFirst(auth.data)));
        } else if (auth.kind === 'saslFinal') {
          session.serverFinal(auth.data);
        } else {
          assert.equal(auth.kind, 'ok');
        }
      }
    }
  } finally {
    socket.end();
  }
}

describe('against a real PostgreSQL 15', { skip: available ? false : 'PostgreSQL 15 binaries not installed' }, () => {
  let dir = '';
  let socketPath = '';
  let postmaster: ChildProcess | null = null;
  let admin: pg.Client;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-scram-e2e-'));
    if (asRoot) chownSync(dir, 65534, 65534);
    const data = path.join(dir, 'data');
    const [initdb, initArgs] = command('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--locale=C',
      '--auth-local=trust',
      '--auth-host=reject',
      '--no-sync',
    ]);
    execFileSync(initdb, initArgs, { stdio: 'ignore' });
    // the test roles log in with SCRAM; only the admin connection is trusted
    writeFileSync(path.join(data, 'pg_hba.conf'), 'local all postgres trust\nlocal all all scram-sha-256\n');
    const [postgres, args] = command('postgres', ['-D', data, '-c', 'listen_addresses=', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off']);
    postmaster = spawn(postgres, args, { stdio: 'ignore' });
    socketPath = path.join(dir, '.s.PGSQL.5432');
    for (let i = 0; i < 200 && !existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 50));
    admin = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
    for (let i = 0; ; i++) {
      try {
        await admin.connect();
        break;
      } catch (err) {
        if (i > 100) throw err;
        admin = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await admin.query(`create role alice login password '${PASSWORD}'`);
    await admin.query('create role bob login');
  });

  after(async () => {
    await admin?.end().catch(() => undefined);
    const pidFile = path.join(dir, 'data', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT'); // fast shutdown of the postmaster we started
    }
    if (postmaster && postmaster.exitCode === null) {
      await new Promise((resolve) => postmaster!.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function verifierOf(role: string): Promise<ScramVerifier> {
    const r = await admin.query<{ rolpassword: string }>('select rolpassword from pg_authid where rolname = $1', [role]);
    const v = parseScramVerifier(r.rows[0]!.rolpassword);
    assert.ok(v, 'PostgreSQL stored a SCRAM verifier');
    return v;
  }

  it('ClientKey passthrough: user -> ScramServerSession -> ScramClientSession -> PostgreSQL', async () => {
    const verifier = await verifierOf('alice');
    // the user's side: node-postgres' SCRAM client, knowing the password, against the gateway session
    const gateway = new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256', channelBinding: null });
    const user = pgSasl.startSession(['SCRAM-SHA-256']);
    await pgSasl.continueSession(user, PASSWORD, gateway.clientFirst(Buffer.from(user.response)).toString());
    const verdict = gateway.clientFinal(Buffer.from(user.response));
    assert.ok(verdict.ok);
    pgSasl.finalizeSession(user, verdict.serverFinal.toString());

    // the gateway's side: no password, only the recovered ClientKey and the stored ServerKey
    const login = await rawLogin(socketPath, 'alice', { clientKey: verdict.clientKey, serverKey: verifier.serverKey });
    assert.equal(login.error, undefined);
    assert.ok(login.ok);
    assert.deepEqual(login.mechanisms, ['SCRAM-SHA-256']); // no TLS on a Unix socket: no PLUS
    assert.match(login.params.get('server_version')!, /^15\./);
  });

  it('a wrong ClientKey is refused by PostgreSQL with 28P01', async () => {
    const verifier = await verifierOf('alice');
    const login = await rawLogin(socketPath, 'alice', { clientKey: Buffer.alloc(32, 1), serverKey: verifier.serverKey });
    assert.equal(login.ok, false);
    assert.equal(login.error?.sqlstate, '28P01');
    assert.equal(login.error?.message, 'password authentication failed for user "alice"');
  });

  it('a password client logs in; a wrong password is refused', async () => {
    assert.ok((await rawLogin(socketPath, 'alice', { password: PASSWORD })).ok);
    const wrong = await rawLogin(socketPath, 'alice', { password: 'nope' });
    assert.equal(wrong.error?.sqlstate, '28P01');
  });

  it('a server signature computed with the wrong ServerKey is detected', async () => {
    const rightKeys = new ScramServerSession({ verifier: await verifierOf('alice'), mechanism: 'SCRAM-SHA-256', channelBinding: null });
    const c = new ScramClientSession({ password: PASSWORD });
    const v = rightKeys.clientFinal(c.serverFirst(rightKeys.clientFirst(c.clientFirst())));
    assert.ok(v.ok);
    await assert.rejects(rawLogin(socketPath, 'alice', { clientKey: v.clientKey, serverKey: Buffer.alloc(32) }), {
      name: 'ScramError',
      message: 'invalid SCRAM server signature',
    });
  });

  const passwords = [
    'pencil',
    'ＡＢＣ', // NFKC
    'I\u00adX', // mapped to nothing
    '\u2168', // NFKC to "IX"
    'a\u00a0b', // non-ASCII space
    '\ufb01x', // ligature
    'e\u0301', // composed by NFKC
    '\u05d0\u05d1', // RandALCat only
    'pass😀', // unassigned in Unicode 3.2: raw
    '\u0627\u0031', // bidi violation: raw
    'a\u200eb', // prohibited: raw
    'ＡＢＣ😀', // NFKC would change it, but U+1F600 makes PostgreSQL use the raw password
    'ＡＢＣ\u200e', // same, with a prohibited character
    'ＡＢＣ\u0007', // same, with an ASCII control character
    "it's",
  ];
  it('buildScramVerifier matches the verifiers PostgreSQL computes (SASLprep)', async () => {
    for (const password of passwords) {
      await admin.query(`alter role bob password '${password.replaceAll("'", "''")}'`);
      const theirs = await verifierOf('bob');
      const ours = parseScramVerifier(buildScramVerifier(password, { salt: theirs.salt, iterations: theirs.iterations }))!;
      assert.deepEqual(ours.storedKey, theirs.storedKey, `StoredKey for ${JSON.stringify(password)}`);
      assert.deepEqual(ours.serverKey, theirs.serverKey, `ServerKey for ${JSON.stringify(password)}`);
      const login = await rawLogin(socketPath, 'bob', { password });
      assert.ok(login.ok, `login as bob with ${JSON.stringify(password)}: ${login.error?.message}`);
    }
  });
});
