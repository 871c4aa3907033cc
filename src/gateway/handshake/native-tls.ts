// Step 2 with the native relay: the accepted socket is handed to the addon once encryption is
// agreed (after 'S' to an SSLRequest has been flushed, or at once for direct TLS), which
// terminates TLS; the certificate is chosen here as for Node's TLS (transport.ts: the SNI
// callback's logic, a server created a moment ago gets its name in first).
import type net from 'node:net';
import { ConnectionClosed } from '../wire.js';
import { NativeClientSocket, standIn, type HelloEvent, type SecureEvent } from '../native/client-socket.js';
import { stopReading, type NativeRelayHost } from '../native/host.js';
import type { TlsEnv, TlsState } from './transport.js';

/** Writes `data` and resolves once it was handed to the kernel. */
export function writeFlushed(socket: net.Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(data, (err) => (err ? reject(new ConnectionClosed()) : resolve()));
  });
}

/**
 * The raw socket to the addon (`read`: what was read past the last packet, sent first), the TLS
 * handshake answered with the certificate for the client's SNI. Resolves with the plaintext
 * Duplex once the session is secure; rejects with ConnectionClosed when it is not (the client
 * left, a TLS alert, direct TLS without ALPN "postgresql").
 */
export async function adoptTls(
  raw: net.Socket,
  read: Buffer,
  mode: 'starttls' | 'direct',
  host: NativeRelayHost,
  env: TlsEnv,
): Promise<{ socket: NativeClientSocket; state: TlsState }> {
  const { fd, rest } = stopReading(raw);
  const socket = new NativeClientSocket(host, fd, read.length && rest.length ? Buffer.concat([read, rest]) : read.length ? read : rest, mode);
  standIn(raw, socket); // closes the raw socket's own descriptor
  let cert = env.certificates.current;
  socket.on('hello', (hello: HelloEvent) => {
    const chosen = hello.sni
      ? env.certificates
          .forHost(hello.sni, () => env.serverNames())
          .catch((err: Error) => {
            env.log.error({ err }, 'gateway certificate could not be reissued: the current one is presented');
            return cert;
          })
      : Promise.resolve(cert);
    void chosen.then((c) => {
      if (socket.ended) return;
      cert = c;
      let certId: number | null = null;
      try {
        certId = host.certificateId(c);
      } catch (err) {
        env.log.error({ err }, 'the native relay refused the gateway certificate: the connection is closed');
      }
      host.addon.tlsAnswer(socket.id, certId);
    });
  });
  const secure = await new Promise<SecureEvent>((resolve, reject) => {
    const onSecure = (e: SecureEvent) => {
      socket.off('close', onClose);
      resolve(e);
    };
    const onClose = () => {
      socket.off('secure', onSecure);
      reject(new ConnectionClosed());
    };
    socket.once('secure', onSecure);
    socket.once('close', onClose);
  });
  return {
    socket,
    state: {
      version: secure.version,
      cipher: secure.cipher,
      sni: secure.sni ?? undefined,
      alpn: secure.alpn,
      channelBinding: cert.channelBinding,
    },
  };
}
