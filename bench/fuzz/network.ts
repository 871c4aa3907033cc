// Phase 2: malformed connections against a real platform's gateway (public and private-link
// listeners), then a real psql must still be answered.
import net from 'node:net';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { callApi, type ApiTarget } from '../../src/cli/api-client.js';
import { benchOptions, benchRoot, clientConfig, startPlatform } from '../lib/platform-harness.js';
import { startupMessage, sslRequest } from '../../src/pgwire/frontend.js';
import { Rng } from './rng.js';
import { mutate } from './mutate.js';
import { messageStream, proxyHeader, saslInitialBody, startupPacket } from './generate.js';

const SERVER = 'fuzz1';
const PASSWORD = 'Fuzz-Campaign-Passw0rd!';

export interface NetworkOutcome {
  readonly connections: number;
  readonly seconds: number;
  /** Answered with a FATAL ErrorResponse (then closed). */
  readonly fatal: number;
  /** Closed without a byte (PROXY refusals, TLS failures, a client that stopped early). */
  readonly silent: number;
  /** XX000 "internal error in the gateway": an exception the gateway did not expect. */
  readonly internalErrors: number;
  /** Neither answered nor closed within the timeout. */
  readonly hangs: number;
  /** An answer that is not a well-formed sequence of protocol messages. */
  readonly malformed: number;
  /** Answered (an authentication request, a parameter status) and closed when the probe ended. */
  readonly other: number;
  readonly psqlAfter: boolean;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly denied: Record<string, number>;
}

interface Probe {
  readonly port: 'public' | 'link';
  readonly bytes: Buffer;
  /** Half-close after sending (most probes); otherwise the gateway's deadline ends it. */
  readonly end: boolean;
  /** Answers after this request are TLS records, not judged as protocol messages. */
  readonly tls: boolean;
}

function probe(rng: Rng, corpus: Buffer[]): Probe {
  const end = !rng.chance(0.01);
  const valid = startupMessage({ user: rng.pick([`alice@${SERVER}`, `nobody@${SERVER}`, 'alice@nowhere']), database: 'postgres' });
  switch (rng.int(6)) {
    case 0:
    case 1:
      return { port: 'public', bytes: mutate(rng.chance(0.2) ? valid : startupPacket(rng), rng, corpus, 12_000), end, tls: false };
    case 2:
      return { port: 'public', bytes: Buffer.concat([sslRequest(), rng.bytes(rng.int(64))]), end, tls: true };
    case 3: {
      const sasl = rng.chance(0.5)
        ? mutate(Buffer.concat([Buffer.from([0x70, 0, 0, 0, 0]), saslInitialBody(rng)]), rng, corpus, 9_000)
        : mutate(messageStream(rng), rng, corpus, 9_000);
      if (sasl.length >= 5 && rng.chance(0.7)) sasl.writeInt32BE(sasl.length - 1, 1);
      return { port: 'public', bytes: Buffer.concat([valid, sasl]), end, tls: false };
    }
    case 4:
      return { port: 'link', bytes: Buffer.concat([mutate(proxyHeader(rng), rng, corpus, 5_000), valid]), end, tls: false };
    default:
      return { port: 'public', bytes: Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), rng.bytes(rng.int(300))]), end, tls: true };
  }
}

type Verdict = 'fatal' | 'silent' | 'internal' | 'hang' | 'malformed' | 'other';

function judge(data: Buffer, p: Probe): Verdict {
  if (data.length === 0) return 'silent';
  let i = 0;
  let fatal = false;
  while (i < data.length) {
    const type = String.fromCharCode(data[i]!);
    // A one-byte answer to SSLRequest ('S': TLS records follow) or GSSENCRequest ('N': the
    // next packet's answer follows), as the fuzzed first packet may be either.
    if (i === 0 && type === 'S' && (data.length === 1 || data[1] !== 0)) return 'other';
    if (i === 0 && type === 'N' && (data.length === 1 || data[1] !== 0)) {
      i = 1;
      continue;
    }
    if (i === 0 && p.tls && data[0] === 0x15) return 'other'; // a TLS alert to direct TLS garbage
    if (i + 5 > data.length) return 'malformed';
    const len = data.readInt32BE(i + 1);
    if (len < 4 || i + 1 + len > data.length || !['E', 'R', 'v', 'N', 'S'].includes(type)) return 'malformed';
    if (type === 'E') {
      const body = data.subarray(i + 5, i + 1 + len).toString('utf8');
      if (body.includes('\0CXX000\0')) return 'internal';
      if (!body.startsWith('SFATAL\0')) return 'malformed';
      fatal = true;
      if (i + 1 + len !== data.length) return 'malformed'; // the FATAL is the last thing sent
    }
    i += 1 + len;
  }
  return fatal ? 'fatal' : 'other';
}

function send(port: number, p: Probe, timeoutMs: number): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    s.on('connect', () => (p.end ? s.end(p.bytes) : s.write(p.bytes)));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

function psqlSelect(port: number, caFile: string): Promise<boolean> {
  const conninfo = `host=${SERVER}.pgwarden.localhost hostaddr=127.0.0.1 port=${port} user=alice@${SERVER} dbname=postgres sslmode=verify-full sslrootcert=${caFile} connect_timeout=10`;
  return new Promise((resolve) => {
    execFile(
      'psql',
      [conninfo, '-X', '-A', '-t', '-c', 'select 42'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: PASSWORD }, timeout: 30_000 },
      (err, stdout) => {
        resolve(!err && stdout.trim() === '42');
      },
    );
  });
}

export async function runNetwork(opts: { seed: number; connections: number; concurrency: number }): Promise<NetworkOutcome> {
  const root = benchRoot('pgw-fuzz-');
  const options = {
    ...benchOptions(path.join(root, 'data')),
    gatewayLimits: { handshakeTimeoutMs: 2000, authTimeoutMs: 2000 },
    privateLink: { hosts: ['127.0.0.1'], port: 0, loadBalancers: ['127.0.0.1/32'] },
  };
  const { platform, stop } = await startPlatform(options);
  const cfg = clientConfig(platform);
  const target: ApiTarget = { url: cfg.apiUrl, token: cfg.token, ca: readFileSync(cfg.caFile, 'utf8') };
  await callApi(target, 'POST', '/servers', { name: SERVER, administratorLogin: 'alice', administratorLoginPassword: PASSWORD });
  await callApi(target, 'PUT', `/servers/${SERVER}/firewallRules/loopback`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
  // Thousands of malformed SCRAM exchanges from 127.0.0.1 are failed logins: the automatic
  // protection would rightly throttle the address, and the psql at the end comes from it too.
  await callApi(target, 'PATCH', `/servers/${SERVER}/securityAlertPolicy`, { autoProtection: { state: 'Disabled' } });
  const publicPort = platform.gateway.port;
  const linkPort = platform.gateway.portOf('private-link')!;
  for (let i = 0; i < 50 && !(await psqlSelect(publicPort, cfg.caFile)); i++) await new Promise((r) => setTimeout(r, 100));

  const rng = new Rng(opts.seed ^ 0x5eed);
  const corpus = Array.from({ length: 64 }, () => startupPacket(rng));
  const counts: Record<Verdict, number> = { fatal: 0, silent: 0, internal: 0, hang: 0, malformed: 0, other: 0 };
  const rssBefore = process.memoryUsage().rss;
  const t0 = Date.now();
  let next = 0;
  const examples: string[] = [];
  const lane = async () => {
    while (next < opts.connections) {
      next++;
      const p = probe(rng, corpus);
      const r = await send(p.port === 'public' ? publicPort : linkPort, p, 15_000);
      const v = r.closed ? judge(r.data, p) : 'hang';
      counts[v]++;
      if ((v === 'internal' || v === 'malformed' || v === 'hang') && examples.length < 5)
        examples.push(`${v}: sent ${p.bytes.subarray(0, 120).toString('hex')} got ${r.data.subarray(0, 120).toString('hex')}`);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, lane));
  const seconds = (Date.now() - t0) / 1000;
  for (const e of examples) console.log(`  ${e}`);
  const psqlAfter = await psqlSelect(publicPort, cfg.caFile);
  const metric = await platform.metrics.getSingleMetric('pgwarden_gateway_denied_total')?.get();
  const denied: Record<string, number> = {};
  for (const v of metric?.values ?? []) denied[String(v.labels.reason)] = v.value;
  const rssAfter = process.memoryUsage().rss;
  await stop();
  return {
    connections: opts.connections,
    seconds,
    fatal: counts.fatal,
    silent: counts.silent,
    internalErrors: counts.internal,
    hangs: counts.hang,
    malformed: counts.malformed,
    other: counts.other,
    psqlAfter,
    rssBefore,
    rssAfter,
    denied,
  };
}
