// The socket work of the handshake: the first chunk (to tell direct TLS from a startup packet),
// putting it back on the socket, and the TLS handshake itself.
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ConnectionClosed } from '../wire.js';
import type { ActiveCertificate } from '../tls-certificates.js';

/** The agreed TLS session, whoever terminates it (Node's TLS, or the native relay addon). */
export interface TlsState {
  readonly version: string;
  readonly cipher: string;
  readonly sni: string | undefined;
  /** The ALPN protocol agreed on ('postgresql'), or null. */
  readonly alpn: string | null;
  /** tls-server-end-point data of the certificate presented (null: PLUS is not offered). */
  readonly channelBinding: Buffer | null;
}

/** What the TLS handshake needs of the gateway. */
export interface TlsEnv {
  readonly certificates: {
    readonly current: ActiveCertificate;
    forHost(servername: string, serverNames: () => Iterable<string>): Promise<ActiveCertificate>;
  };
  serverNames(): Iterable<string>;
  readonly log: { error(obj: object, msg: string): void };
}

export function firstChunk(socket: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      cleanup();
      socket.pause();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      reject(new ConnectionClosed());
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume(); // the PROXY stage pauses the socket after its header
  });
}

/** The socket with `prefix` (read while sniffing: the start of a ClientHello) put back in front
 * of its bytes. Node's TLS takes a net.Socket's buffered bytes before its own reads (initRead),
 * so TLS then runs on the socket's native handle: a JavaScript Duplex in between made every TLS
 * record cross a JSStreamSocket (measured: the transaction relay's writes cost twice as much). */
export function replay(socket: Duplex, prefix: Buffer): Duplex {
  socket.unshift(prefix);
  return socket;
}

export async function startTls(transport: Duplex, env: TlsEnv, direct: boolean): Promise<{ socket: tls.TLSSocket; state: TlsState }> {
  let cert = env.certificates.current;
  const socket = new tls.TLSSocket(transport, {
    isServer: true,
    secureContext: cert.context,
    ALPNProtocols: ['postgresql'],
    // A server created a moment ago: its host name is put in the certificate before the answer.
    SNICallback: (servername, done) => {
      env.certificates
        .forHost(servername, () => env.serverNames())
        .then(
          (chosen) => {
            cert = chosen;
            done(null, chosen.context);
          },
          (err: Error) => {
            env.log.error({ err }, 'gateway certificate could not be reissued: the current one is presented');
            done(null, cert.context);
          },
        );
    },
  });
  await new Promise<void>((resolve, reject) => {
    const onClose = () => fail(new ConnectionClosed());
    const fail = (err: Error) => {
      socket.off('secure', onSecure);
      socket.off('close', onClose);
      reject(err);
    };
    const onSecure = () => {
      socket.off('error', fail);
      socket.off('close', onClose);
      resolve();
    };
    socket.once('secure', onSecure);
    socket.once('error', fail);
    socket.once('close', onClose);
  });
  socket.on('error', () => undefined);
  if (direct && socket.alpnProtocol !== 'postgresql') {
    socket.destroy();
    throw new ConnectionClosed(); // direct TLS requires ALPN "postgresql" (PostgreSQL 17)
  }
  const cipher = socket.getCipher();
  return {
    socket,
    state: {
      version: socket.getProtocol() ?? 'unknown',
      cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
      sni: (socket as tls.TLSSocket & { servername?: string | false }).servername || undefined,
      alpn: socket.alpnProtocol || null,
      channelBinding: cert.channelBinding,
    },
  };
}
