// Real clients against the gateway: psql (libpq) and raw sockets for the protocol's edges.
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import type { TestPlatform } from './platform.js';

export interface PsqlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs psql with a libpq connection string and PGPASSWORD; never through a shell. */
export function psql(conninfo: string, password: string, args: readonly string[] = [], timeoutMs = 30_000): Promise<PsqlResult> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      [conninfo, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() });
      },
    );
  });
}

export function gatewayPort(t: TestPlatform): number {
  return t.platform.gateway.port;
}

/** node-postgres through the gateway as `user@server` over TLS (certificate not checked), connected. */
export async function gatewayClient(
  t: TestPlatform,
  o: { readonly server: string; readonly user: string; readonly password: string; readonly app?: string; readonly options?: string },
): Promise<pg.Client> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: `${o.user}@${o.server}`,
    password: o.password,
    database: 'postgres',
    ...(o.app !== undefined ? { application_name: o.app } : {}),
    ...(o.options !== undefined ? { options: o.options } : {}),
    ssl: { rejectUnauthorized: false },
  });
  await c.connect();
  return c;
}

export function conninfo(t: TestPlatform, opts: Record<string, string | number>): string {
  const base: Record<string, string | number> = { hostaddr: '127.0.0.1', port: gatewayPort(t), dbname: 'postgres', connect_timeout: 10 };
  return Object.entries({ ...base, ...opts })
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

/** Sends raw bytes to the gateway and collects everything it answers until it closes. */
export function rawExchange(
  port: number,
  payload: Buffer,
  opts: { host?: string; timeoutMs?: number; halfClose?: boolean } = {},
): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: opts.host ?? '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, opts.timeoutMs ?? 3000);
    s.on('connect', () => (opts.halfClose ? s.end(payload) : s.write(payload)));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

/** Opens TLS to the gateway through SSLRequest, with the given TLS options. */
export function sslRequestTls(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('error', reject);
    s.on('connect', () => {
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      s.write(req);
    });
    s.once('data', (b: Buffer) => {
      if (b.toString('latin1') !== 'S') return reject(new Error(`gateway answered ${JSON.stringify(b.toString('latin1'))} to SSLRequest`));
      const t = tls.connect({ socket: s, ...options });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
  });
}

/** Reads messages until the peer closes; returns the first ErrorResponse's fields, if any. */
export function readError(socket: net.Socket | tls.TLSSocket, timeoutMs = 5000): Promise<{ sqlstate?: string; message?: string; severity?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      let i = 0;
      while (i + 5 <= data.length) {
        const type = String.fromCharCode(data[i]!);
        const len = data.readInt32BE(i + 1);
        if (type === 'E') {
          const fields: Record<string, string> = {};
          let j = i + 5;
          while (j < i + 1 + len && data[j] !== 0) {
            const code = String.fromCharCode(data[j]!);
            const end = data.indexOf(0, j + 1);
            fields[code] = data.subarray(j + 1, end).toString('utf8');
            j = end + 1;
          }
          return resolve({ sqlstate: fields.C, message: fields.M, severity: fields.S });
        }
        i += 1 + len;
      }
      resolve({});
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', done);
  });
}

export function startupPacket(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  const body = Buffer.concat([...parts, Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

/** A node-postgres stream that connects from a chosen local address (a loopback alias). */
export function boundStream(localAddress: string): () => net.Socket {
  return () => {
    const s = new net.Socket();
    const connect = s.connect.bind(s) as (options: net.TcpSocketConnectOpts) => net.Socket;
    (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port: number, host: string) => connect({ port, host, localAddress });
    return s;
  };
}

/** Opens a TCP connection from a chosen local address, sends bytes, collects the answer. */
export function rawFrom(localAddress: string, port: number, payload: Buffer, timeoutMs = 3000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    s.on('connect', () => s.write(payload));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

/** The first ErrorResponse in a byte string: {sqlstate, message}, or null. */
export function errorIn(data: Buffer): { sqlstate?: string; message?: string } | null {
  let i = 0;
  while (i + 5 <= data.length) {
    const type = String.fromCharCode(data[i]!);
    if (type === 'N' || type === 'S') {
      i += 1;
      continue;
    }
    const len = data.readInt32BE(i + 1);
    if (type === 'E') {
      const fields: Record<string, string> = {};
      let j = i + 5;
      while (j < i + 1 + len && data[j] !== 0) {
        const end = data.indexOf(0, j + 1);
        fields[String.fromCharCode(data[j]!)] = data.subarray(j + 1, end).toString('utf8');
        j = end + 1;
      }
      return { sqlstate: fields.C, message: fields.M };
    }
    i += 1 + len;
  }
  return null;
}

/** Connects, runs `select 1` and closes: true, or the refusal's SQLSTATE (`code`) and message. */
export async function tryConnect(c: pg.Client): Promise<true | { code?: string; message: string }> {
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch (err) {
    const e = err as Error & { code?: string };
    return { code: e.code, message: e.message };
  } finally {
    await c.end().catch(() => undefined);
  }
}
