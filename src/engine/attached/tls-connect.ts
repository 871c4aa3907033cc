// A connection to one node of an attached server: TCP, PostgreSQL's SSLRequest, then TLS that
// verifies the node's certificate against the server's CA and its name against the endpoint's
// host (libpq's sslmode=verify-full). A node that declines TLS is refused: nothing goes to an
// attached server in clear.
import net from 'node:net';
import tls from 'node:tls';
import type { Endpoint } from './endpoints.js';

/** Int32 length 8, then the SSLRequest code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export async function connectTls(endpoint: Endpoint, ca: string, timeoutMs = 5_000): Promise<tls.TLSSocket> {
  const raw = net.connect({ host: endpoint.host, port: endpoint.port });
  raw.setNoDelay(true);
  const timer = setTimeout(() => raw.destroy(new Error(`no answer from ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', reject);
    });
    raw.write(SSL_REQUEST);
    const answer = await new Promise<number>((resolve, reject) => {
      raw.once('readable', () => {
        const b = raw.read(1) as Buffer | null;
        if (b) resolve(b[0]!);
        else reject(new Error('the node closed the connection during TLS negotiation'));
      });
      raw.once('error', reject);
      raw.once('end', () => reject(new Error('the node closed the connection during TLS negotiation')));
    });
    if (answer !== 0x53 /* 'S' */) throw new Error(`${endpoint.host}:${endpoint.port} does not accept TLS`);
    const socket = tls.connect({
      socket: raw,
      ca,
      host: endpoint.host,
      // SNI carries a name only (never an address); the certificate is checked against `host` either way.
      ...(net.isIP(endpoint.host) ? {} : { servername: endpoint.host }),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return socket;
  } catch (err) {
    raw.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
