// A real Patroni cluster for attached-server tests: one etcd and two PostgreSQL nodes run by
// Patroni on loopback ports, each with its own data dir, TLS on PostgreSQL with certificates
// from a CA the test makes. Everything runs as the project's unprivileged OS user (PostgreSQL
// refuses root) and is stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { issueServerCertificate, loadOrCreateCa, type PlatformCa } from '../../src/host/ca.js';
import type { PlatformPaths } from '../../src/host/paths.js';
import { serviceAccount, type OsAccount } from '../../src/host/os-user.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';
import { tempDir, until } from './platform.js';

export interface PatroniNode {
  readonly name: string;
  readonly pgPort: number;
  readonly restPort: number;
  readonly dir: string;
  /** `127.0.0.1:<pgPort>` */
  readonly endpoint: string;
  child: ChildProcess | null;
}

export interface PatroniCluster {
  readonly nodes: readonly PatroniNode[];
  readonly caPem: string;
  readonly caFile: string;
  readonly superuser: { readonly user: string; readonly password: string };
  /** The node Patroni calls the leader now (asked over its REST API), or null. */
  leader(): Promise<PatroniNode | null>;
  /** The postmaster PID of a node (from its postmaster.pid), or null. */
  postmasterPid(node: PatroniNode): number | null;
  /** The tail of etcd's and every node's log (Patroni and PostgreSQL), for a failure's message. */
  logs(): string;
  /** A superuser connection straight to a node (TLS verify-full). */
  connect(node: PatroniNode): Promise<pg.Client>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function own(p: string, a: OsAccount, mode: number): void {
  chownSync(p, a.uid, a.gid);
  chmodSync(p, mode);
}

function spawnAs(a: OsAccount, cmd: string, args: string[], cwd: string, logFile: string): ChildProcess {
  const log = path.join(logFile);
  writeFileSync(log, '');
  own(log, a, 0o600);
  const child = spawn(cmd, args, {
    cwd,
    uid: a.uid,
    gid: a.gid,
    env: { PATH: '/usr/bin:/bin', HOME: cwd, LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Patroni's PostgreSQL inherits the pipes and can still write after Patroni exits and the
  // cluster's directory is removed: output then has nowhere to go (it must not throw in a handler).
  const append = (b: Buffer) => {
    try {
      writeFileSync(log, b, { flag: 'a' });
    } catch {
      child.stdout?.off('data', append);
      child.stderr?.off('data', append);
    }
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return child;
}

/** Stops a child by its PID and waits for it to exit (SIGKILL after 15 s). */
async function stopChild(child: ChildProcess | null, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export async function startPatroniCluster(nodeCount = 2): Promise<PatroniCluster> {
  const account = serviceAccount();
  const root = tempDir('pgw-patroni-');
  own(root, account, 0o711);
  // A CA of the test's own, and a certificate per node for 127.0.0.1 (the endpoints' host).
  const caDir = path.join(root, 'ca');
  const ca: PlatformCa = await loadOrCreateCa(
    { caDir, caCert: path.join(caDir, 'ca.crt'), caKey: path.join(caDir, 'ca.key') } as PlatformPaths,
    'attached cluster test CA',
  );
  const caFile = path.join(caDir, 'ca.crt');
  const superuser = { user: 'postgres', password: `Su-${Math.random().toString(36).slice(2)}-9x` };
  const replication = { user: 'replicator', password: `Re-${Math.random().toString(36).slice(2)}-9x` };
  const binDir = findPgBinaries().dir;

  const etcdDir = path.join(root, 'etcd');
  mkdirSync(etcdDir, { mode: 0o700 });
  own(etcdDir, account, 0o700);
  const [etcdClient, etcdPeer] = [await freePort(), await freePort()];
  const etcd = spawnAs(
    account,
    '/usr/bin/etcd',
    [
      '--name=e1',
      `--data-dir=${path.join(etcdDir, 'data')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=e1=http://127.0.0.1:${etcdPeer}`,
    ],
    etcdDir,
    path.join(root, 'etcd.log'),
  );

  const nodes: PatroniNode[] = [];
  for (let i = 1; i <= nodeCount; i++) {
    const dir = path.join(root, `node${i}`);
    mkdirSync(dir, { mode: 0o700 });
    own(dir, account, 0o700);
    const cert = await issueServerCertificate(ca, { commonName: `node${i}`, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    for (const [f, body] of [
      ['server.crt', cert.certPem],
      ['server.key', cert.keyPem],
      ['ca.crt', ca.certPem],
    ] as const) {
      writeFileSync(path.join(dir, f), body);
      own(path.join(dir, f), account, 0o600);
    }
    const pgPort = await freePort();
    const restPort = await freePort();
    nodes.push({ name: `node${i}`, pgPort, restPort, dir, endpoint: `127.0.0.1:${pgPort}`, child: null });
  }
  const hba = [
    'local all all trust',
    'hostssl replication replicator 127.0.0.1/32 scram-sha-256',
    // The gateways' addresses only, over TLS, with SCRAM (README: attached servers).
    'hostssl all all 127.0.0.1/32 scram-sha-256',
  ];
  for (const n of nodes) {
    // JSON is YAML: Patroni reads this as its configuration file.
    const config = {
      scope: `pgw-${path.basename(root)}`,
      name: n.name,
      log: { level: 'INFO' },
      restapi: { listen: `127.0.0.1:${n.restPort}`, connect_address: `127.0.0.1:${n.restPort}` },
      etcd3: { hosts: `127.0.0.1:${etcdClient}` },
      bootstrap: {
        dcs: {
          ttl: 20,
          loop_wait: 1,
          retry_timeout: 5,
          // A crashed primary is not restarted in place: the standby takes over at once.
          primary_start_timeout: 0,
          master_start_timeout: 0,
          maximum_lag_on_failover: 16 * 1024 * 1024,
          postgresql: { use_pg_rewind: true, parameters: { wal_log_hints: 'on', max_connections: 100 } },
        },
        initdb: [{ encoding: 'UTF8' }, { 'auth-host': 'scram-sha-256' }, { 'auth-local': 'trust' }],
      },
      postgresql: {
        listen: `127.0.0.1:${n.pgPort}`,
        connect_address: `127.0.0.1:${n.pgPort}`,
        data_dir: path.join(n.dir, 'data'),
        bin_dir: binDir,
        pgpass: path.join(n.dir, 'pgpass'),
        authentication: {
          superuser: { username: superuser.user, password: superuser.password, sslmode: 'verify-full', sslrootcert: path.join(n.dir, 'ca.crt') },
          replication: { username: replication.user, password: replication.password, sslmode: 'verify-full', sslrootcert: path.join(n.dir, 'ca.crt') },
        },
        parameters: {
          unix_socket_directories: n.dir,
          ssl: 'on',
          ssl_cert_file: path.join(n.dir, 'server.crt'),
          ssl_key_file: path.join(n.dir, 'server.key'),
          password_encryption: 'scram-sha-256',
        },
        pg_hba: hba,
      },
    };
    const file = path.join(n.dir, 'patroni.yml');
    writeFileSync(file, JSON.stringify(config, null, 2));
    own(file, account, 0o600);
  }

  const caPem = ca.certPem;
  const connect = async (n: PatroniNode) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: n.pgPort,
      user: superuser.user,
      password: superuser.password,
      database: 'postgres',
      ssl: { ca: caPem, host: '127.0.0.1', rejectUnauthorized: true } as pg.ClientConfig['ssl'],
    });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const leader = async (): Promise<PatroniNode | null> => {
    for (const n of nodes) {
      try {
        const res = await fetch(`http://127.0.0.1:${n.restPort}/patroni`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { role?: string; state?: string };
        if ((body.role === 'master' || body.role === 'primary') && body.state === 'running') return n;
      } catch {
        /* a node that is down */
      }
    }
    return null;
  };
  const logs = () =>
    [path.join(root, 'etcd.log'), ...nodes.map((n) => path.join(n.dir, 'patroni.log'))]
      .map((f) => {
        try {
          return `--- ${f}\n${readFileSync(f, 'utf8').slice(-4000)}`;
        } catch {
          return '';
        }
      })
      .join('\n');
  const cluster: PatroniCluster = {
    logs,
    nodes,
    caPem,
    caFile,
    superuser,
    leader,
    postmasterPid: (n) => {
      try {
        return Number(readFileSync(path.join(n.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch {
        return null;
      }
    },
    connect,
    async stop() {
      for (const n of nodes) await stopChild(n.child);
      await stopChild(etcd);
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await until('etcd to answer', async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`).catch(() => null))?.ok, 30_000);
    // The first node bootstraps (and leads); the others then clone it.
    nodes[0]!.child = spawnAs(account, '/usr/bin/patroni', [path.join(nodes[0]!.dir, 'patroni.yml')], nodes[0]!.dir, path.join(nodes[0]!.dir, 'patroni.log'));
    await until('the first Patroni node to lead', async () => (await leader()) === nodes[0], 90_000, 500);
    for (const n of nodes.slice(1)) {
      n.child = spawnAs(account, '/usr/bin/patroni', [path.join(n.dir, 'patroni.yml')], n.dir, path.join(n.dir, 'patroni.log'));
    }
    for (const n of nodes.slice(1)) {
      await until(
        `${n.name} to stream from the leader`,
        async () => {
          const res = await fetch(`http://127.0.0.1:${n.restPort}/patroni`).catch(() => null);
          const body = res ? ((await res.json()) as { role?: string; state?: string }) : null;
          return body?.role === 'replica' && body.state === 'running';
        },
        90_000,
        500,
      );
    }
    return cluster;
  } catch (err) {
    const tail = logs();
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
}
