// Node's floor: the least a Node process can do to put TLS in front of PostgreSQL. It accepts
// TCP, answers libpq's SSLRequest with 'S' (a GSSENCRequest with 'N'), terminates TLS with the
// gateway's settings and pipes the bytes both ways to the server's Unix socket; PostgreSQL does
// SCRAM itself over the plain socket. No pgwarden code on the data path. Forked by node-floor.ts
// with its settings in PGWARDEN_FLOOR (JSON); sends {ready: port} once it listens.
// Variants (same TLS, different read path on the server side):
//   pipe    server.pipe(client) and client.pipe(server), as stream code usually does;
//   handler one 'data' handler per direction writing on (what relay.ts would do if it dropped
//           pipe() and forwarded in its own observer handler), pausing on backpressure;
//   onread  the server side read into one reused buffer (net.connect's `onread`), each chunk
//           copied once and written to the client, pausing on backpressure.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

export type FloorVariant = 'pipe' | 'handler' | 'onread';
export interface FloorSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly socketPath: string;
  readonly variant: FloorVariant;
  /** The gateway's TLS 1.3 suites and TLS 1.2 ciphers, in its order. */
  readonly ciphers: string;
}

const settings = JSON.parse(process.env.PGWARDEN_FLOOR ?? '{}') as FloorSettings;
// The same context options as the gateway's (src/gateway/tls-certificates.ts buildContext).
const context = tls.createSecureContext({
  cert: readFileSync(settings.certFile),
  key: readFileSync(settings.keyFile),
  minVersion: 'TLSv1.2',
  ciphers: settings.ciphers,
  ecdhCurve: 'X25519:P-256:P-384',
  honorCipherOrder: true,
  sessionTimeout: 300,
});
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

function accept(raw: net.Socket): void {
  raw.on('error', () => raw.destroy());
  let pending = Buffer.alloc(0);
  const onData = (c: Buffer) => {
    pending = Buffer.concat([pending, c]);
    while (pending.length >= 8) {
      const code = pending.readUInt32BE(4);
      pending = pending.subarray(8);
      if (code === GSSENC_REQUEST) raw.write('N');
      else if (code === SSL_REQUEST) {
        raw.off('data', onData);
        raw.pause();
        raw.write('S');
        startTls(raw);
        return;
      } else return void raw.destroy(); // plain startup: the floor is TLS only
    }
  };
  raw.on('data', onData);
}

function startTls(raw: net.Socket): void {
  const client = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
  client.on('error', () => client.destroy());
  client.once('secure', () => {
    if (settings.variant === 'onread') relayOnread(client);
    else if (settings.variant === 'handler') relayHandler(client);
    else relayPipe(client);
  });
}

function relayPipe(client: tls.TLSSocket): void {
  const server = net.connect(settings.socketPath);
  server.on('error', () => server.destroy());
  client.pipe(server);
  server.pipe(client);
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
}

function forward(from: net.Socket, to: net.Socket): void {
  from.on('data', (c: Buffer) => {
    if (!to.write(c)) from.pause();
  });
  to.on('drain', () => from.resume());
}

function relayHandler(client: tls.TLSSocket): void {
  const server = net.connect(settings.socketPath);
  server.on('error', () => server.destroy());
  forward(client, server);
  forward(server, client);
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
}

function relayOnread(client: tls.TLSSocket): void {
  const buffer = Buffer.allocUnsafe(65536);
  const server: net.Socket = net.connect({
    path: settings.socketPath,
    onread: {
      buffer,
      callback: (n: number, buf: Uint8Array) => {
        // The buffer is read into again: the client's write may keep the chunk queued, so it
        // gets a copy. Returning false pauses the socket until the client drains.
        return client.write(Buffer.from(buf.subarray(0, n)));
      },
    },
  } as net.NetConnectOpts);
  server.on('error', () => server.destroy());
  client.on('drain', () => server.resume());
  client.pipe(server);
  client.on('close', () => server.destroy());
  server.on('close', () => client.destroy());
}

const listener = net.createServer({ noDelay: true }, accept);
listener.listen(0, '127.0.0.1', () => {
  const a = listener.address() as net.AddressInfo;
  process.send?.({ ready: a.port });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
